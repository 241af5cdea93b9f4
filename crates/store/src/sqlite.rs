//! The embedded backend: SQLite in WAL mode with `synchronous=FULL`, one writer thread
//! that commits concurrent writes together (group commit: one fsync for many writes), and
//! a revision-keyed event table that is the watch history.

/// The SQL for a key's value from its `kv` row `k`: in place when it is small, else the
/// event at its mod revision (see [`history`]).
macro_rules! kv_value {
    () => {
        "coalesce(k.value, (SELECT value FROM events WHERE rev = k.mod_rev))"
    };
}

/// The SQL for the value an event `e` replaced, with `p` joined as the event at its
/// `prev_rev` (events written before `prev_rev` was kept carry it in `prev`).
macro_rules! replaced_value {
    () => {
        "coalesce(e.prev, p.value)"
    };
}

/// The SQL for a page of keys from ?1 (`>=`) or after it (`>`), below ?2, at most ?3.
macro_rules! list_sql {
    ($from:literal) => {
        concat!(
            "SELECT ",
            kv_value!(),
            ", k.create_rev, k.mod_rev, k.key FROM kv k
             WHERE k.key ",
            $from,
            " ?1 AND k.key < ?2 ORDER BY k.key LIMIT ?3"
        )
    };
}

mod history;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{broadcast, mpsc, oneshot};

use self::writer::{WriteKind, WriteOp, writer_loop};
use crate::latest::{Latest, Lookup};
use crate::{
    BoxFuture, Event, KeyValue, ListPage, Revision, Store, StoreError, WatchStream, prefix_end,
};

/// How many events the history keeps by default (a watch can resume this far back).
pub const DEFAULT_HISTORY: i64 = 100_000;
/// The most read connections open at once.
const MAX_READERS: usize = 8;
/// The WAL written between checkpoints, and the size its file is trimmed back to.
const WAL_BYTES: i64 = 64 << 20;
/// How many events a slow watcher may fall behind the live stream before it is ended.
const BROADCAST_CAPACITY: usize = 4096;
/// The bytes of values the point-read cache holds.
const LATEST_BYTES: usize = 8 << 20;

/// The SQLite store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<std_mpsc::Sender<WriteOp>>,
    readers: Mutex<Vec<Connection>>,
    /// Bounds the read connections (each has its own page cache).
    reader_slots: tokio::sync::Semaphore,
    events: broadcast::Sender<Arc<Event>>,
    /// Guarded by the lock: `(revision, compacted)` as of the last commit.
    state: Mutex<(Revision, Revision)>,
    commit_observer: Option<CommitObserver>,
    /// The latest values of the busiest keys, kept exact by the writer.
    latest: Latest,
}

/// Called after each group commit with the number of writes and the time it took.
pub type CommitObserver = Arc<dyn Fn(usize, std::time::Duration) + Send + Sync>;

