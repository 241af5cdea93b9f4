//! A stored object's JSON with its `metadata.resourceVersion` spliced in: the server stores
//! objects without one, and every watch event and list item needs it.

use serde_json::Value;

use kubeboot_store::Revision;

use crate::object::set_resource_version;

/// A stored object's JSON with `metadata.resourceVersion` set to `revision`.
///
/// The server stores objects without a resourceVersion, so the field is spliced into the
/// text of the top-level `metadata` object — no parse into a `Value` and no serialising again
/// for every event. Any other shape (a resourceVersion already there, no metadata object) is
/// parsed.
pub fn with_resource_version(
    stored: &[u8],
    revision: Revision,
) -> Result<Vec<u8>, serde_json::Error> {
    // Validates without building anything (the UTF-8 check first: skipping strings does
    // not look inside them).
    if std::str::from_utf8(stored).is_err() {
        return Err(serde::de::Error::custom("the stored object is not UTF-8"));
    }
    serde_json::from_slice::<serde::de::IgnoredAny>(stored)?;
    let has_rv = stored
        .windows(b"\"resourceVersion\"".len())
        .any(|w| w == b"\"resourceVersion\"");
    if !has_rv && let Some(at) = top_level_metadata_body(stored) {
        let field = format!("\"resourceVersion\":\"{revision}\"");
        let mut out = Vec::with_capacity(stored.len() + field.len() + 1);
        out.extend_from_slice(&stored[..at]);
        out.extend_from_slice(field.as_bytes());
        if stored[at..].iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(&stored[at..]);
        return Ok(out);
    }
    let mut object: Value = serde_json::from_slice(stored)?;
    set_resource_version(&mut object, revision);
    serde_json::to_vec(&object)
}

/// Where the body of the top-level `"metadata": {` object starts in valid JSON text: a scan
/// that skips strings (escapes included) and counts nesting, so a `metadata` key in a nested
/// object or inside a string is never taken for it.
fn top_level_metadata_body(s: &[u8]) -> Option<usize> {
    let skip_ws = |mut j: usize| {
        while s.get(j).is_some_and(u8::is_ascii_whitespace) {
            j += 1;
        }
        j
    };
    let mut depth = 0usize;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < s.len() && s[i] != b'"' {
                    if s[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if depth == 1 && s.get(start..=i) == Some(b"\"metadata\"".as_slice()) {
                    let colon = skip_ws(i + 1);
                    if s.get(colon) == Some(&b':') {
                        let brace = skip_ws(colon + 1);
                        if s.get(brace) == Some(&b'{') {
                            return Some(brace + 1);
                        }
                    }
                }
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(b: &[u8]) -> Value {
        serde_json::from_slice(b).expect("json")
    }

    #[test]
    fn the_resource_version_is_set_as_a_parse_would_set_it() {
        let cases = [
            r#"{"apiVersion":"v1","data":{"x":"\"metadata\":{ is data"},"kind":"ConfigMap","metadata":{"name":"a","namespace":"default"}}"#,
            r#"{"kind":"Namespace","metadata":{}}"#,
            r#"{"metadata":{"name":"n","resourceVersion":"3"}}"#,
            r#"{"spec":{"template":{"metadata":{"name":"inner"}}},"metadata":{"name":"outer"}}"#,
            r#"{"kind":"NoMetadata"}"#,
            r#"{"kind":"metadata","metadata":"not an object"}"#,
            r#"{ "metadata" : { "name" : "spaced" } }"#,
            r#"{"data":{"k":"a \" \\ \"metadata\":{"},"metadata":{"name":"escaped"}}"#,
        ];
        for stored in cases {
            let got = parsed(&with_resource_version(stored.as_bytes(), 42).expect("ok"));
            let mut want = parsed(stored.as_bytes());
            set_resource_version(&mut want, 42);
            assert_eq!(got, want, "{stored}");
        }
    }

    #[test]
    fn a_value_that_is_not_json_is_refused() {
        assert!(with_resource_version(b"{\"metadata\":{", 1).is_err());
        assert!(with_resource_version(b"not json", 1).is_err());
        assert!(
            with_resource_version(b"{\"metadata\":{\"name\":\"\xff\"}}", 1).is_err(),
            "a string that is not UTF-8"
        );
    }
}
