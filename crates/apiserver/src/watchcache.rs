//! The watch cache: one store watch, fanned out to every client watch. Watchers that name
//! one object (`fieldSelector=metadata.name=x`) are indexed by key, so an event costs
//! nothing for watchers of other objects. A ring of recent events lets a client resume
//! from a `resourceVersion`; older than the ring is `410 Expired`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use kubeboot_store::{EventKind, Revision, Store};
use serde_json::Value;
use tokio::sync::{Notify, mpsc};

use crate::object::set_resource_version;

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
}

impl CachedEvent {
    /// The object, parsed (for watchers with selectors or tables).
    pub fn object(&self) -> Value {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }
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
        let cache = Arc::new(Self {
            inner: Mutex::new(Inner {
                ring: VecDeque::with_capacity(capacity.min(1 << 16)),
                ring_bytes: 0,
                oldest: rev,
                revision: rev,
                next_id: 0,
                watchers: HashMap::new(),
                by_key: HashMap::new(),
            }),
            capacity,
            rbac_changed: Notify::new(),
            progressed: Notify::new(),
        });
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
        g.ring_bytes = 0;
        g.oldest = rev;
        g.revision = rev;
        g.watchers.clear();
        g.by_key.clear();
    }

    fn apply(&self, ev: kubeboot_store::Event) {
        let mut object: Value = match serde_json::from_slice(&ev.kv.value) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(key = %ev.kv.key, error = %e, "stored value is not JSON; skipping event");
                return;
            }
        };
        set_resource_version(&mut object, ev.kv.mod_revision);
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
            json: serde_json::to_vec(&object).unwrap_or_default().into(),
        });
        {
            let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            // Bounded by count and by bytes: large objects changing often (cluster-info
            // with many signatures) must not fill memory.
            while g.ring.len() >= self.capacity
                || (g.ring_bytes + event.json.len() > MAX_RING_BYTES && !g.ring.is_empty())
            {
                let Some(old) = g.ring.pop_front() else { break };
                g.ring_bytes -= old.json.len();
                g.oldest = old.revision;
            }
            g.ring_bytes += event.json.len();
            g.ring.push_back(event.clone());
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
