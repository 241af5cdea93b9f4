//! The etcd backend: the same [`Store`] contract on an etcd v3 cluster, so several API
//! servers can serve one cluster.
//!
//! It speaks etcd's v3 API through the JSON gateway every etcd member serves on its client
//! URL (`POST /v3/kv/range`, `/v3/kv/txn`, `/v3/watch`, …), over the HTTP/1.1 and rustls
//! stack the rest of kubeboot already uses. That keeps gRPC, protobuf code generation and a
//! `protoc` build dependency out of the binary, and keeps the choice of member in our hands:
//!
//! - Every write is one transaction that compares the key's `create_revision` or
//!   `mod_revision`, so optimistic concurrency holds across servers.
//! - A request that fails because a member is down, has no leader, or timed out is retried
//!   on the next member until the request deadline. A write whose first attempt may have
//!   landed is recognised on retry by its value (API objects carry a fresh uid and
//!   resourceVersion-free body, so equal bytes mean our own write).
//! - A watch that loses its member reconnects to another from the revision after the last
//!   event it delivered, so a member failure never loses or repeats an event; only a
//!   compacted revision ends it, with [`StoreError::Compacted`].
//!
//! Keys are laid out as kube-apiserver lays them out: the leading `/registry` of a store key
//! is replaced by the configured prefix (`--etcd-prefix`, default `/registry`).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::{
    BoxFuture, Event, EventKind, KeyValue, ListPage, Revision, Store, StoreError, WatchStream,
    prefix_end,
};

/// The key prefix kubeboot's API server writes under.
pub const REGISTRY: &str = "/registry";

/// How to reach etcd.
#[derive(Clone)]
pub struct EtcdOptions {
    /// Client URLs of the members (`http://127.0.0.1:2379`, `https://…`).
    pub endpoints: Vec<String>,
    /// TLS for `https` members: the CA to trust and the client certificate to present.
    pub tls: Option<rustls::ClientConfig>,
    /// Where store keys live in etcd: `/registry/…` is stored as `<prefix>/…`.
    pub prefix: String,
    /// How long one operation may take, retries over members included.
    pub request_timeout: Duration,
}

impl EtcdOptions {
    /// Options for plain-HTTP members with the default prefix and timeout.
    pub fn new(endpoints: Vec<String>) -> Self {
        Self {
            endpoints,
            tls: None,
            prefix: REGISTRY.into(),
            request_timeout: Duration::from_secs(15),
        }
    }
}

/// The etcd store. Cheap to clone.
#[derive(Clone)]
pub struct EtcdStore {
    conn: Arc<Conn>,
}

type Http = HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

struct Conn {
    http: Http,
    endpoints: Vec<String>,
    /// The member requests go to first; moves on when it fails.
    current: AtomicUsize,
    prefix: String,
    timeout: Duration,
}

/// How long one attempt on one member may take before the next member is tried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a watch keeps trying to reach some member before it gives up.
const WATCH_RECONNECT_WINDOW: Duration = Duration::from_secs(120);
/// Events a watch may have buffered for a slow reader before it waits.
const WATCH_BUFFER: usize = 4096;
/// The largest response body accepted (a list of very many objects).
const MAX_RESPONSE: usize = 1 << 30;

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// One failed attempt: whether another member may succeed.
enum Failure {
    /// The member is down, has no leader, or was too slow: try the next one. `sent` when
    /// the request may have reached etcd (and so may have been applied).
    Retry { why: String, sent: bool },
    /// etcd refused the request itself.
    Fatal(StoreError),
}

/// Whether an etcd error (gRPC code and message) means "try another member".
fn retryable(code: i64, message: &str) -> bool {
    // 14 Unavailable, 4 DeadlineExceeded, 8 ResourceExhausted ("too many requests"),
    // 10 Aborted, 13 Internal ("leader changed" etc.)
    matches!(code, 4 | 8 | 10 | 13 | 14)
        || [
            "no leader",
            "leader changed",
            "timed out",
            "not capable",
            "stopped",
        ]
        .iter()
        .any(|m| message.contains(m))
}

/// The error text etcd gives for a revision older than its compaction.
const COMPACTED: &str = "required revision has been compacted";

