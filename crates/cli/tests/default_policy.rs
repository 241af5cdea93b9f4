//! The default RBAC policy is reconciled at every start, as kube-apiserver reconciles it:
//! a default role an operator trimmed gets its rules back (the operator's additions kept),
//! a default binding gets its subjects back, and one annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"` is left as the operator made it;
//! and roles and bindings are held to RBAC's validation.

mod common;

use common::{Server, ok, stderr, stdout};
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

/// `kubectl auth can-i` as `user` (impersonated by the admin), with the given kubectl.
fn can_i(s: &Server, k: &str, user: &str, args: &[&str]) -> String {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    all.extend(["--as", user]);
    let out = s.kubectl(k, &all);
    common::stdout(&out).trim().to_owned()
}

#[test]
fn the_whole_default_policy_of_kubernetes_is_there() {
    let s = Server::start();
    let roles = get(&s, "clusterroles");
    let names: Vec<&str> = roles["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|r| r["metadata"]["name"].as_str())
        .collect();
    for want in [
        "admin",
        "edit",
        "view",
        "cluster-admin",
        "system:node-proxier",
        "system:kube-scheduler",
        "system:volume-scheduler",
        "system:kube-dns",
        "system:monitoring",
        "system:auth-delegator",
        "system:kubelet-api-admin",
        "system:heapster",
        "system:service-account-issuer-discovery",
        "system:controller:node-controller",
        "system:controller:certificate-controller",
        "system:controller:clusterrole-aggregation-controller",
        "system:controller:service-cidrs-controller",
        "system:cluster-trust-bundle-discovery",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    for k in common::kubectls() {
        // The identities `kubeboot certs generate` makes for a hand-built cluster.
        assert_eq!(
            can_i(&s, &k, "system:kube-proxy", &["list", "nodes"]),
            "yes",
            "{k}"
        );
        assert_eq!(
            can_i(&s, &k, "system:kube-proxy", &["watch", "services"]),
            "yes",
            "{k}"
        );
        assert_eq!(
            can_i(&s, &k, "system:kube-proxy", &["delete", "nodes"]),
            "no",
            "{k}"
        );
        let binding = ["create", "pods", "--subresource", "binding"];
        assert_eq!(
            can_i(&s, &k, "system:kube-scheduler", &binding),
            "yes",
            "{k}"
        );
        let ns_role = ["get", "leases/kube-scheduler", "-n", "kube-system"];
        assert_eq!(
            can_i(&s, &k, "system:kube-scheduler", &ns_role),
            "yes",
            "{k}"
        );
        let monitoring = ["get", "/metrics"];
        let as_group = [&monitoring[..], &["--as-group", "system:monitoring"]].concat();
        assert_eq!(can_i(&s, &k, "prometheus", &as_group), "yes", "{k}");
    }
    let binding = get(&s, "clusterrolebinding/system:node-proxier");
    assert_eq!(binding["subjects"][0]["name"], "system:kube-proxy");
    assert_eq!(
        names.len(),
        66 + 1 + 1 + 1,
        "Kubernetes' 66, its ClusterTrustBundle feature's discovery role, kubeadm's and kubeboot's"
    );
    // A controller's service account holds its controller's role.
    let sa = "system:serviceaccount:kube-system:node-controller";
    assert_eq!(can_i(&s, "kubectl", sa, &["update", "nodes/status"]), "yes");
    assert_eq!(can_i(&s, "kubectl", sa, &["create", "secrets"]), "no");
}

#[test]
fn admin_edit_and_view_aggregate_and_take_an_operators_additions() {
    let s = Server::start();
    let settled = |role: &str, verb: &str, resource: &str| {
        common::eventually(std::time::Duration::from_secs(30), || {
            allows(&get(&s, &format!("clusterrole/{role}")), verb, resource)
        })
    };
    // view from system:aggregate-to-view, edit from view and aggregate-to-edit, admin from
    // edit and aggregate-to-admin.
    assert!(settled("view", "get", "pods"));
    assert!(settled("edit", "get", "pods"), "edit includes view");
    assert!(settled("edit", "create", "secrets"));
    assert!(
        settled("admin", "get", "pods"),
        "admin includes edit and view"
    );
    assert!(settled("admin", "create", "rolebindings"));
    assert!(
        !allows(&get(&s, "clusterrole/view"), "get", "secrets"),
        "view reads no secrets"
    );

    // An operator's role labelled aggregate-to-view reaches view, edit and admin.
    let widgets = r#"{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "ip-viewer", "labels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}},
        "rules": [{"apiGroups": ["networking.k8s.io"], "resources": ["ipaddresses"], "verbs": ["get", "list"]}]}"#;
    ok(
        s.kubectl_as(
            "kubectl",
            &s.kubeconfig(),
            &["create", "-f", "-"],
            Some(widgets),
        ),
        "create",
    );
    for role in ["view", "edit", "admin"] {
        assert!(
            settled(role, "list", "ipaddresses"),
            "{role} aggregates ip-viewer"
        );
    }
    // A user bound to view in a namespace may then list them there, and nothing else.
    ok(
        s.kubectl("kubectl", &["create", "namespace", "team"]),
        "namespace",
    );
    ok(
        s.kubectl(
            "kubectl",
            &[
                "create",
                "rolebinding",
                "jane-view",
                "--clusterrole=view",
                "--user=jane",
                "-n",
                "team",
            ],
        ),
        "rolebinding",
    );
    for k in common::kubectls() {
        let ips = ["list", "ipaddresses.networking.k8s.io", "-n", "team"];
        assert_eq!(can_i(&s, &k, "jane", &ips), "yes", "{k}");
        assert_eq!(
            can_i(&s, &k, "jane", &["list", "pods", "-n", "team"]),
            "yes",
            "{k}"
        );
        assert_eq!(
            can_i(&s, &k, "jane", &["get", "secrets", "-n", "team"]),
            "no",
            "{k}"
        );
        assert_eq!(
            can_i(&s, &k, "jane", &["list", "pods", "-n", "default"]),
            "no",
            "{k}"
        );
    }
    // Its label gone, its rules leave the aggregated roles.
    ok(
        s.kubectl(
            "kubectl",
            &[
                "label",
                "clusterrole",
                "ip-viewer",
                "rbac.authorization.k8s.io/aggregate-to-view-",
            ],
        ),
        "unlabel",
    );
    let gone = common::eventually(std::time::Duration::from_secs(30), || {
        !allows(&get(&s, "clusterrole/admin"), "list", "ipaddresses")
    });
    assert!(gone, "admin no longer holds ip-viewer's rules");
}

/// Roles and bindings are held to RBAC's validation (`pkg/apis/rbac/validation`), in
/// kube-apiserver's words; and a Lease to coordination's. Seen before: a Role rule without
/// verbs, a ClusterRole rule of both resources and non-resource URLs, a RoleBinding subject
/// without a name or of kind `Bogus`, and a Lease of duration 0 were all stored.
#[test]
fn roles_bindings_and_leases_are_held_to_kubernetes_validation() {
    let s = Server::start();
    let refused = |manifest: &str, want: &[&str]| {
        let args = ["create", "-f", "-"];
        let out = s.kubectl_as("kubectl", &s.kubeconfig(), &args, Some(manifest));
        assert!(!out.status.success(), "{manifest}: {}", stdout(&out));
        for w in want {
            assert!(stderr(&out).contains(w), "{w}: {}", stderr(&out));
        }
    };
    refused(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: default}\nrules:\n- {verbs: [], apiGroups: [''], resources: [pods]}\n",
        &["rules[0].verbs: Required value: verbs must contain at least one value"],
    );
    refused(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: c}\nrules:\n- {verbs: [get], nonResourceURLs: [/healthz], resources: [pods]}\n",
        &[
            r#"rules[0].nonResourceURLs: Invalid value: []string{"/healthz"}: rules cannot apply to both regular resources and non-resource URLs"#,
        ],
    );
    refused(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b, namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects:\n- {kind: User, apiGroup: rbac.authorization.k8s.io, name: ''}\n- {kind: Bogus, name: x}\n",
        &[
            "subjects[0].name: Required value",
            r#"subjects[1].kind: Unsupported value: "Bogus": supported values: "ServiceAccount", "User", "Group""#,
        ],
    );
    // Seen before the fix: an aggregation rule selecting with operator `Bogus` was stored.
    refused(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: agg}\naggregationRule:\n  clusterRoleSelectors:\n  - matchExpressions:\n    - {key: example.com/aggregate, operator: Bogus}\n",
        &[
            r#"aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator: Invalid value: "Bogus": not a valid selector operator"#,
            r#"aggregationRule.clusterRoleSelectors[0]: Invalid value: "null": invalid label selector."#,
        ],
    );
    refused(
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata: {name: l, namespace: default}\nspec: {leaseDurationSeconds: 0}\n",
        &["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"],
    );
    let good = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b, namespace: default}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: view}\nsubjects:\n- {kind: User, name: someone}\n";
    let args = ["create", "-f", "-"];
    ok(
        s.kubectl_as("kubectl", &s.kubeconfig(), &args, Some(good)),
        "a valid binding",
    );
}
