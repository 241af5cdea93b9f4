//! The cluster's CA bundle as `kube-public/cluster-info` publishes it, read when the agent
//! starts and after each client certificate rotation. When its certificates differ from
//! those the node holds (a CA rotation adds the new CA beside the old, later drops the
//! old), the node adopts the published bundle: `--kubeconfig` is rewritten with it and the
//! connections made from then on trust it.
//!
//! cluster-info is read anonymously, as kubeadm's Role allows it (`system:anonymous`
//! only), over TLS verified by the bundle the node already holds: what it says is the
//! cluster's own word, and its server URL is ignored (the node keeps the one it was given).
//!
//! While the agent runs, [`follow`] looks again every few seconds, and also at the
//! ClusterTrustBundles of the node's two signers: when a signer has moved to a CA that did
//! not issue the node's certificate (a CA rotation's switch), that certificate is renewed
//! at once rather than at 70–90 % of its life.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kubeboot_client::{Client, Identity, RotatingTrust, Trust};
use kubeboot_pki::Kubeconfig;
use serde_json::Value;
use tokio::sync::Notify;

use crate::discovery::{CLUSTER_INFO, CaOrigin, Cluster, cluster_of};
use crate::files::NodePaths;
use crate::rotation::{adopt_ca_bundle, signer_moved};
use crate::tls_bootstrap::{CLIENT_SIGNER, SERVING_SIGNER};

/// How often the published bundles are looked at.
const FOLLOW_EVERY: Duration = Duration::from_secs(5);

/// Wakes a certificate manager for a renewal before its deadline.
#[derive(Clone, Default)]
pub(crate) struct Renewals {
    /// The client certificate's manager.
    pub(crate) client: Arc<Notify>,
    /// The serving certificate's manager.
    pub(crate) serving: Arc<Notify>,
}

/// Keeps the node's trust and certificates in step with the cluster's CA: adopts the
/// bundle cluster-info publishes (into `trust`, which the node's connections verify
/// with), and wakes a manager in `renewals` when its signer moved to another CA.
pub(crate) async fn follow(
    mut cluster: Cluster,
    paths: NodePaths,
    trust: RotatingTrust,
    client: Client,
    renewals: Renewals,
) {
    let watched: [(&str, PathBuf, &Arc<Notify>); 2] = [
        (
            CLIENT_SIGNER,
            paths.client_store().current_path(),
            &renewals.client,
        ),
        (
            SERVING_SIGNER,
            paths.server_store().current_path(),
            &renewals.serving,
        ),
    ];
    let mut woken_for: [Vec<u8>; 2] = Default::default();
    let mut unread = 0;
    loop {
        tokio::time::sleep(FOLLOW_EVERY).await;
        match try_adopt_published(&cluster, &paths).await {
            Ok(next) => {
                if unread >= UNREAD_BEFORE_WARNING {
                    tracing::info!("cluster-info is readable again");
                }
                unread = 0;
                if let Some(next) = next {
                    match trust.set_pem(&next.ca_pem) {
                        Ok(()) => cluster = next,
                        Err(e) => tracing::warn!(error = %e, "the adopted CA bundle is unusable"),
                    }
                }
            }
            Err(e) => {
                unread += 1;
                if warn_unread(unread) {
                    tracing::warn!(error = %e, "cluster-info has not been readable for 30s: this node cannot follow a CA rotation until it is (if the API server's certificate is of a CA the node does not trust, join the node again with the new CA's pin)");
                }
            }
        }
        for (i, (signer, cert, renew)) in watched.iter().enumerate() {
            let bundle = signer_bundle(&client, signer).await;
            let Ok(held) = std::fs::read(cert) else {
                continue;
            };
            if bundle != woken_for[i] && signer_moved(&held, &bundle) {
                tracing::info!(
                    signer,
                    "the signer moved to another CA; renewing the certificate now"
                );
                renew.notify_one();
                woken_for[i] = bundle;
            }
        }
    }
}

