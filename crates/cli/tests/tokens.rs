//! Bootstrap tokens end to end: `kubeboot token`, the authenticator, cluster-info and its
//! signatures, expiry and deletion, a Secret written by hand, and the anonymous rate limit.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Server, bin, eventually, ok};

fn token_cmd(s: &Server, args: &[&str]) -> String {
    let out = Command::new(bin())
        .arg("token")
        .args(args)
        .arg("--kubeconfig")
        .arg(s.kubeconfig())
        .output()
        .expect("kubeboot token");
    assert!(
        out.status.success(),
        "token {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cluster_info(s: &Server) -> serde_json::Value {
    let (code, body) = s.curl(
        &[],
        "/api/v1/namespaces/kube-public/configmaps/cluster-info",
    );
    assert_eq!(code, 200, "anonymous may read cluster-info: {body}");
    serde_json::from_str(&body).expect("json")
}

fn bearer_code(s: &Server, token: &str, path: &str) -> u16 {
    s.curl(&["-H", &format!("Authorization: Bearer {token}")], path)
        .0
}

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

#[test]
fn token_commands_signatures_and_authentication() {
    let s = Server::start();
    let generated = token_cmd(&s, &["generate"]);
    assert!(
        generated
            .trim()
            .parse::<kubeboot_bootstrap::BootstrapToken>()
            .is_ok(),
        "{generated}"
    );

    let join = token_cmd(
        &s,
        &["create", "--print-join-command", "--description", "rack 7"],
    );
    let token = join
        .split_whitespace()
        .skip_while(|w| *w != "--token")
        .nth(1)
        .expect("token")
        .to_owned();
    assert!(
        join.starts_with(&format!(
            "kubeboot join {} --token ",
            s.url.trim_start_matches("https://")
        )),
        "{join}"
    );
    let pin = kubeboot_pki::pin::pem_cert_pin(&std::fs::read(s.ca()).expect("ca")).expect("pin");
    assert!(
        join.contains(&format!("--discovery-token-ca-cert-hash {pin}")),
        "{join}"
    );
    let id = &token[..6];

    let list = token_cmd(&s, &["list"]);
    let header = list.lines().next().expect("header");
    assert!(
        header.starts_with("TOKEN")
            && header.contains("TTL")
            && header.contains("EXPIRES")
            && header.contains("USAGES")
            && header.contains("DESCRIPTION")
            && header.contains("EXTRA GROUPS"),
        "{list}"
    );
    let row = list
        .lines()
        .find(|l| l.starts_with(&token))
        .expect("the token is listed");
    assert!(
        row.contains("authentication,signing")
            && row.contains("rack 7")
            && row.contains("system:bootstrappers:kubeadm:default-node-token"),
        "{row}"
    );
    let json = token_cmd(&s, &["list", "-o", "json"]);
    assert!(
        json.contains("\"kind\": \"BootstrapToken\"") && json.contains(&token),
        "{json}"
    );

    // The signer signs cluster-info for the new token, verifiably.
    assert!(
        eventually(Duration::from_secs(10), || cluster_info(&s)["data"]
            .get(format!("jws-kubeconfig-{id}"))
            .is_some()),
        "signature appears"
    );
    let cm = cluster_info(&s);
    let kubeconfig = cm["data"]["kubeconfig"].as_str().expect("kubeconfig");
    let jws = cm["data"][format!("jws-kubeconfig-{id}")]
        .as_str()
        .expect("jws");
    assert!(kubeboot_bootstrap::jws::verify_detached(
        jws,
        kubeconfig,
        id,
        &token[7..]
    ));
    assert!(
        kubeconfig.contains(&format!("server: {}", s.url)),
        "{kubeconfig}"
    );
    let tampered = kubeconfig.replace(&s.url, "https://10.6.6.6:6443");
    assert!(
        !kubeboot_bootstrap::jws::verify_detached(jws, &tampered, id, &token[7..]),
        "our verifier detects a swapped server"
    );

    // The token authenticates as system:bootstrap:<id>.
    let (code, body) = s.curl(&["-H", &format!("Authorization: Bearer {token}")], "/");
    assert_eq!(code, 403);
    assert!(
        body.contains(&format!(
            r#"User \"system:bootstrap:{id}\" cannot get path \"/\""#
        )),
        "{body}"
    );
    assert_eq!(bearer_code(&s, &token, CSRS), 200);

    // Deleting it stops it at once and removes its signature.
    let out = token_cmd(&s, &["delete", id]);
    assert_eq!(out.trim(), format!("bootstrap token \"{id}\" deleted"));
    assert_eq!(
        bearer_code(&s, &token, CSRS),
        401,
        "no cache outlives the Secret"
    );
    assert!(
        eventually(Duration::from_secs(10), || cluster_info(&s)["data"]
            .get(format!("jws-kubeconfig-{id}"))
            .is_none()),
        "signature removed"
    );
}

#[test]
fn an_expired_token_stops_working_and_its_secret_and_signature_go() {
    let s = Server::start();
    let token = token_cmd(&s, &["create", "--ttl", "3s"]).trim().to_owned();
    let id = token[..6].to_owned();
    assert_eq!(bearer_code(&s, &token, CSRS), 200);
    assert!(eventually(Duration::from_secs(10), || {
        cluster_info(&s)["data"]
            .get(format!("jws-kubeconfig-{id}"))
            .is_some()
    }));
    assert!(
        eventually(Duration::from_secs(15), || bearer_code(&s, &token, CSRS)
            == 401),
        "expired tokens are refused"
    );
    assert!(
        eventually(Duration::from_secs(15), || {
            s.admin_curl(
                &[],
                &format!("/api/v1/namespaces/kube-system/secrets/bootstrap-token-{id}"),
            )
            .0 == 404
        }),
        "the token cleaner deletes the Secret"
    );
    assert!(
        eventually(Duration::from_secs(15), || cluster_info(&s)["data"]
            .get(format!("jws-kubeconfig-{id}"))
            .is_none()),
        "the signer drops its signature"
    );
}

#[test]
fn a_token_secret_written_by_hand_works() {
    let s = Server::start();
    let expiration = kubeboot_api::clock::format_rfc3339(
        std::time::SystemTime::now() + Duration::from_secs(3600),
    );
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: bootstrap-token-07401b\n  namespace: kube-system\ntype: bootstrap.kubernetes.io/token\nstringData:\n  description: \"The default bootstrap token generated by 'kubeadm init'.\"\n  token-id: 07401b\n  token-secret: f395accd246ae52d\n  expiration: {expiration}\n  usage-bootstrap-authentication: \"true\"\n  usage-bootstrap-signing: \"true\"\n  auth-extra-groups: system:bootstrappers:worker,system:bootstrappers:ingress\n"
    );
    ok(
        s.kubectl_as(
            "kubectl",
            &s.kubeconfig(),
            &["create", "-f", "-"],
            Some(&manifest),
        ),
        "kubectl create -f secret",
    );
    let token = "07401b.f395accd246ae52d";
    assert_eq!(
        bearer_code(
            &s,
            token,
            "/apis/certificates.k8s.io/v1/certificatesigningrequests"
        ),
        403,
        "authenticated, but the worker group has no CSR rights"
    );
    let (code, body) = s.curl(&["-H", &format!("Authorization: Bearer {token}")], "/");
    assert_eq!(code, 403);
    assert!(body.contains("system:bootstrap:07401b"), "{body}");
    assert!(
        eventually(Duration::from_secs(10), || cluster_info(&s)["data"]
            .get("jws-kubeconfig-07401b")
            .is_some()),
        "signed within the bound"
    );

    // The seed guide's filter prints the token from the Secrets.
    let script = format!(
        "KUBECONFIG={} kubectl -n kube-system get secrets -o json | jq -r '.items[] | select(.type == \"bootstrap.kubernetes.io/token\") | (.data[\"token-id\"] | @base64d) + \".\" + (.data[\"token-secret\"] | @base64d)'",
        s.kubeconfig().display()
    );
    let out = Command::new("sh")
        .args(["-c", &script])
        .env("HOME", &s.dir)
        .output()
        .expect("sh");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .any(|l| l == token),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn anonymous_requests_are_rate_limited_per_address() {
    let s = Server::start_with(&[
        "--anonymous-requests-per-second",
        "1",
        "--anonymous-burst",
        "3",
    ]);
    let codes: Vec<u16> = (0..6).map(|_| s.curl(&[], "/healthz").0).collect();
    assert_eq!(&codes[..3], &[200, 200, 200], "{codes:?}");
    assert!(codes[3..].contains(&429), "{codes:?}");
    let out = Command::new("curl")
        .args(["-s", "-i", "--cacert"])
        .arg(s.ca())
        .arg(format!("{}/healthz", s.url))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        text.contains("retry-after:") && text.contains("\"reason\":\"toomanyrequests\""),
        "{text}"
    );
    let (code, _) = s.admin_curl(&[], "/healthz");
    assert_eq!(code, 200, "authenticated users are not limited");
}

#[test]
fn a_bearer_token_after_two_spaces_is_no_token() {
    let s = Server::start();
    let token = s.token();
    let csr = |header: &str| {
        s.curl(
            &[
                "-H",
                header,
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "{}",
            ],
            CSRS,
        )
        .0
    };
    // Kubernetes splits the header on single spaces: the token is then empty, and the
    // request is anonymous, which may not create CSRs.
    assert_eq!(csr(&format!("Authorization: Bearer  {token}")), 403);
    // As the token, the same body is merely invalid.
    assert_eq!(csr(&format!("Authorization: Bearer {token}")), 422);
    assert_eq!(
        bearer_code(&s, &format!("{token} extra"), CSRS),
        200,
        "a third part is ignored"
    );
}
