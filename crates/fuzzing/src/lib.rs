//! The fuzz targets: one entry point per parser that takes bytes from the network or a file
//! (bearer tokens, token Secrets, JWS, CSRs and their subjects, kubeconfigs, the JSON, YAML
//! and protobuf body decoders, the three patch formats, label and field selectors, continue
//! tokens, EncryptionConfiguration). Each takes any bytes and must return without panicking,
//! whatever they are; what it parses is thrown away. `fuzz/` runs them under libFuzzer
//! (`cargo fuzz`), and [`driver`] under a stable mutation loop, for CI and for machines
//! without a nightly toolchain.

pub mod driver;

use std::time::{Duration, SystemTime};

use kubeboot_apiserver::patch::{self, PatchType};
use kubeboot_apiserver::selectors::{FieldLabel, FieldLabels, FieldSelector, LabelSelector};
use kubeboot_bootstrap::BootstrapToken;

/// A fuzz target: a name and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*`).
pub const TARGETS: &[Target] = &[
    ("bearer_token", bearer_token),
    ("token_secret", token_secret),
    ("jws", jws),
    ("csr", csr),
    ("kubeconfig", kubeconfig),
    ("body_json", body_json),
    ("body_yaml", body_yaml),
    ("body_protobuf", body_protobuf),
    ("patch", patch),
    ("selectors", selectors),
    ("continue_token", continue_token),
    ("encryption_config", encryption_config),
];

/// The target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// An `Authorization` header value: the bearer token in it, and that token parsed.
pub fn bearer_token(data: &[u8]) {
    let Ok(header) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(token) = kubeboot_apiserver::authn::bearer_token(header) {
        let _ = token.parse::<BootstrapToken>();
    }
}

/// A token Secret as stored (JSON), authenticating a fixed token against it.
pub fn token_secret(data: &[u8]) {
    let token: BootstrapToken = "abcdef.0123456789abcdef".parse().expect("a valid token");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let _ = kubeboot_apiserver::authn::bootstrap_token::user_of(&token, data, now);
}

/// A detached JWS (before the first NUL) over cluster-info's kubeconfig (after it).
pub fn jws(data: &[u8]) {
    let (jws, content) = split(data);
    let _ = kubeboot_bootstrap::jws::verify_detached(
        &String::from_utf8_lossy(jws),
        &String::from_utf8_lossy(content),
        "abcdef",
        "0123456789abcdef",
    );
}

/// A CSR as PEM, or as DER when it is not PEM: its subject, names and signature.
pub fn csr(data: &[u8]) {
    let parsed = kubeboot_pki::csr::parse_pem(data).or_else(|_| kubeboot_pki::csr::parse_der(data));
    if let Ok(csr) = parsed {
        subject_round_trips(&csr.subject);
    }
    let _ = kubeboot_pki::csr::parse_pem_unverified(data);
}

/// The subject a certificate is issued with, written as Go writes it, reads back as the
/// same attributes: what the signer checked is what the certificate says.
fn subject_round_trips(subject: &[(Vec<u64>, String)]) {
    use kubeboot_pki::der::{encode_name, go_subject};
    let issued = go_subject(subject);
    let der = encode_name(&issued);
    let (rest, name) = <x509_parser::x509::X509Name as x509_parser::prelude::FromDer<
        x509_parser::error::X509Error,
    >>::from_der(&der)
    .expect("an encoded subject parses");
    assert!(rest.is_empty(), "nothing after the subject");
    let read = kubeboot_pki::name::Name::parse(&name).expect("an encoded subject reads");
    assert_eq!(
        read.attributes, issued,
        "the issued subject reads back as written"
    );
}

/// A kubeconfig, as `join` reads cluster-info's and as the node reads its own.
pub fn kubeconfig(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(kc) = kubeboot_pki::Kubeconfig::from_yaml(text)
    {
        let _ = kc.to_yaml();
    }
}

/// A JSON request body, and its duplicate fields (`fieldValidation=Strict`).
pub fn body_json(data: &[u8]) {
    let _ = kubeboot_apiserver::body::decode("application/json", data);
    let _ = kubeboot_apiserver::strict::duplicate_fields(data);
}

/// A YAML request body, and its first repeated key (`fieldValidation=Strict`).
pub fn body_yaml(data: &[u8]) {
    let _ = kubeboot_apiserver::body::decode("application/yaml", data);
    let _ = kubeboot_apiserver::strict::body_errors("application/yaml", data);
}

/// A Kubernetes protobuf request body.
pub fn body_protobuf(data: &[u8]) {
    let _ = kubeboot_apiserver::body::decode(kubeboot_apiserver::protobuf::CONTENT_TYPE, data);
}

/// A patch: the first byte picks the format, the rest up to a NUL is the object (JSON),
/// what follows is the patch.
pub fn patch(data: &[u8]) {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let ty = match kind % 3 {
        0 => PatchType::Merge,
        1 => PatchType::Json,
        _ => PatchType::Strategic,
    };
    let (original, body) = split(rest);
    let Ok(original) = serde_json::from_slice(original) else {
        return;
    };
    // The Node's patch tags: lists merged by key and as sets, nested in objects.
    let node = kubeboot_apiserver::registry::by_kind(kubeboot_apiserver::registry::Kind::Node);
    let _ = patch::apply(&original, body, ty, node.patch_schema);
}

/// The field labels the fuzzed field selectors are checked against.
const SELECTABLE: FieldLabels = FieldLabels::Own(&[
    FieldLabel::at("metadata.name"),
    FieldLabel::at("metadata.namespace"),
    FieldLabel::at("spec.signerName"),
]);

/// A label selector (before the first NUL) and a field selector (after it).
pub fn selectors(data: &[u8]) {
    let (labels, fields) = split(data);
    let _ = LabelSelector::parse(&String::from_utf8_lossy(labels));
    let _ = FieldSelector::parse(&String::from_utf8_lossy(fields), &SELECTABLE);
}

/// A list's `continue` token.
pub fn continue_token(data: &[u8]) {
    let _ = kubeboot_apiserver::listoptions::decode_continue(&String::from_utf8_lossy(data));
}

/// An EncryptionConfiguration file.
pub fn encryption_config(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = kubeboot_apiserver::encryption::Encryption::parse(text);
    }
}

/// `data` before and after its first NUL (all of it and nothing when there is none).
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}
