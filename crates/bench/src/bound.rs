//! The crypto bound of `bench join`: how many nodes per second this machine could admit if
//! the cryptography a join cannot do without were the only cost. Each operation is timed on
//! one core, in the same run as the join, and the bound spreads them over every core.
//!
//! One admission needs, whatever else it costs:
//! - the node's key pair and the CSR's self-signature;
//! - two verifications of that signature (API validation, and the signer before it certifies
//!   the key, as in Kubernetes);
//! - one issuance (the CA's signature);
//! - two TLS handshakes, both sides' crypto of each: one that authenticates the server
//!   (discovery and the TLS bootstrap) and one mutual (the node's first request with its
//!   certificate). They are timed whole, client and server in memory, with our TLS stack and
//!   certificates of the kinds in play (P-256 CA and serving key, the node's key type).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubeboot_api::{Clock, SystemClock};
use tokio::time::Instant;

use anyhow::{Context, Result, bail};
use kubeboot_pki::cert::{random_serial, subject};
use kubeboot_pki::csr::{CsrRequest, create_pem, parse_pem};
use kubeboot_pki::{CertificateAuthority, KeyAlgorithm, LeafSpec, PrivateKey, Usage};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection,
};

/// Single-core rates of the crypto one admission needs, and the bound they imply.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CryptoBound {
    /// Node key generations per second.
    pub keygen_per_second: f64,
    /// CSR signatures per second.
    pub csr_sign_per_second: f64,
    /// CSR parse-and-verify per second.
    pub csr_verify_per_second: f64,
    /// Certificate issuances (P-256 CA) per second.
    pub issue_per_second: f64,
    /// TLS handshakes authenticating the server, both sides, per second.
    pub tls_server_auth_per_second: f64,
    /// Mutually authenticated TLS handshakes (the node's certificate), both sides, per second.
    pub tls_mutual_per_second: f64,
    /// Cores.
    pub cores: usize,
    /// Admissions per second if this crypto were the only cost (see [`bound`]).
    pub nodes_per_second: f64,
}

/// The cost of one admission in each operation, per core.
#[derive(Clone, Copy, Debug)]
pub struct Rates {
    /// Key generations per second.
    pub keygen: f64,
    /// CSR signatures per second.
    pub sign: f64,
    /// CSR verifications per second.
    pub verify: f64,
    /// Issuances per second.
    pub issue: f64,
    /// Server-authenticated handshakes per second.
    pub tls_server_auth: f64,
    /// Mutual handshakes per second.
    pub tls_mutual: f64,
}

/// Admissions per second if crypto were the only cost: each admission needs one key, one
/// CSR signature, two CSR verifications, one issuance, one server-authenticated and one
/// mutual TLS handshake; `cores` cores run them in parallel. Rates are per core.
pub fn bound(cores: usize, r: Rates) -> f64 {
    let seconds_per_node = 1.0 / r.keygen
        + 1.0 / r.sign
        + 2.0 / r.verify
        + 1.0 / r.issue
        + 1.0 / r.tls_server_auth
        + 1.0 / r.tls_mutual;
    if seconds_per_node.is_finite() && seconds_per_node > 0.0 {
        cores as f64 / seconds_per_node
    } else {
        0.0
    }
}

/// Calls `f` for about 400 ms (at least 3 times) and returns calls per second.
fn per_second(mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let started = Instant::now();
    let mut n = 0u32;
    while started.elapsed() < Duration::from_millis(400) || n < 3 {
        f()?;
        n += 1;
    }
    Ok(f64::from(n) / started.elapsed().as_secs_f64())
}

