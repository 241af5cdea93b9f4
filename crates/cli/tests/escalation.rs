//! Escalation attempts against the real server, with `curl` and `kubectl`, refused as
//! Kubernetes' admission plugins refuse them: a node labelling or untainting itself into
//! another role (NodeRestriction), the administrator deleting the namespaces the cluster
//! itself lives in (NamespaceLifecycle); and section B of the adversarial review, as tables
//! of requests by a bootstrap token, a node, anonymous and a user with partial rights.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use common::{Server, client_cert, csr_pem, eventually, ok, openssl, stderr};

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
    // Namespaces are not deleted as a collection (kube-apiserver's storage deletes them one
    // at a time): nothing goes.
    ok(
        s.kubectl("kubectl", &["create", "namespace", "scratch"]),
        "create",
    );
    let (code, out) = s.admin_curl(&["-X", "DELETE"], "/api/v1/namespaces");
    assert_eq!(code, 405, "{out}");
    let left = ok(
        s.kubectl("kubectl", &["get", "namespaces", "-o", "name"]),
        "get",
    );
    for ns in ["default", "kube-system", "kube-public", "scratch"] {
        assert!(left.contains(&format!("namespace/{ns}")), "{left}");
    }
    // cluster-info, the token Secret and the controllers are still there: a node can join.
    let (code, _) = s.curl(
        &[],
        "/api/v1/namespaces/kube-public/configmaps/cluster-info",
    );
    assert_eq!(code, 200);
}

#[test]
fn nothing_created_while_its_namespace_is_deleted_outlives_it() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let s = Server::start();
    let kubeconfig = std::fs::read_to_string(s.kubeconfig()).expect("admin.conf");
    let kc = kubeboot_pki::Kubeconfig::from_yaml(&kubeconfig).expect("kubeconfig");
    let client = kubeboot_client::Client::from_kubeconfig(&kc).expect("client");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut orphans = Vec::new();
    runtime.block_on(async {
        for round in 0..6 {
            let ns = format!("race-{round}");
            let made: serde_json::Value = client
                .create(
                    "/api/v1/namespaces",
                    &serde_json::json!({"metadata": {"name": ns}}),
                )
                .await
                .expect("namespace");
            assert_eq!(made["metadata"]["name"], ns.as_str());
            let created = Arc::new(AtomicUsize::new(0));
            // Eight clients create ConfigMaps as fast as they can until the namespace
            // refuses them (403 terminating, 404 gone).
            let creators: Vec<_> = (0..8)
                .map(|c| {
                    let (client, ns, created) = (client.clone(), ns.clone(), created.clone());
                    tokio::spawn(async move {
                        for i in 0..5_000 {
                            let cm = serde_json::json!({"metadata": {"name": format!("c{c}-{i}")}});
                            let path = format!("/api/v1/namespaces/{ns}/configmaps");
                            match client.create::<serde_json::Value>(&path, &cm).await {
                                Ok(_) => created.fetch_add(1, Ordering::Relaxed),
                                Err(e) if matches!(e.code(), Some(403 | 404)) => return,
                                Err(e) => panic!("create: {e}"),
                            };
                        }
                    })
                })
                .collect();
            for _ in 0..500 {
                if created.load(Ordering::Relaxed) >= 40 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            client
                .delete(&format!("/api/v1/namespaces/{ns}"), None)
                .await
                .expect("delete the namespace");
            for c in creators {
                c.await.expect("creator");
            }
            let left: serde_json::Value = client
                .get(&format!("/api/v1/namespaces/{ns}/configmaps"))
                .await
                .expect("list");
            let names: Vec<String> = left["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| format!("{ns}/{}", i["metadata"]["name"].as_str().unwrap_or("?")))
                .collect();
            orphans.extend(names);
        }
    });
    assert!(
        orphans.is_empty(),
        "ConfigMaps outlived their namespace: {orphans:?}"
    );
}

// Section B of the adversarial review ("Privilege escalation"), one table per principal:
// each row is a request and Kubernetes' answer to it, the code and a part of the message
// (`{user}` stands for the caller's user name). The tables skip rustfmt so that a row
// stays a row. A CSR the approver must never approve is created before one good request
// by the same caller; once the approver has issued the good one it has seen the bad ones,
// and they must still carry no Approved condition and no certificate.

/// (case, method, path, body, code, a part of the message or of the object returned).
type Row<'a> = (&'a str, &'a str, &'a str, &'a str, u16, &'a str);

