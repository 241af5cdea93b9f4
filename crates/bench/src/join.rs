//! `kubeboot bench join`: many simulated nodes doing the whole join — token discovery with
//! JWS and pin checks, key generation, CSR with the bootstrap token, waiting for the
//! certificate, one request with it (and, with `--rotate`, one renewal as the node) — with
//! the machine's crypto bound measured in the same run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use anyhow::Result;
use kubeboot_bootstrap::BootstrapToken;
use kubeboot_node::discovery::{CaTrust, Cluster};
use kubeboot_node::join::{Discovery, Route, discover, prove};
use kubeboot_node::tls_bootstrap::{CLIENT_SIGNER, CertRequest, request_certificate_with_key};
use kubeboot_pki::KeyAlgorithm;

use crate::bound::CryptoBound;
use crate::stats::{Summary, rate, summarize};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Simulated nodes.
    pub nodes: usize,
    /// Nodes joining at once.
    pub concurrency: usize,
    /// The nodes' key type.
    pub key: KeyAlgorithm,
    /// Renew once as the node after joining.
    pub rotate: bool,
    /// Where to write each admitted node's certificate (`<node>.crt`, the renewed one with
    /// `rotate`) and the cluster CA discovery established (`ca.crt`), for checking them
    /// with other tools. No key is written.
    pub cert_dir: Option<std::path::PathBuf>,
}

/// The error kind of a certificate `--cert-dir` could not keep.
const CERT_DIR: &str = "cert-dir";

/// The steps a join is timed in.
pub const STEPS: [&str; 4] = ["discovery", "certificate", "first-request", "rotation"];

/// The results.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    /// Nodes that joined.
    pub admitted: usize,
    /// Nodes that joined only on a later attempt, through another server.
    pub retried: usize,
    /// Failures by kind.
    pub errors: BTreeMap<String, usize>,
    /// Wall time.
    pub seconds: f64,
    /// Nodes admitted per second.
    pub nodes_per_second: f64,
    /// Latency of each step.
    pub steps: BTreeMap<String, Summary>,
    /// Latency of the whole join.
    pub join: Summary,
    /// The crypto bound of this machine for this workload.
    pub crypto: CryptoBound,
    /// `nodes_per_second / crypto.nodes_per_second`.
    pub ratio_to_bound: f64,
    /// Each admitted node: when its join started and how long it took (for `--plot`).
    #[serde(skip)]
    pub samples: Vec<(Duration, Duration)>,
}

/// Joins `opts.nodes` simulated nodes to the cluster served at `endpoints` (`host:port`).
/// Node `i` starts at endpoint `i mod n`, and every request of its join goes there, as
/// through a load balancer (not to the URL cluster-info names). With several endpoints, a
/// join that fails starts again, with a new key and CSR, through the next one — as a
/// kubelet restarts its bootstrap — up to three rounds over all of them.
pub async fn run(
    endpoints: &[String],
    token: &BootstrapToken,
    trust: CaTrust,
    opts: &Options,
    crypto: CryptoBound,
    progress: impl Fn(usize) + Send + Sync + 'static,
) -> Report {
    let token = Arc::new(token.clone());
    let trust = Arc::new(trust);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let errors: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let retried = Arc::new(AtomicUsize::new(0));
    let endpoints: Arc<[String]> = endpoints.into();
    let health = Arc::new(Health::new(endpoints.len()));
    // Behind several servers a node gives up on an unreachable one quickly and moves on.
    let discovery_timeout = if endpoints.len() > 1 {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(120)
    };
    let progress = Arc::new(progress);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let (token, trust, next, done, errors, progress) = (
            token.clone(),
            trust.clone(),
            next.clone(),
            done.clone(),
            errors.clone(),
            progress.clone(),
        );
        let (endpoints, opts, retried, health) = (
            endpoints.clone(),
            opts.clone(),
            retried.clone(),
            health.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut times: Vec<(Duration, Timings)> = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= opts.nodes {
                    return times;
                }
                let attempts = if endpoints.len() > 1 {
                    3 * endpoints.len()
                } else {
                    1
                };
                let mut outcome = Err(("none", String::new()));
                let began = started.elapsed();
                for attempt in 0..attempts {
                    let e = health.pick(i + attempt);
                    let endpoint = &endpoints[e];
                    outcome = one(endpoint, &token, &trust, &opts, i, discovery_timeout).await;
                    match &outcome {
                        Ok(_) if attempt > 0 => {
                            retried.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Ok(_) => break,
                        // Our own disk failed, not the server: no other server would help.
                        Err((CERT_DIR, _)) => break,
                        Err((_, err)) => {
                            tracing::debug!(node = i, %endpoint, error = %err, "join attempt failed");
                            if endpoints.len() > 1 {
                                health.mark_down(e);
                            }
                        }
                    }
                }
                match outcome {
                    Ok(t) => times.push((began, t)),
                    Err((kind, e)) => {
                        tracing::debug!(node = i, error = %e, "join failed");
                        *errors
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .entry(kind.to_owned())
                            .or_default() += 1;
                    }
                }
                progress(done.fetch_add(1, Ordering::Relaxed) + 1);
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    let mut steps = BTreeMap::new();
    for (i, name) in STEPS.iter().enumerate() {
        let mut v: Vec<Duration> = all.iter().filter_map(|(_, t)| t[i]).collect();
        if !v.is_empty() {
            steps.insert((*name).to_owned(), summarize(&mut v));
        }
    }
    let mut total: Vec<Duration> = all.iter().filter_map(|(_, t)| t[4]).collect();
    let samples: Vec<(Duration, Duration)> = all
        .iter()
        .filter_map(|(began, t)| Some((*began, t[4]?)))
        .collect();
    let nodes_per_second = rate(all.len(), elapsed);
    let errors = errors
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Report {
        admitted: all.len(),
        retried: retried.load(Ordering::Relaxed),
        errors,
        seconds: elapsed.as_secs_f64(),
        nodes_per_second,
        steps,
        join: summarize(&mut total),
        samples,
        ratio_to_bound: if crypto.nodes_per_second > 0.0 {
            nodes_per_second / crypto.nodes_per_second
        } else {
            0.0
        },
        crypto,
    }
}

type Timings = [Option<Duration>; 5];

/// Which servers recently failed a join, as a load balancer's health checks would know: new
/// attempts skip them for a few seconds.
struct Health {
    down_until: Vec<Mutex<Option<Instant>>>,
}

impl Health {
    const HOLD_DOWN: Duration = Duration::from_secs(5);

    fn new(n: usize) -> Self {
        Self {
            down_until: (0..n).map(|_| Mutex::new(None)).collect(),
        }
    }

    fn is_down(&self, e: usize, now: Instant) -> bool {
        self.down_until[e]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|t| t > now)
    }

    /// The first server from `start` (mod n) that is not held down; `start` itself when all are.
    fn pick(&self, start: usize) -> usize {
        let n = self.down_until.len();
        let now = Instant::now();
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&e| !self.is_down(e, now))
            .unwrap_or(start % n)
    }

    fn mark_down(&self, e: usize) {
        *self.down_until[e]
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + Self::HOLD_DOWN);
    }
}

