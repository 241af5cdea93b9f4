//! `kubeboot bench`: argument parsing and output of the load generator.

mod progress;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use self::progress::Progress;

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// The API path alone: creates, gets, list pages and watched updates by many clients at
    /// once, by client certificate and by bootstrap token, with latency percentiles and the
    /// server's memory.
    Api(BenchApiArgs),
    /// Node admission at scale: many simulated nodes doing the whole join.
    Join(BenchJoinArgs),
    /// Bootstrapping flows on a server of this binary: token vs certificate requests, the
    /// bootstrap signer with many tokens, CSRs to certificates, and whole joins.
    Flows(BenchFlowsArgs),
}

#[derive(Args)]
pub(crate) struct BenchJoinArgs {
    /// The API server (`https://host:port`); with --token and --discovery-token-ca-cert-hash.
    /// Several (comma-separated or repeated) spread the nodes over the servers of one control
    /// plane, and a node whose server fails joins again through the next.
    #[arg(long, conflicts_with = "self_server", value_delimiter = ',')]
    server: Vec<String>,
    /// A bootstrap token allowed to sign and authenticate.
    #[arg(long)]
    token: Option<String>,
    /// The cluster CA's pin.
    #[arg(long)]
    discovery_token_ca_cert_hash: Vec<String>,
    /// Start a server of this binary on a temporary data dir and measure it too.
    #[arg(long = "self")]
    self_server: bool,
    /// With --self: the server stores objects in these etcd members instead of its embedded store.
    #[arg(long, requires = "self_server", value_delimiter = ',')]
    etcd_servers: Vec<String>,
    /// With --self: run the server on these CPUs only (a `taskset -c` list, such as `0-7`).
    #[arg(long, requires = "self_server")]
    server_cpus: Option<String>,
    /// Run the simulated nodes on these CPUs only (such as `8-15`), apart from the server's.
    #[arg(long)]
    load_cpus: Option<String>,
    /// Simulated nodes.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Nodes joining at once.
    #[arg(long, default_value_t = 100)]
    concurrency: usize,
    /// The nodes' key type: ecdsa-p256, rsa-2048 or ed25519.
    #[arg(long, default_value = "ecdsa-p256")]
    key: String,
    /// Renew once as the node after joining (the self node client path).
    #[arg(long)]
    rotate: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Draw every join's latency over the run (and the p50 and p99 of each second) into this SVG file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Write each admitted node's certificate (<node>.crt) and the cluster CA (ca.crt) into
    /// this directory, to check them with other tools (no key is written).
    #[arg(long)]
    cert_dir: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct BenchFlowsArgs {
    /// Requests of the token-vs-certificate comparison.
    #[arg(long, default_value_t = 20000)]
    requests: usize,
    /// Tokens for the signer measurement.
    #[arg(long, default_value_t = 1000)]
    tokens: usize,
    /// CSRs created at once.
    #[arg(long, default_value_t = 1000)]
    csrs: usize,
    /// Sequential joins (for the per-join time).
    #[arg(long, default_value_t = 20)]
    joins: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
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
    /// Creates, then gets, by --concurrency clients at once, by certificate and by token.
    #[arg(long, default_value_t = 20000)]
    concurrent: usize,
    /// List pages of 500 objects by --concurrency clients, by certificate and by token.
    #[arg(long, default_value_t = 2000)]
    lists: usize,
    /// Updates seen through a watch, by --concurrency watchers, by certificate and by token.
    #[arg(long, default_value_t = 20000)]
    watch_events: usize,
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
        BenchCommand::Flows(args) => bench_flows(args).await,
        BenchCommand::Join(args) => bench_join(args).await,
    }
}

