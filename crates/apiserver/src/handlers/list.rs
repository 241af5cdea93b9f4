//! `list`: a collection, selected, paged, at the revision asked for; as JSON (the stored
//! text of each object, never parsed when nothing selects) or as a Table.

use std::time::SystemTime;

use http::{Response, StatusCode};
use kubeboot_api::Status;
use kubeboot_api::TableRow;
use kubeboot_store::{KeyValue, Revision, StoreError};
use serde_json::{Value, json};

use super::read::PageRequest;
use super::read::selector;
use super::{Handlers, Res, Want};
use crate::listoptions::{self, decode_continue, encode_continue};
use crate::object::set_resource_version;
use crate::registry::ResourceDef;
use crate::requestinfo::Query;
use crate::response::{self, Body};
use crate::selectors::Selector;
use crate::shape::{META_API_VERSION, Shape};
use crate::status::from_store;
use crate::tables;
use crate::watch::resource_version::with_resource_version;

impl Handlers {
    pub(super) async fn list(&self, def: &ResourceDef, ns: &str, q: &Query, want: &Want) -> Res {
        let limit = listoptions::list_limit(q)?;
        listoptions::validate_list(q)?;
        if let Some(rv) = listoptions::must_have_reached(q)? {
            self.fresh_enough(rv).await?;
        }
        let selector = selector(def, q)?;
        let start = self.start_of(def, ns, q).await?;
        // A list pinned to one name reads that one key, not the whole collection.
        let key = selector
            .fields
            .name()
            .map(|n| def.key(ns, n))
            .filter(|_| !def.namespaced || !ns.is_empty());
        let mut out = Collected::new(want.shape, self.now(), &want.include_object);
        let mut after = start.after.clone();
        let mut revision = start.revision;
        let mut next: Option<String> = None;
        // Page through the store until the selectors have yielded `limit` items.
        for _ in 0..1_000_000 {
            let request = PageRequest {
                prefix: &def.ns_prefix(ns),
                key: key.as_deref(),
                after: after.as_deref(),
                limit: Some(limit.map_or(10_000, |l| (l - out.found).max(1))),
            };
            let page = self
                .read_page(request, revision)
                .await
                .map_err(|e| start.refusal(e, def, after.as_deref()))?;
            revision.get_or_insert(page.revision);
            after = page.items.last().map(|kv| kv.key.clone());
            for kv in page.items {
                out.add(self, def, &selector, &kv);
            }
            if !page.more {
                break;
            }
            if limit.is_some_and(|l| out.found >= l) {
                next = after.clone();
                break;
            }
        }
        let revision = revision.unwrap_or_default();
        let mut meta = json!({"resourceVersion": revision.to_string()});
        if let Some(key) = next {
            meta["continue"] = json!(encode_continue(&key, revision));
        }
        Ok(out.response(def, meta))
    }

    /// Where a list starts and at which revision every page of it is read: the one it
    /// asked for exactly, the one its first page was read at (a continue token carries it;
    /// -1 says the latest), or the latest for a new list.
    async fn start_of(&self, def: &ResourceDef, ns: &str, q: &Query) -> Result<Start, Status> {
        let cont = match q.get("continue").filter(|c| !c.is_empty()) {
            Some(c) => Some(decode_continue(c)?),
            None => None,
        };
        let rv = q.get("resourceVersion").map_or("", String::as_str);
        if cont.is_some() && !matches!(rv, "" | "0") {
            return Err(Status::bad_request(
                "specifying resource version is not allowed when using continue",
            ));
        }
        if cont
            .as_ref()
            .is_some_and(|(key, _)| !key.starts_with(&def.ns_prefix(ns)))
        {
            return Err(Status::bad_request(
                "continue key is not valid: it belongs to another list",
            ));
        }
        let exact = listoptions::exact_revision(q)?;
        let revision = exact.or(cont.as_ref().map(|(_, rev)| *rev).filter(|r| *r >= 0));
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
        Ok(Start {
            continuing: cont.is_some() && exact.is_none(),
            after: cont.map(|(key, _)| key),
            revision,
        })
    }
}

