//! The API on the wire with curl and openssl: authentication, authorization messages, and
//! bad input answered with kube-apiserver's Status codes while nothing is stored.

mod common;

use std::process::Command;

use common::{Server, client_cert, csr_pem, eventually, openssl};

fn token_of(s: &Server) -> String {
    let join = s
        .join_command
        .as_deref()
        .expect("a first start prints the join command");
    let mut words = join.split_whitespace();
    while let Some(w) = words.next() {
        if w == "--token" {
            return words.next().expect("token value").to_owned();
        }
    }
    panic!("no --token in {join}");
}

#[test]
fn anonymous_and_bootstrap_token_users_get_kubernetes_answers() {
    let s = Server::start();
    let (code, body) = s.curl(&[], "/healthz");
    assert_eq!((code, body.as_str()), (200, "ok"));
    let (code, body) = s.curl(&[], "/");
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(r#""message":"forbidden: User \"system:anonymous\" cannot get path \"/\"""#),
        "{body}"
    );

    let token = token_of(&s);
    let id = &token[..6];
    let bearer = format!("Authorization: Bearer {token}");
    let (code, body) = s.curl(&["-H", &bearer], "/");
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains(&format!(
            r#"User \"system:bootstrap:{id}\" cannot get path \"/\""#
        )),
        "{body}"
    );
    let (code, body) = s.curl(
        &["-H", &bearer],
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
    );
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("CertificateSigningRequestList"), "{body}");
    let (code, body) = s.curl(&["-H", &bearer], "/api/v1/namespaces/kube-system/secrets");
    assert_eq!(code, 403, "{body}");

    let wrong = format!("Authorization: Bearer {}.0000000000000000", id);
    let (code, body) = s.curl(
        &["-H", &wrong],
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
    );
    assert_eq!(code, 401);
    assert_eq!(
        body,
        r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}"#
    );
    let (code, _) = s.curl(&["-H", "Authorization: Bearer not-a-token"], "/healthz");
    assert_eq!(
        code, 401,
        "a bearer token nobody accepts is not downgraded to anonymous"
    );
}

#[test]
fn csr_requester_fields_come_from_the_authenticated_user() {
    let s = Server::start();
    let token = token_of(&s);
    let dir = tempfile::tempdir().expect("tempdir");
    let csr = csr_pem(dir.path(), "n", "/O=system:nodes/CN=system:node:n1");
    use base64::Engine;
    let body = format!(
        r#"{{"apiVersion":"certificates.k8s.io/v1","kind":"CertificateSigningRequest","metadata":{{"generateName":"csr-"}},
            "spec":{{"request":"{}","signerName":"kubernetes.io/kube-apiserver-client-kubelet","usages":["digital signature","client auth"],
                     "username":"system:admin","groups":["system:masters"]}},
            "status":{{"conditions":[{{"type":"Approved","status":"True"}}]}}}}"#,
        base64::engine::general_purpose::STANDARD.encode(csr)
    );
    let bearer = format!("Authorization: Bearer {token}");
    let (code, out) = s.curl(
        &[
            "-H",
            &bearer,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
        ],
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
    );
    assert_eq!(code, 201, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(
        v["spec"]["username"],
        format!("system:bootstrap:{}", &token[..6])
    );
    assert_eq!(
        v["spec"]["groups"],
        serde_json::json!([
            "system:bootstrappers",
            "system:bootstrappers:kubeadm:default-node-token",
            "system:authenticated"
        ])
    );
    assert!(
        v["status"]
            .get("conditions")
            .is_none_or(|c| c.as_array().is_some_and(|a| a.is_empty())),
        "no pre-approved CSRs: {out}"
    );
    let name = v["metadata"]["name"].as_str().expect("name");
    assert!(name.starts_with("csr-"));

    // The bootstrap user may not approve its own CSR.
    let approval = out.replace(
        r#""status":{}"#,
        r#""status":{"conditions":[{"type":"Approved","status":"True","reason":"Mine"}]}"#,
    );
    let (code, out) = s.curl(
        &[
            "-X",
            "PUT",
            "-H",
            &bearer,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &approval,
        ],
        &format!("/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval"),
    );
    assert_eq!(code, 403, "{out}");
}

