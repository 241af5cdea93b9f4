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
    field_selectors: &["type"],
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
            TableColumn::integer("Data", "The number of entries in the data"),
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
    fn string_data_folds_into_data() {
        let mut s = json!({"stringData": {"a": "b"}, "data": {"c": "ZA=="}});
        fold_string_data(&mut s);
        assert_eq!(
            s,
            json!({"data": {"a": "Yg==", "c": "ZA=="}, "type": "Opaque"})
        );
    }
}
