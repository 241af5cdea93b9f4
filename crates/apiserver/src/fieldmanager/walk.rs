//! Objects seen as structured-merge-diff sees them: which fields a value sets (its field
//! set), what differs between two versions, a field's value at a path, an applied
//! configuration merged into a live object, and a path removed. How a list merges comes
//! from the kind's patch tags: one with a merge key is associative (keyed by it, by it and
//! `protocol` for ports), a merged list of scalars a set, any other list atomic; objects
//! and maps merge field by field, but for the atomic maps Kubernetes marks so.

use serde_json::{Map, Value, json};

use super::fieldset::{FieldSet, Path};
use crate::patch::strategic::{Schema, Strategy};

/// How a value at some place in an object is tracked and merged.
#[derive(Clone, Copy)]
pub(super) struct Node {
    schema: &'static Schema,
    list: ListKind,
    atomic: bool,
    scope: Scope,
}

/// Which part of an object a write owns: through the object itself, all but its type, its
/// identity and server-kept metadata (and its status, when a subresource keeps that);
/// through a subresource, only the status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    /// The object, its status included or not.
    Object {
        /// Whether the status is left out (kept by the `status` subresource).
        without_status: bool,
    },
    /// A subresource: the status only.
    Status,
}

/// The metadata the server keeps, owned by no one.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

impl Scope {
    /// Whether field `key` below `prefix` is outside what is owned.
    fn skips(self, prefix: &[String], key: &str) -> bool {
        match (prefix, self) {
            ([], Scope::Status) => key != "status",
            ([], Scope::Object { without_status }) => {
                key == "apiVersion" || key == "kind" || (without_status && key == "status")
            }
            ([meta], _) if meta == "f:metadata" => SERVER_METADATA.contains(&key),
            _ => false,
        }
    }
}

/// How a list is tracked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ListKind {
    /// Replaced whole, owned whole.
    Atomic,
    /// Scalars, each owned apart.
    Set,
    /// Objects keyed by these fields.
    Map(&'static [&'static str]),
}

/// The fields Kubernetes marks `+mapType=atomic` among the served kinds: a Service's
/// `spec.selector` (no other served kind has a field of that name).
const ATOMIC_MAPS: &[&str] = &["selector"];

impl Node {
    /// The whole object of a kind whose patch tags are `schema`, owned within `scope`.
    pub(super) fn root(schema: &'static Schema, scope: Scope) -> Self {
        Self {
            schema,
            list: ListKind::Atomic,
            atomic: false,
            scope,
        }
    }

    fn child(&self, name: &str) -> Self {
        let field = self.schema.field(name);
        let list = match field.strategy {
            Strategy::Merge => ListKind::Set,
            Strategy::MergeByKey("port") => ListKind::Map(&["port", "protocol"]),
            Strategy::MergeByKey("containerPort") => ListKind::Map(&["containerPort", "protocol"]),
            Strategy::MergeByKey(k) | Strategy::MapByKey(k) => ListKind::Map(key_fields(k)),
            _ => ListKind::Atomic,
        };
        Self {
            schema: field.schema(),
            list,
            atomic: ATOMIC_MAPS.contains(&name),
            scope: self.scope,
        }
    }

    /// The node of a list's items.
    fn item(&self) -> Self {
        Self {
            schema: self.schema,
            list: ListKind::Atomic,
            atomic: false,
            scope: self.scope,
        }
    }

    /// The fields of an object at `prefix` that are owned: set and not out of scope.
    fn owned<'a>(
        &self,
        m: &'a serde_json::Map<String, Value>,
        prefix: &[String],
    ) -> Vec<(&'a String, &'a Value)> {
        m.iter()
            .filter(|(k, c)| !c.is_null() && !self.scope.skips(prefix, k))
            .collect()
    }
}

/// The fields of the served kinds that are maps (Go `map`s, which a new one makes a member
/// of the changed set, as a new list item is) rather than structs (which exist, empty, in
/// every object of their type, and so are never new).
const MAPS: &[&str] = &[
    "labels",
    "annotations",
    "data",
    "binaryData",
    "stringData",
    "selector",
    "nodeSelector",
    "capacity",
    "allocatable",
    "extra",
    "limits",
    "requests",
];

