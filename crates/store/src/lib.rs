//! The storage contract of the API server and its two backends: embedded SQLite, and etcd.
//!
//! A store is an ordered key-value map with one global revision, as etcd is: every write
//! bumps the revision and stamps the written key with it (`mod_revision`), which the API
//! server exposes as `resourceVersion`. Writes are acknowledged only once durable. A watch
//! replays the bounded history after a revision and then follows new writes; asking for a
//! revision older than the history kept is [`StoreError::Compacted`].
//!
//! The store knows nothing of Kubernetes objects: values are opaque bytes.

pub mod conformance;
pub mod etcd;
pub mod etcd_cluster;
mod latest;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use tokio::sync::mpsc;

/// A boxed, sendable future (the trait is used as `dyn Store`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A global revision. 0 means "before any write".
pub type Revision = i64;

/// A stored key and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value.
    pub value: Bytes,
    /// The revision that created the key.
    pub create_revision: Revision,
    /// The revision of the last write to the key (for a deleted key: of the delete).
    pub mod_revision: Revision,
}

/// What happened to a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// Created or updated.
    Put,
    /// Deleted; the event carries the last value.
    Delete,
}

/// One change, at one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key and value after a put, the last value before a delete; `mod_revision` is the
    /// event's revision either way.
    pub kv: KeyValue,
    /// True when a put created the key.
    pub created: bool,
    /// The value this event replaced: the old value of an update, the last value of a
    /// delete; `None` for a create, or where the backend no longer holds it (history
    /// written before this field existed).
    pub prev: Option<Bytes>,
}

/// A page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListPage {
    /// Keys in order.
    pub items: Vec<KeyValue>,
    /// The store revision the page reflects.
    pub revision: Revision,
    /// More keys follow the last one.
    pub more: bool,
}

/// A watch: events in revision order, each exactly once. Ends with an error if the watcher
/// fell too far behind (`Compacted`) or the store closed.
pub type WatchStream = mpsc::Receiver<Result<Event, StoreError>>;

/// Why a store operation failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Create of an existing key.
    #[error("key {0} already exists")]
    AlreadyExists(String),
    /// Update or delete of a missing key.
    #[error("key {0} not found")]
    NotFound(String),
    /// The key's mod revision is not the one the write expected.
    #[error("key {key} was modified at revision {current}")]
    Conflict {
        /// The key.
        key: String,
        /// Its current mod revision.
        current: Revision,
    },
    /// A watch asked for a revision older than the history kept.
    #[error("required revision {requested} has been compacted (oldest available {oldest})")]
    Compacted {
        /// What the caller asked for.
        requested: Revision,
        /// The oldest revision a watch can start after.
        oldest: Revision,
    },
    /// The backend failed (disk, database, connection).
    #[error("storage backend failure: {0}")]
    Backend(String),
}

/// The storage contract every backend implements and the conformance suite checks.
pub trait Store: Send + Sync + 'static {
    /// Reads one key.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>>;

    /// Reads one key and the store's revision as of the read (no older than the value):
    /// what a list pinned to one name answers. By default the revision is read first, then
    /// the key; a backend that has both in one answer overrides it (one etcd round trip).
    fn get_with_revision<'a>(
        &'a self,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(Option<KeyValue>, Revision), StoreError>> {
        Box::pin(async move {
            let revision = self.revision().await?;
            Ok((self.get(key).await?, revision))
        })
    }

    /// Lists keys starting with `prefix`, after `start_after` (exclusive), at most `limit`.
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>>;

    /// Lists keys starting with `prefix` as they were at `revision` (after `start_after`,
    /// at most `limit`); the page's revision is `revision`. `Compacted` when the history no
    /// longer reaches back to it.
    fn list_at<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
        revision: Revision,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>>;

    /// Counts keys starting with `prefix`.
    fn count<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Creates a key that must not exist.
    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>>;

    /// Replaces a key that must exist; with `expected`, only if its mod revision matches.
    fn update<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>>;

    /// Deletes a key that must exist; with `expected`, only if its mod revision matches.
    /// Returns the last value, with `mod_revision` set to the delete's revision.
    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>>;

    /// Watches keys starting with `prefix` for changes after revision `after`.
    fn watch<'a>(
        &'a self,
        prefix: &'a str,
        after: Revision,
    ) -> BoxFuture<'a, Result<WatchStream, StoreError>>;

    /// The current revision.
    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>>;

    /// Drops the history up to and including `revision`: watches must start after it.
    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Whether this process answers reads itself (the embedded store), with no round trip
    /// to another: a caller that could wait for a cache of the store to catch up instead
    /// reads. `false` for etcd.
    fn reads_locally(&self) -> bool {
        false
    }
}

/// The smallest string greater than every string starting with `prefix`
/// (`None` when there is none, i.e. the prefix is empty).
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).ok();
        }
    }
    None
}
