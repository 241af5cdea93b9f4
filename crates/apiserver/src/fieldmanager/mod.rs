//! Field ownership and server-side apply, as kube-apiserver's field manager keeps them
//! (`k8s.io/apiserver/pkg/endpoints/handlers/fieldmanager` over structured-merge-diff):
//! every write records in `metadata.managedFields` which manager set which fields — an
//! `Update` entry for a create, update or patch, an `Apply` entry for an apply — and an
//! apply (`application/apply-patch+yaml`) merges the manager's configuration into the
//! object, removes what it applied before and no longer does (unless another manager owns
//! it), and refuses with `409 Conflict` to change a field another manager set to another
//! value, unless forced (`force=true`), which takes the field over.

pub mod fieldset;
mod walk;

use kubeboot_api::{Status, StatusCause, StatusDetails};
use serde_json::{Value, json};

use self::fieldset::{FieldSet, Path, path_string};
use self::walk::{Node, Scope};
use crate::registry::ResourceDef;

/// Who writes: the field manager (`fieldManager`, or the user agent's first word), and
/// the subresource written through (empty for the object itself).
pub struct Manager<'a> {
    /// The manager's name.
    pub name: &'a str,
    /// `status`, or empty.
    pub subresource: &'a str,
    /// When, as RFC 3339.
    pub time: &'a str,
}

impl<'a> Manager<'a> {
    /// The writer of a request whose query's `fieldManager` was decided by
    /// [`manager_name`] (the server's own writes, which have none, are kube-apiserver's).
    pub fn of(query: &'a crate::requestinfo::Query, subresource: &'a str, time: &'a str) -> Self {
        Manager {
            name: query
                .get("fieldManager")
                .map(String::as_str)
                .filter(|m| !m.is_empty())
                .unwrap_or(SERVER_MANAGER),
            subresource,
            time,
        }
    }
}

/// The manager of what the server writes itself, and of a request that names none and
/// sends no user agent.
pub const SERVER_MANAGER: &str = "kube-apiserver";

const APPLY: &str = "Apply";
/// The annotation client-side apply keeps the applied configuration in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
const UPDATE: &str = "Update";
/// The longest field manager name kube-apiserver accepts.
pub const MAX_MANAGER_LENGTH: usize = 128;

/// One `managedFields` entry.
#[derive(Clone, Debug)]
struct Entry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: String,
    fields: FieldSet,
}

impl Entry {
    fn read(v: &Value) -> Self {
        let s = |f: &str| {
            v.get(f)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            manager: s("manager"),
            operation: s("operation"),
            api_version: s("apiVersion"),
            time: s("time"),
            subresource: s("subresource"),
            fields: FieldSet::from_fields_v1(v.get("fieldsV1").unwrap_or(&Value::Null)),
        }
    }

    fn write(&self) -> Value {
        let mut v = json!({"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version,
                           "time": self.time, "fieldsType": "FieldsV1", "fieldsV1": self.fields.to_fields_v1()});
        if !self.subresource.is_empty() {
            v["subresource"] = json!(self.subresource);
        }
        v
    }

    fn is(&self, m: &Manager, operation: &str) -> bool {
        self.manager == m.name && self.operation == operation && self.subresource == m.subresource
    }

    /// How a conflict names the manager (`printManager`).
    fn display(&self) -> String {
        let mut out = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            out.push_str(&format!(" with subresource {:?}", self.subresource));
        }
        if self.operation == UPDATE {
            out.push_str(&format!(" using {}", self.api_version));
        }
        out
    }
}

fn entries(obj: Option<&Value>) -> Vec<Entry> {
    let list = obj
        .and_then(|o| o.pointer("/metadata/managedFields"))
        .and_then(Value::as_array);
    list.into_iter().flatten().map(Entry::read).collect()
}

fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let kept: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(Entry::write)
        .collect();
    let meta = crate::object::meta_mut(obj);
    if kept.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(kept));
    }
}

/// Where a write through `subresource` owns fields, and how they merge.
fn node(def: &ResourceDef, subresource: &str) -> Node {
    let scope = match subresource {
        "" => Scope::Object {
            without_status: def.subresources.contains(&"status"),
        },
        _ => Scope::Status,
    };
    Node::root(def.patch_schema, scope)
}

/// The record a write starts from, settled in `new` (kube-apiserver's `decodeLiveOrNew`):
/// the managed fields the client sent when it sent a list that reads — `[]` or `[{}]`
/// clearing them, as the docs' "Clearing managedFields" does, and a list of entries
/// replacing them, as kubectl's move from client-side to server-side apply does — else
/// those of `live` (none on a create). A write through a subresource keeps `live`'s.
pub fn settle_sent_record(new: &mut Value, live: Option<&Value>, subresource: &str) {
    let live_record = live.and_then(|o| o.pointer("/metadata/managedFields"));
    let sent = new
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array);
    let settled = match sent {
        _ if !subresource.is_empty() => live_record,
        Some(list) if is_reset(list) => None,
        // Kept where it is: no copy on the writes that send back what they read.
        Some(list) if list.iter().all(reads_as_entry) => return,
        _ => live_record,
    };
    let meta = crate::object::meta_mut(new);
    match settled {
        Some(record) => meta.insert("managedFields".into(), record.clone()),
        None => meta.remove("managedFields"),
    };
}

