//! Certificate authorities and the certificates they issue.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::der;
use crate::key::{KeyAlgorithm, PrivateKey};
use crate::usage::{Usage, ext_key_usage};

/// A CA: its certificate and the key that signs with it. `Debug` never prints the key.
pub struct CertificateAuthority {
    cert_der: Vec<u8>,
    cert_pem: String,
    not_after: SystemTime,
    key: KeyPair,
    issuer: Issuer<'static, Unsigned>,
}

/// The CA's public half, standing in for its key while rcgen writes a certificate that
/// [`crate::der::with_subject`] then completes and the key signs: one signature each.
struct Unsigned {
    public: Vec<u8>,
    algorithm: &'static rcgen::SignatureAlgorithm,
}

impl rcgen::PublicKeyData for Unsigned {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

impl rcgen::SigningKey for Unsigned {
    fn sign(&self, _: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        Ok(Vec::new())
    }
}

/// What a leaf certificate should say. The signer decides every field explicitly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafSpec {
    /// Subject attributes in order, as `(OID arcs, value)`; see [`subject`].
    pub subject: Vec<(Vec<u64>, String)>,
    /// DNS subjectAltNames.
    pub dns_names: Vec<String>,
    /// IP subjectAltNames.
    pub ip_addresses: Vec<IpAddr>,
    /// Email subjectAltNames.
    pub emails: Vec<String>,
    /// URI subjectAltNames.
    pub uris: Vec<String>,
    /// Key and extended key usages.
    pub usages: Vec<Usage>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// Serial number: 16 random bytes (a positive 128-bit integer).
    pub serial: [u8; 16],
}

/// Why a certificate could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// rcgen refused the parameters or failed to sign.
    #[error("failed to issue certificate: {0}")]
    Sign(String),
    /// The CA certificate or key does not parse or does not match.
    #[error("unusable CA: {0}")]
    Ca(String),
    /// The public key in the request is not one we can certify.
    #[error("unsupported public key: {0}")]
    PublicKey(String),
}

