//! The bootstrap-token authenticator: finds the token's Secret and applies
//! `kubeboot_bootstrap`'s rules. The Secret is read from the store once and then followed
//! through the watch cache, as kube-apiserver's authenticator follows it through an
//! informer, but never behind this server's own writes: before trusting what it knows it
//! waits until the cache has applied every write this server has made, so a Secret deleted
//! or changed through this server stops or changes the token on the very next request. A
//! change made through another server of the same etcd arrives with the watch (milliseconds).
//! When the cache cannot vouch for a Secret (its history no longer reaches back, or it lags)
//! the store is read.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use base64::Engine;
use kubeboot_api::Clock;
use kubeboot_bootstrap::BootstrapToken;
use kubeboot_bootstrap::authn::{SecretView, authenticate};
use kubeboot_store::{BoxFuture, Revision, Store};
use serde_json::Value;

use super::{AUTHENTICATED, TokenAuthenticator, UserInfo};
use crate::watch::cache::{Change, EventType, WatchCache};
use crate::written::Floor;

/// How long a request waits for the watch cache to catch up with this server's writes
/// before it reads the store instead.
const CATCH_UP: Duration = Duration::from_secs(1);
/// The most Secrets remembered (tokens are few; past this the memory starts over).
const MAX_KNOWN: usize = 10_000;

/// Authenticates `<id>.<secret>` bearer tokens against `kube-system/bootstrap-token-<id>`.
pub struct BootstrapTokenAuthenticator {
    /// The store holding the Secrets.
    pub store: Arc<dyn Store>,
    /// The watch cache following the store.
    pub cache: Arc<WatchCache>,
    /// The newest revision this server has written.
    pub written: Floor,
    /// The clock for expiry.
    pub clock: Arc<dyn Clock>,
    /// The storage key prefix of `kube-system`'s Secrets (`/registry/secrets/kube-system/`).
    pub secrets: String,
    /// The Secrets read so far, by key; guarded by the lock, never held across an await.
    pub known: Mutex<HashMap<String, Known>>,
}

/// A token Secret as last seen, and the store revision through which it is known current
/// (`None`: no such Secret).
#[derive(Clone)]
pub struct Known {
    secret: Option<Arc<Secret>>,
    current_through: Revision,
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
            let key = format!("{}{}", self.secrets, token.id.secret_name());
            let secret = self.secret(&key).await?;
            user_of_secret(&token, &secret, self.clock.now())
        })
    }
}

impl BootstrapTokenAuthenticator {
    /// The Secret at `key` as of at least this server's last write.
    async fn secret(&self, key: &str) -> Option<Arc<Secret>> {
        let floor = self.written.get();
        let caught_up =
            self.cache.revision() >= floor || self.cache.wait_for(floor, CATCH_UP).await;
        if caught_up && let Some(known) = self.vouched_by_cache(key) {
            return known.secret;
        }
        let (kv, revision) = self.store.get_with_revision(key).await.ok()?;
        let secret = match kv {
            Some(kv) => Some(Arc::new(parse(&kv.value)?)),
            None => None,
        };
        self.remember(key, secret.clone(), revision);
        secret
    }

    /// What the watch cache vouches for, if it can (and remembers it).
    fn vouched_by_cache(&self, key: &str) -> Option<Known> {
        let known = self.lock().get(key).cloned();
        let since = known.as_ref().map_or(-1, |k| k.current_through);
        let (secret, current_through) = match self.cache.changed_since(key, since) {
            Change::Unchanged(through) => (known?.secret, through),
            Change::Changed(event, through) => match event.kind {
                EventType::Deleted => (None, through),
                _ => (Some(Arc::new(parse(&event.json)?)), through),
            },
            Change::Unknown => return None,
        };
        self.remember(key, secret.clone(), current_through);
        Some(Known {
            secret,
            current_through,
        })
    }

    fn remember(&self, key: &str, secret: Option<Arc<Secret>>, current_through: Revision) {
        let mut known = self.lock();
        if known.len() >= MAX_KNOWN && !known.contains_key(key) {
            known.clear();
        }
        // Never replace what is known through a later revision with an older view.
        match known.get(key) {
            Some(k) if k.current_through > current_through => {}
            _ => {
                known.insert(
                    key.to_owned(),
                    Known {
                        secret,
                        current_through,
                    },
                );
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Known>> {
        self.known.lock().unwrap_or_else(PoisonError::into_inner)
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
