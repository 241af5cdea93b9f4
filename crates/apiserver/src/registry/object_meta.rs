//! What every object's metadata must be, whatever its kind (apimachinery's
//! `ValidateObjectMeta`): label keys qualified names and values label values, annotation
//! keys qualified names within 256 KiB in all, finalizers qualified names, owner references
//! naming their owner whole; each cause in kube-apiserver's words.

use kubeboot_api::StatusCause;
use serde_json::{Map, Value};

use crate::object::subdomain_errors;

/// All annotations of an object together, keys and values, at most (`TotalAnnotationSizeLimitB`).
const ANNOTATIONS_LIMIT: usize = 256 * 1024;

const NAME_PART_RULE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

const QUALIFIED_NAME_RULE: &str = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";

const LABEL_VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `IsQualifiedName`: `[prefix/]name`, the prefix a DNS subdomain, the name at most 63.
fn qualified_name_errors(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let (prefix, name) = match parts.as_slice() {
        [name] => (None, *name),
        [prefix, name] => (Some(*prefix), *name),
        _ => return vec![QUALIFIED_NAME_RULE.to_owned()],
    };
    let mut errors = Vec::new();
    match prefix {
        Some("") => errors.push("prefix part must be non-empty".to_owned()),
        Some(p) => errors.extend(
            subdomain_errors(p)
                .into_iter()
                .map(|e| format!("prefix part {e}")),
        ),
        None => {}
    }
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_owned());
    }
    if !name.is_empty() && !is_name_part(name) {
        errors.push(NAME_PART_RULE.to_owned());
    }
    errors
}

/// `IsValidLabelValue`: empty, or a name part of at most 63 characters.
fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".to_owned());
    }
    if !value.is_empty() && !is_name_part(value) {
        errors.push(LABEL_VALUE_RULE.to_owned());
    }
    errors
}

/// Everything wrong with `obj`'s labels, annotations and finalizers.
pub(super) fn causes(obj: &Value) -> Vec<StatusCause> {
    let meta = obj.get("metadata");
    let map = |field: &str| meta.and_then(|m| m.get(field)).and_then(Value::as_object);
    let mut causes = Vec::new();
    let invalid = |field: &str, value: &str, errors: Vec<String>| {
        errors
            .into_iter()
            .map(|e| StatusCause::invalid(field, value, &e))
            .collect::<Vec<_>>()
    };
    for (key, value) in map("labels").into_iter().flatten() {
        let field = "metadata.labels";
        causes.extend(invalid(field, key, qualified_name_errors(key)));
        let value = value.as_str().unwrap_or_default();
        causes.extend(invalid(field, value, label_value_errors(value)));
    }
    if let Some(annotations) = map("annotations") {
        causes.extend(annotation_causes(annotations));
    }
    let finalizers = meta
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array);
    for finalizer in finalizers.into_iter().flatten().filter_map(Value::as_str) {
        causes.extend(invalid(
            "metadata.finalizers",
            finalizer,
            qualified_name_errors(finalizer),
        ));
    }
    let owners = meta
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array);
    causes.extend(
        owners
            .into_iter()
            .flatten()
            .flat_map(owner_reference_causes),
    );
    causes
}

/// `validateOwnerReference`: the owner's version, kind, name and uid, none empty.
fn owner_reference_causes(owner: &Value) -> Vec<StatusCause> {
    let field = |k: &str| owner.get(k).and_then(Value::as_str).unwrap_or_default();
    let api_version = field("apiVersion");
    let version = api_version.rsplit_once('/').map_or(api_version, |(_, v)| v);
    let mut causes = Vec::new();
    if version.is_empty() {
        let path = "metadata.ownerReferences.apiVersion";
        causes.push(StatusCause::invalid(
            path,
            api_version,
            "version must not be empty",
        ));
    }
    for k in ["kind", "name", "uid"] {
        if field(k).is_empty() {
            let path = format!("metadata.ownerReferences.{k}");
            causes.push(StatusCause::invalid(&path, "", "must not be empty"));
        }
    }
    causes
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

    #[test]
    fn qualified_names() {
        for (name, want) in [
            ("app", vec![]),
            ("kubernetes.io/metadata.name", vec![]),
            ("My_Name.1", vec![]),
            ("bad key", vec![NAME_PART_RULE.to_owned()]),
            ("-a", vec![NAME_PART_RULE.to_owned()]),
            ("/a", vec!["prefix part must be non-empty".to_owned()]),
            ("a/", vec!["name part must be non-empty".to_owned()]),
            ("a/b/c", vec![QUALIFIED_NAME_RULE.to_owned()]),
            (
                "Example.com/a",
                vec![format!("prefix part {}", crate::object::SUBDOMAIN_RULE)],
            ),
            (
                &"x".repeat(64),
                vec!["name part must be no more than 63 characters".to_owned()],
            ),
        ] {
            assert_eq!(qualified_name_errors(name), want, "{name:?}");
        }
    }

    #[test]
    fn label_values() {
        for (value, ok) in [
            ("", true),
            ("v1.2_x-y", true),
            ("bad value!", false),
            ("-a", false),
        ] {
            assert_eq!(label_value_errors(value).is_empty(), ok, "{value:?}");
        }
        assert_eq!(
            label_value_errors(&"v".repeat(64)),
            ["must be no more than 63 characters"]
        );
    }

    #[test]
    fn metadata_causes_name_the_field_and_the_value() {
        let obj = json!({"metadata": {
            "labels": {"bad key": "v", "k": "bad value!", "ok": "fine"},
            "annotations": {"Example.com/Upper": "v", "a/b/c": "v"},
            "finalizers": ["kubernetes.io/pv-protection", "bad finalizer"],
        }});
        let got: Vec<String> = causes(&obj).iter().map(|c| c.message.clone()).collect();
        let starts = [
            "Invalid value: \"a/b/c\": a qualified name",
            "Invalid value: \"bad key\": name part must consist",
            "Invalid value: \"bad value!\": a valid label",
            "Invalid value: \"bad finalizer\": name part must consist",
        ];
        assert_eq!(got.len(), starts.len(), "{got:#?}");
        for want in starts {
            assert!(got.iter().any(|g| g.starts_with(want)), "{want}: {got:#?}");
        }
        let fields: Vec<String> = causes(&obj).iter().map(|c| c.field.clone()).collect();
        assert!(
            fields.iter().all(|f| f.starts_with("metadata.")),
            "{fields:?}"
        );
    }

    #[test]
    fn owner_references_name_their_owner_whole() {
        let whole = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "u"});
        assert!(owner_reference_causes(&whole).is_empty());
        let core = json!({"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "u"});
        assert!(owner_reference_causes(&core).is_empty());
        let empty = json!({"apiVersion": "apps/", "kind": "", "name": "", "uid": ""});
        let fields: Vec<String> = owner_reference_causes(&empty)
            .into_iter()
            .map(|c| c.field)
            .collect();
        let want =
            ["apiVersion", "kind", "name", "uid"].map(|k| format!("metadata.ownerReferences.{k}"));
        assert_eq!(fields, want);
    }

    #[test]
    fn annotations_are_limited_in_size_all_together() {
        let half = "v".repeat(ANNOTATIONS_LIMIT / 2);
        let fits = json!({"metadata": {"annotations": {"a": &half[1..], "b": &half[1..]}}});
        assert!(causes(&fits).is_empty());
        let over = json!({"metadata": {"annotations": {"a": half, "b": half}}});
        let got = causes(&over);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].reason, "FieldValueTooLong");
    }
}
