//! Server-side apply with the oldest and newest kubectl: `kubectl apply --server-side`
//! creates and updates an object and records its field manager in `managedFields`; an
//! apply that would change another manager's field is refused with kube-apiserver's 409
//! naming the manager and the field, and `--force-conflicts` takes it over; a field the
//! manager stops applying goes; `kubectl diff --server-side` shows what would change and
//! changes nothing; a Service's ports merge by port and protocol.

mod common;

use common::{Server, kubectls, ok, stderr, stdout};
use serde_json::Value;

fn apply(s: &Server, k: &str, manifest: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", "--server-side", "-f", "-"];
    args.extend_from_slice(extra);
    s.kubectl_as(k, &s.kubeconfig(), &args, Some(manifest))
}

fn get(s: &Server, k: &str, what: &str) -> Value {
    let out = ok(
        s.kubectl(k, &["get", what, "-o", "json", "--show-managed-fields"]),
        "get",
    );
    serde_json::from_str(&out).expect("JSON")
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let s = |f: &str| e[f].as_str().unwrap_or_default().to_owned();
            (s("manager"), s("operation"))
        })
        .collect()
}

/// The images of a Pod's containers, in order.
fn images(pod: &Value) -> Vec<&str> {
    let containers = pod["spec"]["containers"].as_array().expect("containers");
    containers
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect()
}

fn config_map(name: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\ndata:\n{data}"
    )
}

#[test]
fn apply_creates_updates_and_owns_fields() {
    let s = Server::start();
    for (i, k) in kubectls().iter().enumerate() {
        let k = k.as_str();
        let name = format!("app{i}");
        let manifest = config_map(&name, "  a: \"1\"\n  b: \"2\"\n");
        let out = ok(apply(&s, k, &manifest, &[]), "apply");
        assert!(
            out.contains(&format!("configmap/{name} serverside-applied")),
            "{k}: {out}"
        );
        let cm = get(&s, k, &format!("cm/{name}"));
        assert_eq!(cm["data"]["a"], "1", "{k}");
        assert_eq!(
            managers(&cm),
            [("kubectl".to_owned(), "Apply".to_owned())],
            "{k}"
        );
        assert_eq!(
            cm["metadata"]["managedFields"][0]["fieldsV1"],
            serde_json::json!({"f:data": {"f:a": {}, "f:b": {}}}),
            "{k}"
        );
        // The same configuration again writes nothing.
        ok(apply(&s, k, &manifest, &[]), "apply again");
        let again = get(&s, k, &format!("cm/{name}"));
        assert_eq!(
            again["metadata"]["resourceVersion"], cm["metadata"]["resourceVersion"],
            "{k}"
        );

        // Another manager may not change a's value...
        let other = config_map(&name, "  a: \"9\"\n");
        let refused = apply(&s, k, &other, &["--field-manager", "deployer"]);
        assert!(!refused.status.success(), "{k}");
        assert!(
            stderr(&refused)
                .contains("Apply failed with 1 conflict: conflict with \"kubectl\": .data.a"),
            "{k}: {}",
            stderr(&refused)
        );
        assert_eq!(
            get(&s, k, &format!("cm/{name}"))["data"]["a"],
            "1",
            "{k}: unchanged"
        );
        // ...unless it forces: then it owns a.
        ok(
            apply(
                &s,
                k,
                &other,
                &["--field-manager", "deployer", "--force-conflicts"],
            ),
            "forced",
        );
        let forced = get(&s, k, &format!("cm/{name}"));
        assert_eq!(forced["data"]["a"], "9", "{k}");
        assert!(
            managers(&forced).contains(&("deployer".into(), "Apply".into())),
            "{k}"
        );

        // kubectl stops applying b (it still applies a, now deployer's): b goes.
        let less = config_map(&name, "  c: \"3\"\n");
        ok(apply(&s, k, &less, &[]), "apply without b");
        let cm = get(&s, k, &format!("cm/{name}"));
        assert_eq!(cm["data"], serde_json::json!({"a": "9", "c": "3"}), "{k}");
    }
}