/// The one-key lists' keys, as static slices.
fn key_fields(key: &'static str) -> &'static [&'static str] {
    match key {
        "name" => &["name"],
        "type" => &["type"],
        "uid" => &["uid"],
        "ip" => &["ip"],
        "mountPath" => &["mountPath"],
        "devicePath" => &["devicePath"],
        "topologyKey" => &["topologyKey"],
        _ => &[],
    }
}

/// The path element of a list item: `k:{"name":"web"}` (a key field left out defaults as
/// Kubernetes defaults it: `protocol` to `TCP`), `v:"x"` for a set, `i:0` otherwise.
fn item_element(item: &Value, list: ListKind, index: usize) -> String {
    match list {
        ListKind::Map(keys) if !keys.is_empty() => {
            let mut key = Map::new();
            for k in keys {
                match item.get(*k) {
                    Some(v) => key.insert((*k).to_owned(), v.clone()),
                    None if *k == "protocol" => key.insert((*k).to_owned(), json!("TCP")),
                    None => None,
                };
            }
            format!("k:{}", Value::Object(key))
        }
        ListKind::Set => format!("v:{item}"),
        _ => format!("i:{index}"),
    }
}

/// The fields `v` sets: every leaf, every list item (a member that also has children).
pub(super) fn field_set(v: &Value, node: Node) -> FieldSet {
    let mut out = FieldSet::default();
    walk_set(v, node, &mut Vec::new(), &mut out);
    out
}

fn walk_set(v: &Value, node: Node, prefix: &mut Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !node.atomic && !m.is_empty() => {
            let owned = node.owned(m, prefix);
            for (k, child) in owned {
                prefix.push(format!("f:{k}"));
                walk_set(child, node.child(k), prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) if node.list != ListKind::Atomic => {
            for (i, item) in items.iter().enumerate() {
                prefix.push(item_element(item, node.list, i));
                out.insert(prefix);
                if matches!(node.list, ListKind::Map(_)) {
                    walk_set(item, node.item(), prefix, out);
                }
                prefix.pop();
            }
        }
        _ => out.insert(prefix),
    }
}

/// What `new` sets differently from `old` (`None`: it did not exist): each changed leaf,
/// and each object, map or list item that is new, itself a member.
pub(super) fn changed(old: Option<&Value>, new: &Value, node: Node) -> FieldSet {
    let mut out = FieldSet::default();
    walk_changed(old, new, node, &mut Vec::new(), &mut out);
    out
}

fn walk_changed(
    old: Option<&Value>,
    new: &Value,
    node: Node,
    prefix: &mut Path,
    out: &mut FieldSet,
) {
    if old == Some(new) {
        return;
    }
    match (old, new) {
        (_, Value::Object(m)) if !node.atomic && !m.is_empty() => {
            let is_map = prefix
                .last()
                .and_then(|e| e.strip_prefix("f:"))
                .is_some_and(|f| MAPS.contains(&f));
            if old.is_none_or(|o| !o.is_object()) && is_map {
                out.insert(prefix);
            }
            let owned = node.owned(m, prefix);
            for (k, child) in owned {
                prefix.push(format!("f:{k}"));
                let before = old.and_then(|o| o.get(k));
                walk_changed(before, child, node.child(k), prefix, out);
                prefix.pop();
            }
        }
        (_, Value::Array(items)) if node.list != ListKind::Atomic => {
            let old_items: &[Value] = old.and_then(Value::as_array).map_or(&[], Vec::as_slice);
            for (i, item) in items.iter().enumerate() {
                let element = item_element(item, node.list, i);
                let before = find_item(old_items, node.list, &element);
                prefix.push(element);
                if before.is_none() {
                    out.insert(prefix);
                }
                if matches!(node.list, ListKind::Map(_)) {
                    walk_changed(before, item, node.item(), prefix, out);
                }
                prefix.pop();
            }
        }
        _ => out.insert(prefix),
    }
}

/// The item of `items` whose path element is `element`.
fn find_item<'a>(items: &'a [Value], list: ListKind, element: &str) -> Option<&'a Value> {
    items
        .iter()
        .enumerate()
        .find(|(j, o)| item_element(o, list, *j) == element)
        .map(|(_, o)| o)
}

