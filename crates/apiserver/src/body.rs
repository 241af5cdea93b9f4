//! Request bodies: read within their size and time limits, and decoded from JSON, YAML or
//! Kubernetes' protobuf into one JSON object. Every body the server takes passes here.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, header};
use http_body_util::BodyExt;
use kubeboot_api::Status;
use serde_json::Value;
use serde_saphyr::DuplicateKeyPolicy;

/// The largest request body accepted (kube-apiserver's limit).
pub const MAX_BODY: usize = crate::object::MAX_OBJECT_BYTES;

/// What a request's body may be: hyper's, from a connection, or one handed over in this
/// process (`crate::in_process`).
pub trait RequestBody:
    hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Sync + Unpin + 'static
{
}

impl<B> RequestBody for B where
    B: hyper::body::Body<Data = Bytes, Error: std::fmt::Display> + Send + Sync + Unpin + 'static
{
}

/// Reads a request's body (at most [`MAX_BODY`], within 60 s) and its content type.
pub async fn read_body(req: Request<impl RequestBody>) -> Result<(String, Bytes), Status> {
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_owned();
    let mut body = req.into_body();
    let mut buf = bytes::BytesMut::new();
    let mut too_large = false;
    let mut seen = 0usize;
    let read = async {
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| {
                Status::bad_request(format!("failed to read the request body: {e}"))
            })?;
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                // Past the limit the rest is read and dropped (up to 64 MiB), so the client
                // hears the 413 instead of a reset connection.
                if seen > MAX_BODY {
                    too_large = true;
                    buf.clear();
                    if seen > 64 * MAX_BODY / 3 {
                        break;
                    }
                } else {
                    buf.extend_from_slice(&data);
                }
            }
        }
        Ok::<(), Status>(())
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .map_err(|_| Status::timeout("timed out reading the request body"))??;
    if too_large {
        return Err(Status::too_large("the request body is larger than 3 MiB"));
    }
    Ok((ct, buf.freeze()))
}

/// Whether a body of content type `ct` is decoded as JSON.
pub fn is_json(ct: &str) -> bool {
    matches!(media_type(ct), "application/json" | "" | "*/*")
}

/// Whether a body of content type `ct` is YAML.
pub fn is_yaml(ct: &str) -> bool {
    media_type(ct) == "application/yaml"
}

fn media_type(ct: &str) -> &str {
    ct.split(';').next().unwrap_or_default().trim()
}

/// Decodes a JSON, YAML or protobuf body into a JSON object.
pub fn decode(ct: &str, body: &[u8]) -> Result<Value, Status> {
    let media = media_type(ct);
    let v: Value = match media {
        "application/json" | "" | "*/*" => serde_json::from_slice(body).map_err(|e| {
            Status::bad_request(format!(
                "the body of the request could not be decoded as JSON: {e}"
            ))
        })?,
        "application/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| Status::bad_request("the body of the request is not UTF-8"))?;
            // A key given twice keeps its last value, as Kubernetes' (non-strict) YAML
            // decoding keeps it; `fieldValidation=Strict` refuses it (`strict`).
            serde_saphyr::from_str_with_options(text, yaml_options(DuplicateKeyPolicy::LastWins))
                .map_err(|e| {
                    Status::bad_request(format!(
                        "the body of the request could not be decoded as YAML: {e}"
                    ))
                })?
        }
        crate::protobuf::CONTENT_TYPE => {
            crate::protobuf::decode(body, crate::registry::protobuf_schema).map_err(|e| {
                Status::bad_request(format!(
                    "the body of the request could not be decoded as protobuf: {e}"
                ))
            })?
        }
        other => return Err(Status::unsupported_media_type(other)),
    };
    if !v.is_object() {
        return Err(Status::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    Ok(v)
}

/// The first key a YAML body repeats within one mapping, as yaml.v2's strict decoding
/// reports it (`yaml: unmarshal errors:` then `line <n>: key "<key>" already set in map`).
pub fn yaml_duplicate_key(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let err =
        serde_saphyr::from_str_with_options::<Value>(text, yaml_options(DuplicateKeyPolicy::Error))
            .err()?;
    let serde_saphyr::Error::DuplicateMappingKey { key, location } = err.without_snippet() else {
        return None;
    };
    Some(format!(
        "yaml: unmarshal errors:\n  line {}: key {:?} already set in map",
        location.line(),
        key.as_deref().unwrap_or_default()
    ))
}

fn yaml_options(duplicate_keys: DuplicateKeyPolicy) -> serde_saphyr::Options {
    serde_saphyr::options! { duplicate_keys: duplicate_keys }
}

/// The most of a refused request's body read before answering.
const SMALL_UPLOAD: usize = 64 * 1024;

/// Reads and drops what remains of a refused request's body, when it is small (at most 64
/// KiB, within a second): the client's upload then ends normally and it reads the answer.
/// A larger or slower one is left unread — refusing it cheaply is the point.
pub async fn discard_small(req: Request<impl RequestBody>) {
    if !worth_draining(req.headers()) {
        return;
    }
    let mut body = req.into_body();
    let mut seen = 0usize;
    let drain = async {
        while seen <= SMALL_UPLOAD {
            match body.frame().await {
                Some(Ok(frame)) => seen += frame.data_ref().map_or(0, Bytes::len),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// Whether a refused request's body is read before the answer. Not when the client waits
/// for `100 Continue` (reading would invite the upload the answer refuses; unread, the
/// client never sends it), nor when it announces more than [`SMALL_UPLOAD`].
fn worth_draining(headers: &http::HeaderMap) -> bool {
    let expects_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    !expects_continue && announced.is_none_or(|n| n <= SMALL_UPLOAD as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_body_is_read_only_when_small_and_not_awaiting_100_continue() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], true),
            (&[("content-length", "10")], true),
            (&[("content-length", "65536")], true),
            (&[("content-length", "65537")], false),
            (
                &[("content-length", "3670016"), ("expect", "100-continue")],
                false,
            ),
            (&[("expect", "100-Continue")], false),
            (
                &[("content-length", "10"), ("expect", "100-continue")],
                false,
            ),
            (&[("content-length", "nonsense")], true),
        ];
        for (headers, want) in cases {
            let mut map = http::HeaderMap::new();
            for (k, v) in *headers {
                map.insert(*k, v.parse().unwrap());
            }
            assert_eq!(worth_draining(&map), *want, "{headers:?}");
        }
    }

    #[test]
    fn a_repeated_yaml_key_is_told_as_yaml_v2_tells_it_and_otherwise_the_last_wins() {
        let yaml = b"data:\n  a: \"1\"\n  b: x\n  a: \"2\"\n";
        assert_eq!(
            yaml_duplicate_key(yaml).as_deref(),
            Some("yaml: unmarshal errors:\n  line 4: key \"a\" already set in map")
        );
        assert_eq!(yaml_duplicate_key(b"data:\n  a: 1\n  b: 2\n"), None);
        assert_eq!(
            yaml_duplicate_key(b"data: [unclosed"),
            None,
            "not a duplicate"
        );
        let v = decode("application/yaml", yaml).unwrap();
        assert_eq!(v["data"]["a"], "2");
    }
}
