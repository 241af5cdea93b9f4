//! The bootstrap-token authenticator: reads the token's Secret from the store on every
//! request (so a deleted Secret stops working at once) and applies `kubeboot_bootstrap`'s
//! rules.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use kubeboot_api::Clock;
use kubeboot_bootstrap::BootstrapToken;
use kubeboot_bootstrap::authn::{SecretView, authenticate};
use kubeboot_store::{BoxFuture, Store};
use serde_json::Value;

use super::{AUTHENTICATED, TokenAuthenticator, UserInfo};

/// Authenticates `<id>.<secret>` bearer tokens against `kube-system/bootstrap-token-<id>`.
pub struct BootstrapTokenAuthenticator {
    /// The store holding the Secrets.
    pub store: Arc<dyn Store>,
    /// The clock for expiry.
    pub clock: Arc<dyn Clock>,
    /// The storage key prefix of `kube-system`'s Secrets (`/registry/secrets/kube-system/`).
    pub secrets: String,
}

impl TokenAuthenticator for BootstrapTokenAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<UserInfo>> {
        Box::pin(async move {
            let token: BootstrapToken = token.parse().ok()?;
            let key = format!("{}{}", self.secrets, token.id.secret_name());
            let kv = self.store.get(&key).await.ok()??;
            user_of(&token, &kv.value, self.clock.now())
        })
    }
}

/// The user a token is, given its Secret as stored (JSON): `None` when the Secret does not
/// authenticate it (wrong secret, expired, not for authentication, being deleted, or not a
/// token Secret at all).
pub fn user_of(token: &BootstrapToken, secret_json: &[u8], now: SystemTime) -> Option<UserInfo> {
    let obj: Value = serde_json::from_slice(secret_json).ok()?;
    let data: BTreeMap<String, Vec<u8>> = obj
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_str()?)
                .ok()?;
            Some((k.clone(), bytes))
        })
        .collect();
    let view = SecretView {
        type_: obj.get("type").and_then(Value::as_str).unwrap_or_default(),
        deleting: obj
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null()),
        data: &data,
    };
    let user = authenticate(token, &view, now)?;
    let mut groups = user.groups;
    groups.push(AUTHENTICATED.into());
    Some(UserInfo {
        name: user.name,
        uid: String::new(),
        groups,
        extra: Default::default(),
    })
}
