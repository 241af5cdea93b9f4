//! Secrets encrypted at rest: the raw store holds no plaintext, keys rotate the Kubernetes
//! way, and a wrong key is a startup error, never plaintext.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, bin, ok};

fn config(first: (&str, &str, &str), second: Option<(&str, &str, &str)>) -> String {
    let provider = |(p, name, secret): (&str, &str, &str)| {
        format!(
            "      - {p}:\n          keys:\n            - name: {name}\n              secret: {secret}\n"
        )
    };
    let mut out = "kind: EncryptionConfiguration\napiVersion: apiserver.config.k8s.io/v1\nresources:\n  - resources:\n      - secrets\n    providers:\n".to_owned();
    out.push_str(&provider(first));
    if let Some(s) = second {
        out.push_str(&provider(s));
    }
    out.push_str("      - identity: {}\n");
    out
}

const OLD: (&str, &str, &str) = (
    "aescbc",
    "key1",
    "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
);
const NEW: (&str, &str, &str) = (
    "aesgcm",
    "key2",
    "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=",
);

/// The raw stored value of a key, read straight from SQLite (from `kv`, or from the event
/// that wrote it when it is large).
fn raw(db: &Path, key: &str) -> Vec<u8> {
    let script = format!(
        "import sqlite3,sys; r=sqlite3.connect('{}').execute('select coalesce(value, (select value from events where rev = mod_rev)) from kv where key=?',('{key}',)).fetchone(); sys.stdout.buffer.write(r[0] if r else b'')",
        db.display()
    );
    Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3")
        .stdout
}

#[test]
fn secrets_are_encrypted_at_rest_and_keys_rotate() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("cluster");
    let cfg = tmp.path().join("enc.yaml");
    let db = data.join("db/state.db");
    let key = "/registry/secrets/default/s";
    std::fs::write(&cfg, config(OLD, None)).expect("write");
    let enc = ["--encryption-provider-config", cfg.to_str().expect("utf8")];
    let mut s = Server::start_on(&data, 0, &enc);
    ok(
        s.kubectl(
            "kubectl",
            &[
                "create",
                "secret",
                "generic",
                "s",
                "--from-literal=password=hunter2-plaintext",
            ],
        ),
        "create secret",
    );
    let stored = raw(&db, key);
    assert!(
        stored.starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "{}",
        String::from_utf8_lossy(&stored[..stored.len().min(40)])
    );
    let token_key = format!(
        "/registry/secrets/kube-system/bootstrap-token-{}",
        &s.join_command
            .as_deref()
            .expect("join")
            .split_whitespace()
            .skip_while(|w| *w != "--token")
            .nth(1)
            .expect("token")[..6]
    );
    let token_stored = raw(&db, &token_key);
    assert!(
        token_stored.starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "the bootstrap token's secret is encrypted too"
    );
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode("hunter2-plaintext");
    assert!(
        !stored.windows(b64.len()).any(|w| w == b64.as_bytes())
            && !stored.windows(7).any(|w| w == b"hunter2"),
        "no plaintext in the store"
    );
    let got = ok(
        s.kubectl(
            "kubectl",
            &["get", "secret", "s", "-o", "jsonpath={.data.password}"],
        ),
        "get",
    );
    assert_eq!(got, b64, "reads decrypt");

    // Rotation: the new key second, restart; first, restart; rewrite; drop the old key.
    s.kill();
    std::fs::write(&cfg, config(OLD, Some(NEW))).expect("write");
    s = Server::start_on(&data, 0, &enc);
    s.kill();
    std::fs::write(&cfg, config(NEW, Some(OLD))).expect("write");
    s = Server::start_on(&data, 0, &enc);
    assert!(
        raw(&db, key).starts_with(b"k8s:enc:aescbc:v1:key1:"),
        "old values stay until rewritten"
    );
    s.kill();
    let out = Command::new(bin())
        .args(["rewrite-secrets", "--data-dir"])
        .arg(&data)
        .arg("--encryption-provider-config")
        .arg(&cfg)
        .output()
        .expect("rewrite");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(raw(&db, key).starts_with(b"k8s:enc:aesgcm:v1:key2:"));
    std::fs::write(&cfg, config(NEW, None)).expect("write");
    s = Server::start_on(&data, 0, &enc);
    let got = ok(
        s.kubectl(
            "kubectl",
            &["get", "secret", "s", "-o", "jsonpath={.data.password}"],
        ),
        "get after rotation",
    );
    assert_eq!(got, b64);
    s.kill();

    // A wrong key: the server refuses to start, naming the problem.
    std::fs::write(
        &cfg,
        config(
            (
                "aesgcm",
                "key2",
                "MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA=",
            ),
            None,
        )
        .replace("      - identity: {}\n", ""),
    )
    .expect("write");
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
        .args(enc)
        .output()
        .expect("server");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("encryption-provider-config")
            && err.contains("cannot decrypt"),
        "{err}"
    );
}
