//! What a label selector in an object must be (apimachinery's `ValidateLabelSelector`, and
//! the refusal of one `LabelSelectorAsSelector` cannot read), and what labels must be
//! (`ValidateLabels`): keys qualified names, values label values, operators one of four,
//! values exactly where the operator takes them; each cause in kube-apiserver's words.

use kubeboot_api::StatusCause;
use kubeboot_api::names::{label_value_errors, qualified_name_errors};
use serde_json::{Map, Value};

/// One `Invalid value` cause for each error found in `value`.
pub(super) fn invalid(field: &str, value: &str, errors: Vec<String>) -> Vec<StatusCause> {
    errors
        .into_iter()
        .map(|e| StatusCause::invalid(field, value, &e))
        .collect()
}

/// `ValidateLabels`: each key a qualified name and each value a label value, every cause
/// naming `field` itself.
pub(super) fn labels_causes(labels: &Map<String, Value>, field: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    for (key, value) in labels {
        causes.extend(invalid(field, key, qualified_name_errors(key)));
        let value = value.as_str().unwrap_or_default();
        causes.extend(invalid(field, value, label_value_errors(value)));
    }
    causes
}

/// Everything wrong with the label selector at `path`; a selector with any fault is also
/// one `LabelSelectorAsSelector` refuses, which kube-apiserver reports once more.
pub(super) fn causes(selector: &Value, path: &str) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        causes.extend(labels_causes(labels, &format!("{path}.matchLabels")));
    }
    let expressions = selector.get("matchExpressions").and_then(Value::as_array);
    for (i, expression) in expressions.into_iter().flatten().enumerate() {
        let at = format!("{path}.matchExpressions[{i}]");
        causes.extend(requirement_causes(expression, &at));
    }
    if !causes.is_empty() {
        causes.push(StatusCause::invalid(
            path,
            "null",
            "invalid label selector.",
        ));
    }
    causes
}

/// `ValidateLabelSelectorRequirement`.
fn requirement_causes(requirement: &Value, path: &str) -> Vec<StatusCause> {
    let text = |f: &str| {
        requirement
            .get(f)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let values = crate::object::str_list(requirement, "/values");
    let mut causes = Vec::new();
    match text("operator") {
        "In" | "NotIn" if values.is_empty() => causes.push(StatusCause::required(
            &format!("{path}.values"),
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => causes.push(StatusCause::forbidden(
            &format!("{path}.values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
        other => causes.push(StatusCause::invalid(
            &format!("{path}.operator"),
            other,
            "not a valid selector operator",
        )),
    }
    let key = text("key");
    causes.extend(invalid(
        &format!("{path}.key"),
        key,
        qualified_name_errors(key),
    ));
    for (i, value) in values.iter().enumerate() {
        let field = format!("{path}.values[{i}]");
        causes.extend(invalid(&field, value, label_value_errors(value)));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::messages;
    use serde_json::json;

    #[test]
    fn selectors_are_held_to_apimachinery_rules() {
        let at = "aggregationRule.clusterRoleSelectors[0]";
        let ok = [
            json!({}),
            json!({"matchLabels": {"rbac.example.com/aggregate-to-edit": "true"}}),
            json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["x"]},
                                        {"key": "b", "operator": "DoesNotExist"}]}),
        ];
        for selector in ok {
            assert!(causes(&selector, at).is_empty(), "{selector}");
        }
        let bad = json!({
            "matchLabels": {"bad key": "v"},
            "matchExpressions": [
                {"key": "a", "operator": "Bogus"},
                {"key": "a", "operator": "In"},
                {"key": "a", "operator": "Exists", "values": ["x"]},
                {"key": "a", "operator": "In", "values": ["bad value!"]},
            ],
        });
        let got = messages(causes(&bad, at));
        let want = [
            "aggregationRule.clusterRoleSelectors[0].matchLabels: Invalid value: \"bad key\": name part must consist",
            "aggregationRule.clusterRoleSelectors[0].matchExpressions[0].operator: Invalid value: \"Bogus\": not a valid selector operator",
            "aggregationRule.clusterRoleSelectors[0].matchExpressions[1].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
            "aggregationRule.clusterRoleSelectors[0].matchExpressions[2].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            "aggregationRule.clusterRoleSelectors[0].matchExpressions[3].values[0]: Invalid value: \"bad value!\": a valid label must be",
            "aggregationRule.clusterRoleSelectors[0]: Invalid value: \"null\": invalid label selector.",
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for (got, want) in got.iter().zip(want) {
            assert!(
                got.starts_with(want),
                "{got}\n  does not start with\n{want}"
            );
        }
    }
}
