//! Serving one accepted connection — HTTP/2 when TLS agreed on it (ALPN `h2`), HTTP/1.1
//! otherwise, as Go's servers decide — with the deadlines that keep a silent or idle client
//! from holding it: an HTTP/1.1 client must send its request headers within 30 s, an HTTP/2
//! client its connection preface within 10 s (Go's http2 `prefaceTimeout`), and an HTTP/2
//! connection with no stream open for 90 s is closed with a GOAWAY (kube-apiserver's
//! `IdleTimeout`). Knows nothing of what a request means: it calls `handle` for each.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use crate::http::Body;

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
    let io = Counted {
        inner: io,
        read: Arc::new(AtomicU64::new(0)),
    };
    let read = io.read.clone();
    let streams = Arc::new(Streams::new());
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
                    // A HEAD answer has the headers of a GET and no body: HTTP/1.1 drops
                    // it by itself, but DATA frames on an HTTP/2 HEAD stream break it.
                    let body = match head {
                        true => empty(),
                        false => body,
                    };
                    body.map_frame(move |frame| {
                        let _open = &stream;
                        frame
                    })
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
    if protocol == Protocol::Http1 {
        let _ = conn.await;
        return;
    }
    tokio::select! {
        _ = conn.as_mut() => return,
        ending = watch_http2(&read, &streams) => match ending {
            // Nothing to say goodbye to: no HTTP/2 was ever spoken.
            Ending::NoPreface => return,
            Ending::Idle => conn.as_mut().graceful_shutdown(),
        },
    }
    // The GOAWAY is sent; a client that does not close is not waited for long.
    let _ = tokio::time::timeout(GOAWAY_GRACE, conn).await;
}

fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// How long a client may take to send its HTTP/1.1 request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long an HTTP/2 client may take to send its connection preface.
pub const PREFACE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an HTTP/2 connection may stay without an open stream.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(90);
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const GOAWAY_GRACE: Duration = Duration::from_secs(5);
/// `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`.
const PREFACE_LEN: u64 = 24;

/// Why the server ends an HTTP/2 connection.
#[derive(Debug, PartialEq, Eq)]
enum Ending {
    NoPreface,
    Idle,
}

/// Waits until the connection should end: no preface in time, or idle too long.
async fn watch_http2(read: &AtomicU64, streams: &Streams) -> Ending {
    tokio::time::sleep(PREFACE_TIMEOUT).await;
    if read.load(Ordering::Relaxed) < PREFACE_LEN {
        return Ending::NoPreface;
    }
    loop {
        match streams.idle_left(Instant::now()) {
            Some(left) => tokio::time::sleep(left).await,
            None => return Ending::Idle,
        }
    }
}

/// The streams open on a connection, and since when none is.
struct Streams {
    open: AtomicUsize,
    /// Guarded: the instant the last stream closed (or the connection began).
    idle_since: Mutex<Instant>,
}

impl Streams {
    fn new() -> Self {
        Self {
            open: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
        }
    }

    /// How long until the connection has been idle for [`IDLE_TIMEOUT`]; `None` when it
    /// has. With a stream open, a full timeout (it is looked at again then).
    fn idle_left(&self, now: Instant) -> Option<Duration> {
        if self.open.load(Ordering::Acquire) > 0 {
            return Some(IDLE_TIMEOUT);
        }
        let since = *self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        IDLE_TIMEOUT
            .checked_sub(now.saturating_duration_since(since))
            .filter(|left| !left.is_zero())
    }
}

/// One open stream; closing it (dropping) marks the time, when it was the last.
struct Stream(Arc<Streams>);

impl Stream {
    fn open(streams: Arc<Streams>) -> Self {
        streams.open.fetch_add(1, Ordering::AcqRel);
        Self(streams)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut since = self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            *since = Instant::now();
        }
    }
}

/// An I/O stream that counts the bytes read from it.
struct Counted<I> {
    inner: I,
    read: Arc<AtomicU64>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before) as u64;
        self.read.fetch_add(n, Ordering::Relaxed);
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::http::full;
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

    #[tokio::test(start_paused = true)]
    async fn an_http1_client_that_sends_no_request_is_dropped_after_30_s() {
        let (_client, server) = tokio::io::duplex(64 * 1024);
        let started = Instant::now();
        let limit = 2 * HEADER_READ_TIMEOUT;
        within(limit, "the close", serve(server, Protocol::Http1, ok)).await;
        assert_eq!(started.elapsed().as_secs(), HEADER_READ_TIMEOUT.as_secs());
    }
}
