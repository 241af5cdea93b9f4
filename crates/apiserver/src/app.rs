//! The request path, top to bottom: what a request asks (`RequestInfo`), the gate
//! (authentication, rate and in-flight limits, authorization), routing, the body read in
//! full, then the handler — with the audit trail and metrics around it. Each step is a
//! module below this one; none of them calls back up.

use std::sync::Arc;
use tokio::time::Instant;

use bytes::Bytes;
use http::{Method, Request, Response, header};

use crate::audit::{Auditor, Trail};
use crate::authn::{Conn, PeerCert};
use crate::body::{RequestBody, read_body};
use crate::gate::Gate;
use crate::handlers::nonresource::NonResource;
use crate::handlers::{Handlers, Res, Sent};
use crate::metrics::Metrics;
use crate::registry;
use crate::requestinfo::{Query, RequestInfo, parse_query};
use crate::response::Body;
use crate::routing::{self, Route};

/// The API server's request handling.
pub struct App {
    gate: Gate,
    handlers: Arc<Handlers>,
    nonresource: NonResource,
    metrics: Arc<Metrics>,
    audit: Option<Arc<Auditor>>,
}

impl App {
    /// The request path over these parts.
    pub fn new(
        gate: Gate,
        handlers: Arc<Handlers>,
        nonresource: NonResource,
        metrics: Arc<Metrics>,
        audit: Option<Arc<Auditor>>,
    ) -> Self {
        Self {
            gate,
            handlers,
            nonresource,
            metrics,
            audit,
        }
    }

    /// The verdict on a connection's client certificate (`leaf`, DER), if it presented one.
    pub fn peer_cert(&self, leaf: Option<&[u8]>) -> PeerCert {
        self.gate.authenticator().peer_cert(leaf)
    }

    /// Whether a client certificate authenticates now.
    pub fn check_client_cert(&self, leaf: &[u8]) -> Result<(), String> {
        self.gate.authenticator().check_client_cert(leaf)
    }

    /// The handlers (the server's own writes go through them).
    pub fn handlers(&self) -> &Arc<Handlers> {
        &self.handlers
    }

    /// The metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The audit log, when auditing.
    pub fn audit(&self) -> Option<&Arc<Auditor>> {
        self.audit.as_ref()
    }

    /// Serves one request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<impl RequestBody>,
        peer: Arc<Conn>,
    ) -> Response<Body> {
        let started = Instant::now();
        let query = parse_query(req.uri().query());
        let info = RequestInfo::new(req.method().as_str(), req.uri().path(), &query);
        let mut trail = Trail::begin(self.audit.as_ref(), &req, &info.verb, peer.remote);
        let resp = self.serve(req, &info, &query, &peer, &mut trail).await;
        let resp = trail.respond(&info.verb, resp).await;
        self.metrics.observe_request(
            metric_verb(&info.verb),
            metric_resource(&info),
            resp.status().as_u16(),
            started.elapsed(),
        );
        resp
    }

    async fn serve(
        &self,
        req: Request<impl RequestBody>,
        info: &RequestInfo,
        q: &Query,
        conn: &Conn,
        trail: &mut Trail,
    ) -> Res {
        let admitted = self.gate.admit(req.headers(), info, conn, trail).await;
        let (user, _slot) = match admitted {
            Ok(admitted) => admitted,
            Err(refusal) => {
                // A small upload is read to its end first: over HTTP/2 an answer that
                // leaves the request unread ends in a stream reset, which some clients
                // (curl) report instead of the answer.
                crate::body::discard_small(req).await;
                return Err(refusal);
            }
        };
        if !info.is_resource {
            let accept = req
                .headers()
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            return self.nonresource.serve(&info.path, q, accept).await;
        }
        let route = routing::route(info, req.method());
        let headers = req.headers().clone();
        // Read the body before anything can answer early, so clients never see their
        // upload cut off; authentication and authorization have already passed.
        let (content_type, body) = match req.method() {
            &Method::POST | &Method::PUT | &Method::PATCH | &Method::DELETE => {
                read_body(req).await?
            }
            _ => (String::new(), Bytes::new()),
        };
        trail.request_body(&info.verb, &content_type, &body);
        let sent = Sent { content_type, body };
        match route? {
            Route::Review(review) if review.plural == "tokenreviews" => {
                let obj = crate::body::decode(&sent.content_type, &sent.body)?;
                let token = obj.pointer("/spec/token").and_then(|t| t.as_str());
                let reviewed = match token.filter(|t| !t.is_empty()) {
                    Some(t) => self.gate.authenticator().authenticate_token(t).await,
                    None => None,
                };
                self.handlers.token_review(review, obj, reviewed)
            }
            Route::Review(review) => {
                let obj = crate::body::decode(&sent.content_type, &sent.body)?;
                self.handlers.review(review, &info.namespace, &user, obj)
            }
            Route::Resource(target) => self.handlers.serve(&target, q, &headers, sent, &user).await,
            Route::Subresource(sub, target) => {
                let obj = crate::body::decode(&sent.content_type, &sent.body)?;
                match sub.kind {
                    "Eviction" => self.handlers.evict(&target, obj, q).await,
                    kind => Err(kubeboot_api::Status::internal(format!(
                        "no handler creates {kind}"
                    ))),
                }
            }
        }
    }
}

/// The verb label of a request's metrics: from a fixed set, so no client can grow the
/// metrics without bound.
fn metric_verb(verb: &str) -> &str {
    match verb {
        v @ ("get" | "list" | "watch" | "create" | "update" | "patch" | "delete"
        | "deletecollection" | "head" | "post" | "put" | "options") => v,
        _ => "other",
    }
}

/// The resource label of a request's metrics: a served resource, or `unknown`.
fn metric_resource(info: &RequestInfo) -> &str {
    match info.is_resource {
        false => "",
        true if registry::find(&info.group, &info.version, &info.resource).is_some()
            || registry::REVIEWS.iter().any(|r| r.plural == info.resource) =>
        {
            info.resource.as_str()
        }
        true => "unknown",
    }
}
