//! `kubeboot join` and `kubeboot node` against the real server: a node joins, registers,
//! serves with a cluster-signed certificate, rotates while the server restarts; and every
//! way join can fail says so and leaves no credentials.
#![allow(
    clippy::disallowed_methods,
    reason = "an integration test waits in real time on a real process"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::node::{join, join_args, manual_token};
use common::{Server, bin, eventually, ok};

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Joins node `name` to `s` into `parent/name` (asserting it joined); the node's dir.
fn joined(s: &Server, parent: &Path, name: &str) -> std::path::PathBuf {
    let node_dir = parent.join(name);
    let mut args = join_args(s);
    args.extend(["--node-name", name, "--dir"].map(String::from));
    args.push(node_dir.display().to_string());
    let out = join(&args, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    node_dir
}

/// `kubeboot node --dir dir` on a free loopback port, with `extra` flags; its stderr piped.
fn agent(dir: &Path, extra: &[&str]) -> Child {
    Command::new(bin())
        .args(["node", "--dir"])
        .arg(dir)
        .args(["--address", "127.0.0.1", "--port", "0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node")
}

fn start_agent(dir: &Path, name: &str) -> (Agent, String) {
    let mut child = Command::new(bin())
        .args(["node", "--dir"])
        .arg(dir)
        .args([
            "--node-name",
            name,
            "--rotate-certificates",
            "--rotate-server-certificates",
            "--address",
            "127.0.0.1",
            "--port",
            "0",
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read");
    let addr = line
        .trim()
        .strip_prefix("kubeboot node serving on https://")
        .expect("serving line")
        .to_owned();
    (Agent(child), addr)
}

/// The user `kubeconfig` authenticates as (`kubectl auth whoami`).
fn whoami(s: &Server, kubeconfig: &Path, what: &str) -> String {
    ok(
        s.kubectl_as(
            "kubectl",
            kubeconfig,
            &[
                "auth",
                "whoami",
                "-o",
                "jsonpath={.status.userInfo.username}",
            ],
            None,
        ),
        what,
    )
}

fn current_target(dir: &Path) -> std::path::PathBuf {
    std::fs::read_link(dir.join("pki/kubelet-client-current.pem")).expect("current symlink")
}

fn serial(pem_path: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-serial", "-in"])
        .arg(pem_path)
        .output()
        .expect("openssl");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn a_node_joins_serves_and_rotates_through_a_server_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("cluster");
    let flags = [
        "--approve-kubelet-serving",
        "--cluster-signing-duration",
        "100s",
    ];
    let mut s = Server::start_in_with(&data, &flags);
    let node_dir = tmp.path().join("worker-1");
    let mut args = join_args(&s);
    args.extend(["--node-name", "worker-1", "--dir"].map(String::from));
    args.push(node_dir.display().to_string());
    let out = join(&args, &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("[discovery] Cluster info signature and contents are valid")
            && text.contains("This node has joined the cluster"),
        "{text}"
    );
    for f in ["bootstrap-kubelet.conf", "kubelet.conf"] {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(node_dir.join(f))
                .expect(f)
                .permissions()
                .mode()
                & 0o777,
            0o600,
            "{f}"
        );
    }
    let node_kc = node_dir.join("kubelet.conf");
    let who = whoami(&s, &node_kc, "whoami as the node");
    assert_eq!(who, "system:node:worker-1");

    let (agent, addr) = start_agent(&node_dir, "worker-1");
    assert!(
        eventually(Duration::from_secs(30), || {
            let out = s.kubectl("kubectl", &["get", "nodes", "--no-headers"]);
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .any(|l| l.starts_with("worker-1") && l.split_whitespace().nth(1) == Some("Ready"))
        }),
        "worker-1 is Ready"
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            let table = String::from_utf8_lossy(
                &s.kubectl("kubectl", &["get", "csr", "--no-headers"]).stdout,
            )
            .into_owned();
            table.lines().any(|l| {
                l.contains("kubernetes.io/kubelet-serving") && l.contains("Approved,Issued")
            }) && table.lines().any(|l| {
                l.contains("kube-apiserver-client-kubelet") && l.contains("Approved,Issued")
            })
        }),
        "the client and the serving CSRs are issued"
    );
    // The serving certificate is used for real and verifies against the cluster CA.
    assert!(
        eventually(Duration::from_secs(20), || {
            let out = Command::new("openssl")
                .args([
                    "s_client",
                    "-connect",
                    &addr,
                    "-verify_return_error",
                    "-CAfile",
                ])
                .arg(s.ca())
                .stdin(Stdio::null())
                .output()
                .expect("openssl s_client");
            let text = String::from_utf8_lossy(&out.stdout);
            out.status.success()
                && text.contains("Verify return code: 0 (ok)")
                && text.contains("system:node:worker-1")
        }),
        "openssl s_client verifies the node's serving certificate"
    );
    let (code, body) = {
        let out = Command::new("curl")
            .args(["-s", "--cacert"])
            .arg(s.ca())
            .args([
                "--resolve",
                &format!(
                    "worker-1:{}:127.0.0.1",
                    addr.rsplit(':').next().expect("port")
                ),
            ])
            .arg(format!(
                "https://worker-1:{}/healthz",
                addr.rsplit(':').next().expect("port")
            ))
            .args(["-w", "\n%{http_code}"])
            .output()
            .expect("curl");
        let t = String::from_utf8_lossy(&out.stdout).into_owned();
        let (b, c) = t.rsplit_once('\n').unwrap_or(("", "0"));
        (c.to_owned(), b.to_owned())
    };
    assert_eq!((code.as_str(), body.as_str()), ("200", "ok"));

    // Rotation: kill the server while the client certificate nears renewal, restart it,
    // and see a new certificate (new serial, moved symlink) while the node stays Ready.
    let first_target = current_target(&node_dir);
    let first_serial = serial(&node_dir.join("pki/kubelet-client-current.pem"));
    let port = s.port();
    s.kill();
    std::thread::sleep(Duration::from_secs(4));
    let s = Server::start_on(&data, port, &flags);
    assert!(
        eventually(Duration::from_secs(90), || current_target(&node_dir)
            != first_target),
        "the client certificate rotated"
    );
    assert_ne!(
        serial(&node_dir.join("pki/kubelet-client-current.pem")),
        first_serial
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            let out = s.kubectl("kubectl", &["get", "node", "worker-1", "--no-headers"]);
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .nth(1)
                == Some("Ready")
        }),
        "still Ready after rotation"
    );
    let who = whoami(&s, &node_kc, "whoami with the rotated certificate");
    assert_eq!(who, "system:node:worker-1");
    drop(agent);
}

