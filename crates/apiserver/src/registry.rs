//! The served resources, each described once: where it lives in the API and in storage,
//! its verbs, subresources, field selectors and table columns. The HTTP layer is generic
//! over these descriptions; per-kind behaviour is in `strategy`.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use serde_json::Value;

use crate::patch::strategic::{Field, Schema, Strategy};

/// The kinds this server stores; `strategy` and `tables` match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// core/v1 Namespace.
    Namespace,
    /// core/v1 Secret.
    Secret,
    /// core/v1 ConfigMap.
    ConfigMap,
    /// core/v1 Node.
    Node,
    /// coordination.k8s.io/v1 Lease.
    Lease,
    /// certificates.k8s.io CertificateSigningRequest.
    Csr,
    /// rbac Role.
    Role,
    /// rbac RoleBinding.
    RoleBinding,
    /// rbac ClusterRole.
    ClusterRole,
    /// rbac ClusterRoleBinding.
    ClusterRoleBinding,
}

/// How an object's name is validated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 label (namespaces).
    Dns1123Label,
    /// DNS-1123 subdomain (most objects).
    Dns1123Subdomain,
    /// Any path segment (RBAC objects, CSRs).
    PathSegment,
}

/// One served resource in one group-version.
#[derive(Debug)]
pub struct ResourceDef {
    /// Which kind.
    pub kind_id: Kind,
    /// API group, empty for core.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind name.
    pub kind: &'static str,
    /// Plural resource name (URL segment).
    pub plural: &'static str,
    /// Singular name.
    pub singular: &'static str,
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// The resource segment of storage keys (kube-apiserver's: nodes are `minions`).
    pub storage: &'static str,
    /// Subresources served (`status`, `approval`).
    pub subresources: &'static [&'static str],
    /// Fields usable in field selectors besides `metadata.name`/`metadata.namespace`.
    pub field_selectors: &'static [&'static str],
    /// How names are validated.
    pub name_rule: NameRule,
    /// Round-trips an object through its typed form: drops unknown fields, checks types.
    pub normalize: fn(Value) -> Result<Value, String>,
    /// Whether a PUT without `metadata.resourceVersion` is allowed.
    pub unconditional_update: bool,
    /// The JSON Schema (2020-12, with `$defs`) of the kind, for OpenAPI and `kubectl explain`.
    pub schema: fn() -> Value,
    /// How a strategic merge patch merges the kind's fields (its Go types' patch tags).
    pub patch_schema: &'static Schema,
}

/// The verbs every stored resource serves.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl ResourceDef {
    /// `group/version`, or `version` for core.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key prefix of all objects (`/registry/<storage>/`).
    pub fn prefix(&self) -> String {
        format!("/registry/{}/", self.storage)
    }

    /// The storage key prefix of a namespace's objects, or of all when `ns` is empty.
    pub fn ns_prefix(&self, ns: &str) -> String {
        if self.namespaced && !ns.is_empty() {
            format!("/registry/{}/{ns}/", self.storage)
        } else {
            self.prefix()
        }
    }

    /// The storage key of one object.
    pub fn key(&self, ns: &str, name: &str) -> String {
        if self.namespaced {
            format!("/registry/{}/{ns}/{name}", self.storage)
        } else {
            format!("/registry/{}/{name}", self.storage)
        }
    }

    /// The resource and group, for error messages.
    pub fn subject<'a>(&'a self, name: &'a str) -> kubeboot_api::status::Subject<'a> {
        kubeboot_api::status::Subject {
            resource: self.plural,
            group: self.group,
            name,
        }
    }
}

fn schema<T: schemars::JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default()
}

