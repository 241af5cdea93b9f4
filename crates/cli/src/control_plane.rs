//! Wiring of the control-plane commands: `init`, `server`, `apiserver`, `controller-manager`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use clap::Args;
use kubeboot_api::SystemClock;
use kubeboot_apiserver::authz::Mode;
use kubeboot_apiserver::datadir::{DataDir, InitOptions, server_url};
use kubeboot_apiserver::server::{RateLimit, ensure_cluster_info, ensure_first_token};
use kubeboot_apiserver::{RunningServer, ServerConfig, start};
use kubeboot_controllers::metrics::Counters;
use kubeboot_pki::{CertificateAuthority, Kubeconfig};

use crate::{ApiserverArgs, ControllerManagerArgs, InitArgs, ServingArgs};

/// kube-controller-manager's signing and approving flags.
#[derive(Args, Clone, Default)]
pub(crate) struct SigningArgs {
    /// The CA certificate that signs cluster certificates (default for `server`: <data-dir>/pki/ca.crt).
    #[arg(long)]
    pub(crate) cluster_signing_cert_file: Option<PathBuf>,
    /// The CA key (default for `server`: <data-dir>/pki/ca.key).
    #[arg(long)]
    pub(crate) cluster_signing_key_file: Option<PathBuf>,
    /// The longest validity of a signed certificate.
    #[arg(long, default_value = "8760h")]
    pub(crate) cluster_signing_duration: String,
    /// CA certificate for kubernetes.io/kube-apiserver-client-kubelet.
    #[arg(long)]
    pub(crate) cluster_signing_kubelet_client_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/kube-apiserver-client-kubelet.
    #[arg(long)]
    pub(crate) cluster_signing_kubelet_client_key_file: Option<PathBuf>,
    /// CA certificate for kubernetes.io/kubelet-serving.
    #[arg(long)]
    pub(crate) cluster_signing_kubelet_serving_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/kubelet-serving.
    #[arg(long)]
    pub(crate) cluster_signing_kubelet_serving_key_file: Option<PathBuf>,
    /// CA certificate for kubernetes.io/kube-apiserver-client.
    #[arg(long)]
    pub(crate) cluster_signing_kube_apiserver_client_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/kube-apiserver-client.
    #[arg(long)]
    pub(crate) cluster_signing_kube_apiserver_client_key_file: Option<PathBuf>,
    /// CA certificate for kubernetes.io/legacy-unknown.
    #[arg(long)]
    pub(crate) cluster_signing_legacy_unknown_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/legacy-unknown.
    #[arg(long)]
    pub(crate) cluster_signing_legacy_unknown_key_file: Option<PathBuf>,
    /// Approve kubelet-serving CSRs whose names are all addresses of the requesting node
    /// (Kubernetes never approves these by itself).
    #[arg(long)]
    pub(crate) approve_kubelet_serving: bool,
    /// Also allow DNS names matching this regular expression in kubelet serving certificates.
    #[arg(long)]
    pub(crate) kubelet_serving_allowed_dns_regex: Option<String>,
    /// Also allow IPs in these ranges (CIDRs) in kubelet serving certificates.
    #[arg(long, value_delimiter = ',')]
    pub(crate) kubelet_serving_allowed_ip_ranges: Vec<String>,
}

