//! What ConfigMaps and Secrets share (`ValidateConfigMap`, `ValidateSecret` and their
//! updates): keys that can name a file (`IsConfigMapKey`), values of at most 1 MiB in all,
//! and `immutable`, which once set stays set and keeps the object's data as it is.

use kubeboot_api::StatusCause;
use serde_json::Value;

const IMMUTABLE: &str = "field is immutable when `immutable` is set";

/// The most bytes a ConfigMap's or a Secret's values may hold together (`MaxSecretSize`).
pub(super) const MAX_SIZE: usize = 1024 * 1024;

/// The values' bytes over [`MAX_SIZE`]: a cause at `field` (`data` for a Secret, `[]`, the
/// whole object, for a ConfigMap).
pub(super) fn size_causes(total: usize, field: &str) -> Vec<StatusCause> {
    if total <= MAX_SIZE {
        return Vec::new();
    }
    vec![StatusCause::too_long(field, MAX_SIZE)]
}

/// What `IsConfigMapKey` says of a key of a ConfigMap's or a Secret's data: its length,
/// its characters, and no `.`, `..` or `..` prefix (which would name a directory of the
/// volume it is mounted in).
fn config_key_errors(key: &str) -> Vec<&'static str> {
    let mut errors = Vec::new();
    if key.len() > 253 {
        errors.push("must be no more than 253 characters");
    }
    let charset = |b: u8| b.is_ascii_alphanumeric() || b"-._".contains(&b);
    if key.is_empty() || !key.bytes().all(charset) {
        errors.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')");
    }
    match key {
        "." => errors.push("must not be '.'"),
        ".." => errors.push("must not be '..'"),
        _ if key.starts_with("..") => errors.push("must not start with '..'"),
        _ => {}
    }
    errors
}

/// What is wrong with the keys of the map at `field` (`data`, `binaryData`).
pub(super) fn key_causes(obj: &Value, field: &str) -> Vec<StatusCause> {
    entries(obj, field)
        .flat_map(|key| {
            config_key_errors(key)
                .into_iter()
                .map(move |e| StatusCause::invalid(&format!("{field}[{key}]"), key, e))
        })
        .collect()
}

fn entries<'a>(obj: &'a Value, field: &str) -> impl Iterator<Item = &'a String> {
    obj.get(field)
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|m| m.keys())
}

/// An update of an object that was made immutable: `immutable` may not be unset, nor any
/// of `fields` changed.
pub(super) fn immutable_causes(obj: &Value, old: &Value, fields: &[&str]) -> Vec<StatusCause> {
    let immutable = |o: &Value| o.get("immutable").and_then(Value::as_bool) == Some(true);
    if !immutable(old) {
        return Vec::new();
    }
    let mut causes = Vec::new();
    if !immutable(obj) {
        causes.push(StatusCause::forbidden("immutable", IMMUTABLE));
    }
    for field in fields {
        if obj.get(field) != old.get(field) {
            causes.push(StatusCause::forbidden(field, IMMUTABLE));
        }
    }
    causes
}

/// A ConfigMap's key present in both `data` and `binaryData`.
pub(super) fn duplicate_key_causes(obj: &Value) -> Vec<StatusCause> {
    let data = obj.get("data").and_then(Value::as_object);
    entries(obj, "binaryData")
        .filter(|key| data.is_some_and(|d| d.contains_key(*key)))
        .map(|key| StatusCause::invalid("binaryData", key, "duplicate of key present in data"))
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(causes: &[StatusCause]) -> Vec<String> {
        causes.iter().map(|c| c.field.clone()).collect()
    }

    #[test]
    fn config_keys() {
        for (key, ok) in [
            ("a", true),
            ("a.b-c_D9", true),
            (".hidden", true),
            ("", false),
            ("a b", false),
            ("a/b", false),
            ("é", false),
            (".", false),
            ("..", false),
            ("..a", false),
            ("a..", true),
            (&"a".repeat(253), true),
            (&"a".repeat(254), false),
        ] {
            assert_eq!(config_key_errors(key).is_empty(), ok, "{key:?}");
        }
        let cm = json!({"data": {"ok": "1", "a b": "2"}, "binaryData": {"c/d": "AA=="}});
        assert_eq!(fields(&key_causes(&cm, "data")), ["data[a b]"]);
        assert_eq!(fields(&key_causes(&cm, "binaryData")), ["binaryData[c/d]"]);
        let dots = json!({"data": {"..": "x"}});
        assert_eq!(
            key_causes(&dots, "data")[0].message,
            r#"Invalid value: "..": must not be '..'"#
        );
    }

    #[test]
    fn an_immutable_object_keeps_its_data_and_stays_immutable() {
        let old = json!({"immutable": true, "data": {"a": "b"}});
        let data = &["data", "binaryData"];
        for (case, new, want) in [
            (
                "unchanged",
                json!({"immutable": true, "data": {"a": "b"}}),
                vec![],
            ),
            (
                "data changed",
                json!({"immutable": true, "data": {"a": "c"}}),
                vec!["data"],
            ),
            (
                "binaryData added",
                json!({"immutable": true, "data": {"a": "b"}, "binaryData": {"x": "AA=="}}),
                vec!["binaryData"],
            ),
            (
                "unset",
                json!({"immutable": false, "data": {"a": "b"}}),
                vec!["immutable"],
            ),
            ("dropped", json!({"data": {"a": "b"}}), vec!["immutable"]),
        ] {
            assert_eq!(fields(&immutable_causes(&new, &old, data)), want, "{case}");
        }
        let mutable = json!({"immutable": false, "data": {"a": "b"}});
        let changed = json!({"data": {"a": "c"}});
        assert!(immutable_causes(&changed, &mutable, data).is_empty());
    }

    #[test]
    fn a_key_in_data_and_binary_data() {
        let cm = json!({"data": {"a": "1", "b": "2"}, "binaryData": {"b": "AA==", "c": "AA=="}});
        let causes = duplicate_key_causes(&cm);
        assert_eq!(fields(&causes), ["binaryData"]);
        assert!(
            causes[0]
                .message
                .contains("duplicate of key present in data")
        );
    }
}
