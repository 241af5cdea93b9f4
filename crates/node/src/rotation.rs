//! The kubelet's certificate manager as a state machine with no clock and no randomness of
//! its own: when to renew (a random point in 70–90 % of the certificate's life), how to
//! back off after a failure (2 s doubling, jittered, for five tries, then every 32 s), with
//! which credential (the certificate itself; after it expired, the bootstrap kubeconfig),
//! what to say when nothing is left to renew with (kubernetes/kubernetes#65991, #78758),
//! when a CA bundle seen in cluster-info replaces the one held, and when a CA rotation
//! calls for a renewal before the deadline (the signer's trust bundle no longer holds the
//! certificate's issuer).

use std::path::Path;
use std::time::{Duration, SystemTime};

use kubeboot_api::clock::format_rfc3339;

/// A certificate's validity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    /// Start.
    pub not_before: SystemTime,
    /// End.
    pub not_after: SystemTime,
}

/// What a renewal authenticates with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// The node's current client certificate.
    Current,
    /// The bootstrap kubeconfig (the client certificate has expired or is missing).
    Bootstrap,
}

/// Which certificate is managed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The client certificate: renewed as itself, or with the bootstrap kubeconfig.
    Client,
    /// The serving certificate: always requested as the node (its client certificate).
    Serving,
}

/// What to do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Nothing until then.
    WaitUntil(SystemTime),
    /// Ask for a new certificate now, authenticating with this.
    Renew(Credential),
    /// Nothing can renew the client certificate: say so, and look again after a pause.
    Stuck(Stuck),
}

/// Why the client certificate cannot be renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stuck {
    /// It expired at this time, and there is no bootstrap kubeconfig.
    Expired(SystemTime),
    /// There is none, and no bootstrap kubeconfig.
    Missing,
}

impl Stuck {
    /// The operator's one line: what happened, and the command that fixes it.
    pub fn explain(&self, cert: &Path, bootstrap_kubeconfig: &Path) -> String {
        let what = match self {
            Stuck::Expired(at) => format!(
                "the client certificate {} expired at {}",
                cert.display(),
                format_rfc3339(*at)
            ),
            Stuck::Missing => format!("there is no client certificate {}", cert.display()),
        };
        format!(
            "{what} and there is no bootstrap kubeconfig {} to request a new one, so this node cannot reach the API server: on the control plane run `kubeboot token create --print-join-command` and run the join command it prints on this node",
            bootstrap_kubeconfig.display()
        )
    }
}

/// One managed certificate's state.
#[derive(Clone, Debug, PartialEq)]
pub struct Rotation {
    kind: Kind,
    held: Option<Validity>,
    renew_at: SystemTime,
    failures: u32,
    retry_at: Option<SystemTime>,
}

impl Rotation {
    /// A manager of `kind` holding `held` (none: request one at once); `jitter` uniform in
    /// `[0, 1)` places the renewal.
    pub fn new(kind: Kind, held: Option<Validity>, jitter: f64) -> Self {
        Self {
            kind,
            held,
            renew_at: held.map_or(SystemTime::UNIX_EPOCH, |v| deadline(v, jitter)),
            failures: 0,
            retry_at: None,
        }
    }

    /// The next step at `now`; `bootstrap` says whether a bootstrap kubeconfig exists.
    pub fn next(&self, now: SystemTime, bootstrap: bool) -> Step {
        let due = self.retry_at.unwrap_or(self.renew_at);
        if now < due {
            return Step::WaitUntil(due);
        }
        if self.kind == Kind::Serving {
            return Step::Renew(Credential::Current);
        }
        match self.held {
            Some(v) if now < v.not_after => Step::Renew(Credential::Current),
            _ if bootstrap => Step::Renew(Credential::Bootstrap),
            Some(v) => Step::Stuck(Stuck::Expired(v.not_after)),
            None => Step::Stuck(Stuck::Missing),
        }
    }

    /// A new certificate is held: the next renewal falls in 70–90 % of its life.
    pub fn renewed(&mut self, v: Validity, jitter: f64) {
        self.held = Some(v);
        self.renew_at = deadline(v, jitter);
        self.failures = 0;
        self.retry_at = None;
    }

    /// A renewal failed (or was impossible) at `now`: try again after the backoff.
    pub fn failed(&mut self, now: SystemTime, jitter: f64) {
        self.failures += 1;
        self.retry_at = Some(now + backoff(self.failures, jitter));
    }

    /// Renew at once (the signer moved to another CA: a CA rotation's switch), keeping
    /// the backoff of a renewal that is failing.
    pub fn renew_now(&mut self, now: SystemTime) {
        self.renew_at = self.renew_at.min(now);
    }

    /// The certificate held.
    pub fn held(&self) -> Option<Validity> {
        self.held
    }
}

/// The renewal deadline (`nextRotationDeadline`): `not_before` plus 70 % of the lifetime
/// and `jitter` (in `[0, 1)`) times 20 % more.
pub fn deadline(v: Validity, jitter: f64) -> SystemTime {
    let lifetime = v
        .not_after
        .duration_since(v.not_before)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    // In millionths of the lifetime, in integers: a year's certificate lands on its second.
    let share = 700_000 + (200_000.0 * jitter.clamp(0.0, 1.0)) as u128;
    let nanos = lifetime * share / 1_000_000;
    v.not_before
        + Duration::new(
            (nanos / 1_000_000_000) as u64,
            (nanos % 1_000_000_000) as u32,
        )
}

/// The pause after the `failures`-th failure in a row: the kubelet's `wait.Backoff{2s,
/// factor 2, jitter 0.1, steps 5}` (2, 4, 8, 16 s, each up to 10 % longer), then
/// `PollInfinite(32 s)`.
pub fn backoff(failures: u32, jitter: f64) -> Duration {
    if failures >= 5 {
        return Duration::from_secs(32);
    }
    let base = Duration::from_secs(1 << failures.max(1));
    base.mul_f64(1.0 + 0.1 * jitter.clamp(0.0, 1.0))
}

/// The CA bundle to trust after seeing `seen` in cluster-info while holding `held`: the new
/// bundle when its certificates differ from those held (in any order), `None` when nothing
/// changed or `seen` holds no certificate. cluster-info is read over a connection the held
/// bundle verified, so what it says is the cluster's word.
pub fn adopt_ca_bundle(held: &[u8], seen: &[u8]) -> Option<Vec<u8>> {
    let certs = |pem: &[u8]| -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = x509_parser::pem::Pem::iter_from_buffer(pem)
            .filter_map(Result::ok)
            .filter(|p| p.label == "CERTIFICATE")
            .map(|p| p.contents)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let new = certs(seen);
    (!new.is_empty() && new != certs(held)).then(|| seen.to_vec())
}

/// Whether the signer has moved to another CA: its published bundles (`signer_bundle`,
/// PEM, possibly empty when it publishes none) hold certificates, and none of them issued
/// `cert_pem`. A node then renews at once, as a CA rotation's switch asks.
pub fn signer_moved(cert_pem: &[u8], signer_bundle: &[u8]) -> bool {
    use kubeboot_pki::chain::{certificates, first_der, issued_by_any};
    let (Ok(cert), Ok(bundle)) = (
        std::str::from_utf8(cert_pem),
        std::str::from_utf8(signer_bundle),
    ) else {
        return false;
    };
    let readable = first_der(cert).is_some_and(|d| x509_parser::parse_x509_certificate(&d).is_ok());
    readable && !certificates(bundle).is_empty() && !issued_by_any(cert, bundle)
}

#[cfg(test)]
mod tests;
