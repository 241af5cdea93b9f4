//! Distinguished names as Go's `crypto/x509` reads them, for CSRs and certificates alike:
//! every attribute value must be one of the string types Go parses (UTF8String,
//! PrintableString, IA5String, NumericString, T61String, BMPString) and valid for its type,
//! or the whole name is refused — a value no check can read must never reach a certificate.
//! The common name is the last CN (as Go's `pkix.Name` keeps it); organizations are every
//! O, in order. Performs no I/O.

use x509_parser::x509::X509Name;

use crate::cert::{OID_COMMON_NAME, OID_ORGANIZATION};

/// A parsed name: every attribute as text, and the two Kubernetes reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Name {
    /// The common name (the last CN; empty when there is none): a Kubernetes user name.
    pub common_name: String,
    /// Every O, in order: a Kubernetes user's groups.
    pub organizations: Vec<String>,
    /// Every attribute in order, as `(OID arcs, value)`.
    pub attributes: Vec<(Vec<u64>, String)>,
}

/// Why a name was refused, in Go's words.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[error("x509: invalid RDNSequence: invalid attribute value: {0}")]
pub struct NameError(pub String);

impl Name {
    /// Reads every attribute of `name`.
    pub fn parse(name: &X509Name<'_>) -> Result<Self, NameError> {
        let mut out = Self::default();
        for attr in name.iter_attributes() {
            let oid: Vec<u64> = attr
                .attr_type()
                .iter()
                .ok_or_else(|| NameError("attribute type out of range".into()))?
                .collect();
            let value = attr.attr_value();
            let text = attribute_text(value.tag().0, value.data).map_err(NameError)?;
            if oid == OID_COMMON_NAME {
                out.common_name = text.clone();
            } else if oid == OID_ORGANIZATION {
                out.organizations.push(text.clone());
            }
            out.attributes.push((oid, text));
        }
        Ok(out)
    }
}

/// The text of an attribute value of ASN.1 type `tag`, as Go's `parseASN1String` reads it
/// (with the stricter T61String and BMPString rules of later Go: T61 as Latin-1, BMP as
/// UCS-2 without surrogates or noncharacters).
pub fn attribute_text(tag: u32, bytes: &[u8]) -> Result<String, String> {
    match tag {
        TAG_T61_STRING => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
        TAG_PRINTABLE_STRING => match bytes.iter().all(|&b| is_printable(b)) {
            true => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            false => Err("invalid PrintableString".into()),
        },
        TAG_UTF8_STRING => {
            String::from_utf8(bytes.to_vec()).map_err(|_| "invalid UTF-8 string".into())
        }
        TAG_BMP_STRING => bmp_text(bytes).ok_or_else(|| "invalid BMPString".into()),
        TAG_IA5_STRING => match bytes.is_ascii() {
            true => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            false => Err("invalid IA5String".into()),
        },
        TAG_NUMERIC_STRING => match bytes.iter().all(|&b| b.is_ascii_digit() || b == b' ') {
            true => Ok(bytes.iter().map(|&b| char::from(b)).collect()),
            false => Err("invalid NumericString".into()),
        },
        other => Err(format!("unsupported string type: {other}")),
    }
}

/// UCS-2 (big-endian) with an optional `00 00` terminator; `None` for an odd length, a
/// surrogate or a noncharacter.
fn bmp_text(bytes: &[u8]) -> Option<String> {
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    let bytes = bytes.strip_suffix(&[0, 0]).unwrap_or(bytes);
    // Go's rule: UCS-2, so no surrogate at all (not even a valid pair) and no
    // noncharacter (U+FFFE, U+FFFF, U+FDD0–U+FDEF).
    bytes
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .map(|unit| {
            let forbidden = (0xd800..=0xdfff).contains(&unit)
                || unit >= 0xfffe
                || (0xfdd0..=0xfdef).contains(&unit);
            char::from_u32(u32::from(unit)).filter(|_| !forbidden)
        })
        .collect()
}

/// PrintableString's alphabet, with the `*` and `&` Go also accepts.
fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?*&".contains(&b)
}

