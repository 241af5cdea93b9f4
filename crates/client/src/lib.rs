//! A thin HTTPS client for Kubernetes API servers — ours or a real kube-apiserver.
//!
//! It trusts exactly the CA bundle it is given (or, for discovery, a CA it learns after
//! connecting: [`DeferredTrust`]; or, only when a kubeconfig asks, nothing at all), presents a
//! bearer token or a client certificate that can change while connections live
//! ([`CertSource`]), keeps connections alive and speaks JSON. Errors from the server come
//! back as the `Status` it sent.

mod tls;
mod transport;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};

use kubeboot_pki::Kubeconfig;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

pub use http::Method;
pub use kubeboot_api::Status;
pub use tls::{
    CertSource, DeferredTrust, RotatingTrust, Trust, client_config as tls_client_config,
};
pub use transport::{InProcess, ResponseBody};

/// A client of one API server.
#[derive(Clone)]
pub struct Client {
    transport: transport::Transport,
    server: Arc<str>,
    token: Option<HeaderValue>,
    timeout: Duration,
    user_agent: HeaderValue,
}

/// The user agent of a kubeboot component, as client-go writes one
/// (`<component>/<version> (<os>/<arch>)`): the API server takes its first word as the
/// field manager of what the component writes.
pub fn user_agent(component: &str) -> String {
    format!(
        "{component}/v{} ({}/{})",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH
    )
}

/// Who the client is.
#[derive(Clone)]
pub enum Identity {
    /// No credentials (`system:anonymous`).
    Anonymous,
    /// A bearer token.
    Token(String),
    /// A client certificate, possibly replaced while the client lives.
    Cert(CertSource),
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The client could not be built (bad CA, bad key, bad URL).
    #[error("client configuration: {0}")]
    Config(String),
    /// The server could not be reached, or the connection failed.
    #[error("cannot reach {server}: {message}")]
    Transport {
        /// The server URL.
        server: String,
        /// What failed.
        message: String,
    },
    /// The server answered with an error `Status`.
    #[error("{} ({}): {}", .0.reason, .0.code, .0.message)]
    Api(Box<Status>),
    /// The answer was not what was expected.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

impl ClientError {
    /// The HTTP code of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Api(s) => Some(s.code),
            _ => None,
        }
    }
}

/// A raw response.
#[derive(Debug)]
pub struct RawResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Client {
    /// A client of `server` (`https://host:port`) trusting `trust`, acting as `identity`.
    pub fn new(server: &str, trust: Trust, identity: Identity) -> Result<Self, ClientError> {
        let cert = match &identity {
            Identity::Cert(c) => Some(c.clone()),
            _ => None,
        };
        let tls = tls::client_config(&trust, cert.clone())?;
        // As Go's clients do: a request written right after the handshake's last flight is
        // not held back by Nagle's algorithm waiting for that flight's ACK.
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(tcp);
        let pool = transport::Pool::new(connector, cert);
        let client = Self::with_transport(server, transport::Transport::Https(Arc::new(pool)));
        match identity {
            Identity::Token(t) => client.with_token(&t),
            _ => Ok(client),
        }
    }

    /// A client of the API server running in this process, its requests handed to `serve`
    /// instead of sent over the network; it is whoever the server takes them to be.
    /// `server` names the server in errors.
    pub fn in_process(server: &str, serve: InProcess) -> Self {
        Self::with_transport(server, transport::Transport::InProcess(serve))
    }

    fn with_transport(server: &str, transport: transport::Transport) -> Self {
        Self {
            transport,
            server: server.trim_end_matches('/').into(),
            token: None,
            timeout: Duration::from_secs(30),
            user_agent: HeaderValue::from_str(&user_agent("kubeboot"))
                .expect("a user agent of ASCII words"),
        }
    }

    /// This client, its requests sent with `agent` as their `User-Agent` (see
    /// [`user_agent`]); an agent that is not a header value is ignored.
    pub fn with_user_agent(mut self, agent: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(agent) {
            self.user_agent = v;
        }
        self
    }

