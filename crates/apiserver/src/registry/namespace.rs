//! core/v1 Namespace (`pkg/registry/core/namespace/strategy.go`): cluster-scoped, named
//! as a DNS label, labelled `kubernetes.io/metadata.name` with its name whatever a client
//! sends, its status set Active on create and changed only through `status`, its
//! `spec.finalizers` given `kubernetes` on create and changed only through `finalize`;
//! NamespaceLifecycle and the cascade on delete are the handlers' (`handlers::namespaces`).

use std::time::SystemTime;

use k8s_openapi::api::core::v1::Namespace;
use kubeboot_api::{StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{AGE, NAME, name_and_age, str_at};
use super::strategy::{Admission, Admitted, Change, Strategy, carry_metadata_from, with_status_of};
use super::{Kind, NameRule, ResourceDef, normalize, schema};
use crate::patch::strategic::{Field, Schema as PatchSchema, Strategy as Merge};
use crate::protobuf::schema::{Field as Pb, OBJECT_META, Ty, f, rep};
use crate::selectors::{FieldLabel, FieldLabels};

/// The resource.
pub(super) static NAMESPACES: ResourceDef = ResourceDef {
    kind_id: Kind::Namespace,
    group: "",
    version: "v1",
    kind: "Namespace",
    plural: "namespaces",
    short_names: &["ns"],
    namespaced: false,
    storage: "namespaces",
    subresources: &["status", "finalize"],
    field_selectors: FieldLabels::Own(&[
        FieldLabel::at("metadata.name"),
        FieldLabel::at("status.phase"),
    ]),
    name_rule: NameRule::Dns1123Label,
    normalize: normalize::<Namespace>,
    schema: schema::<Namespace>,
    patch_schema: &PATCH,
    protobuf: Some(PROTOBUF),
    conversion: None,
    strategy: &NamespaceStrategy,
};

#[derive(Debug)]
struct NamespaceStrategy;

/// The label every namespace carries, its value the namespace's name
/// (`v1.LabelMetadataName`): namespace selectors (a NetworkPolicy's, a webhook's) can name
/// a namespace by it.
const METADATA_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Whether a namespace carries its name label (one stored by an older kubeboot does not).
pub fn has_name_label(obj: &Value) -> bool {
    let name = crate::object::meta_str(obj, "name");
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(METADATA_NAME_LABEL))
        .and_then(Value::as_str)
        == Some(name)
}

/// Sets the namespace's name label to its name (`SetDefaults_Namespace` when the name is
/// known as the object is decoded, and the strategy's `Canonicalize` before every write: the
/// label follows a generated name and cannot be changed or removed).
fn set_name_label(obj: &mut Value) {
    let name = crate::object::meta_str(obj, "name").to_owned();
    if name.is_empty() {
        return;
    }
    let meta = crate::object::meta_mut(obj);
    let labels = meta.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    labels[METADATA_NAME_LABEL] = Value::String(name);
}

/// A status's phase, Active unless given (`SetDefaults_NamespaceStatus`).
fn default_phase(obj: &mut Value) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    if let Some(status) = obj
        .entry("status")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        && status
            .get("phase")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
    {
        status.insert("phase".into(), json!("Active"));
    }
}

/// What an update may say of the phase (`ValidateNamespaceStatusUpdate`): Terminating
/// exactly when a deletion has begun, which only a DELETE does; a client that could mark a
/// namespace Terminating would stop new content in it, and have it deleted as an
/// interrupted deletion.
fn validate_phase(obj: &Value) -> Vec<StatusCause> {
    let phase = str_at(obj, &["status", "phase"]);
    let deleting = obj.pointer("/metadata/deletionTimestamp");
    let (want, why) = match deleting.filter(|t| !t.is_null()) {
        None => (
            "Active",
            "may only be 'Active' if `deletionTimestamp` is empty",
        ),
        Some(_) => (
            "Terminating",
            "may only be 'Terminating' if `deletionTimestamp` is not empty",
        ),
    };
    if phase == want {
        return Vec::new();
    }
    vec![StatusCause::invalid("status.Phase", phase, why)]
}

/// The finalizer the namespace controller removes once a namespace's contents are gone.
pub const KUBERNETES_FINALIZER: &str = "kubernetes";

/// A namespace's `spec.finalizers`.
pub fn spec_finalizers(obj: &Value) -> Vec<String> {
    let finalizers = crate::object::str_list(obj, "/spec/finalizers");
    finalizers.into_iter().map(str::to_owned).collect()
}

