//! The cluster CA's rotation in a control plane's data dir, in three phases an operator can
//! run one at a time or together, each idempotent and resumable after a crash:
//!
//! ```text
//! phase      pki/ca.crt (signing CA first)   pki/ca.key   pki/ca-next.*   serving cert, kubeconfigs
//! idle       old                             old          -               old
//! prepare    old, new                        old          new             old (kubeconfigs trust both)
//! switch     new, old                        new          -               new (trusting both)
//! finish     new                             new          -               new
//! ```
//!
//! Every file is replaced atomically, and the running server reads each again when it
//! changes (`serving`, `kubeboot_pki::reload`): the client CA bundle, the serving
//! certificate and the signing CA follow the files, and so do the ClusterTrustBundles.
//! The phase is read from the files themselves, so a rerun after a crash finds where the
//! last run stopped. What lives in the API (cluster-info) is the caller's to update with
//! [`Rotation::bundle`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use kubeboot_pki::cert::random_serial;
use kubeboot_pki::files::{Mode, read_text, write_atomic};
use kubeboot_pki::kubeconfig::Credential;
use kubeboot_pki::{CertificateAuthority, KeyAlgorithm, Kubeconfig, LeafSpec, PrivateKey, Usage};

use crate::datadir::{CLUSTER_NAME, DataDir, DataDirError};

/// Where a rotation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// One CA, nothing under way.
    Idle,
    /// A new CA is trusted beside the old one, which still signs.
    Prepared,
    /// The new CA signs; the old one is still trusted.
    Switched,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Idle => "idle",
            Self::Prepared => "prepared",
            Self::Switched => "switched",
        })
    }
}

/// Why a phase cannot run.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// The phase does not follow from where the rotation stands.
    #[error("{0}")]
    Refused(String),
    /// A file of the data dir is missing or unusable.
    #[error(transparent)]
    DataDir(#[from] DataDirError),
}

/// The CA files of a data dir as they are now.
pub struct Rotation {
    dir: DataDir,
    /// The certificates of `pki/ca.crt`, the signing CA's first.
    trusted: Vec<String>,
    /// The signing CA (`pki/ca.crt`'s first certificate and `pki/ca.key`).
    signing: CertificateAuthority,
    /// The prepared CA (`pki/ca-next.*`).
    next: Option<CertificateAuthority>,
}

const NEXT_CRT: &str = "ca-next.crt";
const NEXT_KEY: &str = "ca-next.key";
const YEAR: Duration = Duration::from_secs(365 * 86400);

impl Rotation {
    /// Reads the CA files of `dir`. A `pki/ca.key` that is already the prepared CA's (a
    /// switch stopped half-way) is read as the switch under way.
    pub fn read(dir: &DataDir) -> Result<Self, RotationError> {
        let (crt, key) = dir.read_pair("ca.crt", "ca.key")?.ok_or_else(|| {
            RotationError::Refused(format!(
                "{} holds no cluster CA: start the server on it first",
                dir.root.display()
            ))
        })?;
        // One of the pair alone is what a crash while writing or removing them left: the
        // pair is not there (prepare writes both again).
        let next_files = match dir.read_pair(NEXT_CRT, NEXT_KEY) {
            Err(DataDirError::HalfWritten { .. }) => None,
            other => other?,
        };
        let next = match &next_files {
            Some((c, k)) => Some(
                CertificateAuthority::from_pem(c, k).map_err(|e| unusable(dir.pki(NEXT_KEY), e))?,
            ),
            None => None,
        };
        let signing = match (CertificateAuthority::from_pem(&crt, &key), &next_files) {
            (Ok(ca), _) => ca,
            (Err(e), Some((next_crt, _))) => CertificateAuthority::from_pem(next_crt, &key)
                .map_err(|_| unusable(dir.pki("ca.key"), e))?,
            (Err(e), None) => return Err(unusable(dir.pki("ca.key"), e)),
        };
        Ok(Self {
            dir: dir.clone(),
            trusted: certificates(&crt),
            signing,
            next,
        })
    }