/// A bootstrap token whose CSRs no policy approves: its group may create CSRs
/// (`system:node-bootstrapper`), but not have them approved by the controllers.
fn assert_failed_cleanly(out: &std::process::Output, dir: &Path, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "join must fail");
    assert!(err.contains(needle), "expected {needle:?} in: {err}");
    assert!(
        !dir.join("bootstrap-kubelet.conf").exists() && !dir.join("kubelet.conf").exists(),
        "no node credentials are left"
    );
    let keys: Vec<_> = std::fs::read_dir(dir.join("pki"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(keys.is_empty(), "no certificate or key is left: {keys:?}");
}

/// cluster-info as the admin reads it, and the name of its JWS for the server's token.
fn cluster_info(s: &Server) -> (serde_json::Value, String) {
    let (code, body) = s.admin_curl(&[], CLUSTER_INFO);
    assert_eq!(code, 200, "{body}");
    let id = s.token()[..6].to_owned();
    (
        serde_json::from_str(&body).expect("json"),
        format!("jws-kubeconfig-{id}"),
    )
}

const CLUSTER_INFO: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

#[test]
fn a_signed_cluster_info_naming_a_local_ca_file_is_refused() {
    let s = Server::start();
    // The administrator (or whoever holds the token and answers for the server) makes
    // cluster-info name its CA by a path on the joining machine; the bootstrap signer signs
    // it again with the token.
    let token = s.token();
    let by_path = |kc: &str| {
        let line = kc
            .lines()
            .find(|l| l.trim_start().starts_with("certificate-authority-data:"))
            .expect("inline CA");
        let indent = &line[..line.len() - line.trim_start().len()];
        kc.replace(
            line,
            &format!("{indent}certificate-authority: {}", s.ca().display()),
        )
    };
    // The signer may sign cluster-info meanwhile: a stale write (409) is made again.
    let mut written = String::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            let (mut cm, _) = cluster_info(&s);
            let kc = cm["data"]["kubeconfig"]
                .as_str()
                .expect("kubeconfig")
                .to_owned();
            written = by_path(&kc);
            cm["data"]["kubeconfig"] = written.clone().into();
            let put = [
                "-X",
                "PUT",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &cm.to_string(),
            ];
            s.admin_curl(&put, CLUSTER_INFO).0 == 200
        }),
        "cluster-info rewritten"
    );
    let signed = kubeboot_bootstrap::jws::sign_detached(&written, &token[..6], &token[7..]);
    assert!(
        eventually(Duration::from_secs(20), || {
            let (cm, jws) = cluster_info(&s);
            cm["data"][&jws] == signed.as_str()
        }),
        "the bootstrap signer signed the new cluster-info"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("w");
    let mut args = join_args(&s);
    args.extend([
        "--node-name".into(),
        "w".into(),
        "--dir".into(),
        dir.display().to_string(),
    ]);
    let out = join(&args, &[]);
    assert_failed_cleanly(
        &out,
        &dir,
        "only certificate-authority-data is accepted from cluster-info",
    );
}

