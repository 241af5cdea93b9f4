//! The join, written once for `kubeboot join`, the node agent's bootstrap and `bench join`:
//! discovery (kubeadm's) → the TLS bootstrap, on discovery's verified connection when it
//! can → the node's client certificate (the kubelet's CSR, waited for through outages) →
//! proof that the new identity works. Everything stays in memory until the node has
//! joined; then its files are written once.

use std::time::{Duration, SystemTime};

use kubeboot_bootstrap::BootstrapToken;
use kubeboot_client::{CertSource, Client, ClientError, Identity, Trust};
use kubeboot_pki::kubeconfig::Credential;
use kubeboot_pki::{KeyAlgorithm, Kubeconfig};
use serde_json::Value;

use crate::discovery::{
    CaOrigin, CaTrust, Cluster, DiscoveryError, cluster_of, file_discovery, token_discovery,
};
use crate::files::NodePaths;
use crate::leftovers::Before;
use crate::tls_bootstrap::{
    BootstrapError, CLIENT_SIGNER, CertRequest, Issued, Outage, is_transient,
    request_certificate_with_key,
};

/// How a node finds its cluster (kubeadm join's discovery).
#[derive(Clone, Debug)]
pub enum Discovery {
    /// Token discovery through `endpoint` (`host:port`), the CA trusted as `trust` says.
    Token {
        /// `host:port`.
        endpoint: String,
        /// The discovery token.
        token: BootstrapToken,
        /// The CA pins, or none.
        trust: CaTrust,
    },
    /// `--discovery-file`: a kubeconfig file, or an `https://` URL to one.
    File(String),
}

/// Where the TLS bootstrap goes after token discovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To the server cluster-info names (kubeadm): on discovery's connection when that is
    /// the endpoint discovery used, else a new one.
    ClusterInfo,
    /// On through the discovery endpoint, whatever cluster-info names (as through a load
    /// balancer).
    Endpoint,
}

/// Why a join failed, in words that say what to do.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    /// Discovery failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The certificate could not be obtained.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// The bootstrap token was refused.
    #[error(
        "the token was refused (401 Unauthorized): it is unknown, expired or not allowed to authenticate. Create a new one with `kubeboot token create` on the control plane"
    )]
    TokenRefused,
    /// The credentials given cannot bootstrap.
    #[error("{0}")]
    Credentials(String),
    /// A Ready node of this name is another machine.
    #[error(
        "a Node with name {0:?} and status \"Ready\" already exists in the cluster. You must delete the existing Node or change the name of this new joining Node"
    )]
    NodeExists(String),
    /// The new certificate is not the node's identity.
    #[error("the node's certificate authenticates as {who:?}, not {want}")]
    NotTheNode {
        /// Who the server took it for.
        who: String,
        /// Who it should be.
        want: String,
    },
    /// The server could not be asked (after retries until the deadline).
    #[error("{0}")]
    Api(ClientError),
    /// The new certificate could not be used.
    #[error("checking the node's kubeconfig: {0}")]
    Proof(ClientError),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The join's configuration is invalid (nothing was sent).
    #[error("{0}")]
    Invalid(String),
}

impl From<ClientError> for JoinError {
    fn from(e: ClientError) -> Self {
        match e.code() {
            Some(401) => JoinError::TokenRefused,
            _ => JoinError::Api(e),
        }
    }
}

/// A cluster found, and a client of it holding the TLS bootstrap credentials.
pub struct Bootstrap {
    /// The cluster: its server and CA bundle.
    pub cluster: Cluster,
    /// The bootstrap kubeconfig (the cluster and the bootstrap credentials).
    pub kubeconfig: Kubeconfig,
    /// A client of the cluster with those credentials.
    pub client: Client,
}

