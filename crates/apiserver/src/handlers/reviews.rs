//! The create-only reviews: SelfSubjectReview (who am I), TokenReview (who is this token),
//! SelfSubjectAccessReview, SubjectAccessReview and LocalSubjectAccessReview (may I / may
//! they), SelfSubjectRulesReview (what may I do).

use http::{Response, StatusCode};
use kubeboot_api::{Status, StatusCause};
use serde_json::{Value, json};

use super::{Handlers, Res};
use crate::authn::UserInfo;
use crate::authz::{Attributes, Decision};
use crate::object::{meta_mut, set_type};
use crate::registry;
use crate::response::{self, Body};

/// The audience a token is for when a TokenReview names none, and the only one a bootstrap
/// token is good for (kube-apiserver's `--api-audiences`, which defaults to the service
/// account issuer kubeadm sets).
const API_AUDIENCE: &str = "https://kubernetes.default.svc.cluster.local";

impl Handlers {
    /// Answers a review asked in namespace `ns` (a LocalSubjectAccessReview's; else empty).
    pub fn review(
        &self,
        review: &registry::ReviewDef,
        ns: &str,
        user: &UserInfo,
        mut obj: Value,
    ) -> Res {
        let status = match review.plural {
            "selfsubjectreviews" => json!({"userInfo": user_info(user)}),
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
            _ => self.access_review(review, ns, user, &mut obj)?,
        };
        Ok(answered(review, obj, status))
    }

    /// A TokenReview: who its token is (`reviewed`, looked up by the token authenticators),
    /// for the audiences it asks (the API's when none).
    pub fn token_review(
        &self,
        review: &registry::ReviewDef,
        obj: Value,
        reviewed: Option<UserInfo>,
    ) -> Res {
        let token = obj.pointer("/spec/token").and_then(Value::as_str);
        if token.is_none_or(str::is_empty) {
            return Err(Status::bad_request(
                "token is required for TokenReview in authentication",
            ));
        }
        let asked: Vec<&str> = obj
            .pointer("/spec/audiences")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        // A bootstrap token knows no audience but the API's (`WrapAudienceAgnosticToken`).
        let audience_ok = asked.is_empty() || asked.contains(&API_AUDIENCE);
        let status = match reviewed.filter(|_| audience_ok) {
            Some(user) => {
                json!({"authenticated": true, "user": user_info(&user), "audiences": [API_AUDIENCE]})
            }
            None => json!({"user": {}}),
        };
        Ok(answered(review, obj, status))
    }

