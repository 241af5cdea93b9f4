//! nodelifecycle: kube-controller-manager's node health monitor. A node whose Lease and
//! Ready heartbeat have not changed for `--node-monitor-grace-period` (as this controller
//! observed them, on its own clock, so clock skew does not matter) gets its `Ready`,
//! `MemoryPressure`, `DiskPressure` and `PIDPressure` conditions set `Unknown`; a node
//! whose Ready condition is `Unknown` is tainted `node.kubernetes.io/unreachable`, one whose
//! Ready is `False` `node.kubernetes.io/not-ready` (`NoSchedule` and `NoExecute`), and a
//! node Ready again loses both; a Ready node gone Unknown gets a `NodeNotReady` event. When
//! every node is down, no `NoExecute` taint is applied (kube's full disruption).
//! Every node is looked at each `--node-monitor-period`, and at once when it or its Lease
//! changes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use kubeboot_api::Clock;
use kubeboot_api::clock::format_rfc3339;
use kubeboot_client::Client;
use serde_json::Value;

use crate::metrics::Counters;
use crate::runner::{Action, BoxFuture, Informer, Queue, ReconcileError, Reconciler};
use policy::{heartbeat, node_event, ready, stale_conditions, taints_for};

const NODES: &str = "/api/v1/nodes";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
/// `--node-monitor-grace-period` and `--node-monitor-period`.
#[derive(Clone, Copy, Debug)]
pub struct NodeMonitor {
    /// How long a node may stay silent before it is `Unknown` (kube's default 40 s).
    pub grace: Duration,
    /// How often every node is looked at (kube's default 5 s).
    pub period: Duration,
}

/// When this controller last saw a node's Lease renewal or Ready heartbeat change.
struct Probe {
    lease: Option<String>,
    heartbeat: Option<String>,
    at: SystemTime,
}

/// The controller.
pub struct NodeLifecycle {
    client: Client,
    nodes: Informer,
    leases: Informer,
    monitor: NodeMonitor,
    counters: Arc<Counters>,
    clock: Arc<dyn Clock>,
    probes: Mutex<HashMap<String, Probe>>,
    /// Whether every node is down (set by each sweep): no `NoExecute` taints then.
    full_disruption: Arc<AtomicBool>,
    events: crate::events::Recorder,
}

/// Starts the controller.
pub fn start(cx: &crate::Context, monitor: NodeMonitor) {
    let queue = Arc::new(Queue::default());
    let q = queue.clone();
    let nodes = Informer::start(&cx.tasks, cx.client.clone(), NODES.into(), move |k| {
        q.add(k)
    });
    let q = queue.clone();
    let leases = Informer::start(&cx.tasks, cx.client.clone(), LEASES.into(), move |k| {
        q.add(k.rsplit('/').next().unwrap_or(k));
    });
    let (every, sweep, q) = (monitor.period, nodes.clone(), queue.clone());
    let full_disruption = Arc::new(AtomicBool::new(false));
    let disrupted = full_disruption.clone();
    cx.tasks.spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let all = sweep.list();
            let down = !all.is_empty() && all.iter().all(|n| ready(n) != Some("True"));
            if disrupted.swap(down, Ordering::Relaxed) != down {
                tracing::warn!(
                    all_nodes_down = down,
                    "full disruption: NoExecute taints {}",
                    if down { "removed" } else { "applied again" }
                );
            }
            for key in sweep.keys() {
                q.add(&key);
            }
        }
    });
    crate::runner::run(
        &cx.tasks,
        Arc::new(NodeLifecycle {
            client: cx.client.clone(),
            nodes,
            leases,
            monitor,
            counters: cx.counters.clone(),
            clock: cx.clock.clone(),
            probes: Mutex::default(),
            full_disruption,
            events: crate::events::Recorder::new(cx.client.clone(), cx.tasks.clone()),
        }),
        queue,
        2,
    );
}

impl Reconciler for NodeLifecycle {
    fn name(&self) -> &'static str {
        "nodelifecycle"
    }

    fn reconcile(&self, name: String) -> BoxFuture<'_, Result<Action, ReconcileError>> {
        Box::pin(async move {
            let Some(mut node) = self.nodes.get(&name) else {
                self.probes().remove(&name);
                return Ok(Action::Done);
            };
            let now = self.clock.now();
            let renewed = self
                .leases
                .get(&format!("kube-node-lease/{name}"))
                .and_then(|l| l.pointer("/spec/renewTime").cloned())
                .map(|t| t.to_string());
            let silent_since = self.observe(&name, renewed, heartbeat(&node), now);
            let stamp = format_rfc3339(now);
            if now.duration_since(silent_since).unwrap_or_default() > self.monitor.grace
                && let Some(conditions) = stale_conditions(&node, &stamp)
            {
                let was_ready = ready(&node) == Some("True");
                node["status"]["conditions"] = Value::Array(conditions);
                match self.write(&format!("{NODES}/{name}/status"), &node).await? {
                    Some(updated) => node = updated,
                    None => return Ok(Action::Done),
                }
                Counters::inc(&self.counters.nodes_unknown);
                tracing::info!(node = %name, grace = ?self.monitor.grace, "node stopped posting status: conditions set Unknown");
                if was_ready {
                    self.record(&node, "NodeNotReady", now);
                }
            }
            let taints = node.pointer("/spec/taints").and_then(Value::as_array);
            let evicting = !self.full_disruption.load(Ordering::Relaxed);
            let taints = taints.map_or(&[][..], |t| t);
            if let Some(taints) = taints_for(taints, ready(&node), &stamp, evicting) {
                node["spec"]["taints"] = Value::Array(taints);
                if self
                    .write(&format!("{NODES}/{name}"), &node)
                    .await?
                    .is_some()
                {
                    Counters::inc(&self.counters.node_taints_changed);
                    tracing::info!(node = %name, ready = ?ready(&node), "node taints updated");
                }
            }
            Ok(Action::Done)
        })
    }
}

impl NodeLifecycle {
    fn probes(&self) -> std::sync::MutexGuard<'_, HashMap<String, Probe>> {
        self.probes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records what the node shows now; returns when it last showed a change (the first
    /// sight counts as one, so a node gets a whole grace period from this controller's start).
    fn observe(
        &self,
        name: &str,
        lease: Option<String>,
        heartbeat: Option<String>,
        now: SystemTime,
    ) -> SystemTime {
        let mut probes = self.probes();
        match probes.get_mut(name) {
            Some(p) if p.lease == lease && p.heartbeat == heartbeat => p.at,
            Some(p) => {
                *p = Probe {
                    lease,
                    heartbeat,
                    at: now,
                };
                now
            }
            None => {
                probes.insert(
                    name.to_owned(),
                    Probe {
                        lease,
                        heartbeat,
                        at: now,
                    },
                );
                now
            }
        }
    }

    /// Records an event about the node, as kube-controller-manager's node controller
    /// does (`Node <name> status is now: <status>`); a failure is logged, not retried.
    fn record(&self, node: &Value, status: &str, now: SystemTime) {
        self.events.record(node_event(node, status, now));
    }

    /// Writes the node; `None` when it changed or went meanwhile (its informer brings the
    /// newer version back).
    async fn write(&self, path: &str, node: &Value) -> Result<Option<Value>, ReconcileError> {
        match self.client.update::<Value>(path, node).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if matches!(e.code(), Some(404 | 409)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

pub mod policy;

#[cfg(test)]
mod tests;
