//! `kill -9` of the server while clients write: every acknowledged write survives, and the
//! store opens again.
#![allow(
    clippy::disallowed_methods,
    reason = "an integration test waits in real time on a real process"
)]

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Server;

#[test]
fn kill_9_under_concurrent_writes_loses_no_acknowledged_write() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cluster");
    let mut server = Server::start_in(&dir);
    let (cert, key) = server.admin_cert_files();
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let url = server.url.clone();
    let ca = server.ca();
    let mut writers = Vec::new();
    for w in 0..6 {
        let (acked, stop, url, ca, cert, key) = (
            acked.clone(),
            stop.clone(),
            url.clone(),
            ca.clone(),
            cert.clone(),
            key.clone(),
        );
        writers.push(std::thread::spawn(move || {
            for i in 0..2000 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("w{w}-{i}");
                let body = format!(r#"{{"metadata":{{"name":"{name}"}},"data":{{"n":"{i}"}}}}"#);
                let out = std::process::Command::new("curl")
                    .args([
                        "-s",
                        "--max-time",
                        "10",
                        "-o",
                        "/dev/null",
                        "-w",
                        "%{http_code}",
                        "--cacert",
                    ])
                    .arg(&ca)
                    .arg("--cert")
                    .arg(&cert)
                    .arg("--key")
                    .arg(&key)
                    .args([
                        "-H",
                        "Content-Type: application/json",
                        "--data-binary",
                        &body,
                    ])
                    .arg(format!("{url}/api/v1/namespaces/default/configmaps"))
                    .output()
                    .expect("curl");
                if String::from_utf8_lossy(&out.stdout) == "201" {
                    acked.lock().expect("lock").insert(name);
                }
            }
        }));
    }
    let start = Instant::now();
    while acked.lock().expect("lock").len() < 150 && start.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: no chance to flush anything.
    server.kill();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() >= 150,
        "writes were acknowledged before the kill: {}",
        acked.len()
    );

    let server = Server::start_in(&dir);
    let (cert, key) = server.admin_cert_files();
    let (code, body) = server.curl(
        &[
            "--cert",
            cert.to_str().expect("utf8"),
            "--key",
            key.to_str().expect("utf8"),
        ],
        "/api/v1/namespaces/default/configmaps",
    );
    assert_eq!(code, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).expect("json");
    let stored: BTreeSet<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    let lost: Vec<_> = acked.difference(&stored).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost, e.g. {:?}",
        lost.len(),
        lost.iter().take(5).collect::<Vec<_>>()
    );
}

/// A namespace deletion interrupted midway — the namespace marked Terminating, its
/// contents not all deleted, the server gone — is finished when the server starts again.
#[test]
fn a_namespace_deletion_interrupted_by_a_crash_is_finished_at_the_next_start() {
    use kubeboot_store::Store;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cluster");
    let mut server = Server::start_in(&dir);
    let kubectl = |s: &Server, args: &[&str]| common::ok(s.kubectl("kubectl", args), "kubectl");
    kubectl(&server, &["create", "namespace", "doomed"]);
    kubectl(&server, &["create", "configmap", "left", "-n", "doomed"]);
    server.kill();
    // What a crash in the middle of `kubectl delete namespace doomed` leaves behind.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store =
            kubeboot_store::sqlite::SqliteStore::open(&dir.join("db/state.db")).expect("the store");
        let key = "/registry/namespaces/doomed";
        let kv = store.get(key).await.expect("read").expect("the namespace");
        let mut ns: serde_json::Value = serde_json::from_slice(&kv.value).expect("json");
        ns["status"]["phase"] = "Terminating".into();
        ns["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z".into();
        let value = serde_json::to_vec(&ns).expect("encode");
        store
            .update(key, value.into(), Some(kv.mod_revision))
            .await
            .expect("mark Terminating");
    });
    drop(runtime);
    let server = Server::start_in(&dir);
    let gone = common::eventually(Duration::from_secs(20), || {
        let (code, _) = server.admin_curl(&[], "/api/v1/namespaces/doomed");
        code == 404
    });
    assert!(gone, "the namespace was deleted");
    let (code, out) = server.admin_curl(&[], "/api/v1/namespaces/doomed/configmaps");
    assert_eq!(code, 200, "{out}");
    let list: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(list["items"], serde_json::json!([]), "and what was in it");
}
