//! Wiring of the node commands: `join` (kubeadm join's discovery and TLS bootstrap) and
//! `node` (the kubelet's certificate side). The flags become the node crate's settings;
//! the work is done there.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use kubeboot_api::clock::parse_go_duration;
use kubeboot_api::{Clock, OsRandom, SystemClock};
use kubeboot_bootstrap::BootstrapToken;
use kubeboot_node::agent::NodeConfig;
use kubeboot_node::discovery::CaTrust;
use kubeboot_node::files::NodePaths;
use kubeboot_node::join::{Discovery, JoinSpec};
use kubeboot_pki::pin::PinSet;

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

impl NodeFiles {
    /// What `join` tells the operator to run next: the node agent on the files it wrote
    /// (through the package's unit when they are the kubelet's own places).
    fn next_step(&self) -> String {
        let mut agent = String::from("kubeboot node --rotate-certificates");
        let given = [
            ("--dir", &self.dir),
            ("--bootstrap-kubeconfig", &self.bootstrap_kubeconfig),
            ("--kubeconfig", &self.kubeconfig),
            ("--cert-dir", &self.cert_dir),
        ];
        let mut defaults = true;
        for (flag, path) in given {
            if let Some(p) = path {
                agent.push_str(&format!(" {flag} {}", p.display()));
                defaults = false;
            }
        }
        let start = if defaults {
            format!(
                "'systemctl enable --now kubeboot-node' (the kubeboot package's unit) or '{agent}'"
            )
        } else {
            format!("'{agent}'")
        };
        format!(
            "Run {start} to start the node agent, and 'kubectl get nodes' on the control plane to see this node join the cluster."
        )
    }
}

#[derive(Args)]
pub(crate) struct JoinArgs {
    /// The API server endpoint, host:port.
    endpoint: Option<String>,
    /// A kubeadm configuration file (kubeadm.k8s.io/v1beta4 JoinConfiguration); a flag
    /// given on the command line overrides it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The token for discovery and the TLS bootstrap.
    #[arg(long)]
    token: Option<String>,
    /// The token for discovery (default --token).
    #[arg(long)]
    discovery_token: Option<String>,
    /// The token for the TLS bootstrap (default --token).
    #[arg(long)]
    tls_bootstrap_token: Option<String>,
    /// A pin of the cluster CA's public key (sha256:<hex>); may be repeated or comma-separated, any one matching is enough.
    #[arg(long, value_delimiter = ',')]
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
    /// A kubelet configuration file (kubelet.config.k8s.io/v1beta1 KubeletConfiguration:
    /// rotateCertificates, serverTLSBootstrap, address, port); a flag given on the command
    /// line overrides it.
    #[arg(long)]
    config: Option<PathBuf>,
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
    /// How long a node without a certificate waits for its CSR to be issued (the kubelet waits an hour).
    #[arg(long, default_value = "1h0m0s")]
    bootstrap_timeout: String,
}

impl NodeFiles {
    fn paths(&self) -> NodePaths {
        NodePaths::resolve(
            self.dir.as_deref(),
            self.bootstrap_kubeconfig.as_deref(),
            self.kubeconfig.as_deref(),
            self.cert_dir.as_deref(),
        )
    }
}

/// The host name, lower-cased, as the kubelet names its node by default.
fn host_name() -> Result<String> {
    Ok(std::fs::read_to_string("/proc/sys/kernel/hostname")
        .context("reading the host name; give --node-name")?
        .trim()
        .to_lowercase())
}

fn say(line: &str) {
    kubeboot_api::outln!("{line}");
}

