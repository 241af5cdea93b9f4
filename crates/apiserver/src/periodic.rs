//! The server's own rounds of work (finishing namespace deletions, deleting expired
//! Events): one task each, run at start and then every period, for as long as the
//! server's handlers live.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::handlers::Handlers;

/// Runs `round` now and then every `period` until the handlers are dropped; `round` is told
/// whether it is the first.
pub fn every<F, Fut>(handlers: Arc<Handlers>, period: Duration, round: F)
where
    F: Fn(Arc<Handlers>, bool) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let weak = Arc::downgrade(&handlers);
    drop(handlers);
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let Some(handlers) = weak.upgrade() else {
                return;
            };
            round(handlers, first).await;
            first = false;
            tokio::time::sleep(period).await;
        }
    });
}
