//! The node lifecycle controller, as an operator sees it with kubectl: a node whose agent
//! is killed with `kill -9` goes `NotReady` (its conditions `Unknown`) and is tainted
//! `node.kubernetes.io/unreachable` once the grace period passes, with a `NodeNotReady`
//! event that `kubectl describe node` shows, and is `Ready` and untainted again when its
//! agent comes back.

mod common;

use std::time::Duration;

use common::node::{Agent, joined};
use common::{Server, eventually, ok};

/// `kubectl get node <name> -o jsonpath=<path>`.
fn field(s: &Server, name: &str, path: &str) -> String {
    let out = s.kubectl(
        "kubectl",
        &["get", "node", name, "-o", &format!("jsonpath={path}")],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const READY: &str = "{.status.conditions[?(@.type==\"Ready\")].status}";
const TAINTS: &str = "{range .spec.taints[*]}{.key}:{.effect} {end}";

#[test]
fn a_killed_node_goes_unknown_and_unreachable_then_recovers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Server::start_with(&[
        "--node-monitor-grace-period",
        "4s",
        "--node-monitor-period",
        "1s",
    ]);
    let dir = tmp.path().join("w1");
    joined(&s, &dir, "w1");
    let mut agent = Agent::start(&[], &dir);
    assert!(
        agent.logs("registered the node", Duration::from_secs(30)),
        "registered"
    );
    assert!(eventually(Duration::from_secs(10), || field(
        &s, "w1", READY
    ) == "True"));
    assert_eq!(field(&s, "w1", TAINTS), "");

    // kill -9: no chance to say goodbye; the Lease simply stops.
    agent.kill();
    assert!(
        eventually(Duration::from_secs(30), || field(&s, "w1", READY)
            == "Unknown"),
        "the node never went Unknown: {}",
        field(&s, "w1", "{.status.conditions}")
    );
    let reason = field(
        &s,
        "w1",
        "{.status.conditions[?(@.type==\"Ready\")].reason}",
    );
    assert_eq!(reason, "NodeStatusUnknown");
    assert!(
        eventually(Duration::from_secs(10), || field(&s, "w1", TAINTS)
            == "node.kubernetes.io/unreachable:NoSchedule node.kubernetes.io/unreachable:NoExecute"),
        "taints: {}",
        field(&s, "w1", TAINTS)
    );
    let table = ok(
        s.kubectl("kubectl", &["get", "node", "w1", "--no-headers"]),
        "get node",
    );
    assert!(table.contains("NotReady"), "{table}");
    // ...and says so in an event, which describe shows.
    let events = ok(
        s.kubectl(
            "kubectl",
            &[
                "get",
                "events",
                "--field-selector",
                "involvedObject.name=w1,reason=NodeNotReady",
            ],
        ),
        "get events",
    );
    assert!(
        events.contains("Node w1 status is now: NodeNotReady"),
        "{events}"
    );
    let described = ok(
        s.kubectl("kubectl", &["describe", "node", "w1"]),
        "describe",
    );
    assert!(described.contains("NodeNotReady"), "{described}");
    let metrics = ok(
        s.kubectl("kubectl", &["get", "--raw", "/metrics"]),
        "metrics",
    );
    assert!(
        metrics.contains("kubeboot_node_lifecycle_unknown_total 1"),
        "{metrics}"
    );

    // The agent comes back: Ready again, and the taints go.
    let _back = Agent::start(&[], &dir);
    assert!(
        eventually(Duration::from_secs(30), || field(&s, "w1", READY) == "True"
            && field(&s, "w1", TAINTS).is_empty()),
        "ready {} taints {}",
        field(&s, "w1", READY),
        field(&s, "w1", TAINTS)
    );
}
