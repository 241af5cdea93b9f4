//! Key material read again when its files change, as kube-apiserver reloads
//! `--tls-cert-file`, `--tls-private-key-file` and `--client-ca-file` and
//! kube-controller-manager its `--cluster-signing-*-file`s without a restart
//! (`dynamiccertificates`): a CA rotation replaces files, and every reader sees the new
//! content within the check interval. Files that do not parse together (a certificate
//! written before its key) leave the last good content in use until they do.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use kubeboot_api::Clock;

/// How often key material is looked at by default (at most; only when it is used).
pub const DEFAULT_EVERY: Duration = Duration::from_secs(1);

/// How a set of files' texts become the value they hold.
pub type Parse<T> = Box<dyn Fn(&[String]) -> Result<T, String> + Send + Sync>;

/// A value parsed from files, parsed again when their contents change.
pub struct Reloading<T> {
    paths: Vec<PathBuf>,
    parse: Parse<T>,
    every: Duration,
    clock: Arc<dyn Clock>,
    state: Mutex<State<T>>,
}

struct State<T> {
    checked: SystemTime,
    texts: Vec<String>,
    /// Contents that did not parse, so that they are not parsed (and reported) again.
    rejected: Vec<String>,
    value: Arc<T>,
}

impl<T> Reloading<T> {
    /// Reads and parses `paths` now (an error if they do not parse), and again at most
    /// once per `every` of `clock` when read.
    pub fn open(
        paths: Vec<PathBuf>,
        every: Duration,
        clock: Arc<dyn Clock>,
        parse: Parse<T>,
    ) -> Result<Self, String> {
        let texts = read_all(&paths)?;
        let value = Arc::new(parse(&texts)?);
        Ok(Self {
            paths,
            parse,
            every,
            state: Mutex::new(State {
                checked: clock.now(),
                texts,
                rejected: Vec::new(),
                value,
            }),
            clock,
        })
    }

    /// Reads `paths` as [`Reloading::open`] does, on the wall clock, checking every
    /// [`DEFAULT_EVERY`].
    pub fn files(paths: Vec<PathBuf>, parse: Parse<T>) -> Result<Self, String> {
        Self::open(
            paths,
            DEFAULT_EVERY,
            Arc::new(kubeboot_api::SystemClock),
            parse,
        )
    }

    /// A value that never changes.
    pub fn fixed(value: T) -> Self {
        Self {
            paths: Vec::new(),
            parse: Box::new(|_| Err("fixed".into())),
            every: Duration::MAX,
            clock: Arc::new(kubeboot_api::SystemClock),
            state: Mutex::new(State {
                checked: SystemTime::UNIX_EPOCH,
                texts: Vec::new(),
                rejected: Vec::new(),
                value: Arc::new(value),
            }),
        }
    }

