//! The watch cache: one store watch, fanned out to every client watch. Watchers that name
//! one object (`fieldSelector=metadata.name=x`) are indexed by key, so an event costs
//! nothing for watchers of other objects. A ring of recent events lets a client resume
//! from a `resourceVersion`; older than the ring is `410 Expired`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use kubeboot_store::{EventKind, Revision, Store};
use serde_json::Value;

use crate::object::set_resource_version;
use tokio::sync::{Notify, mpsc};

/// A watch event type as Kubernetes names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `ADDED`
    Added,
    /// `MODIFIED`
    Modified,
    /// `DELETED`
    Deleted,
}

impl EventType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One decoded event, shared by every watcher that receives it.
#[derive(Debug)]
pub struct CachedEvent {
    /// ADDED, MODIFIED or DELETED.
    pub kind: EventType,
    /// Storage key.
    pub key: String,
    /// The event's revision.
    pub revision: Revision,
    /// The object's JSON (last state for deletes), with `metadata.resourceVersion` set and
    /// without `kind`/`apiVersion`: serialised once, shared by every watcher.
    pub json: bytes::Bytes,
    /// The stored value an update replaced (`None` for creates and deletes, and where the
    /// store no longer had it): a watcher with a selector compares it with the new one.
    pub prev: Option<bytes::Bytes>,
}

impl CachedEvent {
    /// The object, parsed (for watchers with selectors or tables).
    pub fn object(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }

    /// The object an update replaced, parsed, with the event's resourceVersion (as a
    /// watcher it stopped matching is sent it, deleted).
    pub fn prev_object(&self) -> Option<Value> {
        let mut prev: Value = serde_json::from_slice(self.prev.as_deref()?).ok()?;
        set_resource_version(&mut prev, self.revision);
        Some(prev)
    }

    /// The bytes this event holds in the ring.
    fn size(&self) -> usize {
        self.json.len() + self.prev.as_ref().map_or(0, bytes::Bytes::len)
    }
}

/// What the cache knows of a key's changes (see [`WatchCache::changed_since`]).
#[derive(Debug)]
pub enum Change {
    /// Its newest event, and the revision through which that is its state.
    Changed(Arc<CachedEvent>, Revision),
    /// No event since: unchanged through this revision.
    Unchanged(Revision),
    /// The ring no longer reaches back that far.
    Unknown,
}

struct Watcher {
    prefix: String,
    key: Option<String>,
    after: Revision,
    tx: mpsc::Sender<Arc<CachedEvent>>,
}

struct Inner {
    ring: VecDeque<Arc<CachedEvent>>,
    /// The bytes of the events in the ring.
    ring_bytes: usize,
    /// Every event after this revision is in the ring.
    oldest: Revision,
    /// The last revision the cache has seen.
    revision: Revision,
    next_id: u64,
    watchers: HashMap<u64, Watcher>,
    by_key: HashMap<String, Vec<u64>>,
    /// The newest event in the ring for each key that has one.
    newest: HashMap<String, Arc<CachedEvent>>,
}

/// The cache. Its lock is held only to copy or append, never across an await.
pub struct WatchCache {
    inner: Mutex<Inner>,
    capacity: usize,
    /// Notified after each event under `/registry/` with an RBAC prefix.
    pub rbac_changed: Notify,
    /// Notified after every applied event (readiness, tests).
    pub progressed: Notify,
}

/// The most bytes of events the ring keeps.
const MAX_RING_BYTES: usize = 16 << 20;

/// How many events a client watch may have in flight before it is closed as too slow.
const WATCHER_BUFFER: usize = 4096;

const RBAC_PREFIXES: [&str; 4] = [
    "/registry/clusterroles/",
    "/registry/clusterrolebindings/",
    "/registry/roles/",
    "/registry/rolebindings/",
];

