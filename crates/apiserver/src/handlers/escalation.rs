//! RBAC escalation prevention on a write of a role or binding (kube-apiserver's
//! `policybased` storages): `system:masters` writes anything; otherwise a role needs
//! `escalate` on it, or that its writer already holds every rule it grants (an aggregation
//! rule, everything), and a binding needs `bind` on the role it refers to, or that its
//! writer holds every rule of that role, read from the store (404 when there is none).

use k8s_openapi::api::rbac::v1::PolicyRule;
use kubeboot_api::Status;
use serde_json::Value;

use super::Handlers;
use crate::authn::UserInfo;
use crate::authz::{Attributes, Decision, MASTERS};
use crate::object::meta_str;
use crate::registry::escalation::{
    full_authority, has_aggregation_rule, not_held_message, uncovered,
};
use crate::registry::strategy::only_gc_fields_change;
use crate::registry::{Kind, ResourceDef, by_kind};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Where a write goes: its URL's namespace (empty for a cluster-wide object) and name
/// (empty on a create).
pub(super) type Url<'a> = (&'a str, &'a str);

impl Handlers {
    /// Refuses (403) a write of role or binding `new` (replacing `old`) through `url` that
    /// would grant `user` more than it holds.
    pub(super) async fn confirm_no_escalation(
        &self,
        def: &ResourceDef,
        url: Url<'_>,
        (new, old): (&Value, Option<&Value>),
        user: &UserInfo,
    ) -> Result<(), Status> {
        if user.in_group(MASTERS) || old.is_some_and(|old| only_gc_fields_change(new, old)) {
            return Ok(());
        }
        match def.kind_id {
            Kind::Role | Kind::ClusterRole => self.confirm_role(def, url, (new, old), user),
            Kind::RoleBinding | Kind::ClusterRoleBinding => {
                self.confirm_binding(def, url.0, new, user).await
            }
            _ => Ok(()),
        }
    }

    /// A role: `escalate` on it (by the URL's name), or every rule it grants held; an
    /// aggregation rule, set or dropped, needs everything.
    fn confirm_role(
        &self,
        def: &ResourceDef,
        (ns, name): Url<'_>,
        (new, old): (&Value, Option<&Value>),
        user: &UserInfo,
    ) -> Result<(), Status> {
        let escalate = Attributes::resource("escalate", RBAC_GROUP, def.plural, "", ns, name);
        if self.allowed(user, &escalate) {
            return Ok(());
        }
        self.holds_all(def, (ns, new), user, &rules_of(def, new)?)?;
        let aggregates = has_aggregation_rule(Some(new)) || has_aggregation_rule(old);
        if def.kind_id == Kind::ClusterRole
            && aggregates
            && self
                .holds_all(def, (ns, new), user, &full_authority())
                .is_err()
        {
            return Err(Status::forbidden(
                Some(def.subject(meta_str(new, "name"))),
                "must have cluster-admin privileges to use the aggregationRule",
            ));
        }
        Ok(())
    }

    /// A binding in namespace `ns`: `bind` on the role it refers to, or every rule of that
    /// role held; the role read from the store (404 when there is none).
    async fn confirm_binding(
        &self,
        def: &ResourceDef,
        ns: &str,
        new: &Value,
        user: &UserInfo,
    ) -> Result<(), Status> {
        let text = |p: &str| new.pointer(p).and_then(Value::as_str).unwrap_or_default();
        let role_def = match text("/roleRef/kind") {
            "Role" => by_kind(Kind::Role),
            "ClusterRole" => by_kind(Kind::ClusterRole),
            // Validation refuses the binding.
            _ => return Ok(()),
        };
        let role = text("/roleRef/name");
        let bind = Attributes::resource("bind", RBAC_GROUP, role_def.plural, "", ns, role);
        if self.allowed(user, &bind) {
            return Ok(());
        }
        let role_ns = if role_def.namespaced { ns } else { "" };
        let (role_obj, _) = self.read_object(role_def, role_ns, role).await?;
        self.holds_all(def, (ns, new), user, &rules_of(role_def, &role_obj)?)
    }

    fn allowed(&self, user: &UserInfo, a: &Attributes) -> bool {
        matches!(self.authz.authorize(user, a), Decision::Allowed { .. })
    }

    /// `ConfirmNoEscalation`: 403 unless the RBAC rules `user` holds in namespace `ns`
    /// cover `granted` (`obj` is what is written).
    fn holds_all(
        &self,
        def: &ResourceDef,
        (ns, obj): (&str, &Value),
        user: &UserInfo,
        granted: &[PolicyRule],
    ) -> Result<(), Status> {
        let (held, errors) = self.authz.rbac_rules_for(user, ns);
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

/// The rules a role grants; a role whose rules cannot be read grants nothing it can be
/// checked for, so the write is refused rather than let through.
fn rules_of(def: &ResourceDef, role: &Value) -> Result<Vec<PolicyRule>, Status> {
    match role.get("rules") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(rules) => serde_json::from_value(rules.clone()).map_err(|e| {
            Status::internal(format!(
                "the rules of {} {:?} cannot be read: {e}",
                def.kind,
                meta_str(role, "name")
            ))
        }),
    }
}
