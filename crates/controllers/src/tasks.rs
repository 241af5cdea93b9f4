//! The tasks of one run of the controllers (informers, workers, delayed requeues), stopped
//! together by cancellation: when the leader Lease is lost or the process stops, each ends
//! at its next await, and `stop` returns once every one has ended.

use std::future::Future;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A group of tasks cancelled together.
#[derive(Clone, Debug)]
pub struct Tasks {
    cancel: CancellationToken,
    tracker: TaskTracker,
}

impl Default for Tasks {
    fn default() -> Self {
        Self {
            cancel: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }
}

impl Tasks {
    /// Runs `task` until it ends or the group is stopped.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let cancel = self.cancel.clone();
        self.tracker.spawn(async move {
            cancel.run_until_cancelled(task).await;
        });
    }

    /// Cancels every task of the group and waits until all have ended; tasks spawned
    /// afterwards end at once.
    pub async fn stop(&self) {
        self.cancel.cancel();
        self.tracker.close();
        self.tracker.wait().await;
    }

    /// Whether the group has been stopped.
    pub fn is_stopped(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts the tasks still running: each holds a guard that decrements on drop.
    struct Alive(Arc<AtomicUsize>);
    impl Drop for Alive {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn stop_ends_every_task_including_ones_they_spawned() {
        let tasks = Tasks::default();
        let alive = Arc::new(AtomicUsize::new(0));
        for _ in 0..3 {
            alive.fetch_add(1, Ordering::SeqCst);
            let (guard, inner, inner_alive) = (Alive(alive.clone()), tasks.clone(), alive.clone());
            tasks.spawn(async move {
                let _guard = guard;
                inner_alive.fetch_add(1, Ordering::SeqCst);
                let nested = Alive(inner_alive.clone());
                inner.spawn(async move {
                    let _nested = nested;
                    std::future::pending::<()>().await;
                });
                std::future::pending::<()>().await;
            });
        }
        tokio::task::yield_now().await;
        assert!(alive.load(Ordering::SeqCst) >= 3);
        tasks.stop().await;
        assert_eq!(alive.load(Ordering::SeqCst), 0, "every task has ended");
        assert!(tasks.is_stopped());
        // A task spawned after the stop never runs its body.
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        tasks.spawn(async move {
            tokio::task::yield_now().await;
            r.fetch_add(1, Ordering::SeqCst);
        });
        tasks.stop().await;
        assert_eq!(ran.load(Ordering::SeqCst), 0);
    }
}
