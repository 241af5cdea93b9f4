//! Authorization: `system:masters` first, then the configured modes in order (RBAC, Node,
//! AlwaysAllow). Each mode allows or has no opinion; nothing allowed means forbidden.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};

use crate::authn::UserInfo;

mod node;
pub mod rules;

pub use self::node::node_name;

/// What is being asked, as Kubernetes' `authorizer.Attributes`.
#[derive(Clone, Debug, Default)]
pub struct Attributes {
    /// Resource or non-resource request.
    pub is_resource: bool,
    /// The verb.
    pub verb: String,
    /// The path (non-resource requests).
    pub path: String,
    /// API group.
    pub group: String,
    /// Namespace.
    pub namespace: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource.
    pub subresource: String,
    /// Object name.
    pub name: String,
    /// A list's or watch's field selector terms, `(field, value, equal?)`.
    pub field_selector: Vec<(String, String, bool)>,
}

impl Attributes {
    /// A request on a resource: `verb` on `group`'s `resource` (and `subresource`), in
    /// namespace `ns` (empty: cluster-wide), of object `name` (empty: the collection).
    pub fn resource(
        verb: &str,
        group: &str,
        resource: &str,
        subresource: &str,
        ns: &str,
        name: &str,
    ) -> Self {
        Self {
            is_resource: true,
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: subresource.into(),
            namespace: ns.into(),
            name: name.into(),
            path: String::new(),
            field_selector: Vec::new(),
        }
    }
}

/// What the authorizer chain decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the reason names the rule (empty for `system:masters`).
    Allowed {
        /// Why.
        reason: String,
    },
    /// No mode allowed it; the reason gathers what the modes said (as kube-apiserver's
    /// union authorizer joins them), empty when none said anything.
    Denied {
        /// Why, or nothing.
        reason: String,
    },
}

/// An authorization mode (`--authorization-mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Role-based access control.
    Rbac,
    /// The Node authorizer for kubelets.
    Node,
    /// Everything is allowed.
    AlwaysAllow,
}

/// The authorizer chain with its RBAC snapshot.
pub struct Authorizer {
    modes: Vec<Mode>,
    /// Replaced whole whenever an RBAC object changes; readers clone the `Arc`.
    rbac: RwLock<Arc<RbacSnapshot>>,
}

/// All RBAC objects, indexed for evaluation.
#[derive(Default, Debug)]
pub struct RbacSnapshot {
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    role_bindings: HashMap<String, Vec<RoleBinding>>,
}

/// The group whose members may do anything.
pub const MASTERS: &str = "system:masters";

impl Mode {
    /// The modes of `--authorization-mode`, refused as kube-apiserver refuses them: one that
    /// is no mode, or one given twice (`%q` of the list, as Go prints it).
    pub fn parse_all(modes: &[String]) -> Result<Vec<Self>, String> {
        let parsed = modes
            .iter()
            .map(|m| Self::parse(m))
            .collect::<Result<Vec<_>, _>>()?;
        let distinct: std::collections::HashSet<&String> = modes.iter().collect();
        if distinct.len() != modes.len() {
            let quoted: Vec<String> = modes.iter().map(|m| format!("{m:?}")).collect();
            return Err(format!(
                "authorization-mode [{}] has mode specified more than once",
                quoted.join(" ")
            ));
        }
        Ok(parsed)
    }

    /// Parses one `--authorization-mode` entry.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "RBAC" => Ok(Mode::Rbac),
            "Node" => Ok(Mode::Node),
            "AlwaysAllow" => Ok(Mode::AlwaysAllow),
            "AlwaysDeny" | "ABAC" | "Webhook" => Err(format!(
                "authorization-mode {s:?} is not served by kubeboot (supported: RBAC, Node, AlwaysAllow)"
            )),
            other => Err(format!(
                "authorization-mode {other:?} is not a valid mode (supported: RBAC, Node, AlwaysAllow)"
            )),
        }
    }
}

impl Authorizer {
    /// An authorizer with the given modes and an empty RBAC snapshot.
    pub fn new(modes: Vec<Mode>) -> Self {
        Self {
            modes,
            rbac: RwLock::new(Arc::new(RbacSnapshot::default())),
        }
    }

    /// Replaces the RBAC snapshot.
    pub fn set_rbac(&self, snapshot: RbacSnapshot) {
        *self.rbac.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
    }

