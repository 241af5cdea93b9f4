//! What RBAC's roles and bindings must be (`pkg/apis/rbac/validation`): each rule with
//! verbs and either resources of API groups or non-resource URLs (these only cluster-wide),
//! an aggregation rule with valid label selectors, a binding's roleRef to a Role or ClusterRole of
//! rbac.authorization.k8s.io that never changes, and subjects of known kinds with names.

use kubeboot_api::StatusCause;
use kubeboot_api::names::{path_segment_errors, subdomain_errors};
use serde_json::Value;

const GROUP: &str = "rbac.authorization.k8s.io";

/// The strings of a list field of `v`.
fn strings<'a>(v: &'a Value, field: &str) -> Vec<&'a str> {
    crate::object::str_list(v, &format!("/{field}"))
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or_default()
}

/// `ValidateRole`, `ValidateClusterRole`: every rule, and a ClusterRole's aggregation rule.
pub(super) fn role_causes(role: &Value, namespaced: bool) -> Vec<StatusCause> {
    let rules = role.get("rules").and_then(Value::as_array);
    let mut causes: Vec<StatusCause> = rules
        .into_iter()
        .flatten()
        .enumerate()
        .flat_map(|(i, rule)| policy_rule_causes(rule, namespaced, &format!("rules[{i}]")))
        .collect();
    if let Some(aggregation) = role.get("aggregationRule").filter(|a| !a.is_null()) {
        let selectors = aggregation
            .get("clusterRoleSelectors")
            .and_then(Value::as_array);
        if selectors.is_none_or(Vec::is_empty) {
            causes.push(StatusCause::required(
                "aggregationRule.clusterRoleSelectors",
                "at least one clusterRoleSelector required if aggregationRule is non-nil",
            ));
        }
        for (i, selector) in selectors.into_iter().flatten().enumerate() {
            let path = format!("aggregationRule.clusterRoleSelectors[{i}]");
            causes.extend(super::label_selector::causes(selector, &path));
        }
    }
    causes
}