/// Sets `spec.finalizers` (removed when empty).
pub fn set_spec_finalizers(obj: &mut Value, finalizers: Vec<String>) {
    let Some(o) = obj.as_object_mut() else {
        return;
    };
    let spec = o.entry("spec").or_insert_with(|| json!({}));
    if !spec.is_object() {
        *spec = json!({});
    }
    match finalizers.is_empty() {
        true => spec.as_object_mut().map(|s| s.remove("finalizers")),
        false => spec
            .as_object_mut()
            .map(|s| s.insert("finalizers".into(), json!(finalizers))),
    };
}

/// `validateFinalizerName` of each spec finalizer: a qualified name, one of Kubernetes'
/// own where it has no `/`; at `spec.finalizers` on a create, at its index otherwise.
fn spec_finalizer_causes(obj: &Value, indexed: bool) -> Vec<StatusCause> {
    const STANDARD: [&str; 3] = ["kubernetes", "orphan", "foregroundDeletion"];
    let mut causes = Vec::new();
    for (i, f) in spec_finalizers(obj).iter().map(String::as_str).enumerate() {
        let field = match indexed {
            true => format!("spec.finalizers[{i}]"),
            false => "spec.finalizers".to_owned(),
        };
        for e in kubeboot_api::names::qualified_name_errors(f) {
            causes.push(StatusCause::invalid(&field, f, &e));
        }
        if !f.contains('/') && !STANDARD.contains(&f) {
            causes.push(StatusCause::invalid(
                &field,
                f,
                "name is neither a standard finalizer name nor is it fully qualified",
            ));
        }
    }
    causes
}

impl Strategy for NamespaceStrategy {
    fn set_defaults(&self, obj: &mut Value) {
        set_name_label(obj);
        default_phase(obj);
    }

    fn prepare_create(&self, _def: &ResourceDef, obj: &mut Value, _adm: &Admission) -> Admitted {
        obj["status"] = json!({"phase": "Active"});
        let mut finalizers = spec_finalizers(obj);
        if !finalizers.iter().any(|f| f == KUBERNETES_FINALIZER) {
            finalizers.push(KUBERNETES_FINALIZER.to_owned());
            set_spec_finalizers(obj, finalizers);
        }
        Ok(())
    }

    fn prepare_update(&self, _def: &ResourceDef, c: Change<'_>) -> Admitted {
        // The finalizers change only through `finalize`.
        set_spec_finalizers(c.new, spec_finalizers(c.old));
        Ok(())
    }

    fn prepare_subresource(&self, def: &ResourceDef, sub: &str, c: Change<'_>) -> Admitted {
        let Change { new, old, .. } = c;
        match sub {
            "status" => *new = with_status_of(old, new),
            "finalize" => {
                // The finalizers, and the metadata a client may change; not the status.
                let mut merged = old.clone();
                set_spec_finalizers(&mut merged, spec_finalizers(new));
                carry_metadata_from(&mut merged, new);
                *new = merged;
            }
            other => {
                return Err(kubeboot_api::Status::not_found(def.subject(&format!(
                    "{}/{other}",
                    crate::object::meta_str(old, "name")
                ))));
            }
        }
        Ok(())
    }

    fn canonicalize(&self, obj: &mut Value) {
        set_name_label(obj);
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut causes = spec_finalizer_causes(obj, old.is_some());
        if old.is_some() {
            causes.extend(validate_phase(obj));
        }
        causes
    }

    fn columns(&self) -> Vec<TableColumn> {
        vec![
            NAME,
            TableColumn::text("Status", "The status of the namespace"),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        vec![name, json!(str_at(obj, &["status", "phase"])), age]
    }
}

/// `status.conditions` merged by `type`.
static PATCH: PatchSchema = PatchSchema {
    fields: &[
        (
            "metadata",
            Field::nested(Merge::Untagged, &super::OBJECT_META_PATCH),
        ),
        (
            "status",
            Field::nested(Merge::Untagged, &super::CONDITIONS_BY_TYPE),
        ),
    ],
};

/// core/v1 Namespace.
static PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
    f(3, "status", Ty::Msg(NAMESPACE_STATUS)),
];

/// core/v1 NamespaceSpec.
static NAMESPACE_SPEC: &[Pb] = &[rep(1, "finalizers", Ty::Str)];

/// core/v1 NamespaceStatus.
static NAMESPACE_STATUS: &[Pb] = &[
    f(1, "phase", Ty::Str),
    rep(2, "conditions", Ty::Msg(NAMESPACE_CONDITION)),
];

/// core/v1 NamespaceCondition.
static NAMESPACE_CONDITION: &[Pb] = &[
    f(1, "type", Ty::Str),
    f(2, "status", Ty::Str),
    f(4, "lastTransitionTime", Ty::Time),
    f(5, "reason", Ty::Str),
    f(6, "message", Ty::Str),
];
