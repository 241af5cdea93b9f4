//! The shared controller runner: informers (list, then watch from the list's version,
//! re-listing on `410`) feeding a work queue of keys with per-key retry backoff. A
//! controller is its reconcile function.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use kubeboot_client::{Client, ClientError};
use serde_json::Value;
use tokio::sync::Notify;

use crate::tasks::Tasks;

/// What to do with a key after reconciling it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing more until the next change.
    Done,
    /// Look again after this long (scheduled work, such as an expiry).
    RequeueAfter(Duration),
}

/// A reconcile failure; retried with backoff.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ReconcileError(pub String);

impl From<ClientError> for ReconcileError {
    fn from(e: ClientError) -> Self {
        Self(e.to_string())
    }
}

/// A boxed future returned by reconcile functions.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A controller: reconciles one key.
pub trait Reconciler: Send + Sync + 'static {
    /// The controller's name (for logs).
    fn name(&self) -> &'static str;
    /// Brings the world in line for `key`.
    fn reconcile(&self, key: String) -> BoxFuture<'_, Result<Action, ReconcileError>>;
}

/// An in-memory copy of a collection, kept current by list and watch.
#[derive(Clone, Default)]
pub struct Informer {
    /// Objects by key (`namespace/name` or `name`), each held as its compact JSON text
    /// (a parsed `Value` takes several times the memory; thousands of CSRs add up) and
    /// parsed when read. Guarded by the lock; never held across an await.
    objects: Arc<RwLock<BTreeMap<String, Box<str>>>>,
    synced: Arc<Notify>,
    is_synced: Arc<std::sync::atomic::AtomicBool>,
    /// What of each object is dropped before it is kept (besides `managedFields`).
    trim: Option<fn(&mut Value)>,
}

