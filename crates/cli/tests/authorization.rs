//! What RBAC lets a user grant, and why a request is refused, with the real kubectl: a
//! namespace admin delegates what it holds and nothing more (escalation prevention by the
//! rules the writer holds, as kube-apiserver's ConfirmNoEscalation), and a 403 carries
//! what the Node and RBAC authorizers said; a kubelet does what the Node authorizer allows.

mod common;

use std::time::Duration;

use common::{Server, eventually, ok, stderr, stdout};

#[test]
fn a_namespace_admin_grants_what_it_holds_and_nothing_more() {
    // Seen before the fix: a user bound to `admin` in a namespace could create no Role and
    // no RoleBinding there ("escalate on roles ... is required"), where kube-apiserver lets
    // a writer grant what it already holds (ConfirmNoEscalation); and an `escalate` limited
    // to one role's name let a user create that role over anything, where kube-apiserver
    // holds a create to the URL's name, which is empty.
    let s = Server::start();
    let k = |args: &[&str]| s.kubectl("kubectl", args);
    let refused = |args: &[&str], want: &str| {
        let out = k(args);
        assert!(!out.status.success(), "{args:?} was allowed");
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    };
    ok(k(&["create", "namespace", "t2"]), "namespace");
    let bob_admin = ["--clusterrole=admin", "--user=bob"];
    ok(
        k(&[
            &["create", "rolebinding", "bob-admin", "-n", "t2"][..],
            &bob_admin,
        ]
        .concat()),
        "bind bob",
    );
    let hank = [
        [
            "create",
            "role",
            "esc-foo",
            "-n",
            "t2",
            "--verb=escalate",
            "--resource=roles",
            "--resource-name=foo",
        ]
        .as_slice(),
        &[
            "create",
            "role",
            "mk",
            "-n",
            "t2",
            "--verb=create",
            "--resource=roles",
        ],
        &[
            "create",
            "rolebinding",
            "h1",
            "-n",
            "t2",
            "--role=esc-foo",
            "--user=hank",
        ],
        &[
            "create",
            "rolebinding",
            "h2",
            "-n",
            "t2",
            "--role=mk",
            "--user=hank",
        ],
    ];
    for args in hank {
        ok(k(args), "hank's roles");
    }
    let can = |who: &str| {
        let out = k(&["auth", "can-i", "create", "roles", "-n", "t2", "--as", who]);
        String::from_utf8_lossy(&out.stdout).trim() == "yes"
    };
    assert!(
        eventually(Duration::from_secs(10), || can("bob") && can("hank")),
        "the authorizer follows the bindings within moments"
    );

    fn as_bob<'a>(args: &[&'a str]) -> Vec<&'a str> {
        [args, &["--as", "bob"]].concat()
    }
    ok(
        k(&as_bob(&[
            "create",
            "role",
            "cm-reader",
            "-n",
            "t2",
            "--verb=get,list",
            "--resource=configmaps",
        ])),
        "bob grants what he holds",
    );
    // A replace whose body names no namespace is held to the URL's (seen in review: it was
    // checked cluster-wide, and refused).
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("role.json");
    let role = r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"cm-reader"},"rules":[{"apiGroups":[""],"resources":["configmaps"],"verbs":["get"]}]}"#;
    std::fs::write(&body, role).expect("write");
    let path = "/apis/rbac.authorization.k8s.io/v1/namespaces/t2/roles/cm-reader";
    let file = body.to_str().expect("utf-8");
    ok(
        k(&as_bob(&["replace", "--raw", path, "-f", file])),
        "bob replaces his role without naming its namespace",
    );
    ok(
        k(&as_bob(&[
            "create",
            "rolebinding",
            "carol-view",
            "-n",
            "t2",
            "--clusterrole=view",
            "--user=carol",
        ])),
        "bob binds view, which admin holds",
    );
    refused(
        &as_bob(&[
            "create",
            "role",
            "everything",
            "-n",
            "t2",
            "--verb=*",
            "--resource=secrets",
        ]),
        "roles.rbac.authorization.k8s.io \"everything\" is forbidden: user \"bob\" (groups=[\"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"*\"]}",
    );
    refused(
        &as_bob(&[
            "create",
            "rolebinding",
            "x",
            "-n",
            "t2",
            "--role=nope",
            "--user=carol",
        ]),
        "roles.rbac.authorization.k8s.io \"nope\" not found",
    );
    refused(
        &[
            "create",
            "role",
            "foo",
            "-n",
            "t2",
            "--verb=*",
            "--resource=secrets",
            "--as",
            "hank",
        ],
        "roles.rbac.authorization.k8s.io \"foo\" is forbidden: user \"hank\"",
    );
}

