//! Pure decisions about CSRs: which signer rules a request breaks, which approver
//! recognisers match it, what certificate to issue, and when the cleaner removes it.
//! Messages are Kubernetes' own.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use kubeboot_pki::cert::{OID_COMMON_NAME, OID_ORGANIZATION};
use kubeboot_pki::csr::ParsedCsr;
use kubeboot_pki::{LeafSpec, Usage};

use super::CsrView;

/// `kubernetes.io/kube-apiserver-client`.
pub const KUBE_APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
/// `kubernetes.io/kube-apiserver-client-kubelet`.
pub const KUBELET_CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// `kubernetes.io/kubelet-serving`.
pub const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
/// `kubernetes.io/legacy-unknown`.
pub const LEGACY_UNKNOWN: &str = "kubernetes.io/legacy-unknown";
/// The signers kubeboot's csrsigning serves.
pub const SIGNERS: [&str; 4] = [
    KUBELET_CLIENT,
    KUBELET_SERVING,
    KUBE_APISERVER_CLIENT,
    LEGACY_UNKNOWN,
];

fn organizations(csr: &ParsedCsr) -> Vec<&str> {
    csr.subject
        .iter()
        .filter(|(oid, _)| oid.as_slice() == OID_ORGANIZATION)
        .map(|(_, v)| v.as_str())
        .collect()
}

fn usage_set(usages: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = usages.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The rules of a signer a request breaks (the first one, in Kubernetes' order), if any.
pub fn signer_violation(signer: &str, csr: &ParsedCsr, usages: &[String]) -> Option<String> {
    match signer {
        KUBELET_CLIENT => kubelet_client_violation(csr, usages),
        KUBELET_SERVING => kubelet_serving_violation(csr, usages),
        KUBE_APISERVER_CLIENT => {
            let mut client_auth = false;
            for u in usages {
                match u.as_str() {
                    "digital signature" | "key encipherment" => {}
                    "client auth" => client_auth = true,
                    other => return Some(format!("invalid usage for client certificate: {other}")),
                }
            }
            (!client_auth)
                .then(|| "missing required usage for client certificate: client auth".to_owned())
        }
        _ => None,
    }
}

fn kubelet_client_violation(csr: &ParsedCsr, usages: &[String]) -> Option<String> {
    if organizations(csr) != ["system:nodes"] {
        return Some("subject organization is not system:nodes".into());
    }
    if !csr.dns_names.is_empty() {
        return Some("DNS subjectAltNames are not allowed".into());
    }
    if !csr.emails.is_empty() {
        return Some("Email subjectAltNames are not allowed".into());
    }
    if !csr.ip_addresses.is_empty() {
        return Some("IP subjectAltNames are not allowed".into());
    }
    if !csr.uris.is_empty() {
        return Some("URI subjectAltNames are not allowed".into());
    }
    if !csr.common_name.starts_with("system:node:") {
        return Some("subject common name does not begin with system:node:".into());
    }
    let set = usage_set(usages);
    let ok = set == ["client auth", "digital signature", "key encipherment"]
        || set == ["client auth", "digital signature"];
    (!ok)
        .then(|| "usages did not match [client auth digital signature key encipherment]".to_owned())
}

fn kubelet_serving_violation(csr: &ParsedCsr, usages: &[String]) -> Option<String> {
    if organizations(csr) != ["system:nodes"] {
        return Some("subject organization is not system:nodes".into());
    }
    if csr.dns_names.is_empty() && csr.ip_addresses.is_empty() {
        return Some("DNS or IP subjectAltName is required".into());
    }
    if !csr.emails.is_empty() {
        return Some("Email subjectAltNames are not allowed".into());
    }
    if !csr.uris.is_empty() {
        return Some("URI subjectAltNames are not allowed".into());
    }
    let set = usage_set(usages);
    let ok = set == ["digital signature", "key encipherment", "server auth"]
        || set == ["digital signature", "server auth"];
    if !ok {
        return Some(
            "usages did not match [digital signature key encipherment server auth]".into(),
        );
    }
    (!csr.common_name.starts_with("system:node:"))
        .then(|| "subject common name does not begin with system:node:".to_owned())
}

/// An approver recogniser: the virtual subresource its SubjectAccessReview asks about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Recognizer {
    /// A node renewing its own client certificate.
    SelfNodeClient,
    /// A client certificate for a node, asked for by anyone (a bootstrap token).
    NodeClient,
}

impl Recognizer {
    /// The subresource of `certificatesigningrequests` the SubjectAccessReview checks.
    pub fn subresource(self) -> &'static str {
        match self {
            Recognizer::SelfNodeClient => "selfnodeclient",
            Recognizer::NodeClient => "nodeclient",
        }
    }

    /// The Approved condition's message.
    pub fn message(self) -> &'static str {
        match self {
            Recognizer::SelfNodeClient => {
                "Auto approving self kubelet client certificate after SubjectAccessReview."
            }
            Recognizer::NodeClient => {
                "Auto approving kubelet client certificate after SubjectAccessReview."
            }
        }
    }
}