#[test]
fn bad_input_gets_a_status_and_stores_nothing() {
    let s = Server::start();
    let (cert, key) = s.admin_cert_files();
    let admin = [
        "--cert",
        cert.to_str().expect("utf8"),
        "--key",
        key.to_str().expect("utf8"),
    ];
    let post = |path: &str, body: &str| {
        let mut args = admin.to_vec();
        args.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
        s.curl(&args, path)
    };
    let cms = "/api/v1/namespaces/default/configmaps";
    for (case, path, body, code, reason) in [
        ("malformed JSON", cms, "{not json", 400, "BadRequest"),
        (
            "wrong kind",
            cms,
            r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"a"}}"#,
            400,
            "BadRequest",
        ),
        (
            "wrong apiVersion",
            cms,
            r#"{"apiVersion":"v2","kind":"ConfigMap","metadata":{"name":"a"}}"#,
            400,
            "BadRequest",
        ),
        (
            "invalid name",
            cms,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#,
            422,
            "Invalid",
        ),
        (
            "no name",
            cms,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{}}"#,
            422,
            "Invalid",
        ),
        (
            "namespace mismatch",
            cms,
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"a","namespace":"kube-system"}}"#,
            400,
            "BadRequest",
        ),
        (
            "unknown resource",
            "/api/v1/namespaces/default/limitranges",
            r#"{}"#,
            404,
            "NotFound",
        ),
        (
            "missing namespace",
            "/api/v1/namespaces/nope/configmaps",
            r#"{"metadata":{"name":"a"}}"#,
            404,
            "NotFound",
        ),
        (
            "strict unknown field",
            "/api/v1/namespaces/default/configmaps?fieldValidation=Strict",
            r#"{"metadata":{"name":"a"},"bogus":1}"#,
            400,
            "BadRequest",
        ),
        (
            "bad CSR",
            "/apis/certificates.k8s.io/v1/certificatesigningrequests",
            r#"{"metadata":{"name":"c"},"spec":{"request":"bm90IGEgY3Ny","signerName":"kubernetes.io/kube-apiserver-client","usages":["client auth"]}}"#,
            422,
            "Invalid",
        ),
        (
            "bad secret type data",
            "/api/v1/namespaces/kube-system/secrets",
            r#"{"metadata":{"name":"bootstrap-token-abcdef"},"type":"bootstrap.kubernetes.io/token","stringData":{"token-id":"abcdef","token-secret":"short"}}"#,
            422,
            "Invalid",
        ),
    ] {
        let (got, out) = post(path, body);
        assert_eq!(got, code, "{case}: {out}");
        assert!(
            out.contains(&format!(r#""reason":"{reason}""#)) && out.contains(r#""kind":"Status""#),
            "{case}: {out}"
        );
    }
    let big = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(
        big.path(),
        format!(
            r#"{{"metadata":{{"name":"big"}},"data":{{"a":"{}"}}}}"#,
            "x".repeat(4 << 20)
        ),
    )
    .expect("write");
    let mut args = admin.to_vec();
    let at = format!("@{}", big.path().display());
    args.extend(["-H", "Content-Type: application/json", "--data-binary", &at]);
    let (code, out) = s.curl(&args, cms);
    assert_eq!(code, 413, "{out}");

    let (code, out) = s.curl(&admin, cms);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["items"], serde_json::json!([]), "nothing was stored");
    let (_, out) = s.curl(
        &admin,
        "/api/v1/namespaces/kube-system/secrets/bootstrap-token-abcdef",
    );
    assert!(out.contains("NotFound"), "{out}");
}

