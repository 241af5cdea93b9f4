//! `kubectl get` columns for each kind, as kube-apiserver's printers define them.

use std::time::{SystemTime, UNIX_EPOCH};

use kubeboot_api::clock::{human_duration, parse_rfc3339};
use kubeboot_api::{Table, TableColumn, TableRow};
use serde_json::{Value, json};

use crate::object::meta_str;
use crate::registry::{Kind, ResourceDef};

const NAME: TableColumn = TableColumn::NAME;
const AGE: TableColumn = TableColumn::AGE;

/// The columns of a kind.
pub fn columns(kind: Kind) -> Vec<TableColumn> {
    let t = TableColumn::text;
    match kind {
        Kind::Namespace => vec![NAME, t("Status", "The status of the namespace"), AGE],
        Kind::Secret => vec![
            NAME,
            t("Type", "The type of the secret"),
            TableColumn::integer("Data", "The number of entries in the data"),
            AGE,
        ],
        Kind::ConfigMap => vec![
            NAME,
            TableColumn::integer("Data", "The number of entries in the data"),
            AGE,
        ],
        Kind::Node => vec![
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
        ],
        Kind::Lease => vec![NAME, t("Holder", "Holder identity of the lease"), AGE],
        Kind::Csr => vec![
            NAME,
            AGE,
            t("SignerName", "Only requests with the given signer name."),
            t(
                "Requestor",
                "Name of the user who requested the certificate.",
            ),
            t(
                "RequestedDuration",
                "Requested duration of the certificate.",
            ),
            t("Condition", "The conditions of the request."),
        ],
        Kind::Role | Kind::ClusterRole => {
            vec![NAME, t("Created At", "Time the object was created")]
        }
        Kind::RoleBinding | Kind::ClusterRoleBinding => vec![
            NAME,
            t("Role", "Role referred to by this binding"),
            AGE,
            t("Users", "Users in the binding").wide(),
            t("Groups", "Groups in the binding").wide(),
            t("ServiceAccounts", "ServiceAccounts in the binding").wide(),
        ],
    }
}

/// The cells of one object's row.
pub fn cells(kind: Kind, obj: &Value, now: SystemTime) -> Vec<Value> {
    let name = json!(meta_str(obj, "name"));
    let created = meta_str(obj, "creationTimestamp");
    let age = json!(age(created, now));
    let count = |field: &str| {
        json!(
            obj.get(field)
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
        )
    };
    let s = |v: &str| json!(v);
    match kind {
        Kind::Namespace => vec![name, s(str_at(obj, &["status", "phase"])), age],
        Kind::Secret => vec![
            name,
            s(obj.get("type").and_then(Value::as_str).unwrap_or("Opaque")),
            json!(count_secret(obj)),
            age,
        ],
        Kind::ConfigMap => {
            let n = obj
                .get("data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + obj
                    .get("binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![name, json!(n), age]
        }
        Kind::Node => node_cells(obj, name, age),
        Kind::Lease => vec![name, s(str_at(obj, &["spec", "holderIdentity"])), age],
        Kind::Csr => vec![
            name,
            age,
            s(non_empty(str_at(obj, &["spec", "signerName"]))),
            s(str_at(obj, &["spec", "username"])),
            s(&obj
                .pointer("/spec/expirationSeconds")
                .and_then(Value::as_i64)
                .map_or("<none>".to_owned(), human_duration)),
            s(&csr_condition(obj)),
        ],
        Kind::Role | Kind::ClusterRole => vec![name, s(created)],
        Kind::RoleBinding | Kind::ClusterRoleBinding => {
            let role = format!(
                "{}/{}",
                str_at(obj, &["roleRef", "kind"]),
                str_at(obj, &["roleRef", "name"])
            );
            let of = |k: &str| {
                let names: Vec<String> = obj
                    .get("subjects")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter(|s| s.get("kind").and_then(Value::as_str) == Some(k))
                    .map(|s| {
                        let n = s.get("name").and_then(Value::as_str).unwrap_or_default();
                        match (k, s.get("namespace").and_then(Value::as_str)) {
                            ("ServiceAccount", Some(ns)) => format!("{ns}/{n}"),
                            _ => n.to_owned(),
                        }
                    })
                    .collect();
                json!(names.join(", "))
            };
            let _ = count;
            vec![
                name,
                s(&role),
                age,
                of("User"),
                of("Group"),
                of("ServiceAccount"),
            ]
        }
    }
}

fn count_secret(obj: &Value) -> usize {
    obj.get("data")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
}

/// A table for `kubectl get` of rows made by [`row`].
pub fn table(def: &ResourceDef, rows: Vec<TableRow>, list_meta: Value) -> Table {
    Table {
        kind: "Table",
        api_version: "meta.k8s.io/v1",
        metadata: list_meta,
        column_definitions: columns(def.kind_id),
        rows,
    }
}

/// The table of one object (a get, a watch event), with no list metadata.
pub fn of_one(def: &ResourceDef, obj: Value, now: SystemTime, include_object: &str) -> Table {
    table(def, vec![row(def, obj, now, include_object)], json!({}))
}

/// One object's row: its cells, and the object itself, its metadata or nothing, as
/// `includeObject` asks (`Metadata` when unset). A list makes each row as it reads the
/// object and lets the object go, so a table of 100,000 objects never holds them all.
pub fn row(def: &ResourceDef, obj: Value, now: SystemTime, include_object: &str) -> TableRow {
    let cells = cells(def.kind_id, &obj, now);
    let object = match include_object {
        "None" => Value::Null,
        "Object" => obj,
        _ => {
            let metadata = match obj {
                Value::Object(mut m) => m.remove("metadata"),
                _ => None,
            };
            json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": metadata.unwrap_or_else(|| json!({})),
            })
        }
    };
    TableRow { cells, object }
}

fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = obj;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return "",
        }
    }
    cur.as_str().unwrap_or_default()
}

fn non_empty(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

fn age(created: &str, now: SystemTime) -> String {
    match parse_rfc3339(created) {
        None => "<unknown>".into(),
        Some(t) => {
            let secs = |t: SystemTime| {
                t.duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0)
            };
            human_duration(secs(now) - secs(t))
        }
    }
}

/// `Denied|Approved|Pending[,Failed][,Issued]`, as `kubectl get csr` prints it.
pub fn csr_condition(obj: &Value) -> String {
    let conds: Vec<&str> = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get("type").and_then(Value::as_str))
        .collect();
    let mut out = if conds.contains(&"Denied") {
        "Denied".to_owned()
    } else if conds.contains(&"Approved") {
        "Approved".to_owned()
    } else {
        "Pending".to_owned()
    };
    if conds.contains(&"Failed") {
        out.push_str(",Failed");
    }
    if obj
        .pointer("/status/certificate")
        .and_then(Value::as_str)
        .is_some_and(|c| !c.is_empty())
    {
        out.push_str(",Issued");
    }
    out
}

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
        .filter_map(|(k, _)| {
            k.strip_prefix("node-role.kubernetes.io/")
                .map(str::to_owned)
        })
        .collect();
    roles.sort();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csr_condition_column() {
        for (status, want) in [
            (json!({}), "Pending"),
            (
                json!({"conditions": [{"type": "Approved"}], "certificate": "x"}),
                "Approved,Issued",
            ),
            (
                json!({"conditions": [{"type": "Approved"}, {"type": "Failed"}]}),
                "Approved,Failed",
            ),
            (json!({"conditions": [{"type": "Denied"}]}), "Denied"),
        ] {
            assert_eq!(csr_condition(&json!({"status": status})), want);
        }
    }

    #[test]
    fn a_row_carries_the_object_metadata_or_nothing_as_include_object_asks() {
        let def = crate::registry::by_kind(Kind::Csr);
        let csr = json!({
            "metadata": {"name": "csr-1", "uid": "u", "labels": {"a": "b"}},
            "spec": {"signerName": "kubernetes.io/kube-apiserver-client-kubelet", "username": "system:bootstrap:abcdef", "request": "UkVR"},
            "status": {"conditions": [{"type": "Approved"}], "certificate": "Q0VSVA=="},
        });
        let now = SystemTime::UNIX_EPOCH;
        let meta = row(def, csr.clone(), now, "Metadata");
        assert_eq!(meta.cells[0], "csr-1");
        assert_eq!(meta.cells[5], "Approved,Issued");
        assert_eq!(
            meta.object,
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": csr["metadata"]})
        );
        assert_eq!(
            row(def, csr.clone(), now, "").object,
            meta.object,
            "Metadata is the default"
        );
        assert_eq!(row(def, csr.clone(), now, "Object").object, csr);
        assert_eq!(row(def, csr, now, "None").object, Value::Null);
    }

    #[test]
    fn every_kind_has_as_many_cells_as_columns() {
        for k in [
            Kind::Namespace,
            Kind::Secret,
            Kind::ConfigMap,
            Kind::Node,
            Kind::Lease,
            Kind::Csr,
            Kind::Role,
            Kind::ClusterRole,
            Kind::RoleBinding,
            Kind::ClusterRoleBinding,
        ] {
            assert_eq!(
                columns(k).len(),
                cells(
                    k,
                    &json!({"metadata": {"name": "x"}}),
                    SystemTime::UNIX_EPOCH
                )
                .len(),
                "{k:?}"
            );
        }
    }
}
