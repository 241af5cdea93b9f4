//! certificates.k8s.io CertificateSigningRequest, v1 and v1beta1
//! (`pkg/registry/certificates/certificates/strategy.go` and the CSR admission plugins):
//! the requester fields set from the authenticated user, the spec immutable, approval and
//! signing through their subresources by users allowed to for the signer, and the request,
//! signer name, usages, duration and conditions validated as Kubernetes validates them.

mod validation;

use std::time::SystemTime;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use kubeboot_api::clock::{format_rfc3339, human_duration};
use kubeboot_api::{Status, StatusCause, TableColumn};
use serde_json::{Value, json};

pub use self::validation::validate_signer_name;
use self::validation::{condition_types, csr_request, csr_request_unverified, validate_csr};
use super::columns::{AGE, NAME, name_and_age, non_empty, str_at};
use super::strategy::{Admission, Admitted, Change, Strategy, carry_metadata_from};
use super::{Kind, NameRule, OBJECT_META_PATCH, ResourceDef, normalize, schema};
use crate::authn::UserInfo;
use crate::authz::node_name;
use crate::object::meta_str;
use crate::patch::strategic::{Field, Schema as PatchSchema, Strategy as Merge};
use crate::protobuf::schema::{Field as Pb, OBJECT_META, Ty, f, rep};
use crate::selectors::{FieldLabel, FieldLabels};

/// The resource.
pub(super) static CSRS: ResourceDef = CSRS_BASE;

/// The resource in v1beta1 (kubelets before 1.19 ask for it); the typed schema is v1's.
pub(super) static CSRS_V1BETA1: ResourceDef = ResourceDef {
    version: "v1beta1",
    protobuf: None,
    ..CSRS_BASE
};

const CSRS_BASE: ResourceDef = ResourceDef {
    kind_id: Kind::Csr,
    group: "certificates.k8s.io",
    version: "v1",
    kind: "CertificateSigningRequest",
    plural: "certificatesigningrequests",
    short_names: &["csr"],
    namespaced: false,
    storage: "certificatesigningrequests",
    subresources: &["approval", "status"],
    field_selectors: FieldLabels::Own(&[
        FieldLabel::at("metadata.name"),
        FieldLabel::at("spec.signerName"),
    ]),
    name_rule: NameRule::PathSegment,
    normalize: normalize::<CertificateSigningRequest>,
    schema: schema::<CertificateSigningRequest>,
    patch_schema: &PATCH,
    protobuf: Some(PROTOBUF),
    conversion: None,
    strategy: &CsrStrategy,
};

#[derive(Debug)]
struct CsrStrategy;

impl Strategy for CsrStrategy {
    fn prepare_create(&self, def: &ResourceDef, obj: &mut Value, adm: &Admission) -> Admitted {
        let name = meta_str(obj, "name").to_owned();
        prepare_csr_create(def, obj, adm, &name)
    }

    fn prepare_update(&self, _def: &ResourceDef, c: Change<'_>) -> Admitted {
        let Change { new, old, .. } = c;
        // The spec is immutable.
        new["spec"] = old.get("spec").cloned().unwrap_or(json!({}));
        Ok(())
    }

    fn prepare_subresource(&self, def: &ResourceDef, sub: &str, c: Change<'_>) -> Admitted {
        let Change { new, old, adm } = c;
        match sub {
            "approval" => update_approval(def, new, old, adm),
            "status" => update_status(def, new, old, adm),
            other => Err(Status::not_found(
                def.subject(&format!("{}/{other}", meta_str(old, "name"))),
            )),
        }
    }

    fn validate(&self, def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut causes = Vec::new();
        validate_csr(def, obj, old, &mut causes);
        causes
    }

