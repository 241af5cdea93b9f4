//! Benchmarks of the bootstrapping flows: bearer-token vs client-certificate requests, the
//! bootstrap signer with many tokens, CSRs from creation to certificate, and whole joins.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use anyhow::{Context, Result, bail};
use kubeboot_bootstrap::BootstrapToken;
use kubeboot_client::{Client, Identity, Trust};
use kubeboot_node::discovery::CaTrust;
use kubeboot_node::tls_bootstrap::{CLIENT_SIGNER, CertRequest, request_certificate};
use kubeboot_pki::Kubeconfig;
use kubeboot_pki::pin::PinSet;
use serde_json::Value;

use crate::stats::{Summary, rate, summarize};

/// The cluster CA's PEM from the admin kubeconfig.
fn cluster_ca(admin_kc: &Kubeconfig) -> Result<Vec<u8>> {
    use base64::Engine;
    let (cluster, _) = admin_kc.current()?;
    let data = cluster.certificate_authority_data.as_deref();
    Ok(base64::engine::general_purpose::STANDARD.decode(data.unwrap_or_default())?)
}

/// kubeadm's default token: for authentication and signing, its bearer in
/// `system:bootstrappers:kubeadm:default-node-token` too.
const KUBEADM_TOKEN: Token<'static> = Token {
    usages: &["authentication", "signing"],
    groups: &["system:bootstrappers:kubeadm:default-node-token"],
};

/// What a bench token is for and which groups (`auth-extra-groups`) its bearer is in.
#[derive(Clone, Copy)]
pub struct Token<'a> {
    /// `usage-bootstrap-*`.
    pub usages: &'a [&'a str],
    /// Extra groups, each `system:bootstrappers:…`.
    pub groups: &'a [&'a str],
}

/// A client that authenticates with a new bootstrap token, trusting the cluster CA.
pub async fn token_client(
    admin_kc: &Kubeconfig,
    admin: &Client,
    kind: Token<'_>,
) -> Result<Client> {
    let token = create_token_for(admin, kind).await?;
    let (cluster, _) = admin_kc.current()?;
    Ok(Client::new(
        &cluster.server,
        Trust::from_pem(&cluster_ca(admin_kc)?)?,
        Identity::Token(token.expose()),
    )?)
}

/// A new bootstrap token created through `admin`, with kubeadm's defaults.
pub async fn create_token(admin: &Client) -> Result<BootstrapToken> {
    create_token_for(admin, KUBEADM_TOKEN).await
}

/// A bench token expires an hour after it is made, so that one left behind on a real
/// cluster (`--kubeconfig`, `--server`) stops working and the token cleaner removes it.
const TOKEN_TTL: Duration = Duration::from_secs(3600);

/// The server validates the Secret (a group outside `system:bootstrappers:` is refused with
/// the rule it breaks).
async fn create_token_for(admin: &Client, kind: Token<'_>) -> Result<BootstrapToken> {
    let token = BootstrapToken::random(&kubeboot_api::random::OsRandom);
    let options = kubeboot_bootstrap::secret::TokenOptions {
        description: "bench",
        ttl: Some(TOKEN_TTL),
        usages: kind.usages,
        groups: kind.groups,
    };
    let secret = kubeboot_bootstrap::secret::token_secret(
        &token,
        &options,
        kubeboot_api::Clock::now(&kubeboot_api::SystemClock),
    );
    admin
        .create::<Value>("/api/v1/namespaces/kube-system/secrets", &secret)
        .await?;
    Ok(token)
}

/// Runs `count` requests with `concurrency` tasks, each calling `op(i)`.
pub async fn run_concurrent<F, Fut>(
    count: usize,
    concurrency: usize,
    op: F,
) -> (f64, Summary, usize)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut errors) = (Vec::new(), 0usize);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return (lat, errors);
                }
                let t = Instant::now();
                if op(i).await {
                    lat.push(t.elapsed());
                } else {
                    errors += 1;
                }
            }
        }));
    }
    let (mut lat, mut errors): (Vec<Duration>, usize) = (Vec::new(), 0);
    for t in tasks {
        let (l, e) = t.await.unwrap_or_default();
        lat.extend(l);
        errors += e;
    }
    (
        rate(lat.len(), started.elapsed()),
        summarize(&mut lat),
        errors,
    )
}

/// The same GET as a bootstrap token and as a client certificate: `(token, cert)` results.
pub async fn auth(
    admin_kc: &Kubeconfig,
    requests: usize,
    concurrency: usize,
) -> Result<[(f64, Summary, usize); 2]> {
    let admin = Client::from_kubeconfig(admin_kc)?;
    let by_token = token_client(admin_kc, &admin, KUBEADM_TOKEN).await?;
    let path = "/apis/certificates.k8s.io/v1/certificatesigningrequests?limit=1";
    let mut out = Vec::new();
    for client in [by_token, admin] {
        let c = client.clone();
        out.push(
            run_concurrent(requests, concurrency, move |_| {
                let c = c.clone();
                async move { c.get::<Value>(path).await.is_ok() }
            })
            .await,
        );
    }
    Ok([out.remove(0), out.remove(0)])
}

