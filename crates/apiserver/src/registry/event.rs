//! core/v1 Event (`pkg/registry/core/event/strategy.go`): what happened to an object, as
//! its `involvedObject` names it; listed by `kubectl get events` and `kubectl events`,
//! shown by `kubectl describe`, which finds an object's events with the `involvedObject.*`
//! field selectors. The node lifecycle controller writes them (a node gone `NotReady`).

use std::time::SystemTime;

use k8s_openapi::api::core::v1::Event;
use kubeboot_api::{StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{age, str_at};
use super::strategy::Strategy;
use super::{Kind, METADATA_PATCH, NameRule, ResourceDef, normalize, schema};
use crate::object::meta_str;
use crate::protobuf::schema::{
    EVENT_SERIES, EVENT_SOURCE, Field as Pb, OBJECT_META, OBJECT_REFERENCE, Ty, f,
};
use crate::selectors::{FieldLabel, FieldLabels};

/// The resource.
pub(super) static EVENTS: ResourceDef = ResourceDef {
    kind_id: Kind::Event,
    group: "",
    version: "v1",
    kind: "Event",
    plural: "events",
    short_names: &["ev"],
    namespaced: true,
    storage: "events",
    subresources: &[],
    field_selectors: FieldLabels::Own(&[
        FieldLabel::at("metadata.name"),
        FieldLabel::at("metadata.namespace"),
        FieldLabel::at("involvedObject.kind"),
        FieldLabel::at("involvedObject.namespace"),
        FieldLabel::at("involvedObject.name"),
        FieldLabel::at("involvedObject.uid"),
        FieldLabel::at("involvedObject.apiVersion"),
        FieldLabel::at("involvedObject.resourceVersion"),
        FieldLabel::at("involvedObject.fieldPath"),
        FieldLabel::at("reason"),
        FieldLabel::at("reportingComponent"),
        FieldLabel::at("source")
            .reading("source.component")
            .else_reading("reportingComponent"),
        FieldLabel::at("type"),
    ]),
    // core/v1 Event names are only path segments (`rest.BeforeCreate`): client-go names an
    // Event after its object (`node-csr-Ab_C….<time>`).
    name_rule: NameRule::PathSegment,
    normalize: normalize::<Event>,
    schema: schema::<Event>,
    patch_schema: &METADATA_PATCH,
    protobuf: Some(PROTOBUF),
    conversion: None,
    strategy: &EventStrategy,
};

/// core/v1 Event (`generated.proto`).
static PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "involvedObject", Ty::Msg(OBJECT_REFERENCE)),
    f(3, "reason", Ty::Str),
    f(4, "message", Ty::Str),
    f(5, "source", Ty::Msg(EVENT_SOURCE)),
    f(6, "firstTimestamp", Ty::Time),
    f(7, "lastTimestamp", Ty::Time),
    f(8, "count", Ty::I32),
    f(9, "type", Ty::Str),
    f(10, "eventTime", Ty::MicroTime),
    f(11, "series", Ty::Msg(EVENT_SERIES)),
    f(12, "action", Ty::Str),
    f(13, "related", Ty::Msg(OBJECT_REFERENCE)),
    f(14, "reportingComponent", Ty::Str),
    f(15, "reportingInstance", Ty::Str),
];

/// Both versions' behaviour, over the stored (core/v1) form.
#[derive(Debug)]
pub(super) struct EventStrategy;

impl Strategy for EventStrategy {
    fn validate(&self, def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut causes = validate_event(obj);
        if def.group == "events.k8s.io" && old.is_none() {
            causes.extend(super::events_v1::validate_create(obj));
        }
        causes
    }

    fn columns(&self) -> Vec<TableColumn> {
        let t = TableColumn::text;
        vec![
            t("Last Seen", "Time when last event occurred"),
            t(
                "Type",
                "Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            t("Reason", "Reason why this event is generated."),
            t("Object", "The object this event is about."),
            t("Subobject", "The subobject this event is about.").wide(),
            t("Source", "The source of this event.").wide(),
            t("Message", "The description of this event."),
            t("First Seen", "Time when the first event occurred").wide(),
            t("Count", "Number of times this event has occurred").wide(),
            t("Name", "Name of this event").named().wide(),
        ]
    }

    /// kubectl's `printEvent` (server-side tables are wide): a series' last time and count,
    /// the first time from `eventTime` when there is no `firstTimestamp`.
    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let since = |t: &str| match t {
            "" => "<unknown>".to_owned(),
            t => age(t, now),
        };
        let first = match str_at(obj, &["firstTimestamp"]) {
            "" => since(str_at(obj, &["eventTime"])),
            t => since(t),
        };
        let mut last = match str_at(obj, &["lastTimestamp"]) {
            "" => first.clone(),
            t => since(t),
        };
        let mut count = obj.get("count").and_then(Value::as_i64).unwrap_or(0);
        match obj.get("series").filter(|s| s.is_object()) {
            Some(series) => {
                last = since(str_at(series, &["lastObservedTime"]));
                count = series.get("count").and_then(Value::as_i64).unwrap_or(0);
            }
            None if count == 0 => count = 1,
            None => {}
        }
        let kind = str_at(obj, &["involvedObject", "kind"]).to_ascii_lowercase();
        let object = match str_at(obj, &["involvedObject", "name"]) {
            "" => kind,
            name => format!("{kind}/{name}"),
        };
        vec![
            json!(last),
            json!(str_at(obj, &["type"])),
            json!(str_at(obj, &["reason"])),
            json!(object),
            json!(str_at(obj, &["involvedObject", "fieldPath"])),
            json!(event_source(obj)),
            json!(str_at(obj, &["message"]).trim()),
            json!(first),
            json!(count),
            json!(meta_str(obj, "name")),
        ]
    }
}