#[test]
fn a_client_certificate_from_another_ca_is_401() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-subj",
            "/CN=evil",
            "-days",
            "1",
        ],
    );
    let mallory = client_cert(
        d,
        "u",
        "/O=system:masters/CN=mallory",
        &d.join("ca.crt"),
        &d.join("ca.key"),
    );
    let (code, out) = s.curl(
        &mallory.each_ref().map(String::as_str),
        "/api/v1/namespaces",
    );
    assert_eq!(code, 401, "{out}");
    assert!(out.contains(r#""reason":"Unauthorized""#), "{out}");
}

#[test]
fn the_node_authorizer_limits_a_node_to_its_own_objects() {
    let s = Server::start();
    for n in ["n1", "n2"] {
        let body = format!(r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"{n}"}}}}"#);
        let (code, out) = s.admin_curl(
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &body,
            ],
            "/api/v1/nodes",
        );
        assert_eq!(code, 201, "{out}");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let node = client_cert(
        d,
        "n1",
        "/O=system:nodes/CN=system:node:n1",
        &s.ca(),
        &s.dir.join("pki/ca.key"),
    );
    let node = node.each_ref().map(String::as_str);
    let (code, out) = s.curl(&node, "/api/v1/nodes/n1");
    assert_eq!(code, 200, "{out}");
    let (code, out) = s.curl(&node, "/api/v1/nodes/n2");
    assert_eq!(code, 403, "{out}");
    assert!(out.contains(r#"nodes \"n2\" is forbidden: User \"system:node:n1\" cannot get resource \"nodes\" in API group \"\" at the cluster scope"#), "{out}");
    let (code, _) = s.curl(&node, "/api/v1/namespaces/kube-system/secrets");
    assert_eq!(code, 403);

    // A node may ask only for its own identity.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let create_csr = |pem: &[u8]| {
        let body = format!(
            r#"{{"metadata":{{"generateName":"csr-"}},"spec":{{"request":"{}","signerName":"kubernetes.io/kube-apiserver-client-kubelet","usages":["digital signature","client auth"]}}}}"#,
            b64.encode(pem)
        );
        let mut args = node.to_vec();
        args.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
        ]);
        s.curl(
            &args,
            "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        )
    };
    let other = csr_pem(d, "n", "/O=system:nodes/CN=system:node:n2");
    let (code, out) = create_csr(&other);
    assert_eq!(code, 403, "{out}");
    assert!(
        out.contains("can only create a node CSR with CN=system:node:n1"),
        "{out}"
    );
    // The same request with its signature broken is invalid before it is anything else, as
    // Kubernetes validates before its admission plugins run.
    let der_b64: String = String::from_utf8_lossy(&other)
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut der = b64.decode(der_b64).unwrap();
    *der.last_mut().unwrap() ^= 0x01;
    let tampered = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        b64.encode(&der)
    );
    let (code, out) = create_csr(tampered.as_bytes());
    assert_eq!(code, 422, "{out}");
    assert!(out.contains("spec.request"), "{out}");
    let (code, out) = create_csr(&csr_pem(d, "n", "/O=system:nodes/CN=system:node:n1"));
    assert_eq!(code, 201, "{out}");
    assert!(out.contains(r#""username":"system:node:n1""#), "{out}");
}

#[test]
fn metrics_count_requests_and_storage_commits() {
    let s = Server::start();
    let (code, _) = s.admin_curl(&[], "/api/v1/namespaces");
    assert_eq!(code, 200);
    let (code, body) = s.admin_curl(&[], "/metrics");
    assert_eq!(code, 200);
    assert!(
        body.contains(r#"apiserver_request_total{code="200",resource="namespaces",verb="list"} "#),
        "{body}"
    );
    assert!(body.contains("apiserver_request_duration_seconds_bucket{resource=\"namespaces\",verb=\"list\",le=\"0.005\"}"), "{body}");
    assert!(
        body.contains("kubeboot_storage_commit_duration_seconds_count "),
        "{body}"
    );
    assert!(body.contains("apiserver_registered_watchers "), "{body}");
    let (code, _) = s.curl(&[], "/metrics");
    assert_eq!(code, 403, "metrics are not public");
}

#[test]
fn the_server_chooses_aes_128_gcm_even_when_openssl_prefers_aes_256() {
    let s = Server::start();
    let addr = s.url.trim_start_matches("https://").to_owned();
    // OpenSSL lists TLS_AES_256_GCM_SHA384 first; the server answers with its own first
    // choice, and a client offering only AES-256 still connects.
    let handshake = |suites: &str| {
        let out = Command::new("openssl")
            .args([
                "s_client",
                "-connect",
                &addr,
                "-tls1_3",
                "-ciphersuites",
                suites,
            ])
            .arg("-CAfile")
            .arg(s.ca())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl s_client");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let both = handshake("TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256");
    assert!(both.contains("Verify return code: 0 (ok)"), "{both}");
    assert!(both.contains("Cipher is TLS_AES_128_GCM_SHA256"), "{both}");
    let only_256 = handshake("TLS_AES_256_GCM_SHA384");
    assert!(
        only_256.contains("Cipher is TLS_AES_256_GCM_SHA384"),
        "{only_256}"
    );
}

#[test]
fn the_http_version_is_the_one_tls_agreed_on() {
    let s = Server::start();
    // The body is dropped; `-w` prints the version where the body was, then the code.
    let version = |args: &[&str]| {
        let mut a = vec!["-o", "/dev/null", "-w", "%{http_version}\n%{http_code}"];
        a.extend_from_slice(args);
        let (code, body) = s.curl(&a, "/healthz");
        (code, body)
    };
    assert_eq!(version(&["--http2"]), (200, "2".to_owned()), "ALPN h2");
    assert_eq!(
        version(&["--http1.1"]),
        (200, "1.1".to_owned()),
        "ALPN http/1.1"
    );
    assert_eq!(
        version(&["--no-alpn", "--http1.1"]),
        (200, "1.1".to_owned()),
        "no ALPN"
    );
}

#[test]
fn a_client_that_never_finishes_its_handshake_blocks_nobody() {
    let s = Server::start();
    let addr = s.url.trim_start_matches("https://").to_owned();
    // Half-open connections: TCP up, no TLS handshake, held open.
    let idle: Vec<std::net::TcpStream> = (0..50)
        .map(|_| std::net::TcpStream::connect(&addr).expect("connect"))
        .collect();
    let (code, body) = s.curl(&[], "/healthz");
    assert_eq!((code, body.as_str()), (200, "ok"));
    drop(idle);
}

#[test]
fn apiserver_serves_with_kube_apiserver_flags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("d");
    let (child, url) = common::apiserver_from_init(
        &data,
        &dir.path().join("store"),
        &[
            "--authorization-mode",
            "Node,RBAC",
            "--anonymous-auth",
            "false",
        ],
    );
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .args(args)
            .arg(format!("--server={url}"))
            .env("KUBECONFIG", data.join("admin.conf"))
            .env("HOME", dir.path())
            .output()
            .expect("kubectl")
    };
    let out = kubectl(&["get", "namespaces", "-o", "name"]);
    drop(child);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("namespace/kube-system"));
}

