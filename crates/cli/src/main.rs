//! The `kubeboot` binary: argument parsing and wiring, nothing else.

mod bench;
mod ca;
mod certs;
mod config;
mod control_plane;
mod controllers;
mod describe;
mod logging;
mod node;
mod token;

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "kubeboot",
    version,
    about = "Kubernetes TLS bootstrapping: control plane, node and PKI in one binary"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    logging: logging::LoggingArgs,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Run the control plane (API server and controllers) on an embedded store or etcd, initialising --data-dir on first start.
    Server(Box<ServerArgs>),
    /// Run the API server alone, with kube-apiserver's flags.
    Apiserver(ApiserverArgs),
    /// Run the controllers alone against an API server, with kube-controller-manager's flags.
    ControllerManager(ControllerManagerArgs),
    /// Write the cluster CA, serving certificate and kubeconfigs into --data-dir (offline).
    Init(InitArgs),
    /// Join this machine to a cluster: token discovery with CA pinning, then the TLS bootstrap.
    Join(node::JoinArgs),
    /// Run the node agent: client certificate bootstrap and rotation, serving certificate, Node and Lease.
    Node(node::NodeArgs),
    /// Manage bootstrap tokens, as kubeadm token does.
    Token(token::TokenArgs),
    /// Rotate the cluster CA with no node losing the control plane.
    #[command(subcommand)]
    Ca(ca::CaCommand),
    /// The whole PKI of a cluster built by hand, from one spec.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// Print a kubeconfig for a client certificate.
    Kubeconfig(certs::KubeconfigArgs),
    /// Rewrite every stored Secret with the first key of --encryption-provider-config (after a key rotation).
    RewriteSecrets(control_plane::RewriteArgs),
    /// Measure a server: node admission at scale (`bench join`), the API path (`bench
    /// api`), and the whole flows (`bench flows`).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Print the version of this build (its commit and date, the Kubernetes version it
    /// serves), as kubeadm version does.
    Version(describe::VersionArgs),
    /// Print a shell completion script: `source <(kubeboot completion bash)`.
    Completion(describe::CompletionArgs),
    /// Write the man pages of every command into a directory (packages install them).
    #[command(hide = true)]
    Man(describe::ManArgs),
}

/// Flags shared by `init` and `server`.
#[derive(Args, Clone)]
pub(crate) struct InitArgs {
    /// The control plane's data directory.
    #[arg(long, default_value = "kubeboot-data")]
    pub(crate) data_dir: PathBuf,
    /// The IP address the API server advertises to nodes.
    #[arg(long)]
    pub(crate) advertise_address: Option<IpAddr>,
    /// Extra Subject Alternative Names (IPs or DNS names) for the API server certificate.
    #[arg(long, value_delimiter = ',')]
    pub(crate) apiserver_cert_extra_sans: Vec<String>,
    /// The port to serve HTTPS on (0 picks a free port and prints it).
    #[arg(long, default_value_t = 6443)]
    pub(crate) secure_port: u16,
    /// kubeadm's `certificateValidityPeriod`, from a `--config` file.
    #[arg(skip)]
    pub(crate) certificate_validity: Option<std::time::Duration>,
    /// kubeadm's `caCertificateValidityPeriod`, from a `--config` file.
    #[arg(skip)]
    pub(crate) ca_certificate_validity: Option<std::time::Duration>,
}

