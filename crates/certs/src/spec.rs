//! The spec file: what the cluster looks like. Errors point at the line.

use std::net::IpAddr;
use std::time::Duration;

use kubeboot_pki::KeyAlgorithm;
use serde::Deserialize;

/// The cluster's PKI spec.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    /// The cluster's name (kubeconfigs' cluster entry).
    #[serde(default = "default_cluster_name")]
    pub cluster_name: String,
    /// The API endpoint clients use (`https://host:port`, a load balancer or the first
    /// control-plane node).
    pub api_endpoint: String,
    /// The cluster DNS domain.
    #[serde(default = "default_domain")]
    pub cluster_domain: String,
    /// The service CIDR; its first address is the `kubernetes` service IP.
    #[serde(rename = "serviceCIDR")]
    pub service_cidr: String,
    /// More names or IPs for the API server certificate.
    #[serde(default, rename = "extraSANs")]
    pub extra_sans: Vec<String>,
    /// `ecdsa-p256`, `ecdsa-p384`, `rsa-2048`, `rsa-3072`, `rsa-4096` or `ed25519`.
    #[serde(default = "default_alg")]
    pub key_algorithm: String,
    /// Validity per certificate class.
    #[serde(default)]
    pub validity: Validity,
    /// Control-plane nodes (they also run a kubelet).
    pub control_plane: Vec<NodeSpec>,
    /// Worker nodes.
    #[serde(default)]
    pub workers: Vec<NodeSpec>,
    /// Encryption at rest.
    #[serde(default)]
    pub encryption: Encryption,
}

/// Validity per certificate class (Go durations).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Validity {
    /// The CA.
    #[serde(default = "default_ca_validity")]
    pub ca: String,
    /// Every other certificate.
    #[serde(default = "default_leaf_validity")]
    pub leaf: String,
}

/// A node.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Its name (`system:node:<name>`).
    pub name: String,
    /// Its IP addresses.
    #[serde(default)]
    pub ips: Vec<String>,
    /// More DNS names.
    #[serde(default)]
    pub dns: Vec<String>,
}

/// The encryption config to write.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encryption {
    /// `aescbc`, `aesgcm` or `secretbox`.
    #[serde(default = "default_provider")]
    pub provider: String,
}

impl Default for Validity {
    fn default() -> Self {
        Self {
            ca: default_ca_validity(),
            leaf: default_leaf_validity(),
        }
    }
}

impl Default for Encryption {
    fn default() -> Self {
        Self {
            provider: default_provider(),
        }
    }
}

fn default_cluster_name() -> String {
    "kubernetes".into()
}
fn default_domain() -> String {
    "cluster.local".into()
}
/// The key algorithm a spec (or `--key-algorithm`) names.
pub fn key_algorithm(name: &str) -> Option<KeyAlgorithm> {
    match name {
        "ecdsa-p256" => Some(KeyAlgorithm::EcdsaP256),
        "ecdsa-p384" => Some(KeyAlgorithm::EcdsaP384),
        "ed25519" => Some(KeyAlgorithm::Ed25519),
        "rsa-2048" => Some(KeyAlgorithm::Rsa(2048)),
        "rsa-3072" => Some(KeyAlgorithm::Rsa(3072)),
        "rsa-4096" => Some(KeyAlgorithm::Rsa(4096)),
        _ => None,
    }
}

fn default_alg() -> String {
    "ecdsa-p256".into()
}
fn default_ca_validity() -> String {
    "87600h".into()
}
fn default_leaf_validity() -> String {
    "8760h".into()
}
fn default_provider() -> String {
    "aescbc".into()
}

/// A problem in the spec, at a line (1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct SpecError {
    /// The line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// The checked spec with its values parsed.
#[derive(Clone, Debug)]
pub struct Checked {
    /// The spec.
    pub spec: Spec,
    /// Key algorithm.
    pub alg: KeyAlgorithm,
    /// CA validity.
    pub ca_validity: Duration,
    /// Leaf validity.
    pub leaf_validity: Duration,
    /// The `kubernetes` service IP.
    pub service_ip: IpAddr,
    /// The endpoint's host.
    pub endpoint_host: String,
}