#[test]
fn requests_cannot_reach_beyond_what_was_authorized() {
    let s = Server::start();
    use base64::Engine;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(r#"{"v":"meta.k8s.io/v1","rv":1,"start":"/registry/"}"#);
    let (code, out) = s.admin_curl(
        &[],
        &format!("/api/v1/namespaces/default/secrets?limit=5&continue={forged}"),
    );
    assert_eq!(
        code, 400,
        "a continue token of another list is refused: {out}"
    );
    let (code, _) = s.admin_curl(
        &["-X", "DELETE"],
        "/api/v1/namespaces/default/namespaces/kube-system",
    );
    assert_eq!(
        code, 404,
        "no namespace reached through another namespace's URL"
    );
    let (code, _) = s.admin_curl(&[], "/api/v1/namespaces/kube-system");
    assert_eq!(code, 200, "kube-system is still there");
    let (code, _) = s.admin_curl(
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"metadata":{"name":"other"}}"#,
        ],
        "/api/v1/namespaces/default/configmaps/foo",
    );
    assert_eq!(code, 405, "create at a named URL is not allowed");
    // A timeout beyond an int64 is refused as kube-apiserver's decoding refuses it.
    let (code, out) = s.admin_curl(
        &["--max-time", "5"],
        "/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=18446744073709551615",
    );
    assert_eq!(code, 400, "{out}");
    assert!(out.contains("value out of range"), "{out}");
    let (code, _) = s.admin_curl(&[], "/healthz");
    assert_eq!(code, 200);

    // Approved/Denied change only through /approval.
    let dir = tempfile::tempdir().expect("tempdir");
    let csr = csr_pem(dir.path(), "n", "/CN=jane");
    let body = format!(
        r#"{{"metadata":{{"name":"via-status"}},"spec":{{"request":"{}","signerName":"kubernetes.io/kube-apiserver-client","usages":["client auth"]}}}}"#,
        base64::engine::general_purpose::STANDARD.encode(csr)
    );
    let (code, out) = s.admin_curl(
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
        ],
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
    );
    assert_eq!(code, 201, "{out}");
    let with_approval = out.replace(
        r#""status":{}"#,
        r#""status":{"conditions":[{"type":"Approved","status":"True","reason":"Sneaky"}]}"#,
    );
    let put = |body: &str, sub: &str| {
        let flags = [
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ];
        let path =
            format!("/apis/certificates.k8s.io/v1/certificatesigningrequests/via-status/{sub}");
        s.admin_curl(&flags, &path)
    };
    let (code, out) = put(&with_approval, "status");
    // Seen before the fix: 200, the condition dropped and the client told it succeeded.
    assert_eq!(code, 422, "{out}");
    assert!(
        out.contains(
            r#"status.conditions: Forbidden: updates may not add a condition of type \"Approved\""#
        ),
        "{out}"
    );
    let (_, now) = s.admin_curl(
        &[],
        "/apis/certificates.k8s.io/v1/certificatesigningrequests/via-status",
    );
    assert!(!now.contains("Sneaky"), "nothing was written: {now}");
    // Both decisions at once: refused at the second, as validateConditions reports it
    // (seen before the fix: at `status.conditions`, with an empty value).
    let both = with_approval.replace(
        r#"{"type":"Approved","status":"True","reason":"Sneaky"}"#,
        r#"{"type":"Approved","status":"True"},{"type":"Denied","status":"True"}"#,
    );
    let (code, said) = put(&both, "approval");
    assert_eq!(code, 422, "{said}");
    assert!(
        said.contains(r#"status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"#),
        "{said}"
    );
}