fn normalize<T: serde::de::DeserializeOwned + serde::Serialize>(v: Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// Every stored resource the server serves, in discovery order.
pub static RESOURCES: &[ResourceDef] = &[
    ResourceDef {
        kind_id: Kind::Namespace,
        group: "",
        version: "v1",
        kind: "Namespace",
        plural: "namespaces",
        singular: "namespace",
        short_names: &["ns"],
        namespaced: false,
        storage: "namespaces",
        subresources: &["status"],
        field_selectors: &["status.phase"],
        name_rule: NameRule::Dns1123Label,
        normalize: normalize::<Namespace>,
        unconditional_update: true,
        patch_schema: &NAMESPACE_PATCH,
        schema: schema::<Namespace>,
    },
    ResourceDef {
        kind_id: Kind::Secret,
        group: "",
        version: "v1",
        kind: "Secret",
        plural: "secrets",
        singular: "secret",
        short_names: &[],
        namespaced: true,
        storage: "secrets",
        subresources: &[],
        field_selectors: &["type"],
        name_rule: NameRule::Dns1123Subdomain,
        normalize: normalize::<Secret>,
        unconditional_update: true,
        patch_schema: &METADATA_PATCH,
        schema: schema::<Secret>,
    },
    ResourceDef {
        kind_id: Kind::ConfigMap,
        group: "",
        version: "v1",
        kind: "ConfigMap",
        plural: "configmaps",
        singular: "configmap",
        short_names: &["cm"],
        namespaced: true,
        storage: "configmaps",
        subresources: &[],
        field_selectors: &[],
        name_rule: NameRule::Dns1123Subdomain,
        normalize: normalize::<ConfigMap>,
        unconditional_update: true,
        patch_schema: &METADATA_PATCH,
        schema: schema::<ConfigMap>,
    },
    ResourceDef {
        kind_id: Kind::Node,
        group: "",
        version: "v1",
        kind: "Node",
        plural: "nodes",
        singular: "node",
        short_names: &["no"],
        namespaced: false,
        storage: "minions",
        subresources: &["status"],
        field_selectors: &["spec.unschedulable"],
        name_rule: NameRule::Dns1123Subdomain,
        normalize: normalize::<Node>,
        unconditional_update: true,
        patch_schema: &NODE_PATCH,
        schema: schema::<Node>,
    },
    ResourceDef {
        kind_id: Kind::Lease,
        group: "coordination.k8s.io",
        version: "v1",
        kind: "Lease",
        plural: "leases",
        singular: "lease",
        short_names: &[],
        namespaced: true,
        storage: "leases",
        subresources: &[],
        field_selectors: &[],
        name_rule: NameRule::Dns1123Subdomain,
        normalize: normalize::<Lease>,
        unconditional_update: true,
        patch_schema: &METADATA_PATCH,
        schema: schema::<Lease>,
    },
    ResourceDef {
        kind_id: Kind::Csr,
        group: "certificates.k8s.io",
        version: "v1",
        kind: "CertificateSigningRequest",
        plural: "certificatesigningrequests",
        singular: "certificatesigningrequest",
        short_names: &["csr"],
        namespaced: false,
        storage: "certificatesigningrequests",
        subresources: &["approval", "status"],
        field_selectors: &["spec.signerName"],
        name_rule: NameRule::PathSegment,
        normalize: normalize::<CertificateSigningRequest>,
        unconditional_update: true,
        patch_schema: &METADATA_PATCH,
        schema: schema::<CertificateSigningRequest>,
    },
    ResourceDef {
        kind_id: Kind::Csr,
        group: "certificates.k8s.io",
        version: "v1beta1",
        kind: "CertificateSigningRequest",
        plural: "certificatesigningrequests",
        singular: "certificatesigningrequest",
        short_names: &["csr"],
        namespaced: false,
        storage: "certificatesigningrequests",
        subresources: &["approval", "status"],
        field_selectors: &["spec.signerName"],
        name_rule: NameRule::PathSegment,
        normalize: normalize::<CertificateSigningRequest>,
        unconditional_update: true,
        patch_schema: &METADATA_PATCH,
        schema: schema::<CertificateSigningRequest>,
    },
    ResourceDef {
        kind_id: Kind::ClusterRole,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRole",
        plural: "clusterroles",
        singular: "clusterrole",
        short_names: &[],
        namespaced: false,
        storage: "clusterroles",
        subresources: &[],
        field_selectors: &[],
        name_rule: NameRule::PathSegment,
        normalize: normalize::<ClusterRole>,
        unconditional_update: true,
        patch_schema: &METADATA_PATCH,
        schema: schema::<ClusterRole>,
    },
    ResourceDef {
        kind_id: Kind::ClusterRoleBinding,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "ClusterRoleBinding",
        plural: "clusterrolebindings",
        singular: "clusterrolebinding",
        short_names: &[],
        namespaced: false,
        storage: "clusterrolebindings",
        subresources: &[],
        field_selectors: &[],
        name_rule: NameRule::PathSegment,
        normalize: normalize::<ClusterRoleBinding>,
        unconditional_update: true,
        patch_schema: &METADATA_PATCH,
        schema: schema::<ClusterRoleBinding>,
    },
    ResourceDef {
        kind_id: Kind::Role,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "Role",
        plural: "roles",
        singular: "role",
        short_names: &[],
        namespaced: true,
        storage: "roles",
        subresources: &[],
        field_selectors: &[],
        name_rule: NameRule::PathSegment,
        normalize: normalize::<Role>,
        unconditional_update: true,
        patch_schema: &METADATA_PATCH,
        schema: schema::<Role>,
    },
    ResourceDef {
        kind_id: Kind::RoleBinding,
        group: "rbac.authorization.k8s.io",
        version: "v1",
        kind: "RoleBinding",
        plural: "rolebindings",
        singular: "rolebinding",
        short_names: &[],
        namespaced: true,
        storage: "rolebindings",
        subresources: &[],
        field_selectors: &[],
        name_rule: NameRule::PathSegment,
        normalize: normalize::<RoleBinding>,
        unconditional_update: true,
        patch_schema: &METADATA_PATCH,
        schema: schema::<RoleBinding>,
    },
];

/// ObjectMeta's patch tags: `ownerReferences` merged by `uid`, `finalizers` as a set.
static OBJECT_META_PATCH: Schema = Schema {
    fields: &[
        ("ownerReferences", Field::of(Strategy::MergeByKey("uid"))),
        ("finalizers", Field::of(Strategy::Merge)),
    ],
};

/// A kind whose only tagged fields are its metadata's (Secret, ConfigMap, Lease, CSR —
/// its `status.conditions` has no patch strategy — and the RBAC kinds).
static METADATA_PATCH: Schema = Schema {
    fields: &[(
        "metadata",
        Field::nested(Strategy::Untagged, &OBJECT_META_PATCH),
    )],
};

static CONDITIONS_BY_TYPE: Schema = Schema {
    fields: &[("conditions", Field::of(Strategy::MergeByKey("type")))],
};

/// Namespace: `status.conditions` merged by `type`.
static NAMESPACE_PATCH: Schema = Schema {
    fields: &[
        (
            "metadata",
            Field::nested(Strategy::Untagged, &OBJECT_META_PATCH),
        ),
        (
            "status",
            Field::nested(Strategy::Untagged, &CONDITIONS_BY_TYPE),
        ),
    ],
};

/// Node: `spec.podCIDRs` a set; `status.conditions` and `status.addresses` merged by
/// `type`. `spec.taints` has no strategy: a patch replaces the list.
static NODE_PATCH: Schema = Schema {
    fields: &[
        (
            "metadata",
            Field::nested(Strategy::Untagged, &OBJECT_META_PATCH),
        ),
        ("spec", Field::nested(Strategy::Untagged, &NODE_SPEC_PATCH)),
        (
            "status",
            Field::nested(Strategy::Untagged, &NODE_STATUS_PATCH),
        ),
    ],
};

static NODE_SPEC_PATCH: Schema = Schema {
    fields: &[("podCIDRs", Field::of(Strategy::Merge))],
};

static NODE_STATUS_PATCH: Schema = Schema {
    fields: &[
        ("conditions", Field::of(Strategy::MergeByKey("type"))),
        ("addresses", Field::of(Strategy::MergeByKey("type"))),
    ],
};

/// The create-only review resources (`verb create`, nothing stored).
#[derive(Debug)]
pub struct ReviewDef {
    /// Group.
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural.
    pub plural: &'static str,
    /// Kind.
    pub kind: &'static str,
}

/// The review resources.
pub static REVIEWS: &[ReviewDef] = &[
    ReviewDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        kind: "SelfSubjectAccessReview",
    },
    ReviewDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "subjectaccessreviews",
        kind: "SubjectAccessReview",
    },
    ReviewDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectrulesreviews",
        kind: "SelfSubjectRulesReview",
    },
    ReviewDef {
        group: "authentication.k8s.io",
        version: "v1",
        plural: "selfsubjectreviews",
        kind: "SelfSubjectReview",
    },
    // kubectl 1.27 asks the beta and alpha versions for `auth whoami`.
    ReviewDef {
        group: "authentication.k8s.io",
        version: "v1beta1",
        plural: "selfsubjectreviews",
        kind: "SelfSubjectReview",
    },
    ReviewDef {
        group: "authentication.k8s.io",
        version: "v1alpha1",
        plural: "selfsubjectreviews",
        kind: "SelfSubjectReview",
    },
];

/// Finds a stored resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds the preferred (first) version of a resource by kind.
pub fn by_kind(kind: Kind) -> &'static ResourceDef {
    RESOURCES
        .iter()
        .find(|r| r.kind_id == kind)
        .expect("every Kind has a ResourceDef")
}

/// The group-versions served, in discovery order: `(group, version)`.
pub fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&str, &str)> = Vec::new();
    let all = RESOURCES
        .iter()
        .map(|r| (r.group, r.version))
        .chain(REVIEWS.iter().map(|r| (r.group, r.version)));
    for gv in all {
        if !out.contains(&gv) {
            out.push(gv);
        }
    }
    out
}