fn duration(flag: &str, value: &str) -> Result<Duration> {
    parse_go_duration(value).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

fn token(flag: &str, value: Option<&str>) -> Result<Option<BootstrapToken>> {
    value
        .map(|t| {
            t.parse::<BootstrapToken>()
                .map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
        })
        .transpose()
}

impl JoinArgs {
    fn discovery(&self) -> Result<Discovery> {
        let discovery_token = token(
            "discovery-token",
            self.discovery_token.as_deref().or(self.token.as_deref()),
        )?;
        match (&self.discovery_file, discovery_token) {
            (Some(file), _) => Ok(Discovery::File(file.clone())),
            (None, Some(token)) => {
                let endpoint = self.endpoint.clone().context(
                    "the API server endpoint (host:port) is required for token discovery",
                )?;
                if let Some(e) = kubeboot_node::discovery::endpoint_errors(&endpoint) {
                    bail!(e);
                }
                let trust = if self.discovery_token_unsafe_skip_ca_verification {
                    CaTrust::InsecureUnpinned
                } else if self.discovery_token_ca_cert_hash.is_empty() {
                    bail!(
                        "discovery.bootstrapToken.caCertHashes: Invalid value: \"\": using token-based discovery without caCertHashes can be unsafe. Pass --discovery-token-ca-cert-hash sha256:<hex> (from `kubeboot token create --print-join-command` on the control plane), or --discovery-token-unsafe-skip-ca-verification to continue"
                    );
                } else {
                    CaTrust::Pinned(
                        PinSet::parse(self.discovery_token_ca_cert_hash.iter().map(String::as_str))
                            .context("invalid discovery token CA certificate hash")?,
                    )
                };
                Ok(Discovery::Token {
                    endpoint,
                    token,
                    trust,
                })
            }
            (None, None) => {
                bail!("give --token (with --discovery-token-ca-cert-hash) or --discovery-file")
            }
        }
    }
}

pub(crate) async fn join(args: JoinArgs) -> Result<()> {
    say("[preflight] Running pre-flight checks");
    let spec = JoinSpec {
        discovery: args.discovery()?,
        tls_bootstrap_token: token(
            "tls-bootstrap-token",
            args.tls_bootstrap_token
                .as_deref()
                .or(args.token.as_deref()),
        )?,
        discovery_timeout: duration("discovery-timeout", &args.discovery_timeout)?,
        tls_bootstrap_timeout: duration("tls-bootstrap-timeout", &args.tls_bootstrap_timeout)?,
        node_name: match &args.files.node_name {
            Some(n) => n.clone(),
            None => host_name()?,
        },
        paths: args.files.paths(),
    };
    let joined = kubeboot_node::join::join(&spec, SystemClock.now(), &say).await?;
    say("");
    say("This node has joined the cluster:");
    say("* Certificate signing request was sent to apiserver and a response was received.");
    say(&format!(
        "* The node's kubeconfig is {} (as system:node:{}, served by {}).",
        spec.paths.kubeconfig.display(),
        spec.node_name,
        joined.server
    ));
    say("");
    say(&args.files.next_step());
    Ok(())
}

pub(crate) async fn node(args: NodeArgs) -> Result<()> {
    let paths = args.files.paths();
    // A node that holds a client certificate is the node it names.
    let store = paths.client_store();
    let held = store.load()?;
    let certificate = store.current_path().display().to_string();
    let given = args.files.node_name.as_deref();
    let host = match (given, &held) {
        (None, None) => host_name()?,
        _ => String::new(),
    };
    let node_name = kubeboot_node::identity::node_name(
        given,
        held.as_ref()
            .map(|p| (p.common_name.as_str(), certificate.as_str())),
        &host,
    )?;
    let cfg = NodeConfig {
        node_name,
        node_ips: args.node_ip,
        paths,
        rotate_client: args.rotate_certificates,
        rotate_server: args.rotate_server_certificates,
        address: args.address,
        port: args.port,
        csr_timeout: duration("bootstrap-timeout", &args.bootstrap_timeout)?,
    };
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let shutdown = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    kubeboot_node::agent::run(cfg, Arc::new(SystemClock), Arc::new(OsRandom), shutdown).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_names_the_agent_command_for_the_files_it_wrote() {
        let files = |dir: Option<&str>, cert_dir: Option<&str>| NodeFiles {
            dir: dir.map(PathBuf::from),
            bootstrap_kubeconfig: None,
            kubeconfig: None,
            cert_dir: cert_dir.map(PathBuf::from),
            node_name: None,
        };
        assert!(
            files(None, None)
                .next_step()
                .starts_with("Run 'systemctl enable --now kubeboot-node' (the kubeboot package's unit) or 'kubeboot node --rotate-certificates' to start")
        );
        assert!(
            files(Some("./worker-1"), None)
                .next_step()
                .starts_with("Run 'kubeboot node --rotate-certificates --dir ./worker-1' to start")
        );
        assert!(
            files(None, Some("/srv/pki"))
                .next_step()
                .contains("'kubeboot node --rotate-certificates --cert-dir /srv/pki'")
        );
    }
}
