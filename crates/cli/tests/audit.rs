//! The audit log of the real server, driven by `kubeboot token`, `curl`, `openssl` and
//! `kubectl`: token creation and deletion, a node's CSR with its automatic approval and
//! signature, and a person's denial are each recorded with the user who did it; no token
//! secret, key or Authorization header ever reaches the log, whatever the policy asks.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use base64::Engine;
use common::{Server, audit_events, audit_flags, bin, csr_pem, eventually, ok};
use serde_json::Value;

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

/// Everything at the most detailed level, and nothing of the health checks.
const POLICY: &str = r#"apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
  - level: RequestResponse
"#;

fn find(events: &[Value], cond: impl Fn(&Value) -> bool) -> Option<&Value> {
    events.iter().find(|e| cond(e))
}

fn is(e: &Value, verb: &str, resource: &str, sub: Option<&str>, user: &str) -> bool {
    e["stage"] == "ResponseComplete"
        && e["verb"] == verb
        && e["objectRef"]["resource"] == resource
        && e["objectRef"]["subresource"].as_str() == sub
        && e["user"]["username"] == user
}

fn token(s: &Server, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("token")
        .args(args)
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .output()
        .expect("kubeboot token");
    ok(out, "kubeboot token").trim().to_owned()
}

#[test]
fn approvals_signatures_denials_and_tokens_are_recorded_with_their_users() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("audit/audit.log");
    let s = Server::start_audited(tmp.path(), POLICY, &log);
    let boot = s.token();
    let boot_user = format!("system:bootstrap:{}", &boot[..6]);

    // A token made and deleted by the administrator.
    let made = token(&s, &["create"]);
    token(&s, &["delete", &made[..6]]);

    // A node's CSR, approved and signed by the controllers; another denied by a person.
    let request = |subject: &str, name: &str, signer: &str| {
        let pem = csr_pem(tmp.path(), name, subject);
        let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
        format!(
            r#"{{"metadata":{{"name":"{name}"}},"spec":{{"request":"{b64}","signerName":"{signer}","usages":["digital signature","client auth"]}}}}"#
        )
    };
    for (name, subject, signer) in [
        (
            "node-a",
            "/O=system:nodes/CN=system:node:a",
            "kubernetes.io/kube-apiserver-client-kubelet",
        ),
        // No controller approves what example.com signs: a person decides.
        ("other", "/CN=other", "example.com/signer"),
    ] {
        let (code, out) = s.curl(
            &[
                "-H",
                &format!("Authorization: Bearer {boot}"),
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &request(subject, name, signer),
            ],
            CSRS,
        );
        assert_eq!(code, 201, "{out}");
    }
    ok(
        s.kubectl("kubectl", &["certificate", "deny", "other"]),
        "deny",
    );
    // A refused token is recorded, as no one; the token never is.
    let wrong = "abcdef.wrongwrongwrong1";
    let (code, _) = s.curl(&["-H", &format!("Authorization: Bearer {wrong}")], CSRS);
    assert_eq!(code, 401);

    let signed = |e: &Value| {
        e["verb"] == "update"
            && e["objectRef"]["name"] == "node-a"
            && e["objectRef"]["subresource"] == "status"
            && e["responseStatus"]["code"] == 200
    };
    assert!(
        eventually(Duration::from_secs(30), || find(
            &audit_events(&log),
            signed
        )
        .is_some()),
        "the signature is recorded"
    );
    let all = audit_events(&log);
    let created = find(&all, |e| {
        is(e, "create", "secrets", None, "kubernetes-admin")
    })
    .expect("the token's creation is recorded");
    assert_eq!(
        created["objectRef"]["name"],
        format!("bootstrap-token-{}", &made[..6])
    );
    assert_eq!(
        created["level"], "Metadata",
        "a Secret is never recorded above Metadata"
    );
    assert!(created.get("requestObject").is_none() && created.get("responseObject").is_none());
    assert!(
        find(&all, |e| is(
            e,
            "delete",
            "secrets",
            None,
            "kubernetes-admin"
        ))
        .is_some()
    );
    let csr = find(&all, |e| {
        is(e, "create", "certificatesigningrequests", None, &boot_user)
    })
    .expect("the CSR's creation, by the bootstrap token");
    assert_eq!(csr["level"], "RequestResponse");
    assert_eq!(
        csr["responseObject"]["spec"]["username"],
        boot_user.as_str()
    );
    let approval = find(&all, |e| {
        e["objectRef"]["name"] == "node-a" && e["objectRef"]["subresource"] == "approval"
    })
    .expect("the approval is recorded");
    // The controllers' requests reach the request path inside the process, and are
    // recorded as a connection presenting their certificate from loopback would be.
    assert_eq!(
        approval["user"]["username"], "system:kube-controller-manager",
        "the controllers approved it: {approval}"
    );
    assert_eq!(approval["sourceIPs"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(
        approval["requestURI"],
        "/apis/certificates.k8s.io/v1/certificatesigningrequests/node-a/approval"
    );
    assert!(
        approval["userAgent"]
            .as_str()
            .is_some_and(|a| a.starts_with("kubeboot-controller-manager/v")),
        "{approval}"
    );
    let denial = find(&all, |e| {
        is(
            e,
            "update",
            "certificatesigningrequests",
            Some("approval"),
            "kubernetes-admin",
        )
    })
    .expect("the denial is recorded with the person who denied");
    assert_eq!(denial["objectRef"]["name"], "other");
    assert_eq!(
        denial["requestObject"]["status"]["conditions"][0]["type"],
        "Denied"
    );
    assert_eq!(all[0]["apiVersion"], "audit.k8s.io/v1");
    assert!(
        all.iter().all(|e| e["stage"] != "RequestReceived"),
        "omitted stage"
    );
    assert!(all.iter().all(|e| {
        !e["requestURI"]
            .as_str()
            .unwrap_or("")
            .starts_with("/healthz")
    }));

    let refused = find(&all, |e| e["responseStatus"]["code"] == 401).expect("the 401");
    assert_eq!(refused["stage"], "ResponseStarted");
    assert_eq!(refused["user"], serde_json::json!({}));

    // Nothing secret, whatever the policy asks for.
    let text = std::fs::read_to_string(&log).expect("log");
    for secret in [&boot[7..], &made[7..], &wrong[7..]] {
        assert!(!text.contains(secret), "a token secret is in the audit log");
    }
    assert!(
        !text.contains("PRIVATE KEY") && !text.to_ascii_lowercase().contains("authorization\":")
    );
    let mode = std::fs::metadata(&log).expect("log").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[test]
fn every_event_is_written_before_the_server_exits_and_unknown_modes_are_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("audit.log");
    let flags = audit_flags(tmp.path(), POLICY, &log);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let refused = Command::new(bin())
        .args(["server", "--data-dir"])
        .arg(tmp.path().join("refused"))
        .args(&flags)
        .args(["--audit-log-mode", "async"])
        .output()
        .expect("kubeboot server");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(
            r#"invalid audit log mode async, allowed modes are "batch,blocking,blocking-strict""#
        ),
        "{refused:?}"
    );

    let mut s = Server::start_with(&flags);
    let names: Vec<String> = (0..40).map(|i| format!("cm-{i}")).collect();
    for name in &names {
        let body = format!(r#"{{"metadata":{{"name":"{name}"}}}}"#);
        let (code, out) = s.admin_curl(
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body,
            ],
            "/api/v1/namespaces/default/configmaps",
        );
        assert_eq!(code, 201, "{out}");
    }
    let term = Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    assert!(
        common::wait_exit(&mut s.child, Duration::from_secs(20)),
        "the server exits on SIGTERM"
    );
    let events = audit_events(&log);
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            find(&events, |e| {
                is(e, "create", "configmaps", None, "kubernetes-admin")
                    && e["objectRef"]["name"] == name.as_str()
            })
            .is_none()
        })
        .collect();
    assert!(missing.is_empty(), "not in the log: {missing:?}");
}

