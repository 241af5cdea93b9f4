//! csrsigning: signs approved CSRs of the signers it serves with their CA, after checking
//! each signer's rules; a CSR that breaks them gets a `Failed` condition and no certificate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use kubeboot_client::Client;
use kubeboot_pki::CertificateAuthority;
use kubeboot_pki::reload::Reloading;
use serde_json::{Value, json};

use super::policy::{self, SigningPolicy};
use super::{CSRS, CsrView, Signature, parse_request};
use crate::events::{EventType, Recorded};
use crate::metrics::Counters;
use crate::runner::{Action, BoxFuture, Informer, ReconcileError, Reconciler};

/// A signer's CA as its files hold it: the first certificate of the certificate file (which
/// may list other CAs after it, during a CA rotation) and the key.
pub struct SigningCa {
    /// The CA that signs.
    pub ca: CertificateAuthority,
}

impl SigningCa {
    /// Reads `cert` and `key`, and again whenever they change.
    pub fn open(cert: PathBuf, key: PathBuf) -> Result<Reloading<Self>, String> {
        Reloading::files(
            vec![cert, key],
            Box::new(|t: &[String]| {
                Ok(Self {
                    ca: CertificateAuthority::from_pem(&t[0], &t[1]).map_err(|e| e.to_string())?,
                })
            }),
        )
    }
}

/// The CA of each signer name served.
pub type SignerCas = HashMap<&'static str, Arc<Reloading<SigningCa>>>;

/// The signer.
pub struct Signer {
    client: Client,
    csrs: Informer,
    /// The CA of each served signer name, read again when its files change.
    cas: SignerCas,
    policy: SigningPolicy,
    counters: Arc<Counters>,
    clock: Arc<dyn kubeboot_api::Clock>,
    /// Draws serial numbers.
    random: Arc<dyn kubeboot_api::random::Random>,
    events: crate::events::Recorder,
}

/// Starts the signer for the signers in `cas`, with `workers` workers.
pub fn start(
    source: &super::CsrSource,
    cx: &crate::Context,
    (cas, policy): (SignerCas, SigningPolicy),
    workers: usize,
) {
    let (csrs, queue) = source.subscribe();
    crate::runner::run(
        &cx.tasks,
        Arc::new(Signer {
            client: cx.client.clone(),
            csrs,
            cas,
            policy,
            counters: cx.counters.clone(),
            clock: cx.clock.clone(),
            random: cx.random.clone(),
            events: crate::events::Recorder::new(cx.client.clone(), cx.tasks.clone()),
        }),
        queue,
        workers,
    );
}

impl Reconciler for Signer {
    fn name(&self) -> &'static str {
        "csrsigning"
    }

    fn reconcile(&self, key: String) -> BoxFuture<'_, Result<Action, ReconcileError>> {
        Box::pin(async move {
            // Most events need no action: decide on the light view first.
            let Some(view) = self.csrs.read(&key, CsrView::from_json) else {
                return Ok(Action::Done);
            };
            let Some(ca) = self.cas.get(view.signer.as_str()).map(|c| c.get()) else {
                return Ok(Action::Done);
            };
            if !policy::ready_to_sign(&view) {
                return Ok(Action::Done);
            }
            let Some(obj) = self.csrs.get(&key) else {
                return Ok(Action::Done);
            };
            let view = CsrView::from_object(&obj);
            if !policy::ready_to_sign(&view) {
                return Ok(Action::Done);
            }
            let csr = match parse_request(&obj, Signature::Verify) {
                Ok(c) => c,
                Err(e) => return self.fail(&obj, &view, &e).await,
            };
            if let Some(violation) = policy::signer_violation(&view.signer, &csr, &view.usages) {
                return self.fail(&obj, &view, &violation).await;
            }
            let spec = match policy::leaf_spec(
                &self.policy,
                &view,
                &csr,
                ca.ca.not_after(),
                self.clock.now(),
                kubeboot_api::random::bytes(&*self.random),
            ) {
                Ok(s) => s,
                Err(e) => return self.fail(&obj, &view, &e).await,
            };
            let spki = csr.spki_der.clone();
            let spec_for_log = (spec.serial, spec.not_after);
            let cert = if ca.ca.signs_quickly() {
                ca.ca.issue_for_spki(&spec, &spki)
            } else {
                tokio::task::spawn_blocking(move || ca.ca.issue_for_spki(&spec, &spki))
                    .await
                    .map_err(|e| ReconcileError(e.to_string()))?
            }
            .map_err(|e| ReconcileError(e.to_string()))?;
            let mut updated = obj.clone();
            updated["status"]["certificate"] =
                json!(base64::engine::general_purpose::STANDARD.encode(cert.pem.as_bytes()));
            match self
                .client
                .update::<serde::de::IgnoredAny>(&format!("{CSRS}/{}/status", view.name), &updated)
                .await
            {
                Ok(_) => {
                    Counters::inc(&self.counters.signed);
                    let serial: String = kubeboot_pki::cert::issued_serial(spec_for_log.0)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                    let not_after = kubeboot_api::clock::format_rfc3339(spec_for_log.1);
                    tracing::info!(csr = %view.name, requester = %view.username, signer = %view.signer, %serial,
                        %not_after, "signed");
                    let message = format!(
                        "Approved ({}: {}) and signed by {}: serial {serial}, valid until {not_after}",
                        super::condition_field(&obj, "Approved", "reason"),
                        super::condition_field(&obj, "Approved", "message"),
                        view.signer
                    );
                    self.record(&obj, EventType::Normal, "Issued", &message);
                    Ok(Action::Done)
                }
                Err(e) if matches!(e.code(), Some(404 | 409)) => Ok(Action::Done),
                Err(e) => Err(e.into()),
            }
        })
    }
}

impl Signer {
    async fn fail(
        &self,
        obj: &Value,
        view: &CsrView,
        message: &str,
    ) -> Result<Action, ReconcileError> {
        if super::add_condition(
            &self.client,
            obj,
            "status",
            ("Failed", "SignerValidationFailure", message),
            self.clock.now(),
        )
        .await?
        {
            Counters::inc(&self.counters.failed);
            tracing::info!(csr = %view.name, requester = %view.username, signer = %view.signer, %message, "failed");
            self.record(obj, EventType::Warning, "SignerValidationFailure", message);
        }
        Ok(Action::Done)
    }

    fn record(&self, csr: &Value, ty: EventType, reason: &str, message: &str) {
        let what = Recorded {
            ty,
            reason,
            message,
            component: "csrsigning",
        };
        super::record(&self.events, csr, &what, self.clock.now());
    }
}
