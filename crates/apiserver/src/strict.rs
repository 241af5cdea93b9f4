//! `fieldValidation=Strict`'s refusals, worded as kube-apiserver words them. A create or
//! update body that names a field twice (`duplicate field "data.a"` in JSON, found in the
//! bytes as sent since a decoded object keeps only the last; yaml.v2's `key "a" already set
//! in map` in YAML) or a field the kind does not have (`unknown field "spec.x"`) is a 400
//! whose message names the kind and version. A patch with either is a 422 `Invalid` of the
//! field `patch`, valued by the patched object (by the patch, as Go prints a map, for a
//! strategic merge patch).

use std::collections::HashSet;
use std::fmt;

use kubeboot_api::{Status, StatusCause};
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::body::{is_json, is_yaml, yaml_duplicate_key};
use crate::patch::PatchType;
use crate::patch::go_fmt::go_text;
use crate::registry::ResourceDef;

/// Whether a request asks for `fieldValidation=Strict`.
pub fn is_strict(q: &crate::requestinfo::Query) -> bool {
    q.get("fieldValidation").is_some_and(|v| v == "Strict")
}

/// What Strict finds wrong in a create or update body as sent (of content type `ct`).
pub fn body_errors(ct: &str, body: &[u8]) -> Vec<String> {
    if is_json(ct) {
        duplicate_fields(body)
    } else if is_yaml(ct) {
        yaml_duplicate_key(body).into_iter().collect()
    } else {
        Vec::new()
    }
}

/// What Strict finds wrong in a patch as sent: its duplicate fields, those of a JSON patch
/// prefixed `json patch`.
pub fn patch_errors(ty: PatchType, body: &[u8]) -> Vec<String> {
    let found = duplicate_fields(body);
    match ty {
        PatchType::Json => found
            .into_iter()
            .map(|e| format!("json patch {e}"))
            .collect(),
        PatchType::Merge | PatchType::Strategic | PatchType::Apply => found,
    }
}

/// The 422 for a patch Strict refuses: `patch: Invalid value: <value>: strict decoding
/// error: <errors>`, the value being the patched object's JSON (a JSON or merge patch) or
/// the patch as Go prints a map (a strategic merge patch).
pub fn patch_error(ty: PatchType, patched: &Value, patch: &[u8], errors: &[String]) -> Status {
    let value = match ty {
        PatchType::Strategic => serde_json::from_slice::<Value>(patch)
            .map(|p| go_text(&p))
            .unwrap_or_default(),
        PatchType::Json | PatchType::Merge | PatchType::Apply => patched.to_string(),
    };
    let detail = format!("strict decoding error: {}", errors.join(", "));
    Status::invalid(
        "",
        "",
        "",
        vec![StatusCause::invalid("patch", &value, &detail)],
    )
}

/// The 400 for `errors` (each already worded, e.g. `duplicate field "data.a"`).
pub fn decoding_error(def: &ResourceDef, errors: &[String]) -> Status {
    Status::bad_request(format!(
        "{kind} in version {version:?} cannot be handled as a {kind}: strict decoding error: {}",
        errors.join(", "),
        kind = def.kind,
        version = def.version,
    ))
}

/// Every field named twice in a JSON document, as `duplicate field "<path>"` with the
/// path as Kubernetes writes it (`data.a`, `spec.items[0].name`); at most 100, each once.
/// A document that is not JSON has none here: decoding it reports that.
pub fn duplicate_fields(json: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(json);
    let _ = Walk {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut de);
    found
}

/// Walks a JSON value, recording the duplicate keys of every object.
struct Walk<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

impl Walk<'_> {
    fn record(&mut self, path: &str) {
        let error = format!("duplicate field {path:?}");
        if self.found.len() < MAX_ERRORS && !self.found.contains(&error) {
            self.found.push(error);
        }
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let path = match self.path.is_empty() {
                true => key.clone(),
                false => format!("{}.{key}", self.path),
            };
            if !seen.insert(key) {
                self.record(&path);
            }
            map.next_value_seed(Walk {
                path,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        for i in 0.. {
            let item = Walk {
                path: format!("{}[{i}]", self.path),
                found: &mut *self.found,
            };
            if seq.next_element_seed(item)?.is_none() {
                break;
            }
        }
        Ok(())
    }
}

/// sigs.k8s.io/json reports at most this many.
const MAX_ERRORS: usize = 100;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patches_are_refused_as_kube_apiserver_refuses_them() {
        let dup = br#"{"data":{"a":"1","a":"2"}}"#;
        assert_eq!(
            patch_errors(PatchType::Merge, dup),
            [r#"duplicate field "data.a""#]
        );
        let ops = br#"[{"op":"add","op":"add","path":"/data/a","value":"1"}]"#;
        assert_eq!(
            patch_errors(PatchType::Json, ops),
            [r#"json patch duplicate field "[0].op""#]
        );
        let patched: Value = serde_json::json!({"data": {"a": "2"}});
        let refused = patch_error(
            PatchType::Merge,
            &patched,
            dup,
            &patch_errors(PatchType::Merge, dup),
        );
        assert_eq!(refused.code, 422);
        assert_eq!(
            refused.message,
            r#" "" is invalid: patch: Invalid value: "{\"data\":{\"a\":\"2\"}}": strict decoding error: duplicate field "data.a""#
        );
        let smp = patch_error(
            PatchType::Strategic,
            &patched,
            dup,
            &["duplicate field \"data.a\"".into()],
        );
        assert!(
            smp.message
                .contains(r#"Invalid value: "map[data:map[a:2]]""#),
            "{}",
            smp.message
        );
    }

    #[test]
    fn duplicate_fields_are_named_by_their_path() {
        for (case, body, want) in [
            ("none", r#"{"data":{"a":"1","b":"2"}}"#, vec![]),
            (
                "in a map",
                r#"{"data":{"a":"1","a":"2"}}"#,
                vec![r#"duplicate field "data.a""#],
            ),
            (
                "at the top",
                r#"{"kind":"ConfigMap","kind":"ConfigMap"}"#,
                vec![r#"duplicate field "kind""#],
            ),
            (
                "three times, once",
                r#"{"a":1,"a":2,"a":3}"#,
                vec![r#"duplicate field "a""#],
            ),
            (
                "in a list item",
                r#"{"spec":{"items":[{"n":1},{"n":1,"n":2}]}}"#,
                vec![r#"duplicate field "spec.items[1].n""#],
            ),
            (
                "same key, other objects",
                r#"{"a":{"x":1},"b":{"x":1}}"#,
                vec![],
            ),
            ("not JSON", "{", vec![]),
        ] {
            assert_eq!(duplicate_fields(body.as_bytes()), want, "{case}");
        }
    }

    #[test]
    fn at_most_100_are_reported() {
        let body = format!(
            "{{{}}}",
            (0..300)
                .map(|i| format!(r#""k{}":1"#, i % 150))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(duplicate_fields(body.as_bytes()).len(), MAX_ERRORS);
    }

    #[test]
    fn the_error_names_the_kind_and_version() {
        let def = crate::registry::by_kind(crate::registry::Kind::ConfigMap);
        let s = decoding_error(def, &[r#"duplicate field "data.a""#.to_owned()]);
        assert_eq!(s.code, 400);
        assert_eq!(
            s.message,
            r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data.a""#
        );
    }
}
