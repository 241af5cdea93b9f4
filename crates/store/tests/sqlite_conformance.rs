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
