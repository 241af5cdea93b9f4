//! Prometheus text-format metrics: requests by verb, resource and code with latency
//! histograms, storage commit latency, and open watches.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += secs;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i]
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count);
    }
}

/// The server's metrics.
#[derive(Default)]
pub struct Metrics {
    /// Keyed by (verb, resource, code); guarded by the lock.
    requests: Mutex<BTreeMap<(String, String, u16), Histogram>>,
    /// Storage commits; guarded by the lock.
    commits: Mutex<(Histogram, u64)>,
    /// Other renderers appended to the output (in-process controllers); guarded by the lock.
    sources: Mutex<Vec<Box<dyn Fn() -> String + Send + Sync>>>,
}

impl Metrics {
    /// Records one request.
    pub fn observe_request(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        let mut g = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        g.entry((verb.to_owned(), resource.to_owned(), code))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Records one storage commit of `writes` writes.
    pub fn observe_commit(&self, writes: usize, took: Duration) {
        let mut g = self.commits.lock().unwrap_or_else(PoisonError::into_inner);
        g.0.observe(took.as_secs_f64());
        g.1 += writes as u64;
    }

    /// Appends another component's metrics text to every render.
    pub fn add_source(&self, f: Box<dyn Fn() -> String + Send + Sync>) {
        self.sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(f);
    }

    /// Renders the Prometheus text format.
    pub fn render(&self, watchers: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests broken out by verb, resource and HTTP response code.\n# TYPE apiserver_request_total counter\n");
        let reqs = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for ((verb, resource, code), h) in &reqs {
            let _ = writeln!(
                out,
                "apiserver_request_total{{code=\"{code}\",resource=\"{resource}\",verb=\"{verb}\"}} {}",
                h.count
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency distribution in seconds by verb and resource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        let mut by_vr: BTreeMap<(String, String), Histogram> = BTreeMap::new();
        for ((verb, resource, _), h) in &reqs {
            let e = by_vr.entry((verb.clone(), resource.clone())).or_default();
            for i in 0..BUCKETS.len() {
                e.counts[i] += h.counts[i];
            }
            e.count += h.count;
            e.sum += h.sum;
        }
        for ((verb, resource), h) in &by_vr {
            h.render(
                &mut out,
                "apiserver_request_duration_seconds",
                &format!("resource=\"{resource}\",verb=\"{verb}\""),
            );
        }
        let (commits, writes) = self
            .commits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        out.push_str("# HELP kubeboot_storage_commit_duration_seconds Latency of durable storage commits (each may hold many writes).\n# TYPE kubeboot_storage_commit_duration_seconds histogram\n");
        commits.render(&mut out, "kubeboot_storage_commit_duration_seconds", "");
        let _ = writeln!(
            out,
            "# HELP kubeboot_storage_writes_total Writes committed to storage.\n# TYPE kubeboot_storage_writes_total counter\nkubeboot_storage_writes_total {writes}"
        );
        let _ = writeln!(
            out,
            "# HELP apiserver_registered_watchers Number of currently registered watchers.\n# TYPE apiserver_registered_watchers gauge\napiserver_registered_watchers {watchers}"
        );
        for source in self
            .sources
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            out.push_str(&source());
        }
        out
    }
}
