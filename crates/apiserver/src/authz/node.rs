//! The Node authorizer (kube-apiserver's `node_authorizer.go`): what a kubelet, the user
//! `system:node:<name>` in `system:nodes`, may do. Kubernetes subdivides a few resources:
//! a node reads the Secrets, ConfigMaps, volumes and service account tokens a pod bound to
//! it refers to (its graph of pods; this server keeps none, so it has no opinion there and
//! says why), its own Node and Lease, and the pods a `spec.nodeName=<its name>` field
//! selector lists. Everything else is `system:node`'s static rules (services, events,
//! CSRs, token and access reviews…). Creating, deleting and evicting pods and writing their
//! status, which Kubernetes allows here and limits in its NodeRestriction admission, stay
//! refused: this server has no such admission for pods.

use std::sync::LazyLock;

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::{Attributes, rule_allows};
use crate::authn::UserInfo;

/// `system:node`'s rules, read once from the default policy.
static NODE_RULES: LazyLock<Vec<PolicyRule>> = LazyLock::new(crate::policy::node_rules);

/// The node a user is, if it is one (`system:node:<name>` in `system:nodes`).
pub fn node_name(user: &UserInfo) -> Option<&str> {
    let name = user.name.strip_prefix("system:node:")?;
    (user.in_group("system:nodes") && !name.is_empty()).then_some(name)
}

/// Allowed, or no opinion with the reason Kubernetes gives (empty where it gives none).
pub(super) fn authorize(user: &UserInfo, a: &Attributes) -> Result<(), String> {
    let Some(node) = node_name(user) else {
        return Err(String::new());
    };
    if a.is_resource {
        match (a.group.as_str(), a.resource.as_str()) {
            ("", "secrets" | "configmaps") => return read_related(node, a),
            ("", "persistentvolumeclaims") if a.subresource == "status" => {
                return update_related_status(node, a);
            }
            ("", "persistentvolumeclaims" | "persistentvolumes")
            | ("storage.k8s.io", "volumeattachments") => return get_related(node, a),
            ("", "serviceaccounts") => return create_related_token(node, a),
            ("coordination.k8s.io", "leases") => return lease(node, a),
            ("", "nodes") => return node_object(node, a),
            ("", "pods") => return pod(node, a),
            _ => {}
        }
    }
    match NODE_RULES.iter().any(|r| rule_allows(r, a)) {
        true => Ok(()),
        false => Err(String::new()),
    }
}

/// An object a node may reach only through a pod bound to it: none here.
fn related(node: &str, a: &Attributes) -> Result<(), String> {
    Err(match a.name.is_empty() {
        true => "No Object name found".to_owned(),
        false => format!("no relationship found between node '{node}' and this object"),
    })
}

/// `authorizeReadNamespacedObject`: Secrets and ConfigMaps.
fn read_related(node: &str, a: &Attributes) -> Result<(), String> {
    if !matches!(a.verb.as_str(), "get" | "list" | "watch") {
        return Err("can only read resources of this type".into());
    }
    if !a.subresource.is_empty() {
        return Err("cannot read subresource".into());
    }
    if a.namespace.is_empty() {
        return Err("can only read namespaced object of this type".into());
    }
    related(node, a)
}

/// `authorizeGet`: volumes and their attachments.
fn get_related(node: &str, a: &Attributes) -> Result<(), String> {
    if a.verb != "get" {
        return Err("can only get individual resources of this type".into());
    }
    if !a.subresource.is_empty() {
        return Err("cannot get subresource".into());
    }
    related(node, a)
}

/// `authorizeStatusUpdate`: a claim's status.
fn update_related_status(node: &str, a: &Attributes) -> Result<(), String> {
    if !matches!(a.verb.as_str(), "update" | "patch") {
        return Err("can only get/update/patch this type".into());
    }
    related(node, a)
}

/// `authorizeCreateToken`: a pod's service account token.
fn create_related_token(node: &str, a: &Attributes) -> Result<(), String> {
    if a.verb != "create" || a.name.is_empty() {
        return Err("can only create tokens for individual service accounts".into());
    }
    if a.subresource != "token" {
        return Err("can only create token subresource of serviceaccount".into());
    }
    related(node, a)
}