/// The store's revision: its newest event's, or `meta.revision` where the history was
/// emptied (each trim of the history writes it; stores made before kept it on every commit).
fn stored_revision(conn: &Connection) -> Result<Revision, StoreError> {
    conn.prepare_cached(
        "SELECT max((SELECT value FROM meta WHERE name = 'revision'),
                    coalesce((SELECT max(rev) FROM events), 0))",
    )
    .and_then(|mut st| st.query_row([], |r| r.get(0)))
    .map_err(backend)
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the store in file `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, DEFAULT_HISTORY, None)
    }

    /// Opens the store with a history size and an observer of commit latency.
    pub fn open_with(
        path: &Path,
        history: i64,
        commit_observer: Option<CommitObserver>,
    ) -> Result<Self, StoreError> {
        let mut conn = open_connection(path)?;
        history::check_layout(&conn)?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB,
                 create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS events (rev INTEGER PRIMARY KEY, key TEXT NOT NULL,
                 kind INTEGER NOT NULL, value BLOB NOT NULL, create_rev INTEGER NOT NULL,
                 created INTEGER NOT NULL, prev BLOB, prev_rev INTEGER);
             CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT OR IGNORE INTO meta VALUES ('revision', 0), ('compacted', 0);",
        )
        .map_err(backend)?;
        history::add_prev_column(&conn)?;
        history::keep_values_once(&mut conn)?;
        // This connection is the writer's. A checkpoint copies every page written to the WAL
        // since the last one back into the database file, and fsyncs it: at SQLite's default
        // (1,000 pages, 4 MiB) a burst of CSR writes checkpointed several times a second,
        // copying the same hot pages again each time. With 64 MiB between checkpoints each is
        // copied about once per burst (10,000 joins: 15.5 → 14.3 s of server CPU); the file is
        // trimmed back to that size after a checkpoint. SQLite counts the interval in pages,
        // whose size depends on when the store was made.
        let page_size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(backend)?;
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {WAL_BYTES};",
            WAL_BYTES / page_size.max(512)
        ))
        .map_err(backend)?;
        let state = (stored_revision(&conn)?, history::compacted(&conn)?);
        let (tx, rx) = std_mpsc::channel();
        let (events, _) = broadcast::channel(BROADCAST_CAPACITY);
        let inner = Arc::new(Inner {
            path: path.to_owned(),
            writer: Mutex::new(tx),
            readers: Mutex::new(Vec::new()),
            reader_slots: tokio::sync::Semaphore::new(MAX_READERS),
            events,
            state: Mutex::new(state),
            commit_observer,
            latest: Latest::new(LATEST_BYTES),
        });
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx, weak, history))
            .map_err(backend)?;
        Ok(Self { inner })
    }

    async fn write(&self, kind: WriteKind) -> Result<KeyValue, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .send(WriteOp { kind, reply })
            .map_err(|_| StoreError::Backend("the store's writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("the store's writer has stopped".into()))?
    }

    /// A point read from SQLite. A point read is a few microseconds on a cached page: done in
    /// place on an idle pooled connection it costs no thread hand-off (two context switches).
    async fn get_from_sqlite(
        &self,
        get: impl FnOnce(&mut Connection) -> Result<Option<KeyValue>, StoreError> + Send + 'static,
    ) -> Result<Option<KeyValue>, StoreError> {
        let pooled = self.inner.reader_slots.try_acquire().ok().and_then(|slot| {
            let conn = self
                .inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            Some((slot, conn))
        });
        match pooled {
            Some((_slot, mut conn)) => {
                let out = get(&mut conn);
                self.inner
                    .readers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(conn);
                out
            }
            None => self.read(get).await,
        }
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let _slot = self
            .inner
            .reader_slots
            .acquire()
            .await
            .map_err(|_| StoreError::Backend("the store is closed".into()))?;
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut conn = match pooled {
                Some(c) => c,
                None => open_connection(&inner.path)?,
            };
            let out = f(&mut conn);
            inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            out
        })
        .await
        .map_err(backend)?
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    keep_private(path).map_err(|e| {
        StoreError::Backend(format!(
            "cannot make the store {} private to this user: {e}",
            path.display()
        ))
    })?;
    let conn = Connection::open(path).map_err(|e| {
        StoreError::Backend(format!("cannot open the store {}: {e}", path.display()))
    })?;
    // A new store gets 16 KiB pages: a row of the `WITHOUT ROWID` kv table keeps at most
    // about a quarter page in place, and a CSR with its certificate (2–3 KB) overflowed
    // 4 KiB pages, costing a read (pread) of an overflow page per object. Listing 100,000
    // CSRs read 210 MB that way, and 5,000 joins made 144,000 preads; with 16 KiB pages,
    // 19,000, and the 100,000-row `kubectl get csr` table answers in 1.0 s instead of 1.4 s.
    // (That was measured when `kv` held every value; large values now live only in the
    // rowid `events` table, whose rows a 16 KiB page keeps in place too.) The page size of
    // an existing store stays as it was made (it is fixed in WAL mode).
    conn.execute_batch(
        "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;",
    )
    .map_err(backend)?;
    Ok(conn)
}

/// The store holds every Secret: its file is created 0600 before SQLite opens it (SQLite
/// gives its `-wal` and `-shm` files the database file's mode), and a store made by an
/// earlier version with a looser mode is tightened, files that exist included.
fn keep_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let private = std::fs::Permissions::from_mode(0o600);
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => return f.set_permissions(private),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match std::fs::symlink_metadata(&name) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(&name, private.clone())?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The keys a list reads: under a prefix, after a key (never below the prefix, whatever
/// that key says), at most `limit`.
struct KeyRange {
    lower: String,
    inclusive: bool,
    upper: String,
    limit: usize,
}

impl KeyRange {
    fn new(prefix: &str, start_after: Option<&str>, limit: Option<usize>) -> Self {
        let (lower, inclusive) = match start_after {
            Some(a) if a >= prefix => (a.to_owned(), false),
            _ => (prefix.to_owned(), true),
        };
        Self {
            lower,
            inclusive,
            upper: prefix_end(prefix).unwrap_or_else(|| "\u{7f}".repeat(8)),
            limit: limit.unwrap_or(usize::MAX),
        }
    }

    /// How many rows to read: one past the limit, to know whether more follow.
    fn fetch(&self) -> i64 {
        i64::try_from(self.limit.saturating_add(1)).unwrap_or(i64::MAX)
    }

    /// The page of the rows read.
    fn page(&self, mut items: Vec<KeyValue>, revision: Revision) -> ListPage {
        let more = items.len() > self.limit;
        items.truncate(self.limit);
        ListPage {
            items,
            revision,
            more,
        }
    }
}

/// A key's value and revisions.
const GET: &str = concat!(
    "SELECT ",
    kv_value!(),
    ", k.create_rev, k.mod_rev FROM kv k WHERE k.key = ?1"
);

fn row_kv(key: String, r: &rusqlite::Row<'_>) -> rusqlite::Result<KeyValue> {
    Ok(KeyValue {
        key,
        value: Bytes::from(r.get::<_, Vec<u8>>(0)?),
        create_revision: r.get(1)?,
        mod_revision: r.get(2)?,
    })
}

impl Store for SqliteStore {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<KeyValue>, StoreError>> {
        let owned = key.to_owned();
        let get = move |c: &mut Connection| {
            c.prepare_cached(GET)
                .map_err(backend)?
                .query_row([&owned], |r| row_kv(owned.clone(), r))
                .optional()
                .map_err(backend)
        };
        Box::pin(async move {
            let seen = match self.inner.latest.get(key) {
                Lookup::Hit(kv) => return Ok(Some(kv)),
                Lookup::Miss(seen) => seen,
            };
            let out = self.get_from_sqlite(get).await;
            if let Ok(Some(kv)) = &out {
                self.inner.latest.fill(seen, kv);
            }
            out
        })
    }

    fn list<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>> {
        let range = KeyRange::new(prefix, start_after, limit);
        Box::pin(self.read(move |c| {
            let tx = c.transaction().map_err(backend)?;
            let revision = stored_revision(&tx)?;
            let sql = match range.inclusive {
                true => list_sql!(">="),
                false => list_sql!(">"),
            };
            let mut stmt = tx.prepare_cached(sql).map_err(backend)?;
            let items = stmt
                .query_map(params![range.lower, range.upper, range.fetch()], |r| {
                    let key: String = r.get(3)?;
                    row_kv(key, r)
                })
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            Ok(range.page(items, revision))
        }))
    }

    fn list_at<'a>(
        &'a self,
        prefix: &'a str,
        start_after: Option<&'a str>,
        limit: Option<usize>,
        revision: Revision,
    ) -> BoxFuture<'a, Result<ListPage, StoreError>> {
        let range = KeyRange::new(prefix, start_after, limit);
        Box::pin(self.read(move |c| history::list_at(c, &range, revision)))
    }

    fn count<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64, StoreError>> {
        let lower = prefix.to_owned();
        let upper = prefix_end(prefix).unwrap_or_else(|| "\u{7f}".repeat(8));
        Box::pin(self.read(move |c| {
            c.prepare_cached("SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2")
                .map_err(backend)?
                .query_row([lower, upper], |r| r.get::<_, i64>(0))
                .map(|n| n as u64)
                .map_err(backend)
        }))
    }

    fn create<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(self.write(WriteKind::Create {
            key: key.to_owned(),
            value,
        }))
    }

    fn update<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(self.write(WriteKind::Update {
            key: key.to_owned(),
            value,
            expected,
        }))
    }

    fn delete<'a>(
        &'a self,
        key: &'a str,
        expected: Option<Revision>,
    ) -> BoxFuture<'a, Result<KeyValue, StoreError>> {
        Box::pin(self.write(WriteKind::Delete {
            key: key.to_owned(),
            expected,
        }))
    }

    fn watch<'a>(
        &'a self,
        prefix: &'a str,
        after: Revision,
    ) -> BoxFuture<'a, Result<WatchStream, StoreError>> {
        Box::pin(async move {
            // Subscribe first, then read the history: nothing falls between the two.
            let mut live = self.inner.events.subscribe();
            let compacted = self
                .inner
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .1;
            if after < compacted {
                return Err(StoreError::Compacted {
                    requested: after,
                    oldest: compacted,
                });
            }
            let p = prefix.to_owned();
            let history = self.read(move |c| history::replay(c, &p, after)).await?;
            let (tx, rx) = mpsc::channel(1024);
            let prefix = prefix.to_owned();
            tokio::spawn(async move {
                let mut last = after;
                for ev in history {
                    last = ev.kv.mod_revision;
                    if tx.send(Ok(ev)).await.is_err() {
                        return;
                    }
                }
                loop {
                    match live.recv().await {
                        Ok(ev) => {
                            if ev.kv.mod_revision <= last || !ev.kv.key.starts_with(&prefix) {
                                continue;
                            }
                            last = ev.kv.mod_revision;
                            if tx.send(Ok((*ev).clone())).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {
                            let _ = tx
                                .send(Err(StoreError::Compacted {
                                    requested: last,
                                    oldest: last + 1,
                                }))
                                .await;
                            return;
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            });
            Ok(rx)
        })
    }

    fn revision(&self) -> BoxFuture<'_, Result<Revision, StoreError>> {
        let rev = self
            .inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        Box::pin(async move { Ok(rev) })
    }

    fn reads_locally(&self) -> bool {
        true
    }

    fn compact(&self, revision: Revision) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.write(WriteKind::Compact { revision })
                .await
                .map(|_| ())
        })
    }
}