/// Measures the crypto bound for nodes with `alg` keys (about 2.5 s).
pub fn crypto_bound(alg: KeyAlgorithm) -> Result<CryptoBound> {
    let req = CsrRequest {
        subject: subject("system:node:bench", &["system:nodes".into()]),
        ..Default::default()
    };
    let key = PrivateKey::generate(alg)?;
    let csr = create_pem(&key, &req)?;
    let parsed = parse_pem(csr.as_bytes())?;
    let now = SystemClock.now();
    let ca = CertificateAuthority::create(
        "bench",
        KeyAlgorithm::EcdsaP256,
        now,
        Duration::from_secs(3600),
        random_serial(),
    )?;
    let keygen = per_second(|| PrivateKey::generate(alg).map(|_| ()).map_err(Into::into))?;
    let sign = per_second(|| create_pem(&key, &req).map(|_| ()).map_err(Into::into))?;
    let verify = per_second(|| parse_pem(csr.as_bytes()).map(|_| ()).map_err(Into::into))?;
    let spec = leaf(parsed.subject.clone(), Usage::ClientAuth, now);
    let issue = per_second(|| {
        ca.issue_for_spki(&spec, &parsed.spki_der)
            .map(|_| ())
            .map_err(Into::into)
    })?;
    let serving = issued(&ca, KeyAlgorithm::EcdsaP256, Usage::ServerAuth, now)?;
    let node = issued(&ca, alg, Usage::ClientAuth, now)?;
    let server_auth = configs(&ca, &serving, None)?;
    let tls_server_auth = per_second(|| handshake(&server_auth))?;
    let mutual = configs(&ca, &serving, Some(&node))?;
    let tls_mutual = per_second(|| handshake(&mutual))?;
    let rates = Rates {
        keygen,
        sign,
        verify,
        issue,
        tls_server_auth,
        tls_mutual,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(CryptoBound {
        keygen_per_second: keygen,
        csr_sign_per_second: sign,
        csr_verify_per_second: verify,
        issue_per_second: issue,
        tls_server_auth_per_second: tls_server_auth,
        tls_mutual_per_second: tls_mutual,
        cores,
        nodes_per_second: bound(cores, rates),
    })
}

fn leaf(subject: Vec<(Vec<u64>, String)>, usage: Usage, now: SystemTime) -> LeafSpec {
    LeafSpec {
        subject,
        dns_names: vec![],
        ip_addresses: vec![std::net::Ipv4Addr::LOCALHOST.into()],
        emails: vec![],
        uris: vec![],
        usages: vec![Usage::DigitalSignature, usage],
        not_before: now,
        not_after: now + Duration::from_secs(600),
        serial: random_serial(),
    }
}

/// A certificate of `ca` for a new `alg` key: (certificate PEM, key PEM).
fn issued(
    ca: &CertificateAuthority,
    alg: KeyAlgorithm,
    usage: Usage,
    now: SystemTime,
) -> Result<(String, String)> {
    let key = PrivateKey::generate(alg)?;
    let cert = ca.issue_for_key(&leaf(subject("bench", &[]), usage, now), &key)?;
    Ok((cert.pem, key.to_pem()))
}

/// A client and a server configuration as kubeboot's: the client trusts `ca` and shows
/// `client` if given, and then the server requires a certificate of `ca`.
fn configs(
    ca: &CertificateAuthority,
    serving: &(String, String),
    client: Option<&(String, String)>,
) -> Result<(Arc<ClientConfig>, Arc<ServerConfig>)> {
    let provider = kubeboot_pki::tls::provider();
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes())?)?;
    let roots = Arc::new(roots);
    let chain = |pem: &str| -> Result<Vec<CertificateDer<'static>>> {
        Ok(CertificateDer::pem_slice_iter(pem.as_bytes()).collect::<Result<_, _>>()?)
    };
    let key = |pem: &str| -> Result<PrivateKeyDer<'static>> {
        Ok(PrivateKeyDer::from_pem_slice(pem.as_bytes())?)
    };
    let client_builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots.clone());
    let client_cfg = match client {
        Some((cert, k)) => client_builder.with_client_auth_cert(chain(cert)?, key(k)?)?,
        None => client_builder.with_no_client_auth(),
    };
    let server_builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let server_builder = match client {
        Some(_) => server_builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider).build()?,
        ),
        None => server_builder.with_no_client_auth(),
    };
    let mut server_cfg = server_builder.with_single_cert(chain(&serving.0)?, key(&serving.1)?)?;
    server_cfg.send_tls13_tickets = 0;
    Ok((Arc::new(client_cfg), Arc::new(server_cfg)))
}

