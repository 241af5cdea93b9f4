//! core/v1 Node (`pkg/registry/core/node/strategy.go`): cluster-scoped, its status changed
//! through `status`; NodeRestriction lets a node write only its own Node, and not the
//! labels and taints that steer workloads to it (`admission::node_restriction`).

use std::time::SystemTime;

use k8s_openapi::api::core::v1::Node;
use kubeboot_api::names::{label_value_errors, qualified_name_errors};
use kubeboot_api::{Status, StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{AGE, NAME, name_and_age, non_empty, str_at};
use super::strategy::{Admission, Admitted, Change, Strategy};
use super::{Kind, NameRule, ResourceDef, normalize, schema};
use crate::admission::node_restriction;
use crate::authz::node_name;
use crate::object::meta_str;
use crate::patch::strategic::{Field, Schema as PatchSchema, Strategy as Merge};
use crate::protobuf::schema::{Field as Pb, OBJECT_META, Ty, f, rep};
use crate::selectors::{FieldLabel, FieldLabels};

/// `ValidateNode`'s pod CIDRs (`spec.podCIDR` is the first of `spec.podCIDRs`): each a
/// CIDR, and at most one of each IP family.
fn pod_cidr_causes(node: &Value) -> Vec<StatusCause> {
    let cidrs = pod_cidrs(node);
    let mut causes = Vec::new();
    let mut families = Vec::new();
    for (i, cidr) in cidrs.iter().enumerate() {
        match kubeboot_api::cidr::parse_sloppy(cidr) {
            Some((ip, _)) => families.push(ip.is_ipv4()),
            None => causes.push(StatusCause::invalid(
                &format!("spec.podCIDRs[{i}]"),
                cidr,
                "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)",
            )),
        }
    }
    let dual_stack = families.len() == 2 && families[0] != families[1];
    if causes.is_empty() && cidrs.len() > 1 && !dual_stack {
        causes.push(StatusCause::invalid_strings(
            "spec.podCIDRs",
            &cidrs,
            "may specify no more than one CIDR for each IP family",
        ));
    }
    causes
}

/// `ValidateNodeUpdate`: pod CIDRs and the provider ID, once set, stay as they are.
fn update_causes(new: &Value, old: &Value) -> Vec<StatusCause> {
    let mut causes = Vec::new();
    let (new_cidrs, old_cidrs) = (pod_cidrs(new), pod_cidrs(old));
    // kube-apiserver refuses a change of their number once, and each changed CIDR once.
    let changes = match (old_cidrs.len(), new_cidrs.len()) {
        (0, _) => 0,
        (o, n) if o != n => 1,
        _ => old_cidrs
            .iter()
            .zip(&new_cidrs)
            .filter(|(o, n)| o != n)
            .count(),
    };
    for _ in 0..changes {
        causes.push(StatusCause::forbidden(
            "spec.podCIDRs",
            "node updates may not change podCIDR except from \"\" to valid",
        ));
    }
    let (new_id, old_id) = (
        str_at(new, &["spec", "providerID"]),
        str_at(old, &["spec", "providerID"]),
    );
    if !old_id.is_empty() && new_id != old_id {
        causes.push(StatusCause::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    causes
}

/// The v1 Node's two pod CIDR fields made one, as its conversion through the internal
/// version makes them (`Convert_v1_NodeSpec_To_core_NodeSpec` and back): `podCIDRs` from
/// a `podCIDR` alone, and `podCIDR` the first of `podCIDRs`.
fn join_pod_cidr_fields(node: &mut Value) {
    let cidrs: Vec<Value> = pod_cidrs(node).into_iter().map(Value::from).collect();
    let Some(spec) = node.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(first) = cidrs.first() {
        spec.insert("podCIDR".into(), first.clone());
        spec.insert("podCIDRs".into(), Value::Array(cidrs));
    }
}

/// A Node's pod CIDRs: `spec.podCIDRs`, or `spec.podCIDR` alone as the first.
fn pod_cidrs(node: &Value) -> Vec<&str> {
    let mut cidrs = crate::object::str_list(node, "/spec/podCIDRs");
    let legacy = str_at(node, &["spec", "podCIDR"]);
    if cidrs.is_empty() && !legacy.is_empty() {
        cidrs.push(legacy);
    }
    cidrs
}

/// `validateNodeTaints`: each taint's key a qualified name, its value a label value, its
/// effect one of Kubernetes' three, and no two alike in key and effect.
fn taint_causes(node: &Value) -> Vec<StatusCause> {
    const EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];
    let taints = node.pointer("/spec/taints").and_then(Value::as_array);
    let mut causes = Vec::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for (i, taint) in taints.into_iter().flatten().enumerate() {
        // kube-apiserver names a taint's path from `metadata`, as `ValidateNode` builds it.
        let path = format!("metadata.taints[{i}]");
        let text = |f: &str| taint.get(f).and_then(Value::as_str).unwrap_or_default();
        let (key, value, effect) = (text("key"), text("value"), text("effect"));
        for e in qualified_name_errors(key) {
            causes.push(StatusCause::invalid(&format!("{path}.key"), key, &e));
        }
        let errors = label_value_errors(value);
        if !errors.is_empty() {
            causes.push(StatusCause::invalid(
                &format!("{path}.value"),
                value,
                &errors.join(";"),
            ));
        }
        if effect.is_empty() {
            causes.push(StatusCause::required(&format!("{path}.effect"), ""));
        } else if !EFFECTS.contains(&effect) {
            causes.push(StatusCause::not_supported(
                &format!("{path}.effect"),
                effect,
                &EFFECTS,
            ));
        }
        if seen.contains(&(key, effect)) {
            // As Go's `%#v` prints the internal Taint, as kube-apiserver 1.33 does.
            let printed = format!(
                "core.Taint{{Key:{key:?}, Value:{value:?}, Effect:{effect:?}, TimeAdded:(*v1.Time)(nil)}}"
            );
            causes.push(StatusCause::new(
                "FieldValueDuplicate",
                &path,
                format!("Duplicate value: {printed}: taints must be unique by key and effect pair"),
            ));
            continue;
        }
        seen.push((key, effect));
    }
    causes
}

/// The resource.
pub(super) static NODES: ResourceDef = ResourceDef {
    kind_id: Kind::Node,
    group: "",
    version: "v1",
    kind: "Node",
    plural: "nodes",
    short_names: &["no"],
    namespaced: false,
    storage: "minions",
    subresources: &["status"],
    field_selectors: FieldLabels::Own(&[
        FieldLabel::at("metadata.name"),
        FieldLabel::at("spec.unschedulable").unset_as("false"),
    ]),
    name_rule: NameRule::Dns1123Subdomain,
    normalize: normalize::<Node>,
    schema: schema::<Node>,
    patch_schema: &PATCH,
    protobuf: Some(PROTOBUF),
    conversion: None,
    strategy: &NodeStrategy,
};

#[derive(Debug)]
struct NodeStrategy;

impl Strategy for NodeStrategy {
    fn set_defaults(&self, obj: &mut Value) {
        join_pod_cidr_fields(obj);
    }

    fn prepare_create(&self, def: &ResourceDef, obj: &mut Value, adm: &Admission) -> Admitted {
        // NodeRestriction, then TaintNodesByCondition, in kube-apiserver's plugin order.
        let name = meta_str(obj, "name");
        let Some(node) = node_name(adm.user) else {
            crate::admission::node_taint::add_not_ready_taint(obj);
            return Ok(());
        };
        let denial = match node == name {
            true => node_restriction::node_write_denial(node, obj, None),
            false => Some(format!(
                "node {node:?} is not allowed to modify node {name:?}"
            )),
        };
        if let Some(denial) = denial {
            return Err(Status::forbidden(Some(def.subject(name)), &denial));
        }
        crate::admission::node_taint::add_not_ready_taint(obj);
        Ok(())
    }

    fn prepare_update(&self, def: &ResourceDef, c: Change<'_>) -> Admitted {
        let Change { old, adm, .. } = c;
        only_its_own(def, old, adm)
    }

    fn admit_update(&self, def: &ResourceDef, c: &Change<'_>) -> Admitted {
        let (new, old, adm) = (&*c.new, c.old, c.adm);
        // A node's write of its own Node, through the object or its status.
        let Some(node) = node_name(adm.user) else {
            return Ok(());
        };
        match node_restriction::node_write_denial(node, new, Some(old)) {
            Some(denial) => Err(Status::forbidden(
                Some(def.subject(meta_str(old, "name"))),
                &denial,
            )),
            None => Ok(()),
        }
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut causes = pod_cidr_causes(obj);
        causes.extend(taint_causes(obj));
        if let Some(old) = old {
            causes.extend(update_causes(obj, old));
        }
        causes
    }

    fn columns(&self) -> Vec<TableColumn> {
        let t = TableColumn::text;
        vec![
            NAME,
            t("Status", "The status of the node"),
            t("Roles", "The roles of the node"),
            AGE,
            t("Version", "Kubelet Version reported by the node."),
            t("Internal-IP", "List of internal IPs for the node.").wide(),
            t("External-IP", "List of external IPs for the node.").wide(),
            t("OS-Image", "OS image reported by the node.").wide(),
            t("Kernel-Version", "Kernel version reported by the node.").wide(),
            t(
                "Container-Runtime",
                "Container runtime version reported by the node.",
            )
            .wide(),
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        node_cells(obj, name, age)
    }
}

/// A node may change only its own Node or Lease (the rest of NodeRestriction is in
/// `admit_update`).
pub(super) fn only_its_own(def: &ResourceDef, old: &Value, adm: &Admission) -> Result<(), Status> {
    let name = meta_str(old, "name");
    match node_name(adm.user) {
        Some(node) if node != name => Err(Status::forbidden(
            Some(def.subject(name)),
            &format!("node {node:?} may not modify {name:?}"),
        )),
        _ => Ok(()),
    }
}

/// `spec.podCIDRs` a set; `status.conditions` and `status.addresses` merged by `type`.
/// `spec.taints` has no strategy: a patch replaces the list.
static PATCH: PatchSchema = PatchSchema {
    fields: &[
        (
            "metadata",
            Field::nested(Merge::Untagged, &super::OBJECT_META_PATCH),
        ),
        ("spec", Field::nested(Merge::Untagged, &SPEC_PATCH)),
        ("status", Field::nested(Merge::Untagged, &STATUS_PATCH)),
    ],
};

static SPEC_PATCH: PatchSchema = PatchSchema {
    fields: &[("podCIDRs", Field::of(Merge::Merge))],
};

static STATUS_PATCH: PatchSchema = PatchSchema {
    fields: &[
        ("conditions", Field::of(Merge::MergeByKey("type"))),
        ("addresses", Field::of(Merge::MergeByKey("type"))),
    ],
};

fn node_cells(obj: &Value, name: Value, age: Value) -> Vec<Value> {
    let ready = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("Ready"))
        .and_then(|c| c.get("status").and_then(Value::as_str));
    let mut status = match ready {
        Some("True") => "Ready".to_owned(),
        _ => "NotReady".to_owned(),
    };
    if obj.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = obj
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| match k.strip_prefix("node-role.kubernetes.io/") {
            // `findNodeRoles`: a role label's suffix, or the older `kubernetes.io/role`.
            Some(role) if !role.is_empty() => Some(role.to_owned()),
            _ if k == "kubernetes.io/role" => {
                v.as_str().filter(|v| !v.is_empty()).map(str::to_owned)
            }
            _ => None,
        })
        .collect();
    roles.sort();
    roles.dedup();
    let roles = if roles.is_empty() {
        "<none>".to_owned()
    } else {
        roles.join(",")
    };
    let addr = |t: &str| {
        obj.pointer("/status/addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|a| a.get("type").and_then(Value::as_str) == Some(t))
            .and_then(|a| a.get("address").and_then(Value::as_str))
            .unwrap_or("<none>")
            .to_owned()
    };
    let info = |f: &str| json!(non_empty(str_at(obj, &["status", "nodeInfo", f])));
    vec![
        name,
        json!(status),
        json!(roles),
        age,
        json!(str_at(obj, &["status", "nodeInfo", "kubeletVersion"])),
        json!(addr("InternalIP")),
        json!(addr("ExternalIP")),
        info("osImage"),
        info("kernelVersion"),
        info("containerRuntimeVersion"),
    ]
}

/// core/v1 Node.
static PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NODE_SPEC)),
    f(3, "status", Ty::Msg(NODE_STATUS)),
];