async fn bench_api(args: BenchApiArgs) -> Result<()> {
    use kubeboot_bench::server::{SelfServer, memory_kib};
    let opts = kubeboot_bench::api::Options {
        sequential: args.sequential,
        concurrent: args.concurrent,
        lists: args.lists,
        watch_events: args.watch_events,
        concurrency: args.concurrency,
        fill: args.fill,
    };
    let mut report = serde_json::json!({"options": {"sequential": opts.sequential, "concurrent": opts.concurrent, "lists": opts.lists, "watch_events": opts.watch_events, "concurrency": opts.concurrency, "fill": opts.fill}});
    let server = if args.self_server {
        Some(SelfServer::start(&std::env::current_exe()?, &[], None).await?)
    } else {
        None
    };
    let kubeconfig = match (&server, &args.kubeconfig) {
        (Some(s), _) => s.admin_kubeconfig()?,
        (None, Some(p)) => kubeboot_pki::Kubeconfig::from_yaml(&std::fs::read_to_string(p)?)?,
        (None, None) => bail!("give --self or --kubeconfig"),
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    if let Some(s) = &server {
        let (rss, _) = memory_kib(s.pid()).unwrap_or_default();
        kubeboot_api::outln!(
            "server ready after {:.0} ms (spawn to /readyz 200); idle RSS {:.1} MiB",
            s.ready_after.as_secs_f64() * 1000.0,
            mib(rss)
        );
        report["ready_ms"] = serde_json::json!(s.ready_after.as_secs_f64() * 1000.0);
        report["idle_rss_mib"] = serde_json::json!(mib(rss));
    }
    kubeboot_api::outln!(
        "{:<52} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8}  USER",
        "PHASE",
        "OPS/S",
        "P50 MS",
        "P90 MS",
        "P99 MS",
        "MAX MS",
        "ERRORS",
        "RSS MiB"
    );
    let pid = server.as_ref().map(SelfServer::pid);
    let mut rows = Vec::new();
    let phases = kubeboot_bench::api::run(&kubeconfig, &opts, |p| {
        let rss = pid.and_then(memory_kib).map(|(r, _)| mib(r)).unwrap_or(0.0);
        kubeboot_api::outln!(
            "{:<52} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>8.1}  {}",
            p.name,
            p.ops_per_sec,
            p.latency.p50_ms,
            p.latency.p90_ms,
            p.latency.p99_ms,
            p.latency.max_ms,
            p.errors,
            rss,
            p.user
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

async fn bench_flows(args: BenchFlowsArgs) -> Result<()> {
    use kubeboot_bench::flows;
    use kubeboot_bench::server::{SelfServer, cpu_seconds, memory_kib};
    let fmt = |s: &kubeboot_bench::stats::Summary| {
        format!(
            "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        )
    };
    let server = SelfServer::start(
        &std::env::current_exe()?,
        &["--anonymous-requests-per-second", "0"],
        None,
    )
    .await?;
    let kc = server.admin_kubeconfig()?;
    kubeboot_api::outln!(
        "server ready after {:.0} ms",
        server.ready_after.as_secs_f64() * 1000.0
    );
    let [token, cert] = flows::auth(&kc, args.requests, args.concurrency).await?;
    kubeboot_api::outln!(
        "GET (same request) by bootstrap token:     {:>8.0} req/s  {}  errors {}",
        token.0,
        fmt(&token.1),
        token.2
    );
    kubeboot_api::outln!(
        "GET (same request) by client certificate:  {:>8.0} req/s  {}  errors {}",
        cert.0,
        fmt(&cert.1),
        cert.2
    );
    let (signed, resigned) = flows::signer(&kc, args.tokens).await?;
    kubeboot_api::outln!(
        "bootstrap signer: {} tokens created and all signed in {:.0} ms; re-signing all after a kubeconfig change took {:.0} ms",
        args.tokens,
        signed.as_secs_f64() * 1000.0,
        resigned.as_secs_f64() * 1000.0
    );
    let (rate, lat, errors) = flows::csrs(&kc, args.csrs, args.concurrency).await?;
    kubeboot_api::outln!(
        "CSRs: {} created at once ({} clients): {:.0} signed/s; create to issued {}  errors {}",
        args.csrs,
        args.concurrency,
        rate,
        fmt(&lat),
        errors
    );
    let (rate, lat, errors) = flows::joins(&kc, args.joins, 1).await?;
    kubeboot_api::outln!(
        "joins: {} one after another: {:.1} joins/s; one join {}  errors {}",
        args.joins,
        rate,
        fmt(&lat),
        errors
    );
    if let (Some((rss, peak)), Some(cpu)) = (memory_kib(server.pid()), cpu_seconds(server.pid())) {
        kubeboot_api::outln!(
            "server: RSS {:.1} MiB, peak {:.1} MiB, CPU {:.1} s",
            rss as f64 / 1024.0,
            peak as f64 / 1024.0,
            cpu
        );
    }
    Ok(())
}

/// The server's CPU during the run, by thread name, and per admitted node.
fn print_threads(threads: &[kubeboot_bench::threads::ThreadCpu], admitted: usize) {
    let total: f64 = threads.iter().map(|t| t.cpu_seconds).sum();
    kubeboot_api::outln!(
        "server CPU during the run: {total:.1} s = {:.2} ms per admitted node",
        total * 1000.0 / admitted.max(1) as f64
    );
    kubeboot_api::outln!(
        "{:<18} {:>7} {:>9} {:>6}",
        "THREAD",
        "COUNT",
        "CPU S",
        "SHARE"
    );
    for t in threads {
        kubeboot_api::outln!(
            "{:<18} {:>7} {:>9.2} {:>5.0}%",
            t.name,
            t.threads,
            t.cpu_seconds,
            t.share * 100.0
        );
    }
}

/// The server's part of a join run's report, printed and as JSON: its memory, its CPUs, and
/// its CPU time over the run by thread.
fn server_section(
    pid: u32,
    threads: Option<&ThreadsOverRun>,
    admitted: usize,
) -> Result<serde_json::Value> {
    use kubeboot_bench::server::{cpu_seconds, memory_kib};
    let mut json = serde_json::json!({});
    if let (Some((rss, peak)), Some(cpu)) = (memory_kib(pid), cpu_seconds(pid)) {
        kubeboot_api::outln!(
            "server: CPU {:.1} s, RSS {:.1} MiB, peak {:.1} MiB",
            cpu,
            rss as f64 / 1024.0,
            peak as f64 / 1024.0
        );
        json = serde_json::json!({"cpu_seconds": cpu, "rss_mib": rss as f64 / 1024.0, "peak_rss_mib": peak as f64 / 1024.0});
    }
    json["cpus"] = serde_json::json!(kubeboot_bench::threads::cpus_allowed(pid));
    if let Some((threads, busiest)) = threads {
        print_threads(threads, admitted);
        if let Some((name, share)) = busiest {
            kubeboot_api::outln!(
                "busiest thread: {name}, {:.0}% of the server's CPU",
                share * 100.0
            );
            json["busiest_thread"] = serde_json::json!({"name": name, "share": share});
        }
        let run_cpu: f64 = threads.iter().map(|t| t.cpu_seconds).sum();
        json["run_cpu_seconds"] = serde_json::json!(run_cpu);
        json["cpu_ms_per_node"] = serde_json::json!(run_cpu * 1000.0 / admitted.max(1) as f64);
        json["threads"] = serde_json::to_value(threads)?;
    }
    Ok(json)
}

/// What the etcd members of a self run spent on it (those reached over `http://`), printed
/// and for the JSON; `None` when they could not be read before and after.
async fn etcd_section(
    endpoints: &[String],
    before: Option<Vec<kubeboot_bench::etcd::Counters>>,
    admitted: usize,
) -> Option<serde_json::Value> {
    let before = before?;
    let after = kubeboot_bench::etcd::read_all(endpoints).await?;
    if after.len() != before.len() {
        return None;
    }
    let spent = kubeboot_bench::etcd::per_node(&before, &after, admitted);
    let calls: Vec<String> = spent
        .calls_per_node
        .iter()
        .map(|(method, n)| format!("{method} {n:.2}"))
        .collect();
    kubeboot_api::outln!(
        "etcd ({} member{}): CPU {:.2} ms per admitted node; calls per admitted node: {}",
        spent.members,
        if spent.members == 1 { "" } else { "s" },
        spent.cpu_ms_per_node,
        calls.join(", ")
    );
    serde_json::to_value(spent).ok()
}

/// The server's CPU by thread over a run, and its busiest thread with its share.
type ThreadsOverRun = (
    Vec<kubeboot_bench::threads::ThreadCpu>,
    Option<(String, f64)>,
);

/// The printed part of a join run's report: the rate, each step's latency, the errors and
/// the crypto bound.
fn print_join_report(report: &kubeboot_bench::join::Report, args: &BenchJoinArgs) {
    let fmt = |s: &kubeboot_bench::stats::Summary| {
        format!(
            "{:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        )
    };
    kubeboot_api::outln!(
        "nodes admitted: {} of {} in {:.2} s = {:.0} nodes/s (concurrency {}, {} keys{})",
        report.admitted,
        args.nodes,
        report.seconds,
        report.nodes_per_second,
        args.concurrency,
        args.key,
        if args.rotate {
            ", with one rotation each"
        } else {
            ""
        }
    );
    kubeboot_api::outln!(
        "{:<16} {:>9} {:>9} {:>9} {:>9}",
        "STEP (ms)",
        "P50",
        "P90",
        "P99",
        "MAX"
    );
    for (name, s) in &report.steps {
        kubeboot_api::outln!("{name:<16} {}", fmt(s));
    }
    kubeboot_api::outln!("{:<16} {}", "whole join", fmt(&report.join));
    if report.retried > 0 {
        kubeboot_api::outln!("retried through another server: {} nodes", report.retried);
    }
    kubeboot_api::outln!(
        "errors: {}",
        if report.errors.is_empty() {
            "none".to_owned()
        } else {
            format!("{:?}", report.errors)
        }
    );
    let c = &report.crypto;
    kubeboot_api::outln!(
        "crypto bound ({} cores): keygen {:.0}/s, CSR sign {:.0}/s, CSR verify {:.0}/s, issue {:.0}/s, TLS handshake {:.0}/s, mutual {:.0}/s per core => {:.0} nodes/s; achieved {:.0}% of it",
        c.cores,
        c.keygen_per_second,
        c.csr_sign_per_second,
        c.csr_verify_per_second,
        c.issue_per_second,
        c.tls_server_auth_per_second,
        c.tls_mutual_per_second,
        c.nodes_per_second,
        report.ratio_to_bound * 100.0
    );
}

/// Where the simulated nodes join, with which token, trusting which CA pins: the server
/// started for the run (a new token), or the `--server`s named with their token and pins.
async fn join_target(
    server: Option<&kubeboot_bench::server::SelfServer>,
    args: &BenchJoinArgs,
) -> Result<(Vec<String>, kubeboot_bootstrap::BootstrapToken, Vec<String>)> {
    Ok(match server {
        Some(s) => {
            let kc = s.admin_kubeconfig()?;
            let admin = kubeboot_client::Client::from_kubeconfig(&kc)?;
            let token = kubeboot_bench::flows::create_token(&admin).await?;
            // The run starts once a node can join with the token: the nodes' retries while
            // the bootstrap signer has not yet signed for it are not what a join costs.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
            let signed = std::slice::from_ref(&token);
            kubeboot_bench::flows::wait_signed(&admin, signed, deadline).await?;
            let ca = std::fs::read(s.dir.join("pki/ca.crt"))?;
            let pin = kubeboot_pki::pin::pem_cert_pin(&ca).context("CA pin")?;
            (
                vec![s.url.trim_start_matches("https://").to_owned()],
                token,
                vec![pin],
            )
        }
        None => {
            if args.server.is_empty() {
                bail!("give --self, or --server with --token and --discovery-token-ca-cert-hash");
            }
            let token: kubeboot_bootstrap::BootstrapToken = args
                .token
                .as_deref()
                .context("--token is required with --server")?
                .parse()?;
            if args.discovery_token_ca_cert_hash.is_empty() {
                bail!("--discovery-token-ca-cert-hash is required with --server");
            }
            (
                args.server
                    .iter()
                    .map(|s| {
                        s.trim_start_matches("https://")
                            .trim_end_matches('/')
                            .to_owned()
                    })
                    .collect(),
                token,
                args.discovery_token_ca_cert_hash.clone(),
            )
        }
    })
}

/// The server `--self` measures: this binary on a temporary data dir (or `--etcd-servers`),
/// on `--server-cpus`.
async fn self_server(args: &BenchJoinArgs) -> Result<kubeboot_bench::server::SelfServer> {
    let etcd = args.etcd_servers.join(",");
    let mut flags = vec!["--anonymous-requests-per-second", "0"];
    if !etcd.is_empty() {
        flags.extend(["--etcd-servers", &etcd]);
    }
    let exe = std::env::current_exe()?;
    kubeboot_bench::server::SelfServer::start(&exe, &flags, args.server_cpus.as_deref()).await
}

async fn bench_join(args: BenchJoinArgs) -> Result<()> {
    use kubeboot_bench::join;
    use kubeboot_bench::server::cpu_seconds;
    use kubeboot_node::discovery::CaTrust;
    use kubeboot_pki::pin::PinSet;
    let key = match args.key.as_str() {
        "ecdsa-p256" => kubeboot_pki::KeyAlgorithm::EcdsaP256,
        "rsa-2048" => kubeboot_pki::KeyAlgorithm::Rsa(2048),
        "ed25519" => kubeboot_pki::KeyAlgorithm::Ed25519,
        other => bail!("--key {other:?} is not ecdsa-p256, rsa-2048 or ed25519"),
    };
    eprintln!("measuring this machine's crypto bound for {} ...", args.key);
    let crypto =
        tokio::task::spawn_blocking(move || kubeboot_bench::bound::crypto_bound(key)).await??;
    let server = match args.self_server {
        true => Some(self_server(&args).await?),
        false => None,
    };
    let (endpoints, token, pins) = join_target(server.as_ref(), &args).await?;
    let trust = CaTrust::Pinned(PinSet::parse(pins.iter().map(String::as_str))?);
    if let Some(dir) = &args.cert_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating --cert-dir {}", dir.display()))?;
    }
    let opts = join::Options {
        nodes: args.nodes,
        concurrency: args.concurrency,
        key,
        rotate: args.rotate,
        cert_dir: args.cert_dir.clone(),
    };
    if let Some(cpus) = &args.load_cpus {
        kubeboot_bench::threads::pin_self(cpus)?;
    }
    let total = args.nodes;
    let progress = Progress::new(total);
    let threads_before = server
        .as_ref()
        .map(|s| kubeboot_bench::threads::snapshot(s.pid()));
    let etcd_before = match server {
        Some(_) => kubeboot_bench::etcd::read_all(&args.etcd_servers).await,
        None => None,
    };
    let load_before = cpu_seconds(std::process::id());
    let report = join::run(&endpoints, &token, trust, &opts, crypto, move |done| {
        progress.update(done)
    })
    .await;
    let load_cpu = cpu_seconds(std::process::id())
        .zip(load_before)
        .map(|(after, before)| after - before);
    let threads = server.as_ref().zip(threads_before).map(|(s, before)| {
        let after = kubeboot_bench::threads::snapshot(s.pid());
        (
            kubeboot_bench::threads::between(&before, &after),
            kubeboot_bench::threads::busiest(&before, &after),
        )
    });
    print_join_report(&report, &args);
    let mut json = serde_json::to_value(&report)?;
    if let Some(s) = &server {
        json["server"] = server_section(s.pid(), threads.as_ref(), report.admitted)?;
    }
    if let Some(etcd) = etcd_section(&args.etcd_servers, etcd_before, report.admitted).await {
        json["etcd"] = etcd;
    }
    json["load_cpus"] =
        serde_json::json!(kubeboot_bench::threads::cpus_allowed(std::process::id()));
    if let Some(cpu) = load_cpu {
        let per_node = cpu * 1000.0 / report.admitted.max(1) as f64;
        kubeboot_api::outln!(
            "load generator CPU during the run: {cpu:.1} s = {per_node:.2} ms per admitted node"
        );
        json["load"] = serde_json::json!({"cpu_seconds": cpu, "cpu_ms_per_node": per_node});
    }
    if let Some(out) = args.output {
        std::fs::write(&out, serde_json::to_vec_pretty(&json)?)?;
    }
    if let Some(plot) = &args.plot {
        let title = format!(
            "kubeboot bench join: {} nodes, concurrency {}, {} keys: {:.0} nodes/s",
            report.admitted, args.concurrency, args.key, report.nodes_per_second
        );
        std::fs::write(
            plot,
            kubeboot_bench::plot::latency_svg(&report.samples, &title),
        )
        .with_context(|| format!("writing {}", plot.display()))?;
        kubeboot_api::outln!("plot: {}", plot.display());
    }
    if report.admitted != total {
        bail!(
            "{} of {total} nodes were not admitted",
            total - report.admitted
        );
    }
    Ok(())
}
