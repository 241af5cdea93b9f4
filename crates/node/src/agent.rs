//! The node agent (the kubelet's certificate side): makes sure the node has a client
//! certificate (bootstrapping one if not), registers its Node, keeps its Lease, rotates its
//! certificates, and serves `/healthz` with its serving certificate.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubeboot_api::clock::format_rfc3339;
use kubeboot_client::{CertSource, Client, Identity, Trust};
use kubeboot_pki::Kubeconfig;
use kubeboot_pki::files::{Mode, write_atomic};
use kubeboot_pki::kubeconfig::{AuthInfo, Cluster, Context, NamedCluster, NamedContext, NamedUser};
use serde_json::{Value, json};

use crate::cert_store::{CertStore, StoredPair};
use crate::rotation::{deadline, random_jitter, retry_after};
use crate::tls_bootstrap::{
    BootstrapError, CLIENT_SIGNER, CertRequest, SERVING_SIGNER, request_certificate,
};

/// The agent's settings (the kubelet's flags).
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// `--node-name`.
    pub node_name: String,
    /// `--node-ip`.
    pub node_ips: Vec<IpAddr>,
    /// `--bootstrap-kubeconfig`.
    pub bootstrap_kubeconfig: PathBuf,
    /// `--kubeconfig`.
    pub kubeconfig: PathBuf,
    /// `--cert-dir`.
    pub cert_dir: PathBuf,
    /// `--rotate-certificates`.
    pub rotate_client: bool,
    /// `--rotate-server-certificates`.
    pub rotate_server: bool,
    /// `--address`.
    pub address: IpAddr,
    /// `--port`.
    pub port: u16,
    /// How long to wait for a CSR to be issued.
    pub csr_timeout: Duration,
}

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The certificate could not be obtained.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// A kubeconfig or client was unusable.
    #[error("{0}")]
    Config(String),
}

fn io(e: impl std::fmt::Display) -> AgentError {
    AgentError::Io(e.to_string())
}

/// Where the node's API server is and its CA, from a kubeconfig's current cluster.
fn cluster_of(kc: &Kubeconfig) -> Result<(String, Vec<u8>), AgentError> {
    let (cluster, _) = kc
        .current()
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let ca = crate::discovery::cluster_of(&kc.to_yaml(), crate::discovery::CaOrigin::Local)
        .map(|c| c.ca_pem)
        .or_else(|_| -> Result<Vec<u8>, AgentError> {
            use base64::Engine;
            match (
                &cluster.certificate_authority_data,
                &cluster.certificate_authority,
            ) {
                (Some(d), _) => base64::engine::general_purpose::STANDARD
                    .decode(d.trim())
                    .map_err(io),
                (None, Some(p)) => std::fs::read(p).map_err(io),
                _ => Err(AgentError::Config("the kubeconfig has no CA".into())),
            }
        })?;
    Ok((cluster.server.clone(), ca))
}

fn read_kubeconfig(path: &std::path::Path) -> Result<Kubeconfig, AgentError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| AgentError::Io(format!("{}: {e}", path.display())))?;
    Kubeconfig::from_yaml(&text).map_err(|e| AgentError::Config(format!("{}: {e}", path.display())))
}

/// The node's identity: its API server, CA, and current client certificate.
pub struct NodeIdentity {
    /// `https://host:port`.
    pub server: String,
    /// The CA bundle.
    pub ca_pem: Vec<u8>,
    /// The current certificate and key.
    pub pair: StoredPair,
}