/// Creates `tokens` tokens and times how long until cluster-info carries all their
/// signatures, then changes the kubeconfig and times the re-signing of all of them.
pub async fn signer(admin_kc: &Kubeconfig, tokens: usize) -> Result<(Duration, Duration)> {
    let admin = Client::from_kubeconfig(admin_kc)?;
    let created: Arc<std::sync::Mutex<Vec<BootstrapToken>>> = Arc::default();
    let started = Instant::now();
    let (_, _, errors) = run_concurrent(tokens, 32, {
        let (admin, created) = (admin.clone(), created.clone());
        move |_| {
            let (admin, created) = (admin.clone(), created.clone());
            async move {
                match create_token(&admin).await {
                    Ok(t) => {
                        created
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(t);
                        true
                    }
                    Err(_) => false,
                }
            }
        }
    })
    .await;
    if errors > 0 {
        bail!("{errors} tokens could not be created");
    }
    let tokens = created
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut cm = wait_signed(&admin, &tokens, deadline).await?;
    let signed_all = started.elapsed();
    let kubeconfig = format!(
        "{}# re-signed by kubeboot bench\n",
        cm["data"]["kubeconfig"].as_str().unwrap_or_default()
    );
    cm["data"]["kubeconfig"] = Value::String(kubeconfig);
    let started = Instant::now();
    admin.update::<Value>(CLUSTER_INFO, &cm).await?;
    wait_signed(&admin, &tokens, deadline).await?;
    Ok((signed_all, started.elapsed()))
}

const CLUSTER_INFO: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

/// Whether cluster-info carries each token's valid signature of its current kubeconfig.
fn signed_for_all(cm: &Value, tokens: &[BootstrapToken]) -> bool {
    let content = cm
        .pointer("/data/kubeconfig")
        .and_then(Value::as_str)
        .unwrap_or_default();
    tokens.iter().all(|t| {
        cm.pointer(&format!("/data/jws-kubeconfig-{}", t.id))
            .and_then(Value::as_str)
            .is_some_and(|jws| {
                kubeboot_bootstrap::jws::verify_detached(
                    jws,
                    content,
                    t.id.as_str(),
                    t.secret.expose(),
                )
            })
    })
}

/// Waits until the bootstrap signer has signed cluster-info's kubeconfig for every token
/// (a node cannot join with a token before), returning the signed ConfigMap.
pub async fn wait_signed(
    admin: &Client,
    tokens: &[BootstrapToken],
    deadline: Instant,
) -> Result<Value> {
    loop {
        let cm: Value = admin.get(CLUSTER_INFO).await?;
        if signed_for_all(&cm, tokens) {
            return Ok(cm);
        }
        if Instant::now() >= deadline {
            bail!("the bootstrap signer did not sign cluster-info for the new tokens in time");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Creates `count` node-client CSRs at once with a bootstrap token and times each from
/// creation to issuance. Returns (signed per second, latency summary, errors).
pub async fn csrs(
    admin_kc: &Kubeconfig,
    count: usize,
    concurrency: usize,
) -> Result<(f64, Summary, usize)> {
    let admin = Client::from_kubeconfig(admin_kc)?;
    let client = token_client(admin_kc, &admin, KUBEADM_TOKEN).await?;
    Ok(run_concurrent(count, concurrency, move |i| {
        let client = client.clone();
        async move {
            let req = CertRequest {
                node_name: format!("bench-{i}"),
                signer: CLIENT_SIGNER,
                dns_names: vec![],
                ip_addresses: vec![],
            };
            request_certificate(&client, &req, Duration::from_secs(120))
                .await
                .is_ok()
        }
    })
    .await)
}

/// Whole joins, as `kubeboot join` does them: discovery with JWS and pin checks, key and
/// CSR, wait for the certificate, one request with it. Returns (joins/s, latency, errors).
pub async fn joins(
    admin_kc: &Kubeconfig,
    nodes: usize,
    concurrency: usize,
) -> Result<(f64, Summary, usize)> {
    let admin = Client::from_kubeconfig(admin_kc)?;
    let token = Arc::new(create_token(&admin).await?);
    let (cluster, _) = admin_kc.current()?;
    let endpoint = cluster.server.trim_start_matches("https://").to_owned();
    let ca = cluster_ca(admin_kc)?;
    let pin = kubeboot_pki::pin::pem_cert_pin(&ca).context("CA pin")?;
    let trust = Arc::new(CaTrust::Pinned(PinSet::parse([pin.as_str()])?));
    let opts = crate::join::Options {
        nodes,
        concurrency,
        key: kubeboot_pki::KeyAlgorithm::EcdsaP256,
        rotate: false,
        cert_dir: None,
    };
    Ok(run_concurrent(nodes, concurrency, move |i| {
        let (token, trust, endpoint, opts) =
            (token.clone(), trust.clone(), endpoint.clone(), opts.clone());
        async move {
            crate::join::one(&endpoint, &token, &trust, &opts, i, Duration::from_secs(60))
                .await
                .is_ok()
        }
    })
    .await)
}
