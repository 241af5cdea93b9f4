//! A cluster CA's rotation over its files, in three phases an operator can run one at a
//! time or together, each idempotent and resumable after a crash:
//!
//! ```text
//! phase      CA bundle (signing CA first)   CA key   next CA pair   what holds certificates
//! idle       old                            old      -              old
//! prepare    old, new                       old      new            old (trusting both)
//! switch     new, old                       new      -              new (trusting both)
//! finish     new                            new      -              new
//! ```
//!
//! Every file is replaced atomically, and the phase is read from the files themselves, so
//! a rerun after a crash finds where the last run stopped. What holds certificates of the
//! CA (a data dir's serving certificate and kubeconfigs, a hand-built PKI's every
//! certificate) is the caller's [`Holders`]; this module is the order of the steps.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::cert::CertificateAuthority;
use crate::chain::{certificates, first_der, issued_by, successor};
use crate::files::{Mode, read_text, write_atomic};
use crate::key::KeyAlgorithm;
use crate::kubeconfig::Kubeconfig;

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
    /// A file is missing or unusable.
    #[error("{file}: {why}")]
    Unusable {
        /// The file.
        file: String,
        /// What is wrong with it.
        why: String,
    },
}

impl RotationError {
    /// `file` cannot be used, because of `why`.
    pub fn unusable(file: &Path, why: impl std::fmt::Display) -> Self {
        Self::Unusable {
            file: file.display().to_string(),
            why: why.to_string(),
        }
    }
}

/// The CA's files: the trusted bundle (signing CA first) and the signing key, and the
/// pair a prepare writes for the next CA.
#[derive(Clone, Debug)]
pub struct CaFiles {
    /// The trusted bundle.
    pub crt: PathBuf,
    /// The signing CA's key.
    pub key: PathBuf,
    /// The prepared CA's certificate.
    pub next_crt: PathBuf,
    /// The prepared CA's key.
    pub next_key: PathBuf,
}

/// What holds certificates of the CA, or trusts it, beside the CA files.
pub trait Holders {
    /// Each holder trusts the PEM bundle `bundle` (prepare, switch, finish).
    fn trust(&mut self, bundle: &str) -> Result<(), RotationError>;
    /// Each holder gets a certificate of `ca` unless it holds one already (switch).
    fn reissue(&mut self, ca: &CertificateAuthority, now: SystemTime) -> Result<(), RotationError>;
}

/// The CA files as they are now.
pub struct CaRotation {
    files: CaFiles,
    /// The certificates of the bundle, the signing CA's first.
    trusted: Vec<String>,
    /// The signing CA (the bundle's first certificate and the key).
    signing: CertificateAuthority,
    /// The prepared CA.
    next: Option<CertificateAuthority>,
}

/// Both files of a pair, none, or (what a crash while writing or removing them leaves)
/// `Err` naming the one that is there.
fn read_pair(crt: &Path, key: &Path) -> Result<Option<(String, String)>, PathBuf> {
    match (crt.exists(), key.exists()) {
        (false, false) => Ok(None),
        (true, true) => match (read_text(crt), read_text(key)) {
            (Ok(c), Ok(k)) => Ok(Some((c, k))),
            _ => Err(crt.to_owned()),
        },
        (true, false) => Err(crt.to_owned()),
        (false, true) => Err(key.to_owned()),
    }
}

impl CaRotation {
    /// Reads the CA files. A key that is already the prepared CA's (a switch stopped
    /// half-way) is read as the switch under way; a lone half of the next pair as none.
    pub fn read(files: CaFiles) -> Result<Self, RotationError> {
        let (crt, key) = match read_pair(&files.crt, &files.key) {
            Ok(Some(pair)) => pair,
            Ok(None) => {
                return Err(RotationError::Refused(format!(
                    "{} and {} hold no CA",
                    files.crt.display(),
                    files.key.display()
                )));
            }
            Err(present) => {
                return Err(RotationError::unusable(
                    &present,
                    "the other half of the CA pair is missing: restore it from a backup",
                ));
            }
        };
        let next_files = read_pair(&files.next_crt, &files.next_key).unwrap_or(None);
        let next = match &next_files {
            Some((c, k)) => Some(
                CertificateAuthority::from_pem(c, k)
                    .map_err(|e| RotationError::unusable(&files.next_key, e))?,
            ),
            None => None,
        };
        let signing = match (CertificateAuthority::from_pem(&crt, &key), &next_files) {
            (Ok(ca), _) => ca,
            (Err(e), Some((next_crt, _))) => CertificateAuthority::from_pem(next_crt, &key)
                .map_err(|_| RotationError::unusable(&files.key, e))?,
            (Err(e), None) => return Err(RotationError::unusable(&files.key, e)),
        };
        Ok(Self {
            trusted: certificates(&crt),
            files,
            signing,
            next,
        })
    }

    /// Where the rotation stands. A prepared CA that already signs is a switch under way,
    /// which [`CaRotation::switch`] completes.
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
    pub fn switch_under_way(&self) -> bool {
        self.next
            .as_ref()
            .is_some_and(|n| n.cert_der() == self.signing.cert_der())
    }

    /// The trusted CA bundle, as the bundle file holds it.
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