/// Makes sure the node has an unexpired client certificate, bootstrapping one with the
/// bootstrap kubeconfig when it has none, and writes `--kubeconfig` pointing at it.
/// `bootstrap_client`, when given, is the bootstrap kubeconfig's identity already connected
/// (join's discovery client carrying the token), used instead of a new one.
pub async fn ensure_client_certificate(
    cfg: &NodeConfig,
    bootstrap_client: Option<&Client>,
    now: SystemTime,
    log: &(dyn Fn(&str) + Sync),
) -> Result<NodeIdentity, AgentError> {
    let store = CertStore::new(&cfg.cert_dir, "kubelet-client");
    let existing = store.load().map_err(io)?.filter(|p| p.not_after > now);
    let source = if cfg.kubeconfig.exists() && existing.is_some() {
        &cfg.kubeconfig
    } else {
        &cfg.bootstrap_kubeconfig
    };
    let (server, ca_pem) = cluster_of(&read_kubeconfig(source)?)?;
    if let Some(pair) = existing {
        return Ok(NodeIdentity {
            server,
            ca_pem,
            pair,
        });
    }
    log("[kubelet-start] Waiting for the kubelet to perform the TLS Bootstrap");
    let boot = match bootstrap_client {
        Some(c) => c.clone(),
        None => Client::from_kubeconfig(&read_kubeconfig(&cfg.bootstrap_kubeconfig)?)
            .map_err(|e| AgentError::Config(e.to_string()))?,
    };
    let req = CertRequest {
        node_name: cfg.node_name.clone(),
        signer: CLIENT_SIGNER,
        dns_names: vec![],
        ip_addresses: vec![],
    };
    let issued = request_certificate(&boot, &req, cfg.csr_timeout).await?;
    log(&format!(
        "[kubelet-start] Certificate signing request {} was approved and issued",
        issued.csr_name
    ));
    store
        .store(&issued.cert_pem, &issued.key_pem, now)
        .map_err(io)?;
    write_node_kubeconfig(cfg, &server, &ca_pem)?;
    let pair = store
        .load()
        .map_err(io)?
        .ok_or_else(|| AgentError::Io("the stored certificate cannot be read back".into()))?;
    Ok(NodeIdentity {
        server,
        ca_pem,
        pair,
    })
}

/// Writes `--kubeconfig` as the kubelet does: pointing at `kubelet-client-current.pem`.
fn write_node_kubeconfig(cfg: &NodeConfig, server: &str, ca_pem: &[u8]) -> Result<(), AgentError> {
    use base64::Engine;
    let current = CertStore::new(&cfg.cert_dir, "kubelet-client").current_path();
    let current = std::path::absolute(&current)
        .unwrap_or(current)
        .display()
        .to_string();
    let kc = Kubeconfig {
        api_version: "v1".into(),
        kind: "Config".into(),
        clusters: vec![NamedCluster {
            name: "default-cluster".into(),
            cluster: Cluster {
                server: server.to_owned(),
                certificate_authority_data: Some(
                    base64::engine::general_purpose::STANDARD.encode(ca_pem),
                ),
                ..Default::default()
            },
        }],
        contexts: vec![NamedContext {
            name: "default-context".into(),
            context: Context {
                cluster: "default-cluster".into(),
                user: "default-auth".into(),
                namespace: Some("default".into()),
            },
        }],
        current_context: "default-context".into(),
        users: vec![NamedUser {
            name: "default-auth".into(),
            user: AuthInfo {
                client_certificate: Some(current.clone()),
                client_key: Some(current),
                ..Default::default()
            },
        }],
    };
    write_atomic(&cfg.kubeconfig, kc.to_yaml().as_bytes(), Mode::Private).map_err(io)
}

/// A client of the API server as the node, presenting whatever certificate `certs` holds.
pub fn node_client(id: &NodeIdentity, certs: &CertSource) -> Result<Client, AgentError> {
    let trust = Trust::from_pem(&id.ca_pem).map_err(|e| AgentError::Config(e.to_string()))?;
    Client::new(&id.server, trust, Identity::Cert(certs.clone()))
        .map_err(|e| AgentError::Config(e.to_string()))
}

