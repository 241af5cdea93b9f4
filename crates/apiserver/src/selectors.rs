//! Label selectors (equality- and set-based) and field selectors, parsed once per request.

use kubeboot_api::Status;
pub use kubeboot_api::labels::LabelSelector;
use serde_json::Value;

use crate::object;

/// A parsed field selector: `(field, value, equal?)` terms, all of which must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    /// Parses `a=b,c!=d` (`\\,`, `\\=` and `\\\\` escaping a value's characters) as
    /// apimachinery's `fields.ParseSelector` does, then allows only `allowed` fields (plus
    /// the metadata ones); refusals in kube-apiserver's words.
    pub fn parse(s: &str, allowed: &[&str]) -> Result<Self, Status> {
        let terms = field_terms(s)?;
        for (field, _, _) in &terms {
            let field = field.as_str();
            if !matches!(field, "metadata.name" | "metadata.namespace") && !allowed.contains(&field)
            {
                return Err(Status::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
        }
        Ok(Self(terms))
    }

    /// The selector of one name (`metadata.name=<name>`, the name taken whole).
    pub fn name_is(name: &str) -> Self {
        Self(vec![("metadata.name".into(), name.into(), true)])
    }

    /// Whether the object's field values satisfy every term; `field` reads a field.
    pub fn matches(&self, field: impl Fn(&str) -> String) -> bool {
        self.0.iter().all(|(f, v, eq)| (field(f) == *v) == *eq)
    }

    /// The selector with its fields named as `rename` says (a version's names as stored).
    pub fn renamed(self, rename: impl Fn(&str) -> String) -> Self {
        Self(
            self.0
                .into_iter()
                .map(|(f, v, eq)| (rename(&f), v, eq))
                .collect(),
        )
    }

    /// The name this selector pins (`metadata.name=x`), if any.
    pub fn name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _, eq)| *eq && f == "metadata.name")
            .map(|(_, v, _)| v.as_str())
    }

    /// True when it selects everything.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A field selector's terms, `(field, value, equal?)`, sorted by their text as
/// `fields.ParseSelector` sorts them: refused in its words when one does not read.
pub fn field_terms(s: &str) -> Result<Vec<(String, String, bool)>, Status> {
    let mut parts = split_terms(s);
    parts.sort_unstable();
    let mut terms = Vec::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        let (field, op, value) = split_term(part).ok_or_else(|| {
            Status::bad_request(format!(
                "invalid selector: '{s}'; can't understand '{part}'"
            ))
        })?;
        terms.push((field.to_owned(), unescape(value)?, op != "!="));
    }
    Ok(terms)
}

/// A field selector's terms: split at each comma not escaped by a backslash.
fn split_terms(s: &str) -> Vec<&str> {
    let mut terms = Vec::new();
    let (mut start, mut escaped) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            ',' => {
                terms.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    terms.push(&s[start..]);
    terms
}

/// A term's field, operator (`!=`, `==`, `=`) and value, split at the first operator.
fn split_term(term: &str) -> Option<(&str, &str, &str)> {
    term.char_indices().find_map(|(i, _)| {
        ["!=", "==", "="]
            .into_iter()
            .find(|op| term[i..].starts_with(op))
            .map(|op| (&term[..i], op, &term[i + op.len()..]))
    })
}

/// A term's value with its escapes undone (`UnescapeValue`): a bare `,` or `=`, or a
/// backslash before anything else, is refused.
fn unescape(value: &str) -> Result<String, Status> {
    let bad = |what: String| Status::bad_request(format!("invalid field selector: {what}"));
    let mut out = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        match (escaped, c) {
            (true, '\\' | ',' | '=') => {
                out.push(c);
                escaped = false;
            }
            (true, _) => return Err(bad(format!("invalid escape sequence: \\{c}"))),
            (false, '\\') => escaped = true,
            // Go prints the character's number.
            (false, ',' | '=') => {
                return Err(bad(format!(
                    "unescaped character in value: {}",
                    u32::from(c)
                )));
            }
            (false, _) => out.push(c),
        }
    }
    if escaped {
        return Err(bad("invalid escape sequence: \\".to_owned()));
    }
    Ok(out)
}

/// The label and field selectors of one list, watch or deletecollection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selector {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
}

