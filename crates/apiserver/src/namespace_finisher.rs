//! What a namespace deletion began, the server finishes. A DELETE of a namespace marks it
//! Terminating, deletes what is in it and then the namespace, all within the request; if
//! the server stops or the store fails midway, the namespace would stay Terminating (and
//! refuse new content) for good. So at start, and every minute after, the server finishes
//! each namespace that has been Terminating for longer than a request can take — as
//! Kubernetes' namespace controller keeps at a namespace until it is gone.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubeboot_api::clock::parse_rfc3339;
use serde_json::Value;

use crate::admission::namespace_lifecycle;
use crate::http::App;
use crate::registry;

/// How often Terminating namespaces are looked for.
const EVERY: Duration = Duration::from_secs(60);
/// How long a deletion may be in its request before it counts as interrupted.
const STALLED_AFTER: Duration = Duration::from_secs(60);

/// Starts finishing interrupted namespace deletions, now and every minute.
pub fn spawn(app: Arc<App>) {
    let weak = Arc::downgrade(&app);
    drop(app);
    tokio::spawn(async move {
        let mut at_start = true;
        loop {
            let Some(app) = weak.upgrade() else { return };
            finish_stalled(&app, at_start).await;
            drop(app);
            at_start = false;
            tokio::time::sleep(EVERY).await;
        }
    });
}

async fn finish_stalled(app: &App, at_start: bool) {
    let def = registry::by_kind(registry::Kind::Namespace);
    let Ok(page) = app.store.list(&def.ns_prefix(""), None, None).await else {
        return;
    };
    let now = app.clock.now();
    for kv in page.items {
        let Ok(namespace) = serde_json::from_slice::<Value>(&kv.value) else {
            continue;
        };
        if !is_stalled(&namespace, now, at_start) {
            continue;
        }
        let name = crate::object::meta_str(&namespace, "name").to_owned();
        match app.finish_namespace_deletion(&name).await {
            Ok(true) => {
                tracing::info!(namespace = %name, "finished an interrupted namespace deletion")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(namespace = %name, error = %e.message, "cannot finish deleting the namespace yet; retrying in a minute")
            }
        }
    }
}

/// Whether a namespace's deletion was interrupted: it is Terminating, and at the server's
/// start (no request can be deleting it) or for longer than [`STALLED_AFTER`].
fn is_stalled(namespace: &Value, now: SystemTime, at_start: bool) -> bool {
    if !namespace_lifecycle::is_terminating(namespace) {
        return false;
    }
    let since = namespace
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339);
    at_start || since.is_none_or(|t| now.duration_since(t).is_ok_and(|d| d > STALLED_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deletion_is_finished_when_interrupted() {
        let now = parse_rfc3339("2026-12-04T12:00:00Z").unwrap();
        let ns = |phase: &str, deleted: Option<&str>| {
            let mut v = json!({"metadata": {"name": "x"}, "status": {"phase": phase}});
            if let Some(t) = deleted {
                v["metadata"]["deletionTimestamp"] = json!(t);
            }
            v
        };
        for (case, namespace, at_start, want) in [
            ("active", ns("Active", None), true, false),
            (
                "terminating at start",
                ns("Terminating", Some("2026-12-04T11:59:59Z")),
                true,
                true,
            ),
            (
                "terminating for a second",
                ns("Terminating", Some("2026-12-04T11:59:59Z")),
                false,
                false,
            ),
            (
                "terminating for two minutes",
                ns("Terminating", Some("2026-12-04T11:58:00Z")),
                false,
                true,
            ),
            (
                "terminating since no one knows",
                ns("Terminating", None),
                false,
                true,
            ),
        ] {
            assert_eq!(is_stalled(&namespace, now, at_start), want, "{case}");
        }
    }
}
