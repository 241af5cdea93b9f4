//! Which CA issued a certificate, the certificates of a bundle, the names a certificate is
//! for, and the CA that succeeds another in a rotation: the questions every side of a CA
//! rotation asks (the data dir's, the hand-built PKI's, the node's).

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::cert::{CertificateAuthority, IssueError, pem_encode, random_serial};
use crate::key::KeyAlgorithm;

/// Each certificate of a PEM bundle, as its own PEM text.
pub fn certificates(bundle: &str) -> Vec<String> {
    crate::pem::blocks(bundle)
        .into_iter()
        .filter(|b| b.label == "CERTIFICATE")
        .map(|b| pem_encode("CERTIFICATE", &b.der))
        .collect()
}

/// The DER of the first certificate of `pem`.
pub fn first_der(pem: &str) -> Option<Vec<u8>> {
    crate::pem::blocks(pem)
        .into_iter()
        .find(|b| b.label == "CERTIFICATE")
        .map(|b| b.der)
}

/// Whether the first certificate of `cert_pem` is signed by the CA certificate `ca_der`:
/// the issuer names the CA's subject and the CA's key verifies the signature.
pub fn issued_by(cert_pem: &str, ca_der: &[u8]) -> bool {
    let Some(der) = first_der(cert_pem) else {
        return false;
    };
    let (Ok((_, cert)), Ok((_, ca))) = (
        x509_parser::parse_x509_certificate(&der),
        x509_parser::parse_x509_certificate(ca_der),
    ) else {
        return false;
    };
    cert.issuer().as_raw() == ca.subject().as_raw()
        && cert.verify_signature(Some(ca.public_key())).is_ok()
}

/// Whether any certificate of the PEM bundle `cas` issued the first certificate of
/// `cert_pem`.
pub fn issued_by_any(cert_pem: &str, cas: &str) -> bool {
    crate::pem::blocks(cas)
        .iter()
        .filter(|b| b.label == "CERTIFICATE")
        .any(|b| issued_by(cert_pem, &b.der))
}

/// The DNS names and IP addresses the first certificate of `cert_pem` is for, each sorted.
pub fn sans(cert_pem: &str) -> Result<(Vec<String>, Vec<IpAddr>), String> {
    let der = first_der(cert_pem).ok_or("holds no certificate")?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| e.to_string())?;
    Ok(sans_of(&cert))
}