/// `formatEventSource`: the component (or reporting controller), then `, ` and the host (or
/// reporting instance) when there is one.
fn event_source(obj: &Value) -> String {
    let first = |a: &[&str], b: &[&str]| match str_at(obj, a) {
        "" => str_at(obj, b),
        v => v,
    };
    let component = first(&["source", "component"], &["reportingComponent"]);
    match first(&["source", "host"], &["reportingInstance"]) {
        "" => component.to_owned(),
        instance => format!("{component}, {instance}"),
    }
}

/// The checks of `ValidateEvent` an event writer meets: it names the object it is about,
/// in that object's namespace (`default` for an object of no namespace), and its type is
/// `Normal` or `Warning`.
fn validate_event(obj: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let ns = meta_str(obj, "namespace");
    let involved_ns = str_at(obj, &["involvedObject", "namespace"]);
    // An object of no namespace has its events in `default` (or none).
    let fits = match involved_ns {
        "" => ns.is_empty() || ns == "default",
        other => other == ns,
    };
    if !fits {
        out.push(StatusCause::invalid(
            "involvedObject.namespace",
            involved_ns,
            "does not match event.namespace",
        ));
    }
    if str_at(obj, &["involvedObject", "name"]).is_empty() {
        out.push(StatusCause::required("involvedObject.name", ""));
    }
    let ty = str_at(obj, &["type"]);
    if !ty.is_empty() && ty != "Normal" && ty != "Warning" {
        out.push(StatusCause::not_supported(
            "type",
            ty,
            &["Normal", "Warning"],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_events_row_is_kubectls_print_event() {
        let now = kubeboot_api::clock::parse_rfc3339("2026-01-01T00:10:00Z").unwrap();
        let cells = |ev: Value| EventStrategy.cells(&ev, now);
        let series = json!({"metadata": {"name": "s"}, "involvedObject": {"kind": "Node"},
            "eventTime": "2026-01-01T00:05:00.000000Z", "reportingComponent": "example.com/ctl",
            "reportingInstance": "inst-1", "message": "  age x  ",
            "series": {"count": 7, "lastObservedTime": "2026-01-01T00:09:30.000000Z"}});
        assert_eq!(
            cells(series),
            [
                json!("30s"),
                json!(""),
                json!(""),
                json!("node"),
                json!(""),
                json!("example.com/ctl, inst-1"),
                json!("age x"),
                json!("5m"),
                json!(7),
                json!("s")
            ]
        );
        let plain = json!({"metadata": {"name": "p"}, "involvedObject": {"kind": "Pod", "name": "a"},
            "firstTimestamp": "2026-01-01T00:00:00Z", "source": {"component": "kubelet", "host": "n1"}});
        let got = cells(plain);
        assert_eq!(
            (&got[0], &got[3], &got[5], &got[7], &got[8]),
            (
                &json!("10m"),
                &json!("pod/a"),
                &json!("kubelet, n1"),
                &json!("10m"),
                &json!(1)
            )
        );
        assert_eq!(
            cells(json!({"metadata": {"name": "q"}}))[5],
            json!(""),
            "no source: empty"
        );
    }

    #[test]
    fn an_event_names_its_object_in_its_namespace() {
        let ev = |ns: &str, involved: Value, ty: &str| json!({"metadata": {"name": "e", "namespace": ns}, "involvedObject": involved, "type": ty});
        let fields =
            |v: Value| -> Vec<String> { validate_event(&v).into_iter().map(|c| c.field).collect() };
        assert!(
            fields(ev(
                "default",
                json!({"kind": "Node", "name": "w1"}),
                "Normal"
            ))
            .is_empty()
        );
        assert!(
            fields(ev(
                "team",
                json!({"kind": "Pod", "name": "p", "namespace": "team"}),
                "Warning"
            ))
            .is_empty()
        );
        assert_eq!(
            fields(ev(
                "default",
                json!({"kind": "Pod", "name": "p", "namespace": "team"}),
                "Normal"
            )),
            ["involvedObject.namespace"]
        );
        assert_eq!(
            fields(ev("default", json!({"kind": "Node"}), "Bad")),
            ["involvedObject.name", "type"]
        );
        assert_eq!(
            fields(ev("team", json!({"kind": "Node", "name": "w1"}), "Normal")),
            ["involvedObject.namespace"]
        );
    }
}
