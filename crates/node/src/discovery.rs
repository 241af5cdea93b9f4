//! kubeadm join's discovery: fetch `cluster-info` insecurely, check its JWS signature with
//! the token and its CA against the pins, fetch it again over TLS verified by that CA, and
//! compare. Or take the cluster from a kubeconfig file or an `https://` URL.

use std::time::Duration;

use kubeboot_bootstrap::BootstrapToken;
use kubeboot_bootstrap::cluster_info::{JWS_PREFIX, KUBECONFIG_KEY};
use kubeboot_client::{Client, DeferredTrust, Identity, Trust};
use kubeboot_pki::Kubeconfig;
use kubeboot_pki::pin::PinSet;
use serde_json::Value;

/// The cluster a node joins: where the API server is and which CAs to trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// `https://host:port` (from cluster-info).
    pub server: String,
    /// The CA bundle, PEM (all certificates of cluster-info).
    pub ca_pem: Vec<u8>,
}

/// How trust in the cluster's CA is established.
#[derive(Clone, Debug)]
pub enum CaTrust {
    /// Any of these pins must match a CA in cluster-info.
    Pinned(PinSet),
    /// `--discovery-token-unsafe-skip-ca-verification`: the JWS alone.
    InsecureUnpinned,
}

/// Why discovery failed, in words that tell the operator what to do.
#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    /// cluster-info has no kubeconfig.
    #[error(
        "there is no kubeconfig key in the cluster-info ConfigMap. This API Server isn't set up for token bootstrapping, can't connect"
    )]
    NoKubeconfig,
    /// No signature for this token id.
    #[error(
        "could not find a JWS signature in the cluster-info ConfigMap for token ID {0:?}: the token is unknown, expired or not allowed to sign. Use \"kubeboot token create\" on the control-plane node to create a new valid token"
    )]
    NoSignature(String),
    /// The signature does not verify.
    #[error(
        "failed to verify JWS signature of received cluster info object, can't trust this API Server (wrong token, or cluster-info was tampered with)"
    )]
    BadSignature,
    /// The kubeconfig does not parse or has no cluster.
    #[error("the kubeconfig in cluster-info is not usable: {0}")]
    BadKubeconfig(String),
    /// No CA matches the pins.
    #[error(
        "cluster CA found in cluster-info ConfigMap is invalid: none of the public keys {presented:?} are pinned (expected one of {expected:?}); check --discovery-token-ca-cert-hash against `kubeboot token create --print-join-command` on the control plane"
    )]
    PinMismatch {
        /// The pins of the CAs presented.
        presented: Vec<String>,
        /// The pins given.
        expected: Vec<String>,
    },
    /// The server's certificate does not chain to the CA cluster-info names.
    #[error(
        "the API server's certificate is not signed by the CA in cluster-info, can't trust this API Server: {0}. Check that the endpoint is this cluster's API server and not a proxy that terminates TLS"
    )]
    Untrusted(String),
    /// Could not get cluster-info in time.
    #[error("could not fetch cluster-info from {endpoint} within {timeout:?}: {last}")]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// The timeout.
        timeout: Duration,
        /// The last failure.
        last: String,
    },
    /// A discovery file or URL was unusable.
    #[error("discovery file {0}")]
    File(String),
}

impl DiscoveryError {
    /// Whether trying again later may help (the signer may not have run yet).
    fn is_transient(&self) -> bool {
        matches!(self, DiscoveryError::NoSignature(_))
    }
}

