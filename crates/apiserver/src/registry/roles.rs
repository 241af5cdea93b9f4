//! rbac.authorization.k8s.io/v1 Role and ClusterRole (`pkg/registry/rbac/role`,
//! `clusterrole`): held to RBAC's validation, and writing one needs `escalate` on it, as
//! binding one needs `bind` — RBAC escalation prevention, shared with the bindings here.

use std::time::SystemTime;

use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kubeboot_api::{Status, StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::NAME;
use super::strategy::{Admission, Admitted, Change, Strategy};
use super::{Kind, METADATA_PATCH, NameRule, ResourceDef, normalize, schema};
use crate::authz::Attributes;
use crate::object::meta_str;
use crate::protobuf::schema::{Field as Pb, LABEL_SELECTOR, OBJECT_META, Ty, f, rep};

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
    field_selectors: &[],
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
    fn prepare_create(&self, def: &ResourceDef, obj: &mut Value, adm: &Admission) -> Admitted {
        check_escalation(def, obj, adm)
    }

    fn prepare_update(&self, def: &ResourceDef, c: Change<'_>) -> Admitted {
        let Change { new, adm, .. } = c;
        check_escalation(def, new, adm)
    }

    fn validate(&self, def: &ResourceDef, obj: &Value, _old: Option<&Value>) -> Vec<StatusCause> {
        super::rbac_validation::role_causes(obj, def.namespaced)
    }

    fn columns(&self) -> Vec<TableColumn> {
        vec![
            NAME,
            TableColumn::text("Created At", "Time the object was created"),
        ]
    }

    fn cells(&self, obj: &Value, _now: SystemTime) -> Vec<Value> {
        vec![
            json!(meta_str(obj, "name")),
            json!(meta_str(obj, "creationTimestamp")),
        ]
    }
}

/// RBAC escalation prevention: writing a role needs `escalate` on it, and binding a role
/// needs `bind` on the role it refers to (`system:masters` holds both). Kubernetes also
/// allows these when the writer already holds every permission granted; kubeboot asks for
/// the explicit verb, which is never more permissive.
pub(super) fn check_escalation(
    def: &ResourceDef,
    obj: &Value,
    adm: &Admission,
) -> Result<(), Status> {
    let ns = meta_str(obj, "namespace").to_owned();
    let name = meta_str(obj, "name").to_owned();
    let (verb, resource, target) = match def.kind_id {
        Kind::Role => ("escalate", "roles", name.clone()),
        Kind::ClusterRole => ("escalate", "clusterroles", name.clone()),
        _ => {
            let kind = obj
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let resource = if kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            (
                "bind",
                resource,
                obj.pointer("/roleRef/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
            )
        }
    };
    let allowed = adm.can(&Attributes {
        is_resource: true,
        verb: verb.into(),
        group: "rbac.authorization.k8s.io".into(),
        namespace: if resource == "roles" || def.namespaced {
            ns
        } else {
            String::new()
        },
        resource: resource.into(),
        name: target.clone(),
        ..Default::default()
    });
    if allowed {
        return Ok(());
    }
    Err(Status::forbidden(
        Some(def.subject(&name)),
        &format!(
            "user {:?} (groups={:?}) is attempting to grant RBAC permissions not currently held: {verb} on {resource} {target:?} is required",
            adm.user.name, adm.user.groups
        ),
    ))
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
