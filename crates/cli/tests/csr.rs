//! The CSR controllers end to end with the real binary, openssl, curl and kubectl: a
//! bootstrap token's node CSR is approved and signed, a node renews itself, what no policy
//! approves waits for a person, bad requests fail, expired ones are cleaned.
#![allow(
    clippy::disallowed_methods,
    reason = "an integration test waits in real time on a real process"
)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Server, csr_pem, ok, openssl};

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

fn new_csr(dir: &Path, name: &str, subject: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(csr_pem(dir, name, subject))
}

fn post_csr(
    s: &Server,
    auth: &[&str],
    request: &str,
    signer: &str,
    usages: &[&str],
    extra: &str,
) -> (u16, serde_json::Value) {
    let body = format!(
        r#"{{"metadata":{{"generateName":"csr-"}},"spec":{{"request":"{request}","signerName":"{signer}","usages":{}{extra}}}}}"#,
        serde_json::to_string(usages).expect("json")
    );
    let mut args = auth.to_vec();
    args.extend([
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &body,
    ]);
    let (code, out) = s.curl(&args, CSRS);
    (code, serde_json::from_str(&out).unwrap_or_default())
}

fn get_csr(s: &Server, name: &str) -> serde_json::Value {
    let (_, out) = s.admin_curl(&[], &format!("{CSRS}/{name}"));
    serde_json::from_str(&out).unwrap_or_default()
}

