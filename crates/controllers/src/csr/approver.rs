//! csrapproving: approves kubelet client CSRs exactly as Kubernetes' approver does (a
//! SubjectAccessReview per recogniser), and — only when enabled — kubelet serving CSRs
//! whose names are all the node's own addresses. It never denies.

use std::sync::Arc;
use std::time::Duration;

use kubeboot_client::Client;
use serde_json::{Value, json};

use super::policy::{self, Recognizer, ServingRules};
use super::{CsrView, Signature, parse_request};
use crate::events::{EventType, Recorded};
use crate::metrics::Counters;
use crate::runner::{Action, BoxFuture, Informer, ReconcileError, Reconciler};

/// The component its Events name.
const COMPONENT: &str = "csrapproving";

/// What the approver reads of a SubjectAccessReview's answer.
#[derive(serde::Deserialize)]
struct Review {
    status: Option<ReviewStatus>,
}

#[derive(serde::Deserialize)]
struct ReviewStatus {
    #[serde(default)]
    allowed: bool,
}

/// The approver.
pub struct Approver {
    client: Client,
    csrs: Informer,
    counters: Arc<Counters>,
    clock: Arc<dyn kubeboot_api::Clock>,
    /// `Some` when `--approve-kubelet-serving` is on.
    serving: Option<ServingRules>,
    /// The UID of each CSR (by name) already counted as denied, so each denial is logged
    /// and counted once; guarded by the lock; an entry goes when its CSR goes.
    denied_seen: std::sync::Mutex<std::collections::HashMap<String, String>>,
    events: crate::events::Recorder,
}

/// Starts the approver with `workers` workers.
pub fn start(
    source: &super::CsrSource,
    cx: &crate::Context,
    serving: Option<ServingRules>,
    workers: usize,
) {
    let (csrs, queue) = source.subscribe();
    crate::runner::run(
        &cx.tasks,
        Arc::new(Approver {
            client: cx.client.clone(),
            csrs,
            counters: cx.counters.clone(),
            clock: cx.clock.clone(),
            serving,
            denied_seen: Default::default(),
            events: crate::events::Recorder::new(cx.client.clone(), cx.tasks.clone()),
        }),
        queue,
        workers,
    );
}

impl Reconciler for Approver {
    fn name(&self) -> &'static str {
        "csrapproving"
    }

    fn reconcile(&self, key: String) -> BoxFuture<'_, Result<Action, ReconcileError>> {
        Box::pin(async move {
            // Most events need no action: decide on the light view first.
            let Some(view) = self.csrs.read(&key, CsrView::from_json) else {
                self.denied_seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&key);
                return Ok(Action::Done);
            };
            if view.has("Denied") {
                let first = self
                    .denied_seen
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(view.name.clone(), view.uid.clone())
                    .as_ref()
                    != Some(&view.uid);
                if first {
                    Counters::inc(&self.counters.denied);
                    tracing::info!(csr = %view.name, requester = %view.username, signer = %view.signer, "denied");
                    self.record_denial(&key);
                }
            }
            if !policy::needs_approval(&view) {
                return Ok(Action::Done);
            }
            let Some(obj) = self.csrs.get(&key) else {
                return Ok(Action::Done);
            };
            let view = CsrView::from_object(&obj);
            if !policy::needs_approval(&view) {
                return Ok(Action::Done);
            }
            let csr = parse_request(&obj, Signature::Admitted).map_err(ReconcileError)?;
            let recognized = policy::recognize(&view, &csr);
            for r in &recognized {
                if self.access_review(&obj, *r).await? {
                    return self.approve(&obj, &view, "AutoApproved", r.message()).await;
                }
            }
            if !recognized.is_empty() {
                let names: Vec<&str> = recognized.iter().map(|r| r.subresource()).collect();
                tracing::info!(csr = %view.name, requester = %view.username, "recognized csr {:?} as {names:?} but subject access review was not approved", view.name);
                return Ok(Action::RequeueAfter(Duration::from_secs(30)));
            }
            if let Some(rules) = &self.serving
                && view.signer == policy::KUBELET_SERVING
            {
                let groups: Vec<String> = obj
                    .pointer("/spec/groups")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|g| g.as_str().map(str::to_owned))
                    .collect();
                let node = view
                    .username
                    .strip_prefix("system:node:")
                    .unwrap_or_default();
                let addresses = self.node_addresses(node).await?;
                return match policy::serving_approvable(&view, &csr, &groups, &addresses, rules) {
                        Ok(()) => {
                            self.approve(&obj, &view, "AutoApproved", "Auto approving kubelet serving certificate: every requested name is an address of the node.").await
                        }
                        Err(why) => {
                            tracing::info!(csr = %view.name, requester = %view.username, signer = %view.signer, reason = %why, "not approving serving certificate");
                            // The node may publish its addresses later.
                            Ok(Action::RequeueAfter(Duration::from_secs(15)))
                        }
                    };
            }
            Ok(Action::Done)
        })
    }
}

impl Approver {
    async fn access_review(&self, obj: &Value, r: Recognizer) -> Result<bool, ReconcileError> {
        let spec = obj.get("spec").cloned().unwrap_or_default();
        let mut sar_spec = json!({
            "user": spec.get("username").cloned().unwrap_or_default(),
            "groups": spec.get("groups").cloned().unwrap_or(json!([])),
            "resourceAttributes": {"group": "certificates.k8s.io", "version": "*", "resource": "certificatesigningrequests", "subresource": r.subresource(), "verb": "create"},
        });
        if let Some(uid) = spec.get("uid") {
            sar_spec["uid"] = uid.clone();
        }
        if let Some(extra) = spec.get("extra") {
            sar_spec["extra"] = extra.clone();
        }
        let sar = json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": sar_spec});
        let out: Review = self
            .client
            .create("/apis/authorization.k8s.io/v1/subjectaccessreviews", &sar)
            .await?;
        Ok(out.status.is_some_and(|s| s.allowed))
    }

    async fn approve(
        &self,
        obj: &Value,
        view: &CsrView,
        reason: &str,
        message: &str,
    ) -> Result<Action, ReconcileError> {
        if super::add_condition(
            &self.client,
            obj,
            "approval",
            ("Approved", reason, message),
            self.clock.now(),
        )
        .await?
        {
            Counters::inc(&self.counters.approved);
            // The signer's `Issued` event tells of the approval with the signature: one
            // Event per admitted node, not two.
            tracing::info!(csr = %view.name, requester = %view.username, signer = %view.signer, %message, "approved");
        }
        Ok(Action::Done)
    }

    /// Records a denial (by whoever made it) as a Warning Event, once per CSR.
    fn record_denial(&self, key: &str) {
        let Some(obj) = self.csrs.get(key) else {
            return;
        };
        let message = format!(
            "Denied: {}",
            super::condition_field(&obj, "Denied", "message")
        );
        let what = Recorded {
            ty: EventType::Warning,
            reason: "Denied",
            message: message.trim_end_matches(": "),
            component: COMPONENT,
        };
        super::record(&self.events, &obj, &what, self.clock.now());
    }

    async fn node_addresses(&self, node: &str) -> Result<Vec<String>, ReconcileError> {
        match self
            .client
            .get::<Value>(&format!("/api/v1/nodes/{node}"))
            .await
        {
            Ok(n) => Ok(n
                .pointer("/status/addresses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|a| a.get("address").and_then(Value::as_str).map(str::to_owned))
                .collect()),
            Err(e) if e.code() == Some(404) => Ok(vec![]),
            Err(e) => Err(e.into()),
        }
    }
}
