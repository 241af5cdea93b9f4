//! How a client reaches its server: over TCP and TLS, with hyper's pool of kept-alive
//! connections, or — for controllers running in the API server's own process — by handing
//! each request to the server's request path, with no socket, no encryption and no HTTP
//! encoding between two parts of one process. Everything above the transport (the request,
//! its answer, a watch's stream) is the same.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::CertSource;

/// An answer's body, read as it comes: from a connection, it can fail as hyper's do; from
/// this process, it cannot fail.
pub type ResponseBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// Serves a request in this process: the server's answer, its body streamed as the server
/// produces it.
pub type InProcess = Arc<
    dyn Fn(Request<Full<Bytes>>) -> Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>
        + Send
        + Sync,
>;

/// Where a client's requests go.
#[derive(Clone)]
pub(crate) enum Transport {
    /// TCP and TLS (shared by the clones of a client with its pool).
    Https(Arc<Pool>),
    /// A server in this process.
    InProcess(InProcess),
}

/// hyper's client over TCP and TLS.
type Hyper = HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// hyper's client and its pool of kept-alive connections, made anew when the client
/// certificate they present is replaced: the old connections close once no request uses
/// them, as the kubelet closes its connections on a rotation. Kept, they would go on under
/// the old certificate, refused once it expires.
pub(crate) struct Pool {
    connector: HttpsConnector<HttpConnector>,
    /// The certificate the connections present, when there is one.
    cert: Option<CertSource>,
    /// The certificate's generation the current client's connections present, and it.
    current: Mutex<(u64, Arc<Hyper>)>,
}

impl Pool {
    /// A pool of connections made by `connector`, presenting `cert`.
    pub(crate) fn new(connector: HttpsConnector<HttpConnector>, cert: Option<CertSource>) -> Self {
        let generation = cert.as_ref().map_or(0, CertSource::generation);
        let client = Arc::new(hyper_client(connector.clone()));
        Self {
            connector,
            cert,
            current: Mutex::new((generation, client)),
        }
    }

    /// The client whose connections present the current certificate.
    fn client(&self) -> Arc<Hyper> {
        let generation = self.cert.as_ref().map_or(0, CertSource::generation);
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if current.0 != generation {
            *current = (generation, Arc::new(hyper_client(self.connector.clone())));
        }
        Arc::clone(&current.1)
    }
}

/// hyper's client, its idle connections kept 90 s (as Go's transport keeps them).
fn hyper_client(connector: HttpsConnector<HttpConnector>) -> Hyper {
    HyperClient::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

impl Transport {
    /// Sends `req` and waits for the answer's head; the error says why nothing came.
    pub(crate) async fn exchange(
        &self,
        req: Request<Full<Bytes>>,
    ) -> Result<Response<ResponseBody>, String> {
        match self {
            Transport::Https(pool) => match pool.client().request(req).await {
                Ok(resp) => Ok(resp.map(BodyExt::boxed_unsync)),
                Err(e) => Err(crate::error_chain(&e)),
            },
            Transport::InProcess(serve) => Ok(serve(origin_form(req)).await),
        }
    }
}

/// The request as it would arrive over a connection: its target the path and query alone.
fn origin_form<B>(mut req: Request<B>) -> Request<B> {
    if let Some(target) = req.uri().path_and_query().cloned() {
        *req.uri_mut() = target.into();
    }
    req
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_in_process_request_names_its_path_and_query_alone() {
        let cases = [
            (
                "https://127.0.0.1:6443/api/v1/nodes?watch=1",
                "/api/v1/nodes?watch=1",
            ),
            ("https://kube.example/apis/x/v1/y", "/apis/x/v1/y"),
            ("/api", "/api"),
        ];
        for (uri, want) in cases {
            let req = http::Request::get(uri).body(()).unwrap();
            assert_eq!(super::origin_form(req).uri().to_string(), want, "{uri}");
        }
    }
}