/// An int64 as the gateway writes it: a decimal string, absent when zero.
fn int(v: &Value, field: &str) -> i64 {
    match v.get(field) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn bytes_field(v: &Value, field: &str) -> Result<Vec<u8>, StoreError> {
    match v.get(field).and_then(Value::as_str) {
        Some(s) => B64
            .decode(s)
            .map_err(|e| backend(format!("etcd sent bad base64 in {field}: {e}"))),
        None => Ok(Vec::new()),
    }
}

fn b64(s: &[u8]) -> String {
    B64.encode(s)
}

/// A write whose first attempt may have landed, and whose retry cannot tell.
fn unknown_outcome(op: &str, key: &str) -> StoreError {
    backend(format!(
        "the {op} of {key} may or may not have been applied (an etcd member failed mid-request); read the object to find out"
    ))
}

/// A gateway request. `Grpc-Metadata-hasleader` asks etcd to refuse, and to end watches,
/// on a member that has lost its leader (a partitioned member), so we move on to another.
fn post(
    endpoint: &str,
    path: &str,
    body: Bytes,
) -> Result<http::Request<Full<Bytes>>, http::Error> {
    http::Request::post(format!("{endpoint}{path}"))
        .header(http::header::CONTENT_TYPE, "application/json")
        .header("grpc-metadata-hasleader", "true")
        .body(Full::new(body))
}

impl Conn {
    /// The etcd key of a store key.
    fn etcd_key(&self, key: &str) -> String {
        map_key(key, REGISTRY, &self.prefix)
    }

    /// The store key of an etcd key.
    fn store_key(&self, key: &str) -> String {
        map_key(key, &self.prefix, REGISTRY)
    }

    /// A gateway kv as a store [`KeyValue`].
    fn key_value(&self, kv: &Value) -> Result<KeyValue, StoreError> {
        let key = String::from_utf8(bytes_field(kv, "key")?)
            .map_err(|_| backend("etcd key is not UTF-8"))?;
        Ok(KeyValue {
            key: self.store_key(&key),
            value: bytes_field(kv, "value")?.into(),
            create_revision: int(kv, "create_revision"),
            mod_revision: int(kv, "mod_revision"),
        })
    }

    fn endpoint(&self, i: usize) -> &str {
        &self.endpoints[i % self.endpoints.len()]
    }

    /// Moves on from member `i` (unless another caller already has).
    fn fail_over(&self, i: usize) {
        let _ = self.current.compare_exchange(
            i,
            (i + 1) % self.endpoints.len(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    async fn attempt(
        &self,
        endpoint: &str,
        path: &str,
        body: &Bytes,
        deadline: Instant,
    ) -> Result<Value, Failure> {
        let retry = |why: String| Failure::Retry { why, sent: true };
        let req = post(endpoint, path, body.clone()).map_err(|e| Failure::Fatal(backend(e)))?;
        // A member that does not answer within ATTEMPT_TIMEOUT is passed over; a large body
        // that is arriving may take until the operation's deadline.
        let resp = tokio::time::timeout(ATTEMPT_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| retry(format!("{endpoint}: no answer in {ATTEMPT_TIMEOUT:?}")))?
            .map_err(|e| Failure::Retry {
                why: format!("{endpoint}: {e}"),
                sent: !e.is_connect(),
            })?;
        let status = resp.status();
        let body = tokio::time::timeout_at(
            deadline.max(Instant::now() + ATTEMPT_TIMEOUT),
            http_body_util::Limited::new(resp.into_body(), MAX_RESPONSE).collect(),
        )
        .await
        .map_err(|_| retry(format!("{endpoint}: the response did not arrive in time")))?
        .map_err(|e| retry(format!("{endpoint}: reading the response: {e}")))?
        .to_bytes();
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            retry(format!(
                "{endpoint}: answered HTTP {status} with a body that is not JSON: {e}"
            ))
        })?;
        if status.is_success() {
            return Ok(v);
        }
        let message = v
            .get("message")
            .or_else(|| v.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let code = int(&v, "code");
        if retryable(code, &message) || status.is_server_error() && message.is_empty() {
            Err(retry(format!("{endpoint}: {message}")))
        } else {
            Err(Failure::Fatal(backend(format!("etcd: {message}"))))
        }
    }

    /// Sends a request to the current member, failing over to the others until the
    /// deadline. Returns the answer and whether an earlier attempt may have been applied.
    async fn call(&self, path: &str, body: Value) -> Result<(Value, bool), StoreError> {
        let body = Bytes::from(serde_json::to_vec(&body).map_err(backend)?);
        let deadline = Instant::now() + self.timeout;
        let mut attempts = 0u32;
        let mut maybe_applied = false;
        loop {
            let i = self.current.load(Ordering::Relaxed);
            match self.attempt(self.endpoint(i), path, &body, deadline).await {
                Ok(v) => return Ok((v, maybe_applied)),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry { why, sent }) => {
                    attempts += 1;
                    maybe_applied |= sent;
                    self.fail_over(i);
                    if Instant::now() >= deadline {
                        return Err(backend(format!(
                            "etcd did not answer within {:?} ({attempts} attempts over {} members; last: {why})",
                            self.timeout,
                            self.endpoints.len()
                        )));
                    }
                    tracing::debug!(error = %why, "etcd attempt failed; trying the next member");
                    // A full pass over the members without luck: wait a little (an election
                    // takes about a second).
                    if (attempts as usize).is_multiple_of(self.endpoints.len()) {
                        let pause = Duration::from_millis(100 * u64::from(attempts.min(10)));
                        tokio::time::sleep(pause).await;
                    }
                }
            }
        }
    }

    /// A transaction: `compare` decides between `success` and `failure` (each a list of
    /// gateway request ops). Returns whether it succeeded, its revision, its responses, and
    /// whether it may have been applied by an earlier attempt.
    async fn txn(
        &self,
        compare: Value,
        success: Value,
        failure: Value,
    ) -> Result<(bool, Revision, Vec<Value>, bool), StoreError> {
        let (v, retried) = self
            .call(
                "/v3/kv/txn",
                json!({"compare": [compare], "success": success, "failure": failure}),
            )
            .await?;
        let succeeded = v.get("succeeded").and_then(Value::as_bool).unwrap_or(false);
        let rev = v.get("header").map_or(0, |h| int(h, "revision"));
        let responses = match v.get("responses") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        Ok((succeeded, rev, responses, retried))
    }

    /// The kv a failed transaction's `request_range` read, if the key exists.
    fn ranged(&self, responses: &[Value]) -> Result<Option<KeyValue>, StoreError> {
        responses
            .first()
            .and_then(|r| r.get("response_range"))
            .and_then(|r| r.get("kvs"))
            .and_then(|k| k.get(0))
            .map(|kv| self.key_value(kv))
            .transpose()
    }

    /// `Compacted` when the history after `after` is no longer whole. A range at revision
    /// `after` fails exactly when etcd has compacted past it — the store contract's rule
    /// (a watch must start at or after the compacted revision).
    async fn check_not_compacted(&self, prefix: &str, after: Revision) -> Result<(), StoreError> {
        let probe = self
            .call(
                "/v3/kv/range",
                json!({"key": b64(prefix.as_bytes()), "count_only": true,
                       "revision": after.max(1).to_string()}),
            )
            .await;
        match probe {
            Err(StoreError::Backend(m)) if m.contains(COMPACTED) => Err(StoreError::Compacted {
                requested: after,
                oldest: self.compacted_revision().await,
            }),
            // A revision not yet written: nothing can be compacted after it.
            Err(StoreError::Backend(m)) if m.contains("future revision") => Ok(()),
            Err(e) => Err(e),
            Ok(_) => Ok(()),
        }
    }

    /// Whether member `endpoint` still serves reads (it has a leader and answers).
    async fn probe(&self, endpoint: &str) -> Result<(), String> {
        let body = Bytes::from(json!({"key": b64(b"\0probe"), "count_only": true}).to_string());
        match self
            .attempt(
                endpoint,
                "/v3/kv/range",
                &body,
                Instant::now() + ATTEMPT_TIMEOUT,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(Failure::Retry { why, .. }) => Err(why),
            Err(Failure::Fatal(e)) => Err(e.to_string()),
        }
    }

    /// The revision etcd's history was compacted to (0 when it never was). etcd reports
    /// it only by cancelling a watch that starts before it.
    async fn compacted_revision(&self) -> Revision {
        let probe = async {
            let i = self.current.load(Ordering::Relaxed);
            let body = json!({"create_request": {
                "key": b64(b"\0compaction-probe"), "start_revision": "1"}});
            let mut stream = open_watch(&self.http, self.endpoint(i), &body).await.ok()?;
            for _ in 0..4 {
                let msg = stream.next().await.ok()??;
                let result = msg.get("result")?;
                if result.get("canceled").and_then(Value::as_bool) == Some(true) {
                    return Some(int(result, "compact_revision"));
                }
            }
            None
        };
        tokio::time::timeout(Duration::from_secs(2), probe)
            .await
            .ok()
            .flatten()
            .unwrap_or(0)
    }
}

/// Replaces the leading `from` segment of `key` with `to` (keys outside `from` are kept).
fn map_key(key: &str, from: &str, to: &str) -> String {
    match key.strip_prefix(from) {
        Some(rest) if from != to && (rest.is_empty() || rest.starts_with('/')) => {
            format!("{to}{rest}")
        }
        _ => key.to_owned(),
    }
}

/// The `range_end` that makes a range cover every key starting with `prefix`.
fn range_end(prefix: &str) -> Vec<u8> {
    prefix_end(prefix).map_or_else(|| vec![0], String::into_bytes)
}

impl EtcdStore {
    /// A store on the etcd members in `opts`. Connections are made on first use;
    /// [`EtcdStore::check`] tells whether the cluster answers.
    pub fn new(opts: EtcdOptions) -> Result<Self, StoreError> {
        if opts.endpoints.is_empty() {
            return Err(backend("no etcd endpoints (--etcd-servers) given"));
        }
        for e in &opts.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(backend(format!(
                    "etcd endpoint {e:?} must be an http:// or https:// URL"
                )));
            }
        }
        let tls = match opts.tls {
            Some(t) => t,
            None => rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(backend)?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
        };
        // No Nagle delay before a request written right after the TLS handshake or a
        // previous request (Go's clients, etcd's own included, set it too).
        let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            conn: Arc::new(Conn {
                http,
                endpoints: opts
                    .endpoints
                    .iter()
                    .map(|e| e.trim_end_matches('/').to_owned())
                    .collect(),
                current: AtomicUsize::new(0),
                prefix: opts.prefix.trim_end_matches('/').to_owned(),
                timeout: opts.request_timeout,
            }),
        })
    }

    /// Checks that the cluster answers (a read through some member).
    pub async fn check(&self) -> Result<Revision, StoreError> {
        self.revision().await
    }

    /// Compacts history every `interval`, as kube-apiserver does: each time to the revision
    /// seen one interval earlier, so a watch can always resume at least one interval back.
    /// Several servers may all run this; compacting to a revision already compacted is a
    /// no-op.
    pub fn spawn_compactor(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut previous: Option<Revision> = None;
            loop {
                tokio::time::sleep(interval).await;
                let now = match store.revision().await {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, "etcd compaction: cannot read the revision");
                        continue;
                    }
                };
                if let Some(rev) = previous.filter(|r| *r > 0) {
                    match store.compact(rev).await {
                        Ok(()) => tracing::info!(revision = rev, "compacted etcd history"),
                        Err(e) => {
                            tracing::warn!(error = %e, revision = rev, "etcd compaction failed")
                        }
                    }
                }
                previous = Some(now);
            }
        })
    }
}

