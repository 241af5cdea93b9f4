//! Kubernetes' rules for names (apimachinery's `util/validation`): DNS-1123 labels and
//! subdomains, qualified names (label and annotation keys, finalizers) and label values,
//! each with the messages kube-apiserver gives.

/// DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && matches_label_pattern(s)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, of any length.
pub fn matches_label_pattern(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `[a-z]([-a-z0-9]*[a-z0-9])?`, of any length: a DNS-1123 label that starts with a letter.
pub fn matches_dns1035_pattern(s: &str) -> bool {
    matches_label_pattern(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// DNS-1123 subdomain: dot-separated labels, at most 253.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    // Kubernetes' IsDNS1123Subdomain: the whole name at most 253 characters, and no limit
    // on each label (unlike a DNS name).
    s.len() <= 253 && matches_subdomain_pattern(s)
}

/// The message of a name that does not match the RFC 1123 subdomain pattern.
pub const SUBDOMAIN_RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// `IsDNS1123Subdomain`'s messages: the length, then the pattern.
pub fn subdomain_errors(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    if s.len() > 253 {
        out.push("must be no more than 253 characters".to_owned());
    }
    if !matches_subdomain_pattern(s) {
        out.push(SUBDOMAIN_RULE.to_owned());
    }
    out
}

/// The RFC 1123 subdomain pattern, of any length.
pub fn matches_subdomain_pattern(s: &str) -> bool {
    s.split('.').all(matches_label_pattern)
}

const NAME_PART_RULE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

const QUALIFIED_NAME_RULE: &str = "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')";

const LABEL_VALUE_RULE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`.
fn is_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// `IsQualifiedName`: `[prefix/]name`, the prefix a DNS subdomain, the name at most 63.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let parts: Vec<&str> = value.split('/').collect();
    let (prefix, name) = match parts.as_slice() {
        [name] => (None, *name),
        [prefix, name] => (Some(*prefix), *name),
        _ => return vec![QUALIFIED_NAME_RULE.to_owned()],
    };
    let mut errors = Vec::new();
    match prefix {
        Some("") => errors.push("prefix part must be non-empty".to_owned()),
        Some(p) => errors.extend(
            subdomain_errors(p)
                .into_iter()
                .map(|e| format!("prefix part {e}")),
        ),
        None => {}
    }
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_owned());
    }
    if !is_name_part(name) {
        errors.push(NAME_PART_RULE.to_owned());
    }
    errors
}

/// `IsValidLabelValue`: empty, or a name part of at most 63 characters.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".to_owned());
    }
    if !value.is_empty() && !is_name_part(value) {
        errors.push(LABEL_VALUE_RULE.to_owned());
    }
    errors
}

/// `IsValidPathSegmentName`'s messages: the name of a role or binding (and its
/// `generateName`, which RBAC checks the same way).
pub fn path_segment_errors(name: &str) -> Vec<&'static str> {
    let mut errors = Vec::new();
    match name {
        "." => errors.push("may not be '.'"),
        ".." => errors.push("may not be '..'"),
        _ => {}
    }
    if name.contains('/') {
        errors.push("may not contain '/'");
    }
    if name.contains('%') {
        errors.push("may not contain '%'");
    }
    errors
}

/// A `generateName` as apimachinery's name validators read it (`maskTrailingDash`): a
/// trailing dash, to which a suffix will be added, masked with the two characters before
/// it as `a`.
pub fn mask_trailing_dash(name: &str) -> String {
    match name.strip_suffix('-') {
        Some(_) if name.len() > 1 => format!("{}a", &name[..name.len() - 2]),
        _ => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualified_names() {
        for (name, want) in [
            ("app", vec![]),
            ("kubernetes.io/metadata.name", vec![]),
            ("My_Name.1", vec![]),
            ("bad key", vec![NAME_PART_RULE.to_owned()]),
            ("-a", vec![NAME_PART_RULE.to_owned()]),
            ("/a", vec!["prefix part must be non-empty".to_owned()]),
            (
                "a/",
                vec![
                    "name part must be non-empty".to_owned(),
                    NAME_PART_RULE.to_owned(),
                ],
            ),
            ("a/b/c", vec![QUALIFIED_NAME_RULE.to_owned()]),
            (
                "Example.com/a",
                vec![format!("prefix part {}", SUBDOMAIN_RULE)],
            ),
            (
                &"x".repeat(64),
                vec!["name part must be no more than 63 characters".to_owned()],
            ),
        ] {
            assert_eq!(qualified_name_errors(name), want, "{name:?}");
        }
    }

    #[test]
    fn path_segments_and_prefixes() {
        assert!(path_segment_errors("system:node-bootstrapper").is_empty());
        assert_eq!(path_segment_errors(".."), ["may not be '..'"]);
        assert_eq!(
            path_segment_errors("a/b%"),
            ["may not contain '/'", "may not contain '%'"]
        );
        assert_eq!(mask_trailing_dash("web-"), "wea");
        assert_eq!(mask_trailing_dash("-"), "-");
        assert_eq!(mask_trailing_dash("web"), "web");
    }

    #[test]
    fn label_values() {
        for (value, ok) in [
            ("", true),
            ("v1.2_x-y", true),
            ("bad value!", false),
            ("-a", false),
        ] {
            assert_eq!(label_value_errors(value).is_empty(), ok, "{value:?}");
        }
        assert_eq!(
            label_value_errors(&"v".repeat(64)),
            ["must be no more than 63 characters"]
        );
    }
}
