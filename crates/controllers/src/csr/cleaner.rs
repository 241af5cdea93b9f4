//! csrcleaner: deletes CSRs at Kubernetes' ages — each one scheduled for its own deadline,
//! not found by an hourly sweep.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kubeboot_client::Client;
use serde_json::json;

use super::policy;
use super::{CSRS, CsrView};
use crate::metrics::Counters;
use crate::runner::{Action, BoxFuture, Informer, ReconcileError, Reconciler};

/// The cleaner.
pub struct Cleaner {
    client: Client,
    csrs: Informer,
    counters: Arc<Counters>,
    clock: Arc<dyn kubeboot_api::Clock>,
}

/// Starts the cleaner.
pub fn start(source: &super::CsrSource, cx: &crate::Context) {
    let (csrs, queue) = source.subscribe();
    crate::runner::run(
        &cx.tasks,
        Arc::new(Cleaner {
            client: cx.client.clone(),
            csrs,
            counters: cx.counters.clone(),
            clock: cx.clock.clone(),
        }),
        queue,
        2,
    );
}

/// The notAfter of the first certificate of a PEM bundle.
pub fn cert_not_after(pem: &[u8]) -> Option<SystemTime> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&block.contents).ok()?;
    Some(
        UNIX_EPOCH
            + Duration::from_secs(u64::try_from(cert.validity().not_after.timestamp()).ok()?),
    )
}

impl Reconciler for Cleaner {
    fn name(&self) -> &'static str {
        "csrcleaner"
    }

    fn reconcile(&self, key: String) -> BoxFuture<'_, Result<Action, ReconcileError>> {
        Box::pin(async move {
            let Some(view) = self.csrs.read(&key, CsrView::from_json) else {
                return Ok(Action::Done);
            };
            let Some((at, why)) = policy::cleanup_at(&view, cert_not_after(&view.certificate))
            else {
                return Ok(Action::Done);
            };
            let now = self.clock.now();
            if at > now {
                return Ok(Action::RequeueAfter(
                    at.duration_since(now).unwrap_or_default() + Duration::from_millis(20),
                ));
            }
            let opts = json!({"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": view.uid}});
            match self
                .client
                .delete(&format!("{CSRS}/{}", view.name), Some(&opts))
                .await
            {
                Ok(()) => {
                    Counters::inc(&self.counters.cleaned);
                    tracing::info!(csr = %view.name, requester = %view.username, signer = %view.signer, reason = why, "cleaned");
                }
                Err(e) if matches!(e.code(), Some(404 | 409)) => {}
                Err(e) => return Err(e.into()),
            }
            Ok(Action::Done)
        })
    }
}
