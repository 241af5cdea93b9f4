//! Smaller guarantees: a half-written data dir, an operator's own CA, list pages,
//! deletecollection, the v1beta1 CSR path, immutable Secret types, the standalone
//! controller-manager, file discovery, and the agent's restart and stop.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, bin, eventually, ok};

#[test]
fn a_half_written_data_dir_is_reported_and_left_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("d");
    let out = Command::new(bin())
        .args(["init", "--data-dir"])
        .arg(&data)
        .output()
        .expect("init");
    assert!(out.status.success());
    let cert_before = std::fs::read(data.join("pki/apiserver.crt")).expect("cert");
    std::fs::remove_file(data.join("pki/apiserver.key")).expect("rm");
    let out = Command::new(bin())
        .args([
            "server",
            "--secure-port",
            "0",
            "--bind-address",
            "127.0.0.1",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("server");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("half-written") && err.contains("apiserver.key"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(data.join("pki/apiserver.crt")).expect("cert"),
        cert_before,
        "nothing was overwritten"
    );
    std::fs::write(data.join("admin.conf"), "apiVersion: v1\nclusters: [").expect("truncate");
    std::fs::remove_file(data.join("pki/apiserver.crt")).expect("rm");
    let out = Command::new(bin())
        .args(["init", "--data-dir"])
        .arg(&data)
        .output()
        .expect("init");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("admin.conf"),
        "a truncated kubeconfig is reported: {err}"
    );
}

#[test]
fn the_server_starts_on_a_ca_the_operator_placed() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("d");
    std::fs::create_dir_all(data.join("pki")).expect("mkdir");
    // An RSA CA in PKCS#1, as older tooling writes it.
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=operator-ca",
            "-days",
            "30",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,digitalSignature",
        ])
        .current_dir(data.join("pki"))
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = Server::start_in(&data);
    let out = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(data.join("pki/ca.crt"))
        .arg(data.join("pki/apiserver.crt"))
        .output()
        .expect("verify");
    assert!(
        out.status.success(),
        "the serving certificate is issued by the operator's CA"
    );
    let (code, _) = s.admin_curl(&[], "/api/v1/namespaces");
    assert_eq!(code, 200);
}

