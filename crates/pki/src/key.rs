//! Private keys: generation and loading from PEM (PKCS#8, SEC1 and PKCS#1).

use std::fmt;

use rcgen::KeyPair;

/// The key algorithms kubeboot generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// ECDSA on P-256 with SHA-256 (Kubernetes' kubelet default).
    EcdsaP256,
    /// ECDSA on P-384 with SHA-384.
    EcdsaP384,
    /// Ed25519.
    Ed25519,
    /// RSA with the given modulus size, PKCS#1 v1.5 SHA-256 signatures.
    Rsa(u32),
}

/// A private key. `Debug` never prints the key.
pub struct PrivateKey(KeyPair);

/// Why a key could not be generated or loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The PEM text is not a private key this build understands.
    #[error("not a usable private key (PKCS#8, SEC1 EC or PKCS#1 RSA PEM expected): {0}")]
    Parse(String),
    /// The key could not be generated.
    #[error("key generation failed: {0}")]
    Generate(String),
}

impl PrivateKey {
    /// Generates a new key.
    pub fn generate(alg: KeyAlgorithm) -> Result<Self, KeyError> {
        let kp = match alg {
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            KeyAlgorithm::EcdsaP384 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384),
            KeyAlgorithm::Ed25519 => KeyPair::generate_for(&rcgen::PKCS_ED25519),
            KeyAlgorithm::Rsa(bits) => {
                let size = match bits {
                    2048 => rcgen::RsaKeySize::_2048,
                    3072 => rcgen::RsaKeySize::_3072,
                    4096 => rcgen::RsaKeySize::_4096,
                    other => {
                        return Err(KeyError::Generate(format!("unsupported RSA size {other}")));
                    }
                };
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, size)
            }
        };
        kp.map(Self).map_err(|e| KeyError::Generate(e.to_string()))
    }

    /// Loads a key from PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        KeyPair::from_pem(pem)
            .map(Self)
            .map_err(|e| KeyError::Parse(e.to_string()))
    }

    /// The key as PKCS#8 PEM (for writing to a 0600 file only).
    pub fn to_pem(&self) -> String {
        self.0.serialize_pem()
    }

    /// The DER SubjectPublicKeyInfo of the public half.
    pub fn public_key_der(&self) -> Vec<u8> {
        use rcgen::PublicKeyData;
        self.0.subject_public_key_info()
    }

    pub(crate) fn key_pair(&self) -> &KeyPair {
        &self.0
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

impl PrivateKey {
    pub(crate) fn into_key_pair(self) -> KeyPair {
        self.0
    }
}