    /// Where the rotation stands. A prepared CA that already signs is a switch under way,
    /// which [`Rotation::switch`] completes.
    pub fn phase(&self) -> Phase {
        let bundled = |n: &CertificateAuthority| self.trusted.iter().any(|c| c == n.cert_pem());
        match (&self.next, self.trusted.len()) {
            // A prepare stopped before the bundle took the new CA: not prepared yet.
            (Some(n), 1) if !bundled(n) && !self.switch_under_way() => Phase::Idle,
            (Some(_), _) => Phase::Prepared,
            (None, 1) => Phase::Idle,
            (None, _) => Phase::Switched,
        }
    }

    /// Whether the prepared CA signs already (a switch stopped half-way).
    fn switch_under_way(&self) -> bool {
        self.next
            .as_ref()
            .is_some_and(|n| n.cert_der() == self.signing.cert_der())
    }

    /// The trusted CA bundle, as `pki/ca.crt` holds it (cluster-info's CA data).
    pub fn bundle(&self) -> String {
        self.trusted.concat()
    }

    /// The signing CA.
    pub fn signing(&self) -> &CertificateAuthority {
        &self.signing
    }

    /// The prepared CA, during prepare.
    pub fn prepared(&self) -> Option<&CertificateAuthority> {
        self.next.as_ref()
    }

    /// The CAs trusted beside the signing one.
    pub fn others(&self) -> &[String] {
        &self.trusted[1..]
    }

    /// prepare: `new` (or a new ECDSA P-256 CA valid as long as the signing one was made
    /// for, at least a year) becomes trusted beside the signing CA, which keeps signing.
    pub fn prepare(
        &mut self,
        new: Option<CertificateAuthority>,
        now: SystemTime,
    ) -> Result<(), RotationError> {
        if self.phase() == Phase::Switched {
            return Err(RotationError::Refused(
                "the rotation is switched already: run --phase finish to end it before preparing another".into(),
            ));
        }
        if self.switch_under_way() {
            return Err(RotationError::Refused(
                "a switch to the prepared CA stopped half-way: run --phase switch to complete it"
                    .into(),
            ));
        }
        let next = match (self.next.take(), new) {
            (Some(held), Some(given)) if held.cert_der() != given.cert_der() => {
                return Err(RotationError::Refused(format!(
                    "a different CA is prepared already ({}): finish that rotation, or remove it to prepare another",
                    self.dir.pki(NEXT_CRT).display()
                )));
            }
            (Some(held), _) => held,
            (None, Some(given)) => given,
            (None, None) => new_ca(self.signing.not_after(), now)?,
        };
        if next.cert_der() == self.signing.cert_der() {
            return Err(RotationError::Refused(
                "the given CA is the one that signs now: give a new CA".into(),
            ));
        }
        write_pair(&self.dir, NEXT_CRT, NEXT_KEY, &next)?;
        self.trusted = vec![
            self.signing.cert_pem().to_owned(),
            next.cert_pem().to_owned(),
        ];
        write_atomic(
            &self.dir.pki("ca.crt"),
            self.bundle().as_bytes(),
            Mode::Public,
        )
        .map_err(DataDirError::from)?;
        self.next = Some(next);
        self.rewrite_kubeconfigs(None, now)
    }

