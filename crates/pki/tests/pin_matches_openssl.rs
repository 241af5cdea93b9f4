//! Our CA pin equals `openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum`.

use std::process::Command;
use std::time::Duration;

use kubeboot_pki::cert::random_serial;
use kubeboot_pki::{CertificateAuthority, KeyAlgorithm};

#[test]
fn pins_match_openssl_for_every_key_type() {
    for alg in [
        KeyAlgorithm::EcdsaP256,
        KeyAlgorithm::EcdsaP384,
        KeyAlgorithm::Ed25519,
        KeyAlgorithm::Rsa(2048),
    ] {
        let ca = CertificateAuthority::create(
            "kubernetes",
            alg,
            kubeboot_api::Clock::now(&kubeboot_api::SystemClock),
            Duration::from_secs(3600),
            random_serial(),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.crt");
        std::fs::write(&path, ca.cert_pem()).unwrap();
        let script = format!(
            "openssl x509 -pubkey -noout -in {} | openssl pkey -pubin -outform der | sha256sum",
            path.display()
        );
        let out = Command::new("sh").args(["-c", &script]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hex = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(
            kubeboot_pki::pin::pem_cert_pin(ca.cert_pem().as_bytes()).unwrap(),
            format!("sha256:{hex}"),
            "{alg:?}"
        );
    }
}
