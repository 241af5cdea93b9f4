//! The controller-manager's lifecycle: which controllers run, and for how long. Without
//! leader election they run until stopped; with it, only during each term as leader: each
//! term starts them with a client of their own, and losing the Lease (or a stop) cancels
//! every one of their tasks before anything else happens.

use std::sync::Arc;

use kubeboot_api::Clock;
use kubeboot_api::random::Random;
use kubeboot_client::Client;
use tokio_util::sync::CancellationToken;

use crate::csr::policy::{ServingRules, SigningPolicy};
use crate::leader_election::Candidate;
use crate::metrics::Counters;
use crate::tasks::Tasks;

/// What each controller of one run is given.
#[derive(Clone)]
pub struct Context {
    /// The controllers' client.
    pub client: Client,
    /// The wall clock (expiries, condition times, certificate validity).
    pub clock: Arc<dyn Clock>,
    /// Random numbers (certificate serial numbers).
    pub random: Arc<dyn Random>,
    /// The controllers' metrics.
    pub counters: Arc<Counters>,
    /// The run's tasks, cancelled together.
    pub tasks: Tasks,
}

/// The selected controllers and what they need, checked before any of them starts.
#[derive(Clone)]
pub struct Plan {
    /// The controllers to run (`crate::selected`).
    pub selected: Vec<&'static str>,
    /// csrapproving's serving-certificate rules (`--approve-kubelet-serving`).
    pub serving: Option<ServingRules>,
    /// csrsigning's CA for each signer name.
    pub cas: crate::csr::signer::SignerCas,
    /// csrsigning's policy.
    pub policy: SigningPolicy,
    /// Workers of each CSR controller (`--concurrent-csr-syncs`).
    pub csr_workers: usize,
    /// What the trust bundle publisher publishes, by signer name.
    pub trust_bundles: Vec<(String, crate::trust_bundle_publisher::Source)>,
    /// nodelifecycle's periods (`--node-monitor-grace-period`, `--node-monitor-period`).
    pub node_monitor: crate::node_lifecycle::NodeMonitor,
}

/// The CSR controllers' workers when not configured: one per CPU, and at least 16, since a
/// worker spends most of its time waiting for the store, not computing.
pub fn default_csr_workers(cpus: usize) -> usize {
    cpus.max(16)
}

impl Plan {
    /// Starts the selected controllers, their tasks in `cx.tasks`.
    pub fn start(&self, cx: &Context) {
        use crate::csr;
        let csr_source = self
            .selected
            .iter()
            .any(|c| c.starts_with("csr"))
            .then(|| csr::CsrSource::start(&cx.tasks, cx.client.clone()));
        let source = || csr_source.as_ref().expect("started for csr controllers");
        for name in &self.selected {
            match *name {
                "bootstrapsigner" => crate::bootstrap_signer::start(cx),
                "tokencleaner" => crate::token_cleaner::start(cx),
                "nodelifecycle" => crate::node_lifecycle::start(cx, self.node_monitor),
                "clusterrole-aggregation" => crate::clusterrole_aggregation::start(cx),
                crate::trust_bundle_publisher::NAME => {
                    crate::trust_bundle_publisher::start(cx, self.trust_bundles.clone())
                }
                "csrcleaner" => csr::cleaner::start(source(), cx),
                "csrapproving" => {
                    csr::approver::start(source(), cx, self.serving.clone(), self.csr_workers)
                }
                "csrsigning" => csr::signer::start(
                    source(),
                    cx,
                    (self.cas.clone(), self.policy),
                    self.csr_workers,
                ),
                _ => {}
            }
        }
        tracing::info!(controllers = ?self.selected, "controllers started");
    }
}

/// Builds a client for the controllers (a new one for each term as leader, so that their
/// connections end with them).
pub type Connect = Box<dyn Fn() -> Result<Client, String> + Send + Sync>;

/// The controllers, running; `stop` ends them.
pub struct Running {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// What the controllers share across terms.
pub struct Shared {
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
    /// Random numbers.
    pub random: Arc<dyn Random>,
    /// The controllers' metrics.
    pub counters: Arc<Counters>,
}

impl Shared {
    fn context(&self, client: Client) -> Context {
        Context {
            client,
            clock: self.clock.clone(),
            random: self.random.clone(),
            counters: self.counters.clone(),
            tasks: Tasks::default(),
        }
    }
}

/// Runs `plan`: at once, or with `election` only while holding the leader Lease.
pub fn run(
    plan: Plan,
    connect: Connect,
    election: Option<Candidate>,
    shared: Shared,
) -> Result<Running, String> {
    let stop = CancellationToken::new();
    let task = match election {
        None => {
            let cx = shared.context(connect()?);
            plan.start(&cx);
            let stop = stop.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                cx.tasks.stop().await;
            })
        }
        Some(candidate) => tokio::spawn(terms(plan, connect, candidate, shared, stop.clone())),
    };
    Ok(Running { stop, task })
}

/// Campaigns, runs the controllers during each term as leader, and releases the Lease
/// when stopped.
async fn terms(
    plan: Plan,
    connect: Connect,
    candidate: Candidate,
    shared: Shared,
    stop: CancellationToken,
) {
    loop {
        let Some(observed) = stop.run_until_cancelled(candidate.acquire()).await else {
            return;
        };
        let cx = match connect() {
            Ok(own) => shared.context(own),
            Err(e) => {
                tracing::error!(error = %e, "cannot build the controllers' client");
                shared.context(candidate.client.clone())
            }
        };
        plan.start(&cx);
        let lost = stop
            .run_until_cancelled(candidate.renew_until_lost(observed))
            .await
            .is_some();
        cx.tasks.stop().await;
        if lost {
            tracing::error!("leaderelection lost: stopped the controllers");
            continue;
        }
        candidate.release().await;
        return;
    }
}

impl Running {
    /// Stops the controllers (every task ended) and gives up the Lease if this process
    /// holds it, so another server takes over within a retry period instead of a lease
    /// duration. Bounded: 5 s.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csr_controllers_get_a_worker_per_cpu_and_never_fewer_than_16() {
        for (cpus, workers) in [(1, 16), (2, 16), (16, 16), (32, 32), (128, 128)] {
            assert_eq!(default_csr_workers(cpus), workers, "{cpus} CPUs");
        }
    }
}
