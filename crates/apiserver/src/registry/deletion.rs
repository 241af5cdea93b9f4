//! How a DELETE ends for an object with finalizers (kube-apiserver's generic store): it is
//! not removed but marked as being deleted (`deletionTimestamp`, `deletionGracePeriodSeconds`
//! 0), no new finalizer may join it, and the update that takes its last finalizer away
//! removes it.

use kubeboot_api::StatusCause;
use serde_json::{Value, json};

use crate::object::meta_mut;

/// The object's finalizers.
pub(super) fn finalizers(obj: &Value) -> Vec<&str> {
    crate::object::str_list(obj, "/metadata/finalizers")
}

/// Whether the object is being deleted (a DELETE marked it).
pub fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

/// Whether a DELETE leaves the object in place, marked, until its finalizers are gone.
pub fn waits_for_finalizers(obj: &Value) -> bool {
    !finalizers(obj).is_empty()
}

/// Whether an update has taken the last finalizer from an object being deleted: the
/// update removes it.
pub fn is_finalized(obj: &Value) -> bool {
    is_deleting(obj) && !waits_for_finalizers(obj)
}

/// `markAsDeleting`: the deletion's time (kept if one is set already, unless it is later
/// than `now`), a grace period of 0, and a counted generation moved on as the deletion
/// begins. Whether anything changed.
pub fn mark_deleting(obj: &mut Value, now: &str) -> bool {
    let before = obj.get("metadata").cloned();
    let meta = meta_mut(obj);
    let since = meta.get("deletionTimestamp").and_then(Value::as_str);
    // RFC 3339 times in UTC at one precision order as strings do.
    if since.is_none_or(|t| t > now) {
        if since.is_none()
            && let Some(generation) = meta.get("generation").and_then(Value::as_i64)
            && generation > 0
        {
            meta.insert("generation".into(), json!(generation + 1));
        }
        meta.insert("deletionTimestamp".into(), json!(now));
    }
    meta.insert("deletionGracePeriodSeconds".into(), json!(0));
    obj.get("metadata") != before.as_ref()
}

/// `ValidateNoNewFinalizers`: an object being deleted takes no finalizer it did not have.
pub fn new_finalizer_causes(new: &Value, old: &Value) -> Vec<StatusCause> {
    if !is_deleting(old) {
        return Vec::new();
    }
    let had = finalizers(old);
    let mut extra: Vec<&str> = finalizers(new)
        .into_iter()
        .filter(|f| !had.contains(f))
        .collect();
    if extra.is_empty() {
        return Vec::new();
    }
    extra.sort_unstable();
    extra.dedup();
    vec![StatusCause::forbidden(
        "metadata.finalizers",
        &format!(
            "no new finalizers can be added if the object is being deleted, found new finalizers {}",
            kubeboot_api::status::go_strings(&extra)
        ),
    )]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-12-07T16:00:00Z";

    #[test]
    fn a_deletion_waits_for_finalizers_and_ends_with_the_last() {
        let plain = json!({"metadata": {"name": "a"}});
        let held = json!({"metadata": {"name": "a", "finalizers": ["example.com/x"]}});
        assert!(!waits_for_finalizers(&plain));
        assert!(waits_for_finalizers(&held));
        assert!(!is_deleting(&held) && !is_finalized(&held));
        let mut marked = held;
        assert!(mark_deleting(&mut marked, NOW));
        assert_eq!(marked["metadata"]["deletionTimestamp"], NOW);
        assert_eq!(marked["metadata"]["deletionGracePeriodSeconds"], 0);
        assert!(is_deleting(&marked) && !is_finalized(&marked));
        marked["metadata"]["finalizers"] = json!([]);
        assert!(is_finalized(&marked));
    }

    #[test]
    fn marking_keeps_the_first_time_and_counts_a_generation_once() {
        let mut obj = json!({"metadata": {"generation": 3, "finalizers": ["a.io/b"]}});
        assert!(mark_deleting(&mut obj, NOW));
        assert_eq!(obj["metadata"]["generation"], 4);
        assert!(
            !mark_deleting(&mut obj, "2026-12-07T17:00:00Z"),
            "marked again"
        );
        assert_eq!(obj["metadata"]["deletionTimestamp"], NOW);
        assert_eq!(obj["metadata"]["generation"], 4);
        // A time later than now (set before a clock stepped back) is brought to now.
        assert!(mark_deleting(&mut obj, "2026-12-07T15:00:00Z"));
        assert_eq!(obj["metadata"]["deletionTimestamp"], "2026-12-07T15:00:00Z");
        let mut uncounted = json!({"metadata": {"finalizers": ["a.io/b"]}});
        mark_deleting(&mut uncounted, NOW);
        assert!(uncounted["metadata"].get("generation").is_none());
    }

    #[test]
    fn no_new_finalizer_joins_an_object_being_deleted() {
        let old = json!({"metadata": {"finalizers": ["a.io/x"], "deletionTimestamp": NOW}});
        let same = json!({"metadata": {"finalizers": ["a.io/x"]}});
        let fewer = json!({"metadata": {"finalizers": []}});
        let more = json!({"metadata": {"finalizers": ["a.io/x", "c.io/z", "b.io/y"]}});
        assert!(new_finalizer_causes(&same, &old).is_empty());
        assert!(new_finalizer_causes(&fewer, &old).is_empty());
        let causes = new_finalizer_causes(&more, &old);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "metadata.finalizers");
        assert_eq!(
            causes[0].message,
            "Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\", \"c.io/z\"}"
        );
        let live = json!({"metadata": {"finalizers": []}});
        assert!(new_finalizer_causes(&more, &live).is_empty());
    }
}
