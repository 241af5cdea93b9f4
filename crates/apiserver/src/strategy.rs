//! Per-kind behaviour on create and update, as kube-apiserver's registry strategies and
//! admission plugins define it: what the server sets, what a subresource may change, and
//! what makes an object invalid.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine;
use kubeboot_api::clock::format_rfc3339;
use kubeboot_api::{Status, StatusCause};
use serde_json::{Map, Value, json};

use crate::admission::node_restriction;
use crate::authn::UserInfo;
use crate::authz::{Attributes, Authorizer, Decision, node_name};
use crate::object::meta_str;
use crate::registry::{Kind, ResourceDef};

/// What a strategy may consult: the requester, the time, and the authorizer.
pub struct Admission<'a> {
    /// Who is asking.
    pub user: &'a UserInfo,
    /// Now.
    pub now: SystemTime,
    /// The authorizer (RBAC escalation checks, CSR signer permissions).
    pub authz: &'a Authorizer,
}

impl Admission<'_> {
    /// Whether the requester may do `a`.
    pub fn can(&self, a: &Attributes) -> bool {
        matches!(self.authz.authorize(self.user, a), Decision::Allowed { .. })
    }
}

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Sets what the server owns on create and runs create-time admission.
pub fn prepare_create(
    def: &ResourceDef,
    obj: &mut Value,
    adm: &Admission<'_>,
) -> Result<(), Status> {
    let name = meta_str(obj, "name").to_owned();
    match def.kind_id {
        Kind::Namespace => {
            obj["status"] = json!({"phase": "Active"});
        }
        Kind::Secret => fold_string_data(obj),
        Kind::Node => {
            if let Some(node) = node_name(adm.user) {
                let denial = if node != name {
                    Some(format!(
                        "node {node:?} is not allowed to modify node {name:?}"
                    ))
                } else {
                    node_restriction::node_write_denial(node, obj, None)
                };
                if let Some(denial) = denial {
                    return Err(Status::forbidden(Some(def.subject(&name)), &denial));
                }
            }
        }
        Kind::Lease => {
            if let Some(node) = node_name(adm.user)
                && node != name
            {
                return Err(Status::forbidden(
                    Some(def.subject(&name)),
                    &format!("node {node:?} is not allowed to modify lease {name:?}"),
                ));
            }
        }
        Kind::Csr => prepare_csr_create(def, obj, adm, &name)?,
        Kind::RoleBinding | Kind::ClusterRoleBinding => {
            default_subject_groups(obj);
            check_rbac_escalation(def, obj, adm)?;
        }
        Kind::Role | Kind::ClusterRole => check_rbac_escalation(def, obj, adm)?,
        Kind::ConfigMap => {}
    }
    Ok(())
}

