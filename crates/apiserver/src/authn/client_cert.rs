//! The x509 client-certificate authenticator: a certificate that chains to the client CA
//! is the user its subject names (CN the name, each O a group), until it expires.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use kubeboot_pki::name::Name;
use x509_parser::prelude::*;

use super::{AUTHENTICATED, UserInfo};

/// The client-certificate authenticator: a bundle of trusted CA certificates (DER).
#[derive(Clone, Debug, Default)]
pub struct ClientCa {
    cas: Vec<Vec<u8>>,
}

/// Why a presented client certificate was not accepted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertAuthError {
    /// It does not parse.
    #[error("client certificate does not parse")]
    Parse,
    /// No trusted CA signed it.
    #[error("client certificate is not signed by a trusted CA")]
    UnknownAuthority,
    /// Outside its validity window.
    #[error("client certificate has expired or is not yet valid")]
    Expired,
    /// Its extended key usage does not allow client authentication.
    #[error("client certificate may not be used for client authentication")]
    Usage,
}

impl ClientCa {
    /// A bundle from PEM text holding one or more certificates.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let mut cas = Vec::new();
        for block in Pem::iter_from_buffer(pem.as_bytes()) {
            let block = block.map_err(|e| format!("client CA bundle is not PEM: {e}"))?;
            if block.label == "CERTIFICATE" {
                X509Certificate::from_der(&block.contents)
                    .map_err(|e| format!("client CA certificate does not parse: {e}"))?;
                cas.push(block.contents);
            }
        }
        if cas.is_empty() {
            return Err("client CA bundle holds no certificate".into());
        }
        Ok(Self { cas })
    }

    /// The CA subjects (DER), sent as acceptable issuers in the TLS handshake.
    pub fn subjects(&self) -> Vec<Vec<u8>> {
        self.cas
            .iter()
            .filter_map(|der| {
                X509Certificate::from_der(der)
                    .ok()
                    .map(|(_, c)| c.subject().as_raw().to_vec())
            })
            .collect()
    }

    /// Verifies a client certificate (leaf DER) and maps it to a user: CN is the name,
    /// each O a group, plus `system:authenticated`.
    pub fn authenticate(
        &self,
        leaf_der: &[u8],
        now: SystemTime,
    ) -> Result<(UserInfo, SystemTime), CertAuthError> {
        let (_, leaf) = X509Certificate::from_der(leaf_der).map_err(|_| CertAuthError::Parse)?;
        let signed = self.cas.iter().any(|ca_der| {
            X509Certificate::from_der(ca_der).is_ok_and(|(_, ca)| {
                ca.subject().as_raw() == leaf.issuer().as_raw()
                    && leaf.verify_signature(Some(ca.public_key())).is_ok()
            })
        });
        if !signed {
            return Err(CertAuthError::UnknownAuthority);
        }
        let t = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let v = leaf.validity();
        if t < v.not_before.timestamp() || t > v.not_after.timestamp() {
            return Err(CertAuthError::Expired);
        }
        if let Ok(Some(eku)) = leaf.extended_key_usage()
            && !(eku.value.client_auth || eku.value.any)
        {
            return Err(CertAuthError::Usage);
        }
        // Read as Go reads it: a name with a value no check can read is no identity.
        let name = Name::parse(leaf.subject()).map_err(|_| CertAuthError::Parse)?;
        let mut groups = name.organizations;
        groups.push(AUTHENTICATED.into());
        let not_after = UNIX_EPOCH
            + std::time::Duration::from_secs(u64::try_from(v.not_after.timestamp()).unwrap_or(0));
        let user = UserInfo {
            name: name.common_name,
            uid: String::new(),
            groups,
            extra: BTreeMap::from([(CREDENTIAL_ID.to_owned(), vec![credential_id(leaf_der)])]),
        };
        Ok((user, not_after))
    }
}

/// The extra key naming the credential a user authenticated with (`user.CredentialIDKey`).
pub const CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// A client certificate's credential id, as kube-apiserver's `CommonNameUserConversion`
/// records it: `X509SHA256=` and the hex SHA-256 of its DER.
fn credential_id(leaf_der: &[u8]) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf_der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("X509SHA256={hex}")
}
