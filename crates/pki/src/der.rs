//! The DER that rcgen cannot write: a subject name exactly as Go's `crypto/x509` writes it
//! (any number of values per attribute type, each in its own RDN), put into a certificate
//! whose to-be-signed part is then signed. Pure functions; the signature comes from the
//! caller.

use crate::cert::{OID_COMMON_NAME, OID_ORGANIZATION};

const TAG_SEQUENCE: u8 = 0x30;
const TAG_SET: u8 = 0x31;
const TAG_OID: u8 = 0x06;
const TAG_BIT_STRING: u8 = 0x03;
pub(crate) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_VERSION: u8 = 0xa0;

/// Why a certificate's DER could not be rewritten.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed certificate DER: {0}")]
pub struct DerError(&'static str);

/// The attributes Go writes for a subject, in its order (`pkix.Name.ToRDNSequence`): every
/// C, O, OU, L, ST, STREET and POSTALCODE, then the last SERIALNUMBER and the last CN when
/// not empty. Any other attribute is dropped, as Kubernetes' signer drops it (it issues the
/// CSR's parsed `Subject`, not its raw bytes).
pub fn go_subject(attrs: &[(Vec<u64>, String)]) -> Vec<(Vec<u64>, String)> {
    const MULTI: [&[u64]; 7] = [
        &[2, 5, 4, 6], // C
        OID_ORGANIZATION,
        &[2, 5, 4, 11], // OU
        &[2, 5, 4, 7],  // L
        &[2, 5, 4, 8],  // ST
        &[2, 5, 4, 9],  // STREET
        &[2, 5, 4, 17], // POSTALCODE
    ];
    const SINGLE: [&[u64]; 2] = [&[2, 5, 4, 5], OID_COMMON_NAME];
    let mut out: Vec<(Vec<u64>, String)> = MULTI
        .iter()
        .flat_map(|oid| attrs.iter().filter(move |(o, _)| o == oid))
        .cloned()
        .collect();
    for oid in SINGLE {
        let last = attrs.iter().rev().find(|(o, _)| o == oid);
        out.extend(last.filter(|(_, value)| !value.is_empty()).cloned());
    }
    out
}

/// A Name (RDNSequence) of one attribute per RDN, each value a PrintableString when Go
/// would write one and a UTF8String otherwise.
pub fn encode_name(attrs: &[(Vec<u64>, String)]) -> Vec<u8> {
    let rdns: Vec<u8> = attrs
        .iter()
        .flat_map(|(oid, value)| {
            let tag = match value.bytes().all(is_printable) {
                true => TAG_PRINTABLE_STRING,
                false => TAG_UTF8_STRING,
            };
            let pair = [tlv(TAG_OID, &encode_oid(oid)), tlv(tag, value.as_bytes())].concat();
            tlv(TAG_SET, &tlv(TAG_SEQUENCE, &pair))
        })
        .collect();
    tlv(TAG_SEQUENCE, &rdns)
}

/// `cert` with its subject replaced by `subject` (a DER Name) and signed anew by `sign`,
/// which is handed the new to-be-signed bytes and returns the signature value.
pub fn with_subject<E>(
    cert: &[u8],
    subject: &[u8],
    sign: impl FnOnce(&[u8]) -> Result<Vec<u8>, E>,
) -> Result<Result<Vec<u8>, E>, DerError> {
    let (certificate, _) = element(cert, TAG_SEQUENCE)?;
    let (tbs, rest) = element(certificate, TAG_SEQUENCE)?;
    let (signature_algorithm, _) = split(rest)?;
    let mut fields = Vec::new();
    let mut left = tbs;
    while !left.is_empty() {
        let (whole, rest) = split(left)?;
        fields.push(whole);
        left = rest;
    }
    let subject_at = match fields.first().map(|f| f[0]) {
        Some(TAG_VERSION) => 5,
        _ => 4,
    };
    if fields.get(subject_at).map(|f| f[0]) != Some(TAG_SEQUENCE) {
        return Err(DerError("the to-be-signed certificate has no subject"));
    }
    fields[subject_at] = subject;
    let tbs = tlv(TAG_SEQUENCE, &fields.concat());
    Ok(sign(&tbs).map(|signature| {
        let bits = [&[0u8][..], &signature].concat();
        let body = [&tbs[..], signature_algorithm, &tlv(TAG_BIT_STRING, &bits)].concat();
        tlv(TAG_SEQUENCE, &body)
    }))
}

/// Go's PrintableString alphabet as it marshals (`*` and `&` make a UTF8String).
fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

pub(crate) fn encode_oid(arcs: &[u64]) -> Vec<u8> {
    let first = arcs.first().copied().unwrap_or(0) * 40 + arcs.get(1).copied().unwrap_or(0);
    std::iter::once(first)
        .chain(arcs.iter().skip(2).copied())
        .flat_map(base128)
        .collect()
}

fn base128(mut n: u64) -> Vec<u8> {
    let mut out = vec![(n & 0x7f) as u8];
    n >>= 7;
    while n > 0 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.reverse();
    out
}

pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = vec![tag];
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(content);
    out
}

