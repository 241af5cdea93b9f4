//! `--event-ttl`: an Event lives this long after it was last written (kube-apiserver gives
//! each Event an etcd lease of the TTL, renewed by every write; 1 h by default). The server
//! deletes expired Events at start and every minute (or every TTL, when shorter), so a
//! cluster's events never pile up.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kubeboot_api::clock::parse_rfc3339;
use serde_json::Value;

use crate::handlers::Handlers;

/// How often expired Events are looked for.
const EVERY: Duration = Duration::from_secs(60);

/// When an Event was last written, as far as it says: the latest of its creation (which
/// the server stamps), its `lastTimestamp`, its `eventTime` and its series'
/// `lastObservedTime` (which the writer stamps: one in the future is not believed, so no
/// writer keeps an Event for ever).
pub fn last_written(event: &Value, now: SystemTime) -> Option<SystemTime> {
    [
        "/metadata/creationTimestamp",
        "/lastTimestamp",
        "/eventTime",
        "/series/lastObservedTime",
    ]
    .iter()
    .filter_map(|p| event.pointer(p).and_then(Value::as_str))
    .filter_map(parse_rfc3339)
    .filter(|t| *t <= now)
    .max()
}

/// Whether an Event has outlived `ttl` at `now`.
pub fn expired(event: &Value, ttl: Duration, now: SystemTime) -> bool {
    last_written(event, now).is_some_and(|t| t + ttl <= now)
}

/// Starts deleting expired Events, now and every minute (every `ttl` when shorter).
pub fn spawn(handlers: Arc<Handlers>, ttl: Duration) {
    crate::periodic::every(handlers, EVERY.min(ttl), move |handlers, _| async move {
        handlers.delete_expired_events(ttl).await;
    });
}

impl Handlers {
    /// Deletes every Event older than `ttl` (a failure is retried at the next round).
    pub async fn delete_expired_events(&self, ttl: Duration) {
        let def = crate::registry::by_kind(crate::registry::Kind::Event);
        let Ok(events) = self.objects(def, "").await else {
            return;
        };
        let now = self.now();
        let mut deleted = 0usize;
        for e in events.iter().filter(|e| expired(e, ttl, now)) {
            let (ns, name) = (
                crate::object::meta_str(e, "namespace"),
                crate::object::meta_str(e, "name"),
            );
            // Only the version seen expired: one written meanwhile is kept.
            let opts = serde_json::json!({"preconditions": {
                "uid": crate::object::meta_str(e, "uid"),
                "resourceVersion": crate::object::meta_str(e, "resourceVersion"),
            }});
            if self.delete(def, ns, name, Some(opts)).await.is_ok() {
                deleted += 1;
            }
        }
        if deleted > 0 {
            tracing::info!(deleted, ?ttl, "deleted expired events");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_event_expires_a_ttl_after_its_last_write() {
        let at = |s: &str| parse_rfc3339(s).expect("time");
        let ttl = Duration::from_secs(3600);
        let ev = json!({"metadata": {"creationTimestamp": "2026-12-06T10:00:00Z"},
            "lastTimestamp": "2026-12-06T10:30:00Z"});
        let later = at("2026-12-06T11:00:00Z");
        assert_eq!(last_written(&ev, later), Some(at("2026-12-06T10:30:00Z")));
        assert!(!expired(&ev, ttl, at("2026-12-06T11:29:59Z")));
        assert!(expired(&ev, ttl, at("2026-12-06T11:30:00Z")));
        let series = json!({"eventTime": "2026-12-06T10:00:00.000000Z",
            "series": {"lastObservedTime": "2026-12-06T12:00:00.000000Z"}});
        assert_eq!(
            last_written(&series, at("2026-12-06T12:30:00Z")),
            Some(at("2026-12-06T12:00:00Z"))
        );
        let future = json!({"metadata": {"creationTimestamp": "2026-12-06T10:00:00Z"},
            "lastTimestamp": "2099-01-01T00:00:00Z"});
        assert!(
            expired(&future, ttl, at("2026-12-06T11:00:00Z")),
            "a time to come is not believed"
        );
        assert!(
            !expired(&json!({}), ttl, at("2030-01-01T00:00:00Z")),
            "no time: kept"
        );
    }
}
