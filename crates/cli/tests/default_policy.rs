//! The default RBAC policy is reconciled at every start, as kube-apiserver reconciles it:
//! a default role an operator trimmed gets its rules back (the operator's additions kept),
//! a default binding gets its subjects back, and one annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"` is left as the operator made it.

mod common;

use common::{Server, ok};
use serde_json::Value;

fn get(s: &Server, what: &str) -> Value {
    let out = ok(s.kubectl("kubectl", &["get", what, "-o", "json"]), what);
    serde_json::from_str(&out).expect("JSON")
}

fn replace(s: &Server, obj: &Value) {
    let text = obj.to_string();
    let out = s.kubectl_as(
        "kubectl",
        &s.kubeconfig(),
        &["replace", "-f", "-"],
        Some(&text),
    );
    ok(out, "kubectl replace");
}

/// Whether a role has a rule allowing `verb` on `resource`.
fn allows(role: &Value, verb: &str, resource: &str) -> bool {
    role["rules"].as_array().into_iter().flatten().any(|r| {
        let has = |f: &str, v: &str| r[f].as_array().is_some_and(|l| l.iter().any(|x| x == v));
        has("verbs", verb) && has("resources", resource)
    })
}

#[test]
fn a_restart_restores_what_the_default_policy_lost_unless_protected() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cluster");
    let mut s = Server::start_in(&dir);

    // The operator trims system:basic-user to one rule of their own...
    let mut basic = get(&s, "clusterrole/system:basic-user");
    assert!(allows(&basic, "create", "selfsubjectaccessreviews"));
    basic["rules"] =
        serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]);
    replace(&s, &basic);
    // ...empties system:discovery and protects it...
    let mut discovery = get(&s, "clusterrole/system:discovery");
    discovery["rules"] = serde_json::json!([]);
    discovery["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] =
        "false".into();
    replace(&s, &discovery);
    // ...and takes system:authenticated out of the system:basic-user binding.
    let mut binding = get(&s, "clusterrolebinding/system:basic-user");
    binding["subjects"] = serde_json::json!([{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "jane"}]);
    replace(&s, &binding);
    assert!(!allows(
        &get(&s, "clusterrole/system:basic-user"),
        "create",
        "selfsubjectaccessreviews"
    ));

    s.kill();
    let s = Server::start_in(&dir);
    let basic = get(&s, "clusterrole/system:basic-user");
    assert!(
        allows(&basic, "create", "selfsubjectaccessreviews"),
        "{basic}"
    );
    assert!(
        allows(&basic, "create", "selfsubjectrulesreviews"),
        "{basic}"
    );
    assert!(
        allows(&basic, "get", "configmaps"),
        "the operator's rule is kept: {basic}"
    );
    let discovery = get(&s, "clusterrole/system:discovery");
    assert_eq!(
        discovery["rules"],
        serde_json::json!([]),
        "protected: {discovery}"
    );
    let binding = get(&s, "clusterrolebinding/system:basic-user");
    let names: Vec<&str> = binding["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(names, ["jane", "system:authenticated"], "{binding}");
}
