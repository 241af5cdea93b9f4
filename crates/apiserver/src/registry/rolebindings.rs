//! rbac.authorization.k8s.io/v1 RoleBinding and ClusterRoleBinding
//! (`pkg/registry/rbac/rolebinding`, `clusterrolebinding`): subjects' apiGroup defaulted,
//! held to RBAC's validation (the roleRef immutable), and binding a role needs `bind` on it.

use std::time::SystemTime;

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding};
use kubeboot_api::{StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{AGE, NAME, name_and_age, str_at};
use super::strategy::Strategy;
use super::{Kind, METADATA_PATCH, NameRule, ResourceDef, normalize, schema};
use crate::protobuf::schema::{Field as Pb, OBJECT_META, Ty, f, rep};
use crate::selectors::FieldLabels;

/// The resource.
pub(super) static ROLE_BINDINGS: ResourceDef = ROLE_BINDINGS_BASE;

/// ClusterRoleBinding: a RoleBinding for the whole cluster.
pub(super) static CLUSTER_ROLE_BINDINGS: ResourceDef = ResourceDef {
    kind_id: Kind::ClusterRoleBinding,
    kind: "ClusterRoleBinding",
    plural: "clusterrolebindings",
    namespaced: false,
    storage: "clusterrolebindings",
    normalize: normalize::<ClusterRoleBinding>,
    schema: schema::<ClusterRoleBinding>,
    protobuf: Some(CLUSTER_ROLE_BINDING_PROTOBUF),
    ..ROLE_BINDINGS_BASE
};

const ROLE_BINDINGS_BASE: ResourceDef = ResourceDef {
    kind_id: Kind::RoleBinding,
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "RoleBinding",
    plural: "rolebindings",
    short_names: &[],
    namespaced: true,
    storage: "rolebindings",
    subresources: &[],
    field_selectors: FieldLabels::Metadata,
    name_rule: NameRule::PathSegment,
    normalize: normalize::<RoleBinding>,
    schema: schema::<RoleBinding>,
    patch_schema: &METADATA_PATCH,
    protobuf: Some(ROLE_BINDING_PROTOBUF),
    conversion: None,
    strategy: &BindingStrategy,
};

#[derive(Debug)]
struct BindingStrategy;

impl Strategy for BindingStrategy {
    fn set_defaults(&self, obj: &mut Value) {
        default_subject_groups(obj);
    }

    fn validate(&self, def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        super::rbac_validation::binding_causes(obj, old, def.namespaced)
    }

    fn columns(&self) -> Vec<TableColumn> {
        let t = TableColumn::text;
        vec![
            NAME,
            t("Role", "Role referred to by this binding"),
            AGE,
            t("Users", "Users in the binding").wide(),
            t("Groups", "Groups in the binding").wide(),
            t("ServiceAccounts", "ServiceAccounts in the binding").wide(),
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        let role = format!(
            "{}/{}",
            str_at(obj, &["roleRef", "kind"]),
            str_at(obj, &["roleRef", "name"])
        );
        let of = |k: &str| {
            let names: Vec<String> = obj
                .get("subjects")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|s| s.get("kind").and_then(Value::as_str) == Some(k))
                .map(|s| {
                    let n = s.get("name").and_then(Value::as_str).unwrap_or_default();
                    match (k, s.get("namespace").and_then(Value::as_str)) {
                        ("ServiceAccount", Some(ns)) => format!("{ns}/{n}"),
                        _ => n.to_owned(),
                    }
                })
                .collect();
            json!(names.join(", "))
        };

        vec![
            name,
            json!(role),
            age,
            of("User"),
            of("Group"),
            of("ServiceAccount"),
        ]
    }
}

/// A User or Group subject's `apiGroup` defaults to RBAC's, a ServiceAccount's to none
/// (`SetDefaults_Subject`, as the object is decoded: the sender owns it).
fn default_subject_groups(obj: &mut Value) {
    for s in obj
        .get_mut("subjects")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
    {
        let kind = s
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if matches!(kind.as_str(), "User" | "Group")
            && s.get("apiGroup").is_none_or(|g| g.as_str() == Some(""))
        {
            s["apiGroup"] = json!("rbac.authorization.k8s.io");
        }
        // A ServiceAccount's is `""`, which the wire leaves out (`omitempty`).
        if kind == "ServiceAccount"
            && s.get("apiGroup").is_some_and(|g| g.as_str() == Some(""))
            && let Some(subject) = s.as_object_mut()
        {
            subject.remove("apiGroup");
        }
    }
}

/// rbac/v1 Subject.
static SUBJECT: &[Pb] = &[
    f(1, "kind", Ty::Str),
    f(2, "apiGroup", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "namespace", Ty::Str),
];

/// rbac/v1 RoleRef.
static ROLE_REF: &[Pb] = &[
    f(1, "apiGroup", Ty::Str),
    f(2, "kind", Ty::Str),
    f(3, "name", Ty::Str),
];

/// rbac/v1 RoleBinding.
static ROLE_BINDING_PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "subjects", Ty::Msg(SUBJECT)),
    f(3, "roleRef", Ty::Msg(ROLE_REF)),
];

/// rbac/v1 ClusterRoleBinding.
static CLUSTER_ROLE_BINDING_PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "subjects", Ty::Msg(SUBJECT)),
    f(3, "roleRef", Ty::Msg(ROLE_REF)),
];
