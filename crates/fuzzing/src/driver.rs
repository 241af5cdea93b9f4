//! A stable fuzz driver, for CI and for machines without a nightly toolchain: it feeds a
//! target its corpus, then mutations of it — bit flips, inserted, removed and overwritten
//! bytes, boundary values, a splice of two inputs, a repeated slice — from a seeded
//! generator, until its budget of runs or time is spent. It has no coverage guidance (that
//! is what `cargo fuzz` adds); a panic fails the run, naming the input.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

/// When to stop.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// After this many runs.
    Runs(u64),
    /// After this long (checked every 1,000 runs).
    Time(Duration),
}

/// What a run did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// Inputs the target was given.
    pub runs: u64,
}

/// An input that made the target panic.
#[derive(Debug)]
pub struct Crash {
    /// The input.
    pub input: Vec<u8>,
    /// What the panic said.
    pub message: String,
}

/// Runs `target` on `corpus` and then on mutations of it, within `budget`.
pub fn run(
    target: fn(&[u8]),
    corpus: &[Vec<u8>],
    seed: u64,
    budget: Budget,
) -> Result<Report, Crash> {
    #[allow(clippy::disallowed_methods, reason = "the fuzzing budget is real time")]
    let started = Instant::now();
    let mut rng = XorShift(seed | 1);
    let mut runs = 0u64;
    let empty = [Vec::new()];
    let pool = if corpus.is_empty() {
        &empty[..]
    } else {
        corpus
    };
    let mut input = Vec::new();
    loop {
        let done = match budget {
            Budget::Runs(n) => runs >= n,
            Budget::Time(t) => runs.is_multiple_of(1000) && started.elapsed() >= t,
        };
        if done {
            return Ok(Report { runs });
        }
        input.clear();
        match usize::try_from(runs).ok().and_then(|i| pool.get(i)) {
            Some(seed_input) => input.extend_from_slice(seed_input),
            None => {
                input.extend_from_slice(&pool[rng.below(pool.len())]);
                for _ in 0..=rng.below(4) {
                    mutate(&mut input, pool, &mut rng);
                }
            }
        }
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| target(&input))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            return Err(Crash { input, message });
        }
        runs += 1;
    }
}

/// One mutation of `input`.
fn mutate(input: &mut Vec<u8>, pool: &[Vec<u8>], rng: &mut XorShift) {
    const BOUNDARY: [u8; 12] = [
        0, 1, 0x7f, 0x80, 0xff, b'"', b'\\', b'{', b'}', b'[', b':', b'.',
    ];
    let len = input.len();
    match rng.below(7) {
        0 if len > 0 => {
            let i = rng.below(len);
            input[i] ^= 1 << rng.below(8);
        }
        1 => {
            let at = rng.below(len + 1);
            input.insert(at, BOUNDARY[rng.below(BOUNDARY.len())]);
        }
        2 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(16));
            input.drain(at..at + n);
        }
        3 if len > 0 => {
            let i = rng.below(len);
            input[i] = rng.next() as u8;
        }
        4 => {
            let other = &pool[rng.below(pool.len())];
            let keep = rng.below(len + 1);
            let from = rng.below(other.len() + 1);
            input.truncate(keep);
            input.extend_from_slice(&other[from..]);
        }
        5 if len > 0 && len < 1 << 16 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            let slice = input[at..at + n].to_vec();
            for _ in 0..1 + rng.below(8) {
                input.splice(at..at, slice.iter().copied());
            }
        }
        _ => {
            let at = rng.below(len + 1);
            let n = rng.below(8);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            input.splice(at..at, bytes);
        }
    }
}

/// xorshift64: small, seeded, good enough to pick mutations.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform enough in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_target_is_caught_with_its_input() {
        fn picky(data: &[u8]) {
            assert!(!data.contains(&b'!'), "found it");
        }
        let crash = run(picky, &[b"hello".to_vec()], 7, Budget::Runs(100_000))
            .expect_err("a mutation inserts or flips into '!'");
        assert!(crash.input.contains(&b'!'));
        assert!(crash.message.contains("found it"), "{}", crash.message);
    }

    #[test]
    fn the_corpus_is_run_first_and_the_budget_is_kept() {
        let report = run(|_| {}, &[b"a".to_vec(), b"b".to_vec()], 1, Budget::Runs(50)).unwrap();
        assert_eq!(report.runs, 50);
    }
}