    /// Allows (with a reason) or refuses.
    pub fn authorize(&self, user: &UserInfo, a: &Attributes) -> Decision {
        if user.in_group(MASTERS) {
            return Decision::Allowed {
                reason: String::new(),
            };
        }
        let mut reasons = Vec::new();
        for mode in &self.modes {
            let decided = match mode {
                Mode::AlwaysAllow => Ok(String::new()),
                Mode::Node => node::authorize(user, a).map(|()| String::new()),
                Mode::Rbac => {
                    let snap = self
                        .rbac
                        .read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .clone();
                    snap.allows(user, a)
                }
            };
            match decided {
                Ok(reason) => return Decision::Allowed { reason },
                Err(reason) if !reason.is_empty() => reasons.push(reason),
                Err(_) => {}
            }
        }
        Decision::Denied {
            reason: reasons.join("\n"),
        }
    }
}

impl RbacSnapshot {
    /// Builds the snapshot from the stored objects.
    pub fn new(
        cluster_roles: Vec<ClusterRole>,
        cluster_role_bindings: Vec<ClusterRoleBinding>,
        roles: Vec<Role>,
        role_bindings: Vec<RoleBinding>,
    ) -> Self {
        let mut s = Self {
            cluster_role_bindings,
            ..Default::default()
        };
        for r in cluster_roles {
            s.cluster_roles.insert(
                r.metadata.name.unwrap_or_default(),
                r.rules.unwrap_or_default(),
            );
        }
        for r in roles {
            s.roles.insert(
                (
                    r.metadata.namespace.unwrap_or_default(),
                    r.metadata.name.unwrap_or_default(),
                ),
                r.rules.unwrap_or_default(),
            );
        }
        for b in role_bindings {
            s.role_bindings
                .entry(b.metadata.namespace.clone().unwrap_or_default())
                .or_default()
                .push(b);
        }
        s
    }

    /// The allow's reason, or why not: the roles its bindings name that are missing, as
    /// kube-apiserver's RBAC authorizer reports them (`RBAC: ` and Go's aggregate error).
    fn allows(&self, user: &UserInfo, a: &Attributes) -> Result<String, String> {
        let mut errors: Vec<String> = Vec::new();
        for g in self.grants(user, &a.namespace) {
            match &g.rules {
                Ok(rules) if rules.iter().any(|r| rule_allows(r, a)) => return Ok(g.reason()),
                Ok(_) => {}
                Err(e) => errors.push(e.words(Wording::Lister)),
            }
        }
        Err(match errors.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!("RBAC: [{}]", many.join(", ")),
        })
    }

    /// Every binding that names `user` (cluster role bindings, then role bindings in
    /// `namespace`) with the rules of the role it grants, or why they cannot be found:
    /// Kubernetes' `VisitRulesFor`, the one walk that authorizing and rule listing share.
    fn grants<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &'a str,
    ) -> impl Iterator<Item = Grant<'a>> + 'a {
        let cluster = self.cluster_role_bindings.iter().filter_map(move |b| {
            let subject = matching_subject(b.subjects.as_deref(), user, "")?;
            let rules = match b.role_ref.kind.as_str() {
                "ClusterRole" => self.cluster_role(&b.role_ref.name),
                kind => Err(Unresolved::Kind(kind.to_owned())),
            };
            Some(Grant {
                binding: Binding::Cluster(b),
                subject,
                rules,
            })
        });
        let in_namespace = self.role_bindings.get(namespace);
        let namespaced = in_namespace
            .filter(|_| !namespace.is_empty())
            .into_iter()
            .flatten()
            .filter_map(move |b| {
                let subject = matching_subject(b.subjects.as_deref(), user, namespace)?;
                let name = &b.role_ref.name;
                let rules = match b.role_ref.kind.as_str() {
                    "ClusterRole" => self.cluster_role(name),
                    "Role" => self
                        .roles
                        .get(&(namespace.to_owned(), name.clone()))
                        .map(Vec::as_slice)
                        .ok_or_else(|| Unresolved::Missing("role", name.clone())),
                    kind => Err(Unresolved::Kind(kind.to_owned())),
                };
                Some(Grant {
                    binding: Binding::Namespaced(b, namespace),
                    subject,
                    rules,
                })
            });
        cluster.chain(namespaced)
    }

    fn cluster_role(&self, name: &str) -> Result<&[PolicyRule], Unresolved> {
        self.cluster_roles
            .get(name)
            .map(Vec::as_slice)
            .ok_or_else(|| Unresolved::Missing("clusterrole", name.to_owned()))
    }
}