#[test]
fn lists_page_collections_delete_and_old_paths_work() {
    let s = Server::start();
    for i in 0..5 {
        let body = format!(
            r#"{{"metadata":{{"name":"p{i}","labels":{{"batch":"{}"}}}}}}"#,
            i % 2
        );
        let (code, _) = s.admin_curl(
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body,
            ],
            "/api/v1/namespaces/default/configmaps",
        );
        assert_eq!(code, 201);
    }
    let (_, page) = s.admin_curl(&[], "/api/v1/namespaces/default/configmaps?limit=2");
    let v: serde_json::Value = serde_json::from_str(&page).expect("json");
    assert_eq!(v["items"].as_array().expect("items").len(), 2);
    let cont = v["metadata"]["continue"]
        .as_str()
        .expect("continue token")
        .to_owned();
    let (_, page2) = s.admin_curl(
        &[],
        &format!("/api/v1/namespaces/default/configmaps?limit=10&continue={cont}"),
    );
    let v2: serde_json::Value = serde_json::from_str(&page2).expect("json");
    assert_eq!(v2["items"].as_array().expect("items").len(), 3);
    assert!(v2["metadata"].get("continue").is_none());
    let (code, _) = s.admin_curl(
        &["-X", "DELETE"],
        "/api/v1/namespaces/default/configmaps?labelSelector=batch%3D0",
    );
    assert_eq!(code, 200);
    let (_, left) = s.admin_curl(&[], "/api/v1/namespaces/default/configmaps");
    let names: Vec<String> =
        serde_json::from_str::<serde_json::Value>(&left).expect("json")["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                i["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect();
    assert_eq!(
        names,
        ["p1", "p3"],
        "deletecollection removed the selected ones"
    );
    // A list's items are the stored objects with their resourceVersion, whether the list
    // was selected (each object read and filtered) or not (each object's text as stored).
    let items = |json: &str| {
        serde_json::from_str::<serde_json::Value>(json).expect("json")["items"]
            .as_array()
            .expect("items")
            .clone()
    };
    let plain = items(&left);
    let (_, selected) = s.admin_curl(
        &[],
        "/api/v1/namespaces/default/configmaps?labelSelector=batch%3D1",
    );
    assert_eq!(plain, items(&selected));
    let items_text = |json: &str| json.split_once("\"items\":").expect("items").1.to_owned();
    assert_eq!(
        items_text(&left),
        items_text(&selected),
        "the same objects' text, byte for byte"
    );
    for item in &plain {
        let name = item["metadata"]["name"].as_str().expect("name");
        let (_, one) = s.admin_curl(
            &[],
            &format!("/api/v1/namespaces/default/configmaps/{name}"),
        );
        let one: serde_json::Value = serde_json::from_str(&one).expect("json");
        assert!(item["metadata"]["resourceVersion"].is_string(), "{item}");
        assert_eq!(item["metadata"], one["metadata"], "{name}");
    }

    // certificates.k8s.io/v1beta1 serves the same objects.
    let (code, out) = s.admin_curl(
        &[],
        "/apis/certificates.k8s.io/v1beta1/certificatesigningrequests",
    );
    assert_eq!(code, 200, "{out}");
    assert!(
        out.contains(r#""apiVersion":"certificates.k8s.io/v1beta1""#),
        "{out}"
    );

    // A Secret's type is immutable.
    let (code, _) = s.admin_curl(
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"metadata":{"name":"s"},"stringData":{"a":"b"}}"#,
        ],
        "/api/v1/namespaces/default/secrets",
    );
    assert_eq!(code, 201);
    let (code, out) = s.admin_curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/merge-patch+json",
            "--data-binary",
            r#"{"type":"kubernetes.io/tls"}"#,
        ],
        "/api/v1/namespaces/default/secrets/s",
    );
    assert_eq!(code, 422, "{out}");
    assert!(out.contains("field is immutable"), "{out}");
}

#[test]
fn the_controller_manager_runs_alone_against_an_apiserver() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("d");
    let (api, url) = common::apiserver_from_init(
        &data,
        &tmp.path().join("store"),
        &["--enable-bootstrap-token-auth", "true"],
    );
    let pki = data.join("pki");
    // Point the kubeconfigs at the port the apiserver picked.
    for f in ["admin.conf", "controller-manager.conf"] {
        let p = data.join(f);
        let text = std::fs::read_to_string(&p)
            .expect("kubeconfig")
            .replace("https://127.0.0.1:6443", &url);
        std::fs::write(&p, text).expect("write");
    }
    let cm = Command::new(bin())
        .args([
            "controller-manager",
            "--controllers=*,bootstrapsigner,tokencleaner",
            "--kubeconfig",
        ])
        .arg(data.join("controller-manager.conf"))
        .arg("--cluster-signing-cert-file")
        .arg(pki.join("ca.crt"))
        .arg("--cluster-signing-key-file")
        .arg(pki.join("ca.key"))
        .stderr(Stdio::null())
        .spawn()
        .expect("controller-manager");
    let cm = common::KillOnDrop(cm);
    let kc = data.join("admin.conf");
    let ca = kubeboot_api_ca(&kc);
    // What kubeadm's bootstrap-token phase publishes for a hand-run control plane.
    let info = tmp.path().join("cluster-info.conf");
    std::fs::write(
        &info,
        kubeboot_bootstrap::cluster_info::kubeconfig(
            &url,
            &std::fs::read_to_string(&ca).expect("ca"),
        ),
    )
    .expect("write");
    let out = Command::new("kubectl")
        .args(["-n", "kube-public", "create", "configmap", "cluster-info"])
        .arg(format!("--from-file=kubeconfig={}", info.display()))
        .env("KUBECONFIG", &kc)
        .env("HOME", tmp.path())
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = ok(
        Command::new(bin())
            .args(["token", "create", "--kubeconfig"])
            .arg(&kc)
            .output()
            .expect("token"),
        "token create",
    )
    .trim()
    .to_owned();
    let signed = eventually(Duration::from_secs(20), || {
        let out = Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(&ca)
            .arg(format!(
                "{url}/api/v1/namespaces/kube-public/configmaps/cluster-info"
            ))
            .output()
            .expect("curl");
        String::from_utf8_lossy(&out.stdout).contains(&format!("jws-kubeconfig-{}", &token[..6]))
    });
    drop(cm);
    drop(api);
    assert!(
        signed,
        "the standalone bootstrap signer signed cluster-info"
    );
}

