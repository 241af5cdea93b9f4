//! Section D of the adversarial review ("Join safety") against real parts: a hostile control
//! plane is the real `kubeboot apiserver` with no controllers, whose cluster-info this test
//! writes by hand (a kubeconfig and detached-JWS signatures it computes itself). Every
//! refused join names its cause and leaves no file behind; a successful join leaves only
//! private files and no temporary ones.
//!
//! Covered elsewhere, not repeated here (join.rs, `join_fails_clearly_and_leaves_nothing_behind`
//! and the tests beside it): D361 (a JWS made with another secret: the "forged" row), D362
//! (a validly signed cluster-info whose CA fails the pin: the "swapped-ca" row), D364
//! (`a_signed_cluster_info_naming_a_local_ca_file_is_refused`) and D365
//! (`a_join_that_fails_after_its_certificate_is_issued_leaves_nothing`).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use kubeboot_bootstrap::cluster_info::kubeconfig;
use kubeboot_bootstrap::jws::sign_detached;

use common::{KillOnDrop, Server, bin, ok, wait_bounded};

#[test]
fn join_refuses_a_hostile_control_plane_and_leaves_nothing() {
    // `cluster` is the cluster the node means to join: the node holds its CA's pin. `endpoint`
    // answers at the address the node is given; it knows the token, so it can sign.
    let cluster = ControlPlane::start();
    let endpoint = ControlPlane::start();
    let signed = kubeconfig(&cluster.url, &cluster.ca_pem);
    let good = sign_detached(&signed, ID, SECRET);
    cluster.publish(&signed, &[(ID, good.clone())]);
    cluster.create_token();
    endpoint.create_token();
    let own = kubeconfig(&endpoint.url, &endpoint.ca_pem);
    let refused = "failed to verify JWS signature of received cluster info object";

    for (case, served, signatures, pin, want) in [
        (
            "D357 kubeconfig tampered after signing (server URL changed), original JWS",
            kubeconfig(&endpoint.url, &cluster.ca_pem),
            vec![(ID, good.clone())],
            &cluster.pin,
            refused.to_owned(),
        ),
        (
            "D358 CA swapped, original JWS",
            kubeconfig(&cluster.url, &endpoint.ca_pem),
            vec![(ID, good.clone())],
            &cluster.pin,
            refused.to_owned(),
        ),
        (
            "D359 only another token id's JWS: retried until --discovery-timeout",
            signed.clone(),
            vec![(OTHER_ID, sign_detached(&signed, OTHER_ID, OTHER_SECRET))],
            &cluster.pin,
            format!(
                "could not fetch cluster-info from {} within 3s: could not find a JWS signature in the cluster-info ConfigMap for token ID \"{ID}\"",
                endpoint.addr()
            ),
        ),
        (
            "D360 this token's JWS key holds a JWS whose kid is another token's",
            signed.clone(),
            vec![(ID, sign_detached(&signed, OTHER_ID, SECRET))],
            &cluster.pin,
            refused.to_owned(),
        ),
        (
            "D363 correct JWS and pinned CA, TLS served by another CA (a man in the middle with the token)",
            signed.clone(),
            vec![(ID, good)],
            &cluster.pin,
            "the API server's certificate is not signed by the CA in cluster-info".to_owned(),
        ),
        (
            // Also the table's control: a hand-written cluster-info that is right passes
            // discovery, so the rows above were refused for what they changed.
            "D366 the endpoint's own signed and pinned cluster-info, a CSR never approved (no controllers), --tls-bootstrap-timeout 3s",
            own.clone(),
            vec![(ID, sign_detached(&own, ID, SECRET))],
            &endpoint.pin,
            "was not approved and issued within 3s; approve it with `kubectl certificate approve node-csr-"
                .to_owned(),
        ),
    ] {
        endpoint.publish(&served, &signatures);
        let dir = endpoint.tmp.path().join(&case[..4]);
        let out = join(
            &[
                "join",
                endpoint.addr(),
                "--token",
                &format!("{ID}.{SECRET}"),
                "--discovery-token-ca-cert-hash",
                pin,
                "--node-name",
                "n1",
                "--discovery-timeout",
                "3s",
                "--tls-bootstrap-timeout",
                "3s",
            ],
            &dir,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{case}: join must fail");
        assert!(err.contains(&want), "{case}: expected {want:?} in: {err}");
        let left = files_under(&dir);
        assert!(left.is_empty(), "{case}: no file is left: {left:?}");
    }
}

#[test]
fn a_joined_node_keeps_its_credentials_private_and_leaves_no_temporary_files() {
    // D370: the server encrypts Secrets at rest, and a node still joins.
    let tmp = tempfile::tempdir().expect("tempdir");
    let enc = tmp.path().join("enc.yaml");
    std::fs::write(&enc, ENCRYPTION).expect("write the encryption config");
    let s = Server::start_with(&["--encryption-provider-config", enc.to_str().expect("utf8")]);
    let dir = tmp.path().join("w1");
    let cmd = s.join_command.as_deref().expect("join command");
    let mut args: Vec<&str> = cmd.split_whitespace().skip(1).collect();
    args.extend(["--node-name", "w1"]);
    let out = join(&args, &dir);
    ok(out, "D370 join against a server that encrypts Secrets");

    // D368: kubeconfigs and the certificate-and-key file are the user's alone; the
    // current link points at the issued file by its absolute path.
    // D369: the atomic writes left no temporary file: these are all the files there are.
    let left = files_under(&dir);
    let mut names: Vec<String> = left
        .iter()
        .map(|p| {
            p.strip_prefix(&dir)
                .expect("under dir")
                .display()
                .to_string()
        })
        .collect();
    names.sort();
    let issued = names
        .iter()
        .find(|n| {
            n.starts_with("pki/kubelet-client-")
                && n.ends_with(".pem")
                && *n != "pki/kubelet-client-current.pem"
        })
        .unwrap_or_else(|| panic!("an issued certificate file in {names:?}"))
        .clone();
    let mut want = vec![
        "bootstrap-kubelet.conf".to_owned(),
        "kubelet.conf".to_owned(),
        issued.clone(),
        "pki/kubelet-client-current.pem".to_owned(),
    ];
    want.sort();
    assert_eq!(names, want, "D369 only the node's files, no temporary ones");
    for (case, file) in [
        (
            "D368 bootstrap-kubelet.conf is 0600",
            "bootstrap-kubelet.conf",
        ),
        ("D368 kubelet.conf is 0600", "kubelet.conf"),
        ("D368 the certificate and key file is 0600", issued.as_str()),
    ] {
        let meta = std::fs::symlink_metadata(dir.join(file)).expect(file);
        assert!(meta.file_type().is_file(), "{case}: a plain file");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{case}");
    }
    assert_eq!(
        std::fs::read_link(dir.join("pki/kubelet-client-current.pem")).expect("current link"),
        dir.join(&issued),
        "D368 kubelet-client-current.pem links to the issued file by its absolute path"
    );

    // D370: the token's secret is nowhere in the store as plain text.
    let token = s.token();
    let secret = &token[7..];
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    for file in files_under(&s.dir.join("db")) {
        let raw = std::fs::read(&file).expect("read a store file");
        for needle in [secret, b64.as_str()] {
            assert!(
                !raw.windows(needle.len()).any(|w| w == needle.as_bytes()),
                "D370 {needle:?} is in {} as plain text",
                file.display()
            );
        }
    }
}

/// `kubeboot init`'s files served by `kubeboot apiserver` alone (Node,RBAC, bootstrap tokens
/// on): nothing signs cluster-info, approves or signs a CSR unless the test does.
struct ControlPlane {
    _api: KillOnDrop,
    url: String,
    data: PathBuf,
    ca_pem: String,
    pin: String,
    tmp: tempfile::TempDir,
}

impl ControlPlane {
    fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = tmp.path().join("d");
        let (api, url) = common::apiserver_from_init(
            &data,
            &tmp.path().join("store"),
            &["--enable-bootstrap-token-auth", "true"],
        );
        let pki = data.join("pki");
        // admin.conf names the default port; point it at the one the apiserver picked.
        let admin = data.join("admin.conf");
        let text = std::fs::read_to_string(&admin).expect("admin.conf");
        std::fs::write(&admin, text.replace("https://127.0.0.1:6443", &url)).expect("write");
        let ca_pem = std::fs::read_to_string(pki.join("ca.crt")).expect("ca.crt");
        let pin = kubeboot_pki::pin::pem_cert_pin(ca_pem.as_bytes()).expect("the CA's pin");
        Self {
            _api: api,
            url,
            data,
            ca_pem,
            pin,
            tmp,
        }
    }

    /// `host:port`, as join takes it.
    fn addr(&self) -> &str {
        self.url.trim_start_matches("https://")
    }

    /// Replaces kube-public/cluster-info with `kubeconfig` (byte for byte) and one
    /// `jws-kubeconfig-<id>` per signature.
    fn publish(&self, kubeconfig: &str, signatures: &[(&str, String)]) {
        let file = self.tmp.path().join("cluster-info.kubeconfig");
        std::fs::write(&file, kubeconfig).expect("write the kubeconfig");
        self.kubectl(&[
            "-n",
            "kube-public",
            "delete",
            "configmap",
            "cluster-info",
            "--ignore-not-found",
        ]);
        let mut args = vec![
            "-n".to_owned(),
            "kube-public".to_owned(),
            "create".to_owned(),
            "configmap".to_owned(),
            "cluster-info".to_owned(),
            format!("--from-file=kubeconfig={}", file.display()),
        ];
        for (id, jws) in signatures {
            args.push(format!("--from-literal=jws-kubeconfig-{id}={jws}"));
        }
        self.kubectl(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// The join token's Secret, with kubeadm's default group (allowed to create CSRs).
    fn create_token(&self) {
        run(
            Command::new(bin())
                .args(["token", "create", &format!("{ID}.{SECRET}"), "--kubeconfig"])
                .arg(self.data.join("admin.conf")),
            "kubeboot token create",
        );
    }

    fn kubectl(&self, args: &[&str]) -> String {
        run(
            Command::new("kubectl")
                .args(args)
                .arg("--request-timeout=30s")
                .env("KUBECONFIG", self.data.join("admin.conf"))
                .env("HOME", self.tmp.path()),
            "kubectl",
        )
    }
}

/// `kubeboot <args> --dir <dir>`, bounded.
fn join(args: &[&str], dir: &Path) -> Output {
    let child = Command::new(bin())
        .args(args)
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubeboot join");
    wait_bounded(child, Duration::from_secs(60))
}

/// Runs `cmd` to its end (at most 60 s); its stdout, or the test fails with its output.
fn run(cmd: &mut Command, what: &str) -> String {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    ok(wait_bounded(child, Duration::from_secs(60)), what)
}

/// Every entry under `dir` that is not a directory (files, links, temporary files), sorted;
/// none when `dir` does not exist.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        match entry.file_type() {
            Ok(t) if t.is_dir() => found.extend(files_under(&path)),
            _ => found.push(path),
        }
    }
    found.sort();
    found
}

const ID: &str = "abcdef";
const SECRET: &str = "0123456789abcdef";
const OTHER_ID: &str = "zzzzzz";
const OTHER_SECRET: &str = "fedcba9876543210";

const ENCRYPTION: &str = "kind: EncryptionConfiguration
apiVersion: apiserver.config.k8s.io/v1
resources:
  - resources:
      - secrets
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
      - identity: {}
";