/// The recognisers that match, in the order the approver tries them.
pub fn recognize(view: &CsrView, csr: &ParsedCsr) -> Vec<Recognizer> {
    if view.signer != KUBELET_CLIENT || kubelet_client_violation(csr, &view.usages).is_some() {
        return vec![];
    }
    let mut out = Vec::new();
    if view.username == csr.common_name {
        out.push(Recognizer::SelfNodeClient);
    }
    out.push(Recognizer::NodeClient);
    out
}

/// Whether the approver (or signer) should look at a CSR at all.
pub fn needs_approval(view: &CsrView) -> bool {
    view.certificate.is_empty() && !view.has("Approved") && !view.has("Denied")
}

/// Whether the signer should sign: approved, not denied, not failed, not issued.
pub fn ready_to_sign(view: &CsrView) -> bool {
    view.certificate.is_empty()
        && view.has("Approved")
        && !view.has("Denied")
        && !view.has("Failed")
}

/// The signer's settings that shape certificates.
#[derive(Clone, Copy, Debug)]
pub struct SigningPolicy {
    /// `--cluster-signing-duration`.
    pub max_duration: Duration,
}

/// The certificate the signer issues for an approved CSR, or why it cannot. `serial` is
/// the caller's 16 random bytes: this function draws nothing itself.
pub fn leaf_spec(
    policy: &SigningPolicy,
    view: &CsrView,
    csr: &ParsedCsr,
    ca_not_after: SystemTime,
    now: SystemTime,
    serial: [u8; 16],
) -> Result<LeafSpec, String> {
    if ca_not_after <= now {
        return Err(format!(
            "the signer has expired: NotAfter={}",
            kubeboot_api::clock::format_rfc3339(ca_not_after)
        ));
    }
    let ttl = match view.expiration_seconds {
        Some(s) => Duration::from_secs(u64::try_from(s).unwrap_or(0)).clamp(
            Duration::from_secs(600),
            policy.max_duration.max(Duration::from_secs(600)),
        ),
        None => policy.max_duration,
    };
    let backdate = Duration::from_secs(300);
    let not_before = now - backdate;
    let mut not_after = if ttl >= Duration::from_secs(8 * 3600) {
        now + ttl - backdate
    } else {
        now + ttl
    };
    not_after = not_after.min(ca_not_after);
    let mut usages: Vec<Usage> = Vec::new();
    for u in &view.usages {
        let usage = Usage::from_k8s_name(u).ok_or_else(|| format!("unknown usage {u:?}"))?;
        if !usages.contains(&usage) {
            usages.push(usage);
        }
    }
    usages.sort(); // extended key usages in Go's order
    let ips: Vec<IpAddr> = csr
        .ip_addresses
        .iter()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    Ok(LeafSpec {
        subject: csr.subject.clone(),
        dns_names: csr.dns_names.clone(),
        ip_addresses: ips,
        emails: csr.emails.clone(),
        uris: csr.uris.clone(),
        usages,
        not_before,
        not_after,
        serial,
    })
}

/// How long the cleaner keeps CSRs (Kubernetes' ages, plus one for approved CSRs that no
/// signer ever issued, which Kubernetes long kept forever).
pub mod ages {
    use std::time::Duration;
    /// Pending (no conditions).
    pub const PENDING: Duration = Duration::from_secs(24 * 3600);
    /// Approved and issued; denied; failed.
    pub const DECIDED: Duration = Duration::from_secs(3600);
    /// Approved but never issued.
    pub const APPROVED_UNISSUED: Duration = Duration::from_secs(24 * 3600);
}

