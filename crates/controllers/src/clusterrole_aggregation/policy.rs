//! clusterrole-aggregation's rules, pure: which roles a selector matches
//! (`metav1.LabelSelector`), and the rules an aggregated role gets — for each selector in
//! order, the matching roles by name (never the role itself), their rules in order, each
//! distinct rule once.

use std::collections::BTreeMap;

use kubeboot_api::labels::LabelSelector;
use serde_json::Value;

/// The rules `role` aggregates from `all`, or `None` when it has no `aggregationRule`.
pub fn aggregated_rules(role: &Value, all: &[Value]) -> Option<Vec<Value>> {
    let selectors = role.pointer("/aggregationRule/clusterRoleSelectors")?;
    let name = name_of(role);
    let mut out: Vec<Value> = Vec::new();
    let mut seen: Vec<Value> = Vec::new();
    for selector in selectors.as_array().into_iter().flatten() {
        let mut matching: Vec<&Value> = all
            .iter()
            .filter(|r| name_of(r) != name && matches(selector, &labels_of(r)))
            .collect();
        matching.sort_by(|a, b| name_of(a).cmp(name_of(b)));
        for rule in matching
            .iter()
            .flat_map(|r| r["rules"].as_array().into_iter().flatten())
        {
            let parsed = normalized(rule);
            if !seen.contains(&parsed) {
                seen.push(parsed);
                out.push(rule.clone());
            }
        }
    }
    Some(out)
}

/// Whether the stored rules are `rules` (a missing list and an empty one are the same, as
/// Kubernetes' semantic equality has it; order counts).
pub fn same_rules(stored: Option<&Value>, rules: &[Value]) -> bool {
    let stored: &[Value] = stored.and_then(Value::as_array).map_or(&[], Vec::as_slice);
    stored.len() == rules.len()
        && stored
            .iter()
            .zip(rules)
            .all(|(a, b)| normalized(a) == normalized(b))
}

/// A rule with empty lists and missing ones alike.
fn normalized(rule: &Value) -> Value {
    let mut r = rule.clone();
    if let Some(o) = r.as_object_mut() {
        o.retain(|_, v| !v.is_null() && v.as_array().is_none_or(|l| !l.is_empty()));
    }
    r
}

fn name_of(v: &Value) -> &str {
    v.pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    let labels = v.pointer("/metadata/labels").and_then(Value::as_object);
    labels
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect()
}

/// Whether `labels` satisfy a `metav1.LabelSelector` object; one that does not read
/// matches nothing.
pub fn matches(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    LabelSelector::from_object(selector).is_some_and(|s| s.matches(labels))
}
