//! The node agent stops promptly on SIGTERM in every phase, as a kubelet does when systemd
//! stops it: while it bootstraps (waiting for its CSR), while it cannot register, and while
//! it rotates its certificate — marking a registered node NotReady and leaving its
//! certificate store whole.
#![allow(
    clippy::disallowed_methods,
    reason = "an integration test waits in real time on a real process"
)]

mod common;

use std::time::Duration;

use common::node::{Agent, joined, manual_token};
use common::{Server, eventually, ok};

/// The CONDITION column of `kubectl get csr`, a line per CSR (`Pending`, `Approved,Issued`…).
fn csr_conditions(s: &Server) -> Vec<String> {
    let out = s.kubectl("kubectl", &["get", "csr", "--no-headers"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect()
}

/// The review's D9: an agent whose API server is gone keeps retrying its registration.
#[test]
fn the_node_agent_stops_on_sigterm_while_it_cannot_register() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = Server::start();
    let dir = tmp.path().join("w");
    joined(&s, &dir, "w");
    s.kill();
    let mut agent = Agent::start(&[], &dir);
    assert!(
        agent.logs(
            "registering the node failed; retrying",
            Duration::from_secs(30)
        ),
        "the agent retries its registration"
    );
    assert!(
        agent.terminate(),
        "the agent exits on SIGTERM while it cannot register"
    );
}

#[test]
fn the_node_agent_stops_on_sigterm_while_it_waits_for_its_first_certificate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Server::start();
    let dir = tmp.path().join("b");
    std::fs::create_dir_all(&dir).expect("dir");
    // A bootstrap kubeconfig with a token whose CSRs wait for a person.
    let token = manual_token(&s);
    let ca = s.ca();
    let bootstrap = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority: {}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: {token}\n",
        s.url,
        ca.display()
    );
    std::fs::write(dir.join("bootstrap-kubelet.conf"), bootstrap).expect("bootstrap kubeconfig");
    let mut agent = Agent::start(&["--node-name", "b"], &dir);
    assert!(
        eventually(Duration::from_secs(30), || csr_conditions(&s)
            == ["Pending"]),
        "the agent asked for its certificate"
    );
    assert!(
        agent.terminate(),
        "the agent exits on SIGTERM while it waits for its CSR"
    );
    assert!(
        !dir.join("kubelet.conf").exists(),
        "no kubeconfig without a certificate"
    );
    assert!(!dir.join("pki/kubelet-client-current.pem").exists());
}

#[test]
fn the_node_agent_stops_on_sigterm_while_it_rotates_and_marks_the_node_not_ready() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Certificates of 30 s, renewed at 21–27 s; renewals wait for a person.
    let s = Server::start_with(&["--cluster-signing-duration", "30s"]);
    ok(
        s.kubectl(
            "kubectl",
            &[
                "delete",
                "clusterrolebinding",
                "kubeadm:node-autoapprove-certificate-rotation",
            ],
        ),
        "stop approving renewals",
    );
    let dir = tmp.path().join("r");
    joined(&s, &dir, "r");
    let current = dir.join("pki/kubelet-client-current.pem");
    let first = std::fs::read_link(&current).expect("current link");
    let mut agent = Agent::start(&["--rotate-certificates"], &dir);
    assert!(
        agent.logs("registered the node", Duration::from_secs(30)),
        "registered"
    );
    assert!(
        eventually(Duration::from_secs(40), || csr_conditions(&s)
            .contains(&"Pending".to_owned())),
        "the agent asked to renew its certificate"
    );
    assert!(
        agent.terminate(),
        "the agent exits on SIGTERM while it waits for its renewal"
    );
    let ready = ok(
        s.kubectl(
            "kubectl",
            &[
                "get",
                "node",
                "r",
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ],
        ),
        "node",
    );
    assert_eq!(ready.trim(), "False", "the node is marked NotReady");
    assert_eq!(std::fs::read_link(&current).expect("current link"), first);
    assert!(first.exists(), "the certificate store is whole");
}