impl EtcdStore {
    /// A range read under `prefix`, at `revision` or the latest.
    async fn range(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: Option<usize>,
        revision: Option<Revision>,
    ) -> Result<ListPage, StoreError> {
        let c = &self.conn;
        let eprefix = c.etcd_key(prefix);
        let from = match start_after {
            Some(k) => {
                let mut k = c.etcd_key(k).into_bytes();
                k.push(0);
                k
            }
            None => eprefix.clone().into_bytes(),
        };
        let mut body = json!({"key": b64(&from), "range_end": b64(&range_end(&eprefix))});
        if let Some(l) = limit {
            body["limit"] = json!(l.to_string());
        }
        if let Some(rev) = revision {
            body["revision"] = json!(rev.to_string());
        }
        let (v, _) = c.call("/v3/kv/range", body).await?;
        let items = match v.get("kvs") {
            Some(Value::Array(kvs)) => kvs
                .iter()
                .map(|kv| c.key_value(kv))
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        Ok(ListPage {
            items,
            revision: revision.unwrap_or_else(|| v.get("header").map_or(0, |h| int(h, "revision"))),
            more: v.get("more").and_then(Value::as_bool).unwrap_or(false),
        })
    }
}

impl Store for EtcdStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>> {
        Box::pin(async move { Ok(self.get_with_revision(key).await?.0) })
    }

