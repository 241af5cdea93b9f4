//! What a user may do, listed: kube-apiserver's `RulesFor`, which answers a
//! SelfSubjectRulesReview (`kubectl auth can-i --list`). Each mode lists what it can:
//! RBAC the rules of every binding that names the user (cluster-wide, then in the
//! namespace), AlwaysAllow everything, and the Node authorizer nothing for a node, saying
//! the list is incomplete.

use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::{Value, json};

use super::{Authorizer, Mode, Wording, node_name};
use crate::authn::UserInfo;

/// The rules found for a user in a namespace.
#[derive(Debug, Default)]
pub struct Rules {
    /// Every rule that names resources, in the order the bindings give them.
    pub resource: Vec<PolicyRule>,
    /// Every rule that names non-resource URLs.
    pub non_resource: Vec<PolicyRule>,
    /// Whether some mode could not list what it allows.
    pub incomplete: bool,
    /// What went wrong on the way (a binding to a role that does not exist).
    pub errors: Vec<String>,
}

impl Authorizer {
    /// What `user` may do in `namespace`, from every mode in order.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> Rules {
        let mut out = Rules::default();
        for mode in &self.modes {
            match mode {
                Mode::Rbac => {
                    let snap = self
                        .rbac
                        .read()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .clone();
                    for grant in snap.grants(user, namespace) {
                        match grant.rules {
                            Ok(rules) => rules.iter().cloned().for_each(|r| out.add(r)),
                            Err(e) => out.errors.push(e.words(Wording::Lister)),
                        }
                    }
                }
                Mode::Node if node_name(user).is_some() => {
                    out.incomplete = true;
                    out.errors
                        .push("node authorizer does not support user rule resolution".into());
                }
                Mode::Node => {}
                Mode::AlwaysAllow => {
                    out.add(PolicyRule {
                        verbs: vec!["*".into()],
                        api_groups: Some(vec!["*".into()]),
                        resources: Some(vec!["*".into()]),
                        ..Default::default()
                    });
                    out.add(PolicyRule {
                        verbs: vec!["*".into()],
                        non_resource_urls: Some(vec!["*".into()]),
                        ..Default::default()
                    });
                }
            }
        }
        out
    }
}

impl Authorizer {
    /// The rules RBAC grants `user` in `namespace` (cluster-wide ones included), and the
    /// errors met finding them: what RBAC escalation prevention holds a write of a role or
    /// binding against (kube-apiserver's RBAC rule resolver; the other modes play no part).
    pub fn rbac_rules_for(
        &self,
        user: &UserInfo,
        namespace: &str,
    ) -> (Vec<PolicyRule>, Vec<String>) {
        let snap = self
            .rbac
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let (mut rules, mut errors) = (Vec::new(), Vec::new());
        for grant in snap.grants(user, namespace) {
            match grant.rules {
                Ok(granted) => rules.extend_from_slice(granted),
                // The escalation check reads roles through their storage.
                Err(e) => errors.push(e.words(Wording::Storage)),
            }
        }
        (rules, errors)
    }
}

impl Rules {
    /// Files a rule under what it names (a rule may name both resources and URLs).
    fn add(&mut self, rule: PolicyRule) {
        let names = |l: &Option<Vec<String>>| l.as_ref().is_some_and(|l| !l.is_empty());
        if names(&rule.non_resource_urls) {
            self.non_resource.push(PolicyRule {
                verbs: rule.verbs.clone(),
                non_resource_urls: rule.non_resource_urls.clone(),
                ..Default::default()
            });
        }
        if names(&rule.resources) {
            self.resource.push(PolicyRule {
                non_resource_urls: None,
                ..rule
            });
        }
    }

    /// The `status` of a SelfSubjectRulesReview, as kube-apiserver writes it (several
    /// errors as Go's aggregate error prints them).
    pub fn status(&self) -> Value {
        let list = |l: &Option<Vec<String>>| l.clone().filter(|l| !l.is_empty());
        let resource: Vec<Value> = self
            .resource
            .iter()
            .map(|r| {
                let mut v = json!({"verbs": r.verbs});
                for (field, l) in [
                    ("apiGroups", &r.api_groups),
                    ("resources", &r.resources),
                    ("resourceNames", &r.resource_names),
                ] {
                    if let Some(l) = list(l) {
                        v[field] = json!(l);
                    }
                }
                v
            })
            .collect();
        let non_resource: Vec<Value> = self
            .non_resource
            .iter()
            .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
            .collect();
        let mut status = json!({
            "resourceRules": resource,
            "nonResourceRules": non_resource,
            "incomplete": self.incomplete,
        });
        // Go's aggregate error prints each distinct message once.
        let mut errors: Vec<&String> = Vec::new();
        for e in &self.errors {
            if !errors.contains(&e) {
                errors.push(e);
            }
        }
        match errors.as_slice() {
            [] => {}
            [one] => status["evaluationError"] = json!(one),
            many => {
                let many: Vec<&str> = many.iter().map(|e| e.as_str()).collect();
                status["evaluationError"] = json!(format!("[{}]", many.join(", ")));
            }
        }
        status
    }
}

#[cfg(test)]
mod tests;
