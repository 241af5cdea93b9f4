//! Wiring of the node commands: `join` (kubeadm join's discovery and TLS bootstrap) and
//! `node` (the kubelet's certificate side).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Args;
use kubeboot_api::clock::parse_go_duration;
use kubeboot_bootstrap::BootstrapToken;
use kubeboot_client::{CertSource, Client};
use kubeboot_node::agent::{NodeConfig, NodeIdentity, ensure_client_certificate, node_client};
use kubeboot_node::discovery::{CaOrigin, CaTrust, Cluster, file_discovery, token_discovery};
use kubeboot_node::leftovers::Before;
use kubeboot_pki::Kubeconfig;
use kubeboot_pki::files::{Mode, write_atomic};
use kubeboot_pki::kubeconfig::Credential;
use kubeboot_pki::pin::PinSet;
use serde_json::Value;

/// Where the node's files go.
#[derive(Args, Clone)]
pub(crate) struct NodeFiles {
    /// One folder for everything: bootstrap-kubelet.conf, kubelet.conf and pki/.
    #[arg(long)]
    pub(crate) dir: Option<PathBuf>,
    /// The bootstrap kubeconfig.
    #[arg(long)]
    pub(crate) bootstrap_kubeconfig: Option<PathBuf>,
    /// The node's kubeconfig.
    #[arg(long)]
    pub(crate) kubeconfig: Option<PathBuf>,
    /// Where certificates and keys are kept.
    #[arg(long)]
    pub(crate) cert_dir: Option<PathBuf>,
    /// The node's name (default: the host name).
    #[arg(long)]
    pub(crate) node_name: Option<String>,
}

#[derive(Args)]
pub(crate) struct JoinArgs {
    /// The API server endpoint, host:port.
    endpoint: Option<String>,
    /// The token for discovery and the TLS bootstrap.
    #[arg(long)]
    token: Option<String>,
    /// The token for discovery (default --token).
    #[arg(long)]
    discovery_token: Option<String>,
    /// The token for the TLS bootstrap (default --token).
    #[arg(long)]
    tls_bootstrap_token: Option<String>,
    /// A pin of the cluster CA's public key (sha256:<hex>); may be repeated, any one matching is enough.
    #[arg(long)]
    discovery_token_ca_cert_hash: Vec<String>,
    /// Trust the cluster on the token's signature alone, without pinning its CA.
    #[arg(long)]
    discovery_token_unsafe_skip_ca_verification: bool,
    /// A kubeconfig file or https:// URL to discover the cluster from instead of a token.
    #[arg(long)]
    discovery_file: Option<String>,
    /// How long to keep trying discovery.
    #[arg(long, default_value = "5m0s")]
    discovery_timeout: String,
    /// How long to wait for the node's certificate.
    #[arg(long, default_value = "15m0s")]
    tls_bootstrap_timeout: String,
    #[command(flatten)]
    files: NodeFiles,
}

#[derive(Args)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    files: NodeFiles,
    /// Renew the client certificate before it expires.
    #[arg(long)]
    rotate_certificates: bool,
    /// Obtain and renew a serving certificate through the kubelet-serving signer, and serve /healthz with it.
    #[arg(long)]
    rotate_server_certificates: bool,
    /// The node's IP addresses (default: the one that reaches the API server).
    #[arg(long, value_delimiter = ',')]
    node_ip: Vec<IpAddr>,
    /// The address to serve on.
    #[arg(long, default_value = "0.0.0.0")]
    address: IpAddr,
    /// The HTTPS port of the node's endpoint (0 picks a free one).
    #[arg(long, default_value_t = 10250)]
    port: u16,
}

fn node_config(files: &NodeFiles, csr_timeout: Duration) -> Result<NodeConfig> {
    let base = files.dir.clone();
    let pick = |given: &Option<PathBuf>, name: &str, default: &str| -> PathBuf {
        given.clone().unwrap_or_else(|| {
            base.as_ref()
                .map_or_else(|| PathBuf::from(default), |d| d.join(name))
        })
    };
    let node_name = match &files.node_name {
        Some(n) => n.clone(),
        None => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .context("reading the host name; give --node-name")?
            .trim()
            .to_lowercase(),
    };
    Ok(NodeConfig {
        node_name,
        node_ips: vec![],
        bootstrap_kubeconfig: pick(
            &files.bootstrap_kubeconfig,
            "bootstrap-kubelet.conf",
            "/etc/kubernetes/bootstrap-kubelet.conf",
        ),
        kubeconfig: pick(
            &files.kubeconfig,
            "kubelet.conf",
            "/etc/kubernetes/kubelet.conf",
        ),
        cert_dir: pick(&files.cert_dir, "pki", "/var/lib/kubelet/pki"),
        rotate_client: false,
        rotate_server: false,
        address: IpAddr::from([0, 0, 0, 0]),
        port: 10250,
        csr_timeout,
    })
}