/// core/v1 NodeSpec (without the deprecated configSource).
static NODE_SPEC: &[Pb] = &[
    f(1, "podCIDR", Ty::Str),
    f(2, "externalID", Ty::Str),
    f(3, "providerID", Ty::Str),
    f(4, "unschedulable", Ty::Bool),
    rep(5, "taints", Ty::Msg(TAINT)),
    rep(7, "podCIDRs", Ty::Str),
];

/// core/v1 NodeStatus (without images and the deprecated config).
static NODE_STATUS: &[Pb] = &[
    f(1, "capacity", Ty::MapQuantity),
    f(2, "allocatable", Ty::MapQuantity),
    f(3, "phase", Ty::Str),
    rep(4, "conditions", Ty::Msg(NODE_CONDITION)),
    rep(5, "addresses", Ty::Msg(NODE_ADDRESS)),
    f(6, "daemonEndpoints", Ty::Msg(NODE_DAEMON_ENDPOINTS)),
    f(7, "nodeInfo", Ty::Msg(NODE_SYSTEM_INFO)),
    rep(9, "volumesInUse", Ty::Str),
    rep(10, "volumesAttached", Ty::Msg(ATTACHED_VOLUME)),
    rep(12, "runtimeHandlers", Ty::Msg(NODE_RUNTIME_HANDLER)),
    f(13, "features", Ty::Msg(NODE_FEATURES)),
    rep(14, "declaredFeatures", Ty::Str),
];

