//! A namespace's deletion as kube-apiserver runs it, with the real kubectl: begun by a
//! DELETE alone (a status update marking it Terminating is refused), held by its
//! `spec.finalizers` (`kubernetes` given on create and removed once its contents are gone,
//! the rest through the `finalize` subresource) until none is left.

mod common;

use std::time::Duration;

use common::{Server, as_admin, eventually, ok, refused, stderr};

#[test]
fn only_a_delete_begins_a_namespaces_deletion() {
    let s = Server::start();
    let kubectl = |args: &[&str]| s.kubectl("kubectl", args);
    ok(kubectl(&["create", "namespace", "kept"]), "create ns");
    refused(
        &s,
        &[
            "patch",
            "namespace",
            "kept",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Terminating"}}"#,
        ],
        None,
        r#"status.Phase: Invalid value: "Terminating": may only be 'Active' if `deletionTimestamp` is empty"#,
    );
    let manifest = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kept\n  deletionTimestamp: \"2026-01-01T00:00:00Z\"\n";
    ok(
        as_admin(&s, &["replace", "-f", "-"], Some(manifest)),
        "kubectl replace",
    );
    let ns: serde_json::Value = serde_json::from_str(&ok(
        kubectl(&["get", "namespace", "kept", "-o", "json"]),
        "get ns",
    ))
    .expect("JSON");
    assert!(ns["metadata"].get("deletionTimestamp").is_none(), "{ns}");
    assert_eq!(ns["status"]["phase"], "Active", "{ns}");
    ok(
        kubectl(&["create", "configmap", "more", "-n", "kept"]),
        "a create in the namespace",
    );
}

#[test]
fn a_namespaces_spec_finalizers_hold_its_deletion_until_finalize_removes_them() {
    // Seen before the fix: a namespace had no `spec.finalizers` (kube-apiserver gives it
    // `kubernetes`), an update changed them, one holding `example.com/x` went at once, and
    // `/finalize`, the usual cure for a namespace stuck Terminating, was 404.
    let s = Server::start();
    let kubectl = |args: &[&str]| s.kubectl("kubectl", args);
    let finalizers = |ns: &str| {
        let out = kubectl(&["get", "ns", ns, "-o", "jsonpath={.spec.finalizers}"]);
        ok(out, "get the finalizers")
    };
    ok(kubectl(&["create", "namespace", "plain"]), "create");
    assert_eq!(finalizers("plain"), r#"["kubernetes"]"#);
    let patch = r#"{"spec":{"finalizers":["example.com/x"]}}"#;
    ok(kubectl(&["patch", "ns", "plain", "-p", patch]), "patch");
    assert_eq!(
        finalizers("plain"),
        r#"["kubernetes"]"#,
        "changed only by finalize"
    );

    let held = "apiVersion: v1\nkind: Namespace\nmetadata: {name: held}\nspec: {finalizers: [kubernetes, example.com/x]}\n";
    ok(
        as_admin(&s, &["create", "-f", "-"], Some(held)),
        "create held",
    );
    ok(kubectl(&["delete", "ns", "held", "--wait=false"]), "delete");
    let phase = ok(
        kubectl(&["get", "ns", "held", "-o", "jsonpath={.status.phase}"]),
        "get",
    );
    assert_eq!(phase, "Terminating");
    assert_eq!(
        finalizers("held"),
        r#"["example.com/x"]"#,
        "kubernetes is done"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let body = |list: &str| {
        let path = dir.path().join("finalize.json");
        let ns = format!(
            r#"{{"apiVersion":"v1","kind":"Namespace","metadata":{{"name":"held"}},"spec":{{"finalizers":{list}}}}}"#
        );
        std::fs::write(&path, ns).expect("write");
        path
    };
    let finalize = |list: &str| {
        let path = body(list);
        let file = path.to_str().expect("utf-8");
        kubectl(&[
            "replace",
            "--raw",
            "/api/v1/namespaces/held/finalize",
            "-f",
            file,
        ])
    };
    let out = finalize(r#"["bogus"]"#);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"spec.finalizers[0]: Invalid value: "bogus": name is neither a standard finalizer name nor is it fully qualified"#),
        "{}",
        stderr(&out)
    );
    ok(finalize("[]"), "finalize");
    let gone = || {
        let out = kubectl(&["get", "ns", "held"]);
        !out.status.success() && stderr(&out).contains("NotFound")
    };
    assert!(
        eventually(Duration::from_secs(10), gone),
        "the namespace goes once its finalizers are gone"
    );
}

/// A namespace held by what is left in it says so in its conditions, as the namespace
/// deleter writes them, and `kubectl describe` shows them. Seen before: `status.conditions`
/// stayed empty, so nothing said why the namespace stayed Terminating.
#[test]
fn a_held_namespace_says_what_holds_it() {
    let s = Server::start();
    let kubectl = |args: &[&str]| s.kubectl("kubectl", args);
    ok(kubectl(&["create", "namespace", "held"]), "create ns");
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: held, finalizers: [example.com/block]}\n";
    ok(as_admin(&s, &["create", "-f", "-"], Some(cm)), "create cm");
    ok(
        kubectl(&["delete", "namespace", "held", "--wait=false"]),
        "delete ns",
    );
    let condition = |ty: &str| {
        let path = format!(
            "jsonpath={{.status.conditions[?(@.type==\"{ty}\")].status}}:{{.status.conditions[?(@.type==\"{ty}\")].message}}"
        );
        ok(
            kubectl(&["get", "namespace", "held", "-o", &path]),
            "conditions",
        )
    };
    assert!(
        eventually(Duration::from_secs(20), || condition(
            "NamespaceFinalizersRemaining"
        ) == "True:Some content in the namespace has finalizers remaining: example.com/block in 1 resource instances"),
        "{}",
        condition("NamespaceFinalizersRemaining")
    );
    assert_eq!(
        condition("NamespaceContentRemaining"),
        "True:Some resources are remaining: configmaps. has 1 resource instances"
    );
    assert_eq!(
        condition("NamespaceDeletionDiscoveryFailure"),
        "False:All resources successfully discovered"
    );
    let described = ok(kubectl(&["describe", "namespace", "held"]), "describe");
    assert!(
        described.contains("NamespaceFinalizersRemaining"),
        "{described}"
    );
    let release = r#"[{"op":"remove","path":"/metadata/finalizers"}]"#;
    ok(
        kubectl(&[
            "patch",
            "configmap",
            "c",
            "-n",
            "held",
            "--type=json",
            "-p",
            release,
        ]),
        "release",
    );
    assert!(
        eventually(Duration::from_secs(90), || !kubectl(&[
            "get",
            "namespace",
            "held"
        ])
        .status
        .success()),
        "the namespace goes once nothing holds it"
    );
}
