//! Who may do what, as an operator checks it with the oldest and newest kubectl and curl.
//! Impersonation (`--as`, `--as-group`, `--as-uid`; the `Impersonate-*` headers): the
//! request acts as the impersonated user only when the requester may `impersonate` each
//! part, a refusal is kube-apiserver's 403, and the audit log says who impersonated whom.
//! Rule listing (`kubectl auth can-i --list`): what RBAC gives the user, and for a node a
//! warning that the list is incomplete.

mod common;

use common::{Server, audit_events, client_cert, eventually, kubectls, ok, stderr, stdout};
use serde_json::Value;
use std::time::Duration;

const POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: Metadata\n";

/// `kubectl auth whoami -o json` as the admin, with `extra` flags: the user it reports.
fn whoami(s: &Server, kubectl: &str, extra: &[&str]) -> Value {
    let mut args = vec!["auth", "whoami", "-o", "json"];
    args.extend(extra);
    let out = ok(s.kubectl(kubectl, &args), "kubectl auth whoami");
    let v: Value = serde_json::from_str(&out).expect("SelfSubjectReview JSON");
    v["status"]["userInfo"].clone()
}

#[test]
fn kubectl_as_acts_as_the_impersonated_user() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let log = tmp.path().join("audit.log");
    let s = Server::start_audited(tmp.path(), POLICY, &log);
    for kubectl in kubectls() {
        let k = kubectl.as_str();
        let jane = whoami(&s, k, &["--as=jane"]);
        assert_eq!(jane["username"], "jane", "{k}: {jane}");
        assert_eq!(
            jane["groups"],
            serde_json::json!(["system:authenticated"]),
            "{k}"
        );
        let dev = whoami(&s, k, &["--as=jane", "--as-group=dev", "--as-uid=42"]);
        assert_eq!(
            dev["groups"],
            serde_json::json!(["dev", "system:authenticated"]),
            "{k}"
        );
        assert_eq!(dev["uid"], "42", "{k}");
        let sa = whoami(&s, k, &["--as=system:serviceaccount:kube-system:default"]);
        assert_eq!(
            sa["groups"],
            serde_json::json!([
                "system:serviceaccounts",
                "system:serviceaccounts:kube-system",
                "system:authenticated"
            ]),
            "{k}"
        );

        // What jane may do is what RBAC gives jane, not the administrator.
        let out = s.kubectl(k, &["--as=jane", "get", "nodes"]);
        assert!(!out.status.success(), "{k}: {}", stdout(&out));
        assert!(
            stderr(&out).contains(
                r#"User "jane" cannot list resource "nodes" in API group "" at the cluster scope"#
            ),
            "{k}: {}",
            stderr(&out)
        );
        let can = s.kubectl(k, &["--as=jane", "auth", "can-i", "list", "nodes"]);
        assert_eq!(stdout(&can).trim(), "no", "{k}: {}", stderr(&can));
        let node = [
            "--as=system:node:w1",
            "--as-group=system:nodes",
            "auth",
            "can-i",
        ];
        let can = s.kubectl(
            k,
            &[&node[..], &["get", "leases/w1", "-n", "kube-node-lease"]].concat(),
        );
        assert_eq!(stdout(&can).trim(), "yes", "{k}: {}", stderr(&can));
        let can = s.kubectl(k, &[&node[..], &["delete", "nodes/w2"]].concat());
        assert_eq!(stdout(&can).trim(), "no", "{k}: {}", stderr(&can));
    }

    // The audit log names the administrator as the user and jane as whom it acted as.
    let impersonated = |e: &Value| {
        e["stage"] == "ResponseComplete"
            && e["impersonatedUser"]["username"] == "jane"
            && e["user"]["username"] == "kubernetes-admin"
    };
    assert!(
        eventually(Duration::from_secs(10), || audit_events(&log)
            .iter()
            .any(impersonated)),
        "no audit event of the administrator acting as jane in {:?}",
        audit_events(&log)
    );
}

