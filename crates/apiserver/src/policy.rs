//! What a new cluster starts with: the default namespaces, Kubernetes' default RBAC roles
//! and bindings that TLS bootstrapping relies on, and the objects kubeadm adds for it.
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

fn urls(urls: &[&str], verbs: &[&str]) -> Value {
    json!({"nonResourceURLs": urls, "verbs": verbs})
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

/// Every default object, in creation order, as `(kind, object without apiVersion/kind)`.
pub fn default_objects() -> Vec<(Kind, Value)> {
    let mut out: Vec<(Kind, Value)> = NAMESPACES
        .iter()
        .map(|ns| (Kind::Namespace, json!({"metadata": {"name": ns}})))
        .collect();
    let certs = "certificates.k8s.io";
    out.extend([
        cluster_role(
            "cluster-admin",
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        cluster_role(
            "system:discovery",
            vec![urls(
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
                &["get"],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            vec![urls(
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
                &["get"],
            )],
        ),
        cluster_role(
            "system:basic-user",
            vec![
                rule(
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                    &["create"],
                ),
                rule(
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                    &["create"],
                ),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            vec![rule(
                &[certs],
                &["certificatesigningrequests"],
                &["create", "get", "list", "watch"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![rule(
                &[certs],
                &["certificatesigningrequests/nodeclient"],
                &["create"],
            )],
        ),
        cluster_role(
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![rule(
                &[certs],
                &["certificatesigningrequests/selfnodeclient"],
                &["create"],
            )],
        ),
        cluster_role(
            "system:node",
            vec![
                rule(&["authentication.k8s.io"], &["tokenreviews"], &["create"]),
                rule(
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews", "localsubjectaccessreviews"],
                    &["create"],
                ),
                rule(
                    &[""],
                    &["nodes"],
                    &["create", "get", "list", "watch", "update", "patch"],
                ),
                rule(&[""], &["nodes/status"], &["patch", "update"]),
                rule(&[""], &["events"], &["create", "patch", "update"]),
                rule(&[""], &["secrets", "configmaps"], &["get", "list", "watch"]),
                rule(
                    &[certs],
                    &["certificatesigningrequests"],
                    &["create", "get", "list", "watch"],
                ),
                rule(
                    &["coordination.k8s.io"],
                    &["leases"],
                    &["create", "delete", "get", "patch", "update"],
                ),
            ],
        ),
    ]);
    for signer in [
        "legacy-unknown",
        "kubelet-serving",
        "kube-apiserver-client",
        "kube-apiserver-client-kubelet",
    ] {
        out.push(cluster_role(
            &format!("system:certificates.k8s.io:{signer}-approver"),
            vec![named_rule(
                &[certs],
                &["signers"],
                &[&format!("kubernetes.io/{signer}")],
                &["approve"],
            )],
        ));
    }
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
    // kubeboot's controllers run as system:kube-controller-manager: it holds what the
    // certificate controllers, the bootstrap signer, the token cleaner and leader election need.
    let mut kcm = certificate_controller.clone();
    kcm.extend([
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
    ]);
    out.push(cluster_role(
        "system:controller:certificate-controller",
        certificate_controller,
    ));
    out.push(cluster_role("system:kube-controller-manager", kcm));
    out.push(cluster_role(
        "kubeadm:get-nodes",
        vec![rule(&[""], &["nodes"], &["get"])],
    ));
    let group = |g: &str| subject("Group", g);
    out.extend([
        cluster_binding(
            "cluster-admin",
            "cluster-admin",
            vec![group("system:masters")],
        ),
        cluster_binding(
            "system:basic-user",
            "system:basic-user",
            vec![group("system:authenticated")],
        ),
        cluster_binding(
            "system:discovery",
            "system:discovery",
            vec![group("system:authenticated")],
        ),
        cluster_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            vec![
                group("system:authenticated"),
                group("system:unauthenticated"),
            ],
        ),
        cluster_binding("system:node", "system:node", vec![]),
        cluster_binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            vec![subject("User", "system:kube-controller-manager")],
        ),
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
    ]);
    out.push((
        Kind::Role,
        json!({"metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
               "rules": [named_rule(&[""], &["configmaps"], &["cluster-info"], &["get"])]}),
    ));
    out.push((
        Kind::RoleBinding,
        json!({"metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "kubeadm:bootstrap-signer-clusterinfo"},
               "subjects": [subject("User", "system:anonymous")]}),
    ));
    out
}
