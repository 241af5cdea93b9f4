use std::time::{Duration, UNIX_EPOCH};

use kubeboot_pki::chain::{certificates, issued_by};

use super::*;
use crate::generate::generate;
use kubeboot_pki::Kubeconfig;

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn read(dir: &std::path::Path, f: &str) -> String {
    std::fs::read_to_string(dir.join(f)).expect(f)
}

fn kubeconfig_cas(dir: &std::path::Path, f: &str) -> Vec<String> {
    let kc = Kubeconfig::from_yaml(&read(dir, f)).expect("kubeconfig");
    certificates(&kc.certificate_authority().expect("ca data"))
}

/// A PKI generated from the starting spec, kubeconfigs beside the certificates.
fn generated() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().expect("tempdir");
    let spec = crate::spec::parse(crate::spec::STARTING_SPEC).expect("spec");
    generate(&spec, Layout::one(tmp.path()), false, now()).expect("generate");
    tmp
}

/// Runs `phase` on `layout` with a new ECDSA P-256 CA, `force` at finish.
fn run(layout: Layout<'_>, phase: RotatePhase, force: bool) -> Result<Outcome, RotationError> {
    rotate_ca(layout, phase, None, KeyAlgorithm::EcdsaP256, force, now())
}

fn refused(r: Result<Outcome, RotationError>) -> String {
    match r {
        Err(RotationError::Refused(why)) => why,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn a_hand_built_pki_rotates_in_three_phases_keeping_keys_and_names() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (certs, kcs) = (tmp.path().join("auth"), tmp.path().join("kubeconfigs"));
    let layout = Layout {
        cert_dir: &certs,
        kubeconfig_dir: &kcs,
    };
    let spec = crate::spec::parse(crate::spec::STARTING_SPEC).expect("spec");
    generate(&spec, layout, false, now()).expect("generate");
    let old = certificates(&read(&certs, "ca.pem")).remove(0);
    let old_der = kubeboot_pki::chain::first_der(&old).expect("der");
    let key_before = read(&certs, "worker-0-key.pem");
    let rotate = |p| run(layout, p, false);

    assert_eq!(phase(layout).expect("phase"), Phase::Idle);
    assert!(refused(rotate(RotatePhase::Switch)).contains("--phase prepare first"));
    let prepared = rotate(RotatePhase::Prepare).expect("prepare");
    assert!(prepared.written.contains(&"admin.kubeconfig".to_owned()));
    assert!(prepared.written.contains(&"ca-next-key.pem".to_owned()));
    let again = rotate(RotatePhase::Prepare).expect("prepare again");
    assert_eq!(
        again.written,
        Vec::<String>::new(),
        "nothing to write again"
    );
    assert_eq!(phase(layout).expect("phase"), Phase::Prepared);
    let new = read(&certs, "ca-next.pem");
    assert_eq!(
        certificates(&read(&certs, "ca.pem")),
        [old.clone(), new.clone()]
    );
    assert_eq!(
        kubeconfig_cas(&kcs, "worker-0.kubeconfig"),
        [old.clone(), new.clone()]
    );
    assert!(
        issued_by(&read(&certs, "kubernetes.pem"), &old_der),
        "the old CA signs"
    );
    assert!(refused(rotate(RotatePhase::Finish)).contains("--phase switch first"));
    // A rerun keeps the prepared CA.
    rotate(RotatePhase::Prepare).expect("prepare again");
    assert_eq!(read(&certs, "ca-next.pem"), new);
    // generate during the rotation keeps the kubeconfigs trusting both.
    generate(&spec, layout, false, now()).expect("generate");
    assert_eq!(kubeconfig_cas(&kcs, "admin.kubeconfig").len(), 2);

    rotate(RotatePhase::Switch).expect("switch");
    assert_eq!(phase(layout).expect("phase"), Phase::Switched);
    let new_der = kubeboot_pki::chain::first_der(&new).expect("der");
    for (stem, path) in leaf_files(&certs).expect("leaves") {
        assert!(
            issued_by(&read(&certs, &format!("{stem}.pem")), &new_der),
            "{}",
            path.display()
        );
    }
    assert_eq!(
        read(&certs, "worker-0-key.pem"),
        key_before,
        "keys are kept"
    );
    assert!(!certs.join("ca-next.pem").exists() && !certs.join("ca-next-key.pem").exists());
    assert_eq!(certificates(&read(&certs, "ca.pem")), [new.clone(), old]);
    let admin = Kubeconfig::from_yaml(&read(&kcs, "admin.kubeconfig")).expect("admin");
    assert!(issued_by(
        &admin.client_certificate().expect("cert"),
        &new_der
    ));
    assert!(refused(rotate(RotatePhase::Prepare)).contains("--phase finish"));
    let again = generate(&spec, layout, false, now()).expect("generate");
    assert_eq!(
        again.written,
        Vec::<String>::new(),
        "switched files are up to date"
    );

    rotate(RotatePhase::Finish).expect("finish");
    assert_eq!(phase(layout).expect("phase"), Phase::Idle);
    assert_eq!(
        certificates(&read(&certs, "ca.pem")),
        std::slice::from_ref(&new)
    );
    assert_eq!(kubeconfig_cas(&kcs, "kube-proxy.kubeconfig"), [new]);
    rotate(RotatePhase::Finish).expect("finishing again does nothing");
}

#[test]
fn finish_waits_for_a_certificate_still_on_the_old_ca() {
    let tmp = generated();
    let layout = Layout::one(tmp.path());
    let old_worker = read(tmp.path(), "worker-0.pem");
    let rotate = |p| run(layout, p, false);
    rotate(RotatePhase::Prepare).expect("prepare");
    rotate(RotatePhase::Switch).expect("switch");
    // An old copy put back (a machine restored from a backup) holds the old CA.
    std::fs::write(tmp.path().join("worker-0.pem"), old_worker).expect("write");
    let why = refused(rotate(RotatePhase::Finish));
    assert!(
        why.contains("worker-0.pem") && why.contains("still on the old CA"),
        "{why}"
    );
    assert_eq!(
        certificates(&read(tmp.path(), "ca.pem")).len(),
        2,
        "nothing dropped"
    );
    // A rerun of switch re-issues it.
    rotate(RotatePhase::Switch).expect("switch again");
    rotate(RotatePhase::Finish).expect("finish");
}

#[test]
fn a_switch_stopped_between_a_certificate_and_its_kubeconfig_completes_when_run_again() {
    let tmp = generated();
    let layout = Layout::one(tmp.path());
    let rotate = |p| run(layout, p, false);
    rotate(RotatePhase::Prepare).expect("prepare");
    let before = read(tmp.path(), "admin.kubeconfig");
    rotate(RotatePhase::Switch).expect("switch");
    // The process died after admin.pem, before admin.kubeconfig.
    std::fs::write(tmp.path().join("admin.kubeconfig"), before).expect("write");
    assert!(refused(rotate(RotatePhase::Finish)).contains("admin.kubeconfig"));
    let again = rotate(RotatePhase::Switch).expect("switch again");
    assert!(
        again.written.contains(&"admin.kubeconfig".to_owned()),
        "{again:?}"
    );
    rotate(RotatePhase::Finish).expect("finish");
}

#[test]
fn certificates_of_another_ca_are_left_alone_and_force_finishes() {
    let tmp = generated();
    let layout = Layout::one(tmp.path());
    // Another CA's certificate (say etcd's CA) kept in the same directory.
    let other = CertificateAuthority::create(
        "etcd-ca",
        KeyAlgorithm::EcdsaP256,
        now(),
        Duration::from_secs(86400 * 365),
        [7; 16],
    )
    .expect("other CA");
    std::fs::write(tmp.path().join("etcd-ca.pem"), other.cert_pem()).expect("write");
    std::fs::write(tmp.path().join("etcd-ca-key.pem"), other.key_pem()).expect("write");
    let rotate = |p, force| run(layout, p, force);
    rotate(RotatePhase::Prepare, false).expect("prepare");
    let old_worker = read(tmp.path(), "worker-0.pem");
    let switched = rotate(RotatePhase::Switch, false).expect("switch");
    assert!(!switched.written.contains(&"etcd-ca.pem".to_owned()));
    assert_eq!(
        read(tmp.path(), "etcd-ca.pem"),
        other.cert_pem(),
        "untouched"
    );
    std::fs::write(tmp.path().join("worker-0.pem"), old_worker).expect("write");
    assert!(refused(rotate(RotatePhase::Finish, false)).contains("worker-0.pem"));
    rotate(RotatePhase::Finish, true).expect("forced");
    assert_eq!(phase(layout).expect("phase"), Phase::Idle);
}

#[test]
fn a_cfssl_certificates_whole_subject_is_kept() {
    let tmp = generated();
    let layout = Layout::one(tmp.path());
    // As cfssl writes the name Kubernetes the Hard Way's CSRs give a node (Go's order).
    let ca = CertificateAuthority::from_pem(
        &read(tmp.path(), "ca.pem"),
        &read(tmp.path(), "ca-key.pem"),
    )
    .expect("ca");
    let attrs: Vec<(Vec<u64>, String)> = [
        (6, "US"),
        (10, "system:nodes"),
        (11, "Kubernetes The Hard Way"),
        (7, "Portland"),
        (8, "Oregon"),
        (3, "system:node:worker-9"),
    ]
    .iter()
    .map(|(arc, v)| (vec![2, 5, 4, *arc], (*v).to_owned()))
    .collect();
    let key = kubeboot_pki::PrivateKey::generate(KeyAlgorithm::EcdsaP256).expect("key");
    let cert = ca
        .issue_for_key(
            &kubeboot_pki::LeafSpec {
                subject: attrs.clone(),
                dns_names: vec!["worker-9".into()],
                ip_addresses: vec![],
                emails: vec![],
                uris: vec![],
                usages: vec![
                    kubeboot_pki::Usage::ClientAuth,
                    kubeboot_pki::Usage::ServerAuth,
                ],
                not_before: now(),
                not_after: now() + Duration::from_secs(86400 * 365),
                serial: [9; 16],
            },
            &key,
        )
        .expect("issue");
    std::fs::write(tmp.path().join("worker-9.pem"), &cert.pem).expect("write");
    std::fs::write(tmp.path().join("worker-9-key.pem"), key.to_pem()).expect("write");
    let rotate = |p| run(layout, p, false);
    rotate(RotatePhase::Prepare).expect("prepare");
    rotate(RotatePhase::Switch).expect("switch");
    let pem = read(tmp.path(), "worker-9.pem");
    assert_ne!(pem, cert.pem, "re-issued");
    let der = kubeboot_pki::chain::first_der(&pem).expect("der");
    let (_, parsed) = x509_parser::parse_x509_certificate(&der).expect("parse");
    let name = kubeboot_pki::name::Name::parse(parsed.subject()).expect("name");
    assert_eq!(
        name.attributes, attrs,
        "the same subject, in the same order"
    );
}