/// Runs the agent until `shutdown` resolves — at any point: while the TLS bootstrap waits
/// for approval, or registration fails and is retried, as well as once it runs.
pub async fn run(
    cfg: NodeConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let mut shutdown = std::pin::pin!(shutdown);
    let (id, certs, client, ips) = tokio::select! {
        started = start(&cfg) => started?,
        () = &mut shutdown => {
            tracing::info!(node = %cfg.node_name, "stopped before the node was registered");
            return Ok(());
        }
    };
    let serving = CertSource::empty();
    let mut tasks = Vec::new();
    if cfg.rotate_server {
        let listener = tokio::net::TcpListener::bind(SocketAddr::new(cfg.address, cfg.port))
            .await
            .map_err(io)?;
        let addr = listener.local_addr().map_err(io)?;
        println!("kubeboot node serving on https://{addr}");
        tasks.push(tokio::spawn(serve_healthz(listener, serving.clone())));
        tasks.push(tokio::spawn(rotate_serving(
            cfg.clone(),
            client.clone(),
            serving.clone(),
            ips.clone(),
        )));
    }
    tasks.push(tokio::spawn(heartbeat(
        client.clone(),
        cfg.node_name.clone(),
        ips.clone(),
        cfg.port,
    )));
    if cfg.rotate_client {
        tasks.push(tokio::spawn(rotate_client(cfg.clone(), id, certs.clone())));
    }
    shutdown.await;
    for t in &tasks {
        t.abort();
    }
    let _ = patch_status(&client, &cfg.node_name, &ips, cfg.port, false).await;
    tracing::info!(node = %cfg.node_name, "stopped; the node is marked NotReady");
    Ok(())
}

/// The node's identity (bootstrapped if need be), its client, its addresses, and the Node
/// registered — first, since the serving certificate's names are checked against it.
async fn start(
    cfg: &NodeConfig,
) -> Result<(NodeIdentity, CertSource, Client, Vec<IpAddr>), AgentError> {
    let log = |m: &str| tracing::info!("{m}");
    let id = ensure_client_certificate(cfg, None, SystemTime::now(), &log).await?;
    let certs = CertSource::from_pem(&id.pair.pem, &id.pair.pem)
        .map_err(|e| AgentError::Config(e.to_string()))?;
    let client = node_client(&id, &certs)?;
    warn_on_clock_skew(&client).await;
    let ips = if cfg.node_ips.is_empty() {
        outbound_ip(&id.server).into_iter().collect()
    } else {
        cfg.node_ips.clone()
    };
    register(&client, cfg, &ips).await;
    Ok((id, certs, client, ips))
}

fn node_object(name: &str, ips: &[IpAddr], port: u16, ready: bool) -> Value {
    let now = format_rfc3339(SystemTime::now());
    let mut addresses: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"type": "InternalIP", "address": ip.to_string()}))
        .collect();
    addresses.push(json!({"type": "Hostname", "address": name}));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch}},
        "status": {
            "addresses": addresses,
            "conditions": [ready_condition(ready, &now)],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": kernel_version(), "osImage": "kubeboot node",
                "containerRuntimeVersion": "none://", "kubeletVersion": concat!("v1.33.0-kubeboot.", env!("CARGO_PKG_VERSION")),
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": arch}
        }
    })
}

