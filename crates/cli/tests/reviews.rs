//! The review APIs a kubelet, metrics-server or kube-rbac-proxy calls, as kube-apiserver
//! serves them: TokenReview (who a bearer token is), LocalSubjectAccessReview (may they, in
//! this namespace), and the access reviews held to kube-apiserver's validation. Seen
//! before: `tokenreviews` and `localsubjectaccessreviews` were 404s, and a
//! SubjectAccessReview naming no user or group was answered.

mod common;

use common::{Server, ok};
use serde_json::{Value, json};

fn post(s: &Server, path: &str, body: &Value) -> (u16, Value) {
    let (code, text) = s.admin_send("POST", path, body);
    (
        code,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

const TOKEN_REVIEWS: &str = "/apis/authentication.k8s.io/v1/tokenreviews";

#[test]
fn a_token_review_says_who_a_bootstrap_token_is() {
    let s = Server::start();
    let token = s.token();
    let review = |token: &str, audiences: &[&str]| {
        let mut spec = json!({"token": token});
        if !audiences.is_empty() {
            spec["audiences"] = json!(audiences);
        }
        post(
            &s,
            TOKEN_REVIEWS,
            &json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec}),
        )
    };
    let (code, known) = review(&token, &[]);
    assert_eq!(code, 201, "{known}");
    let status = &known["status"];
    assert_eq!(status["authenticated"], true, "{known}");
    assert_eq!(
        status["user"]["username"],
        format!("system:bootstrap:{}", &token[..6])
    );
    let groups = status["user"]["groups"].as_array().expect("groups");
    for g in ["system:bootstrappers", "system:authenticated"] {
        assert!(groups.contains(&json!(g)), "{g} in {groups:?}");
    }
    assert_eq!(
        status["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    // An unknown token, and one asked for an audience it is not for.
    let unknown = format!("{}.0000000000000000", &token[..6]);
    for (token, audiences) in [
        (unknown.as_str(), &[][..]),
        (token.as_str(), &["example.com"][..]),
    ] {
        let (code, answer) = review(token, audiences);
        assert_eq!(code, 201, "{answer}");
        assert_eq!(answer["status"], json!({"user": {}}), "{answer}");
    }
    let (code, answer) = review("", &[]);
    assert_eq!(
        (code, answer["message"].as_str()),
        (
            400,
            Some("token is required for TokenReview in authentication")
        )
    );
    let resources = ok(
        s.kubectl(
            "kubectl",
            &[
                "api-resources",
                "--api-group=authentication.k8s.io",
                "-o",
                "name",
            ],
        ),
        "discovery",
    );
    assert!(
        resources
            .lines()
            .any(|l| l == "tokenreviews.authentication.k8s.io"),
        "{resources}"
    );
}

#[test]
fn access_reviews_are_held_to_kubernetes_validation() {
    let s = Server::start();
    let lsar = "/apis/authorization.k8s.io/v1/namespaces/default/localsubjectaccessreviews";
    let resource = |ns: &str| json!({"verb": "get", "resource": "configmaps", "namespace": ns});
    let (code, answer) = post(
        &s,
        lsar,
        &json!({"spec": {"user": "zed", "resourceAttributes": resource("default")}}),
    );
    assert_eq!(code, 201, "{answer}");
    assert_eq!(answer["kind"], "LocalSubjectAccessReview");
    assert_eq!(answer["metadata"]["namespace"], "default");
    assert_eq!(answer["status"]["allowed"], false, "{answer}");
    // (path, spec, the message kube-apiserver gives)
    let sar = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let ssar = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let healthz = json!({"path": "/healthz", "verb": "get"});
    let cases = [
        (
            lsar,
            json!({"user": "zed", "resourceAttributes": resource("other")}),
            r#"spec.resourceAttributes.namespace: Invalid value: "other": must match metadata.namespace"#,
        ),
        (
            lsar,
            json!({"user": "zed", "nonResourceAttributes": healthz}),
            r#"spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/healthz", Verb:"get"}: disallowed on this kind of request"#,
        ),
        (
            sar,
            json!({"resourceAttributes": resource("default")}),
            r#"spec.user: Invalid value: "": at least one of user or group must be specified"#,
        ),
        (
            ssar,
            json!({"resourceAttributes": resource("default"), "nonResourceAttributes": healthz}),
            r#"spec.nonResourceAttributes: Invalid value: authorization.NonResourceAttributes{Path:"/healthz", Verb:"get"}: cannot be specified in combination with resourceAttributes"#,
        ),
        (
            ssar,
            json!({}),
            r#"spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified"#,
        ),
    ];
    for (path, spec, says) in cases {
        let (code, answer) = post(&s, path, &json!({"spec": spec}));
        assert_eq!(code, 422, "{path} {spec}: {answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{path} {spec}: {message}");
    }
    // A `null` kind of attributes is none: the review asks what the other one says.
    let healthz_only = json!({"spec": {"user": "zed", "groups": ["system:authenticated"],
        "resourceAttributes": null, "nonResourceAttributes": healthz}});
    let (code, answer) = post(&s, sar, &healthz_only);
    assert_eq!(
        (code, &answer["status"]["allowed"]),
        (201, &json!(true)),
        "{answer}"
    );
    let not_an_object = json!({"spec": {"user": "zed", "resourceAttributes": "x"}});
    assert_eq!(post(&s, sar, &not_an_object).0, 400);
    // A cluster-wide review has no namespaced URL, a namespaced one no cluster-wide one.
    let (code, _) = s.admin_curl(
        &["-X", "POST"],
        "/apis/authorization.k8s.io/v1/namespaces/default/subjectaccessreviews",
    );
    assert_eq!(code, 404);
    let (code, _) = s.admin_curl(
        &["-X", "POST"],
        "/apis/authorization.k8s.io/v1/localsubjectaccessreviews",
    );
    assert_eq!(code, 404);
}
