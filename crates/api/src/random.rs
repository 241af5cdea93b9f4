//! Randomness, injected wherever a rule depends on it (renewal jitter, backoff jitter), so
//! the rule can be tested with chosen values.

/// A source of random numbers.
pub trait Random: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);

    /// A number uniform in `[0, 1)`.
    fn unit(&self) -> f64 {
        let mut b = [0u8; 8];
        self.fill(&mut b);
        (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The operating system's random numbers (`/dev/urandom`, a CSPRNG): fit for keys, token
/// secrets, nonces and serial numbers as well as jitter.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

impl Random for OsRandom {
    /// Panics when the operating system gives no random numbers: nothing kubeboot does is
    /// safe without them (kubeadm and Go's crypto/rand fail likewise).
    fn fill(&self, buf: &mut [u8]) {
        use std::io::Read;
        static URANDOM: std::sync::OnceLock<std::io::Result<std::fs::File>> =
            std::sync::OnceLock::new();
        let read = match URANDOM.get_or_init(|| std::fs::File::open("/dev/urandom")) {
            Ok(f) => (&*f).read_exact(buf),
            Err(e) => Err(std::io::Error::new(e.kind(), e.to_string())),
        };
        if let Err(e) = read {
            panic!("the operating system's random numbers (/dev/urandom) cannot be read: {e}");
        }
    }
}

/// `n` random bytes from `random`.
pub fn bytes<const N: usize>(random: &dyn Random) -> [u8; N] {
    let mut b = [0u8; N];
    random.fill(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_fall_in_zero_to_one() {
        for _ in 0..200 {
            let u = OsRandom.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
