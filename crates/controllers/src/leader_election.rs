//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's leaderelection
//! runs it for kube-controller-manager: one holder at a time across every server of a
//! control plane, so a CSR is approved and signed once, not once per server.
//!
//! A candidate takes the Lease when nobody holds it, or when the holder has not renewed it
//! for `leaseDurationSeconds` — measured on the candidate's own clock from when it last saw
//! the Lease change, so clock skew between servers does not matter. The holder renews every
//! retry period; if it cannot renew within the renew deadline (shorter than the lease
//! duration) it stops acting before anyone else may start. Every write is an update at the
//! observed `resourceVersion`, so two candidates never both win.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubeboot_api::Clock;
use kubeboot_api::clock::format_micro_time;
use kubeboot_client::{Client, ClientError};
use serde_json::{Value, json};
use tokio::time::Instant;

/// Who competes for which Lease, and the timing (kube-controller-manager's flags).
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// `--leader-elect-resource-namespace`.
    pub namespace: String,
    /// `--leader-elect-resource-name`.
    pub name: String,
    /// This candidate (`<hostname>_<unique id>`).
    pub identity: String,
    /// `--leader-elect-lease-duration`: how long others wait after the last renewal.
    pub lease_duration: Duration,
    /// `--leader-elect-renew-deadline`: how long the holder tries to renew before it stops.
    pub renew_deadline: Duration,
    /// `--leader-elect-retry-period`: how often candidates try and the holder renews.
    pub retry_period: Duration,
}

impl LeaderElection {
    /// kube-controller-manager's Lease (`kube-system/kube-controller-manager`) and defaults
    /// (15 s, 10 s, 2 s).
    pub fn kube_controller_manager(identity: String) -> Self {
        Self {
            namespace: "kube-system".into(),
            name: "kube-controller-manager".into(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    /// Checks the timing as client-go does.
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_duration <= self.renew_deadline {
            return Err(
                "--leader-elect-lease-duration must be greater than --leader-elect-renew-deadline"
                    .into(),
            );
        }
        if self.renew_deadline <= self.retry_period.mul_f64(1.2) {
            return Err("--leader-elect-renew-deadline must be greater than 1.2 × --leader-elect-retry-period".into());
        }
        if self.retry_period.is_zero() {
            return Err("--leader-elect-retry-period must be positive".into());
        }
        Ok(())
    }

    fn path(&self) -> String {
        format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases/{}",
            self.namespace, self.name
        )
    }
}

/// The Lease's spec, as far as the election reads it.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LeaseRecord {
    /// `holderIdentity` ("" when released).
    pub holder: String,
    /// `leaseDurationSeconds`.
    pub duration_seconds: i64,
    /// `renewTime`.
    pub renew_time: String,
    /// `leaseTransitions`.
    pub transitions: i64,
}

impl LeaseRecord {
    fn from_lease(lease: &Value) -> Self {
        let spec = &lease["spec"];
        Self {
            holder: spec["holderIdentity"].as_str().unwrap_or("").to_owned(),
            duration_seconds: spec["leaseDurationSeconds"].as_i64().unwrap_or(0),
            renew_time: spec["renewTime"].as_str().unwrap_or("").to_owned(),
            transitions: spec["leaseTransitions"].as_i64().unwrap_or(0),
        }
    }
}

/// Whether `me` may take or renew a Lease last seen as `record`, first seen in that state
/// at `observed_at`.
pub fn may_take(record: &LeaseRecord, me: &str, observed_at: Instant, now: Instant) -> bool {
    if record.holder.is_empty() || record.holder == me {
        return true;
    }
    let duration = Duration::from_secs(u64::try_from(record.duration_seconds.max(1)).unwrap_or(1));
    now.saturating_duration_since(observed_at) >= duration
}

/// What a candidate remembers between attempts.
#[derive(Debug)]
pub struct Observed {
    record: Option<LeaseRecord>,
    at: Instant,
}

impl Default for Observed {
    fn default() -> Self {
        Self {
            record: None,
            at: Instant::now(),
        }
    }
}

impl Observed {
    /// Remembers `record`, and when it was first seen in that state.
    fn saw(&mut self, record: LeaseRecord) {
        if self.record.as_ref() != Some(&record) {
            self.record = Some(record);
            self.at = Instant::now();
        }
    }

    /// The holder last seen ("" when none).
    fn holder(&self) -> &str {
        self.record.as_ref().map_or("", |r| r.holder.as_str())
    }
}

