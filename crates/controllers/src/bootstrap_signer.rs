//! bootstrapsigner: keeps one `jws-kubeconfig-<id>` signature in `kube-public/cluster-info`
//! for every unexpired token allowed to sign, and no other. It reacts to watch events on
//! the token Secrets and on cluster-info, and wakes itself at the next token expiry.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubeboot_api::Clock;
use kubeboot_bootstrap::cluster_info::{self, TokenSecretView};
use kubeboot_client::Client;
use serde_json::{Value, json};

use crate::runner::{Action, BoxFuture, Informer, Queue, ReconcileError, Reconciler};
use crate::secret_data;

/// The list path of token Secrets (shared with the token cleaner).
pub const TOKEN_SECRETS: &str =
    "/api/v1/namespaces/kube-system/secrets?fieldSelector=type%3Dbootstrap.kubernetes.io%2Ftoken";
const CLUSTER_INFO: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
const KEY: &str = "kube-public/cluster-info";

/// The controller.
pub struct BootstrapSigner {
    client: Client,
    secrets: Informer,
    config_maps: Informer,
    clock: Arc<dyn Clock>,
}

/// Starts the bootstrap signer.
pub fn start(cx: &crate::Context) {
    let queue = Arc::new(Queue::default());
    let q1 = queue.clone();
    let secrets = Informer::start(
        &cx.tasks,
        cx.client.clone(),
        TOKEN_SECRETS.into(),
        move |_| q1.add(KEY),
    );
    let q2 = queue.clone();
    let config_maps = Informer::start(
        &cx.tasks,
        cx.client.clone(),
        "/api/v1/namespaces/kube-public/configmaps?fieldSelector=metadata.name%3Dcluster-info"
            .into(),
        move |_| q2.add(KEY),
    );
    let signer = Arc::new(BootstrapSigner {
        client: cx.client.clone(),
        secrets,
        config_maps,
        clock: cx.clock.clone(),
    });
    crate::runner::run(&cx.tasks, signer, queue, 1);
}

impl Reconciler for BootstrapSigner {
    fn name(&self) -> &'static str {
        "bootstrapsigner"
    }

    fn reconcile(&self, _key: String) -> BoxFuture<'_, Result<Action, ReconcileError>> {
        Box::pin(async move {
            self.secrets.wait_synced().await;
            self.config_maps.wait_synced().await;
            let Some(cm) = self.config_maps.get(KEY) else {
                return Ok(Action::Done);
            };
            let now = self.clock.now();
            let secrets = self.secrets.list();
            let decoded: Vec<(String, BTreeMap<String, Vec<u8>>)> = secrets
                .iter()
                .map(|s| {
                    (
                        s.pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                        secret_data(s),
                    )
                })
                .collect();
            let views: Vec<TokenSecretView<'_>> = decoded
                .iter()
                .map(|(name, data)| TokenSecretView { name, data })
                .collect();
            let tokens = cluster_info::signing_tokens(&views, now);
            let current: BTreeMap<String, String> = cm
                .get("data")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            if let Some(want) = cluster_info::desired_data(&current, &tokens) {
                let mut updated = cm.clone();
                updated["data"] = json!(want);
                match self.client.update::<Value>(CLUSTER_INFO, &updated).await {
                    Ok(_) => {
                        let ids: Vec<&str> = tokens.iter().map(|(id, _)| id.as_str()).collect();
                        tracing::info!(tokens = ?ids, "signed cluster-info");
                    }
                    // A newer cluster-info or none: the watch brings us back.
                    Err(e) if matches!(e.code(), Some(404 | 409)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(match cluster_info::next_expiry(&views, now) {
                Some(t) => Action::RequeueAfter(
                    t.duration_since(now).unwrap_or(Duration::ZERO) + Duration::from_millis(50),
                ),
                None => Action::Done,
            })
        })
    }
}

/// How long until `t`, zero if passed.
pub fn until(t: SystemTime, now: SystemTime) -> Duration {
    t.duration_since(now).unwrap_or(Duration::ZERO)
}
