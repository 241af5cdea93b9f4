//! Asking the cluster for a certificate, as the kubelet does: a fresh ECDSA P-256 key, a CSR
//! with the node's identity, then a watch on that CSR (by name) until it is issued, denied
//! or failed. The key never leaves the node.
//!
//! The first watch starts at the version the create answered with, so a join sends no list:
//! the create's answer is the CSR as it was at that version. Only a watch that ends early
//! (a server restart, a version compacted away) lists again, as the kubelet does.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use kubeboot_client::{Client, ClientError};
use kubeboot_pki::cert::subject;
use kubeboot_pki::csr::{CsrRequest, create_pem};
use kubeboot_pki::{KeyAlgorithm, PrivateKey};
use serde_json::{Value, json};

/// `kubernetes.io/kube-apiserver-client-kubelet`.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// `kubernetes.io/kubelet-serving`.
pub const SERVING_SIGNER: &str = "kubernetes.io/kubelet-serving";
const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/// What to ask for.
#[derive(Clone, Debug)]
pub struct CertRequest {
    /// The node's name (CN `system:node:<name>`, O `system:nodes`).
    pub node_name: String,
    /// The signer.
    pub signer: &'static str,
    /// DNS SANs (serving only).
    pub dns_names: Vec<String>,
    /// IP SANs (serving only).
    pub ip_addresses: Vec<IpAddr>,
}

/// An issued certificate and its key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate chain.
    pub cert_pem: Vec<u8>,
    /// The private key.
    pub key_pem: Vec<u8>,
    /// The CSR's name.
    pub csr_name: String,
}

/// Why no certificate came.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The API call failed.
    #[error("{0}")]
    Api(#[from] ClientError),
    /// Denied by a person or policy.
    #[error("certificate signing request {name} is denied, reason: {reason}, message: {message}")]
    Denied {
        /// CSR name.
        name: String,
        /// Reason.
        reason: String,
        /// Message.
        message: String,
    },
    /// The signer refused it.
    #[error("certificate signing request {name} failed, reason: {reason}, message: {message}")]
    Failed {
        /// CSR name.
        name: String,
        /// Reason.
        reason: String,
        /// Message.
        message: String,
    },
    /// Not approved and issued in time.
    #[error(
        "certificate signing request {name} was not approved and issued within {timeout:?}; approve it with `kubectl certificate approve {name}` while the node waits for it (run again, the node asks anew with a new key, under another name, so give it a longer timeout rather than approve the old one), or check the controllers"
    )]
    Timeout {
        /// CSR name.
        name: String,
        /// The wait.
        timeout: Duration,
    },
    /// Deleted or replaced while waiting.
    #[error("csr {0:?} was deleted or replaced while waiting")]
    Gone(String),
    /// Another request holds the name this key's request must have.
    #[error(
        "a certificate signing request named {0} already exists and is not this node's request; delete it (kubectl delete csr {0}) and try again"
    )]
    NameTaken(String),
    /// Key or CSR generation failed.
    #[error("{0}")]
    Crypto(String),
}

impl CertRequest {
    /// The kubelet's usages: `key encipherment` only for RSA keys (1.27+).
    fn usages(&self, alg: KeyAlgorithm) -> Vec<&'static str> {
        let mut u = vec!["digital signature"];
        if matches!(alg, KeyAlgorithm::Rsa(_)) {
            u.push("key encipherment");
        }
        u.push(if self.signer == SERVING_SIGNER {
            "server auth"
        } else {
            "client auth"
        });
        u
    }
}

/// Creates the CSR with `client` and waits for its certificate (an ECDSA P-256 key, as the
/// kubelet makes).
pub async fn request_certificate(
    client: &Client,
    req: &CertRequest,
    timeout: Duration,
) -> Result<Issued, BootstrapError> {
    request_certificate_with_key(client, req, KeyAlgorithm::EcdsaP256, timeout).await
}

/// Creates the CSR for a new key of `alg` with `client` and waits for its certificate.
pub async fn request_certificate_with_key(
    client: &Client,
    req: &CertRequest,
    alg: KeyAlgorithm,
    timeout: Duration,
) -> Result<Issued, BootstrapError> {
    let r = req.clone();
    let make = move || -> Result<(String, String, Vec<u8>), String> {
        let key = PrivateKey::generate(alg).map_err(|e| e.to_string())?;
        let csr = create_pem(
            &key,
            &CsrRequest {
                subject: subject(
                    &format!("system:node:{}", r.node_name),
                    &["system:nodes".into()],
                ),
                dns_names: r.dns_names.clone(),
                ip_addresses: r.ip_addresses,
                emails: vec![],
                uris: vec![],
            },
        )
        .map_err(|e| e.to_string())?;
        Ok((key.to_pem(), csr, key.public_key_der()))
    };
    // An RSA key takes tens of milliseconds to find, too long to hold a runtime thread; an
    // elliptic-curve key and its CSR take tens of microseconds, less than handing them to
    // another thread and back.
    let made = match alg {
        KeyAlgorithm::Rsa(_) => tokio::task::spawn_blocking(make)
            .await
            .map_err(|e| BootstrapError::Crypto(e.to_string()))?,
        _ => make(),
    };
    let (key_pem, csr_pem, public_key) = made.map_err(BootstrapError::Crypto)?;
    let usages = req.usages(alg);
    let name = digested_name(
        &public_key,
        &format!("system:node:{}", req.node_name),
        &["system:nodes"],
        &usages,
    );
    let body = json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": name},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(csr_pem.as_bytes()),
            "signerName": req.signer,
            "usages": usages,
        }
    });
    let wait = async {
        let created = create_once(client, &name, &body).await?;
        let uid = str_at(&created, "/metadata/uid").to_owned();
        if let Some(pem) = check(&created, &name, &uid)? {
            return Ok(pem);
        }
        let from = str_at(&created, "/metadata/resourceVersion").to_owned();
        wait_for_certificate(client, &name, &uid, Some(from).filter(|rv| !rv.is_empty())).await
    };
    let cert_pem =
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| BootstrapError::Timeout {
                name: name.clone(),
                timeout,
            })??;
    Ok(Issued {
        cert_pem,
        key_pem: key_pem.into_bytes(),
        csr_name: name,
    })
}