#[test]
fn updates_are_owned_too_and_diff_changes_nothing() {
    let s = Server::start();
    for (i, k) in kubectls().iter().enumerate() {
        let k = k.as_str();
        let name = format!("edited{i}");
        ok(
            s.kubectl(k, &["create", "configmap", &name, "--from-literal=a=1"]),
            "create",
        );
        ok(
            s.kubectl(
                k,
                &["patch", "configmap", &name, "-p", r#"{"data":{"a":"2"}}"#],
            ),
            "patch",
        );
        let cm = get(&s, k, &format!("cm/{name}"));
        let owners = managers(&cm);
        assert!(
            owners.contains(&("kubectl-create".into(), "Update".into())),
            "{k}: {owners:?}"
        );
        assert!(
            owners.contains(&("kubectl-patch".into(), "Update".into())),
            "{k}: {owners:?}"
        );
        let refused = apply(&s, k, &config_map(&name, "  a: \"3\"\n"), &[]);
        assert!(
            stderr(&refused).contains(
                "Apply failed with 1 conflict: conflict with \"kubectl-patch\" using v1: .data.a"
            ),
            "{k}: {}",
            stderr(&refused)
        );

        // diff --server-side: the change shown, nothing written.
        let before = cm["metadata"]["resourceVersion"].clone();
        let diff = s.kubectl_as(
            k,
            &s.kubeconfig(),
            &["diff", "--server-side", "--force-conflicts", "-f", "-"],
            Some(&config_map(&name, "  a: \"4\"\n")),
        );
        assert_eq!(
            diff.status.code(),
            Some(1),
            "{k}: differences found: {}",
            stderr(&diff)
        );
        assert!(
            stdout(&diff).contains("+  a: \"4\""),
            "{k}: {}",
            stdout(&diff)
        );
        let after = get(&s, k, &format!("cm/{name}"));
        assert_eq!(
            after["metadata"]["resourceVersion"], before,
            "{k}: a dry run"
        );
        assert_eq!(after["data"]["a"], "2", "{k}");
    }
}

#[test]
fn a_services_ports_merge_by_port_and_protocol() {
    let s = Server::start();
    let dns = "apiVersion: v1\nkind: Service\nmetadata: {name: dns, namespace: default}\nspec:\n  selector: {app: dns}\n  ports:\n  - {name: dns, port: 53, protocol: UDP}\n  - {name: dns-tcp, port: 53, protocol: TCP}\n";
    for k in kubectls() {
        ok(apply(&s, &k, dns, &[]), "apply");
        let svc = get(&s, &k, "svc/dns");
        let ports = svc["spec"]["ports"].as_array().expect("ports").len();
        assert_eq!(ports, 2, "{k}: {svc}");
        let fields = &svc["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:ports"];
        assert!(
            fields.get("k:{\"port\":53,\"protocol\":\"UDP\"}").is_some(),
            "{k}: {fields}"
        );
        // A second manager adds a port: the list merges, the first manager's ports stay.
        let metrics = "apiVersion: v1\nkind: Service\nmetadata: {name: dns, namespace: default}\nspec:\n  ports:\n  - {name: metrics, port: 9153}\n";
        ok(
            apply(&s, &k, metrics, &["--field-manager", "monitoring"]),
            "apply metrics",
        );
        let svc = get(&s, &k, "svc/dns");
        let names: Vec<&str> = svc["spec"]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(names, ["dns", "dns-tcp", "metrics"], "{k}");
        ok(s.kubectl(&k, &["delete", "svc", "dns"]), "delete");
    }
}

#[test]
fn an_apply_names_its_field_manager() {
    let s = Server::start();
    let (code, body) = s.admin_curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/apply-patch+yaml",
            "--data-binary",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n",
        ],
        "/api/v1/namespaces/default/configmaps/x",
    );
    assert_eq!(code, 422, "{body}");
    assert!(body.contains("PatchOptions.meta.k8s.io \\\"\\\" is invalid: fieldManager: Required value: is required for apply patch"), "{body}");
    let (code, body) = s.admin_curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/merge-patch+json",
            "--data-binary",
            "{}",
        ],
        "/api/v1/namespaces/default/configmaps/x?force=true",
    );
    assert_eq!(code, 422, "{body}");
    assert!(
        body.contains("force: Forbidden: may not be specified for non-apply patch"),
        "{body}"
    );
    // With a manager, an apply creates the object (201) and the curl user agent is not it.
    let (code, body) = s.admin_curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/apply-patch+yaml",
            "--data-binary",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {k: v}\n",
        ],
        "/api/v1/namespaces/default/configmaps/x?fieldManager=ci",
    );
    assert_eq!(code, 201, "{body}");
    let obj: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(obj["metadata"]["managedFields"][0]["manager"], "ci");
    // A write without fieldManager is the user agent's.
    let (code, body) = s.admin_curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/merge-patch+json",
            "--data-binary",
            r#"{"data":{"k":"w"}}"#,
        ],
        "/api/v1/namespaces/default/configmaps/x",
    );
    assert_eq!(code, 200, "{body}");
    let obj: Value = serde_json::from_str(&body).expect("JSON");
    let names: Vec<&str> = obj["metadata"]["managedFields"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["manager"].as_str())
        .collect();
    assert_eq!(names, ["curl"], "ci's only field was taken by curl's patch");
}

const POD: &str = "apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default}
spec:
  containers:
  - {name: app, image: nginx:1.27}
  - {name: sidecar, image: busybox:1.36}
";

