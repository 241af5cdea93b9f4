//! What kubectl and informers rely on beyond the wire format, each seen wrong once with
//! the real kubectl or curl: a strategic merge that follows Kubernetes' patch tags (a list
//! without a strategy is replaced), dry-run answers that carry the object's version,
//! `generation` only where Kubernetes sets it, lists at an exact version (a namespace's
//! deletion is `namespaces.rs`'), ConfigMaps and Secrets made `immutable` kept so,
//! every object's labels, annotations and finalizers held to Kubernetes' rules, and a
//! deletion held by finalizers until they are gone.

mod common;

use std::time::Duration;

use common::{Server, as_admin, eventually, kubectls, ok, refused, stderr, stdout};

fn apply(s: &Server, k: &str, manifest: &str) -> String {
    let admin = s.kubeconfig();
    ok(
        s.kubectl_as(k, &admin, &["apply", "-f", "-"], Some(manifest)),
        &format!("{k}: apply"),
    )
}

#[test]
fn kubectl_taint_removal_removes_the_taint_while_others_remain() {
    // Seen before the fix: `kubectl taint node X k1-` printed `untainted` and the taint
    // stayed — the strategic merge merged `spec.taints` by key, while Kubernetes' NodeSpec
    // gives that list no patch strategy: a patch replaces it whole.
    let s = Server::start();
    for (i, k) in kubectls().iter().enumerate() {
        let node = format!("tainted-{i}");
        apply(
            &s,
            k,
            &format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: {node}\nspec:\n  taints:\n  - key: k1\n    value: v1\n    effect: NoSchedule\n  - key: k2\n    value: v2\n    effect: NoExecute\n"
            ),
        );
        let out = ok(
            s.kubectl(k, &["taint", "node", &node, "k1-"]),
            &format!("{k}: taint k1-"),
        );
        assert!(out.contains("untainted"), "{out}");
        let taints = ok(
            s.kubectl(
                k,
                &["get", "node", &node, "-o", "jsonpath={.spec.taints[*].key}"],
            ),
            &format!("{k}: get taints"),
        );
        // (The node lifecycle's own taints, not-ready from TaintNodesByCondition, aside.)
        let own = |taints: &str| {
            let keys = taints.split_whitespace();
            keys.filter(|t| !t.starts_with("node.kubernetes.io/"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(own(&taints), "k2", "{k}");
        let out = ok(
            s.kubectl(k, &["taint", "node", &node, "k3=v3:PreferNoSchedule"]),
            &format!("{k}: taint k3"),
        );
        assert!(out.contains("tainted"), "{out}");
        let taints = ok(
            s.kubectl(
                k,
                &["get", "node", &node, "-o", "jsonpath={.spec.taints[*].key}"],
            ),
            &format!("{k}: get taints"),
        );
        // kubectl puts a new taint first and sends the whole list.
        assert_eq!(own(&taints), "k3 k2", "{k}");
    }
}

#[test]
fn kubectl_diff_shows_only_what_changes() {
    // Seen before the fix: every diff had a spurious `- resourceVersion` line — the dry-run
    // PATCH answered without the object's resourceVersion.
    let s = Server::start();
    for (i, k) in kubectls().iter().enumerate() {
        let name = format!("diffed-{i}");
        let manifest = |value: &str| {
            format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n  a: \"{value}\"\n"
            )
        };
        apply(&s, k, &manifest("1"));
        let admin = s.kubeconfig();
        let out = s.kubectl_as(k, &admin, &["diff", "-f", "-"], Some(&manifest("2")));
        let diff = stdout(&out);
        assert_eq!(out.status.code(), Some(1), "{k}: a difference: {diff}");
        assert!(
            diff.contains("-  a: \"1\"") && diff.contains("+  a: \"2\""),
            "{k}: {diff}"
        );
        assert!(!diff.contains("resourceVersion"), "{k}: {diff}");
        assert!(!diff.contains("generation"), "{k}: {diff}");
        let out = s.kubectl_as(k, &admin, &["diff", "-f", "-"], Some(&manifest("1")));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{k}: no difference: {}",
            stdout(&out)
        );
    }
}

