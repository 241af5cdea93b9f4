//! The audit Policy (`audit.k8s.io/v1` `Policy`, the file of `--audit-policy-file`) and the
//! level it gives a request: the first rule that matches decides, none means `None`; a
//! rule matches when every list it has contains the request's (users, userGroups, verbs,
//! then resources and namespaces for resource requests, or nonResourceURLs for the rest).
//! The rules are kube-apiserver's (`k8s.io/apiserver/pkg/audit/policy/checker.go`).

use serde::Deserialize;

use crate::authn::UserInfo;
use crate::authz::Attributes;

/// How much of a request is recorded, least first.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing.
    #[default]
    None,
    /// Who did what to which object, and the answer's code.
    Metadata,
    /// The metadata and the request's object.
    Request,
    /// The metadata, the request's object and the response's.
    RequestResponse,
}

/// The points in a request's life an event is written at.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
pub enum Stage {
    /// As soon as the request is received (and authenticated).
    RequestReceived,
    /// When a long-running response (a watch) has started.
    ResponseStarted,
    /// When the response is complete.
    ResponseComplete,
    /// When handling it panicked.
    Panic,
}

impl Stage {
    /// The name written in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::RequestReceived => "RequestReceived",
            Stage::ResponseStarted => "ResponseStarted",
            Stage::ResponseComplete => "ResponseComplete",
            Stage::Panic => "Panic",
        }
    }
}

impl Level {
    /// The name written in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "None",
            Level::Metadata => "Metadata",
            Level::Request => "Request",
            Level::RequestResponse => "RequestResponse",
        }
    }
}

/// An audit policy.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    /// The rules, first match wins.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
    /// Stages no event is written at, for every rule.
    #[serde(default)]
    pub omit_stages: Vec<Stage>,
    #[serde(default)]
    omit_managed_fields: bool,
}

/// How the policy audits one request: its level, the stages left out, and whether
/// `managedFields` are left out of the objects recorded (the rule's `omitManagedFields`,
/// else the policy's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audited {
    /// The level.
    pub level: Level,
    /// The stages not written.
    pub omit_stages: Vec<Stage>,
    /// Whether recorded objects lose their `metadata.managedFields`.
    pub omit_managed_fields: bool,
}

/// One rule of a policy.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRule {
    /// The level of a matching request.
    pub level: Level,
    /// User names (empty: any).
    #[serde(default)]
    pub users: Vec<String>,
    /// Groups, one of which the user must be in (empty: any).
    #[serde(default)]
    pub user_groups: Vec<String>,
    /// Verbs (empty: any).
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Resources (empty: any).
    #[serde(default)]
    pub resources: Vec<GroupResources>,
    /// Namespaces, `""` for cluster-scoped (empty: any).
    #[serde(default)]
    pub namespaces: Vec<String>,
    /// Non-resource paths, `*` at the end matching any rest.
    #[serde(default, rename = "nonResourceURLs")]
    pub non_resource_urls: Vec<String>,
    /// Stages no event is written at, for this rule.
    #[serde(default)]
    pub omit_stages: Vec<Stage>,
    #[serde(default)]
    omit_managed_fields: Option<bool>,
}

/// Resources of one API group.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GroupResources {
    /// The group (`""` for the core group).
    #[serde(default)]
    pub group: String,
    /// Resources: `pods`, `pods/log`, `*`, `*/status`, `pods/*` (empty: all of the group).
    #[serde(default)]
    pub resources: Vec<String>,
    /// Object names (empty: any).
    #[serde(default)]
    pub resource_names: Vec<String>,
}

/// Why a policy file is refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// Not a Policy.
    #[error("the audit policy is not valid: {0}")]
    Invalid(String),
}

impl Policy {
    /// Parses a policy file's text (YAML or JSON).
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy =
            serde_saphyr::from_str(text).map_err(|e| PolicyError::Invalid(e.to_string()))?;
        if policy.kind != "Policy" || policy.api_version != "audit.k8s.io/v1" {
            return Err(PolicyError::Invalid(format!(
                "expected apiVersion audit.k8s.io/v1 and kind Policy, got {:?} and {:?}",
                policy.api_version, policy.kind
            )));
        }
        Ok(policy)
    }

    /// How a request is audited; `user` is `None` when the request failed authentication
    /// (then no `users` or `userGroups` rule matches it).
    pub fn audit(&self, user: Option<&UserInfo>, a: &Attributes) -> Audited {
        match self.rules.iter().find(|r| r.matches(user, a)) {
            Some(rule) => {
                let mut omit_stages = self.omit_stages.clone();
                omit_stages.extend(rule.omit_stages.iter().copied());
                Audited {
                    level: rule.level,
                    omit_stages,
                    omit_managed_fields: rule
                        .omit_managed_fields
                        .unwrap_or(self.omit_managed_fields),
                }
            }
            None => Audited::default(),
        }
    }

    /// The level of a request and the stages to leave out (see [`Policy::audit`]).
    pub fn level(&self, user: Option<&UserInfo>, a: &Attributes) -> (Level, Vec<Stage>) {
        let audited = self.audit(user, a);
        (audited.level, audited.omit_stages)
    }
}