/// core/v1 NodeCondition.
static NODE_CONDITION: &[Pb] = &[
    f(1, "type", Ty::Str),
    f(2, "status", Ty::Str),
    f(3, "lastHeartbeatTime", Ty::Time),
    f(4, "lastTransitionTime", Ty::Time),
    f(5, "reason", Ty::Str),
    f(6, "message", Ty::Str),
];

/// core/v1 NodeAddress.
static NODE_ADDRESS: &[Pb] = &[f(1, "type", Ty::Str), f(2, "address", Ty::Str)];

/// core/v1 NodeDaemonEndpoints.
static NODE_DAEMON_ENDPOINTS: &[Pb] = &[f(1, "kubeletEndpoint", Ty::Msg(DAEMON_ENDPOINT))];

/// core/v1 DaemonEndpoint (its JSON name really is `Port`).
static DAEMON_ENDPOINT: &[Pb] = &[f(1, "Port", Ty::I32)];

/// core/v1 NodeSystemInfo.
static NODE_SYSTEM_INFO: &[Pb] = &[
    f(1, "machineID", Ty::Str),
    f(2, "systemUUID", Ty::Str),
    f(3, "bootID", Ty::Str),
    f(4, "kernelVersion", Ty::Str),
    f(5, "osImage", Ty::Str),
    f(6, "containerRuntimeVersion", Ty::Str),
    f(7, "kubeletVersion", Ty::Str),
    f(8, "kubeProxyVersion", Ty::Str),
    f(9, "operatingSystem", Ty::Str),
    f(10, "architecture", Ty::Str),
    f(11, "swap", Ty::Msg(NODE_SWAP_STATUS)),
];