/// The key of an object: `namespace/name`, or `name` when cluster-scoped.
pub fn key_of(obj: &Value) -> String {
    let m = obj.get("metadata");
    let s = |f: &str| {
        m.and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    if s("namespace").is_empty() {
        s("name").to_owned()
    } else {
        format!("{}/{}", s("namespace"), s("name"))
    }
}

impl Informer {
    /// Starts following `list_path` (a collection URL, possibly with selectors); each
    /// change calls `on_change(key)`.
    pub fn start(
        tasks: &Tasks,
        client: Client,
        list_path: String,
        on_change: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(tasks, client, list_path, None, on_change)
    }

    /// [`Informer::start`], keeping each object as `trim` leaves it (what no controller of
    /// it reads, as kube-controller-manager's informer transforms drop).
    pub fn start_trimmed(
        tasks: &Tasks,
        client: Client,
        list_path: String,
        trim: fn(&mut Value),
        on_change: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(tasks, client, list_path, Some(trim), on_change)
    }

    fn start_with(
        tasks: &Tasks,
        client: Client,
        list_path: String,
        trim: Option<fn(&mut Value)>,
        on_change: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        let inf = Self {
            trim,
            ..Self::default()
        };
        let me = inf.clone();
        tasks.spawn(async move { me.run(client, list_path, on_change).await });
        inf
    }

    /// A copy of one object.
    pub fn get(&self, key: &str) -> Option<Value> {
        let text = self
            .objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()?;
        serde_json::from_str(&text).ok()
    }

    /// `read` applied to the JSON text of one object (for a light view of it: no copy and
    /// no `Value` tree).
    pub fn read<T>(&self, key: &str, read: impl FnOnce(&str) -> Option<T>) -> Option<T> {
        let objects = self.objects.read().unwrap_or_else(PoisonError::into_inner);
        read(objects.get(key)?)
    }

    /// Copies of all objects.
    pub fn list(&self) -> Vec<Value> {
        let texts: Vec<Box<str>> = self
            .objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        texts
            .iter()
            .filter_map(|t| serde_json::from_str(t).ok())
            .collect()
    }

    /// The keys of all objects.
    pub fn keys(&self) -> Vec<String> {
        self.objects
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// Waits until the first list has been loaded.
    pub async fn wait_synced(&self) {
        loop {
            let n = self.synced.notified();
            if self.is_synced.load(std::sync::atomic::Ordering::Acquire) {
                return;
            }
            n.await;
        }
    }

    async fn run(self, client: Client, list_path: String, on_change: impl Fn(&str) + Send + Sync) {
        let sep = if list_path.contains('?') { '&' } else { '?' };
        let mut failures = 0u32;
        loop {
            match self
                .list_then_watch(&client, &list_path, sep, &on_change)
                .await
            {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    let wait = backoff(
                        failures,
                        Duration::from_millis(200),
                        Duration::from_secs(30),
                    );
                    tracing::debug!(path = %list_path, error = %e, ?wait, "informer retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn list_then_watch(
        &self,
        client: &Client,
        path: &str,
        sep: char,
        on_change: &(impl Fn(&str) + Send + Sync),
    ) -> Result<(), ClientError> {
        let mut list: Value = client.get(path).await?;
        let mut rv = list
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let items = match list.get_mut("items").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let fresh: BTreeMap<String, Box<str>> = items
            .into_iter()
            .map(|o| (key_of(&o), compact(o, self.trim)))
            .collect();
        let changed: Vec<String> = {
            let mut objs = self.objects.write().unwrap_or_else(PoisonError::into_inner);
            let mut keys: Vec<String> = objs
                .keys()
                .filter(|k| !fresh.contains_key(*k))
                .cloned()
                .collect();
            keys.extend(fresh.keys().cloned());
            *objs = fresh;
            keys
        };
        self.is_synced
            .store(true, std::sync::atomic::Ordering::Release);
        self.synced.notify_waiters();
        for k in &changed {
            on_change(k);
        }
        loop {
            let url = format!(
                "{path}{sep}resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=300"
            );
            let mut events = client.watch(&url).await?;
            while let Some(ev) = events.recv().await {
                let mut ev = ev?;
                let obj = ev.get_mut("object").map(Value::take).unwrap_or_default();
                let ty = ev.get("type").and_then(Value::as_str).unwrap_or_default();
                if ty == "ERROR" {
                    // 410 Expired or another error: re-list.
                    return Ok(());
                }
                if let Some(v) = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                {
                    rv = v.to_owned();
                }
                if ty == "BOOKMARK" {
                    continue;
                }
                let key = key_of(&obj);
                {
                    let mut objs = self.objects.write().unwrap_or_else(PoisonError::into_inner);
                    if ty == "DELETED" {
                        objs.remove(&key);
                    } else {
                        objs.insert(key.clone(), compact(obj, self.trim));
                    }
                }
                on_change(&key);
            }
        }
    }
}

/// An object's JSON text, as the informer holds it: without `metadata.managedFields`,
/// which no controller reads (kube-controller-manager's informers drop them too,
/// `TransformStripManagedFields`); an update sent without them keeps the stored ones.
/// `trim` drops what else the informer's controllers never read.
fn compact(mut obj: Value, trim: Option<fn(&mut Value)>) -> Box<str> {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    if let Some(trim) = trim {
        trim(&mut obj);
    }
    serde_json::to_string(&obj)
        .unwrap_or_default()
        .into_boxed_str()
}

/// Exponential backoff: `base · 2^(n-1)`, capped.
pub fn backoff(failures: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(20));
    base.saturating_mul(factor).min(cap)
}

/// A queue of keys: each key is queued at most once, and never reconciled twice at once.
#[derive(Default)]
pub struct Queue {
    /// Guarded by the lock.
    state: Mutex<QueueState>,
    notify: Notify,
}

#[derive(Default)]
struct QueueState {
    ready: VecDeque<String>,
    queued: HashSet<String>,
    running: HashSet<String>,
    /// Keys added while running: re-queued when done.
    again: HashSet<String>,
}

impl Queue {
    /// Queues a key.
    pub fn add(&self, key: &str) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.running.contains(key) {
            s.again.insert(key.to_owned());
            return;
        }
        if s.queued.insert(key.to_owned()) {
            s.ready.push_back(key.to_owned());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queues a key after a delay (unless `tasks` is stopped first).
    pub fn add_after(self: &Arc<Self>, tasks: &Tasks, key: &str, after: Duration) {
        let me = self.clone();
        let key = key.to_owned();
        tasks.spawn(async move {
            tokio::time::sleep(after).await;
            me.add(&key);
        });
    }

    async fn next(&self) -> String {
        loop {
            let n = self.notify.notified();
            {
                let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(k) = s.ready.pop_front() {
                    s.queued.remove(&k);
                    s.running.insert(k.clone());
                    return k;
                }
            }
            n.await;
        }
    }

    fn done(&self, key: &str) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.running.remove(key);
        if s.again.remove(key) && s.queued.insert(key.to_owned()) {
            s.ready.push_back(key.to_owned());
            drop(s);
            self.notify.notify_one();
        }
    }
}

/// Runs `workers` workers reconciling keys from `queue` until `tasks` is stopped.
pub fn run<R: Reconciler>(tasks: &Tasks, reconciler: Arc<R>, queue: Arc<Queue>, workers: usize) {
    let failures: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    for _ in 0..workers.max(1) {
        let (r, q, f, t) = (
            reconciler.clone(),
            queue.clone(),
            failures.clone(),
            tasks.clone(),
        );
        tasks.spawn(async move {
            loop {
                let key = q.next().await;
                let started = tokio::time::Instant::now();
                let result = r.reconcile(key.clone()).await;
                // As kube-controller-manager's controllers log each sync at -v 4.
                tracing::debug!(controller = r.name(), key = %key, elapsed = ?started.elapsed(), "Finished syncing");
                q.done(&key);
                match result {
                    Ok(action) => {
                        f.lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .remove(&key);
                        if let Action::RequeueAfter(d) = action {
                            q.add_after(&t, &key, d);
                        }
                    }
                    Err(e) => {
                        let n = {
                            let mut g = f.lock().unwrap_or_else(PoisonError::into_inner);
                            let n = g.entry(key.clone()).or_insert(0);
                            *n += 1;
                            *n
                        };
                        let wait = backoff(n, Duration::from_millis(5), Duration::from_secs(60));
                        tracing::warn!(controller = r.name(), key = %key, error = %e, retry_in = ?wait, "reconcile failed");
                        q.add_after(&t, &key, wait);
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_informer_holds_objects_without_their_managed_fields() {
        let obj = serde_json::json!({
            "metadata": {"name": "a", "managedFields": [{"manager": "kubectl"}]},
            "spec": {"x": 1},
        });
        let held: Value = serde_json::from_str(&compact(obj, None)).expect("json");
        assert_eq!(
            held,
            serde_json::json!({"metadata": {"name": "a"}, "spec": {"x": 1}})
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = |n| backoff(n, Duration::from_millis(5), Duration::from_secs(60));
        assert_eq!(b(1), Duration::from_millis(5));
        assert_eq!(b(2), Duration::from_millis(10));
        assert_eq!(b(5), Duration::from_millis(80));
        assert_eq!(b(40), Duration::from_secs(60));
    }

    #[tokio::test]
    async fn a_key_is_queued_once_and_requeued_if_changed_while_running() {
        let q = Queue::default();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.next().await, "a");
        q.add("a"); // changed while running
        assert_eq!(q.next().await, "b");
        q.done("b");
        q.done("a");
        assert_eq!(q.next().await, "a", "re-queued after done");
        let s = q.state.lock().unwrap();
        assert!(s.ready.is_empty());
    }
}
