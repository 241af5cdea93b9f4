//! core/v1 Pod (`pkg/registry/core/pod/strategy.go`): kubeboot runs no pods, but an
//! operator's kubectl looks for them around nodes (`describe node`, `drain`), so pods are
//! stored and served with Kubernetes' defaults, the essential validation, the
//! `spec.nodeName` and `status.phase` field selectors and `kubectl get`'s columns. A new
//! pod is `Pending` with its QoS class; its spec cannot change but for container images.

use std::time::SystemTime;

use k8s_openapi::api::core::v1::Pod;
use kubeboot_api::{Status, StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{AGE, NAME, name_and_age, non_empty, str_at};
use super::strategy::{Admission, Admitted, Change, Strategy};
use super::{Kind, NameRule, ResourceDef, normalize, schema};
use crate::admission::pod_defaults;
use crate::object::meta_str;
use crate::patch::strategic::{Field, Schema as PatchSchema, Strategy as Merge};
use crate::selectors::{FieldLabel, FieldLabels};

/// The resource.
pub(super) static PODS: ResourceDef = ResourceDef {
    kind_id: Kind::Pod,
    group: "",
    version: "v1",
    kind: "Pod",
    plural: "pods",
    short_names: &["po"],
    namespaced: true,
    storage: "pods",
    subresources: &["status"],
    field_selectors: FieldLabels::Own(&[
        FieldLabel::at("metadata.name"),
        FieldLabel::at("metadata.namespace"),
        FieldLabel::at("spec.nodeName"),
        FieldLabel::at("spec.host").reading("spec.nodeName"),
        FieldLabel::at("spec.restartPolicy"),
        FieldLabel::at("spec.schedulerName"),
        FieldLabel::at("spec.serviceAccountName"),
        FieldLabel::at("spec.hostNetwork").unset_as("false"),
        FieldLabel::at("status.phase"),
        FieldLabel::at("status.podIP"),
        FieldLabel::at("status.podIPs"),
        FieldLabel::at("status.nominatedNodeName"),
    ]),
    name_rule: NameRule::Dns1123Subdomain,
    normalize: normalize::<Pod>,
    schema: schema::<Pod>,
    patch_schema: &PATCH,
    protobuf: None,
    conversion: None,
    strategy: &PodStrategy,
};

/// The patch tags of Pod, PodSpec, Container and PodStatus (`k8s.io/api/core/v1`):
/// containers, volumes and the like merged by name, a container's ports by
/// `containerPort`, its env by name and its mounts by `mountPath`, the status's conditions
/// by type and its IPs by `ip`.
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
    fields: &[
        ("volumes", Field::of(Merge::MergeByKey("name"))),
        (
            "initContainers",
            Field::nested(Merge::MergeByKey("name"), &CONTAINER_PATCH),
        ),
        (
            "containers",
            Field::nested(Merge::MergeByKey("name"), &CONTAINER_PATCH),
        ),
        (
            "ephemeralContainers",
            Field::nested(Merge::MergeByKey("name"), &CONTAINER_PATCH),
        ),
        ("imagePullSecrets", Field::of(Merge::MergeByKey("name"))),
        ("hostAliases", Field::of(Merge::MergeByKey("ip"))),
        (
            "topologySpreadConstraints",
            Field::of(Merge::MergeByKey("topologyKey")),
        ),
        ("schedulingGates", Field::of(Merge::MergeByKey("name"))),
        ("resourceClaims", Field::of(Merge::MergeByKey("name"))),
    ],
};

static CONTAINER_PATCH: PatchSchema = PatchSchema {
    fields: &[
        ("ports", Field::of(Merge::MergeByKey("containerPort"))),
        ("env", Field::of(Merge::MergeByKey("name"))),
        ("volumeMounts", Field::of(Merge::MergeByKey("mountPath"))),
        ("volumeDevices", Field::of(Merge::MergeByKey("devicePath"))),
    ],
};

static STATUS_PATCH: PatchSchema = PatchSchema {
    fields: &[
        ("conditions", Field::of(Merge::MergeByKey("type"))),
        ("podIPs", Field::of(Merge::MergeByKey("ip"))),
        ("hostIPs", Field::of(Merge::MergeByKey("ip"))),
    ],
};

#[derive(Debug)]
struct PodStrategy;

impl Strategy for PodStrategy {
    fn set_defaults(&self, obj: &mut Value) {
        set_defaults(obj);
    }

    fn prepare_create(&self, def: &ResourceDef, obj: &mut Value, _adm: &Admission) -> Admitted {
        // kube-apiserver's plugin order: DefaultTolerationSeconds, then Priority.
        pod_defaults::default_toleration_seconds(obj);
        if let Err(refused) = pod_defaults::priority(obj) {
            return Err(Status::forbidden(
                Some(def.subject(meta_str(obj, "name"))),
                &refused,
            ));
        }
        let qos = qos_class(obj);
        obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        Ok(())
    }

    fn prepare_update(&self, _def: &ResourceDef, c: Change<'_>) -> Admitted {
        pod_defaults::default_toleration_seconds(c.new);
        Ok(())
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        match old {
            None => validate_spec(obj),
            Some(old) => validate_spec_update(obj, old),
        }
    }