impl CertificateAuthority {
    /// Creates a self-signed CA (`CN=<common_name>`) valid from `now` for `validity`.
    pub fn create(
        common_name: &str,
        alg: KeyAlgorithm,
        now: SystemTime,
        validity: Duration,
        serial: [u8; 16],
    ) -> Result<Self, IssueError> {
        let key = PrivateKey::generate(alg).map_err(|e| IssueError::Sign(e.to_string()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
            KeyUsagePurpose::KeyCertSign,
        ];
        params.not_before = offset(now);
        params.not_after = offset(now + validity);
        params.serial_number = Some(serial_number(serial));
        let cert = params
            .self_signed(key.key_pair())
            .map_err(|e| IssueError::Sign(e.to_string()))?;
        Self::from_pem(&cert.pem(), &key.to_pem())
    }

    /// Loads a CA from its PEM certificate (the first block) and PEM key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, IssueError> {
        let (_, block) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
            .map_err(|e| IssueError::Ca(format!("CA certificate is not PEM: {e}")))?;
        let (_, x509) = x509_parser::parse_x509_certificate(&block.contents)
            .map_err(|e| IssueError::Ca(format!("CA certificate does not parse: {e}")))?;
        let key = PrivateKey::from_pem(key_pem).map_err(|e| IssueError::Ca(e.to_string()))?;
        if x509.public_key().raw != key.public_key_der().as_slice() {
            return Err(IssueError::Ca(
                "the CA key does not belong to the CA certificate".into(),
            ));
        }
        let not_after =
            UNIX_EPOCH + Duration::from_secs(x509.validity().not_after.timestamp().max(0) as u64);
        let key = key.into_key_pair();
        let unsigned = Unsigned {
            public: rcgen::PublicKeyData::der_bytes(&key).to_vec(),
            algorithm: key.algorithm(),
        };
        let issuer = Issuer::from_ca_cert_der(&block.contents.clone().into(), unsigned)
            .map_err(|e| IssueError::Ca(e.to_string()))?;
        Ok(Self {
            cert_pem: pem_encode("CERTIFICATE", &block.contents),
            cert_der: block.contents,
            not_after,
            key,
            issuer,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA key, PEM (PKCS#8), for writing to a 0600 file.
    pub fn key_pem(&self) -> String {
        self.key.serialize_pem()
    }

    /// When the CA certificate expires.
    pub fn not_after(&self) -> SystemTime {
        self.not_after
    }

    /// Whether the CA signs in tens of microseconds (ECDSA, Ed25519), less than handing the
    /// signature to another thread and back; any other key (RSA takes milliseconds) belongs
    /// on a blocking thread.
    pub fn signs_quickly(&self) -> bool {
        let alg = self.key.algorithm();
        [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ED25519,
        ]
        .contains(&alg)
    }

    /// Issues a certificate for a key the caller holds.
    pub fn issue_for_key(&self, spec: &LeafSpec, key: &PrivateKey) -> Result<Cert, IssueError> {
        self.issue(spec, key.key_pair())
    }

    /// Issues a certificate for a public key given as DER SubjectPublicKeyInfo (from a CSR).
    pub fn issue_for_spki(&self, spec: &LeafSpec, spki_der: &[u8]) -> Result<Cert, IssueError> {
        let public = rcgen::SubjectPublicKeyInfo::from_der(spki_der)
            .map_err(|e| IssueError::PublicKey(e.to_string()))?;
        self.issue(spec, &public)
    }

    fn issue(
        &self,
        spec: &LeafSpec,
        public: &impl rcgen::PublicKeyData,
    ) -> Result<Cert, IssueError> {
        let params = leaf_params(spec)?;
        let unsigned = params
            .signed_by(public, &self.issuer)
            .map_err(|e| IssueError::Sign(e.to_string()))?;
        let subject = der::encode_name(&der::go_subject(&spec.subject));
        let signed = der::with_subject(unsigned.der(), &subject, |tbs| {
            rcgen::SigningKey::sign(&self.key, tbs)
        })
        .map_err(|e| IssueError::Sign(e.to_string()))?
        .map_err(|e| IssueError::Sign(e.to_string()))?;
        Ok(Cert {
            pem: pem_encode("CERTIFICATE", &signed),
            der: signed,
        })
    }
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// An issued certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cert {
    /// DER.
    pub der: Vec<u8>,
    /// PEM.
    pub pem: String,
}

/// The OID of `O` (organizationName).
pub const OID_ORGANIZATION: &[u64] = &[2, 5, 4, 10];
/// The OID of `CN` (commonName).
pub const OID_COMMON_NAME: &[u64] = &[2, 5, 4, 3];

/// A subject of organizations then a common name, in the order Go writes them.
pub fn subject(common_name: &str, organizations: &[String]) -> Vec<(Vec<u64>, String)> {
    let mut out: Vec<(Vec<u64>, String)> = organizations
        .iter()
        .map(|o| (OID_ORGANIZATION.to_vec(), o.clone()))
        .collect();
    if !common_name.is_empty() {
        out.push((OID_COMMON_NAME.to_vec(), common_name.to_owned()));
    }
    out
}

fn leaf_params(spec: &LeafSpec) -> Result<CertificateParams, IssueError> {
    let mut p = CertificateParams::default();
    // The subject is written by `der::encode_name`: rcgen keeps one value per attribute.
    p.distinguished_name = DistinguishedName::new();
    for e in &spec.emails {
        let v = e
            .clone()
            .try_into()
            .map_err(|err| IssueError::Sign(format!("email {e:?}: {err}")))?;
        p.subject_alt_names.push(SanType::Rfc822Name(v));
    }
    for u in &spec.uris {
        let v = u
            .clone()
            .try_into()
            .map_err(|err| IssueError::Sign(format!("URI {u:?}: {err}")))?;
        p.subject_alt_names.push(SanType::URI(v));
    }
    for d in &spec.dns_names {
        let name = d
            .clone()
            .try_into()
            .map_err(|e| IssueError::Sign(format!("DNS name {d:?}: {e}")))?;
        p.subject_alt_names.push(SanType::DnsName(name));
    }
    p.subject_alt_names
        .extend(spec.ip_addresses.iter().map(|ip| SanType::IpAddress(*ip)));
    // As Go's x509 writes a non-CA leaf: basicConstraints CA:FALSE (critical), an
    // authority key identifier, and no subject key identifier.
    p.is_ca = IsCa::NoCa;
    let mut bc = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x00]);
    bc.set_criticality(true);
    p.custom_extensions.push(bc);
    p.use_authority_key_identifier_extension = true;
    p.not_before = offset(spec.not_before);
    p.not_after = offset(spec.not_after);
    p.serial_number = Some(serial_number(spec.serial));
    for u in &spec.usages {
        match u {
            Usage::Signing | Usage::DigitalSignature => {
                push_unique(&mut p.key_usages, KeyUsagePurpose::DigitalSignature)
            }
            Usage::ContentCommitment => {
                push_unique(&mut p.key_usages, KeyUsagePurpose::ContentCommitment)
            }
            Usage::KeyEncipherment => {
                push_unique(&mut p.key_usages, KeyUsagePurpose::KeyEncipherment)
            }
            Usage::KeyAgreement => push_unique(&mut p.key_usages, KeyUsagePurpose::KeyAgreement),
            Usage::DataEncipherment => {
                push_unique(&mut p.key_usages, KeyUsagePurpose::DataEncipherment)
            }
            Usage::CertSign => push_unique(&mut p.key_usages, KeyUsagePurpose::KeyCertSign),
            Usage::CrlSign => push_unique(&mut p.key_usages, KeyUsagePurpose::CrlSign),
            Usage::EncipherOnly => push_unique(&mut p.key_usages, KeyUsagePurpose::EncipherOnly),
            Usage::DecipherOnly => push_unique(&mut p.key_usages, KeyUsagePurpose::DecipherOnly),
            other => {
                if let Some(eku) = ext_key_usage(*other) {
                    push_unique(&mut p.extended_key_usages, eku);
                }
            }
        }
    }
    Ok(p)
}

fn push_unique<T: PartialEq>(v: &mut Vec<T>, x: T) {
    if !v.contains(&x) {
        v.push(x);
    }
}

/// The serial number a certificate issued with the 16 random bytes `b` carries: a positive
/// INTEGER of the full 16 bytes (the top bit cleared, a zero first byte made 1), as the
/// certificate and its logs name it.
pub fn issued_serial(mut b: [u8; 16]) -> [u8; 16] {
    b[0] &= 0x7f;
    if b[0] == 0 {
        b[0] = 1;
    }
    b
}

fn serial_number(b: [u8; 16]) -> SerialNumber {
    SerialNumber::from_slice(&issued_serial(b))
}

fn offset(t: SystemTime) -> OffsetDateTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// PEM-encodes DER with the given label, 64-column lines.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// 16 bytes from the operating system's CSPRNG, for serial numbers.
pub fn random_serial() -> [u8; 16] {
    kubeboot_api::random::bytes(&kubeboot_api::random::OsRandom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    #[test]
    fn issued_leaf_carries_exactly_the_spec() {
        let ca = CertificateAuthority::create(
            "kubernetes",
            KeyAlgorithm::EcdsaP256,
            now(),
            Duration::from_secs(3650 * 86400),
            random_serial(),
        )
        .unwrap();
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let spec = LeafSpec {
            subject: subject("system:node:n1", &["system:nodes".into()]),
            dns_names: vec!["n1".into()],
            ip_addresses: vec!["10.0.0.5".parse().unwrap()],
            emails: vec![],
            uris: vec![],
            usages: vec![Usage::DigitalSignature, Usage::ClientAuth],
            not_before: now(),
            not_after: now() + Duration::from_secs(3600),
            serial: random_serial(),
        };
        let two_groups = LeafSpec {
            subject: subject("jane", &["team-a".into(), "team-b".into()]),
            ..spec.clone()
        };
        let issued = ca.issue_for_key(&two_groups, &key).expect("two groups");
        let (_, x) = X509Certificate::from_der(&issued.der).unwrap();
        assert_eq!(x.subject().to_string(), "O=team-a, O=team-b, CN=jane");
        let cert = ca.issue_for_key(&spec, &key).unwrap();
        let (_, x) = X509Certificate::from_der(&cert.der).unwrap();
        let (_, cax) = X509Certificate::from_der(ca.cert_der()).unwrap();
        x.verify_signature(Some(cax.public_key())).unwrap();
        assert_eq!(x.subject().to_string(), "O=system:nodes, CN=system:node:n1");
        assert_eq!(x.issuer().to_string(), "CN=kubernetes");
        assert_eq!(x.raw_serial().len(), 16);
        assert_eq!(
            x.raw_serial(),
            issued_serial(spec.serial),
            "the serial logs name"
        );
        let high = LeafSpec {
            serial: [0xff; 16],
            ..spec
        };
        let cert = ca.issue_for_key(&high, &key).unwrap();
        let (_, hx) = X509Certificate::from_der(&cert.der).unwrap();
        assert_eq!(hx.raw_serial(), issued_serial([0xff; 16]));
        assert_eq!(issued_serial([0xff; 16])[0], 0x7f);
        let eku = x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.client_auth && !eku.server_auth);
        assert!(!x.is_ca());
        let bc = x
            .basic_constraints()
            .unwrap()
            .expect("basicConstraints present");
        assert!(bc.critical && !bc.value.ca);
        assert!(x.extensions().iter().any(|e| matches!(
            e.parsed_extension(),
            ParsedExtension::AuthorityKeyIdentifier(_)
        )));
        assert!(
            !x.extensions().iter().any(|e| matches!(
                e.parsed_extension(),
                ParsedExtension::SubjectKeyIdentifier(_)
            )),
            "no SKI on leaves, as Go writes them"
        );
        assert_eq!(
            x.validity().not_after.timestamp(),
            1_800_003_600,
            "notAfter as asked"
        );
    }

    #[test]
    fn a_key_from_another_ca_is_refused() {
        let a = CertificateAuthority::create(
            "a",
            KeyAlgorithm::EcdsaP256,
            now(),
            Duration::from_secs(60),
            random_serial(),
        )
        .unwrap();
        let b = CertificateAuthority::create(
            "b",
            KeyAlgorithm::EcdsaP256,
            now(),
            Duration::from_secs(60),
            random_serial(),
        )
        .unwrap();
        assert!(CertificateAuthority::from_pem(a.cert_pem(), &b.key_pem()).is_err());
        assert!(CertificateAuthority::from_pem(a.cert_pem(), &a.key_pem()).is_ok());
    }

    #[test]
    fn elliptic_curve_and_ed25519_cas_sign_quickly_and_rsa_does_not() {
        let ca = |alg| {
            CertificateAuthority::create("c", alg, now(), Duration::from_secs(60), random_serial())
                .unwrap()
        };
        assert!(!ca(KeyAlgorithm::Rsa(2048)).signs_quickly());
        assert!(ca(KeyAlgorithm::EcdsaP256).signs_quickly());
        assert!(ca(KeyAlgorithm::EcdsaP384).signs_quickly());
        assert!(ca(KeyAlgorithm::Ed25519).signs_quickly());
    }

    #[test]
    fn every_ca_key_signs_a_subject_of_many_groups_that_verifies() {
        for alg in [
            KeyAlgorithm::Rsa(2048),
            KeyAlgorithm::EcdsaP256,
            KeyAlgorithm::EcdsaP384,
            KeyAlgorithm::Ed25519,
        ] {
            let ca = CertificateAuthority::create(
                "c",
                alg,
                now(),
                Duration::from_secs(60),
                random_serial(),
            )
            .unwrap();
            let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
            let groups: Vec<String> = (0..40).map(|i| format!("team-{i}")).collect();
            let spec = LeafSpec {
                subject: subject("jane", &groups),
                dns_names: vec![],
                ip_addresses: vec![],
                emails: vec![],
                uris: vec![],
                usages: vec![Usage::ClientAuth],
                not_before: now(),
                not_after: now() + Duration::from_secs(60),
                serial: random_serial(),
            };
            let cert = ca.issue_for_key(&spec, &key).unwrap();
            let (_, x) = X509Certificate::from_der(&cert.der).unwrap();
            let (_, cax) = X509Certificate::from_der(ca.cert_der()).unwrap();
            x.verify_signature(Some(cax.public_key()))
                .unwrap_or_else(|e| panic!("{alg:?}: {e}"));
            let parsed = crate::name::Name::parse(x.subject()).unwrap();
            assert_eq!(parsed.organizations, groups, "{alg:?}");
            assert_eq!(parsed.common_name, "jane");
        }
    }
}
