use serde_json::json;

use super::*;

fn rules(v: serde_json::Value) -> Vec<PolicyRule> {
    serde_json::from_value(v).expect("rules")
}

#[test]
fn covers_as_kubernetes_validation_covers() {
    let owner = rules(json!([
        {"apiGroups": [""], "resources": ["nodes", "*/status"], "verbs": ["get", "list"]},
        {"apiGroups": ["*"], "resources": ["leases"], "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]},
        {"nonResourceURLs": ["/healthz*"], "verbs": ["get"]},
    ]));
    let cases = [
        (
            "exact",
            json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]}]),
            0,
        ),
        (
            "a subresource by */status",
            json!([{"apiGroups": [""], "resources": ["pods/status"], "verbs": ["list"]}]),
            0,
        ),
        (
            "a verb missing",
            json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "update"]}]),
            1,
        ),
        (
            "any group, any verb",
            json!([{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["delete"]}]),
            0,
        ),
        (
            "named: covered by the name",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["a"], "verbs": ["get"]}]),
            0,
        ),
        (
            "named: another name",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["b"], "verbs": ["get"]}]),
            1,
        ),
        (
            "all names where one is held",
            json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
            1,
        ),
        (
            "a URL under a prefix",
            json!([{"nonResourceURLs": ["/healthz/etcd"], "verbs": ["get"]}]),
            0,
        ),
        (
            "another URL",
            json!([{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]),
            1,
        ),
        (
            "two of four parts missing",
            json!([{"apiGroups": [""], "resources": ["nodes", "secrets"], "verbs": ["get", "watch"]}]),
            3,
        ),
    ];
    for (case, servant, missing) in cases {
        assert_eq!(uncovered(&owner, &rules(servant)).len(), missing, "{case}");
    }
}

fn role_obj(annotations: serde_json::Value, rules: serde_json::Value) -> serde_json::Value {
    json!({"metadata": {"name": "r", "annotations": annotations, "labels": {"mine": "x"}}, "rules": rules})
}

#[test]
fn a_default_role_gets_what_it_lacks_and_keeps_what_the_user_added() {
    let expected = json!({"metadata": {"name": "r",
        "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
        "annotations": {AUTOUPDATE: "true"}},
        "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "update"]}]});
    let existing = role_obj(
        json!({AUTOUPDATE: "true"}),
        json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
               {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]),
    );
    let Reconciled::Update(out) = role(&existing, &expected) else {
        panic!("an update");
    };
    assert_eq!(
        out["rules"],
        json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},
               {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
               {"apiGroups": [""], "resources": ["nodes"], "verbs": ["update"]}])
    );
    assert_eq!(
        out["metadata"]["labels"],
        json!({"mine": "x", "kubernetes.io/bootstrapping": "rbac-defaults"})
    );
    // Reconciled once, it has everything.
    assert_eq!(role(&out, &expected), Reconciled::Unchanged);
    // autoupdate "false" keeps the user's version.
    let protected = role_obj(json!({AUTOUPDATE: "false"}), json!([]));
    assert_eq!(role(&protected, &expected), Reconciled::Protected);
}

#[test]
fn a_default_binding_gets_its_subjects_and_its_role_back() {
    let subject = |kind: &str, name: &str| json!({"kind": kind, "apiGroup": "rbac.authorization.k8s.io", "name": name});
    let role_ref = |name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name});
    let expected = json!({"metadata": {"name": "b", "annotations": {AUTOUPDATE: "true"}},
        "roleRef": role_ref("system:node"), "subjects": [subject("Group", "system:nodes")]});
    let existing = json!({"metadata": {"name": "b", "annotations": {AUTOUPDATE: "true"}},
        "roleRef": role_ref("system:node"), "subjects": [subject("User", "jane")]});
    let Reconciled::Update(out) = binding(&existing, &expected) else {
        panic!("an update");
    };
    assert_eq!(
        out["subjects"],
        json!([subject("User", "jane"), subject("Group", "system:nodes")])
    );
    assert_eq!(binding(&out, &expected), Reconciled::Unchanged);
    let moved = json!({"metadata": {"name": "b"}, "roleRef": role_ref("view"), "subjects": []});
    assert_eq!(
        binding(&moved, &expected),
        Reconciled::Recreate(expected.clone())
    );
    let protected = json!({"metadata": {"name": "b", "annotations": {AUTOUPDATE: "false"}},
        "roleRef": role_ref("view"), "subjects": []});
    assert_eq!(binding(&protected, &expected), Reconciled::Protected);
}

#[test]
fn an_aggregated_role_gets_its_selectors_back_and_keeps_its_aggregated_rules() {
    let selector = |label: &str| json!({"matchLabels": {label: "true"}});
    let expected = json!({"metadata": {"name": "admin", "annotations": {AUTOUPDATE: "true"}},
        "aggregationRule": {"clusterRoleSelectors": [selector("rbac.authorization.k8s.io/aggregate-to-admin")]},
        "rules": []});
    // The controller's rules and an operator's extra selector stay; nothing to add.
    let mut existing = expected.clone();
    existing["rules"] = json!([{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]);
    existing["aggregationRule"]["clusterRoleSelectors"]
        .as_array_mut()
        .unwrap()
        .push(selector("example.com/aggregate-to-admin"));
    assert_eq!(role(&existing, &expected), Reconciled::Unchanged);
    // A removed default selector comes back beside the operator's.
    let mut stripped = existing.clone();
    stripped["aggregationRule"]["clusterRoleSelectors"] =
        json!([selector("example.com/aggregate-to-admin")]);
    let Reconciled::Update(out) = role(&stripped, &expected) else {
        panic!("the selector is added back");
    };
    assert_eq!(
        out["aggregationRule"]["clusterRoleSelectors"],
        json!([
            selector("example.com/aggregate-to-admin"),
            selector("rbac.authorization.k8s.io/aggregate-to-admin")
        ])
    );
    // A default that aggregates nothing loses an aggregation added to it.
    let plain = json!({"metadata": {"name": "system:basic-user"}, "rules": []});
    let mut aggregated = plain.clone();
    aggregated["aggregationRule"] = json!({"clusterRoleSelectors": [selector("x")]});
    let Reconciled::Update(out) = role(&aggregated, &plain) else {
        panic!("the aggregation is removed");
    };
    assert!(out.get("aggregationRule").is_none());
}
