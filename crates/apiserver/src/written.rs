//! The newest revision this server has written, kept by a [`Store`] wrapper: what a read
//! answered from the watch cache must have caught up with so that the server reads its own
//! writes (a token deleted through this server stops working on the very next request).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use bytes::Bytes;
use kubeboot_store::{BoxFuture, KeyValue, ListPage, Revision, Store, StoreError, WatchStream};

/// The newest revision written through [`Written`].
#[derive(Clone, Default)]
pub struct Floor(Arc<AtomicI64>);

impl Floor {
    /// The revision.
    pub fn get(&self) -> Revision {
        self.0.load(Ordering::Acquire)
    }

    fn raise(&self, to: Revision) {
        self.0.fetch_max(to, Ordering::AcqRel);
    }
}

/// A store that raises `floor` to the revision of every write it makes.
pub struct Written {
    inner: Arc<dyn Store>,
    floor: Floor,
}

impl Written {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn Store>, floor: Floor) -> Self {
        Self { inner, floor }
    }

    fn note(&self, r: Result<KeyValue, StoreError>) -> Result<KeyValue, StoreError> {
        if let Ok(kv) = &r {
            self.floor.raise(kv.mod_revision);
        }
        r
    }
}

impl Store for Written {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>> {
        self.inner.get(key)
    }

    fn get_with_revision<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(Option<KeyValue>, Revision), StoreError>> {
        self.inner.get_with_revision(key)
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>> {
        self.inner.list(prefix, start_after, limit)
    }

    fn list_at<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
        revision: Revision,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>> {
        self.inner.list_at(prefix, start_after, limit, revision)
    }

    fn count<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner.count(prefix)
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move { self.note(self.inner.create(key, value).await) })
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move { self.note(self.inner.update(key, value, expected).await) })
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(async move { self.note(self.inner.delete(key, expected).await) })
    }

    fn watch<'a>(
        &'a self,
        prefix: &'a str,
        after: Revision,
    ) -> BoxFuture<'a, Result<WatchStream, StoreError>> {
        self.inner.watch(prefix, after)
    }

    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>> {
        self.inner.revision()
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.compact(revision)
    }

    fn reads_locally(&self) -> bool {
        self.inner.reads_locally()
    }
}