/// `authorizeLease`: its own Lease in `kube-node-lease` (a create's name is not known yet).
fn lease(node: &str, a: &Attributes) -> Result<(), String> {
    if !matches!(
        a.verb.as_str(),
        "get" | "create" | "update" | "patch" | "delete"
    ) {
        return Err("can only get, create, update, patch, or delete a node lease".into());
    }
    if a.namespace != "kube-node-lease" {
        return Err("can only access leases in the \"kube-node-lease\" system namespace".into());
    }
    if a.verb != "create" && a.name != node {
        return Err("can only access node lease with the same name as the requesting node".into());
    }
    Ok(())
}

/// `authorizeNode`: it reads only its own Node (by name, so before it exists too). Its
/// writes are its own Node's here, where Kubernetes allows any and NodeRestriction
/// refuses another node's.
fn node_object(node: &str, a: &Attributes) -> Result<(), String> {
    let own = a.name == node;
    match (a.subresource.as_str(), a.verb.as_str()) {
        ("", "create") => Ok(()),
        ("", "update" | "patch") | ("status", "update" | "patch") if own => Ok(()),
        ("", "get" | "list" | "watch") if own => Ok(()),
        ("", "get" | "list" | "watch") if a.name.is_empty() => Err(format!(
            "node '{node}' cannot read all nodes, only its own Node object"
        )),
        ("", "get" | "list" | "watch") => Err(format!(
            "node '{node}' cannot read '{}', only its own Node object",
            a.name
        )),
        _ => Err(String::new()),
    }
}

