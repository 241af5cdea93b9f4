//! The CSR controllers (approving, signing, cleaning) and the facts about a
//! CertificateSigningRequest they share.

pub mod approver;
pub mod cleaner;
pub mod policy;
pub mod signer;

#[cfg(test)]
mod policy_tests;

use std::time::SystemTime;

use base64::Engine;
use kubeboot_pki::csr::ParsedCsr;
use serde_json::Value;

/// The CSR collection path.
pub const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/// One informer over CSRs shared by the CSR controllers: each change is queued for every
/// controller that subscribed, and each CSR is held in memory once, not once per controller.
#[derive(Clone)]
pub struct CsrSource {
    informer: crate::runner::Informer,
    /// The subscribers' queues; guarded by the lock.
    queues: std::sync::Arc<std::sync::Mutex<Vec<std::sync::Arc<crate::runner::Queue>>>>,
}

impl CsrSource {
    /// Starts following the CSRs.
    pub fn start(tasks: &crate::tasks::Tasks, client: kubeboot_client::Client) -> Self {
        let queues: std::sync::Arc<std::sync::Mutex<Vec<std::sync::Arc<crate::runner::Queue>>>> =
            Default::default();
        let qs = queues.clone();
        let informer = crate::runner::Informer::start_trimmed(
            tasks,
            client,
            CSRS.into(),
            drop_issued_request,
            move |key| {
                for q in qs
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .iter()
                {
                    q.add(key);
                }
            },
        );
        Self { informer, queues }
    }

    /// A new queue fed by every change (and by every CSR already known), and the informer.
    pub fn subscribe(
        &self,
    ) -> (
        crate::runner::Informer,
        std::sync::Arc<crate::runner::Queue>,
    ) {
        let q = std::sync::Arc::new(crate::runner::Queue::default());
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(q.clone());
        for key in self.informer.keys() {
            q.add(&key);
        }
        (self.informer.clone(), q)
    }
}

/// What the CSR controllers keep of a CSR: all of it until it is issued, then not its
/// request (`spec.request`, a kilobyte or more; thousands of issued CSRs wait for the
/// cleaner). The approver and the signer act only on CSRs without a certificate, the cleaner
/// reads the certificate, and every write of a CSR takes its immutable spec from the stored
/// one, so nothing reads or loses it.
pub fn drop_issued_request(csr: &mut Value) {
    let issued = csr
        .pointer("/status/certificate")
        .and_then(Value::as_str)
        .is_some_and(|c| !certificate_der(c).is_empty());
    if let Some(spec) = csr.get_mut("spec").and_then(Value::as_object_mut)
        && issued
    {
        spec.remove("request");
    }
}

/// `status.certificate` decoded: empty when there is none (not base64 counts as none). A
/// CSR with a certificate is issued.
fn certificate_der(status_certificate: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(status_certificate)
        .unwrap_or_default()
}