/// Flags of the API server shared by `server` and `apiserver`.
#[derive(Args, Clone)]
pub(crate) struct ServingArgs {
    /// The IP address to listen on.
    #[arg(long, default_value = "0.0.0.0")]
    pub(crate) bind_address: IpAddr,
    /// Allow anonymous requests (as system:anonymous).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) anonymous_auth: bool,
    /// Anonymous requests allowed per second from one client address (0: no limit); more get 429.
    #[arg(long, default_value_t = 20.0)]
    pub(crate) anonymous_requests_per_second: f64,
    /// Anonymous requests one client address may burst above the rate.
    #[arg(long, default_value_t = 40)]
    pub(crate) anonymous_burst: u32,
    /// Read-only requests served at once (0: no limit); more get 429. Watches are not
    /// counted, and system:masters is always served.
    #[arg(long, default_value_t = 400)]
    pub(crate) max_requests_inflight: usize,
    /// Mutating requests served at once (0: no limit); more get 429.
    #[arg(long, default_value_t = 200)]
    pub(crate) max_mutating_requests_inflight: usize,
    /// Events the watch cache keeps so watches can resume from a resourceVersion.
    #[arg(long, default_value_t = 100_000)]
    pub(crate) default_watch_cache_size: usize,
    /// How long an Event is kept after it was last written.
    #[arg(long, default_value = "1h0m0s")]
    pub(crate) event_ttl: String,
    /// Encrypt Secrets at rest as this EncryptionConfiguration says.
    #[arg(long)]
    pub(crate) encryption_provider_config: Option<PathBuf>,
    /// The CIDR Services get their ClusterIPs from; the first address is the `kubernetes`
    /// Service's.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub(crate) service_cluster_ip_range: String,
    /// The ports Services of type NodePort and LoadBalancer get their NodePorts from.
    #[arg(long, default_value = "30000-32767")]
    pub(crate) service_node_port_range: String,
    #[command(flatten)]
    pub(crate) etcd: EtcdArgs,
    #[command(flatten)]
    pub(crate) audit: AuditArgs,
}

/// kube-apiserver's audit flags.
#[derive(Args, Clone)]
pub(crate) struct AuditArgs {
    /// The audit policy (audit.k8s.io/v1 Policy): which requests are recorded, at which level.
    #[arg(long)]
    pub(crate) audit_policy_file: Option<PathBuf>,
    /// Write audit events here, one JSON line each ("-": standard output).
    #[arg(long)]
    pub(crate) audit_log_path: Option<PathBuf>,
    /// Days to keep rotated audit logs (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub(crate) audit_log_maxage: u32,
    /// Rotated audit logs to keep (0: all).
    #[arg(long, default_value_t = 0)]
    pub(crate) audit_log_maxbackup: usize,
    /// Megabytes an audit log reaches before it is rotated (0: 100).
    #[arg(long, default_value_t = 0)]
    pub(crate) audit_log_maxsize: u64,
    /// When the audit log is behind: "blocking" makes requests wait, so no event is lost;
    /// "batch" drops events (and counts them).
    #[arg(long, default_value = "blocking", value_parser = kubeboot_apiserver::audit::Mode::parse)]
    pub(crate) audit_log_mode: kubeboot_apiserver::audit::Mode,
}

/// kube-apiserver's etcd flags, shared by `server`, `apiserver` and `rewrite-secrets`.
#[derive(Args, Clone)]
pub(crate) struct EtcdArgs {
    /// Store objects in these etcd members (comma-separated client URLs) instead of the embedded store.
    #[arg(long, value_delimiter = ',')]
    pub(crate) etcd_servers: Vec<String>,
    /// The CA bundle that verifies etcd's serving certificates.
    #[arg(long)]
    pub(crate) etcd_cafile: Option<PathBuf>,
    /// The client certificate presented to etcd (mTLS).
    #[arg(long, requires = "etcd_keyfile")]
    pub(crate) etcd_certfile: Option<PathBuf>,
    /// The key of --etcd-certfile.
    #[arg(long, requires = "etcd_certfile")]
    pub(crate) etcd_keyfile: Option<PathBuf>,
    /// The prefix of every key in etcd.
    #[arg(long, default_value = "/registry")]
    pub(crate) etcd_prefix: String,
    /// How often etcd's history is compacted (0 disables).
    #[arg(long, default_value = "5m")]
    pub(crate) etcd_compaction_interval: String,
}

#[derive(Args)]
pub(crate) struct ServerArgs {
    #[command(flatten)]
    init: InitArgs,
    #[command(flatten)]
    serving: ServingArgs,
    #[command(flatten)]
    signing: controllers::SigningArgs,
    #[command(flatten)]
    election: controllers::LeaderElectArgs,
    /// Join the control plane whose data dir this is: take its cluster CA (and
    /// service-account and front-proxy keys), then serve the same cluster from the same etcd.
    #[arg(long, requires = "etcd_servers")]
    join_control_plane: Option<PathBuf>,
    /// The bootstrap token made on the first start, as kubeadm init's --token (default: a
    /// random one; [a-z0-9]{6}.[a-z0-9]{16}).
    #[arg(long)]
    token: Option<String>,
    /// How long that token lives (0 never expires).
    #[arg(long, default_value = "24h0m0s")]
    token_ttl: String,
    /// A kubeadm configuration file (kubeadm.k8s.io/v1beta4 InitConfiguration and
    /// ClusterConfiguration); a flag given on the command line overrides it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The bootstrap tokens an InitConfiguration lists (when --token is not given).
    #[arg(skip)]
    config_tokens: Vec<kubeboot_apiserver::seed::InitialToken>,
}