/// Checks a cluster-info ConfigMap's data: the JWS of `token`, then the CA against the
/// pins. Returns the cluster.
pub fn verify_cluster_info(
    data: &serde_json::Map<String, Value>,
    token: &BootstrapToken,
    trust: &CaTrust,
) -> Result<Cluster, DiscoveryError> {
    let kubeconfig = data
        .get(KUBECONFIG_KEY)
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty())
        .ok_or(DiscoveryError::NoKubeconfig)?;
    let id = token.id.as_str();
    let jws = data
        .get(&format!("{JWS_PREFIX}{id}"))
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty())
        .ok_or_else(|| DiscoveryError::NoSignature(id.to_owned()))?;
    if !kubeboot_bootstrap::jws::verify_detached(jws, kubeconfig, id, token.secret.expose()) {
        return Err(DiscoveryError::BadSignature);
    }
    let kubeconfig = Kubeconfig::from_yaml(kubeconfig)
        .map_err(|e| DiscoveryError::BadKubeconfig(e.to_string()))?;
    let cluster = cluster_of(&kubeconfig, CaOrigin::Remote)?;
    if let CaTrust::Pinned(pins) = trust {
        let presented: Vec<Vec<u8>> = x509_parser::pem::Pem::iter_from_buffer(&cluster.ca_pem)
            .filter_map(Result::ok)
            .filter_map(|p| {
                x509_parser::parse_x509_certificate(&p.contents)
                    .ok()
                    .map(|(_, c)| c.public_key().raw.to_vec())
            })
            .collect();
        if !presented.iter().any(|spki| pins.allows_spki(spki)) {
            return Err(DiscoveryError::PinMismatch {
                presented: presented
                    .iter()
                    .map(|s| kubeboot_pki::pin::spki_pin(s))
                    .collect(),
                expected: pins.to_strings(),
            });
        }
    }
    Ok(cluster)
}

/// Where a kubeconfig came from, which decides whether it may name its CA by a file path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaOrigin {
    /// A kubeconfig from the network (cluster-info, or a `--discovery-file` URL), which
    /// nobody has authenticated yet: its CA must be
    /// inline (`certificate-authority-data`), as kubeadm requires; a path is refused, never
    /// opened — the server would choose a file of the joining machine to trust.
    Remote,
    /// A kubeconfig this machine's operator gave: a CA file it names is read.
    Local,
}

impl CaOrigin {
    /// The origin of a `--discovery-file` location: an `https://` URL is fetched, so
    /// remote; anything else is a file on this machine.
    pub fn of_discovery_file(location: &str) -> Self {
        match location.starts_with(HTTPS) {
            true => Self::Remote,
            false => Self::Local,
        }
    }
}

const HTTPS: &str = "https://";

/// The unnamed (or current) cluster of a kubeconfig.
pub fn cluster_of(kc: &Kubeconfig, origin: CaOrigin) -> Result<Cluster, DiscoveryError> {
    let entry = kc
        .clusters
        .iter()
        .find(|c| c.name.is_empty())
        .or_else(|| {
            kc.current()
                .ok()
                .and_then(|(c, _)| kc.clusters.iter().find(|e| std::ptr::eq(&e.cluster, c)))
        })
        .or(kc.clusters.first())
        .ok_or_else(|| DiscoveryError::BadKubeconfig("no cluster".into()))?;
    use base64::Engine;
    let ca_pem = match (
        &entry.cluster.certificate_authority_data,
        &entry.cluster.certificate_authority,
    ) {
        (Some(d), _) => base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .map_err(|e| DiscoveryError::BadKubeconfig(e.to_string()))?,
        (None, Some(p)) if origin == CaOrigin::Local => {
            std::fs::read(p).map_err(|e| DiscoveryError::BadKubeconfig(format!("{p}: {e}")))?
        }
        (None, Some(p)) => {
            return Err(DiscoveryError::BadKubeconfig(format!(
                "it names its CA by a file path (certificate-authority: {p}); only certificate-authority-data is accepted from cluster-info"
            )));
        }
        (None, None) => {
            return Err(DiscoveryError::BadKubeconfig(
                "the cluster has no CA data".into(),
            ));
        }
    };
    Ok(Cluster {
        server: entry.cluster.server.clone(),
        ca_pem,
    })
}

pub(crate) const CLUSTER_INFO: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

/// Why an API server endpoint cannot be dialled, in kubeadm's words
/// (`ValidateDiscoveryTokenAPIServer`, Go's `net.SplitHostPort`): it must be `host:port`
/// (`[v6]:port`; an `https://` before it is taken off), so a missing port is refused at
/// once instead of dialled on 443 until discovery times out.
pub fn endpoint_errors(endpoint: &str) -> Option<String> {
    let hostport = endpoint.trim_start_matches("https://");
    let why = split_host_port_error(hostport)?;
    Some(format!(
        "discovery.bootstrapToken.apiServerEndpoint: Invalid value: {endpoint:?}: address {hostport}: {why}"
    ))
}