fn wait_csr(
    s: &Server,
    name: &str,
    limit: Duration,
    cond: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + limit;
    loop {
        let v = get_csr(s, name);
        if cond(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn issued(v: &serde_json::Value) -> bool {
    v.pointer("/status/certificate")
        .and_then(|c| c.as_str())
        .is_some_and(|c| !c.is_empty())
}

fn conditions(v: &serde_json::Value) -> Vec<String> {
    v.pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str().map(str::to_owned))
        .collect()
}

fn token_of(s: &Server) -> String {
    s.join_command
        .as_deref()
        .expect("join")
        .split_whitespace()
        .skip_while(|w| *w != "--token")
        .nth(1)
        .expect("token")
        .to_owned()
}

#[test]
fn node_client_certificates_are_approved_and_signed_and_renewed_by_the_node() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let bearer = format!("Authorization: Bearer {}", token_of(&s));
    let client_usages = ["digital signature", "client auth"];
    let kubelet = "kubernetes.io/kube-apiserver-client-kubelet";

    let (code, v) = post_csr(
        &s,
        &["-H", &bearer],
        &new_csr(d, "n1", "/O=system:nodes/CN=system:node:n1"),
        kubelet,
        &client_usages,
        "",
    );
    assert_eq!(code, 201, "{v}");
    let n1 = v["metadata"]["name"].as_str().expect("name").to_owned();
    let (code, v) = post_csr(
        &s,
        &["-H", &bearer],
        &new_csr(d, "evil", "/O=system:masters/CN=system:node:n1"),
        kubelet,
        &client_usages,
        "",
    );
    assert_eq!(code, 201, "{v}");
    let evil = v["metadata"]["name"].as_str().expect("name").to_owned();

    let v = wait_csr(&s, &n1, Duration::from_secs(20), issued);
    assert!(issued(&v), "approved and issued: {v}");
    let approved = v["status"]["conditions"][0].clone();
    assert_eq!(approved["type"], "Approved");
    assert_eq!(approved["reason"], "AutoApproved");
    assert_eq!(
        approved["message"],
        "Auto approving kubelet client certificate after SubjectAccessReview."
    );
    let pem = base64::engine::general_purpose::STANDARD
        .decode(v["status"]["certificate"].as_str().expect("cert"))
        .expect("b64");
    std::fs::write(d.join("n1.crt"), &pem).expect("write");
    let ca = s.ca();
    openssl(
        d,
        &["verify", "-CAfile", ca.to_str().expect("utf8"), "n1.crt"],
    );

    let table = ok(s.kubectl("kubectl", &["get", "csr"]), "get csr");
    let row = table.lines().find(|l| l.starts_with(&n1)).expect("row");
    assert!(
        row.contains("kubernetes.io/kube-apiserver-client-kubelet")
            && row.contains("system:bootstrap:")
            && row.trim_end().ends_with("Approved,Issued"),
        "{row}"
    );

    // The request naming system:masters is recognised by nobody: pending, never signed.
    let v = get_csr(&s, &evil);
    assert!(conditions(&v).is_empty() && !issued(&v), "{v}");

    // n1 renews with its own certificate: auto-approved as a self node client.
    let n1_auth = ["--cert", "n1.crt", "--key", "n1.key"].map(|a| {
        if a.ends_with(".crt") || a.ends_with(".key") {
            d.join(a).display().to_string()
        } else {
            a.to_owned()
        }
    });
    let n1_auth: Vec<&str> = n1_auth.iter().map(String::as_str).collect();
    let (code, v) = post_csr(
        &s,
        &n1_auth,
        &new_csr(d, "n1b", "/O=system:nodes/CN=system:node:n1"),
        kubelet,
        &client_usages,
        "",
    );
    assert_eq!(code, 201, "{v}");
    assert_eq!(v["spec"]["username"], "system:node:n1");
    let renewal = v["metadata"]["name"].as_str().expect("name").to_owned();
    let v = wait_csr(&s, &renewal, Duration::from_secs(20), issued);
    assert!(issued(&v), "{v}");
    assert_eq!(
        v["status"]["conditions"][0]["message"],
        "Auto approving self kubelet client certificate after SubjectAccessReview."
    );

    // n1 may not ask for n2's identity.
    let (code, v) = post_csr(
        &s,
        &n1_auth,
        &new_csr(d, "n2", "/O=system:nodes/CN=system:node:n2"),
        kubelet,
        &client_usages,
        "",
    );
    assert_eq!(code, 403, "{v}");

    let v = get_csr(&s, &evil);
    assert!(
        conditions(&v).is_empty() && !issued(&v),
        "still pending after the others were handled: {v}"
    );
    let (_, metrics) = s.admin_curl(&[], "/metrics");
    assert!(
        metrics.contains("kubeboot_csr_decisions_total{decision=\"approved\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("kubeboot_csr_decisions_total{decision=\"signed\"} 2"),
        "{metrics}"
    );
}

#[test]
fn what_no_policy_approves_waits_for_a_person_and_bad_requests_fail() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (cert, key) = s.admin_cert_files();
    let admin = [
        "--cert",
        cert.to_str().expect("utf8"),
        "--key",
        key.to_str().expect("utf8"),
    ];
    let signer = "kubernetes.io/kube-apiserver-client";
    let (_, v) = post_csr(
        &s,
        &admin,
        &new_csr(d, "jane", "/O=devs/CN=jane"),
        signer,
        &["client auth"],
        "",
    );
    let jane = v["metadata"]["name"].as_str().expect("name").to_owned();
    let (_, v) = post_csr(
        &s,
        &admin,
        &new_csr(d, "joe", "/O=devs/CN=joe"),
        signer,
        &["client auth"],
        "",
    );
    let joe = v["metadata"]["name"].as_str().expect("name").to_owned();
    let (_, v) = post_csr(
        &s,
        &admin,
        &new_csr(d, "srv", "/O=devs/CN=srv"),
        signer,
        &["client auth", "server auth"],
        "",
    );
    let bad = v["metadata"]["name"].as_str().expect("name").to_owned();
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        conditions(&get_csr(&s, &jane)).is_empty(),
        "not auto-approved"
    );

    ok(
        s.kubectl("kubectl", &["certificate", "approve", &jane, &bad]),
        "approve",
    );
    ok(s.kubectl("kubectl", &["certificate", "deny", &joe]), "deny");
    let v = wait_csr(&s, &jane, Duration::from_secs(20), issued);
    assert!(issued(&v), "{v}");
    let v = wait_csr(&s, &bad, Duration::from_secs(20), |v| {
        conditions(v).contains(&"Failed".to_owned())
    });
    let failed = v["status"]["conditions"]
        .as_array()
        .expect("conds")
        .iter()
        .find(|c| c["type"] == "Failed")
        .expect("Failed")
        .clone();
    assert_eq!(failed["reason"], "SignerValidationFailure");
    assert_eq!(
        failed["message"],
        "invalid usage for client certificate: server auth"
    );
    assert!(!issued(&v));
    std::thread::sleep(Duration::from_millis(300));
    let v = get_csr(&s, &joe);
    assert_eq!(conditions(&v), ["Denied"]);
    assert!(!issued(&v), "a denied CSR gets no certificate");
    let table = ok(s.kubectl("kubectl", &["get", "csr"]), "get csr");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with(&bad) && l.trim_end().ends_with("Approved,Failed")),
        "{table}"
    );
}

