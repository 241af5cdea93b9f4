//! When a watch that allows bookmarks is sent one, as kube-apiserver's watch cache
//! schedules them (`cacheWatcher.nextBookmarkTime`): about once a minute, and two seconds
//! before the watch's own timeout, so that a client resumes from a recent resourceVersion
//! however selective its watch. A bookmark carries the revision the cache has reached —
//! changes the watcher's selector filtered out included — and is sent only when that is
//! newer than the revision the watch started from (`cacheWatcher.process`: it may repeat the
//! last event's, as kube-apiserver's does).

use std::time::Duration;

use tokio::time::Instant;

/// How often a watch is sent a bookmark (kube-apiserver's `bookmarkFrequency`).
pub const FREQUENCY: Duration = Duration::from_secs(60);

/// How long before its timeout a watch is sent its last bookmark.
pub const BEFORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The annotation that marks the bookmark ending a streaming list's initial events.
pub const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// When the next bookmark is due, at `now`, for a watch that ends at `deadline`; `None`
/// when the watch ends before one would be.
pub fn next_due(now: Instant, deadline: Instant) -> Option<Instant> {
    let heartbeat = now + FREQUENCY;
    let last = deadline.checked_sub(BEFORE_TIMEOUT)?;
    let due = heartbeat.min(last);
    (due >= now).then_some(due)
}

/// Whether a bookmark at `revision` goes to a watch that started at revision `start`.
pub fn worth_sending(revision: i64, start: i64) -> bool {
    revision > start
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bookmarks_come_every_minute_and_just_before_the_timeout() {
        let now = Instant::now();
        let s = Duration::from_secs;
        // (case, watch ends after, next bookmark after)
        for (case, ends_in, want) in [
            ("a long watch: in a minute", s(1800), Some(s(60))),
            ("ends in 30 s: 2 s before", s(30), Some(s(28))),
            (
                "ends in 62 s: the minute and the pre-timeout coincide",
                s(62),
                Some(s(60)),
            ),
            ("ends in exactly 2 s: now", s(2), Some(s(0))),
            ("ends in 1 s: none", s(1), None),
            ("already ended: none", s(0), None),
        ] {
            let got = next_due(now, now + ends_in).map(|t| t - now);
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn a_bookmark_is_sent_only_past_the_version_the_watch_started_from() {
        assert!(worth_sending(8, 7));
        assert!(
            !worth_sending(7, 7),
            "nothing has happened since the watch began"
        );
        assert!(!worth_sending(6, 7));
    }
}
