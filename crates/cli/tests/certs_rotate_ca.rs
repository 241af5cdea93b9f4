//! `kubeboot certs rotate-ca` on a hand-built PKI, with a real `kubeboot apiserver`
//! serving from its files and the real kubectl using its kubeconfigs: the operator copies
//! the files after each phase in the order the command prints, and kubectl keeps working
//! throughout; finish is refused while a certificate of the old CA is still in place, and
//! afterwards the old CA's certificates are refused. The kubeconfigs live in their own
//! directory (`--kubeconfig-dir`), as kubeadm keeps them apart from the PKI.

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{bin, eventually, ok, stderr, stdout};

const SPEC: &str = "clusterName: rotating
apiEndpoint: https://127.0.0.1:6443
clusterDomain: cluster.local
serviceCIDR: 10.32.0.0/24
keyAlgorithm: ecdsa-p256
controlPlane:
  - name: controller-0
    ips: [127.0.0.10]
workers:
  - name: worker-0
    ips: [127.0.0.20]
";

fn kubeboot(args: &[&str], dirs: (&Path, &Path)) -> Output {
    Command::new(bin())
        .args(["certs"])
        .args(args)
        .arg("--cert-dir")
        .arg(dirs.0)
        .arg("--kubeconfig-dir")
        .arg(dirs.1)
        .output()
        .expect("kubeboot certs")
}

fn rotate(phase: &str, dirs: (&Path, &Path)) -> Output {
    kubeboot(&["rotate-ca", "--phase", phase], dirs)
}

/// `kubectl auth whoami` as the kubeconfig `kc`.
fn whoami(kc: &Path, url: &str, home: &Path) -> Output {
    Command::new("kubectl")
        .args([
            "auth",
            "whoami",
            "-o",
            "jsonpath={.status.userInfo.username}",
            &format!("--server={url}"),
            "--request-timeout=5s",
        ])
        .env("KUBECONFIG", kc)
        .env("HOME", home)
        .output()
        .expect("kubectl")
}

fn is_admin(kc: &Path, url: &str, home: &Path) -> bool {
    let o = whoami(kc, url, home);
    o.status.success() && stdout(&o) == "admin"
}