/// Merges what a client sent into an update of `old`, according to the subresource, and
/// runs update-time admission. `new` holds the client's object and becomes the result.
pub fn prepare_update(
    def: &ResourceDef,
    new: &mut Value,
    old: &Value,
    subresource: &str,
    adm: &Admission<'_>,
) -> Result<(), Status> {
    let name = meta_str(old, "name").to_owned();
    match (def.kind_id, subresource) {
        (Kind::Csr, "approval") => {
            let conditions = new.pointer("/status/conditions").cloned();
            let mut merged = old.clone();
            merged["status"]["conditions"] = conditions.unwrap_or(json!([]));
            carry_metadata_from(&mut merged, new);
            *new = merged;
            let signer = old
                .pointer("/spec/signerName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if changed_types(old, new, &["Approved", "Denied"])
                && !signer_allowed(adm, "approve", signer)
            {
                return Err(Status::forbidden(
                    Some(def.subject(&name)),
                    &format!("user not permitted to approve requests with signerName {signer:?}"),
                ));
            }
            default_condition_times(new, old, adm.now);
        }
        (Kind::Csr, "status") => {
            let mut status = new.get("status").cloned().unwrap_or(json!({}));
            // Approved and Denied change only through /approval: keep the stored ones
            // (Kubernetes' preserveConditionInstances) and drop any the client sent.
            let decided = |c: &Value| {
                matches!(
                    c.get("type").and_then(Value::as_str),
                    Some("Approved" | "Denied")
                )
            };
            let mut conds: Vec<Value> = old
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter(|c| decided(c))
                .cloned()
                .collect();
            conds.extend(
                status
                    .get("conditions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|c| !decided(c))
                    .cloned(),
            );
            if !status.is_object() {
                status = json!({});
            }
            status["conditions"] = json!(conds);
            let mut merged = old.clone();
            merged["status"] = status;
            carry_metadata_from(&mut merged, new);
            *new = merged;
            let signer = old
                .pointer("/spec/signerName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let cert = |v: &Value| {
                v.pointer("/status/certificate")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            if cert(new) != cert(old) && !signer_allowed(adm, "sign", signer) {
                return Err(Status::forbidden(
                    Some(def.subject(&name)),
                    &format!("user not permitted to sign requests with signerName {signer:?}"),
                ));
            }
            default_condition_times(new, old, adm.now);
        }
        (_, "status") => {
            let status = new.get("status").cloned();
            let mut merged = old.clone();
            match status {
                Some(s) => merged["status"] = s,
                None => {
                    if let Some(o) = merged.as_object_mut() {
                        o.remove("status");
                    }
                }
            }
            carry_metadata_from(&mut merged, new);
            *new = merged;
        }
        (_, "") => {
            if def.subresources.contains(&"status") {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => {
                        if let Some(o) = new.as_object_mut() {
                            o.remove("status");
                        }
                    }
                }
            }
            match def.kind_id {
                Kind::Csr => new["spec"] = old.get("spec").cloned().unwrap_or(json!({})),
                Kind::Secret => fold_string_data(new),
                Kind::RoleBinding | Kind::ClusterRoleBinding => {
                    default_subject_groups(new);
                    check_rbac_escalation(def, new, adm)?;
                }
                Kind::Role | Kind::ClusterRole => check_rbac_escalation(def, new, adm)?,
                Kind::Node | Kind::Lease => {
                    if let Some(node) = node_name(adm.user)
                        && node != name
                    {
                        return Err(Status::forbidden(
                            Some(def.subject(&name)),
                            &format!("node {node:?} may not modify {name:?}"),
                        ));
                    }
                }
                _ => {}
            }
        }
        (_, other) => {
            return Err(Status::not_found(def.subject(&format!("{name}/{other}"))));
        }
    }
    // A node's write of its own Node, through the object or its status.
    if def.kind_id == Kind::Node
        && let Some(node) = node_name(adm.user)
        && let Some(denial) = node_restriction::node_write_denial(node, new, Some(old))
    {
        return Err(Status::forbidden(Some(def.subject(&name)), &denial));
    }
    Ok(())
}

/// RBAC escalation prevention: writing a role needs `escalate` on it, and binding a role
/// needs `bind` on the role it refers to (`system:masters` holds both). Kubernetes also
/// allows these when the writer already holds every permission granted; kubeboot asks for
/// the explicit verb, which is never more permissive.
fn check_rbac_escalation(
    def: &ResourceDef,
    obj: &Value,
    adm: &Admission<'_>,
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

/// The metadata a client may change with any update: labels, annotations, finalizers,
/// ownerReferences, and the resourceVersion it expects.
fn carry_metadata_from(merged: &mut Value, sent: &Value) {
    let Some(sent_meta) = sent.get("metadata").and_then(Value::as_object) else {
        return;
    };
    let meta = crate::object::meta_mut(merged);
    for k in ["resourceVersion", "labels", "annotations"] {
        match sent_meta.get(k) {
            Some(v) => {
                meta.insert(k.into(), v.clone());
            }
            None => {
                meta.remove(k);
            }
        }
    }
}

/// Everything wrong with an object (after preparation), as `Invalid` causes.
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    match def.kind_id {
        Kind::Secret => validate_secret(obj, old, &mut causes),
        Kind::Csr => validate_csr(def, obj, old, &mut causes),
        Kind::RoleBinding | Kind::ClusterRoleBinding => {
            if let Some(old) = old
                && old.get("roleRef") != obj.get("roleRef")
            {
                causes.push(StatusCause::invalid(
                    "roleRef",
                    &obj.get("roleRef")
                        .map(|r| r.to_string())
                        .unwrap_or_default(),
                    "cannot change roleRef",
                ));
            }
            if obj
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .is_empty()
            {
                causes.push(StatusCause::required("roleRef.name", ""));
            }
        }
        _ => {}
    }
    causes
}

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
        if old.get("immutable").and_then(Value::as_bool) == Some(true)
            && old.get("data") != obj.get("data")
        {
            causes.push(StatusCause::forbidden(
                "data",
                "field is immutable when `immutable` is set",
            ));
        }
    }
    for key in obj
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, _)| k)
    {
        let ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
        if !ok {
            causes.push(StatusCause::invalid(
                &format!("data[{key}]"),
                key,
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            ));
        }
    }
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

