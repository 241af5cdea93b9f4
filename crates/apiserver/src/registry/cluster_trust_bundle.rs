//! certificates.k8s.io ClusterTrustBundle, v1beta1 and v1
//! (`pkg/registry/certificates/clustertrustbundle`, `pkg/apis/certificates/validation`,
//! the `ClusterTrustBundleAttest` admission plugin): a cluster-scoped set of X.509 trust
//! anchors, optionally linked to a signer, in which case it is named
//! `<signerName with / as :>:<suffix>` and only a user who may `attest` for that signer
//! may create or change it.

use std::collections::BTreeMap;
use std::time::SystemTime;

use k8s_openapi::api::certificates::v1::ClusterTrustBundle;
use kubeboot_api::{Status, StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{NAME, non_empty, str_at};
use super::strategy::{Admission, Admitted, Change, Strategy, only_gc_fields_change};
use super::{Kind, METADATA_PATCH, NameRule, ResourceDef, normalize, schema};
use crate::object::{self, meta_str};
use crate::selectors::{FieldLabel, FieldLabels};

/// The largest `spec.trustBundle` (`MaxTrustBundleSize`).
pub(crate) const MAX_TRUST_BUNDLE_SIZE: usize = 1024 * 1024;

/// The resource in v1.
pub(super) static CLUSTER_TRUST_BUNDLES: ResourceDef = BASE;

/// The resource in v1beta1 (Kubernetes 1.33–1.36); the same fields as v1.
pub(super) static CLUSTER_TRUST_BUNDLES_V1BETA1: ResourceDef = ResourceDef {
    version: "v1beta1",
    ..BASE
};

const BASE: ResourceDef = ResourceDef {
    kind_id: Kind::ClusterTrustBundle,
    group: "certificates.k8s.io",
    version: "v1",
    kind: "ClusterTrustBundle",
    plural: "clustertrustbundles",
    short_names: &[],
    namespaced: false,
    storage: "clustertrustbundles",
    subresources: &[],
    field_selectors: FieldLabels::Own(&[
        FieldLabel::at("metadata.name"),
        FieldLabel::at("spec.signerName"),
    ]),
    // Signer-linked names hold ':'; the strategy validates names as Kubernetes does.
    name_rule: NameRule::PathSegment,
    normalize: normalize::<ClusterTrustBundle>,
    schema: schema::<ClusterTrustBundle>,
    patch_schema: &METADATA_PATCH,
    protobuf: None,
    conversion: None,
    strategy: &ClusterTrustBundleStrategy,
};

#[derive(Debug)]
struct ClusterTrustBundleStrategy;

impl Strategy for ClusterTrustBundleStrategy {
    fn prepare_create(&self, def: &ResourceDef, obj: &mut Value, adm: &Admission) -> Admitted {
        attest(def, obj, None, adm)
    }

    fn prepare_update(&self, def: &ResourceDef, c: Change<'_>) -> Admitted {
        attest(def, c.new, Some(c.old), c.adm)
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        validate_bundle(obj, old)
    }

    fn columns(&self) -> Vec<TableColumn> {
        vec![
            NAME,
            TableColumn::text(
                "SignerName",
                "signerName indicates the associated signer, if any.",
            ),
        ]
    }

    fn cells(&self, obj: &Value, _now: SystemTime) -> Vec<Value> {
        vec![
            json!(meta_str(obj, "name")),
            json!(non_empty(signer_name(obj))),
        ]
    }
}

fn signer_name(obj: &Value) -> &str {
    str_at(obj, &["spec", "signerName"])
}

/// `ClusterTrustBundleAttest`: a signer-linked bundle is written only by a user who may
/// `attest` for its signer, unless an update changes only garbage-collection fields. It is
/// checked before validation (kube-apiserver checks after it), whatever the object the
/// client sent: an invalid request from a user who may not attest is refused 403 rather
/// than 422, and no part of what was sent (a name left out) can skip the check.
fn attest(def: &ResourceDef, new: &Value, old: Option<&Value>, adm: &Admission) -> Admitted {
    let signer = signer_name(new);
    if signer.is_empty()
        || old.is_some_and(|old| only_gc_fields_change(new, old))
        || adm.can_for_signer("attest", signer)
    {
        return Ok(());
    }
    Err(Status::forbidden(
        Some(def.subject(meta_str(new, "name"))),
        &format!("user not permitted to attest for signerName {signer:?}"),
    ))
}

/// `ValidateClusterTrustBundle` and, with `old`, `ValidateClusterTrustBundleUpdate` (which
/// does not parse an unchanged bundle again, and keeps the signer name).
pub(super) fn validate_bundle(obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let signer = signer_name(obj);
    let name = meta_str(obj, "name");
    let mut out: Vec<StatusCause> = name_errors(name, signer)
        .into_iter()
        .map(|m| StatusCause::invalid("metadata.name", name, &m))
        .collect();
    if !signer.is_empty()
        && let Err(why) = super::validate_signer_name(signer)
    {
        out.push(StatusCause::invalid("spec.signerName", signer, &why));
    }
    let bundle = str_at(obj, &["spec", "trustBundle"]);
    if old.is_none_or(|old| str_at(old, &["spec", "trustBundle"]) != bundle) {
        out.extend(trust_bundle_errors(bundle).into_iter().map(|m| match m {
            BundleError::TooLong => {
                StatusCause::too_long("spec.trustBundle", MAX_TRUST_BUNDLE_SIZE)
            }
            BundleError::Invalid(m) => {
                StatusCause::invalid("spec.trustBundle", "<value omitted>", &m)
            }
        }));
    }
    if let Some(old) = old
        && signer_name(old) != signer
    {
        out.push(StatusCause::invalid(
            "spec.signerName",
            signer,
            "field is immutable",
        ));
    }
    out
}

/// `ValidateClusterTrustBundleName`: without a signer, a DNS subdomain with no `:`; with
/// one, `<signerName with / as :>:` then a DNS subdomain.
pub(crate) fn name_errors(name: &str, signer: &str) -> Vec<String> {
    if signer.is_empty() {
        if name.contains(':') {
            return vec![
                "ClusterTrustBundle without signer name must not have \":\" in its name".into(),
            ];
        }
        return object::subdomain_errors(name);
    }
    let prefix = signer_name_prefix(signer);
    match name.strip_prefix(&prefix) {
        Some(rest) => object::subdomain_errors(rest),
        None => vec![format!(
            "ClusterTrustBundle for signerName {signer} must be named with prefix {prefix}"
        )],
    }
}

/// The prefix of the names of a signer's bundles: `example.com:signer:`.
pub(crate) fn signer_name_prefix(signer: &str) -> String {
    format!("{}:", signer.replace('/', ":"))
}

/// What is wrong with a trust bundle.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BundleError {
    /// Over [`MAX_TRUST_BUNDLE_SIZE`].
    TooLong,
    /// A block or the whole, in Kubernetes' words.
    Invalid(String),
}