    fn get_with_revision<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(Option<KeyValue>, Revision), StoreError>> {
        Box::pin(async move {
            let c = &self.conn;
            let (v, _) = c
                .call(
                    "/v3/kv/range",
                    json!({"key": b64(c.etcd_key(key).as_bytes())}),
                )
                .await?;
            let kv = v
                .get("kvs")
                .and_then(|k| k.get(0))
                .map(|kv| c.key_value(kv))
                .transpose()?;
            let revision = v.get("header").map_or(0, |h| int(h, "revision"));
            Ok((kv, revision))
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>> {
        Box::pin(self.range(prefix, start_after, limit, None))
    }

    fn list_at<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
        revision: Revision,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>> {
        Box::pin(async move {
            match self.range(prefix, start_after, limit, Some(revision)).await {
                Err(StoreError::Backend(m)) if m.contains(COMPACTED) => {
                    Err(StoreError::Compacted {
                        requested: revision,
                        oldest: self.conn.compacted_revision().await,
                    })
                }
                other => other,
            }
        })
    }

    fn count<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            let c = &self.conn;
            let p = c.etcd_key(prefix);
            let (v, _) = c
                .call(
                    "/v3/kv/range",
                    json!({"key": b64(p.as_bytes()), "range_end": b64(&range_end(&p)), "count_only": true}),
                )
                .await?;
            Ok(u64::try_from(int(&v, "count")).unwrap_or(0))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move {
            let c = &self.conn;
            let k = b64(c.etcd_key(key).as_bytes());
            let (ok, rev, responses, retried) = c
                .txn(
                    json!({"target": "CREATE", "key": k, "create_revision": "0", "result": "EQUAL"}),
                    json!([{"request_put": {"key": k, "value": b64(&value)}}]),
                    json!([{"request_range": {"key": k}}]),
                )
                .await?;
            if ok {
                return Ok(KeyValue {
                    key: key.to_owned(),
                    value,
                    create_revision: rev,
                    mod_revision: rev,
                });
            }
            match c.ranged(&responses)? {
                // An earlier attempt landed: the key holds exactly what we wrote.
                Some(kv) if retried && kv.value == value => Ok(kv),
                Some(_) if retried => Err(unknown_outcome("create", key)),
                _ => Err(StoreError::AlreadyExists(key.to_owned())),
            }
        })
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move {
            let c = &self.conn;
            let k = b64(c.etcd_key(key).as_bytes());
            let (ok, rev, responses, retried) = c
                .txn(
                    existing(&k, expected),
                    json!([{"request_put": {"key": k, "value": b64(&value), "prev_kv": true}}]),
                    json!([{"request_range": {"key": k}}]),
                )
                .await?;
            if ok {
                let prev = responses
                    .first()
                    .and_then(|r| r.get("response_put"))
                    .and_then(|r| r.get("prev_kv"));
                return Ok(KeyValue {
                    key: key.to_owned(),
                    value,
                    create_revision: prev.map_or(rev, |p| int(p, "create_revision")),
                    mod_revision: rev,
                });
            }
            match c.ranged(&responses)? {
                None => Err(StoreError::NotFound(key.to_owned())),
                // An earlier attempt landed: our bytes, written after the expected revision.
                Some(kv)
                    if retried
                        && kv.value == value
                        && expected.is_none_or(|e| kv.mod_revision > e) =>
                {
                    Ok(kv)
                }
                Some(kv) => Err(StoreError::Conflict {
                    key: key.to_owned(),
                    current: kv.mod_revision,
                }),
            }
        })
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move {
            let c = &self.conn;
            let k = b64(c.etcd_key(key).as_bytes());
            let (ok, rev, responses, retried) = c
                .txn(
                    existing(&k, expected),
                    json!([{"request_delete_range": {"key": k, "prev_kv": true}}]),
                    json!([{"request_range": {"key": k}}]),
                )
                .await?;
            if ok {
                let prev = responses
                    .first()
                    .and_then(|r| r.get("response_delete_range"))
                    .and_then(|r| r.get("prev_kvs"))
                    .and_then(|p| p.get(0))
                    .ok_or_else(|| backend("etcd deleted without returning the last value"))?;
                let mut kv = c.key_value(prev)?;
                kv.mod_revision = rev;
                return Ok(kv);
            }
            match c.ranged(&responses)? {
                // An earlier attempt may have been the delete that made it go.
                None if retried => Err(unknown_outcome("delete", key)),
                None => Err(StoreError::NotFound(key.to_owned())),
                Some(kv) => Err(StoreError::Conflict {
                    key: key.to_owned(),
                    current: kv.mod_revision,
                }),
            }
        })
    }

    fn watch<'a>(
        &'a self,
        prefix: &'a str,
        after: Revision,
    ) -> BoxFuture<'a, Result<WatchStream, StoreError>> {
        Box::pin(async move {
            let c = self.conn.clone();
            let eprefix = c.etcd_key(prefix);
            // A start before the compaction is refused now, not later on the stream.
            c.check_not_compacted(&eprefix, after).await?;
            let (tx, rx) = mpsc::channel(WATCH_BUFFER);
            tokio::spawn(run_watch(c, eprefix, after, tx));
            Ok(rx)
        })
    }

    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>> {
        Box::pin(async move {
            let c = &self.conn;
            let (v, _) = c
                .call(
                    "/v3/kv/range",
                    json!({"key": b64(c.etcd_key(REGISTRY).as_bytes()), "count_only": true}),
                )
                .await?;
            Ok(v.get("header").map_or(0, |h| int(h, "revision")))
        })
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            match self
                .conn
                .call(
                    "/v3/kv/compaction",
                    json!({"revision": revision.to_string()}),
                )
                .await
            {
                Ok(_) => Ok(()),
                // Another server compacted as far already.
                Err(StoreError::Backend(m)) if m.contains(COMPACTED) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }
}

