//! `kubeboot certs rotate-ca`: the cluster CA's rotation for a hand-built PKI, in the
//! phases of `kubeboot_pki::ca_rotation` over `ca.pem` (the trusted bundle, signing CA
//! first), `ca-key.pem` and `ca-next*.pem`. Every certificate of the cert dir and every
//! kubeconfig of the kubeconfig dir is what holds the CA: prepare makes every kubeconfig
//! trust both CAs, switch re-issues every certificate from the new CA (same keys, names
//! and usages), finish drops the old CA. Between the phases the operator copies the files
//! to the machines; [`next_steps`] says which, in a safe order.

use std::time::SystemTime;

use kubeboot_pki::ca_rotation::{
    CaFiles, CaRotation, Holders, Phase, RotationError, read_kubeconfig, trust_kubeconfig,
};
use kubeboot_pki::chain::{issued_by, issued_by_any};
use kubeboot_pki::files::read_text;
use kubeboot_pki::{CertificateAuthority, KeyAlgorithm};

use crate::generate::{Layout, Outcome};
use crate::renew::{leaf_files, reissue_leaf};

/// The phases an operator runs, one at a time, copying files between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotatePhase {
    /// A new CA is trusted beside the old one.
    Prepare,
    /// The new CA signs every certificate.
    Switch,
    /// The old CA is trusted no more.
    Finish,
}

/// The CA files of a hand-built PKI.
pub fn ca_files(layout: Layout<'_>) -> CaFiles {
    let dir = layout.cert_dir;
    CaFiles {
        crt: dir.join("ca.pem"),
        key: dir.join("ca-key.pem"),
        next_crt: dir.join("ca-next.pem"),
        next_key: dir.join("ca-next-key.pem"),
    }
}

/// Runs `phase` on the PKI of `layout`; `new` is the CA to rotate to (prepare), else one
/// is made with `alg`; `force` finishes although certificates of the old CA remain.
/// Returns the files written.
pub fn rotate_ca(
    layout: Layout<'_>,
    phase: RotatePhase,
    new: Option<CertificateAuthority>,
    alg: KeyAlgorithm,
    force: bool,
    now: SystemTime,
) -> Result<Outcome, RotationError> {
    let files = ca_files(layout);
    let ca_paths = [&files.crt, &files.key, &files.next_crt, &files.next_key];
    let before: Vec<_> = ca_paths.iter().map(|p| std::fs::read(p).ok()).collect();
    let mut ca = CaRotation::read(files.clone())?;
    let mut holders = SpecHolders {
        layout,
        trusted: ca.bundle(),
        outcome: Outcome::default(),
    };
    match phase {
        RotatePhase::Prepare => ca.prepare(new, alg, &mut holders, now)?,
        RotatePhase::Switch => ca.switch(&mut holders, now)?,
        RotatePhase::Finish => {
            let left = holders.on_old_ca(&ca)?;
            ca.finish(&left, force, &mut holders)?;
        }
    }
    let mut outcome = holders.outcome;
    for (path, was) in ca_paths.iter().zip(before) {
        if std::fs::read(path).ok() != was && path.exists() {
            outcome.written.push(file_name(path));
        }
    }
    outcome.written.sort();
    outcome.written.dedup();
    Ok(outcome)
}

/// Where the rotation of the PKI of `layout` stands.
pub fn phase(layout: Layout<'_>) -> Result<Phase, RotationError> {
    Ok(CaRotation::read(ca_files(layout))?.phase())
}