/// core/v1 NodeSwapStatus.
static NODE_SWAP_STATUS: &[Pb] = &[f(1, "capacity", Ty::I64)];

/// core/v1 AttachedVolume.
static ATTACHED_VOLUME: &[Pb] = &[f(1, "name", Ty::Str), f(2, "devicePath", Ty::Str)];

/// core/v1 NodeRuntimeHandler.
static NODE_RUNTIME_HANDLER: &[Pb] = &[
    f(1, "name", Ty::Str),
    f(2, "features", Ty::Msg(NODE_RUNTIME_HANDLER_FEATURES)),
];

/// core/v1 NodeRuntimeHandlerFeatures.
static NODE_RUNTIME_HANDLER_FEATURES: &[Pb] = &[
    f(1, "recursiveReadOnlyMounts", Ty::Bool),
    f(2, "userNamespaces", Ty::Bool),
];

/// core/v1 NodeFeatures.
static NODE_FEATURES: &[Pb] = &[f(1, "supplementalGroupsPolicy", Ty::Bool)];

/// core/v1 Taint.
static TAINT: &[Pb] = &[
    f(1, "key", Ty::Str),
    f(2, "value", Ty::Str),
    f(3, "effect", Ty::Str),
    f(4, "timeAdded", Ty::Time),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::messages;

    #[test]
    fn roles_are_read_from_role_labels_as_kubectl_finds_them() {
        let roles = |labels: Value| {
            node_cells(
                &json!({"metadata": {"labels": labels}}),
                json!("n"),
                json!("1m"),
            )[2]
            .clone()
        };
        assert_eq!(roles(json!({})), json!("<none>"));
        assert_eq!(
            roles(
                json!({"node-role.kubernetes.io/worker": "", "node-role.kubernetes.io/": "x",
                          "kubernetes.io/role": "worker", "node-role.kubernetes.io/edge": ""})
            ),
            json!("edge,worker")
        );
        assert_eq!(roles(json!({"kubernetes.io/role": ""})), json!("<none>"));
    }

    #[test]
    fn pod_cidrs_are_cidrs_one_per_family() {
        let node = |spec: Value| json!({"spec": spec});
        for ok in [
            json!({}),
            json!({"podCIDR": "10.244.1.0/24"}),
            json!({"podCIDRs": ["10.244.1.0/24", "fd00::/64"]}),
            json!({"podCIDR": "010.244.1.0/24"}),
        ] {
            assert!(pod_cidr_causes(&node(ok.clone())).is_empty(), "{ok}");
        }
        assert_eq!(
            messages(pod_cidr_causes(&node(json!({"podCIDR": "not-a-cidr"})))),
            [
                "spec.podCIDRs[0]: Invalid value: \"not-a-cidr\": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
            ]
        );
        assert_eq!(
            messages(pod_cidr_causes(&node(
                json!({"podCIDRs": ["10.0.0.0/24", "10.1.0.0/24"]})
            ))),
            [
                "spec.podCIDRs: Invalid value: []string{\"10.0.0.0/24\", \"10.1.0.0/24\"}: may specify no more than one CIDR for each IP family"
            ]
        );
    }

    #[test]
    fn the_two_pod_cidr_fields_are_one_as_conversion_makes_them() {
        let spec = |spec: Value| {
            let mut node = json!({"spec": spec});
            join_pod_cidr_fields(&mut node);
            node["spec"].clone()
        };
        let both = json!({"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24"]});
        assert_eq!(spec(json!({"podCIDR": "10.0.0.0/24"})), both);
        assert_eq!(spec(json!({"podCIDRs": ["10.0.0.0/24"]})), both);
        assert_eq!(
            spec(json!({"podCIDR": "10.9.0.0/24", "podCIDRs": ["10.0.0.0/24", "fd00::/64"]})),
            json!({"podCIDR": "10.0.0.0/24", "podCIDRs": ["10.0.0.0/24", "fd00::/64"]})
        );
        assert_eq!(spec(json!({"podCIDR": ""})), json!({"podCIDR": ""}));
        assert_eq!(spec(json!({})), json!({}));
    }

    #[test]
    fn pod_cidrs_and_the_provider_id_once_set_stay() {
        let node = |spec: Value| json!({"spec": spec});
        let set = node(json!({"podCIDR": "10.244.1.0/24", "providerID": "aws:///a"}));
        assert!(
            update_causes(&set, &node(json!({}))).is_empty(),
            "set from nothing"
        );
        assert!(update_causes(&set, &set).is_empty());
        let moved = node(json!({"podCIDRs": ["10.244.2.0/24"], "providerID": "aws:///b"}));
        assert_eq!(
            messages(update_causes(&moved, &set)),
            [
                "spec.podCIDRs: Forbidden: node updates may not change podCIDR except from \"\" to valid",
                "spec.providerID: Forbidden: node updates may not change providerID except from \"\" to valid",
            ]
        );
        let more =
            node(json!({"podCIDRs": ["10.244.1.0/24", "fd00::/64"], "providerID": "aws:///a"}));
        assert_eq!(update_causes(&more, &set).len(), 1);
    }

    #[test]
    fn taints_have_a_key_a_known_effect_and_are_unique() {
        let node = |taints: Value| json!({"spec": {"taints": taints}});
        let good = node(json!([
            {"key": "example.com/a", "value": "v", "effect": "NoSchedule"},
            {"key": "example.com/a", "effect": "NoExecute"},
        ]));
        assert!(taint_causes(&good).is_empty());
        let bad = node(json!([
            {"key": "bad key", "effect": "Sometimes"},
            {"key": "a", "value": "bad value!", "effect": ""},
            {"key": "b", "effect": "NoSchedule"},
            {"key": "b", "effect": "NoSchedule"},
        ]));
        let got = messages(taint_causes(&bad));
        assert_eq!(got.len(), 5, "{got:#?}");
        assert!(got[0].starts_with(
            "metadata.taints[0].key: Invalid value: \"bad key\": name part must consist"
        ));
        assert_eq!(
            got[1],
            "metadata.taints[0].effect: Unsupported value: \"Sometimes\": supported values: \"NoSchedule\", \"PreferNoSchedule\", \"NoExecute\""
        );
        assert!(
            got[2].starts_with(
                "metadata.taints[1].value: Invalid value: \"bad value!\": a valid label"
            )
        );
        assert_eq!(got[3], "metadata.taints[1].effect: Required value");
        assert_eq!(
            got[4],
            "metadata.taints[3]: Duplicate value: core.Taint{Key:\"b\", Value:\"\", Effect:\"NoSchedule\", TimeAdded:(*v1.Time)(nil)}: taints must be unique by key and effect pair"
        );
    }
}
