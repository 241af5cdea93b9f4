//! Per-address token buckets for anonymous requests: discovery is open to anyone, so one
//! address may not flood it. Over the limit is `429` with `Retry-After`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use tokio::time::Instant;

/// `--anonymous-requests-per-second` and `--anonymous-burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Sustained requests per second per address.
    pub per_second: f64,
    /// Requests an address may make at once.
    pub burst: u32,
}

/// The buckets, one per client address.
pub struct Limiter {
    limit: RateLimit,
    /// `(tokens, last refill)` per address; guarded by the lock.
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

/// The most addresses tracked; idle full buckets are forgotten first.
const MAX_ADDRESSES: usize = 65_536;

impl Limiter {
    /// A limiter.
    pub fn new(limit: RateLimit) -> Self {
        Self {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `addr`'s bucket: `Ok`, or `Err(seconds to wait)`.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), u32> {
        let mut b = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if b.len() >= MAX_ADDRESSES && !b.contains_key(&addr) {
            let (limit, now_) = (self.limit, now);
            b.retain(|_, (tokens, last)| {
                refill(*tokens, *last, now_, limit) < f64::from(limit.burst)
            });
        }
        let (tokens, last) = b.entry(addr).or_insert((f64::from(self.limit.burst), now));
        let available = refill(*tokens, *last, now, self.limit);
        *last = now;
        if available >= 1.0 {
            *tokens = available - 1.0;
            Ok(())
        } else {
            *tokens = available;
            let wait = (1.0 - available) / self.limit.per_second;
            Err(wait.ceil().max(1.0) as u32)
        }
    }
}

fn refill(tokens: f64, last: Instant, now: Instant, limit: RateLimit) -> f64 {
    let elapsed = now.saturating_duration_since(last).as_secs_f64();
    (tokens + elapsed * limit.per_second).min(f64::from(limit.burst))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bursts_then_throttles_then_refills_per_address() {
        let l = Limiter::new(RateLimit {
            per_second: 2.0,
            burst: 3,
        });
        let t0 = Instant::now();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(l.check(a, t0), Ok(()));
        }
        assert_eq!(l.check(a, t0), Err(1));
        assert_eq!(
            l.check(b, t0),
            Ok(()),
            "other addresses have their own bucket"
        );
        assert_eq!(
            l.check(a, t0 + Duration::from_millis(600)),
            Ok(()),
            "refilled at 2/s"
        );
        assert_eq!(l.check(a, t0 + Duration::from_millis(600)), Err(1));
    }
}