/// The compare of an update or delete: the key exists, and with `expected`, was last
/// written at that revision.
fn existing(key: &str, expected: Option<Revision>) -> Value {
    match expected {
        Some(rev) => {
            json!({"target": "MOD", "key": key, "mod_revision": rev.to_string(), "result": "EQUAL"})
        }
        None => {
            json!({"target": "CREATE", "key": key, "create_revision": "0", "result": "GREATER"})
        }
    }
}

/// A streamed gateway response: one JSON message per line.
struct MessageStream {
    body: hyper::body::Incoming,
    buf: BytesMut,
}

impl MessageStream {
    /// The next message; `Ok(None)` when the member closed the stream.
    async fn next(&mut self) -> Result<Option<Value>, String> {
        loop {
            if let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let line = self.buf.split_to(pos + 1);
                let line = line.trim_ascii();
                if line.is_empty() {
                    continue;
                }
                return serde_json::from_slice(line)
                    .map(Some)
                    .map_err(|e| format!("a watch message is not JSON: {e}"));
            }
            if self.buf.len() > MAX_RESPONSE {
                return Err("a watch message is too large".into());
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => return Ok(None),
            }
        }
    }
}

async fn open_watch(http: &Http, endpoint: &str, body: &Value) -> Result<MessageStream, String> {
    let req =
        post(endpoint, "/v3/watch", Bytes::from(body.to_string())).map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(ATTEMPT_TIMEOUT, http.request(req))
        .await
        .map_err(|_| format!("{endpoint}: no answer in {ATTEMPT_TIMEOUT:?}"))?
        .map_err(|e| format!("{endpoint}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{endpoint}: watch answered HTTP {}", resp.status()));
    }
    Ok(MessageStream {
        body: resp.into_body(),
        buf: BytesMut::new(),
    })
}

