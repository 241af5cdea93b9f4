//! The three patch formats kubectl sends: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902), and strategic merge patch (`strategic`) over each kind's patch tags.

pub mod go_fmt;
mod go_sort;
pub mod strategic;

use kubeboot_api::Status;
use serde_json::Value;

/// A patch's format, from its `Content-Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`
    Merge,
    /// `application/json-patch+json`
    Json,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply (`crate::fieldmanager`).
    Apply,
}

impl PatchType {
    /// The format of a `Content-Type`, or `None` if it is not a supported patch type.
    pub fn from_content_type(ct: &str) -> Option<Self> {
        match ct.split(';').next().unwrap_or_default().trim() {
            "application/merge-patch+json" => Some(PatchType::Merge),
            "application/json-patch+json" => Some(PatchType::Json),
            "application/strategic-merge-patch+json" => Some(PatchType::Strategic),
            "application/apply-patch+yaml" => Some(PatchType::Apply),
            _ => None,
        }
    }
}

/// Applies a patch to an object whose fields merge as `schema` says (strategic merge).
pub fn apply(
    original: &Value,
    patch_body: &[u8],
    ty: PatchType,
    schema: &strategic::Schema,
) -> Result<Value, Status> {
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
            // A list of objects is a patch (400 otherwise); what each object says is read
            // as it is applied, so an unknown or incomplete operation is 422, as
            // kube-apiserver's JSON patch library finds it only then.
            let ops: Vec<serde_json::Map<String, Value>> =
                serde_json::from_value(patch).map_err(|e| bad(&e))?;
            if ops.len() > MAX_JSON_PATCH_OPS {
                return Err(Status::too_large(format!(
                    "the JSON patch has more than {MAX_JSON_PATCH_OPS} operations"
                )));
            }
            // Applied one operation at a time so that copies cannot grow the object past
            // the size a request may have.
            for op in ops {
                let op = json_operation(op).map_err(unprocessable)?;
                let grows = matches!(
                    op,
                    json_patch::PatchOperation::Copy(_) | json_patch::PatchOperation::Add(_)
                );
                json_patch::patch(&mut out, &[op]).map_err(|e| unprocessable(e.to_string()))?;
                if grows
                    && serde_json::to_vec(&out).map_or(usize::MAX, |v| v.len())
                        > crate::object::MAX_OBJECT_BYTES
                {
                    return Err(Status::too_large(
                        "the JSON patch makes the object larger than 3 MiB",
                    ));
                }
            }
        }
        PatchType::Strategic => {
            let Value::Object(patch) = &patch else {
                return Err(bad(&"a strategic merge patch must be a JSON object"));
            };
            out = strategic::apply(&out, patch, schema).map_err(strategic_error)?;
        }
        // An apply is not a patch of the object: `crate::fieldmanager` merges it.
        PatchType::Apply => {
            return Err(Status::unsupported_media_type(
                "application/apply-patch+yaml",
            ));
        }
    }
    Ok(out)
}

/// One operation of a JSON patch, or why it is none: an `op` that is not one of RFC 6902's
/// six names is refused in the words of Kubernetes' JSON patch library.
fn json_operation(
    op: serde_json::Map<String, Value>,
) -> Result<json_patch::PatchOperation, String> {
    const KINDS: [&str; 6] = ["add", "remove", "replace", "move", "copy", "test"];
    let kind = op.get("op").and_then(Value::as_str).unwrap_or("unknown");
    if !KINDS.contains(&kind) {
        return Err(format!("Unexpected kind: {kind}"));
    }
    let kind = kind.to_owned();
    let mut op = op;
    // As the library reads an operation: a path (and a `from` to move or copy) it must
    // have, a value it takes as null when there is none.
    let has = |f: &str| op.get(f).is_some_and(Value::is_string);
    if matches!(kind.as_str(), "move" | "copy") && !has("from") {
        return Err(format!(
            "{kind} operation failed to decode from: missing value"
        ));
    }
    if !has("path") {
        return Err(format!(
            "{kind} operation failed to decode path: missing value"
        ));
    }
    if matches!(kind.as_str(), "add" | "replace" | "test") {
        op.entry("value").or_insert(Value::Null);
    }
    serde_json::from_value(Value::Object(op)).map_err(|e| format!("{kind} operation: {e}"))
}

