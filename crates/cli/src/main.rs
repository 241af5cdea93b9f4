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
