//! Two of kube-apiserver's default admission plugins for pods: `DefaultTolerationSeconds`
//! (a pod tolerates its node being not-ready or unreachable for 300 s before it is
//! evicted, unless it says otherwise) and `Priority` (a pod's priority is its
//! PriorityClass's: 0 with none, as no class is the global default here, and the two
//! built-in system classes; a class that does not exist, or a priority the pod sets
//! itself, is refused in the plugin's words).

use serde_json::{Value, json};

/// How long a pod tolerates a NoExecute not-ready or unreachable taint by default.
const DEFAULT_TOLERATION_SECONDS: u64 = 300;

/// The PriorityClasses every cluster has (`scheduling.SystemPriorityClasses`).
const SYSTEM_PRIORITY_CLASSES: [(&str, i64); 2] = [
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];

/// `DefaultTolerationSeconds`: the not-ready and unreachable NoExecute tolerations a pod
/// lacks (one of no key, or of no effect, tolerates them already).
pub fn default_toleration_seconds(pod: &mut Value) {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    let Some(tolerations) = tolerations.as_array_mut() else {
        return;
    };
    let tolerates = |key: &str| {
        tolerations.iter().any(|t| {
            let text = |f: &str| t.get(f).and_then(Value::as_str).unwrap_or_default();
            (text("key") == key || text("key").is_empty())
                && (text("effect") == "NoExecute" || text("effect").is_empty())
        })
    };
    let missing: Vec<&str> = [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ]
    .into_iter()
    .filter(|key| !tolerates(key))
    .collect();
    for key in missing {
        tolerations.push(
            json!({"key": key, "operator": "Exists", "effect": "NoExecute",
                                "tolerationSeconds": DEFAULT_TOLERATION_SECONDS}),
        );
    }
}

/// `Priority` on a new pod: its priority and preemption policy from its PriorityClass, or
/// the refusal (a 403) in the plugin's words.
pub fn priority(pod: &mut Value) -> Result<(), String> {
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let class = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let value = match class {
        "" => 0,
        name => SYSTEM_PRIORITY_CLASSES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("no PriorityClass with name {name} was found"))?,
    };
    if let Some(sent) = spec.get("priority").and_then(Value::as_i64)
        && sent != value
    {
        return Err(format!(
            "the integer value of priority ({sent}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"
        ));
    }
    let policy = "PreemptLowerPriority";
    if let Some(sent) = spec.get("preemptionPolicy").and_then(Value::as_str)
        && sent != policy
    {
        return Err(format!(
            "the string value of PreemptionPolicy ({sent}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"
        ));
    }
    spec.insert("priority".into(), json!(value));
    spec.insert("preemptionPolicy".into(), json!(policy));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toleration(key: &str) -> Value {
        json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    }

    #[test]
    fn a_pod_tolerates_a_down_node_for_five_minutes_unless_it_says_otherwise() {
        let (not_ready, unreachable) = (
            "node.kubernetes.io/not-ready",
            "node.kubernetes.io/unreachable",
        );
        let everything = json!({"operator": "Exists"});
        let own = json!({"key": not_ready, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10});
        // (the pod's tolerations, after)
        let cases = [
            (
                None,
                json!([toleration(not_ready), toleration(unreachable)]),
            ),
            (Some(json!([everything])), json!([everything])),
            (Some(json!([own])), json!([own, toleration(unreachable)])),
        ];
        for (sent, want) in cases {
            let mut pod = json!({"spec": {"containers": []}});
            if let Some(t) = &sent {
                pod["spec"]["tolerations"] = t.clone();
            }
            default_toleration_seconds(&mut pod);
            assert_eq!(pod["spec"]["tolerations"], want, "{sent:?}");
        }
    }

    #[test]
    fn a_pods_priority_is_its_class() {
        // (the spec sent, the priority after, or the refusal)
        let cases = [
            (json!({}), Ok(0)),
            (
                json!({"priorityClassName": "system-node-critical"}),
                Ok(2_000_001_000),
            ),
            (json!({"priority": 0}), Ok(0)),
            (
                json!({"priorityClassName": "gold"}),
                Err("no PriorityClass with name gold was found"),
            ),
            (
                json!({"priority": 7}),
                Err(
                    "the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name",
                ),
            ),
            (
                json!({"preemptionPolicy": "Never"}),
                Err(
                    "the string value of PreemptionPolicy (Never) must not be provided in pod spec; priority admission controller computed PreemptLowerPriority from the given PriorityClass name",
                ),
            ),
        ];
        for (spec, want) in cases {
            let mut pod = json!({"spec": spec});
            let got = priority(&mut pod).map(|()| pod["spec"]["priority"].as_i64().unwrap());
            assert_eq!(got, want.map_err(str::to_owned), "{spec}");
        }
    }
}