/// The spec `me` writes when taking or renewing after `previous`.
fn next_spec(previous: Option<&LeaseRecord>, le: &LeaderElection, now: SystemTime) -> Value {
    let now = format_micro_time(now);
    let duration = i64::try_from(le.lease_duration.as_secs()).unwrap_or(15);
    match previous {
        Some(p) if p.holder == le.identity => json!({
            "holderIdentity": le.identity, "leaseDurationSeconds": duration,
            "renewTime": now, "leaseTransitions": p.transitions,
        }),
        previous => json!({
            "holderIdentity": le.identity, "leaseDurationSeconds": duration,
            "acquireTime": now, "renewTime": now,
            "leaseTransitions": previous.map_or(0, |p| p.transitions + 1),
        }),
    }
}

/// The spec that gives a held Lease up (client-go's `ReleaseOnCancel`): no holder, a
/// one-second duration.
fn released_spec(now: SystemTime) -> Value {
    let now = format_micro_time(now);
    json!({
        "holderIdentity": "", "leaseDurationSeconds": 1,
        "acquireTime": now, "renewTime": now,
    })
}

/// One candidate in the election: its API client and clock. The Lease's times come from
/// the clock; how long the Lease has gone unchanged is measured on the monotonic clock.
#[derive(Clone)]
pub struct Candidate {
    /// The client the election's reads and writes go through.
    pub client: Client,
    /// Who, which Lease, and the timing.
    pub election: LeaderElection,
    /// The wall clock the Lease's `acquireTime` and `renewTime` are read from.
    pub clock: Arc<dyn Clock>,
}

impl Candidate {
    fn lease_name(&self) -> String {
        format!("{}/{}", self.election.namespace, self.election.name)
    }

    /// One attempt to take or renew the Lease. `Ok(true)`: we hold it now.
    pub async fn try_acquire_or_renew(&self, observed: &mut Observed) -> Result<bool, ClientError> {
        let le = &self.election;
        let now = self.clock.now();
        let lease: Value = match self.client.get(&le.path()).await {
            Ok(l) => l,
            Err(e) if e.code() == Some(404) => return self.create(observed, now).await,
            Err(e) => return Err(e),
        };
        let record = LeaseRecord::from_lease(&lease);
        observed.saw(record.clone());
        if !may_take(&record, &le.identity, observed.at, Instant::now()) {
            return Ok(false);
        }
        let mut updated = lease;
        // Fields this candidate does not set (acquireTime on a renewal) are kept.
        merge_spec(&mut updated, next_spec(Some(&record), le, now));
        match self.client.update::<Value>(&le.path(), &updated).await {
            Ok(written) => {
                observed.saw(LeaseRecord::from_lease(&written));
                Ok(true)
            }
            // Someone else wrote first: they hold it (or renewed it).
            Err(e) if e.code() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Creates the Lease, held by us. `Ok(false)`: someone else created it first.
    async fn create(&self, observed: &mut Observed, now: SystemTime) -> Result<bool, ClientError> {
        let le = &self.election;
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": le.name, "namespace": le.namespace},
            "spec": next_spec(None, le, now),
        });
        let path = format!(
            "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
            le.namespace
        );
        match self.client.create::<Value>(&path, &lease).await {
            Ok(created) => {
                observed.saw(LeaseRecord::from_lease(&created));
                Ok(true)
            }
            Err(e) if e.code() == Some(409) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Campaigns until this candidate holds the Lease.
    pub async fn acquire(&self) -> Observed {
        let mut observed = Observed::default();
        let mut announced = false;
        loop {
            match self.try_acquire_or_renew(&mut observed).await {
                Ok(true) => {
                    tracing::info!(lease = %self.lease_name(), identity = %self.election.identity, "successfully acquired lease");
                    return observed;
                }
                Ok(false) if !announced => {
                    tracing::info!(lease = %self.lease_name(), holder = %observed.holder(), "attempting to acquire leader lease; another candidate holds it");
                    announced = true;
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "error retrieving resource lock {}", self.lease_name())
                }
            }
            tokio::time::sleep(self.election.retry_period).await;
        }
    }

    /// Renews the Lease every retry period; returns when a renewal has not succeeded
    /// within the renew deadline (the leadership is lost: stop acting at once).
    pub async fn renew_until_lost(&self, mut observed: Observed) {
        let le = &self.election;
        loop {
            tokio::time::sleep(le.retry_period).await;
            let deadline = Instant::now() + le.renew_deadline;
            loop {
                let attempt =
                    tokio::time::timeout_at(deadline, self.try_acquire_or_renew(&mut observed))
                        .await;
                match attempt {
                    Ok(Ok(true)) => break,
                    Ok(Ok(false)) => {
                        tracing::error!(lease = %self.lease_name(), "another candidate took the lease");
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "failed to renew lease {}", self.lease_name())
                    }
                    Err(_) => {}
                }
                if Instant::now() >= deadline {
                    tracing::error!(lease = %self.lease_name(), "failed to renew lease within the renew deadline");
                    return;
                }
                tokio::time::sleep_until(deadline.min(Instant::now() + le.retry_period)).await;
            }
        }
    }

