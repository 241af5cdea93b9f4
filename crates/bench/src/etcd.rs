//! What a run costs the etcd members a self server stores in: their CPU
//! (`process_cpu_seconds_total`) and their gRPC calls by method (`grpc_server_handled_total`),
//! read from each member's `/metrics` before the run and after it. Members reached over
//! `http://` are read; others (TLS) are left out of the figures.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most bytes of one `/metrics` answer read (etcd's is a few hundred KB).
const MAX_METRICS_BYTES: u64 = 8 << 20;
/// How long one member may take to answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// One member's counters at a moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters {
    /// `process_cpu_seconds_total`.
    pub cpu_seconds: f64,
    /// `grpc_server_handled_total` summed over codes, by `grpc_method`.
    pub calls: BTreeMap<String, f64>,
}

/// The counters in a Prometheus text exposition.
pub fn parse(text: &str) -> Counters {
    let mut c = Counters::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        if series == "process_cpu_seconds_total" {
            c.cpu_seconds = value;
        } else if let Some(labels) = series.strip_prefix("grpc_server_handled_total{")
            && let Some(method) = label(labels, "grpc_method")
        {
            *c.calls.entry(method.to_owned()).or_default() += value;
        }
    }
    c
}

/// The value of label `name` in `a="x",b="y"}`.
fn label<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    labels.trim_end_matches('}').split(',').find_map(|kv| {
        kv.strip_prefix(name)?
            .strip_prefix("=\"")?
            .strip_suffix('"')
    })
}

/// The counters of every member reached over `http://`, `None` when one cannot be read.
pub async fn read_all(endpoints: &[String]) -> Option<Vec<Counters>> {
    let mut all = Vec::new();
    for e in endpoints.iter().flat_map(|e| e.split(',')) {
        let Some(host) = e.strip_prefix("http://") else {
            continue;
        };
        all.push(read(host.trim_end_matches('/')).await?);
    }
    (!all.is_empty()).then_some(all)
}

/// One member's counters (`host:port`), over plain HTTP.
async fn read(host: &str) -> Option<Counters> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(host).await.ok()?;
        let request = format!("GET /metrics HTTP/1.0\r\nHost: {host}\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        s.take(MAX_METRICS_BYTES)
            .read_to_end(&mut answer)
            .await
            .ok()?;
        let text = String::from_utf8_lossy(&answer);
        let (head, body) = text.split_once("\r\n\r\n")?;
        (head.split(' ').nth(1) == Some("200")).then(|| parse(body))
    };
    tokio::time::timeout(TIMEOUT, fetch).await.ok()?
}

/// What the members spent between two readings, per admitted node.
#[derive(Debug, serde::Serialize)]
pub struct Spent {
    /// The members read.
    pub members: usize,
    /// Their CPU over the run, all together.
    pub cpu_seconds: f64,
    /// That CPU in ms per admitted node.
    pub cpu_ms_per_node: f64,
    /// Their gRPC calls per admitted node, by method (those made at least once).
    pub calls_per_node: BTreeMap<String, f64>,
}

/// What the members spent between the readings `before` and `after`, per admitted node.
pub fn per_node(before: &[Counters], after: &[Counters], admitted: usize) -> Spent {
    let n = admitted.max(1) as f64;
    let cpu: f64 = after
        .iter()
        .zip(before)
        .map(|(a, b)| a.cpu_seconds - b.cpu_seconds)
        .sum();
    let mut calls: BTreeMap<String, f64> = BTreeMap::new();
    for (a, b) in after.iter().zip(before) {
        for (method, count) in &a.calls {
            let was = b.calls.get(method).copied().unwrap_or_default();
            *calls.entry(method.clone()).or_default() += (count - was) / n;
        }
    }
    calls.retain(|_, v| *v > 0.0);
    Spent {
        members: after.len(),
        cpu_seconds: cpu,
        cpu_ms_per_node: cpu * 1000.0 / n,
        calls_per_node: calls,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const METRICS: &str = r#"# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
grpc_server_handled_total{grpc_code="OK",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 300
grpc_server_handled_total{grpc_code="NotFound",grpc_method="Range",grpc_service="etcdserverpb.KV",grpc_type="unary"} 2
grpc_server_handled_total{grpc_code="OK",grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"} 4.1e+02
grpc_server_started_total{grpc_method="Txn",grpc_service="etcdserverpb.KV",grpc_type="unary"} 999
process_cpu_seconds_totalx 7
"#;

    #[test]
    fn the_counters_are_read_from_etcds_metrics() {
        let c = parse(METRICS);
        assert_eq!(c.cpu_seconds, 12.5);
        assert_eq!(c.calls.get("Range"), Some(&302.0));
        assert_eq!(c.calls.get("Txn"), Some(&410.0));
        assert_eq!(c.calls.len(), 2, "{c:?}");
        assert_eq!(parse("garbage\n{}\n"), Counters::default());
    }

    #[test]
    fn what_a_run_cost_is_per_admitted_node_over_every_member() {
        let at = |cpu: f64, range: f64, txn: f64| Counters {
            cpu_seconds: cpu,
            calls: [("Range".into(), range), ("Txn".into(), txn)].into(),
        };
        let before = [at(1.0, 10.0, 5.0), at(2.0, 0.0, 0.0)];
        let after = [at(1.5, 110.0, 405.0), at(2.5, 0.0, 0.0)];
        let v = serde_json::to_value(per_node(&before, &after, 100)).unwrap();
        assert_eq!(v["members"], 2);
        assert!((v["cpu_ms_per_node"].as_f64().unwrap() - 10.0).abs() < 1e-9);
        assert_eq!(v["calls_per_node"]["Range"], 1.0);
        assert_eq!(v["calls_per_node"]["Txn"], 4.0);
    }
}
