//! What an operator types around a node, with the oldest and newest kubectl: `describe
//! node` and `drain` (which look for the node's pods), pods listed by node and phase, a
//! bare pod evicted by `drain --force` (`pods/eviction`), a pod's spec refused when it
//! changes; and events, listed by the object they are about and gone after `--event-ttl`.

mod common;

use std::time::Duration;

use common::{Server, eventually, kubectls, ok, stderr, stdout};

const NODE: &str = r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "NAME"},
 "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
   "message": "ready", "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}}"#;

const POD: &str = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
 "spec": {"nodeName": "NAME", "containers": [{"name": "web", "image": "nginx:1.27"}]}}"#;

fn apply(s: &Server, k: &str, manifest: &str) {
    let out = s.kubectl_as(k, &s.kubeconfig(), &["create", "-f", "-"], Some(manifest));
    ok(out, "kubectl create");
}

#[test]
fn describe_and_drain_a_node() {
    let s = Server::start();
    for (i, k) in kubectls().iter().enumerate() {
        let k = k.as_str();
        let node = format!("w{i}");
        apply(&s, k, &NODE.replace("NAME", &node));

        // No pods yet: describe shows the node with none, drain cordons it.
        let described = ok(s.kubectl(k, &["describe", "node", &node]), "describe node");
        assert!(
            described.contains(&format!("Name:               {node}")),
            "{k}: {described}"
        );
        assert!(
            described.contains("Non-terminated Pods:"),
            "{k}: {described}"
        );
        let drained = s.kubectl(k, &["drain", &node, "--ignore-daemonsets"]);
        assert!(drained.status.success(), "{k}: {}", stderr(&drained));
        assert!(
            stdout(&drained).contains(&format!("node/{node} drained")),
            "{k}: {}",
            stdout(&drained)
        );
        let cordoned = ok(
            s.kubectl(
                k,
                &["get", "node", &node, "-o", "jsonpath={.spec.unschedulable}"],
            ),
            "get",
        );
        assert_eq!(cordoned.trim(), "true", "{k}");
        ok(s.kubectl(k, &["uncordon", &node]), "uncordon");

        // A bare pod on the node: listed by node and phase, shown by describe, deleted by
        // drain --force.
        apply(&s, k, &POD.replace("NAME", &node));
        let pod: serde_json::Value = serde_json::from_str(&ok(
            s.kubectl(k, &["get", "pod", "web", "-o", "json"]),
            "get pod",
        ))
        .expect("pod JSON");
        assert_eq!(pod["status"]["phase"], "Pending", "{k}: {pod}");
        assert_eq!(pod["status"]["qosClass"], "BestEffort", "{k}");
        assert_eq!(pod["spec"]["restartPolicy"], "Always", "{k}");
        let on_node = |selector: &str| {
            let out = s.kubectl(
                k,
                &[
                    "get",
                    "pods",
                    "-A",
                    "--field-selector",
                    selector,
                    "-o",
                    "name",
                ],
            );
            assert!(out.status.success(), "{k}: {}", stderr(&out));
            stdout(&out).trim().to_owned()
        };
        assert_eq!(on_node(&format!("spec.nodeName={node}")), "pod/web", "{k}");
        assert_eq!(
            on_node(&format!("spec.nodeName={node},status.phase!=Pending")),
            "",
            "{k}"
        );
        assert_eq!(on_node("spec.nodeName=elsewhere"), "", "{k}");
        let table = ok(s.kubectl(k, &["get", "pods", "--no-headers"]), "get pods");
        assert!(
            table.split_whitespace().collect::<Vec<_>>()[..4] == ["web", "0/1", "Pending", "0"],
            "{k}: {table}"
        );
        let described = ok(s.kubectl(k, &["describe", "node", &node]), "describe node");
        assert!(
            described.contains("default                     web"),
            "{k}: {described}"
        );

        // The spec is immutable but for images.
        let moved = s.kubectl(
            k,
            &[
                "patch",
                "pod",
                "web",
                "--type=merge",
                "-p",
                r#"{"spec":{"nodeName":"other"}}"#,
            ],
        );
        assert!(!moved.status.success(), "{k}");
        assert!(
            stderr(&moved).contains("pod updates may not change fields other than"),
            "{k}: {}",
            stderr(&moved)
        );

        // A server-side dry run checks everything and changes nothing.
        let dry = s.kubectl(k, &["delete", "pod", "web", "--dry-run=server"]);
        assert!(dry.status.success(), "{k}: {}", stderr(&dry));
        let dry = s.kubectl(k, &["drain", &node, "--force", "--dry-run=server"]);
        assert!(dry.status.success(), "{k}: {}", stderr(&dry));
        assert_eq!(
            on_node(&format!("spec.nodeName={node}")),
            "pod/web",
            "{k}: a dry run deleted the pod"
        );
        ok(s.kubectl(k, &["uncordon", &node]), "uncordon");
        let refused = s.kubectl(k, &["drain", &node]);
        assert!(!refused.status.success(), "{k}: a bare pod needs --force");
        let drained = s.kubectl(k, &["drain", &node, "--force"]);
        assert!(drained.status.success(), "{k}: {}", stderr(&drained));
        assert!(
            stdout(&drained).contains("pod/web evicted"),
            "{k}: {}",
            stdout(&drained)
        );
        assert_eq!(
            on_node(&format!("spec.nodeName={node}")),
            "",
            "{k}: the pod is gone"
        );
    }
    // An eviction names the pod of its URL, and a pod that is not there is kube-apiserver's 404.
    let eviction = |name: &str| {
        format!(
            r#"{{"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {{"name": "{name}", "namespace": "default"}}}}"#
        )
    };
    let evict = |path_name: &str, body: &str| {
        s.admin_curl(
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ],
            &format!("/api/v1/namespaces/default/pods/{path_name}/eviction"),
        )
    };
    let (code, body) = evict("nope", &eviction("nope"));
    assert_eq!(code, 404, "{body}");
    assert!(body.contains(r#"pods \"nope\" not found"#), "{body}");
    let (code, body) = evict("nope", &eviction("other"));
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("name in URL does not match name in Eviction object"),
        "{body}"
    );

    // A pod without containers is refused as kube-apiserver refuses it.
    let bad = r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}, "spec": {"containers": []}}"#;
    let out = s.kubectl_as(
        "kubectl",
        &s.kubeconfig(),
        &["create", "-f", "-"],
        Some(bad),
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(r#"Pod "empty" is invalid: spec.containers: Required value"#),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_event_is_listed_by_its_object_and_gone_after_the_event_ttl() {
    let s = Server::start_with(&["--event-ttl", "3s"]);
    let event = r#"{"apiVersion": "v1", "kind": "Event", "metadata": {"name": "w9.1", "namespace": "default"},
        "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": "w9"},
        "reason": "Rebooted", "message": "Node w9 has been rebooted", "type": "Warning",
        "source": {"component": "kubelet", "host": "w9"}, "count": 1}"#;
    ok(
        s.kubectl_as(
            "kubectl",
            &s.kubeconfig(),
            &["create", "-f", "-"],
            Some(event),
        ),
        "create event",
    );
    let listed = |selector: &str| {
        let out = s.kubectl(
            "kubectl",
            &["get", "events", "--field-selector", selector, "-o", "name"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        stdout(&out).trim().to_owned()
    };
    assert_eq!(
        listed("involvedObject.kind=Node,involvedObject.name=w9"),
        "event/w9.1"
    );
    assert_eq!(listed("type=Normal"), "");
    let table = ok(
        s.kubectl("kubectl", &["get", "events", "--no-headers"]),
        "get events",
    );
    assert!(
        table.contains("Warning   Rebooted   node/w9   Node w9 has been rebooted"),
        "{table}"
    );
    let bad = r#"{"apiVersion": "v1", "kind": "Event", "metadata": {"name": "x", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "team"}}"#;
    let out = s.kubectl_as(
        "kubectl",
        &s.kubeconfig(),
        &["create", "-f", "-"],
        Some(bad),
    );
    assert!(
        stderr(&out).contains(
            "involvedObject.namespace: Invalid value: \"team\": does not match event.namespace"
        ),
        "{}",
        stderr(&out)
    );
    assert!(
        eventually(Duration::from_secs(20), || listed("involvedObject.name=w9")
            .is_empty()),
        "the event outlived --event-ttl"
    );
}

/// A Node's pod CIDRs and taints are held to `ValidateNode`, in kube-apiserver's words.
/// Seen before: a Node with the pod CIDR `not-a-cidr`, a taint of effect `Sometimes` and
/// a taint twice was stored, and a pod CIDR once set could be changed.
#[test]
fn a_nodes_pod_cidrs_and_taints_are_validated() {
    let s = Server::start();
    let create = |manifest: &str| {
        let args = ["create", "-f", "-"];
        s.kubectl_as("kubectl", &s.kubeconfig(), &args, Some(manifest))
    };
    let out = create(
        "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec:\n  podCIDR: not-a-cidr\n  taints:\n  - {key: a, effect: Sometimes}\n  - {key: b, effect: NoSchedule}\n  - {key: b, effect: NoSchedule}\n",
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    for want in [
        r#"spec.podCIDRs[0]: Invalid value: "not-a-cidr": must be a valid CIDR value"#,
        r#"metadata.taints[0].effect: Unsupported value: "Sometimes""#,
        "metadata.taints[2]: Duplicate value: core.Taint{",
        "taints must be unique by key and effect pair",
    ] {
        assert!(stderr(&out).contains(want), "{want}: {}", stderr(&out));
    }
    ok(
        create(
            "apiVersion: v1\nkind: Node\nmetadata: {name: n1}\nspec:\n  podCIDR: 10.244.1.0/24\n  taints:\n  - {key: b, effect: NoSchedule}\n  - {key: b, effect: NoExecute}\n",
        ),
        "a valid node",
    );
    // Seen before the fix: refused as "not a valid CIDR". kube-apiserver reads a Node's pod
    // CIDRs as Go read them before 1.17 (`ParseCIDRSloppy`): leading zeros are decimal. And
    // `spec.podCIDRs` stayed empty: the v1 Node's conversion fills it from `spec.podCIDR`.
    ok(
        create(
            "apiVersion: v1\nkind: Node\nmetadata: {name: n2}\nspec:\n  podCIDR: 010.244.2.0/24\n",
        ),
        "a pod CIDR with leading zeros",
    );
    let stored = s.kubectl(
        "kubectl",
        &["get", "node", "n2", "-o", "jsonpath={.spec.podCIDRs[0]}"],
    );
    assert_eq!(ok(stored, "get n2"), "010.244.2.0/24", "kept as written");
    let args = [
        "patch",
        "node",
        "n1",
        "-p",
        r#"{"spec":{"podCIDR":"10.244.9.0/24","podCIDRs":["10.244.9.0/24"]}}"#,
    ];
    let out = s.kubectl("kubectl", &args);
    assert!(!out.status.success(), "{}", stdout(&out));
    let want =
        r#"spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid"#;
    assert!(stderr(&out).contains(want), "{}", stderr(&out));
}

/// A new Node is tainted `node.kubernetes.io/not-ready:NoSchedule` (TaintNodesByCondition,
/// on by default in kube-apiserver), and the node lifecycle controller takes the taint off
/// once the node reports Ready. Seen before: a new Node had no taint at all.
#[test]
fn a_new_node_is_not_ready_until_it_reports_ready() {
    let s = Server::start();
    let k = "kubectl";
    let node = r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "fresh"},
      "spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}}"#;
    apply(&s, k, node);
    let taints = || {
        let args = [
            "get",
            "node",
            "fresh",
            "-o",
            "jsonpath={range .spec.taints[*]}{.key}:{.effect} {end}",
        ];
        ok(s.kubectl(k, &args), "taints").trim().to_owned()
    };
    assert_eq!(
        taints(),
        "dedicated:NoSchedule node.kubernetes.io/not-ready:NoSchedule"
    );
    let now = "2026-12-07T00:00:00Z";
    let ready = format!(
        r#"{{"status": {{"conditions": [{{"type": "Ready", "status": "True", "reason": "KubeletReady",
          "message": "ready", "lastHeartbeatTime": "{now}", "lastTransitionTime": "{now}"}}]}}}}"#
    );
    let patch = [
        "patch",
        "node",
        "fresh",
        "--subresource=status",
        "--type=merge",
        "-p",
        &ready,
    ];
    ok(s.kubectl(k, &patch), "report Ready");
    assert!(
        eventually(Duration::from_secs(20), || taints()
            == "dedicated:NoSchedule"),
        "the not-ready taint goes once the node is Ready: {}",
        taints()
    );
}