impl WatchCache {
    /// Starts the cache at the store's current revision, following `/registry/`.
    pub async fn start(
        store: Arc<dyn Store>,
        capacity: usize,
    ) -> Result<Arc<Self>, kubeboot_store::StoreError> {
        let rev = store.revision().await?;
        let cache = Arc::new(Self::at(rev, capacity));
        let mut stream = store.watch("/registry/", rev).await?;
        let weak = Arc::downgrade(&cache);
        tokio::spawn(async move {
            loop {
                match stream.recv().await {
                    Some(Ok(ev)) => {
                        let Some(cache) = weak.upgrade() else { return };
                        cache.apply(ev);
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "watch cache fell behind the store; restarting it and closing client watches");
                        match Self::restart(&weak, store.as_ref()).await {
                            Some(s) => stream = s,
                            None => return,
                        }
                    }
                    None => return,
                }
            }
        });
        Ok(cache)
    }

    /// An empty cache at revision `rev`, holding at most `capacity` events.
    fn at(rev: Revision, capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(capacity.min(1 << 16)),
                ring_bytes: 0,
                oldest: rev,
                revision: rev,
                next_id: 0,
                watchers: HashMap::new(),
                by_key: HashMap::new(),
                newest: HashMap::new(),
            }),
            capacity,
            rbac_changed: Notify::new(),
            progressed: Notify::new(),
        }
    }

    /// Starts the cache again at the store's current revision, retrying (with a growing
    /// pause, while the cache is in use) until the store answers: a store outage delays
    /// watches, it never ends them for good.
    async fn restart(
        weak: &std::sync::Weak<Self>,
        store: &dyn Store,
    ) -> Option<kubeboot_store::WatchStream> {
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            let attempt = async {
                let rev = store.revision().await?;
                let stream = store.watch("/registry/", rev).await?;
                Ok::<_, kubeboot_store::StoreError>((rev, stream))
            };
            match attempt.await {
                Ok((rev, stream)) => {
                    weak.upgrade()?.reset(rev);
                    return Some(stream);
                }
                Err(e) => {
                    weak.upgrade()?;
                    tracing::error!(error = %e, "cannot restart the watch cache yet; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(5));
                }
            }
        }
    }

    fn reset(&self, rev: Revision) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.ring.clear();
        g.newest.clear();
        g.ring_bytes = 0;
        g.oldest = rev;
        g.revision = rev;
        g.watchers.clear();
        g.by_key.clear();
    }

    fn apply(&self, ev: kubeboot_store::Event) {
        let json = match super::resource_version::with_resource_version(
            &ev.kv.value,
            ev.kv.mod_revision,
        ) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(key = %ev.kv.key, error = %e, "stored value is not JSON; skipping event");
                return;
            }
        };
        let kind = match (ev.kind, ev.created) {
            (EventKind::Delete, _) => EventType::Deleted,
            (EventKind::Put, true) => EventType::Added,
            (EventKind::Put, false) => EventType::Modified,
        };
        let is_rbac = RBAC_PREFIXES.iter().any(|p| ev.kv.key.starts_with(p));
        let event = Arc::new(CachedEvent {
            kind,
            key: ev.kv.key,
            revision: ev.kv.mod_revision,
            json: json.into(),
            prev: ev.prev.filter(|_| kind == EventType::Modified),
        });
        {
            let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            // Bounded by count and by bytes: large objects changing often (cluster-info
            // with many signatures) must not fill memory.
            while g.ring.len() >= self.capacity
                || (g.ring_bytes + event.size() > MAX_RING_BYTES && !g.ring.is_empty())
            {
                let Some(old) = g.ring.pop_front() else { break };
                g.ring_bytes -= old.size();
                g.oldest = old.revision;
                if g.newest.get(&old.key).is_some_and(|n| Arc::ptr_eq(n, &old)) {
                    g.newest.remove(&old.key);
                }
            }
            g.ring_bytes += event.size();
            g.ring.push_back(event.clone());
            g.newest.insert(event.key.clone(), event.clone());
            g.revision = event.revision;
            let mut targets: Vec<u64> = g.by_key.get(&event.key).cloned().unwrap_or_default();
            targets.extend(
                g.watchers
                    .iter()
                    .filter(|(_, w)| w.key.is_none() && event.key.starts_with(&w.prefix))
                    .map(|(id, _)| *id),
            );
            let mut dead = Vec::new();
            for id in targets {
                if let Some(w) = g.watchers.get(&id)
                    && event.revision > w.after
                    && w.tx.try_send(event.clone()).is_err()
                {
                    dead.push(id);
                }
            }
            for id in dead {
                remove_watcher(&mut g, id);
            }
        }
        if is_rbac {
            self.rbac_changed.notify_one();
        }
        self.progressed.notify_waiters();
    }

    /// The last revision the cache has applied.
    pub fn revision(&self) -> Revision {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .revision
    }

    /// Starts a client watch of keys under `prefix` (or exactly `key`) after revision
    /// `after`: the buffered events it missed, and a receiver for the rest. `Err(oldest)`
    /// when `after` is older than the history kept.
    pub fn watch(
        self: &Arc<Self>,
        prefix: &str,
        key: Option<String>,
        after: Revision,
    ) -> Result<WatchHandle, Revision> {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if after < g.oldest {
            return Err(g.oldest);
        }
        let matches = |e: &CachedEvent| match &key {
            Some(k) => e.key == *k,
            None => e.key.starts_with(prefix),
        };
        // The ring is ordered by revision: start at the first event after `after`.
        let start = g.ring.partition_point(|e| e.revision <= after);
        let backlog: Vec<Arc<CachedEvent>> = g
            .ring
            .range(start..)
            .filter(|e| matches(e))
            .cloned()
            .collect();
        let (tx, rx) = mpsc::channel(WATCHER_BUFFER);
        let id = g.next_id;
        g.next_id += 1;
        let after = after.max(g.revision);
        if let Some(k) = &key {
            g.by_key.entry(k.clone()).or_default().push(id);
        }
        g.watchers.insert(
            id,
            Watcher {
                prefix: prefix.to_owned(),
                key,
                after,
                tx,
            },
        );
        Ok(WatchHandle {
            cache: self.clone(),
            id,
            backlog,
            rx,
        })
    }

    /// The object `key` held at `revision`, when the newest event the cache holds for the key
    /// is that revision's and not a deletion. A key's value at a revision never changes, so
    /// an update that names the version it replaces (and writes only if the key is still at
    /// it) needs no read of the store.
    pub fn object_at(&self, key: &str, revision: Revision) -> Option<Arc<CachedEvent>> {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.newest
            .get(key)
            .filter(|e| e.revision == revision && e.kind != EventType::Deleted)
            .cloned()
    }

    /// What the cache knows of `key` since revision `since`: its newest event if one came
    /// after it, that nothing changed (when every event since then is in the ring), or
    /// nothing; each with the revision the cache has applied, through which it holds.
    pub fn changed_since(&self, key: &str, since: Revision) -> Change {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match g.newest.get(key) {
            Some(e) if e.revision > since => Change::Changed(e.clone(), g.revision),
            _ if g.oldest <= since => Change::Unchanged(g.revision),
            _ => Change::Unknown,
        }
    }

    /// Waits until the cache has applied `revision` (bounded by `timeout`).
    pub async fn wait_for(&self, revision: Revision, timeout: std::time::Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.progressed.notified();
            if self.revision() >= revision {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.revision() >= revision;
            }
        }
    }

    /// The number of client watches open.
    pub fn watcher_count(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .watchers
            .len()
    }
}