#[test]
fn a_pods_containers_merge_by_name() {
    let s = Server::start();
    for k in kubectls() {
        ok(apply(&s, &k, POD, &[]), "apply the pod");
        // Another manager sets one container's image: only that container changes.
        let sidecar = "apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: default}\nspec:\n  containers:\n  - {name: sidecar, image: busybox:1.37}\n";
        ok(
            apply(
                &s,
                &k,
                sidecar,
                &["--field-manager", "updater", "--force-conflicts"],
            ),
            "apply the sidecar",
        );
        let pod = get(&s, &k, "pod/web");
        assert_eq!(images(&pod), ["nginx:1.27", "busybox:1.37"], "{k}");
        // A strategic merge patch merges them by name too.
        let patch = r#"{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}"#;
        ok(
            s.kubectl(&k, &["patch", "pod", "web", "-p", patch]),
            "patch",
        );
        let pod = get(&s, &k, "pod/web");
        assert_eq!(images(&pod), ["nginx:1.28", "busybox:1.37"], "{k}");
        ok(s.kubectl(&k, &["delete", "pod", "web"]), "delete");
    }
}

#[test]
fn an_apply_to_a_csrs_status_owns_its_conditions_by_type() {
    // Seen before the fix: the conditions were owned whole, so an apply of one condition
    // conflicted with the manager of another, and an apply through `status` kept no record
    // of its own (kube-apiserver: `+listType=map`, `+listMapKey=type`).
    use base64::Engine;
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = common::csr_pem(dir.path(), "ssa", "/CN=ssa");
    let request = base64::engine::general_purpose::STANDARD.encode(pem);
    let csr = format!(
        "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: ssa}}\nspec:\n  request: {request}\n  signerName: example.com/foo\n  usages: [client auth]\n"
    );
    ok(
        s.kubectl_as(
            "kubectl",
            &s.kubeconfig(),
            &["create", "-f", "-"],
            Some(&csr),
        ),
        "create",
    );
    let custom = r#"{"status":{"conditions":[{"type":"Custom","status":"True"}]}}"#;
    let patch = [
        "patch",
        "csr",
        "ssa",
        "--subresource=status",
        "--type=merge",
        "-p",
        custom,
    ];
    ok(s.kubectl("kubectl", &patch), "patch");
    let condition = |ty: &str, status: &str| {
        format!(
            "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata: {{name: ssa}}\nstatus:\n  conditions:\n  - {{type: {ty}, status: \"{status}\"}}\n"
        )
    };
    ok(
        apply(
            &s,
            "kubectl",
            &condition("Custom2", "True"),
            &["--subresource=status"],
        ),
        "an apply of another condition does not conflict",
    );
    let got = get(&s, "kubectl", "csr/ssa");
    let types: Vec<&str> = got["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types, ["Custom", "Custom2"]);
    let applied = got["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .find(|e| e["operation"] == "Apply")
        .expect("the apply's own record");
    assert_eq!(applied["subresource"], "status");
    assert!(
        applied["fieldsV1"]["f:status"]["f:conditions"]
            .get(r#"k:{"type":"Custom2"}"#)
            .is_some(),
        "{applied}"
    );
    let out = apply(
        &s,
        "kubectl",
        &condition("Custom", "False"),
        &["--subresource=status"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"conflict with "kubectl-patch" with subresource "status" using certificates.k8s.io/v1: .status.conditions[type="Custom"].status"#),
        "{}",
        stderr(&out)
    );
}

/// A client-side applied object moves to server-side apply as the docs say it does: kubectl
/// sends the migrated `managedFields` (a JSON patch), the server takes them, and its
/// applies then change and drop what client-side apply set, keeping the client-side apply
/// annotation current; `[{}]` clears the record. Seen before: the server ignored the
/// `managedFields` a write sent, so the first server-side apply was a 409 with
/// `kubectl-client-side-apply`, a key dropped stayed, and the annotation went stale.
#[test]
fn a_client_side_applied_object_moves_to_server_side_apply() {
    let s = Server::start();
    let k = kubectls().pop().expect("kubectl");
    let cm = |data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: mig, namespace: default}}\ndata: {{{data}}}\n"
        )
    };
    let csa = s.kubectl_as(
        &k,
        &s.kubeconfig(),
        &["apply", "-f", "-"],
        Some(&cm("a: '1', b: '2'")),
    );
    ok(csa, "client-side apply");
    ok(
        apply(&s, &k, &cm("a: 'one', b: '2'"), &[]),
        "the first server-side apply",
    );
    let obj = ok(apply(&s, &k, &cm("a: 'one'"), &[]), "an apply dropping b");
    assert!(obj.contains("serverside-applied"), "{obj}");
    let obj = get(&s, &k, "configmap/mig");
    assert_eq!(obj["data"], serde_json::json!({"a": "one"}), "{obj}");
    let last: Value = serde_json::from_str(
        obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("the annotation"),
    )
    .expect("JSON");
    assert_eq!(last["data"], serde_json::json!({"a": "one"}), "{last}");
    assert!(
        !managers(&obj)
            .iter()
            .any(|(m, _)| m == "kubectl-client-side-apply"),
        "{:?}",
        managers(&obj)
    );
    let clear = r#"[{"op": "replace", "path": "/metadata/managedFields", "value": [{}]}]"#;
    ok(
        s.kubectl(
            &k,
            &["patch", "configmap", "mig", "--type=json", "-p", clear],
        ),
        "clear the record",
    );
    let obj = get(&s, &k, "configmap/mig");
    assert!(obj["metadata"].get("managedFields").is_none(), "{obj}");
}