/// What the controllers read from a CSR object.
#[derive(Clone, Debug)]
pub struct CsrView {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.creationTimestamp`.
    pub created: Option<SystemTime>,
    /// `spec.signerName`.
    pub signer: String,
    /// `spec.username`.
    pub username: String,
    /// `spec.usages`.
    pub usages: Vec<String>,
    /// `spec.expirationSeconds`.
    pub expiration_seconds: Option<i64>,
    /// Conditions: `(type, status, lastUpdateTime)`.
    pub conditions: Vec<(String, String, Option<SystemTime>)>,
    /// `status.certificate` (PEM), empty if none.
    pub certificate: Vec<u8>,
}

/// The fields of a CSR the view reads, deserialized directly (unknown fields skipped), so
/// reading a view from stored JSON builds no `Value` tree.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct RawCsr {
    // `Option`s throughout: a JSON `null` reads as absent, as Go reads it.
    metadata: Option<RawMeta>,
    spec: Option<RawSpec>,
    status: Option<RawStatus>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawMeta {
    name: Option<String>,
    uid: Option<String>,
    creation_timestamp: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawSpec {
    signer_name: Option<String>,
    username: Option<String>,
    usages: Option<Vec<String>>,
    expiration_seconds: Option<i64>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct RawStatus {
    conditions: Option<Vec<RawCondition>>,
    certificate: Option<String>,
}

#[derive(serde::Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RawCondition {
    #[serde(rename = "type")]
    ty: Option<String>,
    status: Option<String>,
    last_update_time: Option<String>,
}

impl From<RawCsr> for CsrView {
    fn from(raw: RawCsr) -> Self {
        let time = |t: Option<String>| t.as_deref().and_then(kubeboot_api::clock::parse_rfc3339);
        let (metadata, spec, status) = (
            raw.metadata.unwrap_or_default(),
            raw.spec.unwrap_or_default(),
            raw.status.unwrap_or_default(),
        );
        Self {
            name: metadata.name.unwrap_or_default(),
            uid: metadata.uid.unwrap_or_default(),
            created: time(metadata.creation_timestamp),
            signer: spec.signer_name.unwrap_or_default(),
            username: spec.username.unwrap_or_default(),
            usages: spec.usages.unwrap_or_default(),
            expiration_seconds: spec.expiration_seconds,
            conditions: status
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    (
                        c.ty.unwrap_or_default(),
                        c.status.unwrap_or_default(),
                        time(c.last_update_time),
                    )
                })
                .collect(),
            certificate: status
                .certificate
                .map(|c| certificate_der(&c))
                .unwrap_or_default(),
        }
    }
}

impl CsrView {
    /// Reads a CSR object.
    pub fn from_object(obj: &Value) -> Self {
        serde::Deserialize::deserialize(obj)
            .map(|raw: RawCsr| raw.into())
            .unwrap_or_else(|_| RawCsr::default().into())
    }

    /// Reads a CSR from its JSON text (an informer's copy), without building a `Value`.
    pub fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str::<RawCsr>(text).ok().map(Into::into)
    }

    /// Whether a condition of this type exists (status not inspected, as Kubernetes does).
    pub fn has(&self, ty: &str) -> bool {
        self.conditions.iter().any(|(t, _, _)| t == ty)
    }

    /// The `lastUpdateTime` of the first condition of this type.
    pub fn condition_time(&self, ty: &str) -> Option<SystemTime> {
        self.conditions
            .iter()
            .find(|(t, _, _)| t == ty)
            .and_then(|(_, _, at)| *at)
    }
}

/// Whether to verify `spec.request`'s self-signature again after admission did.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Signature {
    /// Verify (the signer, before it certifies the key).
    Verify,
    /// Admission verified it and the request is immutable (the approver).
    Admitted,
}

/// Decodes `spec.request`, verifying its signature unless `sig` says admission did.
pub fn parse_request(obj: &Value, sig: Signature) -> Result<ParsedCsr, String> {
    let b64 = obj
        .pointer("/spec/request")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("spec.request is not base64: {e}"))?;
    match sig {
        Signature::Verify => kubeboot_pki::csr::parse_pem(&pem),
        Signature::Admitted => kubeboot_pki::csr::parse_pem_unverified(&pem),
    }
    .map_err(|e| e.to_string())
}

/// Records an Event about a CSR (`kubectl describe csr` shows it).
pub(crate) fn record(
    events: &crate::events::Recorder,
    csr: &Value,
    what: &crate::events::Recorded,
    now: std::time::SystemTime,
) {
    let about = crate::events::Regarding {
        api_version: "certificates.k8s.io/v1",
        kind: "CertificateSigningRequest",
        object: csr,
    };
    events.record(crate::events::event(&about, what, now));
}

/// A field (`reason`, `message`) of a CSR's condition of type `ty`.
pub(crate) fn condition_field<'a>(csr: &'a Value, ty: &str, field: &str) -> &'a str {
    let conditions = csr.pointer("/status/conditions").and_then(Value::as_array);
    conditions
        .into_iter()
        .flatten()
        .find(|c| c["type"] == ty)
        .and_then(|c| c[field].as_str())
        .unwrap_or_default()
}

/// Appends a `True` condition to a CSR and writes it through a subresource (`approval` or
/// `status`). `Ok(false)` when the CSR changed or went meanwhile: its informer brings the
/// newer version back.
pub async fn add_condition(
    client: &kubeboot_client::Client,
    obj: &Value,
    subresource: &str,
    (ty, reason, message): (&str, &str, &str),
    now: SystemTime,
) -> Result<bool, kubeboot_client::ClientError> {
    let mut updated = obj.clone();
    let cond = serde_json::json!({"type": ty, "status": "True", "reason": reason, "message": message,
        "lastUpdateTime": kubeboot_api::clock::format_rfc3339(now)});
    match updated
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    {
        Some(c) => c.push(cond),
        None => updated["status"]["conditions"] = serde_json::json!([cond]),
    }
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match client
        .update::<serde::de::IgnoredAny>(&format!("{CSRS}/{name}/{subresource}"), &updated)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.code(), Some(404 | 409)) => Ok(false),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn the_informer_keeps_a_csr_whole_until_it_is_issued() {
        let spec = json!({"request": "UkVR", "signerName": "s", "usages": ["client auth"]});
        // (status, the request kept)
        let cases = [
            (json!(null), true),
            (json!({}), true),
            (
                json!({"conditions": [{"type": "Approved", "status": "True"}]}),
                true,
            ),
            (json!({"certificate": ""}), true),
            (json!({"certificate": "not base64!"}), true),
            (json!({"certificate": null}), true),
            (json!({"certificate": "Q0VSVA=="}), false),
        ];
        for (status, kept) in cases {
            let mut csr = json!({"metadata": {"name": "a"}, "spec": spec, "status": status});
            super::drop_issued_request(&mut csr);
            assert_eq!(csr["spec"].get("request").is_some(), kept, "{status}");
            assert_eq!(csr["spec"]["signerName"], "s", "the rest of the spec stays");
            assert_eq!(csr["status"], status, "the status stays");
        }
    }
}
