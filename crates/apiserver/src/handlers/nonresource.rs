//! What is served outside the resources: discovery (`/api`, `/apis` and each
//! group-version), OpenAPI v2 and v3, `/version`, `/metrics` and the health checks.

use std::sync::Arc;

use http::StatusCode;
use serde_json::{Value, json};

use kubeboot_store::Store;

use super::Res;
use crate::discovery;
use crate::health;
use crate::metrics::Metrics;
use crate::requestinfo::Query;
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
    health: health::StoreProbe,
}

impl NonResource {
    /// Endpoints answering `version`, the metrics with the cache's watcher count, and the
    /// health of `store`.
    pub fn new(
        version: VersionInfo,
        metrics: Arc<Metrics>,
        cache: Arc<WatchCache>,
        store: Arc<dyn Store>,
    ) -> Self {
        Self {
            version,
            metrics,
            cache,
            health: health::StoreProbe::new(store),
        }
    }

    /// Serves `path` (with its `query`) to a client that accepts `accept`.
    pub async fn serve(&self, path: &str, query: &Query, accept: &str) -> Res {
        let path = path.trim_end_matches('/');
        if let Some(answer) = self.health(path, query).await {
            return answer;
        }
        self.serve_static(path, accept)
    }

    /// A health endpoint's answer (`/readyz`, `/readyz/etcd`…), if `path` is one.
    async fn health(&self, path: &str, query: &Query) -> Option<Res> {
        let endpoint = health::ENDPOINTS
            .into_iter()
            .find(|e| path.starts_with(e))?;
        let text = |(code, body): (StatusCode, String)| {
            Ok(response::text(code, body, "text/plain; charset=utf-8"))
        };
        match &path[endpoint.len()..] {
            "" => {
                let results = self.health.run(None).await?;
                let verbose = query.contains_key("verbose");
                Some(text(health::answer(&endpoint[1..], &results, verbose)))
            }
            one => {
                let name = one.strip_prefix('/')?;
                let results = self.health.run(Some(name)).await;
                Some(match results {
                    Some(r) => text(health::answer_one(name, r[0].1)),
                    None => Err(not_found()),
                })
            }
        }
    }

    /// Everything else, which needs nothing but what the server holds.
    fn serve_static(&self, path: &str, accept: &str) -> Res {
        let ok = |v: Value| Ok(response::json(StatusCode::OK, &v));
        match path {
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
