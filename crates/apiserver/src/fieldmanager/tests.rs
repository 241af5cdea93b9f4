use serde_json::json;

use super::fieldset::{FieldSet, path_string};
use super::*;
use crate::registry::{self, Kind};

fn cm() -> &'static ResourceDef {
    registry::by_kind(Kind::ConfigMap)
}

fn svc() -> &'static ResourceDef {
    registry::by_kind(Kind::Service)
}

fn manager<'a>(name: &'a str) -> Manager<'a> {
    Manager {
        name,
        subresource: "",
        time: "2026-12-06T00:00:00Z",
    }
}

fn owners(obj: &Value) -> Vec<(String, String, Value)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_owned(),
                e["operation"].as_str().unwrap().to_owned(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

#[test]
fn fields_v1_reads_and_writes_as_kubernetes_writes_it() {
    let text = json!({"f:data": {".": {}, "f:a": {}}, "f:spec": {"f:ports": {"k:{\"port\":80,\"protocol\":\"TCP\"}": {".": {}, "f:port": {}}}}});
    let set = FieldSet::from_fields_v1(&text);
    assert_eq!(set.to_fields_v1(), text);
    let paths: Vec<String> = set.paths().iter().map(|p| path_string(p)).collect();
    assert_eq!(
        paths,
        [
            ".data",
            ".data.a",
            ".spec.ports[port=80,protocol=\"TCP\"]",
            ".spec.ports[port=80,protocol=\"TCP\"].port"
        ]
    );
    assert!(set.is_leaf(&["f:data".into(), "f:a".into()]));
    assert!(!set.is_leaf(&["f:data".into()]));
}

#[test]
fn a_create_owns_everything_it_set_and_an_update_what_it_changed() {
    let mut created = json!({"metadata": {"name": "c", "namespace": "d", "labels": {"x": "1"}}, "data": {"a": "1", "b": "2"}});
    track_update(cm(), None, &mut created, &manager("kubectl-create"));
    assert_eq!(
        owners(&created),
        [(
            "kubectl-create".into(),
            "Update".into(),
            json!({"f:data": {".": {}, "f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
        )]
    );
    let mut edited = created.clone();
    edited["data"]["a"] = json!("changed");
    edited["data"].as_object_mut().unwrap().remove("b");
    track_update(cm(), Some(&created), &mut edited, &manager("kubectl-edit"));
    let o = owners(&edited);
    assert_eq!(
        o[0].2,
        json!({"f:data": {}, "f:metadata": {"f:labels": {".": {}, "f:x": {}}}})
    );
    assert_eq!(
        o[1],
        (
            "kubectl-edit".into(),
            "Update".into(),
            json!({"f:data": {"f:a": {}}})
        )
    );
    // An update that changes nothing records nothing new.
    let mut same = edited.clone();
    track_update(cm(), Some(&edited), &mut same, &manager("someone"));
    assert_eq!(owners(&same), o);
}

#[test]
fn apply_merges_owns_and_removes_what_it_no_longer_applies() {
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}});
    let first = apply(cm(), None, &config, &manager("kubectl"), false).unwrap();
    assert_eq!(first["data"], json!({"a": "1", "b": "2"}));
    assert_eq!(
        owners(&first),
        [(
            "kubectl".into(),
            "Apply".into(),
            json!({"f:data": {"f:a": {}, "f:b": {}}})
        )]
    );
    // Another manager adds a field; the applier drops b: b goes, c stays.
    let mut other = first.clone();
    other["data"]["c"] = json!("3");
    track_update(cm(), Some(&first), &mut other, &manager("kubectl-edit"));
    let less = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}});
    let second = apply(cm(), Some(&other), &less, &manager("kubectl"), false).unwrap();
    assert_eq!(second["data"], json!({"a": "1", "c": "3"}));
}

#[test]
fn apply_conflicts_with_another_managers_field_unless_forced() {
    let config = json!({"metadata": {"name": "c"}, "data": {"a": "1"}});
    let first = apply(cm(), None, &config, &manager("alice"), false).unwrap();
    // The same value is no conflict: both own it.
    let shared = apply(cm(), Some(&first), &config, &manager("bob"), false).unwrap();
    assert_eq!(owners(&shared).len(), 2);
    let other = json!({"metadata": {"name": "c"}, "data": {"a": "2", "b": "x"}});
    let refused = apply(cm(), Some(&shared), &other, &manager("carol"), false).unwrap_err();
    assert_eq!(refused.code, 409);
    assert_eq!(
        refused.message,
        "Apply failed with 2 conflicts: conflicts with \"alice\":\n- .data.a\nconflicts with \"bob\":\n- .data.a"
    );
    let causes = refused.details.unwrap().causes;
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".data.a");
    assert_eq!(causes[0].message, "conflict with \"alice\"");
    // Forced, carol takes the field; alice and bob own nothing and leave the list.
    let forced = apply(cm(), Some(&shared), &other, &manager("carol"), true).unwrap();
    assert_eq!(forced["data"], json!({"a": "2", "b": "x"}));
    let o = owners(&forced);
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(o[0].0, "carol");
    // A forced apply takes only what it changes: a field it sets to its value stays shared.
    let with_label = json!({"metadata": {"name": "c", "labels": {"l": "1"}}, "data": {"a": "2"}});
    let dave = apply(cm(), Some(&forced), &with_label, &manager("dave"), false).unwrap();
    let erin = json!({"metadata": {"name": "c", "labels": {"l": "1"}}, "data": {"a": "3"}});
    let taken = apply(cm(), Some(&dave), &erin, &manager("erin"), true).unwrap();
    let o = owners(&taken);
    let dave_fields = &o
        .iter()
        .find(|(m, _, _)| m == "dave")
        .expect("dave still owns the label")
        .2;
    assert_eq!(
        dave_fields,
        &json!({"f:metadata": {"f:labels": {"f:l": {}}}})
    );
    // A conflict with an updater names its API version.
    let mut edited = forced.clone();
    edited["data"]["b"] = json!("y");
    track_update(cm(), Some(&forced), &mut edited, &manager("kubectl-edit"));
    let back = json!({"metadata": {"name": "c"}, "data": {"a": "2", "b": "x"}});
    let refused = apply(cm(), Some(&edited), &back, &manager("carol"), false).unwrap_err();
    assert_eq!(
        refused.message,
        "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.b"
    );
}

