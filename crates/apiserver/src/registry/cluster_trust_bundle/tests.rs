use std::time::{Duration, UNIX_EPOCH};

use kubeboot_testkit::{node_certificate, test_ca};

use super::*;

fn ca_pem() -> String {
    test_ca(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        .cert_pem()
        .to_owned()
}

fn invalid(m: &str) -> BundleError {
    BundleError::Invalid(m.to_owned())
}

#[test]
fn a_trust_bundle_is_checked_block_by_block_as_kubernetes_checks_it() {
    let ca = ca_pem();
    let other = test_ca(UNIX_EPOCH + Duration::from_secs(1_800_000_000))
        .cert_pem()
        .to_owned();
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let (leaf, key) = node_certificate(&test_ca(now), "n", now, now + Duration::from_secs(3600));
    assert_eq!(trust_bundle_errors(&ca), []);
    assert_eq!(trust_bundle_errors(&format!("{ca}\n{other}")), []);
    assert_eq!(
        trust_bundle_errors(""),
        [invalid("at least one trust anchor must be provided")]
    );
    assert_eq!(
        trust_bundle_errors(&format!("{ca}{other}{ca}")),
        [invalid("duplicate trust anchor (indices [0 2])")]
    );
    assert_eq!(
        trust_bundle_errors(&format!("{ca}{leaf}")),
        [invalid("entry 1 does not have the CA bit set")]
    );
    assert_eq!(
        trust_bundle_errors(&key),
        [invalid("entry 0 has bad block type: PRIVATE KEY")]
    );
    let headed = ca.replacen("-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1);
    assert_eq!(
        trust_bundle_errors(&headed),
        [invalid("entry 0 has PEM block headers")]
    );
    assert_eq!(
        trust_bundle_errors("-----BEGIN CERTIFICATE-----\nYWI=\n-----END CERTIFICATE-----\n"),
        [invalid("entry 0 does not parse as X.509")]
    );
    // A malformed entry hides the duplicate and emptiness checks.
    assert_eq!(
        trust_bundle_errors(&format!("{ca}{ca}{leaf}")),
        [invalid("entry 2 does not have the CA bit set")]
    );
    let huge = format!("{ca}{}", " ".repeat(MAX_TRUST_BUNDLE_SIZE));
    assert_eq!(trust_bundle_errors(&huge), [BundleError::TooLong]);
}

#[test]
fn names_follow_the_signer() {
    let none: [&str; 0] = [];
    assert_eq!(name_errors("root", ""), none);
    assert_eq!(
        name_errors("a:b", ""),
        ["ClusterTrustBundle without signer name must not have \":\" in its name"]
    );
    assert_eq!(
        name_errors("example.com:signer:live", "example.com/signer"),
        none
    );
    assert_eq!(
        name_errors("live", "example.com/signer"),
        [
            "ClusterTrustBundle for signerName example.com/signer must be named with prefix example.com:signer:"
        ]
    );
    assert_eq!(
        name_errors("example.com:signer:Live", "example.com/signer"),
        [crate::object::SUBDOMAIN_RULE]
    );
    assert_eq!(name_errors("Root", ""), [crate::object::SUBDOMAIN_RULE]);
}

#[test]
fn an_update_keeps_the_signer_and_does_not_parse_an_unchanged_bundle() {
    let ca = ca_pem();
    let bundle = |name: &str, signer: &str, pem: &str| json!({"metadata": {"name": name}, "spec": {"signerName": signer, "trustBundle": pem}});
    let old = bundle("example.com:s:a", "example.com/s", &ca);
    let fields = |causes: Vec<StatusCause>| causes.into_iter().map(|c| c.field).collect::<Vec<_>>();
    assert!(validate_bundle(&old, None).is_empty());
    // A bundle stored before a parser change stays updatable while it is left alone.
    let stored_garbage = bundle("example.com:s:a", "example.com/s", "garbage");
    let relabelled = {
        let mut v = stored_garbage.clone();
        v["metadata"]["labels"] = json!({"a": "b"});
        v
    };
    assert!(validate_bundle(&relabelled, Some(&stored_garbage)).is_empty());
    assert_eq!(
        fields(validate_bundle(
            &bundle("example.com:s:a", "example.com/t", &ca),
            Some(&old)
        )),
        ["metadata.name", "spec.signerName"]
    );
    assert_eq!(
        fields(validate_bundle(&bundle("x", "bad", &ca), None)),
        ["metadata.name", "spec.signerName"]
    );
}
