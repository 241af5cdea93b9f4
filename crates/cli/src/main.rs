//! The `kubeboot` binary: argument parsing and wiring, nothing else.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use kubeboot_apiserver::authz::Mode;
use kubeboot_apiserver::datadir::{DataDir, InitOptions, server_url};
use kubeboot_apiserver::server::ensure_first_token;
use kubeboot_apiserver::{ServerConfig, start};

#[derive(Parser)]
#[command(
    name = "kubeboot",
    version,
    about = "Kubernetes TLS bootstrapping: control plane, node and PKI in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (API server) on an embedded store, initialising --data-dir on first start.
    Server(ServerArgs),
    /// Run the API server alone, with kube-apiserver's flags.
    Apiserver(ApiserverArgs),
    /// Write the cluster CA, serving certificate and kubeconfigs into --data-dir (offline).
    Init(InitArgs),
    /// Measure a server: `bench api` drives the API path with concurrent clients.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Durable creates, sequential and concurrent, with latency percentiles and server memory.
    Api(BenchApiArgs),
}

#[derive(Args)]
struct BenchApiArgs {
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

#[derive(Args, Clone)]
struct InitArgs {
    /// The control plane's data directory.
    #[arg(long, default_value = "kubeboot-data")]
    data_dir: PathBuf,
    /// The IP address the API server advertises to nodes.
    #[arg(long)]
    advertise_address: Option<IpAddr>,
    /// Extra Subject Alternative Names (IPs or DNS names) for the API server certificate.
    #[arg(long, value_delimiter = ',')]
    apiserver_cert_extra_sans: Vec<String>,
    /// The port to serve HTTPS on (0 picks a free port and prints it).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
}

#[derive(Args)]
struct ServerArgs {
    #[command(flatten)]
    init: InitArgs,
    /// The IP address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// Allow anonymous requests (as system:anonymous).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
    /// Events the watch cache keeps so watches can resume from a resourceVersion.
    #[arg(long, default_value_t = 100_000)]
    default_watch_cache_size: usize,
}

#[derive(Args)]
struct ApiserverArgs {
    /// The IP address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: IpAddr,
    /// The port to serve HTTPS on (0 picks a free port and prints it).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// The serving certificate (PEM, may include intermediates).
    #[arg(long)]
    tls_cert_file: PathBuf,
    /// The serving certificate's private key (PEM).
    #[arg(long)]
    tls_private_key_file: PathBuf,
    /// Client certificates signed by a CA in this bundle authenticate as CN (user) and O (groups).
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Allow anonymous requests (as system:anonymous).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    anonymous_auth: bool,
    /// Authenticate bootstrap tokens (Secrets of type bootstrap.kubernetes.io/token in kube-system).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    enable_bootstrap_token_auth: bool,
    /// Ordered authorization modes: RBAC, Node, AlwaysAllow.
    #[arg(long, value_delimiter = ',', default_value = "Node,RBAC")]
    authorization_mode: Vec<String>,
    /// The directory of the embedded store.
    #[arg(long, default_value = "kubeboot-storage")]
    storage_dir: PathBuf,
    /// Events the watch cache keeps so watches can resume from a resourceVersion.
    #[arg(long, default_value_t = 100_000)]
    default_watch_cache_size: usize,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Init(args) => init(&args).map(|_| ()),
        Command::Server(args) => runtime.block_on(server(args)),
        Command::Apiserver(args) => runtime.block_on(apiserver(args)),
        Command::Bench(BenchCommand::Api(args)) => runtime.block_on(bench_api(args)),
    }
}

fn init(args: &InitArgs) -> Result<DataDir> {
    let dir = DataDir::new(&args.data_dir);
    let opts = InitOptions {
        advertise_address: args.advertise_address,
        extra_sans: args.apiserver_cert_extra_sans.clone(),
        port: args.secure_port,
    };
    dir.init(&opts, SystemTime::now())
        .with_context(|| format!("initialising the data dir {}", args.data_dir.display()))?;
    Ok(dir)
}

async fn server(args: ServerArgs) -> Result<()> {
    let dir = init(&args.init)?;
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
    };
    let cfg = ServerConfig {
        bind_address: args.bind_address,
        secure_port: args.init.secure_port,
        tls_cert_pem: read(dir.pki("apiserver.crt"))?,
        tls_key_pem: read(dir.pki("apiserver.key"))?,
        client_ca_pem: Some(read(dir.pki("ca.crt"))?),
        anonymous_auth: args.anonymous_auth,
        authorization_modes: vec![Mode::Node, Mode::Rbac],
        storage_path: dir.store_path(),
        bootstrap_token_auth: true,
        watch_cache_size: args.default_watch_cache_size.max(1),
    };
    let running = start(cfg).await.context("starting the API server")?;
    let url = server_url(
        Some(
            args.init
                .advertise_address
                .unwrap_or(local_address(args.bind_address)),
        ),
        running.addr.port(),
    );
    dir.set_server_url(&url)?;
    println!("kubeboot API server listening on https://{}", running.addr);
    if let Some(token) = ensure_first_token(&running.app).await? {
        let ca = std::fs::read(dir.pki("ca.crt"))?;
        let pin = kubeboot_pki::pin::pem_cert_pin(&ca).context("computing the CA pin")?;
        let host = url.trim_start_matches("https://");
        println!("To join a node (the token expires in 24h):");
        println!(
            "  kubeboot join {host} --token {} --discovery-token-ca-cert-hash {pin}",
            token.expose()
        );
    }
    println!(
        "To use it:\n  export KUBECONFIG={}\n  kubectl get --raw /version",
        dir.admin_conf().display()
    );
    serve_until_signal(running).await
}

async fn apiserver(args: ApiserverArgs) -> Result<()> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let modes = args
        .authorization_mode
        .iter()
        .map(|m| Mode::parse(m).map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    if modes.is_empty() {
        bail!("--authorization-mode needs at least one mode");
    }
    std::fs::create_dir_all(&args.storage_dir)
        .with_context(|| format!("creating {}", args.storage_dir.display()))?;
    let cfg = ServerConfig {
        bind_address: args.bind_address,
        secure_port: args.secure_port,
        tls_cert_pem: read(&args.tls_cert_file)?,
        tls_key_pem: read(&args.tls_private_key_file)?,
        client_ca_pem: args.client_ca_file.as_ref().map(read).transpose()?,
        anonymous_auth: args.anonymous_auth,
        authorization_modes: modes,
        storage_path: args.storage_dir.join("state.db"),
        bootstrap_token_auth: args.enable_bootstrap_token_auth,
        watch_cache_size: args.default_watch_cache_size.max(1),
    };
    let running = start(cfg).await.context("starting the API server")?;
    println!("kubeboot API server listening on https://{}", running.addr);
    serve_until_signal(running).await
}

/// The address kubeconfigs should use for a bind address: loopback for unspecified.
fn local_address(bind: IpAddr) -> IpAddr {
    if bind.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        bind
    }
}

async fn serve_until_signal(running: kubeboot_apiserver::RunningServer) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let _keep = Arc::clone(&running.app);
    tokio::select! {
        _ = running.wait() => bail!("the API server stopped accepting connections"),
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    Ok(())
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
