//! A highly available control plane: real etcd members on loopback and several `kubeboot
//! server`s sharing them, driven by the real kubectl, curl, etcdctl and `kubeboot bench
//! join`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{
    Server, client_cert, control_plane, eventually, ok, openssl, read_until, stderr, stdout,
    wait_bounded,
};
use kubeboot_store::Store;
use kubeboot_store::etcd::{EtcdOptions, EtcdStore};
use kubeboot_store::etcd_cluster::{EtcdCluster, EtcdTls};

const KUBECTL: &str = "kubectl";

fn etcd(members: usize) -> EtcdCluster {
    EtcdCluster::start(members).expect("etcd starts (scripts/test installs etcd-server)")
}

/// cp1 on `etcd` in `d1`, holding the kube-controller-manager Lease before cp2 joins it from
/// `d2`: both servers and the first holder's identity.
fn leader_then_second(d1: &Path, d2: &Path, etcd: &str) -> (Server, Server, String) {
    let cp1 = control_plane(d1, etcd, None, &[]);
    assert!(
        eventually(Duration::from_secs(20), || !lease_holder(&cp1).is_empty()),
        "cp1 takes the kube-controller-manager Lease"
    );
    let leader = lease_holder(&cp1);
    let cp2 = control_plane(d2, etcd, Some(d1), &[]);
    (cp1, cp2, leader)
}

fn lease_holder(s: &Server) -> String {
    stdout(&s.kubectl(
        KUBECTL,
        &[
            "get",
            "lease",
            "-n",
            "kube-system",
            "kube-controller-manager",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
    ))
}

/// Every certificate ever written into each CSR, read from etcd's history of the CSR keys.
async fn certificates_written(endpoints: Vec<String>) -> BTreeMap<String, BTreeSet<String>> {
    let store = EtcdStore::new(EtcdOptions::new(endpoints)).expect("store");
    let prefix = "/registry/certificatesigningrequests/";
    let page = store.list(prefix, None, None).await.expect("list");
    let last = page
        .items
        .iter()
        .map(|kv| kv.mod_revision)
        .max()
        .expect("CSRs");
    let mut w = store
        .watch(prefix, 0)
        .await
        .expect("history from the start");
    let mut written: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(20), w.recv())
            .await
            .expect("history within 20 s")
            .expect("open")
            .expect("not compacted");
        let obj: serde_json::Value = serde_json::from_slice(&ev.kv.value).expect("json");
        let entry = written.entry(ev.kv.key.clone()).or_default();
        if let Some(cert) = obj.pointer("/status/certificate").and_then(|c| c.as_str()) {
            entry.insert(cert.to_owned());
        }
        if ev.kv.mod_revision >= last {
            return written;
        }
    }
}

