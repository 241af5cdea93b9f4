//! The TLS side of the server: rustls (TLS 1.2+) with the aws-lc-rs provider passed
//! explicitly, and client certificates requested but verified after the handshake, so a
//! bad certificate gets an HTTP `401` (as kube-apiserver answers) rather than a TLS alert.

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};

/// The one crypto provider of the whole build.
pub fn provider() -> Arc<CryptoProvider> {
    kubeboot_pki::tls::provider()
}

/// Builds the server's TLS configuration.
pub fn server_config(
    cert_pem: &str,
    key_pem: &str,
    client_ca_subjects: Vec<Vec<u8>>,
) -> Result<ServerConfig, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("serving certificate is not PEM: {e}"))?;
    if chain.is_empty() {
        return Err("the serving certificate file holds no certificate".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("serving key is not a PEM private key: {e}"))?;
    let provider = provider();
    let verifier = Arc::new(DeferredClientCertVerifier {
        subjects: client_ca_subjects
            .into_iter()
            .map(DistinguishedName::from)
            .collect(),
        provider: provider.clone(),
    });
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("serving certificate and key do not match or are unusable: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Our order (AES-128-GCM/SHA-256 first), not the client's: OpenSSL's clients (curl,
    // Python) list AES-256-GCM/SHA-384 first, whose key schedule costs the server more.
    cfg.ignore_client_order = true;
    cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
    // Kubernetes' clients (client-go, kubectl, kubelets) keep their connections rather than
    // resume sessions, and each joining node is a new client: tickets would be minted on every
    // handshake and never used.
    cfg.send_tls13_tickets = 0;
    Ok(cfg)
}

/// Requests a client certificate and checks that the client holds its key; whether the
/// certificate chains to the client CA is decided per connection by
/// `authn::ClientCa::authenticate`, which turns a bad certificate into `401`.
#[derive(Debug)]
struct DeferredClientCertVerifier {
    subjects: Vec<DistinguishedName>,
    provider: Arc<CryptoProvider>,
}

impl ClientCertVerifier for DeferredClientCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.subjects
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
