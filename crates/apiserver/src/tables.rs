//! `kubectl get` tables (`Accept: ...;as=Table`): the Table of a list or one object, and its
//! rows as `includeObject` asks. Each kind's columns and cells are in its resource file.

use std::time::SystemTime;

use kubeboot_api::{Table, TableRow};
use serde_json::{Value, json};

use crate::registry::ResourceDef;

/// A table for `kubectl get` of rows made by [`row`].
pub fn table(def: &ResourceDef, rows: Vec<TableRow>, list_meta: Value) -> Table {
    Table {
        kind: "Table",
        api_version: "meta.k8s.io/v1",
        metadata: list_meta,
        column_definitions: def.strategy.columns(),
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
    // The cells read the stored form.
    let cells = match def.conversion {
        Some(_) => def.strategy.cells(&def.to_storage(obj.clone()), now),
        None => def.strategy.cells(&obj, now),
    };
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_carries_the_object_metadata_or_nothing_as_include_object_asks() {
        let def = crate::registry::by_kind(crate::registry::Kind::Csr);
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
        for def in crate::registry::RESOURCES {
            let cells = def
                .strategy
                .cells(&json!({"metadata": {"name": "x"}}), SystemTime::UNIX_EPOCH);
            assert_eq!(def.strategy.columns().len(), cells.len(), "{}", def.kind);
        }
    }
}
