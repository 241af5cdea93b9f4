//! Serving one accepted connection — HTTP/2 when TLS agreed on it (ALPN `h2`), HTTP/1.1
//! otherwise, as Go's servers decide — with the deadlines that keep a silent or idle client
//! from holding it: an HTTP/1.1 client must send its request headers within 30 s, an HTTP/2
//! client its connection preface within 10 s (Go's http2 `prefaceTimeout`), and an HTTP/2
//! connection with no stream open for 90 s is closed with a GOAWAY (kube-apiserver's
//! `IdleTimeout`), and a connection whose client takes nothing of a response for 60 s is
//! closed (as Go's `WriteByteTimeout`; a client that opens no flow-control window, or stops
//! reading, would otherwise hold it forever). Knows nothing of what a request means: it
//! calls `handle` for each.

mod counted;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use self::counted::Counted;
use crate::response::Body;

/// The protocol a connection speaks, from ALPN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2.
    Http2,
}

/// Serves `io` until it closes or a deadline ends it.
pub async fn serve<I, H, F>(io: I, protocol: Protocol, handle: H)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let streams = Arc::new(Streams::new());
    let io = Counted {
        inner: io,
        read: Arc::new(AtomicU64::new(0)),
        streams: streams.clone(),
    };
    let read = io.read.clone();
    let handle = Arc::new(handle);
    let svc = {
        let streams = streams.clone();
        hyper::service::service_fn(move |req| {
            // Open from the request's arrival until its response body is done or dropped.
            let stream = Stream::open(streams.clone());
            let head = req.method() == http::Method::HEAD;
            let response = handle(req);
            async move {
                let response = response.await;
                Ok::<_, Infallible>(response.map(|body| {
                    stream.handed(Instant::now());
                    Delivered {
                        inner: crate::response::body_for(head, body),
                        stream,
                    }
                    .boxed()
                }))
            }
        })
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(KEEP_ALIVE_INTERVAL);
    let builder = match protocol {
        Protocol::Http2 => builder.http2_only(),
        Protocol::Http1 => builder.http1_only(),
    };
    let conn = builder.serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        ending = watch(protocol, &read, &streams) => match ending {
            // Nothing to say goodbye to: no HTTP/2 was ever spoken, or the client is not
            // reading what is said.
            Ending::NoPreface | Ending::Stalled => return,
            Ending::Idle => conn.as_mut().graceful_shutdown(),
        },
    }
    // The GOAWAY is sent; a client that does not close is not waited for long.
    let _ = tokio::time::timeout(GOAWAY_GRACE, conn).await;
}

