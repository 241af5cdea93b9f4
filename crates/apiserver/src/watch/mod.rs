//! Watches: the cache that fans one store watch out to every client (`cache`), objects
//! followed through it (`followed`), what a selective watcher is sent (`selection`), when
//! bookmarks are due (`bookmark`), the lines on the wire (`frames`), and here the stream of
//! one client watch that joins them.

pub mod bookmark;
pub mod cache;
pub mod followed;
pub mod frames;
pub mod resource_version;
pub mod selection;

use std::sync::Arc;

use bytes::Bytes;
use futures::Stream;
use kubeboot_store::Revision;
use serde_json::Value;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::time::Instant;

use self::cache::{CachedEvent, EventType, WatchCache, WatchHandle};
use self::frames::Frames;
use self::selection::{State, delivered};
use crate::selectors::Selector;

/// One client watch, as its request asked for it.
pub struct ClientWatch {
    /// What it selects.
    pub selector: Selector,
    /// How its lines are written.
    pub frames: Frames,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `sendInitialEvents=true`: the initial events end with an annotated bookmark.
    pub streaming_list: bool,
    /// When it ends (`timeoutSeconds`).
    pub deadline: Instant,
    /// The revision its client has seen: the initial state's, or the one it resumes from.
    pub start: Revision,
}

impl ClientWatch {
    /// The lines of the watch: `initial` objects as ADDED (those selected), the bookmark
    /// ending them for a streaming list, the events the cache held for it, then each change
    /// as it comes, and bookmarks when due, until the deadline or the cache drops it.
    pub fn lines(
        self,
        initial: Vec<Value>,
        handle: WatchHandle,
        cache: Arc<WatchCache>,
    ) -> impl Stream<Item = Bytes> + Send + 'static {
        let mut first: Vec<Bytes> = initial
            .into_iter()
            .filter(|o| self.selector.is_everything() || self.selector.matches(o))
            .map(|o| self.frames.object(EventType::Added.as_str(), o))
            .collect();
        if self.streaming_list {
            first.push(self.frames.bookmark(self.start, true));
        }
        first.extend(handle.backlog.iter().filter_map(|e| self.line(e)));
        let due = self
            .bookmarks
            .then(|| bookmark::next_due(Instant::now(), self.deadline))
            .flatten();
        let live = Live {
            watch: self,
            handle,
            cache,
            due,
        };
        futures::stream::iter(first).chain(futures::stream::unfold(live, Live::next))
    }

    /// The line a cached event makes for this watcher, if its selection lets one through.
    fn line(&self, e: &CachedEvent) -> Option<Bytes> {
        if self.selector.is_everything() {
            return Some(self.frames.event(e, e.kind, State::New));
        }
        // A storage key ends with the object's name.
        let name = e.key.rsplit('/').next().unwrap_or_default();
        if let Some(selected) = self.selector.matches_name(name) {
            return selected.then(|| self.frames.event(e, e.kind, State::New));
        }
        let new_matches = self.selector.matches(&e.object());
        let replaced_matches = match e.kind {
            EventType::Modified => e.prev_object().map(|p| self.selector.matches(&p)),
            _ => None,
        };
        let (ty, state) = delivered(e.kind, new_matches, replaced_matches)?;
        Some(self.frames.event(e, ty, state))
    }
}

use futures::StreamExt as _;

/// A watch after its first lines: waiting for events, bookmarks and its deadline.
struct Live {
    watch: ClientWatch,
    handle: WatchHandle,
    cache: Arc<WatchCache>,
    /// When the next bookmark is due.
    due: Option<Instant>,
}

impl Live {
    async fn next(mut self) -> Option<(Bytes, Self)> {
        loop {
            let due = self.due;
            tokio::select! {
                ev = self.handle.rx.recv() => {
                    let ev = ev?;
                    if let Some(line) = self.watch.line(&ev) {
                        return Some((line, self));
                    }
                }
                () = tokio::time::sleep_until(self.watch.deadline) => return None,
                () = sleep_until_due(due), if due.is_some() => {
                    // Every event up to the cache's revision is queued for this watcher
                    // before the revision shows: take those first, then bookmark.
                    let revision = self.cache.revision();
                    match self.handle.rx.try_recv() {
                        Ok(ev) => {
                            if let Some(line) = self.watch.line(&ev) {
                                return Some((line, self));
                            }
                            continue;
                        }
                        Err(TryRecvError::Disconnected) => return None,
                        Err(TryRecvError::Empty) => {}
                    }
                    self.due = bookmark::next_due(Instant::now(), self.watch.deadline);
                    if bookmark::worth_sending(revision, self.watch.start) {
                        return Some((self.watch.frames.bookmark(revision, false), self));
                    }
                }
            }
        }
    }
}

async fn sleep_until_due(due: Option<Instant>) {
    if let Some(at) = due {
        tokio::time::sleep_until(at).await;
    }
}
