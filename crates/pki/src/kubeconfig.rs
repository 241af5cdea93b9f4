//! The kubeconfig file model (`apiVersion: v1, kind: Config`), as kubectl and the kubelet read it.

use serde::{Deserialize, Serialize};

/// A kubeconfig. Its `Debug` redacts credentials.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Kubeconfig {
    /// `v1`.
    #[serde(rename = "apiVersion", default, deserialize_with = "null_as_default")]
    pub api_version: String,
    /// `Config`.
    #[serde(default, deserialize_with = "null_as_default")]
    pub kind: String,
    /// Named clusters.
    #[serde(default, deserialize_with = "null_as_default")]
    pub clusters: Vec<NamedCluster>,
    /// Named contexts.
    #[serde(default, deserialize_with = "null_as_default")]
    pub contexts: Vec<NamedContext>,
    /// The context in use.
    #[serde(
        rename = "current-context",
        default,
        deserialize_with = "null_as_default"
    )]
    pub current_context: String,
    /// Named users (credentials).
    #[serde(default, deserialize_with = "null_as_default")]
    pub users: Vec<NamedUser>,
}

/// `null` reads as the default (client-go writes `contexts: null`).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A cluster entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedCluster {
    /// Entry name.
    pub name: String,
    /// The cluster.
    pub cluster: Cluster,
}

/// How to reach a cluster and whom to trust.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    /// `https://host:port`.
    pub server: String,
    /// Base64 of the CA bundle PEM.
    #[serde(
        rename = "certificate-authority-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_authority_data: Option<String>,
    /// Path of the CA bundle.
    #[serde(
        rename = "certificate-authority",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub certificate_authority: Option<String>,
    /// Skip server verification (never written by kubeboot).
    #[serde(
        rename = "insecure-skip-tls-verify",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub insecure_skip_tls_verify: Option<bool>,
}

/// A context entry.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedContext {
    /// Entry name.
    pub name: String,
    /// The context.
    pub context: Context,
}

/// A (cluster, user) pair.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Cluster entry name.
    pub cluster: String,
    /// User entry name.
    pub user: String,
    /// Default namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// A user entry.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NamedUser {
    /// Entry name.
    pub name: String,
    /// The credentials.
    pub user: AuthInfo,
}

/// Credentials.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthInfo {
    /// Base64 of the client certificate PEM.
    #[serde(
        rename = "client-certificate-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate_data: Option<String>,
    /// Base64 of the client key PEM.
    #[serde(
        rename = "client-key-data",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_key_data: Option<String>,
    /// Path of the client certificate.
    #[serde(
        rename = "client-certificate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_certificate: Option<String>,
    /// Path of the client key.
    #[serde(
        rename = "client-key",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub client_key: Option<String>,
    /// Bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

/// Why a kubeconfig could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// Not YAML of the expected shape.
    #[error("kubeconfig is not valid: {0}")]
    Parse(String),
    /// The current context names nothing.
    #[error("kubeconfig has no usable current context {0:?}")]
    NoContext(String),
}

/// The credential a kubeconfig user presents.
pub enum Credential {
    /// A client certificate and key, both PEM.
    ClientCert {
        /// Certificate PEM.
        cert_pem: String,
        /// Key PEM.
        key_pem: String,
    },
    /// A bearer token.
    Token(String),
}

