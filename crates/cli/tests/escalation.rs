//! Escalation attempts against the real server, with `curl` and `kubectl`, refused as
//! Kubernetes' admission plugins refuse them: a node labelling or untainting itself into
//! another role (NodeRestriction), the administrator deleting the namespaces the cluster
//! itself lives in (NamespaceLifecycle).

mod common;

use std::path::Path;

use common::{Server, client_cert, ok, stderr};

const JSON: &str = "Content-Type: application/json";
const MERGE: &str = "Content-Type: application/merge-patch+json";

fn node_flags(s: &Server, dir: &Path, name: &str) -> [String; 4] {
    client_cert(
        dir,
        name,
        &format!("/O=system:nodes/CN=system:node:{name}"),
        &s.ca(),
        &s.dir.join("pki/ca.key"),
    )
}

fn send(
    s: &Server,
    who: &[String],
    method: &str,
    ct: &str,
    body: &str,
    path: &str,
) -> (u16, String) {
    let mut args: Vec<&str> = who.iter().map(String::as_str).collect();
    args.extend(["-X", method, "-H", ct, "--data-binary", body]);
    s.curl(&args, path)
}

#[test]
fn a_node_may_not_label_or_untaint_itself_into_another_role() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let w1 = node_flags(&s, dir.path(), "w1");
    let node = |labels: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"w1","labels":{labels}}}}}"#
        )
    };
    let (code, out) = send(
        &s,
        &w1,
        "POST",
        JSON,
        &node(r#"{"node-role.kubernetes.io/control-plane":""}"#),
        "/api/v1/nodes",
    );
    assert_eq!(code, 403, "{out}");
    assert!(out.contains(r#"node \"w1\" is not allowed to set the following labels: node-role.kubernetes.io/control-plane"#), "{out}");
    let (code, out) = send(
        &s,
        &w1,
        "POST",
        JSON,
        &node(r#"{"kubernetes.io/hostname":"w1"}"#),
        "/api/v1/nodes",
    );
    assert_eq!(code, 201, "{out}");
    for (label, code) in [
        ("node-restriction.kubernetes.io/foo", 403),
        ("node-role.kubernetes.io/control-plane", 403),
        ("kubernetes.io/role", 403),
        ("topology.kubernetes.io/zone", 200),
        ("example.com/team", 200),
    ] {
        let patch = format!(r#"{{"metadata":{{"labels":{{"{label}":"x"}}}}}}"#);
        let (got, out) = send(&s, &w1, "PATCH", MERGE, &patch, "/api/v1/nodes/w1");
        assert_eq!(got, code, "{label}: {out}");
        if code == 403 {
            assert!(
                out.contains(&format!("is not allowed to modify labels: {label}")),
                "{out}"
            );
        }
    }
    // The administrator taints the node and gives it a role; the node keeps both.
    ok(
        s.kubectl(
            "kubectl",
            &["taint", "node", "w1", "dedicated=db:NoSchedule"],
        ),
        "taint",
    );
    ok(
        s.kubectl(
            "kubectl",
            &["label", "node", "w1", "node-role.kubernetes.io/db="],
        ),
        "label",
    );
    let (code, out) = send(
        &s,
        &w1,
        "PATCH",
        MERGE,
        r#"{"metadata":{"labels":{"node-role.kubernetes.io/db":null}}}"#,
        "/api/v1/nodes/w1",
    );
    assert_eq!(code, 403, "removing a role is a change too: {out}");
    let (code, out) = send(
        &s,
        &w1,
        "PATCH",
        MERGE,
        r#"{"spec":{"taints":null}}"#,
        "/api/v1/nodes/w1",
    );
    assert_eq!(code, 403, "{out}");
    assert!(
        out.contains(r#"node \"w1\" is not allowed to modify taints"#),
        "{out}"
    );
    let (code, out) = send(
        &s,
        &w1,
        "PATCH",
        MERGE,
        r#"{"metadata":{"labels":{"example.com/ok":"1"}}}"#,
        "/api/v1/nodes/w1",
    );
    assert_eq!(code, 200, "other changes still go through: {out}");
}

#[test]
fn the_namespaces_the_cluster_lives_in_may_not_be_deleted() {
    let s = Server::start();
    for ns in ["default", "kube-system", "kube-public"] {
        let out = s.kubectl("kubectl", &["delete", "namespace", ns]);
        assert!(!out.status.success(), "{ns}");
        assert!(
            stderr(&out).contains(&format!(
                r#"namespaces "{ns}" is forbidden: this namespace may not be deleted"#
            )),
            "{ns}: {}",
            stderr(&out)
        );
    }
    // A delete of the whole collection deletes what it may and refuses the rest.
    ok(
        s.kubectl("kubectl", &["create", "namespace", "scratch"]),
        "create",
    );
    let (code, out) = s.admin_curl(&["-X", "DELETE"], "/api/v1/namespaces");
    assert_eq!(code, 403, "{out}");
    let left = ok(
        s.kubectl("kubectl", &["get", "namespaces", "-o", "name"]),
        "get",
    );
    for ns in ["default", "kube-system", "kube-public"] {
        assert!(left.contains(&format!("namespace/{ns}")), "{left}");
    }
    assert!(!left.contains("namespace/scratch"), "{left}");
    // cluster-info, the token Secret and the controllers are still there: a node can join.
    let (code, _) = s.curl(
        &[],
        "/api/v1/namespaces/kube-public/configmaps/cluster-info",
    );
    assert_eq!(code, 200);
}
