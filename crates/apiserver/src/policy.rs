//! What a new cluster starts with: the default namespaces, Kubernetes' whole default RBAC
//! policy (as data, `policy/kubernetes-1.33.yaml`), what kubeboot's own controllers hold
//! beyond it, and the objects kubeadm adds for TLS bootstrapping.
//! The server creates whatever is missing at every start, and gives the default RBAC
//! objects back what they lack (`crate::reconcile`).

use serde_json::{Value, json};

use crate::registry::Kind;

/// The namespaces every cluster has.
pub const NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

pub use kubeboot_bootstrap::secret::DEFAULT_NODE_TOKEN_GROUP;

fn labels() -> Value {
    json!({"kubernetes.io/bootstrapping": "rbac-defaults"})
}

fn annotations() -> Value {
    json!({"rbac.authorization.kubernetes.io/autoupdate": "true"})
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "verbs": verbs})
}

fn named_rule(groups: &[&str], resources: &[&str], names: &[&str], verbs: &[&str]) -> Value {
    json!({"apiGroups": groups, "resources": resources, "resourceNames": names, "verbs": verbs})
}

fn cluster_role(name: &str, rules: Vec<Value>) -> (Kind, Value) {
    (
        Kind::ClusterRole,
        json!({"metadata": {"name": name, "labels": labels(), "annotations": annotations()}, "rules": rules}),
    )
}

fn subject(kind: &str, name: &str) -> Value {
    json!({"kind": kind, "apiGroup": "rbac.authorization.k8s.io", "name": name})
}

fn cluster_binding(name: &str, role: &str, subjects: Vec<Value>) -> (Kind, Value) {
    (
        Kind::ClusterRoleBinding,
        json!({"metadata": {"name": name, "labels": labels(), "annotations": annotations()},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
               "subjects": subjects}),
    )
}

