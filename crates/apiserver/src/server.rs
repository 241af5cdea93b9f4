//! Starting the API server: open the store, start the watch cache and the RBAC snapshot,
//! create the default objects, then accept TLS connections.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kubeboot_api::clock::SystemClock;
use kubeboot_pki::reload::Reloading;
use kubeboot_store::Store;
use kubeboot_store::etcd::EtcdStore;
use kubeboot_store::sqlite::SqliteStore;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::authn::bootstrap_token::BootstrapTokenAuthenticator;
use crate::authn::{Authenticator, Conn, TokenAuthenticator};
use crate::authz::{Authorizer, Mode, RbacSnapshot};
use crate::connection::{self, Protocol};
use crate::gate::Gate;
use crate::handlers::Handlers;
use crate::handlers::nonresource::{NonResource, VersionInfo};
use crate::metrics::Metrics;
pub use crate::ratelimit::RateLimit;
use crate::serving::Serving;
use crate::watch::cache::WatchCache;

/// What the server needs to start.
pub struct ServerConfig {
    /// Address to bind.
    pub bind_address: IpAddr,
    /// Port (0: pick a free one).
    pub secure_port: u16,
    /// The serving certificate, its key and the client CA bundle, reloaded when they change.
    pub tls: crate::serving::ServingFiles,
    /// Allow anonymous requests.
    pub anonymous_auth: bool,
    /// Authorization modes in order.
    pub authorization_modes: Vec<Mode>,
    /// Where the objects are stored.
    pub storage: Storage,
    /// Authenticate bootstrap tokens (`--enable-bootstrap-token-auth`).
    pub bootstrap_token_auth: bool,
    /// Events kept for watch resumption.
    pub watch_cache_size: usize,
    /// How long an Event lives after its last write (`--event-ttl`).
    pub event_ttl: std::time::Duration,
    /// Limit on anonymous requests per client address (None: unlimited).
    pub anonymous_rate_limit: Option<RateLimit>,
    /// Encryption at rest of Secrets (`--encryption-provider-config`).
    pub encryption: Option<crate::encryption::Encryption>,
    /// Limits on requests served at once (`--max-requests-inflight`,
    /// `--max-mutating-requests-inflight`).
    pub inflight: crate::inflight::InFlightLimits,
    /// Auditing (`--audit-policy-file`, `--audit-log-path`); `None`: none.
    pub audit: Option<AuditConfig>,
    /// The ranges Services are given addresses and ports from
    /// (`--service-cluster-ip-range`, `--service-node-port-range`).
    pub service_network: crate::handlers::ServiceNetwork,
    /// The address the `kubernetes` Endpoints list for this server (`--advertise-address`).
    pub advertise_address: IpAddr,
}

/// What to audit and where to write it.
pub struct AuditConfig {
    /// The policy.
    pub policy: crate::audit::Policy,
    /// The log.
    pub log: crate::audit::LogOptions,
}