    fn columns(&self) -> Vec<TableColumn> {
        let t = TableColumn::text;
        vec![
            NAME,
            AGE,
            t("SignerName", "Only requests with the given signer name."),
            t(
                "Requestor",
                "Name of the user who requested the certificate.",
            ),
            t(
                "RequestedDuration",
                "Requested duration of the certificate.",
            ),
            t("Condition", "The conditions of the request."),
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        let requested = obj
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
            .map_or("<none>".to_owned(), human_duration);
        vec![
            name,
            age,
            json!(non_empty(str_at(obj, &["spec", "signerName"]))),
            json!(str_at(obj, &["spec", "username"])),
            json!(requested),
            json!(csr_condition(obj)),
        ]
    }
}

/// A strategic merge patch replaces `status.conditions` whole (no patch strategy), while
/// server-side apply owns its items by `type` (`+listType=map`, `+listMapKey=type`).
static PATCH: PatchSchema = PatchSchema {
    fields: &[
        (
            "metadata",
            Field::nested(Merge::Untagged, &OBJECT_META_PATCH),
        ),
        ("status", Field::nested(Merge::Untagged, &STATUS_PATCH)),
    ],
};

static STATUS_PATCH: PatchSchema = PatchSchema {
    fields: &[("conditions", Field::of(Merge::MapByKey("type")))],
};

/// `/approval`: the conditions change, and only a user allowed to approve for the signer
/// may add or change Approved or Denied.
fn update_approval(
    def: &ResourceDef,
    new: &mut Value,
    old: &Value,
    adm: &Admission,
) -> Result<(), Status> {
    let conditions = new.pointer("/status/conditions").cloned();
    let mut merged = old.clone();
    merged["status"]["conditions"] = conditions.unwrap_or(json!([]));
    carry_metadata_from(&mut merged, new);
    *new = merged;
    let signer = signer_of(old);
    if changed_types(old, new, &["Approved", "Denied"]) && !adm.can_for_signer("approve", signer) {
        return Err(Status::forbidden(
            Some(def.subject(meta_str(old, "name"))),
            &format!("user not permitted to approve requests with signerName {signer:?}"),
        ));
    }
    default_condition_times(new, old, adm.now);
    Ok(())
}

/// `/status`: the status changes but Approved and Denied, which it may neither add nor
/// remove (422); those it keeps are kept as stored (Kubernetes'
/// `preserveConditionInstances`). Only a user allowed to sign for the signer may set the
/// certificate.
fn update_status(
    def: &ResourceDef,
    new: &mut Value,
    old: &Value,
    adm: &Admission,
) -> Result<(), Status> {
    let mut status = new.get("status").cloned().unwrap_or(json!({}));
    let conditions = |v: &Value| -> Vec<Value> {
        v.pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let (old_conds, mut conds) = (conditions(old), conditions(new));
    for t in ["Approved", "Denied"] {
        let of_type = |list: &[Value]| -> Vec<usize> {
            (0..list.len())
                .filter(|i| list[*i].get("type").and_then(Value::as_str) == Some(t))
                .collect()
        };
        let (was, is) = (of_type(&old_conds), of_type(&conds));
        if is.len() > was.len() {
            return Err(Status::invalid(
                def.kind,
                def.group,
                meta_str(old, "name"),
                vec![kubeboot_api::StatusCause::forbidden(
                    "status.conditions",
                    &format!("updates may not add a condition of type {t:?}"),
                )],
            ));
        }
        if is.len() == was.len() {
            for (i, o) in is.into_iter().zip(was) {
                conds[i] = old_conds[o].clone();
            }
        }
    }
    if !status.is_object() {
        status = json!({});
    }
    status["conditions"] = json!(conds);
    let mut merged = old.clone();
    merged["status"] = status;
    carry_metadata_from(&mut merged, new);
    *new = merged;
    let signer = signer_of(old);
    let cert = |v: &Value| {
        v.pointer("/status/certificate")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if cert(new) != cert(old) && !adm.can_for_signer("sign", signer) {
        return Err(Status::forbidden(
            Some(def.subject(meta_str(old, "name"))),
            &format!("user not permitted to sign requests with signerName {signer:?}"),
        ));
    }
    default_condition_times(new, old, adm.now);
    Ok(())
}

fn signer_of(obj: &Value) -> &str {
    obj.pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(super) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn changed_types(old: &Value, new: &Value, types: &[&str]) -> bool {
    let pick = |v: &Value| {
        condition_types(v)
            .into_iter()
            .filter(|(t, _)| types.contains(&t.as_str()))
            .map(|(t, c)| {
                (
                    t,
                    c.get("status").cloned(),
                    c.get("reason").cloned(),
                    c.get("message").cloned(),
                )
            })
            .collect::<Vec<_>>()
    };
    pick(old) != pick(new)
}

fn default_condition_times(obj: &mut Value, old: &Value, now: SystemTime) {
    let now = format_rfc3339(now);
    let old_conds = condition_types(old);
    let Some(conds) = obj
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in conds {
        let Some(c) = c.as_object_mut() else { continue };
        let ty = c
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let status = c.get("status").cloned();
        if c.get("lastUpdateTime").is_none_or(Value::is_null) {
            c.insert("lastUpdateTime".into(), json!(now));
        }
        if c.get("lastTransitionTime").is_none_or(Value::is_null) {
            let prior = old_conds
                .iter()
                .find(|(t, oc)| *t == ty && oc.get("status") == status.as_ref())
                .and_then(|(_, oc)| oc.get("lastTransitionTime").cloned())
                .filter(|v| !v.is_null());
            c.insert("lastTransitionTime".into(), prior.unwrap_or(json!(now)));
        }
    }
}

fn prepare_csr_create(
    def: &ResourceDef,
    obj: &mut Value,
    adm: &Admission,
    name: &str,
) -> Result<(), Status> {
    let spec = obj.get_mut("spec").and_then(Value::as_object_mut);
    let Some(spec) = spec else {
        obj["spec"] = json!({});
        return prepare_csr_create(def, obj, adm, name);
    };
    let u = adm.user;
    spec.insert("username".into(), json!(u.name));
    if u.uid.is_empty() {
        spec.remove("uid");
    } else {
        spec.insert("uid".into(), json!(u.uid));
    }
    spec.insert("groups".into(), json!(u.groups));
    if u.extra.is_empty() {
        spec.remove("extra");
    } else {
        spec.insert("extra".into(), json!(u.extra));
    }
    if def.version == "v1beta1" {
        spec.entry("signerName")
            .or_insert_with(|| json!("kubernetes.io/legacy-unknown"));
        spec.entry("usages")
            .or_insert_with(|| json!(["digital signature", "key encipherment"]));
    }
    obj["status"] = json!({});
    // Admission: what the subject may claim, before anything is stored.
    let signer = obj
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // The names are read without verifying the signature, which validation does next; a
    // denial stands only for a request whose signature verifies, so a badly signed one is
    // reported as invalid (422), as Kubernetes validates before its admission plugins.
    let denial = csr_request_unverified(obj)
        .ok()
        .and_then(|parsed| csr_admission_denial(def, name, u, &signer, &parsed));
    match denial {
        Some(d) if csr_request(obj).is_ok() => Err(d),
        _ => Ok(()),
    }
}

/// What the admission plugins refuse of a CSR's subject (`certificatesubjectrestriction`,
/// `noderestriction`).
fn csr_admission_denial(
    def: &ResourceDef,
    name: &str,
    u: &UserInfo,
    signer: &str,
    parsed: &kubeboot_pki::csr::ParsedCsr,
) -> Option<Status> {
    if signer == "kubernetes.io/kube-apiserver-client"
        && parsed.organizations.iter().any(|o| o == "system:masters")
    {
        return Some(Status::forbidden(
            Some(def.subject(name)),
            "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allowed",
        ));
    }
    if let Some(node) = node_name(u) {
        let kubelet_signer = matches!(
            signer,
            "kubernetes.io/kubelet-serving" | "kubernetes.io/kube-apiserver-client-kubelet"
        );
        if kubelet_signer && parsed.common_name != format!("system:node:{node}") {
            return Some(Status::forbidden(
                Some(def.subject(name)),
                &format!("can only create a node CSR with CN=system:node:{node}"),
            ));
        }
    }
    None
}

/// `Denied|Approved|Pending[,Failed][,Issued]`, as `kubectl get csr` prints it.
fn csr_condition(obj: &Value) -> String {
    let conds: Vec<&str> = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("type").and_then(Value::as_str))
        .collect();
    let mut out = if conds.contains(&"Denied") {
        "Denied".to_owned()
    } else if conds.contains(&"Approved") {
        "Approved".to_owned()
    } else {
        "Pending".to_owned()
    };
    if conds.contains(&"Failed") {
        out.push_str(",Failed");
    }
    if obj
        .pointer("/status/certificate")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty())
    {
        out.push_str(",Issued");
    }
    out
}

/// certificates/v1 CertificateSigningRequest.
static PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(CSR_SPEC)),
    f(3, "status", Ty::Msg(CSR_STATUS)),
];

