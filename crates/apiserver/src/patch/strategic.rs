//! Strategic merge patch, applied as Kubernetes' `strategicpatch` package applies it
//! (`mergeMap`, `mergeSlice`, `normalizeElementOrder`). How each field merges comes from a
//! [`Schema`]: the `patchStrategy` and `patchMergeKey` tags of Kubernetes' own types. A list
//! without a strategy is replaced whole; maps and nested objects merge key by key.

use serde_json::{Map, Value};

use super::go_fmt::go_text;
use super::go_sort::slice_stable;

/// The patch tags of one object type's fields; a field not listed has none.
#[derive(Debug)]
pub struct Schema {
    /// Field name and how it merges.
    pub fields: &'static [(&'static str, Field)],
}

/// How one field merges.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Its `patchStrategy`.
    pub strategy: Strategy,
    /// The schema of the object it holds (or of its list's items), if it has tagged fields.
    pub schema: Option<&'static Schema>,
}

/// A field's `patchStrategy` (and `patchMergeKey`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// No tag: a list is replaced whole, a map merged key by key.
    Untagged,
    /// `merge` on a list of scalars: the union, in order.
    Merge,
    /// `merge` with `patchMergeKey`: items matched by that key and merged.
    MergeByKey(&'static str),
    /// No tag, but `listType=map` with that key: a strategic merge patch replaces the list
    /// whole, while the record of who set what (server-side apply) owns its items by key.
    MapByKey(&'static str),
    /// `replace`: the patch's value replaces the field's.
    Replace,
}

impl Schema {
    /// A type with no tagged field.
    pub const UNTAGGED: Schema = Schema { fields: &[] };

    /// How field `name` merges (untagged when not listed).
    pub fn field(&self, name: &str) -> Field {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(UNTAGGED_FIELD, |(_, f)| *f)
    }
}

impl Field {
    /// A field with this strategy and no nested schema.
    pub const fn of(strategy: Strategy) -> Self {
        Self {
            strategy,
            schema: None,
        }
    }

    /// A field with this strategy over objects of `schema`.
    pub const fn nested(strategy: Strategy, schema: &'static Schema) -> Self {
        Self {
            strategy,
            schema: Some(schema),
        }
    }

    /// The schema of the object it holds, or of its list's items.
    pub fn schema(&self) -> &'static Schema {
        self.schema.unwrap_or(&Schema::UNTAGGED)
    }
}

const UNTAGGED_FIELD: Field = Field::of(Strategy::Untagged);

/// Why a strategic merge patch cannot be applied, worded as Kubernetes words it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `$patch` with a value other than `replace`, `delete` (or `merge` on a map).
    #[error("unknown patch type: {0} in map: {1}")]
    UnknownPatchType(String, String),
    /// A list item of a list merged by key lacks the key.
    #[error("map: {item} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// The item, as Go prints it.
        item: String,
        /// The merge key.
        key: &'static str,
    },
    /// `$setElementOrder` lists the patch's items in another order.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    OrderMismatch {
        /// The order list, as Go prints it.
        order: String,
        /// The patch's list, as Go prints it.
        patch: String,
    },
    /// `$setElementOrder` for a list neither the object nor the patch has items in.
    #[error("no elements in any of the given slices")]
    NoElements,
    /// A list of objects merged without a merge key.
    #[error("cannot merge lists without merge key")]
    NoMergeKey,
    /// `$patch: merge` on a list item.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// `$retainKeys` that is not a list of strings, or misses a key the patch sets.
    #[error("invalid patch format of retainKeys")]
    RetainKeys,
    /// `$setElementOrder` that is not a list.
    #[error("invalid patch format of {0}")]
    Format(&'static str),
}

