//! Latency percentiles and rates, as pure arithmetic.

use std::time::Duration;

/// A summary of latencies.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Summary {
    /// Samples.
    pub count: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
}

/// The `q`-quantile (0..=1) of sorted samples, nearest-rank: the smallest sample with at
/// least `q` of the samples at or below it.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises samples (sorting them).
pub fn summarize(samples: &mut [Duration]) -> Summary {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Summary {
        count: samples.len(),
        p50_ms: ms(percentile(samples, 0.50)),
        p90_ms: ms(percentile(samples, 0.90)),
        p99_ms: ms(percentile(samples, 0.99)),
        max_ms: ms(samples.last().copied().unwrap_or_default()),
    }
}

/// Operations per second.
pub fn rate(count: usize, elapsed: Duration) -> f64 {
    if elapsed.is_zero() {
        0.0
    } else {
        count as f64 / elapsed.as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|x| Duration::from_millis(*x)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = ms(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        for (q, want) in [
            (0.5, 5),
            (0.9, 9),
            (0.99, 10),
            (1.0, 10),
            (0.0, 1),
            (0.11, 2),
        ] {
            assert_eq!(percentile(&s, q), Duration::from_millis(want), "q={q}");
        }
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        assert_eq!(percentile(&ms(&[7]), 0.99), Duration::from_millis(7));
    }

    #[test]
    fn summaries_sort_their_samples() {
        let mut s = ms(&[30, 10, 20]);
        let sum = summarize(&mut s);
        assert_eq!((sum.count, sum.p50_ms, sum.max_ms), (3, 20.0, 30.0));
        assert_eq!(rate(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(rate(5, Duration::ZERO), 0.0);
    }
}