/// The commented starting spec `certs init-spec` prints.
pub const STARTING_SPEC: &str = r#"# kubeboot certs spec: the PKI of a cluster built by hand.
# Generate everything with: kubeboot certs generate --spec cluster.yaml --out ./auth

# The name kubeconfigs give the cluster.
clusterName: kubernetes
# Where clients reach the API server: a load balancer, or the first control-plane node.
apiEndpoint: https://10.240.0.10:6443
# The cluster DNS domain (kubernetes.default.svc.<domain> is a SAN of the API server).
clusterDomain: cluster.local
# The service CIDR; its first address is the kubernetes service IP (a SAN too).
serviceCIDR: 10.32.0.0/24
# More names or IPs for the API server certificate.
extraSANs: []
# ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096 or ed25519.
keyAlgorithm: ecdsa-p256
validity:
  ca: 87600h     # 10 years
  leaf: 8760h    # 1 year
# Control-plane nodes: their names and IPs are SANs of the API server certificate.
controlPlane:
  - name: controller-0
    ips: [10.240.0.10]
    dns: []
# Worker nodes: each gets system:node:<name> with its names and IPs as SANs.
workers:
  - name: worker-0
    ips: [10.240.0.20]
    dns: []
# Encryption at rest for Secrets: aescbc, aesgcm or secretbox.
encryption:
  provider: aescbc
"#;

fn line_of(text: &str, needle: &str, nth: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.contains(needle))
        .nth(nth)
        .map_or(0, |(i, _)| i + 1)
}

/// Parses and checks a spec, returning every problem with its line.
pub fn parse(text: &str) -> Result<Checked, Vec<SpecError>> {
    let spec: Spec = serde_saphyr::from_str(text).map_err(|e| {
        let msg = e.to_string();
        let line = msg
            .split("line ")
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        vec![SpecError {
            line,
            message: msg.lines().next().unwrap_or_default().to_owned(),
        }]
    })?;
    let mut errs = Vec::new();
    let mut err = |needle: &str, nth: usize, message: String| {
        errs.push(SpecError {
            line: line_of(text, needle, nth),
            message,
        })
    };
    let alg = match key_algorithm(&spec.key_algorithm) {
        Some(alg) => Some(alg),
        None => {
            let other = &spec.key_algorithm;
            err(
                "keyAlgorithm",
                0,
                format!(
                    "keyAlgorithm {other:?} is not one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519"
                ),
            );
            None
        }
    };
    let dur = |s: &str, field: &str, err: &mut dyn FnMut(&str, usize, String)| {
        kubeboot_api::clock::parse_go_duration(s)
            .map_err(|e| err(field, 0, format!("validity.{field}: {e}")))
            .ok()
    };
    let ca_validity = dur(&spec.validity.ca, "ca:", &mut err);
    let leaf_validity = dur(&spec.validity.leaf, "leaf:", &mut err);
    let endpoint_host = spec
        .api_endpoint
        .strip_prefix("https://")
        .map(|rest| rest.split('/').next().unwrap_or_default())
        .map(|hp| match hp.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => {
                h.trim_start_matches('[').trim_end_matches(']').to_owned()
            }
            _ => hp.to_owned(),
        })
        .filter(|h| !h.is_empty());
    if endpoint_host.is_none() {
        err(
            "apiEndpoint",
            0,
            format!(
                "apiEndpoint {:?} is not an https:// URL with a host",
                spec.api_endpoint
            ),
        );
    }
    let service_ip = match first_host_ip(&spec.service_cidr) {
        Ok(ip) => Some(ip),
        Err(e) => {
            err("serviceCIDR", 0, e);
            None
        }
    };
    let mut seen: Vec<&str> = Vec::new();
    for n in spec.control_plane.iter().chain(&spec.workers) {
        let count = seen.iter().filter(|s| **s == n.name).count();
        if count > 0 {
            err(
                &format!("name: {}", n.name),
                count,
                format!("duplicate node name {:?}", n.name),
            );
        }
        seen.push(&n.name);
        let dns_ok = !n.name.is_empty()
            && n.name.len() <= 253
            && n.name.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && !l.starts_with('-')
                    && !l.ends_with('-')
            });
        if !dns_ok {
            err(
                &format!("name: {}", n.name),
                0,
                format!("node name {:?} is not a DNS-1123 subdomain", n.name),
            );
        }
        for ip in &n.ips {
            if ip.parse::<IpAddr>().is_err() {
                err(
                    ip,
                    0,
                    format!("{ip:?} (node {}) is not an IP address", n.name),
                );
            }
        }
    }
    if spec.control_plane.is_empty() {
        err(
            "controlPlane",
            0,
            "controlPlane needs at least one node".into(),
        );
    }
    if !matches!(
        spec.encryption.provider.as_str(),
        "aescbc" | "aesgcm" | "secretbox"
    ) {
        err(
            "provider",
            0,
            format!(
                "encryption provider {:?} is not aescbc, aesgcm or secretbox",
                spec.encryption.provider
            ),
        );
    }
    match (alg, ca_validity, leaf_validity, service_ip, endpoint_host) {
        (
            Some(alg),
            Some(ca_validity),
            Some(leaf_validity),
            Some(service_ip),
            Some(endpoint_host),
        ) if errs.is_empty() => Ok(Checked {
            spec,
            alg,
            ca_validity,
            leaf_validity,
            service_ip,
            endpoint_host,
        }),
        _ => Err(errs),
    }
}