/// Where the API server keeps its objects.
pub enum Storage {
    /// The embedded SQLite store in this file.
    Embedded(PathBuf),
    /// An etcd cluster, shared with other API servers.
    Etcd {
        /// How to reach it.
        options: Box<kubeboot_store::etcd::EtcdOptions>,
        /// How often history is compacted (`--etcd-compaction-interval`; zero: never).
        compaction_interval: Duration,
    },
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The TLS material is unusable.
    #[error("TLS: {0}")]
    Tls(String),
    /// The store could not be opened.
    #[error("storage: {0}")]
    Store(#[from] kubeboot_store::StoreError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The default objects could not be created.
    #[error("creating default objects: {0}")]
    Seed(String),
    /// The audit log could not be opened.
    #[error("{0}")]
    Audit(#[from] crate::audit::log::LogError),
}

/// A started server.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    app: Arc<App>,
    clock: Arc<dyn kubeboot_api::Clock>,
    accept: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Serves until the accept loop ends.
    pub async fn wait(&mut self) {
        let _ = (&mut self.accept).await;
    }

    /// Adds a source of metrics (the controllers' counters) to `/metrics`.
    pub fn add_metrics_source(&self, source: Box<dyn Fn() -> String + Send + Sync>) {
        self.app.metrics().add_source(source);
    }

    /// Makes `tokens` when the cluster has no bootstrap token yet (its first start); returns
    /// the first if they were made.
    pub async fn ensure_first_tokens(
        &self,
        tokens: &[crate::seed::InitialToken],
    ) -> Result<Option<crate::seed::InitialToken>, StartError> {
        crate::seed::first_tokens(self.app.handlers(), self.clock.now(), tokens)
            .await
            .map_err(seed_error)
    }

    /// Publishes `kube-public/cluster-info` for nodes to discover (see
    /// [`crate::seed::cluster_info`]).
    pub async fn ensure_cluster_info(
        &self,
        server_url: &str,
        ca_pem: &str,
        overwrite: bool,
    ) -> Result<(), StartError> {
        crate::seed::cluster_info(self.app.handlers(), server_url, ca_pem, overwrite)
            .await
            .map_err(seed_error)
    }

    /// Before the process exits: writes out the audit events recorded so far.
    pub async fn stop(&self) {
        if let Some(audit) = self.app.audit().cloned() {
            let flushed = tokio::task::spawn_blocking(move || audit.flush(AUDIT_FLUSH_LIMIT));
            if !matches!(flushed.await, Ok(true)) {
                tracing::warn!("the audit log could not be written out before shutdown");
            }
        }
    }
}

/// How long shutdown waits for the audit log to be written out.
const AUDIT_FLUSH_LIMIT: Duration = Duration::from_secs(10);

/// Opens the store, prepares everything and starts accepting connections.
pub async fn start(cfg: ServerConfig) -> Result<RunningServer, StartError> {
    let serving = Arc::new(crate::serving::open(&cfg.tls).map_err(StartError::Tls)?);
    let metrics = Arc::new(Metrics::default());
    let store = open_store(cfg.storage, &metrics).await?;
    let store = with_encryption(store, cfg.encryption).await?;
    let written = crate::written::Floor::default();
    let store: Arc<dyn Store> = Arc::new(crate::written::Written::new(store, written.clone()));
    let cache = WatchCache::start(store.clone(), cfg.watch_cache_size).await?;
    let authz = Arc::new(Authorizer::new(cfg.authorization_modes.clone()));
    let clock: Arc<dyn kubeboot_api::Clock> = Arc::new(SystemClock);
    let tokens = cfg.bootstrap_token_auth.then(|| {
        Arc::new(BootstrapTokenAuthenticator::new(
            store.clone(),
            cache.clone(),
            written.clone(),
            clock.clone(),
            crate::registry::by_kind(crate::registry::Kind::Secret).ns_prefix("kube-system"),
        )) as Arc<dyn TokenAuthenticator>
    });
    let audit = match cfg.audit {
        Some(a) => Some(Arc::new(crate::audit::Auditor::new(
            a.policy,
            crate::audit::AuditLog::open(a.log)?,
            clock.clone(),
        ))),
        None => None,
    };
    let authn = Authenticator::new(serving.clone(), tokens, cfg.anonymous_auth, clock.clone());
    let gate = Gate::new(
        authn,
        authz.clone(),
        cfg.anonymous_rate_limit.map(crate::ratelimit::Limiter::new),
        crate::inflight::InFlight::new(cfg.inflight),
    );
    let handlers = Arc::new(
        Handlers::new(
            store.clone(),
            cache.clone(),
            written.clone(),
            authz.clone(),
            clock.clone(),
        )
        .with_service_network(cfg.service_network),
    );
    let nonresource = NonResource::new(
        VersionInfo::default(),
        metrics.clone(),
        cache.clone(),
        store.clone(),
    );
    let app = Arc::new(App::new(
        gate,
        handlers.clone(),
        nonresource,
        metrics,
        audit,
    ));
    crate::seed::defaults(&handlers).await.map_err(seed_error)?;
    authz.set_rbac(rbac_snapshot(store.as_ref()).await?);
    spawn_rbac_refresher(cache, store, authz);
    crate::event_ttl::spawn(handlers.clone(), cfg.event_ttl);
    crate::namespace_finisher::spawn(handlers.clone());
    let addr = SocketAddr::new(cfg.bind_address, cfg.secure_port);
    let listener = listen(addr).map_err(|source| StartError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| StartError::Bind { addr, source })?;
    crate::kubernetes_service::spawn(handlers.clone(), cfg.advertise_address, addr.port());
    crate::handlers::spawn_service_repair(handlers);
    let accept = tokio::spawn(accept_loop(listener, serving, app.clone()));
    Ok(RunningServer {
        addr,
        app,
        clock,
        accept,
    })
}

/// The store the configuration names: the embedded SQLite file (its commits observed by
/// the metrics), or an etcd cluster that answers now.
async fn open_store(
    storage: Storage,
    metrics: &Arc<Metrics>,
) -> Result<Arc<dyn Store>, StartError> {
    match storage {
        Storage::Embedded(path) => {
            let m = metrics.clone();
            let observer = Arc::new(move |n: usize, d: Duration| m.observe_commit(n, d))
                as kubeboot_store::sqlite::CommitObserver;
            Ok(Arc::new(SqliteStore::open_with(
                &path,
                kubeboot_store::sqlite::DEFAULT_HISTORY,
                Some(observer),
            )?))
        }
        Storage::Etcd {
            options,
            compaction_interval,
        } => {
            let endpoints = options.endpoints.join(",");
            let etcd = EtcdStore::new(*options)?;
            etcd.check()
                .await
                .map_err(|e| StartError::Seed(format!("cannot reach etcd at {endpoints}: {e}")))?;
            if !compaction_interval.is_zero() {
                etcd.spawn_compactor(compaction_interval);
            }
            Ok(Arc::new(etcd))
        }
    }
}

/// The store, its Secrets encrypted at rest when configured. Every stored Secret must be
/// readable with the configured keys: a wrong or missing key stops the server here, never
/// later and never as plaintext.
async fn with_encryption(
    store: Arc<dyn Store>,
    encryption: Option<crate::encryption::Encryption>,
) -> Result<Arc<dyn Store>, StartError> {
    let Some(enc) = encryption else {
        return Ok(store);
    };
    let wrapped = Arc::new(crate::encryption::EncryptingStore::new(store, enc));
    wrapped
        .list("/registry/secrets/", None, None)
        .await
        .map_err(|e| StartError::Seed(format!("--encryption-provider-config: {e}")))?;
    Ok(wrapped)
}

/// A listening socket with the backlog Go's servers use (the kernel's `somaxconn` caps it),
/// not the 128 of Rust's `bind`: when hundreds of nodes connect at once a short accept queue
/// overflows, and each dropped SYN costs its client a one-second retransmit.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    const BACKLOG: u32 = 4096;
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn accept_loop(listener: TcpListener, serving: Arc<Reloading<Serving>>, app: Arc<App>) {
    let mut backoff = AcceptBackoff::default();
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(c) => {
                backoff = AcceptBackoff::default();
                c
            }
            Err(e) => {
                // Out of descriptors, most often: wait, longer each time, as Go's servers do,
                // instead of spinning and filling the log.
                let wait = backoff.next();
                tracing::warn!(error = %e, retry_in = ?wait, "accept failed");
                tokio::time::sleep(wait).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        // The serving certificate and client CA of the moment (reloaded when their files
        // change).
        let acceptor = TlsAcceptor::from(serving.get().tls.clone());
        let app = app.clone();
        tokio::spawn(async move {
            // A client that never finishes its handshake is dropped, never blocking others.
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let session = tls.get_ref().1;
            let cert = session.peer_certificates().and_then(|c| c.first());
            let conn = Conn {
                cert: app.peer_cert(cert.map(|c| c.as_ref())),
                remote: remote.ip(),
            };
            let protocol = match session.alpn_protocol() {
                Some(b"h2") => Protocol::Http2,
                _ => Protocol::Http1,
            };
            serve_connection(app, tls, conn, protocol).await;
        });
    }
}

/// The wait after a failed accept: 5 ms, doubling to at most 1 s (Go's `net/http`).
#[derive(Default)]
struct AcceptBackoff(Option<Duration>);

impl AcceptBackoff {
    fn next(&mut self) -> Duration {
        let wait = self.0.map_or(Duration::from_millis(5), |d| {
            (d * 2).min(Duration::from_secs(1))
        });
        self.0 = Some(wait);
        wait
    }
}

/// Serves one connection's requests as `conn`'s.
async fn serve_connection<I>(app: Arc<App>, io: I, conn: Conn, protocol: Protocol)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let peer = Arc::new(conn);
    connection::serve(io, protocol, move |req| {
        app.clone().handle(req, peer.clone())
    })
    .await;
}

