//! Impersonation, as kube-apiserver's `WithImpersonation` filter does it: the
//! `Impersonate-User`, `-Group`, `-Uid` and `-Extra-<key>` headers ask to act as another
//! user; each thing asked for is authorized for the requester with the `impersonate` verb
//! (on `users`, `serviceaccounts`, `groups`, `uids` or `userextras/<key>`), and only when
//! every one is allowed does the request go on as the user they describe.

use std::collections::BTreeMap;

use http::HeaderMap;
use kubeboot_api::Status;
use kubeboot_api::status::Subject;

use crate::authn::{ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED, UserInfo};
use crate::authz::Attributes;

/// `Impersonate-User`.
const USER: &str = "impersonate-user";
/// `Impersonate-Group`, once per group.
const GROUP: &str = "impersonate-group";
/// `Impersonate-Uid`.
const UID: &str = "impersonate-uid";
/// `Impersonate-Extra-<key>`, once per value.
const EXTRA_PREFIX: &str = "impersonate-extra-";
/// The prefix of a service account's user name.
const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// One thing a request asks to impersonate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Asked {
    /// A user name that is not a service account's.
    User(String),
    /// `system:serviceaccount:<namespace>:<name>`.
    ServiceAccount {
        /// The namespace.
        namespace: String,
        /// The service account's name.
        name: String,
    },
    /// A group.
    Group(String),
    /// One value of an extra attribute.
    Extra {
        /// The key, lowercased and percent-decoded.
        key: String,
        /// The value.
        value: String,
    },
    /// A UID.
    Uid(String),
}

impl Asked {
    /// What the requester must be allowed, as kube-apiserver asks its authorizer.
    pub fn attributes(&self) -> Attributes {
        let (group, resource, subresource, namespace, name) = match self {
            Asked::User(name) => ("", "users", "", "", name.as_str()),
            Asked::ServiceAccount { namespace, name } => {
                ("", "serviceaccounts", "", namespace.as_str(), name.as_str())
            }
            Asked::Group(name) => ("", "groups", "", "", name.as_str()),
            Asked::Extra { key, value } => (
                "authentication.k8s.io",
                "userextras",
                key.as_str(),
                "",
                value.as_str(),
            ),
            Asked::Uid(uid) => ("authentication.k8s.io", "uids", "", "", uid.as_str()),
        };
        Attributes {
            is_resource: true,
            verb: "impersonate".into(),
            path: String::new(),
            group: group.into(),
            namespace: namespace.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            name: name.into(),
            field_selector: Vec::new(),
        }
    }

    /// How kube-apiserver's error names it.
    fn describe(&self) -> String {
        match self {
            Asked::User(n) => format!("user {n:?}"),
            Asked::ServiceAccount { namespace, name } => {
                format!("service account {namespace:?}/{name:?}")
            }
            Asked::Group(g) => format!("group {g:?}"),
            Asked::Extra { key, value } => format!("extra {key:?}={value:?}"),
            Asked::Uid(u) => format!("uid {u:?}"),
        }
    }
}

/// What the request's headers ask to impersonate (nothing: an ordinary request). Groups,
/// extras or a UID without a user are refused, with kube-apiserver's 500.
pub fn asked(headers: &HeaderMap) -> Result<Vec<Asked>, Status> {
    let text = |v: &http::HeaderValue, name: &str| {
        v.to_str()
            .map(str::to_owned)
            .map_err(|_| Status::bad_request(format!("the {name} header is not valid text")))
    };
    let mut out = Vec::new();
    let user = match headers.get(USER) {
        Some(v) => text(v, "Impersonate-User")?,
        None => String::new(),
    };
    if !user.is_empty() {
        out.push(match service_account(&user) {
            Some((namespace, name)) => Asked::ServiceAccount { namespace, name },
            None => Asked::User(user.clone()),
        });
    }
    for v in headers.get_all(GROUP) {
        out.push(Asked::Group(text(v, "Impersonate-Group")?));
    }
    out.extend(extras(headers)?);
    let uid = match headers.get(UID) {
        Some(v) => text(v, "Impersonate-Uid")?,
        None => String::new(),
    };
    if !uid.is_empty() {
        out.push(Asked::Uid(uid));
    }
    if user.is_empty() && !out.is_empty() {
        let list: Vec<String> = out.iter().map(Asked::describe).collect();
        return Err(Status::internal(format!(
            "requested [{}] without impersonating a user: name the user too (Impersonate-User, kubectl --as)",
            list.join(", ")
        )));
    }
    Ok(out)
}