/// When the cleaner should delete a CSR (`None`: never, as far as is known now), and why.
pub fn cleanup_at(
    view: &CsrView,
    cert_not_after: Option<SystemTime>,
) -> Option<(SystemTime, &'static str)> {
    let mut candidates: Vec<(SystemTime, &'static str)> = Vec::new();
    let issued = !view.certificate.is_empty();
    if let Some(t) = view.condition_time("Approved") {
        if issued {
            candidates.push((t + ages::DECIDED, "approved and issued more than 1h ago"));
        } else {
            candidates.push((
                t + ages::APPROVED_UNISSUED,
                "approved but not issued for 24h",
            ));
        }
    }
    if let Some(t) = view.condition_time("Denied") {
        candidates.push((t + ages::DECIDED, "denied more than 1h ago"));
    }
    if let Some(t) = view.condition_time("Failed") {
        candidates.push((t + ages::DECIDED, "failed more than 1h ago"));
    }
    if view.conditions.is_empty()
        && let Some(c) = view.created
    {
        candidates.push((c + ages::PENDING, "pending for more than 24h"));
    }
    if issued
        && view.has("Approved")
        && let Some(na) = cert_not_after
    {
        candidates.push((na, "its certificate has expired"));
    }
    candidates.into_iter().min_by_key(|(t, _)| *t)
}

/// Whether a serving certificate request may be approved: the requester is the node it
/// names, and every name it asks for is one of that node's addresses, or allowed by the
/// operator's extra rules. `Err` says why not.
pub fn serving_approvable(
    view: &CsrView,
    csr: &ParsedCsr,
    requester_groups: &[String],
    node_addresses: &[String],
    extra: &ServingRules,
) -> Result<(), String> {
    if view.signer != KUBELET_SERVING {
        return Err("not a kubelet-serving request".into());
    }
    let Some(node) = view.username.strip_prefix("system:node:") else {
        return Err(format!("requester {:?} is not a node", view.username));
    };
    if !requester_groups.iter().any(|g| g == "system:nodes") {
        return Err(format!(
            "requester {:?} is not in system:nodes",
            view.username
        ));
    }
    if csr.common_name != view.username {
        return Err(format!(
            "the subject CN {:?} is not the requester {:?}",
            csr.common_name, view.username
        ));
    }
    if let Some(v) = kubelet_serving_violation(csr, &view.usages) {
        return Err(v);
    }
    for d in &csr.dns_names {
        if !node_addresses.contains(d) && !extra.dns_allowed(d) {
            return Err(format!("DNS name {d:?} is not an address of node {node:?}"));
        }
    }
    for ip in &csr.ip_addresses {
        let parsed: Option<IpAddr> = ip.parse().ok();
        if !node_addresses.contains(ip) && !parsed.is_some_and(|p| extra.ip_allowed(p)) {
            return Err(format!(
                "IP address {ip} is not an address of node {node:?}"
            ));
        }
    }
    Ok(())
}

/// The operator's extra allowances for serving certificates.
#[derive(Clone, Debug, Default)]
pub struct ServingRules {
    /// `--kubelet-serving-allowed-dns-regex` (anchored).
    pub dns: Option<regex_lite::Regex>,
    /// `--kubelet-serving-allowed-ip-ranges`.
    pub ip_ranges: Vec<(IpAddr, u8)>,
}

impl ServingRules {
    fn dns_allowed(&self, name: &str) -> bool {
        self.dns.as_ref().is_some_and(|re| {
            re.find(name)
                .is_some_and(|m| m.start() == 0 && m.end() == name.len())
        })
    }

    fn ip_allowed(&self, ip: IpAddr) -> bool {
        self.ip_ranges
            .iter()
            .any(|(net, bits)| in_cidr(ip, *net, *bits))
    }
}

/// Parses `10.0.0.0/8` style ranges.
pub fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    kubeboot_api::cidr::parse(s).ok_or_else(|| format!("{s:?} is not a CIDR (e.g. 10.0.0.0/8)"))
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The CN of a parsed CSR (for logs).
pub fn common_name(csr: &ParsedCsr) -> &str {
    csr.subject
        .iter()
        .find(|(oid, _)| oid.as_slice() == OID_COMMON_NAME)
        .map_or("", |(_, v)| v.as_str())
}
