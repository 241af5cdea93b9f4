//! What `kubeboot join` and `kubeboot token create` take from their flags, as kubeadm takes
//! them: a node name that could name a Node and an endpoint with a port, refused at once
//! and before anything is sent; several CA pins in one comma-separated flag; `--groups ""`
//! as no group.

mod common;

use std::process::Command;

use common::node::{join, join_args, joined_with};
use common::{Server, bin, ok, stderr, stdout};

/// The join command's arguments with `flag`'s value replaced by `value`.
fn with_flag(args: &[String], flag: &str, value: &str) -> Vec<String> {
    let mut out = args.to_vec();
    let at = out.iter().position(|a| a == flag).expect(flag) + 1;
    out[at] = value.to_owned();
    out
}

/// Seen before: `--node-name Bad_Name`, `a/b`, an empty name and one of 300 characters all
/// joined, and the cluster issued a certificate for each; `join 127.0.0.1` dialled port
/// 443 until discovery timed out.
#[test]
fn a_join_refuses_a_bad_node_name_or_endpoint_before_it_sends_anything() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = join_args(&s);
    let long = "a".repeat(300);
    let cases: [(Vec<String>, &str, String); 5] = [
        (base.clone(), "Bad_Name", "nodeRegistration.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain".into()),
        (base.clone(), "a/b", "nodeRegistration.name: Invalid value: \"a/b\"".into()),
        (base.clone(), "", "nodeRegistration: Required value: --node-name".into()),
        (base.clone(), &long, "must be no more than 253 characters".into()),
        (
            // `join <host>` without its port.
            {
                let mut a = base;
                a[1] = "127.0.0.1".into();
                a
            },
            "n1",
            "discovery.bootstrapToken.apiServerEndpoint: Invalid value: \"127.0.0.1\": address 127.0.0.1: missing port in address".into(),
        ),
    ];
    for (i, (args, name, says)) in cases.into_iter().enumerate() {
        let dir = tmp.path().join(format!("n{i}"));
        let out = join(
            &args,
            &["--node-name", name, "--dir", &dir.display().to_string()],
        );
        assert!(!out.status.success(), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(&says), "{name}: {}", stderr(&out));
        assert!(
            !stdout(&out).contains("[discovery]"),
            "{name}: nothing dialled"
        );
        assert!(
            !dir.join("kubelet.conf").exists(),
            "{name}: nothing written"
        );
    }
    let csrs = ok(s.kubectl("kubectl", &["get", "csr", "-o", "name"]), "csrs");
    assert!(csrs.trim().is_empty(), "no CSR was made: {csrs}");
}

/// Seen before: `--discovery-token-ca-cert-hash sha256:<a>,sha256:<b>` was one invalid
/// hash, and `token create --groups ""` a group `""`, so no signing-only token could be made.
#[test]
fn pins_split_at_commas_and_an_empty_group_list_is_no_group() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let base = join_args(&s);
    let at = base
        .iter()
        .position(|a| a == "--discovery-token-ca-cert-hash")
        .expect("pin")
        + 1;
    let pins = format!("sha256:{},{}", "ab".repeat(32), base[at]);
    let args = with_flag(&base, "--discovery-token-ca-cert-hash", &pins);
    joined_with(args, &tmp.path().join("w1"), "w1");

    let token = ok(
        Command::new(bin())
            .args(["token", "create", "--usages", "signing", "--groups", ""])
            .arg("--kubeconfig")
            .arg(s.kubeconfig())
            .output()
            .expect("token create"),
        "a signing-only token",
    );
    let id = &token.trim()[..6];
    let secret = ok(
        s.kubectl(
            "kubectl",
            &[
                "get",
                "secret",
                "-n",
                "kube-system",
                &format!("bootstrap-token-{id}"),
                "-o",
                "json",
            ],
        ),
        "its Secret",
    );
    let secret: serde_json::Value = serde_json::from_str(&secret).expect("json");
    let data = &secret["data"];
    assert!(data.get("auth-extra-groups").is_none(), "{data}");
    assert!(data.get("usage-bootstrap-signing").is_some(), "{data}");
    assert!(
        data.get("usage-bootstrap-authentication").is_none(),
        "{data}"
    );
}
