//! events.k8s.io/v1 Event (`pkg/apis/events/v1/conversion.go`): the same Events as
//! core/v1's, stored in core/v1's form and served in this version's names — `regarding`
//! for `involvedObject`, `note` for `message`, `reportingController` for
//! `reportingComponent`, the old counting fields as `deprecated*`. client-go's events/v1
//! recorder (kube-scheduler's, for one) writes them; a create through this version is held
//! to its stricter rules (`eventTime`, `reportingController`, `reportingInstance`, `action`
//! and `reason` required, the deprecated fields unset).

use k8s_openapi::api::events::v1::Event;
use kubeboot_api::StatusCause;
use serde_json::Value;

use super::columns::str_at;
use super::event::EventStrategy;
use super::{Conversion, Kind, METADATA_PATCH, NameRule, ResourceDef, normalize, schema};
use crate::protobuf::schema::{
    EVENT_SERIES, EVENT_SOURCE, Field as Pb, OBJECT_META, OBJECT_REFERENCE, Ty, f,
};
use crate::selectors::{FieldLabel, FieldLabels};

/// The resource.
pub(super) static EVENTS_V1: ResourceDef = ResourceDef {
    kind_id: Kind::Event,
    group: "events.k8s.io",
    version: "v1",
    kind: "Event",
    plural: "events",
    short_names: &[],
    namespaced: true,
    storage: "events",
    subresources: &[],
    field_selectors: FieldLabels::Own(&[
        FieldLabel::at("metadata.name"),
        FieldLabel::at("metadata.namespace"),
        FieldLabel::at("regarding.kind").reading("involvedObject.kind"),
        FieldLabel::at("regarding.namespace").reading("involvedObject.namespace"),
        FieldLabel::at("regarding.name").reading("involvedObject.name"),
        FieldLabel::at("regarding.uid").reading("involvedObject.uid"),
        FieldLabel::at("regarding.apiVersion").reading("involvedObject.apiVersion"),
        FieldLabel::at("regarding.resourceVersion").reading("involvedObject.resourceVersion"),
        FieldLabel::at("regarding.fieldPath").reading("involvedObject.fieldPath"),
        FieldLabel::at("reason"),
        FieldLabel::at("reportingController").reading("reportingComponent"),
        FieldLabel::at("type"),
    ]),
    name_rule: NameRule::Dns1123Subdomain,
    normalize: normalize::<Event>,
    schema: schema::<Event>,
    patch_schema: &METADATA_PATCH,
    protobuf: Some(PROTOBUF),
    conversion: Some(&CONVERSION),
    strategy: &EventStrategy,
};

/// This version's fields and the core/v1 fields they are stored as.
const RENAMED: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];

static CONVERSION: Conversion = Conversion { renamed: RENAMED };

/// events.k8s.io/v1 Event (`generated.proto`).
static PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "eventTime", Ty::MicroTime),
    f(3, "series", Ty::Msg(EVENT_SERIES)),
    f(4, "reportingController", Ty::Str),
    f(5, "reportingInstance", Ty::Str),
    f(6, "action", Ty::Str),
    f(7, "reason", Ty::Str),
    f(8, "regarding", Ty::Msg(OBJECT_REFERENCE)),
    f(9, "related", Ty::Msg(OBJECT_REFERENCE)),
    f(10, "note", Ty::Str),
    f(11, "type", Ty::Str),
    f(12, "deprecatedSource", Ty::Msg(EVENT_SOURCE)),
    f(13, "deprecatedFirstTimestamp", Ty::Time),
    f(14, "deprecatedLastTimestamp", Ty::Time),
    f(15, "deprecatedCount", Ty::I32),
];

/// What a create through events.k8s.io/v1 must also meet (`ValidateEventCreate`), checked
/// on the stored form and named in this version's fields.
pub(super) fn validate_create(stored: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    // What an Event with an `eventTime` must say of its reporter (`legacyValidateEvent`);
    // one without is told it lacks the time.
    let required: &[(&str, &str)] = match str_at(stored, &["eventTime"]) {
        "" => &[("eventTime", "eventTime")],
        _ => &[
            ("reportingController", "reportingComponent"),
            ("reportingInstance", "reportingInstance"),
            ("action", "action"),
            ("reason", "reason"),
        ],
    };
    for (field, stored_field) in required {
        if str_at(stored, &[stored_field]).is_empty() {
            out.push(StatusCause::required(field, ""));
        }
    }
    let ty = str_at(stored, &["type"]);
    if ty != "Normal" && ty != "Warning" {
        out.push(StatusCause::invalid(
            "type",
            "",
            &format!("has invalid value: {ty}"),
        ));
    }
    let set = |f: &str| {
        stored
            .get(f)
            .is_some_and(|v| !v.is_null() && v.as_i64() != Some(0))
    };
    for (field, stored_field) in [
        ("deprecatedFirstTimestamp", "firstTimestamp"),
        ("deprecatedLastTimestamp", "lastTimestamp"),
        ("deprecatedCount", "count"),
    ] {
        if set(stored_field) {
            out.push(StatusCause::invalid(field, "", "needs to be unset"));
        }
    }
    let source = stored.get("source").and_then(Value::as_object);
    if source.is_some_and(|s| {
        s.values()
            .any(|v| v.as_str().is_some_and(|t| !t.is_empty()))
    }) {
        out.push(StatusCause::invalid(
            "deprecatedSource",
            "",
            "needs to be unset",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_event_converts_both_ways() {
        let v1 = json!({"metadata": {"name": "e"}, "regarding": {"kind": "Node", "name": "w1"}, "note": "gone", "reportingController": "kubeboot", "deprecatedCount": 2, "reason": "NodeNotReady"});
        let stored = EVENTS_V1.to_storage(v1.clone());
        assert_eq!(stored["involvedObject"]["name"], "w1");
        assert_eq!(stored["message"], "gone");
        assert_eq!(stored["reportingComponent"], "kubeboot");
        assert_eq!(stored["count"], 2);
        assert_eq!(stored["reason"], "NodeNotReady");
        assert_eq!(EVENTS_V1.to_version(stored), v1);
        assert_eq!(
            EVENTS_V1.stored_field("regarding.name"),
            "involvedObject.name"
        );
        assert_eq!(EVENTS_V1.stored_field("type"), "type");
    }

    #[test]
    fn field_selectors_read_the_fields_their_labels_are_stored_as() {
        let crate::selectors::FieldLabels::Own(labels) = EVENTS_V1.field_selectors else {
            panic!("events.k8s.io/v1 Events declare their field labels");
        };
        for f in labels {
            assert_eq!(f.path, EVENTS_V1.stored_field(f.label), "{}", f.label);
        }
    }

    #[test]
    fn a_create_through_v1_names_what_it_lacks_in_v1_terms() {
        let complete = json!({"eventTime": "2026-12-06T00:00:00.000000Z", "reportingComponent": "sched", "reportingInstance": "sched-1", "action": "Binding", "reason": "Scheduled", "type": "Normal"});
        assert!(validate_create(&complete).is_empty());
        let fields: Vec<String> =
            validate_create(&json!({"type": "Odd", "count": 3, "source": {"component": "x"}}))
                .into_iter()
                .map(|c| c.field)
                .collect();
        assert_eq!(
            fields,
            ["eventTime", "type", "deprecatedCount", "deprecatedSource"]
        );
        let timed = json!({"eventTime": "2026-12-06T00:00:00.000000Z", "type": "Normal"});
        let fields: Vec<String> = validate_create(&timed)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            [
                "reportingController",
                "reportingInstance",
                "action",
                "reason"
            ]
        );
    }
}
