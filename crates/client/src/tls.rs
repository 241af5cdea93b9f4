//! The client's TLS: which server certificates to trust and which client certificate to show.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

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
    /// Any certificate at all (a kubeconfig's `insecure-skip-tls-verify`).
    InsecureSkipVerify,
    /// Decided after the first handshakes: see [`DeferredTrust`].
    Deferred(DeferredTrust),
    /// A CA bundle that may be replaced while the client runs: see [`RotatingTrust`].
    Rotating(RotatingTrust),
}

/// A CA bundle replaced while connections are made, as a node adopts the bundle a CA
/// rotation publishes: each new connection is verified against the bundle of the moment
/// (host name included); connections already open carry on.
#[derive(Clone, Debug)]
pub struct RotatingTrust(Arc<RwLock<Arc<dyn ServerCertVerifier>>>);

impl RotatingTrust {
    /// Trusts the certificates of `ca_pem`.
    pub fn from_pem(ca_pem: &[u8]) -> Result<Self, ClientError> {
        Ok(Self(Arc::new(RwLock::new(bundle_verifier(ca_pem)?))))
    }

    /// Trusts the certificates of `ca_pem` from the next connection on.
    pub fn set_pem(&self, ca_pem: &[u8]) -> Result<(), ClientError> {
        let verifier = bundle_verifier(ca_pem)?;
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = verifier;
        Ok(())
    }

    fn current(&self) -> Arc<dyn ServerCertVerifier> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A verifier of chains to the CAs of `ca_pem`, with host name verification.
fn bundle_verifier(ca_pem: &[u8]) -> Result<Arc<dyn ServerCertVerifier>, ClientError> {
    let cas = pem_certs(ca_pem, "the CA bundle")?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(root_store(&cas)?),
        provider(),
    )
    .build()
    .map_err(|e| ClientError::Config(format!("unusable CA bundle: {e}")))?;
    Ok(verifier)
}

impl ServerCertVerifier for RotatingTrust {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.current()
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

/// Trust in a server decided after connecting, for token discovery: the first fetch of
/// `cluster-info` cannot know the CA yet, so the certificate chains of the connections made
/// before [`DeferredTrust::pin`] are recorded (their handshake signatures are checked as
/// always), and `pin` then verifies every one of them, host name included, against the CA
/// that discovery established — exactly what a new client trusting that CA would check.
/// From then on new connections are verified against the CA as they are made, so the
/// connections already open can carry on: the TLS bootstrap needs no new handshake. If any
/// recorded chain fails, every later connection is refused.
#[derive(Clone, Debug, Default)]
pub struct DeferredTrust(Arc<Mutex<Deferred>>);

#[derive(Debug)]
enum Deferred {
    /// Chains seen, not yet verified.
    Unpinned(Vec<SeenChain>),
    /// Verifying against the pinned CA.
    Pinned(Arc<dyn ServerCertVerifier>),
    /// A recorded chain did not verify: nothing from this client is trusted.
    Refused,
}

impl Default for Deferred {
    fn default() -> Self {
        Deferred::Unpinned(Vec::new())
    }
}

#[derive(Debug)]
struct SeenChain {
    end_entity: CertificateDer<'static>,
    intermediates: Vec<CertificateDer<'static>>,
    server_name: ServerName<'static>,
    at: UnixTime,
}

impl DeferredTrust {
    /// At most this many connections are made before the trust is pinned (discovery's
    /// retries make one each); more is refused rather than remembered without bound.
    const MAX_UNPINNED: usize = 64;

    /// Verifies every connection made so far against `ca_pem` and verifies new ones against
    /// it from now on. On failure nothing made through this trust is usable again.
    pub fn pin(&self, ca_pem: &[u8]) -> Result<(), ClientError> {
        let verifier = bundle_verifier(ca_pem)?;
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Deferred::Unpinned(seen) = &*state else {
            return Err(ClientError::Config(
                "the server's certificate was already pinned or refused".into(),
            ));
        };
        let failure = seen.iter().find_map(|chain| {
            verifier
                .verify_server_cert(
                    &chain.end_entity,
                    &chain.intermediates,
                    &chain.server_name,
                    &[],
                    chain.at,
                )
                .err()
                .map(|e| (chain.server_name.to_str().into_owned(), e))
        });
        if let Some((server, e)) = failure {
            *state = Deferred::Refused;
            return Err(ClientError::Transport {
                server,
                message: format!(
                    "the server's certificate does not verify against the cluster CA: {e}"
                ),
            });
        }
        *state = Deferred::Pinned(verifier);
        Ok(())
    }
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
        pem_certs(pem, "the CA bundle").map(Trust::CaBundle)
    }
}

