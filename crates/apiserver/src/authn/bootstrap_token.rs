//! The bootstrap-token authenticator: finds the token's Secret and applies
//! `kubeboot_bootstrap`'s rules. The Secret is read from the store once and then followed
//! through the watch cache ([`Followed`]), as kube-apiserver's authenticator follows it
//! through an informer, never behind this server's own writes: a Secret deleted or changed
//! through this server stops or changes the token on the very next request.

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
use crate::watch::cache::WatchCache;
use crate::watch::followed::Followed;
use crate::written::Floor;

/// Authenticates `<id>.<secret>` bearer tokens against `kube-system/bootstrap-token-<id>`.
pub struct BootstrapTokenAuthenticator {
    /// The token Secrets, followed.
    secrets: Followed<Secret>,
    /// The clock for expiry.
    clock: Arc<dyn Clock>,
    /// The storage key prefix of `kube-system`'s Secrets (`/registry/secrets/kube-system/`).
    prefix: String,
}

impl BootstrapTokenAuthenticator {
    /// Authenticates tokens against the Secrets under `prefix` in `store`, followed through
    /// `cache` and never behind the writes `written` counts.
    pub fn new(
        store: Arc<dyn Store>,
        cache: Arc<WatchCache>,
        written: Floor,
        clock: Arc<dyn Clock>,
        prefix: String,
    ) -> Self {
        Self {
            secrets: Followed::new(store, cache, written, parse),
            clock,
            prefix,
        }
    }
}

/// The fields of a Secret the rules read.
pub struct Secret {
    type_: String,
    deleting: bool,
    data: BTreeMap<String, Vec<u8>>,
}

impl TokenAuthenticator for BootstrapTokenAuthenticator {
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<UserInfo>> {
        Box::pin(async move {
            let token: BootstrapToken = token.parse().ok()?;
            let key = format!("{}{}", self.prefix, token.id.secret_name());
            let secret = self.secrets.get(&key).await.ok()??;
            user_of_secret(&token, &secret, self.clock.now())
        })
    }
}

/// The fields of a stored Secret (JSON) the rules read; `None` when it is not JSON.
fn parse(secret_json: &[u8]) -> Option<Secret> {
    let obj: Value = serde_json::from_slice(secret_json).ok()?;
    let data = obj
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
    Some(Secret {
        type_: obj
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        deleting: obj
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|v| !v.is_null()),
        data,
    })
}

/// The user a token is, given its Secret as stored (JSON): `None` when the Secret does not
/// authenticate it (wrong secret, expired, not for authentication, being deleted, or not a
/// token Secret at all).
pub fn user_of(token: &BootstrapToken, secret_json: &[u8], now: SystemTime) -> Option<UserInfo> {
    user_of_secret(token, &parse(secret_json)?, now)
}

fn user_of_secret(token: &BootstrapToken, secret: &Secret, now: SystemTime) -> Option<UserInfo> {
    let view = SecretView {
        type_: &secret.type_,
        deleting: secret.deleting,
        data: &secret.data,
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