    /// A client from a kubeconfig's current context (inline data or file paths).
    pub fn from_kubeconfig(kc: &Kubeconfig) -> Result<Self, ClientError> {
        let (cluster, user) = kc
            .current()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let trust = match kubeconfig_data(
            &cluster.certificate_authority_data,
            &cluster.certificate_authority,
            "the CA",
        )? {
            Some(pem) => Trust::from_pem(&pem)?,
            None if cluster.insecure_skip_tls_verify == Some(true) => Trust::InsecureSkipVerify,
            None => {
                return Err(ClientError::Config(
                    "the kubeconfig names no CA for the cluster".into(),
                ));
            }
        };
        let identity = match (kubeconfig_client_cert(kc)?, &user.token) {
            (Some((cert, key)), _) => Identity::Cert(CertSource::from_pem(&cert, &key)?),
            (None, Some(token)) => Identity::Token(token.clone()),
            _ => Identity::Anonymous,
        };
        Self::new(&cluster.server, trust, identity)
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The same client, with its open connections, acting as the bearer of `token` (as the
    /// TLS bootstrap continues on the connection discovery verified).
    pub fn with_token(&self, token: &str) -> Result<Self, ClientError> {
        let header = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| ClientError::Config("the token is not a valid header value".into()))?;
        Ok(Self {
            token: Some(header),
            ..self.clone()
        })
    }

    /// Sets the per-request timeout (watches are not bound by it).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("{}{}", self.server, path))
            .header(header::ACCEPT, "application/json")
            .header(header::USER_AGENT, self.user_agent.clone());
        if let Some(t) = &self.token {
            b = b.header(header::AUTHORIZATION, t.clone());
        }
        let body = match body {
            Some((ct, bytes)) => {
                b = b.header(header::CONTENT_TYPE, ct);
                bytes
            }
            None => Bytes::new(),
        };
        b.body(Full::new(body))
            .map_err(|e| ClientError::Config(format!("bad request {path}: {e}")))
    }

    /// Sends a request and reads the whole answer, whatever its status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<RawResponse, ClientError> {
        let transport = |e: &dyn std::fmt::Display| ClientError::Transport {
            server: self.server.to_string(),
            message: e.to_string(),
        };
        let fut = async {
            // A server past its in-flight limit answers 429 with Retry-After; like
            // client-go, wait that long and try again, up to 10 times.
            for retry in 0..=MAX_RETRIES {
                let req = self.request(method.clone(), path, body.clone())?;
                let resp = self
                    .transport
                    .exchange(req)
                    .await
                    .map_err(|e| transport(&e))?;
                let (parts, body) = resp.into_parts();
                if let Some(wait) = retry_after(parts.status, &parts.headers)
                    && retry < MAX_RETRIES
                {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                // A server (or, before discovery has verified it, anyone) cannot make us
                // buffer more than this.
                let body = http_body_util::Limited::new(body, MAX_RESPONSE)
                    .collect()
                    .await
                    .map_err(|e| transport(&e))?
                    .to_bytes();
                return Ok(RawResponse {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                });
            }
            unreachable!("the last try returns")
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| transport(&format!("no answer within {:?}", self.timeout)))?
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> Result<T, ClientError> {
        let resp = self.send(method, path, body).await?;
        if !resp.status.is_success() {
            return Err(ClientError::Api(Box::new(status_of(
                resp.status,
                &resp.body,
            ))));
        }
        serde_json::from_slice(&resp.body).map_err(|e| ClientError::Decode(format!("{path}: {e}")))
    }

    /// GET a JSON object.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json(Method::GET, path, None).await
    }

    /// POST a JSON object (create).
    pub async fn create<T: DeserializeOwned>(
        &self,
        path: &str,
        obj: &impl Serialize,
    ) -> Result<T, ClientError> {
        self.json(
            Method::POST,
            path,
            Some(("application/json", to_bytes(obj)?)),
        )
        .await
    }

    /// PUT a JSON object (update).
    pub async fn update<T: DeserializeOwned>(
        &self,
        path: &str,
        obj: &impl Serialize,
    ) -> Result<T, ClientError> {
        self.json(
            Method::PUT,
            path,
            Some(("application/json", to_bytes(obj)?)),
        )
        .await
    }

    /// PATCH with a JSON merge patch.
    pub async fn merge_patch<T: DeserializeOwned>(
        &self,
        path: &str,
        patch: &impl Serialize,
    ) -> Result<T, ClientError> {
        self.json(
            Method::PATCH,
            path,
            Some(("application/merge-patch+json", to_bytes(patch)?)),
        )
        .await
    }

    /// DELETE, with optional `DeleteOptions`.
    pub async fn delete(
        &self,
        path: &str,
        options: Option<&serde_json::Value>,
    ) -> Result<(), ClientError> {
        let body = options
            .map(|o| to_bytes(o).map(|b| ("application/json", b)))
            .transpose()?;
        let _: serde_json::Value = self.json(Method::DELETE, path, body).await?;
        Ok(())
    }

