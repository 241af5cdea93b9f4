//! Malformed and unusual input against the real server, with `curl` and `openssl`, answered
//! as kube-apiserver answers it: duplicate fields under `fieldValidation=Strict`, long
//! subdomain names, a resourceVersion that is not a number, a negative watch timeout, and
//! a CSR whose key is too weak to verify, refused with the real reason.

mod common;

use std::process::Command;

use base64::Engine;
use common::{Server, openssl};

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn post_json(s: &Server, path: &str, body: &str) -> (u16, String) {
    s.admin_curl(
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ],
        path,
    )
}

#[test]
fn strict_field_validation_refuses_duplicate_fields() {
    let s = Server::start();
    let body = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup"},"data":{"a":"1","a":"2"}}"#;
    let (code, text) = post_json(&s, &format!("{CONFIGMAPS}?fieldValidation=Strict"), body);
    assert_eq!(code, 400, "{text}");
    let status: serde_json::Value = serde_json::from_str(&text).expect("a Status");
    assert_eq!(
        status["message"],
        r#"ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: duplicate field "data.a""#
    );
    let (code, text) = post_json(&s, CONFIGMAPS, body);
    assert_eq!(code, 201, "without Strict the last value is kept: {text}");
    let stored: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(stored["data"]["a"], "2");
}

#[test]
fn a_subdomain_name_may_have_one_label_of_253_characters() {
    let s = Server::start();
    let long = "a".repeat(253);
    let (code, text) = post_json(
        &s,
        CONFIGMAPS,
        &format!(r#"{{"metadata":{{"name":"{long}"}}}}"#),
    );
    assert_eq!(code, 201, "{text}");
    let too_long = "a".repeat(254);
    let (code, text) = post_json(
        &s,
        CONFIGMAPS,
        &format!(r#"{{"metadata":{{"name":"{too_long}"}}}}"#),
    );
    assert_eq!(code, 422, "{text}");
}

#[test]
fn list_and_watch_parameters_are_read_as_kube_apiserver_reads_them() {
    let s = Server::start();
    let (code, text) = s.admin_curl(&[], &format!("{CONFIGMAPS}?resourceVersion=abc"));
    assert_eq!(code, 400, "{text}");
    let status: serde_json::Value = serde_json::from_str(&text).expect("a Status");
    assert_eq!(
        status["message"],
        r#"invalid resource version: resourceVersion: Invalid value: "abc": strconv.ParseUint: parsing "abc": invalid syntax"#
    );
    // A watch with a negative timeout ends at once.
    let (cert, key) = s.admin_cert_files();
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .arg("--cacert")
        .arg(s.ca())
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg(format!(
            "{}{CONFIGMAPS}?watch=true&timeoutSeconds=-5",
            s.url
        ))
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "the watch ended by itself (curl: {})",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}

#[test]
fn a_csr_with_a_weak_rsa_key_is_refused_for_what_it_is() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    openssl(
        dir.path(),
        &[
            "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "weak.key", "-out",
            "weak.csr", "-subj", "/CN=weak",
        ],
    );
    let pem = std::fs::read(dir.path().join("weak.csr")).expect("csr");
    let request = base64::engine::general_purpose::STANDARD.encode(pem);
    let body = format!(
        r#"{{"metadata":{{"name":"weak"}},"spec":{{"request":"{request}","signerName":"example.com/x","usages":["client auth"]}}}}"#
    );
    let (code, text) = post_json(
        &s,
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        &body,
    );
    assert_eq!(code, 422, "{text}");
    assert!(
        text.contains("RSA keys of 1024 bits are not supported: use at least 2048 bits"),
        "{text}"
    );
}
