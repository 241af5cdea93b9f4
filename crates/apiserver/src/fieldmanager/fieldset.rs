//! A set of field paths, as structured-merge-diff's `fieldpath.Set` holds it and
//! `managedFields[].fieldsV1` writes it: each path element is `f:<field>`, `k:<key JSON>`
//! (an item of an associative list), `v:<value JSON>` (an item of a set) or `i:<index>`;
//! `.` marks an element that is itself a member while it also has children.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

/// One path: its elements in FieldsV1 form (`f:spec`, `k:{"port":80,"protocol":"TCP"}`).
pub type Path = Vec<String>;

/// A set of paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<String>,
    children: BTreeMap<String, FieldSet>,
}

impl FieldSet {
    /// Reads a `fieldsV1` object; what is not one reads as the empty set.
    pub fn from_fields_v1(v: &Value) -> Self {
        let mut out = Self::default();
        for (k, sub) in v.as_object().into_iter().flatten() {
            if k == "." {
                continue;
            }
            let sub_obj = sub.as_object();
            if sub_obj.is_none_or(Map::is_empty) || sub.get(".").is_some() {
                out.members.insert(k.clone());
            }
            let child = Self::from_fields_v1(sub);
            if !child.is_empty() {
                out.children.insert(k.clone(), child);
            }
        }
        out
    }

    /// The set as `fieldsV1`.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        let keys: BTreeSet<&String> = self.members.iter().chain(self.children.keys()).collect();
        for k in keys {
            let mut sub = match self.children.get(k) {
                Some(c) => c.to_fields_v1(),
                None => Value::Object(Map::new()),
            };
            if self.children.contains_key(k)
                && self.members.contains(k)
                && let Some(o) = sub.as_object_mut()
            {
                o.insert(".".into(), Value::Object(Map::new()));
            }
            out.insert(k.clone(), sub);
        }
        Value::Object(out)
    }

    /// Whether the set holds nothing.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds one path.
    pub fn insert(&mut self, path: &[String]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether the set holds `path`.
    pub fn contains(&self, path: &[String]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Every path, members before their children, in element order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        let keys: BTreeSet<&String> = self.members.iter().chain(self.children.keys()).collect();
        for k in keys {
            prefix.push(k.clone());
            if self.members.contains(k) {
                out.push(prefix.clone());
            }
            if let Some(c) = self.children.get(k) {
                c.collect(prefix, out);
            }
            prefix.pop();
        }
    }

    /// The paths of both.
    pub fn union(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (k, c) in &other.children {
            let merged = match out.children.get(k) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(k.clone(), merged);
        }
        out
    }

    /// The paths of `self` that `other` does not hold.
    pub fn difference(&self, other: &Self) -> Self {
        let mut out = Self {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            let rest = match other.children.get(k) {
                Some(theirs) => c.difference(theirs),
                None => c.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(k.clone(), rest);
            }
        }
        out
    }

    /// The paths both hold.
    pub fn intersection(&self, other: &Self) -> Self {
        let mut out = Self {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (k, c) in &self.children {
            if let Some(theirs) = other.children.get(k) {
                let both = c.intersection(theirs);
                if !both.is_empty() {
                    out.children.insert(k.clone(), both);
                }
            }
        }
        out
    }

    /// Whether `path` is a leaf here: a member with no children.
    pub fn is_leaf(&self, path: &[String]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last) && !self.children.contains_key(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.is_leaf(rest)),
        }
    }
}

/// A path as Kubernetes prints it in a conflict: `.spec.ports[port=80,protocol="TCP"]`,
/// `.metadata.finalizers[="x"]`, `.items[0]`.
pub fn path_string(path: &[String]) -> String {
    let mut out = String::new();
    for element in path {
        if let Some(field) = element.strip_prefix("f:") {
            out.push('.');
            out.push_str(field);
        } else if let Some(key) = element.strip_prefix("k:") {
            let fields: Map<String, Value> = serde_json::from_str(key).unwrap_or_default();
            let parts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(value) = element.strip_prefix("v:") {
            out.push_str(&format!("[={value}]"));
        } else if let Some(index) = element.strip_prefix("i:") {
            out.push_str(&format!("[{index}]"));
        }
    }
    out
}
