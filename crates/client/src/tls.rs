//! The client's TLS: which server certificates to trust and which client certificate to show.

use std::sync::{Arc, PoisonError, RwLock};

use rustls::client::ResolvesClientCert;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::ClientError;

/// Which server certificates the client accepts.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Certificates chaining to any CA in this bundle (DER), with host name verification.
    CaBundle(Vec<CertificateDer<'static>>),
    /// Any certificate at all. Only for the first, insecure fetch of token discovery, whose
    /// answer is then verified by its JWS signature and CA pin.
    InsecureSkipVerify,
}

impl Trust {
    /// The system's trust store (`$SSL_CERT_FILE`, else Debian's bundle), for fetching a
    /// discovery file over public HTTPS.
    pub fn system() -> Result<Self, ClientError> {
        let path = std::env::var_os("SSL_CERT_FILE")
            .unwrap_or_else(|| "/etc/ssl/certs/ca-certificates.crt".into());
        let pem = std::fs::read(&path).map_err(|e| {
            ClientError::Config(format!(
                "reading the system CA bundle {}: {e}",
                path.to_string_lossy()
            ))
        })?;
        Self::from_pem(&pem)
    }

    /// A CA bundle from PEM text.
    pub fn from_pem(pem: &[u8]) -> Result<Self, ClientError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| ClientError::Config(format!("the CA bundle is not PEM: {e}")))?;
        if certs.is_empty() {
            return Err(ClientError::Config(
                "the CA bundle holds no certificate".into(),
            ));
        }
        Ok(Trust::CaBundle(certs))
    }
}

/// The client certificate to present; replacing it affects new connections at once.
#[derive(Clone, Debug)]
pub struct CertSource {
    /// Guarded by the lock; replaced whole on rotation.
    current: Arc<RwLock<Option<Arc<CertifiedKey>>>>,
}

impl CertSource {
    /// A source holding a certificate chain and key (PEM).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, ClientError> {
        let s = Self::empty();
        s.set_pem(cert_pem, key_pem)?;
        Ok(s)
    }

    /// A source with no certificate yet (requests go out without one).
    pub fn empty() -> Self {
        Self {
            current: Arc::new(RwLock::new(None)),
        }
    }

    /// Replaces the certificate (PEM chain and key).
    pub fn set_pem(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), ClientError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| ClientError::Config(format!("the client certificate is not PEM: {e}")))?;
        if chain.is_empty() {
            return Err(ClientError::Config(
                "no client certificate in the PEM".into(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| ClientError::Config(format!("the client key is not PEM: {e}")))?;
        let signer = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| ClientError::Config(format!("the client key is unusable: {e}")))?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) =
            Some(Arc::new(CertifiedKey::new(chain, signer)));
        Ok(())
    }

    fn get(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ResolvesClientCert for CertSource {
    fn resolve(&self, _hints: &[&[u8]], _schemes: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.get()
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl rustls::server::ResolvesServerCert for CertSource {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.get()
    }
}

impl CertSource {
    /// A TLS server configuration presenting this source's certificate (for a node's
    /// serving endpoint); a rotated certificate is used by the next handshake.
    pub fn server_config(&self) -> Result<rustls::ServerConfig, ClientError> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self.clone()));
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }

    /// Whether a certificate is loaded.
    pub fn is_set(&self) -> bool {
        self.get().is_some()
    }
}

fn provider() -> Arc<CryptoProvider> {
    kubeboot_pki::tls::provider()
}

/// A rustls client configuration trusting `trust` and presenting `cert` (also used for
/// connections that are not to an API server, such as to etcd).
pub fn client_config(trust: &Trust, cert: Option<CertSource>) -> Result<ClientConfig, ClientError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Config(e.to_string()))?;
    let builder = match trust {
        Trust::CaBundle(cas) => {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca.clone())
                    .map_err(|e| ClientError::Config(format!("unusable CA certificate: {e}")))?;
            }
            builder.with_root_certificates(roots)
        }
        Trust::InsecureSkipVerify => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(danger::AcceptAnyServerCert { provider })),
    };
    Ok(match cert {
        Some(source) => builder.with_client_cert_resolver(Arc::new(source)),
        None => builder.with_no_client_auth(),
    })
}

mod danger {
    //! The verifier that trusts any server: used only by `Trust::InsecureSkipVerify`.

    use super::*;

    #[derive(Debug)]
    pub(super) struct AcceptAnyServerCert {
        pub(super) provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for AcceptAnyServerCert {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
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
}
