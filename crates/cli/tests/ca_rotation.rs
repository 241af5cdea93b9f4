//! The cluster CA rotated on a live cluster with `kubeboot ca rotate`, as an operator runs
//! it: node agents (real `kubeboot node` processes) keep reaching the API server through
//! every phase, adopt the new bundle, renew their client and serving certificates under
//! the new CA as soon as the signers move, and the old CA ends in no bundle; a node joins
//! mid-rotation with either CA's pin; the server killed between phases starts again, and a
//! phase stopped by `kill -9` completes when run again; a phase the state does not allow
//! is refused with the reason.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::node::{Agent, join, join_args, joined};
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

/// The issuer's CN of the first certificate of `pem_file`.
fn issuer(pem_file: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-issuer", "-nameopt", "multiline", "-in"])
        .arg(pem_file)
        .output()
        .expect("openssl");
    stdout(&out)
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("commonName")
                .map(|v| v.trim_start_matches([' ', '=']).trim().to_owned())
        })
        .unwrap_or_default()
}

/// The CN of the first certificate of `pem_file`.
fn subject(pem_file: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "multiline", "-in"])
        .arg(pem_file)
        .output()
        .expect("openssl");
    stdout(&out)
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
    let mut args = join_args(&s);
    for (name, ca) in [("n3", &old_ca), ("n4", &new_ca)] {
        let i = args
            .iter()
            .position(|a| a == "--discovery-token-ca-cert-hash")
            .expect("pin flag");
        args[i + 1] = pin(ca);
        let dir = tmp.path().join(name);
        let mut these = args.clone();
        these.extend([
            "--node-name".into(),
            name.into(),
            "--dir".into(),
            dir.display().to_string(),
        ]);
        let out = join(&these, &[]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        nodes.push(agent(&dir, name));
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
    let old_pem = std::fs::read_to_string(&old_ca).expect("old");
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
    let status = ok(
        Command::new(bin())
            .args(["ca", "status", "--data-dir"])
            .arg(&s.dir)
            .output()
            .expect("status"),
        "status",
    );
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
    let status = ok(
        Command::new(bin())
            .args(["ca", "status", "--data-dir"])
            .arg(&s.dir)
            .output()
            .expect("status"),
        "status",
    );
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
