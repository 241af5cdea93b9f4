//! What a create records in `metadata.managedFields`, checked with kubectl as kube-apiserver
//! records it: the fields the request sent and the kind's defaults (set as the object is
//! decoded) belong to its field manager; what the server sets afterwards (a CSR's
//! requester, a Pod's status) belongs to no one. And every namespace carries the label
//! `kubernetes.io/metadata.name` with its name, which no client can change or remove.

mod common;

use base64::Engine;
use common::{Server, ok};
use serde_json::Value;

/// The object `what` as JSON, with its managed fields.
fn get(s: &Server, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend_from_slice(&["-o", "json", "--show-managed-fields"]);
    serde_json::from_str(&ok(s.kubectl("kubectl", &args), "kubectl get")).expect("JSON")
}

/// What `manager` owns of `obj` (its `fieldsV1`), through the object itself.
fn owned<'a>(obj: &'a Value, manager: &str) -> &'a Value {
    obj["metadata"]["managedFields"]
        .as_array()
        .and_then(|l| l.iter().find(|e| e["manager"] == manager))
        .map(|e| &e["fieldsV1"])
        .unwrap_or_else(|| panic!("no managedFields entry of {manager}: {obj}"))
}

fn create(s: &Server, manifest: &str) {
    ok(
        s.kubectl_as(
            "kubectl",
            &s.kubeconfig(),
            &["create", "-f", "-"],
            Some(manifest),
        ),
        "kubectl create",
    );
}

#[test]
fn a_create_owns_what_it_sent_and_the_kinds_defaults_not_what_the_server_sets() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    // A CSR: its requester (spec.username, groups, uid) is the server's to set.
    // Seen before: f:spec listed f:username and f:groups as kubectl-create's.
    let pem = common::csr_pem(tmp.path(), "alice", "/CN=alice");
    let request = base64::engine::general_purpose::STANDARD.encode(pem);
    create(
        &s,
        &format!(
            "apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: alice\nspec:\n  request: {request}\n  signerName: kubernetes.io/kube-apiserver-client\n  usages: [client auth]\n"
        ),
    );
    let csr = get(&s, &["csr", "alice"]);
    assert!(csr["spec"]["username"].is_string(), "{csr}");
    let spec = &owned(&csr, "kubectl-create")["f:spec"];
    let mut fields: Vec<&str> = spec
        .as_object()
        .expect("f:spec")
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["f:request", "f:signerName", "f:usages"], "{csr}");

    // A Secret sent with stringData: its sender owns the data it became and the defaulted
    // type, as the Secret is decoded.
    create(
        &s,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s1\n  namespace: default\nstringData:\n  a: b\n",
    );
    let secret = get(&s, &["secret", "s1", "-n", "default"]);
    let mine = owned(&secret, "kubectl-create");
    assert!(mine["f:data"]["f:a"].is_object(), "{secret}");
    assert!(mine["f:type"].is_object(), "{secret}");

    // A Pod: its defaults are its creator's, its status the server's.
    ok(
        s.kubectl("kubectl", &["run", "p1", "--image=nginx", "-n", "default"]),
        "kubectl run",
    );
    let pod = get(&s, &["pod", "p1", "-n", "default"]);
    assert_eq!(pod["status"]["phase"], "Pending", "{pod}");
    let mine = owned(&pod, "kubectl-run");
    assert!(mine["f:spec"]["f:dnsPolicy"].is_object(), "{pod}");
    assert!(mine.get("f:status").is_none(), "{pod}");
}

#[test]
fn every_namespace_is_labelled_with_its_name() {
    let s = Server::start();
    const LABEL: &str = "kubernetes.io/metadata.name";
    let label_of = |ns: &Value| ns["metadata"]["labels"][LABEL].clone();
    // The namespaces the server makes, selected by the label as a NetworkPolicy or a
    // webhook's namespaceSelector selects them. Seen before: none.
    let system = ok(
        s.kubectl(
            "kubectl",
            &[
                "get",
                "ns",
                "-l",
                &format!("{LABEL}=kube-system"),
                "-o",
                "name",
            ],
        ),
        "kubectl get ns -l",
    );
    assert_eq!(system.trim(), "namespace/kube-system");

    ok(
        s.kubectl("kubectl", &["create", "ns", "team-a"]),
        "create ns",
    );
    let ns = get(&s, &["ns", "team-a"]);
    assert_eq!(label_of(&ns), "team-a", "{ns}");
    // Its creator owns it, set as the namespace was decoded (kube-apiserver's defaulting).
    let mine = owned(&ns, "kubectl-create");
    assert!(
        mine["f:metadata"]["f:labels"][format!("f:{LABEL}")].is_object(),
        "{ns}"
    );

    // No client changes or removes it: the server sets it back on every update.
    for change in [format!("{LABEL}=other"), format!("{LABEL}-")] {
        ok(
            s.kubectl(
                "kubectl",
                &["label", "ns", "team-a", &change, "--overwrite"],
            ),
            "kubectl label",
        );
        assert_eq!(label_of(&get(&s, &["ns", "team-a"])), "team-a", "{change}");
    }

    // A generated name is labelled too, once it is known.
    let created = ok(
        s.kubectl_as(
            "kubectl",
            &s.kubeconfig(),
            &["create", "-f", "-", "-o", "name"],
            Some("apiVersion: v1\nkind: Namespace\nmetadata:\n  generateName: gen-\n"),
        ),
        "create ns with generateName",
    );
    let name = created.trim().trim_start_matches("namespace/").to_owned();
    assert!(name.starts_with("gen-"), "{created}");
    assert_eq!(label_of(&get(&s, &["ns", &name])), name.as_str());
}
