//! core/v1 Service (`pkg/registry/core/service/strategy.go`): a stable address for a set of
//! endpoints. kubeboot runs no proxy, but operators' tools expect Services: `kubectl
//! cluster-info` lists them, in-cluster clients find the API server as the `kubernetes`
//! Service in `default`. A Service is defaulted and validated as Kubernetes does it, and
//! given a ClusterIP and NodePorts from the cluster's ranges (`handlers::services` reserves
//! them; the rules of what a Service wants and holds are here).

mod allocated;
mod families;
mod validation;

pub(crate) use validation::{port_number_error, protocol_error};

pub use allocated::{
    ClusterIpWanted, cluster_ip_wanted, held_ips, held_node_ports, ports_without_node_port,
    set_cluster_ip, wants_node_ports,
};
pub use families::ip_family_causes;

use std::time::SystemTime;

use k8s_openapi::api::core::v1::Service;
use kubeboot_api::{StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{AGE, NAME, name_and_age, str_at};
use super::strategy::{Admission, Admitted, Change, Strategy};
use super::{Kind, NameRule, ResourceDef, normalize, schema};
use crate::patch::strategic::{Field, Schema as PatchSchema, Strategy as Merge};
use crate::protobuf::schema::{CONDITION, Field as Pb, OBJECT_META, Ty, f, rep};
use crate::selectors::{FieldLabel, FieldLabels};

/// The resource.
pub(super) static SERVICES: ResourceDef = ResourceDef {
    kind_id: Kind::Service,
    group: "",
    version: "v1",
    kind: "Service",
    plural: "services",
    short_names: &["svc"],
    namespaced: true,
    storage: "services/specs",
    subresources: &["status"],
    field_selectors: FieldLabels::Own(&[
        FieldLabel::at("metadata.name"),
        FieldLabel::at("metadata.namespace"),
        FieldLabel::at("spec.clusterIP"),
        FieldLabel::at("spec.type"),
    ]),
    name_rule: NameRule::Dns1035Label,
    normalize: normalize::<Service>,
    schema: schema::<Service>,
    patch_schema: &PATCH,
    protobuf: Some(PROTOBUF),
    conversion: None,
    strategy: &ServiceStrategy,
};

#[derive(Debug)]
struct ServiceStrategy;

impl Strategy for ServiceStrategy {
    fn set_defaults(&self, obj: &mut Value) {
        set_defaults(obj);
    }

    fn prepare_create(&self, _def: &ResourceDef, obj: &mut Value, _adm: &Admission) -> Admitted {
        normalize_cluster_ips(obj);
        obj["status"] = json!({"loadBalancer": {}});
        Ok(())
    }

    fn prepare_update(&self, _def: &ResourceDef, c: Change<'_>) -> Admitted {
        normalize_cluster_ips_on_update(c.new, c.old);
        normalize_cluster_ips(c.new);
        keep_allocated(c.new, c.old);
        drop_type_dependent_fields(c.new, c.old);
        Ok(())
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut causes = validation::validate_service(obj);
        if let Some(old) = old {
            causes.extend(validation::validate_update(obj, old));
        }
        causes
    }

    fn columns(&self) -> Vec<TableColumn> {
        let t = TableColumn::text;
        vec![
            NAME,
            t("Type", "type determines how the Service is exposed."),
            t(
                "Cluster-IP",
                "clusterIP is the IP address of the service and is usually assigned randomly.",
            ),
            t(
                "External-IP",
                "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.",
            ),
            t(
                "Port(s)",
                "The list of ports that are exposed by this service.",
            ),
            AGE,
            t(
                "Selector",
                "Route service traffic to pods with label keys and values matching this selector.",
            )
            .wide(),
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        let first = obj.pointer("/spec/clusterIPs/0").and_then(Value::as_str);
        let cluster_ip = first.filter(|ip| !ip.is_empty()).unwrap_or("<none>");
        vec![
            name,
            json!(str_at(obj, &["spec", "type"])),
            json!(cluster_ip),
            json!(external_ip(obj)),
            json!(ports_cell(obj)),
            age,
            json!(selector_cell(obj)),
        ]
    }
}

/// `spec.ports` merged by `port`; `status.conditions` by `type`.
static PATCH: PatchSchema = PatchSchema {
    fields: &[
        (
            "metadata",
            Field::nested(Merge::Untagged, &super::OBJECT_META_PATCH),
        ),
        ("spec", Field::nested(Merge::Untagged, &SPEC_PATCH)),
        (
            "status",
            Field::nested(Merge::Untagged, &super::CONDITIONS_BY_TYPE),
        ),
    ],
};

static SPEC_PATCH: PatchSchema = PatchSchema {
    fields: &[("ports", Field::of(Merge::MergeByKey("port")))],
};

/// core/v1 Service, ServiceSpec, ServicePort and ServiceStatus (`generated.proto`).
static PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SERVICE_SPEC)),
    f(3, "status", Ty::Msg(SERVICE_STATUS)),
];

