//! What every object's metadata must be, whatever its kind (apimachinery's
//! `ValidateObjectMeta` and `ValidateObjectMetaUpdate`, and core validation's finalizer
//! rule): label keys qualified names and values label values, annotation keys qualified
//! names within 256 KiB in all, finalizers qualified names (Kubernetes' own where they
//! have no `/`, in the core API), owner references naming their owner whole with at most
//! one controller, a generation not negative; each cause in kube-apiserver's words.

use kubeboot_api::StatusCause;
use serde_json::{Map, Value};

use super::ResourceDef;
use kubeboot_api::names::{label_value_errors, qualified_name_errors};

/// All annotations of an object together, keys and values, at most (`TotalAnnotationSizeLimitB`).
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// Everything wrong with `obj`'s metadata, on a create (`old` none) or an update of `old`.
pub(super) fn causes(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let meta = obj.get("metadata");
    let map = |field: &str| meta.and_then(|m| m.get(field)).and_then(Value::as_object);
    let mut causes = Vec::new();
    for (key, value) in map("labels").into_iter().flatten() {
        let field = "metadata.labels";
        causes.extend(invalid(field, key, qualified_name_errors(key)));
        let value = value.as_str().unwrap_or_default();
        causes.extend(invalid(field, value, label_value_errors(value)));
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
    let finalizers: Vec<&str> = meta
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if old.is_none() {
        causes.extend(finalizers_causes(&finalizers));
    }
    if is_core_validated(def) {
        causes.extend(kube_finalizer_causes(&finalizers));
    }
    causes
}

/// One `Invalid value` cause for each error found in `value`.
fn invalid(field: &str, value: &str, errors: Vec<String>) -> Vec<StatusCause> {
    errors
        .into_iter()
        .map(|e| StatusCause::invalid(field, value, &e))
        .collect()
}

/// The finalizers no kind may have (`ValidateFinalizers`, on a create): each a qualified
/// name, and not both the orphaning and the foreground deletion of dependents.
fn finalizers_causes(finalizers: &[&str]) -> Vec<StatusCause> {
    let field = "metadata.finalizers";
    let mut causes: Vec<StatusCause> = finalizers
        .iter()
        .flat_map(|f| invalid(field, f, qualified_name_errors(f)))
        .collect();
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        causes.push(StatusCause::invalid_rendered(
            field,
            &serde_json::to_string(finalizers).unwrap_or_default(),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    causes
}

/// Whether the kind is one of Kubernetes' core API (`pkg/apis/core`, the Events of
/// events.k8s.io included), whose metadata is held to core validation's extra rule on
/// finalizer names.
fn is_core_validated(def: &ResourceDef) -> bool {
    def.group.is_empty() || def.group == "events.k8s.io"
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

/// `ValidateOwnerReferences`: each reference whole, none to an owner that may not own,
/// and at most one the controller.
fn owner_references_causes(owners: &[Value]) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let mut first_controller: Option<String> = None;
    for (i, owner) in owners.iter().enumerate() {
        causes.extend(owner_reference_causes(
            owner,
            &format!("metadata.ownerReferences[{i}]"),
        ));
        if owner.get("controller").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let field = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or_default();
        let this = format!("{}/{}", field("kind"), field("name"));
        match &first_controller {
            None => first_controller = Some(this),
            Some(first) => causes.push(StatusCause::invalid_rendered(
                "metadata.ownerReferences",
                &owner_references_json(owners),
                &format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
            )),
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
    let group_version = parse_group_version(api_version);
    if api_version.is_empty() {
        causes.push(StatusCause::required(
            &format!("{path}.apiVersion"),
            "must not be empty",
        ));
    } else if group_version.is_none_or(|(_, version)| version.is_empty()) {
        causes.push(StatusCause::invalid(
            &format!("{path}.apiVersion"),
            api_version,
            "must be <group>/<version> or <version>",
        ));
    }
    for k in ["kind", "name", "uid"] {
        if field(k).is_empty() {
            causes.push(StatusCause::required(
                &format!("{path}.{k}"),
                "must not be empty",
            ));
        }
    }
    if group_version == Some(("", "v1")) && field("kind") == "Event" {
        causes.push(StatusCause::invalid_rendered(
            path,
            &printed_owner(owner),
            "/v1, Kind=Event is disallowed from being an owner",
        ));
    }
    causes
}

/// apimachinery's `ParseGroupVersion`: `<group>/<version>` or `<version>`; none for more
/// than one `/`.
fn parse_group_version(api_version: &str) -> Option<(&str, &str)> {
    match api_version.split('/').count() {
        1 => Some(("", api_version)),
        2 => api_version.split_once('/'),
        _ => None,
    }
}

/// Owner references as kube-apiserver prints them in a cause: JSON.
fn owner_references_json(owners: &[Value]) -> String {
    let printed: Vec<String> = owners.iter().map(printed_owner).collect();
    format!("[{}]", printed.join(","))
}

/// An owner reference as JSON in the order of its Go type's fields, the optional ones if
/// set.
fn printed_owner(owner: &Value) -> String {
    let empty = Value::from("");
    let fields = ["apiVersion", "kind", "name", "uid"]
        .map(|k| (k, Some(owner.get(k).unwrap_or(&empty))))
        .into_iter()
        .chain(
            ["controller", "blockOwnerDeletion"]
                .map(|k| (k, owner.get(k).filter(|v| !v.is_null()))),
        );
    let printed: Vec<String> = fields
        .filter_map(|(k, v)| Some(format!("{k:?}:{}", v?)))
        .collect();
    format!("{{{}}}", printed.join(","))
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

    fn def(group: &str, plural: &str) -> &'static ResourceDef {
        super::super::find(group, "v1", plural).unwrap()
    }

    fn messages(causes: &[StatusCause]) -> Vec<String> {
        causes
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect()
    }

    #[test]
    fn metadata_causes_name_the_field_and_the_value() {
        let obj = json!({"metadata": {
            "labels": {"bad key": "v", "k": "bad value!", "ok": "fine"},
            "annotations": {"Example.com/Upper": "v", "a/b/c": "v"},
            "finalizers": ["kubernetes.io/pv-protection", "bad finalizer"],
        }});
        let got = messages(&causes(def("", "configmaps"), &obj, None));
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
    fn finalizers_on_create_and_on_update() {
        let obj = |f: Value| json!({"metadata": {"finalizers": f}});
        let (cms, roles) = (
            def("", "configmaps"),
            def("rbac.authorization.k8s.io", "roles"),
        );
        let standard = obj(json!(["kubernetes", "orphan", "example.com/x"]));
        assert!(causes(cms, &standard, None).is_empty());
        // Core validation's rule, on create and update; not for other groups' kinds.
        let bare = obj(json!(["example.com/x", "mine"]));
        for old in [None, Some(&standard)] {
            assert_eq!(
                messages(&causes(cms, &bare, old)),
                [
                    "metadata.finalizers[1]: Invalid value: \"mine\": name is neither a standard finalizer name nor is it fully qualified"
                ]
            );
        }
        assert!(causes(roles, &bare, None).is_empty());
        // Both ways of deleting dependents at once, refused on create only.
        let both = obj(json!(["orphan", "foregroundDeletion"]));
        assert_eq!(
            messages(&causes(roles, &both, None)),
            [
                "metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set"
            ]
        );
        assert!(causes(roles, &both, Some(&standard)).is_empty());
        let negative = json!({"metadata": {"generation": -2}});
        assert_eq!(
            messages(&causes(cms, &negative, None)),
            ["metadata.generation: Invalid value: -2: must be greater than or equal to 0"]
        );
    }

    #[test]
    fn owner_references_name_their_owner_whole() {
        let at = "metadata.ownerReferences[0]";
        let whole = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u"});
        assert!(owner_reference_causes(&whole, at).is_empty());
        let core = json!({"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u"});
        assert!(owner_reference_causes(&core, at).is_empty());
        let empty = json!({"apiVersion": "", "kind": "", "name": "", "uid": ""});
        let want = ["apiVersion", "kind", "name", "uid"]
            .map(|k| format!("{at}.{k}: Required value: must not be empty"));
        assert_eq!(messages(&owner_reference_causes(&empty, at)), want);
        for bad in ["apps/", "a/b/c"] {
            let owner = json!({"apiVersion": bad, "kind": "K", "name": "n", "uid": "u"});
            assert_eq!(
                messages(&owner_reference_causes(&owner, at)),
                [format!(
                    "{at}.apiVersion: Invalid value: {bad:?}: must be <group>/<version> or <version>"
                )]
            );
        }
        let event = json!({"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u", "controller": true});
        assert_eq!(
            messages(&owner_reference_causes(&event, at)),
            [format!(
                "{at}: Invalid value: {{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"name\":\"e\",\"uid\":\"u\",\"controller\":true}}: /v1, Kind=Event is disallowed from being an owner"
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
        let got = messages(&owner_references_causes(&three));
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got[0].starts_with("metadata.ownerReferences: Invalid value: [{\"apiVersion\":\"v1\""),
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
    fn annotations_are_limited_in_size_all_together() {
        let half = "v".repeat(ANNOTATIONS_LIMIT / 2);
        let fits = json!({"metadata": {"annotations": {"a": &half[1..], "b": &half[1..]}}});
        let cms = def("", "configmaps");
        assert!(causes(cms, &fits, None).is_empty());
        let over = json!({"metadata": {"annotations": {"a": half, "b": half}}});
        let got = causes(cms, &over, None);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].reason, "FieldValueTooLong");
    }
}
