//! The HTTP layer: authentication, authorization and dispatch of every request, and the
//! generic handlers (get, list, watch, create, update, patch, delete) over the resource
//! descriptions of `registry`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use kubeboot_api::clock::{Clock, format_rfc3339};
use kubeboot_api::{Status, StatusCause};
use kubeboot_store::{Revision, Store, StoreError};
use serde_json::{Value, json};

use crate::admission::namespace_lifecycle;
use crate::audit::Trail;
use crate::authn::{ClientCa, UserInfo, bearer_token};
use crate::authz::{Attributes, Authorizer, Decision, forbidden_message};
use crate::body::{decode, read_body};
use crate::discovery;
use crate::listoptions::{self, decode_continue, encode_continue};
use crate::metrics::Metrics;
use crate::object::{self, meta_mut, meta_str, set_resource_version, set_type};
use crate::patch::{self, PatchType};
use crate::registry::{self, NameRule, ResourceDef};
use crate::requestinfo::{Query, RequestInfo, parse_query};
use crate::selectors::Selector;
use crate::status::from_store;
use crate::strategy::{self, Admission};
use crate::strict;
use crate::tables;
use crate::watch::ClientWatch;
use crate::watch::cache::{WatchCache, with_resource_version};
use crate::watch::frames::Frames;

/// The response body type.
pub type Body = BoxBody<Bytes, Infallible>;

pub use crate::body::MAX_BODY;

/// Authenticates bearer tokens (the bootstrap-token authenticator plugs in here).
pub trait TokenAuthenticator: Send + Sync {
    /// The user a token is, `Ok(None)` when this authenticator does not know it.
    fn authenticate<'a>(
        &'a self,
        token: &'a str,
    ) -> kubeboot_store::BoxFuture<'a, Option<UserInfo>>;
}

/// The identity a TLS connection's client certificate established.
#[derive(Clone, Debug)]
pub enum PeerCert {
    /// No certificate presented.
    None,
    /// A valid certificate: this user, until the certificate's end.
    Valid(UserInfo, std::time::SystemTime),
    /// A certificate that failed verification.
    Invalid,
}

/// What a connection brings to each of its requests.
#[derive(Clone, Debug)]
pub struct Conn {
    /// The client certificate's verdict.
    pub cert: PeerCert,
    /// The client's address.
    pub remote: std::net::IpAddr,
}

/// `/version`.
#[derive(Clone, Debug)]
pub struct VersionInfo {
    /// The JSON body.
    pub json: Value,
}

impl Default for VersionInfo {
    fn default() -> Self {
        Self {
            json: json!({"major": "1", "minor": "33", "gitVersion": concat!("v1.33.0-kubeboot.", env!("CARGO_PKG_VERSION")),
                "gitCommit": "", "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z",
                "goVersion": "rust", "compiler": "rustc", "platform": format!("{}/{}", std::env::consts::OS, arch())}),
        }
    }
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Everything a request handler needs.
pub struct App {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The watch cache.
    pub cache: Arc<WatchCache>,
    /// The authorizer.
    pub authz: Arc<Authorizer>,
    /// Client certificate authentication (None: client certificates are ignored).
    pub client_ca: Option<ClientCa>,
    /// Bearer token authentication.
    pub tokens: Option<Arc<dyn TokenAuthenticator>>,
    /// Whether anonymous requests are allowed (as `system:anonymous`).
    pub anonymous: bool,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// `/version`.
    pub version: VersionInfo,
    /// Per-address limit on anonymous requests.
    pub anonymous_limiter: Option<crate::ratelimit::Limiter>,
    /// The limits on requests served at once.
    pub inflight: crate::inflight::InFlight,
    /// The audit policy and log, when auditing.
    pub audit: Option<Arc<crate::audit::Auditor>>,
}

type Res = Result<Response<Body>, Status>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A JSON response.
pub fn json_response(code: StatusCode, v: &impl serde::Serialize) -> Response<Body> {
    json_with_type(code, v, "application/json")
}

fn json_with_type(
    code: StatusCode,
    v: &impl serde::Serialize,
    content_type: &str,
) -> Response<Body> {
    text_response(
        code,
        serde_json::to_vec(v).unwrap_or_default(),
        content_type,
    )
}

/// A list's JSON text: its kind, apiVersion and metadata, then `items`, the comma-separated
/// texts of its objects, as they are.
fn list_body(head: &Value, items: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() + 256);
    // Writing a `Value` into a `Vec` cannot fail. An object's text ends with its closing
    // brace; the items go before it.
    let _ = serde_json::to_writer(&mut out, head);
    debug_assert_eq!(out.last(), Some(&b'}'));
    out.pop();
    out.extend_from_slice(b",\"items\":[");
    out.extend_from_slice(items);
    out.extend_from_slice(b"]}");
    out
}

fn text_response(code: StatusCode, text: impl Into<Bytes>, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .header("X-Content-Type-Options", "nosniff")
        .body(full(text))
        .expect("static headers are valid")
}

/// What the client wants back, from `Accept` and the query.
struct Want {
    table: bool,
    include_object: String,
}

impl Want {
    fn new(headers: &HeaderMap, q: &Query) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Self {
            table: accept
                .split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table")),
            include_object: q
                .get("includeObject")
                .cloned()
                .unwrap_or_else(|| "Metadata".into()),
        }
    }
}

impl App {
    /// The verdict on a connection's client certificate (`leaf`, DER), if it presented one.
    pub fn peer_cert(&self, leaf: Option<&[u8]>) -> PeerCert {
        match (leaf, &self.client_ca) {
            (Some(leaf), Some(ca)) => match ca.authenticate(leaf, self.clock.now()) {
                Ok((user, not_after)) => PeerCert::Valid(user, not_after),
                Err(e) => {
                    tracing::debug!(error = %e, "client certificate refused");
                    PeerCert::Invalid
                }
            },
            _ => PeerCert::None,
        }
    }