/// Two servers on a 3-member etcd. Objects written through one are read and guarded
/// through the other; one controller-manager Lease holder signs; then, during a burst of
/// 1,000 joins spread over both servers, one etcd member and the leading server are killed.
/// Every node still ends with a certificate, the other server takes the Lease, no CSR is
/// signed twice, and no acknowledged write is lost.
#[test]
fn two_servers_survive_losing_an_etcd_member_and_a_server_during_1000_joins() {
    let mut cluster = etcd(3);
    let servers = cluster.servers_flag();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (d1, d2) = (tmp.path().join("cp1"), tmp.path().join("cp2"));
    let (mut cp1, cp2, first_leader) = leader_then_second(&d1, &d2, &servers);
    assert_eq!(
        std::fs::read(d1.join("pki/ca.crt")).expect("ca"),
        std::fs::read(d2.join("pki/ca.crt")).expect("ca"),
        "the second server serves with the first one's CA"
    );
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(d2.join("pki/ca.key"))
            .expect("ca.key")
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);
    assert!(
        cp2.join_command.is_none(),
        "only the first server made a token"
    );

    // Written through cp1, read through cp2 at once.
    ok(
        cp1.kubectl(
            KUBECTL,
            &["create", "configmap", "shared", "--from-literal=a=1"],
        ),
        "create through cp1",
    );
    let seen = ok(
        cp2.kubectl(KUBECTL, &["get", "configmap", "shared", "-o", "json"]),
        "get through cp2",
    );
    assert!(seen.contains("\"a\": \"1\""), "{seen}");
    // A stale update through cp2 after an update through cp1 is a 409 Conflict.
    ok(
        cp1.kubectl(KUBECTL, &["label", "configmap", "shared", "step=2"]),
        "label through cp1",
    );
    let stale = seen.replace("\"a\": \"1\"", "\"a\": \"stale\"");
    let out = cp2.kubectl_as(
        KUBECTL,
        &cp2.kubeconfig(),
        &["replace", "-f", "-"],
        Some(&stale),
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("Conflict") || stderr(&out).contains("has been modified"),
        "{}",
        stderr(&out)
    );
    let kept = ok(
        cp1.kubectl(
            KUBECTL,
            &["get", "configmap", "shared", "-o", "jsonpath={.data.a}"],
        ),
        "get",
    );
    assert_eq!(kept, "1", "the stale update changed nothing");

    // The burst.
    let (token, pin) = (
        cp1.join_arg("--token"),
        cp1.join_arg("--discovery-token-ca-cert-hash"),
    );
    let results = tmp.path().join("results.json");
    let bench = Command::new(common::bin())
        .args(["bench", "join", "--server"])
        .arg(format!("{},{}", cp1.url, cp2.url))
        .args(["--token", &token, "--discovery-token-ca-cert-hash", &pin])
        .args(["--nodes", "1000", "--concurrency", "40", "--output"])
        .arg(&results)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bench join");
    // Acknowledged writes through both servers while things fail.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let targets = [cp1.kubeconfig(), cp2.kubeconfig()];
        let home = d2;
        std::thread::spawn(move || {
            let mut acked = Vec::new();
            for i in 0..400 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("ack-{i}");
                let out = Command::new(KUBECTL)
                    .args(["create", "configmap", &name, "--request-timeout=20s"])
                    .env("KUBECONFIG", &targets[i % 2])
                    .env("HOME", &home)
                    .output()
                    .expect("kubectl");
                if out.status.success() {
                    acked.push(name);
                }
            }
            acked
        })
    };
    std::thread::sleep(Duration::from_secs(3));
    cluster.kill(0);
    cp1.kill();
    let out = wait_bounded(bench, Duration::from_secs(400));
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().expect("writer");
    assert!(
        out.status.success(),
        "bench join:\n{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).expect("results")).expect("json");
    assert_eq!(
        report["admitted"], 1000,
        "every node has a certificate: {report}"
    );
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");

    // cp2 took over the Lease.
    assert!(
        eventually(Duration::from_secs(30), || {
            let h = lease_holder(&cp2);
            !h.is_empty() && h != first_leader
        }),
        "the Lease moved from {first_leader} to cp2"
    );

    // No acknowledged write is lost.
    assert!(!acked.is_empty(), "some writes were acknowledged");
    let names = ok(
        cp2.kubectl(
            KUBECTL,
            &[
                "get",
                "configmaps",
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ],
        ),
        "list",
    );
    let present: BTreeSet<&str> = names.split_whitespace().collect();
    for name in &acked {
        assert!(
            present.contains(name.as_str()),
            "{name} was acknowledged and lost"
        );
    }

    // Every CSR is issued, and etcd's history shows one certificate per CSR: none was
    // signed twice.
    let csrs = ok(
        cp2.kubectl(KUBECTL, &["get", "csr", "--no-headers"]),
        "get csr",
    );
    let lines: Vec<&str> = csrs.lines().collect();
    assert!(lines.len() >= 1000, "{} CSRs", lines.len());
    assert!(
        lines.iter().all(|l| l.contains("Approved,Issued")),
        "every CSR is issued:\n{}",
        lines
            .iter()
            .filter(|l| !l.contains("Approved,Issued"))
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    );
    let written = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(certificates_written(cluster.endpoints()[1..].to_vec()));
    let twice: Vec<_> = written.iter().filter(|(_, c)| c.len() > 1).collect();
    assert!(twice.is_empty(), "signed more than once: {twice:?}");
    let issued: usize = written.values().map(BTreeSet::len).sum();
    assert_eq!(issued, lines.len(), "one issued certificate per CSR");
}

