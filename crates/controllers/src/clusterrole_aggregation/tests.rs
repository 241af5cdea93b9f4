use serde_json::{Value, json};

use super::policy::*;

fn role(name: &str, labels: Value, rules: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}, "rules": rules})
}

fn aggregating(name: &str, labels: Value, selectors: Value) -> Value {
    json!({"metadata": {"name": name, "labels": labels}, "aggregationRule": {"clusterRoleSelectors": selectors}})
}

fn r(resource: &str, verb: &str) -> Value {
    json!({"apiGroups": [""], "resources": [resource], "verbs": [verb]})
}

#[test]
fn an_aggregated_role_gets_the_rules_of_what_its_selectors_match_in_order() {
    let to_view = json!({"matchLabels": {"agg/view": "true"}});
    let to_edit = json!({"matchLabels": {"agg/edit": "true"}});
    let view = aggregating("view", json!({"agg/edit": "true"}), json!([to_view]));
    let all = vec![
        role(
            "b-view",
            json!({"agg/view": "true"}),
            json!([r("pods", "get"), r("services", "get")]),
        ),
        role(
            "a-view",
            json!({"agg/view": "true"}),
            json!([r("pods", "get"), r("configmaps", "list")]),
        ),
        role(
            "edit-extra",
            json!({"agg/edit": "true"}),
            json!([r("pods", "delete")]),
        ),
        role("unrelated", json!({}), json!([r("secrets", "get")])),
        view.clone(),
    ];
    // Sorted by name, duplicates once.
    assert_eq!(
        aggregated_rules(&view, &all).unwrap(),
        vec![
            r("pods", "get"),
            r("configmaps", "list"),
            r("services", "get")
        ]
    );
    assert_eq!(aggregated_rules(&all[0], &all), None, "not aggregated");
    // edit takes view's rules as they are now (chained aggregation settles over rounds).
    let edit = aggregating("edit", json!({"agg/edit": "true"}), json!([to_edit]));
    let mut with_view_rules = all;
    with_view_rules[4]["rules"] = json!([r("pods", "get")]);
    with_view_rules.push(edit.clone());
    assert_eq!(
        aggregated_rules(&edit, &with_view_rules).unwrap(),
        vec![r("pods", "delete"), r("pods", "get")],
        "never itself, though it carries the label"
    );
}

#[test]
fn rules_compare_as_kubernetes_semantic_equality() {
    let rules = vec![r("pods", "get")];
    assert!(same_rules(Some(&json!([r("pods", "get")])), &rules));
    assert!(same_rules(None, &[]));
    assert!(same_rules(Some(&json!(null)), &[]));
    let with_empty =
        json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": []}]);
    assert!(same_rules(Some(&with_empty), &rules));
    assert!(!same_rules(
        Some(&json!([r("pods", "get"), r("pods", "list")])),
        &rules
    ));
    let swapped = [r("b", "get"), r("a", "get")];
    assert!(
        !same_rules(Some(&json!([r("a", "get"), r("b", "get")])), &swapped),
        "order counts"
    );
}
