//! `pods/<name>/eviction`: a policy/v1 (or v1beta1) Eviction deletes the pod, with the
//! Eviction's `deleteOptions`, as kube-apiserver's eviction does when no
//! PodDisruptionBudget stands in the way (kubeboot serves none). `kubectl drain` evicts
//! through it.

use http::StatusCode;
use kubeboot_api::Status;
use serde_json::{Value, json};

use super::{Handlers, Res};
use crate::object::meta_str;
use crate::requestinfo::Query;
use crate::response;
use crate::routing::Target;

/// Why an Eviction sent for pod `name` in `ns` is refused, if it is.
pub(super) fn refusal(eviction: &Value, ns: &str, name: &str) -> Option<String> {
    let kind = eviction
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let api_version = eviction
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind != "Eviction" || !matches!(api_version, "policy/v1" | "policy/v1beta1") {
        return Some(format!(
            "expected an Eviction of policy/v1 or policy/v1beta1, got {kind:?} of {api_version:?}"
        ));
    }
    if meta_str(eviction, "name") != name {
        return Some("name in URL does not match name in Eviction object".into());
    }
    let sent_ns = meta_str(eviction, "namespace");
    if !sent_ns.is_empty() && sent_ns != ns {
        return Some(
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
        );
    }
    None
}

impl Handlers {
    /// Evicts a pod: deletes it, answering `201` with a `Success` Status.
    pub async fn evict(&self, t: &Target, eviction: Value, q: &Query) -> Res {
        crate::listoptions::write_options("create", q)?;
        if let Some(why) = refusal(&eviction, &t.ns, &t.name) {
            return Err(Status::bad_request(why));
        }
        // kubectl drain --dry-run=server sends `dryRun` in the Eviction's deleteOptions.
        let opts = super::delete::with_query_dry_run(eviction.get("deleteOptions").cloned(), q);
        self.delete(t.def, &t.ns, &t.name, opts).await?;
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
        Ok(response::json(StatusCode::CREATED, &status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eviction_must_name_the_pod_of_its_url() {
        let ev = |api: &str, kind: &str, ns: &str, name: &str| json!({"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": ns}});
        assert_eq!(
            refusal(&ev("policy/v1", "Eviction", "d", "p"), "d", "p"),
            None
        );
        assert_eq!(
            refusal(&ev("policy/v1beta1", "Eviction", "", "p"), "d", "p"),
            None
        );
        assert_eq!(
            refusal(&ev("policy/v1", "Eviction", "d", "q"), "d", "p").as_deref(),
            Some("name in URL does not match name in Eviction object")
        );
        assert!(refusal(&ev("policy/v1", "Eviction", "e", "p"), "d", "p").is_some());
        assert!(refusal(&ev("v1", "Pod", "d", "p"), "d", "p").is_some());
    }
}
