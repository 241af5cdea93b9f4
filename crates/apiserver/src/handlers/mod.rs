//! The handlers of the stored resources, one per verb, generic over the descriptions in
//! `registry` (as kube-apiserver's generic registry store is over its strategies): `get`,
//! `list`, `watch`, `create`, `update` (a replace or a patch), `delete` (of one object or a
//! collection), the namespace lifecycle they share, and the access reviews. Each works on
//! the store and the watch cache below it and answers a response or a `Status`; nothing
//! here knows about connections, authentication or routing.

mod apply;
mod create;
mod delete;
mod escalation;
mod eviction;
mod get;
mod incoming;
mod list;
mod namespaces;
pub mod nonresource;
mod read;
mod reviews;
mod services;
mod update;
mod watch;

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Response, header};
use kubeboot_api::{Clock, Status};
use kubeboot_store::Store;
use serde_json::Value;

pub use self::services::{ServiceNetwork, spawn_service_repair};
pub use self::update::Update;
use crate::authn::UserInfo;
use crate::authz::Authorizer;
use crate::body::decode;
use crate::listoptions;
use crate::object::set_type;
use crate::patch::PatchType;
use crate::registry::ResourceDef;
use crate::requestinfo::Query;
use crate::response::Body;
use crate::routing::{Target, Verb};
use crate::shape::Shape;
use crate::strict;
use crate::watch::cache::WatchCache;

/// A handler's answer.
pub type Res = Result<Response<Body>, Status>;

/// What every handler works with: the store, the watch cache, the authorizer (which
/// admission consults: RBAC escalation, CSR signers) and the clock.
pub struct Handlers {
    store: Arc<dyn Store>,
    cache: Arc<WatchCache>,
    authz: Arc<Authorizer>,
    clock: Arc<dyn Clock>,
    network: ServiceNetwork,
    /// The namespaces, followed through the cache (whether each is being deleted).
    namespaces: crate::watch::followed::Followed<namespaces::Lifecycle>,
    /// The newest revision this server has written.
    written: crate::written::Floor,
}

/// A request body: its content type and bytes.
pub struct Sent {
    /// `Content-Type`.
    pub content_type: String,
    /// The bytes.
    pub body: Bytes,
}

impl Handlers {
    /// Handlers over this store and cache, reading their own writes (those `written`
    /// counts) from the cache.
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<WatchCache>,
        written: crate::written::Floor,
        authz: Arc<Authorizer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let namespaces = crate::watch::followed::Followed::new(
            store.clone(),
            cache.clone(),
            written.clone(),
            namespaces::Lifecycle::parse,
        );
        Self {
            store,
            cache,
            authz,
            clock,
            network: ServiceNetwork::default(),
            namespaces,
            written,
        }
    }

    /// These handlers, giving Services addresses and ports from `network`.
    pub fn with_service_network(mut self, network: ServiceNetwork) -> Self {
        self.network = network;
        self
    }

    /// The cluster's Service ranges.
    pub fn service_network(&self) -> ServiceNetwork {
        self.network
    }

    /// Serves a routed request on a stored resource.
    pub async fn serve(
        &self,
        target: &Target,
        q: &Query,
        headers: &HeaderMap,
        sent: Sent,
        user: &UserInfo,
    ) -> Res {
        let Target {
            def,
            verb,
            ns,
            name,
            subresource,
        } = target;
        listoptions::write_options(verb.as_str(), q)?;
        let Sent { content_type, body } = sent;
        let patch_type = PatchType::from_content_type(&content_type);
        listoptions::patch_options(verb.as_str(), patch_type, q)?;
        let q = &with_field_manager(q, headers);
        if matches!(verb, Verb::Create | Verb::Update) && strict::is_strict(q) {
            let errors = strict::body_errors(&content_type, &body);
            if !errors.is_empty() {
                return Err(strict::decoding_error(def, &errors));
            }
        }
        let want = Want::new(headers, q);
        match verb {
            Verb::Get => self.get(def, ns, name, q, &want).await,
            Verb::List => self.list(def, ns, q, &want).await,
            Verb::Watch => self.watch(def, (ns, name), q, &want).await,
            Verb::Create => {
                let obj = self
                    .create(def, ns, decode(&content_type, &body)?, q, user)
                    .await?;
                Ok(crate::response::json(http::StatusCode::CREATED, &obj))
            }
            Verb::Patch if patch_type == Some(PatchType::Apply) => {
                let force = q.get("force").is_some_and(|f| f == "true");
                let (obj, created) = self
                    .apply(def, ns, name, subresource, body, force, q, user)
                    .await?;
                let code = if created {
                    http::StatusCode::CREATED
                } else {
                    http::StatusCode::OK
                };
                Ok(crate::response::json(code, &obj))
            }
            Verb::Update | Verb::Patch => {
                let change = match verb {
                    Verb::Update => Update::Replace(decode(&content_type, &body)?),
                    _ => Update::Patch(
                        patch_type.ok_or_else(|| Status::unsupported_media_type(&content_type))?,
                        body,
                    ),
                };
                let obj = self
                    .update(def, ns, name, subresource, change, q, user)
                    .await?;
                Ok(crate::response::json(http::StatusCode::OK, &obj))
            }
            Verb::Delete => {
                let opts = match body.is_empty() {
                    true => delete::query_delete_options(q),
                    false => Some(decode(&content_type, &body)?),
                };
                let opts = delete::with_query_dry_run(opts, q);
                let obj = self.delete(def, ns, name, opts).await?;
                Ok(crate::response::json(http::StatusCode::OK, &obj))
            }
            Verb::DeleteCollection => self.delete_collection(def, ns, q).await,
        }
    }

    pub(crate) fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// An object as it goes out: with its kind and apiVersion.
    fn output(&self, def: &ResourceDef, obj: Value) -> Value {
        let mut obj = def.to_version(obj);
        set_type(&mut obj, &def.api_version(), def.kind);
        obj
    }
}

/// The query with `fieldManager` set: as sent, else the user agent's first word.
fn with_field_manager(q: &Query, headers: &HeaderMap) -> Query {
    let agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut q = q.clone();
    let manager =
        crate::fieldmanager::manager_name(q.get("fieldManager").map(String::as_str), agent);
    q.insert("fieldManager".into(), manager);
    q
}

/// An object's stored form. Every object here was built from JSON, so this fails only on
/// a broken invariant — and then refuses the write rather than storing something empty.
fn encode(obj: &Value) -> Result<Bytes, Status> {
    stored_form(obj).map_err(|e| Status::internal(e.to_string()))
}

/// [`encode`] for a write whose store errors its caller tells apart (a conflict, a
/// missing key).
fn stored_form(obj: &Value) -> Result<Bytes, kubeboot_store::StoreError> {
    serde_json::to_vec(obj)
        .map(Bytes::from)
        .map_err(|e| kubeboot_store::StoreError::Backend(format!("encoding the object: {e}")))
}

/// What the client wants back, from `Accept` and the query.
struct Want {
    shape: Shape,
    include_object: String,
}

impl Want {
    fn new(headers: &HeaderMap, q: &Query) -> Self {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        Self {
            shape: Shape::of(accept),
            include_object: q
                .get("includeObject")
                .cloned()
                .unwrap_or_else(|| "Metadata".into()),
        }
    }
}

#[cfg(test)]
mod tests;
