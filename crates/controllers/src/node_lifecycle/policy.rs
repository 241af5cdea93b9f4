//! nodelifecycle's rules, apart from its I/O: which conditions a silent node gets, which
//! taints a node's Ready status calls for, and the event of a status change.

use std::time::SystemTime;

use serde_json::{Value, json};

use crate::events::{EventType, Recorded, Regarding, event};

/// The taint of a node whose Ready condition is `Unknown`.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint of a node whose Ready condition is `False`.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The conditions marked `Unknown` when the node goes silent (not NetworkUnavailable,
/// which the network plugin owns).
const CONDITIONS: [&str; 4] = ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"];

/// The node's name.
pub fn node_name(node: &Value) -> &str {
    node.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The Event client-go's recorder writes for a node's status change: in `default` (a Node
/// has no namespace), named `<node>.<nanoseconds in hex>`, from `node-controller`.
pub fn node_event(node: &Value, status: &str, now: SystemTime) -> Value {
    let message = format!("Node {} status is now: {status}", node_name(node));
    let about = Regarding {
        api_version: "v1",
        kind: "Node",
        object: node,
    };
    let what = Recorded {
        ty: EventType::Normal,
        reason: status,
        message: &message,
        component: "node-controller",
    };
    event(&about, &what, now)
}

fn condition<'a>(node: &'a Value, ty: &str) -> Option<&'a Value> {
    node.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c["type"] == ty)
}

/// The Ready condition's `lastHeartbeatTime`.
pub fn heartbeat(node: &Value) -> Option<String> {
    condition(node, "Ready")
        .and_then(|c| c.get("lastHeartbeatTime"))
        .map(Value::to_string)
}

/// The Ready condition's status (`True`, `False`, `Unknown`), if the node has one.
pub fn ready(node: &Value) -> Option<&str> {
    condition(node, "Ready").and_then(|c| c["status"].as_str())
}

/// The conditions of a node gone silent, as kube-controller-manager sets them: each of
/// Ready, MemoryPressure, DiskPressure and PIDPressure `Unknown` (added, saying the kubelet
/// never posted it, when missing); `None` when nothing changes.
pub fn stale_conditions(node: &Value, now: &str) -> Option<Vec<Value>> {
    let mut conditions: Vec<Value> = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut changed = false;
    for ty in CONDITIONS {
        match conditions.iter_mut().find(|c| c["type"] == ty) {
            None => {
                let created = node.pointer("/metadata/creationTimestamp").cloned();
                conditions.push(json!({
                    "type": ty, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                    "message": "Kubelet never posted node status.",
                    "lastHeartbeatTime": created.unwrap_or(Value::Null), "lastTransitionTime": now,
                }));
                changed = true;
            }
            Some(c) if c["status"] != "Unknown" => {
                c["status"] = json!("Unknown");
                c["reason"] = json!("NodeStatusUnknown");
                c["message"] = json!("Kubelet stopped posting node status.");
                c["lastTransitionTime"] = json!(now);
                changed = true;
            }
            Some(_) => {}
        }
    }
    changed.then_some(conditions)
}

/// The taints a node with Ready status `ready` should carry: `unreachable` when Unknown,
/// `not-ready` when False (each `NoSchedule` and `NoExecute`, the latter stamped with when
/// it was added), neither when True; the node's other taints are kept as they are. `None`
/// when nothing changes.
///
/// With `evicting` false — every node is down, so the fault is more likely the control
/// plane's or the network's than the nodes' (kube-controller-manager's full disruption) —
/// no `NoExecute` taint is kept or added.
pub fn taints_for(
    taints: &[Value],
    ready: Option<&str>,
    now: &str,
    evicting: bool,
) -> Option<Vec<Value>> {
    let want = match ready {
        Some("Unknown") => Some(UNREACHABLE),
        Some("False") => Some(NOT_READY),
        Some(_) => None,
        // Never posted: nothing to say until the grace period makes it Unknown.
        None => return None,
    };
    let ours = |t: &Value| t["key"] == UNREACHABLE || t["key"] == NOT_READY;
    let effects: &[&str] = if evicting {
        &["NoSchedule", "NoExecute"]
    } else {
        &["NoSchedule"]
    };
    let mut out: Vec<Value> = taints
        .iter()
        .filter(|t| {
            !ours(t)
                || (want.is_some_and(|w| t["key"] == w)
                    && effects.iter().any(|e| t["effect"] == *e))
        })
        .cloned()
        .collect();
    if let Some(key) = want {
        for &effect in effects {
            if !out.iter().any(|t| t["key"] == key && t["effect"] == effect) {
                out.push(match effect {
                    "NoExecute" => json!({"key": key, "effect": effect, "timeAdded": now}),
                    _ => json!({"key": key, "effect": effect}),
                });
            }
        }
    }
    (out.as_slice() != taints).then_some(out)
}
