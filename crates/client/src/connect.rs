//! How a client reaches its server: over TCP and TLS, or — for controllers running in the
//! API server's own process — over an in-memory stream the server serves directly, with no
//! socket and no encryption between two parts of one process. Everything above the
//! transport (HTTP, authentication, authorization, admission) is the same.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use tokio::io::DuplexStream;
use tokio::net::TcpStream;

/// Opens a connection to a server in this process: the returned end is the client's; the
/// server serves the other end.
pub type Dial = Arc<dyn Fn() -> DuplexStream + Send + Sync>;

/// Makes connections for the HTTP client.
#[derive(Clone)]
pub(crate) enum Connector {
    /// TCP and TLS.
    Https(HttpsConnector<HttpConnector>),
    /// A server in this process.
    InProcess(Dial),
}

/// A connection made by [`Connector`]. One lives per connection and the TLS stream is the
/// common case, so it is held inline rather than boxed.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Stream {
    Https(MaybeHttpsStream<TokioIo<TcpStream>>),
    InProcess(TokioIo<DuplexStream>),
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Connector::Https(c) => c.poll_ready(cx),
            Connector::InProcess(_) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        match self {
            Connector::Https(c) => {
                let connecting = c.call(uri);
                Box::pin(async move { connecting.await.map(Stream::Https) })
            }
            Connector::InProcess(dial) => {
                let stream = dial();
                Box::pin(async move { Ok(Stream::InProcess(TokioIo::new(stream))) })
            }
        }
    }
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        match self {
            Stream::Https(s) => s.connected(),
            Stream::InProcess(_) => Connected::new(),
        }
    }
}

impl Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Https(s) => Pin::new(s).poll_read(cx, buf),
            Stream::InProcess(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Https(s) => Pin::new(s).poll_write(cx, buf),
            Stream::InProcess(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Https(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::InProcess(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Https(s) => s.is_write_vectored(),
            Stream::InProcess(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Https(s) => Pin::new(s).poll_flush(cx),
            Stream::InProcess(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Https(s) => Pin::new(s).poll_shutdown(cx),
            Stream::InProcess(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