/// What Go's `net.SplitHostPort` says of `hostport`, if it refuses it.
fn split_host_port_error(hostport: &str) -> Option<&'static str> {
    const MISSING_PORT: &str = "missing port in address";
    const TOO_MANY_COLONS: &str = "too many colons in address";
    let Some(last_colon) = hostport.rfind(':') else {
        return Some(MISSING_PORT);
    };
    let (from, to) = if hostport.starts_with('[') {
        let Some(end) = hostport.find(']') else {
            return Some("missing ']' in address");
        };
        if end + 1 == hostport.len() {
            return Some(MISSING_PORT);
        }
        if end + 1 != last_colon {
            return Some(match hostport.as_bytes()[end + 1] {
                b':' => TOO_MANY_COLONS,
                _ => MISSING_PORT,
            });
        }
        (1, end + 1)
    } else {
        if hostport[..last_colon].contains(':') {
            return Some(TOO_MANY_COLONS);
        }
        (0, 0)
    };
    if hostport[from..].contains('[') {
        return Some("unexpected '[' in address");
    }
    if hostport[to..].contains(']') {
        return Some("unexpected ']' in address");
    }
    None
}

/// What token discovery found: the cluster, and an anonymous client of the endpoint that
/// trusts the cluster's CA — its connections already verified against it — for the TLS
/// bootstrap to continue on (with [`Client::with_token`]) without new handshakes.
pub struct Discovered {
    /// The cluster.
    pub cluster: Cluster,
    /// The verified client of the endpoint.
    pub client: Client,
}