/// Why a binding's rules cannot be had.
#[derive(Clone, Debug)]
enum Unresolved {
    /// The role it names (`clusterrole` or `role`, and its name) does not exist.
    Missing(&'static str, String),
    /// It names a kind that is no role.
    Kind(String),
}

/// Who reports an unresolved binding: the RBAC authorizer, through its listers (the
/// resource singular), or escalation prevention, through the storage (plural).
#[derive(Clone, Copy)]
enum Wording {
    Lister,
    Storage,
}

impl Unresolved {
    /// The error as kube-apiserver words it in that place.
    fn words(&self, by: Wording) -> String {
        match (self, by) {
            (Self::Missing(resource, name), Wording::Lister) => {
                format!("{resource}.rbac.authorization.k8s.io {name:?} not found")
            }
            (Self::Missing(resource, name), Wording::Storage) => {
                format!("{resource}s.rbac.authorization.k8s.io {name:?} not found")
            }
            (Self::Kind(kind), _) => format!("unsupported role reference kind: {kind:?}"),
        }
    }
}

/// A binding that names a user, as RBAC's walk finds it.
enum Binding<'a> {
    Cluster(&'a ClusterRoleBinding),
    Namespaced(&'a RoleBinding, &'a str),
}

/// One binding naming the user, and the rules it grants.
struct Grant<'a> {
    binding: Binding<'a>,
    subject: &'a Subject,
    /// The role's rules, or why they cannot be had (a missing role).
    rules: Result<&'a [PolicyRule], Unresolved>,
}

impl Grant<'_> {
    /// The reason of an allow, as kube-apiserver's RBAC authorizer words it.
    fn reason(&self) -> String {
        match self.binding {
            Binding::Cluster(b) => format!(
                "RBAC: allowed by ClusterRoleBinding {:?} of ClusterRole {:?} to {}",
                b.metadata.name.as_deref().unwrap_or_default(),
                b.role_ref.name,
                describe(self.subject)
            ),
            Binding::Namespaced(b, namespace) => format!(
                "RBAC: allowed by RoleBinding \"{}/{}\" of {} {:?} to {}",
                b.metadata.name.as_deref().unwrap_or_default(),
                namespace,
                b.role_ref.kind,
                b.role_ref.name,
                describe(self.subject)
            ),
        }
    }
}

fn describe(s: &Subject) -> String {
    match s.kind.as_str() {
        "ServiceAccount" => format!(
            "ServiceAccount \"{}/{}\"",
            s.name,
            s.namespace.as_deref().unwrap_or_default()
        ),
        kind => format!("{kind} {:?}", s.name),
    }
}

fn matching_subject<'a>(
    subjects: Option<&'a [Subject]>,
    user: &UserInfo,
    binding_ns: &str,
) -> Option<&'a Subject> {
    subjects?.iter().find(|s| match s.kind.as_str() {
        "User" => s.name == user.name,
        "Group" => user.in_group(&s.name),
        "ServiceAccount" => {
            let ns = s
                .namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            // `system:serviceaccount:<ns>:<name>` (neither holds a colon); a subject with
            // no namespace in a ClusterRoleBinding names no service account.
            !ns.is_empty()
                && user
                    .name
                    .strip_prefix("system:serviceaccount:")
                    .and_then(|rest| rest.split_once(':'))
                    == Some((ns, s.name.as_str()))
        }
        _ => false,
    })
}

/// Whether one policy rule allows the request (Kubernetes' `RuleAllows`).
pub fn rule_allows(rule: &PolicyRule, a: &Attributes) -> bool {
    let has = |list: &Option<Vec<String>>, want: &str| {
        list.as_ref()
            .is_some_and(|l| l.iter().any(|x| x == "*" || x == want))
    };
    if !rule.verbs.iter().any(|v| v == "*" || *v == a.verb) {
        return false;
    }
    if !a.is_resource {
        return rule.non_resource_urls.as_ref().is_some_and(|urls| {
            urls.iter().any(|u| {
                u == "*"
                    || *u == a.path
                    || u.strip_suffix('*').is_some_and(|p| a.path.starts_with(p))
            })
        });
    }
    if !has(&rule.api_groups, &a.group) {
        return false;
    }
    let resources_ok = rule.resources.as_ref().is_some_and(|rs| {
        // `*`, the resource, or `<resource>/<subresource>` and `*/<subresource>`.
        rs.iter().any(|r| match r.split_once('/') {
            _ if r == "*" => true,
            None => a.subresource.is_empty() && *r == a.resource,
            Some((resource, sub)) => {
                !a.subresource.is_empty()
                    && sub == a.subresource
                    && (resource == a.resource || resource == "*")
            }
        })
    });
    if !resources_ok {
        return false;
    }
    match &rule.resource_names {
        Some(names) if !names.is_empty() => names.contains(&a.name),
        _ => true,
    }
}

/// The text of a 403, as kube-apiserver's `forbiddenMessage` writes it.
pub fn forbidden_message(user: &UserInfo, a: &Attributes) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let user = esc(&user.name);
    if !a.is_resource {
        return format!(
            "User \"{user}\" cannot {} path \"{}\"",
            esc(&a.verb),
            esc(&a.path)
        );
    }
    let resource = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{}\"", esc(&a.namespace))
    };
    format!(
        "User \"{user}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
        esc(&a.verb),
        esc(&resource),
        esc(&a.group)
    )
}

#[cfg(test)]
mod tests;
