//! Malformed and unusual input against the real server, with `curl` and `openssl`, answered
//! as kube-apiserver answers it: duplicate fields under `fieldValidation=Strict`, long
//! subdomain names, a resourceVersion that is not a number, a negative watch timeout, and
//! a CSR whose key is too weak to verify, refused with the real reason. Then sections C
//! (malformed input) and F (robustness) of the adversarial review as tables: bodies that
//! are not JSON, YAML or protobuf, nesting and alias bombs, bodies over 3 MiB, content
//! types, patches and methods, names, selectors, continue tokens and versions, CSRs that
//! are not usable requests or carry 20,000 names, and a seeded random fuzz that must get
//! no 5xx.

mod common;

use std::path::Path;
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
fn strict_field_validation_refuses_duplicates_in_yaml_and_patches_and_changes_nothing() {
    let s = Server::start();
    let auth = admin(&s);
    let (code, out) = post_json(
        &s,
        CONFIGMAPS,
        r#"{"metadata":{"name":"p"},"data":{"a":"1"}}"#,
    );
    assert_eq!(code, 201, "{out}");
    let strict = |path: &str| format!("{path}?fieldValidation=Strict");
    let p = format!("{CONFIGMAPS}/p");
    let yaml_dup =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: yam\ndata:\n  a: \"1\"\n  a: \"2\"\n";
    let (merge, json_patch, smp) = (
        "application/merge-patch+json",
        "application/json-patch+json",
        "application/strategic-merge-patch+json",
    );
    let dup = text(r#"{"data":{"a":"3","a":"4"}}"#);
    let invalid = Some(r#"is invalid: patch: Invalid value: "#);
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("YAML naming a key twice, Strict", "POST", strict(CONFIGMAPS), "application/yaml", text(yaml_dup), 400,
            Some(r#"ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: yaml: unmarshal errors:\n  line 7: key \"a\" already set in map"#)),
        ("a merge patch naming a field twice, Strict", "PATCH", strict(&p), merge, dup.clone(), 422, invalid),
        ("... and what it names", "PATCH", strict(&p), merge, dup.clone(), 422, Some(r#"strict decoding error: duplicate field \"data.a\""#)),
        ("a JSON patch naming a field twice, Strict", "PATCH", strict(&p), json_patch,
            text(r#"[{"op":"add","op":"add","path":"/data/b","value":"1"}]"#), 422, Some(r#"strict decoding error: json patch duplicate field \"[0].op\""#)),
        ("a strategic merge patch naming a field twice, Strict", "PATCH", strict(&p), smp, dup.clone(), 422,
            Some(r#"Invalid value: \"map[data:map[a:4]]\": strict decoding error: duplicate field \"data.a\""#)),
        ("a merge patch with a field ConfigMaps lack, Strict", "PATCH", strict(&p), merge, text(r#"{"spec":{"x":1}}"#), 422,
            Some(r#"strict decoding error: unknown field \"spec\""#)),
        ("nothing was changed", "GET", p.clone(), "", vec![], 200, Some(r#""data":{"a":"1"}"#)),
        ("YAML naming a key twice keeps the last without Strict", "POST", CONFIGMAPS.into(), "application/yaml", text(yaml_dup), 201, Some(r#""a":"2""#)),
        ("a merge patch naming a field twice keeps the last without Strict", "PATCH", p.clone(), merge, dup, 200, Some(r#""a":"4""#)),
    ];
    assert_none(&mismatches(&s, &auth, rows));
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

// Section C of the adversarial review (malformed input) and F (robustness), one table per
// kind of input. Each row is a case of the review: its number and what is sent, the code
// that must come back and, where the answer has a fixed text, a part of its message.

/// A request of a table: the review's case, the method, the path, the content type (""
/// sends no body; "none" sends the body without one), the body, the code, and a part of
/// the message where it is fixed.
type Row = (
    &'static str,
    &'static str,
    String,
    &'static str,
    Vec<u8>,
    u16,
    Option<&'static str>,
);

/// Sends every row with `auth` (curl flags) and returns a line for each answer that
/// differs from its row: the code, the message, or an error that is not a `Status`.
fn mismatches(s: &Server, auth: &[String], rows: Vec<Row>) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut out = Vec::new();
    for (i, (case, method, path, ct, body, code, needle)) in rows.into_iter().enumerate() {
        let file = dir.path().join(format!("body-{i}"));
        let (got, text) = send(s, auth, &file, (method, &path, ct, &body));
        let is_status = got < 400 || status_code(&text) == Some(got);
        if got != code || !needle.is_none_or(|n| text.contains(n)) || !is_status {
            out.push(format!(
                "{case}: {method} {}: want {code} {needle:?}, got {got} {}",
                short(&path),
                short(&text)
            ));
        }
    }
    out
}

/// Sends one request with curl, its body (if any) from `file`; (code, body).
fn send(
    s: &Server,
    auth: &[String],
    file: &Path,
    (method, path, ct, body): (&str, &str, &str, &[u8]),
) -> (u16, String) {
    let mut args: Vec<String> = auth.to_vec();
    args.extend(["-X".into(), method.into(), "--path-as-is".into()]);
    if !ct.is_empty() {
        std::fs::write(file, body).expect("write body");
        let header = match ct {
            "none" => "Content-Type:".to_owned(),
            ct => format!("Content-Type: {ct}"),
        };
        args.extend([
            "-H".into(),
            header,
            "--data-binary".into(),
            format!("@{}", file.display()),
        ]);
    }
    s.curl(&args.iter().map(String::as_str).collect::<Vec<_>>(), path)
}

/// The `code` of a `Status` answer.
fn status_code(text: &str) -> Option<u16> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    (v["kind"] == "Status")
        .then(|| v["code"].as_u64())??
        .try_into()
        .ok()
}

/// The start of a long text, for a failure message.
fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

/// The admin's curl flags.
fn admin(s: &Server) -> Vec<String> {
    let (cert, key) = s.admin_cert_files();
    vec![
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ]
}

fn assert_none(failures: &[String]) {
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn text(s: impl Into<String>) -> Vec<u8> {
    s.into().into_bytes()
}

/// `n` arrays inside each other.
fn nested_arrays(n: usize) -> String {
    format!("{}{}", "[".repeat(n), "]".repeat(n))
}

/// `n` objects inside each other.
fn nested_objects(n: usize) -> String {
    format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n))
}

/// A ConfigMap named `name` whose `data` is `data` (JSON).
fn configmap(name: &str, data: &str) -> String {
    format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}},"data":{data}}}"#
    )
}

#[test]
fn malformed_json_yaml_and_protobuf_bodies_are_400_and_nothing_is_stored() {
    let s = Server::start();
    let auth = admin(&s);
    let (code, out) = post_json(&s, CONFIGMAPS, r#"{"metadata":{"name":"x"}}"#);
    assert_eq!(code, 201, "{out}");
    let cm = |name: &str| format!("{CONFIGMAPS}/{name}");
    let json = "application/json";
    let yaml = "application/yaml";
    let pb = PROTOBUF;
    let (jp, mp, sp) = (
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
    );
    let ssar = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let not_json = Some("the body of the request could not be decoded as JSON");
    let too_deep = Some("recursion limit exceeded");
    let not_yaml = Some("the body of the request could not be decoded as YAML");
    let not_pb = Some("the body of the request could not be decoded as protobuf");
    let not_patch = Some("the body of the request was not a valid patch");
    let mut rng = Rng(0x5eed_c0de);
    let mut bad_utf8 = text(r#"{"metadata":{"name":"u"},"data":{"a":""#);
    bad_utf8.extend([0xff, 0xfe]);
    bad_utf8.extend(br#""}}"#);
    let mut bad_utf8_yaml =
        text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: u\ndata:\n  a: \"");
    bad_utf8_yaml.extend([0xff, 0xfe]);
    bad_utf8_yaml.extend(b"\"\n");
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("C188 invalid JSON", "POST", CONFIGMAPS.into(), json, text(r#"{"metadata":{"name":"a""#), 400, not_json),
        ("C189 JSON with trailing garbage", "POST", CONFIGMAPS.into(), json, text(r#"{"metadata":{"name":"t"}} xyz"#), 400, Some("trailing characters")),
        ("C190 JSON array body", "POST", CONFIGMAPS.into(), json, text("[1,2]"), 400, Some("the body of the request must be a JSON object")),
        ("C191 JSON with invalid UTF-8", "POST", CONFIGMAPS.into(), json, bad_utf8, 400, not_json),
        ("C192 a name given twice: the last is kept", "POST", CONFIGMAPS.into(), json, text(r#"{"metadata":{"name":"dup1","name":"dup2"}}"#), 201, Some(r#""name":"dup2""#)),
        ("C193 1000 nested arrays", "POST", CONFIGMAPS.into(), json, text(configmap("deep", &nested_arrays(1000))), 400, too_deep),
        ("C194 JSON patch of 1000 arrays on a missing object", "PATCH", cm("missing"), jp, text(nested_arrays(1000)), 404, Some(r#"configmaps \"missing\" not found"#)),
        ("C195 merge patch of 1000 objects on a missing object", "PATCH", cm("missing"), mp, text(nested_objects(1000)), 404, None),
        ("C196 100000 nested arrays", "POST", CONFIGMAPS.into(), json, text(configmap("deep", &nested_arrays(100_000))), 400, too_deep),
        ("C197 JSON patch of 100000 arrays on a missing object", "PATCH", cm("missing"), jp, text(nested_arrays(100_000)), 404, None),
        ("C198 merge patch of 100000 objects on a missing object", "PATCH", cm("missing"), mp, text(nested_objects(100_000)), 404, None),
        ("C199 100000 nested arrays to selfsubjectaccessreviews", "POST", ssar.into(), json, text(format!(r#"{{"spec":{}}}"#, nested_arrays(100_000))), 400, too_deep),
        ("C200 JSON patch of 100000 arrays on an object", "PATCH", cm("x"), jp, text(nested_arrays(100_000)), 400, not_patch),
        ("C201 merge patch of 100000 objects on an object", "PATCH", cm("x"), mp, text(nested_objects(100_000)), 400, not_patch),
        ("C202 strategic merge patch of 100000 objects on an object", "PATCH", cm("x"), sp, text(nested_objects(100_000)), 400, not_patch),
        ("C203 100000 nested YAML flow sequences", "POST", CONFIGMAPS.into(), yaml, text(yaml_configmap("deep", &nested_arrays(100_000))), 400, not_yaml),
        ("C207 2000 nested YAML block sequences", "POST", CONFIGMAPS.into(), yaml, text(yaml_block_sequences(2000)), 400, not_yaml),
        ("C214 YAML billion laughs", "POST", CONFIGMAPS.into(), yaml, text(billion_laughs()), 400, not_yaml),
        ("C215 YAML with one benign alias", "POST", CONFIGMAPS.into(), yaml, text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: benign\n  labels: &l {a: b}\ndata: *l\n"), 201, Some(r#""data":{"a":"b"}"#)),
        ("C216 YAML: 2000 aliases of a 100 KB scalar", "POST", CONFIGMAPS.into(), yaml, text(scalar_aliases(2000, 100_000)), 400, not_yaml),
        ("C217 the billion laughs were not stored", "GET", cm("lol"), "", vec![], 404, None),
        ("C217 the aliased scalars were not stored", "GET", cm("q"), "", vec![], 404, None),
        ("C193/C196/C203 the nested bodies were not stored", "GET", cm("deep"), "", vec![], 404, None),
        ("C218 YAML !!binary and custom tags", "POST", CONFIGMAPS.into(), yaml, text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bin\nbinaryData:\n  a: !!binary aGVsbG8=\ndata:\n  b: !custom [1]\n"), 400, None),
        ("C219 YAML with two documents", "POST", CONFIGMAPS.into(), yaml, text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m1\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m2\n"), 400, not_yaml),
        ("C220 YAML merge keys", "POST", CONFIGMAPS.into(), yaml, text("apiVersion: v1\nkind: ConfigMap\nbase: &b {annotations: {a: b}}\nmetadata:\n  <<: *b\n  name: merged\n"), 201, Some(r#""annotations":{"a":"b"}"#)),
        ("C221 YAML with invalid UTF-8", "POST", CONFIGMAPS.into(), yaml, bad_utf8_yaml, 400, Some("the body of the request is not UTF-8")),
        ("C222 YAML with a huge integer", "POST", CONFIGMAPS.into(), yaml, text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hi\n  generation: 100000000000000000000000000000000000000\n"), 400, None),
        ("C223 YAML with an undefined alias", "POST", CONFIGMAPS.into(), yaml, text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: *nope\n"), 400, not_yaml),
        ("C224 protobuf: 4 KB of random bytes", "POST", CONFIGMAPS.into(), pb, rng.bytes(4096), 400, not_pb),
        ("C225 protobuf: the magic and random bytes", "POST", CONFIGMAPS.into(), pb, [MAGIC, &rng.bytes(4096)].concat(), 400, not_pb),
        ("C226 protobuf: the magic alone", "POST", CONFIGMAPS.into(), pb, MAGIC.to_vec(), 400, not_pb),
        ("C227 protobuf: a huge length varint", "POST", CONFIGMAPS.into(), pb, [MAGIC, &[0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]].concat(), 400, not_pb),
        ("C228 protobuf: a truncated length-delimited field", "POST", CONFIGMAPS.into(), pb, [MAGIC, b"\x0a\x10abc"].concat(), 400, not_pb),
        ("C229 protobuf: an empty body", "POST", CONFIGMAPS.into(), pb, vec![], 400, not_pb),
        ("C230 protobuf: a truncated typeMeta", "POST", CONFIGMAPS.into(), pb, [MAGIC, b"\x0a\x04\x0a\x02v1\x12"].concat(), 400, not_pb),
        ("C231 protobuf: 20000 nested messages in the object", "POST", CONFIGMAPS.into(), pb, protobuf_envelope("v1", "ConfigMap", &nested_messages(20_000)), 400, not_pb),
    ];
    let failures = mismatches(&s, &auth, rows);
    assert_none(&failures);
    let (_, list) = s.admin_curl(&[], CONFIGMAPS);
    let list: serde_json::Value = serde_json::from_str(&list).expect("a list");
    let mut names: Vec<&str> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["benign", "dup2", "merged", "x"],
        "only what was answered 201 is stored"
    );
}

#[test]
fn bodies_over_3_mib_are_413_or_forbidden_and_one_just_under_is_stored() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    // A ConfigMap of half a MiB of data (its values may hold 1 MiB at most), padded with
    // JSON white space to `len` bytes.
    let body = |name: &str, len: usize| {
        let start = format!(
            r#"{{"metadata":{{"name":"{name}"}},"data":{{"a":"{}"}}"#,
            "x".repeat(512 * 1024)
        );
        let padding = " ".repeat(len - start.len() - 1);
        format!("{start}{padding}}}").into_bytes()
    };
    let mib = 1024 * 1024;
    let big = body("big", 3 * mib + mib / 2);
    let under = body("under", 3 * mib - 100);
    assert!(under.len() <= 3 * mib, "the body is under the limit");
    let admin = admin(&s);
    let anonymous: Vec<String> = vec!["--http1.1".into()];
    let token = vec!["-H".into(), format!("Authorization: Bearer {}", s.token())];
    let chunked: Vec<String> = [
        &admin[..],
        &[
            "--http1.1".into(),
            "-H".into(),
            "Transfer-Encoding: chunked".into(),
        ],
    ]
    .concat();
    let too_large = Some("the request body is larger than 3 MiB");
    let json = "application/json";
    let csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    #[rustfmt::skip]
    let rows: Vec<(&str, &[String], Row)> = vec![
        ("admin", &admin, ("C204 a 3.5 MiB body", "POST", CONFIGMAPS.into(), json, big.clone(), 413, too_large)),
        ("admin", &admin, ("C205 the 3.5 MiB object was not stored", "GET", format!("{CONFIGMAPS}/big"), "", vec![], 404, None)),
        ("admin", &admin, ("C206 a body just under 3 MiB", "POST", CONFIGMAPS.into(), json, under, 201, Some(r#""name":"under""#))),
        ("admin", &admin, ("C206 the object just under 3 MiB was stored", "GET", format!("{CONFIGMAPS}/under"), "", vec![], 200, Some(r#""name":"under""#))),
        ("anonymous", &anonymous, ("C208 a 3.5 MiB body as anonymous is forbidden", "POST", CONFIGMAPS.into(), json, big.clone(), 403, Some("forbidden"))),
        ("token", &token, ("C209 a 3.5 MiB CSR body with a bootstrap token", "POST", csrs.into(), json, big, 413, too_large)),
        ("admin", &chunked, ("C213 a chunked body of 5 MiB", "POST", CONFIGMAPS.into(), json, body("chunked", 5 * mib), 413, too_large)),
    ];
    let mut failures = Vec::new();
    for (who, auth, (case, method, path, ct, body, code, needle)) in rows {
        let (got, text) = send(
            &s,
            auth,
            &dir.path().join("body"),
            (method, &path, ct, &body),
        );
        if got != code || !needle.is_none_or(|n| text.contains(n)) {
            failures.push(format!(
                "{case} ({who}): want {code} {needle:?}, got {got} {}",
                short(&text)
            ));
        }
    }
    assert_none(&failures);
}

#[test]
fn content_types_patches_and_methods_are_answered_as_kube_apiserver_answers_them() {
    let s = Server::start();
    let auth = admin(&s);
    let (code, out) = post_json(&s, CONFIGMAPS, r#"{"metadata":{"name":"x"}}"#);
    assert_eq!(code, 201, "{out}");
    let x = || format!("{CONFIGMAPS}/x");
    let json = "application/json";
    let (jp, mp, sp, ap) = (
        "application/json-patch+json",
        "application/merge-patch+json",
        "application/strategic-merge-patch+json",
        "application/apply-patch+yaml",
    );
    let unknown_format = Some("the body of the request was in an unknown format");
    let not_patch = Some("the body of the request was not a valid patch");
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("text/plain is not a format", "POST", CONFIGMAPS.into(), "text/plain", text(r#"{"metadata":{"name":"t1"}}"#), 415, unknown_format),
        ("JSON with a charset parameter", "POST", CONFIGMAPS.into(), "application/json; charset=utf-8", text(r#"{"metadata":{"name":"t2"}}"#), 201, None),
        ("no content type is JSON", "POST", CONFIGMAPS.into(), "none", text(r#"{"metadata":{"name":"t3"}}"#), 201, None),
        ("a merge patch type on create", "POST", CONFIGMAPS.into(), mp, text(r#"{"metadata":{"name":"t4"}}"#), 415, unknown_format),
        ("a patch sent as plain JSON", "PATCH", x(), json, text(r#"{"metadata":{"labels":{"a":"b"}}}"#), 415, unknown_format),
        ("a patch sent as text/plain", "PATCH", x(), "text/plain", text("{}"), 415, unknown_format),
        ("a JSON patch that is not a list", "PATCH", x(), jp, text(r#"{"op":"add"}"#), 400, not_patch),
        ("a JSON patch with an unknown op (kube-apiserver finds it as it applies the patch)", "PATCH", x(), jp, text(r#"[{"op":"frob","path":"/a"}]"#), 422, Some("Unexpected kind: frob")),
        ("a JSON patch removing what is not there", "PATCH", x(), jp, text(r#"[{"op":"remove","path":"/data/nope"}]"#), 422, Some("the server rejected our request due to an error in our request")),
        ("a JSON patch whose test fails", "PATCH", x(), jp, text(r#"[{"op":"test","path":"/metadata/name","value":"y"}]"#), 422, None),
        ("a merge patch that is an array", "PATCH", x(), mp, text("[1]"), 400, not_patch),
        ("a merge patch renaming the object", "PATCH", x(), mp, text(r#"{"metadata":{"name":"other"}}"#), 400, Some("the name of the object (other) does not match the name on the URL (x)")),
        ("a merge patch removing the name (seen before the fix: 200, the name kept)", "PATCH", x(), mp, text(r#"{"metadata":{"name":null}}"#), 400, Some("the name of the object () does not match the name on the URL (x)")),
        ("a strategic merge patch deleting the metadata (seen before the fix: 200, nothing changed)", "PATCH", x(), sp, text(r#"{"metadata":{"$patch":"delete"}}"#), 400, Some("the name of the object () does not match the name on the URL (x)")),
        ("an update without a name", "PUT", x(), json, text(r#"{"data":{"a":"b"}}"#), 400, Some("the name of the object () does not match the name on the URL (x)")),
        ("a strategic merge patch of the wrong type", "PATCH", x(), sp, text(r#"{"data":"notamap"}"#), 400, None),
        ("an apply without a field manager", "PATCH", x(), ap, text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"), 422, Some("fieldManager: Required value: is required for apply patch")),
        ("an apply of another kind", "PATCH", format!("{}?fieldManager=t", x()), ap, text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n"), 400, None),
        ("an update renaming the object", "PUT", x(), json, text(r#"{"metadata":{"name":"y"}}"#), 400, Some("the name of the object (y) does not match the name on the URL (x)")),
        ("a create in another namespace than the URL's", "POST", CONFIGMAPS.into(), json, text(r#"{"metadata":{"name":"n","namespace":"kube-system"}}"#), 400, Some("the namespace of the provided object does not match the namespace sent on the request")),
        ("a create on an object's URL", "POST", x(), json, text(r#"{"metadata":{"name":"x"}}"#), 405, Some("MethodNotAllowed")),
        // Seen before the fix: namespaces deleted as a collection (kube-apiserver's storage
        // deletes them one at a time), and finalize read.
        ("a deletecollection of namespaces", "DELETE", "/api/v1/namespaces?labelSelector=nothing%3Dhere".into(), "", vec![], 405, Some("MethodNotAllowed")),
        ("a get of a namespace's finalize", "GET", "/api/v1/namespaces/default/finalize".into(), "", vec![], 405, Some("MethodNotAllowed")),
        ("a delete whose precondition fails", "DELETE", x(), json, text(r#"{"kind":"DeleteOptions","apiVersion":"v1","preconditions":{"uid":"nope"}}"#), 409,
            Some(r#"Operation cannot be fulfilled on ConfigMap \"x\": the UID in the precondition (nope) does not match the UID in record"#)),
        // Each seen before the fix: the object deleted, or the update refused as invalid.
        ("a delete of an unknown propagation policy", "DELETE", format!("{}?propagationPolicy=Bogus", x()), "", vec![], 422,
            Some(r#"DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Bogus\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""#)),
        ("a delete both orphaning and propagating", "DELETE", x(), json, text(r#"{"orphanDependents":true,"propagationPolicy":"Background"}"#), 422,
            Some("orphanDependents and deletionPropagation cannot be both set")),
        ("an update naming another uid", "PUT", x(), json, text(r#"{"metadata":{"name":"x","uid":"bogus"}}"#), 409,
            Some(r#"Operation cannot be fulfilled on configmaps \"x\": StorageError: invalid object, Code: 4, Key: /registry/configmaps/default/x, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: bogus, UID in object meta: "#)),
        ("an apply without an apiVersion", "PATCH", format!("{}?fieldManager=t", x()), ap, text(r#"{"kind":"ConfigMap","metadata":{"name":"x"}}"#), 400,
            Some("invalid object type: /, Kind=ConfigMap")),
        ("an apply carrying managedFields", "PATCH", format!("{}?fieldManager=t", x()), ap, text(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","managedFields":[{"manager":"m","operation":"Apply"}]}}"#), 400,
            Some("metadata.managedFields must be nil")),
        ("nothing was deleted", "GET", x(), "", vec![], 200, None),
        ("a delete with a body that is not JSON", "DELETE", x(), json, text("{not json"), 400, Some("the body of the request could not be decoded as JSON")),
        ("an unknown method", "FOO", CONFIGMAPS.into(), "", vec![], 405, Some(r#"verb \"foo\" is not supported"#)),
        ("TRACE", "TRACE", CONFIGMAPS.into(), "", vec![], 405, None),
        ("OPTIONS", "OPTIONS", CONFIGMAPS.into(), "", vec![], 405, None),
        ("an unknown path", "GET", "/nonexistent/path".into(), "", vec![], 404, Some("the server could not find the requested resource")),
        ("an unknown group", "GET", "/apis/nope.example.com/v1/things".into(), "", vec![], 404, None),
        ("an unknown version", "GET", "/api/v2/configmaps".into(), "", vec![], 404, None),
        ("an unknown resource", "GET", "/api/v1/namespaces/default/limitranges".into(), "", vec![], 404, None),
        ("a subresource a ConfigMap does not have", "GET", format!("{}/status", x()), "", vec![], 404, None),
        ("the object is unchanged", "GET", x(), "", vec![], 200, Some(r#""name":"x""#)),
    ];
    assert_none(&mismatches(&s, &auth, rows));
}

#[test]
fn names_are_validated_as_kube_apiserver_validates_them() {
    let s = Server::start();
    let auth = admin(&s);
    let dir = tempfile::tempdir().expect("tempdir");
    let request = base64::engine::general_purpose::STANDARD.encode(common::csr_pem(
        dir.path(),
        "n",
        "/CN=names",
    ));
    let json = "application/json";
    let named = |name: &str| {
        text(format!(
            r#"{{"metadata":{{"name":{}}}}}"#,
            serde_json::json!(name)
        ))
    };
    let csr = |name: &str| {
        text(format!(
            r#"{{"metadata":{{"name":{}}},"spec":{{"request":"{request}","signerName":"example.com/x","usages":["client auth"]}}}}"#,
            serde_json::json!(name)
        ))
    };
    let csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let subdomain = Some(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
    );
    let get = |path: &str| -> Row { ("", "GET", path.to_owned(), "", vec![], 404, None) };
    let with = |case, row: Row| -> Row { (case, row.1, row.2, row.3, row.4, row.5, row.6) };
    #[rustfmt::skip]
    let rows: Vec<Row> = vec![
        ("C258 unknown fields under fieldValidation=Strict", "POST", format!("{CONFIGMAPS}?fieldValidation=Strict"), json, text(r#"{"metadata":{"name":"s1","bogus":1},"spec":{}}"#), 400, Some(r#"strict decoding error: unknown field \"metadata.bogus\", unknown field \"spec\""#)),
        with("C259 ... and the object was not stored", get(&format!("{CONFIGMAPS}/s1"))),
        ("C260 unknown fields without fieldValidation are dropped", "POST", CONFIGMAPS.into(), json, text(r#"{"metadata":{"name":"s2","bogus":1},"spec":{},"data":{"a":"b"}}"#), 201, Some(r#""data":{"a":"b"}"#)),
        ("C263 ConfigMap name in upper case", "POST", CONFIGMAPS.into(), json, named("UPPER"), 422, subdomain),
        ("C264 ConfigMap name ..", "POST", CONFIGMAPS.into(), json, named(".."), 422, subdomain),
        ("C265 ConfigMap name .", "POST", CONFIGMAPS.into(), json, named("."), 422, subdomain),
        ("C266 ConfigMap name a/b", "POST", CONFIGMAPS.into(), json, named("a/b"), 422, subdomain),
        ("C267 ConfigMap name with a percent", "POST", CONFIGMAPS.into(), json, named("a%2Fb"), 422, subdomain),
        ("C268 ConfigMap name of 500 characters", "POST", CONFIGMAPS.into(), json, named(&"a".repeat(500)), 422, None),
        ("C269 ConfigMap name of 254 characters", "POST", CONFIGMAPS.into(), json, named(&"a".repeat(254)), 422, None),
        ("C270 ConfigMap name with a leading dash", "POST", CONFIGMAPS.into(), json, named("-abc"), 422, subdomain),
        ("C271 ConfigMap name in unicode", "POST", CONFIGMAPS.into(), json, named("héllo"), 422, subdomain),
        ("C272 ConfigMap without a name or generateName", "POST", CONFIGMAPS.into(), json, text(r#"{"metadata":{}}"#), 422, Some("metadata.name: Required value: name or generateName is required")),
        ("C273 ConfigMap name with a NUL byte", "POST", CONFIGMAPS.into(), json, named("a\0b"), 422, subdomain),
        ("C274 ConfigMap name with a newline", "POST", CONFIGMAPS.into(), json, named("a\nb"), 422, subdomain),
        ("C275 ConfigMap name with a space", "POST", CONFIGMAPS.into(), json, named("a b"), 422, subdomain),
        // Each broken rule its own message, as IsValidPathSegmentName gives them.
        ("C276 CSR name ..", "POST", csrs.into(), json, csr(".."), 422, Some(r#"metadata.name: Invalid value: \"..\": may not be '..'"#)),
        ("C277 CSR name a/b", "POST", csrs.into(), json, csr("a/b"), 422, Some(r#"metadata.name: Invalid value: \"a/b\": may not contain '/'"#)),
        ("C278 CSR name with a percent", "POST", csrs.into(), json, csr("a%b"), 422, Some(r#"metadata.name: Invalid value: \"a%b\": may not contain '%'"#)),
        ("C279 CSR name in upper case is a path segment", "POST", csrs.into(), json, csr("UPPER"), 201, None),
        ("C280 CSR name of 1000 characters is a path segment", "POST", csrs.into(), json, csr(&"a".repeat(1000)), 201, None),
        ("C281 generateName in upper case", "POST", CONFIGMAPS.into(), json, text(r#"{"metadata":{"generateName":"UP-"}}"#), 422, subdomain),
        ("C282 generateName of 300 characters", "POST", CONFIGMAPS.into(), json, text(format!(r#"{{"metadata":{{"generateName":"{}"}}}}"#, "a".repeat(300))), 422, None),
        with("C283 GET configmaps/..", get(&format!("{CONFIGMAPS}/.."))),
        with("C284 GET configmaps/%2e%2e", get(&format!("{CONFIGMAPS}/%2e%2e"))),
        with("C285 GET namespaces/../configmaps/x", get("/api/v1/namespaces/../configmaps/x")),
        with("C286 GET a name of 300 characters", get(&format!("{CONFIGMAPS}/{}", "a".repeat(300)))),
    ];
    assert_none(&mismatches(&s, &auth, rows));
}

#[test]
fn selectors_continue_tokens_and_versions_never_reach_beyond_the_list() {
    use Want::{Any, Has, Nothing};
    let s = Server::start();
    let auth = admin(&s);
    for name in ["p1", "p2"] {
        let (code, out) = post_json(
            &s,
            CONFIGMAPS,
            &format!(r#"{{"metadata":{{"name":"{name}","labels":{{"a":"b"}}}}}}"#),
        );
        assert_eq!(code, 201, "{out}");
    }
    let list = |q: &str| format!("{CONFIGMAPS}?{q}");
    let token = |json: &str| {
        list(&format!(
            "limit=1&continue={}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
        ))
    };
    let bad_token = Has("continue key is not valid: the continue token is malformed");
    let unparsable = Has("unable to parse requirement");
    let unsupported = Has("field label not supported");
    let empty = Has(r#""items":[]"#);
    let bad_rv = Has("invalid resource version");
    let secrets = "metadata.name%3D..%2F..%2Fsecrets%2Fkube-system%2Fbootstrap-token-abcdef";
    #[rustfmt::skip]
    let rows: Vec<(&str, String, u16, Want)> = vec![
        ("C287 labelSelector a in (", list("labelSelector=a%20in%20("), 400, unparsable),
        ("C288 labelSelector (((", list("labelSelector=%28%28%28"), 400, Has("found '(', expected: !, identifier, or 'end of string'")),
        ("C289 labelSelector a===b", list("labelSelector=a%3D%3D%3Db"), 400, Has("unable to parse requirement: found '=', expected: identifier")),
        ("C290 labelSelector !!a", list("labelSelector=!!a"), 400, Has("unable to parse requirement: found '!', expected: identifier")),
        ("C291 labelSelector a,a,a,...", list(&format!("labelSelector={}", "a,".repeat(50))), 400, Has("found '', expected: identifier after ','")),
        ("C292 labelSelector a notin )b(", list("labelSelector=a%20notin%20)b("), 400, unparsable),
        // apimachinery's lexer ends the selector at a NUL: an empty selector.
        ("C293 labelSelector NUL", list("labelSelector=%00"), 200, Any),
        ("C294 fieldSelector foo=bar", list("fieldSelector=foo%3Dbar"), 400, Has("field label not supported: foo")),
        ("C295 fieldSelector without an operator", list("fieldSelector=metadata.name"), 400, Has("invalid selector: 'metadata.name'; can't understand 'metadata.name'")),
        ("C296 fieldSelector of a CSR field", list("fieldSelector=spec.signerName%3Dx"), 400, unsupported),
        ("C297 fieldSelector ===", list("fieldSelector=%3D%3D%3D"), 400, Has("invalid field selector: unescaped character in value: 61")),
        ("C298 fieldSelector of a long name", list(&format!("fieldSelector=metadata.name%3D{}", "a".repeat(300))), 200, empty),
        ("C299/C300 fieldSelector name ../../secrets/...: no item", list(&format!("fieldSelector={secrets}")), 200, empty),
        ("C301 ... and as a watch: no event", list(&format!("watch=true&timeoutSeconds=1&fieldSelector={secrets}")), 200, Nothing),
        ("C302 limit=1 returns a continue token", list("limit=1"), 200, Has(r#""continue":""#)),
        ("C304 continue token: garbage", list("limit=1&continue=garbage!!"), 400, bad_token),
        ("C305 continue token: not JSON", token("not json"), 400, bad_token),
        ("C306 continue token: a start key in secrets", token(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"/registry/secrets/kube-system/"}"#), 400, Has("continue key is not valid: it belongs to another list")),
        ("C307 continue token: the list's prefix and ../", token(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"/registry/configmaps/default/../../secrets/kube-system/"}"#), 200, Any),
        ("C308 continue token: a negative version", token(r#"{"v":"meta.k8s.io/v1","rv":-5,"start":"/registry/configmaps/default/p1"}"#), 200, Any),
        // Pages are read at the token's version: one the store has not reached is refused
        // (kube-apiserver passes etcd's refusal on as a 500).
        ("C309 continue token: a huge version", token(r#"{"v":"meta.k8s.io/v1","rv":4611686018427387904,"start":"/registry/configmaps/default/p1"}"#), 400, Has("continue key is not valid: its resource version")),
        ("C310 continue token: a version that is a string", token(r#"{"v":"meta.k8s.io/v1","rv":"x","start":"/registry/configmaps/default/p1"}"#), 400, bad_token),
        ("C311 continue token: 5 KB", list(&format!("limit=1&continue={}", "A".repeat(5000))), 400, bad_token),
        ("C312 watch resourceVersion=abc", list("watch=true&timeoutSeconds=1&resourceVersion=abc"), 400, bad_rv),
        ("C313 watch resourceVersion in the future: no event", list("watch=true&timeoutSeconds=1&resourceVersion=999999999999"), 200, Nothing),
        ("C314 watch resourceVersion=-1", list("watch=true&timeoutSeconds=1&resourceVersion=-1"), 400, bad_rv),
        ("C315 watch resourceVersion=2^64", list("watch=true&timeoutSeconds=1&resourceVersion=18446744073709551616"), 400, bad_rv),
        ("C316 watch resourceVersion=1 replays the list's objects", list("watch=true&timeoutSeconds=1&resourceVersion=1"), 200, Has(r#""type":"ADDED""#)),
        ("C317 list resourceVersion=abc", list("resourceVersion=abc"), 400, bad_rv),
        ("C318 list resourceVersion in the future: 504 after 3 s", list("resourceVersion=999999999999"), 504, Has("Timeout: Too large resource version: 999999999999, current: ")),
        ("C318 get resourceVersion in the future: 504 after 3 s", format!("{CONFIGMAPS}/p1?resourceVersion=999999999999"), 504, Has(r#""reason":"ResourceVersionTooLarge""#)),
        ("C319 limit=-1", list("limit=-1"), 200, Any),
        ("C320 limit=0", list("limit=0"), 200, Any),
        // A list's numbers decode as apimachinery's conversion decodes them (seen before:
        // these two were lists of everything).
        ("C321 limit=abc", list("limit=abc"), 400, Has(r#"strconv.ParseInt: parsing \"abc\": invalid syntax"#)),
        ("C322 limit=99999999999999999999", list("limit=99999999999999999999"), 400, Has(r#"strconv.ParseInt: parsing \"99999999999999999999\": value out of range"#)),
        ("C323 limit=1000000000", list("limit=1000000000"), 200, Any),
    ];
    let flags: Vec<&str> = auth
        .iter()
        .map(String::as_str)
        .chain(["--path-as-is"])
        .collect();
    let mut failures = Vec::new();
    for (case, path, code, want) in rows {
        let (got, text) = s.curl(&flags, &path);
        let foreign = foreign_items(&text);
        let as_wanted = match want {
            Any => true,
            Has(needle) => text.contains(needle),
            Nothing => text.trim().is_empty(),
        };
        if got != code || !as_wanted || !foreign.is_empty() {
            failures.push(format!(
                "{case}: want {code} {want:?} and only default's ConfigMaps, got {got} {} (foreign: {foreign:?})",
                short(&text)
            ));
        }
    }
    assert_none(&failures);
}

/// What a list or watch answer must hold besides its code.
#[derive(Clone, Copy, Debug)]
enum Want {
    Any,
    Has(&'static str),
    Nothing,
}

/// Whatever a list or watch answer holds that is not a ConfigMap of `default`.
fn foreign_items(text: &str) -> Vec<String> {
    let mut objects = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if let Some(items) = v["items"].as_array() {
            objects.extend(items.iter().cloned());
        }
        if v["object"].is_object() {
            objects.push(v["object"].clone());
        }
    }
    objects
        .iter()
        .filter(|o| {
            o["metadata"]["namespace"] != "default"
                || o.get("kind").is_some_and(|k| k != "ConfigMap")
        })
        .map(|o| short(&o.to_string()))
        .collect()
}

#[test]
fn csr_requests_that_are_not_usable_certificate_requests_are_refused() {
    let s = Server::start();
    let auth = admin(&s);
    let token = vec![
        "-H".to_owned(),
        format!("Authorization: Bearer {}", s.token()),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // One request per key type; the ones that must be issued name a node, for the approver.
    let key = |name: &str, args: &[&str], cn: &str| {
        let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
        let mut all = vec![
            "req", "-new", "-nodes", "-keyout", &key, "-out", &csr, "-subj", cn,
        ];
        all.extend_from_slice(args);
        openssl(d, &all);
        std::fs::read(d.join(csr)).expect("csr")
    };
    let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let node = |n: &str| format!("/O=system:nodes/CN=system:node:{n}");
    let plain = key("plain", &p256, "/CN=aaaa");
    let rsa512 = key("rsa512", &["-newkey", "rsa:512"], "/CN=rsa512");
    let p192 = key(
        "p192",
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-192"],
        "/CN=p192",
    );
    let ed25519 = key("ed25519", &["-newkey", "ed25519"], &node("ed25519"));
    let rsa2048 = key("rsa2048", &["-newkey", "rsa:2048"], &node("rsa2048"));
    let sha1 = key("sha1", &["-newkey", "rsa:2048", "-sha1"], &node("sha1"));
    let first = key("first", &p256, &node("first"));
    let junk_before = key("junk", &p256, &node("junk"));
    let mut broken = csr_der(&plain);
    *broken.last_mut().expect("a signature") ^= 1;
    let mut edited = csr_der(&plain);
    let at = edited
        .windows(4)
        .position(|w| w == b"aaaa")
        .expect("the CN in the DER");
    edited[at..at + 4].copy_from_slice(b"bbbb");
    let ca = std::fs::read(s.ca()).expect("ca");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let with_headers = String::from_utf8_lossy(&plain).replacen(
        "-----BEGIN CERTIFICATE REQUEST-----\n",
        "-----BEGIN CERTIFICATE REQUEST-----\nProc-Type: 4,ENCRYPTED\n\n",
        1,
    );
    let any = r#""signerName":"example.com/x","usages":["client auth"]"#;
    let kubelet = r#""signerName":"kubernetes.io/kube-apiserver-client-kubelet","usages":["digital signature","client auth"]"#;
    let spec = |signer: &str, usages: &str, extra: &str| {
        format!(r#""signerName":"{signer}","usages":{usages}{extra}"#)
    };
    let invalid_request = Some(r#"spec.request: Invalid value: \"<request>\""#);
    let not_a_request = Some("PEM block type must be CERTIFICATE REQUEST");
    let does_not_verify = Some("certificate request signature does not verify");
    let short_duration = Some("may not specify a duration less than 600 seconds (10 minutes)");
    let r = b64(&plain);
    #[rustfmt::skip]
    let rows: Vec<CsrRow> = vec![
        ("C232 request that is not base64", Who::Admin, "!!!notbase64".into(), any.into(), 400, Some("the body of the request could not be decoded")),
        ("C233 request of base64 garbage", Who::Admin, b64(&[0x13; 100]), any.into(), 422, not_a_request),
        ("C234 empty request", Who::Admin, String::new(), any.into(), 422, Some("spec.request: Required value")),
        ("C235 request that is a CERTIFICATE", Who::Admin, b64(&ca), any.into(), 422, not_a_request),
        ("C236 request PEM of garbage DER", Who::Admin, b64(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAAAAAA\n-----END CERTIFICATE REQUEST-----\n"), any.into(), 422, Some("failed to parse certificate request")),
        ("C237 request with a broken signature", Who::Admin, b64(&csr_pem_of(&broken)), any.into(), 422, does_not_verify),
        ("C238 request whose subject was edited after signing", Who::Admin, b64(&csr_pem_of(&edited)), any.into(), 422, does_not_verify),
        ("C240 P-192 key", Who::Admin, b64(&p192), any.into(), 422, invalid_request),
        ("C241 Ed25519 key: issued", Who::Token, b64(&ed25519), kubelet.into(), 201, None),
        ("C242 RSA-2048 key: issued", Who::Token, b64(&rsa2048), kubelet.into(), 201, None),
        ("C243 two PEM blocks: the first is used and issued", Who::Token, b64(&[&first[..], &plain[..]].concat()), kubelet.into(), 201, None),
        ("C244 text before the PEM block: issued", Who::Token, b64(&[&b"some text\n"[..], &junk_before[..]].concat()), kubelet.into(), 201, None),
        ("C245 PEM with headers", Who::Admin, b64(with_headers.as_bytes()), any.into(), 422, not_a_request),
        ("C246 unknown usage, the supported ones sorted as Kubernetes lists them", Who::Admin, r.clone(), spec("example.com/x", r#"["client auth","foo"]"#, ""), 422,
            Some(r#"spec.usages[1]: Unsupported value: \"foo\": supported values: \"any\", \"cert sign\", \"client auth\", \"code signing\", \"content commitment\", \"crl sign\", \"data encipherment\", \"decipher only\", \"digital signature\", \"email protection\", \"encipher only\""#)),
        ("C247 duplicate usages", Who::Admin, r.clone(), spec("example.com/x", r#"["client auth","client auth"]"#, ""), 422, Some(r#"spec.usages[1]: Duplicate value: \"client auth\""#)),
        ("C248 no usages", Who::Admin, r.clone(), spec("example.com/x", "[]", ""), 422, Some("spec.usages: Required value")),
        ("C249 signerName kubernetes.io", Who::Admin, r.clone(), spec("kubernetes.io", r#"["client auth"]"#, ""), 422, Some("must be a fully qualified domain and path of the form 'example.com/signer-name'")),
        ("C250 signerName a.b/c/d", Who::Admin, r.clone(), spec("a.b/c/d", r#"["client auth"]"#, ""), 422, Some("may not contain more than one '/'")),
        ("C251 signerName of 600 characters", Who::Admin, r.clone(), spec(&format!("example.com/{}", "a".repeat(600)), r#"["client auth"]"#, ""), 422, Some("spec.signerName: Invalid value")),
        ("C252 the legacy-unknown signer in v1", Who::Admin, r.clone(), spec("kubernetes.io/legacy-unknown", r#"["client auth"]"#, ""), 422, Some("the legacy signerName is not allowed via this API version")),
        ("C253 expirationSeconds=10", Who::Admin, r.clone(), spec("example.com/x", r#"["client auth"]"#, r#","expirationSeconds":10"#), 422, short_duration),
        ("C254 expirationSeconds=-1", Who::Admin, r.clone(), spec("example.com/x", r#"["client auth"]"#, r#","expirationSeconds":-1"#), 422, short_duration),
        ("C255 expirationSeconds=2^40 overflows int32", Who::Admin, r, spec("example.com/x", r#"["client auth"]"#, r#","expirationSeconds":1099511627776"#), 400, Some("expected i32")),
        ("C256 RSA-512 key", Who::Admin, b64(&rsa512), any.into(), 422, Some("RSA keys of 512 bits are not supported")),
        ("C257 RSA-2048 signed with SHA-1: issued", Who::Token, b64(&sha1), kubelet.into(), 201, None),
    ];
    let csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let mut failures = Vec::new();
    let mut created = Vec::new();
    for (case, who, request, spec, code, needle) in rows {
        let body = format!(
            r#"{{"metadata":{{"generateName":"c-"}},"spec":{{"request":"{request}",{spec}}}}}"#
        );
        let flags = match who {
            Who::Admin => &auth,
            Who::Token => &token,
        };
        let (got, text) = send(
            &s,
            flags,
            &d.join("body"),
            ("POST", csrs, "application/json", body.as_bytes()),
        );
        if got != code || !needle.is_none_or(|n| text.contains(n)) {
            failures.push(format!(
                "{case}: want {code} {needle:?}, got {got} {}",
                short(&text)
            ));
        } else if code == 201 {
            let v: serde_json::Value = serde_json::from_str(&text).expect("the CSR");
            let name = v["metadata"]["name"].as_str().expect("a name").to_owned();
            created.push((case, name));
        }
    }
    assert_none(&failures);
    let issued = |name: &str| {
        let (_, out) = s.admin_curl(&[], &format!("{csrs}/{name}"));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        v.pointer("/status/certificate")
            .and_then(|c| c.as_str())
            .is_some_and(|c| !c.is_empty())
    };
    for (case, name) in created {
        assert!(
            common::eventually(std::time::Duration::from_secs(60), || issued(&name)),
            "{case}: {name} was approved and issued"
        );
    }
}

#[test]
fn a_seeded_random_fuzz_of_the_api_as_the_admin_gets_no_5xx() {
    let mut s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let (cert, key) = s.admin_cert_files();
    let mut rng = Rng(0xf022_2026);
    let requests: Vec<Fuzzed> = (0..FUZZ_REQUESTS).map(|_| fuzzed(&mut rng)).collect();
    let mut codes = std::collections::BTreeMap::<u16, usize>::new();
    let mut failures = Vec::new();
    for (n, batch) in requests.chunks(100).enumerate() {
        // One curl for a hundred requests, each with its own method, type and body.
        let mut config = String::new();
        for (i, r) in batch.iter().enumerate() {
            let body = dir.path().join(format!("body-{n}-{i}"));
            std::fs::write(&body, &r.body).expect("write body");
            if i > 0 {
                config.push_str("next\n");
            }
            let header = match r.ct {
                "" => "Content-Type:".to_owned(),
                ct => format!("Content-Type: {ct}"),
            };
            config.push_str(&format!(
                "url = \"{}{}\"\nrequest = \"{}\"\ncacert = \"{}\"\ncert = \"{}\"\nkey = \"{}\"\n\
                 http1.1\npath-as-is\ngloboff\nmax-time = 20\nheader = \"{header}\"\n\
                 data-binary = \"@{}\"\noutput = \"/dev/null\"\nwrite-out = \"%{{http_code}}\\n\"\n",
                s.url,
                r.path,
                r.method,
                s.ca().display(),
                cert.display(),
                key.display(),
                body.display(),
            ));
        }
        let file = dir.path().join(format!("batch-{n}"));
        std::fs::write(&file, config).expect("write curl config");
        let curl = Command::new("curl")
            .args(["-sS", "-K"])
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("curl");
        let out = common::wait_bounded(curl, std::time::Duration::from_secs(300));
        let answered = common::stdout(&out);
        let answered: Vec<&str> = answered.lines().collect();
        assert_eq!(
            answered.len(),
            batch.len(),
            "curl ran every request: {}",
            common::stderr(&out)
        );
        for (r, code) in batch.iter().zip(answered) {
            let code: u16 = code.trim().parse().unwrap_or(0);
            *codes.entry(code).or_default() += 1;
            if code >= 500 || code == 0 {
                failures.push(format!(
                    "{code}: {} {} ({:?}, {} bytes)",
                    r.method,
                    r.path,
                    r.ct,
                    r.body.len()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "every request was answered below 500 ({codes:?}):\n{}",
        failures.join("\n")
    );
    assert!(
        matches!(s.child.try_wait(), Ok(None)),
        "the server still runs"
    );
    assert_eq!(
        s.admin_curl(&[], "/healthz"),
        (200, "ok".to_owned()),
        "and answers"
    );
    let (code, metrics) = s.admin_curl(&[], "/metrics");
    assert_eq!(code, 200, "{metrics}");
    let server_errors: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total") && l.contains("code=\"5"))
        .collect();
    assert!(
        server_errors.is_empty(),
        "the server counted no 5xx: {server_errors:?}"
    );
}

/// A request of the fuzz.
struct Fuzzed {
    method: &'static str,
    path: String,
    ct: &'static str,
    body: Vec<u8>,
}

/// A random request: a method, a path (a collection, an object, a subresource, a path
/// that is not there), a query, a content type and a body mutated from a valid object.
/// Most are writes of the kind the path takes, so that they reach decoding, validation
/// and storage.
fn fuzzed(rng: &mut Rng) -> Fuzzed {
    let (collection, seed) = *rng.pick(&FUZZ_RESOURCES);
    let method = *rng.pick(&FUZZ_METHODS);
    let name = match rng.below(5) {
        0 => random_segment(rng),
        _ => (*rng.pick(&["fuzz-a", "fuzz-b", "fuzz-a", "default", "kube-system"])).to_owned(),
    };
    let path = match (method, rng.below(12)) {
        (_, 0) => (*rng.pick(&FUZZ_PATHS)).to_owned(),
        (_, 1) => format!("/api/v1/{}", random_segment(rng)),
        (_, 2) => format!(
            "{collection}/{name}/{}",
            rng.pick(&["status", "approval", "scale"])
        ),
        (_, 3) => format!(
            "{collection}/{name}/{}/{}",
            random_segment(rng),
            random_segment(rng)
        ),
        ("POST", _) | (_, 4) => collection.to_owned(),
        _ => format!("{collection}/{name}"),
    };
    let ct = match (method, rng.below(4)) {
        (_, 0) => *rng.pick(&FUZZ_TYPES),
        ("PATCH", _) => *rng.pick(&FUZZ_TYPES[3..7]),
        _ => *rng.pick(&FUZZ_TYPES[..2]),
    };
    let seed = seed.replace("NAME", &name);
    let body = match rng.below(12) {
        0..=3 => seed.into_bytes(),
        4 => {
            let at = rng.below(seed.len());
            seed.as_bytes()[..at].to_vec()
        }
        5 => {
            let mut bytes = seed.into_bytes();
            for _ in 0..=rng.below(5) {
                let at = rng.below(bytes.len());
                bytes[at] = rng.next() as u8;
            }
            bytes
        }
        6 | 7 => replace_a_value(rng, &seed),
        8 => {
            let n = rng.below(2000);
            rng.bytes(n)
        }
        9 => format!(
            r#"[{{"op":"{}","path":"{}","value":{}}}]"#,
            rng.pick(&["add", "remove", "replace", "move", "copy", "test", "frob"]),
            rng.pick(&[
                "/metadata/name",
                "/data/k",
                "/spec",
                "/",
                "",
                "/metadata/labels/a",
                "/x/-"
            ]),
            rng.pick(&WEIRD_VALUES)
        )
        .into_bytes(),
        10 => [MAGIC, &rng.bytes(200)].concat(),
        _ => match rng.below(2) {
            0 => Vec::new(),
            _ => seed
                .replacen('{', r#"{"bogus":1,"kind":"Nope","#, 1)
                .into_bytes(),
        },
    };
    Fuzzed {
        method,
        path: format!("{path}{}", rng.pick(&FUZZ_QUERIES)),
        ct,
        body,
    }
}

/// `seed` (JSON) with one of its values, anywhere in it, replaced by an unusual one.
fn replace_a_value(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let mut v: serde_json::Value = serde_json::from_str(seed).expect("the seeds are JSON");
    let mut pointers = Vec::new();
    let mut stack = vec![(String::new(), &v)];
    while let Some((at, node)) = stack.pop() {
        match node {
            serde_json::Value::Object(map) => {
                stack.extend(map.iter().map(|(k, child)| (format!("{at}/{k}"), child)));
            }
            serde_json::Value::Array(items) => {
                stack.extend(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, child)| (format!("{at}/{i}"), child)),
                );
            }
            _ => {}
        }
        pointers.push(at);
    }
    let at = rng.pick(&pointers).clone();
    let weird: serde_json::Value = match rng.below(WEIRD_VALUES.len() + 2) {
        0 => serde_json::Value::String("x".repeat(10_000)),
        1 => serde_json::from_str(&nested_arrays(100)).expect("nested arrays"),
        i => serde_json::from_str(WEIRD_VALUES[i - 2]).expect("a JSON value"),
    };
    if let Some(slot) = v.pointer_mut(&at) {
        *slot = weird;
    }
    v.to_string().into_bytes()
}

/// A path segment of random characters, some of them odd.
fn random_segment(rng: &mut Rng) -> String {
    const CHARS: &[u8] = b"abcxyz019-._~%2e%2fAZ:!()";
    let n = 1 + rng.below(12);
    (0..n).map(|_| char::from(*rng.pick(CHARS))).collect()
}

#[test]
fn a_csr_with_20000_dns_names_is_created_and_listed_as_a_table() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let names: String = (0..20_000)
        .map(|i| format!("DNS.{i} = n{i}.example.com\n"))
        .collect();
    let config = format!(
        "[req]\ndistinguished_name = dn\nreq_extensions = ext\nprompt = no\n[dn]\n\
         O = system:nodes\nCN = system:node:sans\n[ext]\nsubjectAltName = @alt\n[alt]\n{names}"
    );
    std::fs::write(d.join("sans.cnf"), config).expect("write config");
    openssl(
        d,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "sans.key",
            "-out",
            "sans.csr",
            "-config",
            "sans.cnf",
        ],
    );
    let pem = std::fs::read(d.join("sans.csr")).expect("csr");
    assert!(pem.len() > 500_000, "a CSR of {} bytes", pem.len());
    let request = base64::engine::general_purpose::STANDARD.encode(pem);
    let body = format!(
        r#"{{"metadata":{{"name":"sans"}},"spec":{{"request":"{request}","signerName":"kubernetes.io/kube-apiserver-client-kubelet","usages":["digital signature","client auth"]}}}}"#
    );
    let token = vec![
        "-H".to_owned(),
        format!("Authorization: Bearer {}", s.token()),
    ];
    let csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
    let (code, text) = send(
        &s,
        &token,
        &d.join("body"),
        ("POST", csrs, "application/json", body.as_bytes()),
    );
    assert_eq!(
        code,
        201,
        "C353 created by a bootstrap token: {}",
        short(&text)
    );
    let table = "Accept: application/json;as=Table;v=v1;g=meta.k8s.io";
    let (code, text) = s.admin_curl(&["-H", table], csrs);
    assert_eq!(code, 200, "C354 listed as a table: {}", short(&text));
    assert!(
        text.contains(r#""kind":"Table""#) && text.contains("sans"),
        "{}",
        short(&text)
    );
    assert_eq!(s.admin_curl(&[], "/healthz"), (200, "ok".to_owned()));
}

/// A CSR of the table: the review's case, who sends it, its `spec.request`, the rest of
/// its spec (JSON), the code and a part of the message.
type CsrRow = (&'static str, Who, String, String, u16, Option<&'static str>);

/// Who sends a CSR: the admin, or the server's bootstrap token (whose node CSRs the
/// approver approves).
enum Who {
    Admin,
    Token,
}

/// The DER inside a CSR's PEM.
fn csr_der(pem: &[u8]) -> Vec<u8> {
    let b64: String = String::from_utf8_lossy(pem)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("PEM base64")
}

/// A CSR's DER as PEM, 64 characters a line.
fn csr_pem_of(der: &[u8]) -> Vec<u8> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
        .collect();
    format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        lines.join("\n")
    )
    .into_bytes()
}

/// A ConfigMap in YAML whose data is `data` (a YAML flow value).
fn yaml_configmap(name: &str, data: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata: {data}\n")
}

/// A ConfigMap in YAML holding `n` block sequences inside each other.
fn yaml_block_sequences(n: usize) -> String {
    let mut out = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: deep\nx:\n");
    for i in 0..n {
        out.push_str(&" ".repeat(i));
        out.push_str("-\n");
    }
    out.push_str(&" ".repeat(n));
    out.push_str("a\n");
    out
}

/// Nine levels of nine aliases: 9^9 strings once expanded.
fn billion_laughs() -> String {
    let mut out = String::from("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: lol\n");
    out.push_str(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for (prev, next) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 9].join(",");
        out.push_str(&format!("{next}: &{next} [{refs}]\n"));
    }
    out
}

/// `n` data keys aliasing one scalar of `len` bytes.
fn scalar_aliases(n: usize, len: usize) -> String {
    let mut out = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: q\n  annotations:\n    big: &big \"{}\"\ndata:\n",
        "x".repeat(len)
    );
    for i in 0..n {
        out.push_str(&format!("  k{i}: *big\n"));
    }
    out
}

/// `depth` length-delimited field-1 messages inside each other (a ConfigMap's metadata,
/// its name, ...), built from the outside in.
fn nested_messages(depth: usize) -> Vec<u8> {
    let mut lens = vec![0usize; depth + 1];
    for k in 1..=depth {
        lens[k] = 1 + varint(lens[k - 1]).len() + lens[k - 1];
    }
    let mut out = Vec::with_capacity(lens[depth]);
    for k in (1..=depth).rev() {
        out.push(0x0a);
        out.extend(varint(lens[k - 1]));
    }
    out
}

/// Kubernetes' protobuf envelope: the magic, then `runtime.Unknown` with the type and `raw`.
fn protobuf_envelope(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let type_meta = [field(1, api_version.as_bytes()), field(2, kind.as_bytes())].concat();
    [MAGIC.to_vec(), field(1, &type_meta), field(2, raw)].concat()
}

/// A length-delimited protobuf field.
fn field(number: u8, bytes: &[u8]) -> Vec<u8> {
    [vec![number << 3 | 2], varint(bytes.len()), bytes.to_vec()].concat()
}

fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return out;
        }
        out.push(low | 0x80);
    }
}

/// A seeded xorshift generator: the same sequence on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// How many requests the fuzz sends.
const FUZZ_REQUESTS: usize = 500;
/// Nine methods, writes weighted up.
const FUZZ_METHODS: [&str; 14] = [
    "POST", "POST", "POST", "PUT", "PUT", "PATCH", "PATCH", "PATCH", "GET", "DELETE", "OPTIONS",
    "TRACE", "PROPFIND", "FOO",
];
const FUZZ_TYPES: [&str; 9] = [
    "application/json",
    "application/yaml",
    PROTOBUF,
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "text/plain",
    "",
];
/// Collections and a valid object of each (its name is NAME).
const FUZZ_RESOURCES: [(&str, &str); 10] = [
    (
        "/api/v1/namespaces/default/configmaps",
        r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME","labels":{"a":"b"}},"data":{"k":"v"}}"#,
    ),
    (
        "/api/v1/namespaces/default/secrets",
        r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"NAME"},"type":"Opaque","data":{"k":"dg=="}}"#,
    ),
    (
        "/api/v1/namespaces",
        r#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"NAME"}}"#,
    ),
    (
        "/api/v1/nodes",
        r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"NAME","labels":{"a":"b"}},"spec":{"taints":[{"key":"k","effect":"NoSchedule"}]}}"#,
    ),
    (
        "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
        r#"{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{"name":"NAME"},"spec":{"holderIdentity":"h","leaseDurationSeconds":40}}"#,
    ),
    (
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        r#"{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{"name":"NAME"},"spec":{"request":"LS0tLS1CRUdJTg==","signerName":"example.com/x","usages":["client auth"]}}"#,
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"NAME"},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get"]}]}"#,
    ),
    (
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"NAME"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"view"},"subjects":[{"kind":"User","name":"u"}]}"#,
    ),
    (
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
        r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"verb":"get","resource":"configmaps"}}}"#,
    ),
    (
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview","metadata":{"name":"NAME"}}"#,
    ),
];
const FUZZ_PATHS: [&str; 11] = [
    "/",
    "/healthz",
    "/livez",
    "/readyz",
    "/version",
    "/api",
    "/apis",
    "/api/v1",
    "/apis/certificates.k8s.io/v1",
    "/openapi/v2",
    "/metrics",
];
/// Queries of every kind but a watch (which would wait).
const FUZZ_QUERIES: [&str; 10] = [
    "",
    "?fieldValidation=Strict",
    "?dryRun=All",
    "?limit=2",
    "?labelSelector=a%3Db",
    "?fieldSelector=metadata.name%3Dx",
    "?resourceVersion=0",
    "?continue=garbage",
    "?timeoutSeconds=1",
    "?pretty=true&fieldManager=%00",
];
const WEIRD_VALUES: [&str; 10] = [
    "null",
    "true",
    "-1",
    "1e308",
    r#""""#,
    "[]",
    "{}",
    "9223372036854775808",
    r#""\u0000""#,
    "[{}]",
];
const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";
const MAGIC: &[u8] = b"k8s\0";

#[test]
fn unknown_write_options_are_refused_and_nothing_is_written() {
    let s = Server::start();
    let body = r#"{"metadata":{"name":"typo"}}"#;
    for (query, needle) in [
        (
            "dryRun=Foo",
            r#"CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: []string{\"Foo\"}: supported values: \"All\""#,
        ),
        (
            "fieldValidation=strict",
            r#"fieldValidation: Unsupported value: \"strict\": supported values: \"Ignore\", \"Strict\", \"Warn\""#,
        ),
    ] {
        let (code, text) = post_json(&s, &format!("{CONFIGMAPS}?{query}"), body);
        assert_eq!(code, 422, "{query}: {text}");
        assert!(text.contains(needle), "{query}: {text}");
    }
    let (code, text) = s.admin_curl(&[], &format!("{CONFIGMAPS}/typo"));
    assert_eq!(code, 404, "a mistyped dry run writes nothing: {text}");
    // A name too long is told so, as Kubernetes tells it.
    let (code, text) = post_json(
        &s,
        CONFIGMAPS,
        &format!(r#"{{"metadata":{{"name":"{}"}}}}"#, "a".repeat(254)),
    );
    assert_eq!(code, 422, "{text}");
    assert!(
        text.contains("must be no more than 253 characters"),
        "{text}"
    );
    // An update of a whole collection is not a method the collection has.
    let (code, text) = s.admin_curl(
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ],
        CONFIGMAPS,
    );
    assert_eq!(code, 405, "{text}");
}
