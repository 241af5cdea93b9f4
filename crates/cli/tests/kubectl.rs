//! The real kubectl (oldest and newest installed) against the real server: everything an
//! operator types in the API server issue, with what they would check.
#![allow(
    clippy::disallowed_methods,
    reason = "an integration test waits in real time on a real process"
)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Server, kubectls, ok, stderr, stdout};

#[test]
fn kubectl_drives_the_api_server() {
    let server = Server::start();
    for (i, k) in kubectls().iter().enumerate() {
        let ns = format!("demo{i}");
        scenario(&server, k, &ns);
    }
}

fn scenario(s: &Server, k: &str, ns: &str) {
    let what = |w: &str| format!("{k}: {w}");
    let version = ok(
        s.kubectl(k, &["get", "--raw", "/version"]),
        &what("get --raw /version"),
    );
    assert!(version.contains("\"gitVersion\""), "{version}");

    let out = ok(
        s.kubectl(k, &["create", "namespace", ns]),
        &what("create namespace"),
    );
    assert!(out.contains(&format!("namespace/{ns} created")), "{out}");
    let out = ok(
        s.kubectl(
            k,
            &["-n", ns, "create", "configmap", "x", "--from-literal=a=b"],
        ),
        &what("create configmap"),
    );
    assert!(out.contains("configmap/x created"), "{out}");

    let yaml = ok(
        s.kubectl(k, &["-n", ns, "get", "configmaps", "-o", "yaml"]),
        &what("get -o yaml"),
    );
    assert!(yaml.contains("a: b") && yaml.contains("name: x"), "{yaml}");
    let json = ok(
        s.kubectl(k, &["-n", ns, "get", "configmap", "x", "-o", "json"]),
        &what("get -o json"),
    );
    assert!(
        json.contains("\"a\": \"b\"") && json.contains("\"uid\""),
        "{json}"
    );
    let wide = ok(
        s.kubectl(k, &["-n", ns, "get", "configmaps", "-o", "wide"]),
        &what("get -o wide"),
    );
    assert!(
        wide.contains("NAME") && wide.contains("DATA") && wide.lines().any(|l| l.starts_with("x ")),
        "{wide}"
    );

    let roles = ok(
        s.kubectl(k, &["get", "clusterroles"]),
        &what("get clusterroles"),
    );
    assert!(
        roles.contains("system:node-bootstrapper") && roles.contains("CREATED AT"),
        "{roles}"
    );
    let can = ok(
        s.kubectl(
            k,
            &["auth", "can-i", "create", "certificatesigningrequests"],
        ),
        &what("auth can-i"),
    );
    assert_eq!(can.trim(), "yes");
    let whoami = s.kubectl(k, &["auth", "whoami"]);
    let whoami = if whoami.status.success() {
        whoami
    } else {
        s.kubectl(k, &["alpha", "auth", "whoami"])
    };
    let whoami = ok(whoami, &what("auth whoami"));
    assert!(
        whoami.contains("kubernetes-admin") && whoami.contains("system:masters"),
        "{whoami}"
    );

    // apply -f: create, then change.
    let manifest = |v: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: {ns}\ndata:\n  key: {v}\n"
        )
    };
    let out = ok(
        s.kubectl_as(
            k,
            &s.kubeconfig(),
            &["apply", "-f", "-"],
            Some(&manifest("one")),
        ),
        &what("apply (create)"),
    );
    assert!(out.contains("configmap/applied created"), "{out}");
    let out = ok(
        s.kubectl_as(
            k,
            &s.kubeconfig(),
            &["apply", "-f", "-"],
            Some(&manifest("two")),
        ),
        &what("apply (change)"),
    );
    assert!(out.contains("configmap/applied configured"), "{out}");
    let val = ok(
        s.kubectl(
            k,
            &[
                "-n",
                ns,
                "get",
                "configmap",
                "applied",
                "-o",
                "jsonpath={.data.key}",
            ],
        ),
        &what("jsonpath"),
    );
    assert_eq!(val, "two");

    let out = ok(
        s.kubectl(k, &["-n", ns, "label", "configmap", "x", "env=prod"]),
        &what("label"),
    );
    assert!(out.contains("configmap/x labeled"), "{out}");
    let sel = ok(
        s.kubectl(
            k,
            &[
                "-n",
                ns,
                "get",
                "configmaps",
                "-l",
                "env=prod",
                "-o",
                "name",
            ],
        ),
        &what("get -l"),
    );
    assert_eq!(sel.trim(), "configmap/x");

    let explain = ok(
        s.kubectl(k, &["explain", "csr.spec"]),
        &what("explain csr.spec"),
    );
    assert!(
        explain.contains("KIND:")
            && explain.contains("CertificateSigningRequest")
            && explain.contains("signerName"),
        "{explain}"
    );

    csr_approve_and_deny(s, k, ns);
    watch_sees_create_update_delete(s, k, ns);
    stale_update_conflicts(s, k, ns);

    let out = ok(
        s.kubectl(k, &["-n", ns, "delete", "configmap", "x"]),
        &what("delete"),
    );
    assert!(out.contains("configmap \"x\" deleted"), "{out}");
    let gone = s.kubectl(k, &["-n", ns, "get", "configmap", "x"]);
    assert!(
        !gone.status.success() && stderr(&gone).contains("NotFound"),
        "{}",
        stderr(&gone)
    );

    let secrets = ok(
        s.kubectl(k, &["-n", "kube-system", "get", "secrets"]),
        &what("get secrets"),
    );
    assert!(
        secrets.contains("TYPE") && secrets.contains("bootstrap.kubernetes.io/token"),
        "{secrets}"
    );

    let out = ok(
        s.kubectl(k, &["delete", "namespace", ns]),
        &what("delete namespace"),
    );
    assert!(
        out.contains(&format!("namespace \"{ns}\" deleted")),
        "{out}"
    );
    let left = ok(
        s.kubectl(k, &["get", "configmaps", "-A", "-o", "name"]),
        &what("get -A"),
    );
    assert!(
        !left.contains("configmap/applied"),
        "a deleted namespace's objects are gone: {left}"
    );
}

