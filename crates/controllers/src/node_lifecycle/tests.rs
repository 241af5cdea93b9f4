use serde_json::{Value, json};

use super::policy::*;

const NOW: &str = "2026-12-06T10:00:00Z";

fn node(conditions: Value) -> Value {
    json!({"metadata": {"name": "w1", "creationTimestamp": "2026-12-06T09:00:00Z"},
           "status": {"conditions": conditions}})
}

#[test]
fn a_silent_node_has_its_conditions_set_unknown() {
    let ready = json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
        "message": "posting", "lastHeartbeatTime": "2026-12-06T09:59:00Z",
        "lastTransitionTime": "2026-12-06T09:00:00Z"});
    let got = stale_conditions(&node(json!([ready])), NOW).expect("changed");
    assert_eq!(
        got[0],
        json!({"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
            "message": "Kubelet stopped posting node status.",
            "lastHeartbeatTime": "2026-12-06T09:59:00Z", "lastTransitionTime": NOW})
    );
    let types: Vec<&str> = got.iter().filter_map(|c| c["type"].as_str()).collect();
    assert_eq!(
        types,
        ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]
    );
    assert_eq!(
        got[1],
        json!({"type": "MemoryPressure", "status": "Unknown", "reason": "NodeStatusNeverUpdated",
            "message": "Kubelet never posted node status.",
            "lastHeartbeatTime": "2026-12-06T09:00:00Z", "lastTransitionTime": NOW})
    );
    // Once Unknown, nothing more to write; NetworkUnavailable is not the controller's.
    let again = node(Value::Array(got));
    assert_eq!(stale_conditions(&again, "2026-12-06T10:05:00Z"), None);
    let network = json!({"type": "NetworkUnavailable", "status": "False"});
    let got = stale_conditions(&node(json!([network])), NOW).expect("changed");
    assert_eq!(got[0], network);
}

/// A case: its name, the taints, the Ready status, the taints wanted (`None`: unchanged).
type Case = (
    &'static str,
    Vec<Value>,
    Option<&'static str>,
    Option<Vec<Value>>,
);

#[test]
fn taints_follow_the_ready_condition() {
    let other = json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"});
    let unreachable = [
        json!({"key": UNREACHABLE, "effect": "NoSchedule"}),
        json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": NOW}),
    ];
    let not_ready = [
        json!({"key": NOT_READY, "effect": "NoSchedule"}),
        json!({"key": NOT_READY, "effect": "NoExecute", "timeAdded": NOW}),
    ];
    let with = |extra: &[Value]| {
        let mut v = vec![other.clone()];
        v.extend_from_slice(extra);
        v
    };
    let cases: [Case; 7] = [
        (
            "unknown taints unreachable",
            with(&[]),
            Some("Unknown"),
            Some(with(&unreachable)),
        ),
        ("already tainted", with(&unreachable), Some("Unknown"), None),
        (
            "false taints not-ready instead",
            with(&unreachable),
            Some("False"),
            Some(with(&not_ready)),
        ),
        (
            "ready again loses both",
            with(&not_ready),
            Some("True"),
            Some(with(&[])),
        ),
        ("ready and clean", with(&[]), Some("True"), None),
        ("never posted: nothing yet", with(&[]), None, None),
        (
            "a NoExecute taint keeps when it was added",
            vec![
                json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-12-06T09:30:00Z"}),
            ],
            Some("Unknown"),
            Some(vec![
                json!({"key": UNREACHABLE, "effect": "NoExecute", "timeAdded": "2026-12-06T09:30:00Z"}),
                json!({"key": UNREACHABLE, "effect": "NoSchedule"}),
            ]),
        ),
    ];
    for (case, taints, ready, want) in cases {
        assert_eq!(taints_for(&taints, ready, NOW, true), want, "{case}");
    }
    // Every node down: NoSchedule only, and a NoExecute taint already there goes.
    assert_eq!(
        taints_for(&with(&unreachable), Some("Unknown"), NOW, false),
        Some(with(&unreachable[..1]))
    );
    assert_eq!(
        taints_for(&with(&[]), Some("Unknown"), NOW, false),
        Some(with(&unreachable[..1]))
    );
}

#[test]
fn a_node_event_as_client_go_records_it() {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_500_000);
    let node = json!({"metadata": {"name": "w1", "uid": "u-1"}});
    let e = node_event(&node, "NodeNotReady", at);
    assert_eq!(
        e["metadata"]["name"],
        format!("w1.{:x}", 1_796_500_000u128 * 1_000_000_000)
    );
    assert_eq!(e["metadata"]["namespace"], "default");
    assert_eq!(
        e["involvedObject"],
        json!({"apiVersion": "v1", "kind": "Node", "name": "w1", "uid": "u-1"})
    );
    assert_eq!(e["message"], "Node w1 status is now: NodeNotReady");
    assert_eq!(e["source"]["component"], "node-controller");
}
