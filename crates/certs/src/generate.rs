//! Writing the PKI to a directory (cfssl's file names); `renew` keeps it current.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use kubeboot_pki::cert::{Cert, random_serial, subject};
use kubeboot_pki::files::{Mode, write_atomic};
use kubeboot_pki::kubeconfig::Credential;
use kubeboot_pki::{CertificateAuthority, Kubeconfig, LeafSpec, PrivateKey, Usage};
use x509_parser::prelude::*;

use crate::plan::{Identity, identities};
use crate::spec::Checked;

/// What a run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Files written.
    pub written: Vec<String>,
    /// Files found up to date and left alone.
    pub kept: Vec<String>,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// Disk trouble.
    #[error("{0}")]
    Io(String),
    /// A file is unusable or half of a pair is missing.
    #[error("{0}")]
    Unusable(String),
}

pub(crate) fn io(path: &Path, e: impl std::fmt::Display) -> GenError {
    GenError::Io(format!("{}: {e}", path.display()))
}

impl Outcome {
    pub(crate) fn write_if_changed(
        &mut self,
        path: &Path,
        contents: &[u8],
        mode: Mode,
    ) -> Result<(), GenError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if std::fs::read(path).ok().as_deref() == Some(contents) {
            self.kept.push(name);
            return Ok(());
        }
        write_atomic(path, contents, mode).map_err(|e| io(path, e))?;
        self.written.push(name);
        Ok(())
    }
}

/// Where a PKI's files go: keys and certificates in `cert_dir`, kubeconfigs in
/// `kubeconfig_dir` (kubeadm's `--cert-dir` and `--kubeconfig-dir`).
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// Keys, certificates and the encryption config.
    pub cert_dir: &'a Path,
    /// The kubeconfigs.
    pub kubeconfig_dir: &'a Path,
}

impl<'a> Layout<'a> {
    /// Everything in one directory.
    pub fn one(dir: &'a Path) -> Self {
        Layout {
            cert_dir: dir,
            kubeconfig_dir: dir,
        }
    }

    /// Where the file `name` of an [`Outcome`] lies.
    pub fn path_of(&self, name: &str) -> std::path::PathBuf {
        match name.ends_with(".kubeconfig") {
            true => self.kubeconfig_dir.join(name),
            false => self.cert_dir.join(name),
        }
    }

    /// The kubeconfig of the identity `stem`.
    pub fn kubeconfig(&self, stem: &str) -> std::path::PathBuf {
        self.kubeconfig_dir.join(format!("{stem}.kubeconfig"))
    }
}

/// Generates (or completes, or leaves alone) the PKI of `c` in `layout`.
pub fn generate(
    c: &Checked,
    layout: Layout<'_>,
    force: bool,
    now: SystemTime,
) -> Result<Outcome, GenError> {
    let out = layout.cert_dir;
    for dir in [out, layout.kubeconfig_dir] {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let mut outcome = Outcome::default();
    let ca = load_or_create_ca(c, out, force, now, &mut outcome)?;
    // The kubeconfigs trust the whole bundle: during a CA rotation it holds two CAs.
    let trusted = read(&out.join("ca.pem"))?;
    for id in identities(c) {
        let key_path = out.join(format!("{}-key.pem", id.stem));
        let key = match (key_path.exists(), force) {
            (true, false) => {
                let k = PrivateKey::from_pem(&read(&key_path)?)
                    .map_err(|e| GenError::Unusable(format!("{}: {e}", key_path.display())))?;
                outcome.kept.push(format!("{}-key.pem", id.stem));
                k
            }
            _ => {
                let k =
                    PrivateKey::generate(c.alg).map_err(|e| GenError::Unusable(e.to_string()))?;
                write_atomic(&key_path, k.to_pem().as_bytes(), Mode::Private)
                    .map_err(|e| io(&key_path, e))?;
                outcome.written.push(format!("{}-key.pem", id.stem));
                k
            }
        };
        let cert_path = out.join(format!("{}.pem", id.stem));
        let current = std::fs::read(&cert_path).ok();
        let cert_pem = match current.filter(|pem| up_to_date(pem, &id, &ca, &key, now)) {
            Some(pem) => {
                outcome.kept.push(format!("{}.pem", id.stem));
                String::from_utf8_lossy(&pem).into_owned()
            }
            None => {
                let cert = issue(&ca, &id, &key, now, c.leaf_validity)?;
                outcome.write_if_changed(&cert_path, cert.pem.as_bytes(), Mode::Public)?;
                cert.pem
            }
        };
        if id.kubeconfig {
            let kc = Kubeconfig::new(
                &c.spec.cluster_name,
                &c.spec.api_endpoint,
                &trusted,
                &id.cn,
                Credential::ClientCert {
                    cert_pem,
                    key_pem: key.to_pem(),
                },
            );
            outcome.write_if_changed(
                &layout.kubeconfig(&id.stem),
                kc.to_yaml().as_bytes(),
                Mode::Private,
            )?;
        }
    }
    let enc = out.join("encryption-config.yaml");
    if force || !enc.exists() {
        let mut key = [0u8; 32];
        fill(&mut key);
        write_atomic(
            &enc,
            encryption_config(&c.spec.encryption.provider, &key).as_bytes(),
            Mode::Private,
        )
        .map_err(|e| io(&enc, e))?;
        outcome.written.push("encryption-config.yaml".into());
    } else {
        outcome.kept.push("encryption-config.yaml".into());
    }
    Ok(outcome)
}

fn fill(b: &mut [u8]) {
    let _ =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, b));
}

