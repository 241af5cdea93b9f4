//! The control plane's data directory, as `kubeboot init` writes it and `server` reuses it:
//!
//! ```text
//! pki/ca.crt pki/ca.key                 the cluster CA (ECDSA P-256, 10 years)
//! pki/apiserver.crt pki/apiserver.key   the serving certificate
//! admin.conf                            kubernetes-admin in system:masters (0600)
//! controller-manager.conf               system:kube-controller-manager (0600)
//! db/state.db                           the embedded store (0600)
//! ```
//!
//! The dir and `db/` are 0700: the store holds every Secret.
//!
//! Nothing that exists is overwritten. A CA or serving certificate without its key (or
//! the reverse), or a file that does not parse, is reported as a half-written directory.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use kubeboot_pki::cert::random_serial;
use kubeboot_pki::chain::YEAR;
use kubeboot_pki::files::{Mode, private_dir, write_atomic};
use kubeboot_pki::kubeconfig::Credential;
use kubeboot_pki::{CertificateAuthority, KeyAlgorithm, Kubeconfig, LeafSpec, PrivateKey, Usage};

/// The cluster name kubeadm uses in kubeconfigs.
pub const CLUSTER_NAME: &str = "kubernetes";

/// Where things live in a data dir.
#[derive(Clone, Debug)]
pub struct DataDir {
    /// The directory.
    pub root: PathBuf,
}

/// What `init` needs to know.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The address nodes reach the API server at.
    pub advertise_address: Option<IpAddr>,
    /// Extra SANs (IPs or DNS names) for the serving certificate.
    pub extra_sans: Vec<String>,
    /// The `kubernetes` Service's ClusterIP (the first address of the service range), which
    /// in-cluster clients dial, so a SAN of the serving certificate, as kubeadm makes it.
    pub service_ip: Option<IpAddr>,
    /// The port written into kubeconfigs.
    pub port: u16,
    /// How long the serving certificate and the kubeconfigs' client certificates are
    /// valid (kubeadm's `certificateValidityPeriod`, default one year).
    pub certificate_validity: Duration,
    /// How long a CA made here is valid (kubeadm's `caCertificateValidityPeriod`,
    /// default ten years).
    pub ca_certificate_validity: Duration,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            advertise_address: None,
            extra_sans: Vec::new(),
            service_ip: Some(IpAddr::from([10, 96, 0, 1])),
            port: 6443,
            certificate_validity: YEAR,
            ca_certificate_validity: 10 * YEAR,
        }
    }
}

/// Why a data dir cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// Part of a pair is missing.
    #[error(
        "the data dir {dir} is half-written: {present} exists but {missing} does not. Restore the missing file, or remove both to have them generated again"
    )]
    HalfWritten {
        /// The dir.
        dir: String,
        /// The file found.
        present: String,
        /// The file missing.
        missing: String,
    },
    /// A file does not parse.
    #[error(
        "{file} is not usable: {why}. Restore it from a backup, or remove it (and its pair) to have it generated again"
    )]
    Unusable {
        /// The file.
        file: String,
        /// Why.
        why: String,
    },
    /// Disk trouble.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The options cannot make a data dir.
    #[error("{0}")]
    Invalid(String),
}

impl DataDir {
    /// A data dir at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `pki/<name>`.
    pub fn pki(&self, name: &str) -> PathBuf {
        self.root.join("pki").join(name)
    }

    /// The admin kubeconfig.
    pub fn admin_conf(&self) -> PathBuf {
        self.root.join("admin.conf")
    }

    /// The controller-manager kubeconfig.
    pub fn controller_manager_conf(&self) -> PathBuf {
        self.root.join("controller-manager.conf")
    }

    /// The embedded store's file.
    pub fn store_path(&self) -> PathBuf {
        self.root.join("db").join("state.db")
    }