/// `validateTrustBundle`: PEM `CERTIFICATE` blocks without headers, each a CA certificate,
/// at least one, none twice.
pub(crate) fn trust_bundle_errors(bundle: &str) -> Vec<BundleError> {
    if bundle.len() > MAX_TRUST_BUNDLE_SIZE {
        return vec![BundleError::TooLong];
    }
    let mut out = Vec::new();
    let mut seen: BTreeMap<Vec<u8>, Vec<usize>> = BTreeMap::new();
    for (i, block) in kubeboot_pki::pem::blocks(bundle).into_iter().enumerate() {
        let problem = if block.label != "CERTIFICATE" {
            Some(format!("entry {i} has bad block type: {}", block.label))
        } else if block.has_headers {
            Some(format!("entry {i} has PEM block headers"))
        } else {
            ca_problem(i, &block.der)
        };
        match problem {
            Some(p) => out.push(BundleError::Invalid(p)),
            None => seen.entry(block.der).or_default().push(i),
        }
    }
    if !out.is_empty() {
        return out;
    }
    if seen.is_empty() {
        out.push(BundleError::Invalid(
            "at least one trust anchor must be provided".into(),
        ));
    }
    let mut duplicates: Vec<&Vec<usize>> = seen.values().filter(|v| v.len() > 1).collect();
    duplicates.sort();
    for indices in duplicates {
        let list: Vec<String> = indices.iter().map(usize::to_string).collect();
        out.push(BundleError::Invalid(format!(
            "duplicate trust anchor (indices [{}])",
            list.join(" ")
        )));
    }
    out
}

/// Why entry `i` is not a CA certificate, if it is not.
fn ca_problem(i: usize, der: &[u8]) -> Option<String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => match cert.basic_constraints() {
            Ok(Some(bc)) if bc.value.ca => None,
            Ok(_) => Some(format!("entry {i} does not have the CA bit set")),
            Err(_) => Some(format!("entry {i} has invalid basic constraints")),
        },
        _ => Some(format!("entry {i} does not parse as X.509")),
    }
}

#[cfg(test)]
mod tests;