/// `isResetManagedFields`: no entry, or one empty entry.
fn is_reset(list: &[Value]) -> bool {
    let empty = |v: &Value| match v {
        Value::Object(o) => o.values().all(|f| matches!(f, Value::Null) || f == ""),
        _ => false,
    };
    match list {
        [] => true,
        [only] => empty(only),
        _ => false,
    }
}

/// Whether a sent entry decodes as the field manager decodes one (`DecodeManagedFields`):
/// of `FieldsV1` fields, by an `Apply` or an `Update` of a version, by a manager of a name
/// Kubernetes takes.
fn reads_as_entry(v: &Value) -> bool {
    let text = |f: &str| v.get(f).and_then(Value::as_str).unwrap_or_default();
    text("fieldsType") == "FieldsV1"
        && v.get("fieldsV1").is_some_and(Value::is_object)
        && matches!(text("operation"), APPLY | UPDATE)
        && !text("apiVersion").is_empty()
        && text("manager").len() <= MAX_MANAGER_LENGTH
}

/// After an apply by `kubectl`, the client-side apply annotation the object carries says
/// what was applied (kube-apiserver's `lastAppliedUpdater`), so a later client-side apply
/// starts from it: the applied configuration without that annotation, as JSON.
pub fn sync_last_applied(applied: &mut Value, config: &Value, m: &Manager) {
    let annotations = applied.pointer_mut("/metadata/annotations");
    let Some(Value::Object(annotations)) = annotations else {
        return;
    };
    if !is_kubectl_apply(m) || !annotations.contains_key(LAST_APPLIED) {
        return;
    }
    let mut config = config.clone();
    if let Some(Value::Object(sent)) = config.pointer_mut("/metadata/annotations") {
        sent.remove(LAST_APPLIED);
    }
    annotations.insert(LAST_APPLIED.into(), Value::String(config.to_string()));
}

/// Records a create, update or patch by `m` over the record settled in `new`
/// ([`settle_sent_record`]): it owns what it changed, and no one owns what it changed or
/// removed any more. `old` is `None` on a create.
pub fn track_update(def: &ResourceDef, old: Option<&Value>, new: &mut Value, m: &Manager) {
    let node = node(def, m.subresource);
    let mut list = entries(Some(new));
    let changed = walk::changed(old, new, node);
    let removed = match old {
        Some(before) => walk::removed(before, new, node),
        None => FieldSet::default(),
    };
    if !changed.is_empty() || !removed.is_empty() {
        let gone = changed.union(&removed);
        for e in list.iter_mut().filter(|e| !e.is(m, UPDATE)) {
            e.fields = e.fields.difference(&gone);
        }
        let mine = entry_of(&mut list, m, UPDATE, def);
        mine.fields = mine.fields.union(&changed).difference(&removed);
        mine.time = m.time.to_owned();
    }
    set_entries(new, &list);
}

/// The entry of `m` for `operation`, made when it has none.
fn entry_of<'a>(
    list: &'a mut Vec<Entry>,
    m: &Manager,
    operation: &str,
    def: &ResourceDef,
) -> &'a mut Entry {
    let at = match list.iter().position(|e| e.is(m, operation)) {
        Some(i) => i,
        None => {
            list.push(Entry {
                manager: m.name.to_owned(),
                operation: operation.to_owned(),
                api_version: def.api_version(),
                time: m.time.to_owned(),
                subresource: m.subresource.to_owned(),
                fields: FieldSet::default(),
            });
            list.len() - 1
        }
    };
    let e = &mut list[at];
    e.api_version = def.api_version();
    e
}

/// `config` applied by `m` to `live` (`None`: the object does not exist yet): the object to
/// write, with its managed fields, or the conflicts with other managers as a 409.
pub fn apply(
    def: &ResourceDef,
    live: Option<&Value>,
    config: &Value,
    m: &Manager,
    force: bool,
) -> Result<Value, Status> {
    let node = node(def, m.subresource);
    let mut list = entries(live);
    let applied_set = walk::field_set(config, node);
    let empty = json!({});
    let current = live.unwrap_or(&empty);
    let changing = changing(&applied_set, current, config, node);
    let conflicts = conflicts(&list, m, &changing);
    if !conflicts.is_empty() && !force && !last_applied_allows(live, &list, m, &changing, node) {
        return Err(conflict_status(&conflicts));
    }
    // Forced, the applier takes the fields it changes; those it sets to the value they
    // have stay shared.
    for e in list.iter_mut().filter(|e| !e.is(m, APPLY)) {
        e.fields = e.fields.difference(&changing);
    }
    let base = live.cloned().unwrap_or_else(|| json!({}));
    let mut merged = walk::merge(&base, &without_nulls(config), node);
    let previous = list
        .iter()
        .find(|e| e.is(m, APPLY))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    let others = list
        .iter()
        .filter(|e| !e.is(m, APPLY))
        .fold(FieldSet::default(), |acc, e| acc.union(&e.fields));
    for path in previous.difference(&applied_set).paths() {
        if !others.contains(&path) && !owns_under(&others, &path) {
            walk::remove(&mut merged, &path, node);
        }
    }
    let mine = entry_of(&mut list, m, APPLY, def);
    mine.fields = applied_set;
    mine.time = m.time.to_owned();
    set_entries(&mut merged, &list);
    Ok(merged)
}

