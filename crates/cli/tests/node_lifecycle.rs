//! The node lifecycle controller, as an operator sees it with kubectl: a node whose agent
//! is killed with `kill -9` goes `NotReady` (its conditions `Unknown`) and is tainted
//! `node.kubernetes.io/unreachable` (`NoSchedule`, `NoExecute`) once the grace period
//! passes (only `NoSchedule` once every node is down, as kube's full disruption), with a
//! `NodeNotReady` event that `kubectl describe node` shows, and is `Ready` and untainted
//! again when its agent comes back.

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

const UNREACHABLE_BOTH: &str =
    "node.kubernetes.io/unreachable:NoSchedule node.kubernetes.io/unreachable:NoExecute";
const UNREACHABLE_NO_SCHEDULE: &str = "node.kubernetes.io/unreachable:NoSchedule";

/// A joined node with its agent running and Ready.
fn ready_node(s: &Server, dir: &std::path::Path, name: &str) -> Agent {
    joined(s, dir, name);
    let agent = Agent::start(&[], dir);
    assert!(
        agent.logs("registered the node", Duration::from_secs(30)),
        "{name} registered"
    );
    assert!(eventually(Duration::from_secs(10), || field(
        s, name, READY
    ) == "True"));
    assert_eq!(field(s, name, TAINTS), "");
    agent
}

fn tainted(s: &Server, name: &str, want: &str) -> bool {
    eventually(Duration::from_secs(45), || {
        field(s, name, TAINTS).trim() == want
    })
}

#[test]
fn a_killed_node_goes_unknown_and_unreachable_then_recovers() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Longer than the agent's 10 s heartbeat, as the grace period must be.
    let s = Server::start_with(&[
        "--node-monitor-grace-period",
        "13s",
        "--node-monitor-period",
        "1s",
    ]);
    let (d1, d2) = (tmp.path().join("w1"), tmp.path().join("w2"));
    let mut w1 = ready_node(&s, &d1, "w1");
    let mut w2 = ready_node(&s, &d2, "w2");

    // kill -9: no chance to say goodbye; the Lease simply stops.
    w1.kill();
    assert!(
        eventually(Duration::from_secs(45), || field(&s, "w1", READY)
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
        tainted(&s, "w1", UNREACHABLE_BOTH),
        "w1: {}",
        field(&s, "w1", TAINTS)
    );
    assert_eq!(field(&s, "w2", TAINTS), "", "w2 is still up");
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

    // Every node down: more likely the network than the nodes, so no NoExecute anywhere.
    w2.kill();
    assert!(
        tainted(&s, "w2", UNREACHABLE_NO_SCHEDULE),
        "w2: {}",
        field(&s, "w2", TAINTS)
    );
    assert!(
        tainted(&s, "w1", UNREACHABLE_NO_SCHEDULE),
        "w1: {}",
        field(&s, "w1", TAINTS)
    );
    let metrics = ok(
        s.kubectl("kubectl", &["get", "--raw", "/metrics"]),
        "metrics",
    );
    assert!(
        metrics.contains("kubeboot_node_lifecycle_unknown_total 2"),
        "{metrics}"
    );

    // The agents come back: Ready again, and the taints go.
    let _back = (Agent::start(&[], &d1), Agent::start(&[], &d2));
    for name in ["w1", "w2"] {
        assert!(
            eventually(Duration::from_secs(30), || field(&s, name, READY) == "True"
                && field(&s, name, TAINTS).is_empty()),
            "{name}: ready {} taints {}",
            field(&s, name, READY),
            field(&s, name, TAINTS)
        );
    }
}
