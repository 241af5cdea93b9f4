//! `kubeboot bench`: argument parsing and output of the load generator.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Durable creates, sequential and concurrent, with latency percentiles and server memory.
    Api(BenchApiArgs),
}

#[derive(Args)]
pub(crate) struct BenchApiArgs {
    /// Start a server of this binary on a temporary data dir and measure it too.
    #[arg(long = "self", conflicts_with = "kubeconfig")]
    self_server: bool,
    /// The kubeconfig of an admin of the server to measure.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Creates one after another.
    #[arg(long, default_value_t = 2000)]
    sequential: usize,
    /// Creates by --concurrency clients at once.
    #[arg(long, default_value_t = 20000)]
    concurrent: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Total ConfigMaps stored at the end (to measure memory with many objects).
    #[arg(long, default_value_t = 0)]
    fill: usize,
    /// Write the results as JSON to this file.
    #[arg(long)]
    output: Option<PathBuf>,
}

pub(crate) async fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Api(args) => bench_api(args).await,
    }
}

async fn bench_api(args: BenchApiArgs) -> Result<()> {
    use kubeboot_bench::server::{SelfServer, memory_kib};
    let opts = kubeboot_bench::api::Options {
        sequential: args.sequential,
        concurrent: args.concurrent,
        concurrency: args.concurrency,
        fill: args.fill,
    };
    let mut report = serde_json::json!({"options": {"sequential": opts.sequential, "concurrent": opts.concurrent, "concurrency": opts.concurrency, "fill": opts.fill}});
    let server = if args.self_server {
        Some(SelfServer::start(&std::env::current_exe()?, &[]).await?)
    } else {
        None
    };
    let kubeconfig = match (&server, &args.kubeconfig) {
        (Some(s), _) => s.admin_kubeconfig()?,
        (None, Some(p)) => kubeboot_pki::Kubeconfig::from_yaml(&std::fs::read_to_string(p)?)?,
        (None, None) => bail!("give --self or --kubeconfig"),
    };
    let client = kubeboot_client::Client::from_kubeconfig(&kubeconfig)?;
    let mib = |kib: u64| kib as f64 / 1024.0;
    if let Some(s) = &server {
        let (rss, _) = memory_kib(s.pid()).unwrap_or_default();
        println!(
            "server ready after {:.0} ms (spawn to /readyz 200); idle RSS {:.1} MiB",
            s.ready_after.as_secs_f64() * 1000.0,
            mib(rss)
        );
        report["ready_ms"] = serde_json::json!(s.ready_after.as_secs_f64() * 1000.0);
        report["idle_rss_mib"] = serde_json::json!(mib(rss));
    }
    println!(
        "{:<36} {:>10} {:>9} {:>9} {:>9} {:>9} {:>7} {:>10}",
        "PHASE", "OPS/S", "P50 MS", "P90 MS", "P99 MS", "MAX MS", "ERRORS", "RSS MiB"
    );
    let pid = server.as_ref().map(SelfServer::pid);
    let mut rows = Vec::new();
    let phases = kubeboot_bench::api::run(&client, &opts, |p| {
        let rss = pid.and_then(memory_kib).map(|(r, _)| mib(r)).unwrap_or(0.0);
        println!(
            "{:<36} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7} {:>10.1}",
            p.name,
            p.ops_per_sec,
            p.latency.p50_ms,
            p.latency.p90_ms,
            p.latency.p99_ms,
            p.latency.max_ms,
            p.errors,
            rss
        );
        rows.push(serde_json::json!({"phase": p, "rss_mib_after": rss}));
    })
    .await?;
    let _ = phases;
    report["phases"] = serde_json::Value::Array(rows);
    if let Some(pid) = pid
        && let Some((rss, peak)) = memory_kib(pid)
    {
        report["final_rss_mib"] = serde_json::json!(mib(rss));
        report["peak_rss_mib"] = serde_json::json!(mib(peak));
    }
    if let Some(out) = args.output {
        std::fs::write(&out, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}