/// The trust bundles published for `signer` (certificates.k8s.io v1, else v1beta1), one
/// PEM text; empty when the API server publishes none.
async fn signer_bundle(client: &Client, signer: &str) -> Vec<u8> {
    for version in ["v1", "v1beta1"] {
        let path = format!(
            "/apis/certificates.k8s.io/{version}/clustertrustbundles?fieldSelector=spec.signerName%3D{}",
            signer.replace('/', "%2F")
        );
        if let Ok(list) = client.get::<Value>(&path).await {
            return list["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|b| b.pointer("/spec/trustBundle").and_then(Value::as_str))
                .collect::<String>()
                .into_bytes();
        }
    }
    Vec::new()
}

/// The bundle published in a cluster-info ConfigMap.
fn published_bundle(config_map: &Value) -> Result<Vec<u8>, String> {
    let text = config_map
        .pointer("/data/kubeconfig")
        .and_then(Value::as_str)
        .ok_or("cluster-info has no data.kubeconfig")?;
    let kc = Kubeconfig::from_yaml(text).map_err(|e| format!("cluster-info: {e}"))?;
    Ok(cluster_of(&kc, CaOrigin::Remote)
        .map_err(|e| e.to_string())?
        .ca_pem)
}

/// Reads cluster-info over a connection `cluster`'s bundle verifies; the cluster with the
/// published bundle when it differs, its kubeconfig already rewritten (`None`: nothing
/// changed, or cluster-info could not be read, which is logged and retried next time).
pub(crate) async fn adopt_published(cluster: &Cluster, paths: &NodePaths) -> Option<Cluster> {
    match try_adopt_published(cluster, paths).await {
        Ok(next) => next,
        Err(e) => {
            tracing::debug!(error = %e, "could not read the CA bundle cluster-info publishes");
            None
        }
    }
}

/// As [`adopt_published`], with why cluster-info could not be read.
async fn try_adopt_published(
    cluster: &Cluster,
    paths: &NodePaths,
) -> Result<Option<Cluster>, String> {
    let read = async {
        let client = Client::new(
            &cluster.server,
            Trust::from_pem(&cluster.ca_pem).map_err(|e| e.to_string())?,
            Identity::Anonymous,
        )
        .map_err(|e| e.to_string())?;
        let cm: Value = client.get(CLUSTER_INFO).await.map_err(|e| e.to_string())?;
        published_bundle(&cm)
    };
    let seen = read.await?;
    let Some(ca_pem) = adopt_ca_bundle(&cluster.ca_pem, &seen) else {
        return Ok(None);
    };
    let next = Cluster {
        server: cluster.server.clone(),
        ca_pem,
    };
    if let Err(e) = paths.write_node_kubeconfig(&next) {
        tracing::warn!(error = %e, kubeconfig = %paths.kubeconfig.display(), "could not write the CA bundle cluster-info publishes; keeping the one held");
        return Ok(None);
    }
    tracing::info!(kubeconfig = %paths.kubeconfig.display(), "adopted the CA bundle cluster-info publishes");
    Ok(Some(next))
}

/// How many looks at cluster-info in a row may fail before the agent warns: 30 s.
const UNREAD_BEFORE_WARNING: u32 = 6;

/// Whether the `failures`-th failed look in a row is the one to warn about.
fn warn_unread(failures: u32) -> bool {
    failures == UNREAD_BEFORE_WARNING
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_info_unreadable_for_30s_is_warned_about_once() {
        let warned: Vec<u32> = (1..=20).filter(|n| warn_unread(*n)).collect();
        assert_eq!(warned, [6]);
        assert_eq!(
            FOLLOW_EVERY * UNREAD_BEFORE_WARNING,
            Duration::from_secs(30)
        );
    }

    #[test]
    fn the_bundle_comes_from_the_inline_ca_only() {
        let ca = kubeboot_testkit::test_ca(std::time::SystemTime::UNIX_EPOCH);
        let pem = ca.cert_pem().to_owned();
        let cm = serde_json::json!({"data": {"kubeconfig":
            kubeboot_bootstrap::cluster_info::kubeconfig("https://10.0.0.1:6443", &pem)}});
        assert_eq!(published_bundle(&cm).unwrap(), pem.as_bytes());
        let by_path = serde_json::json!({"data": {"kubeconfig": "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://10.0.0.1:6443\n    certificate-authority: /etc/ca.crt\n"}});
        assert!(
            published_bundle(&by_path).is_err(),
            "a path is never opened"
        );
        assert!(published_bundle(&serde_json::json!({"data": {}})).is_err());
    }
}
