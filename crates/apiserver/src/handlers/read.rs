//! The reads every handler shares: one object, a page of a collection (at a revision, when
//! asked), and the wait for a revision the store has not reached yet.

use kubeboot_api::Status;
use kubeboot_store::{Revision, StoreError};
use serde_json::Value;

use super::Handlers;
use crate::listoptions;
use crate::object::set_resource_version;
use crate::registry::ResourceDef;
use crate::requestinfo::Query;
use crate::selectors::Selector;
use crate::status::from_store;

impl Handlers {
    /// One object as stored, with its resourceVersion; `None` when there is none (for the
    /// server's own reads).
    pub async fn object(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<Option<Value>, Status> {
        match self.read_object(def, ns, name).await {
            Ok((obj, _)) => Ok(Some(obj)),
            Err(s) if s.code == 404 => Ok(None),
            Err(s) => Err(s),
        }
    }

    /// Every object of a namespace (or of the resource), as stored, with its
    /// resourceVersion (for the server's own reads).
    pub async fn objects(&self, def: &ResourceDef, ns: &str) -> Result<Vec<Value>, Status> {
        let page = self
            .store
            .list(&def.ns_prefix(ns), None, None)
            .await
            .map_err(|e| from_store(e, def, ""))?;
        Ok(page
            .items
            .iter()
            .filter_map(|kv| {
                let mut obj: Value = serde_json::from_slice(&kv.value).ok()?;
                set_resource_version(&mut obj, kv.mod_revision);
                Some(obj)
            })
            .collect())
    }

    /// The stored object `name` of `def` in `ns`, with its resourceVersion, and that
    /// revision; 404 when there is none.
    pub(super) async fn read_object(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
    ) -> Result<(Value, Revision), Status> {
        self.read_key(def, &def.key(ns, name), name)
            .await?
            .ok_or_else(|| Status::not_found(def.subject(name)))
    }

    /// The object stored at `key` (named `name`), with its resourceVersion, and that
    /// revision; none when there is none.
    pub(super) async fn read_key(
        &self,
        def: &ResourceDef,
        key: &str,
        name: &str,
    ) -> Result<Option<(Value, Revision)>, Status> {
        let Some(kv) = self
            .store
            .get(key)
            .await
            .map_err(|e| from_store(e, def, name))?
        else {
            return Ok(None);
        };
        let mut obj: Value = serde_json::from_slice(&kv.value)
            .map_err(|e| Status::internal(format!("stored object is not JSON: {e}")))?;
        set_resource_version(&mut obj, kv.mod_revision);
        Ok(Some((obj, kv.mod_revision)))
    }

    /// Waits (at most 3 s) until the store has reached the revision a read asks for, or
    /// answers 504 `Too large resource version`, as kube-apiserver's watch cache does. A
    /// revision the watch cache has applied, or one this server wrote (a node watching the
    /// CSR it just created), needs no read of the store; the cache tells when it moves on.
    pub(super) async fn fresh_enough(&self, rv: u64) -> Result<(), Status> {
        let wanted = Revision::try_from(rv).unwrap_or(Revision::MAX);
        let store_revision = || async {
            self.store
                .revision()
                .await
                .map_err(|e| Status::internal(e.to_string()))
        };
        if self.cache.revision() >= wanted
            || self.written.get() >= wanted
            || store_revision().await? >= wanted
        {
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

    /// A page of a collection, or just the one key a name selector pins (the revision read
    /// first, so that a write between the two reads is seen again rather than lost); as the
    /// collection was at revision `at`, when given.
    pub(super) async fn read_page(
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
                let (kv, revision) = self.store.get_with_revision(k).await?;
                Ok(kubeboot_store::ListPage {
                    items: kv.into_iter().collect(),
                    revision,
                    more: false,
                })
            }
        }
    }
}

/// Which page of a collection to read.
pub(super) struct PageRequest<'a> {
    /// The collection's key prefix.
    pub(super) prefix: &'a str,
    /// The one key a name selector pins.
    pub(super) key: Option<&'a str>,
    /// The last key of the page before.
    pub(super) after: Option<&'a str>,
    /// How many keys at most.
    pub(super) limit: Option<usize>,
}

/// The label and field selectors of a list, watch or deletecollection.
pub(super) fn selector(def: &ResourceDef, q: &Query) -> Result<Selector, Status> {
    let param = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    Selector::parse(
        param("labelSelector"),
        param("fieldSelector"),
        &def.field_selectors,
    )
}
