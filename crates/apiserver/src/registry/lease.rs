//! coordination.k8s.io/v1 Lease (`pkg/registry/coordination/lease/strategy.go`): a node
//! may write only its own Lease (NodeRestriction); the controllers' leader election uses
//! them too.

use std::time::SystemTime;

use k8s_openapi::api::coordination::v1::Lease;
use kubeboot_api::{Status, StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{AGE, NAME, name_and_age, str_at};
use super::strategy::{Admission, Admitted, Change, Strategy};
use super::{Kind, METADATA_PATCH, NameRule, ResourceDef, normalize, schema};
use crate::authz::node_name;
use crate::object::meta_str;
use crate::protobuf::schema::{Field as Pb, OBJECT_META, Ty, f};
use crate::selectors::FieldLabels;

/// The resource.
pub(super) static LEASES: ResourceDef = ResourceDef {
    kind_id: Kind::Lease,
    group: "coordination.k8s.io",
    version: "v1",
    kind: "Lease",
    plural: "leases",
    short_names: &[],
    namespaced: true,
    storage: "leases",
    subresources: &[],
    field_selectors: FieldLabels::Metadata,
    name_rule: NameRule::Dns1123Subdomain,
    normalize: normalize::<Lease>,
    schema: schema::<Lease>,
    patch_schema: &METADATA_PATCH,
    protobuf: Some(PROTOBUF),
    conversion: None,
    strategy: &LeaseStrategy,
};

#[derive(Debug)]
struct LeaseStrategy;

impl Strategy for LeaseStrategy {
    fn allows_unconditional_update(&self) -> bool {
        false
    }

    fn prepare_create(&self, def: &ResourceDef, obj: &mut Value, adm: &Admission) -> Admitted {
        let name = meta_str(obj, "name");
        match node_name(adm.user) {
            Some(node) if node != name => Err(Status::forbidden(
                Some(def.subject(name)),
                &format!("node {node:?} is not allowed to modify lease {name:?}"),
            )),
            _ => Ok(()),
        }
    }

    fn prepare_update(&self, def: &ResourceDef, c: Change<'_>) -> Admitted {
        let Change { old, adm, .. } = c;
        super::node::only_its_own(def, old, adm)
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, _old: Option<&Value>) -> Vec<StatusCause> {
        spec_causes(obj)
    }

    fn columns(&self) -> Vec<TableColumn> {
        vec![
            NAME,
            TableColumn::text("Holder", "Holder identity of the lease"),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        vec![name, json!(str_at(obj, &["spec", "holderIdentity"])), age]
    }
}

/// coordination/v1 Lease.
static PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(LEASE_SPEC)),
];

/// coordination/v1 LeaseSpec.
static LEASE_SPEC: &[Pb] = &[
    f(1, "holderIdentity", Ty::Str),
    f(2, "leaseDurationSeconds", Ty::I32),
    f(3, "acquireTime", Ty::MicroTime),
    f(4, "renewTime", Ty::MicroTime),
    f(5, "leaseTransitions", Ty::I32),
    f(6, "strategy", Ty::Str),
    f(7, "preferredHolder", Ty::Str),
];

/// `ValidateLeaseSpec`: a duration above 0 and a count of transitions not below it.
fn spec_causes(lease: &Value) -> Vec<StatusCause> {
    let number = |f: &str| lease.pointer(&format!("/spec/{f}")).and_then(Value::as_i64);
    let mut causes = Vec::new();
    if let Some(d) = number("leaseDurationSeconds").filter(|d| *d <= 0) {
        causes.push(StatusCause::invalid_rendered(
            "spec.leaseDurationSeconds",
            &d.to_string(),
            "must be greater than 0",
        ));
    }
    if let Some(t) = number("leaseTransitions").filter(|t| *t < 0) {
        causes.push(StatusCause::invalid_rendered(
            "spec.leaseTransitions",
            &t.to_string(),
            "must be greater than or equal to 0",
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_lasts_and_counts_forward() {
        assert!(
            spec_causes(&json!({"spec": {"leaseDurationSeconds": 1, "leaseTransitions": 0}}))
                .is_empty()
        );
        assert!(spec_causes(&json!({"spec": {}})).is_empty());
        let bad =
            spec_causes(&json!({"spec": {"leaseDurationSeconds": 0, "leaseTransitions": -1}}));
        let got: Vec<String> = bad
            .iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect();
        assert_eq!(
            got,
            [
                "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0",
                "spec.leaseTransitions: Invalid value: -1: must be greater than or equal to 0",
            ]
        );
    }
}