/// The CSR's name, as the kubelet derives it (`digestedName`): `node-csr-` and the
/// SHA-512/256 of the public key, subject and usages, each base64url-encoded and ended by
/// `|`. A request sent again for the same key (after an answer lost to a broken connection
/// or a restarted server) finds the first CSR instead of making a second.
pub fn digested_name(
    public_key_der: &[u8],
    common_name: &str,
    organizations: &[&str],
    usages: &[&str],
) -> String {
    use sha2::Digest;
    let encode = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut hash = sha2::Sha512_256::new();
    let fields = [public_key_der, common_name.as_bytes()]
        .into_iter()
        .chain(organizations.iter().map(|o| o.as_bytes()))
        .chain(usages.iter().map(|u| u.as_bytes()));
    for field in fields {
        hash.update(encode(field).as_bytes());
        hash.update(b"|");
    }
    format!("node-csr-{}", encode(&hash.finalize()))
}

/// A string field of a JSON object, empty when absent.
fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Creates the CSR `name` once, whatever happens to the answers: when the server cannot be
/// reached or is restarting the create is sent again, and when it already exists (an
/// earlier try that succeeded unseen) the stored one is taken if it is this very request.
/// Returns the CSR as the server answered it.
async fn create_once(client: &Client, name: &str, body: &Value) -> Result<Value, BootstrapError> {
    let mut outage = Outage::default();
    loop {
        let tried = match client.create::<Value>(CSRS, body).await {
            Ok(created) => return Ok(created),
            Err(ClientError::Api(s)) if s.reason == "AlreadyExists" => {
                match client.get::<Value>(&format!("{CSRS}/{name}")).await {
                    Ok(stored)
                        if stored.get("spec").map(same_request)
                            == Some(same_request(&body["spec"])) =>
                    {
                        return Ok(stored);
                    }
                    Ok(_) => return Err(BootstrapError::NameTaken(name.to_owned())),
                    Err(e) => e,
                }
            }
            Err(e) => e,
        };
        if !is_transient(&tried) {
            return Err(tried.into());
        }
        outage
            .pause(name, &tried, "creating the CSR again after a lost answer")
            .await;
    }
}

/// What makes two CSRs the same request: the signed request and the signer.
fn same_request(spec: &Value) -> (Option<&str>, Option<&str>) {
    (
        spec.get("request").and_then(Value::as_str),
        spec.get("signerName").and_then(Value::as_str),
    )
}

