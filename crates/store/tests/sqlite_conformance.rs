//! The conformance suite on the SQLite backend, plus what only a file-backed store can show.

use std::sync::Arc;

use kubeboot_store::Store;
use kubeboot_store::sqlite::SqliteStore;

async fn fresh() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(&dir.path().join("state.db")).expect("open");
    (Arc::new(store), dir)
}

kubeboot_store::store_conformance!(fresh());

#[tokio::test]
async fn reopening_keeps_data_and_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let kv = {
        let s = SqliteStore::open(&path).expect("open");
        s.create("/k", "v".into()).await.expect("create");
        s.update("/k", "v2".into(), None).await.expect("update")
    };
    let s = SqliteStore::open(&path).expect("reopen");
    assert_eq!(s.get("/k").await.expect("get"), Some(kv.clone()));
    assert_eq!(s.revision().await.expect("rev"), kv.mod_revision);
    let next = s.create("/k2", "v".into()).await.expect("create");
    assert_eq!(next.mod_revision, kv.mod_revision + 1);
}

#[tokio::test]
async fn the_revision_survives_a_history_compacted_to_nothing_and_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let last = {
        let s = SqliteStore::open(&path).expect("open");
        for i in 0..10 {
            s.create(&format!("/r/{i}"), "v".into())
                .await
                .expect("create");
        }
        let last = s.delete("/r/9", None).await.expect("delete").mod_revision;
        s.compact(last).await.expect("compact everything");
        assert_eq!(s.revision().await.expect("rev"), last);
        let page = s.list("/r/", None, None).await.expect("list");
        assert_eq!((page.items.len(), page.revision), (9, last));
        last
    };
    let s = SqliteStore::open(&path).expect("reopen");
    assert_eq!(s.revision().await.expect("rev"), last);
    let next = s.create("/r/new", "v".into()).await.expect("create");
    assert_eq!(
        next.mod_revision,
        last + 1,
        "no revision is handed out twice"
    );
    assert!(s.watch("/r/", last - 1).await.is_err(), "compacted away");
}

#[tokio::test]
async fn history_is_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = SqliteStore::open_with(&dir.path().join("state.db"), 5, None).expect("open");
    for i in 0..20 {
        s.create(&format!("/h/{i}"), "v".into())
            .await
            .expect("create");
    }
    assert!(
        s.watch("/h/", 2).await.is_err(),
        "revision 2 is out of the kept history"
    );
    assert!(s.watch("/h/", 16).await.is_ok());
}

fn page_size(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .expect("open")
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .expect("page_size")
}

#[tokio::test]
async fn a_new_store_has_16_kib_pages_and_an_older_store_keeps_its_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let new = dir.path().join("new.db");
    let s = SqliteStore::open(&new).expect("open");
    s.create("/k", vec![b'x'; 3000].into())
        .await
        .expect("create");
    assert_eq!(page_size(&new), 16384);

    // A store file made with SQLite's default 4 KiB pages (as kubeboot made them before)
    // opens, keeps its page size and its data, and takes writes.
    let old = dir.path().join("old.db");
    rusqlite::Connection::open(&old)
        .expect("open")
        .execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;")
        .expect("a 4 KiB-page file");
    let kv = {
        let s = SqliteStore::open(&old).expect("open");
        s.create("/k", vec![b'y'; 3000].into())
            .await
            .expect("create")
    };
    let s = SqliteStore::open(&old).expect("reopen");
    assert_eq!(s.get("/k").await.expect("get"), Some(kv));
    s.create("/k2", "v".into()).await.expect("create");
    assert_eq!(page_size(&old), 4096);
}

/// The next event of a watch, within 10 s.
async fn next_event(w: &mut kubeboot_store::WatchStream) -> kubeboot_store::Event {
    tokio::time::timeout(std::time::Duration::from_secs(10), w.recv())
        .await
        .expect("an event")
        .expect("open")
        .expect("not an error")
}

