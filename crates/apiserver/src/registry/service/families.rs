//! A Service's IP families on this single-stack cluster, as kube-apiserver's allocator and
//! validation hold them (`initIPFamilyFields`, `ValidateServiceClusterIPsRelatedFields`):
//! a policy and families Kubernetes knows, never two families under `SingleStack`, no
//! `RequireDualStack` and no family the cluster has (except for a headless Service without
//! a selector, which may list both), none on an `ExternalName` Service, and a first family
//! that never changes.

use kubeboot_api::StatusCause;
use serde_json::Value;

use super::service_type;
use crate::registry::columns::str_at;

/// What is wrong with the families of `svc` (`old`: as stored, on an update) on a cluster
/// of the one family `cluster` (`IPv4` or `IPv6`).
pub fn ip_family_causes(svc: &Value, old: Option<&Value>, cluster: &str) -> Vec<StatusCause> {
    let policy = svc.pointer("/spec/ipFamilyPolicy").and_then(Value::as_str);
    let families = families_of(svc);
    let mut causes = Vec::new();
    if service_type(svc) == "ExternalName" {
        if policy.is_some() {
            causes.push(StatusCause::forbidden(
                "spec.ipFamilyPolicy",
                "may not be set for ExternalName services",
            ));
        }
        if !families.is_empty() {
            causes.push(StatusCause::forbidden(
                "spec.ipFamilies",
                "may not be set for ExternalName services",
            ));
        }
        return causes;
    }
    if let Some(p) = policy.filter(|p| !POLICIES.contains(p)) {
        causes.push(StatusCause::not_supported(
            "spec.ipFamilyPolicy",
            p,
            &POLICIES,
        ));
    }
    for (i, f) in families.iter().enumerate() {
        let field = format!("spec.ipFamilies[{i}]");
        if !matches!(*f, "IPv4" | "IPv6") {
            causes.push(StatusCause::not_supported(&field, f, &["IPv4", "IPv6"]));
        } else if families[..i].contains(f) {
            causes.push(StatusCause::duplicate(&field, f));
        }
    }
    if families.len() > 1 && policy.unwrap_or("SingleStack") == "SingleStack" {
        causes.push(StatusCause::invalid(
            "spec.ipFamilyPolicy",
            "SingleStack",
            "must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified",
        ));
    }
    if !is_open_headless(svc) {
        if policy == Some("RequireDualStack") {
            causes.push(StatusCause::invalid(
                "spec.ipFamilyPolicy",
                "RequireDualStack",
                "this cluster is not configured for dual-stack services",
            ));
        }
        for (i, f) in families.iter().enumerate() {
            if matches!(*f, "IPv4" | "IPv6") && *f != cluster {
                causes.push(StatusCause::invalid(
                    &format!("spec.ipFamilies[{i}]"),
                    f,
                    "not configured on this cluster",
                ));
            }
        }
    }
    let first_before = old.and_then(|o| families_of(o).first().copied());
    if let (Some(before), Some(now)) = (first_before, families.first())
        && before != *now
    {
        causes.push(StatusCause::invalid(
            "spec.ipFamilies[0]",
            now,
            "may not change once set",
        ));
    }
    causes
}

/// The policies Kubernetes knows, as its messages list them.
const POLICIES: [&str; 3] = ["PreferDualStack", "RequireDualStack", "SingleStack"];

/// The families a Service names.
fn families_of(svc: &Value) -> Vec<&str> {
    let list = svc.pointer("/spec/ipFamilies").and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// A headless Service without a selector (its endpoints are anyone's, of any family).
pub(super) fn is_open_headless(svc: &Value) -> bool {
    let no_selector = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .is_none_or(serde_json::Map::is_empty);
    str_at(svc, &["spec", "clusterIP"]) == "None" && no_selector
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn said(spec: Value, old: Option<Value>) -> Vec<String> {
        let svc = json!({"spec": spec});
        let old = old.map(|o| json!({"spec": o}));
        ip_family_causes(&svc, old.as_ref(), "IPv4")
            .into_iter()
            .map(|c| c.summary())
            .collect()
    }

    #[test]
    fn families_are_held_to_a_single_stack_cluster() {
        let selector = json!({"app": "x"});
        // (spec, stored spec, what is said)
        let cases: Vec<(Value, Option<Value>, Vec<&str>)> = vec![
            (json!({}), None, vec![]),
            (json!({"ipFamilyPolicy": "PreferDualStack"}), None, vec![]),
            (
                json!({"ipFamilyPolicy": "RequireDualStack"}),
                None,
                vec![
                    r#"spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#,
                ],
            ),
            (
                json!({"ipFamilies": ["IPv6"]}),
                None,
                vec![
                    r#"spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster"#,
                ],
            ),
            (
                json!({"ipFamilies": ["IPv4", "IPv6"]}),
                None,
                vec![
                    r#"spec.ipFamilyPolicy: Invalid value: "SingleStack": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"#,
                    r#"spec.ipFamilies[1]: Invalid value: "IPv6": not configured on this cluster"#,
                ],
            ),
            (
                json!({"ipFamilyPolicy": "Foo", "ipFamilies": ["IPv5"]}),
                None,
                vec![
                    r#"spec.ipFamilyPolicy: Unsupported value: "Foo": supported values: "PreferDualStack", "RequireDualStack", "SingleStack""#,
                    r#"spec.ipFamilies[0]: Unsupported value: "IPv5": supported values: "IPv4", "IPv6""#,
                ],
            ),
            (
                json!({"clusterIP": "None", "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv4", "IPv6"]}),
                None,
                vec![],
            ),
            (
                json!({"clusterIP": "None", "selector": selector, "ipFamilyPolicy": "RequireDualStack"}),
                None,
                vec![
                    r#"spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#,
                ],
            ),
            (
                json!({"type": "ExternalName", "externalName": "a.example", "ipFamilyPolicy": "SingleStack"}),
                None,
                vec!["spec.ipFamilyPolicy: Forbidden: may not be set for ExternalName services"],
            ),
            (
                json!({"ipFamilies": ["IPv6"], "clusterIP": "None"}),
                Some(json!({"ipFamilies": ["IPv4"], "clusterIP": "None"})),
                vec![r#"spec.ipFamilies[0]: Invalid value: "IPv6": may not change once set"#],
            ),
        ];
        for (spec, old, want) in cases {
            assert_eq!(said(spec.clone(), old), want, "{spec}");
        }
    }
}