/// An `EncryptionConfiguration` for Secrets with one 32-byte key, reading plaintext too.
pub fn encryption_config(provider: &str, key: &[u8; 32]) -> String {
    let secret = base64::engine::general_purpose::STANDARD.encode(key);
    format!(
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources:\n      - secrets\n    providers:\n      - {provider}:\n          keys:\n            - name: key1\n              secret: {secret}\n      - identity: {{}}\n"
    )
}

pub(crate) fn read(path: &Path) -> Result<String, GenError> {
    std::fs::read_to_string(path).map_err(|e| io(path, e))
}

fn load_or_create_ca(
    c: &Checked,
    out: &Path,
    force: bool,
    now: SystemTime,
    outcome: &mut Outcome,
) -> Result<CertificateAuthority, GenError> {
    let (cert, key) = (out.join("ca.pem"), out.join("ca-key.pem"));
    match (cert.exists(), key.exists(), force) {
        (true, true, false) => {
            outcome
                .kept
                .extend(["ca.pem".to_owned(), "ca-key.pem".to_owned()]);
            CertificateAuthority::from_pem(&read(&cert)?, &read(&key)?)
                .map_err(|e| GenError::Unusable(format!("{}: {e}", cert.display())))
        }
        (true, false, false) | (false, true, false) => Err(GenError::Unusable(format!(
            "{} holds half of the CA (ca.pem and ca-key.pem go together): restore the other file, or pass --force to make a new CA",
            out.display()
        ))),
        _ => {
            let ca = CertificateAuthority::create(
                "Kubernetes",
                c.alg,
                now - Duration::from_secs(300),
                c.ca_validity,
                random_serial(),
            )
            .map_err(|e| GenError::Unusable(e.to_string()))?;
            write_atomic(&key, ca.key_pem().as_bytes(), Mode::Private).map_err(|e| io(&key, e))?;
            write_atomic(&cert, ca.cert_pem().as_bytes(), Mode::Public)
                .map_err(|e| io(&cert, e))?;
            outcome
                .written
                .extend(["ca-key.pem".to_owned(), "ca.pem".to_owned()]);
            Ok(ca)
        }
    }
}

fn issue(
    ca: &CertificateAuthority,
    id: &Identity,
    key: &PrivateKey,
    now: SystemTime,
    validity: Duration,
) -> Result<Cert, GenError> {
    issue_as(ca, id, subject(&id.cn, &id.orgs), key, now, validity)
}

/// As [`issue`], with the subject `subject` (every attribute, in order).
pub(crate) fn issue_as(
    ca: &CertificateAuthority,
    id: &Identity,
    subject: Vec<(Vec<u64>, String)>,
    key: &PrivateKey,
    now: SystemTime,
    validity: Duration,
) -> Result<Cert, GenError> {
    let spec = LeafSpec {
        subject,
        dns_names: id.dns.clone(),
        ip_addresses: id.ips.clone(),
        emails: vec![],
        uris: vec![],
        usages: id.usages.clone(),
        not_before: now - Duration::from_secs(300),
        not_after: (now + validity).min(ca.not_after()),
        serial: random_serial(),
    };
    ca.issue_for_key(&spec, key)
        .map_err(|e| GenError::Unusable(e.to_string()))
}

