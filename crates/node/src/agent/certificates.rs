//! The agent's two certificate managers, each driven by [`crate::rotation`]: the client
//! certificate (renewed as itself, after expiry with the bootstrap kubeconfig) and the
//! serving certificate (requested as the node from the kubelet-serving signer).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubeboot_api::clock::format_rfc3339;
use kubeboot_api::{Clock, Random};
use kubeboot_client::{CertSource, Client, RotatingTrust};
use tokio::sync::Notify;

use super::NodeConfig;
use crate::cert_store::StoredPair;
use crate::discovery::{CaOrigin, Cluster};
use crate::files::read_kubeconfig;
use crate::join::Bootstrap;
use crate::rotation::{Credential, Kind, Rotation, Step, Validity};
use crate::tls_bootstrap::{CLIENT_SIGNER, CertRequest, SERVING_SIGNER, request_certificate};

/// The clock and randomness the managers run on.
#[derive(Clone)]
pub(crate) struct Timing {
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) random: Arc<dyn Random>,
}

impl Timing {
    /// Sleeps until `t` on the injected clock, waking at least hourly to look again (the
    /// wall clock may jump, as after a suspend).
    async fn sleep_until(&self, t: SystemTime) {
        let left = t
            .duration_since(self.clock.now())
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(3600));
        tokio::time::sleep(left).await;
    }
}

fn validity(p: &StoredPair) -> Validity {
    Validity {
        not_before: p.not_before,
        not_after: p.not_after,
    }
}

/// What the client certificate's manager starts with: the cluster as the node's
/// kubeconfig names it, the trust its connections verify with (shared with the agent's
/// other connections), what they present, and the certificate held.
pub(crate) struct Held {
    pub(crate) cluster: Cluster,
    pub(crate) trust: RotatingTrust,
    pub(crate) certs: CertSource,
    pub(crate) pair: StoredPair,
}

/// Sleeps until `t`, or until `early` asks for a renewal now (whether it did).
async fn wait(timing: &Timing, t: SystemTime, early: &Notify) -> bool {
    tokio::select! {
        () = timing.sleep_until(t) => false,
        () = early.notified() => true,
    }
}

/// Keeps the client certificate fresh; `held.certs` is what the node's connections present.
pub(crate) async fn rotate_client(cfg: NodeConfig, held: Held, early: Arc<Notify>, timing: Timing) {
    let Held {
        mut cluster,
        trust,
        certs,
        pair,
    } = held;
    let paths = &cfg.paths;
    let mut rotation = Rotation::new(Kind::Client, Some(validity(&pair)), timing.random.unit());
    loop {
        let now = timing.clock.now();
        match rotation.next(now, paths.bootstrap_kubeconfig.exists()) {
            Step::WaitUntil(t) => {
                if wait(&timing, t, &early).await {
                    rotation.renew_now(timing.clock.now());
                }
            }
            Step::Stuck(why) => {
                let cert = paths.client_store().current_path();
                tracing::error!("{}", why.explain(&cert, &paths.bootstrap_kubeconfig));
                rotation.failed(now, timing.random.unit());
            }
            Step::Renew(with) => {
                match renew_client(&cfg, (&cluster, &trust), &certs, with, &timing).await {
                    Ok(pair) => {
                        tracing::info!(serial = %pair.serial, not_after = %format_rfc3339(pair.not_after), "rotated the client certificate");
                        rotation.renewed(validity(&pair), timing.random.unit());
                        if let Some(published) =
                            super::ca_bundle::adopt_published(&cluster, paths).await
                            && trust.set_pem(&published.ca_pem).is_ok()
                        {
                            cluster = published;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "renewing the client certificate failed; retrying");
                        rotation.failed(timing.clock.now(), timing.random.unit());
                    }
                }
            }
        }
    }
}

async fn renew_client(
    cfg: &NodeConfig,
    (cluster, trust): (&Cluster, &RotatingTrust),
    certs: &CertSource,
    with: Credential,
    timing: &Timing,
) -> Result<StoredPair, String> {
    let client = match with {
        Credential::Current => {
            super::agent_client(&cluster.server, trust, certs).map_err(|e| e.to_string())?
        }
        Credential::Bootstrap => {
            tracing::warn!(
                "the client certificate expired; renewing with the bootstrap kubeconfig"
            );
            let kc = read_kubeconfig(&cfg.paths.bootstrap_kubeconfig).map_err(|e| e.to_string())?;
            Bootstrap::from_kubeconfig(kc, CaOrigin::Local)
                .map_err(|e| e.to_string())?
                .client
        }
    };
    let req = CertRequest {
        node_name: cfg.node_name.clone(),
        signer: CLIENT_SIGNER,
        dns_names: vec![],
        ip_addresses: vec![],
    };
    let issued = request_certificate(&client, &req, cfg.csr_timeout)
        .await
        .map_err(|e| e.to_string())?;
    let pair = cfg
        .paths
        .write_client_certificate(
            cluster,
            &issued.cert_pem,
            &issued.key_pem,
            timing.clock.now(),
        )
        .map_err(|e| format!("storing the new certificate: {e}"))?;
    certs
        .set_pem(&pair.pem, &pair.pem)
        .map_err(|e| format!("the new certificate cannot be used: {e}"))?;
    Ok(pair)
}

/// Obtains and keeps fresh the serving certificate (names: the node name and its IPs),
/// which `serving` presents.
pub(crate) async fn rotate_serving(
    cfg: NodeConfig,
    client: Client,
    serving: CertSource,
    (ips, early): (Vec<IpAddr>, Arc<Notify>),
    timing: Timing,
) {
    let store = cfg.paths.server_store();
    let held = store
        .load()
        .ok()
        .flatten()
        .filter(|p| p.not_after > timing.clock.now());
    if let Some(p) = &held {
        let _ = serving.set_pem(&p.pem, &p.pem);
    }
    let mut rotation = Rotation::new(
        Kind::Serving,
        held.as_ref().map(validity),
        timing.random.unit(),
    );
    let req = CertRequest {
        node_name: cfg.node_name.clone(),
        signer: SERVING_SIGNER,
        dns_names: vec![cfg.node_name.clone()],
        ip_addresses: ips,
    };
    loop {
        if let Step::WaitUntil(t) = rotation.next(timing.clock.now(), false) {
            if wait(&timing, t, &early).await {
                rotation.renew_now(timing.clock.now());
            }
            continue;
        }
        let obtained = match request_certificate(&client, &req, cfg.csr_timeout).await {
            Ok(issued) => store
                .store_current(&issued.cert_pem, &issued.key_pem, timing.clock.now())
                .map_err(|e| format!("storing the serving certificate: {e}")),
            Err(e) => Err(e.to_string()),
        };
        match obtained {
            Ok(pair) => {
                let _ = serving.set_pem(&pair.pem, &pair.pem);
                tracing::info!(serial = %pair.serial, "obtained a serving certificate");
                rotation.renewed(validity(&pair), timing.random.unit());
            }
            Err(e) => {
                tracing::warn!(error = %e, "obtaining the serving certificate failed; retrying");
                rotation.failed(timing.clock.now(), timing.random.unit());
            }
        }
    }
}