/// The server compacts etcd's history on schedule; an open watch goes on across the
/// compaction, and a client whose resourceVersion is gone gets 410 Gone, re-lists, and
/// watches from the list's resourceVersion.
#[test]
fn watches_outlive_compaction_and_a_compacted_version_means_relist() {
    let cluster = etcd(1);
    let servers = cluster.servers_flag();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cp");
    let flags = ["--etcd-compaction-interval", "1s"];
    let mut server = control_plane(&dir, &servers, None, &flags);
    ok(
        server.kubectl(KUBECTL, &["create", "configmap", "w0"]),
        "create",
    );
    let old_rv = ok(
        server.kubectl(
            KUBECTL,
            &[
                "get",
                "configmap",
                "w0",
                "-o",
                "jsonpath={.metadata.resourceVersion}",
            ],
        ),
        "rv",
    );
    // An open watch from now.
    let watch = Command::new(KUBECTL)
        .args([
            "get",
            "configmaps",
            "--watch-only",
            "-o",
            "name",
            "--request-timeout=0",
        ])
        .env("KUBECONFIG", server.kubeconfig())
        .env("HOME", &dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kubectl watch");
    for i in 0..5 {
        ok(
            server.kubectl(
                KUBECTL,
                &["label", "configmap", "w0", &format!("n={i}"), "--overwrite"],
            ),
            "label",
        );
    }
    // etcd has dropped the old revision (etcdctl reads it from etcd itself).
    let compacted = eventually(Duration::from_secs(20), || {
        let out = Command::new("etcdctl")
            .args(["--endpoints", &servers, "get", "--rev", &old_rv])
            .arg("/registry/configmaps/default/w0")
            .env("ETCDCTL_API", "3")
            .output()
            .expect("etcdctl");
        String::from_utf8_lossy(&out.stderr).contains("required revision has been compacted")
    });
    assert!(compacted, "the server compacted etcd's history");
    ok(
        server.kubectl(KUBECTL, &["create", "configmap", "after-compaction"]),
        "create",
    );
    let seen = read_until(watch, "configmap/after-compaction", Duration::from_secs(15));
    assert!(
        seen.contains("configmap/after-compaction"),
        "the open watch went on across the compaction: {seen}"
    );

    // A restarted server knows nothing older than its start: the old version is 410 Gone.
    server.kill();
    let server = control_plane(&dir, &servers, None, &flags);
    let (code, body) = server.admin_curl(
        &[],
        &format!("/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={old_rv}&timeoutSeconds=2"),
    );
    assert!(
        code == 410 || body.contains("\"code\":410"),
        "{code} {body}"
    );
    assert!(body.contains("too old resource version"), "{body}");
    // The client re-lists and watches from there.
    let (code, list) = server.admin_curl(&[], "/api/v1/namespaces/default/configmaps");
    assert_eq!(code, 200, "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("list rv")
        .to_owned();
    let watch = Command::new("curl")
        .args(["-sS", "-N", "--max-time", "8", "--cacert"])
        .arg(server.ca())
        .args(["--cert"])
        .arg(server.admin_cert_files().0)
        .args(["--key"])
        .arg(server.admin_cert_files().1)
        .arg(format!(
            "{}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={rv}&timeoutSeconds=5",
            server.url
        ))
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl watch");
    std::thread::sleep(Duration::from_millis(500));
    ok(
        server.kubectl(KUBECTL, &["create", "configmap", "after-relist"]),
        "create",
    );
    let events = wait_bounded(watch, Duration::from_secs(15));
    let text = stdout(&events);
    assert!(
        text.contains("\"type\":\"ADDED\"") && text.contains("after-relist"),
        "{text}"
    );
    assert!(
        !text.contains("\"name\":\"w0\""),
        "only changes after the list: {text}"
    );
}

/// etcd that requires client certificates: the server reaches it with `--etcd-cafile`,
/// `--etcd-certfile` and `--etcd-keyfile`, keeps its keys under `--etcd-prefix`, and Secrets
/// are encrypted at rest in etcd as in the embedded store.
#[test]
fn etcd_over_mutual_tls_under_a_prefix_with_secrets_encrypted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = tmp.path();
    let p = |f: &str| pki.join(f).display().to_string();
    openssl(
        pki,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "etcd-ca.key",
            "-out",
            "etcd-ca.crt",
            "-subj",
            "/CN=etcd-ca",
            "-days",
            "1",
        ],
    );
    common::csr_pem(pki, "etcd-server", "/CN=etcd-server");
    std::fs::write(
        pki.join("server.cnf"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("write");
    openssl(
        pki,
        &[
            "x509",
            "-req",
            "-in",
            "etcd-server.csr",
            "-CA",
            "etcd-ca.crt",
            "-CAkey",
            "etcd-ca.key",
            "-CAcreateserial",
            "-out",
            "etcd-server.crt",
            "-days",
            "1",
            "-extfile",
            "server.cnf",
        ],
    );
    client_cert(
        pki,
        "apiserver-etcd-client",
        "/CN=kube-apiserver-etcd-client",
        &pki.join("etcd-ca.crt"),
        &pki.join("etcd-ca.key"),
    );
    let tls = EtcdTls {
        ca: pki.join("etcd-ca.crt"),
        cert: pki.join("etcd-server.crt"),
        key: pki.join("etcd-server.key"),
    };
    let cluster = EtcdCluster::start_with(1, Some(&tls)).expect("etcd with TLS starts");
    let servers = cluster.servers_flag();
    assert!(servers.starts_with("https://"), "{servers}");
    std::fs::write(
        pki.join("enc.yaml"),
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources:\n      - secrets\n    providers:\n      - aescbc:\n          keys:\n            - name: key1\n              secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n      - identity: {}\n",
    )
    .expect("write");
    let (ca, cert, key, enc) = (
        p("etcd-ca.crt"),
        p("apiserver-etcd-client.crt"),
        p("apiserver-etcd-client.key"),
        p("enc.yaml"),
    );
    let server = control_plane(
        &pki.join("cp"),
        &servers,
        None,
        &[
            "--etcd-cafile",
            &ca,
            "--etcd-certfile",
            &cert,
            "--etcd-keyfile",
            &key,
            "--etcd-prefix",
            "/kubeboot",
            "--encryption-provider-config",
            &enc,
        ],
    );
    ok(
        server.kubectl(
            KUBECTL,
            &[
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=password=hunter2-plaintext",
            ],
        ),
        "create secret",
    );
    let etcdctl = |with_cert: bool, args: &[&str]| {
        let mut cmd = Command::new("etcdctl");
        cmd.env("ETCDCTL_API", "3").args([
            "--endpoints",
            &servers,
            "--cacert",
            &ca,
            "--dial-timeout",
            "3s",
        ]);
        if with_cert {
            cmd.args(["--cert", &cert, "--key", &key]);
        }
        cmd.args(args).output().expect("etcdctl")
    };
    let raw = etcdctl(
        true,
        &["get", "/kubeboot/secrets/default/s", "--print-value-only"],
    );
    let value = String::from_utf8_lossy(&raw.stdout);
    assert!(value.starts_with("k8s:enc:aescbc:v1:key1:"), "{value:.60}");
    assert!(!value.contains("hunter2"), "no plaintext in etcd");
    let keys = etcdctl(true, &["get", "--prefix", "/registry/", "--keys-only"]);
    assert!(
        stdout(&keys).trim().is_empty(),
        "nothing outside --etcd-prefix: {}",
        stdout(&keys)
    );
    let refused = etcdctl(false, &["get", "/kubeboot/secrets/default/s"]);
    assert!(
        !refused.status.success(),
        "etcd requires a client certificate"
    );
    let read = ok(
        server.kubectl(
            KUBECTL,
            &["get", "secret", "s", "-o", "jsonpath={.data.password}"],
        ),
        "get secret",
    );
    use base64::Engine;
    let plain = base64::engine::general_purpose::STANDARD
        .decode(read.trim())
        .expect("base64");
    assert_eq!(plain, b"hunter2-plaintext");

    // Key rotation's last step works on etcd too: every Secret rewritten with the new first key.
    std::fs::write(
        pki.join("enc2.yaml"),
        "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources:\n      - secrets\n    providers:\n      - aesgcm:\n          keys:\n            - name: key2\n              secret: ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=\n      - aescbc:\n          keys:\n            - name: key1\n              secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n",
    )
    .expect("write");
    let enc2 = p("enc2.yaml");
    let rewrite = ok(
        wait_bounded(
            Command::new(common::bin())
                .args(["rewrite-secrets", "--encryption-provider-config", &enc2])
                .args(["--etcd-servers", &servers, "--etcd-cafile", &ca])
                .args(["--etcd-certfile", &cert, "--etcd-keyfile", &key])
                .args(["--etcd-prefix", "/kubeboot"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("rewrite-secrets"),
            Duration::from_secs(60),
        ),
        "rewrite-secrets",
    );
    assert!(rewrite.contains("rewrote"), "{rewrite}");
    let raw = etcdctl(
        true,
        &["get", "/kubeboot/secrets/default/s", "--print-value-only"],
    );
    let value = String::from_utf8_lossy(&raw.stdout);
    assert!(value.starts_with("k8s:enc:aesgcm:v1:key2:"), "{value:.60}");
}

/// A leader stopped cleanly (SIGTERM) gives up its Lease: the other server takes over at its
/// next try (every 2 s) instead of waiting out the 15 s lease duration.
#[test]
fn a_leader_stopped_cleanly_hands_over_at_once() {
    let cluster = etcd(1);
    let servers = cluster.servers_flag();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (d1, d2) = (tmp.path().join("cp1"), tmp.path().join("cp2"));
    let (mut cp1, cp2, first) = leader_then_second(&d1, &d2, &servers);
    let term = Command::new("kill")
        .args(["-TERM", &cp1.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let exited = common::wait_exit(&mut cp1.child, Duration::from_secs(10));
    assert!(exited, "cp1 exits on SIGTERM");
    // Well inside the 15 s a killed leader's Lease would need to expire.
    assert!(
        eventually(Duration::from_secs(8), || {
            let h = lease_holder(&cp2);
            !h.is_empty() && h != first
        }),
        "cp2 took the released Lease; holder now {:?}",
        lease_holder(&cp2)
    );
}

/// The API server's count of open watches (`apiserver_registered_watchers`).
fn watchers(s: &Server) -> u64 {
    let (_, metrics) = s.admin_curl(&[], "/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("apiserver_registered_watchers "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(u64::MAX)
}

fn patch_lease(s: &Server, spec: &str) {
    ok(
        s.kubectl(
            KUBECTL,
            &[
                "-n",
                "kube-system",
                "patch",
                "lease",
                "kube-controller-manager",
                "--type",
                "merge",
                "-p",
                spec,
            ],
        ),
        "kubectl patch lease",
    );
}

/// A leader that sees another holder in its Lease stops acting at once: every controller
/// task ends (their watches close), and they start again when it takes the Lease back.
#[test]
fn a_leader_that_loses_its_lease_stops_its_controllers_until_it_leads_again() {
    let s = Server::start_with(&[
        "--leader-elect-lease-duration",
        "3s",
        "--leader-elect-renew-deadline",
        "2s",
        "--leader-elect-retry-period",
        "500ms",
    ]);
    assert!(
        eventually(Duration::from_secs(20), || !lease_holder(&s).is_empty()
            && watchers(&s) >= 1),
        "the server leads and its controllers watch; holder {:?}, watchers {}",
        lease_holder(&s),
        watchers(&s)
    );
    let leader = lease_holder(&s);
    patch_lease(
        &s,
        r#"{"spec":{"holderIdentity":"intruder","leaseDurationSeconds":3600}}"#,
    );
    assert!(
        eventually(Duration::from_secs(10), || watchers(&s) == 0),
        "the controllers' watches end once the Lease is someone else's; watchers {}",
        watchers(&s)
    );
    assert_eq!(
        lease_holder(&s),
        "intruder",
        "the server waits out the holder"
    );
    patch_lease(
        &s,
        r#"{"spec":{"holderIdentity":"","leaseDurationSeconds":1}}"#,
    );
    assert!(
        eventually(Duration::from_secs(10), || lease_holder(&s) == leader
            && watchers(&s) >= 1),
        "the server leads again and its controllers watch; holder {:?}, watchers {}",
        lease_holder(&s),
        watchers(&s)
    );
}
