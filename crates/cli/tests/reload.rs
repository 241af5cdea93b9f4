//! Key material read again when its files change, without a restart, as kube-apiserver
//! reloads `--tls-cert-file`, `--tls-private-key-file` and `--client-ca-file` and
//! kube-controller-manager its signing CA files: the serving certificate, the client CA
//! bundle, the CA that signs CSRs and the ClusterTrustBundles published from them, each
//! checked with openssl, curl and kubectl while the server keeps running.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::{Server, client_cert, eventually, ok, openssl, stdout};

/// Replaces `to` with `text` as a CA rotation would: written beside it, then renamed.
fn replace(to: &Path, text: &str) {
    let tmp = to.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, to).expect("rename");
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).expect("read")
}

/// The subjectAltName of the certificate the server presents now.
fn served_names(s: &Server) -> String {
    let addr = s.addr().trim_start_matches("https://").to_owned();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} </dev/null 2>/dev/null | openssl x509 -noout -ext subjectAltName"
        ))
        .output()
        .expect("openssl s_client");
    stdout(&out)
}

/// A new self-signed CA `name` in `dir` (`{name}.crt`, `{name}.key`).
fn new_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "30",
        ],
    );
}

/// A serving certificate for 127.0.0.1 and `reloaded.example` from the cluster CA.
fn new_serving_cert(dir: &Path, pki: &Path) {
    common::csr_pem(dir, "serving", "/CN=kube-apiserver");
    std::fs::write(
        dir.join("serving.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:reloaded.example\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "serving.csr",
            "-CA",
            pki.join("ca.crt").to_str().expect("utf-8"),
            "-CAkey",
            pki.join("ca.key").to_str().expect("utf-8"),
            "-CAcreateserial",
            "-out",
            "serving.crt",
            "-days",
            "2",
            "-extfile",
            "serving.cnf",
        ],
    );
}

/// The trust bundle published for `signer`.
fn bundle_of(s: &Server, signer: &str) -> String {
    stdout(&s.kubectl(
        "kubectl",
        &[
            "get",
            "clustertrustbundles",
            "--field-selector",
            &format!("spec.signerName={signer}"),
            "-o",
            "jsonpath={.items[*].spec.trustBundle}",
        ],
    ))
}

#[test]
fn serving_certificate_client_ca_and_signing_ca_are_reloaded_without_a_restart() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let (dir, pki) = (tmp.path(), s.dir.join("pki"));

    // A new serving certificate: new connections get it; kubectl keeps working.
    assert!(!served_names(&s).contains("reloaded.example"));
    new_serving_cert(dir, &pki);
    replace(&pki.join("apiserver.key"), &read(&dir.join("serving.key")));
    replace(&pki.join("apiserver.crt"), &read(&dir.join("serving.crt")));
    assert!(
        eventually(Duration::from_secs(20), || served_names(&s)
            .contains("reloaded.example")),
        "{}",
        served_names(&s)
    );
    ok(
        s.kubectl("kubectl", &["get", "namespaces"]),
        "kubectl after the new serving certificate",
    );

    // A CA added to the client CA bundle: its certificates authenticate.
    new_ca(dir, "second");
    let carol = client_cert(
        dir,
        "carol",
        "/CN=carol",
        &dir.join("second.crt"),
        &dir.join("second.key"),
    );
    let review = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;
    let whoami = || {
        let mut args: Vec<&str> = carol.iter().map(String::as_str).collect();
        args.extend([
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            review,
        ]);
        s.curl(&args, "/apis/authentication.k8s.io/v1/selfsubjectreviews")
    };
    assert_eq!(whoami().0, 401, "not yet trusted");
    let cluster_ca = read(&pki.join("ca.crt"));
    let second = read(&dir.join("second.crt"));
    replace(&pki.join("ca.crt"), &format!("{cluster_ca}{second}"));
    assert!(
        eventually(Duration::from_secs(20), || whoami().0 == 201),
        "{:?}",
        whoami()
    );
    assert!(
        whoami().1.contains("\"username\":\"carol\""),
        "{}",
        whoami().1
    );

    // The signing CA switched to the second CA (its certificate first, the cluster CA
    // still trusted after it): new certificates are signed by it, and the published
    // bundles follow.
    replace(&pki.join("ca.key"), &read(&dir.join("second.key")));
    replace(&pki.join("ca.crt"), &format!("{second}{cluster_ca}"));
    let signer_bundle = || bundle_of(&s, "kubernetes.io/kube-apiserver-client");
    // The signer's bundle holds the CA it signs with, from the same files: once it shows
    // the second CA, the signer has taken it.
    assert!(
        eventually(Duration::from_secs(30), || signer_bundle().trim()
            == second.trim()),
        "{}",
        signer_bundle()
    );
    let request = common::csr_pem(dir, "dave", "/CN=dave");
    let csr = serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "dave"},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(request),
            "signerName": "kubernetes.io/kube-apiserver-client",
            "usages": ["client auth"],
        },
    });
    ok(
        s.kubectl_as(
            "kubectl",
            &s.kubeconfig(),
            &["create", "-f", "-"],
            Some(&csr.to_string()),
        ),
        "create the CSR",
    );
    ok(
        s.kubectl("kubectl", &["certificate", "approve", "dave"]),
        "approve",
    );
    let issued = || {
        stdout(&s.kubectl(
            "kubectl",
            &["get", "csr", "dave", "-o", "jsonpath={.status.certificate}"],
        ))
    };
    assert!(eventually(Duration::from_secs(30), || !issued().is_empty()));
    let cert = base64::engine::general_purpose::STANDARD
        .decode(issued().trim())
        .expect("base64");
    std::fs::write(dir.join("dave.crt"), cert).expect("write");
    let issuer = Command::new("openssl")
        .args(["x509", "-noout", "-issuer", "-in"])
        .arg(dir.join("dave.crt"))
        .output()
        .expect("openssl");
    assert!(
        stdout(&issuer).contains("CN=second") || stdout(&issuer).contains("CN = second"),
        "{}",
        stdout(&issuer)
    );
    // The serving bundle holds every CA trusted.
    let serving_bundle = || bundle_of(&s, "kubernetes.io/kube-apiserver-serving");
    assert!(
        eventually(Duration::from_secs(30), || serving_bundle().trim()
            == format!("{second}{cluster_ca}").trim()),
        "{}",
        serving_bundle()
    );
    ok(
        s.kubectl("kubectl", &["get", "nodes"]),
        "the admin, under the first CA, still works",
    );
}