#[test]
fn impersonating_needs_the_impersonate_verb_on_each_part() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let bob = client_cert(
        dir.path(),
        "bob",
        "/CN=bob",
        &s.ca(),
        &s.dir.join("pki/ca.key"),
    );
    let node = client_cert(
        dir.path(),
        "w1",
        "/O=system:nodes/CN=system:node:w1",
        &s.ca(),
        &s.dir.join("pki/ca.key"),
    );
    let whoami = "/apis/authentication.k8s.io/v1/selfsubjectreviews";
    let review = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;
    let ask = |who: &[String], headers: &[&str]| -> (u16, Value) {
        let mut args: Vec<&str> = who.iter().map(String::as_str).collect();
        for h in headers {
            args.extend(["-H", h]);
        }
        args.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            review,
        ]);
        let (code, body) = s.curl(&args, whoami);
        (code, serde_json::from_str(&body).unwrap_or(Value::Null))
    };
    let refused = |who: &[String], headers: &[&str], message: &str| {
        let (code, status) = ask(who, headers);
        assert_eq!(code, 403, "{headers:?}: {status}");
        assert_eq!(status["reason"], "Forbidden", "{status}");
        assert_eq!(status["message"], message, "{headers:?}");
    };

    // Neither a user nor a node may impersonate by default.
    refused(
        &bob,
        &["Impersonate-User: jane"],
        r#"users "jane" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope"#,
    );
    refused(
        &node,
        &[
            "Impersonate-User: system:node:w2",
            "Impersonate-Group: system:nodes",
        ],
        r#"users "system:node:w2" is forbidden: User "system:node:w1" cannot impersonate resource "users" in API group "" at the cluster scope"#,
    );

    // bob may impersonate jane, and only jane: no other user, no group, no extra.
    let admin = |args: &[&str]| ok(s.kubectl("kubectl", args), "kubectl create");
    admin(&[
        "create",
        "clusterrole",
        "impersonate-jane",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=jane",
    ]);
    admin(&[
        "create",
        "clusterrolebinding",
        "bob-impersonates-jane",
        "--clusterrole=impersonate-jane",
        "--user=bob",
    ]);
    assert!(
        eventually(Duration::from_secs(10), || ask(
            &bob,
            &["Impersonate-User: jane"]
        )
        .0 == 201),
        "the binding never took effect"
    );
    let (_, review) = ask(&bob, &["Impersonate-User: jane"]);
    assert_eq!(review["status"]["userInfo"]["username"], "jane", "{review}");
    refused(
        &bob,
        &["Impersonate-User: joe"],
        r#"users "joe" is forbidden: User "bob" cannot impersonate resource "users" in API group "" at the cluster scope"#,
    );
    refused(
        &bob,
        &[
            "Impersonate-User: jane",
            "Impersonate-Group: system:masters",
        ],
        r#"groups "system:masters" is forbidden: User "bob" cannot impersonate resource "groups" in API group "" at the cluster scope"#,
    );
    refused(
        &bob,
        &["Impersonate-User: jane", "Impersonate-Extra-Scopes: view"],
        r#"userextras.authentication.k8s.io "view" is forbidden: User "bob" cannot impersonate resource "userextras/scopes" in API group "authentication.k8s.io" at the cluster scope"#,
    );
    refused(
        &bob,
        &["Impersonate-User: jane", "Impersonate-Uid: 7"],
        r#"uids.authentication.k8s.io "7" is forbidden: User "bob" cannot impersonate resource "uids" in API group "authentication.k8s.io" at the cluster scope"#,
    );

    // A group without a user is refused as kube-apiserver refuses it, whoever asks.
    let (code, status) = ask(&bob, &["Impersonate-Group: system:masters"]);
    assert_eq!(code, 500, "{status}");
    assert_eq!(status["reason"], "InternalError", "{status}");
    assert!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("without impersonating a user")),
        "{status}"
    );
}

#[test]
fn auth_can_i_list_shows_what_the_user_may_do() {
    let s = Server::start();
    let admin = |args: &[&str]| ok(s.kubectl("kubectl", args), "kubectl create");
    admin(&["create", "namespace", "team"]);
    admin(&[
        "create",
        "role",
        "cm-editor",
        "-n",
        "team",
        "--verb=update",
        "--resource=configmaps",
        "--resource-name=one",
    ]);
    admin(&[
        "create",
        "rolebinding",
        "jane-cm",
        "-n",
        "team",
        "--role=cm-editor",
        "--user=jane",
    ]);
    for kubectl in kubectls() {
        let k = kubectl.as_str();
        // The administrator holds cluster-admin through system:masters.
        let out = s.kubectl(k, &["auth", "can-i", "--list"]);
        let table = ok(out, "can-i --list");
        let star = table
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["*.*", "[]", "[]", "[*]"]);
        assert!(star, "{k}: {table}");

        // jane: what every authenticated user may do, and in team the configmap "one".
        let list = |ns: &str| {
            let out = s.kubectl(k, &["--as=jane", "auth", "can-i", "--list", "-n", ns]);
            assert!(out.status.success(), "{k}: {}", stderr(&out));
            assert!(
                !stderr(&out).contains("incomplete"),
                "{k}: {}",
                stderr(&out)
            );
            stdout(&out)
        };
        let team = list("team");
        assert!(
            team.lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["configmaps", "[]", "[one]", "[update]"]),
            "{k}: {team}"
        );
        assert!(
            team.contains("selfsubjectaccessreviews.authorization.k8s.io"),
            "{k}: {team}"
        );
        assert!(!list("default").contains("configmaps"), "{k}");

        // A node is told its list is incomplete, as the Node authorizer cannot list.
        let out = s.kubectl(
            k,
            &[
                "--as=system:node:w1",
                "--as-group=system:nodes",
                "auth",
                "can-i",
                "--list",
            ],
        );
        assert!(out.status.success(), "{k}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(
                "the list may be incomplete: node authorizer does not support user rule resolution"
            ),
            "{k}: {}",
            stderr(&out)
        );
    }

    // A review without a namespace is refused as kube-apiserver refuses it.
    let (code, body) = s.admin_curl(
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","spec":{}}"#,
        ],
        "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("no namespace on request"), "{body}");
}

#[test]
fn a_client_certificate_names_its_credential_as_kube_apiserver_names_it() {
    // Seen before the fix: no `extra`; kube-apiserver (CommonNameUserConversion) records the
    // certificate's SHA-256 as the credential id, which `kubectl auth whoami` shows.
    let s = Server::start();
    let (cert, _) = s.admin_cert_files();
    let der = std::process::Command::new("openssl")
        .args(["x509", "-outform", "DER", "-in"])
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(der.status.success());
    let digest = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().expect("stdin").write_all(&der.stdout)?;
            child.wait_with_output()
        })
        .expect("sha256sum");
    let hex = String::from_utf8_lossy(&digest.stdout)
        .split_whitespace()
        .next()
        .expect("a digest")
        .to_owned();
    let me = whoami(&s, "kubectl", &[]);
    assert_eq!(
        me["extra"]["authentication.kubernetes.io/credential-id"],
        serde_json::json!([format!("X509SHA256={hex}")]),
        "{me}"
    );
    let as_jane = whoami(&s, "kubectl", &["--as", "jane"]);
    assert!(
        as_jane["extra"].is_null(),
        "an impersonated user has only what it is given: {as_jane}"
    );
}
