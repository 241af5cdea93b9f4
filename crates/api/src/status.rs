//! The `Status` object every failed API call returns, with constructors named by reason.
//! Field names and messages are kube-apiserver's (apimachinery `api/errors`).

use serde::{Deserialize, Serialize};

/// A `v1 Status`, as written on the wire for errors (and for some successful deletes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Always `Status`.
    pub kind: String,
    /// Always `v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// Always an empty object.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// `Failure` or `Success`.
    pub status: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Machine-readable reason (`NotFound`, `Conflict`, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// What the error is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    /// The HTTP status code.
    pub code: u16,
}

/// `StatusDetails`: the object an error concerns.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StatusDetails {
    /// Object name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// API group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// The resource (plural) the error concerns, as kube-apiserver fills it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Field-level causes (for `Invalid`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    /// For `TooManyRequests`.
    #[serde(
        rename = "retryAfterSeconds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after_seconds: Option<u32>,
}

/// One cause of an `Invalid` error.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusCause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    pub reason: String,
    /// What is wrong.
    pub message: String,
    /// The JSON path of the field (absent when the cause is about no field).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// The resource an error is about: plural name and group, and the object name.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Plural resource, e.g. `configmaps`.
    pub resource: &'a str,
    /// API group, empty for core.
    pub group: &'a str,
    /// Object name, possibly empty.
    pub name: &'a str,
}

impl Subject<'_> {
    /// `<resource>[.<group>]`, as Kubernetes names a resource in messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.resource.to_owned()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    fn details(&self) -> StatusDetails {
        StatusDetails {
            name: self.name.to_owned(),
            group: self.group.to_owned(),
            kind: self.resource.to_owned(),
            ..Default::default()
        }
    }
}

impl Status {
    /// A failure with the given code, reason and message.
    pub fn failure(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self {
            kind: "Status".into(),
            api_version: "v1".into(),
            metadata: Default::default(),
            status: "Failure".into(),
            message: message.into(),
            reason: reason.into(),
            details: None,
            code,
        }
    }

    /// A success (some deletes answer with it).
    pub fn success(details: Option<StatusDetails>) -> Self {
        Self {
            status: "Success".into(),
            details,
            ..Self::failure(200, "", "")
        }
    }

    fn with_details(mut self, details: StatusDetails) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 `NotFound`: `<resource>.<group> "<name>" not found`.
    pub fn not_found(s: Subject<'_>) -> Self {
        Self::failure(
            404,
            "NotFound",
            format!("{} \"{}\" not found", s.qualified(), s.name),
        )
        .with_details(s.details())
    }

    /// 409 `AlreadyExists`.
    pub fn already_exists(s: Subject<'_>) -> Self {
        Self::failure(
            409,
            "AlreadyExists",
            format!("{} \"{}\" already exists", s.qualified(), s.name),
        )
        .with_details(s.details())
    }

    /// 409 `Conflict`: `Operation cannot be fulfilled on <r>.<g> "<name>": <detail>`.
    pub fn conflict(s: Subject<'_>, detail: &str) -> Self {
        Self::failure(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{}\": {detail}",
                s.qualified(),
                s.name
            ),
        )
        .with_details(s.details())
    }

    /// 422 `Invalid`: `<Kind>.<group> "<name>" is invalid: <causes>`.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<StatusCause>) -> Self {
        let qualified = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        let summary = causes.iter().map(StatusCause::summary).collect::<Vec<_>>();
        let summary = if summary.len() == 1 {
            summary[0].clone()
        } else {
            format!("[{}]", summary.join(", "))
        };
        Self::failure(
            422,
            "Invalid",
            format!("{qualified} \"{name}\" is invalid: {summary}"),
        )
        .with_details(StatusDetails {
            name: name.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
            causes,
            ..Default::default()
        })
    }

    /// 403 `Forbidden` for a resource request or a non-resource path.
    pub fn forbidden(s: Option<Subject<'_>>, inner: &str) -> Self {
        match s {
            None => Self::failure(403, "Forbidden", format!("forbidden: {inner}"))
                .with_details(StatusDetails::default()),
            Some(s) => {
                let head = if s.name.is_empty() {
                    s.qualified()
                } else {
                    format!("{} \"{}\"", s.qualified(), s.name)
                };
                Self::failure(403, "Forbidden", format!("{head} is forbidden: {inner}"))
                    .with_details(s.details())
            }
        }
    }

    /// 401 `Unauthorized`.
    pub fn unauthorized() -> Self {
        Self::failure(401, "Unauthorized", "Unauthorized")
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::failure(400, "BadRequest", message)
    }

    /// 405 `MethodNotAllowed`.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::failure(405, "MethodNotAllowed", message)
    }

    /// 410 `Expired`: a resourceVersion or continue token older than the history kept.
    pub fn expired(message: impl Into<String>) -> Self {
        Self::failure(410, "Expired", message)
    }

    /// 413 `RequestEntityTooLarge`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::failure(413, "RequestEntityTooLarge", message)
    }

    /// 415 `UnsupportedMediaType`.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::failure(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/merge-patch+json, application/json-patch+json, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    /// 429 `TooManyRequests` with a retry hint.
    pub fn too_many_requests(retry_after_seconds: u32) -> Self {
        Self::failure(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        )
        .with_details(StatusDetails {
            retry_after_seconds: Some(retry_after_seconds),
            ..Default::default()
        })
    }

    /// 500 `InternalError`.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::failure(
            500,
            "InternalError",
            format!("Internal error occurred: {}", Into::<String>::into(message)),
        )
    }

    /// 503 `ServiceUnavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::failure(503, "ServiceUnavailable", message)
    }

    /// 504 `Timeout`.
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::failure(504, "Timeout", message)
    }

    /// 504 `Timeout` for a read at a resourceVersion the server has not reached within the
    /// wait (kube-apiserver's `NewTooLargeResourceVersionError`): retry after a second.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        Self::timeout(format!(
            "Timeout: Too large resource version: {requested}, current: {current}"
        ))
        .with_details(StatusDetails {
            causes: vec![StatusCause::new(
                "ResourceVersionTooLarge",
                "",
                "Too large resource version",
            )],
            retry_after_seconds: Some(1),
            ..Default::default()
        })
    }
}