    /// The current value: the files are read again when `every` has passed since the last
    /// look, and parsed when their contents changed. The reading and parsing happen
    /// outside the lock: other readers get the value held meanwhile.
    pub fn get(&self) -> Arc<T> {
        let (known, rejected) = {
            let mut state = self.lock();
            let now = self.clock.now();
            // A clock set back counts as time passed.
            let due = now
                .duration_since(state.checked)
                .map_or(true, |waited| waited >= self.every);
            if self.paths.is_empty() || !due {
                return state.value.clone();
            }
            state.checked = now;
            (state.texts.clone(), state.rejected.clone())
        };
        self.refresh(&known, &rejected);
        self.lock().value.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the files; parses them when they differ from `known` (what the value was
    /// parsed from) and from `rejected` (what did not parse last time).
    fn refresh(&self, known: &[String], rejected: &[String]) {
        let files = || {
            self.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let texts = match read_all(&self.paths) {
            Ok(t) if t == known || t == rejected => return,
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(files = %files(), error = %e, "kept the content loaded before");
                return;
            }
        };
        let parsed = (self.parse)(&texts);
        let mut state = self.lock();
        if state.texts.as_slice() != known {
            // Another reader loaded newer content meanwhile.
            return;
        }
        match parsed {
            Ok(v) => {
                state.value = Arc::new(v);
                state.texts = texts;
                state.rejected.clear();
                tracing::info!(files = %files(), "loaded the changed content");
            }
            Err(e) => {
                state.rejected = texts;
                tracing::warn!(files = %files(), error = %e, "the changed content is not usable yet; kept the content loaded before");
            }
        }
    }
}

fn read_all(paths: &[PathBuf]) -> Result<Vec<String>, String> {
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).map_err(|e| format!("reading {}: {e}", p.display())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct TestClock(Mutex<Duration>);

    impl TestClock {
        fn advance(&self, by: Duration) {
            *self.0.lock().unwrap() += by;
        }
    }

    impl Clock for TestClock {
        fn now(&self) -> SystemTime {
            SystemTime::UNIX_EPOCH + *self.0.lock().unwrap()
        }
    }

    #[test]
    fn a_change_is_read_and_a_broken_one_keeps_the_last_good_value() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        std::fs::write(&a, "1").expect("write");
        std::fs::write(&b, "1").expect("write");
        // The value is the sum, and the two files must agree.
        let parse: Parse<u32> = Box::new(|t| {
            let n: Vec<u32> = t
                .iter()
                .map(|s| s.trim().parse().map_err(|_| "nan".to_owned()))
                .collect::<Result<_, _>>()?;
            if n[0] != n[1] {
                return Err("the files disagree".into());
            }
            Ok(n[0] + n[1])
        });
        let clock = Arc::new(TestClock::default());
        let r = Reloading::open(
            vec![a.clone(), b.clone()],
            Duration::ZERO,
            clock.clone(),
            parse,
        )
        .expect("open");
        assert_eq!(*r.get(), 2);
        std::fs::write(&a, "5").expect("write");
        assert_eq!(*r.get(), 2, "half-written: the last good value");
        std::fs::write(&b, "5").expect("write");
        assert_eq!(*r.get(), 10);
        std::fs::remove_file(&a).expect("remove");
        assert_eq!(*r.get(), 10, "a missing file keeps the value");
        assert!(
            Reloading::open(vec![a], Duration::ZERO, clock.clone(), Box::new(|_| Ok(0))).is_err(),
            "a first read must succeed"
        );
        // Not looked at again before the interval.
        let read_b: Parse<String> = Box::new(|t| Ok(t[0].clone()));
        let slow = Reloading::open(
            vec![b.clone()],
            Duration::from_secs(60),
            clock.clone(),
            read_b,
        )
        .expect("open");
        std::fs::write(&b, "6").expect("write");
        assert_eq!(*slow.get(), "5");
        clock.advance(Duration::from_secs(59));
        assert_eq!(*slow.get(), "5");
        clock.advance(Duration::from_secs(1));
        assert_eq!(*slow.get(), "6");
        assert_eq!(*Reloading::fixed(7).get(), 7);
    }

    #[test]
    fn content_that_does_not_parse_is_parsed_once_until_it_changes() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let tmp = tempfile::tempdir().expect("tempdir");
        let a = tmp.path().join("a");
        std::fs::write(&a, "1").expect("write");
        let parses = Arc::new(AtomicUsize::new(0));
        let counted = parses.clone();
        let parse: Parse<u32> = Box::new(move |t| {
            counted.fetch_add(1, Ordering::SeqCst);
            t[0].trim().parse().map_err(|_| "nan".to_owned())
        });
        let clock = Arc::new(TestClock::default());
        let r = Reloading::open(vec![a.clone()], Duration::ZERO, clock, parse).expect("open");
        std::fs::write(&a, "x").expect("write");
        for _ in 0..5 {
            assert_eq!(*r.get(), 1);
        }
        assert_eq!(parses.load(Ordering::SeqCst), 2, "the broken content once");
        std::fs::write(&a, "3").expect("write");
        assert_eq!(*r.get(), 3);
        std::fs::write(&a, "1").expect("write");
        assert_eq!(
            *r.get(),
            1,
            "content seen before is parsed again when it comes back"
        );
        std::fs::write(&a, "x").expect("write");
        assert_eq!(*r.get(), 1);
        assert_eq!(parses.load(Ordering::SeqCst), 5);
    }
}
