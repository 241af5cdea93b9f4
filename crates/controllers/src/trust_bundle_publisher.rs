//! kube-apiserver-serving-clustertrustbundle-publisher-controller
//! (`pkg/controller/certificates/clustertrustbundlepublisher`): keeps, for each signer
//! whose CA this control plane holds, exactly one signer-linked ClusterTrustBundle with
//! that CA, named `<signerName with / as :>:<hex of the first 12 bytes of its SHA-256>`,
//! and deletes every other bundle of the signer. Kubernetes publishes only
//! `kubernetes.io/kube-apiserver-serving` (the CA that the API server's serving
//! certificate chains to); kubeboot also publishes the CA of every signer csrsigning runs,
//! so that a node or a pod can learn from the API which CA issues what.
//!
//! The API version is found by discovery at start (v1, else v1beta1); an API server that
//! serves neither leaves the controller idle, as kube-controller-manager does.

use std::sync::Arc;
use std::time::Duration;

use kubeboot_client::Client;
use kubeboot_pki::reload::Reloading;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::csr::signer::SigningCa;
use crate::runner::{Action, BoxFuture, Informer, Queue, ReconcileError, Reconciler};

/// The controller's name in `--controllers`.
pub const NAME: &str = "kube-apiserver-serving-clustertrustbundle-publisher-controller";

/// The signer whose bundle holds the CA of the API server's serving certificate.
pub const KUBE_APISERVER_SERVING: &str = "kubernetes.io/kube-apiserver-serving";

/// The name of the bundle that holds `pem` for `signer` (`constructBundleName`).
pub fn bundle_name(signer: &str, pem: &str) -> String {
    let hash = Sha256::digest(pem.as_bytes());
    format!("{}:{}", signer.replace('/', ":"), hex::encode(&hash[..12]))
}

/// One write that brings a signer's bundles in line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Create the bundle of this name.
    Create(String),
    /// Replace the trust bundle of the existing bundle of this name.
    Update(String),
    /// Delete the bundle of this name.
    Delete(String),
}

/// What to write, given the signer's bundles as `(name, trustBundle)` (`syncClusterTrustBundle`).
pub fn writes(signer: &str, pem: &str, existing: &[(String, String)]) -> Vec<Write> {
    let want = bundle_name(signer, pem);
    let mut out = match existing.iter().find(|(name, _)| *name == want) {
        None => vec![Write::Create(want.clone())],
        Some((_, bundle)) if bundle != pem => vec![Write::Update(want.clone())],
        Some(_) => vec![],
    };
    out.extend(
        existing
            .iter()
            .filter(|(name, _)| *name != want)
            .map(|(name, _)| Write::Delete(name.clone())),
    );
    out
}

/// Where a signer's bundle comes from: a CA file (`--root-ca-file`: every CA a client of
/// the API server should trust, the whole file), or the CA a signer csrsigning runs signs
/// with (only that one: during a CA rotation a node sees its signer move to the new CA and
/// renews); either is read again when it changes.
#[derive(Clone)]
pub enum Source {
    /// A CA bundle file.
    File(Arc<Reloading<String>>),
    /// A signer's CA files.
    Signer(Arc<Reloading<SigningCa>>),
}

impl Source {
    /// The bundle of the moment.
    pub fn pem(&self) -> String {
        match self {
            Self::File(f) => f.get().as_ref().clone(),
            Self::Signer(s) => s.get().ca.cert_pem().to_owned(),
        }
    }

    /// A CA bundle file (checked to hold a certificate), read again when it changes.
    pub fn file(path: std::path::PathBuf) -> Result<Self, String> {
        let read = Reloading::files(
            vec![path],
            Box::new(|t: &[String]| {
                match kubeboot_pki::pem::blocks(&t[0])
                    .iter()
                    .any(|b| b.label == "CERTIFICATE")
                {
                    true => Ok(t[0].clone()),
                    false => Err("holds no PEM certificate".into()),
                }
            }),
        )?;
        Ok(Self::File(Arc::new(read)))
    }
}

/// How often the sources are compared with what is published, besides every change of a
/// bundle (as kube-controller-manager's publisher listens for CA file changes).
const RESYNC: Duration = Duration::from_secs(2);

/// The controller.
struct Publisher {
    client: Client,
    bundles: Informer,
    /// What each signer's bundle holds.
    published: Vec<(String, Source)>,
    /// `/apis/certificates.k8s.io/<version>/clustertrustbundles`.
    collection: String,
    queue: Arc<Queue>,
}

/// Starts publishing the bundle of each signer of `published`.
pub fn start(cx: &crate::Context, published: Vec<(String, Source)>) {
    let (tasks, client) = (cx.tasks.clone(), cx.client.clone());
    cx.tasks.spawn(async move {
        let Some(version) = served_version(&client).await else {
            tracing::warn!(
                controller = NAME,
                "the API server serves no ClusterTrustBundles (certificates.k8s.io v1 or v1beta1): no trust bundle is published"
            );
            return;
        };
        let collection = format!("/apis/certificates.k8s.io/{version}/clustertrustbundles");
        let queue = Arc::new(Queue::default());
        let q = queue.clone();
        let bundles = Informer::start(&tasks, client.clone(), collection.clone(), move |key| {
            q.add(key)
        });
        for (signer, _) in &published {
            queue.add(signer);
        }
        let publisher = Publisher {
            client,
            bundles,
            published,
            collection,
            queue: queue.clone(),
        };
        crate::runner::run(&tasks, Arc::new(publisher), queue, 1);
    });
}

