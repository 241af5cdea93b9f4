//! tokencleaner: deletes a bootstrap token's Secret when it expires — scheduled at the
//! expiry instant, not found by polling.

use std::sync::Arc;
use std::time::Duration;

use kubeboot_api::Clock;
use kubeboot_api::clock::parse_rfc3339;
use kubeboot_client::Client;
use serde_json::{Value, json};

use crate::bootstrap_signer::{TOKEN_SECRETS, until};
use crate::runner::{Action, BoxFuture, Informer, Queue, ReconcileError, Reconciler};

/// The controller.
pub struct TokenCleaner {
    client: Client,
    secrets: Informer,
    clock: Arc<dyn Clock>,
}

/// Starts the token cleaner.
pub fn start(cx: &crate::Context) {
    let queue = Arc::new(Queue::default());
    let q = queue.clone();
    let secrets = Informer::start(
        &cx.tasks,
        cx.client.clone(),
        TOKEN_SECRETS.into(),
        move |key| q.add(key),
    );
    crate::runner::run(
        &cx.tasks,
        Arc::new(TokenCleaner {
            client: cx.client.clone(),
            secrets,
            clock: cx.clock.clone(),
        }),
        queue,
        2,
    );
}

/// What to do with a token Secret: delete it (expired, or expiration unparseable), look
/// again at its expiry, or nothing (no expiration).
pub fn decide(expiration: Option<&str>, now: std::time::SystemTime) -> Option<Duration> {
    match expiration {
        None => None,
        Some(e) => match parse_rfc3339(e) {
            Some(t) if t > now => Some(until(t, now)),
            _ => Some(Duration::ZERO),
        },
    }
}

impl Reconciler for TokenCleaner {
    fn name(&self) -> &'static str {
        "tokencleaner"
    }

    fn reconcile(&self, key: String) -> BoxFuture<'_, Result<Action, ReconcileError>> {
        Box::pin(async move {
            let Some(secret) = self.secrets.get(&key) else {
                return Ok(Action::Done);
            };
            let data = crate::secret_data(&secret);
            let exp = data
                .get("expiration")
                .map(|v| String::from_utf8_lossy(v).into_owned());
            match decide(exp.as_deref(), self.clock.now()) {
                None => Ok(Action::Done),
                Some(wait) if !wait.is_zero() => {
                    Ok(Action::RequeueAfter(wait + Duration::from_millis(20)))
                }
                Some(_) => {
                    let name = secret
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let uid = secret
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let opts = json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}});
                    match self
                        .client
                        .delete(
                            &format!("/api/v1/namespaces/kube-system/secrets/{name}"),
                            Some(&opts),
                        )
                        .await
                    {
                        Ok(()) => tracing::info!(secret = %name, "deleted expired bootstrap token"),
                        Err(e) if matches!(e.code(), Some(404 | 409)) => {}
                        Err(e) => return Err(e.into()),
                    }
                    Ok(Action::Done)
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn expiry_decisions() {
        let now = UNIX_EPOCH + Duration::from_secs(1_714_644_000); // 10:00:00Z
        assert_eq!(decide(None, now), None);
        assert_eq!(
            decide(Some("2024-05-02T10:00:30Z"), now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            decide(Some("2024-05-02T10:00:00Z"), now),
            Some(Duration::ZERO),
            "at expiry: delete"
        );
        assert_eq!(
            decide(Some("garbage"), now),
            Some(Duration::ZERO),
            "unparseable counts as expired"
        );
    }
}