pub(crate) fn init(args: &InitArgs) -> Result<DataDir> {
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

fn read(p: &std::path::Path) -> Result<String> {
    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
}

fn encryption(s: &ServingArgs) -> Result<Option<kubeboot_apiserver::encryption::Encryption>> {
    s.encryption_provider_config
        .as_deref()
        .map(|p| {
            kubeboot_apiserver::encryption::Encryption::parse(&read(p)?)
                .map_err(|e| anyhow::anyhow!("--encryption-provider-config {}: {e}", p.display()))
        })
        .transpose()
}

/// `rewrite-secrets` flags.
#[derive(Args)]
pub(crate) struct RewriteArgs {
    /// The data dir of a `server` (its store is db/state.db).
    #[arg(long, conflicts_with = "storage_dir")]
    data_dir: Option<PathBuf>,
    /// The storage dir of an `apiserver`.
    #[arg(long)]
    storage_dir: Option<PathBuf>,
    /// The EncryptionConfiguration whose first key all Secrets are rewritten with.
    #[arg(long)]
    encryption_provider_config: PathBuf,
}

pub(crate) async fn rewrite_secrets(args: RewriteArgs) -> Result<()> {
    let path = match (&args.data_dir, &args.storage_dir) {
        (Some(d), _) => DataDir::new(d).store_path(),
        (None, Some(s)) => s.join("state.db"),
        (None, None) => bail!("give --data-dir or --storage-dir"),
    };
    let enc =
        kubeboot_apiserver::encryption::Encryption::parse(&read(&args.encryption_provider_config)?)
            .map_err(anyhow::Error::msg)?;
    let store: Arc<dyn kubeboot_store::Store> =
        Arc::new(kubeboot_store::sqlite::SqliteStore::open(&path)?);
    let wrapped = kubeboot_apiserver::encryption::EncryptingStore::new(store, enc);
    let n = kubeboot_apiserver::encryption::rewrite_secrets(&wrapped).await?;
    println!(
        "rewrote {n} secret(s) with the first key of {}",
        args.encryption_provider_config.display()
    );
    Ok(())
}

fn rate_limit(s: &ServingArgs) -> Option<RateLimit> {
    (s.anonymous_requests_per_second > 0.0).then_some(RateLimit {
        per_second: s.anonymous_requests_per_second,
        burst: s.anonymous_burst.max(1),
    })
}

pub(crate) async fn server(
    init_args: InitArgs,
    serving: ServingArgs,
    mut signing: SigningArgs,
) -> Result<()> {
    let dir = init(&init_args)?;
    let cfg = ServerConfig {
        bind_address: serving.bind_address,
        secure_port: init_args.secure_port,
        tls_cert_pem: read(&dir.pki("apiserver.crt"))?,
        tls_key_pem: read(&dir.pki("apiserver.key"))?,
        client_ca_pem: Some(read(&dir.pki("ca.crt"))?),
        anonymous_auth: serving.anonymous_auth,
        authorization_modes: vec![Mode::Node, Mode::Rbac],
        storage_path: dir.store_path(),
        bootstrap_token_auth: true,
        watch_cache_size: serving.default_watch_cache_size.max(1),
        anonymous_rate_limit: rate_limit(&serving),
        encryption: encryption(&serving)?,
    };
    let running = start(cfg).await.context("starting the API server")?;
    let url = server_url(
        Some(
            init_args
                .advertise_address
                .unwrap_or(local_address(serving.bind_address)),
        ),
        running.addr.port(),
    );
    dir.set_server_url(&url)?;
    let ca_pem = read(&dir.pki("ca.crt"))?;
    ensure_cluster_info(&running.app, &url, &ca_pem)
        .await
        .context("publishing cluster-info")?;
    signing
        .cluster_signing_cert_file
        .get_or_insert_with(|| dir.pki("ca.crt"));
    signing
        .cluster_signing_key_file
        .get_or_insert_with(|| dir.pki("ca.key"));
    let kc = Kubeconfig::from_yaml(&read(&dir.controller_manager_conf())?)?;
    let controllers = ["*", "bootstrapsigner", "tokencleaner"].map(String::from);
    let counters = start_controllers(&kc, &controllers, &signing)?;
    running
        .app
        .metrics
        .add_source(Box::new(move || counters.render()));

    println!("kubeboot API server listening on https://{}", running.addr);
    if let Some(token) = ensure_first_token(&running.app).await? {
        let pin =
            kubeboot_pki::pin::pem_cert_pin(ca_pem.as_bytes()).context("computing the CA pin")?;
        println!("To join a node (the token expires in 24h):");
        println!(
            "  {}",
            kubeboot_bootstrap::listing::join_command(&url, &token.expose(), &[pin]).trim_end()
        );
    }
    println!(
        "To use it:\n  export KUBECONFIG={}\n  kubectl get --raw /version",
        dir.admin_conf().display()
    );
    serve_until_signal(running).await
}

pub(crate) async fn apiserver(args: ApiserverArgs) -> Result<()> {
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
        bind_address: args.serving.bind_address,
        secure_port: args.secure_port,
        tls_cert_pem: read(&args.tls_cert_file)?,
        tls_key_pem: read(&args.tls_private_key_file)?,
        client_ca_pem: args.client_ca_file.as_deref().map(read).transpose()?,
        anonymous_auth: args.serving.anonymous_auth,
        authorization_modes: modes,
        storage_path: args.storage_dir.join("state.db"),
        bootstrap_token_auth: args.enable_bootstrap_token_auth,
        watch_cache_size: args.serving.default_watch_cache_size.max(1),
        anonymous_rate_limit: rate_limit(&args.serving),
        encryption: encryption(&args.serving)?,
    };
    let running = start(cfg).await.context("starting the API server")?;
    println!("kubeboot API server listening on https://{}", running.addr);
    serve_until_signal(running).await
}

