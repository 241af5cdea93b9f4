//! The behaviour every [`Store`] backend must show. Each case takes a fresh, empty store;
//! backends instantiate all of them with [`store_conformance!`](crate::store_conformance).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::{EventKind, Store, StoreError};

fn b(s: &str) -> Bytes {
    Bytes::from(s.to_owned())
}

/// Instantiates every conformance case as a `#[tokio::test]` for a backend, given an async
/// expression that yields a fresh `(Arc<dyn Store>, guard)`; the guard (a temporary dir, an
/// etcd process) lives until the case ends.
#[macro_export]
macro_rules! store_conformance {
    ($make:expr) => {
        $crate::store_conformance!(@cases $make;
            create_then_get, create_of_existing_key_is_already_exists,
            update_checks_the_expected_revision, delete_returns_the_last_value,
            revisions_increase_with_every_write, list_is_ordered_and_bounded_by_prefix,
            list_pages_with_limit_and_continue, watch_replays_history_then_follows,
            events_carry_the_value_they_replaced, list_at_a_revision_shows_that_state,
            watch_from_now_sees_only_new_writes, watch_before_compaction_is_refused,
            concurrent_writes_all_land, concurrent_updates_of_one_key_let_one_win,
            compaction_trims_history_never_state);
    };
    (@cases $make:expr; $($case:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, guard) = $make.await;
                let store: std::sync::Arc<dyn $crate::Store> = store;
                $crate::conformance::$case(store).await;
                drop(guard);
            }
        )*
    };
}

/// A created key reads back with its value and revisions.
pub async fn create_then_get(s: Arc<dyn Store>) {
    let kv = s
        .create("/registry/configmaps/default/a", b("1"))
        .await
        .expect("create");
    assert!(kv.mod_revision > 0);
    assert_eq!(kv.create_revision, kv.mod_revision);
    let got = s
        .get("/registry/configmaps/default/a")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got, kv);
    assert_eq!(
        s.get("/registry/configmaps/default/b").await.expect("get"),
        None
    );
    // With the store's revision: the latest write's, here a later one than the key's.
    let other = s
        .create("/registry/configmaps/default/c", b("2"))
        .await
        .expect("create");
    let (got, revision) = s
        .get_with_revision("/registry/configmaps/default/a")
        .await
        .expect("get with revision");
    assert_eq!(got, Some(kv));
    assert_eq!(revision, other.mod_revision);
    let (none, revision) = s
        .get_with_revision("/registry/configmaps/default/b")
        .await
        .expect("get with revision");
    assert_eq!((none, revision), (None, other.mod_revision));
}

/// Creating an existing key fails and changes nothing.
pub async fn create_of_existing_key_is_already_exists(s: Arc<dyn Store>) {
    let kv = s.create("/k", b("1")).await.expect("create");
    let err = s.create("/k", b("2")).await.expect_err("second create");
    assert_eq!(err, StoreError::AlreadyExists("/k".into()));
    assert_eq!(s.get("/k").await.expect("get"), Some(kv.clone()));
    assert_eq!(s.revision().await.expect("rev"), kv.mod_revision);
}

/// An update with a stale expected revision is a conflict; a current one succeeds.
pub async fn update_checks_the_expected_revision(s: Arc<dyn Store>) {
    let v1 = s.create("/k", b("1")).await.expect("create");
    let v2 = s
        .update("/k", b("2"), Some(v1.mod_revision))
        .await
        .expect("update");
    assert!(v2.mod_revision > v1.mod_revision);
    assert_eq!(v2.create_revision, v1.create_revision);
    let err = s
        .update("/k", b("3"), Some(v1.mod_revision))
        .await
        .expect_err("stale");
    assert_eq!(
        err,
        StoreError::Conflict {
            key: "/k".into(),
            current: v2.mod_revision
        }
    );
    assert_eq!(
        s.get("/k").await.expect("get").expect("present").value,
        b("2")
    );
    let err = s
        .update("/missing", b("1"), None)
        .await
        .expect_err("missing");
    assert_eq!(err, StoreError::NotFound("/missing".into()));
    let v3 = s
        .update("/k", b("3"), None)
        .await
        .expect("unconditional update");
    assert_eq!(v3.value, b("3"));
}

