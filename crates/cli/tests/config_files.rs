//! Configuration files as kubeadm and the kubelet take them: `kubeboot server --config`
//! with kubeadm's own documented v1beta4 example, `kubeboot join --config` with its
//! JoinConfiguration example, `kubeboot node --config` with a KubeletConfiguration; a flag
//! on the command line overrides the file, and a mistake names the file's line and
//! changes nothing.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, bin, ok, stderr, stdout};

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn openssl_text(cert: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    stdout(&out)
}

#[test]
fn server_reads_kubeadms_documented_init_and_cluster_configuration() {
    // kubeadm's example names 10.100.0.1:6443; flags put the server on loopback instead.
    let s = Server::start_with(&[
        "--config",
        &data("kubeadm-init-v1beta4.yaml"),
        "--advertise-address",
        "127.0.0.1",
    ]);
    assert_eq!(
        s.token(),
        "9a08jv.c0izixklcxtmnze7",
        "the file's first token"
    );
    let listed = ok(
        Command::new(bin())
            .args(["token", "list", "--kubeconfig"])
            .arg(s.kubeconfig())
            .output()
            .expect("token list"),
        "token list",
    );
    for want in [
        "9a08jv.c0izixklcxtmnze7",
        "kubeadm bootstrap token",
        "783bde.3f89s0fje9f38fhf",
        "another bootstrap token",
    ] {
        assert!(listed.contains(want), "{want}: {listed}");
    }
    let cert = openssl_text(&s.dir.join("pki/apiserver.crt"));
    assert!(
        cert.contains("DNS:ec2-10-100-0-1.compute-1.amazonaws.com")
            && cert.contains("IP Address:10.100.1.1"),
        "apiServer.certSANs: {cert}"
    );
    // networking.serviceSubnet 10.96.0.0/16: the kubernetes Service has its first address.
    let ip = ok(
        s.kubectl(
            "kubectl",
            &[
                "get",
                "service",
                "kubernetes",
                "-o",
                "jsonpath={.spec.clusterIP}",
            ],
        ),
        "service",
    );
    assert_eq!(ip, "10.96.0.1");
}

