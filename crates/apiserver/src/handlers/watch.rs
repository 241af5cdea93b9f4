//! `watch`: the initial state (or the history after a resourceVersion), then the changes,
//! as `watch::ClientWatch` sends them.

use std::convert::Infallible;

use futures::StreamExt;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use kubeboot_api::Status;
use kubeboot_store::Revision;
use serde_json::Value;

use super::read::PageRequest;
use super::read::selector;
use super::{Handlers, Res, Want};
use crate::listoptions;
use crate::object::set_resource_version;
use crate::registry::ResourceDef;
use crate::requestinfo::Query;
use crate::selectors::{FieldSelector, Selector};
use crate::status::from_store;
use crate::watch::ClientWatch;
use crate::watch::frames::Frames;

impl Handlers {
    /// A watch of a collection, or of the object `name` names (the older
    /// `/watch/<resource>/<name>` path, which the field selector, if any, must agree with).
    pub(super) async fn watch(
        &self,
        def: &'static ResourceDef,
        (ns, name): (&str, &str),
        q: &Query,
        want: &Want,
    ) -> Res {
        let selector = named_selector(def, q, name)?;
        let opts = listoptions::WatchOptions::parse(q)?;
        let prefix = def.ns_prefix(ns);
        let key = selector
            .fields
            .name()
            .map(|n| def.key(ns, n))
            .filter(|_| !def.namespaced || !ns.is_empty());
        let request = PageRequest {
            prefix: &prefix,
            key: key.as_deref(),
            after: None,
            limit: None,
        };
        let (start, initial) = match self.watch_start(def, opts.start, request).await? {
            Ok(started) => started,
            Err(refused) => return Ok(error_event(&refused)),
        };
        let handle = match self.cache.watch(&prefix, key, start) {
            Ok(h) => h,
            Err(oldest) => {
                let gone = Status::expired(format!("too old resource version: {start} ({oldest})"));
                return Ok(error_event(&gone));
            }
        };
        let watch = ClientWatch {
            selector,
            frames: Frames {
                def,
                shape: want.shape,
                include_object: want.include_object.clone(),
                clock: self.clock.clone(),
                headers_sent: Default::default(),
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
}

impl Handlers {
    /// Where a watch starts, and the objects it sends first: after a revision, from the
    /// current one, or with the state read now (once the store has reached the version a
    /// streaming list names). A refusal the watch itself carries (an ERROR event) is the
    /// inner error.
    async fn watch_start(
        &self,
        def: &ResourceDef,
        start: listoptions::WatchStart,
        request: PageRequest<'_>,
    ) -> Result<Result<(Revision, Vec<Value>), Status>, Status> {
        let revision = match start {
            listoptions::WatchStart::After(rv) => Revision::try_from(rv).map_err(|_| {
                Status::bad_request(format!("invalid resource version: {rv} is out of range"))
            })?,
            listoptions::WatchStart::Now => self
                .store
                .revision()
                .await
                .map_err(|e| from_store(e, def, ""))?,
            listoptions::WatchStart::InitialState { not_older_than } => {
                if let Some(rv) = not_older_than
                    && let Err(too_new) = self.fresh_enough(rv).await
                {
                    return Ok(Err(too_new));
                }
                // ADDED events for the current state, then changes after it.
                let page = self
                    .read_page(request, None)
                    .await
                    .map_err(|e| from_store(e, def, ""))?;
                let initial = page
                    .items
                    .iter()
                    .filter_map(|kv| {
                        let mut obj = serde_json::from_slice::<Value>(&kv.value).ok()?;
                        set_resource_version(&mut obj, kv.mod_revision);
                        Some(obj)
                    })
                    .collect();
                return Ok(Ok((page.revision, initial)));
            }
        };
        Ok(Ok((revision, Vec::new())))
    }
}

/// A watch's selector; on the older `/watch/<resource>/<name>` path, the name as its field
/// selector, which one given must agree with (kube-apiserver's `ListResource`).
fn named_selector(def: &ResourceDef, q: &Query, name: &str) -> Result<Selector, Status> {
    let mut selector = selector(def, q)?;
    if name.is_empty() {
        return Ok(selector);
    }
    if selector.fields.is_empty() {
        selector.fields = FieldSelector::name_is(name);
    } else if selector.fields.name() != Some(name) {
        return Err(Status::bad_request(
            "fieldSelector metadata.name doesn't match requested name",
        ));
    }
    Ok(selector)
}

/// A watch that ends with one `ERROR` event carrying `status`: once a watch's options are
/// read and allowed, kube-apiserver reports what keeps it from starting so (a version too
/// old for the history kept, or not reached in time), with a 200.
fn error_event(status: &Status) -> http::Response<crate::response::Body> {
    let mut line = serde_json::to_vec(&serde_json::json!({"type": "ERROR", "object": status}))
        .unwrap_or_default();
    line.push(b'\n');
    crate::response::text(StatusCode::OK, line, "application/json")
}