impl Kubeconfig {
    /// One cluster, one user, one context named `<user>@<cluster>`.
    pub fn new(
        cluster_name: &str,
        server: &str,
        ca_pem: &str,
        user: &str,
        cred: Credential,
    ) -> Self {
        let auth = match cred {
            Credential::ClientCert { cert_pem, key_pem } => AuthInfo {
                client_certificate_data: Some(b64(&cert_pem)),
                client_key_data: Some(b64(&key_pem)),
                ..Default::default()
            },
            Credential::Token(t) => AuthInfo {
                token: Some(t),
                ..Default::default()
            },
        };
        let context = format!("{user}@{cluster_name}");
        Self {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: cluster_name.into(),
                cluster: Cluster {
                    server: server.into(),
                    certificate_authority_data: Some(b64(ca_pem)),
                    ..Default::default()
                },
            }],
            contexts: vec![NamedContext {
                name: context.clone(),
                context: Context {
                    cluster: cluster_name.into(),
                    user: user.into(),
                    namespace: None,
                },
            }],
            current_context: context,
            users: vec![NamedUser {
                name: user.into(),
                user: auth,
            }],
        }
    }

    /// Parses YAML (or JSON) text.
    pub fn from_yaml(text: &str) -> Result<Self, KubeconfigError> {
        serde_saphyr::from_str(text).map_err(|e| KubeconfigError::Parse(e.to_string()))
    }

    /// Renders YAML, one line per value (no folded scalars), as kubectl writes it.
    pub fn to_yaml(&self) -> String {
        let mut opts = serde_saphyr::SerializerOptions::default();
        opts.prefer_block_scalars = false;
        serde_saphyr::to_string_with_options(self, opts).unwrap_or_default()
    }

    /// Every cluster of the kubeconfig trusts the PEM bundle `ca_pem`.
    pub fn set_certificate_authority_data(&mut self, ca_pem: &str) {
        for c in &mut self.clusters {
            c.cluster.certificate_authority_data = Some(b64(ca_pem));
        }
    }

    /// The CA bundle (PEM) the first cluster trusts, when it carries one inline.
    pub fn certificate_authority(&self) -> Option<String> {
        self.clusters
            .first()
            .and_then(|c| c.cluster.certificate_authority_data.as_deref())
            .and_then(unb64)
    }

    /// The client certificate (PEM) of the first user, when it carries one inline.
    pub fn client_certificate(&self) -> Option<String> {
        self.users
            .first()
            .and_then(|u| u.user.client_certificate_data.as_deref())
            .and_then(unb64)
    }

    /// The client key (PEM) of the first user, when it carries one inline.
    pub fn client_key(&self) -> Option<String> {
        self.users
            .first()
            .and_then(|u| u.user.client_key_data.as_deref())
            .and_then(unb64)
    }

    /// Gives the first user the certificate `cert_pem`, and `key_pem` when given.
    pub fn set_client_certificate(&mut self, cert_pem: &str, key_pem: Option<&str>) {
        if let Some(u) = self.users.first_mut() {
            u.user.client_certificate_data = Some(b64(cert_pem));
            if let Some(k) = key_pem {
                u.user.client_key_data = Some(b64(k));
            }
        }
    }

    /// The cluster and user of the current context.
    pub fn current(&self) -> Result<(&Cluster, &AuthInfo), KubeconfigError> {
        let no = || KubeconfigError::NoContext(self.current_context.clone());
        let ctx = self
            .contexts
            .iter()
            .find(|c| c.name == self.current_context)
            .ok_or_else(no)?;
        let cluster = self
            .clusters
            .iter()
            .find(|c| c.name == ctx.context.cluster)
            .ok_or_else(no)?;
        let user = self
            .users
            .iter()
            .find(|u| u.name == ctx.context.user)
            .ok_or_else(no)?;
        Ok((&cluster.cluster, &user.user))
    }
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn unb64(s: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

impl std::fmt::Debug for Kubeconfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kubeconfig")
            .field("clusters", &self.clusters)
            .field("current_context", &self.current_context)
            .field(
                "users",
                &self.users.iter().map(|u| &u.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for AuthInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthInfo(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_yaml() {
        let kc = Kubeconfig::new(
            "kubernetes",
            "https://127.0.0.1:6443",
            "CA",
            "kubernetes-admin",
            Credential::Token("abcdef.0123456789abcdef".into()),
        );
        let text = kc.to_yaml();
        assert!(
            text.contains("current-context: kubernetes-admin@kubernetes"),
            "{text}"
        );
        let back = Kubeconfig::from_yaml(&text).unwrap();
        assert_eq!(back, kc);
        let (cluster, user) = back.current().unwrap();
        assert_eq!(cluster.server, "https://127.0.0.1:6443");
        assert_eq!(user.token.as_deref(), Some("abcdef.0123456789abcdef"));
        assert!(
            !format!("{back:?}").contains("0123456789abcdef"),
            "Debug redacts"
        );
    }
}
