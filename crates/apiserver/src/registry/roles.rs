//! rbac.authorization.k8s.io/v1 Role and ClusterRole (`pkg/registry/rbac/role`,
//! `clusterrole`): held to RBAC's validation; what their writers may grant is
//! `handlers::escalation`'s.

use std::time::SystemTime;

use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kubeboot_api::{StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::NAME;
use super::strategy::Strategy;
use super::{Kind, METADATA_PATCH, NameRule, ResourceDef, normalize, schema};
use crate::object::meta_str;
use crate::protobuf::schema::{Field as Pb, LABEL_SELECTOR, OBJECT_META, Ty, f, rep};
use crate::selectors::FieldLabels;

/// The resource.
pub(super) static ROLES: ResourceDef = ROLES_BASE;

/// ClusterRole: a Role for the whole cluster.
pub(super) static CLUSTER_ROLES: ResourceDef = ResourceDef {
    kind_id: Kind::ClusterRole,
    kind: "ClusterRole",
    plural: "clusterroles",
    namespaced: false,
    storage: "clusterroles",
    normalize: normalize::<ClusterRole>,
    schema: schema::<ClusterRole>,
    protobuf: Some(CLUSTER_ROLE_PROTOBUF),
    ..ROLES_BASE
};

const ROLES_BASE: ResourceDef = ResourceDef {
    kind_id: Kind::Role,
    group: "rbac.authorization.k8s.io",
    version: "v1",
    kind: "Role",
    plural: "roles",
    short_names: &[],
    namespaced: true,
    storage: "roles",
    subresources: &[],
    field_selectors: FieldLabels::Metadata,
    name_rule: NameRule::PathSegment,
    normalize: normalize::<Role>,
    schema: schema::<Role>,
    patch_schema: &METADATA_PATCH,
    protobuf: Some(ROLE_PROTOBUF),
    conversion: None,
    strategy: &RoleStrategy,
};

#[derive(Debug)]
struct RoleStrategy;

impl Strategy for RoleStrategy {
    fn validate(&self, def: &ResourceDef, obj: &Value, _old: Option<&Value>) -> Vec<StatusCause> {
        super::rbac_validation::role_causes(obj, def.namespaced)
    }

    fn columns(&self) -> Vec<TableColumn> {
        vec![
            NAME,
            TableColumn::date("Created At", "Time the object was created"),
        ]
    }

    fn cells(&self, obj: &Value, _now: SystemTime) -> Vec<Value> {
        vec![
            json!(meta_str(obj, "name")),
            json!(meta_str(obj, "creationTimestamp")),
        ]
    }
}

/// rbac/v1 PolicyRule.
static POLICY_RULE: &[Pb] = &[
    rep(1, "verbs", Ty::Str),
    rep(2, "apiGroups", Ty::Str),
    rep(3, "resources", Ty::Str),
    rep(4, "resourceNames", Ty::Str),
    rep(5, "nonResourceURLs", Ty::Str),
];

/// rbac/v1 AggregationRule.
static AGGREGATION_RULE: &[Pb] = &[rep(1, "clusterRoleSelectors", Ty::Msg(LABEL_SELECTOR))];

/// rbac/v1 Role.
static ROLE_PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "rules", Ty::Msg(POLICY_RULE)),
];

/// rbac/v1 ClusterRole.
static CLUSTER_ROLE_PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "rules", Ty::Msg(POLICY_RULE)),
    f(3, "aggregationRule", Ty::Msg(AGGREGATION_RULE)),
];