/// How long a client may take to send its HTTP/1.1 request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an HTTP/2 client may take to send its connection preface.
pub const PREFACE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an HTTP/2 connection may stay without an open stream.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a response may wait for the client to take any of it.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const GOAWAY_GRACE: Duration = Duration::from_secs(5);
/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`.
const PREFACE_LEN: u64 = 24;

/// Why the server ends a connection.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    NoPreface,
    Idle,
    Stalled,
}

/// Waits until the connection should end: no HTTP/2 preface in time, a response the
/// client has taken nothing of for too long, or an HTTP/2 connection idle too long.
async fn watch(protocol: Protocol, read: &AtomicU64, streams: &Streams) -> Ending {
    let http2 = protocol == Protocol::Http2;
    if http2 {
        tokio::time::sleep(PREFACE_TIMEOUT).await;
        if read.load(Ordering::Relaxed) < PREFACE_LEN {
            return Ending::NoPreface;
        }
    }
    loop {
        match streams.next_check(Instant::now(), http2) {
            Ok(left) => {
                tokio::select! {
                    _ = tokio::time::sleep(left) => {}
                    _ = streams.started_waiting.notified() => {}
                }
            }
            Err(ending) => return ending,
        }
    }
}

/// The streams open on a connection: how many, since when none is, and since when each
/// response waits for the client to take what it was handed.
pub(super) struct Streams {
    state: Mutex<StreamsState>,
    /// Told when something starts to wait on the client while nothing did.
    started_waiting: tokio::sync::Notify,
}

struct StreamsState {
    open: usize,
    idle_since: Instant,
    next_id: u64,
    /// Per stream whose response waits on the client, since when.
    waiting: std::collections::HashMap<u64, Instant>,
    /// Since when the socket takes no more (the client reads nothing).
    write_blocked_since: Option<Instant>,
}

impl StreamsState {
    fn waits(&self) -> bool {
        !self.waiting.is_empty() || self.write_blocked_since.is_some()
    }
}

impl Streams {
    fn new() -> Self {
        Self {
            state: Mutex::new(StreamsState {
                open: 0,
                idle_since: Instant::now(),
                next_id: 0,
                waiting: Default::default(),
                write_blocked_since: None,
            }),
            started_waiting: tokio::sync::Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StreamsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the state, and wakes the watch when the connection now waits on the
    /// client where it did not before (later waits are never the oldest).
    fn update(&self, f: impl FnOnce(&mut StreamsState)) {
        let mut state = self.state();
        let waited = state.waits();
        f(&mut state);
        if !waited && state.waits() {
            self.started_waiting.notify_one();
        }
    }

    /// How long until the connection is next looked at, or why it ends now: a response
    /// has waited [`STALL_TIMEOUT`] on the client, or (when `idle_ends_it`) no stream has
    /// been open for [`IDLE_TIMEOUT`].
    fn next_check(&self, now: Instant, idle_ends_it: bool) -> Result<Duration, Ending> {
        let state = self.state();
        let left = |since: Instant, limit: Duration| {
            limit
                .checked_sub(now.saturating_duration_since(since))
                .filter(|left| !left.is_zero())
        };
        let mut next = IDLE_TIMEOUT;
        let oldest = state
            .waiting
            .values()
            .chain(&state.write_blocked_since)
            .min();
        if let Some(&oldest) = oldest {
            next = left(oldest, STALL_TIMEOUT).ok_or(Ending::Stalled)?;
        }
        if idle_ends_it && state.open == 0 {
            next = next.min(left(state.idle_since, IDLE_TIMEOUT).ok_or(Ending::Idle)?);
        }
        Ok(next)
    }
}

/// One open stream; closing it (dropping) marks the time, when it was the last.
struct Stream {
    streams: Arc<Streams>,
    id: u64,
}

impl Stream {
    fn open(streams: Arc<Streams>) -> Self {
        let id = {
            let mut state = streams.state();
            state.open += 1;
            state.next_id += 1;
            state.next_id
        };
        Self { streams, id }
    }

    /// The response handed the connection something the client has yet to take.
    fn handed(&self, now: Instant) {
        self.streams.update(|state| {
            state.waiting.insert(self.id, now);
        });
    }

    /// The connection asks for more: the client took what was handed.
    fn taken(&self) {
        self.streams.state().waiting.remove(&self.id);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut state = self.streams.state();
        state.waiting.remove(&self.id);
        state.open -= 1;
        if state.open == 0 {
            state.idle_since = Instant::now();
        }
    }
}

/// A response body that tells its stream when it waits on the client: from when its head
/// or a frame is handed to the connection until the connection asks for the next frame —
/// which HTTP/2 does only once the client's flow-control window has room, and HTTP/1.1
/// once the socket takes what is buffered.
struct Delivered {
    inner: Body,
    stream: Stream,
}

impl hyper::body::Body for Delivered {
    type Data = bytes::Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        self.stream.taken();
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(_)) = polled {
            self.stream.handed(Instant::now());
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::response::full;
    use bytes::Bytes;
    use http_body_util::{Empty, StreamBody};
    use hyper::body::Frame;

    fn ok(_: Request<Incoming>) -> impl Future<Output = Response<Body>> {
        std::future::ready(Response::new(full("ok")))
    }

    /// A response whose body never ends, like a watch's.
    fn endless(_: Request<Incoming>) -> impl Future<Output = Response<Body>> {
        let frames = futures::stream::pending::<Result<Frame<Bytes>, Infallible>>();
        std::future::ready(Response::new(StreamBody::new(frames).boxed()))
    }

    async fn http2_client(
        io: tokio::io::DuplexStream,
    ) -> (
        hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
        tokio::task::JoinHandle<()>,
    ) {
        let (send, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
                .await
                .expect("HTTP/2 handshake");
        (
            send,
            tokio::spawn(async move {
                let _ = conn.await;
            }),
        )
    }

    /// `f` within `limit` of virtual time, or a failure naming `what`.
    async fn within<T>(limit: Duration, what: &str, f: impl Future<Output = T>) -> T {
        tokio::time::timeout(limit, f)
            .await
            .unwrap_or_else(|_| panic!("{what} did not happen within {limit:?}"))
    }

    fn get() -> Request<Empty<Bytes>> {
        Request::get("http://x/healthz").body(Empty::new()).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_client_that_never_sends_the_preface_is_dropped_after_10_s() {
        let (_client, server) = tokio::io::duplex(64 * 1024);
        let started = Instant::now();
        let limit = 2 * PREFACE_TIMEOUT;
        within(limit, "the close", serve(server, Protocol::Http2, ok)).await;
        assert_eq!(started.elapsed().as_secs(), PREFACE_TIMEOUT.as_secs());
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_connection_idle_for_90_s_after_its_last_stream_is_closed() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(serve(server, Protocol::Http2, ok));
        let started = Instant::now();
        let (mut send, conn) = http2_client(client).await;
        tokio::time::sleep(Duration::from_secs(50)).await;
        let response = send.send_request(get()).await.expect("served");
        response.into_body().collect().await.expect("body");
        let answered = Instant::now();
        // The client answers the server's PINGs meanwhile; that is not activity.
        within(2 * IDLE_TIMEOUT, "the close", conn)
            .await
            .expect("the server closed the connection");
        served.await.expect("serve ended");
        let idle = answered.elapsed();
        assert!(
            idle >= IDLE_TIMEOUT && idle < IDLE_TIMEOUT + Duration::from_secs(2),
            "closed {idle:?} after the last stream ({:?} after connecting)",
            started.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_stream_keeps_an_http2_connection_however_long_it_lasts() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(serve(server, Protocol::Http2, endless));
        let (mut send, conn) = http2_client(client).await;
        let response = send.send_request(get()).await.expect("headers");
        tokio::time::sleep(10 * IDLE_TIMEOUT).await;
        assert!(
            !conn.is_finished() && !served.is_finished(),
            "the watch still runs"
        );
        drop(response);
        within(2 * IDLE_TIMEOUT, "the close", conn)
            .await
            .expect("closed once idle");
        served.await.expect("serve ended");
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_request_over_http2_has_the_headers_and_no_body() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(serve(server, Protocol::Http2, ok));
        let (mut send, conn) = http2_client(client).await;
        for _ in 0..2 {
            let head = Request::head("http://x/healthz")
                .body(Empty::new())
                .unwrap();
            let response = within(IDLE_TIMEOUT, "the answer", send.send_request(head))
                .await
                .expect("a HEAD answer, not a reset stream");
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.expect("a clean end");
            assert!(body.to_bytes().is_empty());
        }
        let response = send
            .send_request(get())
            .await
            .expect("the connection lives on");
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], b"ok");
        drop(send);
        let _ = within(2 * IDLE_TIMEOUT, "the close", conn).await;
        let _ = served.await;
    }

    /// A response of 1 MiB.
    fn large(_: Request<Incoming>) -> impl Future<Output = Response<Body>> {
        std::future::ready(Response::new(full(vec![b'x'; 1 << 20])))
    }

    /// A response that sends a frame every 30 s, forever.
    fn trickle(_: Request<Incoming>) -> impl Future<Output = Response<Body>> {
        let frames = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Some((
                Ok::<_, Infallible>(Frame::data(Bytes::from_static(b"{}\n"))),
                (),
            ))
        });
        std::future::ready(Response::new(StreamBody::new(frames).boxed()))
    }

    /// Waits for `served` to end, which must be [`STALL_TIMEOUT`] after `asked`.
    async fn closed_after_the_stall_timeout(served: tokio::task::JoinHandle<()>, asked: Instant) {
        within(2 * STALL_TIMEOUT, "the close", served)
            .await
            .expect("serve ended");
        let waited = asked.elapsed();
        assert!(
            waited >= STALL_TIMEOUT && waited < STALL_TIMEOUT + Duration::from_secs(2),
            "closed after {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_http2_client_that_opens_no_window_is_dropped_after_60_s() {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let served = tokio::spawn(serve(server, Protocol::Http2, ok));
        let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .initial_stream_window_size(0)
            .handshake::<_, Empty<Bytes>>(TokioIo::new(client))
            .await
            .expect("HTTP/2 handshake");
        let conn = tokio::spawn(conn);
        let asked = Instant::now();
        let response = send.send_request(get()).await.expect("the headers");
        assert_eq!(response.status(), 200);
        closed_after_the_stall_timeout(served, asked).await;
        let _ = within(STALL_TIMEOUT, "the client's end", conn).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_http1_client_that_reads_no_response_is_dropped_after_60_s() {
        use tokio::io::AsyncWriteExt;
        let (mut client, server) = tokio::io::duplex(1024);
        let served = tokio::spawn(serve(server, Protocol::Http1, large));
        client
            .write_all(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .expect("the request");
        let asked = Instant::now();
        closed_after_the_stall_timeout(served, asked).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_reads_a_slow_response_keeps_its_connection() {
        for protocol in [Protocol::Http1, Protocol::Http2] {
            let (client, server) = tokio::io::duplex(1024);
            let served = tokio::spawn(serve(server, protocol, trickle));
            let mut body = match protocol {
                Protocol::Http2 => {
                    let (mut send, _conn) = http2_client(client).await;
                    send.send_request(get()).await.expect("headers").into_body()
                }
                Protocol::Http1 => {
                    let (mut send, conn) =
                        hyper::client::conn::http1::handshake(TokioIo::new(client))
                            .await
                            .expect("HTTP/1.1 handshake");
                    tokio::spawn(conn);
                    send.send_request(get()).await.expect("headers").into_body()
                }
            };
            for _ in 0..20 {
                let frame = within(2 * STALL_TIMEOUT, "a frame", body.frame()).await;
                assert!(frame.is_some_and(|f| f.is_ok()), "{protocol:?}");
            }
            assert!(
                !served.is_finished(),
                "{protocol:?}: ten minutes of a slow response"
            );
            served.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_http1_client_that_sends_no_request_is_dropped_after_30_s() {
        let (_client, server) = tokio::io::duplex(64 * 1024);
        let started = Instant::now();
        let limit = 2 * HEADER_READ_TIMEOUT;
        within(limit, "the close", serve(server, Protocol::Http1, ok)).await;
        assert_eq!(started.elapsed().as_secs(), HEADER_READ_TIMEOUT.as_secs());
    }
}