    fn columns(&self) -> Vec<TableColumn> {
        let t = TableColumn::text;
        vec![
            NAME,
            t(
                "Ready",
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            t(
                "Status",
                "The aggregate status of the containers in this pod.",
            ),
            t(
                "Restarts",
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            t("IP", "The IP address assigned to the pod").wide(),
            t("Node", "The name of the node the pod is assigned to.").wide(),
            t(
                "Nominated Node",
                "The name of the node that the pod may be preempted onto.",
            )
            .wide(),
            t("Readiness Gates", "The readiness gates of the pod.").wide(),
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        let row = PodRow::of(obj);
        let restarts = match row.last_restart {
            Some(at) if row.restarts != 0 => {
                format!("{} ({} ago)", row.restarts, super::columns::age(at, now))
            }
            _ => row.restarts.to_string(),
        };
        vec![
            name,
            json!(format!("{}/{}", row.ready, row.containers)),
            json!(row.reason),
            json!(restarts),
            age,
            json!(non_empty(str_at(obj, &["status", "podIP"]))),
            json!(non_empty(str_at(obj, &["spec", "nodeName"]))),
            json!(non_empty(str_at(obj, &["status", "nominatedNodeName"]))),
            json!(readiness_gates(obj)),
        ]
    }
}

/// What `kubectl get pods` says of a pod's containers (kubectl's `printPod`, its init
/// containers aside): the reason a container waits or ended, else the pod's.
struct PodRow<'a> {
    ready: usize,
    containers: usize,
    reason: String,
    restarts: i64,
    /// When a container last ended before its restart.
    last_restart: Option<&'a str>,
}

impl<'a> PodRow<'a> {
    fn of(pod: &'a Value) -> Self {
        let list = |p: &str| {
            pod.pointer(p)
                .and_then(Value::as_array)
                .map_or(&[][..], Vec::as_slice)
        };
        let mut row = PodRow {
            ready: 0,
            containers: list("/spec/containers").len(),
            reason: match str_at(pod, &["status", "reason"]) {
                "" => str_at(pod, &["status", "phase"]).to_owned(),
                reason => reason.to_owned(),
            },
            restarts: 0,
            last_restart: None,
        };
        let mut running = false;
        for c in list("/status/containerStatuses").iter().rev() {
            row.restarts += c["restartCount"].as_i64().unwrap_or(0);
            // Times compared as times (texts of other precisions or offsets misorder).
            let time = |t: &str| kubeboot_api::clock::parse_rfc3339(t);
            if let Some(at) = c
                .pointer("/lastState/terminated/finishedAt")
                .and_then(Value::as_str)
                .filter(|at| time(at).is_some())
                && row.last_restart.is_none_or(|last| time(at) > time(last))
            {
                row.last_restart = Some(at);
            }
            let (waiting, ended) = (c.pointer("/state/waiting"), c.pointer("/state/terminated"));
            let text = |v: Option<&Value>, f: &str| {
                v.and_then(|v| v[f].as_str()).unwrap_or_default().to_owned()
            };
            if !text(waiting, "reason").is_empty() {
                row.reason = text(waiting, "reason");
            } else if let Some(ended) = ended {
                row.reason = match (text(Some(ended), "reason"), ended["signal"].as_i64()) {
                    (reason, _) if !reason.is_empty() => reason,
                    (_, Some(signal)) if signal != 0 => format!("Signal:{signal}"),
                    _ => format!("ExitCode:{}", ended["exitCode"].as_i64().unwrap_or(0)),
                };
            } else if c["ready"] == true && c.pointer("/state/running").is_some() {
                running = true;
                row.ready += 1;
            }
        }
        if row.reason == "Completed" && running {
            row.reason = match condition_true(pod, "Ready") {
                true => "Running".into(),
                false => "NotReady".into(),
            };
        }
        let terminal = matches!(str_at(pod, &["status", "phase"]), "Succeeded" | "Failed");
        if pod
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            if str_at(pod, &["status", "reason"]) == "NodeLost" {
                row.reason = "Unknown".into();
            } else if !terminal {
                row.reason = "Terminating".into();
            }
        }
        row
    }
}

/// Whether the pod's condition `ty` is `True`.
fn condition_true(pod: &Value, ty: &str) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["type"] == ty)
        .is_some_and(|c| c["status"] == "True")
}

/// `<true gates>/<gates>`, or `<none>`.
fn readiness_gates(pod: &Value) -> String {
    let gates: Vec<&str> = pod
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|g| g["conditionType"].as_str())
        .collect();
    if gates.is_empty() {
        return "<none>".into();
    }
    let met = gates.iter().filter(|g| condition_true(pod, g)).count();
    format!("{met}/{}", gates.len())
}