impl RunningServer {
    /// Requests to this server from inside its process — for its own controllers — handed
    /// to its request path without TCP, TLS or HTTP encoding (`crate::in_process`), on
    /// behalf of whoever `client_cert` (DER) names, exactly as a TLS connection presenting
    /// that certificate would be (the certificate read again when its kubeconfig changes).
    /// Served on the server's runtime, where this is called. Fails, saying why, when the
    /// certificate does not authenticate now.
    pub fn in_process(
        &self,
        client_cert: Arc<Reloading<Vec<u8>>>,
    ) -> Result<crate::in_process::Serve, String> {
        self.app.check_client_cert(&client_cert.get())?;
        Ok(crate::in_process::serve(self.app.clone(), client_cert))
    }
}

async fn list_typed<T: DeserializeOwned>(
    store: &dyn Store,
    prefix: &str,
) -> Result<Vec<T>, kubeboot_store::StoreError> {
    let page = store.list(prefix, None, None).await?;
    Ok(page
        .items
        .iter()
        .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
        .collect())
}

async fn rbac_snapshot(store: &dyn Store) -> Result<RbacSnapshot, kubeboot_store::StoreError> {
    Ok(RbacSnapshot::new(
        list_typed::<ClusterRole>(store, "/registry/clusterroles/").await?,
        list_typed::<ClusterRoleBinding>(store, "/registry/clusterrolebindings/").await?,
        list_typed::<Role>(store, "/registry/roles/").await?,
        list_typed::<RoleBinding>(store, "/registry/rolebindings/").await?,
    ))
}

fn spawn_rbac_refresher(cache: Arc<WatchCache>, store: Arc<dyn Store>, authz: Arc<Authorizer>) {
    tokio::spawn(async move {
        loop {
            cache.rbac_changed.notified().await;
            match rbac_snapshot(store.as_ref()).await {
                Ok(s) => authz.set_rbac(s),
                Err(e) => tracing::error!(error = %e, "cannot refresh the RBAC snapshot"),
            }
        }
    });
}

fn seed_error(s: kubeboot_api::Status) -> StartError {
    StartError::Seed(s.message)
}
