//! Objects read from the store once and then followed through the watch cache, as
//! kube-apiserver's authenticators and admission plugins follow theirs through informers —
//! but never behind the revision a lookup names, such as this server's last write: the
//! cache answers once it has applied that revision (waited for, on etcd; the embedded store
//! is read instead of waiting, a read there costing less than the wait), so a change made
//! through this server is seen by the very next request. A change made through another
//! server of the same etcd arrives with the watch (milliseconds). When the cache cannot
//! vouch for an object (its history no longer reaches back, or it lags) the store is read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kubeboot_store::{Revision, Store, StoreError};

use super::cache::{Change, EventType, WatchCache};
use crate::written::Floor;

/// How long a lookup waits for the watch cache to catch up before it reads the store.
const CATCH_UP: Duration = Duration::from_secs(1);
/// The most objects remembered (past this the memory starts over).
const MAX_KNOWN: usize = 10_000;

/// The objects of some keys, as `T` (what a reader needs of them), followed.
pub struct Followed<T> {
    store: Arc<dyn Store>,
    cache: Arc<WatchCache>,
    written: Floor,
    /// What a stored value is to the reader; `None` when it cannot be read.
    parse: fn(&[u8]) -> Option<T>,
    /// The objects seen so far, by key; guarded by the lock, never held across an await.
    known: Mutex<HashMap<String, Known<T>>>,
}

/// An object as last seen (`None`: there was none), and the store revision through which
/// that is known to be current.
struct Known<T> {
    value: Option<Arc<T>>,
    current_through: Revision,
}

impl<T> Clone for Known<T> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            current_through: self.current_through,
        }
    }
}

impl<T> Followed<T> {
    /// Follows objects of `store` through `cache`, never behind the writes `written` counts.
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<WatchCache>,
        written: Floor,
        parse: fn(&[u8]) -> Option<T>,
    ) -> Self {
        Self {
            store,
            cache,
            written,
            parse,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// The object at `key` as of at least this server's last write (`None`: there is none).
    pub async fn get(&self, key: &str) -> Result<Option<Arc<T>>, StoreError> {
        self.get_after(key, self.written.get(), |_| true).await
    }

    /// The object at `key` as of at least revision `floor` (0: whatever the cache knows);
    /// what the cache knows is taken only when `believed` accepts it, else the store says.
    pub async fn get_after(
        &self,
        key: &str,
        floor: Revision,
        believed: fn(Option<&T>) -> bool,
    ) -> Result<Option<Arc<T>>, StoreError> {
        let caught_up = self.cache.revision() >= floor
            || (!self.store.reads_locally() && self.cache.wait_for(floor, CATCH_UP).await);
        if caught_up
            && let Some(known) = self.vouched_by_cache(key)
            && believed(known.value.as_deref())
        {
            return Ok(known.value);
        }
        let (kv, revision) = self.store.get_with_revision(key).await?;
        let value = match kv {
            Some(kv) => Some(Arc::new((self.parse)(&kv.value).ok_or_else(|| {
                StoreError::Backend(format!("the object stored at {key} cannot be read"))
            })?)),
            None => None,
        };
        self.remember(key, value.clone(), revision);
        Ok(value)
    }

    /// What the watch cache vouches for, if it can (and remembers it).
    fn vouched_by_cache(&self, key: &str) -> Option<Known<T>> {
        let known = self.lock().get(key).cloned();
        let since = known.as_ref().map_or(-1, |k| k.current_through);
        let (value, current_through) = match self.cache.changed_since(key, since) {
            Change::Unchanged(through) => (known?.value, through),
            Change::Changed(event, through) => match event.kind {
                EventType::Deleted => (None, through),
                _ => (Some(Arc::new((self.parse)(&event.json)?)), through),
            },
            Change::Unknown => return None,
        };
        self.remember(key, value.clone(), current_through);
        Some(Known {
            value,
            current_through,
        })
    }

    fn remember(&self, key: &str, value: Option<Arc<T>>, current_through: Revision) {
        let mut known = self.lock();
        if known.len() >= MAX_KNOWN && !known.contains_key(key) {
            known.clear();
        }
        // Never replace what is known through a later revision with an older view.
        match known.get(key) {
            Some(k) if k.current_through > current_through => {}
            _ => {
                known.insert(
                    key.to_owned(),
                    Known {
                        value,
                        current_through,
                    },
                );
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known<T>>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