/// A delete returns the last value at the delete's revision; the key is gone.
pub async fn delete_returns_the_last_value(s: Arc<dyn Store>) {
    let v1 = s.create("/k", b("1")).await.expect("create");
    let err = s
        .delete("/k", Some(v1.mod_revision + 100))
        .await
        .expect_err("stale delete");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let gone = s.delete("/k", Some(v1.mod_revision)).await.expect("delete");
    assert_eq!(gone.value, b("1"));
    assert!(gone.mod_revision > v1.mod_revision);
    assert_eq!(s.get("/k").await.expect("get"), None);
    assert_eq!(
        s.delete("/k", None).await.expect_err("again"),
        StoreError::NotFound("/k".into())
    );
    let again = s.create("/k", b("new")).await.expect("recreate");
    assert_eq!(
        again.create_revision, again.mod_revision,
        "a recreated key starts anew"
    );
}

/// Every write gets a higher revision; the store revision is the last write's.
pub async fn revisions_increase_with_every_write(s: Arc<dyn Store>) {
    let mut last = s.revision().await.expect("rev");
    for i in 0..5 {
        let kv = s.create(&format!("/k{i}"), b("x")).await.expect("create");
        assert!(kv.mod_revision > last);
        last = kv.mod_revision;
    }
    assert_eq!(s.revision().await.expect("rev"), last);
}

/// A list returns keys in order, only under the prefix, at the current revision.
pub async fn list_is_ordered_and_bounded_by_prefix(s: Arc<dyn Store>) {
    for k in ["/a/2", "/a/1", "/ab/1", "/a/3", "/b/1"] {
        s.create(k, b(k)).await.expect("create");
    }
    let page = s.list("/a/", None, None).await.expect("list");
    let keys: Vec<_> = page.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/a/1", "/a/2", "/a/3"]);
    assert!(!page.more);
    assert_eq!(page.revision, s.revision().await.expect("rev"));
    assert_eq!(s.count("/a/").await.expect("count"), 3);
    assert_eq!(s.list("/c/", None, None).await.expect("list").items, vec![]);
}

/// Pages of `limit` keys continue after the last key of the previous page.
pub async fn list_pages_with_limit_and_continue(s: Arc<dyn Store>) {
    for i in 0..7 {
        s.create(&format!("/p/{i}"), b("x")).await.expect("create");
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let page = s
            .list("/p/", after.as_deref(), Some(3))
            .await
            .expect("list");
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        after = page.items.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("/p/{i}")).collect::<Vec<_>>());
}

async fn next_event(w: &mut crate::WatchStream) -> crate::Event {
    tokio::time::timeout(Duration::from_secs(10), w.recv())
        .await
        .expect("an event within 10s")
        .expect("stream open")
        .expect("not an error")
}

/// A watch from a revision replays what came after it, then follows new writes, in order,
/// under its prefix only.
pub async fn watch_replays_history_then_follows(s: Arc<dyn Store>) {
    let start = s.revision().await.expect("rev");
    let a = s.create("/w/a", b("1")).await.expect("create");
    s.create("/other/x", b("1")).await.expect("create");
    s.update("/w/a", b("2"), None).await.expect("update");
    let mut w = s.watch("/w/", start).await.expect("watch");
    s.delete("/w/a", None).await.expect("delete");
    s.create("/w/b", b("1")).await.expect("create");
    let evs = [
        next_event(&mut w).await,
        next_event(&mut w).await,
        next_event(&mut w).await,
        next_event(&mut w).await,
    ];
    let kinds: Vec<_> = evs
        .iter()
        .map(|e| (e.kind, e.kv.key.as_str(), e.created))
        .collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Put, "/w/a", true),
            (EventKind::Put, "/w/a", false),
            (EventKind::Delete, "/w/a", false),
            (EventKind::Put, "/w/b", true)
        ]
    );
    assert_eq!(evs[0].kv.mod_revision, a.mod_revision);
    assert_eq!(evs[2].kv.value, b("2"), "a delete carries the last value");
    assert!(
        evs.windows(2)
            .all(|p| p[0].kv.mod_revision < p[1].kv.mod_revision)
    );
}

