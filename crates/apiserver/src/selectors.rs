//! Label selectors (equality- and set-based) and field selectors, parsed once per request.

use kubeboot_api::Status;
pub use kubeboot_api::labels::LabelSelector;
use serde_json::Value;

use crate::object;

/// A parsed field selector: `(field, value, equal?)` terms, all of which must hold.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, String, bool)>);

impl FieldSelector {
    /// Parses `a=b,c!=d`, allowing only `allowed` fields (plus the metadata ones).
    pub fn parse(s: &str, allowed: &[&str]) -> Result<Self, Status> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, value, eq) = if let Some((k, v)) = term.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (k, v, true)
            } else {
                return Err(Status::bad_request(format!(
                    "invalid selector: '{s}'; can't understand '{term}'"
                )));
            };
            let field = field.trim();
            if !matches!(field, "metadata.name" | "metadata.namespace") && !allowed.contains(&field)
            {
                return Err(Status::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_owned(), value.trim().to_owned(), eq));
        }
        Ok(Self(terms))
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