#[test]
fn an_issued_csr_whose_certificate_expired_is_cleaned() {
    let s = Server::start_with(&["--cluster-signing-duration", "2s"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let bearer = format!("Authorization: Bearer {}", token_of(&s));
    let (code, v) = post_csr(
        &s,
        &["-H", &bearer],
        &new_csr(dir.path(), "n1", "/O=system:nodes/CN=system:node:n1"),
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
        "",
    );
    assert_eq!(code, 201, "{v}");
    let name = v["metadata"]["name"].as_str().expect("name").to_owned();
    let v = wait_csr(&s, &name, Duration::from_secs(20), issued);
    assert!(issued(&v), "{v}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut code = 200;
    while Instant::now() < deadline && code != 404 {
        code = s.admin_curl(&[], &format!("{CSRS}/{name}")).0;
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        code, 404,
        "the cleaner deleted the CSR once its certificate expired"
    );
}

/// A CSR whose subject is written in BMPString (UTF-16), as `openssl` writes it when its
/// string mask allows nothing else; returns its base64.
fn bmp_csr(dir: &Path, name: &str, dn: &[(&str, &str)]) -> String {
    let fields: String = dn.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    let cnf = format!(
        "[req]\ndistinguished_name = dn\nstring_mask = MASK:0x800\nprompt = no\n[dn]\n{fields}"
    );
    std::fs::write(dir.join(format!("{name}.cnf")), cnf).expect("write config");
    let (key, csr, cnf) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.cnf"),
    );
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-config",
            &cnf,
        ],
    );
    base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(dir.join(csr)).expect("read csr"))
}

#[test]
fn subjects_in_bmpstring_are_read_checked_and_issued_as_they_are() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let bearer = format!("Authorization: Bearer {}", s.token());
    // CertificateSubjectRestriction sees the group however it is encoded.
    let masters = bmp_csr(
        d,
        "masters",
        &[("O", "system:masters"), ("CN", "evil-admin")],
    );
    let (code, v) = post_csr(
        &s,
        &["-H", &bearer],
        &masters,
        "kubernetes.io/kube-apiserver-client",
        &["client auth"],
        "",
    );
    assert_eq!(code, 403, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("system:masters group is not allowed")),
        "{v}"
    );
    // A node's request in BMPString is recognised, approved, and the certificate names
    // exactly the subject that was checked.
    let node = bmp_csr(
        d,
        "enc",
        &[("O", "system:nodes"), ("CN", "system:node:enc")],
    );
    let (code, v) = post_csr(
        &s,
        &["-H", &bearer],
        &node,
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
        "",
    );
    assert_eq!(code, 201, "{v}");
    let name = v["metadata"]["name"].as_str().expect("name").to_owned();
    let v = wait_csr(&s, &name, Duration::from_secs(30), issued);
    assert!(issued(&v), "approved and issued: {v}");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(v["status"]["certificate"].as_str().expect("cert"))
        .expect("b64");
    std::fs::write(d.join("enc.crt"), &pem).expect("write");
    let out = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(d.join("enc.crt"))
        .output()
        .expect("openssl");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "subject=CN=system:node:enc,O=system:nodes"
    );
}

#[test]
fn a_user_of_several_groups_is_issued_every_group_as_kubernetes_issues_them() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let (cert, key) = s.admin_cert_files();
    let admin = [
        "--cert",
        cert.to_str().expect("utf8"),
        "--key",
        key.to_str().expect("utf8"),
    ];
    // Two groups, and an attribute Kubernetes' signer does not carry (emailAddress).
    let request = new_csr(
        d,
        "jane",
        "/CN=jane/O=devs/O=ops/emailAddress=jane@example.com",
    );
    let (code, v) = post_csr(
        &s,
        &admin,
        &request,
        "kubernetes.io/kube-apiserver-client",
        &["client auth"],
        "",
    );
    assert_eq!(code, 201, "{v}");
    let name = v["metadata"]["name"].as_str().expect("name").to_owned();
    ok(
        s.kubectl("kubectl", &["certificate", "approve", &name]),
        "approve",
    );
    let v = wait_csr(&s, &name, Duration::from_secs(30), issued);
    assert!(issued(&v), "approved and issued: {v}");
    let pem = base64::engine::general_purpose::STANDARD
        .decode(v["status"]["certificate"].as_str().expect("cert"))
        .expect("b64");
    std::fs::write(d.join("jane.crt"), &pem).expect("write");
    let subject = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "RFC2253", "-in"])
        .arg(d.join("jane.crt"))
        .output()
        .expect("openssl");
    assert_eq!(
        String::from_utf8_lossy(&subject.stdout).trim(),
        "subject=CN=jane,O=ops,O=devs",
        "O, O, CN in Go's order; emailAddress dropped as Kubernetes drops it"
    );
    let verify = std::process::Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(s.ca())
        .arg(d.join("jane.crt"))
        .output()
        .expect("openssl verify");
    assert!(verify.status.success(), "{verify:?}");
    // The server reads both groups from the certificate it issued.
    let (crt, key) = (d.join("jane.crt"), d.join("jane.key"));
    let jane = [
        "--cert",
        crt.to_str().expect("utf8"),
        "--key",
        key.to_str().expect("utf8"),
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#,
    ];
    let (code, out) = s.curl(&jane, "/apis/authentication.k8s.io/v1/selfsubjectreviews");
    assert_eq!(code, 201, "{out}");
    let review: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(review["status"]["userInfo"]["username"], "jane");
    assert_eq!(
        review["status"]["userInfo"]["groups"],
        serde_json::json!(["devs", "ops", "system:authenticated"])
    );
}