#[test]
fn a_join_that_fails_after_its_certificate_is_issued_leaves_nothing() {
    let s = Server::start();
    // Without system:basic-user nobody may ask who they are: the node's certificate is
    // issued, and then the join's last check fails.
    ok(
        s.kubectl(
            "kubectl",
            &["delete", "clusterrolebinding", "system:basic-user"],
        ),
        "delete the binding",
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("w");
    let mut args = join_args(&s);
    args.extend([
        "--node-name".into(),
        "w".into(),
        "--dir".into(),
        dir.display().to_string(),
    ]);
    let out = join(&args, &[]);
    assert_failed_cleanly(&out, &dir, "checking the node's kubeconfig");
    let csrs = ok(s.kubectl("kubectl", &["get", "csr"]), "get csr");
    assert!(
        csrs.contains("Approved,Issued"),
        "the certificate was issued: {csrs}"
    );
}

#[test]
fn join_fails_clearly_and_leaves_nothing_behind() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = join_args(&s);
    let with = |dir: &str, replace: Option<(&str, &str)>, extra: &[&str]| {
        let mut a: Vec<String> = base.clone();
        if let Some((from, to)) = replace {
            for x in a.iter_mut() {
                if x == from {
                    *x = to.to_owned();
                }
            }
        }
        a.extend([
            "--node-name".into(),
            "n1".into(),
            "--dir".into(),
            tmp.path().join(dir).display().to_string(),
            "--discovery-timeout".into(),
            "3s".into(),
        ]);
        join(&a, extra)
    };
    let good_pin = base[base
        .iter()
        .position(|a| a == "--discovery-token-ca-cert-hash")
        .expect("pin")
        + 1]
    .clone();

    // A wrong pin: both hashes are shown.
    let wrong = format!("sha256:{}", "ab".repeat(32));
    let out = with("wrong-pin", Some((&good_pin, &wrong)), &[]);
    assert_failed_cleanly(
        &out,
        &tmp.path().join("wrong-pin"),
        "none of the public keys",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&wrong) && err.contains(&good_pin), "{err}");

    // An unknown token: no signature for its id.
    let token = base[base.iter().position(|a| a == "--token").expect("token") + 1].clone();
    let unknown = format!("zzzzzz.{}", &token[7..]);
    let out = with("unknown", Some((&token, &unknown)), &[]);
    assert_failed_cleanly(
        &out,
        &tmp.path().join("unknown"),
        "could not find a JWS signature in the cluster-info ConfigMap for token ID \"zzzzzz\"",
    );

    // A man in the middle: another server answering at an address the node was given.
    // It can sign cluster-info only with tokens it knows; with a guessed secret the JWS
    // fails, and with a stolen token its own CA fails the pin.
    let attacker = Server::start();
    let token_cmd = |server: &Server, args: &[&str]| {
        ok(
            Command::new(bin())
                .arg("token")
                .args(args)
                .arg("--kubeconfig")
                .arg(server.kubeconfig())
                .output()
                .expect("token"),
            "token",
        )
        .trim()
        .to_owned()
    };
    token_cmd(
        &attacker,
        &["create", &format!("{}.0000000000000000", &token[..6])],
    );
    let evil_endpoint = attacker.url.trim_start_matches("https://").to_owned();
    let real_endpoint = base[1].clone();
    let out = with("forged", Some((&real_endpoint, &evil_endpoint)), &[]);
    assert_failed_cleanly(
        &out,
        &tmp.path().join("forged"),
        "failed to verify JWS signature",
    );
    let stolen = token_cmd(&s, &["create"]);
    token_cmd(&attacker, &["create", &stolen]);
    let mut a = base.clone();
    a[1] = evil_endpoint;
    let t = a.iter().position(|x| x == "--token").expect("token") + 1;
    a[t] = stolen;
    a.extend([
        "--node-name".into(),
        "n1".into(),
        "--dir".into(),
        tmp.path().join("swapped-ca").display().to_string(),
        "--discovery-timeout".into(),
        "3s".into(),
    ]);
    let out = join(&a, &[]);
    assert_failed_cleanly(
        &out,
        &tmp.path().join("swapped-ca"),
        "none of the public keys",
    );

    // An expired token.
    let short = ok(
        Command::new(bin())
            .args(["token", "create", "--ttl", "1s", "--kubeconfig"])
            .arg(s.kubeconfig())
            .output()
            .expect("token"),
        "token create",
    )
    .trim()
    .to_owned();
    std::thread::sleep(Duration::from_secs(3));
    let out = with("expired", Some((&token, &short)), &[]);
    assert_failed_cleanly(
        &out,
        &tmp.path().join("expired"),
        "could not find a JWS signature",
    );

    // A denied CSR: a token whose group no policy approves, denied by a person.
    let manual = manual_token(&s);
    let denier = {
        let kc = s.kubeconfig();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                let out = Command::new("kubectl")
                    .args([
                        "get",
                        "csr",
                        "-o",
                        "jsonpath={range .items[*]}{.metadata.name} {.spec.username}{\"\\n\"}{end}",
                    ])
                    .env("KUBECONFIG", &kc)
                    .output()
                    .expect("kubectl");
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                for line in text.lines() {
                    let mut parts = line.split_whitespace();
                    let (Some(name), Some(user)) = (parts.next(), parts.next()) else {
                        continue;
                    };
                    if user.starts_with("system:bootstrap:") {
                        let _ = Command::new("kubectl")
                            .args(["certificate", "deny", name])
                            .env("KUBECONFIG", &kc)
                            .output();
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let out = with("denied", Some((&token, &manual)), &[]);
    denier.join().expect("denier");
    assert_failed_cleanly(&out, &tmp.path().join("denied"), "is denied");
}

#[test]
fn a_rejoin_that_fails_puts_back_the_old_kubeconfig_and_certificate_link() {
    // The first cluster issues certificates that expire at once, so that joining again
    // bootstraps anew; the second lets nobody ask who they are, so that join fails after
    // its certificate is issued. Every file is as the first join left it.
    let first = Server::start_with(&["--cluster-signing-duration", "2s"]);
    let second = Server::start();
    ok(
        second.kubectl(
            "kubectl",
            &["delete", "clusterrolebinding", "system:basic-user"],
        ),
        "delete the binding",
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("w");
    let node = [
        "--node-name".to_owned(),
        "w".into(),
        "--dir".into(),
        dir.display().to_string(),
    ];
    let joined = join(&[join_args(&first), node.to_vec()].concat(), &[]);
    assert!(joined.status.success(), "{joined:?}");
    let kubeconfig = std::fs::read(dir.join("kubelet.conf")).expect("kubelet.conf");
    let bootstrap = std::fs::read(dir.join("bootstrap-kubelet.conf")).expect("bootstrap");
    let target = current_target(&dir);
    let expired = || {
        !Command::new("openssl")
            .args(["x509", "-noout", "-checkend", "0", "-in"])
            .arg(&target)
            .status()
            .expect("openssl")
            .success()
    };
    assert!(
        eventually(Duration::from_secs(10), expired),
        "the first certificate expired"
    );

    let out = join(&[join_args(&second), node.to_vec()].concat(), &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the second join fails: {err}");
    assert!(err.contains("checking the node's kubeconfig"), "{err}");
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(dir.join("kubelet.conf")).expect("kubelet.conf")),
        String::from_utf8_lossy(&kubeconfig),
        "kubelet.conf still names the first cluster"
    );
    assert_eq!(current_target(&dir), target, "the -current link as it was");
    assert!(target.exists(), "and what it points at");
    let pems: Vec<_> = std::fs::read_dir(dir.join("pki"))
        .expect("pki")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        pems.len(),
        2,
        "the old certificate and its link, nothing new: {pems:?}"
    );
    assert_eq!(
        std::fs::read(dir.join("bootstrap-kubelet.conf")).expect("bootstrap"),
        bootstrap,
        "the first join's bootstrap kubeconfig as it was"
    );
}

#[test]
fn the_agent_is_the_node_its_certificate_names() {
    // Seen before the fix: the README's `kubeboot node --dir ./worker-1` registered under
    // the machine's host name, was forbidden ("User system:node:worker-1 cannot get
    // resource nodes") and retried for ever; `kubectl get nodes` showed nothing.
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Server::start_in(&tmp.path().join("cluster"));
    let node_dir = joined(&s, tmp.path(), "worker-7");
    let node = |extra: &[&str]| agent(&node_dir, extra);
    // A --node-name that disagrees with the certificate is refused, saying which is which.
    let refused = common::wait_bounded(node(&["--node-name", "other"]), Duration::from_secs(30));
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        why.contains("--node-name other disagrees with the client certificate")
            && why.contains("which is node worker-7's"),
        "{why}"
    );
    // Without --node-name the agent is the node its certificate names.
    let _agent = Agent(node(&[]));
    assert!(
        eventually(Duration::from_secs(30), || {
            let out = s.kubectl("kubectl", &["get", "node", "worker-7", "--no-headers"]);
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .nth(1)
                == Some("Ready")
        }),
        "worker-7 registers and is Ready"
    );
}

