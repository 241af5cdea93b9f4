//! What an operator's flags make of a control plane, as kubeadm and kube-apiserver make it:
//! the serving certificate names the `kubernetes` Service's address, a Subject Alternative
//! Name that is none is refused before anything is written, an authorization mode given
//! twice is refused, and a CA rotation's finish with none under way says so.

mod common;

use std::process::Command;

use common::{bin, stderr, stdout};

fn kubeboot(args: &[&str]) -> std::process::Output {
    Command::new(bin()).args(args).output().expect("kubeboot")
}

/// Seen before: in-cluster clients dialling 10.96.0.1 failed to verify the server (no such
/// SAN); `--apiserver-cert-extra-sans 'bad_name!'` went into the certificate.
#[test]
fn init_names_the_service_address_and_refuses_a_bad_san() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("cp");
    let dir = data.to_str().expect("utf8");
    let out = kubeboot(&[
        "init",
        "--data-dir",
        dir,
        "--apiserver-cert-extra-sans",
        "api.example.com,bad_name!",
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(r#"apiServer.certSANs: Invalid value: "bad_name!": altname is not a valid IP address, DNS label or a DNS label with subdomain wildcards"#),
        "{}",
        stderr(&out)
    );
    assert!(!data.join("pki").exists(), "nothing written");
    let out = kubeboot(&[
        "init",
        "--data-dir",
        dir,
        "--apiserver-cert-extra-sans",
        "*.example.com",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(data.join("pki/apiserver.crt"))
        .output()
        .expect("openssl");
    let sans = String::from_utf8_lossy(&text.stdout);
    for want in [
        "IP Address:10.96.0.1",
        "DNS:*.example.com",
        "DNS:kubernetes.default.svc",
    ] {
        assert!(sans.contains(want), "{want} in {sans}");
    }
    // A CA rotation's finish with none under way says so (it said "finished: only the new
    // CA is trusted"), and changes nothing.
    let ca = std::fs::read(data.join("pki/ca.crt")).expect("ca");
    let out = kubeboot(&["ca", "rotate", "--data-dir", dir, "--phase", "finish"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(
        said.contains("no CA rotation is under way: nothing to finish"),
        "{said}"
    );
    assert!(!said.contains("finished"), "{said}");
    assert_eq!(std::fs::read(data.join("pki/ca.crt")).expect("ca"), ca);
}

/// Seen before: `--authorization-mode RBAC,RBAC` started.
#[test]
fn an_authorization_mode_given_twice_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let storage = tmp.path().join("store");
    let data = tmp.path().join("cp");
    let dir = data.to_str().expect("utf8");
    assert!(
        kubeboot(&["init", "--data-dir", dir]).status.success(),
        "init"
    );
    let pki = |f: &str| data.join("pki").join(f).display().to_string();
    let out = kubeboot(&[
        "apiserver",
        "--authorization-mode",
        "RBAC,RBAC",
        "--tls-cert-file",
        &pki("apiserver.crt"),
        "--tls-private-key-file",
        &pki("apiserver.key"),
        "--storage-dir",
        storage.to_str().expect("utf8"),
    ]);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out)
            .contains(r#"authorization-mode ["RBAC" "RBAC"] has mode specified more than once"#),
        "{}",
        stderr(&out)
    );
}