/// Discovers the cluster and readies the TLS bootstrap with `tls_bootstrap_token` (or, with
/// a discovery file, the credentials it holds).
pub async fn discover(
    discovery: &Discovery,
    tls_bootstrap_token: Option<&BootstrapToken>,
    route: Route,
    timeout: Duration,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Bootstrap, JoinError> {
    match discovery {
        Discovery::File(location) => {
            log(&format!("[discovery] Using the kubeconfig from {location}"));
            let kc = file_discovery(location).await?;
            let cluster = cluster_of(&kc, CaOrigin::of_discovery_file(location))?;
            let kubeconfig = match tls_bootstrap_token {
                Some(t) => bootstrap_kubeconfig(&cluster, t),
                None => kc,
            };
            Bootstrap::from_kubeconfig(kubeconfig, CaOrigin::of_discovery_file(location))
        }
        Discovery::Token {
            endpoint,
            token,
            trust,
        } => {
            let found = token_discovery(endpoint, token, trust, timeout, log).await?;
            let tls = tls_bootstrap_token.ok_or_else(|| {
                JoinError::Credentials(
                    "no TLS bootstrap credentials: pass --token or --tls-bootstrap-token".into(),
                )
            })?;
            let kubeconfig = bootstrap_kubeconfig(&found.cluster, tls);
            let same_server = found.client.server() == found.cluster.server.trim_end_matches('/');
            let client = if route == Route::Endpoint || same_server {
                found.client.with_token(&tls.expose())?
            } else {
                Client::from_kubeconfig(&kubeconfig)?
            };
            Ok(Bootstrap {
                cluster: found.cluster,
                kubeconfig,
                client,
            })
        }
    }
}

/// The bootstrap kubeconfig kubeadm writes: the cluster and the token.
fn bootstrap_kubeconfig(cluster: &Cluster, token: &BootstrapToken) -> Kubeconfig {
    Kubeconfig::new(
        "kubernetes",
        &cluster.server,
        &String::from_utf8_lossy(&cluster.ca_pem),
        "tls-bootstrap-token-user",
        Credential::Token(token.expose()),
    )
}

impl Bootstrap {
    /// The TLS bootstrap from a kubeconfig: its cluster and the credentials it holds.
    pub fn from_kubeconfig(kubeconfig: Kubeconfig, origin: CaOrigin) -> Result<Self, JoinError> {
        let (_, user) = kubeconfig
            .current()
            .map_err(|e| JoinError::Credentials(e.to_string()))?;
        if user.token.is_none()
            && user.client_certificate_data.is_none()
            && user.client_certificate.is_none()
        {
            return Err(JoinError::Credentials(
                "could not find authentication credentials for the TLS bootstrap process: the kubeconfig has none; pass --tls-bootstrap-token".into(),
            ));
        }
        let cluster = cluster_of(&kubeconfig, origin)?;
        let client = Client::from_kubeconfig(&kubeconfig)?;
        Ok(Self {
            cluster,
            kubeconfig,
            client,
        })
    }

    /// The node's client certificate for a new key of `alg`: a CSR as `system:node:<name>`,
    /// waited for until it is issued (through outages), refused, or `timeout` passes.
    pub async fn request_certificate(
        &self,
        node_name: &str,
        alg: KeyAlgorithm,
        timeout: Duration,
    ) -> Result<Issued, JoinError> {
        let req = CertRequest {
            node_name: node_name.to_owned(),
            signer: CLIENT_SIGNER,
            dns_names: vec![],
            ip_addresses: vec![],
        };
        request_certificate_with_key(&self.client, &req, alg, timeout)
            .await
            .map_err(|e| match e {
                BootstrapError::Api(c) => c.into(),
                other => other.into(),
            })
    }
}

/// Proves a node's new certificate: asks the server who it takes the node for, through
/// outages until `timeout`, and checks that it is `system:node:<name>`. Returns the node's
/// client.
pub async fn prove(
    cluster: &Cluster,
    cert_pem: &[u8],
    key_pem: &[u8],
    node_name: &str,
    timeout: Duration,
) -> Result<Client, JoinError> {
    let client = node_client(cluster, &CertSource::from_pem(cert_pem, key_pem)?)?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut outage = Outage::default();
    let who = loop {
        match client.username().await {
            Ok(who) => break who,
            Err(e) if is_transient(&e) && tokio::time::Instant::now() < deadline => {
                outage
                    .pause(
                        node_name,
                        &e,
                        "asking who the new certificate is through a server outage",
                    )
                    .await;
            }
            Err(e) => return Err(JoinError::Proof(e)),
        }
    };
    let want = format!("system:node:{node_name}");
    if who != want {
        return Err(JoinError::NotTheNode { who, want });
    }
    Ok(client)
}

/// A client of the cluster as the node, presenting whatever certificate `certs` holds (it
/// may be replaced while the client lives).
pub fn node_client(cluster: &Cluster, certs: &CertSource) -> Result<Client, ClientError> {
    Client::new(
        &cluster.server,
        Trust::from_pem(&cluster.ca_pem)?,
        Identity::Cert(certs.clone()),
    )
}

/// Refuses a join that would take the name of a Ready node this machine is not (kubeadm's
/// "a Node with name … and status Ready already exists" check).
pub async fn check_node_name_free(
    boot: &Client,
    node_name: &str,
    rejoining: bool,
) -> Result<(), JoinError> {
    match boot
        .get::<Value>(&format!("/api/v1/nodes/{node_name}"))
        .await
    {
        Ok(node) => {
            let ready = node
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            if ready && !rejoining {
                return Err(JoinError::NodeExists(node_name.to_owned()));
            }
            Ok(())
        }
        Err(e) if matches!(e.code(), Some(404 | 403)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// What `kubeboot join` is asked to do.
pub struct JoinSpec {
    /// How to find the cluster.
    pub discovery: Discovery,
    /// The TLS bootstrap token (`--tls-bootstrap-token`, else `--token`).
    pub tls_bootstrap_token: Option<BootstrapToken>,
    /// How long discovery keeps trying.
    pub discovery_timeout: Duration,
    /// How long to wait for the node's certificate.
    pub tls_bootstrap_timeout: Duration,
    /// The node's name.
    pub node_name: String,
    /// Where its files go.
    pub paths: NodePaths,
}

/// A node that has joined: where its kubeconfig points.
pub struct Joined {
    /// The API server the node's kubeconfig names.
    pub server: String,
}

/// `kubeboot join`: discovery, the TLS bootstrap and its proof, all in memory; then the
/// node's files, written once. A join that fails leaves no credentials: nothing is written
/// before the node is proven, and a failed write puts back what was there.
pub async fn join(
    spec: &JoinSpec,
    now: SystemTime,
    log: &(dyn Fn(&str) + Sync),
) -> Result<Joined, JoinError> {
    if let Some(e) = crate::identity::name_errors(&spec.node_name) {
        return Err(JoinError::Invalid(e));
    }
    let boot = discover(
        &spec.discovery,
        spec.tls_bootstrap_token.as_ref(),
        Route::ClusterInfo,
        spec.discovery_timeout,
        log,
    )
    .await?;
    let name = &spec.node_name;
    log(&format!(
        "[kubelet-start] Checking for an existing Node in the cluster with name {name:?} and status \"Ready\""
    ));
    check_node_name_free(&boot.client, name, spec.paths.kubeconfig.exists()).await?;
    log("[kubelet-start] Performing the TLS Bootstrap");
    let issued = boot
        .request_certificate(name, KeyAlgorithm::EcdsaP256, spec.tls_bootstrap_timeout)
        .await?;
    log(&format!(
        "[kubelet-start] Certificate signing request {} was approved and issued",
        issued.csr_name
    ));
    let client = prove(
        &boot.cluster,
        &issued.cert_pem,
        &issued.key_pem,
        name,
        spec.tls_bootstrap_timeout,
    )
    .await?;
    log(&format!(
        "[kubelet-start] The node's certificate works: the API server knows it as system:node:{name}"
    ));
    let paths = &spec.paths;
    let before = Before::note(
        &[&paths.bootstrap_kubeconfig, &paths.kubeconfig],
        &[&paths.cert_dir],
    );
    if let Err(e) = paths.write_joined(
        &boot.kubeconfig,
        &boot.cluster,
        &issued.cert_pem,
        &issued.key_pem,
        now,
    ) {
        for left in before.restore() {
            log(&format!(
                "[reset] could not put back {} as it was before this join: check it by hand",
                left.display()
            ));
        }
        return Err(e.into());
    }
    Ok(Joined {
        server: client.server().to_owned(),
    })
}