/// Why a watch connection ended.
enum WatchEnd {
    /// The receiver is gone.
    Closed,
    /// The history was compacted past the next revision wanted.
    Compacted(Revision),
    /// etcd refused the watch itself (a cancel that is not a compaction).
    Refused(String),
    /// The member went away, failed, or stopped answering: reconnect elsewhere.
    Lost(String),
}

/// How long a watch may be silent before its member is probed.
const WATCH_IDLE_PROBE: Duration = Duration::from_secs(30);
/// Refusals in a row after which a watch gives up.
const WATCH_MAX_REFUSALS: u32 = 10;

/// Follows `prefix` from `after`, reconnecting through other members as needed.
async fn run_watch(
    c: Arc<Conn>,
    prefix: String,
    mut after: Revision,
    tx: mpsc::Sender<Result<Event, StoreError>>,
) {
    // When the current outage began (None while connected).
    let mut lost_since: Option<Instant> = None;
    let mut refusals = 0u32;
    let mut failures = 0u32;
    loop {
        let i = c.current.load(Ordering::Relaxed);
        let body = json!({"create_request": {
            "key": b64(prefix.as_bytes()),
            "range_end": b64(&range_end(&prefix)),
            "start_revision": (after + 1).to_string(),
            "prev_kv": true,
        }});
        let end = tokio::select! {
            end = follow(&c, c.endpoint(i), &body, &mut after, &tx, &mut lost_since) => end,
            () = tx.closed() => WatchEnd::Closed,
        };
        let why = match end {
            WatchEnd::Closed => return,
            WatchEnd::Compacted(oldest) => {
                let _ = tx
                    .send(Err(StoreError::Compacted {
                        requested: after,
                        oldest,
                    }))
                    .await;
                return;
            }
            WatchEnd::Refused(why) => {
                refusals += 1;
                if refusals >= WATCH_MAX_REFUSALS {
                    let _ = tx
                        .send(Err(backend(format!("etcd refuses the watch: {why}"))))
                        .await;
                    return;
                }
                why
            }
            WatchEnd::Lost(why) => {
                refusals = 0;
                why
            }
        };
        c.fail_over(i);
        failures += 1;
        let since = *lost_since.get_or_insert_with(Instant::now);
        if since.elapsed() > WATCH_RECONNECT_WINDOW {
            let _ = tx
                .send(Err(backend(format!(
                    "etcd watch lost for {WATCH_RECONNECT_WINDOW:?}: {why}"
                ))))
                .await;
            return;
        }
        tracing::debug!(error = %why, after, "etcd watch lost; reconnecting");
        if (failures as usize).is_multiple_of(c.endpoints.len()) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The events after `after` must still be whole before we resume there.
        if let Err(StoreError::Compacted { oldest, .. }) =
            c.check_not_compacted(&prefix, after).await
        {
            let _ = tx
                .send(Err(StoreError::Compacted {
                    requested: after,
                    oldest,
                }))
                .await;
            return;
        }
    }
}