fn remove_watcher(g: &mut Inner, id: u64) {
    if let Some(w) = g.watchers.remove(&id)
        && let Some(k) = w.key
        && let Some(ids) = g.by_key.get_mut(&k)
    {
        ids.retain(|x| *x != id);
        if ids.is_empty() {
            g.by_key.remove(&k);
        }
    }
}

/// A registered client watch; dropping it unregisters.
pub struct WatchHandle {
    cache: Arc<WatchCache>,
    id: u64,
    /// Events the watcher missed before it registered.
    pub backlog: Vec<Arc<CachedEvent>>,
    /// Events from now on; closed if the watcher is too slow.
    pub rx: mpsc::Receiver<Arc<CachedEvent>>,
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        let mut g = self
            .cache
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        remove_watcher(&mut g, self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, key: &str, rev: Revision, value: &str) -> kubeboot_store::Event {
        kubeboot_store::Event {
            kind,
            kv: kubeboot_store::KeyValue {
                key: key.into(),
                value: value.to_owned().into(),
                create_revision: 1,
                mod_revision: rev,
            },
            created: rev == 1,
            prev: None,
        }
    }

    #[test]
    fn an_object_is_known_at_the_revision_of_its_newest_event_only() {
        let cache = WatchCache::at(0, 3);
        let (a, b) = (
            "/registry/configmaps/default/a",
            "/registry/configmaps/default/b",
        );
        cache.apply(event(
            EventKind::Put,
            a,
            1,
            r#"{"metadata":{"name":"a"},"v":1}"#,
        ));
        cache.apply(event(
            EventKind::Put,
            a,
            2,
            r#"{"metadata":{"name":"a"},"v":2}"#,
        ));
        let at = |key, rev| cache.object_at(key, rev).map(|e| e.object()["v"].clone());
        assert_eq!(at(a, 2), Some(2.into()));
        assert_eq!(at(a, 1), None, "an older version is not the newest");
        assert_eq!(
            cache
                .object_at(a, 2)
                .map(|e| e.object()["metadata"]["resourceVersion"].clone()),
            Some("2".into())
        );
        cache.apply(event(
            EventKind::Delete,
            a,
            3,
            r#"{"metadata":{"name":"a"},"v":2}"#,
        ));
        assert_eq!(at(a, 3), None, "a deleted object is no version to update");
        // Events leave the ring (capacity 3) oldest first; the key's newest goes with its event.
        cache.apply(event(
            EventKind::Put,
            b,
            4,
            r#"{"metadata":{"name":"b"},"v":4}"#,
        ));
        assert_eq!(at(b, 4), Some(4.into()));
        for rev in 5..8 {
            cache.apply(event(
                EventKind::Put,
                a,
                rev,
                r#"{"metadata":{"name":"a"},"v":0}"#,
            ));
        }
        assert_eq!(at(b, 4), None, "evicted");
        assert_eq!(at(a, 7), Some(0.into()));
    }

