//! Counters of controller decisions, rendered in Prometheus text format.

use std::sync::atomic::{AtomicU64, Ordering};

/// Decisions counted since start.
#[derive(Default, Debug)]
pub struct Counters {
    /// CSRs approved by the approver.
    pub approved: AtomicU64,
    /// CSRs seen denied (by a person).
    pub denied: AtomicU64,
    /// Certificates issued.
    pub signed: AtomicU64,
    /// CSRs marked Failed by the signer.
    pub failed: AtomicU64,
    /// CSRs deleted by the cleaner.
    pub cleaned: AtomicU64,
    /// Expired token Secrets deleted.
    pub tokens_cleaned: AtomicU64,
    /// Nodes whose conditions nodelifecycle set Unknown (they stopped posting status).
    pub nodes_unknown: AtomicU64,
    /// Nodes whose unreachable or not-ready taints nodelifecycle added or removed.
    pub node_taints_changed: AtomicU64,
}

impl Counters {
    /// Adds one.
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text.
    pub fn render(&self) -> String {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "# HELP kubeboot_csr_decisions_total CSR decisions by the controllers, by decision.\n# TYPE kubeboot_csr_decisions_total counter\n\
kubeboot_csr_decisions_total{{decision=\"approved\"}} {}\nkubeboot_csr_decisions_total{{decision=\"denied\"}} {}\n\
kubeboot_csr_decisions_total{{decision=\"signed\"}} {}\nkubeboot_csr_decisions_total{{decision=\"failed\"}} {}\n\
kubeboot_csr_decisions_total{{decision=\"cleaned\"}} {}\n\
# HELP kubeboot_bootstrap_tokens_cleaned_total Expired bootstrap token Secrets deleted.\n# TYPE kubeboot_bootstrap_tokens_cleaned_total counter\n\
kubeboot_bootstrap_tokens_cleaned_total {}\n\
# HELP kubeboot_node_lifecycle_unknown_total Nodes marked Unknown for not posting status within the grace period.\n# TYPE kubeboot_node_lifecycle_unknown_total counter\n\
kubeboot_node_lifecycle_unknown_total {}\n\
# HELP kubeboot_node_lifecycle_taint_changes_total Nodes whose unreachable or not-ready taints were added or removed.\n# TYPE kubeboot_node_lifecycle_taint_changes_total counter\n\
kubeboot_node_lifecycle_taint_changes_total {}\n",
            g(&self.approved),
            g(&self.denied),
            g(&self.signed),
            g(&self.failed),
            g(&self.cleaned),
            g(&self.tokens_cleaned),
            g(&self.nodes_unknown),
            g(&self.node_taints_changed)
        )
    }
}