fn say(line: &str) {
    println!("{line}");
}

pub(crate) async fn join(args: JoinArgs) -> Result<()> {
    let cfg = node_config(
        &args.files,
        parse_go_duration(&args.tls_bootstrap_timeout).map_err(anyhow::Error::msg)?,
    )?;
    let timeout = parse_go_duration(&args.discovery_timeout).map_err(anyhow::Error::msg)?;
    say("[preflight] Running pre-flight checks");
    let parse_token = |t: &Option<String>| -> Result<Option<BootstrapToken>> {
        t.as_deref()
            .map(|t| {
                t.parse::<BootstrapToken>()
                    .map_err(|e| anyhow::anyhow!("{e}"))
            })
            .transpose()
    };
    let discovery_token = parse_token(&args.discovery_token.clone().or(args.token.clone()))?;
    let bootstrap_token = parse_token(&args.tls_bootstrap_token.clone().or(args.token.clone()))?;
    let (cluster, file_kubeconfig, discovered) = match (&args.discovery_file, discovery_token) {
        (Some(file), _) => {
            say(&format!("[discovery] Using the kubeconfig from {file}"));
            let kc = file_discovery(file).await?;
            let origin = CaOrigin::of_discovery_file(file);
            let cluster = kubeboot_node::discovery::cluster_of(&kc.to_yaml(), origin)?;
            (cluster, Some(kc), None)
        }
        (None, Some(token)) => {
            let endpoint = args
                .endpoint
                .as_deref()
                .context("the API server endpoint (host:port) is required for token discovery")?;
            let trust = if args.discovery_token_unsafe_skip_ca_verification {
                CaTrust::InsecureUnpinned
            } else if args.discovery_token_ca_cert_hash.is_empty() {
                bail!(
                    "discovery.bootstrapToken.caCertHashes: Invalid value: \"\": using token-based discovery without caCertHashes can be unsafe. Pass --discovery-token-ca-cert-hash sha256:<hex> (from `kubeboot token create --print-join-command` on the control plane), or --discovery-token-unsafe-skip-ca-verification to continue"
                );
            } else {
                CaTrust::Pinned(
                    PinSet::parse(args.discovery_token_ca_cert_hash.iter().map(String::as_str))
                        .context("invalid discovery token CA certificate hash")?,
                )
            };
            let found = token_discovery(endpoint, &token, &trust, timeout, &say).await?;
            (found.cluster.clone(), None, Some(found))
        }
        (None, None) => {
            bail!("give --token (with --discovery-token-ca-cert-hash) or --discovery-file")
        }
    };
    let bootstrap = bootstrap_kubeconfig(&cluster, bootstrap_token.as_ref(), file_kubeconfig)?;
    let before = Before::note(
        &[&cfg.bootstrap_kubeconfig, &cfg.kubeconfig],
        &[&cfg.cert_dir],
    );
    write_atomic(
        &cfg.bootstrap_kubeconfig,
        bootstrap.to_yaml().as_bytes(),
        Mode::Private,
    )
    .with_context(|| format!("writing {}", cfg.bootstrap_kubeconfig.display()))?;
    // The TLS bootstrap goes on over discovery's verified connection when cluster-info names
    // the endpoint discovery used and the same token bootstraps.
    let reuse = match (&discovered, &bootstrap_token) {
        (Some(d), Some(t)) if d.client.server() == cluster.server.trim_end_matches('/') => {
            Some(d.client.with_token(&t.expose())?)
        }
        _ => None,
    };
    let result = bootstrap_node(&cfg, &bootstrap, reuse).await;
    if result.is_err() {
        // No node credentials are left behind by a failed join: not the bootstrap
        // kubeconfig, and not a certificate, key or kubeconfig issued before the failure;
        // a node that had joined before keeps its kubeconfig and `-current` link as they were.
        for left in before.restore() {
            say(&format!(
                "[reset] could not put back {} as it was before this join: check it by hand",
                left.display()
            ));
        }
        let _ = std::fs::remove_file(&cfg.bootstrap_kubeconfig);
    }
    let id = result?;
    say("");
    say("This node has joined the cluster:");
    say("* Certificate signing request was sent to apiserver and a response was received.");
    say(&format!(
        "* The node's kubeconfig is {} (as system:node:{}, served by {}).",
        cfg.kubeconfig.display(),
        cfg.node_name,
        id.server
    ));
    say("");
    say(&format!(
        "Run 'kubeboot node --dir {}' to start the node agent, and 'kubectl get nodes' on the control plane to see this node join the cluster.",
        args.files
            .dir
            .as_deref()
            .unwrap_or(Path::new("."))
            .display()
    ));
    Ok(())
}