/// The client certificate to present; replacing it affects new connections at once, and a
/// [`crate::Client`] presenting it closes its kept-alive connections (as the kubelet does on
/// a rotation), so no request goes on under a certificate that was replaced.
#[derive(Clone, Debug)]
pub struct CertSource {
    /// Guarded by the lock; replaced whole on rotation.
    current: Arc<RwLock<Option<Arc<CertifiedKey>>>>,
    /// How many times the certificate was set.
    generation: Arc<AtomicU64>,
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
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Replaces the certificate (PEM chain and key).
    pub fn set_pem(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<(), ClientError> {
        let chain = pem_certs(cert_pem, "the client certificate chain")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| ClientError::Config(format!("the client key is not PEM: {e}")))?;
        let signer = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|e| ClientError::Config(format!("the client key is unusable: {e}")))?;
        let certified = CertifiedKey::new(chain, signer);
        if let Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) =
            certified.keys_match()
        {
            return Err(ClientError::Config(
                "the client key does not belong to the client certificate".into(),
            ));
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(certified));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Which certificate it holds: a number that changes each time one is set.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
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
        Trust::CaBundle(cas) => builder.with_root_certificates(root_store(cas)?),
        Trust::InsecureSkipVerify => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(danger::UnverifiedChain {
                    provider,
                    deferred: None,
                }))
        }
        Trust::Rotating(rotating) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(rotating.clone())),
        Trust::Deferred(deferred) => {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(danger::UnverifiedChain {
                    provider,
                    deferred: Some(deferred.clone()),
                }))
        }
    };
    Ok(match cert {
        Some(source) => builder.with_client_cert_resolver(Arc::new(source)),
        None => builder.with_no_client_auth(),
    })
}

/// The certificates in PEM text (`what` names it in errors), at least one.
fn pem_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| ClientError::Config(format!("{what} is not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(ClientError::Config(format!("{what} holds no certificate")));
    }
    Ok(certs)
}

