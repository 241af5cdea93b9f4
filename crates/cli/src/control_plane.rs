//! Wiring of the control-plane commands: `init`, `server`, `apiserver`, `controller-manager`.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use kubeboot_api::SystemClock;
use kubeboot_apiserver::authz::Mode;
use kubeboot_apiserver::datadir::{DataDir, InitOptions, server_url};
use kubeboot_apiserver::inflight::InFlightLimits;
use kubeboot_apiserver::seed::InitialToken;
use kubeboot_apiserver::server::{AuditConfig, RateLimit, Storage};
use kubeboot_apiserver::serving::ServingFiles;
use kubeboot_apiserver::{RunningServer, ServerConfig, start};
use kubeboot_controllers::manager;
use kubeboot_controllers::metrics::Counters;
use kubeboot_pki::Kubeconfig;

use crate::controllers::{reloading_client_cert, run_controllers};
use crate::{ApiserverArgs, AuditArgs, EtcdArgs, InitArgs, ServerArgs, ServingArgs};

/// This machine's name, as leader election identities start with it.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// A hex id: of `seed` when given (stable across restarts), else random.
pub(crate) fn short_id(seed: Option<&[u8]>) -> String {
    let bytes: Vec<u8> = match seed {
        Some(s) => aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s)
            .as_ref()
            .to_vec(),
        None => kubeboot_api::random::bytes::<8>(&kubeboot_api::random::OsRandom).to_vec(),
    };
    hex::encode(&bytes[..8])
}

/// Where the API server stores objects: etcd when `--etcd-servers` is given, else the
/// embedded store at `embedded`.
fn storage(s: &EtcdArgs, embedded: PathBuf) -> Result<Storage> {
    if s.etcd_servers.is_empty() {
        return Ok(Storage::Embedded(embedded));
    }
    let compaction_interval = kubeboot_api::clock::parse_go_duration(&s.etcd_compaction_interval)
        .map_err(|e| anyhow::anyhow!("--etcd-compaction-interval: {e}"))?;
    let uses_tls = s.etcd_servers.iter().any(|e| e.starts_with("https://"))
        || s.etcd_cafile.is_some()
        || s.etcd_certfile.is_some();
    let tls = if uses_tls {
        let trust = match &s.etcd_cafile {
            Some(p) => kubeboot_client::Trust::from_pem(read(p)?.as_bytes())
                .with_context(|| format!("--etcd-cafile {}", p.display()))?,
            None => kubeboot_client::Trust::system()?,
        };
        let cert = match (&s.etcd_certfile, &s.etcd_keyfile) {
            (Some(c), Some(k)) => Some(
                kubeboot_client::CertSource::from_pem(read(c)?.as_bytes(), read(k)?.as_bytes())
                    .with_context(|| {
                        format!(
                            "--etcd-certfile {} / --etcd-keyfile {}",
                            c.display(),
                            k.display()
                        )
                    })?,
            ),
            _ => None,
        };
        Some(kubeboot_client::tls_client_config(&trust, cert)?)
    } else {
        None
    };
    let mut options = kubeboot_store::etcd::EtcdOptions::new(s.etcd_servers.clone());
    options.tls = tls;
    options.prefix = s.etcd_prefix.clone();
    if !options.prefix.starts_with('/') {
        bail!("--etcd-prefix must start with '/'");
    }
    Ok(Storage::Etcd {
        options: Box::new(options),
        compaction_interval,
    })
}

/// Initialises the data dir of `args` (what is missing of it); `service_ip` is the
/// `kubernetes` Service's address (kubeadm's default range's when `None`).
pub(crate) fn init(args: &InitArgs, service_ip: Option<std::net::IpAddr>) -> Result<DataDir> {
    let dir = DataDir::new(&args.data_dir);
    let defaults = InitOptions::default();
    let opts = InitOptions {
        advertise_address: args.advertise_address,
        extra_sans: args.apiserver_cert_extra_sans.clone(),
        service_ip: service_ip.or(defaults.service_ip),
        port: args.secure_port,
        certificate_validity: args
            .certificate_validity
            .unwrap_or(defaults.certificate_validity),
        ca_certificate_validity: args
            .ca_certificate_validity
            .unwrap_or(defaults.ca_certificate_validity),
    };
    dir.init(&opts, kubeboot_api::Clock::now(&SystemClock))
        .with_context(|| format!("initialising the data dir {}", args.data_dir.display()))?;
    Ok(dir)
}

