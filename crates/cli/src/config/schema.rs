//! The fields of each kind a configuration file may hold, as Kubernetes' types declare
//! them, and where in a document's text a field is (for errors that name the line).

use serde_json::Value;

/// What a field holds.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Field {
    /// A value whose inside is not checked (a scalar, or a structure kubeboot has no use
    /// for).
    Any,
    /// An object with these fields.
    Object(&'static [(&'static str, Field)]),
    /// A list of objects with these fields.
    List(&'static [(&'static str, Field)]),
}

/// The first field of `v` (under `path`) that `fields` does not have, as a path.
pub(crate) fn unknown_field(v: &Value, fields: &[(&str, Field)]) -> Option<Vec<String>> {
    let obj = v.as_object()?;
    for (k, sub) in obj {
        let Some((_, field)) = fields.iter().find(|(name, _)| name == k) else {
            return Some(vec![k.clone()]);
        };
        let inner = match (field, sub) {
            (Field::Object(f), Value::Object(_)) => unknown_field(sub, f),
            (Field::List(f), Value::Array(items)) => {
                items.iter().enumerate().find_map(|(i, item)| {
                    unknown_field(item, f).map(|mut p| {
                        p.insert(0, i.to_string());
                        p
                    })
                })
            }
            _ => None,
        };
        if let Some(mut p) = inner {
            p.insert(0, k.clone());
            return Some(p);
        }
    }
    None
}

/// The line (0-based, in `text`) of the field at `path`: each key is looked for after
/// the line of the one before it; list indexes are skipped. 0 when not found.
pub(crate) fn line_of(text: &str, path: &[&str]) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let mut at = 0;
    for key in path.iter().filter(|k| k.parse::<usize>().is_err()) {
        let found = lines.iter().enumerate().skip(at).find(|(_, l)| {
            let l = l.trim_start().trim_start_matches("- ").trim_start();
            l.strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(':'))
                || l.strip_prefix(&format!("\"{key}\""))
                    .is_some_and(|rest| rest.starts_with(':'))
        });
        match found {
            Some((i, _)) => at = i,
            None => return at,
        }
    }
    at
}
