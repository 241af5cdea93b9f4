//! Reading and writing the common parts of objects held as JSON: metadata, names, and the
//! difference between what a client sent and what the typed schema keeps.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// The largest object a client may send or a patch may make: kube-apiserver's 3 MiB
/// request limit.
pub const MAX_OBJECT_BYTES: usize = 3 * 1024 * 1024;

/// `metadata.<field>` as a string, or "".
pub fn meta_str<'a>(obj: &'a Value, field: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The strings of the list at JSON pointer `pointer` (those that are strings), in order;
/// none when there is no list.
pub fn str_list<'a>(obj: &'a Value, pointer: &str) -> Vec<&'a str> {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// The object's `metadata`, created if missing.
pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let o = obj.as_object_mut().expect("made an object above");
    let m = o
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !m.is_object() {
        *m = Value::Object(Map::new());
    }
    m.as_object_mut().expect("made an object above")
}

/// `metadata.labels` as a map.
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    obj.get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
        .map(|l| {
            l.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Reads a dotted field path (`spec.signerName`) as text, for field selectors: `None`
/// when it is unset or not a string, boolean or number.
pub fn field_scalar(obj: &Value, path: &str) -> Option<String> {
    let mut cur = obj;
    for part in path.split('.') {
        cur = cur.get(part)?;
    }
    match cur {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Sets `metadata.resourceVersion`.
pub fn set_resource_version(obj: &mut Value, rev: i64) {
    meta_mut(obj).insert("resourceVersion".into(), Value::String(rev.to_string()));
}

/// Sets `kind` and `apiVersion` (first, as kube-apiserver writes them).
pub fn set_type(obj: &mut Value, api_version: &str, kind: &str) {
    if let Value::Object(o) = obj {
        let mut out = Map::with_capacity(o.len() + 2);
        out.insert("kind".into(), Value::String(kind.into()));
        out.insert("apiVersion".into(), Value::String(api_version.into()));
        for (k, v) in std::mem::take(o) {
            if k != "kind" && k != "apiVersion" {
                out.insert(k, v);
            }
        }
        *o = out;
    }
}

/// The JSON paths present in `sent` that the typed form `kept` dropped: unknown fields.
pub fn unknown_fields(sent: &Value, kept: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk_unknown(sent, kept, "", &mut out);
    out
}

fn walk_unknown(sent: &Value, kept: &Value, path: &str, out: &mut Vec<String>) {
    match (sent, kept) {
        (Value::Object(s), Value::Object(k)) => {
            for (key, sv) in s {
                let p = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match k.get(key) {
                    Some(kv) => walk_unknown(sv, kv, &p, out),
                    None if !sv.is_null() => out.push(p),
                    None => {}
                }
            }
        }
        (Value::Array(s), Value::Array(k)) => {
            for (i, (sv, kv)) in s.iter().zip(k).enumerate() {
                walk_unknown(sv, kv, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

pub use kubeboot_api::names::{
    SUBDOMAIN_RULE, is_dns1123_label, is_dns1123_subdomain, matches_dns1035_pattern,
    matches_label_pattern, matches_subdomain_pattern, subdomain_errors,
};

/// A valid path segment name: not `.`/`..`, no `/` or `%`.
pub fn is_path_segment(s: &str) -> bool {
    !s.is_empty() && s != "." && s != ".." && !s.contains(['/', '%'])
}

/// A random name suffix as `generateName` uses: 5 characters without vowels.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut b = [0u8; 5];
    fill_random(&mut b);
    b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

/// A random version-4 UUID.
pub fn random_uid() -> String {
    let mut b = [0u8; 16];
    fill_random(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut uid = String::with_capacity(36);
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            uid.push('-');
        }
        uid.push(HEX[usize::from(x >> 4)] as char);
        uid.push(HEX[usize::from(x & 0x0f)] as char);
    }
    uid
}

fn fill_random(b: &mut [u8]) {
    kubeboot_api::random::Random::fill(&kubeboot_api::random::OsRandom, b);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_the_ones_the_schema_dropped() {
        let sent = json!({"metadata": {"name": "x", "bogus": 1}, "data": {"a": "b"}, "extra": null, "spec": {"x": [ {"y": 1, "z": 2} ]}});
        let kept =
            json!({"metadata": {"name": "x"}, "data": {"a": "b"}, "spec": {"x": [ {"y": 1} ]}});
        assert_eq!(
            unknown_fields(&sent, &kept),
            ["metadata.bogus", "spec.x[0].z"]
        );
    }

    #[test]
    fn name_rules() {
        assert!(is_dns1123_label("demo-1"));
        assert!(!is_dns1123_label("Demo"));
        assert!(!is_dns1123_label("-a"));
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_label(&"a".repeat(64)), "a label is at most 63");
        assert!(
            is_dns1123_subdomain(&"a".repeat(253)),
            "a subdomain's label is not"
        );
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        assert!(!is_dns1123_subdomain("a.-b"));
        assert!(is_path_segment("system:node-bootstrapper"));
        assert!(!is_path_segment("a/b"));
        assert_eq!(random_suffix().len(), 5);
        let uid = random_uid();
        let groups: Vec<usize> = uid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{uid}");
        assert!(
            uid.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(&uid[14..15], "4", "version 4: {uid}");
        assert!("89ab".contains(&uid[19..20]), "RFC 4122 variant: {uid}");
        assert_ne!(uid, random_uid());
    }
}
