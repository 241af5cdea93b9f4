//! `kubeboot bench api`: the API path alone — durable creates, sequential and concurrent,
//! and (optionally) the server's memory with many objects stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;
use kubeboot_client::Client;
use serde_json::json;

use crate::stats::{Summary, rate, summarize};

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// Creates one after another.
    pub sequential: usize,
    /// Creates by `concurrency` clients at once.
    pub concurrent: usize,
    /// Number of concurrent clients.
    pub concurrency: usize,
    /// Total ConfigMaps to have stored at the end (0: no fill).
    pub fill: usize,
}

/// One measured phase.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Phase {
    /// What ran.
    pub name: String,
    /// Operations per second.
    pub ops_per_sec: f64,
    /// Latency of each operation.
    pub latency: Summary,
    /// Failed operations.
    pub errors: usize,
}

/// Runs the create phases against `client` (an admin).
pub async fn run(
    client: &Client,
    opts: &Options,
    mut after_phase: impl FnMut(&Phase),
) -> Result<Vec<Phase>> {
    let ns = format!("bench-{}", std::process::id());
    let _ = client
        .create::<serde_json::Value>("/api/v1/namespaces", &json!({"metadata": {"name": ns}}))
        .await?;
    let mut phases = Vec::new();
    if opts.sequential > 0 {
        let p = creates(client, &ns, "seq", opts.sequential, 1).await;
        after_phase(&p);
        phases.push(p);
    }
    if opts.concurrent > 0 {
        let p = creates(client, &ns, "par", opts.concurrent, opts.concurrency).await;
        after_phase(&p);
        phases.push(p);
    }
    let stored: usize = opts.sequential + opts.concurrent;
    if opts.fill > stored {
        let p = creates(client, &ns, "fill", opts.fill - stored, opts.concurrency).await;
        after_phase(&p);
        phases.push(p);
    }
    Ok(phases)
}

async fn creates(
    client: &Client,
    ns: &str,
    prefix: &str,
    count: usize,
    concurrency: usize,
) -> Phase {
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, next, errors) = (client.clone(), next.clone(), errors.clone());
        let path = format!("/api/v1/namespaces/{ns}/configmaps");
        let prefix = prefix.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return lat;
                }
                let body = json!({"metadata": {"name": format!("{prefix}-{i}")}, "data": {"index": i.to_string(), "payload": "x".repeat(64)}});
                let t = Instant::now();
                match client.create::<serde_json::Value>(&path, &body).await {
                    Ok(_) => lat.push(t.elapsed()),
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap_or_default());
    }
    let elapsed = started.elapsed();
    Phase {
        name: format!("create x{count}, {concurrency} client(s)"),
        ops_per_sec: rate(lat.len(), elapsed),
        latency: summarize(&mut lat),
        errors: errors.load(Ordering::Relaxed),
    }
}