static SERVICE_SPEC: &[Pb] = &[
    rep(1, "ports", Ty::Msg(SERVICE_PORT)),
    f(2, "selector", Ty::MapStr),
    f(3, "clusterIP", Ty::Str),
    rep(18, "clusterIPs", Ty::Str),
    f(4, "type", Ty::Str),
    rep(5, "externalIPs", Ty::Str),
    f(7, "sessionAffinity", Ty::Str),
    f(8, "loadBalancerIP", Ty::Str),
    rep(9, "loadBalancerSourceRanges", Ty::Str),
    f(10, "externalName", Ty::Str),
    f(11, "externalTrafficPolicy", Ty::Str),
    f(12, "healthCheckNodePort", Ty::I32),
    f(13, "publishNotReadyAddresses", Ty::Bool),
    f(
        14,
        "sessionAffinityConfig",
        Ty::Msg(SESSION_AFFINITY_CONFIG),
    ),
    rep(19, "ipFamilies", Ty::Str),
    f(17, "ipFamilyPolicy", Ty::Str),
    f(20, "allocateLoadBalancerNodePorts", Ty::Bool),
    f(21, "loadBalancerClass", Ty::Str),
    f(22, "internalTrafficPolicy", Ty::Str),
    f(23, "trafficDistribution", Ty::Str),
];

static SERVICE_PORT: &[Pb] = &[
    f(1, "name", Ty::Str),
    f(2, "protocol", Ty::Str),
    f(6, "appProtocol", Ty::Str),
    f(3, "port", Ty::I32),
    f(4, "targetPort", Ty::IntOrString),
    f(5, "nodePort", Ty::I32),
];

static SESSION_AFFINITY_CONFIG: &[Pb] = &[f(1, "clientIP", Ty::Msg(CLIENT_IP_CONFIG))];
static CLIENT_IP_CONFIG: &[Pb] = &[f(1, "timeoutSeconds", Ty::I32)];

static SERVICE_STATUS: &[Pb] = &[
    f(1, "loadBalancer", Ty::Msg(LOAD_BALANCER_STATUS)),
    rep(2, "conditions", Ty::Msg(CONDITION)),
];

static LOAD_BALANCER_STATUS: &[Pb] = &[rep(1, "ingress", Ty::Msg(LOAD_BALANCER_INGRESS))];

static LOAD_BALANCER_INGRESS: &[Pb] = &[
    f(1, "ip", Ty::Str),
    f(2, "hostname", Ty::Str),
    f(3, "ipMode", Ty::Str),
    rep(4, "ports", Ty::Msg(PORT_STATUS)),
];

static PORT_STATUS: &[Pb] = &[
    f(1, "port", Ty::I32),
    f(2, "protocol", Ty::Str),
    f(3, "error", Ty::Str),
];

/// The type of a Service (`ClusterIP` when unset).
pub fn service_type(svc: &Value) -> &str {
    match str_at(svc, &["spec", "type"]) {
        "" => "ClusterIP",
        t => t,
    }
}