#[derive(Args)]
struct ApiserverArgs {
    #[command(flatten)]
    serving: ServingArgs,
    /// The port to serve HTTPS on (0 picks a free port and prints it).
    #[arg(long, default_value_t = 6443)]
    secure_port: u16,
    /// The address the `kubernetes` Endpoints list for this server (default: the bind
    /// address).
    #[arg(long)]
    advertise_address: Option<IpAddr>,
    /// The serving certificate (PEM, may include intermediates).
    #[arg(long)]
    tls_cert_file: PathBuf,
    /// The serving certificate's private key (PEM).
    #[arg(long)]
    tls_private_key_file: PathBuf,
    /// Client certificates signed by a CA in this bundle authenticate as CN (user) and O (groups).
    #[arg(long)]
    client_ca_file: Option<PathBuf>,
    /// Authenticate bootstrap tokens (Secrets of type bootstrap.kubernetes.io/token in kube-system).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    enable_bootstrap_token_auth: bool,
    /// Ordered authorization modes: RBAC, Node, AlwaysAllow.
    #[arg(long, value_delimiter = ',', default_value = "Node,RBAC")]
    authorization_mode: Vec<String>,
    /// The directory of the embedded store.
    #[arg(long, default_value = "kubeboot-storage")]
    storage_dir: PathBuf,
}

#[derive(Args)]
struct ControllerManagerArgs {
    /// The kubeconfig the controllers use (kube-controller-manager's identity).
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Controllers to run: `*` is the default set (csrapproving, csrsigning, csrcleaner,
    /// nodelifecycle);
    /// bootstrapsigner and tokencleaner run only when named; `-name` disables one.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    controllers: Vec<String>,
    #[command(flatten)]
    signing: controllers::SigningArgs,
    #[command(flatten)]
    election: controllers::LeaderElectArgs,
}

/// jemalloc, not glibc's malloc: under `bench join` the server spent 15% of its time in
/// malloc and free, and with jemalloc it admits about 20% more nodes per second in less
/// memory (README, Performance).
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() {
    let (cli, unused) = config::parse_command_line(std::env::args_os().collect());
    if let Err(e) = run(cli, unused) {
        // The cause chain on one line, as kubeadm prints it; no backtrace, whatever
        // RUST_BACKTRACE says (the message is for the operator).
        let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("error: {e:#}\n"));
        std::process::exit(1);
    }
}

fn run(cli: Cli, unused: Vec<String>) -> Result<()> {
    logging::init(&cli.logging);
    for field in unused {
        tracing::warn!(%field, "the configuration file sets what kubeboot has no use for; it is ignored");
    }
    // Few blocking threads: store reads are bounded anyway, and each thread costs memory.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .max_blocking_threads(16)
        .enable_all()
        .build()?;
    match cli.command {
        Command::Init(args) => control_plane::init(&args, None).map(|_| ()),
        Command::Server(args) => runtime.block_on(control_plane::server(*args)),
        Command::Apiserver(args) => runtime.block_on(control_plane::apiserver(args)),
        Command::ControllerManager(args) => runtime.block_on(controllers::controller_manager(args)),
        Command::Token(cmd) => runtime.block_on(token::run(cmd)),
        Command::Join(args) => runtime.block_on(node::join(args)),
        Command::Node(args) => runtime.block_on(node::node(args)),
        Command::Bench(cmd) => runtime.block_on(bench::run(cmd)),
        Command::Certs(cmd) => certs::run(cmd),
        Command::Ca(cmd) => runtime.block_on(ca::run(cmd)),
        Command::RewriteSecrets(args) => runtime.block_on(control_plane::rewrite_secrets(args)),
        Command::Kubeconfig(args) => certs::kubeconfig(args),
        Command::Version(args) => describe::version(&args),
        Command::Completion(args) => {
            describe::completion(&args);
            Ok(())
        }
        Command::Man(args) => describe::man(&args),
    }
}
