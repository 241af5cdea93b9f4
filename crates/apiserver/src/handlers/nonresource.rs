//! What is served outside the resources: discovery (`/api`, `/apis` and each
//! group-version), OpenAPI v2 and v3, `/version`, `/metrics` and the health checks.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};

use super::Res;
use crate::discovery;
use crate::metrics::Metrics;
use crate::response;
use crate::routing::not_found;
use crate::watch::cache::WatchCache;

/// `/version`.
#[derive(Clone, Debug)]
pub struct VersionInfo {
    /// The JSON body.
    pub json: Value,
}

impl Default for VersionInfo {
    fn default() -> Self {
        Self {
            json: kubeboot_api::version::info(),
        }
    }
}

/// The non-resource endpoints.
pub struct NonResource {
    version: VersionInfo,
    metrics: Arc<Metrics>,
    cache: Arc<WatchCache>,
}

impl NonResource {
    /// Endpoints answering `version`, and the metrics with the cache's watcher count.
    pub fn new(version: VersionInfo, metrics: Arc<Metrics>, cache: Arc<WatchCache>) -> Self {
        Self {
            version,
            metrics,
            cache,
        }
    }

    /// Serves `path` to a client that accepts `accept`.
    pub fn serve(&self, path: &str, accept: &str) -> Res {
        let path = path.trim_end_matches('/');
        let ok = |v: Value| Ok(response::json(StatusCode::OK, &v));
        match path {
            "/healthz" | "/livez" | "/readyz" => Ok(response::text(
                StatusCode::OK,
                "ok",
                "text/plain; charset=utf-8",
            )),
            "/version" => ok(self.version.json.clone()),
            "/metrics" => Ok(response::text(
                StatusCode::OK,
                self.metrics.render(self.cache.watcher_count()),
                "text/plain; version=0.0.4",
            )),
            "/api" | "/apis" => match discovery::aggregated_version(accept) {
                Some(v) => Ok(response::json_as(
                    StatusCode::OK,
                    &discovery::aggregated(path == "/api", v),
                    &discovery::aggregated_content_type(v),
                )),
                None if path == "/api" => ok(discovery::api_versions()),
                None => ok(discovery::api_group_list()),
            },
            "/openapi/v3" => ok(discovery::openapi_v3_root()),
            "/openapi/v2" | "/swagger-2.0.0.pb-v1" => {
                if accept.contains("protobuf") || path.ends_with("pb-v1") {
                    Ok(response::text(
                        StatusCode::OK,
                        discovery::openapi_v2_protobuf(),
                        discovery::OPENAPI_V2_PROTOBUF,
                    ))
                } else {
                    ok(discovery::openapi_v2_json())
                }
            }
            "" => ok(
                json!({"paths": ["/api", "/api/v1", "/apis", "/healthz", "/livez", "/metrics", "/openapi/v3", "/readyz", "/version"]}),
            ),
            _ => {
                if let Some(doc) = path
                    .strip_prefix("/openapi/v3/")
                    .and_then(discovery::openapi_v3_doc)
                {
                    return Ok(response::json(StatusCode::OK, doc));
                }
                let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
                let found = match parts.as_slice() {
                    ["api", v] => discovery::api_resource_list("", v),
                    ["apis", g] => discovery::api_group(g),
                    ["apis", g, v] => discovery::api_resource_list(g, v),
                    _ => None,
                };
                match found {
                    Some(v) => ok(v),
                    None => Err(not_found()),
                }
            }
        }
    }
}