/// One simulated node's whole join through `endpoint`: its step timings, or the step that
/// failed and why.
pub(crate) async fn one(
    endpoint: &str,
    token: &BootstrapToken,
    trust: &CaTrust,
    opts: &Options,
    i: usize,
    discovery_timeout: Duration,
) -> Result<Timings, (&'static str, String)> {
    let t0 = Instant::now();
    let discovery = Discovery::Token {
        endpoint: endpoint.to_owned(),
        token: token.clone(),
        trust: trust.clone(),
    };
    // The TLS bootstrap goes on over the connection discovery verified, through the same
    // endpoint, as through a load balancer.
    let boot = discover(
        &discovery,
        Some(token),
        Route::Endpoint,
        discovery_timeout,
        &|_| {},
    )
    .await
    .map_err(|e| ("discovery", e.to_string()))?;
    let t1 = Instant::now();
    let name = format!("bench-{}-{i}", std::process::id());
    let wait = Duration::from_secs(300);
    let issued = boot
        .request_certificate(&name, opts.key, wait)
        .await
        .map_err(|e| ("certificate", e.to_string()))?;
    let t2 = Instant::now();
    let through_endpoint = Cluster {
        server: boot.client.server().to_owned(),
        ca_pem: boot.cluster.ca_pem.clone(),
    };
    let node = prove(
        &through_endpoint,
        &issued.cert_pem,
        &issued.key_pem,
        &name,
        wait,
    )
    .await
    .map_err(|e| ("first-request", e.to_string()))?;
    let t3 = Instant::now();
    let mut cert_pem = issued.cert_pem;
    let rotated = if opts.rotate {
        let req = CertRequest {
            node_name: name.clone(),
            signer: CLIENT_SIGNER,
            dns_names: vec![],
            ip_addresses: vec![],
        };
        let renewed = request_certificate_with_key(&node, &req, opts.key, wait)
            .await
            .map_err(|e| ("rotation", e.to_string()))?;
        cert_pem = renewed.cert_pem;
        Some(t3.elapsed())
    } else {
        None
    };
    let whole = t0.elapsed();
    if let Some(dir) = &opts.cert_dir {
        keep_certificates(dir, &name, &cert_pem, &boot.cluster.ca_pem)
            .await
            .map_err(|e| (CERT_DIR, format!("writing to {}: {e}", dir.display())))?;
    }
    Ok([
        Some(t1 - t0),
        Some(t2 - t1),
        Some(t3 - t2),
        rotated,
        Some(whole),
    ])
}

/// Writes a node's certificate as `<node>.crt` in `dir`, and the CA as `ca.crt` (each node
/// replaces it atomically with the same bytes).
async fn keep_certificates(
    dir: &std::path::Path,
    node: &str,
    cert_pem: &[u8],
    ca_pem: &[u8],
) -> std::io::Result<()> {
    tokio::fs::write(dir.join(format!("{node}.crt")), cert_pem).await?;
    let ca_tmp = dir.join(format!(".ca.crt.{node}"));
    tokio::fs::write(&ca_tmp, ca_pem).await?;
    tokio::fs::rename(&ca_tmp, dir.join("ca.crt")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_server_is_skipped_until_its_hold_down_ends() {
        let h = Health::new(3);
        assert_eq!(h.pick(4), 1, "node 4 starts at server 4 mod 3");
        h.mark_down(1);
        assert_eq!(h.pick(4), 2);
        assert_eq!(h.pick(0), 0);
        h.mark_down(2);
        h.mark_down(0);
        assert_eq!(h.pick(4), 1, "all down: try the node's own");
        *h.down_until[1].lock().unwrap() = Some(Instant::now() - Duration::from_secs(1));
        assert_eq!(h.pick(0), 1, "a hold-down ends");
    }
}
