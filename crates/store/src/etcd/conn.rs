//! The connection to an etcd cluster: its members, the one requests go to first, and the
//! failover that moves to the next member when one is down, has no leader, or is too slow.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::time::Instant;

use super::grpc::{self, Outgoing};
use super::proto;
use crate::{KeyValue, Revision, StoreError};

/// The key prefix kubeboot's API server writes under.
pub const REGISTRY: &str = "/registry";

/// How long one attempt on one member may take before the next member is tried.
pub(super) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// The error text etcd gives for a revision older than its compaction.
pub(super) const COMPACTED: &str = "required revision has been compacted";

pub(super) type Http = HyperClient<HttpsConnector<HttpConnector>, Outgoing>;

/// The gRPC methods the backend calls.
pub(super) const RANGE: &str = "/etcdserverpb.KV/Range";
pub(super) const TXN: &str = "/etcdserverpb.KV/Txn";
pub(super) const COMPACT: &str = "/etcdserverpb.KV/Compact";
pub(super) const WATCH: &str = "/etcdserverpb.Watch/Watch";

pub(super) fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// One failed attempt: whether another member may succeed.
pub(super) enum Failure {
    /// The member is down, has no leader, or was too slow: try the next one. `sent` when
    /// the request may have reached etcd (and so may have been applied).
    Retry { why: String, sent: bool },
    /// etcd refused the request itself.
    Fatal(StoreError),
}