/// Where a list starts.
struct Start {
    /// The last key of the page before (a continue token's).
    after: Option<String>,
    /// The revision every page is read at, when not the latest.
    revision: Option<Revision>,
    /// Whether it continues an earlier list at that list's revision.
    continuing: bool,
}

impl Start {
    /// The answer when a page cannot be read: 410 when the revision's history is gone (with
    /// a token to go on at the latest, for a continued list), as kube-apiserver answers.
    fn refusal(&self, e: StoreError, def: &ResourceDef, after: Option<&str>) -> Status {
        match e {
            StoreError::Compacted { .. } if self.continuing => {
                listoptions::inconsistent_continue(after.unwrap_or_default())
            }
            StoreError::Compacted { .. } => Status::expired(listoptions::LIST_TOO_OLD),
            e => from_store(e, def, ""),
        }
    }
}

/// What a list has gathered. Each object is let go as soon as it is read: a table keeps
/// only its row, a list only the object's JSON text, the stored one with the
/// resourceVersion spliced in (as a watch event carries it). Without selectors that text
/// is never parsed into a `Value`, so a list of 100,000 objects holds their text once, not
/// a tree of each.
struct Collected<'a> {
    shape: Shape,
    now: SystemTime,
    include_object: &'a str,
    rows: Vec<TableRow>,
    items: Vec<u8>,
    found: usize,
}

impl<'a> Collected<'a> {
    fn new(shape: Shape, now: SystemTime, include_object: &'a str) -> Self {
        Self {
            shape,
            now,
            include_object,
            rows: Vec::new(),
            items: Vec::new(),
            found: 0,
        }
    }

    /// Adds a stored object, if the selector selects it.
    fn add(&mut self, h: &Handlers, def: &ResourceDef, selector: &Selector, kv: &KeyValue) {
        // Selectors and tables read the object; a plain list only copies its text (unless
        // this version is not the stored one).
        let as_stored = self.shape == Shape::Object && def.conversion.is_none();
        if selector.is_everything() && as_stored {
            self.push_text(kv);
            return;
        }
        let Ok(obj) = serde_json::from_slice::<Value>(&kv.value) else {
            return;
        };
        if !selector.matches(&obj) {
            return;
        }
        if as_stored {
            self.push_text(kv);
            return;
        }
        let mut obj = h.output(def, obj);
        set_resource_version(&mut obj, kv.mod_revision);
        match self.shape {
            Shape::Table => {
                let row = tables::row(def, obj, self.now, self.include_object);
                self.rows.push(row);
                self.found += 1;
            }
            Shape::Metadata => self.push_value(&crate::shape::partial(&obj)),
            Shape::Object => self.push_value(&obj),
        }
    }

    fn push_value(&mut self, obj: &Value) {
        if self.found > 0 {
            self.items.push(b',');
        }
        self.items.extend_from_slice(obj.to_string().as_bytes());
        self.found += 1;
    }

    fn push_text(&mut self, kv: &KeyValue) {
        let Ok(text) = with_resource_version(&kv.value, kv.mod_revision) else {
            return;
        };
        if self.found > 0 {
            self.items.push(b',');
        }
        self.items.extend_from_slice(&text);
        self.found += 1;
    }

    /// The list (or Table) with `meta` as its list metadata.
    fn response(self, def: &ResourceDef, meta: Value) -> Response<Body> {
        let head = match self.shape {
            Shape::Table => {
                return response::json(StatusCode::OK, &tables::table(def, self.rows, meta));
            }
            Shape::Metadata => {
                json!({"kind": "PartialObjectMetadataList", "apiVersion": META_API_VERSION, "metadata": meta})
            }
            Shape::Object => {
                json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": meta})
            }
        };
        response::text(
            StatusCode::OK,
            response::list_body(&head, &self.items),
            "application/json",
        )
    }
}
