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
