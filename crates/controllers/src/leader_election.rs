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

use std::time::{Duration, Instant, SystemTime};

use kubeboot_api::clock::format_micro_time;
use kubeboot_client::{Client, ClientError};
use serde_json::{Value, json};

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

/// One attempt to take or renew the Lease. `Ok(true)`: we hold it now.
pub async fn try_acquire_or_renew(
    client: &Client,
    le: &LeaderElection,
    observed: &mut Observed,
) -> Result<bool, ClientError> {
    let now = SystemTime::now();
    let lease: Value = match client.get(&le.path()).await {
        Ok(l) => l,
        Err(e) if e.code() == Some(404) => {
            let lease = json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": le.name, "namespace": le.namespace},
                "spec": next_spec(None, le, now),
            });
            let path = format!(
                "/apis/coordination.k8s.io/v1/namespaces/{}/leases",
                le.namespace
            );
            return match client.create::<Value>(&path, &lease).await {
                Ok(created) => {
                    observed.record = Some(LeaseRecord::from_lease(&created));
                    observed.at = Instant::now();
                    Ok(true)
                }
                Err(e) if e.code() == Some(409) => Ok(false),
                Err(e) => Err(e),
            };
        }
        Err(e) => return Err(e),
    };
    let record = LeaseRecord::from_lease(&lease);
    if observed.record.as_ref() != Some(&record) {
        observed.record = Some(record.clone());
        observed.at = Instant::now();
    }
    if !may_take(&record, &le.identity, observed.at, Instant::now()) {
        return Ok(false);
    }
    let mut updated = lease;
    // Fields this candidate does not set (acquireTime on a renewal) are kept.
    if let (Some(spec), Value::Object(next)) = (
        updated["spec"].as_object_mut(),
        next_spec(Some(&record), le, now),
    ) {
        spec.extend(next);
    } else {
        updated["spec"] = next_spec(Some(&record), le, now);
    }
    match client.update::<Value>(&le.path(), &updated).await {
        Ok(written) => {
            observed.record = Some(LeaseRecord::from_lease(&written));
            observed.at = Instant::now();
            Ok(true)
        }
        // Someone else wrote first: they hold it (or renewed it).
        Err(e) if e.code() == Some(409) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Campaigns until this candidate holds the Lease.
pub async fn acquire(client: &Client, le: &LeaderElection) -> Observed {
    let mut observed = Observed::default();
    let mut announced = false;
    loop {
        match try_acquire_or_renew(client, le, &mut observed).await {
            Ok(true) => {
                tracing::info!(lease = %format!("{}/{}", le.namespace, le.name), identity = %le.identity, "successfully acquired lease");
                return observed;
            }
            Ok(false) => {
                if !announced {
                    let holder = observed.record.as_ref().map_or("", |r| r.holder.as_str());
                    tracing::info!(lease = %format!("{}/{}", le.namespace, le.name), %holder, "attempting to acquire leader lease; another candidate holds it");
                    announced = true;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "error retrieving resource lock {}/{}", le.namespace, le.name)
            }
        }
        tokio::time::sleep(le.retry_period).await;
    }
}

/// Renews the Lease every retry period; returns when a renewal has not succeeded within the
/// renew deadline (the leadership is lost: stop acting at once).
pub async fn renew_until_lost(client: &Client, le: &LeaderElection, mut observed: Observed) {
    loop {
        tokio::time::sleep(le.retry_period).await;
        let deadline = Instant::now() + le.renew_deadline;
        loop {
            let attempt = tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                try_acquire_or_renew(client, le, &mut observed),
            )
            .await;
            match attempt {
                Ok(Ok(true)) => break,
                Ok(Ok(false)) => {
                    tracing::error!(lease = %format!("{}/{}", le.namespace, le.name), "another candidate took the lease");
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "failed to renew lease {}/{}", le.namespace, le.name)
                }
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                tracing::error!(lease = %format!("{}/{}", le.namespace, le.name), "failed to renew lease within the renew deadline");
                return;
            }
            tokio::time::sleep(
                le.retry_period
                    .min(deadline.saturating_duration_since(Instant::now())),
            )
            .await;
        }
    }
}

/// Gives up the Lease if this candidate holds it, as client-go's `ReleaseOnCancel` does: no
/// holder and a one-second duration, written at the observed `resourceVersion`, so others
/// take it at their next try. Best effort: a failure leaves the Lease to expire.
pub async fn release(client: &Client, le: &LeaderElection) {
    let Ok(mut lease) = client.get::<Value>(&le.path()).await else {
        return;
    };
    if LeaseRecord::from_lease(&lease).holder != le.identity {
        return;
    }
    let now = format_micro_time(SystemTime::now());
    if let Some(spec) = lease["spec"].as_object_mut() {
        spec.insert("holderIdentity".into(), json!(""));
        spec.insert("leaseDurationSeconds".into(), json!(1));
        spec.insert("acquireTime".into(), json!(now));
        spec.insert("renewTime".into(), json!(now));
    }
    match client.update::<Value>(&le.path(), &lease).await {
        Ok(_) => {
            tracing::info!(lease = %format!("{}/{}", le.namespace, le.name), "released the lease")
        }
        Err(e) => tracing::warn!(error = %e, "could not release the lease; it expires on its own"),
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
    fn timing_is_checked_as_client_go_checks_it() {
        let mut le = LeaderElection::kube_controller_manager("x".into());
        assert!(le.validate().is_ok());
        le.renew_deadline = Duration::from_secs(15);
        assert!(le.validate().is_err());
        le.renew_deadline = Duration::from_secs(2);
        assert!(le.validate().is_err());
    }
}