fn signer_allowed(adm: &Admission<'_>, verb: &str, signer: &str) -> bool {
    let check = |name: &str| {
        adm.can(&Attributes {
            is_resource: true,
            verb: verb.into(),
            group: "certificates.k8s.io".into(),
            resource: "signers".into(),
            name: name.into(),
            ..Default::default()
        })
    };
    let domain_wildcard = signer.split_once('/').map(|(d, _)| format!("{d}/*"));
    check(signer) || domain_wildcard.is_some_and(|w| check(&w))
}

fn condition_types(obj: &Value) -> Vec<(String, Value)> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            (
                c.get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                c.clone(),
            )
        })
        .collect()
}

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
        if kind == "ServiceAccount" && s.get("apiGroup").is_none() {
            s["apiGroup"] = json!("");
        }
    }
}

fn prepare_csr_create(
    def: &ResourceDef,
    obj: &mut Value,
    adm: &Admission<'_>,
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

/// Decodes and verifies `spec.request` (base64 of a PEM CSR).
pub fn csr_request(obj: &Value) -> Result<kubeboot_pki::csr::ParsedCsr, String> {
    kubeboot_pki::csr::parse_pem(&request_pem(obj)?).map_err(|e| e.to_string())
}

/// Decodes `spec.request` without verifying its signature.
fn csr_request_unverified(obj: &Value) -> Result<kubeboot_pki::csr::ParsedCsr, String> {
    kubeboot_pki::csr::parse_pem_unverified(&request_pem(obj)?).map_err(|e| e.to_string())
}

fn request_pem(obj: &Value) -> Result<Vec<u8>, String> {
    let b64 = obj
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .unwrap_or_default();
    B64.decode(b64).map_err(|e| format!("not base64: {e}"))
}

fn validate_csr(
    def: &ResourceDef,
    obj: &Value,
    old: Option<&Value>,
    causes: &mut Vec<StatusCause>,
) {
    let request = obj
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .unwrap_or_default();
    // The spec is immutable, so a request stored before was verified when it was created:
    // approvals and status updates do not verify its signature again.
    let verified_before =
        old.and_then(|o| o.pointer("/spec/request")) == obj.pointer("/spec/request");
    if request.is_empty() {
        causes.push(StatusCause::required("spec.request", ""));
    } else if !verified_before && let Err(e) = csr_request(obj) {
        causes.push(StatusCause::invalid("spec.request", "<request>", &e));
    }
    let signer = obj
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Err(why) = validate_signer_name(signer) {
        if signer.is_empty() {
            causes.push(StatusCause::required("spec.signerName", ""));
        } else {
            causes.push(StatusCause::invalid("spec.signerName", signer, &why));
        }
    } else if signer == "kubernetes.io/legacy-unknown" && def.version == "v1" && old.is_none() {
        causes.push(StatusCause::invalid(
            "spec.signerName",
            signer,
            "the legacy signerName is not allowed via this API version",
        ));
    }
    match obj.pointer("/spec/usages").and_then(Value::as_array) {
        None => causes.push(StatusCause::required("spec.usages", "")),
        Some(u) if u.is_empty() => causes.push(StatusCause::required("spec.usages", "")),
        Some(usages) => {
            let mut seen = Vec::new();
            let supported: Vec<&str> = kubeboot_pki::Usage::ALL
                .iter()
                .map(|u| u.k8s_name())
                .collect();
            for (i, u) in usages.iter().enumerate() {
                let s = u.as_str().unwrap_or_default();
                let field = format!("spec.usages[{i}]");
                if kubeboot_pki::Usage::from_k8s_name(s).is_none() {
                    causes.push(StatusCause::not_supported(&field, s, &supported));
                } else if seen.contains(&s) {
                    causes.push(StatusCause::duplicate(&field, s));
                }
                seen.push(s);
            }
        }
    }
    if let Some(secs) = obj
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        && secs < 600
    {
        causes.push(StatusCause::invalid(
            "spec.expirationSeconds",
            &secs.to_string(),
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    validate_csr_status(obj, old, causes);
}

fn validate_csr_status(obj: &Value, old: Option<&Value>, causes: &mut Vec<StatusCause>) {
    let conds = condition_types(obj);
    let mut seen: Vec<&str> = Vec::new();
    for (i, (ty, c)) in conds.iter().enumerate() {
        let field = format!("status.conditions[{i}]");
        let status = c.get("status").and_then(Value::as_str).unwrap_or_default();
        if ty.is_empty() {
            causes.push(StatusCause::required(&format!("{field}.type"), ""));
            continue;
        }
        if seen.contains(&ty.as_str()) {
            causes.push(StatusCause::duplicate(&format!("{field}.type"), ty));
        }
        seen.push(ty);
        let fixed = matches!(ty.as_str(), "Approved" | "Denied" | "Failed");
        if status.is_empty() {
            causes.push(StatusCause::required(&format!("{field}.status"), ""));
        } else if fixed && status != "True" {
            causes.push(StatusCause::not_supported(
                &format!("{field}.status"),
                status,
                &["True"],
            ));
        } else if !matches!(status, "True" | "False" | "Unknown") {
            causes.push(StatusCause::not_supported(
                &format!("{field}.status"),
                status,
                &["False", "True", "Unknown"],
            ));
        }
    }
    if seen.contains(&"Approved") && seen.contains(&"Denied") {
        causes.push(StatusCause::invalid(
            "status.conditions",
            "",
            "Approved and Denied conditions are mutually exclusive",
        ));
    }
    let cert = obj
        .pointer("/status/certificate")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(old) = old {
        let old_types: Vec<String> = condition_types(old).into_iter().map(|(t, _)| t).collect();
        for t in ["Approved", "Denied", "Failed"] {
            if old_types.iter().any(|o| o == t) && !seen.contains(&t) {
                causes.push(StatusCause::forbidden(
                    "status.conditions",
                    &format!("updates may not remove a condition of type {t:?}"),
                ));
            }
        }
        let old_cert = old
            .pointer("/status/certificate")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !old_cert.is_empty() && old_cert != cert {
            causes.push(StatusCause::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
    }
    if !cert.is_empty() {
        let ok = B64
            .decode(cert)
            .ok()
            .is_some_and(|pem| valid_cert_bundle(&pem));
        if !ok {
            causes.push(StatusCause::invalid(
                "status.certificate",
                "<certificate data>",
                "must contain at least one PEM CERTIFICATE block that parses, and nothing else",
            ));
        }
    }
}

fn valid_cert_bundle(pem: &[u8]) -> bool {
    let mut n = 0;
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        match block {
            Ok(b)
                if b.label == "CERTIFICATE"
                    && x509_parser::parse_x509_certificate(&b.contents).is_ok() =>
            {
                n += 1
            }
            _ => return false,
        }
    }
    n > 0
}

/// `ValidateSignerName`: `<domain>/<path>`, the domain of at least two DNS labels.
pub fn validate_signer_name(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("Required value".into());
    }
    let Some((domain, path)) = s.split_once('/') else {
        return Err(
            "must be a fully qualified domain and path of the form 'example.com/signer-name'"
                .into(),
        );
    };
    if path.contains('/') {
        return Err("may not contain more than one '/'".into());
    }
    if domain.len() > 253
        || domain.split('.').count() < 2
        || !crate::object::is_dns1123_subdomain(domain)
    {
        return Err("should be a domain with at least two segments separated by dots".into());
    }
    if path.is_empty() || !path.split('.').all(crate::object::is_dns1123_subdomain) {
        return Err("validating path: must be a valid DNS subdomain".into());
    }
    if s.len() > 571 {
        return Err("must be no more than 571 characters".into());
    }
    Ok(())
}

/// An empty JSON object, for callers building objects.
pub fn empty() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signer_names() {
        for good in [
            "kubernetes.io/kube-apiserver-client-kubelet",
            "example.com/my-signer",
            "a.b/c.d",
        ] {
            assert_eq!(validate_signer_name(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "kubernetes.io",
            "localhost/x",
            "a.b/c/d",
            "A.b/c",
            "a.b/",
        ] {
            assert!(validate_signer_name(bad).is_err(), "{bad}");
        }
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