/// A new pod gets kube-apiserver's admission defaults: DefaultTolerationSeconds (five
/// minutes of a not-ready or unreachable node) and Priority (0 with no class, a system
/// class's value; an unknown class refused). Seen before: `kubectl describe pod` showed
/// `Tolerations: <none>` and no priority.
#[test]
fn a_new_pod_gets_its_default_tolerations_and_priority() {
    let s = Server::start();
    let k = "kubectl";
    apply(&s, k, &POD.replace("NAME", "w0"));
    let described = ok(s.kubectl(k, &["describe", "pod", "web"]), "describe");
    for line in [
        "node.kubernetes.io/not-ready:NoExecute op=Exists for 300s",
        "node.kubernetes.io/unreachable:NoExecute op=Exists for 300s",
    ] {
        assert!(described.contains(line), "{line} in {described}");
    }
    let priority = ok(
        s.kubectl(
            k,
            &[
                "get",
                "pod",
                "web",
                "-o",
                "jsonpath={.spec.priority} {.spec.preemptionPolicy}",
            ],
        ),
        "priority",
    );
    assert_eq!(priority.trim(), "0 PreemptLowerPriority");
    let critical = POD.replace("\"web\"", "\"critical\"").replace(
        "\"spec\": {",
        "\"spec\": {\"priorityClassName\": \"system-node-critical\", ",
    );
    apply(&s, k, &critical.replace("NAME", "w0"));
    let priority = ok(
        s.kubectl(
            k,
            &["get", "pod", "critical", "-o", "jsonpath={.spec.priority}"],
        ),
        "priority",
    );
    assert_eq!(priority.trim(), "2000001000");
    let gold = POD.replace("\"web\"", "\"gold\"").replace(
        "\"spec\": {",
        "\"spec\": {\"priorityClassName\": \"gold\", ",
    );
    let out = s.kubectl_as(
        k,
        &s.kubeconfig(),
        &["create", "-f", "-"],
        Some(&gold.replace("NAME", "w0")),
    );
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out)
            .contains("pods \"gold\" is forbidden: no PriorityClass with name gold was found"),
        "{}",
        stderr(&out)
    );
}