/// The subject of the issuer of `cert`, as openssl prints it.
fn issuer(cert: &Path) -> String {
    let o = Command::new("openssl")
        .args(["x509", "-noout", "-issuer", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    ok(o, "openssl x509 -issuer")
}

/// The issuer of the certificate the server at `url` serves.
fn served_issuer(url: &str, dir: &Path) -> String {
    let host = url.trim_start_matches("https://");
    let script = format!(
        "openssl s_client -connect {host} </dev/null 2>/dev/null | openssl x509 -noout -issuer"
    );
    let o = Command::new("sh")
        .args(["-c", &script])
        .current_dir(dir)
        .output()
        .expect("openssl s_client");
    stdout(&o)
}

fn copy(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

#[test]
fn the_cluster_ca_of_a_hand_built_pki_is_rotated_while_kubectl_keeps_working() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let home = tmp.path();
    let (auth, kcs) = (home.join("auth"), home.join("kubeconfigs"));
    let dirs = (auth.as_path(), kcs.as_path());
    std::fs::write(home.join("cluster.yaml"), SPEC).expect("spec");
    let spec = home.join("cluster.yaml");
    ok(
        kubeboot(&["generate", "--spec", spec.to_str().expect("utf-8")], dirs),
        "certs generate",
    );
    assert!(kcs.join("admin.kubeconfig").exists() && kcs.join("worker-0.kubeconfig").exists());
    let in_cert_dir: Vec<_> = std::fs::read_dir(&auth)
        .expect("cert dir")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".kubeconfig"))
        .collect();
    assert!(
        in_cert_dir.is_empty(),
        "--kubeconfig-dir holds the kubeconfigs: {in_cert_dir:?}"
    );

    // The server reads the files the operator copies to it: here, a directory of its own.
    let server = home.join("server");
    std::fs::create_dir(&server).expect("server dir");
    let install = |names: &[&str]| {
        for n in names {
            copy(&auth.join(n), &server.join(n));
        }
    };
    install(&["ca.pem", "kubernetes.pem", "kubernetes-key.pem"]);
    let (api, url) = common::start_apiserver(&[
        "--tls-cert-file".as_ref(),
        server.join("kubernetes.pem").as_os_str(),
        "--tls-private-key-file".as_ref(),
        server.join("kubernetes-key.pem").as_os_str(),
        "--client-ca-file".as_ref(),
        server.join("ca.pem").as_os_str(),
        "--storage-dir".as_ref(),
        home.join("store").as_os_str(),
    ]);
    // The operator's own kubeconfig, copied from the kubeconfig dir as the steps say.
    let mine = home.join("admin.kubeconfig");
    copy(&kcs.join("admin.kubeconfig"), &mine);
    assert!(
        is_admin(&mine, &url, home),
        "{}",
        stderr(&whoami(&mine, &url, home))
    );
    let old_issuer = issuer(&auth.join("ca.pem"));
    let old_admin_cert = std::fs::read(auth.join("admin.pem")).expect("admin.pem");

    // prepare: both CAs trusted, the old one still signing.
    let out = ok(rotate("prepare", dirs), "rotate-ca prepare");
    assert!(
        out.contains("[rotate-ca] wrote") && out.contains("Then switch"),
        "{out}"
    );
    install(&["ca.pem"]);
    copy(&kcs.join("admin.kubeconfig"), &mine);
    assert!(
        is_admin(&mine, &url, home),
        "{}",
        stderr(&whoami(&mine, &url, home))
    );
    assert_eq!(issuer(&auth.join("kubernetes.pem")), old_issuer);

    // switch: every certificate re-issued by the new CA; the operator copies them.
    let out = ok(rotate("switch", dirs), "rotate-ca switch");
    assert!(out.contains("finish"), "{out}");
    // The signing CA comes first in ca.pem; a CA is its own issuer.
    let new_issuer = issuer(&auth.join("ca.pem"));
    assert_ne!(new_issuer, old_issuer, "the new CA signs");
    for leaf in [
        "kubernetes.pem",
        "admin.pem",
        "worker-0.pem",
        "controller-0.pem",
        "kube-proxy.pem",
    ] {
        assert_eq!(issuer(&auth.join(leaf)), new_issuer, "{leaf}");
    }
    install(&["ca.pem", "kubernetes-key.pem", "kubernetes.pem"]);
    assert!(
        eventually(Duration::from_secs(20), || served_issuer(&url, home)
            == new_issuer),
        "the server takes the new serving certificate: {}",
        served_issuer(&url, home)
    );
    // The kubeconfig copied after prepare (old client certificate, both CAs) still works,
    // and so does the new one.
    assert!(
        is_admin(&mine, &url, home),
        "{}",
        stderr(&whoami(&mine, &url, home))
    );
    let before_switch = home.join("prepared.kubeconfig");
    copy(&mine, &before_switch);
    copy(&kcs.join("admin.kubeconfig"), &mine);
    assert!(
        is_admin(&mine, &url, home),
        "{}",
        stderr(&whoami(&mine, &url, home))
    );

    // finish is refused while a certificate of the old CA is in place.
    let new_admin_cert = std::fs::read(auth.join("admin.pem")).expect("admin.pem");
    std::fs::write(auth.join("admin.pem"), &old_admin_cert).expect("put back");
    let refused = rotate("finish", dirs);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("admin.pem"),
        "finish names what is left on the old CA: {}",
        stderr(&refused)
    );
    assert_eq!(
        std::fs::read_to_string(auth.join("ca.pem"))
            .expect("ca.pem")
            .matches("BEGIN CERTIFICATE")
            .count(),
        2,
        "a refused finish changes nothing"
    );
    std::fs::write(auth.join("admin.pem"), &new_admin_cert).expect("restore");

    // finish: the old CA leaves the bundle; its certificates are refused from then on.
    ok(rotate("finish", dirs), "rotate-ca finish");
    let ca = auth.join("ca.pem");
    let bundle = std::fs::read_to_string(&ca).expect("ca.pem");
    assert_eq!(bundle.matches("BEGIN CERTIFICATE").count(), 1);
    let verify = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(&ca)
        .args([
            "kubernetes.pem",
            "admin.pem",
            "worker-0.pem",
            "controller-0.pem",
        ])
        .current_dir(&auth)
        .output()
        .expect("openssl verify");
    ok(
        verify,
        "every certificate verifies against the new CA alone",
    );
    install(&["ca.pem"]);
    copy(&kcs.join("admin.kubeconfig"), &mine);
    assert!(
        eventually(Duration::from_secs(20), || {
            let o = whoami(&before_switch, &url, home);
            !o.status.success() && stderr(&o).contains("Unauthorized")
        }),
        "a client certificate of the old CA is refused once the server reads the new bundle"
    );
    assert!(
        is_admin(&mine, &url, home),
        "{}",
        stderr(&whoami(&mine, &url, home))
    );
    drop(api);
}
