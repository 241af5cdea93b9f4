//! The node agent (the kubelet's certificate side): makes sure the node has a client
//! certificate (bootstrapping one if not), registers its Node, keeps its Lease, rotates its
//! certificates, and serves `/healthz` with its serving certificate.

mod ca_bundle;
mod certificates;
mod healthz;
mod node_status;
mod skew;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubeboot_api::{Clock, Random};
use kubeboot_client::{CertSource, Client, ClientError, Identity, RotatingTrust, Trust};
use kubeboot_pki::KeyAlgorithm;

use crate::cert_store::StoredPair;
use crate::discovery::{CaOrigin, Cluster, cluster_of};
use crate::files::{NodePaths, read_kubeconfig};
use crate::join::{Bootstrap, JoinError};
use crate::rotation::Stuck;
use certificates::Timing;
use node_status::NodeStatus;

/// A client as the node (`certs`), trusting `trust` as it changes.
fn agent_client(
    server: &str,
    trust: &RotatingTrust,
    certs: &CertSource,
) -> Result<Client, ClientError> {
    Client::new(
        server,
        Trust::Rotating(trust.clone()),
        Identity::Cert(certs.clone()),
    )
}

/// The agent's settings (the kubelet's flags).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// `--node-name`.
    pub node_name: String,
    /// `--node-ip`.
    pub node_ips: Vec<IpAddr>,
    /// `--bootstrap-kubeconfig`, `--kubeconfig`, `--cert-dir`.
    pub paths: NodePaths,
    /// `--rotate-certificates`.
    pub rotate_client: bool,
    /// `--rotate-server-certificates`.
    pub rotate_server: bool,
    /// `--address`.
    pub address: IpAddr,
    /// `--port`.
    pub port: u16,
    /// How long to wait for a CSR to be issued (the kubelet's bootstrap waits an hour).
    pub csr_timeout: Duration,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The certificate could not be obtained.
    #[error(transparent)]
    Join(#[from] JoinError),
    /// Nothing can authenticate this node.
    #[error("{0}")]
    NoCredentials(String),
    /// A client was unusable.
    #[error("{0}")]
    Config(String),
}

/// The node's identity: its cluster and current client certificate.
pub struct NodeIdentity {
    /// The API server and CA bundle.
    pub cluster: Cluster,
    /// The current certificate and key.
    pub pair: StoredPair,
}

/// Makes sure the node has an unexpired client certificate, bootstrapping one with the
/// bootstrap kubeconfig when it has none, and writes `--kubeconfig` pointing at it.
pub async fn ensure_client_certificate(
    cfg: &NodeConfig,
    now: SystemTime,
    log: &(dyn Fn(&str) + Sync),
) -> Result<NodeIdentity, AgentError> {
    let paths = &cfg.paths;
    let store = paths.client_store();
    let held = store.load()?;
    let bootstrap_exists = paths.bootstrap_kubeconfig.exists();
    if let Some(pair) = held.clone().filter(|p| p.not_after > now) {
        let source = match paths.kubeconfig.exists() || !bootstrap_exists {
            true => &paths.kubeconfig,
            false => &paths.bootstrap_kubeconfig,
        };
        let cluster =
            cluster_of(&read_kubeconfig(source)?, CaOrigin::Local).map_err(JoinError::from)?;
        return Ok(NodeIdentity { cluster, pair });
    }
    if !bootstrap_exists {
        let why = held.map_or(Stuck::Missing, |p| Stuck::Expired(p.not_after));
        return Err(AgentError::NoCredentials(
            why.explain(&store.current_path(), &paths.bootstrap_kubeconfig),
        ));
    }
    log("[kubelet-start] Performing the TLS Bootstrap with the bootstrap kubeconfig");
    let boot = Bootstrap::from_kubeconfig(
        read_kubeconfig(&paths.bootstrap_kubeconfig)?,
        CaOrigin::Local,
    )?;
    let issued = boot
        .request_certificate(&cfg.node_name, KeyAlgorithm::EcdsaP256, cfg.csr_timeout)
        .await?;
    log(&format!(
        "[kubelet-start] Certificate signing request {} was approved and issued",
        issued.csr_name
    ));
    let pair =
        paths.write_client_certificate(&boot.cluster, &issued.cert_pem, &issued.key_pem, now)?;
    Ok(NodeIdentity {
        cluster: boot.cluster,
        pair,
    })
}