    /// switch: the prepared CA signs the serving certificate, the kubeconfigs' client
    /// certificates and, from now on, every CSR; the old CA stays trusted.
    pub fn switch(&mut self, now: SystemTime) -> Result<(), RotationError> {
        if self.phase() == Phase::Idle {
            return Err(RotationError::Refused(
                "no CA is prepared: run --phase prepare first".into(),
            ));
        }
        let Some(next) = self.next.take() else {
            return match self.phase() {
                Phase::Switched => Ok(()),
                _ => Err(RotationError::Refused(
                    "no CA is prepared: run --phase prepare first".into(),
                )),
            };
        };
        self.reissue_serving_cert(&next, now)?;
        let old: Vec<String> = self
            .trusted
            .iter()
            .filter(|c| c.as_str() != next.cert_pem())
            .cloned()
            .collect();
        self.trusted = std::iter::once(next.cert_pem().to_owned())
            .chain(old)
            .collect();
        self.rewrite_kubeconfigs(Some(&next), now)?;
        // The key first: until the certificate follows, the two do not match and the
        // running server keeps the CA it has.
        write_atomic(
            &self.dir.pki("ca.key"),
            next.key_pem().as_bytes(),
            Mode::Private,
        )
        .map_err(DataDirError::from)?;
        write_atomic(
            &self.dir.pki("ca.crt"),
            self.bundle().as_bytes(),
            Mode::Public,
        )
        .map_err(DataDirError::from)?;
        for f in [NEXT_CRT, NEXT_KEY] {
            std::fs::remove_file(self.dir.pki(f)).map_err(DataDirError::from)?;
        }
        self.signing = next;
        Ok(())
    }

    /// finish: only the signing CA stays trusted. `still_on_old` names what still holds a
    /// certificate of an old CA; unless `force`, it stops the phase.
    pub fn finish(
        &mut self,
        still_on_old: &[String],
        force: bool,
        now: SystemTime,
    ) -> Result<(), RotationError> {
        match self.phase() {
            Phase::Idle => return Ok(()),
            Phase::Prepared => {
                return Err(RotationError::Refused(
                    "the new CA does not sign yet: run --phase switch first".into(),
                ));
            }
            Phase::Switched => {}
        }
        if !still_on_old.is_empty() && !force {
            return Err(RotationError::Refused(format!(
                "still on the old CA: {}. Wait until they have renewed their certificates, or give --force: each of them is then refused by the API server until it gets a certificate of the new CA",
                still_on_old.join(", ")
            )));
        }
        self.trusted.truncate(1);
        self.rewrite_kubeconfigs(None, now)?;
        write_atomic(
            &self.dir.pki("ca.crt"),
            self.bundle().as_bytes(),
            Mode::Public,
        )
        .map_err(DataDirError::from)?;
        Ok(())
    }

    /// Whether `cert_pem` (its first certificate) was issued by a CA trusted only until
    /// the rotation finishes (once switched: any but the signing one).
    pub fn on_old_ca(&self, cert_pem: &str) -> bool {
        !issued_by(cert_pem, self.signing.cert_der())
            && self.trusted[1..].iter().any(|ca| {
                certificates(ca)
                    .first()
                    .and_then(|c| der_of(c))
                    .is_some_and(|der| issued_by(cert_pem, &der))
            })
    }

    /// The kubeconfigs of the data dir whose client certificate is of an old CA.
    pub fn kubeconfigs_on_old_ca(&self) -> Result<Vec<String>, RotationError> {
        let mut out = Vec::new();
        for path in self.kubeconfigs() {
            let kc = read_kubeconfig(&path)?;
            if client_cert(&kc).is_some_and(|c| self.on_old_ca(&c)) {
                out.push(path.display().to_string());
            }
        }
        Ok(out)
    }

    fn kubeconfigs(&self) -> [PathBuf; 2] {
        [self.dir.admin_conf(), self.dir.controller_manager_conf()]
    }

