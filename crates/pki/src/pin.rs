//! The CA public-key pin kubeadm uses: `sha256:` + hex SHA-256 of the SubjectPublicKeyInfo.

use sha2::{Digest, Sha256};

/// The pin of a DER SubjectPublicKeyInfo.
pub fn spki_pin(spki_der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(spki_der)))
}

/// The pin of a DER certificate's public key, or `None` if it does not parse.
pub fn cert_pin(cert_der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(cert_der).ok()?;
    Some(spki_pin(cert.public_key().raw))
}

/// The pin of the first certificate of a PEM bundle.
pub fn pem_cert_pin(pem: &[u8]) -> Option<String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).ok()?;
    cert_pin(&block.contents)
}

/// A set of CA public-key pins (`--discovery-token-ca-cert-hash`), any one of which is enough.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PinSet(Vec<[u8; 32]>);

/// Why a pin was refused (kubeadm's messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PinError {
    /// Not `format:hex`.
    #[error("invalid hash {0:?}, expected \"format:hex-value\". Known format(s) are: sha256")]
    Shape(String),
    /// Not sha256.
    #[error("unknown hash format {0:?}. Known format(s) are: sha256")]
    Format(String),
    /// Not 32 bytes of hex.
    #[error("expected a 32 byte SHA-256 hash, found {0} bytes")]
    Length(usize),
}

impl PinSet {
    /// Parses each `sha256:<hex>` pin (case-insensitive).
    pub fn parse<'a>(pins: impl IntoIterator<Item = &'a str>) -> Result<Self, PinError> {
        let mut out = Vec::new();
        for pin in pins {
            let parts: Vec<&str> = pin.split(':').collect();
            let [format, hex_value] = parts.as_slice() else {
                return Err(PinError::Shape(pin.to_owned()));
            };
            if !format.eq_ignore_ascii_case("sha256") {
                return Err(PinError::Format(format.to_string()));
            }
            let bytes = hex::decode(hex_value.to_ascii_lowercase())
                .map_err(|_| PinError::Length(hex_value.len() / 2))?;
            let arr: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| PinError::Length(bytes.len()))?;
            out.push(arr);
        }
        Ok(Self(out))
    }

    /// True when no pin was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a DER SubjectPublicKeyInfo is pinned.
    pub fn allows_spki(&self, spki_der: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(spki_der).into();
        self.0.contains(&digest)
    }

    /// The pins as `sha256:<hex>` strings.
    pub fn to_strings(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|d| format!("sha256:{}", hex::encode(d)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYPINS_TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIDRDCCAiygAwIBAgIJAJgVaCXvC6HkMA0GCSqGSIb3DQEBBQUAMB8xHTAbBgNV
BAMTFGt1YmVhZG0ta2V5cGlucy10ZXN0MCAXDTE3MDcwNTE3NDMxMFoYDzIxMTcw
NjExMTc0MzEwWjAfMR0wGwYDVQQDExRrdWJlYWRtLWtleXBpbnMtdGVzdDCCASIw
DQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAK0ba8mHU9UtYlzM1Own2Fk/XGjR
J4uJQvSeGLtz1hID1IA0dLwruvgLCPadXEOw/f/IWIWcmT+ZmvIHZKa/woq2iHi5
+HLhXs7aG4tjKGLYhag1hLjBI7icqV7ovkjdGAt9pWkxEzhIYClFMXDjKpMSynu+
YX6nZ9tic1cOkHmx2yiZdMkuriRQnpTOa7bb03OC1VfGl7gHlOAIYaj4539WCOr8
+ACTUMJUFEHcRZ2o8a/v6F9GMK+7SC8SJUI+GuroXqlMAdhEv4lX5Co52enYaClN
+D9FJLRpBv2YfiCQdJRaiTvCBSxEFz6BN+PtP5l2Hs703ZWEkOqCByM6HV8CAwEA
AaOBgDB+MB0GA1UdDgQWBBRQgUX8MhK2rWBWQiPHWcKzoWDH5DBPBgNVHSMESDBG
gBRQgUX8MhK2rWBWQiPHWcKzoWDH5KEjpCEwHzEdMBsGA1UEAxMUa3ViZWFkbS1r
ZXlwaW5zLXRlc3SCCQCYFWgl7wuh5DAMBgNVHRMEBTADAQH/MA0GCSqGSIb3DQEB
BQUAA4IBAQCaAUif7Pfx3X0F08cxhx8/Hdx4jcJw6MCq6iq6rsXM32ge43t8OHKC
pJW08dk58a3O1YQSMMvD6GJDAiAfXzfwcwY6j258b1ZlI9Ag0VokvhMl/XfdCsdh
AWImnL1t4hvU5jLaImUUMlYxMcSfHBGAm7WJIZ2LdEfg6YWfZh+WGbg1W7uxLxk6
y4h5rWdNnzBHWAGf7zJ0oEDV6W6RSwNXtC0JNnLaeIUm/6xdSddJlQPwUv8YH4jX
c1vuFqTnJBPcb7W//R/GI2Paicm1cmns9NLnPR35exHxFTy+D1yxmGokpoPMdife
aH+sfuxT8xeTPb3kjzF9eJTlnEquUDLM
-----END CERTIFICATE-----
";
    const KEYPINS_TEST_PIN: &str =
        "sha256:345959acb2c3b2feb87d281961c893f62a314207ef02599f1cc4a5fb255480b3";

    #[test]
    fn the_kubeadm_keypins_vector() {
        assert_eq!(
            pem_cert_pin(KEYPINS_TEST_CERT.as_bytes()).as_deref(),
            Some(KEYPINS_TEST_PIN)
        );
    }

    #[test]
    fn pin_sets_as_kubeadm_parses_them() {
        let (_, block) = x509_parser::pem::parse_x509_pem(KEYPINS_TEST_CERT.as_bytes()).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&block.contents).unwrap();
        let spki = cert.public_key().raw;
        assert!(PinSet::parse([KEYPINS_TEST_PIN]).unwrap().allows_spki(spki));
        assert!(
            PinSet::parse([KEYPINS_TEST_PIN.to_uppercase().as_str()])
                .unwrap()
                .allows_spki(spki),
            "upper case accepted"
        );
        assert!(
            !PinSet::parse([format!("sha256:{}", "00".repeat(32)).as_str()])
                .unwrap()
                .allows_spki(spki)
        );
        let doubled = format!("{KEYPINS_TEST_PIN}{}", &KEYPINS_TEST_PIN[7..]);
        for bad in ["xyz", "0011223344", doubled.as_str(), "md5:00", "sha256:zz"] {
            assert!(PinSet::parse([bad]).is_err(), "{bad}");
        }
        assert_eq!(
            PinSet::parse(["md5:00"]).unwrap_err().to_string(),
            "unknown hash format \"md5\". Known format(s) are: sha256"
        );
    }
}
