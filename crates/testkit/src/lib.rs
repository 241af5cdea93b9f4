//! What tests share, and only tests (every crate takes it as a dev-dependency): a clock that
//! moves only when told, randomness that returns chosen values, and a test CA that issues
//! node certificates for any validity.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kubeboot_api::{Clock, Random};
use kubeboot_pki::cert::subject;
use kubeboot_pki::{CertificateAuthority, KeyAlgorithm, LeafSpec, PrivateKey, Usage};

/// A clock that stands still until [`FakeClock::advance`] or [`FakeClock::set`]; clones
/// share the time.
#[derive(Clone, Debug)]
pub struct FakeClock(Arc<Mutex<SystemTime>>);

impl FakeClock {
    /// A clock showing `t`.
    pub fn at(t: SystemTime) -> Self {
        Self(Arc::new(Mutex::new(t)))
    }

    /// A clock showing 2024-05-02T10:00:00Z.
    pub fn new() -> Self {
        Self::at(UNIX_EPOCH + Duration::from_secs(1_714_644_000))
    }

    /// Moves the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) += d;
    }

    /// Sets the clock to `t`.
    pub fn set(&self, t: SystemTime) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = t;
    }
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Randomness that yields the given units (in `[0, 1)`) in turn, then repeats the last;
/// bytes are taken from the current unit.
#[derive(Clone, Debug)]
pub struct ChosenRandom(Arc<Mutex<VecDeque<f64>>>);

impl ChosenRandom {
    /// Yields `units` in order.
    pub fn new(units: &[f64]) -> Self {
        Self(Arc::new(Mutex::new(units.iter().copied().collect())))
    }

    fn take(&self) -> f64 {
        let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match q.len() {
            0 => 0.0,
            1 => q[0],
            _ => q.pop_front().unwrap_or_default(),
        }
    }
}

impl Random for ChosenRandom {
    fn fill(&self, buf: &mut [u8]) {
        let bits = (self.take().clamp(0.0, 1.0) * (1u64 << 53) as f64) as u64;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (bits << 11).to_le_bytes()[i % 8];
        }
    }

    fn unit(&self) -> f64 {
        self.take()
    }
}

/// A CA for tests (ECDSA P-256, `CN=kubernetes`, valid ten years from `now`).
pub fn test_ca(now: SystemTime) -> CertificateAuthority {
    CertificateAuthority::create(
        "kubernetes",
        KeyAlgorithm::EcdsaP256,
        now,
        Duration::from_secs(10 * 365 * 86_400),
        serial(1),
    )
    .expect("a test CA")
}

/// A node client certificate (`CN=system:node:<node>`, `O=system:nodes`) and its key, both
/// PEM, valid over `not_before..not_after`.
pub fn node_certificate(
    ca: &CertificateAuthority,
    node: &str,
    not_before: SystemTime,
    not_after: SystemTime,
) -> (String, String) {
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("a key");
    let spec = LeafSpec {
        subject: subject(&format!("system:node:{node}"), &["system:nodes".into()]),
        dns_names: vec![],
        ip_addresses: vec![],
        emails: vec![],
        uris: vec![],
        usages: vec![Usage::DigitalSignature, Usage::ClientAuth],
        not_before,
        not_after,
        serial: serial(2),
    };
    let cert = ca.issue_for_key(&spec, &key).expect("a node certificate");
    (cert.pem, key.to_pem())
}

/// A fixed serial number ending in `n`.
pub fn serial(n: u8) -> [u8; 16] {
    let mut s = [0u8; 16];
    s[0] = 0x40;
    s[15] = n;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_clock_moves_only_when_told_and_clones_share_it() {
        let c = FakeClock::new();
        let other = c.clone();
        let t = c.now();
        assert_eq!(c.now(), t);
        other.advance(Duration::from_secs(5));
        assert_eq!(c.now(), t + Duration::from_secs(5));
        c.set(UNIX_EPOCH);
        assert_eq!(other.now(), UNIX_EPOCH);
    }

    #[test]
    fn chosen_randomness_yields_its_units_then_repeats_the_last() {
        let r = ChosenRandom::new(&[0.25, 0.5]);
        assert_eq!(r.unit(), 0.25);
        assert_eq!(r.unit(), 0.5);
        assert_eq!(r.unit(), 0.5);
        assert_eq!(ChosenRandom::new(&[]).unit(), 0.0);
    }

    #[test]
    fn the_test_ca_issues_node_certificates_for_the_validity_asked() {
        let now = FakeClock::new().now();
        let ca = test_ca(now);
        let (cert, key) = node_certificate(&ca, "n1", now, now + Duration::from_secs(60));
        assert!(cert.contains("BEGIN CERTIFICATE") && key.contains("PRIVATE KEY"));
    }
}
