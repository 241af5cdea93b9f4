//! HTTP responses: a JSON object, a text, a list whose items are stored JSON text. The
//! bottom of the request path: every layer above writes its answers with these.

use std::convert::Infallible;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

/// The response body type.
pub type Body = BoxBody<Bytes, Infallible>;

/// A body of these bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// What an answer's body is, given whether it answers a HEAD request: a HEAD answer has
/// the headers of a GET and no body (HTTP/1.1 would drop one by itself, but DATA frames on
/// an HTTP/2 HEAD stream break it).
pub fn body_for(head: bool, body: Body) -> Body {
    match head {
        true => http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed(),
        false => body,
    }
}

/// A JSON response.
pub fn json(code: StatusCode, v: &impl serde::Serialize) -> Response<Body> {
    json_as(code, v, "application/json")
}

/// A JSON response of another content type (aggregated discovery).
pub fn json_as(code: StatusCode, v: &impl serde::Serialize, content_type: &str) -> Response<Body> {
    // Serialising a value built in memory fails only for a map with non-string keys, which
    // no response has; an empty object stands in rather than a panic.
    let bytes = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    text(code, bytes, content_type)
}

/// A response of `content_type`.
pub fn text(code: StatusCode, text: impl Into<Bytes>, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .header("X-Content-Type-Options", "nosniff")
        .body(full(text))
        .expect("static headers are valid")
}

/// A list's JSON text: its kind, apiVersion and metadata, then `items`, the comma-separated
/// texts of its objects, as they are.
pub fn list_body(head: &Value, items: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(items.len() + 256);
    // An object's text ends with its closing brace; the items go before it.
    out.extend_from_slice(head.to_string().as_bytes());
    debug_assert_eq!(out.last(), Some(&b'}'));
    out.pop();
    out.extend_from_slice(b",\"items\":[");
    out.extend_from_slice(items);
    out.extend_from_slice(b"]}");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_list_body_is_its_head_and_the_items_text_as_it_is() {
        let head = json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "7"}});
        let items = br#"{"metadata":{"name":"a","resourceVersion":"3"}},{"metadata":{"name":"b"}}"#;
        let list: Value = serde_json::from_slice(&list_body(&head, items)).unwrap();
        assert_eq!(
            list,
            json!({
                "kind": "ConfigMapList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "7"},
                "items": [{"metadata": {"name": "a", "resourceVersion": "3"}}, {"metadata": {"name": "b"}}],
            })
        );
        let empty: Value = serde_json::from_slice(&list_body(&head, b"")).unwrap();
        assert_eq!(empty["items"], json!([]));
    }
}
