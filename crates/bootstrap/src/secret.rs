//! The `bootstrap.kubernetes.io/token` Secret: what its name, namespace and data must hold.

use std::collections::BTreeMap;

use crate::token::{EXTRA_GROUP_PATTERN, TokenId, TokenSecret, valid_extra_group};

/// The Secret type of bootstrap tokens.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The namespace token Secrets live in.
pub const NAMESPACE: &str = "kube-system";

/// A rule a token Secret breaks: the data key (or `metadata.name`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TokenSecretError {
    /// `metadata.name`, `metadata.namespace` or `data[<key>]`.
    pub field: String,
    /// What is wrong, without the secret's value.
    pub message: String,
}

/// Checks a token Secret's name, namespace and (decoded) data, returning every broken rule.
pub fn validate_token_secret(
    name: &str,
    namespace: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Vec<TokenSecretError> {
    let mut errs = Vec::new();
    let mut err = |field: &str, message: String| {
        errs.push(TokenSecretError {
            field: field.to_owned(),
            message,
        })
    };
    if namespace != NAMESPACE {
        err(
            "metadata.namespace",
            format!("bootstrap token Secrets must be in the {NAMESPACE} namespace"),
        );
    }
    let name_id = TokenId::from_secret_name(name);
    if name_id.is_none() {
        err(
            "metadata.name",
            "must be bootstrap-token-<id>, with <id> 6 characters from [a-z0-9]".into(),
        );
    }
    let text = |k: &str| data.get(k).map(|v| String::from_utf8_lossy(v).into_owned());
    match text("token-id") {
        None => err("data[token-id]", "Required value".into()),
        Some(id) => match id.parse::<TokenId>() {
            Err(e) => err("data[token-id]", e.to_string()),
            Ok(id) if name_id.as_ref().is_some_and(|n| *n != id) => err(
                "data[token-id]",
                format!(
                    "must equal the id in the Secret's name ({})",
                    name_id.as_ref().map(TokenId::as_str).unwrap_or_default()
                ),
            ),
            Ok(_) => {}
        },
    }
    match text("token-secret") {
        None => err("data[token-secret]", "Required value".into()),
        Some(s) => {
            if let Err(e) = s.parse::<TokenSecret>() {
                err("data[token-secret]", e.to_string());
            }
        }
    }
    if let Some(exp) = text("expiration")
        && kubeboot_api::clock::parse_rfc3339(&exp).is_none()
    {
        err(
            "data[expiration]",
            format!("{exp:?} is not an RFC 3339 time (e.g. 2024-05-02T10:00:00Z)"),
        );
    }
    if let Some(groups) = text("auth-extra-groups") {
        for g in groups.split(',').filter(|_| !groups.is_empty()) {
            if !valid_extra_group(g) {
                err(
                    "data[auth-extra-groups]",
                    format!("bootstrap group {g:?} is invalid (must match {EXTRA_GROUP_PATTERN})"),
                );
            }
        }
    }
    errs
}

/// The `data` of a new token Secret, as kubeadm's `encodeTokenSecretData` writes it.
pub fn token_secret_data(
    token: &crate::BootstrapToken,
    description: &str,
    expiration: Option<&str>,
    usages: &[&str],
    groups: &[&str],
) -> BTreeMap<String, String> {
    let mut d = BTreeMap::new();
    d.insert("token-id".into(), token.id.as_str().to_owned());
    d.insert("token-secret".into(), token.secret.expose().to_owned());
    if !description.is_empty() {
        d.insert("description".into(), description.to_owned());
    }
    if let Some(e) = expiration {
        d.insert("expiration".into(), e.to_owned());
    }
    for u in usages {
        d.insert(format!("usage-bootstrap-{u}"), "true".into());
    }
    if !groups.is_empty() {
        d.insert("auth-extra-groups".into(), groups.join(","));
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn every_rule_has_a_passing_and_a_failing_case() {
        let good = [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("expiration", "2024-05-02T10:00:00Z"),
            (
                "auth-extra-groups",
                "system:bootstrappers:kubeadm:default-node-token",
            ),
            ("usage-bootstrap-authentication", "true"),
        ];
        assert_eq!(
            validate_token_secret("bootstrap-token-abcdef", "kube-system", &data(&good)),
            vec![]
        );
        let with = |k: &str, v: Option<&str>| {
            let mut d = data(&good);
            match v {
                Some(v) => d.insert(k.to_owned(), v.as_bytes().to_vec()),
                None => d.remove(k),
            };
            d
        };
        for (case, name, ns, d, field) in [
            (
                "wrong namespace",
                "bootstrap-token-abcdef",
                "default",
                data(&good),
                "metadata.namespace",
            ),
            (
                "bad name",
                "token-abcdef",
                "kube-system",
                data(&good),
                "metadata.name",
            ),
            (
                "id differs from name",
                "bootstrap-token-abcdeg",
                "kube-system",
                data(&good),
                "data[token-id]",
            ),
            (
                "missing id",
                "bootstrap-token-abcdef",
                "kube-system",
                with("token-id", None),
                "data[token-id]",
            ),
            (
                "missing secret",
                "bootstrap-token-abcdef",
                "kube-system",
                with("token-secret", None),
                "data[token-secret]",
            ),
            (
                "short secret",
                "bootstrap-token-abcdef",
                "kube-system",
                with("token-secret", Some("0123")),
                "data[token-secret]",
            ),
            (
                "bad expiration",
                "bootstrap-token-abcdef",
                "kube-system",
                with("expiration", Some("tomorrow")),
                "data[expiration]",
            ),
            (
                "bad group",
                "bootstrap-token-abcdef",
                "kube-system",
                with("auth-extra-groups", Some("system:masters")),
                "data[auth-extra-groups]",
            ),
        ] {
            let errs = validate_token_secret(name, ns, &d);
            assert_eq!(errs.len(), 1, "{case}: {errs:?}");
            assert_eq!(errs[0].field, field, "{case}");
            assert!(
                !errs[0].message.contains("0123456789abcdef"),
                "{case}: no secret in errors"
            );
        }
    }
}