    /// Creates whatever is missing; returns the CA.
    pub fn init(
        &self,
        opts: &InitOptions,
        now: SystemTime,
    ) -> Result<CertificateAuthority, DataDirError> {
        if let Some(e) = opts.extra_sans.iter().find_map(|s| san_error(s)) {
            return Err(DataDirError::Invalid(e));
        }
        self.make_private()?;
        std::fs::create_dir_all(self.root.join("pki"))?;
        let ca = match self.read_pair("ca.crt", "ca.key")? {
            Some((cert, key)) => CertificateAuthority::from_pem(&cert, &key).map_err(|e| {
                match self.pki("ca-next.crt").exists() {
                    true => unusable(
                        &self.pki("ca.key"),
                        format!("{e}: a CA rotation's switch stopped half-way; run `kubeboot ca rotate --data-dir {} --phase switch` to complete it", self.root.display()),
                    ),
                    false => unusable(&self.pki("ca.key"), e),
                }
            })?,
            None => {
                let ca = CertificateAuthority::create(
                    CLUSTER_NAME,
                    KeyAlgorithm::EcdsaP256,
                    now,
                    opts.ca_certificate_validity,
                    random_serial(),
                )
                .map_err(|e| unusable(&self.pki("ca.crt"), e))?;
                write_atomic(&self.pki("ca.key"), ca.key_pem().as_bytes(), Mode::Private)?;
                write_atomic(&self.pki("ca.crt"), ca.cert_pem().as_bytes(), Mode::Public)?;
                ca
            }
        };
        if self.read_pair("apiserver.crt", "apiserver.key")?.is_none() {
            self.issue_serving_cert(&ca, opts, now)?;
        }
        let server = server_url(opts.advertise_address, opts.port);
        for (path, user, groups) in [
            (
                self.admin_conf(),
                "kubernetes-admin",
                vec!["system:masters".to_owned()],
            ),
            (
                self.controller_manager_conf(),
                "system:kube-controller-manager",
                vec![],
            ),
        ] {
            if path.exists() {
                Kubeconfig::from_yaml(&kubeboot_pki::files::read_text(&path)?)
                    .map_err(|e| unusable(&path, e))?;
                continue;
            }
            let validity = opts.certificate_validity;
            let kc = client_kubeconfig(&ca, &server, user, groups, now, validity)
                .map_err(|e| unusable(&path, e))?;
            write_atomic(&path, kc.to_yaml().as_bytes(), Mode::Private)?;
        }
        Ok(ca)
    }

    /// Issues the API server's serving certificate, for the names and addresses it serves.
    fn issue_serving_cert(
        &self,
        ca: &CertificateAuthority,
        opts: &InitOptions,
        now: SystemTime,
    ) -> Result<(), DataDirError> {
        let (dns, ips) = serving_sans(opts);
        let (key, cert) = serving_pair(ca, dns, ips, now, opts.certificate_validity)
            .map_err(|e| unusable(&self.pki("apiserver.crt"), e))?;
        self.write_serving_pair(&key, &cert.pem)
    }

    /// Writes the serving key, then its certificate: until the certificate follows, a
    /// running server keeps the pair it has.
    pub(crate) fn write_serving_pair(
        &self,
        key: &PrivateKey,
        cert_pem: &str,
    ) -> Result<(), DataDirError> {
        write_atomic(
            &self.pki("apiserver.key"),
            key.to_pem().as_bytes(),
            Mode::Private,
        )?;
        write_atomic(
            &self.pki("apiserver.crt"),
            cert_pem.as_bytes(),
            Mode::Public,
        )?;
        Ok(())
    }

    /// Points the kubeconfigs this dir holds at `server` (after the port is known).
    pub fn set_server_url(&self, server: &str) -> Result<(), DataDirError> {
        for path in [self.admin_conf(), self.controller_manager_conf()] {
            let mut kc = Kubeconfig::from_yaml(&kubeboot_pki::files::read_text(&path)?)
                .map_err(|e| unusable(&path, e))?;
            let mut changed = false;
            for c in &mut kc.clusters {
                if c.name == CLUSTER_NAME && c.cluster.server != server {
                    c.cluster.server = server.to_owned();
                    changed = true;
                }
            }
            if changed {
                write_atomic(&path, kc.to_yaml().as_bytes(), Mode::Private)?;
            }
        }
        Ok(())
    }

    /// Makes the data dir and `db/` private to this user (0700), as etcd and kubeadm keep
    /// theirs: the store holds every Secret, bootstrap tokens included. A dir an earlier
    /// version left open to others is tightened, and the server says so.
    fn make_private(&self) -> Result<(), DataDirError> {
        for dir in [self.root.clone(), self.root.join("db")] {
            if let Some(was) = private_dir(&dir)? {
                tracing::warn!(
                    dir = %dir.display(),
                    mode = %format!("{was:04o}"),
                    "the data dir was readable by other users; its mode is now 0700"
                );
            }
        }
        Ok(())
    }