    /// Sets each kubeconfig's CA data to the trusted bundle, and with `issuer`, gives it a
    /// client certificate of that CA (the same user and groups), unless it has one.
    fn rewrite_kubeconfigs(
        &self,
        issuer: Option<&CertificateAuthority>,
        now: SystemTime,
    ) -> Result<(), RotationError> {
        for path in self.kubeconfigs() {
            let mut kc = read_kubeconfig(&path)?;
            let before = kc.to_yaml();
            set_ca_data(&mut kc, &self.bundle());
            if let Some(ca) = issuer
                && let Some(cert) = client_cert(&kc)
                && !issued_by(&cert, ca.cert_der())
            {
                reissue_client_cert(&mut kc, &cert, ca, now)
                    .map_err(|e| unusable(path.clone(), e))?;
            }
            if kc.to_yaml() != before {
                write_atomic(&path, kc.to_yaml().as_bytes(), Mode::Private)
                    .map_err(DataDirError::from)?;
            }
        }
        Ok(())
    }

    /// A serving certificate from `ca` for the names and addresses of the current one.
    fn reissue_serving_cert(
        &self,
        ca: &CertificateAuthority,
        now: SystemTime,
    ) -> Result<(), RotationError> {
        let path = self.dir.pki("apiserver.crt");
        let current = read_text(&path).map_err(DataDirError::from)?;
        if issued_by(&current, ca.cert_der()) {
            return Ok(());
        }
        let (dns, ips) = sans(&current).map_err(|e| unusable(path.clone(), e))?;
        let key =
            PrivateKey::generate(KeyAlgorithm::EcdsaP256).map_err(|e| unusable(path.clone(), e))?;
        let spec = LeafSpec {
            subject: kubeboot_pki::cert::subject("kube-apiserver", &[]),
            dns_names: dns,
            ip_addresses: ips,
            emails: vec![],
            uris: vec![],
            usages: vec![
                Usage::DigitalSignature,
                Usage::KeyEncipherment,
                Usage::ServerAuth,
            ],
            not_before: now - Duration::from_secs(300),
            not_after: (now + YEAR).min(ca.not_after()),
            serial: random_serial(),
        };
        let cert = ca
            .issue_for_key(&spec, &key)
            .map_err(|e| unusable(path.clone(), e))?;
        // The key first: until the certificate follows, the server keeps the pair it has.
        write_atomic(
            &self.dir.pki("apiserver.key"),
            key.to_pem().as_bytes(),
            Mode::Private,
        )
        .map_err(DataDirError::from)?;
        write_atomic(&path, cert.pem.as_bytes(), Mode::Public).map_err(DataDirError::from)?;
        Ok(())
    }
}

/// A new CA valid as long as `old` (from now), and at least a year, named for the day it
/// was made (`kubernetes-2026-12-06`), so that clients building a chain never confuse it
/// with the CA it replaces.
fn new_ca(
    old_not_after: SystemTime,
    now: SystemTime,
) -> Result<CertificateAuthority, RotationError> {
    let validity = old_not_after
        .duration_since(now)
        .unwrap_or_default()
        .max(YEAR);
    let day = &kubeboot_api::clock::format_rfc3339(now)[..10];
    let name = format!("{CLUSTER_NAME}-{day}");
    CertificateAuthority::create(
        &name,
        KeyAlgorithm::EcdsaP256,
        now,
        validity,
        random_serial(),
    )
    .map_err(|e| RotationError::Refused(format!("making the new CA: {e}")))
}

fn write_pair(
    dir: &DataDir,
    crt: &str,
    key: &str,
    ca: &CertificateAuthority,
) -> Result<(), RotationError> {
    write_atomic(&dir.pki(key), ca.key_pem().as_bytes(), Mode::Private)
        .map_err(DataDirError::from)?;
    write_atomic(&dir.pki(crt), ca.cert_pem().as_bytes(), Mode::Public)
        .map_err(DataDirError::from)?;
    Ok(())
}

/// Each certificate of a PEM bundle, as its own PEM text.
pub fn certificates(bundle: &str) -> Vec<String> {
    kubeboot_pki::pem::blocks(bundle)
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| kubeboot_pki::cert::pem_encode("CERTIFICATE", &b.der))
        .collect()
}

fn der_of(pem: &str) -> Option<Vec<u8>> {
    kubeboot_pki::pem::blocks(pem)
        .into_iter()
        .next()
        .map(|b| b.der)
}