/// `authorizePod`: it lists and watches the pods bound to it, named by a field selector.
fn pod(node: &str, a: &Attributes) -> Result<(), String> {
    match (a.subresource.as_str(), a.verb.as_str()) {
        ("", "get") => related(node, a),
        ("", "list" | "watch") => {
            let bound_here = a
                .field_selector
                .iter()
                .any(|(field, value, equal)| *equal && field == "spec.nodeName" && value == node);
            match (bound_here, a.name.is_empty()) {
                (true, _) => Ok(()),
                (false, false) => related(node, a),
                (false, true) => {
                    Err("can only list/watch pods with spec.nodeName field selector".into())
                }
            }
        }
        _ => Err(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n1() -> UserInfo {
        UserInfo {
            name: "system:node:n1".into(),
            groups: vec!["system:nodes".into(), "system:authenticated".into()],
            ..Default::default()
        }
    }

    /// `group/resource/subresource`, split.
    fn asked(verb: &str, what: &str, ns: &str, name: &str, fields: &str) -> Attributes {
        let mut parts = what.split('/');
        let (group, resource) = (parts.next().unwrap(), parts.next().unwrap());
        let mut a =
            Attributes::resource(verb, group, resource, parts.next().unwrap_or(""), ns, name);
        a.field_selector = crate::selectors::field_terms(fields).unwrap();
        a
    }

    #[test]
    fn a_node_is_held_to_kubernetes_node_authorizer() {
        let related = "no relationship found between node 'n1' and this object";
        // (verb, group/resource[/subresource], namespace, name, field selector, reason if refused)
        type Case<'a> = (&'a str, &'a str, &'a str, &'a str, &'a str, Option<&'a str>);
        let cases: &[Case] = &[
            ("get", "/nodes", "", "n1", "", None),
            ("watch", "/nodes", "", "n1", "", None),
            ("create", "/nodes", "", "", "", None),
            ("patch", "/nodes/status", "", "n1", "", None),
            (
                "get",
                "/nodes",
                "",
                "n2",
                "",
                Some("node 'n1' cannot read 'n2', only its own Node object"),
            ),
            (
                "list",
                "/nodes",
                "",
                "",
                "",
                Some("node 'n1' cannot read all nodes, only its own Node object"),
            ),
            ("update", "/nodes", "", "n2", "", Some("")),
            ("delete", "/nodes", "", "n1", "", Some("")),
            (
                "update",
                "coordination.k8s.io/leases",
                "kube-node-lease",
                "n1",
                "",
                None,
            ),
            (
                "create",
                "coordination.k8s.io/leases",
                "kube-node-lease",
                "",
                "",
                None,
            ),
            (
                "update",
                "coordination.k8s.io/leases",
                "kube-node-lease",
                "n2",
                "",
                Some("can only access node lease with the same name as the requesting node"),
            ),
            (
                "list",
                "coordination.k8s.io/leases",
                "kube-node-lease",
                "",
                "",
                Some("can only get, create, update, patch, or delete a node lease"),
            ),
            (
                "get",
                "coordination.k8s.io/leases",
                "default",
                "n1",
                "",
                Some("can only access leases in the \"kube-node-lease\" system namespace"),
            ),
            // The kubelet's own pods, and what else it reads and writes by the static rules.
            ("watch", "/pods", "", "", "spec.nodeName=n1", None),
            (
                "list",
                "/pods",
                "default",
                "",
                "spec.nodeName=n1,status.phase!=Failed",
                None,
            ),
            (
                "list",
                "/pods",
                "",
                "",
                "spec.nodeName=n2",
                Some("can only list/watch pods with spec.nodeName field selector"),
            ),
            (
                "list",
                "/pods",
                "",
                "",
                "spec.nodeName!=n1",
                Some("can only list/watch pods with spec.nodeName field selector"),
            ),
            ("watch", "/pods", "default", "web", "", Some(related)),
            ("get", "/pods", "default", "web", "", Some(related)),
            ("create", "/pods", "default", "", "", Some("")),
            ("list", "/services", "", "", "", None),
            ("create", "/events", "default", "", "", None),
            ("patch", "/events", "default", "e1", "", None),
            ("delete", "/events", "default", "e1", "", Some("")),
            (
                "create",
                "authentication.k8s.io/tokenreviews",
                "",
                "",
                "",
                None,
            ),
            (
                "create",
                "authorization.k8s.io/subjectaccessreviews",
                "",
                "",
                "",
                None,
            ),
            (
                "create",
                "certificates.k8s.io/certificatesigningrequests",
                "",
                "",
                "",
                None,
            ),
            (
                "watch",
                "certificates.k8s.io/clustertrustbundles",
                "",
                "",
                "",
                None,
            ),
            (
                "create",
                "certificates.k8s.io/clustertrustbundles",
                "",
                "",
                "",
                Some(""),
            ),
            ("get", "/endpoints", "default", "kubernetes", "", None),
            // Objects a pod bound to it refers to: none here.
            ("get", "/secrets", "default", "s", "", Some(related)),
            (
                "list",
                "/configmaps",
                "default",
                "",
                "",
                Some("No Object name found"),
            ),
            (
                "create",
                "/secrets",
                "default",
                "",
                "",
                Some("can only read resources of this type"),
            ),
            (
                "get",
                "/secrets",
                "",
                "s",
                "",
                Some("can only read namespaced object of this type"),
            ),
            (
                "list",
                "/persistentvolumes",
                "",
                "",
                "",
                Some("can only get individual resources of this type"),
            ),
            (
                "get",
                "/persistentvolumeclaims/status",
                "default",
                "c",
                "",
                Some("can only get/update/patch this type"),
            ),
            (
                "create",
                "/serviceaccounts/token",
                "default",
                "",
                "",
                Some("can only create tokens for individual service accounts"),
            ),
            (
                "create",
                "/serviceaccounts",
                "default",
                "sa",
                "",
                Some("can only create token subresource of serviceaccount"),
            ),
        ];
        for (verb, what, ns, name, fields, refused) in cases {
            let decided = authorize(&n1(), &asked(verb, what, ns, name, fields));
            assert_eq!(
                decided.err().as_deref(),
                *refused,
                "{verb} {what} {ns}/{name} {fields}"
            );
        }
    }

    #[test]
    fn only_a_node_in_system_nodes_is_a_node() {
        let not_node = UserInfo {
            name: "system:node:n1".into(),
            ..Default::default()
        };
        let a = asked("get", "/nodes", "", "n1", "");
        assert_eq!(authorize(&not_node, &a), Err(String::new()));
        assert_eq!(node_name(&n1()), Some("n1"));
    }
}