/// Whether an existing certificate already is what the identity asks for.
fn up_to_date(
    pem: &[u8],
    id: &Identity,
    ca: &CertificateAuthority,
    key: &PrivateKey,
    now: SystemTime,
) -> bool {
    let Ok((_, block)) = x509_parser::pem::parse_x509_pem(pem) else {
        return false;
    };
    let Ok((_, cert)) = X509Certificate::from_der(&block.contents) else {
        return false;
    };
    let Ok((_, ca_cert)) = X509Certificate::from_der(ca.cert_der()) else {
        return false;
    };
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    };
    let (dns, ips) = kubeboot_pki::chain::sans_of(&cert);
    let mut want_dns = id.dns.clone();
    want_dns.sort();
    let mut want_ips = id.ips.clone();
    want_ips.sort();
    cert.verify_signature(Some(ca_cert.public_key())).is_ok()
        && cert.public_key().raw == key.public_key_der().as_slice()
        && cert.subject().to_string() == subject_text(&id.cn, &id.orgs)
        && dns == want_dns
        && ips == want_ips
        && usages_of(&cert) == sorted(&id.usages)
        && cert.validity().not_after.timestamp() > secs(now)
}

fn sorted(u: &[Usage]) -> Vec<Usage> {
    let mut v = u.to_vec();
    v.sort();
    v
}

fn subject_text(cn: &str, orgs: &[String]) -> String {
    let mut parts: Vec<String> = orgs.iter().map(|o| format!("O={o}")).collect();
    parts.push(format!("CN={cn}"));
    parts.join(", ")
}

pub(crate) fn usages_of(cert: &X509Certificate<'_>) -> Vec<Usage> {
    let mut out = Vec::new();
    if let Ok(Some(ku)) = cert.key_usage() {
        if ku.value.digital_signature() {
            out.push(Usage::DigitalSignature);
        }
        if ku.value.key_encipherment() {
            out.push(Usage::KeyEncipherment);
        }
    }
    if let Ok(Some(eku)) = cert.extended_key_usage() {
        if eku.value.server_auth {
            out.push(Usage::ServerAuth);
        }
        if eku.value.client_auth {
            out.push(Usage::ClientAuth);
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::renew::{check_expiration, renew_all};

    #[test]
    fn generating_twice_changes_nothing_and_keys_survive() {
        let dir = tempfile::tempdir().unwrap();
        let c = crate::spec::parse(crate::spec::STARTING_SPEC).unwrap();
        let now = kubeboot_api::Clock::now(&kubeboot_api::SystemClock);
        let first = generate(&c, Layout::one(dir.path()), false, now).unwrap();
        assert!(
            first.written.iter().any(|f| f == "admin.kubeconfig")
                && first.written.iter().any(|f| f == "kubernetes.pem")
        );
        let key_before = std::fs::read(dir.path().join("admin-key.pem")).unwrap();
        let second = generate(&c, Layout::one(dir.path()), false, now).unwrap();
        assert_eq!(
            second.written,
            Vec::<String>::new(),
            "an unchanged spec changes nothing"
        );
        let mut kept = second.kept;
        let mut written = first.written;
        kept.sort();
        written.sort();
        assert_eq!(
            kept, written,
            "every file the first run wrote is counted as kept"
        );
        assert_eq!(
            std::fs::read(dir.path().join("admin-key.pem")).unwrap(),
            key_before
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = |f: &str| {
            std::fs::metadata(dir.path().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(
            (
                mode("ca-key.pem"),
                mode("admin.kubeconfig"),
                mode("ca.pem"),
                mode("worker-0.pem")
            ),
            (0o600, 0o600, 0o644, 0o644)
        );
        // A new SAN re-issues the API server certificate with the same key.
        let more = crate::spec::parse(
            &crate::spec::STARTING_SPEC.replace("extraSANs: []", "extraSANs: [api.example.com]"),
        )
        .unwrap();
        let key = std::fs::read(dir.path().join("kubernetes-key.pem")).unwrap();
        let third = generate(&more, Layout::one(dir.path()), false, now).unwrap();
        assert_eq!(third.written, ["kubernetes.pem"]);
        assert_eq!(
            std::fs::read(dir.path().join("kubernetes-key.pem")).unwrap(),
            key
        );
        let table = check_expiration(dir.path(), now).unwrap();
        assert!(
            table.starts_with("CERTIFICATE")
                && table.contains("worker-0")
                && table.contains("CERTIFICATE AUTHORITY"),
            "{table}"
        );
        let renewed = renew_all(Layout::one(dir.path()), Duration::from_secs(3600), now).unwrap();
        assert!(
            renewed.written.iter().any(|f| f == "admin.kubeconfig"),
            "{renewed:?}"
        );
    }
}