#[test]
fn what_the_controllers_decide_shows_in_describe_and_events() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let bearer = format!("Authorization: Bearer {}", token_of(&s));
    let (_, v) = post_csr(
        &s,
        &["-H", &bearer],
        &new_csr(d, "n1", "/O=system:nodes/CN=system:node:n1"),
        "kubernetes.io/kube-apiserver-client-kubelet",
        &["digital signature", "client auth"],
        "",
    );
    let node = v["metadata"]["name"].as_str().expect("name").to_owned();
    // The kubelet names its CSR `node-csr-<base64url digest>`: capitals and `_` too, and
    // so do the Events named after it.
    let request = new_csr(d, "n2", "/O=system:nodes/CN=system:node:n2");
    let named = format!(
        r#"{{"metadata":{{"name":"node-csr-Ab_Cd-9"}},"spec":{{"request":"{request}","signerName":"kubernetes.io/kube-apiserver-client-kubelet","usages":["digital signature","client auth"]}}}}"#
    );
    let posted = [
        "-H",
        &bearer,
        "-H",
        "Content-Type: application/json",
        "--data-binary",
        &named,
    ];
    let (code, body) = s.curl(&posted, CSRS);
    assert_eq!(code, 201, "{body}");
    let kubelet_named = "node-csr-Ab_Cd-9".to_owned();
    let (cert, key) = s.admin_cert_files();
    let admin = [
        "--cert",
        cert.to_str().expect("utf8"),
        "--key",
        key.to_str().expect("utf8"),
    ];
    let user = |name: &str, usages: &[&str]| {
        let signer = "kubernetes.io/kube-apiserver-client";
        let (_, v) = post_csr(
            &s,
            &admin,
            &new_csr(d, name, &format!("/O=devs/CN={name}")),
            signer,
            usages,
            "",
        );
        v["metadata"]["name"].as_str().expect("name").to_owned()
    };
    let (bad, joe) = (
        user("srv", &["client auth", "server auth"]),
        user("joe", &["client auth"]),
    );
    ok(
        s.kubectl("kubectl", &["certificate", "approve", &bad]),
        "approve",
    );
    ok(s.kubectl("kubectl", &["certificate", "deny", &joe]), "deny");
    let want = [
        (
            &node,
            "Issued",
            "Approved (AutoApproved: Auto approving kubelet client certificate after SubjectAccessReview.) and signed by kubernetes.io/kube-apiserver-client-kubelet: serial ",
        ),
        (
            &kubelet_named,
            "Issued",
            "Approved (AutoApproved: Auto approving kubelet client certificate after SubjectAccessReview.) and signed by ",
        ),
        (
            &bad,
            "SignerValidationFailure",
            "invalid usage for client certificate: server auth",
        ),
        (&joe, "Denied", "Denied"),
    ];
    for k in common::kubectls() {
        for (csr, reason, message) in want {
            let shown = || common::stdout(&s.kubectl(&k, &["describe", "csr", csr]));
            let found = common::eventually(Duration::from_secs(20), || {
                let text = shown();
                text.contains(reason) && text.contains(message)
            });
            assert!(found, "{k}: {reason} on {csr}:\n{}", shown());
        }
        let listed = ok(
            s.kubectl(
                &k,
                &[
                    "get",
                    "events",
                    "-A",
                    "--field-selector",
                    "involvedObject.kind=CertificateSigningRequest,type=Warning",
                ],
            ),
            "events",
        );
        assert!(
            listed.contains("SignerValidationFailure") && listed.contains("Denied"),
            "{k}: {listed}"
        );
        assert!(!listed.contains("Issued"), "{k}: only warnings: {listed}");
    }
    // The controllers' writes are recorded beside the requester's, each through its
    // subresource, though their informers hold the CSRs without managedFields.
    let issued: serde_json::Value = serde_json::from_str(&ok(
        s.kubectl(
            "kubectl",
            &["get", "csr", &node, "-o", "json", "--show-managed-fields"],
        ),
        "get csr",
    ))
    .expect("json");
    let managers: Vec<(&str, &str)> = issued["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|e| {
            let field = |f: &str| e[f].as_str().unwrap_or_default();
            (field("manager"), field("subresource"))
        })
        .collect();
    assert_eq!(
        managers,
        [
            ("curl", ""),
            ("kubeboot-controller-manager", "approval"),
            ("kubeboot-controller-manager", "status"),
        ],
        "{issued}"
    );
}
