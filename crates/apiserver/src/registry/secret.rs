//! core/v1 Secret (`pkg/registry/core/secret/strategy.go`): `stringData` folded into
//! `data`, `type` defaulted to Opaque and immutable, data keys checked, `immutable` honoured,
//! and a bootstrap-token Secret held to its own rules (`kubeboot_bootstrap`).

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use k8s_openapi::api::core::v1::Secret;
use kubeboot_api::{StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{AGE, NAME, name_and_age};
use super::strategy::Strategy;
use super::{Kind, METADATA_PATCH, NameRule, ResourceDef, config_data, normalize, schema};
use crate::object::meta_str;
use crate::protobuf::schema::{Field as Pb, OBJECT_META, Ty, f};
use crate::selectors::{FieldLabel, FieldLabels};

/// The resource.
pub(super) static SECRETS: ResourceDef = ResourceDef {
    kind_id: Kind::Secret,
    group: "",
    version: "v1",
    kind: "Secret",
    plural: "secrets",
    short_names: &[],
    namespaced: true,
    storage: "secrets",
    subresources: &[],
    field_selectors: FieldLabels::Own(&[
        FieldLabel::at("metadata.name"),
        FieldLabel::at("metadata.namespace"),
        FieldLabel::at("type"),
    ]),
    name_rule: NameRule::Dns1123Subdomain,
    normalize: normalize::<Secret>,
    schema: schema::<Secret>,
    patch_schema: &METADATA_PATCH,
    protobuf: Some(PROTOBUF),
    conversion: None,
    strategy: &SecretStrategy,
};

#[derive(Debug)]
struct SecretStrategy;

impl Strategy for SecretStrategy {
    fn set_defaults(&self, obj: &mut Value) {
        fold_string_data(obj);
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut causes = Vec::new();
        validate_secret(obj, old, &mut causes);
        causes
    }

    fn columns(&self) -> Vec<TableColumn> {
        vec![
            NAME,
            TableColumn::text("Type", "The type of the secret"),
            TableColumn::text("Data", "The number of entries in the data"),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        let ty = obj.get("type").and_then(Value::as_str).unwrap_or("Opaque");
        let entries = obj
            .get("data")
            .and_then(Value::as_object)
            .map_or(0, |m| m.len());
        vec![name, json!(ty), json!(entries), age]
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn fold_string_data(obj: &mut Value) {
    let Some(o) = obj.as_object_mut() else { return };
    if let Some(Value::Object(sd)) = o.remove("stringData") {
        let data = o.entry("data").or_insert_with(|| json!({}));
        if !data.is_object() {
            *data = json!({});
        }
        for (k, v) in sd {
            let text = v.as_str().unwrap_or_default();
            data[k.as_str()] = Value::String(B64.encode(text));
        }
    }
    o.entry("type").or_insert_with(|| json!("Opaque"));
}

fn secret_data(obj: &Value) -> BTreeMap<String, Vec<u8>> {
    obj.get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            (
                k.clone(),
                B64.decode(v.as_str().unwrap_or_default())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

fn validate_secret(obj: &Value, old: Option<&Value>, causes: &mut Vec<StatusCause>) {
    let ty = obj.get("type").and_then(Value::as_str).unwrap_or("Opaque");
    if let Some(old) = old {
        let old_ty = old.get("type").and_then(Value::as_str).unwrap_or("Opaque");
        if old_ty != ty {
            causes.push(StatusCause::invalid("type", ty, "field is immutable"));
        }
        causes.extend(config_data::immutable_causes(obj, old, &["data"]));
    }
    causes.extend(config_data::key_causes(obj, "data"));
    let data = secret_data(obj);
    let size = data.values().map(Vec::len).sum();
    causes.extend(config_data::size_causes(size, "data"));
    causes.extend(type_causes(obj, ty, &data));
    if ty == kubeboot_bootstrap::secret::SECRET_TYPE {
        let errs = kubeboot_bootstrap::validate_token_secret(
            meta_str(obj, "name"),
            meta_str(obj, "namespace"),
            &secret_data(obj),
        );
        causes.extend(
            errs.into_iter()
                .map(|e| StatusCause::new("FieldValueInvalid", &e.field, e.message)),
        );
    }
}

/// Why a docker config does not read as Go's `json.Unmarshal` into a map reads it: `null`
/// and any object do (invalid UTF-8 is replaced, as Go replaces it); another JSON value is
/// refused in Go's words, and text that is not JSON in serde's.
fn docker_config_error(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let value: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => return Some(e.to_string()),
    };
    let kind = match value {
        Value::Null | Value::Object(_) => return None,
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
    };
    Some(format!(
        "json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}"
    ))
}

/// What each built-in type of Secret must hold (`ValidateSecret`).
fn type_causes(obj: &Value, ty: &str, data: &BTreeMap<String, Vec<u8>>) -> Vec<StatusCause> {
    let required = |key: &str| StatusCause::required(&format!("data[{key}]"), "");
    let json_object = |key: &str| match data.get(key) {
        None => Some(required(key)),
        Some(bytes) => docker_config_error(bytes).map(|e| {
            StatusCause::invalid_rendered(
                &format!("data[{key}]"),
                "\"<secret contents redacted>\"",
                &e,
            )
        }),
    };
    match ty {
        "kubernetes.io/service-account-token" => {
            let name = obj
                .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let field = "metadata.annotations[kubernetes.io/service-account.name]";
            name.is_empty()
                .then(|| StatusCause::required(field, ""))
                .into_iter()
                .collect()
        }
        "kubernetes.io/dockercfg" => json_object(".dockercfg").into_iter().collect(),
        "kubernetes.io/dockerconfigjson" => json_object(".dockerconfigjson").into_iter().collect(),
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            vec![required("username"), required("password")]
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(Vec::is_empty) => {
            vec![required("ssh-privatekey")]
        }
        "kubernetes.io/tls" => ["tls.crt", "tls.key"]
            .into_iter()
            .filter(|k| !data.contains_key(*k))
            .map(required)
            .collect(),
        _ => Vec::new(),
    }
}

/// core/v1 Secret.
static PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_built_in_type_holds_what_it_must() {
        let secret = |ty: &str, data: Value| {
            let mut s = json!({"metadata": {"name": "s", "namespace": "default"}, "type": ty, "data": data});
            fold_string_data(&mut s);
            s
        };
        let causes_of = |s: &Value| -> Vec<String> {
            let ty = s["type"].as_str().unwrap_or_default();
            type_causes(s, ty, &secret_data(s))
                .iter()
                .map(|c| format!("{}: {}", c.field, c.message))
                .collect()
        };
        let b64 = |v: &str| B64.encode(v);
        for (ty, data, want) in [
            ("Opaque", json!({}), vec![]),
            ("example.com/own", json!({}), vec![]),
            (
                "kubernetes.io/tls",
                json!({"tls.crt": b64("c"), "tls.key": b64("k")}),
                vec![],
            ),
            (
                "kubernetes.io/tls",
                json!({"tls.crt": b64("c")}),
                vec!["data[tls.key]: Required value"],
            ),
            ("kubernetes.io/basic-auth", json!({"password": ""}), vec![]),
            (
                "kubernetes.io/basic-auth",
                json!({}),
                vec![
                    "data[username]: Required value",
                    "data[password]: Required value",
                ],
            ),
            (
                "kubernetes.io/ssh-auth",
                json!({"ssh-privatekey": ""}),
                vec!["data[ssh-privatekey]: Required value"],
            ),
            (
                "kubernetes.io/dockerconfigjson",
                json!({".dockerconfigjson": b64(r#"{"auths":{}}"#)}),
                vec![],
            ),
            (
                "kubernetes.io/dockerconfigjson",
                json!({}),
                vec!["data[.dockerconfigjson]: Required value"],
            ),
            (
                "kubernetes.io/dockercfg",
                json!({}),
                vec!["data[.dockercfg]: Required value"],
            ),
            (
                "kubernetes.io/service-account-token",
                json!({}),
                vec!["metadata.annotations[kubernetes.io/service-account.name]: Required value"],
            ),
        ] {
            assert_eq!(causes_of(&secret(ty, data)), want, "{ty}");
        }
        let bad = causes_of(&secret(
            "kubernetes.io/dockercfg",
            json!({".dockercfg": b64("[1]")}),
        ));
        assert_eq!(
            bad,
            [
                "data[.dockercfg]: Invalid value: \"<secret contents redacted>\": json: cannot unmarshal array into Go value of type map[string]interface {}"
            ]
        );
        let null = secret(
            "kubernetes.io/dockercfg",
            json!({".dockercfg": b64("null")}),
        );
        assert!(causes_of(&null).is_empty());
        assert_eq!(bad.len(), 1);
        assert!(
            bad[0].starts_with("data[.dockercfg]: Invalid value: \"<secret contents redacted>\": "),
            "{bad:?}"
        );
        let mut named = secret("kubernetes.io/service-account-token", json!({}));
        named["metadata"]["annotations"] = json!({"kubernetes.io/service-account.name": "default"});
        assert!(causes_of(&named).is_empty());
    }

    #[test]
    fn string_data_folds_into_data() {
        let mut s = json!({"stringData": {"a": "b"}, "data": {"c": "ZA=="}});
        fold_string_data(&mut s);
        assert_eq!(
            s,
            json!({"data": {"a": "Yg==", "c": "ZA=="}, "type": "Opaque"})
        );
    }
}