/// Kubernetes' defaults for a Service (`SetDefaults_Service`).
fn set_defaults(obj: &mut Value) {
    let ty = service_type(obj).to_owned();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.entry("type").or_insert(json!(ty));
    spec.entry("sessionAffinity").or_insert(json!("None"));
    if ty != "ExternalName" {
        spec.entry("internalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    if ty == "NodePort" || ty == "LoadBalancer" {
        spec.entry("externalTrafficPolicy")
            .or_insert(json!("Cluster"));
    }
    if ty == "LoadBalancer" {
        spec.entry("allocateLoadBalancerNodePorts")
            .or_insert(json!(true));
    }
    let ports = spec.get_mut("ports").and_then(Value::as_array_mut);
    for p in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
        p.entry("protocol").or_insert(json!("TCP"));
        let unset = matches!(p.get("targetPort"), None | Some(Value::Null))
            || p["targetPort"] == json!(0)
            || p["targetPort"] == json!("");
        if let (true, Some(port)) = (unset, p.get("port").cloned()) {
            p.insert("targetPort".into(), port);
        }
    }
}

/// `clusterIP` and the first of `clusterIPs` say the same (`NormalizeClusterIPs`): either
/// fills in the other. The server's, not the sender's: on a create kube-apiserver does it
/// as it begins to store the Service, after recording who set what. (On an update it records
/// who set what before as well; kubeboot records it after the strategy, so an update that
/// leaves the addresses out keeps their previous owners instead of leaving them unowned.)
fn normalize_cluster_ips(svc: &mut Value) {
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let first = spec
        .get("clusterIPs")
        .and_then(|l| l.get(0))
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (ip.is_empty(), first) {
        (false, None) => {
            spec.insert("clusterIPs".into(), json!([ip]));
        }
        (true, Some(first)) => {
            spec.insert("clusterIP".into(), json!(first));
        }
        _ => {}
    }
}

/// An update that changed one of `clusterIP` and `clusterIPs` changed both
/// (`normalizeClusterIPs` on update): a new `clusterIP` replaces the list, a cleared one
/// clears it, and a list left out while `clusterIP` stayed is the stored list.
fn normalize_cluster_ips_on_update(new: &mut Value, old: &Value) {
    let (old_ip, old_ips) = (
        old.pointer("/spec/clusterIP"),
        old.pointer("/spec/clusterIPs"),
    );
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let ip_unchanged = spec.get("clusterIP") == old_ip;
    let ips_unchanged = spec.get("clusterIPs") == old_ips;
    let ips_empty = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if ip_unchanged
        && ips_empty
        && let Some(old_ips) = old_ips
    {
        spec.insert("clusterIPs".into(), old_ips.clone());
    } else if !ip_unchanged && ips_unchanged {
        match spec
            .get("clusterIP")
            .and_then(Value::as_str)
            .filter(|ip| !ip.is_empty())
        {
            Some(ip) => {
                let ips = json!([ip]);
                spec.insert("clusterIPs".into(), ips);
            }
            None => {
                spec.remove("clusterIPs");
            }
        }
    }
}

/// The fields that say which addresses a Service was given: kept together when an update
/// leaves them out, dropped together when it becomes an ExternalName.
const CLUSTER_IP_FIELDS: [&str; 4] = ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"];

/// What an update keeps of what the Service was given, when the client left it out (a
/// `kubectl replace` of a manifest without a clusterIP): its ClusterIPs and NodePorts
/// (`patchAllocatedValues`).
fn keep_allocated(new: &mut Value, old: &Value) {
    let ty = service_type(new).to_owned();
    if ty != "ExternalName" && str_at(new, &["spec", "clusterIP"]).is_empty() {
        for f in CLUSTER_IP_FIELDS {
            if let (Some(v), Some(spec)) = (
                old.pointer(&format!("/spec/{f}")),
                new.get_mut("spec").and_then(Value::as_object_mut),
            ) {
                spec.insert(f.into(), v.clone());
            }
        }
    }
    if !wants_node_ports(new) {
        return;
    }
    let old_ports = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ports = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut);
    for p in ports.into_iter().flatten() {
        if p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
            continue;
        }
        let same = old_ports
            .iter()
            .find(|o| o["port"] == p["port"] && o["protocol"] == p["protocol"]);
        if let Some(np) = same
            .and_then(|o| o.get("nodePort"))
            .filter(|n| n.as_u64().unwrap_or(0) != 0)
        {
            p["nodePort"] = np.clone();
        }
    }
}

