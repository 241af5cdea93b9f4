//! `list`: a collection, selected, paged, at the revision asked for; as JSON (the stored
//! text of each object, never parsed when nothing selects) or as a Table.

use http::StatusCode;
use kubeboot_api::Status;
use kubeboot_store::StoreError;
use serde_json::{Value, json};

use super::read::PageRequest;
use super::read::selector;
use super::{Handlers, Res, Want};
use crate::listoptions::{self, decode_continue, encode_continue};
use crate::object::set_resource_version;
use crate::registry::ResourceDef;
use crate::requestinfo::Query;
use crate::response;
use crate::status::from_store;
use crate::tables;
use crate::watch::cache::with_resource_version;

impl Handlers {
    pub(super) async fn list(&self, def: &ResourceDef, ns: &str, q: &Query, want: &Want) -> Res {
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
            return Ok(response::json(
                StatusCode::OK,
                &tables::table(def, rows, meta),
            ));
        }
        let head = json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": meta});
        Ok(response::text(
            StatusCode::OK,
            response::list_body(&head, &items),
            "application/json",
        ))
    }
}