#[test]
fn rbac_cannot_be_used_to_escalate() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let alice = client_cert(d, "alice", "/CN=alice", &s.ca(), &s.dir.join("pki/ca.key"));
    let alice = alice.each_ref().map(String::as_str);
    let admin_post = |path: &str, body: &str| {
        let (code, out) = s.admin_curl(
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ],
            path,
        );
        assert_eq!(code, 201, "{out}");
    };
    admin_post("/api/v1/namespaces", r#"{"metadata":{"name":"team"}}"#);
    admin_post(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles",
        r#"{"metadata":{"name":"binder"},"rules":[{"apiGroups":["rbac.authorization.k8s.io"],"resources":["rolebindings"],"verbs":["create"]}]}"#,
    );
    admin_post(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
        r#"{"metadata":{"name":"alice-binder"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"binder"},"subjects":[{"kind":"User","name":"alice"}]}"#,
    );
    let grab = r#"{"metadata":{"name":"grab"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"User","name":"alice"}]}"#;
    let post_as_alice = |body: &str| {
        let mut args = alice.to_vec();
        args.extend([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            body,
        ]);
        let mut result = (0, String::new());
        // The RBAC snapshot follows writes within moments.
        for _ in 0..50 {
            result = s.curl(
                &args,
                "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
            );
            if result.0 != 403 || result.1.contains("attempting to grant") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        result
    };
    let (code, out) = post_as_alice(grab);
    assert_eq!(code, 403, "{out}");
    assert!(
        out.contains("attempting to grant RBAC permissions not currently held"),
        "{out}"
    );
    admin_post(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles",
        r#"{"metadata":{"name":"may-bind-view"},"rules":[{"apiGroups":["rbac.authorization.k8s.io"],"resources":["clusterroles"],"resourceNames":["system:basic-user"],"verbs":["bind"]}]}"#,
    );
    admin_post(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings",
        r#"{"metadata":{"name":"alice-may-bind"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":"may-bind-view"},"subjects":[{"kind":"User","name":"alice"}]}"#,
    );
    let ok_binding = r#"{"metadata":{"name":"fine"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"system:basic-user"},"subjects":[{"kind":"User","name":"bob"}]}"#;
    // Until the RBAC snapshot has the new binding, the request is refused (at most 10 s).
    let (mut code, mut out) = (0, String::new());
    eventually(std::time::Duration::from_secs(10), || {
        (code, out) = post_as_alice(ok_binding);
        code != 403
    });
    assert_eq!(code, 201, "binding a role one may bind works: {out}");
}