/// certificates/v1 CertificateSigningRequestSpec.
static CSR_SPEC: &[Pb] = &[
    f(1, "request", Ty::Bytes),
    f(2, "username", Ty::Str),
    f(3, "uid", Ty::Str),
    rep(4, "groups", Ty::Str),
    rep(5, "usages", Ty::Str),
    f(6, "extra", Ty::MapExtra),
    f(7, "signerName", Ty::Str),
    f(8, "expirationSeconds", Ty::I32),
];

/// certificates/v1 CertificateSigningRequestStatus.
static CSR_STATUS: &[Pb] = &[
    rep(1, "conditions", Ty::Msg(CSR_CONDITION)),
    f(2, "certificate", Ty::Bytes),
];

/// certificates/v1 CertificateSigningRequestCondition.
static CSR_CONDITION: &[Pb] = &[
    f(1, "type", Ty::Str),
    f(2, "reason", Ty::Str),
    f(3, "message", Ty::Str),
    f(4, "lastUpdateTime", Ty::Time),
    f(5, "lastTransitionTime", Ty::Time),
    f(6, "status", Ty::Str),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_condition_column() {
        for (status, want) in [
            (json!({}), "Pending"),
            (
                json!({"conditions": [{"type": "Approved"}], "certificate": "x"}),
                "Approved,Issued",
            ),
            (
                json!({"conditions": [{"type": "Approved"}, {"type": "Failed"}]}),
                "Approved,Failed",
            ),
            (json!({"conditions": [{"type": "Denied"}]}), "Denied"),
        ] {
            assert_eq!(csr_condition(&json!({"status": status})), want);
        }
    }
}