/// Token discovery against `endpoint` (`host:port`), retrying with backoff until `timeout`.
///
/// cluster-info is fetched before the CA is known and checked (JWS, pins); then the
/// certificate chain of every connection the fetch used is verified against that CA
/// ([`DeferredTrust`]). kubeadm instead fetches cluster-info a second time over a new client
/// that trusts the CA, and compares: that proves the same thing — the answer came from a
/// server the CA vouches for — which the retroactive check has already proven of the first
/// answer, so no second fetch is made.
pub async fn token_discovery(
    endpoint: &str,
    token: &BootstrapToken,
    trust: &CaTrust,
    timeout: Duration,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Discovered, DiscoveryError> {
    let url = format!("https://{}", endpoint.trim_start_matches("https://"));
    let deadline = tokio::time::Instant::now() + timeout;
    let deferred = DeferredTrust::default();
    let client = Client::new(&url, Trust::Deferred(deferred.clone()), Identity::Anonymous)
        .map_err(|e| DiscoveryError::File(e.to_string()))?
        .with_timeout(Duration::from_secs(10));
    log(&format!(
        "[discovery] Created cluster-info discovery client, requesting info from {url:?}"
    ));
    let cluster = poll(&client, deadline, endpoint, timeout, |data| {
        verify_cluster_info(data, token, trust)
    })
    .await?;
    deferred
        .pin(&cluster.ca_pem)
        .map_err(|e| DiscoveryError::Untrusted(e.to_string()))?;
    if matches!(trust, CaTrust::InsecureUnpinned) {
        log(
            "[discovery] WARNING: cluster CA verification was skipped (--discovery-token-unsafe-skip-ca-verification): the cluster is trusted on the token's signature alone",
        );
        return Ok(Discovered { cluster, client });
    }
    log(
        "[discovery] Cluster info signature and contents are valid and TLS certificate validates against pinned roots, will use API Server",
    );
    log(&format!(
        "[discovery] Successfully established connection with API Server {:?}",
        cluster.server
    ));
    Ok(Discovered { cluster, client })
}

async fn poll<T>(
    client: &Client,
    deadline: tokio::time::Instant,
    endpoint: &str,
    timeout: Duration,
    check: impl Fn(&serde_json::Map<String, Value>) -> Result<T, DiscoveryError>,
) -> Result<T, DiscoveryError> {
    let mut wait = Duration::from_millis(100);
    loop {
        let last = match client.get::<Value>(CLUSTER_INFO).await {
            Ok(cm) => {
                let data = cm
                    .get("data")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                match check(&data) {
                    Ok(v) => return Ok(v),
                    Err(e) if e.is_transient() => e.to_string(),
                    Err(e) => return Err(e),
                }
            }
            Err(e) => format!("failed to request the cluster-info ConfigMap: {e}"),
        };
        if tokio::time::Instant::now() + wait > deadline {
            return Err(DiscoveryError::Timeout {
                endpoint: endpoint.to_owned(),
                timeout,
                last,
            });
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(5));
    }
}

/// `--discovery-file`: a kubeconfig path or an `https://` URL to one.
pub async fn file_discovery(location: &str) -> Result<Kubeconfig, DiscoveryError> {
    let text = if let Some(rest) = location.strip_prefix(HTTPS) {
        let (host, path) = rest
            .split_once('/')
            .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
        let client = Client::new(
            &format!("https://{host}"),
            Trust::system().map_err(|e| DiscoveryError::File(e.to_string()))?,
            Identity::Anonymous,
        )
        .map_err(|e| DiscoveryError::File(e.to_string()))?;
        let resp = client
            .send(kubeboot_client::Method::GET, &path, None)
            .await
            .map_err(|e| DiscoveryError::File(format!("{location}: {e}")))?;
        if !resp.status.is_success() {
            return Err(DiscoveryError::File(format!(
                "error trying to fetch discovery kubeconfig over HTTPS from {location}, received status {}",
                resp.status.as_u16()
            )));
        }
        String::from_utf8_lossy(&resp.body).into_owned()
    } else {
        std::fs::read_to_string(location)
            .map_err(|e| DiscoveryError::File(format!("{location}: {e}")))?
    };
    let kc = Kubeconfig::from_yaml(&text)
        .map_err(|e| DiscoveryError::File(format!("{location}: {e}")))?;
    if kc.clusters.is_empty() {
        return Err(DiscoveryError::File(format!("{location} holds no cluster")));
    }
    Ok(kc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_host_and_port_as_go_splits_them() {
        for ok in [
            "127.0.0.1:6443",
            "cp.example:443",
            "[::1]:6443",
            "https://cp:6443",
        ] {
            assert_eq!(endpoint_errors(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("127.0.0.1", "missing port in address"),
            ("::1", "too many colons in address"),
            ("a:b:6443", "too many colons in address"),
            ("[::1]", "missing port in address"),
            ("[::1", "missing ']' in address"),
            ("[::1]x:6443", "missing port in address"),
            ("a]:6443", "unexpected ']' in address"),
            ("a[:6443", "unexpected '[' in address"),
        ] {
            assert_eq!(
                endpoint_errors(bad),
                Some(format!(
                    "discovery.bootstrapToken.apiServerEndpoint: Invalid value: {bad:?}: address {bad}: {why}"
                )),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_discovery_file_is_remote_when_it_is_a_url() {
        for (location, want) in [
            ("https://example.com/cluster-info.yaml", CaOrigin::Remote),
            ("/etc/kubernetes/discovery.yaml", CaOrigin::Local),
            ("discovery.yaml", CaOrigin::Local),
            ("http://example.com/x", CaOrigin::Local),
        ] {
            assert_eq!(CaOrigin::of_discovery_file(location), want, "{location}");
        }
    }
    use kubeboot_bootstrap::cluster_info::kubeconfig;
    use kubeboot_bootstrap::jws::sign_detached;

    fn ca_pem() -> String {
        kubeboot_pki::CertificateAuthority::create(
            "kubernetes",
            kubeboot_pki::KeyAlgorithm::EcdsaP256,
            kubeboot_api::Clock::now(&kubeboot_api::SystemClock),
            Duration::from_secs(3600),
            kubeboot_pki::cert::random_serial(),
        )
        .unwrap()
        .cert_pem()
        .to_owned()
    }

    fn data(kc: &str, id: &str, jws: &str) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert(KUBECONFIG_KEY.into(), Value::String(kc.into()));
        m.insert(format!("{JWS_PREFIX}{id}"), Value::String(jws.into()));
        m
    }

    #[test]
    fn a_signed_cluster_info_naming_a_local_ca_file_is_refused_without_reading_it() {
        let token: BootstrapToken = "abcdef.0123456789abcdef".parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let planted = dir.path().join("ca.crt");
        let ca = ca_pem();
        std::fs::write(&planted, &ca).unwrap();
        let kc = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: \"\"\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority: {}\ncontexts: []\nusers: []\n",
            planted.display()
        );
        let signed = data(
            &kc,
            "abcdef",
            &sign_detached(&kc, "abcdef", "0123456789abcdef"),
        );
        let pin = kubeboot_pki::pin::pem_cert_pin(ca.as_bytes()).unwrap();
        let trust = CaTrust::Pinned(PinSet::parse([pin.as_str()]).unwrap());
        match verify_cluster_info(&signed, &token, &trust) {
            Err(DiscoveryError::BadKubeconfig(why)) => {
                assert!(why.contains("certificate-authority-data"), "{why}")
            }
            other => panic!("refused as a bad kubeconfig, not {other:?}"),
        }
        // The operator's own kubeconfig may name a file.
        let local = cluster_of(&Kubeconfig::from_yaml(&kc).unwrap(), CaOrigin::Local)
            .expect("a local kubeconfig");
        assert_eq!(local.ca_pem, ca.as_bytes());
    }

    #[test]
    fn every_check_of_kubeadm_discovery() {
        let token: BootstrapToken = "abcdef.0123456789abcdef".parse().unwrap();
        let old = ca_pem();
        let new = ca_pem();
        let bundle = format!("{old}{new}");
        let kc = kubeconfig("https://10.0.0.1:6443", &bundle);
        let good = data(
            &kc,
            "abcdef",
            &sign_detached(&kc, "abcdef", "0123456789abcdef"),
        );
        let pin_of = |pem: &str| kubeboot_pki::pin::pem_cert_pin(pem.as_bytes()).unwrap();
        let pinned = |pins: &[String]| {
            CaTrust::Pinned(PinSet::parse(pins.iter().map(String::as_str)).unwrap())
        };

        let cluster = verify_cluster_info(&good, &token, &pinned(&[pin_of(&new)])).unwrap();
        assert_eq!(cluster.server, "https://10.0.0.1:6443");
        assert_eq!(
            cluster.ca_pem,
            bundle.as_bytes(),
            "every CA of a rotation is kept"
        );
        assert!(
            verify_cluster_info(
                &good,
                &token,
                &pinned(&["sha256:00".to_string().replace("00", &"00".repeat(32))])
            )
            .is_err()
        );
        let other = format!("sha256:{}", "11".repeat(32));
        assert!(
            verify_cluster_info(&good, &token, &pinned(&[other.clone(), pin_of(&old)])).is_ok(),
            "any one matching pin is enough"
        );
        match verify_cluster_info(&good, &token, &pinned(std::slice::from_ref(&other))) {
            Err(DiscoveryError::PinMismatch {
                presented,
                expected,
            }) => {
                assert_eq!(presented, [pin_of(&old), pin_of(&new)]);
                assert_eq!(expected, [other]);
            }
            e => panic!("{e:?}"),
        }
        assert!(verify_cluster_info(&good, &token, &CaTrust::InsecureUnpinned).is_ok());

        let tampered = kc.replace("10.0.0.1", "10.6.6.6");
        let t = data(
            &tampered,
            "abcdef",
            &sign_detached(&kc, "abcdef", "0123456789abcdef"),
        );
        assert!(
            matches!(
                verify_cluster_info(&t, &token, &CaTrust::InsecureUnpinned),
                Err(DiscoveryError::BadSignature)
            ),
            "a swapped server is detected"
        );
        let evil = kubeconfig("https://10.0.0.1:6443", &ca_pem());
        let swapped = data(
            &evil,
            "abcdef",
            &sign_detached(&kc, "abcdef", "0123456789abcdef"),
        );
        assert!(
            matches!(
                verify_cluster_info(&swapped, &token, &pinned(&[pin_of(&new)])),
                Err(DiscoveryError::BadSignature)
            ),
            "a swapped CA is detected"
        );
        let wrong_token: BootstrapToken = "abcdef.0123456789abcdee".parse().unwrap();
        assert!(matches!(
            verify_cluster_info(&good, &wrong_token, &CaTrust::InsecureUnpinned),
            Err(DiscoveryError::BadSignature)
        ));
        let unknown: BootstrapToken = "zzzzzz.0123456789abcdef".parse().unwrap();
        assert!(matches!(
            verify_cluster_info(&good, &unknown, &CaTrust::InsecureUnpinned),
            Err(DiscoveryError::NoSignature(_))
        ));
        assert!(matches!(
            verify_cluster_info(&serde_json::Map::new(), &token, &CaTrust::InsecureUnpinned),
            Err(DiscoveryError::NoKubeconfig)
        ));
    }
}
