//! The three patch formats kubectl sends: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902), and strategic merge patch for the kinds this server stores.

use kubeboot_api::Status;
use serde_json::{Map, Value};

/// A patch's format, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
}

impl PatchType {
    /// The format of a `Content-Type`, or `None` if it is not a supported patch type.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            _ => None,
        }
    }
}

/// Applies a patch to an object.
pub fn apply(original: &Value, patch_body: &[u8], ty: PatchType) -> Result<Value, Status> {
    let bad = |e: &dyn std::fmt::Display| {
        Status::bad_request(format!(
            "the body of the request was not a valid patch: {e}"
        ))
    };
    let patch: Value = serde_json::from_slice(patch_body).map_err(|e| bad(&e))?;
    let mut out = original.clone();
    match ty {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(bad(&"a merge patch must be a JSON object"));
            }
            json_patch::merge(&mut out, &patch);
        }
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_value(patch).map_err(|e| bad(&e))?;
            if p.0.len() > MAX_JSON_PATCH_OPS {
                return Err(Status::too_large(format!(
                    "the JSON patch has more than {MAX_JSON_PATCH_OPS} operations"
                )));
            }
            // Applied one operation at a time so that copies cannot grow the object past
            // the size a request may have.
            for op in p.0 {
                let grows = matches!(
                    op,
                    json_patch::PatchOperation::Copy(_) | json_patch::PatchOperation::Add(_)
                );
                json_patch::patch(&mut out, &[op]).map_err(|e| {
                    Status::failure(
                        422,
                        "Invalid",
                        format!(
                            "the server rejected our request due to an error in our request: {e}"
                        ),
                    )
                })?;
                if grows
                    && serde_json::to_vec(&out).map_or(usize::MAX, |v| v.len())
                        > crate::http::MAX_BODY
                {
                    return Err(Status::too_large(
                        "the JSON patch makes the object larger than 3 MiB",
                    ));
                }
            }
        }
        PatchType::Strategic => {
            if !patch.is_object() {
                return Err(bad(&"a strategic merge patch must be a JSON object"));
            }
            strategic_merge(&mut out, &patch);
        }
    }
    Ok(out)
}

/// The most operations a JSON patch may have (Kubernetes' limit).
const MAX_JSON_PATCH_OPS: usize = 10_000;

/// The merge key of a list field, by field name, for the kinds served here.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "conditions" | "addresses" => Some("type"),
        "taints" => Some("key"),
        "ownerReferences" => Some("uid"),
        _ => None,
    }
}

/// Primitive lists whose patch strategy is `merge` (union).
fn is_merge_primitive_list(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch in place.
pub fn strategic_merge(original: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *original = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        *original = strip_directives(patch);
        return;
    }
    if !original.is_object() {
        *original = Value::Object(Map::new());
    }
    let o = original.as_object_mut().expect("made an object above");
    for (k, v) in p {
        if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(list)), Value::Array(remove)) = (o.get_mut(field), v) {
                list.retain(|x| !remove.contains(x));
            }
            continue;
        }
        if k.starts_with('$') {
            continue; // $setElementOrder/..., $retainKeys: ordering hints only
        }
        match v {
            Value::Null => {
                o.remove(k);
            }
            Value::Object(_) => {
                if v.get("$patch").and_then(Value::as_str) == Some("delete") {
                    o.remove(k);
                } else {
                    strategic_merge(o.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
            Value::Array(items) => match (merge_key(k), o.get_mut(k)) {
                (Some(key), Some(Value::Array(existing))) => merge_keyed_list(existing, items, key),
                (None, Some(Value::Array(existing))) if is_merge_primitive_list(k) => {
                    for item in items {
                        if !existing.contains(item) {
                            existing.push(item.clone());
                        }
                    }
                }
                _ => {
                    let cleaned: Vec<Value> = items
                        .iter()
                        .filter(|i| i.get("$patch").and_then(Value::as_str) != Some("delete"))
                        .map(strip_directives)
                        .collect();
                    o.insert(k.clone(), Value::Array(cleaned));
                }
            },
            other => {
                o.insert(k.clone(), other.clone());
            }
        }
    }
}

fn merge_keyed_list(existing: &mut Vec<Value>, items: &[Value], key: &str) {
    for item in items {
        let id = item.get(key);
        let pos = existing
            .iter()
            .position(|e| id.is_some() && e.get(key) == id);
        let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                existing.remove(i);
            }
            (Some(i), false) => strategic_merge(&mut existing[i], item),
            (None, false) => existing.push(strip_directives(item)),
            (None, true) => {}
        }
    }
}

fn strip_directives(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .map(|(k, v)| (k.clone(), strip_directives(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_as_kubectl_apply_and_label_use_it() {
        let orig = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"x": "1"},
                          "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Disk", "status": "True"}]}});
        let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}}, "data": {"y": "2"},
                           "$setElementOrder/conditions": [{"type": "Ready"}],
                           "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Disk", "$patch": "delete"}]}});
        let out = apply(&orig, patch.to_string().as_bytes(), PatchType::Strategic).unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "data": {"x": "1", "y": "2"},
                               "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        );
    }

    #[test]
    fn merge_and_json_patches() {
        let orig = json!({"data": {"a": "1"}});
        let out = apply(&orig, br#"{"data":{"a":null,"b":"2"}}"#, PatchType::Merge).unwrap();
        assert_eq!(out, json!({"data": {"b": "2"}}));
        let out = apply(
            &orig,
            br#"[{"op":"add","path":"/data/c","value":"3"}]"#,
            PatchType::Json,
        )
        .unwrap();
        assert_eq!(out, json!({"data": {"a": "1", "c": "3"}}));
        assert_eq!(
            apply(
                &orig,
                br#"[{"op":"test","path":"/data/a","value":"9"}]"#,
                PatchType::Json
            )
            .unwrap_err()
            .code,
            422
        );
        assert_eq!(
            apply(&orig, b"{not json", PatchType::Merge)
                .unwrap_err()
                .code,
            400
        );
    }
}
