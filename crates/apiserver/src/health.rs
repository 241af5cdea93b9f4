//! `/healthz`, `/livez` and `/readyz` as kube-apiserver answers them: each runs its checks
//! — `ping`, `log`, and `etcd`, whether the store answers within two seconds (its
//! `--etcd-healthcheck-timeout`) — and answers `ok`, or, with `?verbose` or when a check
//! fails, one line per check (`[+]etcd ok`, `[-]etcd failed: reason withheld`) and the
//! verdict; `/<endpoint>/<check>` runs one check. A server whose store is unreachable is
//! neither ready nor live, so a load balancer stops sending it requests.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use kubeboot_store::Store;

/// How long the store has to answer a health check.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The health endpoints.
pub const ENDPOINTS: [&str; 3] = ["/healthz", "/livez", "/readyz"];

/// The checks of every endpoint, in the order they are listed.
const CHECKS: [&str; 3] = ["ping", "log", "etcd"];

/// What each check said: `(name, passed)`.
type Results = Vec<(&'static str, bool)>;

/// The store's health, asked at most once per half its timeout (kube-apiserver's etcd
/// check is rate-limited so): probes in between, and those waiting while one runs, take
/// its verdict, so anonymous probes cost the store nothing more.
pub struct StoreProbe {
    store: Arc<dyn Store>,
    last: tokio::sync::Mutex<Option<(tokio::time::Instant, bool)>>,
}

impl StoreProbe {
    /// A probe of `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// Whether the store answers, as of at most half a timeout ago.
    async fn answers(&self) -> bool {
        let mut last = self.last.lock().await;
        if let Some((at, verdict)) = *last
            && at.elapsed() < STORE_TIMEOUT / 2
        {
            return verdict;
        }
        let verdict = matches!(
            tokio::time::timeout(STORE_TIMEOUT, self.store.revision()).await,
            Ok(Ok(_))
        );
        *last = Some((tokio::time::Instant::now(), verdict));
        verdict
    }

    /// Runs the checks (`only`: one of them); `None` when `only` is no check.
    pub async fn run(&self, only: Option<&str>) -> Option<Results> {
        let mut out = Vec::new();
        for name in CHECKS.into_iter().filter(|c| only.is_none_or(|o| o == *c)) {
            let passed = match name {
                "etcd" => self.answers().await,
                _ => true,
            };
            out.push((name, passed));
        }
        (!out.is_empty()).then_some(out)
    }
}

/// The answer of `endpoint` (`healthz`, `livez`, `readyz`) for `results`: `ok`, or the
/// list of checks when `verbose` or one failed (500), as kube-apiserver writes them.
pub fn answer(endpoint: &str, results: &Results, verbose: bool) -> (StatusCode, String) {
    let failed = results.iter().any(|(_, passed)| !passed);
    if !failed && !verbose {
        return (StatusCode::OK, "ok".to_owned());
    }
    let mut body = String::new();
    for (name, passed) in results {
        match passed {
            true => body.push_str(&format!("[+]{name} ok\n")),
            false => body.push_str(&format!("[-]{name} failed: reason withheld\n")),
        }
    }
    match failed {
        true => {
            body.push_str(&format!("{endpoint} check failed\n"));
            (StatusCode::INTERNAL_SERVER_ERROR, body)
        }
        false => {
            body.push_str(&format!("{endpoint} check passed\n"));
            (StatusCode::OK, body)
        }
    }
}

/// The answer of one check (`/readyz/etcd`): `ok`, or kube-apiserver's 500.
pub fn answer_one(name: &str, passed: bool) -> (StatusCode, String) {
    match passed {
        true => (StatusCode::OK, "ok".to_owned()),
        false => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal server error: {name} check failed\n"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_check_lists_every_check_and_fails_the_endpoint() {
        let fine: Results = vec![("ping", true), ("log", true), ("etcd", true)];
        assert_eq!(
            answer("readyz", &fine, false),
            (StatusCode::OK, "ok".into())
        );
        assert_eq!(
            answer("readyz", &fine, true),
            (
                StatusCode::OK,
                "[+]ping ok\n[+]log ok\n[+]etcd ok\nreadyz check passed\n".into()
            )
        );
        let down: Results = vec![("ping", true), ("log", true), ("etcd", false)];
        assert_eq!(
            answer("livez", &down, false),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "[+]ping ok\n[+]log ok\n[-]etcd failed: reason withheld\nlivez check failed\n"
                    .into()
            )
        );
        assert_eq!(answer_one("etcd", true), (StatusCode::OK, "ok".into()));
        assert_eq!(
            answer_one("etcd", false).0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
