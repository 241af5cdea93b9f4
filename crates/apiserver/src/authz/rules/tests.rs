use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::json;

use super::*;
use crate::authz::RbacSnapshot;

fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("RBAC object")
}

fn snapshot() -> RbacSnapshot {
    RbacSnapshot::new(
        vec![obj::<ClusterRole>(
            json!({"metadata": {"name": "reader"}, "rules": [
                {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["nodes"]},
                {"verbs": ["get"], "nonResourceURLs": ["/healthz"]},
            ]}),
        )],
        vec![
            obj::<ClusterRoleBinding>(json!({"metadata": {"name": "jane-reads"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "reader"},
                "subjects": [{"kind": "User", "name": "jane"}]})),
            obj::<ClusterRoleBinding>(json!({"metadata": {"name": "devs-gone"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "gone"},
                "subjects": [{"kind": "Group", "name": "dev"}]})),
        ],
        vec![obj::<Role>(
            json!({"metadata": {"name": "cm", "namespace": "team"}, "rules": [
                {"verbs": ["update"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"]},
            ]}),
        )],
        vec![
            obj::<RoleBinding>(json!({"metadata": {"name": "jane-cm", "namespace": "team"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm"},
                "subjects": [{"kind": "User", "name": "jane"}]})),
            obj::<RoleBinding>(
                json!({"metadata": {"name": "jane-missing", "namespace": "team"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "missing"},
                "subjects": [{"kind": "User", "name": "jane"}]}),
            ),
        ],
    )
}

fn user(name: &str, groups: &[&str]) -> UserInfo {
    UserInfo {
        name: name.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    }
}

fn authorizer(modes: Vec<Mode>) -> Authorizer {
    let a = Authorizer::new(modes);
    a.set_rbac(snapshot());
    a
}

#[test]
fn rbac_lists_the_rules_of_every_binding_that_names_the_user() {
    let a = authorizer(vec![Mode::Node, Mode::Rbac]);
    let jane = user("jane", &["system:authenticated"]);
    assert_eq!(
        a.rules_for(&jane, "default").status(),
        json!({
            "resourceRules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["nodes"]}],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
            "incomplete": false,
        })
    );
    assert_eq!(
        a.rules_for(&jane, "team").status(),
        json!({
            "resourceRules": [
                {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["nodes"]},
                {"verbs": ["update"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"]},
            ],
            "nonResourceRules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}],
            "incomplete": false,
            "evaluationError": "role.rbac.authorization.k8s.io \"missing\" not found",
        })
    );
    let both = a.rules_for(&user("jane", &["dev"]), "team");
    assert_eq!(
        both.status()["evaluationError"],
        "[clusterrole.rbac.authorization.k8s.io \"gone\" not found, role.rbac.authorization.k8s.io \"missing\" not found]"
    );
    let nobody = a.rules_for(&user("joe", &[]), "team").status();
    assert_eq!(
        nobody,
        json!({"resourceRules": [], "nonResourceRules": [], "incomplete": false})
    );
}

#[test]
fn a_node_is_told_its_list_is_incomplete() {
    let a = authorizer(vec![Mode::Node, Mode::Rbac]);
    let node = user("system:node:w1", &["system:nodes", "system:authenticated"]);
    let s = a.rules_for(&node, "default").status();
    assert_eq!(s["incomplete"], true);
    assert_eq!(
        s["evaluationError"],
        "node authorizer does not support user rule resolution"
    );
}

#[test]
fn always_allow_lists_everything() {
    let a = authorizer(vec![Mode::AlwaysAllow]);
    assert_eq!(
        a.rules_for(&user("joe", &[]), "default").status(),
        json!({
            "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
            "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
            "incomplete": false,
        })
    );
}