impl Selector {
    /// Parses `labelSelector` and `fieldSelector`, the latter over the metadata fields and
    /// `selectable` ones.
    pub fn parse(labels: &str, fields: &str, selectable: &[&str]) -> Result<Self, Status> {
        Ok(Self {
            labels: LabelSelector::parse(labels)?,
            fields: FieldSelector::parse(fields, selectable)?,
        })
    }

    /// True when it selects every object (and nothing need be parsed to apply it).
    pub fn is_everything(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    /// Whether an object named `name` is selected, when the selector reads its name and
    /// nothing else (a kubelet's watch of its CSR, of its Node): a name never changes, so
    /// every version of the object is judged alike and none need be parsed. `None` when
    /// the selector reads labels or other fields.
    pub fn matches_name(&self, name: &str) -> Option<bool> {
        let name_only = self.labels.is_empty()
            && self
                .fields
                .0
                .iter()
                .all(|(field, _, _)| field == "metadata.name");
        name_only.then(|| self.fields.matches(|_| name.to_owned()))
    }

    /// Whether an object is selected.
    pub fn matches(&self, obj: &Value) -> bool {
        (self.labels.is_empty() || self.labels.matches(&object::labels(obj)))
            && (self.fields.is_empty() || self.fields.matches(|f| object::field_text(obj, f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_selectors_accept_only_known_fields() {
        let f = FieldSelector::parse("metadata.name=x,spec.signerName!=y", &["spec.signerName"])
            .unwrap();
        assert_eq!(f.name(), Some("x"));
        assert!(f.matches(|k| if k == "metadata.name" {
            "x".into()
        } else {
            "z".into()
        }));
        assert!(FieldSelector::parse("spec.foo=1", &[]).is_err());
    }

    #[test]
    fn field_selectors_read_as_apimachinery_reads_them() {
        let parsed = |s: &str| FieldSelector::parse(s, &[]).map(|f| f.0);
        let term = |v: &str, eq: bool| vec![("metadata.name".to_owned(), v.to_owned(), eq)];
        for (s, want) in [
            ("metadata.name=a", term("a", true)),
            ("metadata.name==a", term("a", true)),
            ("metadata.name!=a", term("a", false)),
            ("metadata.name=", term("", true)),
            (r"metadata.name=a\,b\=c\\d", term(r"a,b=c\d", true)),
            (",metadata.name=a,", term("a", true)),
        ] {
            assert_eq!(parsed(s).unwrap(), want, "{s}");
        }
        for (s, message) in [
            (
                "metadata.name=a=b",
                "invalid field selector: unescaped character in value: 61",
            ),
            (
                "metadata.name=a\\",
                "invalid field selector: invalid escape sequence: \\",
            ),
            (
                "metadata.name=a\\x",
                "invalid field selector: invalid escape sequence: \\x",
            ),
            (
                "metadata.name",
                "invalid selector: 'metadata.name'; can't understand 'metadata.name'",
            ),
            (
                " metadata.name=a",
                "field label not supported:  metadata.name",
            ),
        ] {
            assert_eq!(parsed(s).unwrap_err().message, message, "{s}");
        }
    }

    #[test]
    fn a_selector_of_names_alone_is_decided_by_the_name() {
        // (label selector, field selector, name, decided by the name alone)
        let cases: &[(&str, &str, &str, Option<bool>)] = &[
            ("", "", "a", Some(true)),
            ("", "metadata.name=a", "a", Some(true)),
            ("", "metadata.name=a", "b", Some(false)),
            ("", "metadata.name!=a", "b", Some(true)),
            ("", "metadata.name==a,metadata.name!=b", "a", Some(true)),
            ("", "metadata.name=a,metadata.namespace=x", "a", None),
            ("", "metadata.name=a,spec.signerName=s", "a", None),
            ("app=x", "metadata.name=a", "a", None),
        ];
        for (labels, fields, name, decided) in cases {
            let s = Selector::parse(labels, fields, &["spec.signerName"]).unwrap();
            assert_eq!(
                s.matches_name(name),
                *decided,
                "{labels:?} {fields:?} {name}"
            );
            if let Some(d) = decided {
                let obj = serde_json::json!({"metadata": {"name": name}});
                assert_eq!(s.matches(&obj), *d, "agrees with matching the object");
            }
        }
    }
}