#[test]
fn associative_lists_merge_by_key_and_atomic_maps_replace() {
    let config = json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "a", "tier": "web"},
        "ports": [{"port": 80, "targetPort": 8080}, {"port": 53, "protocol": "UDP"}]}});
    let first = apply(svc(), None, &config, &manager("alice"), false).unwrap();
    let fields = &owners(&first)[0].2;
    assert!(
        fields["f:spec"]["f:ports"]
            .get("k:{\"port\":80,\"protocol\":\"TCP\"}")
            .is_some(),
        "{fields}"
    );
    assert_eq!(
        fields["f:spec"]["f:selector"],
        json!({}),
        "an atomic map is one field"
    );
    // bob adds a port and changes the selector: the ports merge, the selector is replaced.
    let more = json!({"metadata": {"name": "s"}, "spec": {"selector": {"app": "b"}, "ports": [{"port": 443}]}});
    let refused = apply(svc(), Some(&first), &more, &manager("bob"), false).unwrap_err();
    assert_eq!(
        refused.message,
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.selector"
    );
    let forced = apply(svc(), Some(&first), &more, &manager("bob"), true).unwrap();
    assert_eq!(forced["spec"]["selector"], json!({"app": "b"}));
    let ports: Vec<i64> = forced["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["port"].as_i64().unwrap())
        .collect();
    assert_eq!(ports, [80, 53, 443]);
}

#[test]
fn the_default_manager_is_the_user_agents_first_word() {
    assert_eq!(manager_name(Some("flux"), "kubectl/v1.33"), "flux");
    assert_eq!(
        manager_name(None, "kubectl/v1.33.0 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(manager_name(Some(""), "curl/8.5.0"), "curl");
    assert_eq!(manager_name(None, ""), SERVER_MANAGER);
    assert_eq!(
        manager_name(None, &"x".repeat(300)).len(),
        MAX_MANAGER_LENGTH
    );
}

#[test]
fn a_write_starts_from_the_record_it_sent_when_that_reads() {
    let with = |mut e: Value, field: &str, value: &str| {
        e[field] = json!(value);
        e
    };
    let entry = |m: &str| json!({"manager": m, "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}});
    let live = json!({"metadata": {"managedFields": [entry("live")]}});
    let record = |sent: Option<Value>, sub: &str| {
        let mut new = json!({"metadata": {}});
        if let Some(sent) = sent {
            new["metadata"]["managedFields"] = sent;
        }
        settle_sent_record(&mut new, Some(&live), sub);
        new["metadata"].get("managedFields").cloned()
    };
    let live_record = Some(json!([entry("live")]));
    // (what the write sent, through a subresource?, the record it starts from)
    let cases = [
        (None, "", live_record.clone()),
        (Some(json!(null)), "", live_record.clone()),
        (Some(json!([])), "", None),
        (Some(json!([{}])), "", None),
        (Some(json!([{"manager": ""}])), "", None),
        (
            Some(json!([entry("sent")])),
            "",
            Some(json!([entry("sent")])),
        ),
        (Some(json!([entry("sent")])), "status", live_record.clone()),
        (
            Some(json!([{"manager": "x", "fieldsType": "FieldsV2", "fieldsV1": {}}])),
            "",
            live_record.clone(),
        ),
        (
            Some(json!([entry("sent"), {"manager": "x"}])),
            "",
            live_record.clone(),
        ),
        (
            Some(json!([with(entry("x"), "operation", "Bogus")])),
            "",
            live_record.clone(),
        ),
        (
            Some(json!([with(entry("x"), "apiVersion", "")])),
            "",
            live_record.clone(),
        ),
        (
            Some(json!([with(entry("x"), "manager", &"m".repeat(129))])),
            "",
            live_record,
        ),
    ];
    for (sent, sub, want) in cases {
        assert_eq!(record(sent.clone(), sub), want, "{sent:?} {sub}");
    }
}

#[test]
fn kubectl_takes_from_client_side_apply_what_its_annotation_still_says() {
    let csa = |data: Value| {
        json!({"metadata": {"name": "c", "annotations": {LAST_APPLIED: json!({"data": data}).to_string()},
               "managedFields": [{"manager": "kubectl-client-side-apply", "operation": "Update", "apiVersion": "v1",
                                  "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {".": {}, "f:a": {}}}}]},
               "data": {"a": "1"}})
    };
    let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "2"}});
    // (annotation's data, manager, allowed)
    let cases = [
        (json!({"a": "1"}), "kubectl", true),
        (json!({"a": "1"}), "other", false),
        (json!({"a": "0"}), "kubectl", false),
        (json!({}), "kubectl", false),
    ];
    for (data, name, allowed) in cases {
        let live = csa(data.clone());
        let applied = apply(cm(), Some(&live), &config, &manager(name), false);
        assert_eq!(applied.is_ok(), allowed, "{data} by {name}");
        if let Ok(mut applied) = applied {
            sync_last_applied(&mut applied, &config, &manager(name));
            let last: Value = serde_json::from_str(
                applied["metadata"]["annotations"][LAST_APPLIED]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
            assert_eq!(last["data"], json!({"a": "2"}));
        }
    }
}