/// The first host address of a CIDR (the `kubernetes` service IP).
pub fn first_host_ip(cidr: &str) -> Result<IpAddr, String> {
    let (ip, bits) = kubeboot_api::cidr::parse(cidr)
        .ok_or_else(|| format!("serviceCIDR {cidr:?} is not a CIDR (e.g. 10.32.0.0/24)"))?;
    let bits = u32::from(bits);
    match ip {
        IpAddr::V4(v4) => {
            if bits > 30 {
                return Err(format!(
                    "serviceCIDR {cidr:?} is too small for a service IP (at most /30)"
                ));
            }
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Ok(IpAddr::V4((u32::from(v4) & mask).wrapping_add(1).into()))
        }
        IpAddr::V6(v6) => {
            if bits > 126 {
                return Err(format!(
                    "serviceCIDR {cidr:?} is too small for a service IP (at most /126)"
                ));
            }
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            Ok(IpAddr::V6((u128::from(v6) & mask).wrapping_add(1).into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_starting_spec_is_valid() {
        let c = parse(STARTING_SPEC).unwrap();
        assert_eq!(c.service_ip.to_string(), "10.32.0.1");
        assert_eq!(c.endpoint_host, "10.240.0.10");
    }

    #[test]
    fn errors_point_at_the_line() {
        let dup = STARTING_SPEC.replace("name: worker-0", "name: controller-0");
        let e = parse(&dup).unwrap_err();
        assert_eq!(e[0].message, "duplicate node name \"controller-0\"");
        assert_eq!(e[0].line, line_of(&dup, "name: controller-0", 1));
        let bad_ip = STARTING_SPEC.replace("ips: [10.240.0.20]", "ips: [10.240.0.300]");
        let e = parse(&bad_ip).unwrap_err();
        assert!(
            e[0].message.contains("is not an IP address")
                && e[0].line == line_of(&bad_ip, "10.240.0.300", 0),
            "{e:?}"
        );
        let small = STARTING_SPEC.replace("10.32.0.0/24", "10.32.0.0/32");
        let e = parse(&small).unwrap_err();
        assert!(
            e[0].message.contains("too small") && e[0].line == line_of(&small, "serviceCIDR", 0),
            "{e:?}"
        );
        let typo = STARTING_SPEC.replace("clusterDomain", "clusterDomian");
        let e = parse(&typo).unwrap_err();
        assert!(e[0].line > 0, "{e:?}");
    }
}
