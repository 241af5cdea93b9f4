//! The cluster CA rotated on a live cluster with `kubeboot ca rotate`, as an operator runs
//! it: node agents (real `kubeboot node` processes) keep reaching the API server through
//! every phase, adopt the new bundle, renew their client and serving certificates under
//! the new CA as soon as the signers move, and the old CA ends in no bundle; a node joins
//! mid-rotation with either CA's pin; the server killed between phases starts again, and a
//! phase stopped by `kill -9` completes when run again; a phase the state does not allow
//! is refused with the reason.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::node::{Agent, join_args, joined, joined_with};
use common::{Server, bin, eventually, ok, stderr, stdout};

fn rotate(s: &Server, phase: &str) -> std::process::Output {
    Command::new(bin())
        .args([
            "ca",
            "rotate",
            "--phase",
            phase,
            "--timeout",
            "90s",
            "--data-dir",
        ])
        .arg(&s.dir)
        .output()
        .expect("ca rotate")
}

/// What `kubeboot ca status` prints for the server's data dir.
fn ca_status(s: &Server) -> String {
    ok(
        Command::new(bin())
            .args(["ca", "status", "--data-dir"])
            .arg(&s.dir)
            .output()
            .expect("ca status"),
        "ca status",
    )
}

/// The issuer's CN of the first certificate of `pem_file`.
fn issuer(pem_file: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-issuer", "-nameopt", "multiline", "-in"])
        .arg(pem_file)
        .output()
        .expect("openssl");
    common_name(&stdout(&out))
}

/// The CN of the first certificate of `pem_file`.
fn subject(pem_file: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "multiline", "-in"])
        .arg(pem_file)
        .output()
        .expect("openssl");
    common_name(&stdout(&out))
}

/// The `commonName` openssl prints with `-nameopt multiline`.
fn common_name(openssl_output: &str) -> String {
    openssl_output
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("commonName")
                .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
        })
        .unwrap_or_default()
}

/// kubeadm's CA pin of the first certificate of `pem_file`.
fn pin(pem_file: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -pubkey -noout -in {} | openssl pkey -pubin -outform der | openssl dgst -sha256 -r",
            pem_file.display()
        ))
        .output()
        .expect("openssl");
    format!("sha256:{}", &stdout(&out)[..64])
}

fn node(s: &Server, root: &Path, name: &str) -> (Agent, PathBuf) {
    let dir = root.join(name);
    joined(s, &dir, name);
    agent(&dir, name)
}

/// The agent of the node joined into `dir`, registered.
fn agent(dir: &Path, name: &str) -> (Agent, PathBuf) {
    let agent = Agent::start(
        &[
            "--node-name",
            name,
            "--rotate-certificates",
            "--rotate-server-certificates",
            "--address",
            "127.0.0.1",
            "--port",
            "0",
        ],
        dir,
    );
    assert!(
        agent.logs("registered the node", Duration::from_secs(30)),
        "{name}"
    );
    (agent, dir.to_owned())
}

/// Waits until the ClusterTrustBundles `s` serves no longer hold the CA of `old_ca`.
fn assert_unpublished(s: &Server, old_ca: &Path) {
    let old_pem = std::fs::read_to_string(old_ca).expect("old");
    let bundles = || {
        stdout(&s.kubectl(
            "kubectl",
            &[
                "get",
                "clustertrustbundles",
                "-o",
                "jsonpath={.items[*].spec.trustBundle}",
            ],
        ))
    };
    assert!(
        eventually(Duration::from_secs(30), || {
            let b = bundles();
            !b.is_empty() && !b.contains(old_pem.trim())
        }),
        "the old CA is still published: {}",
        bundles()
    );
}

/// When node `name`'s Lease was last renewed.
fn renewed(s: &Server, name: &str) -> String {
    stdout(&s.kubectl(
        "kubectl",
        &[
            "get",
            "lease",
            "-n",
            "kube-node-lease",
            name,
            "-o",
            "jsonpath={.spec.renewTime}",
        ],
    ))
}

