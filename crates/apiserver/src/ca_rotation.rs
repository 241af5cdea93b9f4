//! The cluster CA's rotation in a control plane's data dir: the phases of
//! `kubeboot_pki::ca_rotation` over `pki/ca.crt` (the trusted bundle, signing CA first),
//! `pki/ca.key` and `pki/ca-next.*`, with the data dir's serving certificate and
//! kubeconfigs as what holds certificates of the CA.
//!
//! Every file is replaced atomically, and the running server reads each again when it
//! changes (`serving`, `kubeboot_pki::reload`): the client CA bundle, the serving
//! certificate and the signing CA follow the files, and so do the ClusterTrustBundles.
//! What lives in the API (cluster-info) is the caller's to update with
//! [`Rotation::bundle`].

use std::path::PathBuf;
use std::time::SystemTime;

use kubeboot_pki::ca_rotation::{
    CaFiles, CaRotation, Holders, read_kubeconfig, trust_kubeconfig, write_kubeconfig_if_changed,
};
use kubeboot_pki::chain::YEAR;
use kubeboot_pki::chain::{issued_by, sans};
use kubeboot_pki::files::read_text;
use kubeboot_pki::{CertificateAuthority, KeyAlgorithm, Kubeconfig};

use crate::datadir::DataDir;

pub use kubeboot_pki::ca_rotation::{Phase, RotationError};

/// The CA files of a data dir as they are now.
pub struct Rotation {
    dir: DataDir,
    ca: CaRotation,
}

impl Rotation {
    /// Reads the CA files of `dir` (see [`CaRotation::read`]).
    pub fn read(dir: &DataDir) -> Result<Self, RotationError> {
        if !dir.pki("ca.crt").exists() && !dir.pki("ca.key").exists() {
            return Err(RotationError::Refused(format!(
                "{} holds no cluster CA: start the server on it first",
                dir.root.display()
            )));
        }
        let ca = CaRotation::read(CaFiles {
            crt: dir.pki("ca.crt"),
            key: dir.pki("ca.key"),
            next_crt: dir.pki("ca-next.crt"),
            next_key: dir.pki("ca-next.key"),
        })?;
        Ok(Self {
            dir: dir.clone(),
            ca,
        })
    }

    /// Where the rotation stands.
    pub fn phase(&self) -> Phase {
        self.ca.phase()
    }

    /// The trusted CA bundle, as `pki/ca.crt` holds it (cluster-info's CA data).
    pub fn bundle(&self) -> String {
        self.ca.bundle()
    }

    /// The signing CA.
    pub fn signing(&self) -> &CertificateAuthority {
        self.ca.signing()
    }

    /// The prepared CA, during prepare.
    pub fn prepared(&self) -> Option<&CertificateAuthority> {
        self.ca.prepared()
    }

    /// Whether a switch stopped half-way (the prepared CA signs already).
    pub fn switch_under_way(&self) -> bool {
        self.ca.switch_under_way()
    }

    /// The CA the rotation under way moves to: the prepared one, or, once switched, the
    /// signing one; none when no rotation is under way.
    pub fn target(&self) -> Option<&CertificateAuthority> {
        match self.phase() {
            Phase::Idle => None,
            Phase::Prepared => self.prepared(),
            Phase::Switched => Some(self.signing()),
        }
    }

    /// The CAs trusted beside the signing one.
    pub fn others(&self) -> &[String] {
        self.ca.others()
    }

    /// prepare: `new` (or a new ECDSA P-256 CA, valid as long as the signing one was made
    /// for) becomes trusted beside the signing CA, which keeps signing.
    pub fn prepare(
        &mut self,
        new: Option<CertificateAuthority>,
        now: SystemTime,
    ) -> Result<(), RotationError> {
        let mut holders = DataDirHolders(&self.dir);
        self.ca
            .prepare(new, KeyAlgorithm::EcdsaP256, &mut holders, now)
    }

