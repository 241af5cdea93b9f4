//! The create-only reviews: SelfSubjectReview (who am I), SelfSubjectAccessReview and
//! SubjectAccessReview (may I / may they), SelfSubjectRulesReview (what may I do).

use http::StatusCode;
use kubeboot_api::{Status, StatusCause};
use serde_json::{Value, json};

use super::{Handlers, Res};
use crate::authn::UserInfo;
use crate::authz::{Attributes, Decision};
use crate::object::{meta_mut, set_type};
use crate::registry;
use crate::response;

impl Handlers {
    /// Answers a review.
    pub fn review(&self, review: &registry::ReviewDef, user: &UserInfo, mut obj: Value) -> Res {
        let api_version = format!("{}/{}", review.group, review.version);
        let status = match review.plural {
            "selfsubjectreviews" => {
                let mut ui = json!({"username": user.name, "groups": user.groups});
                if !user.uid.is_empty() {
                    ui["uid"] = json!(user.uid);
                }
                if !user.extra.is_empty() {
                    ui["extra"] = json!(user.extra);
                }
                json!({"userInfo": ui})
            }
            "selfsubjectrulesreviews" => {
                let namespace = obj.pointer("/spec/namespace").and_then(Value::as_str);
                let Some(namespace) = namespace.filter(|n| !n.is_empty()) else {
                    return Err(Status::bad_request("no namespace on request"));
                };
                let status = self.authz.rules_for(user, namespace).status();
                // kube-apiserver answers with the status alone.
                obj["spec"] = json!({});
                status
            }
            plural => {
                let subject = if plural == "subjectaccessreviews" {
                    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
                    let mut groups: Vec<String> = spec
                        .get("groups")
                        .and_then(|g| serde_json::from_value(g.clone()).ok())
                        .unwrap_or_default();
                    if !groups.is_empty()
                        && !groups
                            .iter()
                            .any(|g| g == "system:authenticated" || g == "system:unauthenticated")
                    {
                        groups.push("system:authenticated".into());
                    }
                    UserInfo {
                        name: spec
                            .get("user")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        uid: spec
                            .get("uid")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        groups,
                        extra: spec
                            .get("extra")
                            .and_then(|e| serde_json::from_value(e.clone()).ok())
                            .unwrap_or_default(),
                    }
                } else {
                    user.clone()
                };
                let a = review_attributes(obj.get("spec").unwrap_or(&Value::Null));
                let Some(a) = a else {
                    return Err(Status::invalid(
                        review.kind,
                        review.group,
                        "",
                        vec![StatusCause::required(
                            "spec.resourceAttributes",
                            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                        )],
                    ));
                };
                match self.authz.authorize(&subject, &a) {
                    Decision::Allowed { reason } if reason.is_empty() => json!({"allowed": true}),
                    Decision::Allowed { reason } => json!({"allowed": true, "reason": reason}),
                    Decision::Denied { reason } if reason.is_empty() => json!({"allowed": false}),
                    Decision::Denied { reason } => json!({"allowed": false, "reason": reason}),
                }
            }
        };
        obj["status"] = status;
        set_type(&mut obj, &api_version, review.kind);
        meta_mut(&mut obj).insert("creationTimestamp".into(), Value::Null);
        Ok(response::json(StatusCode::CREATED, &obj))
    }
}

fn review_attributes(spec: &Value) -> Option<Attributes> {
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if let Some(r) = spec.get("resourceAttributes") {
        return Some(Attributes {
            is_resource: true,
            verb: s(r, "verb"),
            group: s(r, "group"),
            namespace: s(r, "namespace"),
            resource: s(r, "resource"),
            subresource: s(r, "subresource"),
            name: s(r, "name"),
            path: String::new(),
            // `fieldSelector.rawSelector`, as a request's own `fieldSelector` reads.
            field_selector: r
                .pointer("/fieldSelector/rawSelector")
                .and_then(Value::as_str)
                .and_then(|raw| crate::selectors::field_terms(raw).ok())
                .unwrap_or_default(),
        });
    }
    spec.get("nonResourceAttributes").map(|n| Attributes {
        is_resource: false,
        verb: s(n, "verb"),
        path: s(n, "path"),
        ..Default::default()
    })
}
