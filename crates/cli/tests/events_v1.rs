//! events.k8s.io/v1 with the oldest and newest kubectl: an Event written through either
//! version is read through both (`note` is `message`, `regarding` is `involvedObject`),
//! `kubectl events` and `kubectl describe` show it, the `regarding.*` field selectors
//! select it, and a create through events.k8s.io/v1 is held to that version's rules.

mod common;

use common::{Server, kubectls, ok, stderr};
use serde_json::Value;

const V1_EVENT: &str = "apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: NAME, namespace: default}
eventTime: \"2026-12-06T04:00:00.000000Z\"
reportingController: default-scheduler
reportingInstance: default-scheduler-host
action: Binding
reason: Scheduled
type: Normal
note: Successfully assigned default/web to w1
regarding: {kind: Node, name: NODE}
";

fn json_of(s: &Server, k: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(s.kubectl(k, &all), "get")).expect("JSON")
}

#[test]
fn an_event_reads_through_both_versions() {
    let s = Server::start();
    for (i, k) in kubectls().iter().enumerate() {
        let k = k.as_str();
        let (name, node) = (format!("sched-{i}"), format!("w{i}"));
        let manifest = V1_EVENT.replace("NAME", &name).replace("NODE", &node);
        ok(
            s.kubectl_as(k, &s.kubeconfig(), &["create", "-f", "-"], Some(&manifest)),
            "create v1",
        );
        // Through core/v1: the same Event in core's names.
        let core = json_of(&s, k, &["get", "events.v1.", &name]);
        assert_eq!(core["apiVersion"], "v1", "{k}");
        assert_eq!(
            core["message"], "Successfully assigned default/web to w1",
            "{k}"
        );
        assert_eq!(core["involvedObject"]["name"], node.as_str(), "{k}");
        assert_eq!(core["reportingComponent"], "default-scheduler", "{k}");
        // Through events.k8s.io/v1, selected by what it regards.
        let list = json_of(
            &s,
            k,
            &[
                "get",
                "events.v1.events.k8s.io",
                "--field-selector",
                &format!("regarding.name={node}"),
            ],
        );
        let items = list["items"].as_array().expect("items");
        assert_eq!(items.len(), 1, "{k}: {list}");
        assert_eq!(
            items[0]["note"], "Successfully assigned default/web to w1",
            "{k}"
        );
        assert_eq!(items[0]["regarding"]["kind"], "Node", "{k}");
        assert!(items[0].get("message").is_none(), "{k}");
        let shown = ok(s.kubectl(k, &["events"]), "kubectl events");
        assert!(
            shown.contains("Scheduled") && shown.contains("Successfully assigned"),
            "{k}: {shown}"
        );
    }
    // A core/v1 Event reads through events.k8s.io/v1 with its deprecated fields.
    let core = r#"{"apiVersion": "v1", "kind": "Event", "metadata": {"name": "legacy", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": "w9"}, "reason": "NodeNotReady", "message": "down", "type": "Normal",
        "count": 2, "source": {"component": "node-controller"}}"#;
    ok(
        s.kubectl_as(
            "kubectl",
            &s.kubeconfig(),
            &["create", "-f", "-"],
            Some(core),
        ),
        "create core",
    );
    let v1 = json_of(&s, "kubectl", &["get", "events.v1.events.k8s.io", "legacy"]);
    assert_eq!(v1["deprecatedCount"], 2);
    assert_eq!(v1["deprecatedSource"]["component"], "node-controller");
    assert_eq!(v1["note"], "down");
}

#[test]
fn a_create_through_events_k8s_io_meets_its_rules() {
    let s = Server::start();
    let bad = "apiVersion: events.k8s.io/v1\nkind: Event\nmetadata: {name: bad, namespace: default}\neventTime: \"2026-12-06T04:00:00.000000Z\"\nreason: X\ntype: Normal\nregarding: {kind: Node, name: w1}\ndeprecatedCount: 3\n";
    for k in kubectls() {
        let out = s.kubectl_as(&k, &s.kubeconfig(), &["create", "-f", "-"], Some(bad));
        assert!(!out.status.success(), "{k}");
        let err = stderr(&out);
        for want in [
            "reportingController: Required value",
            "action: Required value",
            "deprecatedCount: Invalid value: \"\": needs to be unset",
        ] {
            assert!(err.contains(want), "{k}: {want} in {err}");
        }
    }
}