#[test]
fn a_rotation_moves_every_node_to_the_new_ca_without_losing_the_control_plane() {
    let s = Server::start_with(&["--approve-kubelet-serving"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    let old_ca = tmp.path().join("old-ca.crt");
    std::fs::copy(s.ca(), &old_ca).expect("copy");
    let old = subject(&old_ca);
    let mut nodes: Vec<(Agent, PathBuf)> = ["n1", "n2"]
        .iter()
        .map(|n| node(&s, tmp.path(), n))
        .collect();
    for (_, dir) in &nodes {
        let serving = dir.join("pki/kubelet-server-current.pem");
        assert!(
            eventually(Duration::from_secs(30), || serving.exists()),
            "serving certificate"
        );
    }

    // A switch or finish before prepare is refused with the reason.
    let early = rotate(&s, "switch");
    assert!(
        !early.status.success() && stderr(&early).contains("run --phase prepare first"),
        "{}",
        stderr(&early)
    );

    ok(rotate(&s, "prepare"), "prepare");
    let new_ca = s.dir.join("pki/ca-next.crt");
    let new = subject(&new_ca);
    assert_ne!(new, old);
    // A node joins mid-rotation with either CA's pin.
    for (name, ca) in [("n3", &old_ca), ("n4", &new_ca)] {
        nodes.push(node_through(&s, s.addr(), &pin(ca), tmp.path(), name));
    }
    // The nodes adopt the bundle of both CAs before anything is signed by the new one.
    for (_, dir) in &nodes {
        let kubeconfig = dir.join("kubelet.conf");
        assert!(
            eventually(Duration::from_secs(30), || std::fs::read_to_string(
                &kubeconfig
            )
            .is_ok_and(
                |k| common::kubeconfig_data(&k, "certificate-authority-data")
                    .windows(27)
                    .filter(|w| w == b"-----BEGIN CERTIFICATE-----")
                    .count()
                    == 2
            )),
            "{} trusts both CAs",
            kubeconfig.display()
        );
    }

    ok(rotate(&s, "switch"), "switch");
    // Every node renews its client and serving certificates under the new CA at once.
    for (_, dir) in &nodes {
        for cert in ["kubelet-client-current.pem", "kubelet-server-current.pem"] {
            let path = dir.join("pki").join(cert);
            assert!(
                eventually(Duration::from_secs(60), || issuer(&path) == new),
                "{}: issued by {}",
                path.display(),
                issuer(&path)
            );
        }
    }

    let status = ca_status(&s);
    assert!(
        status.contains("phase: switched")
            && status.contains(
                "nodes (by their newest client certificate): 4 on the signing CA, 0 on another"
            ),
        "{status}"
    );
    let finished = rotate(&s, "finish");
    assert!(
        finished.status.success(),
        "{}{}",
        stdout(&finished),
        stderr(&finished)
    );
    assert_eq!(subject(&s.ca()), new);
    assert_eq!(
        std::fs::read_to_string(s.ca())
            .expect("ca")
            .matches("BEGIN")
            .count(),
        1
    );
    // The old CA is in no published bundle; the nodes keep their Leases and kubectl works.
    assert_unpublished(&s, &old_ca);
    for name in ["n1", "n2", "n3", "n4"] {
        let before = renewed(&s, name);
        assert!(
            eventually(Duration::from_secs(30), || renewed(&s, name) != before),
            "{name} renews its Lease after the old CA is gone"
        );
        let ready = stdout(&s.kubectl(
            "kubectl",
            &[
                "get",
                "node",
                name,
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ],
        ));
        assert_eq!(ready, "True", "{name}");
    }
    drop(nodes);
}

#[test]
fn a_rotation_survives_kill_9_of_the_server_and_of_itself() {
    let mut first = Server::start();
    ok(rotate(&first, "prepare"), "prepare");
    // The server killed between phases starts again on the prepared data dir.
    first.kill();
    let s = Server::start_in(&first.dir);
    // kill -9 mid-switch: the new CA's key is in place, the bundle and the rest are not.
    std::fs::copy(s.dir.join("pki/ca-next.key"), s.dir.join("pki/ca.key")).expect("copy");
    let status = ca_status(&s);
    assert!(status.contains("phase: prepared"), "{status}");
    let again = rotate(&s, "prepare");
    assert!(
        stderr(&again).contains("run --phase switch to complete it"),
        "{}",
        stderr(&again)
    );
    ok(rotate(&s, "all"), "the rest of the rotation");
    ok(
        s.kubectl("kubectl", &["get", "namespaces"]),
        "kubectl after the rotation",
    );
    let status = ca_status(&s);
    assert!(
        status.contains("phase: idle") && !status.contains("also trusted"),
        "{status}"
    );
    // And after the rotation, as after any other.
    drop(s);
    let s = Server::start_in(&first.dir);
    ok(
        s.kubectl("kubectl", &["get", "namespaces"]),
        "kubectl after a restart",
    );
}

/// The issuer's CN of the certificate the server at `addr` (host:port) presents.
fn served_issuer(addr: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} </dev/null 2>/dev/null | openssl x509 -noout -issuer -nameopt multiline"
        ))
        .output()
        .expect("openssl s_client");
    common_name(&stdout(&out))
}