/// The DNS names and IP addresses `cert` is for, each sorted.
pub fn sans_of(cert: &X509Certificate<'_>) -> (Vec<String>, Vec<IpAddr>) {
    let (mut dns, mut ips) = (Vec::new(), Vec::new());
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => dns.push((*d).to_owned()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    dns.sort();
    ips.sort();
    (dns, ips)
}

/// A year of 365 days, as kubeadm counts certificate validity.
pub const YEAR: Duration = Duration::from_secs(365 * 86400);

/// The name of the CA that succeeds the one named `old_cn`: its name without a date
/// suffix, then the day (`kubernetes-2026-12-06`), or the second when that is the old
/// name, so that clients building a chain never confuse the two.
pub fn successor_name(old_cn: &str, now_rfc3339: &str) -> String {
    let base = without_stamp(old_cn);
    let day = format!("{base}-{}", now_rfc3339.get(..10).unwrap_or(now_rfc3339));
    if day != old_cn {
        return day;
    }
    let second: String = now_rfc3339
        .chars()
        .take(19)
        .filter(char::is_ascii_digit)
        .collect();
    format!("{base}-{second}")
}

/// `cn` without a `-YYYY-MM-DD` or `-YYYYMMDDhhmmss` suffix.
fn without_stamp(cn: &str) -> &str {
    let is_date = |s: &str| {
        s.len() == 10
            && s.char_indices().all(|(i, c)| {
                if matches!(i, 4 | 7) {
                    c == '-'
                } else {
                    c.is_ascii_digit()
                }
            })
    };
    let is_second = |s: &str| s.len() == 14 && s.bytes().all(|b| b.is_ascii_digit());
    for len in [10, 14] {
        if let Some(i) = cn.len().checked_sub(len + 1)
            && let Some(stamp) = cn.get(i + 1..)
            && cn[i..].starts_with('-')
            && (is_date(stamp) || is_second(stamp))
        {
            return &cn[..i];
        }
    }
    cn
}

/// How long a CA that succeeds one valid from `not_before` to `not_after` is valid: as
/// long as the old one was made for (a ten-year CA rotated near its end gets ten years
/// again), at least a year.
pub fn successor_validity(not_before: SystemTime, not_after: SystemTime) -> Duration {
    not_after
        .duration_since(not_before)
        .unwrap_or_default()
        .max(YEAR)
}

/// A new CA to succeed `old`: named by [`successor_name`], valid from `now` for
/// [`successor_validity`].
pub fn successor(
    old: &CertificateAuthority,
    alg: KeyAlgorithm,
    now: SystemTime,
) -> Result<CertificateAuthority, IssueError> {
    let parsed = x509_parser::parse_x509_certificate(old.cert_der()).ok();
    let old_cn = parsed
        .as_ref()
        .and_then(|(_, c)| {
            c.subject()
                .iter_common_name()
                .next()
                .and_then(|a| a.as_str().ok().map(str::to_owned))
        })
        .unwrap_or_else(|| "kubernetes".into());
    let not_before = parsed
        .as_ref()
        .and_then(|(_, c)| u64::try_from(c.validity().not_before.timestamp()).ok())
        .map_or(now, |s| std::time::UNIX_EPOCH + Duration::from_secs(s));
    let validity = successor_validity(not_before, old.not_after());
    let name = successor_name(&old_cn, &kubeboot_api::clock::format_rfc3339(now));
    CertificateAuthority::create(&name, alg, now, validity, random_serial())
}

/// The CA an operator gives to rotate to (`--ca-cert-file`, `--ca-key-file`): the key
/// belongs to the certificate, and the certificate is a CA's (basicConstraints CA:TRUE),
/// as every bundle it will be published in requires.
pub fn given_ca(cert_pem: &str, key_pem: &str) -> Result<CertificateAuthority, IssueError> {
    let der = first_der(cert_pem)
        .ok_or_else(|| IssueError::Ca("holds no PEM CERTIFICATE block".into()))?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| IssueError::Ca(format!("CA certificate does not parse: {e}")))?;
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|b| b.value.ca);
    if !is_ca {
        return Err(IssueError::Ca(
            "the certificate is not a CA's (it lacks basicConstraints CA:TRUE)".into(),
        ));
    }
    CertificateAuthority::from_pem(cert_pem, key_pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successor_names() {
        for (old, now, want) in [
            (
                "kubernetes",
                "2026-12-06T17:50:01Z",
                "kubernetes-2026-12-06",
            ),
            (
                "Kubernetes",
                "2026-12-06T17:50:01Z",
                "Kubernetes-2026-12-06",
            ),
            (
                "kubernetes-2026-01-02",
                "2026-12-06T17:50:01Z",
                "kubernetes-2026-12-06",
            ),
            (
                "kubernetes-2026-12-06",
                "2026-12-06T17:50:01Z",
                "kubernetes-20261206175001",
            ),
            (
                "kubernetes-20261206175001",
                "2026-12-07T00:00:00Z",
                "kubernetes-2026-12-07",
            ),
            ("my-ca", "2026-12-06T17:50:01Z", "my-ca-2026-12-06"),
        ] {
            assert_eq!(successor_name(old, now), want, "{old}");
        }
    }

    #[test]
    fn issuers_and_bundles() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let a =
            CertificateAuthority::create("a", KeyAlgorithm::EcdsaP256, now, YEAR, random_serial())
                .unwrap();
        let b = successor(&a, KeyAlgorithm::EcdsaP256, now).unwrap();
        let bundle = format!("{}{}", a.cert_pem(), b.cert_pem());
        assert_eq!(certificates(&bundle), [a.cert_pem(), b.cert_pem()]);
        assert!(issued_by(a.cert_pem(), a.cert_der()), "self-signed");
        assert!(!issued_by(b.cert_pem(), a.cert_der()));
        assert!(issued_by_any(b.cert_pem(), &bundle));
        assert!(!issued_by_any(b.cert_pem(), a.cert_pem()));
        assert!(!issued_by_any("", &bundle));
        assert!(b.not_after() >= now + YEAR - Duration::from_secs(5));
        // Rotated half way through its life, a CA's successor gets its whole span again.
        let later = now + YEAR / 2;
        let c = successor(&a, KeyAlgorithm::EcdsaP256, later).unwrap();
        assert!(
            c.not_after() >= later + YEAR - Duration::from_secs(5),
            "a whole year"
        );
        let ten = YEAR * 10;
        assert_eq!(successor_validity(now, now + ten), ten);
        assert_eq!(
            successor_validity(now, now + YEAR / 12),
            YEAR,
            "at least a year"
        );
        assert!(given_ca(b.cert_pem(), &b.key_pem()).is_ok());
        let leaf_key = crate::key::PrivateKey::generate(KeyAlgorithm::EcdsaP256).unwrap();
        let leaf = a
            .issue_for_key(
                &crate::cert::LeafSpec {
                    subject: crate::cert::subject("leaf", &[]),
                    dns_names: vec![],
                    ip_addresses: vec![],
                    emails: vec![],
                    uris: vec![],
                    usages: vec![crate::Usage::ClientAuth],
                    not_before: now,
                    not_after: now + YEAR,
                    serial: random_serial(),
                },
                &leaf_key,
            )
            .unwrap();
        let err = given_ca(&leaf.pem, &leaf_key.to_pem()).unwrap_err();
        assert!(err.to_string().contains("CA:TRUE"), "{err}");
        assert!(
            given_ca(a.cert_pem(), &b.key_pem()).is_err(),
            "another's key"
        );
    }
}
