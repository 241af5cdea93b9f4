//! etcd watches: a gRPC stream per watch, which reconnects through another member from
//! the revision after the last event it delivered, so a member failure never loses or
//! repeats an event; only a compacted revision ends it, with [`StoreError::Compacted`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::Incoming;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::conn::{ATTEMPT_TIMEOUT, Conn, Http, WATCH, backend};
use super::grpc::{self, Outgoing};
use super::proto;
use crate::{Event, EventKind, Revision, StoreError};

/// How long a watch keeps trying to reach some member before it gives up.
const WATCH_RECONNECT_WINDOW: Duration = Duration::from_secs(120);
/// How long a watch may be silent before its member is probed.
const WATCH_IDLE_PROBE: Duration = Duration::from_secs(30);
/// Refusals in a row after which a watch gives up.
const WATCH_MAX_REFUSALS: u32 = 10;

/// An open watch stream on one member.
pub(super) struct Stream {
    body: Incoming,
    deframer: grpc::Deframer,
    /// The request stream, kept open while the watch is followed.
    _requests: mpsc::Sender<Bytes>,
}

impl Stream {
    /// The next response; `Ok(None)` when the member closed the stream.
    pub(super) async fn next(&mut self) -> Result<Option<proto::WatchResponse>, String> {
        use http_body_util::BodyExt;
        loop {
            if let Some(message) = self.deframer.next()? {
                return prost::Message::decode(message)
                    .map(Some)
                    .map_err(|e| format!("a malformed watch response: {e}"));
            }
            match self.body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => self.deframer.push(&data),
                    Err(frame) => {
                        let status = frame.trailers_ref().and_then(grpc::status);
                        return match status {
                            Some(s) if s.code != 0 => Err(s.message),
                            _ => Ok(None),
                        };
                    }
                },
                Some(Err(e)) => return Err(e.to_string()),
                None if !self.deframer.is_empty() => {
                    return Err("the watch stream ended in the middle of a message".into());
                }
                None => return Ok(None),
            }
        }
    }
}

/// Opens a watch stream on `endpoint` with `create`.
pub(super) async fn open(
    http: &Http,
    endpoint: &str,
    create: proto::WatchCreateRequest,
) -> Result<Stream, String> {
    let (requests, body) = Outgoing::channel();
    let first = proto::WatchRequest {
        request_union: Some(proto::WatchRequestUnion::Create(create)),
    };
    let _ = requests.try_send(grpc::frame(&first));
    let req = grpc::request(endpoint, WATCH, body).map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(ATTEMPT_TIMEOUT, http.request(req))
        .await
        .map_err(|_| format!("{endpoint}: no answer in {ATTEMPT_TIMEOUT:?}"))?
        .map_err(|e| format!("{endpoint}: {e}"))?;
    if !resp.status().is_success() {
        return Err(format!("{endpoint}: watch answered HTTP {}", resp.status()));
    }
    if let Some(s) = grpc::status(resp.headers())
        && s.code != 0
    {
        return Err(format!("{endpoint}: {}", s.message));
    }
    Ok(Stream {
        body: resp.into_body(),
        deframer: grpc::Deframer::default(),
        _requests: requests,
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

/// Follows `prefix` (an etcd key) from `after`, reconnecting through other members as
/// needed.
pub(super) async fn run(
    c: Arc<Conn>,
    prefix: Vec<u8>,
    mut after: Revision,
    tx: mpsc::Sender<Result<Event, StoreError>>,
) {
    // When the current outage began (None while connected).
    let mut lost_since: Option<Instant> = None;
    let mut refusals = 0u32;
    let mut failures = 0u32;
    loop {
        let i = c.current.load(Ordering::Relaxed);
        let create = proto::WatchCreateRequest {
            key: prefix.clone(),
            range_end: super::range_end(&prefix),
            start_revision: after + 1,
            prev_kv: true,
        };
        let end = tokio::select! {
            end = follow(&c, c.endpoint(i), create, &mut after, &tx, &mut lost_since) => end,
            () = tx.closed() => WatchEnd::Closed,
        };
        let why = match end {
            WatchEnd::Closed => return,
            WatchEnd::Compacted(oldest) => {
                return end_with(
                    &tx,
                    StoreError::Compacted {
                        requested: after,
                        oldest,
                    },
                )
                .await;
            }
            WatchEnd::Refused(why) => {
                refusals += 1;
                if refusals >= WATCH_MAX_REFUSALS {
                    let refused = backend(format!("etcd refuses the watch: {why}"));
                    return end_with(&tx, refused).await;
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
            let lost = backend(format!(
                "etcd watch lost for {WATCH_RECONNECT_WINDOW:?}: {why}"
            ));
            return end_with(&tx, lost).await;
        }
        tracing::debug!(error = %why, after, "etcd watch lost; reconnecting");
        if (failures as usize).is_multiple_of(c.endpoints.len()) {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The events after `after` must still be whole before we resume there.
        if let Err(compacted @ StoreError::Compacted { .. }) =
            c.check_not_compacted(&prefix, after).await
        {
            return end_with(&tx, compacted).await;
        }
    }
}

/// Ends a watch with `error`, its last message.
async fn end_with(tx: &mpsc::Sender<Result<Event, StoreError>>, error: StoreError) {
    let _ = tx.send(Err(error)).await;
}

/// One watch connection: delivers events, advancing `after` a whole response (every event
/// of a revision) at a time, until it ends.
async fn follow(
    c: &Conn,
    endpoint: &str,
    create: proto::WatchCreateRequest,
    after: &mut Revision,
    tx: &mpsc::Sender<Result<Event, StoreError>>,
    lost_since: &mut Option<Instant>,
) -> WatchEnd {
    let mut stream = match open(&c.http, endpoint, create).await {
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
        if msg.canceled {
            if msg.compact_revision > 0 {
                return WatchEnd::Compacted(msg.compact_revision);
            }
            if msg.cancel_reason.contains("no leader") {
                return WatchEnd::Lost(format!("{endpoint}: {}", msg.cancel_reason));
            }
            return WatchEnd::Refused(format!(
                "{endpoint} cancelled the watch: {}",
                msg.cancel_reason
            ));
        }
        *lost_since = None;
        let mut last = *after;
        for e in msg.events {
            let event = match event(c, e) {
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

/// An etcd watch event as a store [`Event`].
fn event(c: &Conn, e: proto::Event) -> Result<Event, StoreError> {
    let kv = e.kv.ok_or_else(|| backend("watch event without kv"))?;
    if e.r#type == proto::DELETE {
        let mod_revision = kv.mod_revision;
        let mut last = c.key_value(e.prev_kv.unwrap_or(kv))?;
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
        let prev = match e.prev_kv {
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