pub(crate) fn read(p: &std::path::Path) -> Result<String> {
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
    #[arg(long, conflicts_with_all = ["storage_dir", "etcd_servers"])]
    data_dir: Option<PathBuf>,
    /// The storage dir of an `apiserver`.
    #[arg(long, conflicts_with = "etcd_servers")]
    storage_dir: Option<PathBuf>,
    /// The EncryptionConfiguration whose first key all Secrets are rewritten with.
    #[arg(long)]
    encryption_provider_config: PathBuf,
    /// Or the etcd the API servers store objects in (`--etcd-servers` and the rest).
    #[command(flatten)]
    etcd: EtcdArgs,
}

pub(crate) async fn rewrite_secrets(args: RewriteArgs) -> Result<()> {
    let path = match (&args.data_dir, &args.storage_dir) {
        (Some(d), _) => DataDir::new(d).store_path(),
        (None, Some(s)) => s.join("state.db"),
        (None, None) if !args.etcd.etcd_servers.is_empty() => PathBuf::new(),
        (None, None) => bail!("give --data-dir, --storage-dir or --etcd-servers"),
    };
    let enc =
        kubeboot_apiserver::encryption::Encryption::parse(&read(&args.encryption_provider_config)?)
            .map_err(anyhow::Error::msg)?;
    let store: Arc<dyn kubeboot_store::Store> = match storage(&args.etcd, path)? {
        Storage::Embedded(path) => Arc::new(kubeboot_store::sqlite::SqliteStore::open(&path)?),
        Storage::Etcd { options, .. } => Arc::new(kubeboot_store::etcd::EtcdStore::new(*options)?),
    };
    let wrapped = kubeboot_apiserver::encryption::EncryptingStore::new(store, enc);
    let n = kubeboot_apiserver::encryption::rewrite_secrets(&wrapped).await?;
    kubeboot_api::outln!(
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

/// The audit configuration, as kube-apiserver reads its flags: a log without a policy
/// records nothing (and says so).
fn audit(a: &AuditArgs) -> Result<Option<AuditConfig>> {
    let (Some(policy), Some(path)) = (&a.audit_policy_file, &a.audit_log_path) else {
        if a.audit_log_path.is_some() {
            tracing::warn!(
                "--audit-log-path is set but --audit-policy-file is not: nothing is audited"
            );
        }
        return Ok(None);
    };
    let text = std::fs::read_to_string(policy)
        .with_context(|| format!("reading --audit-policy-file {}", policy.display()))?;
    let policy = kubeboot_apiserver::audit::Policy::parse(&text)
        .with_context(|| format!("--audit-policy-file {}", policy.display()))?;
    Ok(Some(AuditConfig {
        policy,
        log: kubeboot_apiserver::audit::LogOptions {
            path: path.clone(),
            max_age_days: a.audit_log_maxage,
            max_backups: a.audit_log_maxbackup,
            max_size_mb: a.audit_log_maxsize,
            mode: a.audit_log_mode,
        },
    }))
}

fn inflight(s: &ServingArgs) -> InFlightLimits {
    InFlightLimits {
        read_only: s.max_requests_inflight,
        mutating: s.max_mutating_requests_inflight,
    }
}

/// The tokens a first start makes: `--token` (with `--token-ttl`), else those of the
/// configuration file, else a random one with kubeadm's defaults.
fn first_tokens(args: &ServerArgs) -> Result<Vec<InitialToken>> {
    let ttl = kubeboot_api::clock::parse_go_duration(&args.token_ttl)
        .map_err(|e| anyhow::anyhow!("--token-ttl: {e}"))?;
    let with_ttl = |mut t: InitialToken| {
        t.ttl = (!ttl.is_zero()).then_some(ttl);
        t
    };
    Ok(match &args.token {
        Some(text) => vec![with_ttl(InitialToken {
            token: text.parse().map_err(anyhow::Error::new)?,
            ..InitialToken::kubeadm_default()
        })],
        None if !args.config_tokens.is_empty() => args.config_tokens.clone(),
        None => vec![with_ttl(InitialToken::kubeadm_default())],
    })
}

pub(crate) async fn server(args: ServerArgs) -> Result<()> {
    let tokens = first_tokens(&args)?;
    let ServerArgs {
        init: init_args,
        serving,
        mut signing,
        election,
        join_control_plane,
        ..
    } = args;
    let service_network = service_network(&serving)?;
    if let Some(from) = &join_control_plane {
        let adopted = DataDir::new(&init_args.data_dir)
            .adopt_shared_pki(&DataDir::new(from))
            .with_context(|| format!("joining the control plane of {}", from.display()))?;
        for f in adopted {
            tracing::info!(file = %f.display(), "took the shared key material of the control plane");
        }
    }
    let dir = init(&init_args, service_network.cidr.at(0))?;
    let cfg = ServerConfig {
        bind_address: serving.bind_address,
        secure_port: init_args.secure_port,
        tls: ServingFiles {
            cert: dir.pki("apiserver.crt"),
            key: dir.pki("apiserver.key"),
            client_ca: Some(dir.pki("ca.crt")),
        },
        anonymous_auth: serving.anonymous_auth,
        authorization_modes: vec![Mode::Node, Mode::Rbac],
        storage: storage(&serving.etcd, dir.store_path())?,
        bootstrap_token_auth: true,
        watch_cache_size: serving.default_watch_cache_size.max(1),
        event_ttl: event_ttl(&serving)?,
        anonymous_rate_limit: rate_limit(&serving),
        encryption: encryption(&serving)?,
        inflight: inflight(&serving),
        audit: audit(&serving.audit)?,
        service_network,
        advertise_address: init_args
            .advertise_address
            .unwrap_or(local_address(serving.bind_address)),
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
    running
        .ensure_cluster_info(&url, &ca_pem, join_control_plane.is_none())
        .await
        .context("publishing cluster-info")?;
    signing
        .cluster_signing_cert_file
        .get_or_insert_with(|| dir.pki("ca.crt"));
    signing
        .cluster_signing_key_file
        .get_or_insert_with(|| dir.pki("ca.key"));
    signing
        .root_ca_file
        .get_or_insert_with(|| dir.pki("ca.crt"));
    let kc = Kubeconfig::from_yaml(&read(&dir.controller_manager_conf())?)?;
    let controllers = ["*", "bootstrapsigner", "tokencleaner"].map(String::from);
    // On the embedded store the data dir is the whole cluster and one server serves it, so
    // the identity is stable for the dir: a restarted server takes back its own Lease at
    // once. Servers sharing etcd are told apart per process, as client-go does, so that no
    // two of them (cloned machines, an old process still alive) ever hold one identity.
    let identity = if serving.etcd.etcd_servers.is_empty() {
        let data_dir = std::fs::canonicalize(&init_args.data_dir)?;
        short_id(Some(data_dir.as_os_str().as_encoded_bytes()))
    } else {
        short_id(None)
    };
    let identity = format!("{}_{identity}", hostname());
    let counters = Arc::new(Counters::default());
    // The controllers reach this server in process, as the controller-manager kubeconfig's
    // user, with no TCP, TLS or HTTP encoding between them.
    let in_process = running
        .in_process(reloading_client_cert(dir.controller_manager_conf())?)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.controller_manager_conf().display()))?;
    let controllers = run_controllers(
        &kc,
        Some(in_process),
        &controllers,
        &signing,
        election.election(identity)?,
        counters.clone(),
    )?;
    running.add_metrics_source(Box::new(move || counters.render()));

    kubeboot_api::outln!("kubeboot API server listening on https://{}", running.addr);
    if let Some(first) = running.ensure_first_tokens(&tokens).await? {
        let pin =
            kubeboot_pki::pin::pem_cert_pin(ca_pem.as_bytes()).context("computing the CA pin")?;
        let lifetime = match first.ttl {
            Some(ttl) => format!(
                "expires in {}",
                kubeboot_api::clock::human_duration(ttl.as_secs() as i64)
            ),
            None => "never expires".to_owned(),
        };
        kubeboot_api::outln!("To join a node (the token {lifetime}):");
        kubeboot_api::outln!(
            "  {}",
            kubeboot_bootstrap::listing::join_command(&url, &first.token.expose(), &[pin])
                .trim_end()
        );
    } else {
        kubeboot_api::outln!(
            "To join a node: kubeboot token create --print-join-command --kubeconfig {}",
            dir.admin_conf().display()
        );
    }
    kubeboot_api::outln!(
        "To use it:\n  export KUBECONFIG={}\n  kubectl get --raw /version",
        dir.admin_conf().display()
    );
    serve_until_signal(running, Some(controllers)).await
}

pub(crate) async fn apiserver(args: ApiserverArgs) -> Result<()> {
    let modes = Mode::parse_all(&args.authorization_mode).map_err(anyhow::Error::msg)?;
    if modes.is_empty() {
        bail!("--authorization-mode needs at least one mode");
    }
    // The store holds every Secret: its dir is private to this user, as etcd's is.
    kubeboot_pki::files::private_dir(&args.storage_dir)
        .with_context(|| format!("creating {}", args.storage_dir.display()))?;
    let cfg = ServerConfig {
        bind_address: args.serving.bind_address,
        secure_port: args.secure_port,
        tls: ServingFiles {
            cert: args.tls_cert_file.clone(),
            key: args.tls_private_key_file.clone(),
            client_ca: args.client_ca_file.clone(),
        },
        anonymous_auth: args.serving.anonymous_auth,
        authorization_modes: modes,
        storage: storage(&args.serving.etcd, args.storage_dir.join("state.db"))?,
        bootstrap_token_auth: args.enable_bootstrap_token_auth,
        watch_cache_size: args.serving.default_watch_cache_size.max(1),
        event_ttl: event_ttl(&args.serving)?,
        anonymous_rate_limit: rate_limit(&args.serving),
        encryption: encryption(&args.serving)?,
        inflight: inflight(&args.serving),
        audit: audit(&args.serving.audit)?,
        service_network: service_network(&args.serving)?,
        advertise_address: args
            .advertise_address
            .unwrap_or(local_address(args.serving.bind_address)),
    };
    let running = start(cfg).await.context("starting the API server")?;
    kubeboot_api::outln!("kubeboot API server listening on https://{}", running.addr);
    serve_until_signal(running, None).await
}

/// The address kubeconfigs should use for a bind address: loopback for unspecified.
fn local_address(bind: IpAddr) -> IpAddr {
    if bind.is_unspecified() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        bind
    }
}

