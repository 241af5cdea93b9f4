//! The controllers of kube-controller-manager that TLS bootstrapping needs. They reach the
//! API server only through `kubeboot-client`, so they run the same in-process (inside
//! `kubeboot server`) and alone (`kubeboot controller-manager`), against our server or a
//! real kube-apiserver. Each is a reconcile function over a shared runner.

pub mod bootstrap_signer;
pub mod clusterrole_aggregation;
pub mod csr;
pub mod events;
pub mod leader_election;
pub mod manager;
pub mod metrics;
pub mod node_lifecycle;
pub mod runner;
pub mod tasks;
pub mod token_cleaner;
pub mod trust_bundle_publisher;

pub use manager::Context;

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;

/// The controllers kube-controller-manager runs by default (`*`) among those kubeboot has.
pub const DEFAULT_CONTROLLERS: &[&str] = &[
    "csrapproving",
    "csrsigning",
    "csrcleaner",
    "nodelifecycle",
    "clusterrole-aggregation",
    trust_bundle_publisher::NAME,
];
/// The controllers that run only when named.
pub const OPT_IN_CONTROLLERS: &[&str] = &["bootstrapsigner", "tokencleaner"];

/// Which controllers `--controllers` selects (`*` = the default set, `-name` disables,
/// `name` enables), in kube-controller-manager's syntax.
pub fn selected(spec: &[String]) -> Result<Vec<&'static str>, String> {
    let all: Vec<&'static str> = DEFAULT_CONTROLLERS
        .iter()
        .chain(OPT_IN_CONTROLLERS)
        .copied()
        .collect();
    let mut on: Vec<&'static str> = Vec::new();
    let star = spec.iter().any(|s| s == "*");
    if star {
        on.extend(DEFAULT_CONTROLLERS);
    }
    for s in spec.iter().filter(|s| *s != "*") {
        let (disable, name) = match s.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, s.as_str()),
        };
        let Some(known) = all.iter().find(|c| **c == name) else {
            return Err(format!(
                "{name:?} is not a known controller (known: {})",
                all.join(", ")
            ));
        };
        if disable {
            on.retain(|c| c != known);
        } else if !on.contains(known) {
            on.push(known);
        }
    }
    Ok(on)
}

/// A Secret's `data`, decoded.
pub fn secret_data(secret: &Value) -> BTreeMap<String, Vec<u8>> {
    secret
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| {
            Some((
                k.clone(),
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_str()?)
                    .ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controllers_flag_as_kube_controller_manager_reads_it() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(selected(&s(&["*"])).unwrap(), DEFAULT_CONTROLLERS);
        assert_eq!(
            selected(&s(&["*", "bootstrapsigner", "tokencleaner"])).unwrap(),
            [
                "csrapproving",
                "csrsigning",
                "csrcleaner",
                "nodelifecycle",
                "clusterrole-aggregation",
                trust_bundle_publisher::NAME,
                "bootstrapsigner",
                "tokencleaner"
            ]
        );
        assert_eq!(
            selected(&s(&["*", "-csrcleaner"])).unwrap(),
            [
                "csrapproving",
                "csrsigning",
                "nodelifecycle",
                "clusterrole-aggregation",
                trust_bundle_publisher::NAME,
            ]
        );
        assert_eq!(selected(&s(&["tokencleaner"])).unwrap(), ["tokencleaner"]);
        assert!(selected(&s(&["nope"])).is_err());
    }
}
