//! NamespaceLifecycle: `default`, `kube-system` and `kube-public` may never be deleted (the
//! cluster's bootstrap tokens, `cluster-info` and the controllers' Lease live there), and
//! nothing new is created in a namespace being deleted. Messages are Kubernetes' own
//! (`k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle`).

use std::time::{Duration, SystemTime};

use kubeboot_api::clock::parse_rfc3339;
use kubeboot_api::status::Subject;
use kubeboot_api::{Status, StatusCause};
use serde_json::Value;

/// The namespaces that live as long as the cluster.
pub const IMMORTAL: [&str; 3] = ["default", "kube-system", "kube-public"];

/// The refusal of deleting namespace `name`, if it is immortal.
pub fn delete_denial(name: &str) -> Option<Status> {
    IMMORTAL.contains(&name).then(|| {
        Status::forbidden(
            Some(Subject {
                resource: "namespaces",
                group: "",
                name,
            }),
            "this namespace may not be deleted",
        )
    })
}

/// The refusal of creating `subject` in namespace `ns`, which is being deleted.
pub fn terminating_denial(subject: Subject<'_>, ns: &str) -> Status {
    let mut status = Status::forbidden(
        Some(subject),
        &format!("unable to create new content in namespace {ns} because it is being terminated"),
    );
    if let Some(details) = status.details.as_mut() {
        details.causes.push(StatusCause::new(
            "NamespaceTerminating",
            "metadata.namespace",
            format!("namespace {ns} is being terminated"),
        ));
    }
    status
}

/// Whether a stored Namespace is being deleted.
pub fn is_terminating(namespace: &serde_json::Value) -> bool {
    namespace
        .pointer("/status/phase")
        .and_then(serde_json::Value::as_str)
        == Some("Terminating")
}

/// How long a deletion may be in its request before it counts as interrupted.
pub const STALLED_AFTER: Duration = Duration::from_secs(60);

/// Whether a namespace's deletion was interrupted: a DELETE marked it Terminating with its
/// deletionTimestamp (only the server sets one; Kubernetes' namespace controller, too,
/// deletes only a namespace that has one), at the server's start (no request can be
/// deleting it) or for longer than [`STALLED_AFTER`].
pub fn is_stalled(namespace: &Value, now: SystemTime, at_start: bool) -> bool {
    let Some(since) = namespace
        .pointer("/metadata/deletionTimestamp")
        .and_then(Value::as_str)
    else {
        return false;
    };
    if !is_terminating(namespace) {
        return false;
    }
    at_start
        || parse_rfc3339(since)
            .is_none_or(|t| now.duration_since(t).is_ok_and(|d| d > STALLED_AFTER))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_clusters_own_namespaces_may_not_be_deleted() {
        for (ns, refused) in [
            ("default", true),
            ("kube-system", true),
            ("kube-public", true),
            ("kube-node-lease", false),
            ("demo", false),
        ] {
            let denial = delete_denial(ns);
            assert_eq!(denial.is_some(), refused, "{ns}");
            if let Some(s) = denial {
                assert_eq!(s.code, 403);
                assert_eq!(
                    s.message,
                    format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted")
                );
            }
        }
    }

    #[test]
    fn content_in_a_terminating_namespace_is_refused_with_its_cause() {
        let s = terminating_denial(
            Subject {
                resource: "configmaps",
                group: "",
                name: "x",
            },
            "demo",
        );
        assert_eq!(s.code, 403);
        assert_eq!(
            s.message,
            "configmaps \"x\" is forbidden: unable to create new content in namespace demo because it is being terminated"
        );
        let cause = &s.details.expect("details").causes[0];
        assert_eq!(
            (cause.reason.as_str(), cause.field.as_str()),
            ("NamespaceTerminating", "metadata.namespace")
        );
    }

    #[test]
    fn a_deletion_is_finished_when_interrupted() {
        let now = parse_rfc3339("2026-12-04T12:00:00Z").unwrap();
        let ns = |phase: &str, deleted: Option<&str>| {
            let mut v = json!({"metadata": {"name": "x"}, "status": {"phase": phase}});
            if let Some(t) = deleted {
                v["metadata"]["deletionTimestamp"] = json!(t);
            }
            v
        };
        for (case, namespace, at_start, want) in [
            ("active", ns("Active", None), true, false),
            (
                "terminating at start",
                ns("Terminating", Some("2026-12-04T11:59:59Z")),
                true,
                true,
            ),
            (
                "terminating for a second",
                ns("Terminating", Some("2026-12-04T11:59:59Z")),
                false,
                false,
            ),
            (
                "terminating for two minutes",
                ns("Terminating", Some("2026-12-04T11:58:00Z")),
                false,
                true,
            ),
            (
                "terminating since no one knows",
                ns("Terminating", Some("not a time")),
                false,
                true,
            ),
            // Seen before: a namespace a client had marked Terminating through its status
            // was deleted, with all it held, at the next start.
            (
                "marked by no deletion, at start",
                ns("Terminating", None),
                true,
                false,
            ),
            (
                "marked by no deletion",
                ns("Terminating", None),
                false,
                false,
            ),
        ] {
            assert_eq!(is_stalled(&namespace, now, at_start), want, "{case}");
        }
    }
}
