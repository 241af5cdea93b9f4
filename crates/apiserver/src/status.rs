//! Errors to the wire: the one place a failure becomes an HTTP response with a `Status`.

use http::{Response, StatusCode};
use kubeboot_api::Status;
use kubeboot_store::StoreError;

use crate::registry::ResourceDef;
use crate::response::{self, Body};

/// The HTTP response for a `Status`.
pub fn status_response(s: &Status) -> Response<Body> {
    let code = StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = response::json(code, s);
    if let Some(secs) = s.details.as_ref().and_then(|d| d.retry_after_seconds)
        && let Ok(v) = secs.to_string().parse()
    {
        resp.headers_mut().insert(http::header::RETRY_AFTER, v);
    }
    resp
}

/// The `Status` for a store failure concerning object `name` of `def`.
pub fn from_store(e: StoreError, def: &ResourceDef, name: &str) -> Status {
    match e {
        StoreError::AlreadyExists(_) => Status::already_exists(def.subject(name)),
        StoreError::NotFound(_) => Status::not_found(def.subject(name)),
        StoreError::Conflict { .. } => Status::conflict(
            def.subject(name),
            "the object has been modified; please apply your changes to the latest version and try again",
        ),
        StoreError::Compacted { requested, oldest } => {
            Status::expired(format!("too old resource version: {requested} ({oldest})"))
        }
        StoreError::Backend(msg) => {
            tracing::error!(error = %msg, "storage failure");
            Status::internal(format!("storage is unavailable: {msg}"))
        }
    }
}