/// Decides on one observed state of the CSR: issued, still waiting, or a final error.
pub fn check(csr: &Value, name: &str, uid: &str) -> Result<Option<Vec<u8>>, BootstrapError> {
    if csr
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .is_some_and(|u| u != uid)
    {
        return Err(BootstrapError::Gone(name.to_owned()));
    }
    let conds: Vec<&Value> = csr
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let field = |c: &Value, f: &str| {
        c.get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if let Some(c) = conds
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Denied"))
    {
        return Err(BootstrapError::Denied {
            name: name.into(),
            reason: field(c, "reason"),
            message: field(c, "message"),
        });
    }
    if let Some(c) = conds
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Failed"))
    {
        return Err(BootstrapError::Failed {
            name: name.into(),
            reason: field(c, "reason"),
            message: field(c, "message"),
        });
    }
    let approved = conds
        .iter()
        .any(|c| c.get("type").and_then(Value::as_str) == Some("Approved"));
    let cert = csr
        .pointer("/status/certificate")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if approved && !cert.is_empty() {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(cert)
            .map_err(|e| {
                BootstrapError::Crypto(format!("issued certificate is not base64: {e}"))
            })?;
        return Ok(Some(pem));
    }
    Ok(None)
}

/// Waits for the CSR to be issued, as the kubelet waits: a watch by name from version
/// `from` (the create's) or else from a list's; when the watch ends, or the server cannot be
/// reached or is restarting, a new list after a pause (growing to 5 s) — until the caller's
/// deadline. A denial, a failure or the CSR's removal ends the wait at once.
async fn wait_for_certificate(
    client: &Client,
    name: &str,
    uid: &str,
    mut from: Option<String>,
) -> Result<Vec<u8>, BootstrapError> {
    let mut outage = Outage::default();
    loop {
        match watch_once(client, name, uid, from.take()).await {
            Ok(Some(pem)) => return Ok(pem),
            Ok(None) => outage = Outage::default(),
            Err(BootstrapError::Api(e)) if is_transient(&e) => {
                outage
                    .pause(
                        name,
                        &e,
                        "waiting for the certificate through a server outage",
                    )
                    .await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// A watch from version `from`, or from a list's when `None` (the list's CSR checked
/// first): the certificate, or `None` when the watch ended first.
async fn watch_once(
    client: &Client,
    name: &str,
    uid: &str,
    from: Option<String>,
) -> Result<Option<Vec<u8>>, BootstrapError> {
    let path = format!("{CSRS}?fieldSelector=metadata.name%3D{name}");
    let rv = match from {
        Some(rv) => rv,
        None => {
            let list: Value = client.get(&path).await?;
            match list
                .get("items")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
            {
                None => return Err(BootstrapError::Gone(name.to_owned())),
                Some(csr) => {
                    if let Some(pem) = check(csr, name, uid)? {
                        return Ok(Some(pem));
                    }
                }
            }
            str_at(&list, "/metadata/resourceVersion").to_owned()
        }
    };
    let watch = format!("{path}&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=300");
    let mut events = match client.watch(&watch).await {
        Ok(events) => events,
        // The version is older than the server still keeps: list again.
        Err(e) if e.code() == Some(410) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    while let Some(ev) = events.recv().await {
        let ev = ev?;
        match ev.get("type").and_then(Value::as_str) {
            Some("ADDED" | "MODIFIED") => {
                if let Some(pem) = check(&ev["object"], name, uid)? {
                    return Ok(Some(pem));
                }
            }
            Some("DELETED") => return Err(BootstrapError::Gone(name.to_owned())),
            Some("ERROR") => return Ok(None), // list again
            _ => {}
        }
    }
    Ok(None)
}

/// Whether a failure while waiting is worth waiting through: the server unreachable or
/// gone mid-watch, or answering that it is busy or failing (429, 5xx).
pub(crate) fn is_transient(e: &ClientError) -> bool {
    match e {
        ClientError::Transport { .. } => true,
        ClientError::Api(s) => s.code == 429 || s.code >= 500,
        ClientError::Config(_) | ClientError::Decode(_) => false,
    }
}

/// The pauses between tries while the server cannot be reached or is restarting.
#[derive(Default)]
pub(crate) struct Outage {
    last: Option<Duration>,
}

impl Outage {
    /// Sleeps the next pause ([`next_pause`]), saying why at debug level.
    pub(crate) async fn pause(&mut self, csr: &str, error: &ClientError, why: &str) {
        let wait = next_pause(self.last);
        tracing::debug!(%csr, %error, retry_in = ?wait, "{why}");
        tokio::time::sleep(wait).await;
        self.last = Some(wait);
    }
}

/// The pause before the next try: 200 ms, doubling to at most 5 s.
fn next_pause(last: Option<Duration>) -> Duration {
    last.map_or(Duration::from_millis(200), |d| {
        (d * 2).min(Duration::from_secs(5))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_names_are_the_kubelets_digested_names() {
        // Expected values from Kubernetes' digestedName (pkg/kubelet/certificate/bootstrap)
        // run in Go on the same input.
        let key = [
            0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
        ];
        let usages = ["digital signature", "client auth"];
        for (cn, orgs, usages, want) in [
            (
                "system:node:worker-1",
                &["system:nodes"][..],
                &usages[..],
                "node-csr-hCIjbsAJChJbEJlVgytlpS_bJfS-1_bE2JeHUgmhTyk",
            ),
            (
                "system:node:worker-2",
                &["system:nodes"][..],
                &usages[..],
                "node-csr-NjwcCP0TLRPrrk8TemQxgunc3RDvyFllbG05aoN6r_4",
            ),
        ] {
            assert_eq!(digested_name(&key, cn, orgs, usages), want);
        }
        assert_eq!(
            digested_name(&[], "", &[], &[]),
            "node-csr-Kb5prV5Lyn1iqYYtD4OqOHY4FER8VwAK5LE6jTzkOqM"
        );
    }

    #[test]
    fn a_wait_goes_on_through_outages_and_stops_at_a_refusal() {
        let transport = ClientError::Transport {
            server: "https://127.0.0.1:6443".into(),
            message: "connection refused".into(),
        };
        assert!(is_transient(&transport));
        assert!(!is_transient(&ClientError::Decode("x".into())));
        let ms = Duration::from_millis;
        let pauses: Vec<Duration> =
            std::iter::successors(Some(next_pause(None)), |p| Some(next_pause(Some(*p))))
                .take(7)
                .collect();
        assert_eq!(
            pauses,
            [
                ms(200),
                ms(400),
                ms(800),
                ms(1600),
                ms(3200),
                ms(5000),
                ms(5000)
            ]
        );
    }
}