fn watch_sees_create_update_delete(s: &Server, k: &str, ns: &str) {
    let mut child = Command::new(k)
        .args(["-n", ns, "get", "configmaps", "-w", "--output-watch-events"])
        .arg(format!(
            "--cache-dir={}",
            s.dir.join("kubectl-cache").display()
        ))
        .env("KUBECONFIG", s.kubeconfig())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // Wait for the initial list (x and applied exist) before changing anything.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let second = |l: &str| l.split_whitespace().nth(1).unwrap_or_default().to_owned();
    while Instant::now() < deadline && !seen.iter().any(|l: &String| second(l) == "x") {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    ok(
        s.kubectl(
            k,
            &["-n", ns, "create", "configmap", "w1", "--from-literal=a=1"],
        ),
        "create w1",
    );
    ok(
        s.kubectl(k, &["-n", ns, "label", "configmap", "w1", "step=2"]),
        "label w1",
    );
    ok(
        s.kubectl(k, &["-n", ns, "delete", "configmap", "w1"]),
        "delete w1",
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && !seen
            .iter()
            .any(|l| l.starts_with("DELETED") && second(l) == "w1")
    {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(l);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let w1: Vec<String> = seen
        .iter()
        .filter(|l| second(l) == "w1")
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        w1,
        ["ADDED", "MODIFIED", "DELETED"],
        "{k}: watch events: {seen:?}"
    );
}

fn stale_update_conflicts(s: &Server, k: &str, ns: &str) {
    let json = ok(
        s.kubectl(k, &["-n", ns, "get", "configmap", "applied", "-o", "json"]),
        "get for replace",
    );
    let first = json.replace("\"two\"", "\"three\"");
    let out = ok(
        s.kubectl_as(k, &s.kubeconfig(), &["replace", "-f", "-"], Some(&first)),
        "replace",
    );
    assert!(out.contains("replaced"), "{out}");
    let stale = json.replace("\"two\"", "\"four\"");
    let out = s.kubectl_as(k, &s.kubeconfig(), &["replace", "-f", "-"], Some(&stale));
    assert!(
        !out.status.success(),
        "a stale replace must fail: {}",
        stdout(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("Conflict") || err.contains("the object has been modified"),
        "{k}: {err}"
    );
}

fn csr_manifest(s: &Server, name: &str) -> String {
    let dir = s.dir.join(format!("csr-{name}"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    use base64::Engine;
    let request = base64::engine::general_purpose::STANDARD.encode(common::csr_pem(
        &dir,
        "r",
        &format!("/CN={name}"),
    ));
    format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\nspec:\n  request: {request}\n  signerName: kubernetes.io/kube-apiserver-client\n  expirationSeconds: 86400\n  usages:\n  - client auth\n"
    )
}

fn csr_approve_and_deny(s: &Server, k: &str, ns: &str) {
    let (a, d) = (format!("{ns}-approve"), format!("{ns}-deny"));
    for name in [&a, &d] {
        let out = ok(
            s.kubectl_as(
                k,
                &s.kubeconfig(),
                &["create", "-f", "-"],
                Some(&csr_manifest(s, name)),
            ),
            "create csr",
        );
        assert!(
            out.contains(&format!(
                "certificatesigningrequest.certificates.k8s.io/{name} created"
            )),
            "{out}"
        );
    }
    let table = ok(s.kubectl(k, &["get", "csr"]), "get csr");
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "AGE",
            "SIGNERNAME",
            "REQUESTOR",
            "REQUESTEDDURATION",
            "CONDITION"
        ],
        "{table}"
    );
    let row = table.lines().find(|l| l.starts_with(&a)).expect("row");
    assert!(
        row.contains("kubernetes-admin")
            && row.contains("24h")
            && row.trim_end().ends_with("Pending"),
        "{row}"
    );
    let out = ok(
        s.kubectl(k, &["certificate", "approve", &a]),
        "certificate approve",
    );
    assert!(
        out.contains(&format!(
            "certificatesigningrequest.certificates.k8s.io/{a} approved"
        )),
        "{out}"
    );
    let out = ok(
        s.kubectl(k, &["certificate", "deny", &d]),
        "certificate deny",
    );
    assert!(
        out.contains(&format!(
            "certificatesigningrequest.certificates.k8s.io/{d} denied"
        )),
        "{out}"
    );
    let table = ok(s.kubectl(k, &["get", "csr"]), "get csr");
    let cond = |n: &str| {
        table
            .lines()
            .find(|l| l.starts_with(n))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(cond(&a).starts_with("Approved"), "{table}");
    assert_eq!(cond(&d), "Denied", "{table}");
    let reason = ok(
        s.kubectl(
            k,
            &[
                "get",
                "csr",
                &a,
                "-o",
                "jsonpath={.status.conditions[0].reason}",
            ],
        ),
        "jsonpath",
    );
    assert_eq!(reason, "KubectlApprove");
    ok(s.kubectl(k, &["delete", "csr", &a, &d]), "delete csrs");
}

/// `kubectl get -l` and `--field-selector` read as kube-apiserver reads them: set-based and
/// numeric requirements select, and what apimachinery's parsers refuse is a 400 in their
/// words. Seen before: `-l 'a=b=c'`, `-l 'a=b c'` and `--field-selector
/// metadata.name=a=b` answered "No resources found", and `-l 'n>2'` selected nothing.
/// `limit` and `timeoutSeconds` are integers or a 400, as apimachinery decodes them.
#[test]
fn label_and_field_selectors_read_as_kubernetes_reads_them() {
    let s = Server::start();
    let kubectl = |args: &[&str]| s.kubectl("kubectl", args);
    for (name, labels) in [("one", "n=1,app=web"), ("three", "n=3,app=db")] {
        ok(kubectl(&["create", "configmap", name]), "create");
        let mut args = vec!["label", "configmap", name];
        args.extend(labels.split(','));
        ok(kubectl(&args), "label");
    }
    let names = |selector: &[&str]| {
        let mut args = vec!["get", "configmaps", "-o", "name"];
        args.extend_from_slice(selector);
        ok(kubectl(&args), "get")
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&["-l", "n>2"]), ["configmap/three"]);
    assert_eq!(names(&["-l", "n<2,app in (web, db)"]), ["configmap/one"]);
    assert_eq!(names(&["-l", "app notin (web),n"]), ["configmap/three"]);
    assert_eq!(
        names(&[
            "--field-selector",
            r"metadata.name!=one,metadata.name!=a\,b"
        ]),
        ["configmap/three"]
    );
    for (flag, selector, message) in [
        ("-l", "a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("-l", "a=b c", "found 'c', expected: ',' or 'end of string'"),
        (
            "-l",
            "a gt 1",
            "unable to parse requirement: found 'gt', expected: in, notin, =, ==, !=, gt, lt",
        ),
        (
            "-l",
            "a>x",
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "--field-selector",
            "metadata.name=a=b",
            "invalid field selector: unescaped character in value: 61",
        ),
    ] {
        let out = kubectl(&["get", "configmaps", flag, selector]);
        assert!(!out.status.success(), "{selector}: {}", stdout(&out));
        let err = stderr(&out);
        assert!(
            err.contains("BadRequest") && err.contains(message),
            "{selector}: {err}"
        );
    }
    // A list's numbers decode as kube-apiserver decodes them. Seen before: `limit=abc` was
    // a list of everything and `timeoutSeconds=abc` a watch of the default length.
    for query in ["limit=abc", "watch=true&timeoutSeconds=abc"] {
        let path = format!("/api/v1/namespaces/default/configmaps?{query}");
        let out = kubectl(&["get", "--raw", &path]);
        assert!(!out.status.success(), "{query}: {}", stdout(&out));
        let err = stderr(&out);
        let message = "strconv.ParseInt: parsing \"abc\": invalid syntax";
        assert!(err.contains(message), "{query}: {err}");
    }
}

/// Field selectors name each kind's own fields, read as kube-apiserver reads its typed
/// objects: an unset field is its zero value, a core/v1 Event's `source` falls back to
/// its reporting component, and a cluster-scoped kind with a list of its own has no
/// `metadata.namespace`. Seen before: `spec.unschedulable=false` selected no Node that
/// left the field out, `source=` read nothing but `source`'s object, `spec.hostNetwork`
/// was refused, and `kubectl get csr --field-selector metadata.namespace=x` was a list.
#[test]
fn field_selectors_read_each_kinds_fields_as_kubernetes_reads_them() {
    let s = Server::start();
    let kubectl =
        |args: &[&str], stdin: Option<&str>| s.kubectl_as("kubectl", &s.kubeconfig(), args, stdin);
    let objects = "apiVersion: v1\nkind: Node\nmetadata: {name: ready}\n---\n\
        apiVersion: v1\nkind: Node\nmetadata: {name: cordoned}\nspec: {unschedulable: true}\n---\n\
        apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default}\n\
        spec: {containers: [{name: web, image: nginx}]}\n---\n\
        apiVersion: v1\nkind: Event\nmetadata: {name: e1, namespace: default}\n\
        involvedObject: {kind: Node, name: ready}\nreason: Started\ntype: Normal\n\
        eventTime: '2026-12-07T00:00:00.000000Z'\nreportingComponent: example.com/ctl\n\
        reportingInstance: ctl-1\naction: Start\n";
    ok(kubectl(&["create", "-f", "-"], Some(objects)), "create");
    let names = |kind: &str, selector: &str| {
        let args = [
            "get",
            kind,
            "-A",
            "-o",
            "name",
            "--field-selector",
            selector,
        ];
        ok(kubectl(&args, None), selector)
            .split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let nodes = names("nodes", "spec.unschedulable=false");
    assert!(nodes.contains(&"node/ready".to_owned()), "{nodes:?}");
    assert!(!nodes.contains(&"node/cordoned".to_owned()), "{nodes:?}");
    assert_eq!(names("nodes", "spec.unschedulable=true"), ["node/cordoned"]);
    assert_eq!(names("pods", "spec.hostNetwork=false"), ["pod/web"]);
    assert_eq!(names("events", "source=example.com/ctl"), ["event/e1"]);
    for kind in ["csr", "nodes", "namespaces"] {
        let out = kubectl(
            &["get", kind, "--field-selector", "metadata.namespace=x"],
            None,
        );
        let err = stderr(&out);
        assert!(!out.status.success(), "{kind}: {}", stdout(&out));
        assert!(
            err.contains("field label not supported: metadata.namespace"),
            "{kind}: {err}"
        );
    }
    // A kind with no list of its own takes apimachinery's: a cluster-scoped object has no
    // namespace, so it is selected by an empty one.
    let roles = names("clusterroles", "metadata.namespace=,metadata.name=admin");
    assert_eq!(roles, ["clusterrole.rbac.authorization.k8s.io/admin"]);
}

/// `kubectl get all` lists the pods and services, the resources kube-apiserver puts in the
/// `all` category of its discovery. Seen before: "the server doesn't have a resource type
/// \"all\"", as no resource named a category.
#[test]
fn kubectl_get_all_lists_pods_and_services() {
    let s = Server::start();
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default}\nspec:\n  containers: [{name: web, image: nginx}]\n";
    let args = ["create", "-f", "-"];
    ok(
        s.kubectl_as("kubectl", &s.kubeconfig(), &args, Some(pod)),
        "create pod",
    );
    for k in kubectls() {
        let out = ok(
            s.kubectl(&k, &["get", "all", "-o", "name"]),
            &format!("{k}: get all"),
        );
        let mut names: Vec<&str> = out.lines().collect();
        names.sort_unstable();
        assert_eq!(names, ["pod/web", "service/kubernetes"], "{k}");
    }
}
