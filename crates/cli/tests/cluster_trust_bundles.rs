//! ClusterTrustBundles (certificates.k8s.io v1 and v1beta1) as an operator meets them with
//! kubectl: the control plane publishes its CAs as signer-linked bundles and keeps exactly
//! one per signer; a bundle is validated with Kubernetes' messages and nothing invalid is
//! stored; a signer-linked bundle is written only by a user who may `attest` for the
//! signer; service accounts and nodes may read them.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Server, eventually, kubectls, ok, stderr, stdout};

const SERVING: &str = "kubernetes.io/kube-apiserver-serving";

/// The name Kubernetes gives a signer's bundle of `pem`: the signer with `/` as `:`, then
/// the hex of the first 12 bytes of the content's SHA-256 (computed with openssl).
fn published_name(signer: &str, pem: &Path) -> String {
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-r"])
        .arg(pem)
        .output()
        .expect("openssl dgst");
    let hex = stdout(&out);
    format!("{}:{}", signer.replace('/', ":"), &hex[..24])
}

/// The names of the bundles of `signer`, through `resource` (a version-qualified name).
fn bundles_of(s: &Server, resource: &str, signer: &str) -> Vec<String> {
    let selector = format!("spec.signerName={signer}");
    let out = s.kubectl(
        "kubectl",
        &[
            "get",
            resource,
            "--field-selector",
            &selector,
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ],
    );
    stdout(&out).split_whitespace().map(str::to_owned).collect()
}

/// A ClusterTrustBundle manifest of `pems` (the files' contents, one after the other).
fn manifest(version: &str, name: &str, signer: Option<&str>, pems: &[&Path]) -> String {
    let bundle: String = pems
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("pem"))
        .collect::<String>()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let signer = signer.map_or(String::new(), |s| format!("  signerName: {s}\n"));
    format!(
        "apiVersion: certificates.k8s.io/{version}\nkind: ClusterTrustBundle\nmetadata:\n  name: {name}\nspec:\n{signer}  trustBundle: |\n{bundle}"
    )
}

fn apply(s: &Server, kubectl: &str, manifest: &str, as_user: &[&str]) -> std::process::Output {
    let mut args = vec!["apply", "-f", "-"];
    args.extend(as_user);
    s.kubectl_as(kubectl, &s.kubeconfig(), &args, Some(manifest))
}

/// A CA of our own (openssl), in `dir`.
fn other_ca(dir: &Path, name: &str) -> std::path::PathBuf {
    let crt = dir.join(format!("{name}.crt"));
    common::openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
            "-subj",
            &format!("/CN={name}"),
            "-days",
            "30",
        ],
    );
    crt
}

