//! No secret in any log (review E371): a server and a join at `RUST_LOG=trace`, driven
//! through a token's creation, good and bad bearer tokens and a node's CSR, write no token
//! secret, no `Authorization` value, no "PRIVATE KEY" and no fragment of a private key.
//! The join command the server prints at its first start carries a token, by design (as
//! `kubeadm init` prints it), and so does `kubeboot join`'s command line (as `kubeadm
//! join`'s): neither is a log.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use base64::Engine;
use common::{KillOnDrop, bin, csr_pem, eventually, stderr, stdout, wait_bounded};

const SSR: &str = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

#[test]
fn no_log_at_trace_level_shows_a_token_secret_or_a_private_key() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut s = TracedServer::start(tmp.path());
    let banner = s.join_arg("--token");
    let pin = s.join_arg("--discovery-token-ca-cert-hash");

    // A token made by `kubeboot token create`, itself at trace level.
    let created = Command::new(bin())
        .args(["token", "create", "--kubeconfig"])
        .arg(s.dir.join("admin.conf"))
        .env("RUST_LOG", "trace")
        .output()
        .expect("kubeboot token create");
    assert!(created.status.success(), "{}", stderr(&created));
    let token = stdout(&created).trim().to_owned();
    let id = &token[..6];
    let mut logs = vec![("token create's log".to_owned(), stderr(&created))];

    // Good tokens, then bad ones: a wrong secret, an unknown id, no token at all, Basic.
    for t in [&banner, &token] {
        let (code, body) = s.curl(
            &[
                "-H",
                &format!("Authorization: Bearer {t}"),
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#,
            ],
            SSR,
        );
        assert_eq!(code, 201, "{body}");
        assert_eq!(s.bearer_code(t, CSRS), 200);
    }
    let basic = base64::engine::general_purpose::STANDARD.encode("probe:leak-probe-password");
    let mut sent = vec![
        format!("Bearer {banner}"),
        format!("Bearer {token}"),
        format!("Basic {basic}"),
    ];
    for (bad, want) in [
        (format!("{id}.wr0ngs3cr3tva1u"), 401),
        (format!("{}.wr0ngs3cr3tva1u", &banner[..6]), 401),
        ("zzzzzz.un0wnt0k3ns3cr3t".to_owned(), 401),
        ("kubeboot-leak-probe-4711".to_owned(), 401),
    ] {
        assert_eq!(s.bearer_code(&bad, CSRS), want, "{bad}");
        sent.push(format!("Bearer {bad}"));
    }
    let (code, _) = s.curl(&["-H", &format!("Authorization: Basic {basic}")], CSRS);
    assert_eq!(code, 403, "Basic is anonymous");

    // A node's CSR, made with the new token, approved and signed by the controllers.
    let csr_dir = tempfile::tempdir().expect("tempdir");
    let pem = csr_pem(
        csr_dir.path(),
        "node",
        "/O=system:nodes/CN=system:node:log-node",
    );
    let csr = serde_json::json!({
        "apiVersion": "certificates.k8s.io/v1",
        "kind": "CertificateSigningRequest",
        "metadata": {"name": "log-node"},
        "spec": {
            "request": base64::engine::general_purpose::STANDARD.encode(pem),
            "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
            "usages": ["digital signature", "client auth"],
        },
    });
    let bearer = format!("Authorization: Bearer {token}");
    let (code, body) = s.curl(
        &[
            "-H",
            &bearer,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &csr.to_string(),
        ],
        CSRS,
    );
    assert_eq!(code, 201, "{body}");
    assert!(
        eventually(Duration::from_secs(30), || {
            let (_, body) = s.curl(&["-H", &bearer], &format!("{CSRS}/log-node"));
            serde_json::from_str::<serde_json::Value>(&body)
                .is_ok_and(|csr| csr["status"]["certificate"].is_string())
        }),
        "the CSR is issued"
    );

    // A join at trace level, with the token made above.
    let node_dir = tmp.path().join("node");
    let join = Command::new(bin())
        .args(["join", s.addr(), "--token", &token])
        .args(["--discovery-token-ca-cert-hash", &pin])
        .args(["--node-name", "log-join", "--dir"])
        .arg(&node_dir)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubeboot join");
    let join = wait_bounded(join, Duration::from_secs(120));
    assert!(
        join.status.success() && stdout(&join).contains("This node has joined the cluster"),
        "{}\n{}",
        stdout(&join),
        stderr(&join)
    );
    logs.push(("join's output".to_owned(), stdout(&join)));
    logs.push(("join's log".to_owned(), stderr(&join)));

    s.stop();
    let server_log = std::fs::read_to_string(&s.log).expect("the server's log");
    assert!(
        server_log.contains(" TRACE ") && server_log.contains(id),
        "the log is at trace level and names the token's id"
    );
    assert!(
        stderr(&join).contains(" TRACE "),
        "join logs at trace level"
    );
    logs.push(("the server's log".to_owned(), server_log));
    let printed: Vec<String> = s.printed();
    let printed = printed
        .iter()
        .filter(|l| !l.trim_start().starts_with("kubeboot join "))
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n");
    logs.push((
        "the server's stdout but its join command".to_owned(),
        printed,
    ));

    let mut needles: Vec<(String, String)> = Vec::new();
    for t in [&banner, &token] {
        needles.push((format!("the secret of {}", &t[..6]), t[7..].to_owned()));
    }
    needles.extend(
        sent.into_iter()
            .map(|v| ("an Authorization value".to_owned(), v)),
    );
    needles.push(("a key marker".to_owned(), "PRIVATE KEY".to_owned()));
    for (what, pem) in private_keys(&s.dir, csr_dir.path(), &node_dir) {
        let fragments = key_fragments(&pem);
        assert!(fragments.len() >= 6, "{what}: {fragments:?}");
        needles.extend(fragments.into_iter().map(|f| (what.clone(), f)));
    }
    for (source, text) in &logs {
        for line in text.lines() {
            for (what, needle) in &needles {
                assert!(
                    !line.contains(needle.as_str()),
                    "{source} shows {what} ({needle}): {line}"
                );
            }
        }
    }
}