pub(crate) async fn controller_manager(args: ControllerManagerArgs) -> Result<()> {
    let kc = Kubeconfig::from_yaml(&read(&args.kubeconfig)?)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    start_controllers(&kc, &args.controllers, &args.signing)?;
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

fn start_controllers(
    kc: &Kubeconfig,
    spec: &[String],
    signing: &SigningArgs,
) -> Result<Arc<Counters>> {
    use kubeboot_controllers::csr;
    let selected = kubeboot_controllers::selected(spec).map_err(anyhow::Error::msg)?;
    let client = kubeboot_client::Client::from_kubeconfig(kc)?;
    let clock = Arc::new(SystemClock);
    let counters = Arc::new(Counters::default());
    let csr_source = selected
        .iter()
        .any(|c| c.starts_with("csr"))
        .then(|| csr::CsrSource::start(client.clone()));
    for name in &selected {
        match *name {
            "bootstrapsigner" => {
                kubeboot_controllers::bootstrap_signer::start(client.clone(), clock.clone())
            }
            "tokencleaner" => {
                kubeboot_controllers::token_cleaner::start(client.clone(), clock.clone())
            }
            "csrcleaner" => csr::cleaner::start(
                csr_source.as_ref().expect("started for csr controllers"),
                client.clone(),
                clock.clone(),
                counters.clone(),
            ),
            "csrapproving" => {
                let serving = signing
                    .approve_kubelet_serving
                    .then(|| serving_rules(signing))
                    .transpose()?;
                csr::approver::start(
                    csr_source.as_ref().expect("started for csr controllers"),
                    client.clone(),
                    clock.clone(),
                    counters.clone(),
                    serving,
                );
            }
            "csrsigning" => {
                let cas = signer_cas(signing)?;
                if cas.is_empty() {
                    tracing::warn!(
                        "csrsigning has no CA (--cluster-signing-cert-file/--cluster-signing-key-file): it signs nothing"
                    );
                }
                let max_duration =
                    kubeboot_api::clock::parse_go_duration(&signing.cluster_signing_duration)
                        .map_err(|e| anyhow::anyhow!("--cluster-signing-duration: {e}"))?;
                csr::signer::start(
                    csr_source.as_ref().expect("started for csr controllers"),
                    client.clone(),
                    clock.clone(),
                    counters.clone(),
                    cas,
                    csr::policy::SigningPolicy { max_duration },
                );
            }
            _ => {}
        }
    }
    tracing::info!(controllers = ?selected, "controllers started");
    Ok(counters)
}

fn serving_rules(s: &SigningArgs) -> Result<kubeboot_controllers::csr::policy::ServingRules> {
    use kubeboot_controllers::csr::policy::{ServingRules, parse_cidr};
    let dns = s
        .kubelet_serving_allowed_dns_regex
        .as_deref()
        .map(|r| {
            regex_lite::Regex::new(r)
                .map_err(|e| anyhow::anyhow!("--kubelet-serving-allowed-dns-regex: {e}"))
        })
        .transpose()?;
    let ip_ranges = s
        .kubelet_serving_allowed_ip_ranges
        .iter()
        .map(|r| {
            parse_cidr(r).map_err(|e| anyhow::anyhow!("--kubelet-serving-allowed-ip-ranges: {e}"))
        })
        .collect::<Result<_>>()?;
    Ok(ServingRules { dns, ip_ranges })
}

/// The CA of each signer: its own flags if given, else the cluster signing CA. Each key
/// file is read once.
fn signer_cas(s: &SigningArgs) -> Result<HashMap<&'static str, Arc<CertificateAuthority>>> {
    use kubeboot_controllers::csr::policy::{
        KUBE_APISERVER_CLIENT, KUBELET_CLIENT, KUBELET_SERVING, LEGACY_UNKNOWN,
    };
    let mut loaded: HashMap<(PathBuf, PathBuf), Arc<CertificateAuthority>> = HashMap::new();
    let mut load = |cert: &PathBuf, key: &PathBuf| -> Result<Arc<CertificateAuthority>> {
        if let Some(ca) = loaded.get(&(cert.clone(), key.clone())) {
            return Ok(ca.clone());
        }
        let ca = CertificateAuthority::from_pem(&read(cert)?, &read(key)?).with_context(|| {
            format!(
                "loading the signing CA {} / {}",
                cert.display(),
                key.display()
            )
        })?;
        let ca = Arc::new(ca);
        loaded.insert((cert.clone(), key.clone()), ca.clone());
        Ok(ca)
    };
    let default = (&s.cluster_signing_cert_file, &s.cluster_signing_key_file);
    let mut out = HashMap::new();
    for (signer, own) in [
        (
            KUBELET_CLIENT,
            (
                &s.cluster_signing_kubelet_client_cert_file,
                &s.cluster_signing_kubelet_client_key_file,
            ),
        ),
        (
            KUBELET_SERVING,
            (
                &s.cluster_signing_kubelet_serving_cert_file,
                &s.cluster_signing_kubelet_serving_key_file,
            ),
        ),
        (
            KUBE_APISERVER_CLIENT,
            (
                &s.cluster_signing_kube_apiserver_client_cert_file,
                &s.cluster_signing_kube_apiserver_client_key_file,
            ),
        ),
        (
            LEGACY_UNKNOWN,
            (
                &s.cluster_signing_legacy_unknown_cert_file,
                &s.cluster_signing_legacy_unknown_key_file,
            ),
        ),
    ] {
        let pair = match own {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => match default {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => {
                    bail!("--cluster-signing-cert-file and --cluster-signing-key-file go together")
                }
            },
            _ => bail!("the per-signer certificate and key flags of {signer} go together"),
        };
        if let Some((c, k)) = pair {
            out.insert(signer, load(c, k)?);
        }
    }
    Ok(out)
}

/// The address kubeconfigs should use for a bind address: loopback for unspecified.
fn local_address(bind: IpAddr) -> IpAddr {
    if bind.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        bind
    }
}

async fn serve_until_signal(running: RunningServer) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = running.wait() => bail!("the API server stopped accepting connections"),
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    Ok(())
}
