//! NamespaceLifecycle: `default`, `kube-system` and `kube-public` may never be deleted (the
//! cluster's bootstrap tokens, `cluster-info` and the controllers' Lease live there), and
//! nothing new is created in a namespace being deleted. Messages are Kubernetes' own
//! (`k8s.io/apiserver/pkg/admission/plugin/namespace/lifecycle`).

use kubeboot_api::status::Subject;
use kubeboot_api::{Status, StatusCause};

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

#[cfg(test)]
mod tests {
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
}