#[test]
fn kinds_kubernetes_gives_no_generation_have_none() {
    // Seen before the fix: ConfigMaps, Secrets, Namespaces and CSRs carried
    // `metadata.generation`, which kube-apiserver sets only on kinds that count changes to
    // their spec.
    let s = Server::start();
    let k = "kubectl";
    apply(
        &s,
        k,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: g\n  namespace: default\ndata:\n  a: \"1\"\n",
    );
    ok(
        s.kubectl(
            k,
            &["create", "secret", "generic", "g", "--from-literal=a=b"],
        ),
        "create secret",
    );
    ok(
        s.kubectl(k, &["create", "namespace", "g"]),
        "create namespace",
    );
    ok(
        s.kubectl(
            k,
            &["patch", "configmap", "g", "-p", r#"{"data":{"a":"2"}}"#],
        ),
        "patch",
    );
    for what in [
        "configmap/g",
        "secret/g",
        "namespace/g",
        "namespace/default",
    ] {
        let json = ok(s.kubectl(k, &["get", what, "-o", "json"]), what);
        let obj: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(obj["metadata"].get("generation"), None, "{what}: {json}");
    }
}

#[test]
fn a_list_at_an_exact_version_is_that_state_never_the_present() {
    // Seen before the fix: `?resourceVersion=N&resourceVersionMatch=Exact` after later
    // writes answered with the present state (and a newer resourceVersion).
    let s = Server::start();
    let create = |name: &str| {
        let body = format!(r#"{{"metadata":{{"name":"{name}"}},"data":{{"v":"1"}}}}"#);
        s.admin_create("/api/v1/namespaces/default/configmaps", &body);
    };
    create("before");
    let (code, list) = s.admin_curl(&[], "/api/v1/namespaces/default/configmaps");
    assert_eq!(code, 200, "{list}");
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    let rv = list["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned();
    create("after");
    let (code, out) = s.admin_curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/merge-patch+json",
            "--data-binary",
            r#"{"data":{"v":"2"}}"#,
        ],
        "/api/v1/namespaces/default/configmaps/before",
    );
    assert_eq!(code, 200, "{out}");
    let (code, body) = s.admin_curl(
        &[],
        &format!(
            "/api/v1/namespaces/default/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact"
        ),
    );
    assert_eq!(code, 200, "{body}");
    let exact: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(exact["metadata"]["resourceVersion"], rv.as_str(), "{body}");
    let items = exact["items"].as_array().expect("items");
    let names: Vec<&str> = items
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str())
        .collect();
    assert_eq!(names, ["before"], "{body}");
    assert_eq!(
        items[0]["data"]["v"], "1",
        "the object as it was at {rv}: {body}"
    );
    // Paging at that version keeps to it.
    let (code, body) = s.admin_curl(
        &[],
        &format!("/api/v1/namespaces/default/configmaps?resourceVersion={rv}&resourceVersionMatch=Exact&limit=1"),
    );
    assert_eq!(code, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(page["metadata"]["resourceVersion"], rv.as_str(), "{body}");
    // A version older than the history kept is 410 Gone, never the present.
    let (code, body) = s.admin_curl(
        &[],
        "/api/v1/namespaces/default/configmaps?resourceVersion=1&resourceVersionMatch=Exact",
    );
    assert!(code == 410 || code == 200, "{body}");
    if code == 200 {
        let old: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(old["metadata"]["resourceVersion"], "1", "{body}");
    }
}

/// Only a DELETE begins a namespace's deletion, as in kube-apiserver: a status update that
/// marks a live namespace Terminating is refused (`ValidateNamespaceStatusUpdate`), and a
/// `deletionTimestamp` sent in an update is not kept (`rest.BeforeUpdate`). Seen before:
/// `kubectl patch ns --subresource=status` marked a namespace Terminating, after which it
/// took no new content, and the next start deleted it with all it held as an interrupted
/// deletion.
/// A ConfigMap or Secret made `immutable` keeps its data and stays immutable, as kube-apiserver
/// keeps it (`ValidateConfigMapUpdate`, `ValidateSecretUpdate`); a ConfigMap's keys must be
/// able to name a file. Seen before: a ConfigMap's data changed and its `immutable` was unset
/// freely, and a Secret's `immutable` could be unset.
#[test]
fn immutable_configmaps_and_secrets_stay_as_they_are() {
    let s = Server::start();
    let kubectl = |args: &[&str], stdin: Option<&str>| as_admin(&s, args, stdin);
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settled\n  namespace: default\nimmutable: true\ndata:\n  a: b\n";
    ok(kubectl(&["create", "-f", "-"], Some(manifest)), "create cm");
    let patch =
        |what: &'static str, body: &'static str| ["patch", what, "--type=merge", "-p", body];
    let forbidden =
        |field: &str| format!("{field}: Forbidden: field is immutable when `immutable` is set");
    for (what, body, field) in [
        ("configmap/settled", r#"{"data":{"a":"c"}}"#, "data"),
        (
            "configmap/settled",
            r#"{"binaryData":{"x":"AA=="}}"#,
            "binaryData",
        ),
        ("configmap/settled", r#"{"immutable":false}"#, "immutable"),
    ] {
        refused(&s, &patch(what, body), None, &forbidden(field));
    }
    let secret = [
        "create",
        "secret",
        "generic",
        "sealed",
        "--from-literal=a=b",
    ];
    ok(kubectl(&secret, None), "create secret");
    ok(
        kubectl(&patch("secret/sealed", r#"{"immutable":true}"#), None),
        "seal",
    );
    let unseal = patch("secret/sealed", r#"{"immutable":false}"#);
    refused(&s, &unseal, None, &forbidden("immutable"));
    let bad_key = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: odd\n  namespace: default\ndata:\n  a b: c\n";
    refused(
        &s,
        &["create", "-f", "-"],
        Some(bad_key),
        "data[a b]: Invalid value: \"a b\": a valid config key",
    );
}

/// Each built-in type of Secret holds what it must, and a ConfigMap's or a Secret's values
/// are 1 MiB at most, as `ValidateSecret` and `ValidateConfigMap` have them. Seen before: a
/// `kubernetes.io/tls` Secret without `tls.crt` or `tls.key`, a service account token
/// naming no service account, and a Secret and a ConfigMap of 1.2 MB were all stored.
#[test]
fn secrets_hold_what_their_type_needs_and_data_is_bounded() {
    let s = Server::start();
    for (ty, want) in [
        (
            "kubernetes.io/tls",
            "data[tls.crt]: Required value, data[tls.key]: Required value",
        ),
        (
            "kubernetes.io/service-account-token",
            "metadata.annotations[kubernetes.io/service-account.name]: Required value",
        ),
        (
            "kubernetes.io/basic-auth",
            "data[username]: Required value, data[password]: Required value",
        ),
        (
            "kubernetes.io/dockerconfigjson",
            "data[.dockerconfigjson]: Required value",
        ),
    ] {
        let args = [
            "create",
            "secret",
            "generic",
            "typed",
            "--type",
            ty,
            "--from-literal=a=b",
        ];
        refused(&s, &args, None, want);
    }
    let args = [
        "create",
        "secret",
        "generic",
        "typed",
        "--type=kubernetes.io/basic-auth",
        "--from-literal=username=u",
    ];
    ok(
        s.kubectl("kubectl", &args),
        "a basic-auth Secret with a username",
    );
    let half = "a".repeat(600_000);
    for (kind, field, values) in [
        ("Secret", "data", "stringData"),
        ("ConfigMap", "[]", "data"),
    ] {
        let big = serde_json::json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"name": "big", "namespace": "default"},
            values: {"a": half, "b": half}});
        refused(
            &s,
            &["create", "-f", "-"],
            Some(&big.to_string()),
            &format!("{field}: Too long: may not be more than 1048576 bytes"),
        );
    }
}

/// Labels, annotations, finalizers and owner references follow apimachinery's
/// `ValidateObjectMeta` on every kind, on create and on update, and a refused write changes
/// nothing. Seen before: a ConfigMap took the label key `bad key`, the label value
/// `bad value!`, the annotation key `a/b/c`, the finalizer `bad finalizer` and an owner
/// reference without a uid; and then two controllers, an Event as owner, both `orphan` and
/// `foregroundDeletion`, the generation -1, and a `generateName` that names nothing.
#[test]
fn labels_annotations_and_finalizers_follow_kubernetes_rules() {
    let s = Server::start();
    let kubectl = |args: &[&str], stdin: Option<&str>| as_admin(&s, args, stdin);
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tagged\n  namespace: default\n  labels:\n    bad key: v\n";
    refused(
        &s,
        &["create", "-f", "-"],
        Some(manifest),
        r#"metadata.labels: Invalid value: "bad key": name part must consist of alphanumeric characters"#,
    );
    ok(
        kubectl(&["create", "configmap", "tagged"], None),
        "create cm",
    );
    for (patch, want) in [
        (
            r#"{"metadata":{"labels":{"k":"bad value!"}}}"#,
            r#"metadata.labels: Invalid value: "bad value!": a valid label must be an empty string"#,
        ),
        (
            r#"{"metadata":{"annotations":{"a/b/c":"v"}}}"#,
            r#"metadata.annotations: Invalid value: "a/b/c": a qualified name must consist"#,
        ),
        (
            r#"{"metadata":{"finalizers":["bad finalizer"]}}"#,
            r#"metadata.finalizers[0]: Invalid value: "bad finalizer": name is neither a standard finalizer name nor is it fully qualified"#,
        ),
        (
            r#"{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"n","uid":""}]}}"#,
            r#"metadata.ownerReferences.uid: Invalid value: "": uid must not be empty"#,
        ),
        (
            r#"{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Node","name":"a","uid":"1","controller":true},{"apiVersion":"v1","kind":"Node","name":"b","uid":"2","controller":true}]}}"#,
            r#"Only one reference can have Controller set to true. Found "true" in references for Node/a and Node/b"#,
        ),
        (
            r#"{"metadata":{"ownerReferences":[{"apiVersion":"v1","kind":"Event","name":"e","uid":"1"}]}}"#,
            r#"metadata.ownerReferences: Invalid value: v1.OwnerReference{APIVersion:"v1", Kind:"Event", Name:"e", UID:"1", Controller:(*bool)(nil), BlockOwnerDeletion:(*bool)(nil)}: /v1, Kind=Event is disallowed from being an owner"#,
        ),
    ] {
        let args = ["patch", "configmap", "tagged", "--type=merge", "-p", patch];
        refused(&s, &args, None, want);
    }
    for (meta, want) in [
        (
            "generateName: Bad_",
            r#"metadata.generateName: Invalid value: "Bad_": a lowercase RFC 1123 subdomain"#,
        ),
        (
            "finalizers: [orphan, foregroundDeletion]",
            r#"metadata.finalizers: Invalid value: []string{"orphan", "foregroundDeletion"}: finalizer orphan and foregroundDeletion cannot be both set"#,
        ),
        (
            "generation: -1",
            "metadata.generation: Invalid value: -1: must be greater than or equal to 0",
        ),
    ] {
        let manifest = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: born-bad\n  namespace: default\n  {meta}\n"
        );
        refused(&s, &["create", "-f", "-"], Some(&manifest), want);
    }
    let cm = ok(
        kubectl(&["get", "configmap", "tagged", "-o", "json"], None),
        "get",
    );
    let cm: serde_json::Value = serde_json::from_str(&cm).expect("JSON");
    for field in ["labels", "annotations", "finalizers", "ownerReferences"] {
        assert!(cm["metadata"].get(field).is_none(), "{cm}");
    }
    // An update may not change the uid: a replace of another object of the same name is
    // refused (seen before: a PUT naming another uid replaced the object).
    refused(
        &s,
        &[
            "patch",
            "configmap",
            "tagged",
            "--type=merge",
            "-p",
            r#"{"metadata":{"uid":"x"}}"#,
        ],
        None,
        r#"metadata.uid: Invalid value: "x": field is immutable"#,
    );
    let good = r#"{"metadata":{"labels":{"example.com/tier":"web_1"},"annotations":{"Example.com/Note":"any text!"}}}"#;
    ok(
        kubectl(
            &["patch", "configmap", "tagged", "--type=merge", "-p", good],
            None,
        ),
        "a valid label and annotation",
    );
}

/// An object with finalizers is not removed by a DELETE: it is marked as being deleted
/// (`deletionTimestamp`, grace period 0), takes no new finalizer, and goes with the update
/// that removes its last one; a namespace being deleted waits for what is in it, and goes
/// after it. Seen before: `kubectl delete` removed a ConfigMap holding the finalizer
/// `example.com/hold` at once, and a namespace with such a ConfigMap in it.
#[test]
fn finalizers_hold_a_deletion_until_they_are_gone() {
    let s = Server::start();
    let kubectl = |args: &[&str]| s.kubectl("kubectl", args);
    let get = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", "json"]);
        serde_json::from_str(&ok(kubectl(&all), "get")).expect("JSON")
    };
    let create_held = |name: &str, ns: &str| {
        let manifest = format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: {ns}\n  finalizers: [example.com/hold]\n"
        );
        let args = ["create", "-f", "-"];
        ok(as_admin(&s, &args, Some(&manifest)), "create held");
    };
    let release = |name: &str, ns: &str| {
        let args = [
            "patch",
            "configmap",
            name,
            "-n",
            ns,
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ];
        ok(kubectl(&args), "remove the finalizer");
    };
    let is_gone = |args: &[&str]| {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        let out = kubectl(&all);
        !out.status.success() && stderr(&out).contains("NotFound")
    };

    create_held("held", "default");
    ok(
        kubectl(&["delete", "configmap", "held", "--wait=false"]),
        "delete",
    );
    let cm = get(&["configmap", "held"]);
    assert!(cm["metadata"]["deletionTimestamp"].is_string(), "{cm}");
    assert_eq!(cm["metadata"]["deletionGracePeriodSeconds"], 0, "{cm}");
    let add = r#"[{"op":"add","path":"/metadata/finalizers/-","value":"example.com/more"}]"#;
    refused(
        &s,
        &["patch", "configmap", "held", "--type=json", "-p", add],
        None,
        r#"metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{"example.com/more"}"#,
    );
    ok(
        kubectl(&["label", "configmap", "held", "still=here"]),
        "label",
    );
    ok(
        kubectl(&["delete", "configmap", "held", "--wait=false"]),
        "delete again",
    );
    assert_eq!(
        get(&["configmap", "held"])["metadata"]["labels"]["still"],
        "here"
    );
    release("held", "default");
    assert!(
        is_gone(&["configmap", "held"]),
        "the last finalizer removed it"
    );

    ok(kubectl(&["create", "namespace", "holding"]), "create ns");
    create_held("inside", "holding");
    ok(
        kubectl(&["create", "configmap", "plain", "-n", "holding"]),
        "create plain",
    );
    ok(
        kubectl(&["delete", "namespace", "holding", "--wait=false"]),
        "delete ns",
    );
    assert_eq!(
        get(&["namespace", "holding"])["status"]["phase"],
        "Terminating"
    );
    assert!(is_gone(&["configmap", "plain", "-n", "holding"]));
    let inside = get(&["configmap", "inside", "-n", "holding"]);
    assert!(
        inside["metadata"]["deletionTimestamp"].is_string(),
        "{inside}"
    );
    refused(
        &s,
        &["create", "configmap", "late", "-n", "holding"],
        None,
        "because it is being terminated",
    );
    release("inside", "holding");
    assert!(
        eventually(Duration::from_secs(20), || is_gone(&[
            "namespace",
            "holding"
        ])),
        "the namespace went after what held it"
    );
}

#[test]
fn a_json_patch_with_an_unknown_operation_is_unprocessable_and_changes_nothing() {
    // Seen before the fix: 400 "the body of the request was not a valid patch", where
    // kube-apiserver reads each operation as it applies it and answers 422 "Unexpected
    // kind: frob".
    let s = Server::start();
    ok(
        s.kubectl(
            "kubectl",
            &["create", "configmap", "jp", "--from-literal=a=1"],
        ),
        "create",
    );
    let patch = r#"[{"op":"add","path":"/data/b","value":"2"},{"op":"frob","path":"/data/a"}]"#;
    refused(
        &s,
        &["patch", "configmap", "jp", "--type=json", "-p", patch],
        None,
        "Unexpected kind: frob",
    );
    let data = ok(
        s.kubectl(
            "kubectl",
            &["get", "configmap", "jp", "-o", "jsonpath={.data}"],
        ),
        "get",
    );
    assert_eq!(data, r#"{"a":"1"}"#);
}