#[test]
fn a_bootstrap_token_may_only_ask_for_a_node_client_certificate() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let token = s.token();
    let id = &token[..6];
    let user = format!("system:bootstrap:{id}");
    let bearer = format!("Authorization: Bearer {token}");
    let tok = ["-H", bearer.as_str()];
    admin_csr(&s, d, "admin-made-csr");

    let own_secret = format!("/api/v1/namespaces/kube-system/secrets/bootstrap-token-{id}");
    let own_by_field = format!(
        "/api/v1/namespaces/kube-system/secrets?fieldSelector=metadata.name%3Dbootstrap-token-{id}"
    );
    let secret = r#"{"metadata":{"name":"planted"},"stringData":{"a":"b"}}"#;
    let grab = binding("grab", "ClusterRole", "cluster-admin", &user);
    let cluster_role = r#"{"metadata":{"name":"grab"},"rules":[{"apiGroups":["*"],"resources":["*"],"verbs":["*"]}]}"#;
    let cluster_info = r#"{"metadata":{"name":"cluster-info","namespace":"kube-public"},"data":{"kubeconfig":"planted"}}"#;
    let someone = csr_b64(d, "someone", "/CN=someone", None);
    let api_client = |name: &str, request: &str, usages: &[&str], rest: &str| {
        csr_body(name, request, APISERVER_CLIENT, usages, rest)
    };
    let b66 = api_client("b66", &someone, &["client auth"], "");
    let approved =
        r#""status":{"conditions":[{"type":"Approved","status":"True","reason":"Self"}]}"#;
    let approval = api_client("b66", &someone, &["client auth"], &format!(",{approved}"));
    let approve_patch = format!("{{{approved}}}");
    let self_made = b64(&std::fs::read(s.ca()).expect("read ca"));
    let with_cert = format!(r#","status":{{"certificate":"{self_made}"}}"#);
    let cert_put = api_client("b66", &someone, &["client auth"], &with_cert);
    let cert_patch = format!(r#"{{"status":{{"certificate":"{self_made}"}}}}"#);
    let b66_path = format!("{CSRS}/b66");
    let b66_approval = format!("{CSRS}/b66/approval");
    let b66_status = format!("{CSRS}/b66/status");

    let kubelet = |name: &str, subject: &str, usages: &[&str], ext: Option<&str>| {
        let request = csr_b64(d, name, subject, ext);
        csr_body(name, &request, KUBELET_CLIENT, usages, "")
    };
    let evil = "/O=system:nodes/CN=system:node:evil";
    let b77 = kubelet("b77", "/O=system:masters/CN=system:node:evil", CLIENT, None);
    let b78 = kubelet(
        "b78",
        "/O=system:nodes/O=system:masters/CN=system:node:evil",
        CLIENT,
        None,
    );
    let b79 = kubelet("b79", "/O=system:nodes/CN=system:admin", CLIENT, None);
    let admin_masters = csr_b64(d, "b80", "/O=system:masters/CN=system:admin", None);
    let b80 = api_client("b80", &admin_masters, &["client auth"], "");
    let b81 = api_client(
        "b81",
        &csr_b64(d, "b81", "/CN=system:admin", None),
        &["client auth"],
        "",
    );
    let b82 = csr_b64(d, "b82", "/O=system:masters/CN=someone", None);
    let b82 = api_client("b82", &b82, &["client auth"], "");
    let b83 = csr_body(
        "b83",
        &csr_b64(d, "b83", evil, None),
        KUBELET_SERVING,
        SERVING,
        "",
    );
    let b84 = kubelet(
        "b84",
        evil,
        &["digital signature", "client auth", "server auth"],
        None,
    );
    let b85 = kubelet("b85", evil, &["server auth"], None);
    let b86 = api_client("b86", &someone, &["client auth", "server auth"], "");
    let b87 = kubelet("b87", evil, CLIENT, Some("subjectAltName=DNS:evil.example"));
    let b88 = kubelet(
        "b88",
        evil,
        &["digital signature", "client auth", "cert sign"],
        None,
    );
    let masters_as = |name: &str, tag: u8| {
        let request = der_csr(&[
            (OID_O, UTF8_STRING, "system:nodes"),
            (OID_O, tag, "system:masters"),
            (OID_CN, UTF8_STRING, "system:node:enc"),
        ]);
        csr_body(name, &request, KUBELET_CLIENT, CLIENT, "")
    };
    let b89 = masters_as("b89", BMP_STRING);
    let b90 = masters_as("b90", UNIVERSAL_STRING);
    let b91 = masters_as("b91", T61_STRING);
    let b92 = format!(
        r#"{{"metadata":{{"name":"b92"}},"spec":{{"request":"{admin_masters}","usages":["client auth"]}}}}"#
    );
    let b93 = format!(
        r#"{{"metadata":{{"name":"b93"}},"spec":{{"request":"{someone}","signerName":"{APISERVER_CLIENT}","usages":["client auth"],"username":"system:admin","groups":["system:masters"],"uid":"0","extra":{{"a":["b"]}}}}}}"#
    );
    let issued_by_self = format!(
        r#","status":{{"conditions":[{{"type":"Approved","status":"True","reason":"Self"}}],"certificate":"{self_made}"}}"#
    );
    let b94 = api_client("b94", &someone, &["client auth"], &issued_by_self);
    let bmp_masters = der_csr(&[
        (OID_O, BMP_STRING, "system:masters"),
        (OID_CN, BMP_STRING, "evil-admin"),
    ]);
    let b187 = api_client("b187", &bmp_masters, &["client auth"], "");
    let masters =
        "use of kubernetes.io/kube-apiserver-client signer with system:masters group is not allo";

    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("B50 token lists Secrets in kube-system", "GET", "/api/v1/namespaces/kube-system/secrets", "", 403,
         r#"secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" in the namespace "kube-system""#),
        ("B51 token lists Secrets in all namespaces", "GET", "/api/v1/secrets", "", 403,
         r#"secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" at the cluster scope"#),
        ("B52 token reads its own token Secret", "GET", &own_secret, "", 403,
         &format!(r#"secrets "bootstrap-token-{id}" is forbidden: User "{{user}}" cannot get resource "secrets" in API group "" in the namespace "kube-system""#)),
        ("B53 token lists Secrets in default", "GET", "/api/v1/namespaces/default/secrets", "", 403,
         r#"secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" in the namespace "default""#),
        ("B54 token watches Secrets with ?watch", "GET", "/api/v1/namespaces/kube-system/secrets?watch=true", "", 403,
         r#"secrets is forbidden: User "{user}" cannot watch resource "secrets" in API group "" in the namespace "kube-system""#),
        ("B55 token watches Secrets with /watch/", "GET", "/api/v1/watch/namespaces/kube-system/secrets", "", 403,
         r#"secrets is forbidden: User "{user}" cannot watch resource "secrets" in API group "" in the namespace "kube-system""#),
        ("B56 token lists its own Secret by field selector", "GET", &own_by_field, "", 403,
         &format!(r#"secrets "bootstrap-token-{id}" is forbidden: User "{{user}}" cannot list resource "secrets" in API group "" in the namespace "kube-system""#)),
        ("B57 token creates a Secret in kube-system", "POST", "/api/v1/namespaces/kube-system/secrets", secret, 403,
         r#"secrets is forbidden: User "{user}" cannot create resource "secrets" in API group "" in the namespace "kube-system""#),
        ("B58 token binds cluster-admin cluster-wide", "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", &grab, 403,
         r#"clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "{user}" cannot create resource "clusterrolebindings" in API group "rbac.autho"#),
        ("B59 token creates a RoleBinding in kube-system", "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/kube-system/rolebindings", &grab, 403,
         r#"rolebindings.rbac.authorization.k8s.io is forbidden: User "{user}" cannot create resource "rolebindings" in API group "rbac.authorization.k8s.i"#),
        ("B60 token creates a ClusterRole", "POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", cluster_role, 403,
         r#"clusterroles.rbac.authorization.k8s.io is forbidden: User "{user}" cannot create resource "clusterroles" in API group "rbac.authorization.k8s.i"#),
        ("B61 token creates a SubjectAccessReview", "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", SAR, 403,
         r#"subjectaccessreviews.authorization.k8s.io is forbidden: User "{user}" cannot create resource "subjectaccessreviews" in API group "authorization"#),
        ("B63 token lists Nodes", "GET", "/api/v1/nodes", "", 403,
         r#"nodes is forbidden: User "{user}" cannot list resource "nodes" in API group "" at the cluster scope"#),
        ("B63 token gets one Node (kubeadm:get-nodes): absent, not forbidden", "GET", "/api/v1/nodes/absent", "", 404,
         r#"nodes "absent" not found"#),
        ("B64 token creates a namespace", "POST", "/api/v1/namespaces", r#"{"metadata":{"name":"mine"}}"#, 403,
         r#"namespaces is forbidden: User "{user}" cannot create resource "namespaces" in API group "" at the cluster scope"#),
        ("B65 token replaces cluster-info", "PUT", "/api/v1/namespaces/kube-public/configmaps/cluster-info", cluster_info, 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot update resource "configmaps" in API group "" in the namespace "kube-public""#),
        ("B66 token asks the kube-apiserver-client signer for CN=someone", "POST", CSRS, &b66, 201,
         r#""username":"{user}""#),
        ("B67 token approves its own CSR with PUT /approval", "PUT", &b66_approval, &approval, 403,
         r#"certificatesigningrequests.certificates.k8s.io "b66" is forbidden: User "{user}" cannot update resource "certificatesigningrequests/appro"#),
        ("B68 token approves its own CSR with PATCH /approval", "PATCH", &b66_approval, &approve_patch, 403,
         r#"certificatesigningrequests.certificates.k8s.io "b66" is forbidden: User "{user}" cannot patch resource "certificatesigningrequests/approv"#),
        ("B69 token approves its own CSR with PATCH on the CSR", "PATCH", &b66_path, &approve_patch, 403,
         r#"certificatesigningrequests.certificates.k8s.io "b66" is forbidden: User "{user}" cannot patch resource "certificatesigningrequests" in AP"#),
        ("B70 token writes a certificate with PUT /status", "PUT", &b66_status, &cert_put, 403,
         r#"certificatesigningrequests.certificates.k8s.io "b66" is forbidden: User "{user}" cannot update resource "certificatesigningrequests/statu"#),
        ("B71 token writes a certificate with PATCH /status", "PATCH", &b66_status, &cert_patch, 403,
         r#"certificatesigningrequests.certificates.k8s.io "b66" is forbidden: User "{user}" cannot patch resource "certificatesigningrequests/status"#),
        ("B73 token deletes another's CSR", "DELETE", &format!("{CSRS}/admin-made-csr"), "", 403,
         r#"certificatesigningrequests.certificates.k8s.io "admin-made-csr" is forbidden: User "{user}" cannot delete resource "certificatesigningrequests""#),
        ("B74 token deletes its own CSR", "DELETE", &b66_path, "", 403,
         r#"certificatesigningrequests.certificates.k8s.io "b66" is forbidden: User "{user}" cannot delete resource "certificatesigningrequests" in A"#),
        ("B75 token deletes every CSR", "DELETE", CSRS, "", 403,
         r#"certificatesigningrequests.certificates.k8s.io is forbidden: User "{user}" cannot deletecollection resource "certificatesigningrequests" in API"#),
        ("B76 token lists CSRs (system:node-bootstrapper)", "GET", CSRS, "", 200, r#""name":"admin-made-csr""#),
        ("B77 token asks the kubelet-client signer for O=system:masters", "POST", CSRS, &b77, 201, ""),
        ("B78 token asks the kubelet-client signer for O=[system:nodes, system:masters]", "POST", CSRS, &b78, 201, ""),
        ("B79 token asks the kubelet-client signer for CN=system:admin", "POST", CSRS, &b79, 201, ""),
        ("B80 token asks the kube-apiserver-client signer for system:admin in system:masters", "POST", CSRS, &b80, 403, masters),
        ("B81 token asks the kube-apiserver-client signer for CN=system:admin", "POST", CSRS, &b81, 201, ""),
        ("B82 token asks the kube-apiserver-client signer for O=system:masters", "POST", CSRS, &b82, 403, masters),
        ("B83 token asks the kubelet-serving signer for server auth", "POST", CSRS, &b83, 201, ""),
        ("B84 token asks the kubelet-client signer for server auth as well", "POST", CSRS, &b84, 201, ""),
        ("B85 token asks the kubelet-client signer for server auth only", "POST", CSRS, &b85, 201, ""),
        ("B86 token asks the kube-apiserver-client signer for server auth", "POST", CSRS, &b86, 201, ""),
        ("B87 token asks the kubelet-client signer for a DNS name", "POST", CSRS, &b87, 201, ""),
        ("B88 token asks the kubelet-client signer for cert sign", "POST", CSRS, &b88, 201, ""),
        ("B89 token adds O=system:masters in a BMPString", "POST", CSRS, &b89, 201, ""),
        // Go cannot read a UniversalString, so Kubernetes refuses the request outright.
        ("B90 token adds O=system:masters in a UniversalString", "POST", CSRS, &b90, 422,
         "failed to parse certificate request: x509: invalid RDNSequence: invalid attribute value: unsupported string type: 28"),
        ("B91 token adds O=system:masters in a TeletexString", "POST", CSRS, &b91, 201, ""),
        ("B92 token posts a v1beta1 CSR with no signer", "POST", "/apis/certificates.k8s.io/v1beta1/certificatesigningrequests", &b92, 422,
         "spec.signerName: Required value"),
        ("B93 token names system:admin in the CSR's spec", "POST", CSRS, &b93, 201, r#""username":"{user}""#),
        ("B94 token creates a CSR already approved and issued", "POST", CSRS, &b94, 201, r#""status":{}"#),
        ("B187 token asks the kube-apiserver-client signer for a BMPString O=system:masters", "POST", CSRS, &b187, 403, masters),
    ];
    check(&s, &tok, &user, rows);
    let impersonating = [tok[0], tok[1], "-H", "Impersonate-User: system:admin"];
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("B62 token impersonates system:admin", "GET", "/api/v1/namespaces/kube-system/secrets", "", 403,
         r#"users "system:admin" is forbidden: User "{user}" cannot impersonate resource "users" in API group "" at the cluster scope"#),
    ];
    check(&s, &impersonating, &user, rows);
    let v = get_csr(&s, "b93");
    assert_eq!(v["spec"]["username"], user.as_str(), "B93: {v}");
    assert!(
        !v["spec"]["groups"].to_string().contains("system:masters")
            && v["spec"]["uid"].is_null()
            && v["spec"]["extra"].is_null(),
        "B93: {v}"
    );

    // The good request is built as B89-B91 are, so that they differ only in their subject.
    let good = der_csr(&[
        (OID_O, UTF8_STRING, "system:nodes"),
        (OID_CN, UTF8_STRING, "system:node:good"),
    ]);
    let good = csr_body("good", &good, KUBELET_CLIENT, CLIENT, "");
    let (code, out) = request(&s, &tok, "POST", CSRS, &good);
    assert_eq!(code, 201, "{out}");
    // B72: b66 is unchanged by B67-B71; B95: the request of B89 is never approved, so no
    // certificate can name a subject other than the one requested.
    never_issued(
        &s,
        "good",
        &[
            "b66", "b77", "b78", "b79", "b81", "b83", "b84", "b85", "b86", "b87", "b88", "b89",
            "b91", "b93", "b94",
        ],
    );
}

#[test]
fn a_node_reaches_only_its_own_node_lease_and_certificates() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let w1 = node_flags(&s, d, "worker-1");
    let w1: Vec<&str> = w1.iter().map(String::as_str).collect();
    let user = "system:node:worker-1";
    admin(&s, "POST", "/api/v1/nodes", &node_json("worker-2"), 201);
    admin(&s, "POST", LEASES, &lease_json("worker-2"), 201);
    admin_csr(&s, d, "admin-made-csr");

    let node = |name: &str| format!("/api/v1/nodes/{name}");
    let lease = |name: &str| format!("{LEASES}/{name}");
    let not_ready =
        r#"{"status":{"conditions":[{"type":"Ready","status":"False","reason":"Evil"}]}}"#;
    let grab = binding("grab", "ClusterRole", "cluster-admin", user);
    let token_secret = format!(
        "/api/v1/namespaces/kube-system/secrets/bootstrap-token-{}",
        &s.token()[..6]
    );
    let csr = |name: &str, subject: &str, signer: &str, usages: &[&str], ext: Option<&str>| {
        csr_body(name, &csr_b64(d, name, subject, ext), signer, usages, "")
    };
    let w2 = "/O=system:nodes/CN=system:node:worker-2";
    let own = "/O=system:nodes/CN=system:node:worker-1";
    let b126 = csr("b126", w2, KUBELET_CLIENT, CLIENT, None);
    let b127 = csr("b127", w2, KUBELET_SERVING, SERVING, None);
    let b128 = csr("b128", w2, APISERVER_CLIENT, &["client auth"], None);
    let foreign_ip = Some("subjectAltName=IP:10.9.9.9");
    let b130 = csr("b130", own, KUBELET_SERVING, SERVING, foreign_ip);
    let other_node = "can only create a node CSR with CN=system:node:worker-1";
    let approval = r#"{"metadata":{"name":"admin-made-csr"},"status":{"conditions":[{"type":"Approved","status":"True","reason":"Node"}]}}"#;

    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("worker-1 registers its own Node", "POST", "/api/v1/nodes", &node_json("worker-1"), 201, ""),
        ("worker-1 creates its own Lease", "POST", LEASES, &lease_json("worker-1"), 201, ""),
        ("B96 worker-1's certificate puts it in system:nodes", "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
         r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#, 201,
         r#""groups":["system:nodes","system:authenticated"]"#),
        ("worker-1 lists every Node", "GET", "/api/v1/nodes", "", 403,
         r#"nodes is forbidden: User "{user}" cannot list resource "nodes" in API group "" at the cluster scope"#),
        ("B97 worker-1 gets worker-2's Node", "GET", &node("worker-2"), "", 403,
         r#"nodes "worker-2" is forbidden: User "{user}" cannot get resource "nodes" in API group "" at the cluster scope"#),
        ("B98 worker-1 replaces worker-2's Node", "PUT", &node("worker-2"), &node_json("worker-2"), 403,
         r#"nodes "worker-2" is forbidden: User "{user}" cannot update resource "nodes" in API group "" at the cluster scope"#),
        ("B99 worker-1 patches worker-2's Node", "PATCH", &node("worker-2"), r#"{"metadata":{"labels":{"evil":"1"}}}"#, 403,
         r#"nodes "worker-2" is forbidden: User "{user}" cannot patch resource "nodes" in API group "" at the cluster scope"#),
        ("B100 worker-1 marks worker-2 not ready", "PATCH", &format!("{}/status", node("worker-2")), not_ready, 403,
         r#"nodes "worker-2" is forbidden: User "{user}" cannot patch resource "nodes/status" in API group "" at the cluster scope"#),
        ("B101 worker-1 replaces worker-2's status", "PUT", &format!("{}/status", node("worker-2")), &node_json("worker-2"), 403,
         r#"nodes "worker-2" is forbidden: User "{user}" cannot update resource "nodes/status" in API group "" at the cluster scope"#),
        ("B102 worker-1 deletes worker-2's Node", "DELETE", &node("worker-2"), "", 403,
         r#"nodes "worker-2" is forbidden: User "{user}" cannot delete resource "nodes" in API group "" at the cluster scope"#),
        ("B103 worker-1 deletes its own Node", "DELETE", &node("worker-1"), "", 403,
         r#"nodes "worker-1" is forbidden: User "{user}" cannot delete resource "nodes" in API group "" at the cluster scope"#),
        ("B104 worker-1 creates a Node named worker-3", "POST", "/api/v1/nodes", &node_json("worker-3"), 403,
         r#"nodes "worker-3" is forbidden: node "worker-1" is not allowed to modify node "worker-3""#),
        ("B105 worker-1 renames itself in a patch", "PATCH", &node("worker-1"), r#"{"metadata":{"name":"worker-2"}}"#, 400,
         "the name of the object (worker-2) does not match the name on the URL (worker-1)"),
        ("B106 worker-1 gets worker-2's Lease", "GET", &lease("worker-2"), "", 403,
         r#"leases.coordination.k8s.io "worker-2" is forbidden: User "{user}" cannot get resource "leases" in API group "coordination.k8s.io" in the namespace"#),
        ("B107 worker-1 replaces worker-2's Lease", "PUT", &lease("worker-2"), &lease_json("worker-2"), 403,
         r#"leases.coordination.k8s.io "worker-2" is forbidden: User "{user}" cannot update resource "leases" in API group "coordination.k8s.io" in the namesp"#),
        ("B108 worker-1 patches worker-2's Lease", "PATCH", &lease("worker-2"), r#"{"spec":{"holderIdentity":"worker-1"}}"#, 403,
         r#"leases.coordination.k8s.io "worker-2" is forbidden: User "{user}" cannot patch resource "leases" in API group "coordination.k8s.io" in the namespa"#),
        ("B109 worker-1 deletes worker-2's Lease", "DELETE", &lease("worker-2"), "", 403,
         r#"leases.coordination.k8s.io "worker-2" is forbidden: User "{user}" cannot delete resource "leases" in API group "coordination.k8s.io" in the namesp"#),
        ("B110 worker-1 creates a Lease for worker-9", "POST", LEASES, &lease_json("worker-9"), 403,
         r#"leases.coordination.k8s.io "worker-9" is forbidden: node "worker-1" is not allowed to modify lease "worker-9""#),
        ("B111 worker-1 takes the controller manager's Lease", "PATCH", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager",
         r#"{"spec":{"holderIdentity":"worker-1"}}"#, 403,
         r#"leases.coordination.k8s.io "kube-controller-manager" is forbidden: User "{user}" cannot patch resource "leases" in API group "coordination.k8s.io""#),
        ("B112 worker-1 lists the node Leases", "GET", LEASES, "", 403,
         r#"leases.coordination.k8s.io is forbidden: User "{user}" cannot list resource "leases" in API group "coordination.k8s.io" in the namespace "kube-nod"#),
        ("B113 worker-1 watches worker-2's Lease by field selector", "GET", &format!("{LEASES}?watch=true&fieldSelector=metadata.name%3Dworker-2"), "", 403,
         r#"leases.coordination.k8s.io "worker-2" is forbidden: User "{user}" cannot watch resource "leases" in API group "coordination.k8s.io" in the namespa"#),
        ("B120 worker-1 lists Secrets in kube-system", "GET", "/api/v1/namespaces/kube-system/secrets", "", 403,
         r#"secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" in the namespace "kube-system""#),
        ("B121 worker-1 lists Secrets in all namespaces", "GET", "/api/v1/secrets", "", 403,
         r#"secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" at the cluster scope"#),
        ("B122 worker-1 reads the token Secret", "GET", &token_secret, "", 403,
         r#"is forbidden: User "{user}" cannot get resource "secrets" in API group "" in the namespace "kube-system""#),
        ("B123 worker-1 lists ConfigMaps in default", "GET", "/api/v1/namespaces/default/configmaps", "", 403,
         r#"configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API group "" in the namespace "default""#),
        ("B124 worker-1 lists ConfigMaps in kube-system", "GET", "/api/v1/namespaces/kube-system/configmaps", "", 403,
         r#"configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API group "" in the namespace "kube-system""#),
        ("B125 worker-1 lists every CSR (system:node)", "GET", CSRS, "", 200, r#""name":"admin-made-csr""#),
        ("B126 worker-1 asks the kubelet-client signer for worker-2", "POST", CSRS, &b126, 403, other_node),
        ("B127 worker-1 asks the kubelet-serving signer for worker-2", "POST", CSRS, &b127, 403, other_node),
        ("B128 worker-1 asks the kube-apiserver-client signer for worker-2", "POST", CSRS, &b128, 201, ""),
        ("B130 worker-1 asks the kubelet-serving signer for a foreign IP", "POST", CSRS, &b130, 201, ""),
        ("B131 worker-1 approves a CSR", "PUT", &format!("{CSRS}/admin-made-csr/approval"), approval, 403,
         r#"certificatesigningrequests.certificates.k8s.io "admin-made-csr" is forbidden: User "{user}" cannot update resource "certificatesigningrequests/app"#),
        ("B132 worker-1 deletes a CSR", "DELETE", &format!("{CSRS}/admin-made-csr"), "", 403,
         r#"certificatesigningrequests.certificates.k8s.io "admin-made-csr" is forbidden: User "{user}" cannot delete resource "certificatesigningrequests" in"#),
        ("B133 worker-1 binds cluster-admin", "POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", &grab, 403,
         r#"clusterrolebindings.rbac.authorization.k8s.io is forbidden: User "{user}" cannot create resource "clusterrolebindings" in API group "rbac.authoriz"#),
        // As Kubernetes' Node authorizer allows it (system:node's static rules): a kubelet
        // asks whether a caller of its own API may do what it asks (its webhook
        // authorization). The review found kubeboot refusing it (403).
        ("B134 worker-1 creates a SubjectAccessReview", "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", SAR, 201,
         r#""kind":"SubjectAccessReview""#),
        ("B182 worker-1 sets a node-restriction.kubernetes.io label", "PATCH", &node("worker-1"),
         r#"{"metadata":{"labels":{"node-restriction.kubernetes.io/foo":"x"}}}"#, 403,
         r#"nodes "worker-1" is forbidden: is not allowed to modify labels: node-restriction.kubernetes.io/foo"#),
        ("B183 worker-1 gives itself the control-plane role", "PATCH", &node("worker-1"),
         r#"{"metadata":{"labels":{"node-role.kubernetes.io/control-plane":""}}}"#, 403,
         r#"nodes "worker-1" is forbidden: is not allowed to modify labels: node-role.kubernetes.io/control-plane"#),
        ("B184 worker-1 cordons itself", "PATCH", &node("worker-1"), r#"{"spec":{"unschedulable":true}}"#, 200,
         r#""unschedulable":true"#),
    ];
    check(&s, &w1, user, rows);

    // Lists of Nodes: worker-1 sees itself and nothing of worker-2 however it words the
    // selector, as Kubernetes 1.33 with AuthorizeNodeWithSelectors. A selector's value is
    // taken as written, as apimachinery takes it: `worker-1 ` (a trailing space) is not
    // worker-1's name, so the list is not its own (seen before: it was trimmed).
    #[rustfmt::skip]
    let lists: &[(&str, &str, u16, &[&str])] = &[
        ("B114 worker-2 and worker-1", "metadata.name%3Dworker-2,metadata.name%3Dworker-1", 200, &[]),
        ("B116 worker-1 only", "metadata.name%3Dworker-1", 200, &["worker-1"]),
        ("B117 not worker-3 and worker-1", "metadata.name!%3Dworker-3,metadata.name%3Dworker-1", 200, &["worker-1"]),
        // The name a list requires is its selector's first in text order, as
        // `RequiresExactMatch` finds it: `metadata.name==worker-2` sorts first.
        ("B118 == worker-2 and worker-1", "metadata.name%3D%3Dworker-2,metadata.name%3Dworker-1", 403, &[]),
        ("B119 worker-1 with a trailing space", "metadata.name%3Dworker-1%20", 403, &[]),
    ];
    for &(case, selector, want_code, want) in lists {
        let path = format!("/api/v1/nodes?fieldSelector={selector}");
        let (code, out) = request(&s, &w1, "GET", &path, "");
        assert_eq!(code, want_code, "{case}: {out}");
        if code == 200 {
            assert_eq!(item_names(&out), want, "{case}: {out}");
        }
    }

    // worker-1's renewal of its own client certificate is approved, and once it is issued
    // the approver has seen the requests above, which stay pending.
    let b129 = csr("b129", own, KUBELET_CLIENT, CLIENT, None);
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("B129 worker-1 renews its own client certificate", "POST", CSRS, &b129, 201,
         r#""username":"system:node:worker-1""#),
    ];
    check(&s, &w1, user, rows);
    never_issued(&s, "b129", &["b128", "b130"]);
}

#[test]
fn anonymous_reaches_only_cluster_info_and_the_health_paths() {
    // B185 tests the per-address limit; here every request is answered on its merits.
    let s = Server::start_with(&["--anonymous-requests-per-second", "0"]);
    let user = "system:anonymous";
    let info = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
    let planted = r#"{"metadata":{"name":"cluster-info","namespace":"kube-public"},"data":{"kubeconfig":"planted"}}"#;
    let csr = r#"{"metadata":{"name":"anon"},"spec":{"request":"","signerName":"kubernetes.io/kube-apiserver-client","usages":["client auth"]}}"#;
    let ssr = r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;
    let ssar = r#"{"spec":{"resourceAttributes":{"verb":"get","resource":"secrets"}}}"#;
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("B135 anonymous checks /healthz", "GET", "/healthz", "", 200, "ok"),
        ("B136 anonymous reads /version", "GET", "/version", "", 200, r#""gitVersion":"v1.33"#),
        ("B137 anonymous checks /readyz", "GET", "/readyz", "", 200, "ok"),
        ("B138 anonymous checks /livez", "GET", "/livez", "", 200, "ok"),
        ("B139 anonymous reads cluster-info", "GET", info, "", 200, r#""jws-kubeconfig-"#),
        ("B140 anonymous reads /metrics", "GET", "/metrics", "", 403, r#"forbidden: User "{user}" cannot get path "/metrics""#),
        ("B141 anonymous reads /api", "GET", "/api", "", 403, r#"forbidden: User "{user}" cannot get path "/api""#),
        ("B142 anonymous reads /apis", "GET", "/apis", "", 403, r#"forbidden: User "{user}" cannot get path "/apis""#),
        ("B143 anonymous reads /api/v1", "GET", "/api/v1", "", 403, r#"forbidden: User "{user}" cannot get path "/api/v1""#),
        ("B144 anonymous reads /openapi/v2", "GET", "/openapi/v2", "", 403, r#"forbidden: User "{user}" cannot get path "/openapi/v2""#),
        ("B145 anonymous reads /openapi/v3", "GET", "/openapi/v3", "", 403, r#"forbidden: User "{user}" cannot get path "/openapi/v3""#),
        ("B146 anonymous reads /", "GET", "/", "", 403, r#"forbidden: User "{user}" cannot get path "/""#),
        ("B147 anonymous reads /healthz/x", "GET", "/healthz/x", "", 403, r#"forbidden: User "{user}" cannot get path "/healthz/x""#),
        ("B148 anonymous reads /version/x", "GET", "/version/x", "", 403, r#"forbidden: User "{user}" cannot get path "/version/x""#),
        ("B149 anonymous lists kube-public's ConfigMaps", "GET", "/api/v1/namespaces/kube-public/configmaps", "", 403,
         r#"configmaps is forbidden: User "{user}" cannot list resource "configmaps" in API group "" in the namespace "kube-public""#),
        ("B150 anonymous lists cluster-info by field selector", "GET", "/api/v1/namespaces/kube-public/configmaps?fieldSelector=metadata.name%3Dcluster-info", "", 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot list resource "configmaps" in API group "" in the namespace "kube-public""#),
        ("B151 anonymous watches cluster-info by field selector", "GET", "/api/v1/namespaces/kube-public/configmaps?watch=true&fieldSelector=metadata.name%3Dcluster-info", "", 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot watch resource "configmaps" in API group "" in the namespace "kube-public""#),
        ("B152 anonymous watches cluster-info with /watch/", "GET", "/api/v1/watch/namespaces/kube-public/configmaps/cluster-info", "", 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot watch resource "configmaps" in API group "" in the namespace "kube-public""#),
        ("B153 anonymous reads cluster-info in kube-system", "GET", "/api/v1/namespaces/kube-system/configmaps/cluster-info", "", 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot get resource "configmaps" in API group "" in the namespace "kube-system""#),
        ("B154 anonymous reads another kube-public ConfigMap", "GET", "/api/v1/namespaces/kube-public/configmaps/other", "", 403,
         r#"configmaps "other" is forbidden: User "{user}" cannot get resource "configmaps" in API group "" in the namespace "kube-public""#),
        ("B155 anonymous lists kube-system's Secrets", "GET", "/api/v1/namespaces/kube-system/secrets", "", 403,
         r#"secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" in the namespace "kube-system""#),
        ("B156 anonymous lists Nodes", "GET", "/api/v1/nodes", "", 403,
         r#"nodes is forbidden: User "{user}" cannot list resource "nodes" in API group "" at the cluster scope"#),
        ("B157 anonymous lists CSRs", "GET", CSRS, "", 403,
         r#"certificatesigningrequests.certificates.k8s.io is forbidden: User "{user}" cannot list resource "certificatesigningrequests" in API group "certificate"#),
        ("B158 anonymous reads cluster-info's status", "GET", &format!("{info}/status"), "", 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot get resource "configmaps/status" in API group "" in the namespace "kube-public""#),
        ("B159 anonymous climbs out of cluster-info with ..", "GET", &format!("{info}/../../secrets"), "", 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot get resource "configmaps/.." in API group "" in the namespace "kube-public""#),
        ("B160 anonymous climbs out of cluster-info with %2F", "GET", &format!("{info}%2F..%2F..%2Fsecrets"), "", 403,
         r#"configmaps "cluster-info%2F..%2F..%2Fsecrets" is forbidden: User "{user}" cannot get resource "configmaps" in API group "" in the namespace "kube-publ"#),
        ("B161 anonymous reads cluster-info in an empty namespace", "GET", "/api/v1/namespaces//configmaps/cluster-info", "", 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot get resource "configmaps" in API group "" at the cluster scope"#),
        ("B162 anonymous reads cluster-info after a doubled slash", "GET", "/api//v1/namespaces/kube-public/configmaps/cluster-info", "", 403,
         r#"v1 "namespaces" is forbidden: User "{user}" cannot get resource "v1/kube-public" in API group "" at the cluster scope"#),
        ("B163 anonymous lists ClusterRoles", "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles", "", 403,
         r#"clusterroles.rbac.authorization.k8s.io is forbidden: User "{user}" cannot list resource "clusterroles" in API group "rbac.authorization.k8s.io" at the"#),
        ("B164 anonymous replaces cluster-info", "PUT", info, planted, 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot update resource "configmaps" in API group "" in the namespace "kube-public""#),
        ("B165 anonymous patches cluster-info", "PATCH", info, r#"{"data":{"kubeconfig":"planted"}}"#, 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot patch resource "configmaps" in API group "" in the namespace "kube-public""#),
        ("B166 anonymous deletes cluster-info", "DELETE", info, "", 403,
         r#"configmaps "cluster-info" is forbidden: User "{user}" cannot delete resource "configmaps" in API group "" in the namespace "kube-public""#),
        ("B167 anonymous creates a CSR", "POST", CSRS, csr, 403,
         r#"certificatesigningrequests.certificates.k8s.io is forbidden: User "{user}" cannot create resource "certificatesigningrequests" in API group "certifica"#),
        ("B168 anonymous asks who it is", "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", ssr, 403,
         r#"selfsubjectreviews.authentication.k8s.io is forbidden: User "{user}" cannot create resource "selfsubjectreviews" in API group "authentication.k8s.io""#),
        ("B169 anonymous asks what it may do", "POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", ssar, 403,
         r#"selfsubjectaccessreviews.authorization.k8s.io is forbidden: User "{user}" cannot create resource "selfsubjectaccessreviews" in API group "authorizatio"#),
        ("B170 anonymous creates a namespace", "POST", "/api/v1/namespaces", r#"{"metadata":{"name":"mine"}}"#, 403,
         r#"namespaces is forbidden: User "{user}" cannot create resource "namespaces" in API group "" at the cluster scope"#),
        ("B171 anonymous sends OPTIONS for Secrets", "OPTIONS", "/api/v1/namespaces/kube-system/secrets", "", 403,
         r#"secrets is forbidden: User "{user}" cannot options resource "secrets" in API group "" in the namespace "kube-system""#),
    ];
    check(&s, &[], user, rows);
    #[rustfmt::skip]
    let with_headers: &[(&[&str], Row)] = &[
        // Over HTTP/1.1, as the review sent it (over HTTP/2 the server resets the stream).
        (&["--http1.1"], ("B172 anonymous sends HEAD for cluster-info", "HEAD", info, "", 200, "HTTP/1.1 200")),
        (&["-H", "Impersonate-User: system:admin"],
         ("B173 anonymous impersonates system:admin", "GET", "/api/v1/namespaces/kube-system/secrets", "", 403,
          r#"users "system:admin" is forbidden: User "{user}" cannot impersonate resource "users" in API group "" at the cluster scope"#)),
        (&["-H", "X-Remote-User: admin", "-H", "X-Remote-Group: system:masters"],
         ("B174 anonymous claims a front proxy's user and group", "GET", "/api/v1/namespaces/kube-system/secrets", "", 403,
          r#"secrets is forbidden: User "{user}" cannot list resource "secrets" in API group "" in the namespace "kube-system""#)),
    ];
    for &(headers, row) in with_headers {
        check(&s, headers, user, &[row]);
    }
    let (code, out) = s.curl(&[], info);
    assert_eq!(code, 200, "cluster-info is still there: {out}");
    assert!(!out.contains("planted"), "and unchanged: {out}");
}

#[test]
fn anonymous_requests_past_the_burst_get_429() {
    // B185: 80 requests on one connection, as fast as curl sends them: the default burst
    // of 40 goes through, and the rest are refused with a Retry-After rather than served.
    // The rate is 1 a second rather than the default 20, so that how fast this machine
    // sends them cannot matter.
    let s = Server::start_with(&["--anonymous-requests-per-second", "1"]);
    let url = format!("{}/healthz", s.url);
    let ca = s.ca().display().to_string();
    let mut args = vec!["-s", "--cacert", ca.as_str()];
    for _ in 0..80 {
        args.extend([
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %header{retry-after}\\n",
            &url,
        ]);
    }
    let out = std::process::Command::new("curl")
        .args(&args)
        .output()
        .expect("curl");
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 80, "{lines:?}");
    assert!(
        lines[..40].iter().all(|l| l.starts_with("200 ")),
        "{lines:?}"
    );
    let refused: Vec<&String> = lines.iter().filter(|l| l.starts_with("429 ")).collect();
    assert!(!refused.is_empty(), "{lines:?}");
    assert!(
        refused.iter().all(|l| l[4..].trim().parse::<u64>().is_ok()),
        "each 429 says when to retry: {lines:?}"
    );
    let (code, _) = s.admin_curl(&[], "/healthz");
    assert_eq!(code, 200, "authenticated users are not limited");
}

#[test]
fn a_user_may_grant_or_approve_only_what_it_holds() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let ca_key = s.dir.join("pki/ca.key");
    let tester = client_cert(d, "tester", "/O=grp-a/CN=tester", &s.ca(), &ca_key);
    let tester: Vec<&str> = tester.iter().map(String::as_str).collect();
    let roles = format!("{RBAC}/namespaces/default/roles");
    let rolebindings = format!("{RBAC}/namespaces/default/rolebindings");
    // tester may create RoleBindings and create, get and update Roles in default, but
    // holds neither bind nor escalate.
    let rb_writer = r#"{"metadata":{"name":"rb-writer"},"rules":[
        {"apiGroups":["rbac.authorization.k8s.io"],"resources":["rolebindings"],"verbs":["create"]},
        {"apiGroups":["rbac.authorization.k8s.io"],"resources":["roles"],"verbs":["create","get","update"]}]}"#;
    admin(&s, "POST", &roles, rb_writer, 201);
    let tester_rb_writer = binding("tester-rb-writer", "Role", "rb-writer", "tester");
    admin(&s, "POST", &rolebindings, &tester_rb_writer, 201);
    // tester may approve for the kubelet-client signer only, and sign for none.
    let approver = r#"{"metadata":{"name":"kubelet-client-approver"},"rules":[
        {"apiGroups":["certificates.k8s.io"],"resources":["certificatesigningrequests"],"verbs":["get","list","watch"]},
        {"apiGroups":["certificates.k8s.io"],"resources":["certificatesigningrequests/approval","certificatesigningrequests/status"],"verbs":["update"]},
        {"apiGroups":["certificates.k8s.io"],"resources":["signers"],"resourceNames":["kubernetes.io/kube-apiserver-client-kubelet"],"verbs":["approve"]}]}"#;
    admin(&s, "POST", &format!("{RBAC}/clusterroles"), approver, 201);
    let tester_approves = binding(
        "tester-approves",
        "ClusterRole",
        "kubelet-client-approver",
        "tester",
    );
    admin(
        &s,
        "POST",
        &format!("{RBAC}/clusterrolebindings"),
        &tester_approves,
        201,
    );
    admin_csr(&s, d, "approve-test");
    let rb_writer = format!("{roles}/rb-writer");
    let approve_test = format!("{CSRS}/approve-test");
    assert!(
        eventually(Duration::from_secs(10), || {
            request(&s, &tester, "GET", &rb_writer, "").0 == 200
                && request(&s, &tester, "GET", &approve_test, "").0 == 200
        }),
        "the authorizer follows the RBAC writes within moments"
    );

    let csr = get_csr(&s, "approve-test");
    let with_status = |status: serde_json::Value| {
        let mut v = csr.clone();
        v["status"] = status;
        v.to_string()
    };
    let approved = with_status(serde_json::json!(
        {"conditions": [{"type": "Approved", "status": "True", "reason": "Tester"}]}
    ));
    let ca_pem = b64(&std::fs::read(s.ca()).expect("read ca"));
    let certificate = with_status(serde_json::json!({"certificate": ca_pem}));
    let esc = binding("esc", "ClusterRole", "cluster-admin", "tester");
    let secrets = r#"[{"apiGroups":[""],"resources":["secrets"],"verbs":["*"]}]"#;
    let esc_role = format!(r#"{{"metadata":{{"name":"esc-role"}},"rules":{secrets}}}"#);
    let more =
        format!(r#"{{"metadata":{{"name":"rb-writer","namespace":"default"}},"rules":{secrets}}}"#);
    let grant = r#"user "{user}" (groups=["grp-a" "system:authenticated"]) is attempting to grant RBAC permissions not currently held"#;
    let grant = |object: &str| format!("{object} is forbidden: {grant}");
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("B175 tester binds cluster-admin without bind", "POST", &rolebindings, &esc, 403,
         &grant(r#"rolebindings.rbac.authorization.k8s.io "esc""#)),
        ("B176 tester creates a Role over Secrets without escalate", "POST", &roles, &esc_role, 403,
         &grant(r#"roles.rbac.authorization.k8s.io "esc-role""#)),
        ("B177 tester adds Secrets to its own Role", "PUT", &rb_writer, &more, 403,
         &grant(r#"roles.rbac.authorization.k8s.io "rb-writer""#)),
        ("B178 tester approves for the kube-apiserver-client signer", "PUT", &format!("{approve_test}/approval"), &approved, 403,
         r#"certificatesigningrequests.certificates.k8s.io "approve-test" is forbidden: user not permitted to approve requests with signerName "kubernetes.io/kube-apiserver"#),
        ("B179 tester writes a certificate without sign", "PUT", &format!("{approve_test}/status"), &certificate, 403,
         r#"certificatesigningrequests.certificates.k8s.io "approve-test" is forbidden: user not permitted to sign requests with signerName "kubernetes.io/kube-apiserver-cl"#),
        ("B180 tester adds Approved through /status", "PUT", &format!("{approve_test}/status"), &approved, 422,
         r#"status.conditions: Forbidden: updates may not add a condition of type "Approved""#),
    ];
    check(&s, &tester, "tester", rows);
    let v = get_csr(&s, "approve-test");
    assert!(
        !conditions(&v).contains(&"Approved".to_owned()) && !issued(&v),
        "B181 approve-test is neither approved nor issued: {v}"
    );
}

/// Sends each row as `who` (curl flags) and checks its code and message.
fn check(s: &Server, who: &[&str], user: &str, rows: &[Row]) {
    for &(case, method, path, body, code, needle) in rows {
        let (got, out) = request(s, who, method, path, body);
        assert_eq!(got, code, "{case}: {out}");
        let needle = needle.replace("{user}", user);
        let said = message(&out);
        assert!(said.contains(&needle), "{case}: {needle:?} not in {said}");
    }
}

/// One request with curl as `who`, its path sent as written (`..` included); a PATCH body
/// is a JSON merge patch.
fn request(s: &Server, who: &[&str], method: &str, path: &str, body: &str) -> (u16, String) {
    let mut args = who.to_vec();
    args.push("--path-as-is");
    match method {
        "HEAD" => args.push("--head"),
        _ => args.extend(["-X", method]),
    }
    if !body.is_empty() {
        let content_type = if method == "PATCH" { MERGE } else { JSON };
        args.extend(["-H", content_type, "--data-binary", body]);
    }
    s.curl(&args, path)
}

/// A Status's message, or the whole body when it is not a Status.
fn message(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| body.to_owned())
}

/// A request as the administrator, which must be answered with `code`.
fn admin(s: &Server, method: &str, path: &str, body: &str, code: u16) {
    let (cert, key) = s.admin_cert_files();
    let who = [
        "--cert",
        cert.to_str().expect("utf8"),
        "--key",
        key.to_str().expect("utf8"),
    ];
    let (got, out) = request(s, &who, method, path, body);
    assert_eq!(got, code, "admin {method} {path}: {out}");
}

/// The administrator's kube-apiserver-client CSR `name` for CN=jane.
fn admin_csr(s: &Server, dir: &Path, name: &str) {
    let request = csr_b64(dir, name, "/CN=jane", None);
    let body = csr_body(name, &request, APISERVER_CLIENT, &["client auth"], "");
    admin(s, "POST", CSRS, &body, 201);
}

fn node_json(name: &str) -> String {
    format!(r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{name}"}}}}"#)
}

fn lease_json(name: &str) -> String {
    format!(
        r#"{{"apiVersion":"coordination.k8s.io/v1","kind":"Lease","metadata":{{"name":"{name}"}},"spec":{{"holderIdentity":"{name}"}}}}"#
    )
}

/// A binding of the `kind` `role` to the user `user`: a RoleBinding or a ClusterRoleBinding
/// by the URL it is sent to.
fn binding(name: &str, kind: &str, role: &str, user: &str) -> String {
    format!(
        r#"{{"metadata":{{"name":"{name}"}},"roleRef":{{"apiGroup":"rbac.authorization.k8s.io","kind":"{kind}","name":"{role}"}},"subjects":[{{"kind":"User","apiGroup":"rbac.authorization.k8s.io","name":"{user}"}}]}}"#
    )
}

/// The names of a list's items.
fn item_names(list: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(list).unwrap_or_default();
    v["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

/// A CSR object named `name`; `rest` follows its spec (`,"status":{..}`, say).
fn csr_body(name: &str, request: &str, signer: &str, usages: &[&str], rest: &str) -> String {
    format!(
        r#"{{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{{"name":"{name}"}},"spec":{{"request":"{request}","signerName":"{signer}","usages":{}}}{rest}}}"#,
        serde_json::to_string(usages).expect("json")
    )
}

/// A P-256 request for `subject` from openssl (with `-addext ext` if given), in base64 as
/// `spec.request` carries it.
fn csr_b64(dir: &Path, name: &str, subject: &str, ext: Option<&str>) -> String {
    let Some(ext) = ext else {
        return b64(&csr_pem(dir, name, subject));
    };
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
            "-addext",
            ext,
        ],
    );
    b64(&std::fs::read(dir.join(csr)).expect("read csr"))
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn get_csr(s: &Server, name: &str) -> serde_json::Value {
    let (_, out) = s.admin_curl(&[], &format!("{CSRS}/{name}"));
    serde_json::from_str(&out).unwrap_or_default()
}

fn issued(v: &serde_json::Value) -> bool {
    v.pointer("/status/certificate")
        .and_then(|c| c.as_str())
        .is_some_and(|c| !c.is_empty())
}

fn conditions(v: &serde_json::Value) -> Vec<String> {
    v.pointer("/status/conditions")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|c| c["type"].as_str().map(str::to_owned))
        .collect()
}

/// Waits (at most 30 s) until `good`, created after `bad` by the same caller, is issued;
/// the approver has then seen `bad`, none of which may be approved or issued.
fn never_issued(s: &Server, good: &str, bad: &[&str]) {
    let mut last = serde_json::Value::Null;
    let done = eventually(Duration::from_secs(30), || {
        last = get_csr(s, good);
        issued(&last)
    });
    assert!(done, "the good request {good} is issued: {last}");
    for name in bad {
        let v = get_csr(s, name);
        assert_eq!(v["metadata"]["name"], *name, "{name} is there: {v}");
        assert!(
            !conditions(&v).contains(&"Approved".to_owned()) && !issued(&v),
            "{name} is neither approved nor issued: {v}"
        );
    }
}

/// A P-256 request whose subject is `rdns` (attribute OID, ASN.1 string tag, value), one
/// attribute per RDN, each encoded exactly as given: built here, as openssl writes one
/// string type for a whole subject. In base64, as `spec.request` carries it.
fn der_csr(rdns: &[(&[u8], u8, &str)]) -> String {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
    let key = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING).expect("P-256 key");
    let name: Vec<u8> = rdns
        .iter()
        .flat_map(|&(oid, tag, value)| {
            let text: Vec<u8> = match tag {
                BMP_STRING => value.encode_utf16().flat_map(u16::to_be_bytes).collect(),
                UNIVERSAL_STRING => value
                    .chars()
                    .flat_map(|c| u32::from(c).to_be_bytes())
                    .collect(),
                _ => value.as_bytes().to_vec(),
            };
            der(
                0x31,
                &der(0x30, &[der(0x06, oid), der(tag, &text)].concat()),
            )
        })
        .collect();
    let algorithm = [der(0x06, OID_EC_PUBLIC_KEY), der(0x06, OID_PRIME256V1)].concat();
    let point = [&[0][..], key.public_key().as_ref()].concat();
    let spki = [der(0x30, &algorithm), der(0x03, &point)].concat();
    let info = [
        der(0x02, &[0]),
        der(0x30, &name),
        der(0x30, &spki),
        der(0xa0, &[]),
    ];
    let info = der(0x30, &info.concat());
    let signature = key.sign(&SystemRandom::new(), &info).expect("sign");
    let signature = [&[0][..], signature.as_ref()].concat();
    let ecdsa_with_sha256 = der(0x30, &der(0x06, OID_ECDSA_WITH_SHA256));
    let csr = der(
        0x30,
        &[info, ecdsa_with_sha256, der(0x03, &signature)].concat(),
    );
    let body = b64(&csr);
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).expect("base64 is ASCII"))
        .collect();
    let pem = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        lines.join("\n")
    );
    b64(pem.as_bytes())
}

/// One DER element: `tag`, a definite length, `content` (shorter than 64 KiB).
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = u16::try_from(content.len()).expect("DER content under 64 KiB");
    let mut out = vec![tag];
    match u8::try_from(len) {
        Ok(short) if short < 0x80 => out.push(short),
        Ok(long) => out.extend([0x81, long]),
        Err(_) => {
            out.push(0x82);
            out.extend(len.to_be_bytes());
        }
    }
    out.extend_from_slice(content);
    out
}

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";
const RBAC: &str = "/apis/rbac.authorization.k8s.io/v1";
const SAR: &str =
    r#"{"spec":{"user":"system:admin","resourceAttributes":{"verb":"get","resource":"secrets"}}}"#;
const KUBELET_CLIENT: &str = "kubernetes.io/kube-apiserver-client-kubelet";
const KUBELET_SERVING: &str = "kubernetes.io/kubelet-serving";
const APISERVER_CLIENT: &str = "kubernetes.io/kube-apiserver-client";
const CLIENT: &[&str] = &["digital signature", "client auth"];
const SERVING: &[&str] = &["digital signature", "key encipherment", "server auth"];
const OID_O: &[u8] = &[0x55, 0x04, 0x0a];
const OID_CN: &[u8] = &[0x55, 0x04, 0x03];
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_PRIME256V1: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const UTF8_STRING: u8 = 0x0c;
const T61_STRING: u8 = 0x14;
const UNIVERSAL_STRING: u8 = 0x1c;
const BMP_STRING: u8 = 0x1e;