    /// A SelfSubjectAccessReview, SubjectAccessReview or LocalSubjectAccessReview: checked as
    /// kube-apiserver validates it, then decided by the authorizers.
    fn access_review(
        &self,
        review: &registry::ReviewDef,
        ns: &str,
        user: &UserInfo,
        obj: &mut Value,
    ) -> Result<Value, Status> {
        if review.namespaced {
            let sent_ns = obj.pointer("/metadata/namespace").and_then(Value::as_str);
            if sent_ns.is_some_and(|n| !n.is_empty() && n != ns) {
                return Err(Status::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta_mut(obj).insert("namespace".into(), json!(ns));
        }
        let spec = obj.get("spec").cloned().unwrap_or(json!({}));
        let given = attributes_of(&spec)?;
        let causes = access_review_errors(review, ns, &spec, given);
        if !causes.is_empty() {
            return Err(Status::invalid(review.kind, review.group, "", causes));
        }
        let subject = match review.plural {
            "selfsubjectaccessreviews" => user.clone(),
            _ => subject_of(&spec),
        };
        let a = review_attributes(given)
            .ok_or_else(|| Status::internal("an access review without attributes"))?;
        Ok(match self.authz.authorize(&subject, &a) {
            Decision::Allowed { reason } if reason.is_empty() => json!({"allowed": true}),
            Decision::Allowed { reason } => json!({"allowed": true, "reason": reason}),
            Decision::Denied { reason } if reason.is_empty() => json!({"allowed": false}),
            Decision::Denied { reason } => json!({"allowed": false, "reason": reason}),
        })
    }
}

/// A review with its status, as kube-apiserver answers it.
fn answered(review: &registry::ReviewDef, mut obj: Value, status: Value) -> Response<Body> {
    obj["status"] = status;
    let api_version = format!("{}/{}", review.group, review.version);
    set_type(&mut obj, &api_version, review.kind);
    meta_mut(&mut obj).insert("creationTimestamp".into(), Value::Null);
    response::json(StatusCode::CREATED, &obj)
}

/// authentication/v1 UserInfo.
fn user_info(user: &UserInfo) -> Value {
    let mut ui = json!({"username": user.name, "groups": user.groups});
    if !user.uid.is_empty() {
        ui["uid"] = json!(user.uid);
    }
    if !user.extra.is_empty() {
        ui["extra"] = json!(user.extra);
    }
    ui
}

/// The user a SubjectAccessReview asks about (`system:authenticated` added to its groups,
/// as the authorizer's caller adds it).
fn subject_of(spec: &Value) -> UserInfo {
    let text = |k: &str| {
        spec.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
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
        name: text("user"),
        uid: text("uid"),
        groups,
        extra: spec
            .get("extra")
            .and_then(|e| serde_json::from_value(e.clone()).ok())
            .unwrap_or_default(),
    }
}

/// A review's resource and non-resource attributes, each when it is given (`null` is not);
/// one that is not an object does not decode, as in kube-apiserver.
fn attributes_of(spec: &Value) -> Result<(Option<&Value>, Option<&Value>), Status> {
    let given = |k: &str| -> Result<Option<&Value>, Status> {
        match spec.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v @ Value::Object(_)) => Ok(Some(v)),
            Some(_) => Err(Status::bad_request(format!(
                "the body of the request could not be decoded: spec.{k} must be an object"
            ))),
        }
    };
    Ok((
        given("resourceAttributes")?,
        given("nonResourceAttributes")?,
    ))
}

/// What kube-apiserver's validation says of an access review's spec
/// (`pkg/apis/authorization/validation`), in its words.
fn access_review_errors(
    review: &registry::ReviewDef,
    ns: &str,
    spec: &Value,
    (resource, non_resource): (Option<&Value>, Option<&Value>),
) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    if let (Some(_), Some(n)) = (resource, non_resource) {
        causes.push(StatusCause::invalid_rendered(
            "spec.nonResourceAttributes",
            &go_non_resource_attributes(n),
            "cannot be specified in combination with resourceAttributes",
        ));
    }
    if resource.is_none() && non_resource.is_none() {
        causes.push(StatusCause::invalid(
            "spec.resourceAttributes",
            "null",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    if review.plural == "selfsubjectaccessreviews" {
        return causes;
    }
    let user = spec.get("user").and_then(Value::as_str).unwrap_or_default();
    let no_groups = spec
        .get("groups")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if user.is_empty() && no_groups {
        causes.push(StatusCause::invalid(
            "spec.user",
            user,
            "at least one of user or group must be specified",
        ));
    }
    if review.namespaced {
        let asked_ns = resource
            .and_then(|r| r.get("namespace"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if resource.is_some() && asked_ns != ns {
            causes.push(StatusCause::invalid(
                "spec.resourceAttributes.namespace",
                asked_ns,
                "must match metadata.namespace",
            ));
        }
        if let Some(n) = non_resource {
            causes.push(StatusCause::invalid_rendered(
                "spec.nonResourceAttributes",
                &go_non_resource_attributes(n),
                "disallowed on this kind of request",
            ));
        }
    }
    causes
}

/// NonResourceAttributes as Go's `%#v` prints the internal type in a validation message.
fn go_non_resource_attributes(n: &Value) -> String {
    let text = |k: &str| n.get(k).and_then(Value::as_str).unwrap_or_default();
    format!(
        "authorization.NonResourceAttributes{{Path:{:?}, Verb:{:?}}}",
        text("path"),
        text("verb")
    )
}

fn review_attributes(
    (resource, non_resource): (Option<&Value>, Option<&Value>),
) -> Option<Attributes> {
    let s = |v: &Value, k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    if let Some(r) = resource {
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
    non_resource.map(|n| Attributes {
        is_resource: false,
        verb: s(n, "verb"),
        path: s(n, "path"),
        ..Default::default()
    })
}