#[test]
fn a_refusal_says_why_as_kube_apiserver_says_it() {
    // Seen before the fix: the 403 ended after the namespace, where kube-apiserver adds
    // what its authorizers said: the Node authorizer's reason, and RBAC's roles not found.
    let s = Server::start();
    let k = |args: &[&str]| s.kubectl("kubectl", args);
    let node = ["--as", "system:node:n1", "--as-group", "system:nodes"];
    let out = k(&[&["get", "secret", "s1", "-n", "default"][..], &node].concat());
    assert!(
        stderr(&out).contains(r#"User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object"#),
        "{}",
        stderr(&out)
    );
    let ghost = [
        "create",
        "clusterrolebinding",
        "ghost",
        "--clusterrole=does-not-exist",
        "--user=zed",
    ];
    ok(k(&ghost), "a binding to a missing role");
    let want = r#"cannot list resource "configmaps" in API group "" in the namespace "default": RBAC: clusterrole.rbac.authorization.k8s.io "does-not-exist" not found"#;
    assert!(
        eventually(Duration::from_secs(10), || {
            stderr(&k(&["get", "configmaps", "-n", "default", "--as", "zed"])).contains(want)
        }),
        "RBAC says the role is missing"
    );
}

/// A kubelet reads and writes what kube-apiserver's Node authorizer lets it: the pods a
/// `spec.nodeName=<its name>` field selector lists, Services, Events, token and access
/// reviews; not every pod, nor a Lease list. Seen before: its pod watch, its Service
/// list and its Events were all refused, so a kubelet never saw its pods.
#[test]
fn a_kubelet_lists_its_pods_and_posts_events_as_the_node_authorizer_allows() {
    let s = Server::start();
    let pods = "apiVersion: v1\nkind: Pod\nmetadata: {name: on-n1, namespace: default}\n\
        spec: {nodeName: n1, containers: [{name: c, image: nginx}]}\n---\n\
        apiVersion: v1\nkind: Pod\nmetadata: {name: on-n2, namespace: default}\n\
        spec: {nodeName: n2, containers: [{name: c, image: nginx}]}\n";
    ok(
        s.kubectl_as(
            "kubectl",
            &s.kubeconfig(),
            &["create", "-f", "-"],
            Some(pods),
        ),
        "create pods",
    );
    let as_node = |args: &[&str], stdin: Option<&str>| {
        let node = ["--as", "system:node:n1", "--as-group", "system:nodes"];
        s.kubectl_as("kubectl", &s.kubeconfig(), &[args, &node].concat(), stdin)
    };
    let mine = [
        "get",
        "pods",
        "-A",
        "-o",
        "name",
        "--field-selector",
        "spec.nodeName=n1",
    ];
    assert_eq!(ok(as_node(&mine, None), "its pods").trim(), "pod/on-n1");
    ok(as_node(&["get", "services", "-A"], None), "services");
    let event = "apiVersion: v1\nkind: Event\nmetadata: {name: n1.started, namespace: default}\n\
        involvedObject: {kind: Node, name: n1}\nreason: Starting\ntype: Normal\n\
        source: {component: kubelet, host: n1}\nfirstTimestamp: '2026-12-07T00:00:00Z'\n";
    ok(as_node(&["create", "-f", "-"], Some(event)), "an event");
    for (args, reason) in [
        (
            &["get", "pods", "-A"][..],
            "can only list/watch pods with spec.nodeName field selector",
        ),
        (
            &["get", "pods", "-A", "--field-selector", "spec.nodeName=n2"][..],
            "can only list/watch pods with spec.nodeName field selector",
        ),
        (
            &["get", "leases", "-n", "kube-node-lease"][..],
            "can only get, create, update, patch, or delete a node lease",
        ),
        (
            &["get", "node", "n2"][..],
            "node 'n1' cannot read 'n2', only its own Node object",
        ),
    ] {
        let out = as_node(args, None);
        assert!(!out.status.success(), "{args:?}: {}", stdout(&out));
        assert!(stderr(&out).contains(reason), "{args:?}: {}", stderr(&out));
    }
}

/// A ServiceAccount subject has no `apiGroup` on the wire (its default is `""`, which
/// Kubernetes leaves out), a User's is RBAC's. Seen before: `"apiGroup": ""` was written
/// out for a ServiceAccount.
#[test]
fn a_service_account_subject_has_no_api_group() {
    let s = Server::start();
    let create = [
        "create",
        "rolebinding",
        "sa-view",
        "--clusterrole=view",
        "--serviceaccount=default:robot",
        "--user=ann",
    ];
    ok(s.kubectl("kubectl", &create), "create rolebinding");
    let out = ok(
        s.kubectl("kubectl", &["get", "rolebinding", "sa-view", "-o", "json"]),
        "get",
    );
    let binding: serde_json::Value = serde_json::from_str(&out).expect("json");
    let subjects = binding["subjects"].as_array().expect("subjects");
    let of = |kind: &str| subjects.iter().find(|s| s["kind"] == kind).expect(kind);
    assert!(of("ServiceAccount").get("apiGroup").is_none(), "{out}");
    assert_eq!(of("User")["apiGroup"], "rbac.authorization.k8s.io", "{out}");
}