/// One watch connection: delivers events, advancing `after` a whole response (every event
/// of a revision) at a time, until it ends.
async fn follow(
    c: &Conn,
    endpoint: &str,
    body: &Value,
    after: &mut Revision,
    tx: &mpsc::Sender<Result<Event, StoreError>>,
    lost_since: &mut Option<Instant>,
) -> WatchEnd {
    let mut stream = match open_watch(&c.http, endpoint, body).await {
        Ok(s) => s,
        Err(e) => return WatchEnd::Lost(e),
    };
    let start = *after;
    loop {
        let msg = match tokio::time::timeout(WATCH_IDLE_PROBE, stream.next()).await {
            Ok(Ok(Some(m))) => m,
            Ok(Ok(None)) => return WatchEnd::Lost(format!("{endpoint} closed the watch")),
            Ok(Err(e)) => return WatchEnd::Lost(format!("{endpoint}: {e}")),
            // Silence may be a quiet prefix or a frozen member: ask the member.
            Err(_) => match c.probe(endpoint).await {
                Ok(()) => continue,
                Err(e) => return WatchEnd::Lost(format!("{endpoint} stopped answering: {e}")),
            },
        };
        let Some(result) = msg.get("result") else {
            return WatchEnd::Lost(format!("{endpoint}: watch error {msg}"));
        };
        if result.get("canceled").and_then(Value::as_bool) == Some(true) {
            let compact = int(result, "compact_revision");
            if compact > 0 {
                return WatchEnd::Compacted(compact);
            }
            let reason = result
                .get("cancel_reason")
                .and_then(Value::as_str)
                .unwrap_or("");
            if reason.contains("no leader") {
                return WatchEnd::Lost(format!("{endpoint}: {reason}"));
            }
            return WatchEnd::Refused(format!("{endpoint} cancelled the watch: {reason}"));
        }
        *lost_since = None;
        let Some(Value::Array(events)) = result.get("events") else {
            continue;
        };
        let mut last = *after;
        for e in events {
            let event = match watch_event(c, e) {
                Ok(ev) => ev,
                Err(err) => {
                    let _ = tx.send(Err(err)).await;
                    return WatchEnd::Closed;
                }
            };
            let rev = event.kv.mod_revision;
            // etcd starts a connection at the revision asked; never repeat one before it.
            if rev <= start {
                continue;
            }
            if tx.send(Ok(event)).await.is_err() {
                return WatchEnd::Closed;
            }
            last = last.max(rev);
        }
        *after = last;
    }
}