/// Applies `patch` to `original` (both JSON objects) as a strategic merge over `schema`.
pub fn apply(
    original: &Value,
    patch: &Map<String, Value>,
    schema: &Schema,
) -> Result<Value, Error> {
    let original = match original {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    merge_map(original, patch, schema).map(Value::Object)
}

fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: &Schema,
) -> Result<Map<String, Value>, Error> {
    if let Some(directive) = patch.get(PATCH) {
        return match directive.as_str() {
            Some("replace") => {
                let mut replaced = patch.clone();
                replaced.remove(PATCH);
                Ok(replaced)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(Error::UnknownPatchType(
                go_text(directive),
                go_text(&Value::Object(patch.clone())),
            )),
        };
    }
    let mut patch = patch.clone();
    if let Some(retain) = patch.remove(RETAIN_KEYS) {
        retain_keys(&mut original, &patch, &retain)?;
    }
    let orders: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in orders {
        let order = patch.remove(&key).unwrap_or(Value::Null);
        let name = &key[SET_ELEMENT_ORDER.len()..];
        let sent = patch.remove(name);
        if let Some(list) = set_element_order(original.get(name), sent, &order, schema.field(name))?
        {
            original.insert(name.to_owned(), Value::Array(list));
        }
    }
    for (k, v) in &patch {
        let (name, deleting) = match k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            Some(name) => (name, true),
            None => (k.as_str(), false),
        };
        if v.is_null() {
            original.remove(name);
            continue;
        }
        let field = schema.field(name);
        let merged = match (original.remove(name), v) {
            (None, _) if deleting => continue,
            (Some(o), _) if deleting && !same_type(&o, v) => {
                original.insert(name.to_owned(), o);
                continue;
            }
            (Some(Value::Object(o)), Value::Object(p)) => match field.strategy {
                Strategy::Replace => Value::Object(p.clone()),
                _ => Value::Object(merge_map(o, p, field.schema())?),
            },
            (Some(Value::Array(o)), Value::Array(p)) if deleting || is_merged(field.strategy) => {
                Value::Array(merge_list(o, p, field, deleting)?)
            }
            (Some(o), p) if same_type(&o, p) && (p.is_array() || p.is_object()) => p.clone(),
            // New, of another type, or a scalar: the patch's value, less what only a patch
            // may say.
            (_, p) => match remove_directives(discard_nulls(p.clone())) {
                Some(value) => value,
                None => continue,
            },
        };
        original.insert(name.to_owned(), merged);
    }
    Ok(original)
}