/// A `kubeboot server` on 127.0.0.1 at `RUST_LOG=trace`, its log (stderr) in a file.
struct TracedServer {
    child: KillOnDrop,
    dir: PathBuf,
    url: String,
    log: PathBuf,
    stdout: Arc<Mutex<Vec<String>>>,
}

impl TracedServer {
    /// Starts a server on a new data dir under `base`, as `common::Server::start_on` does
    /// but at trace level.
    fn start(base: &Path) -> Self {
        let dir = base.join("cluster");
        let log = base.join("server.log");
        let mut child = Command::new(bin())
            .args(["server", "--data-dir"])
            .arg(&dir)
            .args(["--secure-port", "0", "--bind-address", "127.0.0.1"])
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create the log"))
            .spawn()
            .expect("spawn kubeboot server");
        let out = child.stdout.take().expect("stdout is piped");
        let child = KillOnDrop(child);
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = stdout.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().expect("not poisoned").push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut url = None;
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(60)) {
            if let Some(addr) = line.strip_prefix("kubeboot API server listening on ") {
                url = Some(addr.trim().to_owned());
            }
            if line.contains("kubectl get --raw /version") {
                break;
            }
        }
        Self {
            child,
            dir,
            url: url.expect("the server printed its address within 60 s"),
            log,
            stdout,
        }
    }

    /// The value of `flag` in the join command the server printed.
    fn join_arg(&self, flag: &str) -> String {
        let printed = self.printed();
        let join = printed
            .iter()
            .find(|l| l.trim_start().starts_with("kubeboot join "))
            .expect("the server printed a join command");
        common::flag_value(join, flag)
    }

    fn printed(&self) -> Vec<String> {
        self.stdout.lock().expect("not poisoned").clone()
    }

    fn addr(&self) -> &str {
        self.url.trim_start_matches("https://")
    }

    /// `curl` against this server; (HTTP code, body).
    fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "30", "--cacert"])
            .arg(self.dir.join("pki/ca.crt"))
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("{}{path}", self.url))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    fn bearer_code(&self, token: &str, path: &str) -> u16 {
        self.curl(&["-H", &format!("Authorization: Bearer {token}")], path)
            .0
    }

    /// Stops the server, so that its log is complete.
    fn stop(&mut self) {
        let _ = self.child.0.kill();
        let _ = self.child.0.wait();
    }
}

/// Every private key involved, as PEM: the data dir's `pki/*.key`, the keys in its
/// kubeconfigs, the key of the CSR made in `csr_dir` and the joined node's key.
fn private_keys(data: &Path, csr_dir: &Path, node_dir: &Path) -> Vec<(String, String)> {
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(data.join("pki")).expect("pki") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "key") {
            keys.push((
                path.display().to_string(),
                std::fs::read_to_string(&path).expect("key"),
            ));
        }
    }
    for conf in ["admin.conf", "controller-manager.conf"] {
        let text = std::fs::read_to_string(data.join(conf)).expect(conf);
        let pem = common::kubeconfig_data(&text, "client-key-data");
        keys.push((
            format!("{conf}'s key"),
            String::from_utf8(pem).expect("PEM"),
        ));
    }
    keys.push((
        "the CSR's key".to_owned(),
        std::fs::read_to_string(csr_dir.join("node.key")).expect("node.key"),
    ));
    keys.push((
        "the joined node's key".to_owned(),
        std::fs::read_to_string(node_dir.join("pki/kubelet-client-current.pem"))
            .expect("the node's certificate and key"),
    ));
    assert!(keys.len() >= 6, "{keys:?}");
    keys
}

/// Pieces of a PEM private key's secret part that a careless log would show: 16-character
/// windows of its base64 text, 16-digit windows of its hex and 6-byte runs in decimal.
/// For an EC key the secret part is the private scalar (the rest of the document is a
/// fixed header and the public key); for another key, the second half of the document.
fn key_fragments(pem: &str) -> Vec<String> {
    let body: String = pem
        .lines()
        .skip_while(|l| !(l.starts_with("-----BEGIN") && l.ends_with("PRIVATE KEY-----")))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(&body)
        .expect("a PEM private key");
    // ECPrivateKey: version 1, then the scalar as an OCTET STRING.
    let (start, end) = der
        .windows(5)
        .position(|w| w[..4] == [0x02, 0x01, 0x01, 0x04] && matches!(w[4], 32 | 48 | 66))
        .map_or((der.len() / 2, der.len()), |i| {
            (i + 5, i + 5 + usize::from(der[i + 4]))
        });
    let secret = &der[start..end];
    let mut out = Vec::new();
    let (first, last) = (start.div_ceil(3) * 4, end / 3 * 4);
    out.extend(
        (first..(last + 1).saturating_sub(16))
            .step_by(8)
            .map(|i| body[i..i + 16].to_owned()),
    );
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    out.extend(
        hex.as_bytes()
            .chunks_exact(16)
            .map(|run| String::from_utf8_lossy(run).into_owned()),
    );
    out.extend(
        secret
            .chunks_exact(6)
            .map(|run| run.iter().map(u8::to_string).collect::<Vec<_>>().join(", ")),
    );
    out
}