/// A gateway watch event as a store [`Event`].
fn watch_event(c: &Conn, e: &Value) -> Result<Event, StoreError> {
    let kv = e
        .get("kv")
        .ok_or_else(|| backend("watch event without kv"))?;
    let is_delete = e.get("type").and_then(Value::as_str) == Some("DELETE");
    if is_delete {
        let mod_revision = int(kv, "mod_revision");
        let mut last = match e.get("prev_kv") {
            Some(p) => c.key_value(p)?,
            None => c.key_value(kv)?,
        };
        last.mod_revision = mod_revision;
        let prev = Some(last.value.clone());
        Ok(Event {
            kind: EventKind::Delete,
            kv: last,
            created: false,
            prev,
        })
    } else {
        let kv = c.key_value(kv)?;
        let created = kv.create_revision == kv.mod_revision;
        let prev = match e.get("prev_kv") {
            Some(p) if !created => Some(c.key_value(p)?.value),
            _ => None,
        };
        Ok(Event {
            kind: EventKind::Put,
            kv,
            created,
            prev,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_move_under_the_configured_prefix_and_back() {
        assert_eq!(
            map_key("/registry/secrets/kube-system/x", REGISTRY, "/kb"),
            "/kb/secrets/kube-system/x"
        );
        assert_eq!(
            map_key("/kb/secrets/kube-system/x", "/kb", REGISTRY),
            "/registry/secrets/kube-system/x"
        );
        assert_eq!(map_key("/registry", REGISTRY, "/kb"), "/kb");
        // Only a whole leading segment is replaced.
        assert_eq!(map_key("/registryx/a", REGISTRY, "/kb"), "/registryx/a");
        assert_eq!(map_key("/other/a", REGISTRY, "/kb"), "/other/a");
        assert_eq!(map_key("/registry/a", REGISTRY, REGISTRY), "/registry/a");
    }

    #[test]
    fn gateway_integers_are_strings_and_absent_means_zero() {
        let v = json!({"revision": "42", "n": 7});
        assert_eq!(int(&v, "revision"), 42);
        assert_eq!(int(&v, "n"), 7);
        assert_eq!(int(&v, "missing"), 0);
    }

    #[test]
    fn a_prefix_range_ends_after_every_key_with_that_prefix() {
        assert_eq!(range_end("/registry/"), b"/registry0".to_vec());
        assert_eq!(range_end(""), vec![0]);
    }

    #[test]
    fn only_unavailability_is_retried() {
        assert!(retryable(14, "etcdserver: no leader"));
        assert!(retryable(0, "etcdserver: request timed out"));
        assert!(retryable(13, "etcdserver: leader changed"));
        assert!(!retryable(
            11,
            "etcdserver: mvcc: required revision has been compacted"
        ));
        assert!(!retryable(3, "etcdserver: key is not provided"));
    }
}