/// `v1` or `v1beta1`, whichever certificates.k8s.io version serves clustertrustbundles
/// first; None when neither does (or discovery fails).
async fn served_version(client: &Client) -> Option<&'static str> {
    for version in ["v1", "v1beta1"] {
        let path = format!("/apis/certificates.k8s.io/{version}");
        let Ok(list) = client.get::<Value>(&path).await else {
            continue;
        };
        let serves = list
            .get("resources")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|r| r["name"] == "clustertrustbundles"));
        if serves {
            return Some(version);
        }
    }
    None
}

impl Reconciler for Publisher {
    fn name(&self) -> &'static str {
        NAME
    }

    /// `key` is a signer name, or a bundle's name (whose signer is then looked up).
    fn reconcile(&self, key: String) -> BoxFuture<'_, Result<Action, ReconcileError>> {
        Box::pin(async move {
            self.bundles.wait_synced().await;
            let Some((signer, source)) = self
                .published
                .iter()
                .find(|(s, _)| *s == key || key.starts_with(&format!("{}:", s.replace('/', ":"))))
            else {
                return Ok(Action::Done);
            };
            if *signer != key {
                // A bundle changed: look at its signer (which is queued on its own).
                self.queue.add(signer);
                return Ok(Action::Done);
            }
            let pem = &source.pem();
            let existing: Vec<(String, String)> = self
                .bundles
                .list()
                .iter()
                .filter(|b| b.pointer("/spec/signerName").and_then(Value::as_str) == Some(signer))
                .map(|b| (text(b, "/metadata/name"), text(b, "/spec/trustBundle")))
                .collect();
            for w in writes(signer, pem, &existing) {
                self.write(signer, pem, &w).await?;
            }
            Ok(Action::RequeueAfter(RESYNC))
        })
    }
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl Publisher {
    async fn write(&self, signer: &str, pem: &str, w: &Write) -> Result<(), ReconcileError> {
        let result = match w {
            Write::Create(name) => {
                let bundle = json!({
                    "apiVersion": self.api_version(),
                    "kind": "ClusterTrustBundle",
                    "metadata": {"name": name},
                    "spec": {"signerName": signer, "trustBundle": pem},
                });
                self.client
                    .create::<Value>(&self.collection, &bundle)
                    .await
                    .map(drop)
            }
            Write::Update(name) => {
                let Some(mut bundle) = self.bundles.get(name) else {
                    return Ok(());
                };
                bundle["spec"]["trustBundle"] = json!(pem);
                let path = format!("{}/{name}", self.collection);
                self.client.update::<Value>(&path, &bundle).await.map(drop)
            }
            Write::Delete(name) => {
                let path = format!("{}/{name}", self.collection);
                self.client.delete(&path, None).await.map(drop)
            }
        };
        match result {
            Ok(()) => {
                tracing::info!(controller = NAME, signer, write = ?w, "trust bundle published");
                Ok(())
            }
            // Someone else wrote first, or it is gone already: the watch brings us back.
            Err(e) if matches!(e.code(), Some(404 | 409)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn api_version(&self) -> &str {
        match self.collection.contains("/v1beta1/") {
            true => "certificates.k8s.io/v1beta1",
            false => "certificates.k8s.io/v1",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_is_named_by_its_signer_and_content() {
        // SHA-256 of nothing is e3b0c44298fc1c149afbf4c8996fb924...
        assert_eq!(
            bundle_name(KUBE_APISERVER_SERVING, ""),
            "kubernetes.io:kube-apiserver-serving:e3b0c44298fc1c149afbf4c8"
        );
        assert_ne!(
            bundle_name(KUBE_APISERVER_SERVING, "a"),
            bundle_name(KUBE_APISERVER_SERVING, "b")
        );
    }

    #[test]
    fn one_bundle_per_signer_is_kept() {
        let signer = "kubernetes.io/kubelet-serving";
        let want = bundle_name(signer, "new");
        let e = |n: &str, b: &str| (n.to_owned(), b.to_owned());
        assert_eq!(writes(signer, "new", &[]), [Write::Create(want.clone())]);
        assert_eq!(writes(signer, "new", &[e(&want, "new")]), []);
        assert_eq!(
            writes(signer, "new", &[e(&want, "edited")]),
            [Write::Update(want.clone())]
        );
        let old = bundle_name(signer, "old");
        assert_eq!(
            writes(signer, "new", &[e(&old, "old"), e(&want, "new")]),
            [Write::Delete(old.clone())]
        );
        assert_eq!(
            writes(signer, "new", &[e(&old, "old")]),
            [Write::Create(want), Write::Delete(old)]
        );
    }
}
