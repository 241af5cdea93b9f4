//! RBAC escalation prevention's rules (`pkg/registry/rbac/validation`): the refusal that
//! lists what a user may not grant (`ConfirmNoEscalation`, the rules missing, as
//! `reconcile::uncovered` finds them, compacted and printed as `CompactString` prints
//! them), and what an aggregation rule needs.

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

use crate::authn::UserInfo;
pub(crate) use crate::reconcile::uncovered;

/// Whether a ClusterRole has an aggregation rule with selectors (`hasAggregationRule`).
pub(crate) fn has_aggregation_rule(role: Option<&Value>) -> bool {
    role.and_then(|r| r.pointer("/aggregationRule/clusterRoleSelectors"))
        .and_then(Value::as_array)
        .is_some_and(|s| !s.is_empty())
}

/// Everything (`fullAuthority`): what setting an aggregation rule requires.
pub(crate) fn full_authority() -> Vec<PolicyRule> {
    let all = || Some(vec!["*".to_owned()]);
    vec![
        PolicyRule {
            verbs: vec!["*".into()],
            api_groups: all(),
            resources: all(),
            ..Default::default()
        },
        PolicyRule {
            verbs: vec!["*".into()],
            non_resource_urls: all(),
            ..Default::default()
        },
    ]
}

/// Why a user may not grant `missing`, in kube-apiserver's words: the rules compacted and
/// sorted, one per line, then the errors met finding the user's own rules.
pub(crate) fn not_held_message(
    user: &UserInfo,
    missing: Vec<PolicyRule>,
    errors: &[String],
) -> String {
    let mut lines: Vec<String> = compact(missing).iter().map(compact_string).collect();
    lines.sort();
    lines.dedup();
    let mut msg = format!(
        "user {} (groups={}) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quote(&user.name),
        go_quoted_list(&user.groups),
        lines.join("\n")
    );
    // Go's `%v` of a list holding the resolver's aggregate error.
    match errors {
        [] => {}
        [one] => msg.push_str(&format!("; resolution errors: [{one}]")),
        many => msg.push_str(&format!("; resolution errors: [[{}]]", many.join(", "))),
    }
    msg
}

fn list(l: &Option<Vec<String>>) -> &[String] {
    l.as_deref().unwrap_or_default()
}

/// `CompactRules`: rules of one group and one resource (and at most one name), nothing
/// else, merged into one per group, resource and name, their verbs in order.
fn compact(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut out: Vec<PolicyRule> = Vec::new();
    let mut simple: Vec<PolicyRule> = Vec::new();
    for rule in rules {
        let is_simple = list(&rule.api_groups).len() == 1
            && list(&rule.resources).len() == 1
            && list(&rule.resource_names).len() <= 1
            && list(&rule.non_resource_urls).is_empty();
        if !is_simple {
            out.push(rule);
            continue;
        }
        let same = |r: &&mut PolicyRule| {
            r.api_groups == rule.api_groups
                && r.resources == rule.resources
                && list(&r.resource_names) == list(&rule.resource_names)
        };
        match simple.iter_mut().find(same) {
            Some(existing) => {
                for verb in rule.verbs {
                    if !existing.verbs.contains(&verb) {
                        existing.verbs.push(verb);
                    }
                }
            }
            None => simple.push(rule),
        }
    }
    out.extend(simple);
    out
}

/// `CompactString`: the lists a rule has, each as Go's `%q` prints a `[]string`.
fn compact_string(r: &PolicyRule) -> String {
    let parts: Vec<String> = [
        ("APIGroups", list(&r.api_groups)),
        ("Resources", list(&r.resources)),
        ("NonResourceURLs", list(&r.non_resource_urls)),
        ("ResourceNames", list(&r.resource_names)),
        ("Verbs", r.verbs.as_slice()),
    ]
    .into_iter()
    .filter(|(_, l)| !l.is_empty())
    .map(|(name, l)| format!("{name}:{}", go_quoted_list(l)))
    .collect();
    format!("{{{}}}", parts.join(", "))
}

/// A string as Go's `%q` prints it.
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// A `[]string` as Go's `%q` prints it: `["a" "b"]`.
fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(v: Value) -> Vec<PolicyRule> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn held_rules_cover_what_they_name_and_wildcards_more() {
        #[rustfmt::skip]
        let rows = [
            ("the same rule", json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]),
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]), true),
            ("a verb not held", json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
                json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "delete"]}]), false),
            ("* covers every verb, group and resource", json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
                json!([{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["patch"]}]), true),
            ("*/scale covers a scale subresource", json!([{"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["get"]}]),
                json!([{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["get"]}]), true),
            ("*/scale does not cover the resource", json!([{"apiGroups": ["apps"], "resources": ["*/scale"], "verbs": ["get"]}]),
                json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]), false),
            ("a named rule does not cover all names", json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a"], "verbs": ["get"]}]),
                json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]), false),
            ("a named rule covers its names", json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["a", "b"], "verbs": ["get"]}]),
                json!([{"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["b"], "verbs": ["get"]}]), true),
            ("a URL prefix covers the URLs under it", json!([{"nonResourceURLs": ["/logs*"], "verbs": ["get"]}]),
                json!([{"nonResourceURLs": ["/logs/x", "/logs"], "verbs": ["get"]}]), true),
            ("a resource rule does not cover a URL", json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
                json!([{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]), false),
            ("nothing granted is always covered", json!([]), json!([]), true),
        ];
        for (what, held, granted, covered) in rows {
            let missing = uncovered(&rules(held), &rules(granted));
            assert_eq!(missing.is_empty(), covered, "{what}: {missing:?}");
        }
    }

    #[test]
    fn the_refusal_lists_what_is_missing_compacted_as_kubernetes_prints_it() {
        let held =
            rules(json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]));
        let granted = rules(json!([
            {"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list"]},
            {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
        ]));
        let user = UserInfo {
            name: "bob".into(),
            groups: vec!["team".into(), "system:authenticated".into()],
            ..Default::default()
        };
        assert_eq!(
            not_held_message(&user, uncovered(&held, &granted), &[]),
            "user \"bob\" (groups=[\"team\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n\
             {APIGroups:[\"\"], Resources:[\"configmaps\"], Verbs:[\"list\"]}\n\
             {APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\" \"list\"]}\n\
             {NonResourceURLs:[\"/metrics\"], Verbs:[\"get\"]}"
        );
        let errors = ["clusterroles.rbac.authorization.k8s.io \"gone\" not found".to_owned()];
        assert!(
            not_held_message(&user, uncovered(&held, &granted), &errors).ends_with(
                "; resolution errors: [clusterroles.rbac.authorization.k8s.io \"gone\" not found]"
            )
        );
    }

    #[test]
    fn an_aggregation_rule_is_one_with_selectors() {
        assert!(has_aggregation_rule(Some(
            &json!({"aggregationRule": {"clusterRoleSelectors": [{}]}})
        )));
        assert!(!has_aggregation_rule(Some(
            &json!({"aggregationRule": {"clusterRoleSelectors": []}})
        )));
        assert!(!has_aggregation_rule(None));
        assert!(uncovered(&full_authority(), &full_authority()).is_empty());
    }
}
