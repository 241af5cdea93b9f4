//! The conformance suite on the etcd backend, each case on its own real etcd, plus what
//! only a replicated store can show: a member dying under writes and watches.

use std::sync::Arc;
use std::time::Duration;

use kubeboot_store::Store;
use kubeboot_store::etcd::{EtcdOptions, EtcdStore};
use kubeboot_store::etcd_cluster::EtcdCluster;

fn store_on(cluster: &EtcdCluster) -> EtcdStore {
    EtcdStore::new(EtcdOptions::new(cluster.endpoints())).expect("store")
}

async fn fresh() -> (Arc<dyn Store>, EtcdCluster) {
    let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .expect("join")
        .expect("etcd starts");
    (Arc::new(store_on(&cluster)), cluster)
}

kubeboot_store::store_conformance!(fresh());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_laid_out_under_the_etcd_prefix() {
    let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .expect("join")
        .expect("etcd starts");
    let mut opts = EtcdOptions::new(cluster.endpoints());
    opts.prefix = "/kubeboot".into();
    let s = EtcdStore::new(opts).expect("store");
    s.create("/registry/secrets/kube-system/t", "v".into())
        .await
        .expect("create");
    // Read through a store with the default prefix: the key is where etcdctl shows it.
    let raw = store_on(&cluster);
    let page = raw.list("/kubeboot/", None, None).await.expect("list");
    let keys: Vec<_> = page.items.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["/kubeboot/secrets/kube-system/t"]);
    // And back through the prefixed store, under the store's own names.
    let page = s
        .list("/registry/secrets/", None, None)
        .await
        .expect("list");
    assert_eq!(page.items[0].key, "/registry/secrets/kube-system/t");
}

/// A member killed under concurrent writes and a watch: every acknowledged write is in the
/// store, and the watch delivers every one of them exactly once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_dying_loses_no_write_and_no_event() {
    let mut cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(3))
        .await
        .expect("join")
        .expect("etcd starts");
    let s: Arc<dyn Store> = Arc::new(store_on(&cluster));
    let start = s.revision().await.expect("rev");
    let mut w = s.watch("/d/", start).await.expect("watch");
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..60 {
                    let key = format!("/d/{t}-{i:03}");
                    if let Ok(kv) = s.create(&key, "x".into()).await {
                        acked.push(kv.mod_revision);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                acked
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let before_kill = s.count("/d/").await.expect("count");
    assert!(before_kill < 480, "the kill lands mid-burst");
    // Member 0 is the one the store talks to first: its failure forces a fail-over.
    cluster.kill(0);
    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }
    assert_eq!(acked.len(), 8 * 60, "every write is acknowledged");
    assert_eq!(s.count("/d/").await.expect("count"), 480);
    let mut seen = Vec::new();
    while seen.len() < 480 {
        let ev = tokio::time::timeout(Duration::from_secs(20), w.recv())
            .await
            .expect("an event within 20 s")
            .expect("stream open")
            .expect("no error");
        seen.push(ev.kv.mod_revision);
    }
    acked.sort_unstable();
    assert_eq!(seen, acked, "each write seen once, in revision order");
}

/// Several keys written in one etcd transaction share one revision: the watch delivers
/// every one of them (and each once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_of_a_multi_key_revision_is_delivered() {
    let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .expect("join")
        .expect("etcd starts");
    let s = store_on(&cluster);
    let start = s.revision().await.expect("rev");
    let mut w = s.watch("/m/", start).await.expect("watch");
    let mut txn = std::process::Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", &cluster.servers_flag(), "txn"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("etcdctl (scripts/test installs etcd-client)");
    {
        use std::io::Write;
        let mut stdin = txn.stdin.take().expect("stdin");
        stdin
            .write_all(b"\nput /m/a 1\nput /m/b 2\nput /m/c 3\n\n\n")
            .expect("write");
    }
    assert!(txn.wait().expect("etcdctl").success());
    s.create("/m/d", "4".into()).await.expect("create");
    let mut seen = Vec::new();
    for _ in 0..4 {
        let ev = tokio::time::timeout(Duration::from_secs(10), w.recv())
            .await
            .expect("an event within 10 s")
            .expect("open")
            .expect("no error");
        seen.push((ev.kv.key, ev.kv.mod_revision));
    }
    let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["/m/a", "/m/b", "/m/c", "/m/d"]);
    assert_eq!(seen[0].1, seen[2].1, "one revision for the transaction");
    assert!(seen[3].1 > seen[2].1);
}