#[test]
fn omit_managed_fields_leaves_them_out_of_the_recorded_objects() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("audit.log");
    let s = Server::start_audited(
        tmp.path(),
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nomitStages: [RequestReceived]\nrules:\n- level: RequestResponse\n  resources: [{group: \"\", resources: [configmaps]}]\n",
        &log,
    );
    let body = r#"{"metadata":{"name":"managed","managedFields":[{"manager":"kubectl","operation":"Update","apiVersion":"v1"}]},"data":{"a":"1"}}"#;
    let (code, out) = s.admin_curl(
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ],
        "/api/v1/namespaces/default/configmaps",
    );
    assert_eq!(code, 201, "{out}");
    let mut recorded = Value::Null;
    let found = eventually(Duration::from_secs(10), || {
        let all = audit_events(&log);
        match find(&all, |e| {
            is(e, "create", "configmaps", None, "kubernetes-admin")
        }) {
            Some(e) => {
                recorded = e.clone();
                true
            }
            None => false,
        }
    });
    assert!(found, "the create is recorded");
    assert_eq!(recorded["requestObject"]["data"]["a"], "1", "{recorded}");
    assert!(
        recorded["requestObject"]["metadata"]
            .get("managedFields")
            .is_none(),
        "{recorded}"
    );
    assert!(
        recorded["responseObject"]["metadata"]
            .get("managedFields")
            .is_none(),
        "{recorded}"
    );
}

/// A joining node asks no more of the API server than it must: with its bootstrap token it
/// creates its CSR and watches it from the version the create answered with, without the
/// list a watch would otherwise start from.
#[test]
fn a_join_creates_its_csr_and_watches_it_without_a_list() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("audit.log");
    let s = Server::start_audited(tmp.path(), POLICY, &log);
    let boot_user = format!("system:bootstrap:{}", &s.token()[..6]);
    let mut args = common::node::join_args(&s);
    args.extend(["--node-name", "n1", "--dir"].map(String::from));
    args.push(tmp.path().join("n1").display().to_string());
    let out = common::node::join(&args, &[]);
    assert!(out.status.success(), "{}", common::stderr(&out));

    // Each request once (a watch is recorded when it starts and when it ends), in order.
    let csr_requests = || {
        let mut seen = std::collections::HashSet::new();
        audit_events(&log)
            .into_iter()
            .filter(|e| {
                e["user"]["username"] == boot_user.as_str()
                    && e["objectRef"]["resource"] == "certificatesigningrequests"
                    && seen.insert(e["auditID"].as_str().unwrap_or_default().to_owned())
            })
            .map(|e| e["verb"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(30), || csr_requests()
            .iter()
            .any(|v| v == "watch")),
        "the node's watch is recorded: {:?}",
        csr_requests()
    );
    assert_eq!(csr_requests(), ["create", "watch"]);
}
