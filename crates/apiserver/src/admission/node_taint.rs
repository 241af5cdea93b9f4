//! `TaintNodesByCondition` (kube-apiserver's `nodetaint` admission plugin, on by default): a
//! new Node is tainted `node.kubernetes.io/not-ready:NoSchedule`, so nothing is scheduled
//! on it before it says it is Ready; the node lifecycle controller takes the taint off once
//! the node's Ready condition is True.

use serde_json::{Value, json};

/// The taint every new Node gets.
const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// Adds the not-ready `NoSchedule` taint to a Node being created, unless it has one of that
/// key and effect (`MatchTaint`).
pub fn add_not_ready_taint(node: &mut Value) {
    let Some(obj) = node.as_object_mut() else {
        return;
    };
    let spec = obj.entry("spec").or_insert_with(|| json!({}));
    let Some(spec) = spec.as_object_mut() else {
        return;
    };
    let taints = spec.entry("taints").or_insert_with(|| json!([]));
    let Some(taints) = taints.as_array_mut() else {
        return;
    };
    let matches = |t: &Value| t["key"] == NOT_READY && t["effect"] == "NoSchedule";
    if !taints.iter().any(matches) {
        taints.push(json!({"key": NOT_READY, "effect": "NoSchedule"}));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_node_is_not_ready_until_it_says_so() {
        let taint = json!({"key": NOT_READY, "effect": "NoSchedule"});
        let own = json!({"key": "dedicated", "value": "gpu", "effect": "NoSchedule"});
        let not_ready_execute = json!({"key": NOT_READY, "effect": "NoExecute"});
        // (the node as sent, its taints after)
        let cases = [
            (json!({"metadata": {"name": "n"}}), json!([taint])),
            (json!({"spec": {}}), json!([taint])),
            (json!({"spec": {"taints": [own]}}), json!([own, taint])),
            (json!({"spec": {"taints": [taint]}}), json!([taint])),
            (
                json!({"spec": {"taints": [not_ready_execute]}}),
                json!([not_ready_execute, taint]),
            ),
        ];
        for (mut node, want) in cases {
            let sent = node.clone();
            add_not_ready_taint(&mut node);
            assert_eq!(node["spec"]["taints"], want, "{sent}");
        }
    }
}
