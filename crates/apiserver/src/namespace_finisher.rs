//! What a namespace deletion began, the server finishes. A DELETE of a namespace marks it
//! Terminating, deletes what is in it and then the namespace, all within the request; if
//! the server stops or the store fails midway, the namespace would stay Terminating (and
//! refuse new content) for good. So at start, and every minute after, the server finishes
//! each namespace that has been Terminating for longer than a request can take — as
//! Kubernetes' namespace controller keeps at a namespace until it is gone.

use std::sync::Arc;
use std::time::Duration;

use crate::handlers::Handlers;

/// How often Terminating namespaces are looked for.
const EVERY: Duration = Duration::from_secs(60);

/// Starts finishing interrupted namespace deletions, now and every minute.
pub fn spawn(handlers: Arc<Handlers>) {
    crate::periodic::every(handlers, EVERY, |handlers, at_start| async move {
        handlers.finish_stalled_namespace_deletions(at_start).await;
    });
}