    /// Takes the keys a control plane shares from another server's data dir
    /// (`--join-control-plane`): the cluster CA and, where present, the service-account and
    /// front-proxy keys. Keys are written 0600, atomically. A file this dir already holds
    /// must be identical: a data dir never changes CA.
    pub fn adopt_shared_pki(&self, from: &DataDir) -> Result<Vec<PathBuf>, DataDirError> {
        self.make_private()?;
        std::fs::create_dir_all(self.root.join("pki"))?;
        if from.read_pair("ca.crt", "ca.key")?.is_none() {
            return Err(unusable(
                &from.pki("ca.key"),
                "the control plane to join has no cluster CA (pki/ca.crt and pki/ca.key)",
            ));
        }
        let mut adopted = Vec::new();
        for name in SHARED_PKI {
            let src = from.pki(name);
            if !src.exists() {
                continue;
            }
            let data = std::fs::read(&src)?;
            let dst = self.pki(name);
            if dst.exists() {
                if std::fs::read(&dst)? != data {
                    return Err(unusable(
                        &dst,
                        format!(
                            "it differs from {}: this data dir belongs to another cluster; use a new --data-dir to join",
                            src.display()
                        ),
                    ));
                }
                continue;
            }
            let mode = if name.ends_with(".key") {
                Mode::Private
            } else {
                Mode::Public
            };
            write_atomic(&dst, &data, mode)?;
            adopted.push(dst);
        }
        Ok(adopted)
    }

    /// Reads `pki/<cert>` and `pki/<key>`: both or neither must exist.
    pub fn read_pair(
        &self,
        cert: &str,
        key: &str,
    ) -> Result<Option<(String, String)>, DataDirError> {
        let (c, k) = (self.pki(cert), self.pki(key));
        match (c.exists(), k.exists()) {
            (false, false) => Ok(None),
            (true, true) => Ok(Some((
                kubeboot_pki::files::read_text(&c)?,
                kubeboot_pki::files::read_text(&k)?,
            ))),
            (present, _) => {
                let (p, m) = if present { (c, k) } else { (k, c) };
                Err(DataDirError::HalfWritten {
                    dir: self.root.display().to_string(),
                    present: p.display().to_string(),
                    missing: m.display().to_string(),
                })
            }
        }
    }
}

/// The files every server of one control plane holds alike.
const SHARED_PKI: [&str; 6] = [
    "ca.crt",
    "ca.key",
    "sa.key",
    "sa.pub",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
];

fn unusable(path: &Path, e: impl std::fmt::Display) -> DataDirError {
    DataDirError::Unusable {
        file: path.display().to_string(),
        why: e.to_string(),
    }
}

/// `https://<address>:<port>`, bracketing IPv6.
pub fn server_url(addr: Option<IpAddr>, port: u16) -> String {
    match addr {
        Some(IpAddr::V6(a)) => format!("https://[{a}]:{port}"),
        Some(a) => format!("https://{a}:{port}"),
        None => format!("https://127.0.0.1:{port}"),
    }
}

fn serving_sans(opts: &InitOptions) -> (Vec<String>, Vec<IpAddr>) {
    let mut dns: Vec<String> = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut ips: Vec<IpAddr> = vec![
        IpAddr::from([127, 0, 0, 1]),
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
    ];
    if let Ok(host) = hostname_probe::gethostname().into_string() {
        let host = host.to_lowercase();
        if kubeboot_api_dns_ok(&host) && !dns.contains(&host) {
            dns.push(host);
        }
    }
    for a in [opts.service_ip, opts.advertise_address]
        .into_iter()
        .flatten()
    {
        if !ips.contains(&a) {
            ips.push(a);
        }
    }
    for san in &opts.extra_sans {
        match san.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !dns.contains(san) => dns.push(san.clone()),
            Err(_) => {}
        }
    }
    (dns, ips)
}