/// What the operator does after `phase`, in order.
pub fn next_steps(phase: RotatePhase, layout: Layout<'_>) -> Vec<String> {
    let (certs, kcs) = (layout.cert_dir.display(), layout.kubeconfig_dir.display());
    let rerun = |p: &str| {
        format!("kubeboot certs rotate-ca --cert-dir {certs} --kubeconfig-dir {kcs} --phase {p}")
    };
    match phase {
        RotatePhase::Prepare => vec![
            format!("Copy {certs}/ca.pem (the old CA, still signing, and the new one) to every machine that trusts the cluster CA: each API server's --client-ca-file and each kubelet's --client-ca-file."),
            format!("Copy each kubeconfig of {kcs} to where its user reads it: they now trust both CAs."),
            "Wait until every component has read them (kubeboot apiserver and kubeboot node re-read their files within seconds; restart the others).".into(),
            format!("Then switch: {}", rerun("switch")),
        ],
        RotatePhase::Switch => vec![
            format!("Copy {certs}/ca.pem (both CAs, the new one first) to every machine as after prepare, and with it {certs}/ca-key.pem (the new CA's key) to each controller-manager's --cluster-signing-cert-file and --cluster-signing-key-file."),
            format!("Copy each API server's kubernetes.pem and kubernetes-key.pem: clients trust both CAs, so the new serving certificate is accepted."),
            format!("Copy every other certificate of {certs} with its key, and every kubeconfig of {kcs}: the API servers accept both CAs' client certificates."),
            format!("When every machine has its new files, finish: {}", rerun("finish")),
        ],
        RotatePhase::Finish => vec![
            format!("Copy {certs}/ca.pem (the new CA alone) to every machine, and every kubeconfig of {kcs}: the old CA is trusted no more."),
            format!("Keep {certs}/ca-key.pem as private as before: it is the new CA's key."),
        ],
    }
}

/// The hand-built PKI's holders: every kubeconfig of the kubeconfig dir, and every
/// certificate of the cert dir.
struct SpecHolders<'a> {
    layout: Layout<'a>,
    /// The CAs trusted when the phase began: only their certificates are re-issued.
    trusted: String,
    outcome: Outcome,
}

impl SpecHolders<'_> {
    fn kubeconfigs(&self) -> Result<Vec<std::path::PathBuf>, RotationError> {
        let dir = self.layout.kubeconfig_dir;
        let mut out: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| RotationError::unusable(dir, e))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "kubeconfig"))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The certificates and kubeconfigs still holding a certificate of an old CA.
    fn on_old_ca(&self, ca: &CaRotation) -> Result<Vec<String>, RotationError> {
        let dir = self.layout.cert_dir;
        let mut out = Vec::new();
        for (_, path) in leaf_files(dir).map_err(|e| RotationError::unusable(dir, e))? {
            if read_text(&path).is_ok_and(|pem| ca.on_old_ca(&pem)) {
                out.push(path.display().to_string());
            }
        }
        out.extend(ca.kubeconfigs_on_old_ca(&self.kubeconfigs()?)?);
        Ok(out)
    }
}

impl Holders for SpecHolders<'_> {
    fn trust(&mut self, bundle: &str) -> Result<(), RotationError> {
        for path in self.kubeconfigs()? {
            if trust_kubeconfig(&path, bundle)? {
                self.outcome.written.push(file_name(&path));
            }
        }
        Ok(())
    }

    fn reissue(&mut self, ca: &CertificateAuthority, now: SystemTime) -> Result<(), RotationError> {
        let dir = self.layout.cert_dir;
        for (stem, path) in leaf_files(dir).map_err(|e| RotationError::unusable(dir, e))? {
            let Ok(pem) = read_text(&path) else { continue };
            if !issued_by_any(&pem, &self.trusted) {
                // Not the cluster CA's (another CA's certificate kept in the same dir).
                continue;
            }
            let kubeconfig = self.layout.kubeconfig(&stem);
            let kubeconfig_done = !kubeconfig.exists()
                || read_kubeconfig(&kubeconfig)?
                    .client_certificate()
                    .is_none_or(|c| issued_by(&c, ca.cert_der()));
            if issued_by(&pem, ca.cert_der()) && kubeconfig_done {
                continue;
            }
            reissue_leaf(self.layout, &stem, &path, ca, None, now, &mut self.outcome)
                .map_err(|e| RotationError::unusable(&path, e))?;
        }
        Ok(())
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