/// Kubernetes' default RBAC policy, as data (`policy/kubernetes-1.33.yaml`).
static KUBERNETES: &str = include_str!("policy/kubernetes-1.33.yaml");

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Policy {
    cluster_roles: Vec<RoleData>,
    cluster_role_bindings: Vec<BindingData>,
    roles: Vec<RoleData>,
    role_bindings: Vec<BindingData>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RoleData {
    name: String,
    namespace: Option<String>,
    #[serde(default)]
    labels: serde_json::Map<String, Value>,
    aggregation_rule: Option<Value>,
    #[serde(default)]
    rules: Vec<Value>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BindingData {
    name: String,
    namespace: Option<String>,
    role_ref: RoleRef,
    subjects: Vec<Value>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleRef {
    kind: String,
    name: String,
}

/// The metadata of a default object: its name, namespace and extra labels with the
/// bootstrapping label and the autoupdate annotation.
fn metadata(name: &str, ns: Option<&str>, extra: serde_json::Map<String, Value>) -> Value {
    let mut labels = extra;
    labels.extend(labels_map());
    let mut meta = json!({"name": name, "labels": labels, "annotations": annotations()});
    if let Some(ns) = ns {
        meta["namespace"] = json!(ns);
    }
    meta
}

fn labels_map() -> serde_json::Map<String, Value> {
    match labels() {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

impl RoleData {
    fn object(self) -> Value {
        let mut obj = json!({"metadata": metadata(&self.name, self.namespace.as_deref(), self.labels), "rules": self.rules});
        if let Some(rule) = self.aggregation_rule {
            obj["aggregationRule"] = rule;
        }
        obj
    }
}

impl BindingData {
    fn object(self) -> Value {
        json!({"metadata": metadata(&self.name, self.namespace.as_deref(), serde_json::Map::new()),
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": self.role_ref.kind, "name": self.role_ref.name},
               "subjects": self.subjects})
    }
}

/// Kubernetes' default RBAC policy, read from `policy/kubernetes-1.33.yaml`.
fn embedded_policy() -> Policy {
    serde_saphyr::from_str(KUBERNETES).expect("the embedded default RBAC policy reads")
}

/// Kubernetes' default RBAC objects, as `(kind, object)`: roles before the bindings that
/// name them.
fn kubernetes_policy() -> Vec<(Kind, Value)> {
    let policy = embedded_policy();
    let roles = policy
        .cluster_roles
        .into_iter()
        .map(|r| (Kind::ClusterRole, r.object()));
    let namespaced = policy.roles.into_iter().map(|r| (Kind::Role, r.object()));
    let cluster_bindings = policy
        .cluster_role_bindings
        .into_iter()
        .map(|b| (Kind::ClusterRoleBinding, b.object()));
    let bindings = policy
        .role_bindings
        .into_iter()
        .map(|b| (Kind::RoleBinding, b.object()));
    roles
        .chain(namespaced)
        .chain(cluster_bindings)
        .chain(bindings)
        .collect()
}

/// The static rules the Node authorizer applies to a kubelet for what it does not
/// subdivide (its `NodeRules()`, which `system:node` records), and reading the
/// ClusterTrustBundles a kubelet projects into pods (kube adds it with the API).
pub fn node_rules() -> Vec<k8s_openapi::api::rbac::v1::PolicyRule> {
    let policy = embedded_policy();
    let role = policy
        .cluster_roles
        .into_iter()
        .find(|r| r.name == "system:node")
        .expect("the default policy has system:node");
    role.rules
        .into_iter()
        .chain([rule(
            &["certificates.k8s.io"],
            &["clustertrustbundles"],
            &["get", "list", "watch"],
        )])
        .map(|r| serde_json::from_value(r).expect("system:node's rules read as PolicyRules"))
        .collect()
}

/// Every default object, in creation order, as `(kind, object without apiVersion/kind)`:
/// the namespaces, Kubernetes' default RBAC policy, what kubeboot's controllers need, and
/// kubeadm's objects for TLS bootstrapping.
pub fn default_objects() -> Vec<(Kind, Value)> {
    let mut out: Vec<(Kind, Value)> = NAMESPACES
        .iter()
        .map(|ns| (Kind::Namespace, json!({"metadata": {"name": ns}})))
        .collect();
    out.extend(kubernetes_policy());
    out.extend(trust_bundle_discovery());
    out.extend(controller_roles());
    out.extend(kubeadm_objects());
    out
}

/// `system:cluster-trust-bundle-discovery`, which Kubernetes adds with the
/// ClusterTrustBundle feature: every service account may read the trust bundles (they are
/// public, and pods mount them).
fn trust_bundle_discovery() -> Vec<(Kind, Value)> {
    const NAME: &str = "system:cluster-trust-bundle-discovery";
    vec![
        cluster_role(
            NAME,
            vec![rule(
                &["certificates.k8s.io"],
                &["clustertrustbundles"],
                &["get", "list", "watch"],
            )],
        ),
        cluster_binding(NAME, NAME, vec![subject("Group", "system:serviceaccounts")]),
    ]
}

/// What kubeboot's controllers (which run as `system:kube-controller-manager`) hold beyond
/// Kubernetes' role of that name: what kube-controller-manager's certificate controller
/// holds, and the bootstrap signer's, the token cleaner's, nodelifecycle's,
/// clusterrole-aggregation's and the trust bundle publisher's permissions.
fn controller_roles() -> Vec<(Kind, Value)> {
    let certs = "certificates.k8s.io";
    let all_signers = [
        "kubernetes.io/legacy-unknown",
        "kubernetes.io/kube-apiserver-client",
        "kubernetes.io/kube-apiserver-client-kubelet",
        "kubernetes.io/kubelet-serving",
    ];
    let certificate_controller = vec![
        rule(
            &[certs],
            &["certificatesigningrequests"],
            &["delete", "get", "list", "watch"],
        ),
        rule(
            &[certs],
            &[
                "certificatesigningrequests/approval",
                "certificatesigningrequests/status",
            ],
            &["update"],
        ),
        named_rule(
            &[certs],
            &["signers"],
            &["kubernetes.io/kube-apiserver-client-kubelet"],
            &["approve"],
        ),
        named_rule(&[certs], &["signers"], &all_signers, &["sign"]),
        rule(
            &["authorization.k8s.io"],
            &["subjectaccessreviews"],
            &["create"],
        ),
        rule(
            &["", "events.k8s.io"],
            &["events"],
            &["create", "patch", "update"],
        ),
    ];
    let mut kubeboot = certificate_controller;
    kubeboot.extend([
        named_rule(
            &[certs],
            &["signers"],
            &["kubernetes.io/kubelet-serving"],
            &["approve"],
        ),
        rule(&[""], &["secrets"], &["get", "list", "watch", "delete"]),
        rule(
            &[""],
            &["configmaps"],
            &["get", "list", "watch", "create", "update", "patch"],
        ),
        // nodelifecycle reads nodes and their Leases, and marks the nodes it finds silent.
        rule(
            &[""],
            &["nodes"],
            &["get", "list", "watch", "update", "patch"],
        ),
        rule(&[""], &["nodes/status"], &["update", "patch"]),
        rule(
            &["coordination.k8s.io"],
            &["leases"],
            &["create", "get", "update", "list", "watch"],
        ),
        rule(&[""], &["namespaces"], &["get", "list", "watch"]),
        // The trust bundle publisher keeps one bundle per signer it runs.
        rule(
            &[certs],
            &["clustertrustbundles"],
            &["create", "get", "list", "watch", "update", "delete"],
        ),
        named_rule(
            &[certs],
            &["signers"],
            &[&all_signers[..], &["kubernetes.io/kube-apiserver-serving"]].concat(),
            &["attest"],
        ),
        // clusterrole-aggregation writes rules it does not hold itself.
        rule(
            &["rbac.authorization.k8s.io"],
            &["clusterroles"],
            &["escalate", "get", "list", "patch", "update", "watch"],
        ),
    ]);
    vec![
        cluster_role(KUBEBOOT_CONTROLLERS, kubeboot),
        cluster_binding(
            KUBEBOOT_CONTROLLERS,
            KUBEBOOT_CONTROLLERS,
            vec![subject("User", "system:kube-controller-manager")],
        ),
    ]
}

/// The role of what kubeboot's controllers need beyond kube-controller-manager's.
pub const KUBEBOOT_CONTROLLERS: &str = "kubeboot:controller-manager";

/// What kubeadm creates for TLS bootstrapping: tokens may create and auto-approve node
/// CSRs and read nodes, nodes may renew, anonymous may read cluster-info.
fn kubeadm_objects() -> Vec<(Kind, Value)> {
    let group = |g: &str| subject("Group", g);
    vec![
        cluster_role("kubeadm:get-nodes", vec![rule(&[""], &["nodes"], &["get"])]),
        cluster_binding(
            "kubeadm:kubelet-bootstrap",
            "system:node-bootstrapper",
            vec![group(DEFAULT_NODE_TOKEN_GROUP)],
        ),
        cluster_binding(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![group(DEFAULT_NODE_TOKEN_GROUP)],
        ),
        cluster_binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![group("system:nodes")],
        ),
        cluster_binding(
            "kubeadm:get-nodes",
            "kubeadm:get-nodes",
            vec![group(DEFAULT_NODE_TOKEN_GROUP)],
        ),
        cluster_binding(
            "kubeadm:cluster-admins",
            "cluster-admin",
            vec![group("kubeadm:cluster-admins")],
        ),
        (
            Kind::Role,
            json!({"metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
                   "rules": [named_rule(&[""], &["configmaps"], &["cluster-info"], &["get"])]}),
        ),
        (
            Kind::RoleBinding,
            json!({"metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
                   "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kubeadm:bootstrap-signer-clusterinfo"},
                   "subjects": [subject("User", "system:anonymous")]}),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_default_policy_is_complete() {
        let objects = kubernetes_policy();
        let count = |k: Kind| objects.iter().filter(|(kind, _)| *kind == k).count();
        assert_eq!(
            count(Kind::ClusterRole),
            31 + 35,
            "with the controllers' roles"
        );
        assert_eq!(count(Kind::ClusterRoleBinding), 12 + 35);
        assert_eq!(count(Kind::Role), 7);
        assert_eq!(count(Kind::RoleBinding), 7);
        for (_, obj) in &objects {
            let labels = &obj["metadata"]["labels"];
            assert_eq!(
                labels["kubernetes.io/bootstrapping"], "rbac-defaults",
                "{obj}"
            );
            for rule in obj["rules"].as_array().into_iter().flatten() {
                let parsed: Result<k8s_openapi::api::rbac::v1::PolicyRule, _> =
                    serde_json::from_value(rule.clone());
                assert!(parsed.is_ok(), "{rule}");
            }
        }
        let find = |kind: Kind, name: &str| {
            let found = objects
                .iter()
                .find(|(k, o)| *k == kind && o["metadata"]["name"] == name);
            found.map(|(_, o)| o.clone()).expect(name)
        };
        assert!(
            find(Kind::ClusterRole, "view")
                .get("aggregationRule")
                .is_some()
        );
        let edit = find(Kind::ClusterRole, "edit");
        assert_eq!(
            edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"],
            "true"
        );
        let proxier = find(Kind::ClusterRoleBinding, "system:node-proxier");
        assert_eq!(proxier["subjects"][0]["name"], "system:kube-proxy");
        assert_eq!(proxier["roleRef"]["kind"], "ClusterRole");
    }
}