/// Whether the first certificate of `cert_pem` is signed by the CA certificate `ca_der`.
pub fn issued_by(cert_pem: &str, ca_der: &[u8]) -> bool {
    let Some(der) = der_of(cert_pem) else {
        return false;
    };
    let (Ok((_, cert)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(&der),
        x509_parser::parse_x509_certificate(ca_der),
    ) else {
        return false;
    };
    cert.issuer().as_raw() == ca.subject().as_raw()
        && cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// The DNS names and IP addresses a certificate is for.
fn sans(cert_pem: &str) -> Result<(Vec<String>, Vec<IpAddr>), String> {
    use x509_parser::extensions::GeneralName;
    let der = der_of(cert_pem).ok_or("holds no certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(
                        <[u8; 4]>::try_from(*b).map_err(|e| e.to_string())?,
                    )),
                    16 => ips.push(IpAddr::from(
                        <[u8; 16]>::try_from(*b).map_err(|e| e.to_string())?,
                    )),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    Ok((dns, ips))
}

fn read_kubeconfig(path: &std::path::Path) -> Result<Kubeconfig, RotationError> {
    let text = read_text(path).map_err(DataDirError::from)?;
    Kubeconfig::from_yaml(&text).map_err(|e| unusable(path.to_owned(), e))
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn set_ca_data(kc: &mut Kubeconfig, bundle: &str) {
    for c in &mut kc.clusters {
        c.cluster.certificate_authority_data = Some(b64(bundle));
    }
}

/// The client certificate of a kubeconfig's (first) user, PEM.
pub fn client_cert(kc: &Kubeconfig) -> Option<String> {
    kc.users
        .first()
        .and_then(|u| u.user.client_certificate_data.as_deref())
        .and_then(unb64)
}

/// Gives the kubeconfig's user a new key and a certificate of `ca` for the subject of
/// `cert_pem`, with the same usages and a year's validity.
fn reissue_client_cert(
    kc: &mut Kubeconfig,
    cert_pem: &str,
    ca: &CertificateAuthority,
    now: SystemTime,
) -> Result<(), String> {
    let der = der_of(cert_pem).ok_or("holds no certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    let attr = |oid: &x509_parser::der_parser::oid::Oid<'_>| -> Vec<String> {
        cert.subject()
            .iter_by_oid(oid)
            .filter_map(|a| a.as_str().ok().map(str::to_owned))
            .collect()
    };
    let cn = attr(&x509_parser::oid_registry::OID_X509_COMMON_NAME);
    let orgs = attr(&x509_parser::oid_registry::OID_X509_ORGANIZATION_NAME);
    let user = cn.first().ok_or("the client certificate names no user")?;
    let fresh = crate::datadir::client_kubeconfig(ca, "", user, orgs, now, YEAR)?;
    let Credential::ClientCert { cert_pem, key_pem } = credential(&fresh) else {
        return Err("no client certificate was made".into());
    };
    if let Some(u) = kc.users.first_mut() {
        u.user.client_certificate_data = Some(b64(&cert_pem));
        u.user.client_key_data = Some(b64(&key_pem));
    }
    Ok(())
}

fn credential(kc: &Kubeconfig) -> Credential {
    let user = kc.users.first().map(|u| &u.user);
    let data = |v: Option<&String>| v.and_then(|s| unb64(s)).unwrap_or_default();
    Credential::ClientCert {
        cert_pem: data(user.and_then(|u| u.client_certificate_data.as_ref())),
        key_pem: data(user.and_then(|u| u.client_key_data.as_ref())),
    }
}

fn unusable(path: PathBuf, e: impl std::fmt::Display) -> RotationError {
    RotationError::DataDir(DataDirError::Unusable {
        file: path.display().to_string(),
        why: e.to_string(),
    })
}

#[cfg(test)]
mod tests;
