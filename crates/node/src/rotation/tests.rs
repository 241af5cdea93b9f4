//! The certificate manager's rules on a fake clock: each case a certificate, a story of
//! events, and the steps the manager must take.

use super::*;
use kubeboot_api::{Clock, Random};
use kubeboot_testkit::{ChosenRandom, FakeClock, node_certificate, test_ca};

const DAY: Duration = Duration::from_secs(86_400);

/// What happens in a case, in order.
enum Event {
    /// The clock moves on.
    Advance(Duration),
    /// The manager is asked what to do, with or without a bootstrap kubeconfig.
    Expect(bool, Want),
    /// The renewal it asked for failed.
    Fail,
    /// The renewal gave a certificate valid from now for this long.
    Renewed(Duration),
}

/// The step wanted, with times relative to the case's start.
#[derive(Debug)]
enum Want {
    WaitFor(Duration),
    Renew(Credential),
    Stuck(Option<Duration>),
}

fn run(name: &str, kind: Kind, held: Option<Duration>, jitter: &[f64], story: &[Event]) {
    let clock = FakeClock::new();
    let start = clock.now();
    let random = ChosenRandom::new(jitter);
    let validity = |life: Duration| Validity {
        not_before: clock.now(),
        not_after: clock.now() + life,
    };
    let mut rotation = Rotation::new(kind, held.map(validity), random.unit());
    for (i, event) in story.iter().enumerate() {
        match event {
            Event::Advance(d) => clock.advance(*d),
            Event::Fail => rotation.failed(clock.now(), random.unit()),
            Event::Renewed(life) => rotation.renewed(validity(*life), random.unit()),
            Event::Expect(bootstrap, want) => {
                let got = rotation.next(clock.now(), *bootstrap);
                let wanted = match want {
                    Want::WaitFor(d) => Step::WaitUntil(start + *d),
                    Want::Renew(c) => Step::Renew(*c),
                    Want::Stuck(Some(d)) => Step::Stuck(Stuck::Expired(start + *d)),
                    Want::Stuck(None) => Step::Stuck(Stuck::Missing),
                };
                assert_eq!(got, wanted, "{name}: event {i} ({want:?})");
            }
        }
    }
}

#[test]
fn the_certificate_managers_table() {
    use Event::*;
    use Want::*;
    let secs = Duration::from_secs;
    let ms = Duration::from_millis;
    let h = |n: u64| secs(n * 3600);
    // A 10-day certificate renews at 7 days with jitter 0, at 8 with 0.5, at 9 days less a
    // hair with jitter just under 1.
    run(
        "jitter 0",
        Kind::Client,
        Some(DAY * 10),
        &[0.0],
        &[
            Expect(true, WaitFor(DAY * 7)),
            Advance(DAY * 7 - secs(1)),
            Expect(true, WaitFor(DAY * 7)),
            Advance(secs(1)),
            Expect(true, Renew(Credential::Current)),
        ],
    );
    run(
        "jitter 0.5",
        Kind::Client,
        Some(DAY * 10),
        &[0.5],
        &[Expect(true, WaitFor(DAY * 8))],
    );
    run(
        "jitter 0.999",
        Kind::Client,
        Some(secs(1000)),
        &[0.999],
        &[Expect(false, WaitFor(ms(899_800)))],
    );
    // Failures back off 2, 4, 8, 16 s (jitter up to 10 % more), then every 32 s; a success
    // starts the count again and places the next renewal in the new certificate's life.
    run(
        "backoff",
        Kind::Client,
        Some(secs(100)),
        &[0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0],
        &[
            Advance(secs(70)),
            Expect(true, Renew(Credential::Current)),
            Fail,
            Expect(true, WaitFor(secs(72))),
            Advance(secs(2)),
            Fail,
            Expect(true, WaitFor(secs(76) + ms(200))),
            Advance(secs(4) + ms(200)),
            Fail,
            Expect(true, WaitFor(secs(84) + ms(200))),
            Advance(secs(8)),
            Fail,
            Advance(secs(16)),
            Fail,
            Expect(true, WaitFor(secs(100) + ms(200) + secs(32))),
            Advance(secs(32)),
            Fail,
            Expect(true, WaitFor(secs(132) + ms(200) + secs(32))),
        ],
    );
    run(
        "renewed",
        Kind::Client,
        Some(secs(100)),
        &[0.0],
        &[
            Advance(secs(70)),
            Fail,
            Advance(secs(2)),
            Renewed(secs(100)),
            Expect(true, WaitFor(secs(72 + 70))),
            Advance(secs(70)),
            Expect(true, Renew(Credential::Current)),
            Fail,
            Expect(true, WaitFor(secs(144))),
        ],
    );
    // After expiry the bootstrap kubeconfig renews; without one the manager is stuck, and
    // looks again after its backoff (an operator may put one back).
    run(
        "expired, bootstrap",
        Kind::Client,
        Some(h(1)),
        &[0.0],
        &[Advance(h(2)), Expect(true, Renew(Credential::Bootstrap))],
    );
    run(
        "expired, no bootstrap",
        Kind::Client,
        Some(h(1)),
        &[0.0],
        &[
            Advance(h(2)),
            Expect(false, Stuck(Some(h(1)))),
            Fail,
            Expect(false, WaitFor(h(2) + secs(2))),
            Advance(secs(2)),
            Expect(true, Renew(Credential::Bootstrap)),
        ],
    );
    run(
        "expiry is the end of validity",
        Kind::Client,
        Some(secs(10)),
        &[0.0],
        &[Advance(secs(10)), Expect(false, Stuck(Some(secs(10))))],
    );
    run(
        "none held",
        Kind::Client,
        None,
        &[0.0],
        &[
            Expect(true, Renew(Credential::Bootstrap)),
            Expect(false, Stuck(None)),
        ],
    );
    // The serving certificate is always asked for as the node, expired or missing.
    run(
        "serving, none",
        Kind::Serving,
        None,
        &[0.0],
        &[Expect(false, Renew(Credential::Current))],
    );
    run(
        "serving, expired",
        Kind::Serving,
        Some(secs(10)),
        &[0.0],
        &[Advance(secs(20)), Expect(false, Renew(Credential::Current))],
    );
}

