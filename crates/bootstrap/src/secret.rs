//! The `bootstrap.kubernetes.io/token` Secret: what its name, namespace and data must hold.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

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

/// The usages a bootstrap token may have (`usage-bootstrap-<usage>`).
pub const USAGES: [&str; 2] = ["signing", "authentication"];
/// The group of the default node token (`kubeadm token create`'s default `--groups`).
pub const DEFAULT_NODE_TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// What a new token is for (`kubeadm token create`'s flags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenOptions<'a> {
    /// `--description`.
    pub description: &'a str,
    /// `--ttl`; `None` (a zero `--ttl`) never expires.
    pub ttl: Option<Duration>,
    /// `--usages`.
    pub usages: &'a [&'a str],
    /// `--groups`.
    pub groups: &'a [&'a str],
}

impl<'a> TokenOptions<'a> {
    /// kubeadm's defaults: 24 h, signing and authentication, the default node token group.
    pub fn kubeadm_default(description: &'a str) -> Self {
        Self {
            description,
            ttl: Some(Duration::from_secs(24 * 3600)),
            usages: &USAGES,
            groups: &[DEFAULT_NODE_TOKEN_GROUP],
        }
    }

    /// kubeadm's rules for the flags, with its messages.
    pub fn check(&self) -> Result<(), String> {
        let bad: Vec<&str> = (self.usages.iter().copied())
            .filter(|u| !USAGES.contains(u))
            .collect();
        if !bad.is_empty() {
            return Err(format!(
                "invalid bootstrap token usage string: {}, valid usage options: {}",
                bad.join(","),
                USAGES.join(",")
            ));
        }
        if let Some(g) = self.groups.iter().find(|g| !valid_extra_group(g)) {
            return Err(format!(
                "bootstrap group {g:?} is invalid (must match {EXTRA_GROUP_PATTERN})"
            ));
        }
        if !self.groups.is_empty() && !self.usages.contains(&"authentication") {
            return Err(
                "token groups cannot be specified unless --usages includes \"authentication\""
                    .into(),
            );
        }
        Ok(())
    }
}

/// The `data` of a new token Secret created at `now`, as kubeadm's `encodeTokenSecretData`
/// writes it.
pub fn token_secret_data(
    token: &crate::BootstrapToken,
    options: &TokenOptions<'_>,
    now: SystemTime,
) -> BTreeMap<String, String> {
    let mut d = BTreeMap::new();
    d.insert("token-id".into(), token.id.as_str().to_owned());
    d.insert("token-secret".into(), token.secret.expose().to_owned());
    if !options.description.is_empty() {
        d.insert("description".into(), options.description.to_owned());
    }
    if let Some(ttl) = options.ttl {
        d.insert(
            "expiration".into(),
            kubeboot_api::clock::format_rfc3339(now + ttl),
        );
    }
    for u in options.usages {
        d.insert(format!("usage-bootstrap-{u}"), "true".into());
    }
    if !options.groups.is_empty() {
        d.insert("auth-extra-groups".into(), options.groups.join(","));
    }
    d
}

/// The Secret that holds `token`, for a create in [`NAMESPACE`].
pub fn token_secret(
    token: &crate::BootstrapToken,
    options: &TokenOptions<'_>,
    now: SystemTime,
) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": token.id.secret_name(), "namespace": NAMESPACE},
        "type": SECRET_TYPE,
        "stringData": token_secret_data(token, options, now),
    })
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
    fn token_flags_follow_kubeadms_rules() {
        let ok = TokenOptions::kubeadm_default("");
        assert_eq!(ok.check(), Ok(()));
        for (case, usages, groups, want) in [
            (
                "unknown usage",
                &["signing", "nope"][..],
                &[][..],
                "invalid bootstrap token usage string: nope",
            ),
            (
                "bad group",
                &["authentication"][..],
                &["system:masters"][..],
                "bootstrap group \"system:masters\" is invalid",
            ),
            (
                "groups without authentication",
                &["signing"][..],
                &[DEFAULT_NODE_TOKEN_GROUP][..],
                "token groups cannot be specified unless --usages includes \"authentication\"",
            ),
        ] {
            let o = TokenOptions {
                usages,
                groups,
                ..ok.clone()
            };
            let e = o.check().expect_err(case);
            assert!(e.starts_with(want), "{case}: {e}");
        }
        let signing_only = TokenOptions {
            usages: &["signing"],
            groups: &[],
            ..ok
        };
        assert_eq!(signing_only.check(), Ok(()));
    }

    #[test]
    fn a_new_token_secret_holds_what_kubeadm_writes() {
        let token: crate::BootstrapToken = "abcdef.0123456789abcdef".parse().unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let s = token_secret(&token, &TokenOptions::kubeadm_default("d"), now);
        assert_eq!(s["metadata"]["name"], "bootstrap-token-abcdef");
        assert_eq!(s["metadata"]["namespace"], "kube-system");
        assert_eq!(s["type"], SECRET_TYPE);
        let d = &s["stringData"];
        assert_eq!(d["expiration"], "2027-01-16T08:00:00Z");
        assert_eq!(d["usage-bootstrap-signing"], "true");
        assert_eq!(d["auth-extra-groups"], DEFAULT_NODE_TOKEN_GROUP);
        assert_eq!(d["description"], "d");
        let forever = TokenOptions {
            ttl: None,
            description: "",
            ..TokenOptions::kubeadm_default("")
        };
        let d = token_secret_data(&token, &forever, now);
        assert!(!d.contains_key("expiration") && !d.contains_key("description"));
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