impl StatusCause {
    /// A cause with the given reason, field and message.
    pub fn new(reason: &str, field: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_owned(),
            message: message.into(),
            field: field.to_owned(),
        }
    }

    /// The cause as an `Invalid` status's message lists it: `<field>: <message>`.
    pub fn summary(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }

    /// `FieldValueInvalid`: `Invalid value: <value>: <detail>`.
    pub fn invalid(field: &str, value: &str, detail: &str) -> Self {
        Self::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {value:?}: {detail}"),
        )
    }

    /// `FieldValueInvalid` with the value as kube-apiserver renders one that is not a
    /// string: a number bare, a list or an object as JSON (or Go's `[]string{…}`).
    pub fn invalid_rendered(field: &str, rendered: &str, detail: &str) -> Self {
        Self::new(
            "FieldValueInvalid",
            field,
            format!("Invalid value: {rendered}: {detail}"),
        )
    }

    /// `FieldValueInvalid` of a list of strings, printed as Go's `%#v` prints it
    /// (`[]string{"a", "b"}`), as kube-apiserver 1.33 prints such a value.
    pub fn invalid_strings(field: &str, items: &[&str], detail: &str) -> Self {
        Self::invalid_rendered(field, &go_strings(items), detail)
    }

    /// `FieldValueRequired`: `Required value`.
    pub fn required(field: &str, detail: &str) -> Self {
        let msg = if detail.is_empty() {
            "Required value".to_owned()
        } else {
            format!("Required value: {detail}")
        };
        Self::new("FieldValueRequired", field, msg)
    }

    /// `FieldValueForbidden`: `Forbidden: <detail>`.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::new("FieldValueForbidden", field, format!("Forbidden: {detail}"))
    }

    /// `FieldValueNotSupported`.
    pub fn not_supported(field: &str, value: &str, supported: &[&str]) -> Self {
        let list = supported
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        Self::new(
            "FieldValueNotSupported",
            field,
            format!("Unsupported value: {value:?}: supported values: {list}"),
        )
    }

    /// `FieldValueTooLong`: `Too long: may not be more than <max> bytes`.
    pub fn too_long(field: &str, max: usize) -> Self {
        Self::new(
            "FieldValueTooLong",
            field,
            format!("Too long: may not be more than {max} bytes"),
        )
    }

    /// `FieldValueDuplicate`.
    pub fn duplicate(field: &str, value: &str) -> Self {
        Self::new(
            "FieldValueDuplicate",
            field,
            format!("Duplicate value: {value:?}"),
        )
    }
}

/// A list of strings as Go's `%#v` prints it: `[]string{"10.96.0.1"}`.
pub fn go_strings(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[]string{{{}}}", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_messages_match_kubernetes() {
        let s = Status::forbidden(None, "User \"system:anonymous\" cannot get path \"/\"");
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"system:anonymous\" cannot get path \"/\"","reason":"Forbidden","details":{},"code":403}"#
        );
        let subject = Subject {
            resource: "certificatesigningrequests",
            group: "certificates.k8s.io",
            name: "csr-x7k2p",
        };
        let s = Status::forbidden(Some(subject), "inner");
        assert_eq!(
            s.message,
            "certificatesigningrequests.certificates.k8s.io \"csr-x7k2p\" is forbidden: inner"
        );
    }

    #[test]
    fn not_found_names_resource_and_group() {
        let s = Status::not_found(Subject {
            resource: "configmaps",
            group: "",
            name: "x",
        });
        assert_eq!(s.message, "configmaps \"x\" not found");
        assert_eq!(s.code, 404);
    }
}
