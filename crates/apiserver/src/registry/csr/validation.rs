//! What makes a CertificateSigningRequest invalid, as Kubernetes' `ValidateCertificateRequest`
//! words it: the request must be a PEM CSR whose signature verifies, the signer name a
//! domain and path, the usages known and distinct, the duration at least 10 minutes, and the
//! conditions and certificate as the API allows.

use base64::Engine;
use kubeboot_api::StatusCause;
use serde_json::Value;

use super::B64;
use crate::registry::ResourceDef;

pub(super) fn condition_types(obj: &Value) -> Vec<(String, Value)> {
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

/// Decodes and verifies `spec.request` (base64 of a PEM CSR).
pub(super) fn csr_request(obj: &Value) -> Result<kubeboot_pki::csr::ParsedCsr, String> {
    kubeboot_pki::csr::parse_pem(&request_pem(obj)?).map_err(|e| e.to_string())
}

/// Decodes `spec.request` without verifying its signature.
pub(super) fn csr_request_unverified(obj: &Value) -> Result<kubeboot_pki::csr::ParsedCsr, String> {
    kubeboot_pki::csr::parse_pem_unverified(&request_pem(obj)?).map_err(|e| e.to_string())
}

pub(super) fn request_pem(obj: &Value) -> Result<Vec<u8>, String> {
    let b64 = obj
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .unwrap_or_default();
    B64.decode(b64).map_err(|e| format!("not base64: {e}"))
}

pub(super) fn validate_csr(
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
            // Kubernetes lists the supported usages sorted (`sets.List`), and reports the
            // unsupported ones before the duplicates.
            let mut supported: Vec<&str> = kubeboot_pki::Usage::ALL
                .iter()
                .map(|u| u.k8s_name())
                .collect();
            supported.sort_unstable();
            let names: Vec<&str> = usages
                .iter()
                .map(|u| u.as_str().unwrap_or_default())
                .collect();
            for (i, s) in names.iter().enumerate() {
                if kubeboot_pki::Usage::from_k8s_name(s).is_none() {
                    causes.push(StatusCause::not_supported(
                        &format!("spec.usages[{i}]"),
                        s,
                        &supported,
                    ));
                }
            }
            for (i, s) in names.iter().enumerate() {
                if names[..i].contains(s) {
                    causes.push(StatusCause::duplicate(&format!("spec.usages[{i}]"), s));
                }
            }
        }
    }
    if let Some(secs) = obj
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        && secs < 600
    {
        causes.push(StatusCause::invalid_rendered(
            "spec.expirationSeconds",
            &secs.to_string(),
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    validate_csr_status(obj, old, causes);
}

/// What a condition's `status` may be: `True` alone for Approved, Denied and Failed.
fn condition_status_cause(field: &str, ty: &str, status: &str) -> Option<StatusCause> {
    let allowed: &[&str] = match ty {
        "Approved" | "Denied" | "Failed" => &["True"],
        _ => &["False", "True", "Unknown"],
    };
    match status {
        "" => Some(StatusCause::required(field, "")),
        s if !allowed.contains(&s) => Some(StatusCause::not_supported(field, s, allowed)),
        _ => None,
    }
}

pub(super) fn validate_csr_status(obj: &Value, old: Option<&Value>, causes: &mut Vec<StatusCause>) {
    let conds = condition_types(obj);
    let (mut approved, mut denied) = (false, false);
    let mut seen: Vec<&str> = Vec::new();
    // Each condition as `validateConditions` checks it: its type, its status, Approved
    // and Denied not both (reported at the second), no type twice.
    for (i, (ty, c)) in conds.iter().enumerate() {
        let field = format!("status.conditions[{i}]");
        let status = c.get("status").and_then(Value::as_str).unwrap_or_default();
        if ty.is_empty() {
            causes.push(StatusCause::required(&format!("{field}.type"), ""));
        }
        causes.extend(condition_status_cause(
            &format!("{field}.status"),
            ty,
            status,
        ));
        let both = match ty.as_str() {
            "Approved" => {
                approved = true;
                denied
            }
            "Denied" => {
                denied = true;
                approved
            }
            _ => false,
        };
        if both {
            causes.push(StatusCause::invalid(
                &format!("{field}.type"),
                ty,
                "Approved and Denied conditions are mutually exclusive",
            ));
        }
        if !ty.is_empty() && seen.contains(&ty.as_str()) {
            causes.push(StatusCause::duplicate(&format!("{field}.type"), ty));
        }
        seen.push(ty);
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

pub(super) fn valid_cert_bundle(pem: &[u8]) -> bool {
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

#[cfg(test)]
mod tests {
    use serde_json::json;

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
    fn a_too_short_expiration_is_printed_as_a_number() {
        let def = crate::registry::find("certificates.k8s.io", "v1", "certificatesigningrequests")
            .expect("CSRs are served");
        let csr = json!({"spec": {"expirationSeconds": 599}});
        let mut causes = Vec::new();
        validate_csr(def, &csr, None, &mut causes);
        let expiration: Vec<&str> = causes
            .iter()
            .filter(|c| c.field == "spec.expirationSeconds")
            .map(|c| c.message.as_str())
            .collect();
        assert_eq!(
            expiration,
            ["Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)"]
        );
    }
}
