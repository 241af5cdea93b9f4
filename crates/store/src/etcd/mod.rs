//! The etcd backend: the same [`Store`] contract on an etcd v3 cluster, so several API
//! servers can serve one cluster.
//!
//! It speaks etcd's v3 gRPC API (`etcdserverpb.KV/Range`, `/Txn`, `/Compact`,
//! `etcdserverpb.Watch/Watch`) over HTTP/2 on the hyper and rustls stack the rest of kubeboot
//! uses, with the messages declared in [`proto`] (no code generation), and keeps the choice
//! of member in our hands:
//!
//! - Every write is one transaction that compares the key's `create_revision` or
//!   `mod_revision`, so optimistic concurrency holds across servers.
//! - A request that fails because a member is down, has no leader, or timed out is retried
//!   on the next member until the request deadline. A write whose first attempt may have
//!   landed is recognised on retry by its value (API objects carry a fresh uid and
//!   resourceVersion-free body, so equal bytes mean our own write).
//! - A watch that loses its member reconnects to another from the revision after the last
//!   event it delivered (see [`watch`]).
//!
//! Keys are laid out as kube-apiserver lays them out: the leading `/registry` of a store key
//! is replaced by the configured prefix (`--etcd-prefix`, default `/registry`).
//!
//! It spoke etcd's JSON gateway before; gRPC costs etcd 2.5× less CPU per join (README,
//! Performance).

mod conn;
mod grpc;
mod proto;
mod watch;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use bytes::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

pub use self::conn::REGISTRY;
use self::conn::{COMPACTED, Conn, backend, point, unknown_outcome};
use crate::{BoxFuture, KeyValue, ListPage, Revision, Store, StoreError, WatchStream, prefix_end};

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

/// Events a watch may have buffered for a slow reader before it waits.
const WATCH_BUFFER: usize = 4096;

/// The `range_end` that makes a range cover every key starting with `prefix`.
fn range_end(prefix: &[u8]) -> Vec<u8> {
    std::str::from_utf8(prefix)
        .ok()
        .and_then(prefix_end)
        .map_or_else(|| vec![0], String::into_bytes)
}

/// A page of a range answer.
fn page(
    c: &Conn,
    v: proto::RangeResponse,
    revision: Option<Revision>,
) -> Result<ListPage, StoreError> {
    Ok(ListPage {
        revision: revision.unwrap_or_else(|| v.header.map_or(0, |h| h.revision)),
        more: v.more,
        items: v
            .kvs
            .into_iter()
            .map(|kv| c.key_value(kv))
            .collect::<Result<_, _>>()?,
    })
}

