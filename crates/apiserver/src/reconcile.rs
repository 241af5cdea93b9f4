//! kube-apiserver's reconciliation of the default RBAC policy at start: a default role that
//! exists gets the rules it lacks (as single-verb rules, kept beside the user's own) and
//! the default labels and annotations it lacks; a default binding gets the subjects it
//! lacks, and is made again if its role reference changed. An object annotated
//! `rbac.authorization.kubernetes.io/autoupdate: "false"` is left as the user made it.
//! Rules are compared as Kubernetes' `validation.Covers` compares them.

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::{Map, Value};

/// The annotation that protects a default object from reconciliation.
pub const AUTOUPDATE: &str = "rbac.authorization.kubernetes.io/autoupdate";

/// What reconciling an existing default object decides.
#[derive(Debug, PartialEq)]
pub enum Reconciled {
    /// It already has everything.
    Unchanged,
    /// The user protected it (and it lacks something).
    Protected,
    /// Write this instead.
    Update(Value),
    /// Its role reference differs: delete it and create this.
    Recreate(Value),
}

/// Reconciles an existing role (Role or ClusterRole) with its default.
pub fn role(existing: &Value, expected: &Value) -> Reconciled {
    let mut out = existing.clone();
    let mut changed = merge_metadata(&mut out, expected);
    let rules = |v: &Value| -> Option<Vec<PolicyRule>> {
        match v.get("rules") {
            None | Some(Value::Null) => Some(Vec::new()),
            Some(r) => serde_json::from_value(r.clone()).ok(),
        }
    };
    // Stored rules passed validation, so they read; were they not, nothing is added blindly.
    let (Some(have), Some(want)) = (rules(existing), rules(expected)) else {
        return Reconciled::Unchanged;
    };
    let missing: Vec<Value> = uncovered(&have, &want)
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .collect();
    if !missing.is_empty() {
        let list = out["rules"].as_array().cloned().unwrap_or_default();
        out["rules"] = Value::Array(list.into_iter().chain(missing).collect());
        changed = true;
    }
    changed |= reconcile_aggregation(&mut out, expected);
    decide(existing, out, changed, false)
}

/// An aggregated role gets the selectors of its default it lacks; a role whose default
/// aggregates nothing loses its aggregation. Whether anything changed.
fn reconcile_aggregation(out: &mut Value, expected: &Value) -> bool {
    let selectors = |v: &Value| -> Vec<Value> {
        let list = v.pointer("/aggregationRule/clusterRoleSelectors");
        list.and_then(Value::as_array).cloned().unwrap_or_default()
    };
    let Some(obj) = out.as_object_mut() else {
        return false;
    };
    if expected.get("aggregationRule").is_none_or(Value::is_null) {
        let had = obj.remove("aggregationRule");
        return had.is_some_and(|r| !r.is_null());
    }
    let mut have = selectors(&Value::Object(obj.clone()));
    let missing: Vec<Value> = selectors(expected)
        .into_iter()
        .filter(|s| !have.contains(s))
        .collect();
    if missing.is_empty() {
        return false;
    }
    have.extend(missing);
    obj.insert(
        "aggregationRule".into(),
        serde_json::json!({"clusterRoleSelectors": have}),
    );
    true
}

/// Reconciles an existing binding (RoleBinding or ClusterRoleBinding) with its default.
pub fn binding(existing: &Value, expected: &Value) -> Reconciled {
    if existing.get("roleRef") != expected.get("roleRef") {
        return decide(existing, expected.clone(), true, true);
    }
    let mut out = existing.clone();
    let mut changed = merge_metadata(&mut out, expected);
    let mut subjects = out["subjects"].as_array().cloned().unwrap_or_default();
    for s in expected["subjects"].as_array().into_iter().flatten() {
        if !subjects.iter().any(|have| same_subject(have, s)) {
            subjects.push(s.clone());
            changed = true;
        }
    }
    out["subjects"] = Value::Array(subjects);
    decide(existing, out, changed, false)
}