    /// switch: the prepared CA signs the serving certificate, the kubeconfigs' client
    /// certificates and, from now on, every CSR; the old CA stays trusted.
    pub fn switch(&mut self, now: SystemTime) -> Result<(), RotationError> {
        self.ca.switch(&mut DataDirHolders(&self.dir), now)
    }

    /// finish: only the signing CA stays trusted (see [`CaRotation::finish`]).
    pub fn finish(&mut self, still_on_old: &[String], force: bool) -> Result<(), RotationError> {
        self.ca
            .finish(still_on_old, force, &mut DataDirHolders(&self.dir))
    }

    /// Whether `cert_pem` was issued by a CA trusted only until the rotation finishes.
    pub fn on_old_ca(&self, cert_pem: &str) -> bool {
        self.ca.on_old_ca(cert_pem)
    }

    /// The kubeconfigs of the data dir whose client certificate is of an old CA.
    pub fn kubeconfigs_on_old_ca(&self) -> Result<Vec<String>, RotationError> {
        self.ca.kubeconfigs_on_old_ca(&kubeconfigs(&self.dir))
    }
}

fn kubeconfigs(dir: &DataDir) -> [PathBuf; 2] {
    [dir.admin_conf(), dir.controller_manager_conf()]
}

/// A data dir's holders: the admin and controller-manager kubeconfigs, and the serving
/// certificate.
struct DataDirHolders<'a>(&'a DataDir);

impl Holders for DataDirHolders<'_> {
    fn trust(&mut self, bundle: &str) -> Result<(), RotationError> {
        for path in kubeconfigs(self.0) {
            trust_kubeconfig(&path, bundle)?;
        }
        Ok(())
    }

    fn reissue(&mut self, ca: &CertificateAuthority, now: SystemTime) -> Result<(), RotationError> {
        reissue_serving_cert(self.0, ca, now)?;
        for path in kubeconfigs(self.0) {
            let mut kc = read_kubeconfig(&path)?;
            let before = kc.to_yaml();
            if let Some(cert) = kc.client_certificate()
                && !issued_by(&cert, ca.cert_der())
            {
                reissue_client_cert(&mut kc, &cert, ca, now)
                    .map_err(|e| RotationError::unusable(&path, e))?;
            }
            write_kubeconfig_if_changed(&path, &before, &kc)?;
        }
        Ok(())
    }
}

/// A serving certificate from `ca` for the names and addresses of the current one.
fn reissue_serving_cert(
    dir: &DataDir,
    ca: &CertificateAuthority,
    now: SystemTime,
) -> Result<(), RotationError> {
    let path = dir.pki("apiserver.crt");
    let current = read_text(&path).map_err(|e| RotationError::unusable(&path, e))?;
    if issued_by(&current, ca.cert_der()) {
        return Ok(());
    }
    let (dns, ips) = sans(&current).map_err(|e| RotationError::unusable(&path, e))?;
    let (key, cert) = crate::datadir::serving_pair(ca, dns, ips, now, YEAR)
        .map_err(|e| RotationError::unusable(&path, e))?;
    dir.write_serving_pair(&key, &cert.pem)
        .map_err(|e| RotationError::unusable(&path, e))
}

/// Gives the kubeconfig's user a new key and a certificate of `ca` for the subject of
/// `cert_pem`, with the same usages and a year's validity.
fn reissue_client_cert(
    kc: &mut Kubeconfig,
    cert_pem: &str,
    ca: &CertificateAuthority,
    now: SystemTime,
) -> Result<(), String> {
    let der = kubeboot_pki::chain::first_der(cert_pem).ok_or("holds no certificate")?;
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
    let (Some(cert_pem), Some(key_pem)) = (fresh.client_certificate(), fresh.client_key()) else {
        return Err("no client certificate was made".into());
    };
    kc.set_client_certificate(&cert_pem, Some(&key_pem));
    Ok(())
}

#[cfg(test)]
mod tests;