    /// Gives up the Lease if this candidate holds it, written at the observed
    /// `resourceVersion`, so others take it at their next try. Best effort: a failure
    /// leaves the Lease to expire.
    pub async fn release(&self) {
        let le = &self.election;
        let Ok(mut lease) = self.client.get::<Value>(&le.path()).await else {
            return;
        };
        if LeaseRecord::from_lease(&lease).holder != le.identity {
            return;
        }
        merge_spec(&mut lease, released_spec(self.clock.now()));
        match self.client.update::<Value>(&le.path(), &lease).await {
            Ok(_) => tracing::info!(lease = %self.lease_name(), "released the lease"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release the lease; it expires on its own")
            }
        }
    }
}

/// Sets the fields of `spec` in the Lease's spec, keeping the others.
fn merge_spec(lease: &mut Value, spec: Value) {
    match (lease["spec"].as_object_mut(), spec) {
        (Some(old), Value::Object(new)) => old.extend(new),
        (_, spec) => lease["spec"] = spec,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(holder: &str) -> LeaseRecord {
        LeaseRecord {
            holder: holder.into(),
            duration_seconds: 15,
            renew_time: "2026-01-01T00:00:00.000000Z".into(),
            transitions: 3,
        }
    }

    #[test]
    fn a_held_lease_is_taken_only_after_its_duration_without_change() {
        let t0 = Instant::now();
        let held = record("cp1_a");
        assert!(!may_take(&held, "cp2_b", t0, t0));
        assert!(!may_take(&held, "cp2_b", t0, t0 + Duration::from_secs(14)));
        assert!(may_take(&held, "cp2_b", t0, t0 + Duration::from_secs(15)));
        // The holder itself renews at any time; a released lease is free.
        assert!(may_take(&held, "cp1_a", t0, t0));
        assert!(may_take(&record(""), "cp2_b", t0, t0));
    }

    #[test]
    fn taking_over_counts_a_transition_and_renewing_does_not() {
        let le = LeaderElection::kube_controller_manager("cp2_b".into());
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let taken = next_spec(Some(&record("cp1_a")), &le, now);
        assert_eq!(taken["holderIdentity"], "cp2_b");
        assert_eq!(taken["leaseTransitions"], 4);
        assert_eq!(taken["leaseDurationSeconds"], 15);
        assert_eq!(taken["acquireTime"], taken["renewTime"]);
        let renewed = next_spec(Some(&record("cp2_b")), &le, now);
        assert_eq!(renewed["leaseTransitions"], 3);
        assert!(renewed.get("acquireTime").is_none());
        assert_eq!(next_spec(None, &le, now)["leaseTransitions"], 0);
    }

    #[test]
    fn releasing_keeps_the_transitions_and_empties_the_holder() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut lease = json!({"spec": {"holderIdentity": "cp1_a", "leaseTransitions": 3,
            "leaseDurationSeconds": 15}});
        merge_spec(&mut lease, released_spec(now));
        assert_eq!(lease["spec"]["holderIdentity"], "");
        assert_eq!(lease["spec"]["leaseDurationSeconds"], 1);
        assert_eq!(lease["spec"]["leaseTransitions"], 3);
        assert_eq!(lease["spec"]["renewTime"], "2027-01-15T08:00:00.000000Z");
    }

    #[test]
    fn timing_is_checked_as_client_go_checks_it() {
        let mut le = LeaderElection::kube_controller_manager("x".into());
        assert!(le.validate().is_ok());
        le.renew_deadline = Duration::from_secs(15);
        assert!(le.validate().is_err());
        le.renew_deadline = Duration::from_secs(2);
        assert!(le.validate().is_err());
    }
}
