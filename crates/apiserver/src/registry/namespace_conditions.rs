//! The conditions kube-controller-manager's namespace deleter keeps on a namespace being
//! deleted (`pkg/controller/namespace/deletion/status_condition_utils.go`): after each pass
//! over its contents, five conditions say what is left — content held by finalizers
//! (`NamespaceContentRemaining`, `NamespaceFinalizersRemaining`) — or that all is well, so
//! `kubectl describe namespace` shows why a namespace stays Terminating.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// What a pass over a namespace's contents left behind.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Remaining {
    /// Objects left, by `<resource>.<group>` (`configmaps.` for the core group).
    pub by_resource: BTreeMap<String, usize>,
    /// Objects left, by each finalizer they still carry.
    pub by_finalizer: BTreeMap<String, usize>,
}

impl Remaining {
    /// Counts an object of `resource` (in `group`) left with `finalizers`.
    pub fn add(&mut self, resource: &str, group: &str, finalizers: &[&str]) {
        *self
            .by_resource
            .entry(format!("{resource}.{group}"))
            .or_default() += 1;
        for f in finalizers {
            *self.by_finalizer.entry((*f).to_owned()).or_default() += 1;
        }
    }

    /// How many objects are left.
    pub fn total(&self) -> usize {
        self.by_resource.values().sum()
    }
}

/// The condition types the deleter keeps, in the order it adds them, each with the reason
/// and message of its "nothing wrong" form.
const CONDITIONS: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// The namespace's conditions after a pass that left `remaining`, at `now` (RFC 3339),
/// merged into `existing` as `updateConditions` merges them (a condition whose status does
/// not change keeps its transition time); `None` when nothing changes.
pub fn after_pass(existing: &[Value], remaining: &Remaining, now: &str) -> Option<Vec<Value>> {
    let failing = |ty: &str| -> Option<(&'static str, String)> {
        let listed = |counts: &BTreeMap<String, usize>, how: &str| {
            counts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(what, n)| format!("{what} {how} {n} resource instances"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match ty {
            "NamespaceContentRemaining" if !remaining.by_resource.is_empty() => Some((
                "SomeResourcesRemain",
                format!(
                    "Some resources are remaining: {}",
                    listed(&remaining.by_resource, "has")
                ),
            )),
            "NamespaceFinalizersRemaining" if !remaining.by_finalizer.is_empty() => Some((
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    listed(&remaining.by_finalizer, "in")
                ),
            )),
            _ => None,
        }
    };
    let mut out = existing.to_vec();
    let mut changed = false;
    for (ty, ok_reason, ok_message) in CONDITIONS {
        let (status, reason, message) = match failing(ty) {
            Some((reason, message)) => ("True", reason, message),
            None => ("False", ok_reason, ok_message.to_owned()),
        };
        let wanted = json!({"type": ty, "status": status, "lastTransitionTime": now, "reason": reason, "message": message});
        match out.iter_mut().find(|c| c["type"] == ty) {
            None => out.push(wanted),
            Some(c)
                if c["status"] == status
                    && c["reason"] == reason
                    && c["message"] == message.as_str() =>
            {
                continue;
            }
            Some(c) => {
                let time = match c["status"] == status {
                    true => c["lastTransitionTime"].clone(),
                    false => json!(now),
                };
                *c = wanted;
                c["lastTransitionTime"] = time;
            }
        }
        changed = true;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2026-12-08T00:00:00Z";
    const T1: &str = "2026-12-08T00:01:00Z";

    fn held() -> Remaining {
        let mut left = Remaining::default();
        left.add("configmaps", "", &["example.com/block"]);
        left.add(
            "roles",
            "rbac.authorization.k8s.io",
            &["example.com/block", "x/y"],
        );
        left
    }

    #[test]
    fn a_pass_says_what_is_left_in_the_deleters_words() {
        let conditions = after_pass(&[], &held(), T0).expect("first pass");
        let of = |ty: &str| {
            conditions
                .iter()
                .find(|c| c["type"] == ty)
                .cloned()
                .unwrap()
        };
        assert_eq!(conditions.len(), 5);
        assert_eq!(conditions[0]["type"], "NamespaceDeletionDiscoveryFailure");
        assert_eq!(
            of("NamespaceContentRemaining"),
            json!({"type": "NamespaceContentRemaining", "status": "True", "lastTransitionTime": T0, "reason": "SomeResourcesRemain",
                   "message": "Some resources are remaining: configmaps. has 1 resource instances, roles.rbac.authorization.k8s.io has 1 resource instances"})
        );
        assert_eq!(
            of("NamespaceFinalizersRemaining")["message"],
            "Some content in the namespace has finalizers remaining: example.com/block in 2 resource instances, x/y in 1 resource instances"
        );
        assert_eq!(
            of("NamespaceDeletionContentFailure"),
            json!({"type": "NamespaceDeletionContentFailure", "status": "False", "lastTransitionTime": T0, "reason": "ContentDeleted",
                   "message": "All content successfully deleted, may be waiting on finalization"})
        );
        assert_eq!(
            after_pass(&conditions, &held(), T1),
            None,
            "the same pass changes nothing"
        );
        // Once the content is gone the two turn False, at the time they did.
        let after = after_pass(&conditions, &Remaining::default(), T1).expect("changed");
        let remaining = after
            .iter()
            .find(|c| c["type"] == "NamespaceContentRemaining")
            .unwrap();
        assert_eq!(
            (
                remaining["status"].as_str(),
                remaining["lastTransitionTime"].as_str()
            ),
            (Some("False"), Some(T1))
        );
        let discovery = &after[0];
        assert_eq!(discovery["lastTransitionTime"], T0);
    }
}
