//! The clock: the only place that reads the wall clock, and Kubernetes' time formats.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A source of the current time, injected wherever a rule depends on it.
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        #[allow(clippy::disallowed_methods)]
        SystemTime::now()
    }
}

/// Formats a time as `metav1.Time` does: RFC 3339, whole seconds, UTC with `Z`.
pub fn format_rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs() as i64;
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// Formats a time as `metav1.MicroTime` does (Lease times): RFC 3339 with microseconds.
pub fn format_micro_time(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let whole = format_rfc3339(UNIX_EPOCH + Duration::from_secs(since.as_secs()));
    format!(
        "{}.{:06}Z",
        whole.trim_end_matches('Z'),
        since.subsec_micros()
    )
}

/// Parses an RFC 3339 time as Go's `time.Parse(time.RFC3339, …)` does: offsets and
/// fractional seconds accepted, but only an upper-case `T` and `Z` (RFC 3339 allows `t` and
/// `z`; Go, and so Kubernetes, does not: a bootstrap token expiring `…t…z` is expired).
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    if s.contains(['t', 'z']) {
        return None;
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    let nanos = t.unix_timestamp_nanos();
    if nanos < 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).ok()?))
}

/// Kubernetes' `HumanDuration` (apimachinery `util/duration`), used for AGE columns.
pub fn human_duration(d: i64) -> String {
    // d is in seconds; negative durations mean clock skew.
    if d < -1 {
        return "<invalid>".to_owned();
    }
    if d < 0 {
        return "0s".to_owned();
    }
    let (minutes, hours, days) = (d / 60, d / 3600, d / 86400);
    let years = days / 365;
    if d < 120 {
        format!("{d}s")
    } else if minutes < 10 {
        let s = d % 60;
        if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        }
    } else if hours < 3 {
        format!("{minutes}m")
    } else if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        }
    } else if hours < 48 {
        format!("{hours}h")
    } else if days < 8 {
        let h = hours % 24;
        if h == 0 {
            format!("{days}d")
        } else {
            format!("{days}d{h}h")
        }
    } else if years < 2 {
        format!("{days}d")
    } else if years < 8 {
        let dd = days % 365;
        if dd == 0 {
            format!("{years}y")
        } else {
            format!("{years}y{dd}d")
        }
    } else {
        format!("{years}y")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_kubernetes() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (59, "59s"),
            (119, "119s"),
            (120, "2m"),
            (125, "2m5s"),
            (3600, "60m"),
            (3 * 3600 + 60, "3h1m"),
            (86400, "24h"),
            (3 * 86400 + 3600, "3d1h"),
            (8760 * 3600, "365d"),
            (3 * 365 * 86400, "3y"),
            (9 * 365 * 86400, "9y"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn rfc3339_round_trips_whole_seconds() {
        let t = UNIX_EPOCH + Duration::from_secs(1_714_644_000);
        let s = format_rfc3339(t);
        assert_eq!(s, "2024-05-02T10:00:00Z");
        assert_eq!(parse_rfc3339(&s), Some(t));
        assert_eq!(
            parse_rfc3339("2024-05-02T12:00:00+02:00"),
            Some(t),
            "offsets are accepted"
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(
            parse_rfc3339("2024-05-02t12:00:00Z"),
            None,
            "Go's parser wants T"
        );
        assert_eq!(parse_rfc3339("2024-05-02T12:00:00z"), None, "and Z");
    }

    #[test]
    fn micro_time_has_six_fraction_digits() {
        let t = UNIX_EPOCH + Duration::from_micros(1_714_644_000_000_042);
        assert_eq!(format_micro_time(t), "2024-05-02T10:00:00.000042Z");
        assert_eq!(parse_rfc3339(&format_micro_time(t)), Some(t));
    }
}

/// Parses a Go duration (`24h`, `1h30m`, `90s`, `500ms`, `0`), as Kubernetes flags take them.
pub fn parse_go_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {s:?} (examples: 24h, 1h30m, 90s, 0)");
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => return Err(bad()),
        };
        total += value * secs;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// Kubernetes' `ShortHumanDuration` (the TTL column of `kubeadm token list`).
pub fn short_human_duration(secs: i64) -> String {
    if secs < -1 {
        "<invalid>".into()
    } else if secs < 0 {
        "0s".into()
    } else if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else if secs < 86400 {
        format!("{}h", secs / 3600)
    } else if secs < 365 * 86400 {
        format!("{}d", secs / 86400)
    } else {
        format!("{}y", secs / (365 * 86400))
    }
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (s, secs) in [
            ("24h", 86400.0),
            ("1h30m", 5400.0),
            ("90s", 90.0),
            ("0", 0.0),
            ("24h0m0s", 86400.0),
            ("1.5h", 5400.0),
            ("500ms", 0.5),
        ] {
            assert_eq!(parse_go_duration(s).unwrap().as_secs_f64(), secs, "{s}");
        }
        for bad in ["", "h", "5", "5x", "-1h"] {
            assert!(parse_go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn short_human_durations() {
        for (secs, want) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (59, "59s"),
            (3599, "59m"),
            (82800, "23h"),
            (86400 * 3, "3d"),
            (86400 * 400, "1y"),
        ] {
            assert_eq!(short_human_duration(secs), want);
        }
    }
}