/// Whether an etcd error (gRPC code and message) means "try another member".
pub(super) fn retryable(code: i64, message: &str) -> bool {
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

/// A write whose first attempt may have landed, and whose retry cannot tell.
pub(super) fn unknown_outcome(op: &str, key: &str) -> StoreError {
    backend(format!(
        "the {op} of {key} may or may not have been applied (an etcd member failed mid-request); read the object to find out"
    ))
}

/// The members and how to reach them.
pub(super) struct Conn {
    pub(super) http: Http,
    pub(super) endpoints: Vec<String>,
    /// The member requests go to first; moves on when it fails.
    pub(super) current: AtomicUsize,
    pub(super) prefix: String,
    pub(super) timeout: Duration,
}

/// A transaction's outcome: whether its compare held, its revision, its responses, and
/// whether an earlier attempt may have applied it.
pub(super) struct TxnOutcome {
    pub(super) succeeded: bool,
    pub(super) revision: Revision,
    pub(super) responses: Vec<proto::ResponseOp>,
    pub(super) retried: bool,
}

impl Conn {
    /// The etcd key of a store key.
    pub(super) fn etcd_key(&self, key: &str) -> Vec<u8> {
        map_key(key, REGISTRY, &self.prefix).into_bytes()
    }

    /// A kv as etcd sent it, as a store [`KeyValue`].
    pub(super) fn key_value(&self, kv: proto::KeyValue) -> Result<KeyValue, StoreError> {
        let key = String::from_utf8(kv.key).map_err(|_| backend("etcd key is not UTF-8"))?;
        Ok(KeyValue {
            key: map_key(&key, &self.prefix, REGISTRY),
            value: kv.value,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
        })
    }

    pub(super) fn endpoint(&self, i: usize) -> &str {
        &self.endpoints[i % self.endpoints.len()]
    }

    /// Moves on from member `i` (unless another caller already has).
    pub(super) fn fail_over(&self, i: usize) {
        let _ = self.current.compare_exchange(
            i,
            (i + 1) % self.endpoints.len(),
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// One unary call on one member.
    async fn attempt<Resp: prost::Message + Default>(
        &self,
        endpoint: &str,
        method: &str,
        message: &bytes::Bytes,
        deadline: Instant,
    ) -> Result<Resp, Failure> {
        let retry = |why: String| Failure::Retry { why, sent: true };
        let req = grpc::request(endpoint, method, Outgoing::once(message.clone()))
            .map_err(|e| Failure::Fatal(backend(e)))?;
        // A member that does not answer within ATTEMPT_TIMEOUT is passed over; a large body
        // that is arriving may take until the operation's deadline.
        let resp = tokio::time::timeout(ATTEMPT_TIMEOUT, self.http.request(req))
            .await
            .map_err(|_| retry(format!("{endpoint}: no answer in {ATTEMPT_TIMEOUT:?}")))?
            .map_err(|e| Failure::Retry {
                why: format!("{endpoint}: {e}"),
                sent: !e.is_connect(),
            })?;
        let http_status = resp.status();
        if !http_status.is_success() {
            return Err(retry(format!("{endpoint}: answered HTTP {http_status}")));
        }
        let answered = grpc::status(resp.headers());
        let collected = tokio::time::timeout_at(
            deadline.max(Instant::now() + ATTEMPT_TIMEOUT),
            http_body_util::Limited::new(resp.into_body(), grpc::MAX_MESSAGE + 5).collect(),
        )
        .await
        .map_err(|_| retry(format!("{endpoint}: the response did not arrive in time")))?
        .map_err(|e| retry(format!("{endpoint}: reading the response: {e}")))?;
        let status = answered
            .or_else(|| collected.trailers().and_then(grpc::status))
            .ok_or_else(|| {
                retry(format!(
                    "{endpoint}: the answer ended without a gRPC status"
                ))
            })?;
        if status.code != 0 {
            return if retryable(status.code, &status.message) {
                Err(retry(format!("{endpoint}: {}", status.message)))
            } else {
                Err(Failure::Fatal(backend(format!("etcd: {}", status.message))))
            };
        }
        let mut deframer = grpc::Deframer::default();
        deframer.push(&collected.to_bytes());
        let message = deframer
            .next()
            .map_err(|e| retry(format!("{endpoint}: {e}")))?
            .ok_or_else(|| retry(format!("{endpoint}: the answer holds no message")))?;
        Resp::decode(message).map_err(|e| retry(format!("{endpoint}: a malformed answer: {e}")))
    }

    /// Calls `method` on the current member, failing over to the others until the
    /// deadline. Returns the answer and whether an earlier attempt may have been applied.
    pub(super) async fn call<Resp: prost::Message + Default>(
        &self,
        method: &str,
        request: &impl prost::Message,
    ) -> Result<(Resp, bool), StoreError> {
        let message = grpc::frame(request);
        let deadline = Instant::now() + self.timeout;
        let mut attempts = 0u32;
        let mut maybe_applied = false;
        loop {
            let i = self.current.load(Ordering::Relaxed);
            match self
                .attempt(self.endpoint(i), method, &message, deadline)
                .await
            {
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

    /// A range read.
    pub(super) async fn range(
        &self,
        request: proto::RangeRequest,
    ) -> Result<proto::RangeResponse, StoreError> {
        Ok(self.call(RANGE, &request).await?.0)
    }

    /// A transaction: `compare` decides between `success` and `failure`, and a failed
    /// compare reads the key (its current state tells a conflict from a missing key).
    pub(super) async fn txn(
        &self,
        key: &[u8],
        compare: proto::Compare,
        success: proto::Request,
    ) -> Result<TxnOutcome, StoreError> {
        let request = proto::TxnRequest {
            compare: vec![compare],
            success: vec![proto::RequestOp {
                request: Some(success),
            }],
            failure: vec![proto::RequestOp {
                request: Some(proto::Request::Range(point(key))),
            }],
        };
        let (v, retried): (proto::TxnResponse, bool) = self.call(TXN, &request).await?;
        Ok(TxnOutcome {
            succeeded: v.succeeded,
            revision: v.header.map_or(0, |h| h.revision),
            responses: v.responses,
            retried,
        })
    }

    /// The kv a failed transaction's range read, if the key exists.
    pub(super) fn ranged(
        &self,
        responses: Vec<proto::ResponseOp>,
    ) -> Result<Option<KeyValue>, StoreError> {
        match responses.into_iter().next().and_then(|r| r.response) {
            Some(proto::Response::Range(r)) => r
                .kvs
                .into_iter()
                .next()
                .map(|kv| self.key_value(kv))
                .transpose(),
            _ => Ok(None),
        }
    }

    /// `Compacted` when the history after `after` is no longer whole. A range at revision
    /// `after` fails exactly when etcd has compacted past it — the store contract's rule
    /// (a watch must start at or after the compacted revision).
    pub(super) async fn check_not_compacted(
        &self,
        prefix: &[u8],
        after: Revision,
    ) -> Result<(), StoreError> {
        let probe = self
            .range(proto::RangeRequest {
                key: prefix.to_vec(),
                count_only: true,
                revision: after.max(1),
                ..Default::default()
            })
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
    pub(super) async fn probe(&self, endpoint: &str) -> Result<(), String> {
        let request = proto::RangeRequest {
            key: b"\0probe".to_vec(),
            count_only: true,
            ..Default::default()
        };
        match self
            .attempt::<proto::RangeResponse>(
                endpoint,
                RANGE,
                &grpc::frame(&request),
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
    pub(super) async fn compacted_revision(&self) -> Revision {
        let probe = async {
            let i = self.current.load(Ordering::Relaxed);
            let create = proto::WatchCreateRequest {
                key: b"\0compaction-probe".to_vec(),
                start_revision: 1,
                ..Default::default()
            };
            let mut stream = super::watch::open(&self.http, self.endpoint(i), create)
                .await
                .ok()?;
            for _ in 0..4 {
                let msg = stream.next().await.ok()??;
                if msg.canceled {
                    return Some(msg.compact_revision);
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

/// A range of exactly one key.
pub(super) fn point(key: &[u8]) -> proto::RangeRequest {
    proto::RangeRequest {
        key: key.to_vec(),
        ..Default::default()
    }
}

/// Replaces the leading `from` segment of `key` with `to` (keys outside `from` are kept).
pub(super) fn map_key(key: &str, from: &str, to: &str) -> String {
    match key.strip_prefix(from) {
        Some(rest) if from != to && (rest.is_empty() || rest.starts_with('/')) => {
            format!("{to}{rest}")
        }
        _ => key.to_owned(),
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