/// The `Impersonate-Extra-<key>` headers, sorted by key so that the checks (and a refusal)
/// do not depend on the header order.
fn extras(headers: &HeaderMap) -> Result<Vec<Asked>, Status> {
    let mut by_key: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, v) in headers {
        if let Some(key) = name.as_str().strip_prefix(EXTRA_PREFIX) {
            let value = v.to_str().map_err(|_| {
                Status::bad_request("the Impersonate-Extra header is not valid text")
            })?;
            by_key
                .entry(unescape_extra_key(key))
                .or_default()
                .push(value.to_owned());
        }
    }
    Ok(by_key
        .into_iter()
        .flat_map(|(key, values)| {
            values.into_iter().map(move |value| Asked::Extra {
                key: key.clone(),
                value,
            })
        })
        .collect())
}

/// The user a request that asked for `asked` (every one allowed) acts as. Groups given are
/// the whole list; a service account without them gets its fixed groups; a user other
/// than anonymous is always in `system:authenticated` unless `system:unauthenticated` was
/// asked for, and anonymous is in `system:unauthenticated`.
pub fn acting_as(asked: &[Asked]) -> UserInfo {
    let groups_given = asked.iter().any(|a| matches!(a, Asked::Group(_)));
    let mut user = UserInfo::default();
    for a in asked {
        match a {
            Asked::User(name) => user.name = name.clone(),
            Asked::ServiceAccount { namespace, name } => {
                user.name = format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}");
                if !groups_given {
                    user.groups = vec![
                        "system:serviceaccounts".into(),
                        format!("system:serviceaccounts:{namespace}"),
                    ];
                }
            }
            Asked::Group(g) => user.groups.push(g.clone()),
            Asked::Extra { key, value } => {
                user.extra
                    .entry(key.clone())
                    .or_default()
                    .push(value.clone());
            }
            Asked::Uid(uid) => user.uid = uid.clone(),
        }
    }
    let has = |g: &str| user.groups.iter().any(|x| x == g);
    if user.name != ANONYMOUS {
        if !has(AUTHENTICATED) && !has(UNAUTHENTICATED) {
            user.groups.push(AUTHENTICATED.into());
        }
    } else if !has(UNAUTHENTICATED) {
        user.groups.push(UNAUTHENTICATED.into());
    }
    user
}

/// The 403 for an impersonation the requester may not make, as kube-apiserver words it:
/// `users "jane" is forbidden: User "bob" cannot impersonate resource "users" in API group
/// "" at the cluster scope`.
pub fn forbidden(requester: &UserInfo, a: &Attributes) -> Status {
    Status::forbidden(
        Some(Subject {
            resource: &a.resource,
            group: &a.group,
            name: &a.name,
        }),
        &crate::authz::forbidden_message(requester, a),
    )
}

/// `system:serviceaccount:<namespace>:<name>` with a valid namespace and name, as
/// Kubernetes' `serviceaccount.SplitUsername` reads it.
fn service_account(user: &str) -> Option<(String, String)> {
    let rest = user.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let (namespace, name) = rest.split_once(':')?;
    (!name.contains(':')
        && crate::object::is_dns1123_label(namespace)
        && crate::object::is_dns1123_subdomain(name))
    .then(|| (namespace.to_owned(), name.to_owned()))
}

/// An extra key as sent in a header name: lowercase, `%XX`-escaped; Go's `PathUnescape`
/// decodes it, and a malformed escape leaves the key as sent.
fn unescape_extra_key(key: &str) -> String {
    let bytes = key.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let Some([hi, lo]) = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .map(|h| [h[0], h[1]])
            else {
                return key.to_owned();
            };
            let digit = |c: u8| (c as char).to_digit(16).unwrap_or_default() as u8;
            out.push(digit(hi) * 16 + digit(lo));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
