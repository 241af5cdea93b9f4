//! The TLS crypto every kubeboot client and server uses.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;

/// aws-lc-rs with TLS 1.3's AES-128-GCM/SHA-256 preferred, as Go's crypto/tls prefers it on
/// hardware with AES instructions: a handshake's key schedule in SHA-256 costs less than in
/// SHA-384, and every node does several handshakes while it joins.
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::aws_lc_rs::default_provider();
    p.cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(p)
}

#[cfg(test)]
mod tests {
    #[test]
    fn aes_128_gcm_is_preferred() {
        let p = super::provider();
        assert_eq!(
            p.cipher_suites[0].suite(),
            rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
        );
        assert!(p.cipher_suites.len() > 1, "the others stay available");
    }
}
