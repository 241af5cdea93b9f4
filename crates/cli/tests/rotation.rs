//! A node agent rotating its client certificate goes on speaking to the control plane
//! under the new one: its kept-alive connections, made with the old certificate, are
//! closed on a rotation (as the kubelet closes its connections), so its Lease and Node
//! status stay current after the first certificate expires.
#![allow(
    clippy::disallowed_methods,
    reason = "an integration test waits in real time on a real process"
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::node::{Agent, joined};
use common::{Server, eventually};

/// Whether the certificate at `pem` has expired (`openssl x509 -checkend 0`).
fn expired(pem: &Path) -> bool {
    assert!(pem.exists(), "{} is kept", pem.display());
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-checkend", "0", "-in"])
        .arg(pem)
        .output()
        .expect("openssl");
    !out.status.success()
}

/// The node's Lease renewal time.
fn renewed(s: &Server, node: &str) -> String {
    let args = [
        "get",
        "lease",
        node,
        "-n",
        "kube-node-lease",
        "-o",
        "jsonpath={.spec.renewTime}",
    ];
    String::from_utf8_lossy(&s.kubectl("kubectl", &args).stdout).into_owned()
}

/// Seen before: every Lease renewal and Node status update after the first certificate's
/// `notAfter` was a 401, for good, until the agent was restarted.
#[test]
fn a_rotated_node_keeps_its_lease_after_its_first_certificate_expires() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Certificates of 30 s, renewed at 21–27 s and approved by kubeadm's policy.
    let s = Server::start_with(&["--cluster-signing-duration", "30s"]);
    let dir = tmp.path().join("r");
    joined(&s, &dir, "r");
    let pki = dir.join("pki");
    let first = pki.join(std::fs::read_link(pki.join("kubelet-client-current.pem")).expect("link"));
    let mut agent = Agent::start(&["--rotate-certificates"], &dir);
    assert!(
        agent.logs("registered the node", Duration::from_secs(30)),
        "registered"
    );
    assert!(
        eventually(Duration::from_secs(60), || expired(&first)),
        "the first certificate expires"
    );
    let after_expiry = renewed(&s, "r");
    assert!(
        eventually(Duration::from_secs(40), || {
            let now = renewed(&s, "r");
            !now.is_empty() && now != after_expiry
        }),
        "the Lease is renewed after the first certificate expired (last renewal {after_expiry})"
    );
    assert!(agent.terminate(), "the agent stops");
}