#[test]
fn a_real_certificates_validity_places_its_renewal() {
    let clock = FakeClock::new();
    let ca = test_ca(clock.now());
    let (cert, key) = node_certificate(&ca, "n1", clock.now(), clock.now() + DAY * 365);
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::cert_store::CertStore::new(dir.path(), "kubelet-client");
    store
        .store(cert.as_bytes(), key.as_bytes(), clock.now())
        .expect("stored");
    let pair = store.load().expect("read").expect("held");
    let v = Validity {
        not_before: pair.not_before,
        not_after: pair.not_after,
    };
    let r = Rotation::new(Kind::Client, Some(v), 0.5);
    assert_eq!(
        r.next(clock.now(), false),
        Step::WaitUntil(clock.now() + DAY * 292)
    );
}

#[test]
fn stuck_says_what_happened_and_the_command_that_fixes_it() {
    let at = std::time::UNIX_EPOCH + Duration::from_secs(1_714_644_000);
    let line = Stuck::Expired(at).explain(
        Path::new("/var/lib/kubelet/pki/kubelet-client-current.pem"),
        Path::new("/etc/kubernetes/bootstrap-kubelet.conf"),
    );
    assert_eq!(
        line,
        "the client certificate /var/lib/kubelet/pki/kubelet-client-current.pem expired at 2024-05-02T10:00:00Z and there is no bootstrap kubeconfig /etc/kubernetes/bootstrap-kubelet.conf to request a new one, so this node cannot reach the API server: on the control plane run `kubeboot token create --print-join-command` and run the join command it prints on this node"
    );
    assert!(!line.contains('\n'));
    assert!(
        Stuck::Missing
            .explain(Path::new("c.pem"), Path::new("b.conf"))
            .starts_with(
                "there is no client certificate c.pem and there is no bootstrap kubeconfig b.conf"
            )
    );
}

#[test]
fn a_new_ca_bundle_in_cluster_info_is_adopted_and_the_same_one_is_not() {
    let now = FakeClock::new().now();
    let old = test_ca(now).cert_pem().to_owned();
    let new = test_ca(now).cert_pem().to_owned();
    let both = format!("{old}{new}");
    let swapped = format!("{new}{old}");
    for (held, seen, adopted) in [
        (&old, &old, false),
        (&old, &both, true),
        (&both, &swapped, false),
        (&both, &new, true),
        (&old, &"no certificate here".to_owned(), false),
        (&old, &String::new(), false),
    ] {
        assert_eq!(
            adopt_ca_bundle(held.as_bytes(), seen.as_bytes()).is_some(),
            adopted,
            "held {} certs, saw {:?}",
            held.matches("BEGIN").count(),
            seen.get(..20)
        );
    }
}

#[test]
fn backoff_follows_the_kubelets_steps() {
    let secs = Duration::from_secs;
    let got: Vec<Duration> = (1..=7).map(|n| backoff(n, 0.0)).collect();
    assert_eq!(
        got,
        [
            secs(2),
            secs(4),
            secs(8),
            secs(16),
            secs(32),
            secs(32),
            secs(32)
        ]
    );
    assert_eq!(backoff(1, 1.0), Duration::from_millis(2200));
    assert_eq!(backoff(6, 1.0), secs(32), "the 32 s poll has no jitter");
}

#[test]
fn a_signer_moved_to_another_ca_calls_for_a_renewal() {
    let now = std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let old = test_ca(now);
    let new = kubeboot_pki::CertificateAuthority::create(
        "kubernetes-new",
        kubeboot_pki::KeyAlgorithm::EcdsaP256,
        now,
        Duration::from_secs(86400),
        kubeboot_testkit::serial(9),
    )
    .expect("CA");
    let (cert, _) = node_certificate(&old, "n", now, now + Duration::from_secs(3600));
    let (old_pem, new_pem) = (old.cert_pem().to_owned(), new.cert_pem().to_owned());
    for (bundle, moved) in [
        (old_pem.clone(), false),
        (format!("{new_pem}{old_pem}"), false),
        (new_pem, true),
        // A signer that publishes nothing (a Kubernetes without ClusterTrustBundles).
        (String::new(), false),
    ] {
        assert_eq!(
            signer_moved(cert.as_bytes(), bundle.as_bytes()),
            moved,
            "{} CA(s)",
            bundle.matches("BEGIN").count()
        );
    }
    let mut r = Rotation::new(
        Kind::Client,
        Some(Validity {
            not_before: now,
            not_after: now + Duration::from_secs(3600),
        }),
        0.0,
    );
    assert!(matches!(r.next(now, true), Step::WaitUntil(_)));
    r.renew_now(now);
    assert_eq!(r.next(now, true), Step::Renew(Credential::Current));
}