/// Runs the agent on `clock` and `random` until `shutdown` resolves — at any point: while
/// the TLS bootstrap waits for approval, or registration fails and is retried, as well as
/// once it runs. A registered node is marked NotReady as it stops.
pub async fn run(
    cfg: NodeConfig,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let timing = Timing { clock, random };
    let (id, certs, status, trust) = tokio::select! {
        started = start(&cfg, &timing) => started?,
        () = &mut shutdown => {
            tracing::info!(node = %cfg.node_name, "stopped before the node was registered");
            return Ok(());
        }
    };
    let serving = CertSource::empty();
    let renewals = ca_bundle::Renewals::default();
    let mut tasks = tokio::task::JoinSet::new();
    if cfg.rotate_server {
        let listener =
            tokio::net::TcpListener::bind(SocketAddr::new(cfg.address, cfg.port)).await?;
        let addr = listener.local_addr()?;
        kubeboot_api::outln!("kubeboot node serving on https://{addr}");
        tasks.spawn(healthz::serve_healthz(listener, serving.clone()));
        tasks.spawn(certificates::rotate_serving(
            cfg.clone(),
            status.client.clone(),
            serving.clone(),
            (status.ips.clone(), renewals.serving.clone()),
            timing.clone(),
        ));
    }
    tasks.spawn(status.clone().heartbeat());
    tasks.spawn(ca_bundle::follow(
        id.cluster.clone(),
        cfg.paths.clone(),
        trust.clone(),
        status.client.clone(),
        renewals.clone(),
    ));
    if cfg.rotate_client {
        tasks.spawn(certificates::rotate_client(
            cfg.clone(),
            certificates::Held {
                cluster: id.cluster,
                trust,
                certs,
                pair: id.pair,
            },
            renewals.client.clone(),
            timing,
        ));
    }
    shutdown.await;
    // Every task is stopped at its next wait; the certificate stores change only by atomic
    // renames, so they are left whole whatever a task was doing.
    tasks.shutdown().await;
    let _ = status.post(false).await;
    tracing::info!(node = %cfg.node_name, "stopped; the node is marked NotReady");
    Ok(())
}

/// The node's identity (bootstrapped if need be), its client (trusting the cluster's
/// bundle of the moment), its addresses, and the Node registered — first, since the
/// serving certificate's names are checked against it.
async fn start(
    cfg: &NodeConfig,
    timing: &Timing,
) -> Result<(NodeIdentity, CertSource, NodeStatus, RotatingTrust), AgentError> {
    let log = |m: &str| tracing::info!("{m}");
    let mut id = ensure_client_certificate(cfg, timing.clock.now(), &log).await?;
    if let Some(cluster) = ca_bundle::adopt_published(&id.cluster, &cfg.paths).await {
        id.cluster = cluster;
    }
    let certs = CertSource::from_pem(&id.pair.pem, &id.pair.pem)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let trust = RotatingTrust::from_pem(&id.cluster.ca_pem)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let client = agent_client(&id.cluster.server, &trust, &certs)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    skew::warn_on_clock_skew(&client, timing.clock.now()).await;
    let ips = if cfg.node_ips.is_empty() {
        node_status::outbound_ip(&id.cluster.server)
            .into_iter()
            .collect()
    } else {
        cfg.node_ips.clone()
    };
    let status = NodeStatus {
        client,
        name: cfg.node_name.clone(),
        ips,
        port: cfg.port,
        clock: timing.clock.clone(),
    };
    status.register().await;
    Ok((id, certs, status, trust))
}
