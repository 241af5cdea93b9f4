//! What every object's metadata must be, whatever its kind (apimachinery's
//! `ValidateObjectMeta` and `ValidateObjectMetaUpdate`, and core validation's finalizer
//! rule): label keys qualified names and values label values, annotation keys qualified
//! names within 256 KiB in all, finalizers qualified names (Kubernetes' own where they
//! have no `/`, in the core API), owner references naming their owner whole with at most
//! one controller, a generation not negative; each cause in kube-apiserver's words.

use kubeboot_api::StatusCause;
use serde_json::{Map, Value};

use super::label_selector::{invalid, labels_causes};
use super::{ResourceDef, parse_group_version};
use kubeboot_api::names::qualified_name_errors;

/// All annotations of an object together, keys and values, at most (`TotalAnnotationSizeLimitB`).
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// Everything wrong with `obj`'s metadata, on a create or an update.
pub(super) fn causes(def: &ResourceDef, obj: &Value) -> Vec<StatusCause> {
    let meta = obj.get("metadata");
    let map = |field: &str| meta.and_then(|m| m.get(field)).and_then(Value::as_object);
    let mut causes = Vec::new();
    if let Some(labels) = map("labels") {
        causes.extend(labels_causes(labels, "metadata.labels"));
    }
    if let Some(annotations) = map("annotations") {
        causes.extend(annotation_causes(annotations));
    }
    if let Some(generation) = meta
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .filter(|g| *g < 0)
    {
        causes.push(StatusCause::invalid_rendered(
            "metadata.generation",
            &generation.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    let owners = meta
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array);
    causes.extend(owner_references_causes(owners.map_or(&[], Vec::as_slice)));
    let finalizers = super::deletion::finalizers(obj);
    // Kubernetes' kinds validate an update as a create too (`ValidateConfigMapUpdate` calls
    // `ValidateConfigMap`), so the finalizers are held to this on every write.
    causes.extend(finalizers_causes(&finalizers));
    if is_core_validated(def) {
        causes.extend(kube_finalizer_causes(&finalizers));
    }
    causes
}

/// What an update may not change of the metadata (`ValidateObjectMetaUpdate`): the uid.
/// (The name, namespace, creation and deletion times are the server's, carried over.)
pub(super) fn update_causes(new: &Value, old: &Value) -> Vec<StatusCause> {
    let uid = |o: &Value| {
        o.pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let (new_uid, old_uid) = (uid(new), uid(old));
    if new_uid == old_uid {
        return Vec::new();
    }
    vec![StatusCause::invalid(
        "metadata.uid",
        &new_uid,
        "field is immutable",
    )]
}

/// The finalizers no kind may have (`ValidateFinalizers`): each a qualified name, and not
/// both the orphaning and the foreground deletion of dependents.
fn finalizers_causes(finalizers: &[&str]) -> Vec<StatusCause> {
    let field = "metadata.finalizers";
    let mut causes: Vec<StatusCause> = finalizers
        .iter()
        .flat_map(|f| invalid(field, f, qualified_name_errors(f)))
        .collect();
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        causes.push(StatusCause::invalid_strings(
            field,
            finalizers,
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    causes
}

/// Whether the kind's metadata is validated by core validation's `ValidateObjectMeta`,
/// with its extra rule on finalizer names: every kind served here but the Lease, whose
/// validation calls apimachinery's directly.
fn is_core_validated(def: &ResourceDef) -> bool {
    def.group != "coordination.k8s.io"
}

/// Core validation's `validateKubeFinalizerName`, on a create and an update: a finalizer
/// without a `/` is one of Kubernetes' own.
fn kube_finalizer_causes(finalizers: &[&str]) -> Vec<StatusCause> {
    const STANDARD: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];
    finalizers
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.contains('/') && !STANDARD.contains(f))
        .map(|(i, f)| {
            StatusCause::invalid(
                &format!("metadata.finalizers[{i}]"),
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            )
        })
        .collect()
}

/// `ValidateOwnerReferences` (apimachinery 0.33): each reference whole, none to an owner
/// that may not own, and at most one the controller.
fn owner_references_causes(owners: &[Value]) -> Vec<StatusCause> {
    let path = "metadata.ownerReferences";
    let mut causes = Vec::new();
    let mut first_controller: Option<String> = None;
    for owner in owners {
        causes.extend(owner_reference_causes(owner, path));
        if owner.get("controller").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let field = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or_default();
        let this = format!("{}/{}", field("kind"), field("name"));
        match &first_controller {
            None => first_controller = Some(this),
            Some(first) => {
                let printed: Vec<String> = owners.iter().map(printed_owner).collect();
                causes.push(StatusCause::invalid_rendered(
                    path,
                    &format!("[]v1.OwnerReference{{{}}}", printed.join(", ")),
                    &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
                ));
            }
        }
    }
    causes
}

/// `validateOwnerReference`: the owner's version, kind, name and uid, none empty, and not
/// an Event (apimachinery's `BannedOwners`).
fn owner_reference_causes(owner: &Value, path: &str) -> Vec<StatusCause> {
    let field = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or_default();
    let api_version = field("apiVersion");
    let mut causes = Vec::new();
    // `FromAPIVersionAndKind`: an apiVersion that does not parse has no version.
    let version = parse_group_version(api_version).map_or("", |(_, v)| v);
    if version.is_empty() {
        let at = format!("{path}.apiVersion");
        causes.push(StatusCause::invalid(
            &at,
            api_version,
            "version must not be empty",
        ));
    }
    for k in ["kind", "name", "uid"] {
        if field(k).is_empty() {
            let at = format!("{path}.{k}");
            causes.push(StatusCause::invalid(
                &at,
                "",
                &format!("{k} must not be empty"),
            ));
        }
    }
    if parse_group_version(api_version) == Some(("", "v1")) && field("kind") == "Event" {
        causes.push(StatusCause::invalid_rendered(
            path,
            &printed_owner(owner),
            "/v1, Kind=Event is disallowed from being an owner",
        ));
    }
    causes
}

/// An owner reference as Go's `%#v` prints a `v1.OwnerReference`, as kube-apiserver 1.33
/// prints it in a cause; where Go prints the address of a set `controller` or
/// `blockOwnerDeletion`, which no one can reproduce, the value stands.
fn printed_owner(owner: &Value) -> String {
    let text = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or_default();
    let flag = |k: &str| match owner.get(k).and_then(Value::as_bool) {
        Some(b) => format!("(*bool)({b})"),
        None => "(*bool)(nil)".to_owned(),
    };
    format!(
        "v1.OwnerReference{{APIVersion:{:?}, Kind:{:?}, Name:{:?}, UID:{:?}, Controller:{}, BlockOwnerDeletion:{}}}",
        text("apiVersion"),
        text("kind"),
        text("name"),
        text("uid"),
        flag("controller"),
        flag("blockOwnerDeletion")
    )
}

/// `ValidateAnnotations`: each key a qualified name once lowercased, and all of them
/// together within [`ANNOTATIONS_LIMIT`].
fn annotation_causes(annotations: &Map<String, Value>) -> Vec<StatusCause> {
    let field = "metadata.annotations";
    let mut causes: Vec<StatusCause> = annotations
        .keys()
        .flat_map(|key| {
            qualified_name_errors(&key.to_lowercase())
                .into_iter()
                .map(move |e| StatusCause::invalid(field, key, &e))
        })
        .collect();
    let size: usize = annotations
        .iter()
        .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
        .sum();
    if size > ANNOTATIONS_LIMIT {
        causes.push(StatusCause::new(
            "FieldValueTooLong",
            field,
            format!("Too long: may not be more than {ANNOTATIONS_LIMIT} bytes"),
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::messages;

    fn def(group: &str, plural: &str) -> &'static ResourceDef {
        super::super::find(group, "v1", plural).unwrap()
    }

    #[test]
    fn metadata_causes_name_the_field_and_the_value() {
        let obj = json!({"metadata": {
            "labels": {"bad key": "v", "k": "bad value!", "ok": "fine"},
            "annotations": {"Example.com/Upper": "v", "a/b/c": "v"},
            "finalizers": ["kubernetes.io/pv-protection", "bad finalizer"],
        }});
        let got = messages(causes(def("", "configmaps"), &obj));
        let starts = [
            "metadata.annotations: Invalid value: \"a/b/c\": a qualified name",
            "metadata.labels: Invalid value: \"bad key\": name part must consist",
            "metadata.labels: Invalid value: \"bad value!\": a valid label",
            "metadata.finalizers: Invalid value: \"bad finalizer\": name part must consist",
            "metadata.finalizers[1]: Invalid value: \"bad finalizer\": name is neither a standard finalizer name nor is it fully qualified",
        ];
        assert_eq!(got.len(), starts.len(), "{got:#?}");
        for want in starts {
            assert!(got.iter().any(|g| g.starts_with(want)), "{want}: {got:#?}");
        }
    }

    #[test]
    fn finalizers_on_every_write() {
        let obj = |f: Value| json!({"metadata": {"finalizers": f}});
        let (cms, roles, leases) = (
            def("", "configmaps"),
            def("rbac.authorization.k8s.io", "roles"),
            def("coordination.k8s.io", "leases"),
        );
        let standard = obj(json!(["kubernetes", "orphan", "example.com/x"]));
        assert!(causes(cms, &standard).is_empty());
        // Core validation's rule, for every kind but the Lease.
        let bare = obj(json!(["example.com/x", "mine"]));
        for kind in [cms, roles] {
            assert_eq!(
                messages(causes(kind, &bare)),
                [
                    "metadata.finalizers[1]: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"
                ]
            );
        }
        assert!(causes(leases, &bare).is_empty());
        let both = obj(json!(["orphan", "foregroundDeletion"]));
        assert_eq!(
            messages(causes(leases, &both)),
            [
                "metadata.finalizers: Invalid value: []string{\"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set"
            ]
        );
        let negative = json!({"metadata": {"generation": -2}});
        assert_eq!(
            messages(causes(cms, &negative)),
            ["metadata.generation: Invalid value: -2: must be greater than or equal to 0"]
        );
    }

    #[test]
    fn owner_references_name_their_owner_whole() {
        let at = "metadata.ownerReferences";
        let whole = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u"});
        assert!(owner_reference_causes(&whole, at).is_empty());
        let core = json!({"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u"});
        assert!(owner_reference_causes(&core, at).is_empty());
        let empty = json!({"apiVersion": "", "kind": "", "name": "", "uid": ""});
        assert_eq!(
            messages(owner_reference_causes(&empty, at)),
            [
                format!("{at}.apiVersion: Invalid value: \"\": version must not be empty"),
                format!("{at}.kind: Invalid value: \"\": kind must not be empty"),
                format!("{at}.name: Invalid value: \"\": name must not be empty"),
                format!("{at}.uid: Invalid value: \"\": uid must not be empty"),
            ]
        );
        for bad in ["apps/", "a/b/c"] {
            let owner = json!({"apiVersion": bad, "kind": "K", "name": "n", "uid": "u"});
            assert_eq!(
                messages(owner_reference_causes(&owner, at)),
                [format!(
                    "{at}.apiVersion: Invalid value: {bad:?}: version must not be empty"
                )]
            );
        }
        let event = json!({"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"});
        assert_eq!(
            messages(owner_reference_causes(&event, at)),
            [format!(
                "{at}: Invalid value: v1.OwnerReference{{APIVersion:\"v1\", Kind:\"Event\", Name:\"e\", UID:\"u\", Controller:(*bool)(nil), BlockOwnerDeletion:(*bool)(nil)}}: /v1, Kind=Event is disallowed from being an owner"
            )]
        );
        let events_v1 =
            json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "name": "e", "uid": "u"});
        assert!(owner_reference_causes(&events_v1, at).is_empty());
    }

    #[test]
    fn one_owner_reference_at_most_is_the_controller() {
        let owner = |name: &str, controller: Value| json!({"apiVersion": "v1", "kind": "Node", "name": name, "uid": name, "controller": controller});
        let one = [
            owner("a", json!(true)),
            owner("b", json!(false)),
            owner("c", Value::Null),
        ];
        assert!(owner_references_causes(&one).is_empty());
        let three = [
            owner("a", json!(true)),
            owner("b", json!(true)),
            owner("c", json!(true)),
        ];
        let got = messages(owner_references_causes(&three));
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].starts_with("metadata.ownerReferences: Invalid value: []v1.OwnerReference{v1.OwnerReference{APIVersion:\"v1\", Kind:\"Node\", Name:\"a\", UID:\"a\", Controller:(*bool)(true), BlockOwnerDeletion:(*bool)(nil)}, "),
            "{got:#?}"
        );
        assert!(
            got[0].ends_with("Found \"true\" in references for Node/a and Node/b"),
            "{got:#?}"
        );
        assert!(
            got[1].ends_with("Found \"true\" in references for Node/a and Node/c"),
            "{got:#?}"
        );
    }

    #[test]
    fn an_update_keeps_the_uid() {
        let cm = |uid: &str| json!({"metadata": {"name": "a", "uid": uid}});
        assert!(update_causes(&cm("u1"), &cm("u1")).is_empty());
        assert_eq!(
            messages(update_causes(&cm("u2"), &cm("u1"))),
            ["metadata.uid: Invalid value: \"u2\": field is immutable"]
        );
    }

    #[test]
    fn annotations_are_limited_in_size_all_together() {
        let half = "v".repeat(ANNOTATIONS_LIMIT / 2);
        let fits = json!({"metadata": {"annotations": {"a": &half[1..], "b": &half[1..]}}});
        let cms = def("", "configmaps");
        assert!(causes(cms, &fits).is_empty());
        let over = json!({"metadata": {"annotations": {"a": half, "b": half}}});
        let got = causes(cms, &over);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].reason, "FieldValueTooLong");
    }
}