    /// prepare: `new` (or a new `alg` CA valid as long as the signing one was made for, at
    /// least a year) becomes trusted beside the signing CA, which keeps signing.
    pub fn prepare(
        &mut self,
        new: Option<CertificateAuthority>,
        alg: KeyAlgorithm,
        holders: &mut dyn Holders,
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
                    "a different CA is prepared already ({}): complete that rotation (--phase switch, then --phase finish) before preparing another",
                    self.files.next_crt.display()
                )));
            }
            (Some(held), _) => held,
            (None, Some(given)) => given,
            (None, None) => successor(&self.signing, alg, now)
                .map_err(|e| RotationError::Refused(format!("making the new CA: {e}")))?,
        };
        if next.cert_der() == self.signing.cert_der() {
            return Err(RotationError::Refused(
                "the given CA is the one that signs now: give a new CA".into(),
            ));
        }
        self.write(&self.files.next_key, &next.key_pem(), Mode::Private)?;
        self.write(&self.files.next_crt, next.cert_pem(), Mode::Public)?;
        self.trusted = vec![
            self.signing.cert_pem().to_owned(),
            next.cert_pem().to_owned(),
        ];
        self.write(&self.files.crt, &self.bundle(), Mode::Public)?;
        self.next = Some(next);
        holders.trust(&self.bundle())
    }

    /// switch: the prepared CA signs what the holders hold and, from now on, everything;
    /// the old CA stays trusted.
    pub fn switch(
        &mut self,
        holders: &mut dyn Holders,
        now: SystemTime,
    ) -> Result<(), RotationError> {
        let no_prepared =
            || RotationError::Refused("no CA is prepared: run --phase prepare first".into());
        if self.phase() == Phase::Idle {
            return Err(no_prepared());
        }
        let Some(next) = self.next.take() else {
            // Switched already: anything that came back with a certificate of the old CA
            // (restored from a backup) gets one of the signing CA.
            return match self.phase() {
                Phase::Switched => {
                    holders.trust(&self.bundle())?;
                    holders.reissue(&self.signing, now)
                }
                _ => Err(no_prepared()),
            };
        };
        let old: Vec<String> = self
            .trusted
            .iter()
            .filter(|c| c.as_str() != next.cert_pem())
            .cloned()
            .collect();
        self.trusted = std::iter::once(next.cert_pem().to_owned())
            .chain(old)
            .collect();
        holders.trust(&self.bundle())?;
        holders.reissue(&next, now)?;
        // The key first: until the bundle follows, the two do not match and a running
        // server keeps the CA it has.
        self.write(&self.files.key, &next.key_pem(), Mode::Private)?;
        self.write(&self.files.crt, &self.bundle(), Mode::Public)?;
        for f in [&self.files.next_crt, &self.files.next_key] {
            std::fs::remove_file(f).map_err(|e| RotationError::unusable(f, e))?;
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
        holders: &mut dyn Holders,
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
                "still on the old CA: {}. Wait until they have renewed their certificates, or give --force: each of them is then refused until it gets a certificate of the new CA",
                still_on_old.join(", ")
            )));
        }
        self.trusted.truncate(1);
        holders.trust(&self.bundle())?;
        self.write(&self.files.crt, &self.bundle(), Mode::Public)
    }

    /// Whether `cert_pem` (its first certificate) was issued by a CA trusted only until
    /// the rotation finishes (once switched: any but the signing one).
    pub fn on_old_ca(&self, cert_pem: &str) -> bool {
        !issued_by(cert_pem, self.signing.cert_der())
            && self.trusted[1..]
                .iter()
                .any(|ca| first_der(ca).is_some_and(|der| issued_by(cert_pem, &der)))
    }

    /// Those of `kubeconfigs` whose client certificate is of an old CA.
    pub fn kubeconfigs_on_old_ca(
        &self,
        kubeconfigs: &[PathBuf],
    ) -> Result<Vec<String>, RotationError> {
        let mut out = Vec::new();
        for path in kubeconfigs {
            let kc = read_kubeconfig(path)?;
            if kc.client_certificate().is_some_and(|c| self.on_old_ca(&c)) {
                out.push(path.display().to_string());
            }
        }
        Ok(out)
    }

    fn write(&self, path: &Path, text: &str, mode: Mode) -> Result<(), RotationError> {
        write_atomic(path, text.as_bytes(), mode).map_err(|e| RotationError::unusable(path, e))
    }
}

/// The kubeconfig at `path`, as a holder of the CA reads it.
pub fn read_kubeconfig(path: &Path) -> Result<Kubeconfig, RotationError> {
    let text = read_text(path).map_err(|e| RotationError::unusable(path, e))?;
    Kubeconfig::from_yaml(&text).map_err(|e| RotationError::unusable(path, e))
}

/// Writes `kc` to `path` (private, atomically) when it differs from `before`, the text it
/// was read from; whether it did.
pub fn write_kubeconfig_if_changed(
    path: &Path,
    before: &str,
    kc: &Kubeconfig,
) -> Result<bool, RotationError> {
    let after = kc.to_yaml();
    if after == before {
        return Ok(false);
    }
    write_atomic(path, after.as_bytes(), Mode::Private)
        .map_err(|e| RotationError::unusable(path, e))?;
    Ok(true)
}

/// Makes the kubeconfig at `path` trust the CA bundle `bundle`; whether it changed.
pub fn trust_kubeconfig(path: &Path, bundle: &str) -> Result<bool, RotationError> {
    let mut kc = read_kubeconfig(path)?;
    let before = kc.to_yaml();
    kc.set_certificate_authority_data(bundle);
    write_kubeconfig_if_changed(path, &before, &kc)
}