fn root_store(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, ClientError> {
    let mut roots = RootCertStore::empty();
    for ca in cas {
        roots
            .add(ca.clone())
            .map_err(|e| ClientError::Config(format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

mod danger {
    //! The verifier that does not verify the chain when connecting: it accepts any chain
    //! (`Trust::InsecureSkipVerify`) or records it for [`DeferredTrust::pin`]. Handshake
    //! signatures are always checked, so the server proves it holds the key of the
    //! certificate it shows.

    use super::*;

    #[derive(Debug)]
    pub(super) struct UnverifiedChain {
        pub(super) provider: Arc<CryptoProvider>,
        /// `None`: accept any chain.
        pub(super) deferred: Option<DeferredTrust>,
    }

    impl ServerCertVerifier for UnverifiedChain {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            let Some(deferred) = &self.deferred else {
                return Ok(ServerCertVerified::assertion());
            };
            let mut state = deferred.0.lock().unwrap_or_else(PoisonError::into_inner);
            match &mut *state {
                Deferred::Pinned(v) => {
                    v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                }
                Deferred::Unpinned(seen) if seen.len() < DeferredTrust::MAX_UNPINNED => {
                    seen.push(SeenChain {
                        end_entity: end_entity.clone().into_owned(),
                        intermediates: intermediates
                            .iter()
                            .map(|c| c.clone().into_owned())
                            .collect(),
                        server_name: server_name.to_owned(),
                        at: now,
                    });
                    Ok(ServerCertVerified::assertion())
                }
                _ => Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                )),
            }
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

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use kubeboot_pki::cert::{random_serial, subject};
    use kubeboot_pki::{CertificateAuthority, KeyAlgorithm, LeafSpec, PrivateKey, Usage};

    use super::*;

    /// A CA, and a serving certificate it issued for 127.0.0.1.
    fn ca_and_serving() -> (CertificateAuthority, CertificateDer<'static>) {
        let (ca, leaf, _) = ca_and_serving_with_key();
        (ca, leaf)
    }

    /// The same, with the certificate's key.
    fn ca_and_serving_with_key() -> (CertificateAuthority, CertificateDer<'static>, PrivateKey) {
        let now = kubeboot_api::Clock::now(&kubeboot_api::SystemClock);
        let ca = CertificateAuthority::create(
            "ca",
            KeyAlgorithm::EcdsaP256,
            now,
            Duration::from_secs(3600),
            random_serial(),
        )
        .unwrap();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let spec = LeafSpec {
            subject: subject("kube-apiserver", &[]),
            dns_names: vec![],
            ip_addresses: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            emails: vec![],
            uris: vec![],
            usages: vec![Usage::DigitalSignature, Usage::ServerAuth],
            not_before: now,
            not_after: now + Duration::from_secs(600),
            serial: random_serial(),
        };
        let leaf = ca.issue_for_key(&spec, &key).unwrap();
        (ca, CertificateDer::from(leaf.der), key)
    }

    #[test]
    fn a_client_key_that_is_not_the_certificates_is_refused() {
        let (_, leaf, key) = ca_and_serving_with_key();
        let cert_pem = kubeboot_pki::cert::pem_encode("CERTIFICATE", &leaf);
        let other = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let Err(err) = CertSource::from_pem(cert_pem.as_bytes(), other.to_pem().as_bytes()) else {
            panic!("a foreign key is refused");
        };
        assert!(err.to_string().contains("does not belong"), "{err}");
        let source = CertSource::empty();
        source
            .set_pem(cert_pem.as_bytes(), key.to_pem().as_bytes())
            .expect("its own key");
        assert!(
            source
                .set_pem(cert_pem.as_bytes(), other.to_pem().as_bytes())
                .is_err()
        );
        assert!(
            source.is_set(),
            "a refused rotation keeps the certificate in use"
        );
    }

    fn connect(v: &danger::UnverifiedChain, leaf: &CertificateDer<'_>, host: &str) -> bool {
        let name = ServerName::try_from(host.to_owned()).unwrap();
        v.verify_server_cert(leaf, &[], &name, &[], UnixTime::now())
            .is_ok()
    }

    #[test]
    fn deferred_trust_verifies_what_was_seen_then_verifies_as_it_connects() {
        let (ca, leaf) = ca_and_serving();
        let (other_ca, other_leaf) = ca_and_serving();
        let trust = DeferredTrust::default();
        let v = danger::UnverifiedChain {
            provider: provider(),
            deferred: Some(trust.clone()),
        };
        assert!(connect(&v, &leaf, "127.0.0.1"), "before the pin: recorded");
        trust.pin(ca.cert_pem().as_bytes()).unwrap();
        assert!(connect(&v, &leaf, "127.0.0.1"), "after: verified, and good");
        assert!(
            !connect(&v, &other_leaf, "127.0.0.1"),
            "after: a certificate of another CA is refused"
        );
        assert!(
            !connect(&v, &leaf, "10.0.0.1"),
            "after: the host name is checked"
        );
        assert!(
            trust.pin(other_ca.cert_pem().as_bytes()).is_err(),
            "pinned once"
        );
    }

    #[test]
    fn a_seen_chain_that_does_not_verify_refuses_the_pin_and_every_later_connection() {
        let (ca, leaf) = ca_and_serving();
        let (_, other_leaf) = ca_and_serving();
        for (seen, host) in [(&other_leaf, "127.0.0.1"), (&leaf, "10.0.0.1")] {
            let trust = DeferredTrust::default();
            let v = danger::UnverifiedChain {
                provider: provider(),
                deferred: Some(trust.clone()),
            };
            assert!(connect(&v, &leaf, "127.0.0.1"));
            assert!(connect(&v, seen, host));
            let err = trust.pin(ca.cert_pem().as_bytes()).unwrap_err();
            assert!(
                err.to_string()
                    .contains("does not verify against the cluster CA"),
                "{err}"
            );
            assert!(
                !connect(&v, &leaf, "127.0.0.1"),
                "nothing is trusted after a refused pin"
            );
        }
    }

    #[test]
    fn unpinned_connections_are_bounded() {
        let (_, leaf) = ca_and_serving();
        let trust = DeferredTrust::default();
        let v = danger::UnverifiedChain {
            provider: provider(),
            deferred: Some(trust),
        };
        for _ in 0..DeferredTrust::MAX_UNPINNED {
            assert!(connect(&v, &leaf, "127.0.0.1"));
        }
        assert!(!connect(&v, &leaf, "127.0.0.1"));
    }
}
