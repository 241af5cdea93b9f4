//! Label selectors, as Kubernetes' `labels.Selector`: parsed from a request's
//! `labelSelector` string (`a=b,c!=d,e in (f,g),!h,i`) or read from a `metav1.LabelSelector`
//! object (an aggregation rule's), and matched against an object's labels.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Status;

/// One label requirement.
#[derive(Clone, Debug, PartialEq, Eq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector(Vec<LabelReq>);

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),!h,i`.
    pub fn parse(s: &str) -> Result<Self, Status> {
        let bad = |why: &str| {
            Status::bad_request(format!(
                "unable to parse requirement: {why} in label selector {s:?}"
            ))
        };
        let mut reqs = Vec::new();
        for term in split_terms(s) {
            let term = term.trim();
            if term.is_empty() {
                continue;
            }
            let req = if let Some(k) = term.strip_prefix('!') {
                LabelReq::NotExists(k.trim().to_owned())
            } else if let Some((k, v)) = term.split_once("!=") {
                LabelReq::NotEq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                LabelReq::Eq(k.trim().to_owned(), v.trim().to_owned())
            } else if let Some((k, set)) = split_set(term, " notin ") {
                LabelReq::NotIn(k, set)
            } else if let Some((k, set)) = split_set(term, " in ") {
                LabelReq::In(k, set)
            } else if term.contains(['(', ')', ' ']) {
                return Err(bad("unrecognised operator"));
            } else {
                LabelReq::Exists(term.to_owned())
            };
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            LabelReq::Eq(k, v) => labels.get(k) == Some(v),
            LabelReq::NotEq(k, v) => labels.get(k) != Some(v),
            LabelReq::In(k, set) => labels.get(k).is_some_and(|v| set.contains(v)),
            LabelReq::NotIn(k, set) => labels.get(k).is_none_or(|v| !set.contains(v)),
            LabelReq::Exists(k) => labels.contains_key(k),
            LabelReq::NotExists(k) => !labels.contains_key(k),
        })
    }

    /// A `metav1.LabelSelector` object: every `matchLabels` pair, and every
    /// `matchExpressions` requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`), as
    /// `LabelSelectorAsSelector` reads it; `None` when it does not read (an unknown
    /// operator), which selects nothing. An empty object selects everything.
    pub fn from_object(selector: &Value) -> Option<Self> {
        let mut reqs = Vec::new();
        for (k, v) in selector
            .get("matchLabels")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            reqs.push(LabelReq::Eq(k.clone(), v.as_str()?.to_owned()));
        }
        for e in selector
            .get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = e["key"].as_str().unwrap_or_default().to_owned();
            let values: Vec<String> = e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            reqs.push(match e["operator"].as_str()? {
                "In" => LabelReq::In(key, values),
                "NotIn" => LabelReq::NotIn(key, values),
                "Exists" => LabelReq::Exists(key),
                "DoesNotExist" => LabelReq::NotExists(key),
                _ => return None,
            });
        }
        Some(Self(reqs))
    }

    /// True when it selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Splits on commas that are not inside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn split_set(term: &str, op: &str) -> Option<(String, Vec<String>)> {
    let (k, set) = term.split_once(op)?;
    let set = set.trim().strip_prefix('(')?.strip_suffix(')')?;
    Some((
        k.trim().to_owned(),
        set.split(',').map(|v| v.trim().to_owned()).collect(),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_match_like_kubernetes() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        for (sel, want) in [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("tier", true),
            ("!tier", false),
            ("!missing", true),
            ("app=web,tier=back", false),
            ("missing notin (x)", true),
        ] {
            assert_eq!(
                LabelSelector::parse(sel).unwrap().matches(&l),
                want,
                "{sel}"
            );
        }
        assert!(LabelSelector::parse("app in web)").is_err());
    }

    #[test]
    fn label_selector_objects_match_like_kubernetes() {
        let l = labels(&[("a", "1")]);
        let expr = |op: &str, values: Value| json!({"matchExpressions": [{"key": "a", "operator": op, "values": values}]});
        let matches = |sel: &Value| LabelSelector::from_object(sel).is_some_and(|s| s.matches(&l));
        assert!(matches(&json!({})));
        assert!(matches(&json!({"matchLabels": {"a": "1"}})));
        assert!(!matches(&json!({"matchLabels": {"a": "2"}})));
        assert!(matches(&expr("In", json!(["1", "3"]))));
        assert!(!matches(&expr("NotIn", json!(["1"]))));
        assert!(matches(&expr("Exists", json!([]))));
        assert!(!matches(&expr("DoesNotExist", json!([]))));
        assert!(LabelSelector::from_object(&expr("Bogus", json!([]))).is_none());
    }
}