/// What `old` set that `new` no longer does.
pub(super) fn removed(old: &Value, new: &Value, node: Node) -> FieldSet {
    let mut out = FieldSet::default();
    walk_removed(old, new, node, &mut Vec::new(), &mut out);
    out
}

fn walk_removed(old: &Value, new: &Value, node: Node, prefix: &mut Path, out: &mut FieldSet) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) if !node.atomic => {
            let owned = node.owned(o, prefix);
            for (k, before) in owned {
                prefix.push(format!("f:{k}"));
                match n.get(k).filter(|v| !v.is_null()) {
                    Some(after) => walk_removed(before, after, node.child(k), prefix, out),
                    None => walk_set(before, node.child(k), prefix, out),
                }
                prefix.pop();
            }
        }
        (Value::Array(o), Value::Array(n)) if node.list != ListKind::Atomic => {
            for (i, item) in o.iter().enumerate() {
                let element = item_element(item, node.list, i);
                let after = find_item(n, node.list, &element);
                prefix.push(element);
                match after {
                    None => {
                        out.insert(prefix);
                        if matches!(node.list, ListKind::Map(_)) {
                            walk_set(item, node.item(), prefix, out);
                        }
                    }
                    Some(after) if matches!(node.list, ListKind::Map(_)) => {
                        walk_removed(item, after, node.item(), prefix, out);
                    }
                    Some(_) => {}
                }
                prefix.pop();
            }
        }
        _ => {}
    }
}

/// The value at `path`, if `v` has it.
pub(super) fn value_at<'a>(v: &'a Value, path: &[String], node: Node) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v);
    };
    if let Some(field) = first.strip_prefix("f:") {
        return value_at(v.get(field)?, rest, node.child(field));
    }
    let items = v.as_array()?;
    let (_, item) = items
        .iter()
        .enumerate()
        .find(|(i, item)| item_element(item, node.list, *i) == *first)?;
    value_at(item, rest, node.item())
}

/// Removes the field or item at `path` from `v`.
pub(super) fn remove(v: &mut Value, path: &[String], node: Node) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if let Some(field) = first.strip_prefix("f:") {
        let child = node.child(field);
        match (rest.is_empty(), v.as_object_mut()) {
            (true, Some(o)) => {
                o.remove(field);
            }
            (false, Some(o)) => {
                if let Some(c) = o.get_mut(field) {
                    remove(c, rest, child);
                }
            }
            _ => {}
        }
        return;
    }
    let Some(items) = v.as_array_mut() else {
        return;
    };
    let found = (0..items.len()).find(|i| item_element(&items[*i], node.list, *i) == *first);
    match (found, rest.is_empty()) {
        (Some(i), true) => {
            items.remove(i);
        }
        (Some(i), false) => remove(&mut items[i], rest, node.item()),
        _ => {}
    }
}

/// `config` merged into `live`: its fields set, its associative lists' items merged by key,
/// its sets' items added, its atomic lists and maps and its scalars replacing `live`'s.
pub(super) fn merge(live: &Value, config: &Value, node: Node) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if !node.atomic => {
            let mut out = l.clone();
            for (k, v) in c.iter().filter(|(_, v)| !v.is_null()) {
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, v, node.child(k)),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) if node.list != ListKind::Atomic => {
            let mut out = l.clone();
            for (i, item) in c.iter().enumerate() {
                let element = item_element(item, node.list, i);
                let at = (0..out.len()).find(|j| item_element(&out[*j], node.list, *j) == element);
                match (at, node.list) {
                    (Some(j), ListKind::Map(_)) => out[j] = merge(&out[j], item, node.item()),
                    (Some(_), _) => {}
                    (None, _) => out.push(item.clone()),
                }
            }
            Value::Array(out)
        }
        _ => config.clone(),
    }
}