/// One whole handshake between a client and a server in memory.
fn handshake((client, server): &(Arc<ClientConfig>, Arc<ServerConfig>)) -> Result<()> {
    let name = ServerName::try_from("127.0.0.1").context("server name")?;
    let mut c = Connection::Client(ClientConnection::new(client.clone(), name)?);
    let mut s = Connection::Server(ServerConnection::new(server.clone())?);
    let mut wire = Vec::new();
    for _ in 0..8 {
        if !c.is_handshaking() && !s.is_handshaking() {
            return Ok(());
        }
        flight(&mut c, &mut s, &mut wire)?;
        flight(&mut s, &mut c, &mut wire)?;
    }
    bail!("the in-memory TLS handshake did not complete")
}

/// Everything `from` has to send, received and processed by `to`.
fn flight(from: &mut Connection, to: &mut Connection, wire: &mut Vec<u8>) -> Result<()> {
    wire.clear();
    while from.wants_write() {
        from.write_tls(wire)?;
    }
    let mut rd = &wire[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd)?;
        to.process_new_packets()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_adds_the_costs_of_one_admission() {
        let ms = Rates {
            keygen: 1000.0,
            sign: 1000.0,
            verify: 1000.0,
            issue: 1000.0,
            tls_server_auth: 1000.0,
            tls_mutual: 1000.0,
        };
        // 1 + 1 + 2 x 1 + 1 + 1 + 1 = 7 ms per admission per core.
        assert!((bound(1, ms) - 1000.0 / 7.0).abs() < 1e-9);
        assert!((bound(2, ms) - 2000.0 / 7.0).abs() < 1e-9);
        let mixed = Rates {
            keygen: 500.0,      // 2 ms
            verify: 4000.0,     // 2 x 0.25 ms
            tls_mutual: 2000.0, // 0.5 ms
            ..ms                // sign, issue, server-auth handshake: 3 x 1 ms
        };
        assert!((bound(2, mixed) - 2.0 / 0.006).abs() < 1e-9);
        assert_eq!(
            bound(2, Rates { keygen: 0.0, ..ms }),
            0.0,
            "a zero rate gives no bound, not infinity"
        );
    }

    #[test]
    fn handshakes_complete_and_a_mutual_one_needs_the_client_certificate() {
        let now = SystemClock.now();
        let ca = CertificateAuthority::create(
            "t",
            KeyAlgorithm::EcdsaP256,
            now,
            Duration::from_secs(600),
            random_serial(),
        )
        .unwrap();
        let serving = issued(&ca, KeyAlgorithm::EcdsaP256, Usage::ServerAuth, now).unwrap();
        let node = issued(&ca, KeyAlgorithm::EcdsaP256, Usage::ClientAuth, now).unwrap();
        handshake(&configs(&ca, &serving, None).unwrap()).unwrap();
        let mutual = configs(&ca, &serving, Some(&node)).unwrap();
        handshake(&mutual).unwrap();
        // A server that requires a certificate refuses a client without one.
        let (anonymous, _) = configs(&ca, &serving, None).unwrap();
        assert!(handshake(&(anonymous, mutual.1.clone())).is_err());
        // A client that does not trust the server's CA refuses it.
        let other = CertificateAuthority::create(
            "other",
            KeyAlgorithm::EcdsaP256,
            now,
            Duration::from_secs(600),
            random_serial(),
        )
        .unwrap();
        let (untrusting, _) = configs(&other, &serving, None).unwrap();
        assert!(handshake(&(untrusting, mutual.1)).is_err());
    }
}