/// Every event carries the value it replaced — none for a create, the old value for an
/// update, the last value for a delete — whether replayed from history or followed live.
pub async fn events_carry_the_value_they_replaced(s: Arc<dyn Store>) {
    let start = s.revision().await.expect("rev");
    s.create("/pv/a", b("1")).await.expect("create");
    s.update("/pv/a", b("2"), None).await.expect("update");
    let mut w = s.watch("/pv/", start).await.expect("watch");
    s.update("/pv/a", b("3"), None).await.expect("update");
    s.delete("/pv/a", None).await.expect("delete");
    let mut prevs = Vec::new();
    for _ in 0..4 {
        prevs.push(next_event(&mut w).await.prev);
    }
    assert_eq!(
        prevs,
        [None, Some(b("1")), Some(b("2")), Some(b("3"))],
        "history (create, update), then live (update, delete)"
    );
}

/// A list at a past revision shows the keys as they were then — later creates absent,
/// later updates and deletes undone — paged as a list is; once the history no longer
/// reaches back to it, `Compacted`.
pub async fn list_at_a_revision_shows_that_state(s: Arc<dyn Store>) {
    let mut then = Vec::new();
    for k in ["/la/a", "/la/b", "/la/d"] {
        then.push(s.create(k, b("1")).await.expect("create"));
    }
    let at = s.revision().await.expect("rev");
    s.update("/la/a", b("2"), None).await.expect("update");
    s.delete("/la/b", None).await.expect("delete");
    s.create("/la/c", b("1")).await.expect("create");
    s.delete("/la/d", None).await.expect("delete");
    s.create("/la/d", b("2")).await.expect("recreate");
    s.create("/lb/x", b("1")).await.expect("create");
    let page = s.list_at("/la/", None, None, at).await.expect("list at");
    assert_eq!(
        page.items, then,
        "the keys, values and revisions as they were"
    );
    assert_eq!(page.revision, at);
    assert!(!page.more);
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..10 {
        let page = s
            .list_at("/la/", after.as_deref(), Some(1), at)
            .await
            .expect("page at");
        seen.extend(page.items.iter().map(|kv| kv.key.clone()));
        after = page.items.last().map(|kv| kv.key.clone());
        if !page.more {
            break;
        }
    }
    assert_eq!(seen, ["/la/a", "/la/b", "/la/d"], "paged at the revision");
    let now = s.revision().await.expect("rev");
    s.compact(now).await.expect("compact");
    assert!(
        matches!(
            s.list_at("/la/", None, None, at).await,
            Err(StoreError::Compacted { .. })
        ),
        "a revision older than the history kept"
    );
}

