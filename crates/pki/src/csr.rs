//! Parsing and checking PKCS#10 certificate signing requests sent by peers.

use x509_parser::prelude::*;

/// What the API server and signers need to know about a verified CSR.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCsr {
    /// Subject common name (empty when absent).
    pub common_name: String,
    /// Subject organizations, in order.
    pub organizations: Vec<String>,
    /// DNS subjectAltNames.
    pub dns_names: Vec<String>,
    /// IP subjectAltNames, as text.
    pub ip_addresses: Vec<String>,
    /// Email subjectAltNames.
    pub emails: Vec<String>,
    /// URI subjectAltNames.
    pub uris: Vec<String>,
    /// Every subject attribute in order, as `(OID arcs, value)`.
    pub subject: Vec<(Vec<u64>, String)>,
    /// The DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
    /// The public key's algorithm.
    pub key: KeyKind,
}

/// The kind of public key a CSR carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA.
    Rsa,
    /// ECDSA.
    Ecdsa,
    /// Ed25519.
    Ed25519,
    /// Anything else.
    Other,
}

/// Why a CSR was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrError {
    /// Not PEM, or not the right block type.
    #[error("PEM block type must be CERTIFICATE REQUEST")]
    NotPem,
    /// Not a PKCS#10 structure.
    #[error("failed to parse certificate request: {0}")]
    Parse(String),
    /// The self-signature does not verify.
    #[error("certificate request signature does not verify")]
    Signature,
    /// A key this server cannot verify or certify.
    #[error("{0}")]
    UnsupportedKey(String),
}

/// Parses a PEM `CERTIFICATE REQUEST`, verifies its self-signature and extracts its names.
pub fn parse_pem(pem: &[u8]) -> Result<ParsedCsr, CsrError> {
    parse_der(&pem_contents(pem)?)
}

/// Parses a PEM `CERTIFICATE REQUEST` and extracts its names without verifying its
/// self-signature: only where the signature is verified elsewhere — API validation verifies
/// every new request, the approver reads an admitted one as Kubernetes' approver does, and
/// the signer verifies again before it certifies the key.
pub fn parse_pem_unverified(pem: &[u8]) -> Result<ParsedCsr, CsrError> {
    let der = pem_contents(pem)?;
    let (_, req) =
        X509CertificationRequest::from_der(&der).map_err(|e| CsrError::Parse(e.to_string()))?;
    names(&req)
}

fn pem_contents(pem: &[u8]) -> Result<Vec<u8>, CsrError> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| CsrError::NotPem)?;
    if block.label != "CERTIFICATE REQUEST" && block.label != "NEW CERTIFICATE REQUEST" {
        return Err(CsrError::NotPem);
    }
    Ok(block.contents)
}

/// Parses a DER CSR, verifies its self-signature and extracts its names.
pub fn parse_der(der: &[u8]) -> Result<ParsedCsr, CsrError> {
    let (_, req) =
        X509CertificationRequest::from_der(der).map_err(|e| CsrError::Parse(e.to_string()))?;
    let parsed = names(&req)?;
    supported_key(&req.certification_request_info.subject_pki)?;
    req.verify_signature().map_err(|_| CsrError::Signature)?;
    Ok(parsed)
}

/// Refuses, by name, a key whose signature cannot be verified here: RSA under 2048 bits,
/// ECDSA on a curve other than P-256, P-384 or P-521.
fn supported_key(spki: &SubjectPublicKeyInfo<'_>) -> Result<(), CsrError> {
    match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) if rsa.key_size() < 2048 => {
            Err(CsrError::UnsupportedKey(format!(
                "RSA keys of {} bits are not supported: use at least 2048 bits",
                rsa.key_size()
            )))
        }
        Ok(x509_parser::public_key::PublicKey::EC(_)) => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string())
                .unwrap_or_default();
            match curve.as_str() {
                "1.2.840.10045.3.1.7" | "1.3.132.0.34" | "1.3.132.0.35" => Ok(()),
                other => Err(CsrError::UnsupportedKey(format!(
                    "ECDSA curve {other} is not supported: use P-256, P-384 or P-521"
                ))),
            }
        }
        _ => Ok(()),
    }
}

/// The names and key of a parsed request.
fn names(req: &X509CertificationRequest<'_>) -> Result<ParsedCsr, CsrError> {
    let info = &req.certification_request_info;
    let name =
        crate::name::Name::parse(&info.subject).map_err(|e| CsrError::Parse(e.to_string()))?;
    let mut out = ParsedCsr {
        common_name: name.common_name,
        organizations: name.organizations,
        dns_names: vec![],
        ip_addresses: vec![],
        emails: vec![],
        uris: vec![],
        subject: name.attributes,
        spki_der: info.subject_pki.raw.to_vec(),
        key: match info.subject_pki.algorithm.algorithm.to_id_string().as_str() {
            "1.2.840.113549.1.1.1" => KeyKind::Rsa,
            "1.2.840.10045.2.1" => KeyKind::Ecdsa,
            "1.3.101.112" => KeyKind::Ed25519,
            _ => KeyKind::Other,
        },
    };
    for ext in req.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => out.dns_names.push((*d).to_owned()),
                    GeneralName::RFC822Name(e) => out.emails.push((*e).to_owned()),
                    GeneralName::URI(u) => out.uris.push((*u).to_owned()),
                    GeneralName::IPAddress(b) => out.ip_addresses.push(ip_text(b)),
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string(),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => hex::encode(bytes),
    }
}

/// What a new CSR asks for.
#[derive(Clone, Debug, Default)]
pub struct CsrRequest {
    /// Subject attributes in order, as `(OID arcs, value)` (see `cert::subject`).
    pub subject: Vec<(Vec<u64>, String)>,
    /// DNS subjectAltNames.
    pub dns_names: Vec<String>,
    /// IP subjectAltNames.
    pub ip_addresses: Vec<std::net::IpAddr>,
    /// Email subjectAltNames.
    pub emails: Vec<String>,
    /// URI subjectAltNames.
    pub uris: Vec<String>,
}

/// Builds and signs a PEM `CERTIFICATE REQUEST` with `key`.
pub fn create_pem(key: &crate::PrivateKey, req: &CsrRequest) -> Result<String, CsrError> {
    let mut p = rcgen::CertificateParams::default();
    p.distinguished_name = rcgen::DistinguishedName::new();
    for (oid, v) in &req.subject {
        p.distinguished_name
            .push(rcgen::DnType::from_oid(oid), v.as_str());
    }
    let bad = |e: &dyn std::fmt::Display| CsrError::Parse(e.to_string());
    for d in &req.dns_names {
        p.subject_alt_names.push(rcgen::SanType::DnsName(
            d.clone().try_into().map_err(|e| bad(&e))?,
        ));
    }
    p.subject_alt_names.extend(
        req.ip_addresses
            .iter()
            .map(|ip| rcgen::SanType::IpAddress(*ip)),
    );
    for e in &req.emails {
        p.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            e.clone().try_into().map_err(|err| bad(&err))?,
        ));
    }
    for u in &req.uris {
        p.subject_alt_names.push(rcgen::SanType::URI(
            u.clone().try_into().map_err(|err| bad(&err))?,
        ));
    }
    let csr = p.serialize_request(key.key_pair()).map_err(|e| bad(&e))?;
    csr.pem().map_err(|e| bad(&e))
}