/// Why a Subject Alternative Name cannot be one, in kubeadm's words (`ValidateCertSANs`):
/// it is an IP address, a DNS subdomain, or one with a leading wildcard (`*.example.com`).
fn san_error(san: &str) -> Option<String> {
    let subdomain = kubeboot_api::names::subdomain_errors(san);
    let wildcard_ok = san
        .strip_prefix("*.")
        .is_some_and(|rest| kubeboot_api::names::subdomain_errors(rest).is_empty());
    if subdomain.is_empty() || wildcard_ok || san.parse::<IpAddr>().is_ok() {
        return None;
    }
    const WILDCARD: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    Some(format!(
        "apiServer.certSANs: Invalid value: {san:?}: altname is not a valid IP address, DNS label or a DNS label with subdomain wildcards: {}; {WILDCARD}",
        subdomain.join("; ")
    ))
}

fn kubeboot_api_dns_ok(h: &str) -> bool {
    crate::object::is_dns1123_subdomain(h)
}

/// A kubeconfig with a fresh client certificate for `user` in `groups`.
pub fn client_kubeconfig(
    ca: &CertificateAuthority,
    server: &str,
    user: &str,
    groups: Vec<String>,
    now: SystemTime,
    validity: Duration,
) -> Result<Kubeconfig, String> {
    let subject = kubeboot_pki::cert::subject(user, &groups);
    let (key, cert) = new_leaf(
        ca,
        subject,
        (vec![], vec![]),
        Usage::ClientAuth,
        now,
        validity,
    )?;
    Ok(Kubeconfig::new(
        CLUSTER_NAME,
        server,
        ca.cert_pem(),
        user,
        Credential::ClientCert {
            cert_pem: cert.pem,
            key_pem: key.to_pem(),
        },
    ))
}

/// A new key and a serving certificate of `ca` for the API server's `dns` names and `ips`,
/// valid for `validity` (within the CA's own).
pub(crate) fn serving_pair(
    ca: &CertificateAuthority,
    dns: Vec<String>,
    ips: Vec<IpAddr>,
    now: SystemTime,
    validity: Duration,
) -> Result<(PrivateKey, kubeboot_pki::cert::Cert), String> {
    let subject = kubeboot_pki::cert::subject("kube-apiserver", &[]);
    new_leaf(ca, subject, (dns, ips), Usage::ServerAuth, now, validity)
}

/// A new P-256 key and a certificate of `ca` for it: `subject`, the DNS and IP names,
/// digital signature, key encipherment and `purpose` (client or server auth), valid from
/// five minutes ago for `validity` (within the CA's own).
fn new_leaf(
    ca: &CertificateAuthority,
    subject: Vec<(Vec<u64>, String)>,
    (dns_names, ip_addresses): (Vec<String>, Vec<IpAddr>),
    purpose: Usage,
    now: SystemTime,
    validity: Duration,
) -> Result<(PrivateKey, kubeboot_pki::cert::Cert), String> {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).map_err(|e| e.to_string())?;
    let spec = LeafSpec {
        subject,
        dns_names,
        ip_addresses,
        emails: vec![],
        uris: vec![],
        usages: vec![Usage::DigitalSignature, Usage::KeyEncipherment, purpose],
        not_before: now - Duration::from_secs(300),
        not_after: (now + validity).min(ca.not_after()),
        serial: random_serial(),
    };
    let cert = ca.issue_for_key(&spec, &key).map_err(|e| e.to_string())?;
    Ok((key, cert))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_san_is_an_ip_a_dns_name_or_a_wildcard_of_one() {
        for ok in [
            "10.0.0.1",
            "::1",
            "api.example.com",
            "*.example.com",
            "localhost",
        ] {
            assert_eq!(san_error(ok), None, "{ok}");
        }
        for bad in ["bad_name!", "*.", "a.*.b", "Upper.example.com"] {
            let e = san_error(bad).unwrap_or_default();
            assert!(
                e.starts_with(&format!("apiServer.certSANs: Invalid value: {bad:?}: altname is not a valid IP address, DNS label or a DNS label with subdomain wildcards: ")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn the_serving_certificate_names_the_kubernetes_service_address() {
        let (dns, ips) = serving_sans(&InitOptions::default());
        assert!(ips.contains(&IpAddr::from([10, 96, 0, 1])), "{ips:?}");
        assert!(dns.contains(&"kubernetes.default.svc".to_owned()));
    }
}