    /// Who the server takes this client for: the user a SelfSubjectReview names.
    pub async fn username(&self) -> Result<String, ClientError> {
        let review: serde_json::Value = self
            .create(
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                &serde_json::json!({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}),
            )
            .await?;
        review
            .pointer("/status/userInfo/username")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Decode("the SelfSubjectReview names no user".into()))
    }

    /// Watches a collection path (the `watch=1` parameter is added): each event is a JSON
    /// object `{"type": …, "object": …}`. The stream ends when the server closes it.
    pub async fn watch(
        &self,
        path: &str,
    ) -> Result<mpsc::Receiver<Result<serde_json::Value, ClientError>>, ClientError> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let req = self.request(Method::GET, &format!("{path}{sep}watch=1"), None)?;
        let resp = tokio::time::timeout(self.timeout, self.transport.exchange(req))
            .await
            .map_err(|_| ClientError::Transport {
                server: self.server.to_string(),
                message: "no answer to the watch".into(),
            })?
            .map_err(|message| ClientError::Transport {
                server: self.server.to_string(),
                message,
            })?;
        if !resp.status().is_success() {
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            return Err(ClientError::Api(Box::new(status_of(status, &body))));
        }
        let (tx, rx) = mpsc::channel(256);
        let mut body = resp.into_body();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            loop {
                // A receiver that is dropped ends the watch at once, closing its connection:
                // a quiet watch must not hold a connection until the server's timeout.
                let frame = tokio::select! {
                    f = body.frame() => f,
                    () = tx.closed() => return,
                };
                let Some(frame) = frame else { return };
                let Ok(frame) = frame else { return };
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                buf.extend_from_slice(&data);
                if buf.len() > MAX_RESPONSE {
                    let _ = tx
                        .send(Err(ClientError::Decode(
                            "a watch event is larger than 64 MiB".into(),
                        )))
                        .await;
                    return;
                }
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let ev = serde_json::from_slice(&line)
                        .map_err(|e| ClientError::Decode(format!("watch event: {e}")));
                    if tx.send(ev).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// The largest answer (or watch event) the client reads.
const MAX_RESPONSE: usize = 64 << 20;

fn to_bytes(v: &impl Serialize) -> Result<Bytes, ClientError> {
    serde_json::to_vec(v)
        .map(Bytes::from)
        .map_err(|e| ClientError::Decode(e.to_string()))
}

/// The `Status` in an error answer, or one made from the HTTP code.
fn status_of(code: StatusCode, body: &[u8]) -> Status {
    serde_json::from_slice::<Status>(body).unwrap_or_else(|_| {
        Status::failure(
            code.as_u16(),
            code.canonical_reason().unwrap_or("Unknown"),
            String::from_utf8_lossy(body)
                .chars()
                .take(300)
                .collect::<String>(),
        )
    })
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

/// `/api/v1/...` or `/apis/<group>/<version>/...` for a resource, namespace and name.
pub fn resource_path(
    group: &str,
    version: &str,
    namespace: Option<&str>,
    plural: &str,
    name: Option<&str>,
) -> String {
    let mut p = if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    };
    if let Some(ns) = namespace {
        p.push_str(&format!("/namespaces/{ns}"));
    }
    p.push('/');
    p.push_str(plural);
    if let Some(n) = name {
        p.push('/');
        p.push_str(n);
    }
    p
}

/// A client certificate chain and its key, PEM.
pub type CertAndKeyPem = (Vec<u8>, Vec<u8>);

/// The current user's client certificate and key in a kubeconfig, inline or read from the
/// files it names; `None` when it has none.
pub fn kubeconfig_client_cert(kc: &Kubeconfig) -> Result<Option<CertAndKeyPem>, ClientError> {
    let (_, user) = kc
        .current()
        .map_err(|e| ClientError::Config(e.to_string()))?;
    let cert = kubeconfig_data(
        &user.client_certificate_data,
        &user.client_certificate,
        "the client certificate",
    )?;
    let key = kubeconfig_data(&user.client_key_data, &user.client_key, "the client key")?;
    Ok(cert.zip(key))
}

/// A kubeconfig field given inline (base64) or as a file path.
fn kubeconfig_data(
    data: &Option<String>,
    path: &Option<String>,
    what: &str,
) -> Result<Option<Vec<u8>>, ClientError> {
    if let Some(d) = data {
        return base64::engine::general_purpose::STANDARD
            .decode(d.trim())
            .map(Some)
            .map_err(|e| ClientError::Config(format!("{what} is not base64: {e}")));
    }
    if let Some(p) = path {
        return std::fs::read(p)
            .map(Some)
            .map_err(|e| ClientError::Config(format!("reading {what} {p}: {e}")));
    }
    Ok(None)
}

/// How long to wait before trying a request again that the server answered 429 with a
/// `Retry-After` header (seconds; at most 10, as a server cannot park us for long).
fn retry_after(status: StatusCode, headers: &http::HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let secs: u64 = headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.clamp(1, 10)))
}

/// Tries of a request refused with 429, after the first (client-go's `maxRetries`).
const MAX_RETRIES: u32 = 10;