#[test]
fn the_control_plane_publishes_one_bundle_per_signer_and_keeps_it() {
    let s = Server::start();
    let want = published_name(SERVING, &s.ca());
    let published = || bundles_of(&s, "clustertrustbundles.v1.certificates.k8s.io", SERVING);
    assert!(
        eventually(Duration::from_secs(30), || published()
            == std::slice::from_ref(&want)),
        "{want}: {:?}",
        published()
    );
    // The same object through v1beta1, holding the CA file as it is.
    assert_eq!(
        bundles_of(
            &s,
            "clustertrustbundles.v1beta1.certificates.k8s.io",
            SERVING
        ),
        std::slice::from_ref(&want)
    );
    let bundle = ok(
        s.kubectl(
            "kubectl",
            &[
                "get",
                "clustertrustbundle",
                &want,
                "-o",
                "jsonpath={.spec.trustBundle}",
            ],
        ),
        "get bundle",
    );
    let ca = std::fs::read_to_string(s.ca()).expect("ca.crt");
    assert_eq!(bundle.trim(), ca.trim());
    // Each signer csrsigning runs has its CA published too.
    for signer in [
        "kubernetes.io/kube-apiserver-client",
        "kubernetes.io/kube-apiserver-client-kubelet",
        "kubernetes.io/kubelet-serving",
    ] {
        assert_eq!(
            bundles_of(&s, "clustertrustbundles", signer),
            [published_name(signer, &s.ca())]
        );
    }
    // A deleted bundle comes back; another bundle of the signer is removed.
    ok(
        s.kubectl("kubectl", &["delete", "clustertrustbundle", &want]),
        "delete",
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let foreign = other_ca(tmp.path(), "foreign");
    let extra = format!("{}:extra", SERVING.replace('/', ":"));
    ok(
        apply(
            &s,
            "kubectl",
            &manifest("v1", &extra, Some(SERVING), &[&foreign]),
            &[],
        ),
        "apply a second bundle of the signer",
    );
    assert!(
        eventually(Duration::from_secs(30), || published()
            == std::slice::from_ref(&want)),
        "{:?}",
        published()
    );
}

#[test]
fn an_invalid_bundle_is_refused_with_kubernetes_messages_and_not_stored() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = other_ca(tmp.path(), "mine");
    let leaf = s.dir.join("pki/apiserver.crt");
    // Text after the END line's dashes: Go's PEM decoder reads no block there.
    let trailing = tmp.path().join("trailing.pem");
    let text = std::fs::read_to_string(&ca).expect("ca");
    std::fs::write(
        &trailing,
        text.replace(
            "-----END CERTIFICATE-----",
            "-----END CERTIFICATE----- trailing",
        ),
    )
    .expect("write");
    let cases: Vec<(String, &str)> = vec![
        (
            manifest("v1", "trailing", None, &[&trailing]),
            "spec.trustBundle: Invalid value: \"<value omitted>\": at least one trust anchor must be provided",
        ),
        (
            manifest(
                "v1",
                "example.com:other:x",
                Some("example.com/mysigner"),
                &[&ca],
            ),
            "metadata.name: Invalid value: \"example.com:other:x\": ClusterTrustBundle for signerName example.com/mysigner must be named with prefix example.com:mysigner:",
        ),
        (
            manifest("v1beta1", "a:b", None, &[&ca]),
            "ClusterTrustBundle without signer name must not have \":\" in its name",
        ),
        (
            manifest("v1", "twice", None, &[&ca, &ca]),
            "spec.trustBundle: Invalid value: \"<value omitted>\": duplicate trust anchor (indices [0 1])",
        ),
        (
            manifest("v1", "leaf", None, &[&ca, &leaf]),
            "entry 1 does not have the CA bit set",
        ),
        (
            manifest("v1", "key", None, &[&tmp.path().join("mine.key")]),
            "entry 0 has bad block type: PRIVATE KEY",
        ),
        (
            manifest("v1", "bad-signer", Some("nodomain"), &[&ca]),
            "spec.signerName: Invalid value: \"nodomain\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
        ),
    ];
    for kubectl in kubectls() {
        for (m, want) in &cases {
            let out = apply(&s, &kubectl, m, &[]);
            assert!(
                !out.status.success() && stderr(&out).contains(want),
                "{kubectl}: want {want}\n{}",
                stderr(&out)
            );
        }
    }
    let names = ok(
        s.kubectl("kubectl", &["get", "clustertrustbundles", "-o", "name"]),
        "list",
    );
    for refused in [
        "other:x",
        "a:b",
        "twice",
        "leaf",
        "/key",
        "bad-signer",
        "trailing",
    ] {
        assert!(!names.contains(refused), "{refused} stored: {names}");
    }
    // The signer name is immutable.
    let name = "example.com:mysigner:live";
    ok(
        apply(
            &s,
            "kubectl",
            &manifest("v1", name, Some("example.com/mysigner"), &[&ca]),
            &[],
        ),
        "create",
    );
    let out = s.kubectl(
        "kubectl",
        &[
            "patch",
            "clustertrustbundle",
            name,
            "--type=merge",
            "-p",
            r#"{"spec":{"signerName":"example.com/other"}}"#,
        ],
    );
    assert!(
        stderr(&out)
            .contains("spec.signerName: Invalid value: \"example.com/other\": field is immutable"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn only_a_user_who_may_attest_for_the_signer_writes_its_bundles() {
    let s = Server::start();
    let tmp = tempfile::tempdir().expect("tempdir");
    let ca = other_ca(tmp.path(), "mine");
    ok(
        s.kubectl(
            "kubectl",
            &[
                "create",
                "clusterrole",
                "ctb-writer",
                "--verb=get,list,watch,create,update,patch,delete",
                "--resource=clustertrustbundles.certificates.k8s.io",
            ],
        ),
        "role",
    );
    ok(
        s.kubectl(
            "kubectl",
            &[
                "create",
                "clusterrolebinding",
                "jane-ctb",
                "--clusterrole=ctb-writer",
                "--user=jane",
            ],
        ),
        "binding",
    );
    let live = manifest(
        "v1",
        "example.com:mysigner:live",
        Some("example.com/mysigner"),
        &[&ca],
    );
    for kubectl in kubectls() {
        let out = apply(&s, &kubectl, &live, &["--as=jane"]);
        assert!(
            stderr(&out).contains(
                "clustertrustbundles.certificates.k8s.io \"example.com:mysigner:live\" is forbidden: user not permitted to attest for signerName \"example.com/mysigner\""
            ),
            "{kubectl}: {}",
            stderr(&out)
        );
    }
    // Nor may she change one the administrator made: not by a JSON patch that also takes
    // the name out (refused as kube-apiserver's checkName refuses it, before admission),
    // nor by a label.
    ok(
        apply(&s, "kubectl", &live, &[]),
        "the administrator attests",
    );
    let other = std::fs::read_to_string(other_ca(tmp.path(), "other")).expect("pem");
    let swap = serde_json::json!([
        {"op": "remove", "path": "/metadata/name"},
        {"op": "replace", "path": "/spec/trustBundle", "value": other},
    ]);
    let name = "example.com:mysigner:live";
    let unnamed = format!("the name of the object () does not match the name on the URL ({name})");
    for (args, refusal) in [
        (
            vec![
                "patch",
                "clustertrustbundle",
                name,
                "--type=json",
                "-p",
                &swap.to_string(),
            ],
            unnamed.as_str(),
        ),
        (
            vec!["label", "clustertrustbundle", name, "a=b"],
            "user not permitted to attest for signerName",
        ),
    ] {
        let mut args = args.clone();
        args.push("--as=jane");
        let out = s.kubectl("kubectl", &args);
        assert!(
            stderr(&out).contains(refusal),
            "{args:?}: {}{}",
            stdout(&out),
            stderr(&out)
        );
    }
    let stored = ok(
        s.kubectl(
            "kubectl",
            &[
                "get",
                "clustertrustbundle",
                name,
                "-o",
                "jsonpath={.spec.trustBundle}",
            ],
        ),
        "get",
    );
    assert!(!stored.contains(other.trim()), "the bundle was swapped");
    // A bundle without a signer needs no attestation.
    ok(
        apply(
            &s,
            "kubectl",
            &manifest("v1", "plain", None, &[&ca]),
            &["--as=jane"],
        ),
        "a bundle without a signer",
    );
    // attest on example.com/* covers every signer of the domain.
    ok(
        apply(
            &s,
            "kubectl",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: attester\nrules:\n- apiGroups: [certificates.k8s.io]\n  resources: [signers]\n  resourceNames: [example.com/*]\n  verbs: [attest]\n",
            &[],
        ),
        "attester role",
    );
    ok(
        s.kubectl(
            "kubectl",
            &[
                "create",
                "clusterrolebinding",
                "jane-attest",
                "--clusterrole=attester",
                "--user=jane",
            ],
        ),
        "binding",
    );
    ok(apply(&s, "kubectl", &live, &["--as=jane"]), "attested");
    // Deleting is not attesting (the plugin checks creates and updates); the publisher
    // puts the bundle back.
    let serving = published_name(SERVING, &s.ca());
    let out = s.kubectl(
        "kubectl",
        &["delete", "clustertrustbundle", &serving, "--as=jane"],
    );
    assert!(
        out.status.success(),
        "delete needs no attestation: {}",
        stderr(&out)
    );
    let edit = s.kubectl(
        "kubectl",
        &[
            "label",
            "clustertrustbundle",
            "example.com:mysigner:live",
            "a=b",
            "--as=jane",
        ],
    );
    assert!(edit.status.success(), "{}", stderr(&edit));
}

#[test]
fn service_accounts_and_nodes_may_read_bundles_and_no_more() {
    let s = Server::start();
    let can = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend(args);
        stdout(&s.kubectl("kubectl", &all)).trim().to_owned()
    };
    let ctb = "clustertrustbundles.certificates.k8s.io";
    let sa = "--as=system:serviceaccount:default:app";
    assert_eq!(can(&["list", ctb, sa]), "yes");
    assert_eq!(can(&["watch", ctb, sa]), "yes");
    assert_eq!(can(&["create", ctb, sa]), "no");
    let node = ["--as=system:node:n1", "--as-group=system:nodes"];
    assert_eq!(can(&["get", ctb, node[0], node[1]]), "yes");
    assert_eq!(can(&["delete", ctb, node[0], node[1]]), "no");
    assert_eq!(can(&["list", ctb, "--as=jane"]), "no");
}