#[test]
fn join_and_node_read_kubeadms_join_and_the_kubelets_configuration() {
    let s = Server::start();
    // The token kubeadm's example names.
    ok(
        Command::new(bin())
            .args(["token", "create", "abcdef.0123456789abcdef", "--kubeconfig"])
            .arg(s.kubeconfig())
            .output()
            .expect("token create"),
        "token create",
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("node");
    // The example's endpoint is `some-address:6443`: the command line names this server's.
    let joined = Command::new(bin())
        .args([
            "join",
            s.addr(),
            "--config",
            &data("kubeadm-join-v1beta4.yaml"),
        ])
        .args(["--node-name", "config-node", "--dir"])
        .arg(&dir)
        .output()
        .expect("join");
    ok(joined, "kubeboot join --config");
    let kubelet = tmp.path().join("kubelet.yaml");
    std::fs::write(
        &kubelet,
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\
         rotateCertificates: true\nserverTLSBootstrap: true\naddress: 127.0.0.1\nport: 10250\n\
         cgroupDriver: systemd\n",
    )
    .expect("write");
    // The file's port would be 10250: the command line picks a free one.
    let mut node = Command::new(bin())
        .args(["node", "--dir"])
        .arg(&dir)
        .arg("--config")
        .arg(&kubelet)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node");
    let lines = common::lines(node.stdout.take().expect("stdout"));
    let _node = common::KillOnDrop(node);
    let serving = lines
        .recv_timeout(Duration::from_secs(60))
        .expect("the node says where it serves");
    assert!(
        serving.starts_with("kubeboot node serving on https://127.0.0.1:"),
        "serverTLSBootstrap and address from the file: {serving}"
    );
    assert!(
        !serving.ends_with(":10250"),
        "--port overrides the file: {serving}"
    );
    let asked = common::eventually(Duration::from_secs(30), || {
        let csrs = stdout(&s.kubectl("kubectl", &["get", "csr"]));
        csrs.contains("kubernetes.io/kubelet-serving") && csrs.contains("system:node:config-node")
    });
    assert!(asked, "the node asked for a serving certificate");
}

#[test]
fn a_mistake_in_a_file_names_its_line_and_changes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("init.yaml");
    std::fs::write(
        &file,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nlocalAPIEndpoint:\n  advertiseAdress: 10.0.0.1\n",
    )
    .expect("write");
    let data_dir = tmp.path().join("data");
    let out = Command::new(bin())
        .args([
            "server",
            "--secure-port",
            "0",
            "--bind-address",
            "127.0.0.1",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("--config")
        .arg(&file)
        .output()
        .expect("server");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {}:4: strict decoding error: unknown field \"localAPIEndpoint.advertiseAdress\" in InitConfiguration\n",
            file.display()
        )
    );
    assert!(!data_dir.exists(), "nothing was made");
    let kubelet = tmp.path().join("kubelet.yaml");
    std::fs::write(
        &kubelet,
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nport: high\n",
    )
    .expect("write");
    let out = Command::new(bin())
        .args(["node", "--dir"])
        .arg(tmp.path().join("node"))
        .arg("--config")
        .arg(&kubelet)
        .output()
        .expect("node");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("kubelet.yaml:3: port: expected an integer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kubeadm_inits_token_flags_override_the_files_tokens() {
    let s = Server::start_with(&[
        "--config",
        &data("kubeadm-init-v1beta4.yaml"),
        "--advertise-address",
        "127.0.0.1",
        "--token",
        "zzzzzz.0123456789abcdef",
        "--token-ttl",
        "0",
    ]);
    assert_eq!(s.token(), "zzzzzz.0123456789abcdef");
    let listed = ok(
        Command::new(bin())
            .args(["token", "list", "-o", "json", "--kubeconfig"])
            .arg(s.kubeconfig())
            .output()
            .expect("token list"),
        "token list",
    );
    assert!(!listed.contains("9a08jv"), "{listed}");
    let token: serde_json::Value = serde_json::from_str(&listed).expect("one token");
    assert_eq!(token["token"], "zzzzzz.0123456789abcdef");
    assert!(
        token.get("expires").is_none(),
        "--token-ttl 0 never expires: {token}"
    );
}

/// `openssl x509 -checkend`: whether `cert` is still valid `secs` from now.
fn valid_in(cert: &Path, secs: u64) -> bool {
    Command::new("openssl")
        .args(["x509", "-noout", "-checkend", &secs.to_string(), "-in"])
        .arg(cert)
        .stdout(Stdio::null())
        .status()
        .expect("openssl")
        .success()
}

#[test]
fn cluster_configurations_validity_periods_set_the_first_starts_certificates() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("cluster.yaml");
    std::fs::write(
        &file,
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n\
         certificateValidityPeriod: 48h0m0s\ncaCertificateValidityPeriod: 720h0m0s\n",
    )
    .expect("write");
    let s = Server::start_with(&["--config", file.to_str().expect("utf-8 path")]);
    let hour = 3600;
    let serving = s.dir.join("pki/apiserver.crt");
    assert!(valid_in(&serving, 47 * hour) && !valid_in(&serving, 49 * hour));
    let ca = s.dir.join("pki/ca.crt");
    assert!(valid_in(&ca, 719 * hour) && !valid_in(&ca, 721 * hour));
    // The admin kubeconfig's client certificate is one of the certificates kubeadm's
    // certificateValidityPeriod governs.
    let admin = std::fs::read_to_string(s.kubeconfig()).expect("admin.conf");
    let admin_cert = tmp.path().join("admin.crt");
    std::fs::write(
        &admin_cert,
        common::kubeconfig_data(&admin, "client-certificate-data"),
    )
    .expect("write");
    assert!(valid_in(&admin_cert, 47 * hour) && !valid_in(&admin_cert, 49 * hour));
}