#[test]
fn a_join_waiting_for_its_certificate_rides_out_a_server_restart() {
    // Seen before the fix: a node whose CSR watch broke gave up ("cannot reach …"); a kill -9
    // of the server during a 3,000-node burst left 163 nodes unjoined, though their CSRs were
    // approved and issued after the restart. A kubelet waits on until its deadline.
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("cluster");
    let mut s = Server::start_in(&data);
    let port = s.port();
    // A token whose CSRs no policy approves: the join waits for a person.
    let manual = manual_token(&s);
    let mut args = join_args(&s);
    let at = args.iter().position(|a| a == "--token").expect("--token") + 1;
    args[at] = manual;
    let node_dir = tmp.path().join("patient");
    args.extend(["--node-name", "patient", "--dir"].map(String::from));
    args.push(node_dir.display().to_string());
    let joining = Command::new(bin())
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("join");
    let pending_csr = || {
        let out = s.kubectl(
            "kubectl",
            &["get", "csr", "-o", "jsonpath={.items[0].metadata.name}"],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let mut csr = String::new();
    assert!(
        eventually(Duration::from_secs(30), || {
            csr = pending_csr();
            !csr.is_empty()
        }),
        "the join asked for its certificate"
    );
    s.kill();
    let s = Server::start_on(&data, port, &[]);
    ok(
        s.kubectl("kubectl", &["certificate", "approve", &csr]),
        "approve",
    );
    let out = common::wait_bounded(joining, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(node_dir.join("kubelet.conf").exists());
    assert_eq!(
        whoami(&s, &node_dir.join("kubelet.conf"), "the joined node"),
        "system:node:patient"
    );
}

/// The CA bundle inside a kubeconfig: the certificates of its `certificate-authority-data`.
fn ca_bundle_of(kubeconfig_text: &str) -> Vec<String> {
    String::from_utf8(common::kubeconfig_data(
        kubeconfig_text,
        "certificate-authority-data",
    ))
    .expect("utf8")
    .split_inclusive("-----END CERTIFICATE-----\n")
    .filter(|c| c.contains("BEGIN CERTIFICATE"))
    .map(str::to_owned)
    .collect()
}

#[test]
fn the_agent_adopts_the_ca_bundle_cluster_info_publishes() {
    // A CA rotation starts by publishing the new CA beside the old one in cluster-info; a
    // node must come to trust both before the servers switch to the new one.
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = Server::start_in(&tmp.path().join("cluster"));
    let node_dir = joined(&s, tmp.path(), "worker-8");
    let kubelet_conf = node_dir.join("kubelet.conf");
    let held = ca_bundle_of(&std::fs::read_to_string(&kubelet_conf).expect("kubelet.conf"));
    assert_eq!(held.len(), 1);

    common::openssl(
        tmp.path(),
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "next-ca.key",
            "-out",
            "next-ca.crt",
            "-days",
            "1",
            "-subj",
            "/CN=kubernetes-next",
        ],
    );
    let next = std::fs::read_to_string(tmp.path().join("next-ca.crt")).expect("next CA");
    let published = s.cluster_info("jsonpath={.data.kubeconfig}");
    let server = published
        .lines()
        .find_map(|l| l.trim().strip_prefix("server:"))
        .expect("server")
        .trim()
        .to_owned();
    let both = format!("{}{next}", held[0]);
    let kubeconfig = kubeboot_bootstrap::cluster_info::kubeconfig(&server, &both);
    let patch = serde_json::json!({"data": {"kubeconfig": kubeconfig}}).to_string();
    ok(
        s.kubectl(
            "kubectl",
            &[
                "-n",
                "kube-public",
                "patch",
                "cm",
                "cluster-info",
                "--type",
                "merge",
                "-p",
                &patch,
            ],
        ),
        "kubectl patch cm cluster-info",
    );

    let _agent = Agent(agent(&node_dir, &[]));
    assert!(
        eventually(Duration::from_secs(30), || {
            let text = std::fs::read_to_string(&kubelet_conf).unwrap_or_default();
            text.contains("certificate-authority-data") && ca_bundle_of(&text).len() == 2
        }),
        "kubelet.conf holds the published bundle: {:?}",
        std::fs::read_to_string(&kubelet_conf)
    );
    let adopted = ca_bundle_of(&std::fs::read_to_string(&kubelet_conf).expect("kubelet.conf"));
    assert!(
        adopted.contains(&held[0]) && adopted.contains(&next),
        "{adopted:?}"
    );
    assert!(
        eventually(Duration::from_secs(30), || {
            let out = s.kubectl("kubectl", &["get", "node", "worker-8", "--no-headers"]);
            common::stdout(&out).split_whitespace().nth(1) == Some("Ready")
        }),
        "worker-8 is Ready on the adopted bundle"
    );
}
