//! The latest values of the embedded store's busiest keys, so that most point reads need no
//! SQLite read: the bootstrap-token Secrets every token request authenticates against,
//! `cluster-info` that every joining node fetches, the CSRs being approved and signed.
//!
//! The cache is exact, not merely fresh: one writer thread commits everything, and it marks
//! the keys of a batch in flight before the commit and sets their new values after it, before
//! any writer is answered. A read that finds a key in flight reads SQLite, as it would with no
//! cache; a read that misses fills the cache only if no batch began while it read, so a value
//! read before a commit can never be put back after it. Memory is bounded by bytes, and the
//! values evicted are those not read since they were last considered (CLOCK).

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use crate::KeyValue;

/// What a lookup found.
pub(crate) enum Lookup {
    /// The key's current value.
    Hit(KeyValue),
    /// Not known here: read the store, then offer the value to [`Latest::fill`] with this.
    Miss(u64),
}

enum Slot {
    Value {
        kv: KeyValue,
        referenced: bool,
    },
    /// A batch writing this key is committing.
    InFlight,
}

#[derive(Default)]
struct State {
    map: HashMap<String, Slot>,
    /// Keys in the order CLOCK visits them (may hold keys since removed).
    clock: VecDeque<String>,
    bytes: usize,
    /// Batches begun, so a read can tell whether one began while it read.
    batches: u64,
}

/// The cache (see the module comment).
pub(crate) struct Latest {
    state: Mutex<State>,
    max_bytes: usize,
}

fn size(kv: &KeyValue) -> usize {
    kv.key.len() + kv.value.len()
}

