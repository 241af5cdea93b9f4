//! The kubelet's certificate store: `<prefix>-<timestamp>.pem` holding the certificate chain
//! and its key (0600), and `<prefix>-current.pem`, a symlink swapped atomically through
//! `<prefix>-updated.pem`. A crash leaves the old pair current, never half of a new one.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kubeboot_pki::files::{Mode, write_atomic};

/// A certificate and key from the store.
#[derive(Clone, Debug)]
pub struct StoredPair {
    /// The PEM file (chain then key).
    pub pem: Vec<u8>,
    /// Start of validity of the leaf.
    pub not_before: SystemTime,
    /// End of validity of the leaf.
    pub not_after: SystemTime,
    /// Serial of the leaf, hex.
    pub serial: String,
    /// The leaf's subject common name, read as Go reads it (`CN=system:node:<name>`).
    pub common_name: String,
}

/// A store in a directory with a prefix (`kubelet-client`, `kubelet-server`).
#[derive(Clone, Debug)]
pub struct CertStore {
    dir: PathBuf,
    prefix: &'static str,
}

impl CertStore {
    /// The store `dir/<prefix>-*.pem`.
    pub fn new(dir: &Path, prefix: &'static str) -> Self {
        Self {
            dir: dir.to_owned(),
            prefix,
        }
    }

    /// `<prefix>-current.pem`.
    pub fn current_path(&self) -> PathBuf {
        self.dir.join(format!("{}-current.pem", self.prefix))
    }

    fn updated_path(&self) -> PathBuf {
        self.dir.join(format!("{}-updated.pem", self.prefix))
    }

    /// The current pair, if any (recovering an interrupted swap first).
    pub fn load(&self) -> std::io::Result<Option<StoredPair>> {
        let current = self.current_path();
        let updated = self.updated_path();
        if std::fs::symlink_metadata(&current).is_err()
            && std::fs::symlink_metadata(&updated).is_ok()
        {
            std::fs::rename(&updated, &current)?;
        }
        match std::fs::read(&current) {
            Ok(pem) => Ok(parse_pair(pem)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores a new pair and makes it current.
    pub fn store(
        &self,
        cert_pem: &[u8],
        key_pem: &[u8],
        now: SystemTime,
    ) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(&self.dir)?;
        let file = self
            .dir
            .join(format!("{}-{}.pem", self.prefix, timestamp(now)));
        let mut pem = cert_pem.to_vec();
        if !pem.ends_with(b"\n") {
            pem.push(b'\n');
        }
        pem.extend_from_slice(key_pem);
        write_atomic(&file, &pem, Mode::Private)?;
        // An absolute target, as the kubelet writes it: a relative --dir must not make the
        // link point relative to the wrong directory.
        let file = std::fs::canonicalize(&file)?;
        let updated = self.updated_path();
        let _ = std::fs::remove_file(&updated);
        std::os::unix::fs::symlink(&file, &updated)?;
        // rename(2) replaces the old symlink atomically.
        std::fs::rename(&updated, self.current_path())?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(file)
    }
}

impl CertStore {
    /// Stores a new pair, makes it current, and reads it back as the node will use it.
    pub fn store_current(
        &self,
        cert_pem: &[u8],
        key_pem: &[u8],
        now: SystemTime,
    ) -> std::io::Result<StoredPair> {
        self.store(cert_pem, key_pem, now)?;
        self.load()?.ok_or_else(|| {
            std::io::Error::other(format!(
                "{}: the stored certificate cannot be read back",
                self.current_path().display()
            ))
        })
    }
}

fn parse_pair(pem: Vec<u8>) -> Option<StoredPair> {
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&block.contents).ok()?;
    let t = |ts: i64| UNIX_EPOCH + Duration::from_secs(u64::try_from(ts).unwrap_or(0));
    let (not_before, not_after) = (
        t(cert.validity().not_before.timestamp()),
        t(cert.validity().not_after.timestamp()),
    );
    let serial = cert
        .raw_serial()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let common_name = kubeboot_pki::name::Name::parse(cert.subject())
        .map(|n| n.common_name)
        .unwrap_or_default();
    Some(StoredPair {
        pem,
        not_before,
        not_after,
        serial,
        common_name,
    })
}

/// `2006-01-02-15-04-05` (UTC).
fn timestamp(now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}-{:02}-{:02}-{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeboot_pki::cert::{random_serial, subject};
    use kubeboot_pki::{CertificateAuthority, KeyAlgorithm, LeafSpec, PrivateKey, Usage};
    use std::os::unix::fs::PermissionsExt;

    fn pair(ca: &CertificateAuthority, now: SystemTime) -> (String, String) {
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let spec = LeafSpec {
            subject: subject("system:node:n1", &["system:nodes".into()]),
            dns_names: vec![],
            ip_addresses: vec![],
            emails: vec![],
            uris: vec![],
            usages: vec![Usage::DigitalSignature, Usage::ClientAuth],
            not_before: now,
            not_after: now + Duration::from_secs(3600),
            serial: random_serial(),
        };
        (ca.issue_for_key(&spec, &key).unwrap().pem, key.to_pem())
    }

    #[test]
    fn stores_like_the_kubelet_and_recovers_an_interrupted_swap() {
        let dir = tempfile::tempdir().unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_714_644_000);
        let ca = CertificateAuthority::create(
            "ca",
            KeyAlgorithm::EcdsaP256,
            now,
            Duration::from_secs(86400),
            random_serial(),
        )
        .unwrap();
        let store = CertStore::new(dir.path(), "kubelet-client");
        assert!(store.load().unwrap().is_none());
        let (c1, k1) = pair(&ca, now);
        let f1 = store.store(c1.as_bytes(), k1.as_bytes(), now).unwrap();
        assert_eq!(
            f1.file_name().unwrap(),
            "kubelet-client-2024-05-02-10-00-00.pem"
        );
        assert_eq!(
            std::fs::metadata(&f1).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read_link(store.current_path()).unwrap(), f1);
        let first = store.load().unwrap().unwrap();
        let (c2, k2) = pair(&ca, now);
        let later = now + Duration::from_secs(60);
        let f2 = store.store(c2.as_bytes(), k2.as_bytes(), later).unwrap();
        assert_eq!(
            std::fs::read_link(store.current_path()).unwrap(),
            f2,
            "the symlink moved"
        );
        assert_ne!(store.load().unwrap().unwrap().serial, first.serial);
        // A crash between removing current and renaming updated.
        std::fs::remove_file(store.current_path()).unwrap();
        std::os::unix::fs::symlink(&f1, dir.path().join("kubelet-client-updated.pem")).unwrap();
        assert_eq!(store.load().unwrap().unwrap().serial, first.serial);
        assert!(
            std::fs::symlink_metadata(store.current_path())
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