    /// Serves one request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: Arc<Conn>,
    ) -> Response<Body> {
        let started = Instant::now();
        let query = parse_query(req.uri().query());
        let info = RequestInfo::new(req.method().as_str(), req.uri().path(), &query);
        let mut trail = Trail::begin(self.audit.as_ref(), &req, &info.verb, peer.remote);
        let resp = self.serve(req, &info, &query, &peer, &mut trail).await;
        let resp = trail.respond(&info.verb, resp).await;
        // Labels come from fixed sets, so no client can grow the metrics without bound.
        let resource = match info.is_resource {
            false => "",
            true if registry::find(&info.group, &info.version, &info.resource).is_some()
                || registry::REVIEWS.iter().any(|r| r.plural == info.resource) =>
            {
                info.resource.as_str()
            }
            true => "unknown",
        };
        let verb = match info.verb.as_str() {
            v @ ("get" | "list" | "watch" | "create" | "update" | "patch" | "delete"
            | "deletecollection" | "head" | "post" | "put" | "options") => v,
            _ => "other",
        };
        self.metrics
            .observe_request(verb, resource, resp.status().as_u16(), started.elapsed());
        resp
    }

    async fn authenticate(&self, headers: &HeaderMap, peer: &PeerCert) -> Result<UserInfo, Status> {
        // Any bytes, as Go's server takes them: a header that is not ASCII still carries a
        // token, which fails (401) rather than counting as no header (anonymous).
        let header = headers
            .get(header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        if let Some(token) = header.as_deref().and_then(bearer_token) {
            if let Some(tokens) = &self.tokens
                && let Some(user) = tokens.authenticate(token).await
            {
                return Ok(user);
            }
            return Err(Status::unauthorized());
        }
        match peer {
            PeerCert::Valid(u, not_after) if self.clock.now() <= *not_after => Ok(u.clone()),
            // The certificate expired while the connection lived.
            PeerCert::Valid(..) => Err(Status::unauthorized()),
            PeerCert::Invalid => Err(Status::unauthorized()),
            PeerCert::None if self.anonymous => Ok(UserInfo::anonymous()),
            PeerCert::None => Err(Status::unauthorized()),
        }
    }

    /// Asks the authorizer about a user.
    pub fn can(&self, user: &UserInfo, a: &Attributes) -> bool {
        matches!(self.authz.authorize(user, a), Decision::Allowed { .. })
    }

    /// Authentication, the anonymous rate limit, the in-flight limit and authorization:
    /// who the requester is and the slot the request holds until its response is built
    /// (its body included), or why it is refused.
    async fn admit(
        &self,
        req: &Request<Incoming>,
        info: &RequestInfo,
        conn: &Conn,
        trail: &mut Trail,
    ) -> Result<(UserInfo, crate::inflight::Slot), Status> {
        let attrs = attributes(info);
        let user = self.authenticate(req.headers(), &conn.cert).await;
        trail.authenticated(user.as_ref().ok(), &attrs, &info.version);
        let user = user?;
        if user.name == crate::authn::ANONYMOUS
            && let Some(limiter) = &self.anonymous_limiter
            && let Err(wait) = limiter.check(conn.remote, Instant::now())
        {
            return Err(Status::too_many_requests(wait));
        }
        let slot = self.inflight.admit(
            crate::inflight::classify(&info.verb, &info.subresource),
            &user,
        )?;
        let decision = self.authz.authorize(&user, &attrs);
        trail.decided(&decision);
        if decision == Decision::Denied {
            let subject = info.is_resource.then(|| kubeboot_api::status::Subject {
                resource: &info.resource,
                group: &info.group,
                name: &info.name,
            });
            return Err(Status::forbidden(
                subject,
                &forbidden_message(&user, &attrs),
            ));
        }
        Ok((user, slot))
    }

    async fn serve(
        &self,
        req: Request<Incoming>,
        info: &RequestInfo,
        q: &Query,
        conn: &Conn,
        trail: &mut Trail,
    ) -> Res {
        let (user, _slot) = match self.admit(&req, info, conn, trail).await {
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
            return self.non_resource(&req, info, q).await;
        }
        let headers = req.headers().clone();
        let method = req.method().clone();
        // Read the body before anything can answer early, so clients never see their
        // upload cut off; authentication and authorization have already passed.
        let (ct, body) = if matches!(
            method,
            Method::POST | Method::PUT | Method::PATCH | Method::DELETE
        ) {
            read_body(req).await?
        } else {
            (String::new(), Bytes::new())
        };
        trail.request_body(&info.verb, &ct, &body);
        if let Some(review) = registry::REVIEWS.iter().find(|r| {
            r.group == info.group && r.version == info.version && r.plural == info.resource
        }) {
            if method != Method::POST {
                return Err(Status::method_not_allowed(format!(
                    "the server does not allow this method on the requested resource ({})",
                    review.plural
                )));
            }
            return self.review(review, &user, decode(&ct, &body)?);
        }
        let Some(def) = registry::find(&info.group, &info.version, &info.resource) else {
            return Err(Status::failure(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        };
        let not_found = || {
            Status::failure(
                404,
                "NotFound",
                "the server could not find the requested resource",
            )
        };
        // `namespaces/<a>/namespaces/<b>` would be authorized in namespace <a> but act on <b>.
        if info.resource == "namespaces"
            && !info.namespace.is_empty()
            && info.namespace != info.name
        {
            return Err(not_found());
        }
        listoptions::write_options(&info.verb, q)?;
        // What is authorized is what is done: no create of a named URL, no update of a
        // collection, and no create or delete through a subresource.
        if (info.verb == "create" && !info.name.is_empty())
            || (matches!(info.verb.as_str(), "update" | "patch") && info.name.is_empty())
            || (!info.subresource.is_empty()
                && matches!(info.verb.as_str(), "create" | "delete" | "deletecollection"))
        {
            return Err(Status::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        if !info.subresource.is_empty() && !def.subresources.contains(&info.subresource.as_str()) {
            return Err(Status::failure(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
        if !def.namespaced && !info.namespace.is_empty() && info.resource != "namespaces" {
            return Err(Status::failure(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
        if def.namespaced
            && info.namespace.is_empty()
            && !matches!(info.verb.as_str(), "list" | "watch")
        {
            return Err(Status::failure(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ));
        }
        let want = Want::new(&headers, q);
        let ns = if def.namespaced {
            info.namespace.as_str()
        } else {
            ""
        };
        if matches!(info.verb.as_str(), "create" | "update") && strict::is_strict(q) {
            let errors = strict::body_errors(&ct, &body);
            if !errors.is_empty() {
                return Err(strict::decoding_error(def, &errors));
            }
        }
        match info.verb.as_str() {
            "get" => self.get(def, ns, &info.name, q, &want).await,
            "list" => self.list(def, ns, q, &want).await,
            "watch" => self.watch(def, ns, q, &want).await,
            "create" => self.create(def, ns, &ct, &body, q, &user).await,
            "update" => {
                let sent = decode(&ct, &body)?;
                self.update(
                    def,
                    ns,
                    &info.name,
                    &info.subresource,
                    Update::Replace(sent),
                    q,
                    &user,
                )
                .await
            }
            "patch" => {
                let Some(ty) = PatchType::from_content_type(&ct) else {
                    return Err(Status::unsupported_media_type(&ct));
                };
                self.update(
                    def,
                    ns,
                    &info.name,
                    &info.subresource,
                    Update::Patch(ty, body),
                    q,
                    &user,
                )
                .await
            }
            "delete" => {
                let opts = if body.is_empty() {
                    None
                } else {
                    Some(decode(&ct, &body)?)
                };
                self.delete(def, ns, &info.name, opts).await
            }
            "deletecollection" => self.delete_collection(def, ns, q).await,
            other => Err(Status::method_not_allowed(format!(
                "verb {other:?} is not supported"
            ))),
        }
    }

    async fn non_resource(&self, req: &Request<Incoming>, info: &RequestInfo, q: &Query) -> Res {
        let accept = req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let path = info.path.trim_end_matches('/');
        let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
        match path {
            "/healthz" | "/livez" | "/readyz" => Ok(text_response(
                StatusCode::OK,
                "ok",
                "text/plain; charset=utf-8",
            )),
            "/version" => ok(self.version.json.clone()),
            "/metrics" => Ok(text_response(
                StatusCode::OK,
                self.metrics.render(self.cache.watcher_count()),
                "text/plain; version=0.0.4",
            )),
            "/api" | "/apis" => match discovery::aggregated_version(accept) {
                Some(v) => Ok(json_with_type(
                    StatusCode::OK,
                    &discovery::aggregated(path == "/api", v),
                    &discovery::aggregated_content_type(v),
                )),
                None if path == "/api" => ok(discovery::api_versions()),
                None => ok(discovery::api_group_list()),
            },
            "/openapi/v3" => ok(discovery::openapi_v3_root()),
            "/openapi/v2" | "/swagger-2.0.0.pb-v1" => {
                if accept.contains("protobuf") || path.ends_with("pb-v1") {
                    Ok(text_response(
                        StatusCode::OK,
                        discovery::openapi_v2_protobuf(),
                        discovery::OPENAPI_V2_PROTOBUF,
                    ))
                } else {
                    ok(discovery::openapi_v2_json())
                }
            }
            "" => ok(
                json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/metrics", "/openapi/v3", "/readyz", "/version"]}),
            ),
            _ => {
                let _ = q;
                if let Some(doc) = path
                    .strip_prefix("/openapi/v3/")
                    .and_then(discovery::openapi_v3_doc)
                {
                    return Ok(json_response(StatusCode::OK, doc));
                }
                let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                let found = match parts.as_slice() {
                    ["api", v] => discovery::api_resource_list("", v),
                    ["apis", g] => discovery::api_group(g),
                    ["apis", g, v] => discovery::api_resource_list(g, v),
                    _ => None,
                };
                match found {
                    Some(v) => ok(v),
                    None => Err(Status::failure(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    )),
                }
            }
        }
    }

    fn now(&self) -> SystemTime {
        self.clock.now()
    }

    fn output(&self, def: &ResourceDef, mut obj: Value) -> Value {
        set_type(&mut obj, &def.api_version(), def.kind);
        obj
    }

    async fn read_object(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<(Value, Revision), Status> {
        let kv = self
            .store
            .get(&def.key(ns, name))
            .await
            .map_err(|e| from_store(e, def, name))?
            .ok_or_else(|| Status::not_found(def.subject(name)))?;
        let mut obj: Value = serde_json::from_slice(&kv.value)
            .map_err(|e| Status::internal(format!("stored object is not JSON: {e}")))?;
        set_resource_version(&mut obj, kv.mod_revision);
        Ok((obj, kv.mod_revision))
    }

    /// Waits (at most 3 s) until the store has reached the revision a read asks for, or
    /// answers 504 `Too large resource version`, as kube-apiserver's watch cache does. The
    /// watch cache tells when the store moves on.
    async fn fresh_enough(&self, rv: u64) -> Result<(), Status> {
        let wanted = Revision::try_from(rv).unwrap_or(Revision::MAX);
        let store_revision = || async {
            self.store
                .revision()
                .await
                .map_err(|e| Status::internal(e.to_string()))
        };
        if store_revision().await? >= wanted {
            return Ok(());
        }
        self.cache
            .wait_for(wanted, listoptions::FRESHNESS_WAIT)
            .await;
        let current = store_revision().await?;
        match current >= wanted {
            true => Ok(()),
            false => Err(Status::too_large_resource_version(
                rv,
                u64::try_from(current).unwrap_or_default(),
            )),
        }
    }

    async fn get(&self, def: &ResourceDef, ns: &str, name: &str, q: &Query, want: &Want) -> Res {
        if let Some(rv) = listoptions::must_have_reached(q)? {
            self.fresh_enough(rv).await?;
        }
        let (obj, _) = self.read_object(def, ns, name).await?;
        let obj = self.output(def, obj);
        if want.table {
            return Ok(json_response(
                StatusCode::OK,
                &tables::of_one(def, obj, self.now(), &want.include_object),
            ));
        }
        Ok(json_response(StatusCode::OK, &obj))
    }

    async fn list(&self, def: &ResourceDef, ns: &str, q: &Query, want: &Want) -> Res {
        listoptions::validate_list(q)?;
        if let Some(rv) = listoptions::must_have_reached(q)? {
            self.fresh_enough(rv).await?;
        }
        let selector = selector(def, q)?;
        let limit = q
            .get("limit")
            .and_then(|l| l.parse::<usize>().ok())
            .filter(|l| *l > 0);
        let cont = match q.get("continue").filter(|c| !c.is_empty()) {
            Some(c) => Some(decode_continue(c)?),
            None => None,
        };
        let prefix = def.ns_prefix(ns);
        if cont
            .as_ref()
            .is_some_and(|(key, _)| !key.starts_with(&prefix))
        {
            return Err(Status::bad_request(
                "continue key is not valid: it belongs to another list",
            ));
        }
        // A list pinned to one name reads that one key, not the whole collection.
        let key = selector
            .fields
            .name()
            .map(|n| def.key(ns, n))
            .filter(|_| !def.namespaced || !ns.is_empty());
        // Each object is let go as soon as it is read: a table keeps only its row, a list
        // only the object's JSON text, the stored one with the resourceVersion spliced in (as
        // a watch event carries it). Without selectors that text is never parsed into a
        // `Value`, so a list of 100,000 objects holds their text once, not a tree of each.
        let now = self.now();
        let plain = selector.is_everything();
        let mut rows = Vec::new();
        let mut items: Vec<u8> = Vec::new();
        let mut after = cont.as_ref().map(|(key, _)| key.clone());
        // Every page of a list is read at one revision: the one it asked for exactly, the
        // one its first page was read at (a continue token carries it; -1 says the latest),
        // or the latest for a new list.
        let exact = listoptions::exact_revision(q)?;
        let mut revision = exact.or(cont.as_ref().map(|(_, rev)| *rev).filter(|r| *r >= 0));
        if let (Some(at), None) = (revision, exact) {
            // A token this server made never names a revision it has not reached.
            let current = self
                .store
                .revision()
                .await
                .map_err(|e| from_store(e, def, ""))?;
            if at > current {
                return Err(Status::bad_request(format!(
                    "continue key is not valid: its resource version {at} is newer than the server's ({current})"
                )));
            }
        }
        let mut next: Option<String> = None;
        let mut found = 0;
        // Page through the store until the selectors have yielded `limit` items.
        for _ in 0..1_000_000 {
            let page_size = limit.map(|l| (l - found).max(1)).unwrap_or(10_000);
            let request = PageRequest {
                prefix: &prefix,
                key: key.as_deref(),
                after: after.as_deref(),
                limit: Some(page_size),
            };
            let page = match self.read_page(request, revision).await {
                Ok(page) => page,
                Err(StoreError::Compacted { .. }) if cont.is_some() && exact.is_none() => {
                    return Err(listoptions::inconsistent_continue(
                        after.as_deref().unwrap_or_default(),
                    ));
                }
                Err(StoreError::Compacted { .. }) => {
                    return Err(Status::expired(listoptions::LIST_TOO_OLD));
                }
                Err(e) => return Err(from_store(e, def, "")),
            };
            revision.get_or_insert(page.revision);
            let last_key = page.items.last().map(|kv| kv.key.clone());
            for kv in page.items {
                // Selectors and tables read the object; a plain list only copies its text.
                let obj = if plain && !want.table {
                    None
                } else {
                    let Ok(obj) = serde_json::from_slice::<Value>(&kv.value) else {
                        continue;
                    };
                    if !selector.matches(&obj) {
                        continue;
                    }
                    Some(obj)
                };
                match obj.filter(|_| want.table) {
                    Some(obj) => {
                        let mut obj = self.output(def, obj);
                        set_resource_version(&mut obj, kv.mod_revision);
                        rows.push(tables::row(def, obj, now, &want.include_object));
                    }
                    None => {
                        let Ok(text) = with_resource_version(&kv.value, kv.mod_revision) else {
                            continue;
                        };
                        if found > 0 {
                            items.push(b',');
                        }
                        items.extend_from_slice(&text);
                    }
                }
                found += 1;
            }
            after = last_key;
            if !page.more {
                break;
            }
            if limit.is_some_and(|l| found >= l) {
                next = after.clone();
                break;
            }
        }
        let revision = revision.unwrap_or_default();
        let mut meta = json!({"resourceVersion": revision.to_string()});
        if let Some(key) = next {
            meta["continue"] = json!(encode_continue(&key, revision));
        }
        if want.table {
            return Ok(json_response(
                StatusCode::OK,
                &tables::table(def, rows, meta),
            ));
        }
        let head = json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": meta});
        Ok(text_response(
            StatusCode::OK,
            list_body(&head, &items),
            "application/json",
        ))
    }

    async fn watch(&self, def: &'static ResourceDef, ns: &str, q: &Query, want: &Want) -> Res {
        let selector = selector(def, q)?;
        let opts = listoptions::WatchOptions::parse(q)?;
        let prefix = def.ns_prefix(ns);
        let key = selector
            .fields
            .name()
            .map(|n| def.key(ns, n))
            .filter(|_| !def.namespaced || !ns.is_empty());
        let mut initial: Vec<Value> = Vec::new();
        let start: Revision = match opts.start {
            listoptions::WatchStart::After(rv) => Revision::try_from(rv).map_err(|_| {
                Status::bad_request(format!("invalid resource version: {rv} is out of range"))
            })?,
            listoptions::WatchStart::InitialState { not_older_than } => {
                if let Some(rv) = not_older_than {
                    self.fresh_enough(rv).await?;
                }
                // ADDED events for the current state, then changes after it.
                let request = PageRequest {
                    prefix: &prefix,
                    key: key.as_deref(),
                    after: None,
                    limit: None,
                };
                let page = self
                    .read_page(request, None)
                    .await
                    .map_err(|e| from_store(e, def, ""))?;
                for kv in page.items {
                    if let Ok(mut obj) = serde_json::from_slice::<Value>(&kv.value) {
                        set_resource_version(&mut obj, kv.mod_revision);
                        initial.push(obj);
                    }
                }
                page.revision
            }
        };
        let handle = match self.cache.watch(&prefix, key, start) {
            Ok(h) => h,
            Err(oldest) => {
                return Err(Status::expired(format!(
                    "too old resource version: {start} ({oldest})"
                )));
            }
        };
        let watch = ClientWatch {
            selector,
            frames: Frames {
                def,
                table: want.table,
                include_object: want.include_object.clone(),
                clock: self.clock.clone(),
            },
            bookmarks: opts.bookmarks,
            streaming_list: opts.streaming_list,
            deadline: tokio::time::Instant::now() + opts.timeout,
            start,
        };
        let stream = watch
            .lines(initial, handle, self.cache.clone())
            .map(|b| Ok::<_, Infallible>(Frame::data(b)));
        Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::CACHE_CONTROL, "no-cache, private")
            .body(BodyExt::boxed(StreamBody::new(stream)))
            .expect("static headers are valid"))
    }

    /// A page of a collection, or just the one key a name selector pins (the revision read
    /// first, so that a write between the two reads is seen again rather than lost); as the
    /// collection was at revision `at`, when given.
    async fn read_page(
        &self,
        page: PageRequest<'_>,
        at: Option<Revision>,
    ) -> Result<kubeboot_store::ListPage, StoreError> {
        let PageRequest {
            prefix,
            key,
            after,
            limit,
        } = page;
        match (key, at) {
            (None, None) => self.store.list(prefix, after, limit).await,
            (None, Some(at)) => self.store.list_at(prefix, after, limit, at).await,
            // The one key was the first page.
            (Some(_), at) if after.is_some() => Ok(kubeboot_store::ListPage {
                items: Vec::new(),
                revision: match at {
                    Some(at) => at,
                    None => self.store.revision().await?,
                },
                more: false,
            }),
            (Some(k), Some(at)) => {
                let mut page = self.store.list_at(k, None, Some(1), at).await?;
                page.items.retain(|kv| kv.key == k);
                page.more = false;
                Ok(page)
            }
            (Some(k), None) => {
                let revision = self.store.revision().await?;
                let kv = self.store.get(k).await?;
                Ok(kubeboot_store::ListPage {
                    items: kv.into_iter().collect(),
                    revision,
                    more: false,
                })
            }
        }
    }

    /// Refuses a new `name` of `def` in namespace `ns` unless `ns` exists and is not being
    /// deleted (NamespaceLifecycle).
    async fn ensure_namespace(
        &self,
        def: &ResourceDef,
        name: &str,
        ns: &str,
    ) -> Result<(), Status> {
        let ns_def = registry::by_kind(registry::Kind::Namespace);
        let Some(kv) = self
            .store
            .get(&ns_def.key("", ns))
            .await
            .map_err(|e| from_store(e, ns_def, ns))?
        else {
            return Err(Status::not_found(ns_def.subject(ns)));
        };
        let namespace: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        if namespace_lifecycle::is_terminating(&namespace) {
            return Err(namespace_lifecycle::terminating_denial(
                def.subject(name),
                ns,
            ));
        }
        Ok(())
    }

    /// Marks a namespace about to be deleted `Terminating` (with its deletionTimestamp), so
    /// nothing new is created in it while its contents go; returns its new revision.
    async fn mark_terminating(
        &self,
        def: &ResourceDef,
        name: &str,
        mut namespace: Value,
        rev: Revision,
    ) -> Result<Revision, Status> {
        if namespace_lifecycle::is_terminating(&namespace) {
            return Ok(rev);
        }
        namespace["status"]["phase"] = json!("Terminating");
        meta_mut(&mut namespace).insert(
            "deletionTimestamp".into(),
            json!(format_rfc3339(self.now())),
        );
        strip_rv(&mut namespace);
        let value = serde_json::to_vec(&namespace)
            .map_err(|e| Status::internal(format!("encoding namespace {name}: {e}")))?;
        let kv = self
            .store
            .update(&def.key("", name), value.into(), Some(rev))
            .await
            .map_err(|e| from_store(e, def, name))?;
        Ok(kv.mod_revision)
    }

    async fn create(
        &self,
        def: &ResourceDef,
        ns: &str,
        ct: &str,
        body: &[u8],
        q: &Query,
        user: &UserInfo,
    ) -> Res {
        let sent = decode(ct, body)?;
        let generated = meta_str(&sent, "name").is_empty();
        let mut obj = self.admit_new(def, ns, sent, q, user)?;
        let mut name = meta_str(&obj, "name").to_owned();
        if def.namespaced {
            self.ensure_namespace(def, &name, ns).await?;
        }
        if q.get("dryRun").is_some_and(|d| d == "All") {
            return Ok(json_response(StatusCode::CREATED, &self.output(def, obj)));
        }
        // A generated name that is taken is generated again, as kube-apiserver does
        // (RetryGenerateName: up to 7 more tries); five random characters collide now and
        // then among thousands of objects.
        let mut retries = if generated { 7 } else { 0 };
        let kv = loop {
            let result = self
                .store
                .create(
                    &def.key(ns, &name),
                    Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()),
                )
                .await;
            match result {
                Err(kubeboot_store::StoreError::AlreadyExists(_)) if retries > 0 => {
                    retries -= 1;
                    let prefix = meta_str(&obj, "generateName").to_owned();
                    name = format!("{prefix}{}", object::random_suffix());
                    meta_mut(&mut obj).insert("name".into(), json!(name));
                }
                other => break other.map_err(|e| from_store(e, def, &name))?,
            }
        };
        if def.namespaced {
            // The check above and the namespace's deletion can cross. The deletion marks
            // the namespace Terminating before it lists what is in it: either that list
            // finds this object, or this second look finds the mark and takes the object
            // back. Either way nothing outlives its namespace.
            if let Err(refused) = self.ensure_namespace(def, &name, ns).await {
                let _ = self
                    .store
                    .delete(&def.key(ns, &name), Some(kv.mod_revision))
                    .await;
                return Err(refused);
            }
        }
        set_resource_version(&mut obj, kv.mod_revision);
        Ok(json_response(StatusCode::CREATED, &self.output(def, obj)))
    }

    /// Checks a new object and sets what the server owns; returns what will be stored.
    pub fn admit_new(
        &self,
        def: &ResourceDef,
        ns: &str,
        sent: Value,
        q: &Query,
        user: &UserInfo,
    ) -> Result<Value, Status> {
        check_type(def, &sent)?;
        let (mut obj, unknown) = normalize(def, sent, strict::is_strict(q))?;
        if !unknown.is_empty() {
            return Err(strict::decoding_error(def, &unknown));
        }
        let meta = meta_mut(&mut obj);
        let body_ns = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if def.namespaced {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(Status::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            let generate = meta
                .get("generateName")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if generate.is_empty() {
                return Err(Status::invalid(
                    def.kind,
                    def.group,
                    "",
                    vec![StatusCause::required(
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ));
            }
            name = format!("{generate}{}", object::random_suffix());
        }
        validate_name(def, &name)?;
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(object::random_uid()));
        meta.insert(
            "creationTimestamp".into(),
            json!(format_rfc3339(self.now())),
        );
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(k);
        }
        let can = |a: &Attributes| self.can(user, a);
        let adm = Admission {
            user,
            now: self.now(),
            can: &can,
        };
        strategy::prepare_create(def, &mut obj, &adm)?;
        let causes = strategy::validate(def, &obj, None);
        if !causes.is_empty() {
            return Err(Status::invalid(def.kind, def.group, &name, causes));
        }
        Ok(obj)
    }

    #[allow(clippy::too_many_arguments)]
    async fn update(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        sub: &str,
        change: Update,
        q: &Query,
        user: &UserInfo,
    ) -> Res {
        // Retry on conflicts the client did not cause (it sent no resourceVersion).
        for _ in 0..16 {
            let (old, old_rev) = self.read_object(def, ns, name).await?;
            let sent = match &change {
                Update::Replace(v) => v.clone(),
                Update::Patch(ty, body) => {
                    let base = self.output(def, old.clone());
                    patch::apply(&base, body, *ty, def.patch_schema)?
                }
            };
            check_type(def, &sent)?;
            let sent_name = meta_str(&sent, "name");
            if !sent_name.is_empty() && sent_name != name {
                return Err(Status::bad_request(format!(
                    "the name of the object ({sent_name}) does not match the name on the URL ({name})"
                )));
            }
            if def.namespaced {
                let sent_ns = meta_str(&sent, "namespace");
                if !sent_ns.is_empty() && sent_ns != ns {
                    return Err(Status::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
            }
            let strict = strict::is_strict(q);
            let patched = matches!(change, Update::Patch(..)).then(|| sent.clone());
            let (mut new, unknown) = normalize(def, sent, strict)?;
            match (&change, patched) {
                (Update::Patch(ty, body), Some(patched)) if strict => {
                    let mut errors = strict::patch_errors(*ty, body);
                    errors.extend(unknown);
                    if !errors.is_empty() {
                        return Err(strict::patch_error(*ty, &patched, body, &errors));
                    }
                }
                _ if !unknown.is_empty() => return Err(strict::decoding_error(def, &unknown)),
                _ => {}
            }
            let sent_rv = meta_str(&new, "resourceVersion").to_owned();
            let expected: Revision = if sent_rv.is_empty() {
                if matches!(change, Update::Replace(_)) && !def.unconditional_update {
                    return Err(Status::invalid(
                        def.kind,
                        def.group,
                        name,
                        vec![StatusCause::required(
                            "metadata.resourceVersion",
                            "must be specified for an update",
                        )],
                    ));
                }
                old_rev
            } else {
                let rv: Revision = sent_rv.parse().map_err(|_| {
                    Status::bad_request(format!("invalid resourceVersion {sent_rv:?}"))
                })?;
                if rv != old_rev {
                    return Err(Status::conflict(
                        def.subject(name),
                        "the object has been modified; please apply your changes to the latest version and try again",
                    ));
                }
                rv
            };
            let can = |a: &Attributes| self.can(user, a);
            let adm = Admission {
                user,
                now: self.now(),
                can: &can,
            };
            strategy::prepare_update(def, &mut new, &old, sub, &adm)?;
            carry_server_metadata(&mut new, &old, def, ns);
            let causes = strategy::validate(def, &new, Some(&old));
            if !causes.is_empty() {
                return Err(Status::invalid(def.kind, def.group, name, causes));
            }
            strip_rv(&mut new);
            let mut old_cmp = old.clone();
            strip_rv(&mut old_cmp);
            if new == old_cmp {
                return Ok(json_response(StatusCode::OK, &self.output(def, old)));
            }
            if q.get("dryRun").is_some_and(|d| d == "All") {
                // What would be written, at the version it would replace (as
                // kube-apiserver's dry run answers: `kubectl diff` compares it).
                set_resource_version(&mut new, old_rev);
                return Ok(json_response(StatusCode::OK, &self.output(def, new)));
            }
            match self
                .store
                .update(
                    &def.key(ns, name),
                    Bytes::from(serde_json::to_vec(&new).unwrap_or_default()),
                    Some(expected),
                )
                .await
            {
                Ok(kv) => {
                    set_resource_version(&mut new, kv.mod_revision);
                    return Ok(json_response(StatusCode::OK, &self.output(def, new)));
                }
                Err(StoreError::Conflict { .. }) if sent_rv.is_empty() => continue,
                Err(e) => return Err(from_store(e, def, name)),
            }
        }
        Err(Status::conflict(
            def.subject(name),
            "the object is being modified too often; try again",
        ))
    }

    async fn delete(&self, def: &ResourceDef, ns: &str, name: &str, opts: Option<Value>) -> Res {
        let (old, old_rev) = self.read_object(def, ns, name).await?;
        if let Some(opts) = opts {
            if let Some(uid) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
                && uid != meta_str(&old, "uid")
            {
                return Err(Status::conflict(
                    def.subject(name),
                    &format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&old, "uid")
                    ),
                ));
            }
            if let Some(rv) = opts
                .pointer("/preconditions/resourceVersion")
                .and_then(Value::as_str)
                && rv != old_rev.to_string()
            {
                return Err(Status::conflict(
                    def.subject(name),
                    &format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {old_rev}"
                    ),
                ));
            }
        }
        let mut old_rev = old_rev;
        if def.kind_id == registry::Kind::Namespace {
            if let Some(denial) = namespace_lifecycle::delete_denial(name) {
                return Err(denial);
            }
            old_rev = self
                .mark_terminating(def, name, old.clone(), old_rev)
                .await?;
            self.delete_namespace_contents(name).await?;
        }
        let kv = self
            .store
            .delete(&def.key(ns, name), Some(old_rev))
            .await
            .map_err(|e| from_store(e, def, name))?;
        let mut obj = old;
        set_resource_version(&mut obj, kv.mod_revision);
        Ok(json_response(StatusCode::OK, &self.output(def, obj)))
    }

    /// Finishes deleting namespace `name` if it is Terminating (a deletion interrupted by
    /// a crash or a failed store write): its contents, then the namespace. Whether there
    /// was one to finish.
    pub async fn finish_namespace_deletion(&self, name: &str) -> Result<bool, Status> {
        let def = registry::by_kind(registry::Kind::Namespace);
        let Some(kv) = self
            .store
            .get(&def.key("", name))
            .await
            .map_err(|e| from_store(e, def, name))?
        else {
            return Ok(false);
        };
        let namespace: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        if !namespace_lifecycle::is_terminating(&namespace) {
            return Ok(false);
        }
        self.delete_namespace_contents(name).await?;
        match self
            .store
            .delete(&def.key("", name), Some(kv.mod_revision))
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(true),
            Err(e) => Err(from_store(e, def, name)),
        }
    }

    async fn delete_namespace_contents(&self, ns: &str) -> Result<(), Status> {
        for def in registry::RESOURCES
            .iter()
            .filter(|d| d.namespaced && d.version == "v1")
        {
            let prefix = def.ns_prefix(ns);
            for _ in 0..10_000 {
                let page = self
                    .store
                    .list(&prefix, None, Some(1000))
                    .await
                    .map_err(|e| from_store(e, def, ""))?;
                for kv in &page.items {
                    match self.store.delete(&kv.key, None).await {
                        Ok(_) | Err(StoreError::NotFound(_)) => {}
                        Err(e) => return Err(from_store(e, def, "")),
                    }
                }
                if !page.more {
                    break;
                }
            }
        }
        Ok(())
    }

    async fn delete_collection(&self, def: &ResourceDef, ns: &str, q: &Query) -> Res {
        let selector = selector(def, q)?;
        let page = self
            .store
            .list(&def.ns_prefix(ns), None, None)
            .await
            .map_err(|e| from_store(e, def, ""))?;
        let mut deleted = Vec::new();
        // Kubernetes deletes what it may and answers with the first refusal.
        let mut refused = None;
        for kv in page.items {
            let Ok(mut obj) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            if !selector.matches(&obj) {
                continue;
            }
            let mut expected = None;
            if def.kind_id == registry::Kind::Namespace {
                let name = meta_str(&obj, "name").to_owned();
                if let Some(denial) = namespace_lifecycle::delete_denial(&name) {
                    refused.get_or_insert(denial);
                    continue;
                }
                let rev = self
                    .mark_terminating(def, &name, obj.clone(), kv.mod_revision)
                    .await?;
                self.delete_namespace_contents(&name).await?;
                expected = Some(rev);
            }
            match self.store.delete(&kv.key, expected).await {
                Ok(d) => {
                    set_resource_version(&mut obj, d.mod_revision);
                    deleted.push(obj);
                }
                Err(StoreError::NotFound(_)) => {}
                Err(e) => return Err(from_store(e, def, "")),
            }
        }
        if let Some(refused) = refused {
            return Err(refused);
        }
        let rev = self
            .store
            .revision()
            .await
            .map_err(|e| from_store(e, def, ""))?;
        Ok(json_response(
            StatusCode::OK,
            &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {"resourceVersion": rev.to_string()}, "items": deleted}),
        ))
    }

    fn review(&self, review: &registry::ReviewDef, user: &UserInfo, mut obj: Value) -> Res {
        let api_version = format!("{}/{}", review.group, review.version);
        let status = match review.plural {
            "selfsubjectreviews" => {
                let mut ui = json!({"username": user.name, "groups": user.groups});
                if !user.uid.is_empty() {
                    ui["uid"] = json!(user.uid);
                }
                if !user.extra.is_empty() {
                    ui["extra"] = json!(user.extra);
                }
                json!({"userInfo": ui})
            }
            "selfsubjectrulesreviews" => {
                json!({"resourceRules": [], "nonResourceRules": [], "incomplete": true, "evaluationError": "rule listing is not supported by this server"})
            }
            plural => {
                let subject = if plural == "subjectaccessreviews" {
                    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
                    let mut groups: Vec<String> = spec
                        .get("groups")
                        .and_then(|g| serde_json::from_value(g.clone()).ok())
                        .unwrap_or_default();
                    if !groups.is_empty()
                        && !groups
                            .iter()
                            .any(|g| g == "system:authenticated" || g == "system:unauthenticated")
                    {
                        groups.push("system:authenticated".into());
                    }
                    UserInfo {
                        name: spec
                            .get("user")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        uid: spec
                            .get("uid")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        groups,
                        extra: spec
                            .get("extra")
                            .and_then(|e| serde_json::from_value(e.clone()).ok())
                            .unwrap_or_default(),
                    }
                } else {
                    user.clone()
                };
                let a = review_attributes(obj.get("spec").unwrap_or(&Value::Null));
                let Some(a) = a else {
                    return Err(Status::invalid(
                        review.kind,
                        review.group,
                        "",
                        vec![StatusCause::required(
                            "spec.resourceAttributes",
                            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                        )],
                    ));
                };
                match self.authz.authorize(&subject, &a) {
                    Decision::Allowed { reason } if reason.is_empty() => json!({"allowed": true}),
                    Decision::Allowed { reason } => json!({"allowed": true, "reason": reason}),
                    Decision::Denied => json!({"allowed": false}),
                }
            }
        };
        obj["status"] = status;
        set_type(&mut obj, &api_version, review.kind);
        meta_mut(&mut obj).insert("creationTimestamp".into(), Value::Null);
        Ok(json_response(StatusCode::CREATED, &obj))
    }
}

/// Which page of a collection to read.
struct PageRequest<'a> {
    /// The collection's key prefix.
    prefix: &'a str,
    /// The one key a name selector pins.
    key: Option<&'a str>,
    /// The last key of the page before.
    after: Option<&'a str>,
    /// How many keys at most.
    limit: Option<usize>,
}

enum Update {
    Replace(Value),
    Patch(PatchType, Bytes),
}

fn attributes(info: &RequestInfo) -> Attributes {
    Attributes {
        is_resource: info.is_resource,
        verb: info.verb.clone(),
        path: info.path.clone(),
        group: info.group.clone(),
        namespace: info.namespace.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        name: info.name.clone(),
    }
}

fn review_attributes(spec: &Value) -> Option<Attributes> {
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if let Some(r) = spec.get("resourceAttributes") {
        return Some(Attributes {
            is_resource: true,
            verb: s(r, "verb"),
            group: s(r, "group"),
            namespace: s(r, "namespace"),
            resource: s(r, "resource"),
            subresource: s(r, "subresource"),
            name: s(r, "name"),
            path: String::new(),
        });
    }
    spec.get("nonResourceAttributes").map(|n| Attributes {
        is_resource: false,
        verb: s(n, "verb"),
        path: s(n, "path"),
        ..Default::default()
    })
}

fn check_type(def: &ResourceDef, obj: &Value) -> Result<(), Status> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !kind.is_empty() && kind != def.kind {
        return Err(Status::bad_request(format!(
            "the kind of the provided object ({kind}) does not match the kind served at this path ({})",
            def.kind
        )));
    }
    if !api_version.is_empty() && api_version != def.api_version() {
        return Err(Status::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    Ok(())
}

/// Round-trips through the typed schema: the fields the kind does not have are dropped,
/// and returned as strict errors (`unknown field "x"`) when `strict`.
fn normalize(
    def: &ResourceDef,
    mut sent: Value,
    strict: bool,
) -> Result<(Value, Vec<String>), Status> {
    // The typed schema is v1; v1beta1 CSRs share it.
    set_type(
        &mut sent,
        format!("{}/v1", def.group).trim_start_matches('/'),
        def.kind,
    );
    if def.group.is_empty() {
        set_type(&mut sent, "v1", def.kind);
    }
    // The body as sent is kept only when unknown fields must be reported.
    let (kept, sent) = if strict {
        ((def.normalize)(sent.clone()), Some(sent))
    } else {
        ((def.normalize)(sent), None)
    };
    let kept = kept.map_err(|e| {
        Status::bad_request(format!("the body of the request could not be decoded: {e}"))
    })?;
    let unknown: Vec<String> = sent
        .map(|sent| object::unknown_fields(&sent, &kept))
        .unwrap_or_default()
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    let mut kept = kept;
    if let Some(o) = kept.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
    }
    Ok((kept, unknown))
}

fn validate_name(def: &ResourceDef, name: &str) -> Result<(), Status> {
    // As Kubernetes' validators do: the length and the pattern, each its own cause.
    let (max, pattern_ok, rule) = match def.name_rule {
        NameRule::Dns1123Label => (
            Some(63),
            object::matches_label_pattern(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        NameRule::Dns1123Subdomain => (
            Some(253),
            object::matches_subdomain_pattern(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
        NameRule::PathSegment => (
            None,
            object::is_path_segment(name),
            "may not contain '/' or '%', and may not be '.' or '..'",
        ),
    };
    let mut causes = Vec::new();
    if let Some(max) = max.filter(|m| name.len() > *m) {
        let detail = format!("must be no more than {max} characters");
        causes.push(StatusCause::invalid("metadata.name", name, &detail));
    }
    if !pattern_ok {
        causes.push(StatusCause::invalid("metadata.name", name, rule));
    }
    match causes.is_empty() {
        true => Ok(()),
        false => Err(Status::invalid(def.kind, def.group, name, causes)),
    }
}

/// Keeps what only the server sets: uid, creation time, name, namespace, and the
/// generation (`rest.BeforeUpdate`; none of the kinds served here counts generations, as
/// their Kubernetes strategies do not).
fn carry_server_metadata(new: &mut Value, old: &Value, def: &ResourceDef, ns: &str) {
    let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
    let meta = meta_mut(new);
    for k in ["uid", "creationTimestamp", "name", "generation"] {
        match old_meta.get(k) {
            Some(v) => {
                meta.insert(k.into(), v.clone());
            }
            None => {
                meta.remove(k);
            }
        }
    }
    if def.namespaced {
        meta.insert("namespace".into(), json!(ns));
    }
}

fn strip_rv(obj: &mut Value) {
    meta_mut(obj).remove("resourceVersion");
}

/// The label and field selectors of a list, watch or deletecollection.
fn selector(def: &ResourceDef, q: &Query) -> Result<Selector, Status> {
    let param = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    Selector::parse(
        param("labelSelector"),
        param("fieldSelector"),
        def.field_selectors,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_body_is_its_head_and_the_items_text_as_it_is() {
        let head = json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}});
        let items = br#"{"metadata":{"name":"a","resourceVersion":"3"}},{"metadata":{"name":"b"}}"#;
        let list: Value = serde_json::from_slice(&list_body(&head, items)).unwrap();
        assert_eq!(
            list,
            json!({
                "kind": "ConfigMapList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "7"},
                "items": [{"metadata": {"name": "a", "resourceVersion": "3"}}, {"metadata": {"name": "b"}}],
            })
        );
        let empty: Value = serde_json::from_slice(&list_body(&head, b"")).unwrap();
        assert_eq!(empty["items"], json!([]));
    }
}