/// The content of the element at the start of `input`, which must have tag `tag`, and what
/// follows it.
fn element(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), DerError> {
    let (whole, rest) = split(input)?;
    if whole[0] != tag {
        return Err(DerError("unexpected tag"));
    }
    let header = header_len(whole)?;
    Ok((&whole[header..], rest))
}

/// The whole element at the start of `input` and what follows it.
fn split(input: &[u8]) -> Result<(&[u8], &[u8]), DerError> {
    let header = header_len(input)?;
    let len = match header {
        2 => usize::from(input[1]),
        _ => input[2..header]
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b)),
    };
    let end = header
        .checked_add(len)
        .filter(|&end| end <= input.len())
        .ok_or(DerError("an element runs past its end"))?;
    Ok(input.split_at(end))
}

fn header_len(input: &[u8]) -> Result<usize, DerError> {
    match input.get(1) {
        None => Err(DerError("truncated element")),
        Some(&short) if short < 0x80 => Ok(2),
        Some(&long) => {
            let n = usize::from(long & 0x7f);
            if n == 0 || n > 4 || input.len() < 2 + n {
                return Err(DerError("bad element length"));
            }
            Ok(2 + n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(v: &str) -> (Vec<u64>, String) {
        (OID_ORGANIZATION.to_vec(), v.into())
    }
    fn cn(v: &str) -> (Vec<u64>, String) {
        (OID_COMMON_NAME.to_vec(), v.into())
    }

    #[test]
    fn the_subject_is_ordered_and_trimmed_as_go_writes_it() {
        let email = (vec![1, 2, 840, 113549, 1, 9, 1], "a@b".to_string());
        let c = (vec![2, 5, 4, 6], "DE".to_string());
        type Attributes = Vec<(Vec<u64>, String)>;
        let cases: Vec<(Attributes, Attributes)> = vec![
            (
                vec![cn("jane"), o("a"), o("b")],
                vec![o("a"), o("b"), cn("jane")],
            ),
            (vec![cn("first"), cn("last")], vec![cn("last")]),
            (vec![cn("x"), cn("")], vec![]),
            (vec![email, o("a")], vec![o("a")]),
            (vec![o("a"), c.clone(), o("")], vec![c, o("a"), o("")]),
            (vec![], vec![]),
        ];
        for (input, want) in cases {
            assert_eq!(go_subject(&input), want, "{input:?}");
        }
    }

    #[test]
    fn names_encode_as_go_marshals_them() {
        let exact = encode_name(&[o("a"), cn("jane")]);
        assert_eq!(
            hex(&exact),
            "301b310a3008060355040a130161310d300b060355040313046a616e65"
        );
        let der = encode_name(&[o("a"), o("b*"), cn("jane")]);
        let (_, name) = x509_parser::x509::X509Name::from_der(&der).unwrap();
        assert_eq!(name.to_string(), "O=a, O=b*, CN=jane");
        let tags: Vec<u32> = name
            .iter_attributes()
            .map(|a| a.attr_value().tag().0)
            .collect();
        assert_eq!(
            tags,
            [19, 12, 19],
            "PrintableString unless * makes it UTF8String"
        );
        assert_eq!(encode_name(&[]), [0x30, 0x00]);
        let long = "x".repeat(300);
        let der = encode_name(&[cn(&long)]);
        let (_, name) = x509_parser::x509::X509Name::from_der(&der).unwrap();
        assert_eq!(
            name.iter_common_name().next().unwrap().as_str().unwrap(),
            long
        );
    }

    #[test]
    fn oids_encode_in_base_128() {
        assert_eq!(encode_oid(&[2, 5, 4, 10]), [0x55, 0x04, 0x0a]);
        assert_eq!(
            encode_oid(&[1, 2, 840, 113549, 1, 9, 1]),
            [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]
        );
    }

    #[test]
    fn malformed_certificates_are_refused() {
        let sign = |_: &[u8]| Ok::<_, ()>(vec![]);
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x05, 0x30],
            &[0x30, 0x02, 0x31, 0x00],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
        ] {
            assert!(with_subject(bad, &[0x30, 0], sign).is_err(), "{bad:?}");
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    use x509_parser::prelude::FromDer;
}
