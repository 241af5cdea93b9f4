//! core/v1 ConfigMap (`pkg/registry/core/configmap/strategy.go`): namespaced data with no
//! status and nothing the server sets; keys that can name a file, and `immutable` honoured.

use std::time::SystemTime;

use base64::Engine;
use k8s_openapi::api::core::v1::ConfigMap;
use kubeboot_api::{StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{AGE, NAME, name_and_age};
use super::strategy::Strategy;
use super::{Kind, METADATA_PATCH, NameRule, ResourceDef, config_data, normalize, schema};
use crate::protobuf::schema::{Field as Pb, OBJECT_META, Ty, f};
use crate::selectors::FieldLabels;

/// The resource.
pub(super) static CONFIGMAPS: ResourceDef = ResourceDef {
    kind_id: Kind::ConfigMap,
    group: "",
    version: "v1",
    kind: "ConfigMap",
    plural: "configmaps",
    short_names: &["cm"],
    namespaced: true,
    storage: "configmaps",
    subresources: &[],
    field_selectors: FieldLabels::Metadata,
    name_rule: NameRule::Dns1123Subdomain,
    normalize: normalize::<ConfigMap>,
    schema: schema::<ConfigMap>,
    patch_schema: &METADATA_PATCH,
    protobuf: Some(PROTOBUF),
    conversion: None,
    strategy: &ConfigMapStrategy,
};

#[derive(Debug)]
struct ConfigMapStrategy;

/// The bytes of a ConfigMap's values: its strings, and its binary values decoded.
fn values_size(obj: &Value) -> usize {
    let values = |field: &str| {
        obj.get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.values())
            .filter_map(Value::as_str)
    };
    let binary = values("binaryData").map(|v| {
        base64::engine::general_purpose::STANDARD
            .decode(v)
            .map_or(v.len(), |b| b.len())
    });
    values("data").map(str::len).chain(binary).sum()
}

impl Strategy for ConfigMapStrategy {
    fn validate(&self, _def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut causes = config_data::key_causes(obj, "data");
        causes.extend(config_data::key_causes(obj, "binaryData"));
        causes.extend(config_data::duplicate_key_causes(obj));
        causes.extend(config_data::size_causes(values_size(obj), "[]"));
        if let Some(old) = old {
            causes.extend(config_data::immutable_causes(
                obj,
                old,
                &["data", "binaryData"],
            ));
        }
        causes
    }

    fn columns(&self) -> Vec<TableColumn> {
        vec![
            NAME,
            TableColumn::text("Data", "The number of entries in the data"),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        let entries = |field: &str| {
            obj.get(field)
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
        };
        vec![name, json!(entries("data") + entries("binaryData")), age]
    }
}

/// core/v1 ConfigMap.
static PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];