/// kube-apiserver's `lastAppliedManager`: `kubectl`'s server-side apply of an object it
/// applied client-side before may change the fields that still hold what its client-side
/// apply annotation says, as if forced: how an object moves from client-side to
/// server-side apply without conflicts (kubectl moves the rest of the record after).
fn last_applied_allows(
    live: Option<&Value>,
    list: &[Entry],
    m: &Manager,
    changing: &FieldSet,
    node: Node,
) -> bool {
    if !is_kubectl_apply(m) {
        return false;
    }
    let Some(live) = live else {
        return false;
    };
    let last = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(LAST_APPLIED))
        .and_then(Value::as_str)
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    let Some(last) = last else {
        return false;
    };
    let last_set = walk::field_set(&last, node);
    let conflicting = list
        .iter()
        .filter(|e| !e.is(m, APPLY))
        .fold(FieldSet::default(), |acc, e| {
            acc.union(&e.fields.intersection(changing))
        });
    conflicting.paths().iter().all(|p| {
        last_set.contains(p) && walk::value_at(live, p, node) == walk::value_at(&last, p, node)
    })
}

/// Whether an apply is kubectl's own of the object (`kubectl apply --server-side`), which
/// the client-side apply annotation follows.
fn is_kubectl_apply(m: &Manager) -> bool {
    m.name == "kubectl" && m.subresource.is_empty()
}

/// Whether `set` owns anything below `path`.
fn owns_under(set: &FieldSet, path: &Path) -> bool {
    set.paths()
        .iter()
        .any(|p| p.len() > path.len() && p.starts_with(path))
}

/// A configuration without its `null`s (an applied `null` sets nothing).
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// The fields the apply changes: each leaf it sets to another value than the live one.
fn changing(applied_set: &FieldSet, current: &Value, applied: &Value, node: Node) -> FieldSet {
    let mut out = FieldSet::default();
    for p in applied_set
        .paths()
        .iter()
        .filter(|p| applied_set.is_leaf(p))
    {
        if walk::value_at(current, p, node) != walk::value_at(applied, p, node) {
            out.insert(p);
        }
    }
    out
}

/// The fields the apply changes that another manager owns: `(manager, path)`.
fn conflicts(list: &[Entry], m: &Manager, changing: &FieldSet) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for e in list.iter().filter(|e| !e.is(m, APPLY)) {
        for p in e.fields.intersection(changing).paths() {
            out.push((e.display(), path_string(&p)));
        }
    }
    out.sort();
    out
}

/// The 409 an apply with conflicts gets, worded as kube-apiserver words it.
fn conflict_status(conflicts: &[(String, String)]) -> Status {
    let message = match conflicts {
        [(manager, path)] => {
            format!("Apply failed with 1 conflict: conflict with {manager}: {path}")
        }
        _ => {
            let mut lines: Vec<String> = Vec::new();
            let mut last: Option<&str> = None;
            for (manager, path) in conflicts {
                if last != Some(manager.as_str()) {
                    lines.push(format!("conflicts with {manager}:"));
                    last = Some(manager);
                }
                lines.push(format!("- {path}"));
            }
            format!(
                "Apply failed with {} conflicts: {}",
                conflicts.len(),
                lines.join("\n")
            )
        }
    };
    let causes = conflicts
        .iter()
        .map(|(manager, path)| {
            StatusCause::new(
                "FieldManagerConflict",
                path,
                format!("conflict with {manager}"),
            )
        })
        .collect();
    let mut status = Status::failure(409, "Conflict", message);
    status.details = Some(StatusDetails {
        causes,
        ..Default::default()
    });
    status
}

/// The field manager of a write: `fieldManager`, else the user agent's first word
/// (`kubectl/v1.33.0 …` is `kubectl`), as kube-apiserver defaults it; [`SERVER_MANAGER`]
/// when neither gives a name.
pub fn manager_name(field_manager: Option<&str>, user_agent: &str) -> String {
    match field_manager.filter(|m| !m.is_empty()) {
        Some(m) => m.to_owned(),
        // As `prefixFromUserAgent`: at most the longest name a manager may have.
        None => {
            let word = user_agent.split('/').next().unwrap_or_default();
            let name: String = word
                .chars()
                .filter(|c| !c.is_control())
                .take(MAX_MANAGER_LENGTH)
                .collect();
            if name.is_empty() {
                SERVER_MANAGER.to_owned()
            } else {
                name
            }
        }
    }
}

#[cfg(test)]
mod tests;
