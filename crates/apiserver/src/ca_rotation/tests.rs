use std::time::{Duration, UNIX_EPOCH};

use super::*;
use crate::datadir::InitOptions;
use kubeboot_pki::chain::{certificates, first_der};

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn dir() -> (tempfile::TempDir, DataDir) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = DataDir::new(tmp.path().join("data"));
    dir.init(&InitOptions::default(), now()).expect("init");
    (tmp, dir)
}

fn read(dir: &DataDir, f: &str) -> String {
    std::fs::read_to_string(dir.pki(f)).expect("read")
}

fn kubeconfig_cert(path: &std::path::Path) -> String {
    read_kubeconfig(path)
        .expect("kubeconfig")
        .client_certificate()
        .expect("client cert")
}

fn refused(r: Result<(), RotationError>) -> String {
    match r {
        Err(RotationError::Refused(why)) => why,
        other => panic!("not refused: {other:?}"),
    }
}

#[test]
fn the_three_phases_move_trust_then_signing_then_drop_the_old_ca() {
    let (_tmp, dir) = dir();
    let mut r = Rotation::read(&dir).expect("read");
    let old = r.signing().cert_der().to_vec();
    assert_eq!(r.phase(), Phase::Idle);
    assert!(refused(r.switch(now())).contains("run --phase prepare first"));

    r.prepare(None, now()).expect("prepare");
    let r = &mut Rotation::read(&dir).expect("read");
    assert_eq!(r.phase(), Phase::Prepared);
    let new = certificates(&read(&dir, "ca-next.crt")).remove(0);
    assert_eq!(certificates(&read(&dir, "ca.crt")).len(), 2);
    assert_eq!(r.signing().cert_der(), old, "the old CA still signs");
    assert!(issued_by(&read(&dir, "apiserver.crt"), &old));
    // The kubeconfigs trust both before the serving certificate moves.
    let admin = read_kubeconfig(&dir.admin_conf()).expect("admin");
    let trusted = admin.certificate_authority();
    assert_eq!(certificates(&trusted.unwrap()).len(), 2);
    // Preparing again changes nothing; another CA is refused.
    r.prepare(None, now()).expect("again");
    assert_eq!(certificates(&read(&dir, "ca-next.crt"))[0], new);

    r.switch(now()).expect("switch");
    let r = &mut Rotation::read(&dir).expect("read");
    assert_eq!(r.phase(), Phase::Switched);
    assert!(!dir.pki("ca-next.crt").exists() && !dir.pki("ca-next.key").exists());
    let bundle = certificates(&read(&dir, "ca.crt"));
    assert_eq!(bundle[0], new, "the new CA signs, first in the bundle");
    let new_der = first_der(&new).unwrap();
    assert!(issued_by(&read(&dir, "apiserver.crt"), &new_der));
    for kc in [dir.admin_conf(), dir.controller_manager_conf()] {
        assert!(
            issued_by(&kubeconfig_cert(&kc), &new_der),
            "{}",
            kc.display()
        );
    }
    assert!(r.kubeconfigs_on_old_ca().expect("list").is_empty());
    // A certificate of the old CA is known as such.
    let (_tmp2, other) = self::dir();
    let old_admin = kubeconfig_cert(&other.admin_conf());
    assert!(!r.on_old_ca(&old_admin), "another cluster's CA is not ours");
    r.switch(now()).expect("switching again does nothing");
    assert!(refused(r.prepare(None, now())).contains("--phase finish"));

    let why = refused(r.finish(&["node node-1".into()], false));
    assert!(
        why.contains("node node-1") && why.contains("--force"),
        "{why}"
    );
    r.finish(&["node node-1".into()], true).expect("forced");
    let r = Rotation::read(&dir).expect("read");
    assert_eq!(r.phase(), Phase::Idle);
    assert_eq!(certificates(&read(&dir, "ca.crt")), [new]);
    let admin = read_kubeconfig(&dir.admin_conf()).expect("admin");
    let trusted = admin.certificate_authority();
    assert_eq!(certificates(&trusted.unwrap()).len(), 1);
}

#[test]
fn a_switch_stopped_half_way_is_completed_by_running_it_again() {
    let (_tmp, dir) = dir();
    let mut r = Rotation::read(&dir).expect("read");
    r.prepare(None, now()).expect("prepare");
    // The key was written, then the process died.
    std::fs::copy(dir.pki("ca-next.key"), dir.pki("ca.key")).expect("copy");
    let mut r = Rotation::read(&dir).expect("a half switch reads");
    assert!(refused(r.prepare(None, now())).contains("run --phase switch"));
    let mut r = Rotation::read(&dir).expect("read");
    r.switch(now()).expect("completed");
    let r = Rotation::read(&dir).expect("read");
    assert_eq!(r.phase(), Phase::Switched);
    assert!(issued_by(
        &read(&dir, "apiserver.crt"),
        r.signing().cert_der()
    ));
}

#[test]
fn finish_before_switch_and_a_second_ca_are_refused() {
    let (_tmp, dir) = dir();
    let mut r = Rotation::read(&dir).expect("read");
    r.finish(&[], false).expect("nothing to finish");
    r.prepare(None, now()).expect("prepare");
    assert!(refused(r.finish(&[], false)).contains("--phase switch first"));
    let (_tmp2, other) = self::dir();
    let theirs = Rotation::read(&other).expect("read");
    let given = CertificateAuthority::from_pem(
        theirs.signing().cert_pem(),
        &std::fs::read_to_string(other.pki("ca.key")).unwrap(),
    )
    .unwrap();
    assert!(refused(r.prepare(Some(given), now())).contains("a different CA is prepared"));
}

#[test]
fn a_prepare_or_switch_stopped_between_two_files_is_taken_up_again() {
    let (_tmp, dir) = dir();
    // prepare died after writing the new CA, before the bundle: switch is refused, and a
    // rerun of prepare carries on with the same CA.
    let mut r = Rotation::read(&dir).expect("read");
    r.prepare(None, now()).expect("prepare");
    let new = read(&dir, "ca-next.crt");
    let old = certificates(&read(&dir, "ca.crt")).remove(0);
    std::fs::write(dir.pki("ca.crt"), &old).expect("undo the bundle");
    let mut r = Rotation::read(&dir).expect("read");
    assert_eq!(r.phase(), Phase::Idle);
    assert!(refused(r.switch(now())).contains("run --phase prepare first"));
    r.prepare(None, now()).expect("prepare again");
    assert_eq!(read(&dir, "ca-next.crt"), new);
    // switch died between removing the two files of the new CA: the lone key is a leftover.
    let mut r = Rotation::read(&dir).expect("read");
    r.switch(now()).expect("switch");
    std::fs::write(dir.pki("ca-next.key"), "leftover").expect("write");
    let r = Rotation::read(&dir).expect("a lone half of the pair is ignored");
    assert_eq!(r.phase(), Phase::Switched);
}
