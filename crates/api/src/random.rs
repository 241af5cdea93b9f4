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
/// secrets, nonces and serial numbers as well as jitter. Small draws (a uid, a serial) are
/// served from a block read ahead, so that each is not a system call of its own; a byte is
/// handed out once, and the block is cleared as it is used.
#[derive(Clone, Copy, Debug, Default)]
pub struct OsRandom;

/// Bytes read from `/dev/urandom` ahead of their use, and how many of them are used.
struct ReadAhead {
    block: [u8; READ_AHEAD],
    used: usize,
}

/// How many bytes are read from `/dev/urandom` at a time for small draws.
const READ_AHEAD: usize = 4096;

impl Random for OsRandom {
    /// Panics when the operating system gives no random numbers: nothing kubeboot does is
    /// safe without them (kubeadm and Go's crypto/rand fail likewise).
    fn fill(&self, buf: &mut [u8]) {
        static AHEAD: std::sync::Mutex<ReadAhead> = std::sync::Mutex::new(ReadAhead {
            block: [0; READ_AHEAD],
            used: READ_AHEAD,
        });
        if buf.len() > READ_AHEAD / 16 {
            return read_urandom(buf);
        }
        let mut ahead = AHEAD
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if READ_AHEAD - ahead.used < buf.len() {
            read_urandom(&mut ahead.block);
            ahead.used = 0;
        }
        let from = ahead.used;
        let taken = &mut ahead.block[from..from + buf.len()];
        buf.copy_from_slice(taken);
        taken.fill(0);
        ahead.used += buf.len();
    }
}

/// Fills `buf` from `/dev/urandom`, opened once.
fn read_urandom(buf: &mut [u8]) {
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
    fn draws_do_not_repeat_across_read_ahead_blocks() {
        // 16-byte draws through several blocks, and one larger than the read-ahead serves:
        // no two alike (a block handed out twice would repeat them all).
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 * READ_AHEAD / 16 {
            assert!(seen.insert(bytes::<16>(&OsRandom)), "a draw repeated");
        }
        let big: [u8; READ_AHEAD + 1] = bytes(&OsRandom);
        assert!(big.iter().any(|&b| b != 0));
        assert!(seen.insert(big[..16].try_into().unwrap()));
    }

    #[test]
    fn units_fall_in_zero_to_one() {
        for _ in 0..200 {
            let u = OsRandom.unit();
            assert!((0.0..1.0).contains(&u), "{u}");
        }
    }
}
