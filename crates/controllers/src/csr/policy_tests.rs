//! Tables of CSRs against every signer rule and recogniser, with RSA, ECDSA and Ed25519
//! keys, and the issued certificate checked field by field.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use kubeboot_pki::cert::{random_serial, subject};
use kubeboot_pki::csr::{CsrRequest, create_pem, parse_pem};
use kubeboot_pki::{CertificateAuthority, KeyAlgorithm, PrivateKey};
use x509_parser::prelude::*;

use super::CsrView;
use super::policy::*;

fn csr(
    alg: KeyAlgorithm,
    cn: &str,
    orgs: &[&str],
    dns: &[&str],
    ips: &[&str],
    emails: &[&str],
) -> kubeboot_pki::csr::ParsedCsr {
    let key = PrivateKey::generate(alg).unwrap();
    let req = CsrRequest {
        subject: subject(cn, &orgs.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        dns_names: dns.iter().map(|s| s.to_string()).collect(),
        ip_addresses: ips.iter().map(|s| s.parse::<IpAddr>().unwrap()).collect(),
        emails: emails.iter().map(|s| s.to_string()).collect(),
        uris: vec![],
    };
    parse_pem(create_pem(&key, &req).unwrap().as_bytes()).unwrap()
}

fn usages(u: &[&str]) -> Vec<String> {
    u.iter().map(|s| s.to_string()).collect()
}

const ALGS: [KeyAlgorithm; 3] = [
    KeyAlgorithm::EcdsaP256,
    KeyAlgorithm::Rsa(2048),
    KeyAlgorithm::Ed25519,
];

#[test]
fn kubelet_client_rules_in_kubernetes_order() {
    for alg in ALGS {
        let node = ["system:nodes"];
        let ok2 = usages(&["digital signature", "client auth"]);
        for (case, c, u, want) in [
            (
                "valid, two usages",
                csr(alg, "system:node:n1", &node, &[], &[], &[]),
                ok2.clone(),
                None,
            ),
            (
                "valid, three usages",
                csr(alg, "system:node:n1", &node, &[], &[], &[]),
                usages(&["key encipherment", "digital signature", "client auth"]),
                None,
            ),
            (
                "wrong org",
                csr(alg, "system:node:n1", &["system:masters"], &[], &[], &[]),
                ok2.clone(),
                Some("subject organization is not system:nodes"),
            ),
            (
                "two orgs",
                csr(alg, "system:node:n1", &["system:nodes", "x"], &[], &[], &[]),
                ok2.clone(),
                Some("subject organization is not system:nodes"),
            ),
            (
                "DNS SAN",
                csr(alg, "system:node:n1", &node, &["n1"], &[], &[]),
                ok2.clone(),
                Some("DNS subjectAltNames are not allowed"),
            ),
            (
                "email SAN",
                csr(alg, "system:node:n1", &node, &[], &[], &["a@b.c"]),
                ok2.clone(),
                Some("Email subjectAltNames are not allowed"),
            ),
            (
                "IP SAN",
                csr(alg, "system:node:n1", &node, &[], &["10.0.0.1"], &[]),
                ok2.clone(),
                Some("IP subjectAltNames are not allowed"),
            ),
            (
                "bad CN",
                csr(alg, "n1", &node, &[], &[], &[]),
                ok2.clone(),
                Some("subject common name does not begin with system:node:"),
            ),
            (
                "server usage",
                csr(alg, "system:node:n1", &node, &[], &[], &[]),
                usages(&["digital signature", "server auth"]),
                Some("usages did not match [client auth digital signature key encipherment]"),
            ),
        ] {
            assert_eq!(
                signer_violation(KUBELET_CLIENT, &c, &u).as_deref(),
                want,
                "{alg:?}: {case}"
            );
        }
    }
}

#[test]
fn kubelet_serving_and_apiserver_client_rules() {
    for alg in ALGS {
        let node = ["system:nodes"];
        let serving = usages(&["digital signature", "server auth"]);
        for (case, c, u, want) in [
            (
                "valid",
                csr(alg, "system:node:n1", &node, &["n1"], &["10.0.0.1"], &[]),
                serving.clone(),
                None,
            ),
            (
                "no SAN",
                csr(alg, "system:node:n1", &node, &[], &[], &[]),
                serving.clone(),
                Some("DNS or IP subjectAltName is required"),
            ),
            (
                "email",
                csr(alg, "system:node:n1", &node, &["n1"], &[], &["a@b.c"]),
                serving.clone(),
                Some("Email subjectAltNames are not allowed"),
            ),
            (
                "client usage",
                csr(alg, "system:node:n1", &node, &["n1"], &[], &[]),
                usages(&["digital signature", "client auth"]),
                Some("usages did not match [digital signature key encipherment server auth]"),
            ),
            (
                "bad CN",
                csr(alg, "n1", &node, &["n1"], &[], &[]),
                serving.clone(),
                Some("subject common name does not begin with system:node:"),
            ),
            (
                "wrong org",
                csr(alg, "system:node:n1", &[], &["n1"], &[], &[]),
                serving.clone(),
                Some("subject organization is not system:nodes"),
            ),
        ] {
            assert_eq!(
                signer_violation(KUBELET_SERVING, &c, &u).as_deref(),
                want,
                "{alg:?}: {case}"
            );
        }
        let any = csr(alg, "jane", &["devs"], &[], &[], &[]);
        for (case, u, want) in [
            ("client auth", usages(&["client auth"]), None),
            (
                "with optional",
                usages(&["digital signature", "key encipherment", "client auth"]),
                None,
            ),
            (
                "no client auth",
                usages(&["digital signature"]),
                Some("missing required usage for client certificate: client auth"),
            ),
            (
                "server auth",
                usages(&["client auth", "server auth"]),
                Some("invalid usage for client certificate: server auth"),
            ),
        ] {
            assert_eq!(
                signer_violation(KUBE_APISERVER_CLIENT, &any, &u).as_deref(),
                want,
                "{alg:?}: {case}"
            );
        }
        assert_eq!(
            signer_violation(LEGACY_UNKNOWN, &any, &usages(&["any"])),
            None
        );
    }
}

fn view(signer: &str, username: &str, u: &[&str]) -> CsrView {
    CsrView {
        name: "csr-1".into(),
        uid: "u".into(),
        created: None,
        signer: signer.into(),
        username: username.into(),
        usages: usages(u),
        expiration_seconds: None,
        conditions: vec![],
        certificate: vec![],
    }
}

#[test]
fn recognisers_match_as_kubernetes_approver() {
    let c = csr(
        KeyAlgorithm::EcdsaP256,
        "system:node:n1",
        &["system:nodes"],
        &[],
        &[],
        &[],
    );
    let client = ["digital signature", "client auth"];
    assert_eq!(
        recognize(
            &view(KUBELET_CLIENT, "system:bootstrap:abcdef", &client),
            &c
        ),
        [Recognizer::NodeClient]
    );
    assert_eq!(
        recognize(&view(KUBELET_CLIENT, "system:node:n1", &client), &c),
        [Recognizer::SelfNodeClient, Recognizer::NodeClient]
    );
    assert_eq!(
        recognize(&view(KUBELET_CLIENT, "system:node:n2", &client), &c),
        [Recognizer::NodeClient],
        "n2 asking for n1 is only a node client request"
    );
    let masters = csr(
        KeyAlgorithm::EcdsaP256,
        "system:node:n1",
        &["system:masters"],
        &[],
        &[],
        &[],
    );
    assert!(
        recognize(
            &view(KUBELET_CLIENT, "system:bootstrap:abcdef", &client),
            &masters
        )
        .is_empty()
    );
    assert!(
        recognize(
            &view(KUBE_APISERVER_CLIENT, "system:bootstrap:abcdef", &client),
            &c
        )
        .is_empty()
    );
}

#[test]
fn the_issued_certificate_field_by_field() {
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let ca = CertificateAuthority::create(
        "kubernetes",
        KeyAlgorithm::EcdsaP256,
        now - Duration::from_secs(60),
        Duration::from_secs(3650 * 86400),
        random_serial(),
    )
    .unwrap();
    let policy = SigningPolicy {
        max_duration: Duration::from_secs(8760 * 3600),
    };
    for alg in ALGS {
        let c = csr(
            alg,
            "system:node:n1",
            &["system:nodes"],
            &["n1.example"],
            &["10.0.0.5"],
            &[],
        );
        let mut v = view(
            KUBELET_SERVING,
            "system:node:n1",
            &["server auth", "digital signature", "key encipherment"],
        );
        let spec = leaf_spec(&policy, &v, &c, ca.not_after(), now, [7; 16]).unwrap();
        assert_eq!(spec.serial, [7; 16], "the serial is the caller's");
        let cert = ca.issue_for_spki(&spec, &c.spki_der).unwrap();
        let (_, x) = X509Certificate::from_der(&cert.der).unwrap();
        let (_, cax) = X509Certificate::from_der(ca.cert_der()).unwrap();
        x.verify_signature(Some(cax.public_key())).unwrap();
        assert_eq!(x.issuer().to_string(), "CN=kubernetes");
        assert_eq!(x.subject().to_string(), "O=system:nodes, CN=system:node:n1");
        assert_eq!(
            x.validity().not_before.timestamp(),
            1_800_000_000 - 300,
            "{alg:?}: backdated 5 minutes"
        );
        assert_eq!(
            x.validity().not_after.timestamp(),
            1_800_000_000 + 8760 * 3600 - 300,
            "{alg:?}: TTL minus the backdate"
        );
        assert!(
            x.raw_serial().len() >= 15 && x.raw_serial().len() <= 16,
            "128-bit serial"
        );
        let ku = x.key_usage().unwrap().unwrap().value;
        assert!(ku.digital_signature() && ku.key_encipherment() && !ku.key_cert_sign());
        let eku = x.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let san = x.subject_alternative_name().unwrap().unwrap().value;
        assert_eq!(san.general_names.len(), 2);
        assert!(!x.is_ca());
        assert!(x.public_key().raw == c.spki_der.as_slice(), "the CSR's key");

        // expirationSeconds shortens; under 8h no backdate on the end; never past the CA.
        v.expiration_seconds = Some(3600);
        let spec = leaf_spec(&policy, &v, &c, ca.not_after(), now, [7; 16]).unwrap();
        assert_eq!(spec.not_after, now + Duration::from_secs(3600));
        v.expiration_seconds = Some(60);
        assert_eq!(
            leaf_spec(&policy, &v, &c, ca.not_after(), now, [7; 16])
                .unwrap()
                .not_after,
            now + Duration::from_secs(600),
            "at least 10 minutes"
        );
        v.expiration_seconds = None;
        let soon = now + Duration::from_secs(100);
        assert_eq!(
            leaf_spec(&policy, &v, &c, soon, now, [7; 16])
                .unwrap()
                .not_after,
            soon,
            "capped at the CA's expiry"
        );
        assert!(
            leaf_spec(&policy, &v, &c, now, now, [7; 16])
                .unwrap_err()
                .starts_with("the signer has expired")
        );
    }
}

#[test]
fn cleanup_deadlines() {
    let t = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let h = Duration::from_secs(3600);
    let mut v = view(KUBELET_CLIENT, "u", &[]);
    v.created = Some(t);
    assert_eq!(
        cleanup_at(&v, None).map(|x| x.0),
        Some(t + 24 * h),
        "pending: 24h"
    );
    v.conditions = vec![("Approved".into(), "True".into(), Some(t))];
    assert_eq!(
        cleanup_at(&v, None).map(|x| x.0),
        Some(t + 24 * h),
        "approved, never issued: 24h"
    );
    v.certificate = b"cert".to_vec();
    assert_eq!(
        cleanup_at(&v, Some(t + 100 * h)).map(|x| x.0),
        Some(t + h),
        "issued: 1h after approval"
    );
    assert_eq!(
        cleanup_at(&v, Some(t + Duration::from_secs(60))).map(|x| x.0),
        Some(t + Duration::from_secs(60)),
        "expired certificate: at once"
    );
    v.certificate.clear();
    v.conditions = vec![("Denied".into(), "True".into(), Some(t))];
    assert_eq!(cleanup_at(&v, None).map(|x| x.0), Some(t + h));
    v.conditions = vec![("Denied".into(), "True".into(), None)];
    assert_eq!(cleanup_at(&v, None), None, "a zero timestamp never counts");
}

#[test]
fn serving_approval_needs_the_nodes_own_addresses() {
    let c = csr(
        KeyAlgorithm::EcdsaP256,
        "system:node:n1",
        &["system:nodes"],
        &["n1"],
        &["10.0.0.5"],
        &[],
    );
    let v = view(
        KUBELET_SERVING,
        "system:node:n1",
        &["digital signature", "server auth"],
    );
    let groups = vec!["system:nodes".to_owned()];
    let addrs = vec!["n1".to_owned(), "10.0.0.5".to_owned()];
    assert_eq!(
        serving_approvable(&v, &c, &groups, &addrs, &ServingRules::default()),
        Ok(())
    );
    assert!(
        serving_approvable(&v, &c, &groups, &addrs[..1], &ServingRules::default())
            .unwrap_err()
            .contains("10.0.0.5")
    );
    let rules = ServingRules {
        dns: None,
        ip_ranges: vec![parse_cidr("10.0.0.0/24").unwrap()],
    };
    assert_eq!(
        serving_approvable(&v, &c, &groups, &addrs[..1], &rules),
        Ok(()),
        "allowed range"
    );
    let other = view(
        KUBELET_SERVING,
        "system:node:n2",
        &["digital signature", "server auth"],
    );
    assert!(
        serving_approvable(&other, &c, &groups, &addrs, &ServingRules::default()).is_err(),
        "n2 may not ask for n1"
    );
    assert!(
        serving_approvable(&v, &c, &[], &addrs, &ServingRules::default()).is_err(),
        "must be in system:nodes"
    );
}

#[test]
fn a_view_reads_the_same_from_json_text_and_from_a_value() {
    let obj = serde_json::json!({
        "metadata": {"name": "csr-a", "uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:bootstrap:abcdef",
                 "usages": ["digital signature", "client auth"], "expirationSeconds": 3600, "request": "AAAA"},
        "status": {"conditions": [{"type": "Approved", "status": "True", "lastUpdateTime": "2026-01-01T00:00:05Z"}],
                   "certificate": "aGVsbG8="}
    });
    let from_value = super::CsrView::from_object(&obj);
    let from_text = super::CsrView::from_json(&obj.to_string()).expect("parses");
    assert_eq!(format!("{from_value:?}"), format!("{from_text:?}"));
    assert_eq!(from_text.name, "csr-a");
    assert_eq!(from_text.usages, ["digital signature", "client auth"]);
    assert!(from_text.has("Approved"));
    assert_eq!(from_text.certificate, b"hello");
    assert_eq!(from_text.expiration_seconds, Some(3600));
    // `null` reads as absent, as Go reads it.
    let sparse = super::CsrView::from_json(
        r#"{"metadata":{"name":"b"},"status":null,"spec":{"usages":null}}"#,
    )
    .expect("parses");
    assert_eq!(sparse.name, "b");
    assert!(sparse.conditions.is_empty() && sparse.usages.is_empty());
}
