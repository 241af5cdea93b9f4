//! What each kind's `kubectl get` columns are written with: the name and age columns every
//! kind has, and cells as kube-apiserver's printers fill them.

use std::time::{SystemTime, UNIX_EPOCH};

use kubeboot_api::TableColumn;
use kubeboot_api::clock::{human_duration, parse_rfc3339};
use serde_json::{Value, json};

use crate::object::meta_str;

/// The name column.
pub(super) const NAME: TableColumn = TableColumn::NAME;
/// The age column.
pub(super) const AGE: TableColumn = TableColumn::AGE;

/// An object's name and age cells.
pub(super) fn name_and_age(obj: &Value, now: SystemTime) -> (Value, Value) {
    (
        json!(meta_str(obj, "name")),
        json!(age(meta_str(obj, "creationTimestamp"), now)),
    )
}

/// The string at `path` in an object, empty when there is none.
pub(super) fn str_at<'a>(obj: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = obj;
    for p in path {
        match cur.get(p) {
            Some(v) => cur = v,
            None => return "",
        }
    }
    cur.as_str().unwrap_or_default()
}

/// `<none>` for an empty cell, as kubectl prints it.
pub(super) fn non_empty(s: &str) -> &str {
    if s.is_empty() { "<none>" } else { s }
}

/// An age as kubectl prints it (`5m`, `2d3h`).
pub(super) fn age(created: &str, now: SystemTime) -> String {
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
