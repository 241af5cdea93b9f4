//! The `kube-public/cluster-info` ConfigMap: the kubeconfig it publishes, and the signatures
//! the bootstrap signer keeps in it (one `jws-kubeconfig-<id>` per signing token).

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::authn::expired;
use crate::jws::sign_detached;
use crate::token::TokenId;

/// The ConfigMap's namespace.
pub const NAMESPACE: &str = "kube-public";
/// The ConfigMap's name.
pub const NAME: &str = "cluster-info";
/// The data key of the kubeconfig.
pub const KUBECONFIG_KEY: &str = "kubeconfig";
/// The prefix of signature keys.
pub const JWS_PREFIX: &str = "jws-kubeconfig-";

/// The kubeconfig text kubeadm publishes: one unnamed cluster, nothing else.
pub fn kubeconfig(server: &str, ca_pem: &str) -> String {
    use base64::Engine;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: {server}\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\npreferences: {{}}\nusers: null\n"
    )
}

/// What the signer needs of one token Secret.
pub struct TokenSecretView<'a> {
    /// `metadata.name`.
    pub name: &'a str,
    /// Decoded `data`.
    pub data: &'a BTreeMap<String, Vec<u8>>,
}

/// The signing tokens among the Secrets, in Kubernetes' order of checks: `(id, secret)`.
/// Duplicated ids: the first wins.
pub fn signing_tokens(secrets: &[TokenSecretView<'_>], now: SystemTime) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for s in secrets {
        let text = |k: &str| {
            s.data
                .get(k)
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .unwrap_or_default()
        };
        let Some(name_id) = TokenId::from_secret_name(s.name) else {
            continue;
        };
        let (id, secret) = (text("token-id"), text("token-secret"));
        if id.is_empty() || id != name_id.as_str() || secret.is_empty() {
            continue;
        }
        if expired(
            s.data
                .get("expiration")
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .as_deref(),
            now,
        ) {
            continue;
        }
        if text("usage-bootstrap-signing") != "true" {
            continue;
        }
        if !out.iter().any(|(i, _)| *i == id) {
            out.push((id, secret));
        }
    }
    out
}

/// The ConfigMap data the signer wants, given the current data and the signing tokens;
/// `None` when nothing needs to change (or there is no kubeconfig to sign).
pub fn desired_data(
    current: &BTreeMap<String, String>,
    tokens: &[(String, String)],
) -> Option<BTreeMap<String, String>> {
    let content = current.get(KUBECONFIG_KEY)?;
    let mut want: BTreeMap<String, String> = current
        .iter()
        .filter(|(k, _)| !k.starts_with(JWS_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (id, secret) in tokens {
        want.insert(
            format!("{JWS_PREFIX}{id}"),
            sign_detached(content, id, secret),
        );
    }
    (want != *current).then_some(want)
}

/// The earliest future expiration among signing tokens' Secrets (when to look again).
pub fn next_expiry(secrets: &[TokenSecretView<'_>], now: SystemTime) -> Option<SystemTime> {
    secrets
        .iter()
        .filter_map(|s| s.data.get("expiration"))
        .filter_map(|e| kubeboot_api::clock::parse_rfc3339(&String::from_utf8_lossy(e)))
        .filter(|t| *t > now)
        .min()
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
    fn kubeconfig_matches_the_reference_bytes() {
        use base64::Engine;
        let ca = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode("Q0E=")
                .unwrap(),
        )
        .unwrap();
        let text = kubeconfig("https://10.0.0.1:6443", &ca);
        assert_eq!(
            crate::jws::sign_detached(&text, "abcdef", "0123456789abcdef"),
            "eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9..e4FYNivLzi8714KFCU7ptUPcCrJxQSMKt-ZyPOu5I7I"
        );
    }

    #[test]
    fn only_valid_unexpired_signing_tokens_sign() {
        let now = UNIX_EPOCH + Duration::from_secs(1_714_644_000);
        let base = [
            ("token-id", "abcdef"),
            ("token-secret", "0123456789abcdef"),
            ("usage-bootstrap-signing", "true"),
        ];
        let with = |extra: &[(&str, &str)], drop: &str| {
            let mut d = data(&base);
            d.remove(drop);
            d.extend(data(extra));
            d
        };
        let cases = [
            ("good", "bootstrap-token-abcdef", with(&[], ""), true),
            (
                "future expiry",
                "bootstrap-token-abcdef",
                with(&[("expiration", "2024-05-02T11:00:00Z")], ""),
                true,
            ),
            (
                "expired",
                "bootstrap-token-abcdef",
                with(&[("expiration", "2024-05-02T10:00:00Z")], ""),
                false,
            ),
            (
                "unparseable expiry",
                "bootstrap-token-abcdef",
                with(&[("expiration", "never")], ""),
                false,
            ),
            (
                "not signing",
                "bootstrap-token-abcdef",
                with(&[], "usage-bootstrap-signing"),
                false,
            ),
            (
                "signing not exactly true",
                "bootstrap-token-abcdef",
                with(&[("usage-bootstrap-signing", "yes")], ""),
                false,
            ),
            (
                "name mismatch",
                "bootstrap-token-zzzzzz",
                with(&[], ""),
                false,
            ),
            ("bad name", "token-abcdef", with(&[], ""), false),
            (
                "no secret",
                "bootstrap-token-abcdef",
                with(&[], "token-secret"),
                false,
            ),
        ];
        for (case, name, d, want) in cases.iter() {
            let got = signing_tokens(&[TokenSecretView { name, data: d }], now);
            assert_eq!(!got.is_empty(), *want, "{case}");
        }
    }

    #[test]
    fn desired_data_adds_and_drops_signatures() {
        let mut current = BTreeMap::from([
            (KUBECONFIG_KEY.to_owned(), "kc".to_owned()),
            (format!("{JWS_PREFIX}gone00"), "old".to_owned()),
        ]);
        let want = desired_data(&current, &[("abcdef".into(), "0123456789abcdef".into())]).unwrap();
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            ["jws-kubeconfig-abcdef", "kubeconfig"]
        );
        current = want;
        assert_eq!(
            desired_data(&current, &[("abcdef".into(), "0123456789abcdef".into())]),
            None,
            "nothing to change"
        );
        assert_eq!(
            desired_data(&BTreeMap::new(), &[]),
            None,
            "no kubeconfig, nothing to sign"
        );
    }
}
