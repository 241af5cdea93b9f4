//! A warning when the API server's clock and the node's disagree by more than a minute —
//! the cause of "certificate not yet valid" and "token expired" errors.

use std::time::{Duration, SystemTime};

use kubeboot_client::Client;

/// Logs when the server's clock differs from ours by more than a minute.
pub(crate) async fn warn_on_clock_skew(client: &Client, now: SystemTime) {
    let Ok(resp) = client
        .send(kubeboot_client::Method::GET, "/version", None)
        .await
    else {
        return;
    };
    let Some(date) = resp
        .headers
        .get("date")
        .and_then(|d| d.to_str().ok())
        .and_then(parse_http_date)
    else {
        return;
    };

    let skew = now
        .duration_since(date)
        .or_else(|_| date.duration_since(now))
        .unwrap_or_default();
    if skew > Duration::from_secs(60) {
        tracing::warn!(
            skew_seconds = skew.as_secs(),
            "the API server's clock differs from this node's by more than a minute: expect \"certificate not yet valid\" and \"token expired\" errors; fix the time (NTP) on one side"
        );
    }
}

/// Parses an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub(crate) fn parse_http_date(s: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, clock, "GMT"] = parts.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m == month)?
        + 1;
    let text = format!("{year}-{month:02}-{day:0>2}T{clock}Z");
    kubeboot_api::clock::parse_rfc3339(&text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kubeboot_api::clock::format_rfc3339;

    #[test]
    fn http_dates() {
        let t = parse_http_date("Thu, 02 May 2024 10:00:00 GMT").unwrap();
        assert_eq!(format_rfc3339(t), "2024-05-02T10:00:00Z");
        assert!(parse_http_date("yesterday").is_none());
    }
}