/// The 422 of a JSON patch that does not apply to the object.
fn unprocessable(why: String) -> Status {
    Status::failure(
        422,
        "Invalid",
        format!("the server rejected our request due to an error in our request: {why}"),
    )
}

/// The `Status` of a strategic merge patch that cannot be applied: 400 for a directive of
/// the wrong shape, as kube-apiserver answers; 422 for a patch that does not fit the object
/// (kube-apiserver lets these through as 500s, which name no fault of the server).
fn strategic_error(e: strategic::Error) -> Status {
    match e {
        strategic::Error::Format(_) | strategic::Error::RetainKeys => {
            Status::bad_request(e.to_string())
        }
        _ => Status::failure(422, "Invalid", e.to_string()),
    }
}

/// The most operations a JSON patch may have (Kubernetes' limit).
const MAX_JSON_PATCH_OPS: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static STATUS_CONDITIONS: strategic::Schema = strategic::Schema {
        fields: &[(
            "status",
            strategic::Field::nested(strategic::Strategy::Untagged, &CONDITIONS),
        )],
    };
    static CONDITIONS: strategic::Schema = strategic::Schema {
        fields: &[(
            "conditions",
            strategic::Field::of(strategic::Strategy::MergeByKey("type")),
        )],
    };

    #[test]
    fn strategic_merge_as_kubectl_apply_and_label_use_it() {
        let orig = json!({"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"x": "1"},
                          "status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Disk", "status": "True"}]}});
        let patch = json!({"metadata": {"labels": {"a": null, "c": "3"}}, "data": {"y": "2"},
                           "$setElementOrder/conditions": [{"type": "Ready"}],
                           "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Disk", "$patch": "delete"}]}});
        let out = apply(
            &orig,
            patch.to_string().as_bytes(),
            PatchType::Strategic,
            &STATUS_CONDITIONS,
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"labels": {"b": "2", "c": "3"}}, "data": {"x": "1", "y": "2"},
                               "status": {"conditions": [{"type": "Ready", "status": "True"}]}})
        );
    }

    #[test]
    fn merge_and_json_patches() {
        let orig = json!({"data": {"a": "1"}});
        let out = apply(
            &orig,
            br#"{"data":{"a":null,"b":"2"}}"#,
            PatchType::Merge,
            &strategic::Schema::UNTAGGED,
        )
        .unwrap();
        assert_eq!(out, json!({"data": {"b": "2"}}));
        let out = apply(
            &orig,
            br#"[{"op":"add","path":"/data/c","value":"3"}]"#,
            PatchType::Json,
            &strategic::Schema::UNTAGGED,
        )
        .unwrap();
        assert_eq!(out, json!({"data": {"a": "1", "c": "3"}}));
        assert_eq!(
            apply(
                &orig,
                br#"[{"op":"test","path":"/data/a","value":"9"}]"#,
                PatchType::Json,
                &strategic::Schema::UNTAGGED
            )
            .unwrap_err()
            .code,
            422
        );
        assert_eq!(
            apply(
                &orig,
                b"{not json",
                PatchType::Merge,
                &strategic::Schema::UNTAGGED
            )
            .unwrap_err()
            .code,
            400
        );
    }

    #[test]
    fn a_json_patch_operation_is_read_when_it_is_applied() {
        let orig = json!({"data": {"a": "1"}});
        #[rustfmt::skip]
        let rows: [(&str, u16, &str); 6] = [
            (r#"{"op":"add"}"#, 400, "not a valid patch"),
            (r#"[1]"#, 400, "not a valid patch"),
            (r#"[{"op":"frob","path":"/a"}]"#, 422, "Unexpected kind: frob"),
            (r#"[{"path":"/a"}]"#, 422, "Unexpected kind: unknown"),
            (r#"[{"op":"add","value":"1"}]"#, 422, "add operation failed to decode path: missing value"),
            (r#"[{"op":"add","path":"/data/b","value":"2"},{"op":"frob"}]"#, 422, "Unexpected kind: frob"),
        ];
        for (patch, code, why) in rows {
            let e = apply(
                &orig,
                patch.as_bytes(),
                PatchType::Json,
                &strategic::Schema::UNTAGGED,
            )
            .unwrap_err();
            assert_eq!(
                (e.code, e.message.contains(why)),
                (code, true),
                "{patch}: {e:?}"
            );
        }
    }
}