async fn bootstrap_node(
    cfg: &NodeConfig,
    bootstrap: &Kubeconfig,
    connected: Option<Client>,
) -> Result<NodeIdentity> {
    say(
        "[kubelet-start] Checking for an existing Node in the cluster with name ..."
            .replace("...", &format!("{:?} and status \"Ready\"", cfg.node_name))
            .as_str(),
    );
    let boot = match connected {
        Some(c) => c,
        None => Client::from_kubeconfig(bootstrap)?,
    };
    match boot
        .get::<Value>(&format!("/api/v1/nodes/{}", cfg.node_name))
        .await
    {
        Ok(node) => {
            let ready = node
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if ready && !cfg.kubeconfig.exists() {
                bail!(
                    "a Node with name {:?} and status \"Ready\" already exists in the cluster. You must delete the existing Node or change the name of this new joining Node",
                    cfg.node_name
                );
            }
        }
        Err(e) if matches!(e.code(), Some(404 | 403)) => {}
        Err(e) if e.code() == Some(401) => bail!(
            "the token was refused (401 Unauthorized): it is unknown, expired or not allowed to authenticate. Create a new one with `kubeboot token create` on the control plane"
        ),
        Err(e) => return Err(e.into()),
    }
    say("[kubelet-start] Writing the bootstrap kubeconfig and performing the TLS Bootstrap");
    let id = ensure_client_certificate(cfg, Some(&boot), SystemTime::now(), &say).await.map_err(|e| match e {
        kubeboot_node::agent::AgentError::Bootstrap(kubeboot_node::tls_bootstrap::BootstrapError::Api(c)) if c.code() == Some(401) => {
            anyhow::anyhow!("the token was refused (401 Unauthorized): it is unknown, expired or not allowed to authenticate. Create a new one with `kubeboot token create` on the control plane")
        }
        other => other.into(),
    })?;
    // Prove the new kubeconfig works: ask the server who we are.
    let certs = CertSource::from_pem(&id.pair.pem, &id.pair.pem)?;
    let client = node_client(&id, &certs)?;
    let who = client
        .username()
        .await
        .context("checking the node's kubeconfig")?;
    if who != format!("system:node:{}", cfg.node_name) {
        bail!(
            "the node's certificate authenticates as {who:?}, not system:node:{}",
            cfg.node_name
        );
    }
    say(&format!(
        "[kubelet-start] The node's certificate works: the API server knows it as {who}"
    ));
    Ok(id)
}

fn bootstrap_kubeconfig(
    cluster: &Cluster,
    token: Option<&BootstrapToken>,
    file: Option<Kubeconfig>,
) -> Result<Kubeconfig> {
    match (token, file) {
        (Some(t), _) => Ok(Kubeconfig::new(
            "kubernetes",
            &cluster.server,
            &String::from_utf8_lossy(&cluster.ca_pem),
            "tls-bootstrap-token-user",
            Credential::Token(t.expose()),
        )),
        (None, Some(kc)) => {
            let (_, user) = kc.current()?;
            if user.token.is_none()
                && user.client_certificate_data.is_none()
                && user.client_certificate.is_none()
            {
                bail!(
                    "could not find authentication credentials for the TLS bootstrap process: the discovery file has none; pass --tls-bootstrap-token"
                );
            }
            Ok(kc)
        }
        (None, None) => {
            bail!("no TLS bootstrap credentials: pass --token or --tls-bootstrap-token")
        }
    }
}

pub(crate) async fn node(args: NodeArgs) -> Result<()> {
    let mut cfg = node_config(&args.files, Duration::from_secs(15 * 60))?;
    // A node that holds a client certificate is the node it names.
    let store = kubeboot_node::cert_store::CertStore::new(&cfg.cert_dir, "kubelet-client");
    if let Some(pair) = store.load()? {
        let path = store.current_path().display().to_string();
        cfg.node_name = kubeboot_node::identity::node_name(
            args.files.node_name.as_deref(),
            Some((&pair.common_name, &path)),
            &cfg.node_name,
        )?;
    }
    cfg.rotate_client = args.rotate_certificates;
    cfg.rotate_server = args.rotate_server_certificates;
    cfg.node_ips = args.node_ip;
    cfg.address = args.address;
    cfg.port = args.port;
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    kubeboot_node::agent::run(cfg, shutdown).await?;
    Ok(())
}
