//! NodeRestriction's rules for a node writing its own Node object: it may not set, change
//! or remove labels under `node-restriction.kubernetes.io/`, nor `kubernetes.io`/`k8s.io`
//! labels other than the kubelet's own (so no `node-role.kubernetes.io/…`), and it may not
//! change its taints after registering. These would let a node steer workloads meant for
//! others to itself. Messages are Kubernetes' own
//! (`plugin/pkg/admission/noderestriction/admission.go`).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Why a node's own write of its Node is refused (the text after `nodes "<n>" is forbidden: `).
pub fn node_write_denial(node: &str, new: &Value, old: Option<&Value>) -> Option<String> {
    // Kubernetes' order: taints, then labels.
    let taints = |v: &Value| v.pointer("/spec/taints").cloned().unwrap_or(Value::Null);
    let empty = |t: &Value| t.is_null() || t.as_array().is_some_and(Vec::is_empty);
    if let Some(old) = old {
        let (t_new, t_old) = (taints(new), taints(old));
        if t_new != t_old && !(empty(&t_new) && empty(&t_old)) {
            return Some(format!("node {node:?} is not allowed to modify taints"));
        }
    }
    let forbidden = forbidden_labels(&labels(new), &old.map(labels).unwrap_or_default());
    if forbidden.is_empty() {
        return None;
    }
    let list = forbidden.into_iter().collect::<Vec<_>>().join(", ");
    Some(match old {
        None => format!("node {node:?} is not allowed to set the following labels: {list}"),
        Some(_) => format!("is not allowed to modify labels: {list}"),
    })
}

/// The labels added, changed or removed between `old` and `new` that a node may not touch,
/// sorted.
pub fn forbidden_labels(
    new: &BTreeMap<String, String>,
    old: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let changed = new
        .iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, _)| k)
        .chain(old.keys().filter(|k| !new.contains_key(*k)));
    changed
        .filter(|key| {
            let prefix = label_prefix(key);
            in_domain(prefix, NODE_RESTRICTION)
                || ((in_domain(prefix, "kubernetes.io") || in_domain(prefix, "k8s.io"))
                    && !is_kubelet_label(key))
        })
        .cloned()
        .collect()
}

/// The labels a kubelet sets on its own Node (`kubeletapis.IsKubeletLabel`).
pub fn is_kubelet_label(key: &str) -> bool {
    KUBELET_LABELS.contains(&key)
        || KUBELET_LABEL_DOMAINS
            .iter()
            .any(|d| in_domain(label_prefix(key), d))
}

fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The prefix of `prefix/name`; empty for an unprefixed key.
fn label_prefix(key: &str) -> &str {
    key.split_once('/').map_or("", |(p, _)| p)
}

/// `prefix` is `domain` or a subdomain of it.
fn in_domain(prefix: &str, domain: &str) -> bool {
    prefix == domain
        || prefix
            .strip_suffix(domain)
            .is_some_and(|p| p.ends_with('.'))
}

const NODE_RESTRICTION: &str = "node-restriction.kubernetes.io";
const KUBELET_LABELS: [&str; 11] = [
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
];
const KUBELET_LABEL_DOMAINS: [&str; 2] = ["kubelet.kubernetes.io", "node.kubernetes.io"];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(labels: Value, taints: Value) -> Value {
        json!({"metadata": {"name": "w1", "labels": labels}, "spec": {"taints": taints}})
    }

    #[test]
    fn labels_a_node_may_and_may_not_touch() {
        for (case, key, forbidden) in [
            ("the kubelet's hostname", "kubernetes.io/hostname", false),
            ("the kubelet's zone", "topology.kubernetes.io/zone", false),
            ("a kubelet domain", "kubelet.kubernetes.io/anything", false),
            (
                "a kubelet subdomain",
                "x.node.kubernetes.io/anything",
                false,
            ),
            ("node.kubernetes.io", "node.kubernetes.io/exclude", false),
            ("unprefixed", "team", false),
            ("another domain", "example.com/role", false),
            (
                "node-restriction",
                "node-restriction.kubernetes.io/foo",
                true,
            ),
            (
                "node-restriction subdomain",
                "a.node-restriction.kubernetes.io/foo",
                true,
            ),
            ("node-role", "node-role.kubernetes.io/control-plane", true),
            ("kubernetes.io", "kubernetes.io/role", true),
            ("k8s.io", "k8s.io/anything", true),
            ("a k8s.io subdomain", "x.k8s.io/anything", true),
            ("not a subdomain", "notkubernetes.io/x", false),
        ] {
            let new = BTreeMap::from([(key.to_owned(), "v".to_owned())]);
            let got = forbidden_labels(&new, &BTreeMap::new());
            assert_eq!(!got.is_empty(), forbidden, "{case}: {key}");
            // Removing it is the same change.
            assert_eq!(
                !forbidden_labels(&BTreeMap::new(), &new).is_empty(),
                forbidden
            );
        }
    }

    #[test]
    fn writes_of_its_own_node_are_refused_in_kubernetes_words() {
        let registered = node(json!({"kubernetes.io/hostname": "w1"}), json!([]));
        let role = node(
            json!({"kubernetes.io/hostname": "w1", "node-role.kubernetes.io/control-plane": "", "node-restriction.kubernetes.io/foo": "x"}),
            json!([]),
        );
        let tainted = node(
            json!({"kubernetes.io/hostname": "w1"}),
            json!([{"key": "k", "effect": "NoSchedule"}]),
        );
        for (case, new, old, want) in [
            ("register plainly", &registered, None, None),
            (
                "register with a role",
                &role,
                None,
                Some(
                    "node \"w1\" is not allowed to set the following labels: node-restriction.kubernetes.io/foo, node-role.kubernetes.io/control-plane",
                ),
            ),
            (
                "add a role",
                &role,
                Some(&registered),
                Some(
                    "is not allowed to modify labels: node-restriction.kubernetes.io/foo, node-role.kubernetes.io/control-plane",
                ),
            ),
            (
                "remove a role",
                &registered,
                Some(&role),
                Some(
                    "is not allowed to modify labels: node-restriction.kubernetes.io/foo, node-role.kubernetes.io/control-plane",
                ),
            ),
            ("keep a role an admin set", &role, Some(&role), None),
            ("register with taints", &tainted, None, None),
            (
                "change both: taints are told first",
                &role,
                Some(&tainted),
                Some("node \"w1\" is not allowed to modify taints"),
            ),
            (
                "remove its taints",
                &registered,
                Some(&tainted),
                Some("node \"w1\" is not allowed to modify taints"),
            ),
        ] {
            assert_eq!(node_write_denial("w1", new, old).as_deref(), want, "{case}");
        }
    }
}