fn kubeboot_api_ca(kubeconfig: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(kubeconfig).expect("kubeconfig");
    let b64 = text
        .lines()
        .find(|l| l.trim_start().starts_with("certificate-authority-data"))
        .expect("ca")
        .split_once(':')
        .expect(":")
        .1
        .trim()
        .trim_matches('"')
        .to_owned();
    use base64::Engine;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("b64");
    let path = kubeconfig.with_file_name("cluster-ca.crt");
    std::fs::write(&path, pem).expect("write");
    path
}

#[test]
fn file_discovery_and_the_agents_restart_and_stop() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let token = s
        .join_command
        .as_deref()
        .expect("join")
        .split_whitespace()
        .skip_while(|w| *w != "--token")
        .nth(1)
        .expect("token")
        .to_owned();
    // A discovery file: a kubeconfig holding the cluster and the bootstrap token.
    let ca = std::fs::read_to_string(s.ca()).expect("ca");
    let kc = kubeboot_pki::Kubeconfig::new(
        "kubernetes",
        &s.url,
        &ca,
        "tls-bootstrap-token-user",
        kubeboot_pki::kubeconfig::Credential::Token(token),
    );
    let file = tmp.path().join("discovery.conf");
    std::fs::write(&file, kc.to_yaml()).expect("write");
    let dir = tmp.path().join("n1");
    let out = Command::new(bin())
        .args(["join", "--discovery-file"])
        .arg(&file)
        .args(["--node-name", "n1", "--dir"])
        .arg(&dir)
        .output()
        .expect("join");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let target = std::fs::read_link(dir.join("pki/kubelet-client-current.pem")).expect("current");

    let agent = |dir: &std::path::Path| {
        Command::new(bin())
            .args([
                "node",
                "--node-name",
                "n1",
                "--address",
                "127.0.0.1",
                "--port",
                "0",
                "--dir",
            ])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node")
    };
    let ready = |want: &str| {
        eventually(Duration::from_secs(20), || {
            let out = s.kubectl("kubectl", &["get", "node", "n1", "--no-headers"]);
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .nth(1)
                == Some(want)
        })
    };
    let mut a = agent(&dir);
    assert!(ready("Ready"));
    // Killed at any moment and started again: it carries on with the files on disk.
    let _ = a.kill();
    let _ = a.wait();
    let a = agent(&dir);
    assert!(ready("Ready"));
    assert_eq!(
        std::fs::read_link(dir.join("pki/kubelet-client-current.pem")).expect("current"),
        target,
        "no new certificate was needed"
    );
    let csrs = ok(
        s.kubectl("kubectl", &["get", "csr", "--no-headers"]),
        "get csr",
    );
    assert_eq!(
        csrs.lines().count(),
        1,
        "nothing was requested twice: {csrs}"
    );
    // Stopped: the node is no longer Ready.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(a.id().to_string())
        .status();
    let _ = common::wait_bounded(a, Duration::from_secs(20));
    assert!(ready("NotReady"), "a stopped agent's node is NotReady");
}