/// What a change of type leaves behind, when the client did not change it itself
/// (`dropTypeDependentFields`): the ClusterIP of a Service that became `ExternalName`, the
/// NodePorts of one that no longer has them.
fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let unchanged = |spec: &serde_json::Map<String, Value>, f: &str| {
        spec.get(f) == old.pointer(&format!("/spec/{f}"))
    };
    let new_type = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP")
        .to_owned();
    if new_type == "ExternalName" && service_type(old) != "ExternalName" {
        for f in CLUSTER_IP_FIELDS {
            if unchanged(spec, f) {
                spec.remove(f);
            }
        }
    }
    let had_node_ports = wants_node_ports(old);
    let has_node_ports = matches!(new_type.as_str(), "NodePort" | "LoadBalancer");
    if had_node_ports && !has_node_ports {
        let held = held_node_ports(old);
        let ports = spec.get_mut("ports").and_then(Value::as_array_mut);
        let ports: Vec<&mut Value> = ports.into_iter().flatten().collect();
        let added = ports.iter().any(|p| {
            let n = p.get("nodePort").and_then(Value::as_u64).unwrap_or(0);
            n != 0 && !held.iter().any(|h| u64::from(*h) == n)
        });
        if !added {
            for p in ports.into_iter().filter_map(Value::as_object_mut) {
                p.remove("nodePort");
            }
        }
    }
    if new_type != "LoadBalancer" && unchanged(spec, "allocateLoadBalancerNodePorts") {
        spec.remove("allocateLoadBalancerNodePorts");
    }
    let external = has_node_ports
        || spec
            .get("externalIPs")
            .and_then(Value::as_array)
            .is_some_and(|l| !l.is_empty());
    if !external && unchanged(spec, "externalTrafficPolicy") {
        spec.remove("externalTrafficPolicy");
    }
    if new_type == "ExternalName" {
        spec.remove("internalTrafficPolicy");
    }
}

/// The External-IP cell (`getServiceExternalIP`).
fn external_ip(svc: &Value) -> String {
    let list = |path: &str| -> Vec<String> {
        let items = svc.pointer(path).and_then(Value::as_array);
        items
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let external = list("/spec/externalIPs");
    match service_type(svc) {
        "ExternalName" => str_at(svc, &["spec", "externalName"]).to_owned(),
        "LoadBalancer" => {
            let ingress = svc
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array);
            let mut ips: Vec<String> = ingress
                .into_iter()
                .flatten()
                .filter_map(|i| match (i["ip"].as_str(), i["hostname"].as_str()) {
                    (Some(ip), _) if !ip.is_empty() => Some(ip.to_owned()),
                    (_, Some(h)) if !h.is_empty() => Some(h.to_owned()),
                    _ => None,
                })
                .collect();
            ips.extend(external);
            if ips.is_empty() {
                "<pending>".to_owned()
            } else {
                ips.join(",")
            }
        }
        _ if external.is_empty() => "<none>".to_owned(),
        _ => external.join(","),
    }
}

/// The Port(s) cell: `80/TCP`, `80:30080/TCP`, joined by commas.
fn ports_cell(svc: &Value) -> String {
    let ports = svc.pointer("/spec/ports").and_then(Value::as_array);
    let cells: Vec<String> = ports
        .into_iter()
        .flatten()
        .map(|p| {
            let port = p["port"].as_i64().unwrap_or(0);
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) {
                0 => format!("{port}/{proto}"),
                np => format!("{port}:{np}/{proto}"),
            }
        })
        .collect();
    if cells.is_empty() {
        "<none>".to_owned()
    } else {
        cells.join(",")
    }
}

/// The Selector cell: `k=v,…` in key order, `<none>` when empty.
fn selector_cell(svc: &Value) -> String {
    let Some(sel) = svc.pointer("/spec/selector").and_then(Value::as_object) else {
        return "<none>".to_owned();
    };
    let mut pairs: Vec<String> = sel
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".to_owned()
    } else {
        pairs.join(",")
    }
}

#[cfg(test)]
mod tests;