/// Kubernetes' defaults for a pod (`SetDefaults_PodSpec`, `SetDefaults_Container`).
fn set_defaults(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, value) in [
        ("restartPolicy", json!("Always")),
        ("dnsPolicy", json!("ClusterFirst")),
        ("terminationGracePeriodSeconds", json!(30)),
        ("securityContext", json!({})),
        ("schedulerName", json!("default-scheduler")),
        ("enableServiceLinks", json!(true)),
    ] {
        spec.entry(field).or_insert(value);
    }
    for list in ["initContainers", "containers"] {
        let containers = spec.get_mut(list).and_then(Value::as_array_mut);
        for c in containers.into_iter().flatten() {
            let Some(c) = c.as_object_mut() else { continue };
            let pull =
                image_pull_policy(c.get("image").and_then(Value::as_str).unwrap_or_default());
            for (field, value) in [
                ("terminationMessagePath", json!("/dev/termination-log")),
                ("terminationMessagePolicy", json!("File")),
                ("imagePullPolicy", json!(pull)),
                ("resources", json!({})),
            ] {
                c.entry(field).or_insert(value);
            }
            let ports = c.get_mut("ports").and_then(Value::as_array_mut);
            for p in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
                p.entry("protocol").or_insert(json!("TCP"));
            }
        }
    }
}

/// `Always` for an image tagged `latest` or not tagged (by digest counts as tagged),
/// `IfNotPresent` otherwise.
pub(super) fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

/// The pod's QoS class (`qos.GetPodQOS`): `BestEffort` with no CPU or memory requests or
/// limits, `Guaranteed` when every container limits CPU and memory and requests what it
/// limits, `Burstable` otherwise. (Quantities are compared as written: `1` and `1000m`
/// differ here.)
pub(super) fn qos_class(obj: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .filter_map(|l| obj.pointer(&format!("/spec/{l}")).and_then(Value::as_array))
        .flatten()
        .collect();
    let get =
        |c: &Value, kind: &str, r: &str| c.pointer(&format!("/resources/{kind}/{r}")).cloned();
    // Only CPU and memory count, as in `qos.GetPodQOS`.
    let any = containers.iter().any(|c| {
        ["requests", "limits"]
            .iter()
            .any(|k| ["cpu", "memory"].iter().any(|r| get(c, k, r).is_some()))
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = get(c, "limits", r);
            limit.is_some() && get(c, "requests", r).is_none_or(|req| Some(req) == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The checks of `ValidatePod` an operator meets first: containers, their names and images,
/// the restart and DNS policies.
fn validate_spec(obj: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let containers = obj.pointer("/spec/containers").and_then(Value::as_array);
    if containers.is_none_or(Vec::is_empty) {
        out.push(StatusCause::required("spec.containers", ""));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (list, items) in ["initContainers", "containers"]
        .iter()
        .filter_map(|l| Some((*l, obj.pointer(&format!("/spec/{l}"))?.as_array()?)))
    {
        for (i, c) in items.iter().enumerate() {
            let at = |f: &str| format!("spec.{list}[{i}].{f}");
            let name = c["name"].as_str().unwrap_or_default();
            if name.is_empty() {
                out.push(StatusCause::required(&at("name"), ""));
            } else if !crate::object::is_dns1123_label(name) {
                out.push(StatusCause::invalid(&at("name"), name, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
            } else if seen.contains(&name) {
                out.push(StatusCause::duplicate(&at("name"), name));
            } else {
                seen.push(name);
            }
            if c["image"].as_str().is_none_or(str::is_empty) {
                out.push(StatusCause::required(&at("image"), ""));
            }
        }
    }
    let policy = |field: &str, supported: &[&str]| {
        let v = obj
            .pointer(&format!("/spec/{field}"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        (!supported.contains(&v))
            .then(|| StatusCause::not_supported(&format!("spec.{field}"), v, supported))
    };
    out.extend(policy("restartPolicy", &["Always", "OnFailure", "Never"]));
    out.extend(policy(
        "dnsPolicy",
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
    ));
    out
}

/// A pod's spec is immutable but for its containers' images.
fn validate_spec_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    let mut out = validate_spec(new);
    let without_images = |v: &Value| {
        let mut spec = v.get("spec").cloned().unwrap_or_default();
        for list in ["initContainers", "containers"] {
            let items = spec.get_mut(list).and_then(Value::as_array_mut);
            for c in items.into_iter().flatten().filter_map(Value::as_object_mut) {
                c.remove("image");
            }
        }
        if let Some(spec) = spec.as_object_mut() {
            spec.remove("tolerations");
        }
        spec
    };
    // Tolerations may be added, none taken away (a NoExecute one's seconds may change:
    // `validateOnlyAddedTolerations`).
    let tolerations = |v: &Value| {
        let list = v.pointer("/spec/tolerations").and_then(Value::as_array);
        list.into_iter()
            .flatten()
            .map(|t| {
                let mut t = t.clone();
                if let Some(o) = t.as_object_mut() {
                    o.remove("tolerationSeconds");
                }
                t
            })
            .collect::<Vec<Value>>()
    };
    let (before, after) = (tolerations(old), tolerations(new));
    let kept = before.iter().all(|t| after.contains(t));
    if without_images(new) != without_images(old) || !kept {
        out.push(StatusCause::forbidden(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
        ));
    }
    out
}

#[cfg(test)]
mod tests;