const TAG_UTF8_STRING: u32 = crate::der::TAG_UTF8_STRING as u32;
const TAG_NUMERIC_STRING: u32 = 18;
const TAG_PRINTABLE_STRING: u32 = crate::der::TAG_PRINTABLE_STRING as u32;
const TAG_T61_STRING: u32 = 20;
const TAG_IA5_STRING: u32 = 22;
const TAG_BMP_STRING: u32 = 30;

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::FromDer;

    #[test]
    fn attribute_values_are_read_as_go_reads_them() {
        let bmp = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_be_bytes).collect() };
        let bmp_masters = bmp("system:masters");
        let mut bmp_terminated = bmp("ab");
        bmp_terminated.extend([0, 0]);
        for (case, tag, bytes, want) in [
            (
                "UTF8String",
                12,
                "système".as_bytes().to_vec(),
                Ok("système"),
            ),
            (
                "UTF8String not UTF-8",
                12,
                vec![0xff, 0xfe],
                Err("invalid UTF-8 string"),
            ),
            (
                "PrintableString",
                19,
                b"system:nodes".to_vec(),
                Ok("system:nodes"),
            ),
            (
                "PrintableString with * and &",
                19,
                b"a*&b".to_vec(),
                Ok("a*&b"),
            ),
            (
                "PrintableString with _",
                19,
                b"a_b".to_vec(),
                Err("invalid PrintableString"),
            ),
            ("IA5String", 22, b"a@b_c".to_vec(), Ok("a@b_c")),
            (
                "IA5String not ASCII",
                22,
                vec![b'a', 0xe9],
                Err("invalid IA5String"),
            ),
            ("NumericString", 18, b"12 34".to_vec(), Ok("12 34")),
            (
                "NumericString with a letter",
                18,
                b"12a".to_vec(),
                Err("invalid NumericString"),
            ),
            (
                "T61String is Latin-1",
                20,
                vec![b'r', 0xe9, b's'],
                Ok("rés"),
            ),
            ("BMPString", 30, bmp_masters, Ok("system:masters")),
            (
                "BMPString with its terminator",
                30,
                bmp_terminated,
                Ok("ab"),
            ),
            (
                "BMPString of odd length",
                30,
                vec![0, b'a', 0],
                Err("invalid BMPString"),
            ),
            (
                "BMPString surrogate pair",
                30,
                vec![0xd8, 0x3d, 0xde, 0x00],
                Err("invalid BMPString"),
            ),
            (
                "BMPString noncharacter",
                30,
                vec![0xff, 0xfe],
                Err("invalid BMPString"),
            ),
            (
                "BMPString lone surrogate",
                30,
                vec![0xd8, 0x00],
                Err("invalid BMPString"),
            ),
            (
                "UniversalString",
                28,
                vec![0, 0, 0, b'a'],
                Err("unsupported string type: 28"),
            ),
            (
                "OCTET STRING",
                4,
                b"a".to_vec(),
                Err("unsupported string type: 4"),
            ),
            ("INTEGER", 2, vec![1], Err("unsupported string type: 2")),
        ] {
            let got = attribute_text(tag, &bytes);
            assert_eq!(got.as_deref().map_err(String::as_str), want, "{case}");
        }
    }

    #[test]
    fn the_common_name_is_the_last_cn_and_organizations_are_every_o() {
        let der = name_der(&[
            (
                OID_ORGANIZATION,
                TAG_PRINTABLE_STRING,
                b"system:nodes".to_vec(),
            ),
            (OID_COMMON_NAME, TAG_UTF8_STRING, b"first".to_vec()),
            (OID_ORGANIZATION, TAG_BMP_STRING, vec![0, b'o']),
            (OID_COMMON_NAME, TAG_PRINTABLE_STRING, b"last".to_vec()),
        ]);
        let (_, name) = X509Name::from_der(&der).expect("a name");
        let parsed = Name::parse(&name).expect("parses");
        assert_eq!(parsed.common_name, "last");
        assert_eq!(parsed.organizations, ["system:nodes", "o"]);
        assert_eq!(parsed.attributes.len(), 4);
    }

    #[test]
    fn one_value_no_check_can_read_refuses_the_whole_name() {
        let der = name_der(&[
            (
                OID_ORGANIZATION,
                TAG_PRINTABLE_STRING,
                b"system:nodes".to_vec(),
            ),
            (OID_ORGANIZATION, 28, vec![0, 0, 0, b'x']),
        ]);
        let (_, name) = X509Name::from_der(&der).expect("a name");
        assert_eq!(
            Name::parse(&name).expect_err("refused").to_string(),
            "x509: invalid RDNSequence: invalid attribute value: unsupported string type: 28"
        );
    }

    /// A DER Name of one attribute per RDN (short lengths only).
    fn name_der(attrs: &[(&[u64], u32, Vec<u8>)]) -> Vec<u8> {
        use crate::der::{encode_oid, tlv};
        let mut rdns = Vec::new();
        for (oid, tag, value) in attrs {
            let mut atv = tlv(0x06, &encode_oid(oid));
            atv.extend(tlv(u8::try_from(*tag).expect("universal tag"), value));
            rdns.extend(tlv(0x31, &tlv(0x30, &atv)));
        }
        tlv(0x30, &rdns)
    }
}
