//! RBAC escalation prevention on a write of a role or binding (kube-apiserver's
//! `policybased` storages): `system:masters` writes anything; otherwise a role needs
//! `escalate` on it, or that its writer already holds every rule it grants (an aggregation
//! rule, everything), and a binding needs `bind` on the role it refers to, or that its
//! writer holds every rule of that role, read from the store (404 when there is none).

use kubeboot_api::Status;
use serde_json::Value;

use super::Handlers;
use crate::authn::UserInfo;
use crate::authz::{Attributes, Decision, MASTERS};
use crate::object::meta_str;
use crate::registry::escalation::{
    full_authority, has_aggregation_rule, not_held_message, rules_of, uncovered,
};
use crate::registry::strategy::only_gc_fields_change;
use crate::registry::{Kind, ResourceDef, by_kind};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

impl Handlers {
    /// Refuses (403) a write of role or binding `new` (replacing `old`) through URL name
    /// `request_name` (empty on a create) that would grant `user` more than it holds.
    pub(super) async fn confirm_no_escalation(
        &self,
        def: &ResourceDef,
        new: &Value,
        old: Option<&Value>,
        request_name: &str,
        user: &UserInfo,
    ) -> Result<(), Status> {
        let is_role = matches!(def.kind_id, Kind::Role | Kind::ClusterRole);
        let is_binding = matches!(def.kind_id, Kind::RoleBinding | Kind::ClusterRoleBinding);
        if !(is_role || is_binding) || user.in_group(MASTERS) {
            return Ok(());
        }
        let ns = meta_str(new, "namespace");
        if old.is_some_and(|old| only_gc_fields_change(new, old)) {
            return Ok(());
        }
        if is_role {
            let escalate =
                Attributes::resource("escalate", RBAC_GROUP, def.plural, "", ns, request_name);
            if self.allowed(user, &escalate) {
                return Ok(());
            }
            self.holds_all(def, new, user, &rules_of(new))?;
            if def.kind_id == Kind::ClusterRole
                && (has_aggregation_rule(Some(new)) || has_aggregation_rule(old))
                && self.holds_all(def, new, user, &full_authority()).is_err()
            {
                return Err(Status::forbidden(
                    Some(def.subject(meta_str(new, "name"))),
                    "must have cluster-admin privileges to use the aggregationRule",
                ));
            }
            return Ok(());
        }
        let (kind, role) = (
            new.pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            new.pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        let role_def = match kind {
            "Role" => by_kind(Kind::Role),
            "ClusterRole" => by_kind(Kind::ClusterRole),
            // Validation refuses the binding.
            _ => return Ok(()),
        };
        let bind = Attributes::resource("bind", RBAC_GROUP, role_def.plural, "", ns, role);
        if self.allowed(user, &bind) {
            return Ok(());
        }
        let role_ns = if role_def.namespaced { ns } else { "" };
        let (role_obj, _) = self.read_object(role_def, role_ns, role).await?;
        self.holds_all(def, new, user, &rules_of(&role_obj))
    }

    fn allowed(&self, user: &UserInfo, a: &Attributes) -> bool {
        matches!(self.authz.authorize(user, a), Decision::Allowed { .. })
    }

    /// `ConfirmNoEscalation`: 403 unless the RBAC rules `user` holds where `obj` lives cover
    /// `granted`.
    fn holds_all(
        &self,
        def: &ResourceDef,
        obj: &Value,
        user: &UserInfo,
        granted: &[k8s_openapi::api::rbac::v1::PolicyRule],
    ) -> Result<(), Status> {
        let (held, errors) = self.authz.rbac_rules_for(user, meta_str(obj, "namespace"));
        let missing = uncovered(&held, granted);
        if missing.is_empty() {
            return Ok(());
        }
        Err(Status::forbidden(
            Some(def.subject(meta_str(obj, "name"))),
            &not_held_message(user, missing, &errors),
        ))
    }
}
