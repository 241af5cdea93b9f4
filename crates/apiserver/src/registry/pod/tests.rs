use serde_json::json;

use super::*;

#[test]
fn images_are_pulled_as_kubernetes_defaults_them() {
    for (image, policy) in [
        ("nginx", "Always"),
        ("nginx:latest", "Always"),
        ("nginx:1.27", "IfNotPresent"),
        ("registry.local:5000/nginx", "Always"),
        ("registry.local:5000/nginx:1.27", "IfNotPresent"),
        ("nginx@sha256:0123", "IfNotPresent"),
    ] {
        assert_eq!(image_pull_policy(image), policy, "{image}");
    }
}

#[test]
fn the_qos_class_of_a_pod() {
    let pod = |resources: serde_json::Value| json!({"spec": {"containers": [{"name": "a", "resources": resources}]}});
    assert_eq!(qos_class(&pod(json!({}))), "BestEffort");
    assert_eq!(
        qos_class(&pod(json!({"limits": {"cpu": "1", "memory": "1Gi"}}))),
        "Guaranteed"
    );
    assert_eq!(
        qos_class(&pod(
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}})
        )),
        "Guaranteed"
    );
    assert_eq!(
        qos_class(&pod(
            json!({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}})
        )),
        "Burstable"
    );
    assert_eq!(
        qos_class(&pod(json!({"requests": {"cpu": "1"}}))),
        "Burstable"
    );
}

#[test]
fn defaults_then_validation() {
    let mut pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}]}});
    set_defaults(&mut pod);
    assert_eq!(pod["spec"]["restartPolicy"], "Always");
    assert_eq!(pod["spec"]["schedulerName"], "default-scheduler");
    assert_eq!(
        pod["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(pod["spec"]["containers"][0]["ports"][0]["protocol"], "TCP");
    assert!(validate_spec(&pod).is_empty());

    let causes = |v: serde_json::Value| -> Vec<(String, String)> {
        validate_spec(&v)
            .into_iter()
            .map(|c| (c.field, c.message))
            .collect()
    };
    assert_eq!(
        causes(json!({"spec": {"restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}})),
        [("spec.containers".to_owned(), "Required value".to_owned())]
    );
    let two = json!({"spec": {"restartPolicy": "Sometimes", "dnsPolicy": "ClusterFirst", "containers": [
        {"name": "a", "image": "x"}, {"name": "a"}, {"name": "B", "image": "x"}]}});
    let got = causes(two);
    let fields: Vec<&str> = got.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        [
            "spec.containers[1].name",
            "spec.containers[1].image",
            "spec.containers[2].name",
            "spec.restartPolicy"
        ]
    );
    assert_eq!(got[0].1, "Duplicate value: \"a\"");

    let mut changed = pod.clone();
    changed["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    assert!(
        validate_spec_update(&changed, &pod).is_empty(),
        "an image may change"
    );
    changed["spec"]["nodeName"] = json!("w2");
    let refused = validate_spec_update(&changed, &pod);
    assert_eq!(refused.len(), 1);
    assert!(
        refused[0]
            .message
            .starts_with("Forbidden: pod updates may not change fields other than")
    );
}

#[test]
fn a_pods_row_is_kubectls_print_pod() {
    let now = kubeboot_api::clock::parse_rfc3339("2026-01-01T00:10:00Z").unwrap();
    let pod = json!({
        "metadata": {"name": "p2", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"nodeName": "node-a", "containers": [{"name": "c"}, {"name": "d"}],
                 "readinessGates": [{"conditionType": "example.com/x"}]},
        "status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}, {"type": "example.com/x", "status": "True"}],
            "containerStatuses": [
                {"name": "c", "ready": true, "restartCount": 3, "state": {"running": {}},
                 "lastState": {"terminated": {"finishedAt": "2026-01-01T00:05:00Z"}}},
                {"name": "d", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
            ]},
    });
    let cells = PodStrategy.cells(&pod, now);
    assert_eq!(
        (&cells[1], &cells[2], &cells[3], &cells[8]),
        (
            &json!("1/2"),
            &json!("CrashLoopBackOff"),
            &json!("3 (5m ago)"),
            &json!("1/1")
        )
    );
    let mut gone = pod;
    gone["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:09:00Z");
    gone["status"]["containerStatuses"] = json!([]);
    let cells = PodStrategy.cells(&gone, now);
    assert_eq!((&cells[2], &cells[3]), (&json!("Terminating"), &json!("0")));
    let ended = json!({"metadata": {"name": "e"}, "spec": {"containers": [{"name": "c"}]},
        "status": {"phase": "Failed", "containerStatuses": [{"name": "c", "restartCount": 0,
            "state": {"terminated": {"exitCode": 2}}}]}});
    assert_eq!(PodStrategy.cells(&ended, now)[2], json!("ExitCode:2"));
}

#[test]
fn an_update_may_add_tolerations_and_change_their_seconds_but_take_none_away() {
    let pod = |tolerations: serde_json::Value| json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}], "tolerations": tolerations}});
    let t = |key: &str, seconds: u64| json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds});
    let old = pod(json!([t("a", 300)]));
    // (the new tolerations, allowed)
    let cases = [
        (json!([t("a", 300)]), true),
        (json!([t("a", 300), t("b", 10)]), true),
        (json!([t("a", 60)]), true),
        (json!([]), false),
        (json!([t("b", 300)]), false),
    ];
    for (tolerations, allowed) in cases {
        let causes = validate_spec_update(&pod(tolerations.clone()), &old);
        let refused = causes.iter().any(|c| c.field == "spec");
        assert_eq!(!refused, allowed, "{tolerations}: {causes:?}");
    }
}
