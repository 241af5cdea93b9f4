//! clusterrole-aggregation: kube-controller-manager's controller that gives a ClusterRole
//! with an `aggregationRule` the rules of every ClusterRole its selectors match — how
//! `admin`, `edit` and `view` get their rules, and how an operator extends them by
//! labelling a role `rbac.authorization.k8s.io/aggregate-to-edit: "true"`. Any change to
//! any ClusterRole looks at every aggregated one again (chained aggregation, view into edit
//! into admin, settles in a few rounds).

use std::sync::Arc;

use kubeboot_client::Client;
use serde_json::Value;

use crate::runner::{Action, BoxFuture, Informer, Queue, ReconcileError, Reconciler};

const CLUSTER_ROLES: &str = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
/// The one key: every aggregated role is looked at together.
const ALL: &str = "*";

/// The controller.
pub struct ClusterRoleAggregation {
    client: Client,
    roles: Informer,
}

/// Starts the controller.
pub fn start(cx: &crate::Context) {
    let queue = Arc::new(Queue::default());
    let q = queue.clone();
    let roles = Informer::start(
        &cx.tasks,
        cx.client.clone(),
        CLUSTER_ROLES.into(),
        move |_| q.add(ALL),
    );
    let me = ClusterRoleAggregation {
        client: cx.client.clone(),
        roles,
    };
    crate::runner::run(&cx.tasks, Arc::new(me), queue, 1);
}

impl Reconciler for ClusterRoleAggregation {
    fn name(&self) -> &'static str {
        "clusterrole-aggregation"
    }

    fn reconcile(&self, _key: String) -> BoxFuture<'_, Result<Action, ReconcileError>> {
        Box::pin(async move {
            self.roles.wait_synced().await;
            let all = self.roles.list();
            for role in &all {
                let Some(rules) = policy::aggregated_rules(role, &all) else {
                    continue;
                };
                if policy::same_rules(role.get("rules"), &rules) {
                    continue;
                }
                let name = role["metadata"]["name"].as_str().unwrap_or_default();
                let mut updated = role.clone();
                updated["rules"] = Value::Array(rules);
                let path = format!("{CLUSTER_ROLES}/{name}");
                match self.client.update::<Value>(&path, &updated).await {
                    Ok(_) => tracing::info!(clusterrole = %name, "aggregated rules updated"),
                    // It changed or went meanwhile: its informer event brings it back here.
                    Err(e) if matches!(e.code(), Some(404 | 409)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(Action::Done)
        })
    }
}

pub mod policy;

#[cfg(test)]
mod tests;
