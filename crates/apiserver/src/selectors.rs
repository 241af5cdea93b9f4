//! Label selectors (equality- and set-based) and field selectors, parsed once per request.

use kubeboot_api::Status;
pub use kubeboot_api::labels::LabelSelector;
use serde_json::Value;

use crate::object;

/// A field a field selector may name (a kind's field label conversion lists them): where
/// the stored object holds it, and what it reads as when the object leaves it out.
/// kube-apiserver selects on the object's typed form (its `GetAttrs`), where an unset
/// field holds its zero value: `spec.unschedulable=false` selects every Node not cordoned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldLabel {
    /// The name a selector gives it.
    pub label: &'static str,
    /// The stored object's field it reads (dotted).
    pub path: &'static str,
    /// The field read instead when `path` is unset or empty (`""`: none).
    pub fallback: &'static str,
    /// What it reads as when neither is set.
    pub absent: &'static str,
}

impl FieldLabel {
    /// A field read where its label says, empty when unset.
    pub const fn at(label: &'static str) -> Self {
        Self {
            label,
            path: label,
            fallback: "",
            absent: "",
        }
    }

    /// The same label, read at another path of the stored object.
    pub const fn reading(self, path: &'static str) -> Self {
        Self { path, ..self }
    }

    /// The same label, reading `fallback` when its path is unset or empty.
    pub const fn else_reading(self, fallback: &'static str) -> Self {
        Self { fallback, ..self }
    }

    /// The same label, reading as `absent` when unset (a typed zero value: `false`).
    pub const fn unset_as(self, absent: &'static str) -> Self {
        Self { absent, ..self }
    }

    /// Its value in `obj`.
    fn read(&self, obj: &Value) -> String {
        [self.path, self.fallback]
            .into_iter()
            .filter(|p| !p.is_empty())
            .find_map(|p| object::field_scalar(obj, p).filter(|v| !v.is_empty()))
            .unwrap_or_else(|| self.absent.to_owned())
    }
}

/// The fields a kind's field selectors may name.
#[derive(Clone, Copy, Debug)]
pub enum FieldLabels {
    /// apimachinery's default (`DefaultMetaV1FieldSelectorConversion`): `metadata.name`
    /// and `metadata.namespace`, for a kind that declares no list of its own.
    Metadata,
    /// The kind's own list (its `AddFieldLabelConversionFunc`), metadata ones included:
    /// a cluster-scoped kind's leaves `metadata.namespace` out.
    Own(&'static [FieldLabel]),
}

/// apimachinery's default field labels.
const METADATA_LABELS: &[FieldLabel] = &[
    FieldLabel::at("metadata.name"),
    FieldLabel::at("metadata.namespace"),
];

impl FieldLabels {
    /// The field a selector's label names, if the kind has it.
    pub fn find(&self, label: &str) -> Option<FieldLabel> {
        let labels = match self {
            Self::Metadata => METADATA_LABELS,
            Self::Own(labels) => labels,
        };
        labels.iter().find(|f| f.label == label).copied()
    }
}

/// One term of a field selector: the field, the value and whether it must equal it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    field: FieldLabel,
    value: String,
    equal: bool,
}

/// A parsed field selector: terms all of which must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<Term>);

impl FieldSelector {
    /// Parses `a=b,c!=d` (`\\,`, `\\=` and `\\\\` escaping a value's characters) as
    /// apimachinery's `fields.ParseSelector` does, then allows only the kind's field
    /// labels; refusals in kube-apiserver's words.
    pub fn parse(s: &str, labels: &FieldLabels) -> Result<Self, Status> {
        let terms = field_terms(s)?;
        let mut out = Vec::with_capacity(terms.len());
        for (label, value, equal) in terms {
            let field = labels.find(&label).ok_or_else(|| {
                Status::bad_request(format!("field label not supported: {label}"))
            })?;
            out.push(Term {
                field,
                value,
                equal,
            });
        }
        Ok(Self(out))
    }

    /// The selector of one name (`metadata.name=<name>`, the name taken whole).
    pub fn name_is(name: &str) -> Self {
        Self(vec![Term {
            field: FieldLabel::at("metadata.name"),
            value: name.into(),
            equal: true,
        }])
    }

    /// Whether the object's field values satisfy every term; `read` reads a field.
    fn holds(&self, read: impl Fn(&FieldLabel) -> String) -> bool {
        self.0
            .iter()
            .all(|t| (read(&t.field) == t.value) == t.equal)
    }