/// A store written when `kv` held every value too (before 2026-12-07) opens with its state
/// and its history: a value whose event had been compacted away still reads, lists and is
/// what the next change replaced; the history kept lists and replays as before.
#[tokio::test]
async fn a_store_of_the_layout_before_keeps_its_state_and_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    // Revisions 1–6: a created and updated, b created, c created and deleted, b updated;
    // then compacted at 3, which took the events of revisions 1–3 away. Revisions 7–8: e
    // created and updated by a version whose events did not yet say what they replaced.
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute_batch(
            "PRAGMA page_size = 16384; PRAGMA journal_mode = WAL;
             CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB NOT NULL,
                 create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL) WITHOUT ROWID;
             CREATE TABLE events (rev INTEGER PRIMARY KEY, key TEXT NOT NULL,
                 kind INTEGER NOT NULL, value BLOB NOT NULL, create_rev INTEGER NOT NULL,
                 created INTEGER NOT NULL, prev BLOB, prev_rev INTEGER);
             CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
             INSERT INTO meta VALUES ('revision', 8), ('compacted', 3);
             INSERT INTO kv VALUES ('/m/a', CAST(printf('a2%.2000c', 'x') AS BLOB), 1, 2),
                                   ('/m/b', CAST('b2' AS BLOB), 3, 6),
                                   ('/n/e', CAST('e2' AS BLOB), 7, 8);
             INSERT INTO events VALUES
                 (4, '/m/c', 0, CAST('c1' AS BLOB), 4, 1, NULL, NULL),
                 (5, '/m/c', 1, CAST('c1' AS BLOB), 4, 0, NULL, 4),
                 (6, '/m/b', 0, CAST('b2' AS BLOB), 3, 0, CAST('b1' AS BLOB), 3),
                 (7, '/n/e', 0, CAST('e1' AS BLOB), 7, 1, NULL, NULL),
                 (8, '/n/e', 0, CAST('e2' AS BLOB), 7, 0, NULL, NULL);",
        )
        .expect("a store of the layout before");
    let s = SqliteStore::open(&path).expect("open");
    let kv = |key: &str, value: &str, create_revision, mod_revision| kubeboot_store::KeyValue {
        key: key.into(),
        value: value.to_owned().into(),
        create_revision,
        mod_revision,
    };
    // a's value is a large one, which the layout now keeps only in its event.
    let a2 = kv("/m/a", &format!("a2{}", "x".repeat(2000)), 1, 2);
    let b2 = kv("/m/b", "b2", 3, 6);
    assert_eq!(s.get("/m/a").await.expect("get"), Some(a2.clone()));
    assert_eq!(s.get("/m/c").await.expect("get"), None);
    let listed = s.list("/m/", None, None).await.expect("list");
    assert_eq!(
        (listed.items, listed.revision),
        (vec![a2.clone(), b2.clone()], 8)
    );
    let at3 = s.list_at("/m/", None, None, 3).await.expect("list at 3");
    assert_eq!(at3.items, [a2.clone(), kv("/m/b", "b1", 3, 3)]);
    let at4 = s.list_at("/m/", None, None, 4).await.expect("list at 4");
    assert_eq!(
        at4.items,
        [a2.clone(), kv("/m/b", "b1", 3, 3), kv("/m/c", "c1", 4, 4)]
    );
    let mut w = s.watch("/m/", 3).await.expect("watch from 3");
    let mut replayed = Vec::new();
    for _ in 0..3 {
        let ev = next_event(&mut w).await;
        replayed.push((ev.kv.mod_revision, ev.prev));
    }
    assert_eq!(
        replayed,
        [(4, None), (5, Some("c1".into())), (6, Some("b1".into()))]
    );
    let a3 = s
        .update("/m/a", "a3".into(), Some(2))
        .await
        .expect("update");
    let ev = next_event(&mut w).await;
    assert_eq!((ev.kv, ev.prev), (a3.clone(), Some(a2.value.clone())));
    // e's first value is what its update replaced: a list before the update shows it, and
    // trimming the update lets it go.
    let at7 = s.list_at("/n/", None, None, 7).await.expect("list at 7");
    assert_eq!(at7.items, [kv("/n/e", "e1", 7, 7)]);
    s.compact(a3.mod_revision).await.expect("compact");
    drop(s);
    let events_of_e: i64 = rusqlite::Connection::open(&path)
        .expect("open")
        .query_row("SELECT count(*) FROM events WHERE key = '/n/e'", [], |r| {
            r.get(0)
        })
        .expect("count");
    assert_eq!(events_of_e, 1, "only e's current value is kept");
    let s = SqliteStore::open(&path).expect("reopen");
    let listed = s.list("/m/", None, None).await.expect("list");
    assert_eq!(listed.items, [a3, b2]);
    assert_eq!(
        s.get("/n/e").await.expect("get"),
        Some(kv("/n/e", "e2", 7, 8))
    );
}

/// A store laid out by a newer kubeboot is refused, saying so, rather than misread.
#[tokio::test]
async fn a_store_of_a_newer_layout_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    drop(SqliteStore::open(&path).expect("open"));
    rusqlite::Connection::open(&path)
        .expect("open")
        .execute_batch("PRAGMA user_version = 2")
        .expect("a newer layout");
    let err = SqliteStore::open(&path)
        .err()
        .expect("a newer layout is refused")
        .to_string();
    assert!(err.contains("newer kubeboot"), "{err}");
}