impl Latest {
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            state: Mutex::default(),
            max_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &str) -> Lookup {
        let mut s = self.lock();
        let batches = s.batches;
        match s.map.get_mut(key) {
            Some(Slot::Value { kv, referenced }) => {
                *referenced = true;
                Lookup::Hit(kv.clone())
            }
            _ => Lookup::Miss(batches),
        }
    }

    /// Offers a value read from the store after [`Lookup::Miss`]`(seen)`.
    pub(crate) fn fill(&self, seen: u64, kv: &KeyValue) {
        let mut s = self.lock();
        if s.batches != seen || s.map.contains_key(&kv.key) {
            return;
        }
        self.insert(&mut s, kv.clone());
    }

    /// Before a batch commits: its keys are in flight until [`Latest::end`].
    pub(crate) fn begin<'a>(&self, keys: impl Iterator<Item = &'a str>) {
        let mut s = self.lock();
        s.batches += 1;
        for key in keys {
            if let Some(Slot::Value { kv, .. }) = s.map.get(key) {
                s.bytes -= size(kv);
            }
            if s.map.insert(key.to_owned(), Slot::InFlight).is_none() {
                s.clock.push_back(key.to_owned());
            }
        }
    }

    /// After a batch: each key's value now (`None`: deleted, refused or failed — read the
    /// store).
    pub(crate) fn end<'a>(&self, outcomes: impl Iterator<Item = (&'a str, Option<&'a KeyValue>)>) {
        let mut s = self.lock();
        for (key, kv) in outcomes {
            match kv {
                Some(kv) => self.insert(&mut s, kv.clone()),
                None => {
                    if let Some(Slot::Value { kv, .. }) = s.map.remove(key) {
                        s.bytes -= size(&kv);
                    }
                }
            }
        }
        if s.clock.len() > 2 * s.map.len() + 64 {
            let State { map, clock, .. } = &mut *s;
            clock.retain(|k| map.contains_key(k));
        }
    }

    fn insert(&self, s: &mut State, kv: KeyValue) {
        let n = size(&kv);
        if n > self.max_bytes / 4 {
            if let Some(Slot::Value { kv: old, .. }) = s.map.remove(&kv.key) {
                s.bytes -= size(&old);
            }
            return;
        }
        let key = kv.key.clone();
        let replaced = s.map.insert(
            key.clone(),
            Slot::Value {
                kv,
                referenced: false,
            },
        );
        match replaced {
            Some(Slot::Value { kv: old, .. }) => s.bytes -= size(&old),
            Some(Slot::InFlight) => {}
            None => s.clock.push_back(key),
        }
        s.bytes += n;
        self.evict(s);
    }

    /// CLOCK: visits keys in order, sparing (once) those read since the last visit, until the
    /// values fit; in-flight keys stay.
    fn evict(&self, s: &mut State) {
        let mut visits = 2 * s.clock.len();
        while s.bytes > self.max_bytes && visits > 0 {
            visits -= 1;
            let Some(key) = s.clock.pop_front() else {
                break;
            };
            match s.map.get_mut(&key) {
                None => {}
                Some(Slot::InFlight) => s.clock.push_back(key),
                Some(Slot::Value { referenced, .. }) if *referenced => {
                    *referenced = false;
                    s.clock.push_back(key);
                }
                Some(Slot::Value { .. }) => {
                    if let Some(Slot::Value { kv, .. }) = s.map.remove(&key) {
                        s.bytes -= size(&kv);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn kv(key: &str, value: &str, rev: i64) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Bytes::from(value.to_owned()),
            create_revision: 1,
            mod_revision: rev,
        }
    }

    fn hit(c: &Latest, key: &str) -> Option<(String, i64)> {
        match c.get(key) {
            Lookup::Hit(kv) => Some((
                String::from_utf8(kv.value.to_vec()).unwrap(),
                kv.mod_revision,
            )),
            Lookup::Miss(_) => None,
        }
    }

    #[test]
    fn a_write_is_read_back_and_a_delete_or_refusal_falls_back_to_the_store() {
        let c = Latest::new(1 << 20);
        c.begin(["a", "b"].into_iter());
        assert!(hit(&c, "a").is_none(), "in flight: read the store");
        let a = kv("a", "1", 2);
        c.end([("a", Some(&a)), ("b", None)].into_iter());
        assert_eq!(hit(&c, "a"), Some(("1".into(), 2)));
        assert!(hit(&c, "b").is_none());
        c.begin(["a"].into_iter());
        c.end([("a", None)].into_iter());
        assert!(hit(&c, "a").is_none(), "deleted");
    }

    #[test]
    fn a_read_that_raced_a_batch_is_not_cached() {
        let c = Latest::new(1 << 20);
        let Lookup::Miss(seen) = c.get("k") else {
            panic!("empty cache")
        };
        // A batch begins and commits a new value while the read is in SQLite.
        c.begin(["k"].into_iter());
        let new = kv("k", "new", 3);
        c.end([("k", Some(&new))].into_iter());
        c.fill(seen, &kv("k", "old", 2));
        assert_eq!(hit(&c, "k"), Some(("new".into(), 3)));
        // Even for a key the batch did not write: the read may predate any commit.
        let Lookup::Miss(seen) = c.get("other") else {
            panic!()
        };
        c.begin(["x"].into_iter());
        c.end([("x", None)].into_iter());
        c.fill(seen, &kv("other", "v", 1));
        assert!(hit(&c, "other").is_none());
        // With no batch in between, the read is current and is kept.
        let Lookup::Miss(seen) = c.get("other") else {
            panic!()
        };
        c.fill(seen, &kv("other", "v", 1));
        assert_eq!(hit(&c, "other"), Some(("v".into(), 1)));
    }

    #[test]
    fn memory_is_bounded_and_values_read_often_stay() {
        let c = Latest::new(10 * 16);
        let hot = kv("hot", "0123456789ab", 1);
        c.begin(["hot"].into_iter());
        c.end([("hot", Some(&hot))].into_iter());
        for i in 0..100 {
            assert!(hit(&c, "hot").is_some(), "the hot key survives write {i}");
            let key = format!("k{i:03}");
            let v = kv(&key, "0123456789a", i);
            c.begin([key.as_str()].into_iter());
            c.end([(key.as_str(), Some(&v))].into_iter());
            let s = c.lock();
            assert!(s.bytes <= 160, "{} bytes", s.bytes);
            assert!(s.clock.len() <= 2 * s.map.len() + 64 + 1);
        }
        assert!(hit(&c, "k099").is_some(), "the newest value is kept");
        assert!(
            hit(&c, "k000").is_none(),
            "old ones not read again are evicted"
        );
    }

    #[test]
    fn a_value_too_big_to_keep_leaves_nothing_behind() {
        let c = Latest::new(64);
        let big = kv("big", &"x".repeat(40), 2);
        c.begin(["big"].into_iter());
        c.end([("big", Some(&big))].into_iter());
        assert!(hit(&c, "big").is_none());
        let Lookup::Miss(seen) = c.get("big") else {
            panic!()
        };
        c.fill(seen, &big);
        assert!(hit(&c, "big").is_none());
        let s = c.lock();
        assert!(s.map.is_empty() && s.bytes == 0);
    }
}