/// `$retainKeys`: every key the patch sets must be listed; the original keeps only those.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    retain: &Value,
) -> Result<(), Error> {
    let keys = retain.as_array().ok_or(Error::RetainKeys)?;
    let listed = |k: &str| keys.iter().any(|x| x.as_str() == Some(k));
    let unlisted = patch.iter().any(|(k, v)| {
        !v.is_null()
            && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            && !k.starts_with(SET_ELEMENT_ORDER)
            && !listed(k)
    });
    if unlisted {
        return Err(Error::RetainKeys);
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$setElementOrder/<name>` (`mergePatchIntoOriginal`): the list merged with the patch's
/// (if either has one), its items the order names put in that order, the others woven in
/// where they stood.
fn set_element_order(
    original: Option<&Value>,
    sent: Option<Value>,
    order: &Value,
    field: Field,
) -> Result<Option<Vec<Value>>, Error> {
    let order = order
        .as_array()
        .ok_or(Error::Format("setElementOrder list"))?;
    let key = merge_key(field.strategy);
    let sent = match sent {
        None => None,
        Some(Value::Array(items)) => Some(items),
        Some(_) => return Err(Error::Format("setElementOrder list")),
    };
    if let Some(items) = &sent {
        check_order(items, order, key)?;
    }
    let original = match original {
        Some(Value::Array(o)) => Some(o.clone()),
        Some(_) => return Err(Error::Format("setElementOrder list")),
        None => None,
    };
    let no_items = |l: &Option<Vec<Value>>| l.as_ref().is_none_or(Vec::is_empty);
    if (original.is_some() || sent.is_some()) && no_items(&original) && no_items(&sent) {
        // Go's `sliceElementType` over the two lists.
        return Err(Error::NoElements);
    }
    let merged = match (&original, sent) {
        (None, None) => return Ok(None),
        (Some(o), None) => o.clone(),
        (None, Some(p)) => match remove_directives(Value::Array(p)) {
            Some(Value::Array(items)) => items,
            _ => return Ok(None),
        },
        (Some(o), Some(p)) if is_merged(field.strategy) => {
            let (merged, left_behind) = merge_list_in_place(o.clone(), &p, field, false)?;
            return normalize_order(merged, order, &left_behind, key).map(Some);
        }
        (Some(_), Some(p)) => p,
    };
    let server_order = original.unwrap_or_default();
    normalize_order(merged, order, &server_order, key).map(Some)
}

/// `validatePatchWithSetOrderList`: the patch's items (less deletions) appear in the order
/// list, in the same order.
fn check_order(items: &[Value], order: &[Value], key: Option<&'static str>) -> Result<(), Error> {
    let kept: Vec<&Value> = match key {
        Some(_) => items
            .iter()
            .filter(|i| directive(i) != Some("delete"))
            .collect(),
        None => items.iter().collect(),
    };
    let (mut p, mut o) = (0, 0);
    while p < kept.len() && o < order.len() {
        if kept[p].get(PATCH).is_some() {
            p += 1;
            continue;
        }
        if same_item(kept[p], &order[o], key)? {
            p += 1;
        }
        o += 1;
    }
    if p < kept.len() && o >= order.len() {
        return Err(Error::OrderMismatch {
            patch: go_text(&Value::Array(items.to_vec())),
            order: go_text(&Value::Array(order.to_vec())),
        });
    }
    Ok(())
}

/// `mergeSlice`: a list with the `merge` strategy (or any list `$deleteFromPrimitiveList`
/// names, `deleting`) and a patch's list.
fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    field: Field,
    deleting: bool,
) -> Result<Vec<Value>, Error> {
    merge_list_in_place(original, patch, field, deleting).map(|(merged, _)| merged)
}

/// [`merge_list`], and the original list as Go leaves it: Go merges lists of objects in the
/// original's own array (`append(s[:i], s[i+1:]...)` to delete, `s[i] = merged` to merge,
/// `append` into the room a deletion freed), and `$setElementOrder` then orders by that
/// array — which changes where Kubernetes puts items, so the same happens here.
fn merge_list_in_place(
    original: Vec<Value>,
    patch: &[Value],
    field: Field,
    deleting: bool,
) -> Result<(Vec<Value>, Vec<Value>), Error> {
    if original.is_empty() && patch.is_empty() {
        return Ok((original.clone(), original));
    }
    let of_objects = original
        .iter()
        .chain(patch)
        .next()
        .is_some_and(Value::is_object);
    if !of_objects {
        let merged = if deleting {
            original
                .iter()
                .filter(|x| !patch.contains(x))
                .cloned()
                .collect()
        } else {
            let both = deduplicate_scalars(original.iter().chain(patch).cloned().collect());
            normalize_order(both, patch, &original, None)?
        };
        return Ok((merged, original));
    }
    let key = merge_key(field.strategy).ok_or(Error::NoMergeKey)?;
    let mut array = InPlace::new(original);
    let mut sent = Vec::new();
    let mut replace = false;
    for item in patch {
        match directive(item) {
            None => sent.push(item),
            Some("delete") => {
                let id = item.get(key).ok_or_else(|| missing_key(item, key))?;
                array.delete_all(|m| m.get(key) == Some(id));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(Error::MergeDirectiveInList),
            Some(other) => {
                return Err(Error::UnknownPatchType(other.to_owned(), go_text(item)));
            }
        }
    }
    if replace {
        return Ok((sent.into_iter().cloned().collect(), array.backing));
    }
    let server_order = array.list().to_vec();
    for item in &sent {
        let id = item.get(key).ok_or_else(|| missing_key(item, key))?;
        match array.list().iter().position(|m| m.get(key) == Some(id)) {
            Some(at) => {
                let base = match array.list()[at].clone() {
                    Value::Object(o) => o,
                    _ => Map::new(),
                };
                let p = item.as_object().ok_or_else(|| missing_key(item, key))?;
                array.set(at, Value::Object(merge_map(base, p, field.schema())?));
            }
            None => array.push((*item).clone()),
        }
    }
    let sent: Vec<Value> = sent.into_iter().cloned().collect();
    let merged = normalize_order(array.list().to_vec(), &sent, &server_order, Some(key))?;
    Ok((merged, array.backing))
}

/// A Go slice over the array of a decoded list (whose capacity is its length, as
/// `ToUnstructured` makes it): writes land in that array until an `append` outgrows it.
struct InPlace {
    /// The original list's array, as writes have left it.
    backing: Vec<Value>,
    /// The slice's length while it is over `backing`.
    len: usize,
    /// The slice after an `append` outgrew `backing`.
    moved: Option<Vec<Value>>,
}

impl InPlace {
    fn new(original: Vec<Value>) -> Self {
        Self {
            len: original.len(),
            backing: original,
            moved: None,
        }
    }

    fn list(&self) -> &[Value] {
        self.moved.as_deref().unwrap_or(&self.backing[..self.len])
    }

    /// `deleteMatchingEntries`: each match removed by shifting the rest left.
    fn delete_all(&mut self, matches: impl Fn(&Value) -> bool) {
        while let Some(at) = self.list().iter().position(&matches) {
            match &mut self.moved {
                Some(list) => {
                    list.remove(at);
                }
                None => {
                    for k in at..self.len - 1 {
                        self.backing[k] = self.backing[k + 1].clone();
                    }
                    self.len -= 1;
                }
            }
        }
    }

    fn set(&mut self, at: usize, v: Value) {
        match &mut self.moved {
            Some(list) => list[at] = v,
            None => self.backing[at] = v,
        }
    }

    fn push(&mut self, v: Value) {
        match &mut self.moved {
            Some(list) => list.push(v),
            None if self.len < self.backing.len() => {
                self.backing[self.len] = v;
                self.len += 1;
            }
            None => {
                let mut list = self.backing.clone();
                list.push(v);
                self.moved = Some(list);
            }
        }
    }
}

/// `normalizeElementOrder`: the merged items the patch (or order list) names, in its order,
/// and the others in the server's order, woven together by `mergeSortedSlice`.
fn normalize_order(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&'static str>,
) -> Result<Vec<Value>, Error> {
    if let Some(k) = key
        && let Some(item) = merged
            .iter()
            .chain(patch_order)
            .find(|i| i.get(k).is_none())
    {
        return Err(missing_key(item, k));
    }
    let position = |list: &[Value], item: &Value| {
        let id = identity(item, key);
        list.iter().position(|x| identity(x, key) == id)
    };
    let (mut patched, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|m| position(patch_order, m).is_some());
    // Go's comparison: in the list's order when both are in it, else "less".
    let less = |list: &[Value], a: &Value, b: &Value| match (position(list, a), position(list, b)) {
        (Some(x), Some(y)) => x < y,
        _ => true,
    };
    slice_stable(&mut patched, |a, b| less(patch_order, a, b));
    slice_stable(&mut server_only, |a, b| less(server_order, a, b));
    let mut out = Vec::with_capacity(patched.len() + server_only.len());
    let (mut left, mut right) = (
        server_only.into_iter().peekable(),
        patched.into_iter().peekable(),
    );
    while let (Some(l), Some(r)) = (left.peek(), right.peek()) {
        let left_first = matches!(
            (position(server_order, l), position(server_order, r)),
            (Some(a), Some(b)) if a < b
        );
        out.extend(if left_first {
            left.next()
        } else {
            right.next()
        });
    }
    out.extend(left);
    out.extend(right);
    Ok(out)
}

/// Go's `deduplicateScalars`: a later duplicate is overwritten by the list's last item.
fn deduplicate_scalars(mut s: Vec<Value>) -> Vec<Value> {
    let mut i = 0;
    while i + 1 < s.len() {
        let mut j = i + 1;
        while j < s.len() {
            if s[i] == s[j] {
                let last = s.len() - 1;
                s.swap(j, last);
                s.truncate(last);
            } else {
                j += 1;
            }
        }
        i += 1;
    }
    s
}

/// What identifies a list item: its merge key's value, or the item itself for scalars.
fn identity<'a>(item: &'a Value, key: Option<&str>) -> &'a Value {
    match key {
        Some(k) => item.get(k).unwrap_or(&Value::Null),
        None => item,
    }
}

fn same_item(a: &Value, b: &Value, key: Option<&'static str>) -> Result<bool, Error> {
    let Some(k) = key else { return Ok(a == b) };
    let left = a.get(k).ok_or_else(|| missing_key(a, k))?;
    let right = b.get(k).ok_or_else(|| missing_key(b, k))?;
    Ok(left == right)
}

fn merge_key(strategy: Strategy) -> Option<&'static str> {
    match strategy {
        Strategy::MergeByKey(k) => Some(k),
        _ => None,
    }
}

fn is_merged(strategy: Strategy) -> bool {
    matches!(strategy, Strategy::Merge | Strategy::MergeByKey(_))
}

fn directive(item: &Value) -> Option<&str> {
    item.get(PATCH).and_then(Value::as_str)
}

fn missing_key(item: &Value, key: &'static str) -> Error {
    Error::MissingMergeKey {
        item: go_text(item),
        key,
    }
}

fn same_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// Go's `discardNullValuesFromPatch`: null members of objects, at any depth, dropped.
fn discard_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, discard_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(discard_nulls).collect()),
        other => other,
    }
}

/// Go's `removeDirectives`: an object carrying `$patch` is dropped, at any depth.
fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) if m.contains_key(PATCH) => None,
        Value::Object(m) => Some(Value::Object(
            m.into_iter()
                .filter_map(|(k, v)| Some((k, remove_directives(v)?)))
                .collect(),
        )),
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

#[cfg(test)]
mod tests;
