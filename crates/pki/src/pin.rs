//! The CA public-key pin kubeadm uses: `sha256:` + hex SHA-256 of the SubjectPublicKeyInfo.

use sha2::{Digest, Sha256};

/// The pin of a DER SubjectPublicKeyInfo.
pub fn spki_pin(spki_der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(spki_der)))
}

/// The pin of a DER certificate's public key, or `None` if it does not parse.
pub fn cert_pin(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    Some(spki_pin(cert.public_key().raw))
}

/// The pin of the first certificate of a PEM bundle.
pub fn pem_cert_pin(pem: &[u8]) -> Option<String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    cert_pin(&block.contents)
}