fn ready_condition(ready: bool, now: &str) -> Value {
    if ready {
        json!({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubeboot node agent is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now})
    } else {
        json!({"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "kubeboot node agent stopped", "lastHeartbeatTime": now, "lastTransitionTime": now})
    }
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

async fn register(client: &Client, cfg: &NodeConfig, ips: &[IpAddr]) {
    let path = format!("/api/v1/nodes/{}", cfg.node_name);
    for attempt in 1..=u32::MAX {
        let result = match client.get::<Value>(&path).await {
            Ok(_) => patch_status(client, &cfg.node_name, ips, cfg.port, true).await,
            Err(e) if e.code() == Some(404) => match client
                .create::<Value>(
                    "/api/v1/nodes",
                    &node_object(&cfg.node_name, ips, cfg.port, true),
                )
                .await
            {
                Ok(_) => patch_status(client, &cfg.node_name, ips, cfg.port, true).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                tracing::info!(node = %cfg.node_name, "registered the node");
                return;
            }
            Err(e) => {
                tracing::warn!(node = %cfg.node_name, error = %e, "registering the node failed; retrying");
                tokio::time::sleep(retry_after(attempt)).await;
            }
        }
    }
}

async fn patch_status(
    client: &Client,
    name: &str,
    ips: &[IpAddr],
    port: u16,
    ready: bool,
) -> Result<(), kubeboot_client::ClientError> {
    let status = node_object(name, ips, port, ready)["status"].clone();
    client
        .merge_patch::<Value>(
            &format!("/api/v1/nodes/{name}/status"),
            &json!({"status": status}),
        )
        .await
        .map(|_| ())
}

async fn heartbeat(client: Client, name: String, ips: Vec<IpAddr>, port: u16) {
    let lease = format!("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}");
    loop {
        let now = micro_time(SystemTime::now());
        let renewed = match client.merge_patch::<Value>(&lease, &json!({"spec": {"renewTime": now, "holderIdentity": name}})).await {
            Err(e) if e.code() == Some(404) => client
                .create::<Value>(
                    "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
                    &json!({"metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}}),
                )
                .await
                .map(|_| ()),
            other => other.map(|_| ()),
        };
        if let Err(e) = renewed {
            tracing::warn!(node = %name, error = %e, "renewing the node lease failed");
        }
        if let Err(e) = patch_status(&client, &name, &ips, port, true).await {
            tracing::warn!(node = %name, error = %e, "updating the node status failed");
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

fn micro_time(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let base = format_rfc3339(t);
    format!("{}.{:06}Z", base.trim_end_matches('Z'), d.subsec_micros())
}

/// Renews the client certificate at 70–90% of its life, as itself; falls back to the
/// bootstrap kubeconfig if the certificate expired meanwhile; retries with backoff.
async fn rotate_client(cfg: NodeConfig, id: NodeIdentity, certs: CertSource) {
    let store = CertStore::new(&cfg.cert_dir, "kubelet-client");
    let mut current = id.pair;
    loop {
        let at = deadline(current.not_before, current.not_after, random_jitter());
        sleep_until(at).await;
        let mut failures = 0;
        loop {
            let expired = current.not_after <= SystemTime::now();
            let client = if expired {
                match read_kubeconfig(&cfg.bootstrap_kubeconfig).and_then(|k| {
                    Client::from_kubeconfig(&k).map_err(|e| AgentError::Config(e.to_string()))
                }) {
                    Ok(c) => {
                        tracing::warn!(
                            "the client certificate expired; renewing with the bootstrap kubeconfig"
                        );
                        c
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "the client certificate expired and the bootstrap kubeconfig is unusable");
                        tokio::time::sleep(retry_after(5)).await;
                        continue;
                    }
                }
            } else {
                match node_client(
                    &NodeIdentity {
                        server: id.server.clone(),
                        ca_pem: id.ca_pem.clone(),
                        pair: current.clone(),
                    },
                    &certs,
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot build the node client");
                        return;
                    }
                }
            };
            let req = CertRequest {
                node_name: cfg.node_name.clone(),
                signer: CLIENT_SIGNER,
                dns_names: vec![],
                ip_addresses: vec![],
            };
            match request_certificate(&client, &req, cfg.csr_timeout).await {
                Ok(issued) => {
                    let stored = store
                        .store(&issued.cert_pem, &issued.key_pem, SystemTime::now())
                        .map_err(io)
                        .and_then(|_| store.load().map_err(io));
                    match stored {
                        Ok(Some(pair)) => {
                            if let Err(e) = certs.set_pem(&pair.pem, &pair.pem) {
                                tracing::error!(error = %e, "the new certificate cannot be used");
                            }
                            tracing::info!(csr = %issued.csr_name, serial = %pair.serial, not_after = %format_rfc3339(pair.not_after), "rotated the client certificate");
                            current = pair;
                            break;
                        }
                        other => {
                            tracing::error!(result = ?other.err(), "storing the new certificate failed")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing the client certificate failed; retrying")
                }
            }
            failures += 1;
            tokio::time::sleep(retry_after(failures)).await;
        }
    }
}

/// Obtains and rotates the serving certificate (names: the node name and its IPs).
async fn rotate_serving(cfg: NodeConfig, client: Client, serving: CertSource, ips: Vec<IpAddr>) {
    let store = CertStore::new(&cfg.cert_dir, "kubelet-server");
    let mut current = store
        .load()
        .ok()
        .flatten()
        .filter(|p| p.not_after > SystemTime::now());
    if let Some(p) = &current {
        let _ = serving.set_pem(&p.pem, &p.pem);
    }
    loop {
        if let Some(p) = &current {
            sleep_until(deadline(p.not_before, p.not_after, random_jitter())).await;
        }
        let mut failures = 0;
        loop {
            let req = CertRequest {
                node_name: cfg.node_name.clone(),
                signer: SERVING_SIGNER,
                dns_names: vec![cfg.node_name.clone()],
                ip_addresses: ips.clone(),
            };
            match request_certificate(&client, &req, cfg.csr_timeout).await {
                Ok(issued) => {
                    if let Ok(Some(pair)) = store
                        .store(&issued.cert_pem, &issued.key_pem, SystemTime::now())
                        .and_then(|_| store.load())
                    {
                        let _ = serving.set_pem(&pair.pem, &pair.pem);
                        tracing::info!(csr = %issued.csr_name, serial = %pair.serial, "obtained a serving certificate");
                        current = Some(pair);
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "obtaining the serving certificate failed; retrying")
                }
            }
            failures += 1;
            tokio::time::sleep(retry_after(failures)).await;
        }
    }
}

async fn serve_healthz(listener: tokio::net::TcpListener, serving: CertSource) {
    let Ok(cfg) = serving.server_config() else {
        return;
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let svc = hyper::service::service_fn(
                |req: hyper::Request<hyper::body::Incoming>| async move {
                    let (code, body) = if req.uri().path() == "/healthz" {
                        (200, "ok")
                    } else {
                        (404, "404 page not found\n")
                    };
                    Ok::<_, std::convert::Infallible>(
                        hyper::Response::builder()
                            .status(code)
                            .header("Content-Type", "text/plain; charset=utf-8")
                            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                                body.as_bytes(),
                            )))
                            .expect("static response"),
                    )
                },
            );
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                .await;
        });
    }
}

async fn sleep_until(t: SystemTime) {
    if let Ok(d) = t.duration_since(SystemTime::now()) {
        tokio::time::sleep(d).await;
    }
}

/// The local address used to reach the API server (no packet is sent).
fn outbound_ip(server: &str) -> Option<IpAddr> {
    let host = server
        .trim_start_matches("https://")
        .rsplit_once(':')
        .map_or(server, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let target: IpAddr = host.parse().ok()?;
    let sock = std::net::UdpSocket::bind(SocketAddr::new(
        if target.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        },
        0,
    ))
    .ok()?;
    sock.connect(SocketAddr::new(target, 443)).ok()?;
    sock.local_addr().ok().map(|a| a.ip())
}

/// Logs when the server's clock differs from ours by more than a minute.
pub async fn warn_on_clock_skew(client: &Client) {
    let Ok(resp) = client
        .send(kubeboot_client::Method::GET, "/version", None)
        .await
    else {
        return;
    };
    let Some(date) = resp
        .headers
        .get("date")
        .and_then(|d| d.to_str().ok())
        .and_then(parse_http_date)
    else {
        return;
    };
    let now = SystemTime::now();
    let skew = now
        .duration_since(date)
        .or_else(|_| date.duration_since(now))
        .unwrap_or_default();
    if skew > Duration::from_secs(60) {
        tracing::warn!(
            skew_seconds = skew.as_secs(),
            "the API server's clock differs from this node's by more than a minute: expect \"certificate not yet valid\" and \"token expired\" errors; fix the time (NTP) on one side"
        );
    }
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, clock, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)?
        + 1;
    let text = format!("{year}-{month:02}-{day:0>2}T{clock}Z");
    kubeboot_api::clock::parse_rfc3339(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates() {
        let t = parse_http_date("Thu, 02 May 2024 10:00:00 GMT").unwrap();
        assert_eq!(format_rfc3339(t), "2024-05-02T10:00:00Z");
        assert!(parse_http_date("yesterday").is_none());
    }

    #[test]
    fn micro_times_have_six_digits() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_micros(1_714_644_000_123_456);
        assert_eq!(micro_time(t), "2024-05-02T10:00:00.123456Z");
    }
}
