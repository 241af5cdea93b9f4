//! The bootstrap-token authenticator's decision (Kubernetes' `bootstrap.go`), as a pure
//! function of the presented token, the token Secret and the time.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::secret::SECRET_TYPE;
use crate::token::{BootstrapToken, valid_extra_group};

/// The user-name prefix of bootstrap-token users.
pub const USER_PREFIX: &str = "system:bootstrap:";
/// The group every bootstrap-token user is in.
pub const BOOTSTRAPPERS: &str = "system:bootstrappers";

/// What the authenticator needs of a Secret.
pub struct SecretView<'a> {
    /// `type`.
    pub type_: &'a str,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Decoded `data`.
    pub data: &'a BTreeMap<String, Vec<u8>>,
}

/// A successful bootstrap-token authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    /// `system:bootstrap:<id>`.
    pub name: String,
    /// `system:bootstrappers` and the extra groups, sorted and de-duplicated.
    pub groups: Vec<String>,
}

/// Checks a presented token against its Secret, in Kubernetes' order; `None` for any
/// failure (the caller answers 401 without saying which check failed).
pub fn authenticate(
    token: &BootstrapToken,
    secret: &SecretView<'_>,
    now: SystemTime,
) -> Option<TokenUser> {
    if secret.deleting || secret.type_ != SECRET_TYPE {
        return None;
    }
    let text = |k: &str| {
        secret
            .data
            .get(k)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    // Constant-time comparison of the secret first, as Kubernetes does.
    let stored_secret = secret.data.get("token-secret")?;
    if !token
        .secret
        .matches(&String::from_utf8_lossy(stored_secret))
    {
        return None;
    }
    if text("token-id")? != token.id.as_str() {
        return None;
    }
    if expired(text("expiration").as_deref(), now) {
        return None;
    }
    if text("usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    let groups = groups(text("auth-extra-groups").as_deref())?;
    Some(TokenUser {
        name: format!("{USER_PREFIX}{}", token.id),
        groups,
    })
}

/// Whether a token with this `expiration` value is expired at `now`: absent never expires;
/// unparseable counts as expired.
pub fn expired(expiration: Option<&str>, now: SystemTime) -> bool {
    match expiration {
        None => false,
        Some(e) => match kubeboot_api::clock::parse_rfc3339(e) {
            Some(t) => t <= now,
            None => true,
        },
    }
}

/// `GetGroups`: `system:bootstrappers` plus the valid extra groups, sorted; `None` if any
/// extra group is invalid.
pub fn groups(extra: Option<&str>) -> Option<Vec<String>> {
    let mut out = vec![BOOTSTRAPPERS.to_owned()];
    if let Some(extra) = extra.filter(|e| !e.is_empty()) {
        for g in extra.split(',') {
            if !valid_extra_group(g) {
                return None;
            }
            out.push(g.to_owned());
        }
    }
    out.sort();
    out.dedup();
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn every_check_in_kubernetes_order() {
        let now = UNIX_EPOCH + Duration::from_secs(1_714_644_000); // 2024-05-02T10:00:00Z
        let good = [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("expiration", "2024-05-02T11:00:00Z"),
            ("usage-bootstrap-authentication", "true"),
            (
                "auth-extra-groups",
                "system:bootstrappers:kubeadm:default-node-token",
            ),
        ];
        let token: BootstrapToken = "abcdef.0123456789abcdef".parse().unwrap();
        let check =
            |d: &BTreeMap<String, Vec<u8>>, ty: &str, deleting: bool, t: &BootstrapToken| {
                authenticate(
                    t,
                    &SecretView {
                        type_: ty,
                        deleting,
                        data: d,
                    },
                    now,
                )
            };
        let ok = check(&data(&good), SECRET_TYPE, false, &token).unwrap();
        assert_eq!(ok.name, "system:bootstrap:abcdef");
        assert_eq!(
            ok.groups,
            [
                "system:bootstrappers",
                "system:bootstrappers:kubeadm:default-node-token"
            ]
        );
        let with = |k: &str, v: Option<&str>| {
            let mut d = data(&good);
            match v {
                Some(v) => d.insert(k.into(), v.as_bytes().to_vec()),
                None => d.remove(k),
            };
            d
        };
        let wrong: BootstrapToken = "abcdef.0123456789abcdee".parse().unwrap();
        for (case, d, ty, deleting, t) in [
            ("being deleted", data(&good), SECRET_TYPE, true, &token),
            ("wrong type", data(&good), "Opaque", false, &token),
            ("wrong secret", data(&good), SECRET_TYPE, false, &wrong),
            (
                "id differs",
                with("token-id", Some("abcdeg")),
                SECRET_TYPE,
                false,
                &token,
            ),
            (
                "expired",
                with("expiration", Some("2024-05-02T10:00:00Z")),
                SECRET_TYPE,
                false,
                &token,
            ),
            (
                "unparseable expiration",
                with("expiration", Some("soon")),
                SECRET_TYPE,
                false,
                &token,
            ),
            (
                "no auth usage",
                with("usage-bootstrap-authentication", None),
                SECRET_TYPE,
                false,
                &token,
            ),
            (
                "auth usage not exactly true",
                with("usage-bootstrap-authentication", Some("True")),
                SECRET_TYPE,
                false,
                &token,
            ),
            (
                "bad group",
                with("auth-extra-groups", Some("system:masters")),
                SECRET_TYPE,
                false,
                &token,
            ),
        ] {
            assert_eq!(check(&d, ty, deleting, t), None, "{case}");
        }
        assert!(
            check(&with("expiration", None), SECRET_TYPE, false, &token).is_some(),
            "no expiration never expires"
        );
    }

    #[test]
    fn groups_vector_from_kubernetes() {
        assert_eq!(
            groups(Some(
                "system:bootstrappers:foo,system:bootstrappers:bar,system:bootstrappers:bar"
            )),
            Some(vec![
                "system:bootstrappers".into(),
                "system:bootstrappers:bar".into(),
                "system:bootstrappers:foo".into()
            ])
        );
        assert_eq!(groups(Some("foo")), None);
        assert_eq!(groups(None), Some(vec!["system:bootstrappers".into()]));
    }
}
