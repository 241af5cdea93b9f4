//! When to renew a certificate: at a random point between 70% and 90% of its lifetime,
//! as the kubelet's certificate manager does.

use std::time::{Duration, SystemTime};

/// The renewal deadline for a certificate valid over `not_before..not_after`, with `jitter`
/// uniform in `[0, 1)`.
pub fn deadline(not_before: SystemTime, not_after: SystemTime, jitter: f64) -> SystemTime {
    let lifetime = not_after
        .duration_since(not_before)
        .unwrap_or(Duration::ZERO);
    not_before + lifetime.mul_f64(0.7 + 0.2 * jitter.clamp(0.0, 1.0))
}

/// A uniform jitter in `[0, 1)` from the OS RNG.
pub fn random_jitter() -> f64 {
    let mut b = [0u8; 8];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        let _ = std::io::Read::read_exact(&mut f, &mut b);
    }
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

/// Backoff between failed renewals: 2 s doubling to 32 s (the kubelet's 2 s ×2 for five
/// attempts, then every 32 s).
pub fn retry_after(failures: u32) -> Duration {
    Duration::from_secs(2u64.saturating_pow(failures.clamp(1, 5)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn renewal_falls_between_70_and_90_percent() {
        let nb = UNIX_EPOCH + Duration::from_secs(1000);
        let na = nb + Duration::from_secs(1000);
        for (j, want) in [
            (0.0, 1700),
            (0.5, 1800),
            (0.999_999, 1899),
            (7.0, 1900),
            (-1.0, 1700),
        ] {
            let d = deadline(nb, na, j)
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs();
            assert_eq!(d, want, "jitter {j}");
        }
        for _ in 0..100 {
            let j = random_jitter();
            assert!((0.0..1.0).contains(&j));
        }
        assert_eq!(retry_after(1), Duration::from_secs(2));
        assert_eq!(retry_after(4), Duration::from_secs(16));
        assert_eq!(retry_after(9), Duration::from_secs(32));
    }
}