/// Joins `name` through the server at `addr` with the CA pin `pin` and starts its agent.
fn node_through(cp1: &Server, addr: &str, pin: &str, root: &Path, name: &str) -> (Agent, PathBuf) {
    let mut args = join_args(cp1);
    args[1] = addr.to_owned();
    let i = args
        .iter()
        .position(|a| a == "--discovery-token-ca-cert-hash")
        .expect("pin flag");
    args[i + 1] = pin.to_owned();
    let dir = root.join(name);
    joined_with(args, &dir, name);
    agent(&dir, name)
}

/// Every Lease renewal time seen, per node, and how many `kubectl` calls failed, polled
/// through each server in turn until `stop` (at most 10 minutes).
fn watch_leases(
    servers: [&Server; 2],
    stop: &std::sync::atomic::AtomicBool,
) -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    use std::sync::atomic::Ordering;
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut failures = Vec::new();
    for i in 0..600 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let out = servers[i % 2].kubectl(
            "kubectl",
            &[
                "get",
                "leases",
                "-n",
                "kube-node-lease",
                "--request-timeout=10s",
                "-o",
                "jsonpath={range .items[*]}{.metadata.name} {.spec.renewTime}{\"\\n\"}{end}",
            ],
        );
        if !out.status.success() {
            failures.push(stderr(&out));
        }
        for line in stdout(&out).lines() {
            if let Some((name, at)) = line.split_once(' ') {
                seen.entry(name.to_owned())
                    .or_default()
                    .insert(at.to_owned());
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    (seen, failures)
}

/// How many CAs the kubeconfig of cluster-info holds.
fn published_cas(s: &Server) -> usize {
    let kubeconfig = s.cluster_info("jsonpath={.data.kubeconfig}");
    let ca = common::kubeconfig_data(&kubeconfig, "certificate-authority-data");
    String::from_utf8_lossy(&ca)
        .matches("BEGIN CERTIFICATE")
        .count()
}

/// The longest time between two renewals of one Lease.
fn longest_gap(renewals: &BTreeSet<String>) -> Duration {
    let times: Vec<_> = renewals
        .iter()
        .filter_map(|t| kubeboot_api::clock::parse_rfc3339(t))
        .collect();
    times
        .windows(2)
        .filter_map(|w| w[1].duration_since(w[0]).ok())
        .max()
        .unwrap_or_default()
}

/// The whole rotation (`--phase all`) while 20 node agents renew their Leases every 10 s
/// and kubectl polls through each server: no renewal missed, no request refused, every
/// node ends on the new CA, each server serves a certificate of it, the old CA is in no
/// bundle, and nodes joining mid-rotation through either server with either pin succeed.
#[test]
fn a_rotation_keeps_20_nodes_and_kubectl_working() {
    let s = Server::start_with(&["--approve-kubelet-serving"]);
    let tmp = tempfile::tempdir().expect("tempdir");
    rotate_all_under_load([&s, &s], &[s.dir.as_path()], tmp.path());
}

/// The same on a control plane of two servers on a 3-member etcd, each with its own
/// data dir: both are rotated, and both serve under the new CA without a restart.
#[test]
fn a_rotation_of_two_servers_on_etcd_keeps_20_nodes_and_kubectl_working() {
    let cluster = kubeboot_store::etcd_cluster::EtcdCluster::start(3)
        .expect("etcd starts (scripts/test installs etcd-server)");
    let etcd = cluster.servers_flag();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (d1, d2) = (tmp.path().join("cp1"), tmp.path().join("cp2"));
    let serving = ["--approve-kubelet-serving"];
    let cp1 = common::control_plane(&d1, &etcd, None, &serving);
    let cp2 = common::control_plane(&d2, &etcd, Some(&d1), &serving);
    rotate_all_under_load([&cp1, &cp2], &[&d1, &d2], tmp.path());
}

/// `kubeboot ca rotate --phase all` on `dirs`, the data dirs of `servers` (the first one
/// printed the join command), with 20 nodes joined through them in turn.
fn rotate_all_under_load(servers: [&Server; 2], dirs: &[&Path], root: &Path) {
    use std::sync::atomic::{AtomicBool, Ordering};
    let [cp1, cp2] = servers;
    let old_ca = root.join("old-ca.crt");
    std::fs::copy(cp1.ca(), &old_ca).expect("copy");
    let (old, old_pin) = (subject(&old_ca), pin(&old_ca));
    let nodes = std::thread::scope(|scope| {
        let joins: Vec<_> = (0..20)
            .map(|i| {
                let (s, pin) = (servers[i % 2], &old_pin);
                scope.spawn(move || node_through(cp1, s.addr(), pin, root, &format!("n{i:02}")))
            })
            .collect();
        joins
            .into_iter()
            .map(|j| j.join().expect("node"))
            .collect::<Vec<_>>()
    });
    for (_, dir) in &nodes {
        let serving = dir.join("pki/kubelet-server-current.pem");
        assert!(
            eventually(Duration::from_secs(60), || serving.exists()),
            "{}",
            serving.display()
        );
    }

    let stop = AtomicBool::new(false);
    let (leases, late, out) = std::thread::scope(|scope| {
        let watcher = scope.spawn(|| watch_leases(servers, &stop));
        let mut rotate = Command::new(bin());
        rotate.args(["ca", "rotate", "--phase", "all", "--timeout", "120s"]);
        for d in dirs {
            rotate.arg("--data-dir").arg(d);
        }
        let rotation = rotate
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("ca rotate");
        // Mid-rotation, once cluster-info publishes both CAs: a node joins through each
        // server, one with each CA's pin. (A failure here still ends the rotation and the
        // watcher before the test fails.)
        let late = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert!(
                eventually(Duration::from_secs(60), || published_cas(cp1) == 2),
                "cluster-info publishes both CAs"
            );
            // The new CA: prepared, or (should the switch have come already) signing.
            let next = dirs[0].join("pki/ca-next.crt");
            let new_pin = pin(&if next.exists() {
                next
            } else {
                dirs[0].join("pki/ca.crt")
            });
            assert_ne!(new_pin, old_pin);
            vec![
                node_through(cp1, cp2.addr(), &old_pin, root, "late-old-pin"),
                node_through(cp1, cp1.addr(), &new_pin, root, "late-new-pin"),
            ]
        }));
        let out = common::wait_bounded(rotation, Duration::from_secs(400));
        stop.store(true, Ordering::Relaxed);
        (watcher.join().expect("lease watcher"), late, out)
    });
    let late = late.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(
        out.status.success(),
        "ca rotate --phase all: {}{}",
        stdout(&out),
        stderr(&out)
    );
    let (renewals, failures) = leases;

    let new = subject(&cp1.ca());
    assert_ne!(new, old);
    for (d, s) in dirs.iter().zip(servers) {
        let bundle = std::fs::read_to_string(d.join("pki/ca.crt")).expect("ca.crt");
        assert_eq!(bundle.matches("BEGIN").count(), 1, "{}", d.display());
        assert_eq!(subject(&d.join("pki/ca.crt")), new, "{}", d.display());
        assert_eq!(
            served_issuer(s.addr()),
            new,
            "{} serves under the new CA",
            s.addr()
        );
    }
    for (agent, dir) in nodes.iter().chain(&late) {
        for cert in ["kubelet-client-current.pem", "kubelet-server-current.pem"] {
            let path = dir.join("pki").join(cert);
            assert!(
                eventually(Duration::from_secs(60), || issuer(&path) == new),
                "{}: issued by {}",
                path.display(),
                issuer(&path)
            );
        }
        let warnings = agent.warnings();
        assert!(warnings.is_empty(), "{}: {warnings:#?}", dir.display());
    }
    assert!(failures.is_empty(), "kubectl failed: {failures:#?}");
    for (_, dir) in &nodes {
        let name = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let times = renewals.get(&name).expect("a Lease seen");
        assert!(times.len() >= 3, "{name} renewed its Lease: {times:?}");
        assert!(
            longest_gap(times) <= Duration::from_secs(25),
            "{name} missed a Lease renewal: {times:?}"
        );
    }
    assert_unpublished(cp2, &old_ca);
}