/// Compaction trims history, never state: a key last written long before the compacted
/// revision, one written just before it and one written after it all read and list as
/// before; a list at the compacted revision shows that state; and every change after it,
/// replayed or made later, carries the value it replaced.
pub async fn compaction_trims_history_never_state(s: Arc<dyn Store>) {
    // Large values as well as small ones: a backend may keep them apart.
    let large = |v: &str| Bytes::from(format!("{v}{}", "x".repeat(4000)));
    let old = s.create("/ck/old", b("o1")).await.expect("create");
    s.create("/ck/gone", large("g1")).await.expect("create");
    s.delete("/ck/gone", None).await.expect("delete");
    s.create("/ck/a", large("a1")).await.expect("create");
    let a2 = s.update("/ck/a", large("a2"), None).await.expect("update");
    let l1 = s.create("/ck/later", b("l1")).await.expect("create");
    let at = s.revision().await.expect("rev");
    let a3 = s.update("/ck/a", large("a3"), None).await.expect("update");
    let l2 = s.update("/ck/later", b("l2"), None).await.expect("update");
    s.compact(at).await.expect("compact");

    let now = [a3.clone(), l2.clone(), old.clone()];
    for kv in &now {
        assert_eq!(s.get(&kv.key).await.expect("get").as_ref(), Some(kv));
    }
    assert_eq!(s.get("/ck/gone").await.expect("get"), None);
    assert_eq!(s.list("/ck/", None, None).await.expect("list").items, now);
    let then = s.list_at("/ck/", None, None, at).await.expect("list at");
    assert_eq!(then.items, [a2.clone(), l1.clone(), old.clone()]);
    let mut w = s
        .watch("/ck/", at)
        .await
        .expect("watch from the compacted revision");
    for (kv, prev) in [(&a3, &a2), (&l2, &l1)] {
        let ev = next_event(&mut w).await;
        assert_eq!((&ev.kv, ev.prev.as_ref()), (kv, Some(&prev.value)));
    }

    // Everything compacted: the state stays, and the next change still says what it replaced.
    let last = s.revision().await.expect("rev");
    s.compact(last).await.expect("compact");
    assert_eq!(s.list("/ck/", None, None).await.expect("list").items, now);
    let o2 = s.update("/ck/old", b("o2"), None).await.expect("update");
    let ev = next_event(&mut w).await;
    assert_eq!((&ev.kv, ev.prev.as_ref()), (&o2, Some(&old.value)));
    let mut replay = s.watch("/ck/", last).await.expect("watch");
    let ev = next_event(&mut replay).await;
    assert_eq!((&ev.kv, ev.prev.as_ref()), (&o2, Some(&old.value)));
}

/// A watch from the current revision sees only later writes.
pub async fn watch_from_now_sees_only_new_writes(s: Arc<dyn Store>) {
    s.create("/n/old", b("1")).await.expect("create");
    let now = s.revision().await.expect("rev");
    let mut w = s.watch("/n/", now).await.expect("watch");
    let kv = s.create("/n/new", b("1")).await.expect("create");
    let ev = next_event(&mut w).await;
    assert_eq!(ev.kv, kv);
}

/// After compaction, a watch from an older revision is refused with `Compacted`.
pub async fn watch_before_compaction_is_refused(s: Arc<dyn Store>) {
    let mut revs = Vec::new();
    for i in 0..6 {
        revs.push(
            s.create(&format!("/c/{i}"), b("x"))
                .await
                .expect("create")
                .mod_revision,
        );
    }
    s.compact(revs[3]).await.expect("compact");
    let err = s.watch("/c/", revs[1]).await.expect_err("too old");
    assert!(matches!(err, StoreError::Compacted { .. }), "{err:?}");
    let mut w = s
        .watch("/c/", revs[3])
        .await
        .expect("at the compacted revision");
    assert_eq!(next_event(&mut w).await.kv.mod_revision, revs[4]);
}

/// Many concurrent writers all land, each with its own revision.
pub async fn concurrent_writes_all_land(s: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for t in 0..32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..10 {
                revs.push(
                    s.create(&format!("/cc/{t:02}-{i:02}"), b("x"))
                        .await
                        .expect("create")
                        .mod_revision,
                );
            }
            revs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), 320, "every write has a distinct revision");
    assert_eq!(s.count("/cc/").await.expect("count"), 320);
}

/// Of several updates expecting the same revision, exactly one wins.
pub async fn concurrent_updates_of_one_key_let_one_win(s: Arc<dyn Store>) {
    let v1 = s.create("/race", b("0")).await.expect("create");
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.update("/race", b(&t.to_string()), Some(v1.mod_revision))
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.expect("task") {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
}