impl PolicyRule {
    fn matches(&self, user: Option<&UserInfo>, a: &Attributes) -> bool {
        let name = user.map(|u| u.name.as_str());
        if !self.users.is_empty() && !name.is_some_and(|n| self.users.iter().any(|u| u == n)) {
            return false;
        }
        let groups = user.map(|u| u.groups.as_slice()).unwrap_or_default();
        if !self.user_groups.is_empty() && !groups.iter().any(|g| self.user_groups.contains(g)) {
            return false;
        }

        if !self.verbs.is_empty() && !self.verbs.contains(&a.verb) {
            return false;
        }
        if !self.namespaces.is_empty() || !self.resources.is_empty() {
            return self.matches_resource(a);
        }
        if !self.non_resource_urls.is_empty() {
            return !a.is_resource
                && self
                    .non_resource_urls
                    .iter()
                    .any(|p| path_matches(&a.path, p));
        }
        true
    }

    fn matches_resource(&self, a: &Attributes) -> bool {
        if !a.is_resource {
            return false;
        }
        if !self.namespaces.is_empty() && !self.namespaces.contains(&a.namespace) {
            return false;
        }
        if self.resources.is_empty() {
            return true;
        }
        let combined = match a.subresource.is_empty() {
            true => a.resource.clone(),
            false => format!("{}/{}", a.resource, a.subresource),
        };
        self.resources
            .iter()
            .filter(|gr| gr.group == a.group)
            .any(|gr| {
                if gr.resources.is_empty() {
                    return true;
                }
                let named = gr.resource_names.is_empty() || gr.resource_names.contains(&a.name);
                named
                    && gr.resources.iter().any(|res| {
                        res == &combined
                            || res == "*"
                            || (!a.subresource.is_empty()
                                && res.strip_prefix("*/") == Some(a.subresource.as_str()))
                            || res.strip_suffix("/*") == Some(a.resource.as_str())
                    })
            })
    }
}

/// A non-resource path against a pattern: exact, `*`, or a prefix ending in `*`.
fn path_matches(path: &str, pattern: &str) -> bool {
    pattern == "*"
        || pattern == path
        || pattern
            .strip_suffix('*')
            .is_some_and(|prefix| path.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            extra: Default::default(),
        }
    }

    fn res(verb: &str, group: &str, resource: &str, sub: &str, ns: &str, name: &str) -> Attributes {
        Attributes::resource(verb, group, resource, sub, ns, name)
    }

    fn path(p: &str) -> Attributes {
        Attributes {
            is_resource: false,
            verb: "get".into(),
            path: p.into(),
            ..Default::default()
        }
    }

    const POLICY: &str = r#"
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: None
    users: ["system:kube-controller-manager"]
    verbs: ["watch", "get", "list"]
  - level: None
    nonResourceURLs: ["/healthz*", "/version"]
  - level: Metadata
    resources:
      - group: ""
        resources: ["secrets"]
  - level: RequestResponse
    resources:
      - group: "certificates.k8s.io"
        resources: ["certificatesigningrequests/*"]
    omitStages: ["ResponseStarted"]
  - level: Request
    userGroups: ["system:bootstrappers"]
    namespaces: ["kube-system"]
  - level: Request
    resources:
      - group: ""
        resources: ["configmaps"]
        resourceNames: ["cluster-info"]
  - level: Metadata