/// `ValidatePolicyRule`.
fn policy_rule_causes(rule: &Value, namespaced: bool, path: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    if strings(rule, "verbs").is_empty() {
        causes.push(StatusCause::required(
            &format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = strings(rule, "nonResourceURLs");
    if !urls.is_empty() {
        let field = format!("{path}.nonResourceURLs");
        if namespaced {
            causes.push(StatusCause::invalid_strings(
                &field,
                &urls,
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if ["apiGroups", "resources", "resourceNames"]
            .iter()
            .any(|f| !strings(rule, f).is_empty())
        {
            causes.push(StatusCause::invalid_strings(
                &field,
                &urls,
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return causes;
    }
    if strings(rule, "apiGroups").is_empty() {
        causes.push(StatusCause::required(
            &format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if strings(rule, "resources").is_empty() {
        causes.push(StatusCause::required(
            &format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
    causes
}

/// `ValidateRoleBinding`, `ValidateClusterRoleBinding` and their updates: the roleRef, and
/// every subject.
pub(super) fn binding_causes(
    binding: &Value,
    old: Option<&Value>,
    namespaced: bool,
) -> Vec<StatusCause> {
    let empty = Value::Null;
    let role_ref = binding.get("roleRef").unwrap_or(&empty);
    let mut causes = Vec::new();
    if text(role_ref, "apiGroup") != GROUP {
        causes.push(StatusCause::not_supported(
            "roleRef.apiGroup",
            text(role_ref, "apiGroup"),
            &[GROUP],
        ));
    }
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&text(role_ref, "kind")) {
        causes.push(StatusCause::not_supported(
            "roleRef.kind",
            text(role_ref, "kind"),
            kinds,
        ));
    }
    let name = text(role_ref, "name");
    if name.is_empty() {
        causes.push(StatusCause::required("roleRef.name", ""));
    }
    for e in path_segment_errors(name) {
        causes.push(StatusCause::invalid("roleRef.name", name, e));
    }
    for (i, subject) in binding
        .get("subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        causes.extend(subject_causes(
            subject,
            namespaced,
            &format!("subjects[{i}]"),
        ));
    }
    if let Some(old) = old
        && old.get("roleRef") != binding.get("roleRef")
    {
        // Printed as Go's `%#v` prints the internal RoleRef, as kube-apiserver 1.33 does.
        let printed = format!(
            "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
            text(role_ref, "apiGroup"),
            text(role_ref, "kind"),
            name
        );
        causes.push(StatusCause::invalid_rendered(
            "roleRef",
            &printed,
            "cannot change roleRef",
        ));
    }
    causes
}

/// `ValidateRoleBindingSubject`.
fn subject_causes(subject: &Value, namespaced: bool, path: &str) -> Vec<StatusCause> {
    let field = |f: &str| format!("{path}.{f}");
    let (name, group) = (text(subject, "name"), text(subject, "apiGroup"));
    let mut causes = Vec::new();
    if name.is_empty() {
        causes.push(StatusCause::required(&field("name"), ""));
    }
    match text(subject, "kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for e in subdomain_errors(name) {
                    causes.push(StatusCause::invalid(&field("name"), name, &e));
                }
            }
            if !group.is_empty() {
                causes.push(StatusCause::not_supported(&field("apiGroup"), group, &[""]));
            }
            if !namespaced && text(subject, "namespace").is_empty() {
                causes.push(StatusCause::required(&field("namespace"), ""));
            }
        }
        "User" | "Group" if group != GROUP => {
            causes.push(StatusCause::not_supported(
                &field("apiGroup"),
                group,
                &[GROUP],
            ));
        }
        "User" | "Group" => {}
        kind => causes.push(StatusCause::not_supported(
            &field("kind"),
            kind,
            &["ServiceAccount", "User", "Group"],
        )),
    }
    causes
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::registry::messages;

    #[test]
    fn rules_name_verbs_and_what_they_apply_to() {
        let role = |rules: Value| json!({"rules": rules});
        let good = role(json!([{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]));
        assert!(role_causes(&good, true).is_empty());
        let urls = role(json!([{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]));
        assert!(role_causes(&urls, false).is_empty());
        assert_eq!(
            messages(role_causes(&urls, true)),
            [
                "rules[0].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs"
            ]
        );
        let bare = role(json!([{"verbs": []}]));
        assert_eq!(
            messages(role_causes(&bare, true)),
            [
                "rules[0].verbs: Required value: verbs must contain at least one value",
                "rules[0].apiGroups: Required value: resource rules must supply at least one api group",
                "rules[0].resources: Required value: resource rules must supply at least one resource",
            ]
        );
        let both =
            role(json!([{"verbs": ["get"], "nonResourceURLs": ["/x"], "resources": ["pods"]}]));
        assert_eq!(
            messages(role_causes(&both, false)),
            [
                "rules[0].nonResourceURLs: Invalid value: []string{\"/x\"}: rules cannot apply to both regular resources and non-resource URLs"
            ]
        );
        let aggregated = json!({"aggregationRule": {"clusterRoleSelectors": []}});
        assert_eq!(
            messages(role_causes(&aggregated, false)),
            [
                "aggregationRule.clusterRoleSelectors: Required value: at least one clusterRoleSelector required if aggregationRule is non-nil"
            ]
        );
    }

    #[test]
    fn bindings_refer_to_a_role_and_name_their_subjects() {
        let binding =
            |role_ref: Value, subjects: Value| json!({"roleRef": role_ref, "subjects": subjects});
        let role = json!({"apiGroup": GROUP, "kind": "Role", "name": "r"});
        let user = json!({"kind": "User", "apiGroup": GROUP, "name": "u"});
        let sa = json!({"kind": "ServiceAccount", "name": "s", "namespace": "n"});
        assert!(binding_causes(&binding(role.clone(), json!([user, sa])), None, true).is_empty());
        assert_eq!(
            messages(binding_causes(
                &binding(role.clone(), json!([])),
                None,
                false
            )),
            ["roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\""]
        );
        let bad_ref = json!({"apiGroup": "", "kind": "Bogus", "name": "a/b"});
        assert_eq!(
            messages(binding_causes(&binding(bad_ref, json!([])), None, true)),
            [
                "roleRef.apiGroup: Unsupported value: \"\": supported values: \"rbac.authorization.k8s.io\"",
                "roleRef.kind: Unsupported value: \"Bogus\": supported values: \"Role\", \"ClusterRole\"",
                "roleRef.name: Invalid value: \"a/b\": may not contain '/'",
            ]
        );
        let subjects = json!([
            {"kind": "User", "name": ""},
            {"kind": "Bogus", "name": "x"},
            {"kind": "ServiceAccount", "name": "Bad_Name", "apiGroup": GROUP},
        ]);
        let cluster_role = json!({"apiGroup": GROUP, "kind": "ClusterRole", "name": "c"});
        let got = messages(binding_causes(
            &binding(cluster_role, subjects),
            None,
            false,
        ));
        assert_eq!(got[0], "subjects[0].name: Required value");
        assert_eq!(
            got[1],
            "subjects[0].apiGroup: Unsupported value: \"\": supported values: \"rbac.authorization.k8s.io\""
        );
        assert_eq!(
            got[2],
            "subjects[1].kind: Unsupported value: \"Bogus\": supported values: \"ServiceAccount\", \"User\", \"Group\""
        );
        assert!(
            got[3].starts_with(
                "subjects[2].name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain"
            ),
            "{got:?}"
        );
        assert_eq!(
            got[4],
            "subjects[2].apiGroup: Unsupported value: \"rbac.authorization.k8s.io\": supported values: \"\""
        );
        assert_eq!(got[5], "subjects[2].namespace: Required value");
        let moved = binding(
            json!({"apiGroup": GROUP, "kind": "Role", "name": "other"}),
            json!([]),
        );
        assert_eq!(
            messages(binding_causes(
                &moved,
                Some(&binding(role, json!([]))),
                true
            )),
            [
                "roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef"
            ]
        );
    }
}
