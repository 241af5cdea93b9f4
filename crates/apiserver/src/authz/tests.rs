//! The authorizers' rules, table-tested against Kubernetes' evaluation.

use super::*;

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]) -> PolicyRule {
    let v = |x: &[&str]| Some(x.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    PolicyRule {
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        api_groups: v(groups),
        resources: v(resources),
        resource_names: if names.is_empty() { None } else { v(names) },
        non_resource_urls: None,
    }
}

fn res(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
    Attributes::resource(verb, group, resource, sub, "", name)
}

#[test]
fn rules_match_as_kubernetes_evaluates_them() {
    let pods = rule(&["get"], &[""], &["pods"], &[]);
    assert!(rule_allows(&pods, &res("get", "", "pods", "", "p")));
    assert!(
        !rule_allows(&pods, &res("get", "", "pods", "log", "p")),
        "pods does not cover pods/log"
    );
    assert!(!rule_allows(&pods, &res("list", "", "pods", "", "")));
    let star_sub = rule(&["*"], &["*"], &["*/status"], &[]);
    assert!(rule_allows(
        &star_sub,
        &res("update", "x", "nodes", "status", "n")
    ));
    assert!(!rule_allows(
        &star_sub,
        &res("update", "x", "nodes", "", "n")
    ));
    let pod_status = rule(&["update"], &[""], &["pods/status"], &[]);
    for (sub, allowed) in [("status", true), ("", false), ("log", false)] {
        let a = res("update", "", "pods", sub, "p");
        assert_eq!(
            rule_allows(&pod_status, &a),
            allowed,
            "pods/status for {sub:?}"
        );
    }
    assert!(!rule_allows(
        &pod_status,
        &res("update", "", "nodes", "status", "n")
    ));
    assert!(!rule_allows(
        &star_sub,
        &res("update", "x", "nodes", "statusx", "n")
    ));
    let named = rule(&["get"], &[""], &["configmaps"], &["cluster-info"]);
    assert!(rule_allows(
        &named,
        &res("get", "", "configmaps", "", "cluster-info")
    ));
    assert!(!rule_allows(
        &named,
        &res("get", "", "configmaps", "", "other")
    ));
    assert!(!rule_allows(
        &named,
        &res("create", "", "configmaps", "", "")
    ));
}

#[test]
fn a_service_account_subject_names_its_namespace_or_the_bindings() {
    let sa = |ns: Option<&str>| Subject {
        kind: "ServiceAccount".into(),
        name: "builder".into(),
        namespace: ns.map(str::to_owned),
        ..Default::default()
    };
    let user = |name: &str| UserInfo {
        name: name.into(),
        ..Default::default()
    };
    // (subject's namespace, binding's namespace, user, matches)
    let cases = [
        (Some("ci"), "", "system:serviceaccount:ci:builder", true),
        (None, "ci", "system:serviceaccount:ci:builder", true),
        (Some(""), "ci", "system:serviceaccount:ci:builder", true),
        (Some("ci"), "", "system:serviceaccount:cd:builder", false),
        (Some("ci"), "", "system:serviceaccount:ci:builder2", false),
        (Some("ci"), "", "system:serviceaccount:ci", false),
        (Some("ci"), "", "ci:builder", false),
        (None, "", "system:serviceaccount::builder", false),
        (Some(""), "", "system:serviceaccount::builder", false),
    ];
    for (ns, binding_ns, name, matches) in cases {
        let subjects = [sa(ns)];
        let found = matching_subject(Some(&subjects), &user(name), binding_ns);
        assert_eq!(found.is_some(), matches, "{ns:?} {binding_ns:?} {name}");
    }
}

#[test]
fn non_resource_urls_with_trailing_star() {
    let r = PolicyRule {
        verbs: vec!["get".into()],
        non_resource_urls: Some(vec!["/apis/*".into(), "/healthz".into()]),
        ..Default::default()
    };
    let path = |p: &str| Attributes {
        verb: "get".into(),
        path: p.into(),
        ..Default::default()
    };
    assert!(rule_allows(&r, &path("/apis/")));
    assert!(rule_allows(&r, &path("/apis/x/y")));
    assert!(!rule_allows(&r, &path("/apis")));
    assert!(rule_allows(&r, &path("/healthz")));
    assert!(!rule_allows(&r, &path("/healthz/x")));
}

#[test]
fn forbidden_messages_word_for_word() {
    let u = UserInfo {
        name: "system:bootstrap:abcdef".into(),
        ..Default::default()
    };
    let a = Attributes {
        verb: "get".into(),
        path: "/".into(),
        ..Default::default()
    };
    assert_eq!(
        forbidden_message(&u, &a),
        r#"User "system:bootstrap:abcdef" cannot get path "/""#
    );
    let mut a = res("list", "", "secrets", "", "");
    a.namespace = "kube-system".into();
    assert_eq!(
        forbidden_message(&u, &a),
        r#"User "system:bootstrap:abcdef" cannot list resource "secrets" in API group "" in the namespace "kube-system""#
    );
    let a = res(
        "update",
        "certificates.k8s.io",
        "certificatesigningrequests",
        "approval",
        "csr-x",
    );
    assert_eq!(
        forbidden_message(&u, &a),
        r#"User "system:bootstrap:abcdef" cannot update resource "certificatesigningrequests/approval" in API group "certificates.k8s.io" at the cluster scope"#
    );
}

#[test]
fn a_denial_says_why_as_the_node_and_rbac_authorizers_say_it() {
    let node = UserInfo {
        name: "system:node:n1".into(),
        groups: vec!["system:nodes".into()],
        ..Default::default()
    };
    let at = |verb: &str, resource: &str, sub: &str, ns: &str, name: &str| {
        Attributes::resource(verb, "", resource, sub, ns, name)
    };
    #[rustfmt::skip]
    let rows = [
        (at("get", "secrets", "", "default", "s"), "no relationship found between node 'n1' and this object"),
        (at("list", "configmaps", "", "default", ""), "No Object name found"),
        (at("delete", "secrets", "", "default", "s"), "can only read resources of this type"),
        (at("get", "secrets", "", "", "s"), "can only read namespaced object of this type"),
        (at("list", "persistentvolumeclaims", "", "default", ""), "can only get individual resources of this type"),
        (at("get", "pods", "", "default", "p"), "no relationship found between node 'n1' and this object"),
        (at("delete", "nodes", "", "", "n1"), ""),
    ];
    let authz = Authorizer::new(vec![Mode::Node, Mode::Rbac]);
    for (a, want) in rows {
        assert_eq!(
            authz.authorize(&node, &a),
            Decision::Denied {
                reason: want.into()
            },
            "{a:?}"
        );
    }
    let zed = UserInfo {
        name: "zed".into(),
        ..Default::default()
    };
    let ghost: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "ghost"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "does-not-exist"},
        "subjects": [{"kind": "User", "name": "zed"}],
    }))
    .unwrap();
    authz.set_rbac(RbacSnapshot::new(vec![], vec![ghost], vec![], vec![]));
    assert_eq!(
        authz.authorize(&zed, &at("get", "configmaps", "", "default", "c")),
        Decision::Denied {
            reason: "RBAC: clusterrole.rbac.authorization.k8s.io \"does-not-exist\" not found"
                .into()
        }
    );
}

#[test]
fn authorization_modes_are_refused_in_kube_apiservers_words() {
    let modes =
        |m: &[&str]| Mode::parse_all(&m.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
    assert_eq!(modes(&["Node", "RBAC"]), Ok(vec![Mode::Node, Mode::Rbac]));
    assert_eq!(
        modes(&["RBAC", "RBAC"]),
        Err(r#"authorization-mode ["RBAC" "RBAC"] has mode specified more than once"#.to_owned())
    );
    let bogus = modes(&["Bogus"]).unwrap_err();
    assert!(
        bogus.starts_with(r#"authorization-mode "Bogus" is not a valid mode"#),
        "{bogus}"
    );
    let webhook = modes(&["Webhook"]).unwrap_err();
    assert!(webhook.contains("is not served by kubeboot"), "{webhook}");
}