"#;

    #[test]
    fn the_first_matching_rule_decides() {
        let p = Policy::parse(POLICY).expect("a policy");
        let kcm = user("system:kube-controller-manager", &["system:authenticated"]);
        let admin = user(
            "kubernetes-admin",
            &["system:masters", "system:authenticated"],
        );
        let boot = user(
            "system:bootstrap:abcdef",
            &["system:bootstrappers", "system:authenticated"],
        );
        let csr = "certificatesigningrequests";
        for (case, u, a, want) in [
            (
                "reads of one user",
                &kcm,
                res("list", "", "secrets", "", "kube-system", ""),
                Level::None,
            ),
            (
                "its writes",
                &kcm,
                res("update", "", "secrets", "", "kube-system", "x"),
                Level::Metadata,
            ),
            ("a prefix path", &admin, path("/healthz/ready"), Level::None),
            ("an exact path", &admin, path("/version"), Level::None),
            ("another path", &admin, path("/metrics"), Level::Metadata),
            (
                "secrets by anyone",
                &boot,
                res("get", "", "secrets", "", "kube-system", "t"),
                Level::Metadata,
            ),
            (
                "resource/* matches a subresource",
                &admin,
                res("update", "certificates.k8s.io", csr, "approval", "", "c"),
                Level::RequestResponse,
            ),
            (
                "resource/* matches the resource too",
                &admin,
                res("create", "certificates.k8s.io", csr, "", "", ""),
                Level::RequestResponse,
            ),
            (
                "another group",
                &admin,
                res("create", "", "nodes", "", "", ""),
                Level::Metadata,
            ),
            (
                "groups and namespaces",
                &boot,
                res("get", "", "configmaps", "", "kube-system", "x"),
                Level::Request,
            ),
            (
                "not in the namespace",
                &boot,
                res("get", "", "configmaps", "", "default", "x"),
                Level::Metadata,
            ),
            (
                "a named object",
                &admin,
                res("get", "", "configmaps", "", "kube-public", "cluster-info"),
                Level::Request,
            ),
            (
                "another name",
                &admin,
                res("get", "", "configmaps", "", "kube-public", "other"),
                Level::Metadata,
            ),
        ] {
            assert_eq!(p.level(Some(u), &a).0, want, "{case}");
        }
        let (_, omit) = p.level(
            Some(&admin),
            &res("patch", "certificates.k8s.io", csr, "status", "", "c"),
        );
        assert_eq!(
            omit,
            [Stage::RequestReceived, Stage::ResponseStarted],
            "the policy's and the rule's"
        );
    }

    #[test]
    fn a_request_that_failed_authentication_matches_no_user_rule() {
        let p = Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  users: [\"\"]\n- level: None\n  userGroups: [\"\"]\n- level: Metadata\n",
        )
        .expect("a policy");
        assert_eq!(p.level(None, &path("/api")).0, Level::Metadata);
    }

    #[test]
    fn resource_patterns_as_kube_apiserver_reads_them() {
        let rule = |r: &str| PolicyRule {
            level: Level::Metadata,
            users: vec![],
            user_groups: vec![],
            verbs: vec![],
            resources: vec![GroupResources {
                group: String::new(),
                resources: vec![r.into()],
                resource_names: vec![],
            }],
            namespaces: vec![],
            non_resource_urls: vec![],
            omit_stages: vec![],
            omit_managed_fields: None,
        };
        for (pattern, resource, sub, want) in [
            ("nodes", "nodes", "", true),
            ("nodes", "nodes", "status", false),
            ("nodes/status", "nodes", "status", true),
            ("*", "nodes", "status", true),
            ("*/status", "nodes", "status", true),
            ("*/status", "nodes", "", false),
            ("nodes/*", "nodes", "status", true),
            ("nodes/*", "nodes", "", true),
            ("nodes/*", "leases", "", false),
        ] {
            let a = res("get", "", resource, sub, "", "n");
            assert_eq!(
                rule(pattern).matches_resource(&a),
                want,
                "{pattern} vs {resource}/{sub}"
            );
        }
        assert!(
            !rule("*").matches(Some(&user("u", &[])), &path("/healthz")),
            "a resource rule never matches a path"
        );
    }

    #[test]
    fn a_rule_s_omit_managed_fields_overrides_the_policy_s() {
        let p = Policy::parse(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nrules:\n- level: Request\n  users: [keep]\n  omitManagedFields: false\n- level: Request\n",
        )
        .expect("a policy");
        let a = path("/api");
        assert!(!p.audit(Some(&user("keep", &[])), &a).omit_managed_fields);
        assert!(p.audit(Some(&user("other", &[])), &a).omit_managed_fields);
        assert_eq!(p.audit(Some(&user("other", &[])), &a).level, Level::Request);
    }

    #[test]
    fn a_policy_that_is_not_one_is_refused_with_the_reason() {
        for (case, text) in [
            ("wrong kind", "apiVersion: audit.k8s.io/v1\nkind: Config\n"),
            (
                "old version",
                "apiVersion: audit.k8s.io/v1beta1\nkind: Policy\n",
            ),
            (
                "unknown level",
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n",
            ),
            (
                "unknown field",
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: None\n  user: [a]\n",
            ),
            ("not YAML", "{"),
        ] {
            assert!(Policy::parse(text).is_err(), "{case}");
        }
        let empty = Policy::parse("apiVersion: audit.k8s.io/v1\nkind: Policy\n").expect("empty");
        assert_eq!(
            empty.level(Some(&user("u", &[])), &path("/")).0,
            Level::None,
            "no rule: nothing"
        );
    }
}