fn decide(existing: &Value, out: Value, changed: bool, recreate: bool) -> Reconciled {
    let protected = existing
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(AUTOUPDATE))
        == Some(&Value::String("false".into()));
    match (changed, protected, recreate) {
        (false, _, _) => Reconciled::Unchanged,
        (true, true, _) => Reconciled::Protected,
        (true, false, true) => Reconciled::Recreate(out),
        (true, false, false) => Reconciled::Update(out),
    }
}

/// Adds `from`'s labels and annotations that `into` lacks (its own values win); whether
/// any was added.
fn merge_metadata(into: &mut Value, from: &Value) -> bool {
    let mut changed = false;
    for field in ["labels", "annotations"] {
        let Some(theirs) = from
            .pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        let meta = into["metadata"].as_object_mut();
        let Some(meta) = meta else { continue };
        let ours = meta
            .entry(field)
            .or_insert_with(|| Value::Object(Map::new()));
        if !ours.is_object() {
            *ours = Value::Object(Map::new());
        }
        let ours = ours.as_object_mut().expect("made an object above");
        for (k, v) in theirs {
            if !ours.contains_key(k) {
                ours.insert(k.clone(), v.clone());
                changed = true;
            }
        }
    }
    changed
}

/// The same subject: kind, name, and namespace (when one is given).
fn same_subject(a: &Value, b: &Value) -> bool {
    let ns = |v: &Value| {
        v.get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    a.get("kind") == b.get("kind") && a.get("name") == b.get("name") && ns(a) == ns(b)
}

/// The parts of `servant`'s rules (one verb, group, resource and name each) that no rule of
/// `owner` covers: Kubernetes' `validation.Covers`.
pub fn uncovered(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<PolicyRule> {
    servant
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owner.iter().any(|o| covers(o, sub)))
        .collect()
}

/// A rule split into rules of one verb, group, resource and name (or URL): Kubernetes'
/// `BreakdownRule`.
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |s: &String| Some(vec![s.clone()]);
    let list = |l: &Option<Vec<String>>| l.clone().unwrap_or_default();
    let mut out = Vec::new();
    for group in &list(&rule.api_groups) {
        for resource in &list(&rule.resources) {
            for verb in &rule.verbs {
                let names = list(&rule.resource_names);
                let names: Vec<Option<Vec<String>>> = if names.is_empty() {
                    vec![None]
                } else {
                    names.iter().map(one).collect()
                };
                for resource_names in names {
                    out.push(PolicyRule {
                        api_groups: one(group),
                        resources: one(resource),
                        verbs: vec![verb.clone()],
                        resource_names,
                        ..Default::default()
                    });
                }
            }
        }
    }
    for url in &list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.clone()],
                ..Default::default()
            });
        }
    }
    out
}

/// Whether `owner` allows everything `sub` does: Kubernetes' `ruleCovers`.
fn covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let list = |l: &Option<Vec<String>>| l.clone().unwrap_or_default();
    let has_all = |set: &[String], want: &[String]| want.iter().all(|w| set.contains(w));
    let star_or_all =
        |set: &[String], want: &[String]| set.iter().any(|s| s == "*") || has_all(set, want);
    let (o_names, s_names) = (list(&owner.resource_names), list(&sub.resource_names));
    star_or_all(&owner.verbs, &sub.verbs)
        && star_or_all(&list(&owner.api_groups), &list(&sub.api_groups))
        && resources_cover(&list(&owner.resources), &list(&sub.resources))
        && (o_names.is_empty() || (!s_names.is_empty() && has_all(&o_names, &s_names)))
        && urls_cover(
            &list(&owner.non_resource_urls),
            &list(&sub.non_resource_urls),
        )
}

fn resources_cover(set: &[String], want: &[String]) -> bool {
    set.iter().any(|s| s == "*")
        || want.iter().all(|w| {
            set.contains(w)
                || w.split_once('/')
                    .is_some_and(|(_, sub)| set.iter().any(|s| *s == format!("*/{sub}")))
        })
}

fn urls_cover(set: &[String], want: &[String]) -> bool {
    want.iter().all(|w| {
        set.iter().any(|s| {
            s == "*"
                || s == w
                || s.strip_suffix('*')
                    .is_some_and(|prefix| w.starts_with(prefix))
        })
    })
}

#[cfg(test)]
mod tests;