    /// Whether `obj` satisfies every term.
    pub fn matches(&self, obj: &Value) -> bool {
        self.holds(|f| f.read(obj))
    }

    /// The name this selector pins (`metadata.name=x`), if any.
    pub fn name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|t| t.equal && t.field.label == "metadata.name")
            .map(|t| t.value.as_str())
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
    /// Parses `labelSelector` and `fieldSelector`, the latter over the kind's field labels.
    pub fn parse(labels: &str, fields: &str, selectable: &FieldLabels) -> Result<Self, Status> {
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
                .all(|t| t.field.label == "metadata.name");
        name_only.then(|| self.fields.holds(|_| name.to_owned()))
    }

    /// Whether an object is selected.
    pub fn matches(&self, obj: &Value) -> bool {
        (self.labels.is_empty() || self.labels.matches(&object::labels(obj)))
            && (self.fields.is_empty() || self.fields.matches(obj))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    const CSR: FieldLabels = FieldLabels::Own(&[
        FieldLabel::at("metadata.name"),
        FieldLabel::at("spec.signerName"),
    ]);

    #[test]
    fn field_selectors_accept_only_the_kinds_labels() {
        let f = FieldSelector::parse("metadata.name=x,spec.signerName!=y", &CSR).unwrap();
        assert_eq!(f.name(), Some("x"));
        let csr = |signer: &str| json!({"metadata": {"name": "x"}, "spec": {"signerName": signer}});
        assert!(f.matches(&csr("z")));
        assert!(!f.matches(&csr("y")));
        // (labels, selector, accepted): a cluster-scoped kind with a list of its own leaves
        // `metadata.namespace` out; the default list has it.
        for (labels, selector, accepted) in [
            (&CSR, "metadata.namespace=a", false),
            (&CSR, "spec.nodeName=a", false),
            (&FieldLabels::Metadata, "metadata.namespace=a", true),
            (&FieldLabels::Metadata, "spec.foo=1", false),
        ] {
            let parsed = FieldSelector::parse(selector, labels);
            assert_eq!(parsed.is_ok(), accepted, "{selector}");
            if let Err(e) = parsed {
                let label = selector.split('=').next().unwrap();
                assert_eq!(e.message, format!("field label not supported: {label}"));
            }
        }
    }

    #[test]
    fn an_unset_field_reads_as_its_typed_zero_value_or_its_fallback() {
        const LABELS: FieldLabels = FieldLabels::Own(&[
            FieldLabel::at("spec.unschedulable").unset_as("false"),
            FieldLabel::at("source")
                .reading("source.component")
                .else_reading("reportingComponent"),
        ]);
        // (selector, object, selected)
        let cases = [
            ("spec.unschedulable=false", json!({"spec": {}}), true),
            (
                "spec.unschedulable=false",
                json!({"spec": {"unschedulable": true}}),
                false,
            ),
            (
                "spec.unschedulable=true",
                json!({"spec": {"unschedulable": true}}),
                true,
            ),
            ("spec.unschedulable!=true", json!({}), true),
            (
                "source=kubelet",
                json!({"source": {"component": "kubelet"}}),
                true,
            ),
            ("source=sched", json!({"reportingComponent": "sched"}), true),
            (
                "source=sched",
                json!({"source": {"component": ""}, "reportingComponent": "sched"}),
                true,
            ),
            (
                "source=sched",
                json!({"source": {"component": "kubelet"}, "reportingComponent": "sched"}),
                false,
            ),
            ("source=", json!({}), true),
        ];
        for (selector, obj, selected) in cases {
            let f = FieldSelector::parse(selector, &LABELS).unwrap();
            assert_eq!(f.matches(&obj), selected, "{selector} on {obj}");
        }
    }

    #[test]
    fn field_selectors_read_as_apimachinery_reads_them() {
        let parsed = |s: &str| {
            FieldSelector::parse(s, &FieldLabels::Metadata).map(|f| {
                f.0.into_iter()
                    .map(|t| (t.field.label.to_owned(), t.value, t.equal))
                    .collect::<Vec<_>>()
            })
        };
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
        const SECRETS_OF_A_SIGNER: FieldLabels = FieldLabels::Own(&[
            FieldLabel::at("metadata.name"),
            FieldLabel::at("metadata.namespace"),
            FieldLabel::at("spec.signerName"),
        ]);
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
            let s = Selector::parse(labels, fields, &SECRETS_OF_A_SIGNER).unwrap();
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
