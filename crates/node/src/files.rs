//! Where a node keeps its credentials, in the kubelet's layout, and how they are written:
//! the bootstrap kubeconfig, the node's kubeconfig (naming `kubelet-client-current.pem`),
//! and the certificate stores under the cert dir. Every file is private and written
//! atomically.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine;
use kubeboot_pki::Kubeconfig;
use kubeboot_pki::files::{Mode, write_atomic};
use kubeboot_pki::kubeconfig::{AuthInfo, Context, NamedCluster, NamedContext, NamedUser};

use crate::cert_store::{CertStore, StoredPair};
use crate::discovery::Cluster;

/// The node's files (the kubelet's `--bootstrap-kubeconfig`, `--kubeconfig`, `--cert-dir`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodePaths {
    /// The bootstrap kubeconfig.
    pub bootstrap_kubeconfig: PathBuf,
    /// The node's kubeconfig.
    pub kubeconfig: PathBuf,
    /// Where certificates and keys are kept.
    pub cert_dir: PathBuf,
}

impl NodePaths {
    /// The paths given, each defaulting to its name under `dir`, or without `dir` to the
    /// kubelet's (kubeadm's) own places.
    pub fn resolve(
        dir: Option<&Path>,
        bootstrap_kubeconfig: Option<&Path>,
        kubeconfig: Option<&Path>,
        cert_dir: Option<&Path>,
    ) -> Self {
        let pick = |given: Option<&Path>, name: &str, default: &str| -> PathBuf {
            given
                .map(Path::to_owned)
                .unwrap_or_else(|| dir.map_or_else(|| PathBuf::from(default), |d| d.join(name)))
        };
        Self {
            bootstrap_kubeconfig: pick(
                bootstrap_kubeconfig,
                "bootstrap-kubelet.conf",
                "/etc/kubernetes/bootstrap-kubelet.conf",
            ),
            kubeconfig: pick(kubeconfig, "kubelet.conf", "/etc/kubernetes/kubelet.conf"),
            cert_dir: pick(cert_dir, "pki", "/var/lib/kubelet/pki"),
        }
    }

    /// `kubelet-client-*.pem`.
    pub fn client_store(&self) -> CertStore {
        CertStore::new(&self.cert_dir, "kubelet-client")
    }

    /// `kubelet-server-*.pem`.
    pub fn server_store(&self) -> CertStore {
        CertStore::new(&self.cert_dir, "kubelet-server")
    }

    /// Writes what a join brings, in the order that never leaves a kubeconfig naming a
    /// certificate that is not there: the bootstrap kubeconfig, the client certificate and
    /// key, then the node's kubeconfig. Returns the stored pair.
    pub fn write_joined(
        &self,
        bootstrap: &Kubeconfig,
        cluster: &Cluster,
        cert_pem: &[u8],
        key_pem: &[u8],
        now: SystemTime,
    ) -> std::io::Result<StoredPair> {
        write_atomic(
            &self.bootstrap_kubeconfig,
            bootstrap.to_yaml().as_bytes(),
            Mode::Private,
        )
        .map_err(|e| in_file(&self.bootstrap_kubeconfig, e))?;
        self.write_client_certificate(cluster, cert_pem, key_pem, now)
    }

    /// Stores a new client certificate and key and points the node's kubeconfig at it.
    pub fn write_client_certificate(
        &self,
        cluster: &Cluster,
        cert_pem: &[u8],
        key_pem: &[u8],
        now: SystemTime,
    ) -> std::io::Result<StoredPair> {
        let pair = self
            .client_store()
            .store_current(cert_pem, key_pem, now)
            .map_err(|e| in_file(&self.cert_dir, e))?;
        self.write_node_kubeconfig(cluster)?;
        Ok(pair)
    }

    /// Writes `--kubeconfig` as the kubelet does: the cluster's CA inline, the user the
    /// absolute path of `kubelet-client-current.pem`.
    pub fn write_node_kubeconfig(&self, cluster: &Cluster) -> std::io::Result<()> {
        let current = self.client_store().current_path();
        let current = std::path::absolute(&current)
            .unwrap_or(current)
            .display()
            .to_string();
        let kc = Kubeconfig {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: "default-cluster".into(),
                cluster: kubeboot_pki::kubeconfig::Cluster {
                    server: cluster.server.clone(),
                    certificate_authority_data: Some(
                        base64::engine::general_purpose::STANDARD.encode(&cluster.ca_pem),
                    ),
                    ..Default::default()
                },
            }],
            contexts: vec![NamedContext {
                name: "default-context".into(),
                context: Context {
                    cluster: "default-cluster".into(),
                    user: "default-auth".into(),
                    namespace: Some("default".into()),
                },
            }],
            current_context: "default-context".into(),
            users: vec![NamedUser {
                name: "default-auth".into(),
                user: AuthInfo {
                    client_certificate: Some(current.clone()),
                    client_key: Some(current),
                    ..Default::default()
                },
            }],
        };
        write_atomic(&self.kubeconfig, kc.to_yaml().as_bytes(), Mode::Private)
            .map_err(|e| in_file(&self.kubeconfig, e))
    }
}

/// Reads a kubeconfig file.
pub fn read_kubeconfig(path: &Path) -> std::io::Result<Kubeconfig> {
    let text = std::fs::read_to_string(path).map_err(|e| in_file(path, e))?;
    Kubeconfig::from_yaml(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })
}

fn in_file(path: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_default_under_the_dir_or_to_the_kubelets_places() {
        let d = NodePaths::resolve(Some(Path::new("w1")), None, None, None);
        assert_eq!(
            d.bootstrap_kubeconfig,
            Path::new("w1/bootstrap-kubelet.conf")
        );
        assert_eq!(d.kubeconfig, Path::new("w1/kubelet.conf"));
        assert_eq!(d.cert_dir, Path::new("w1/pki"));
        let k = NodePaths::resolve(None, None, Some(Path::new("/k.conf")), None);
        assert_eq!(
            k.bootstrap_kubeconfig,
            Path::new("/etc/kubernetes/bootstrap-kubelet.conf")
        );
        assert_eq!(k.kubeconfig, Path::new("/k.conf"));
        assert_eq!(k.cert_dir, Path::new("/var/lib/kubelet/pki"));
    }
}