async fn serve_until_signal(
    mut running: RunningServer,
    controllers: Option<manager::Running>,
) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = running.wait() => bail!("the API server stopped accepting connections"),
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    // The API server still serves while the controllers give up their Lease through it.
    if let Some(controllers) = controllers {
        controllers.stop().await;
    }
    running.stop().await;
    Ok(())
}

/// `--service-cluster-ip-range` and `--service-node-port-range`, read.
fn service_network(serving: &ServingArgs) -> Result<kubeboot_apiserver::handlers::ServiceNetwork> {
    use kubeboot_apiserver::allocator::{PortRange, ServiceCidr};
    Ok(kubeboot_apiserver::handlers::ServiceNetwork {
        cidr: ServiceCidr::parse(&serving.service_cluster_ip_range).map_err(anyhow::Error::msg)?,
        node_ports: PortRange::parse(&serving.service_node_port_range)
            .map_err(anyhow::Error::msg)?,
    })
}

/// `--event-ttl`, a positive duration.
fn event_ttl(serving: &ServingArgs) -> Result<std::time::Duration> {
    kubeboot_api::clock::parse_go_duration(&serving.event_ttl)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--event-ttl: {:?} is not a positive duration (such as 1h0m0s)",
                serving.event_ttl
            )
        })
}