/// The compare of an update or delete: the key exists, and with `expected`, was last
/// written at that revision.
fn existing(key: &[u8], expected: Option<Revision>) -> proto::Compare {
    match expected {
        Some(rev) => proto::Compare {
            result: proto::EQUAL,
            target: proto::MOD,
            key: key.to_vec(),
            target_union: Some(proto::TargetUnion::ModRevision(rev)),
        },
        None => proto::Compare {
            result: proto::GREATER,
            target: proto::CREATE,
            key: key.to_vec(),
            target_union: Some(proto::TargetUnion::CreateRevision(0)),
        },
    }
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
            .enable_http2()
            .wrap_connector(tcp);
        // gRPC is HTTP/2 only (spoken at once on http:// members). Windows large enough
        // for a big list to stream without a round trip per 64 KiB.
        let http = HyperClient::builder(TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .pool_timer(hyper_util::rt::TokioTimer::new())
            .http2_only(true)
            .http2_initial_stream_window_size(Some(4 << 20))
            .http2_initial_connection_window_size(Some(16 << 20))
            .http2_keep_alive_interval(Some(Duration::from_secs(30)))
            .http2_keep_alive_timeout(Duration::from_secs(10))
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
                let mut k = c.etcd_key(k);
                k.push(0);
                k
            }
            None => eprefix.clone(),
        };
        let v = c
            .range(proto::RangeRequest {
                key: from,
                range_end: range_end(&eprefix),
                limit: limit.map_or(0, |l| i64::try_from(l).unwrap_or(i64::MAX)),
                revision: revision.unwrap_or(0),
                count_only: false,
            })
            .await?;
        page(c, v, revision)
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
            let v = c.range(point(&c.etcd_key(key))).await?;
            let revision = v.header.as_ref().map_or(0, |h| h.revision);
            let kv = v
                .kvs
                .into_iter()
                .next()
                .map(|kv| c.key_value(kv))
                .transpose()?;
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
            let v = c
                .range(proto::RangeRequest {
                    range_end: range_end(&p),
                    key: p,
                    count_only: true,
                    ..Default::default()
                })
                .await?;
            Ok(u64::try_from(v.count).unwrap_or(0))
        })
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move {
            let c = &self.conn;
            let k = c.etcd_key(key);
            let absent = proto::Compare {
                result: proto::EQUAL,
                target: proto::CREATE,
                key: k.clone(),
                target_union: Some(proto::TargetUnion::CreateRevision(0)),
            };
            let put = proto::Request::Put(proto::PutRequest {
                key: k.clone(),
                value: value.clone(),
                prev_kv: false,
            });
            let out = c.txn(&k, absent, put).await?;
            if out.succeeded {
                return Ok(KeyValue {
                    key: key.to_owned(),
                    value,
                    create_revision: out.revision,
                    mod_revision: out.revision,
                });
            }
            match c.ranged(out.responses)? {
                // An earlier attempt landed: the key holds exactly what we wrote.
                Some(kv) if out.retried && kv.value == value => Ok(kv),
                Some(_) if out.retried => Err(unknown_outcome("create", key)),
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
            let k = c.etcd_key(key);
            let put = proto::Request::Put(proto::PutRequest {
                key: k.clone(),
                value: value.clone(),
                prev_kv: true,
            });
            let out = c.txn(&k, existing(&k, expected), put).await?;
            if out.succeeded {
                let prev = match out.responses.into_iter().next().and_then(|r| r.response) {
                    Some(proto::Response::Put(p)) => p.prev_kv,
                    _ => None,
                };
                return Ok(KeyValue {
                    key: key.to_owned(),
                    value,
                    create_revision: prev.map_or(out.revision, |p| p.create_revision),
                    mod_revision: out.revision,
                });
            }
            match c.ranged(out.responses)? {
                None => Err(StoreError::NotFound(key.to_owned())),
                // An earlier attempt landed: our bytes, written after the expected revision.
                Some(kv)
                    if out.retried
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
            let k = c.etcd_key(key);
            let delete = proto::Request::DeleteRange(proto::DeleteRangeRequest {
                key: k.clone(),
                prev_kv: true,
            });
            let out = c.txn(&k, existing(&k, expected), delete).await?;
            if out.succeeded {
                let prev = match out.responses.into_iter().next().and_then(|r| r.response) {
                    Some(proto::Response::DeleteRange(d)) => d.prev_kvs.into_iter().next(),
                    _ => None,
                }
                .ok_or_else(|| backend("etcd deleted without returning the last value"))?;
                let mut kv = c.key_value(prev)?;
                kv.mod_revision = out.revision;
                return Ok(kv);
            }
            match c.ranged(out.responses)? {
                // An earlier attempt may have been the delete that made it go.
                None if out.retried => Err(unknown_outcome("delete", key)),
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
            tokio::spawn(watch::run(c, eprefix, after, tx));
            Ok(rx)
        })
    }

    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>> {
        Box::pin(async move {
            let c = &self.conn;
            let v = c
                .range(proto::RangeRequest {
                    key: c.etcd_key(REGISTRY),
                    count_only: true,
                    ..Default::default()
                })
                .await?;
            Ok(v.header.map_or(0, |h| h.revision))
        })
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let request = proto::CompactionRequest { revision };
            let answer: Result<(proto::CompactionResponse, bool), _> =
                self.conn.call(conn::COMPACT, &request).await;
            match answer {
                Ok(_) => Ok(()),
                // Another server compacted as far already.
                Err(StoreError::Backend(m)) if m.contains(COMPACTED) => Ok(()),
                Err(e) => Err(e),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_range_ends_after_every_key_with_that_prefix() {
        assert_eq!(range_end(b"/registry/"), b"/registry0".to_vec());
        assert_eq!(range_end(b""), vec![0]);
    }
}
