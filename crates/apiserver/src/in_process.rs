//! Requests from inside the server's process — its own controllers — handed to the request
//! path directly: no socket, no TLS and no HTTP encoding between two parts of one process.
//! Everything from the request path down (authentication, authorization, admission, the
//! handlers, audit and metrics) is what a request over the network meets. The caller is
//! whoever its client certificate names, as a TLS connection presenting that certificate
//! would be; the verdict on the certificate is taken again when the certificate changes and
//! at least every [`REVERIFY`], so a new client CA or an expired certificate is seen at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use kubeboot_pki::reload::Reloading;
use tokio::time::Instant;

use crate::app::App;
use crate::authn::Conn;

/// Serves one request from this process: the answer, its body streamed as the server
/// produces it (a watch's events as they come); it never fails, and names hyper's error only
/// to be the same type as the client's `kubeboot_client::InProcess`, which this crate does
/// not depend on.
pub type Serve = Arc<
    dyn Fn(
            Request<Full<Bytes>>,
        )
            -> Pin<Box<dyn Future<Output = Response<UnsyncBoxBody<Bytes, hyper::Error>>> + Send>>
        + Send
        + Sync,
>;

/// How long a verdict on the caller's certificate is used before it is taken again.
pub const REVERIFY: Duration = Duration::from_secs(1);

/// Serves the requests handed to it as the holder of `client_cert` (DER). Each is handled
/// in a task of its own on the runtime this is called on (the server's), as a connection's
/// request is: a handler runs to its end even when its caller stops waiting (a controller
/// stopped at the end of its term as leader), so no write is left half done.
pub fn serve(app: Arc<App>, client_cert: Arc<Reloading<Vec<u8>>>) -> Serve {
    let runtime = tokio::runtime::Handle::current();
    let caller = Arc::new(Caller {
        cert: client_cert,
        verdict: Mutex::new(None),
    });
    Arc::new(move |req| {
        let conn = caller.conn(&app);
        let head = req.method() == http::Method::HEAD;
        let handling = runtime.spawn(app.clone().handle(req, conn));
        Box::pin(async move {
            let answer = handling.await.unwrap_or_else(|e| {
                crate::status::status_response(&kubeboot_api::Status::internal(format!(
                    "the request's handler failed: {e}"
                )))
            });
            answer.map(|body| {
                crate::response::body_for(head, body)
                    .map_err(|never| match never {})
                    .boxed_unsync()
            })
        })
    })
}

/// The in-process caller and the last verdict on its certificate.
struct Caller {
    cert: Arc<Reloading<Vec<u8>>>,
    verdict: Mutex<Option<Verdict>>,
}

struct Verdict {
    cert: Arc<Vec<u8>>,
    conn: Arc<Conn>,
    taken: Instant,
}

impl Caller {
    /// What a connection presenting the certificate of the moment brings to a request.
    fn conn(&self, app: &App) -> Arc<Conn> {
        let cert = self.cert.get();
        let now = Instant::now();
        if let Some(v) = &*self.lock()
            && still_valid(v, &cert, now)
        {
            return v.conn.clone();
        }
        // Taken outside the lock: the other requests of the moment wait for nothing.
        let conn = Arc::new(Conn {
            cert: app.peer_cert(Some(&cert)),
            remote: std::net::Ipv4Addr::LOCALHOST.into(),
        });
        *self.lock() = Some(Verdict {
            cert,
            conn: conn.clone(),
            taken: now,
        });
        conn
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Verdict>> {
        self.verdict.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whether a verdict still stands: taken on this very certificate, within [`REVERIFY`].
fn still_valid(v: &Verdict, cert: &Arc<Vec<u8>>, now: Instant) -> bool {
    Arc::ptr_eq(&v.cert, cert) && now.saturating_duration_since(v.taken) < REVERIFY
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authn::PeerCert;

    #[test]
    fn a_verdict_stands_for_its_certificate_within_the_interval() {
        let cert = Arc::new(b"one".to_vec());
        let now = Instant::now();
        let v = Verdict {
            cert: cert.clone(),
            conn: Arc::new(Conn {
                cert: PeerCert::None,
                remote: std::net::Ipv4Addr::LOCALHOST.into(),
            }),
            taken: now,
        };
        let same_bytes_new_read = Arc::new(b"one".to_vec());
        let cases = [
            (&cert, now, true),
            (&cert, now + REVERIFY - Duration::from_millis(1), true),
            (&cert, now + REVERIFY, false),
            (&same_bytes_new_read, now, false),
        ];
        for (i, (c, at, want)) in cases.into_iter().enumerate() {
            assert_eq!(still_valid(&v, c, at), want, "case {i}");
        }
    }
}