    #[test]
    fn a_key_is_known_changed_or_unchanged_only_as_far_back_as_the_ring_reaches() {
        let cache = WatchCache::at(10, 2);
        let (a, b) = (
            "/registry/secrets/kube-system/a",
            "/registry/secrets/kube-system/b",
        );
        let what = |key, since| match cache.changed_since(key, since) {
            Change::Changed(e, through) => format!("changed at {} through {through}", e.revision),
            Change::Unchanged(through) => format!("unchanged through {through}"),
            Change::Unknown => "unknown".into(),
        };
        assert_eq!(what(a, 10), "unchanged through 10");
        assert_eq!(what(a, 9), "unknown", "before the cache began");
        cache.apply(event(EventKind::Put, a, 11, r#"{"metadata":{"name":"a"}}"#));
        assert_eq!(what(a, 10), "changed at 11 through 11");
        assert_eq!(
            what(a, 5),
            "changed at 11 through 11",
            "the newest event is the state"
        );
        assert_eq!(what(a, 11), "unchanged through 11");
        assert_eq!(what(b, 10), "unchanged through 11");
        // Two more events push a's out of the ring (capacity 2): its state since 10 is lost.
        cache.apply(event(EventKind::Put, b, 12, r#"{"metadata":{"name":"b"}}"#));
        cache.apply(event(EventKind::Put, b, 13, r#"{"metadata":{"name":"b"}}"#));
        assert_eq!(what(a, 10), "unknown");
        assert_eq!(what(a, 11), "unchanged through 13");
    }
}
