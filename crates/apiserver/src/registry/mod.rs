//! The served resources, each described once, in a file of its own: where it lives in the
//! API and in storage, its names, scope, subresources and field selectors, its typed and
//! protobuf schemas, its patch tags, and its `Strategy` (defaulting, admission, validation,
//! table columns). The handlers are generic over these descriptions. Adding a resource is a
//! file here and a line in [`RESOURCES`].

mod cluster_trust_bundle;
mod columns;
mod config_data;
mod configmap;
mod csr;
pub mod deletion;
mod endpoints;
pub(crate) mod escalation;
mod event;
mod events_v1;
mod ipaddress;
mod label_selector;
mod lease;
mod namespace;
pub mod namespace_conditions;
mod node;
mod object_meta;
mod pod;
mod rbac_validation;
mod rolebindings;
mod roles;
mod secret;
pub mod service;
pub mod strategy;

use serde_json::Value;

pub use self::csr::validate_signer_name;
pub use self::namespace::{
    KUBERNETES_FINALIZER, has_name_label, set_spec_finalizers, spec_finalizers,
};
use self::strategy::Strategy;
use crate::patch::strategic::{Field, Schema, Strategy as Merge};
use crate::protobuf::schema::Field as ProtobufField;
use crate::selectors::FieldLabels;

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
    /// core/v1 Pod.
    Pod,
    /// core/v1 Event.
    Event,
    /// core/v1 Service.
    Service,
    /// core/v1 Endpoints.
    Endpoints,
    /// networking.k8s.io/v1 IPAddress.
    IpAddress,
    /// certificates.k8s.io CertificateSigningRequest.
    Csr,
    /// certificates.k8s.io ClusterTrustBundle.
    ClusterTrustBundle,
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
    /// DNS-1035 label: a DNS-1123 label that starts with a letter (Services).
    Dns1035Label,
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
    /// kubectl short names.
    pub short_names: &'static [&'static str],
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// The resource segment of storage keys (kube-apiserver's: nodes are `minions`).
    pub storage: &'static str,
    /// Subresources served (`status`, `approval`).
    pub subresources: &'static [&'static str],
    /// The fields its field selectors may name.
    pub field_selectors: FieldLabels,
    /// How names are validated.
    pub name_rule: NameRule,
    /// Round-trips an object through its typed form: drops unknown fields, checks types.
    pub normalize: fn(Value) -> Result<Value, String>,
    /// The JSON Schema (2020-12, with `$defs`) of the kind, for OpenAPI and `kubectl explain`.
    pub schema: fn() -> Value,
    /// How a strategic merge patch merges the kind's fields (its Go types' patch tags).
    pub patch_schema: &'static Schema,
    /// The protobuf field numbers of the kind, when typed clients may send it so.
    pub protobuf: Option<&'static [ProtobufField]>,
    /// How this version is converted to and from the stored form, when it is not the
    /// stored version (events.k8s.io/v1 Events are stored as core/v1 Events).
    pub conversion: Option<&'static Conversion>,
    /// How the kind behaves on create and update (over the stored form).
    pub strategy: &'static dyn Strategy,
}

/// A served version of a kind stored in another version's form, whose top-level fields
/// it names differently (events.k8s.io/v1's `note` is core/v1's `message`).
#[derive(Debug)]
pub struct Conversion {
    /// This version's names of top-level fields and the stored names they stand for.
    pub renamed: &'static [(&'static str, &'static str)],
}

impl Conversion {
    /// The stored name of this version's top-level field `field` (or the reverse).
    fn rename<'a>(&self, field: &'a str, to_version: bool) -> &'a str {
        let found = self.renamed.iter().find(|(mine, stored)| {
            if to_version {
                *stored == field
            } else {
                *mine == field
            }
        });
        match found {
            Some((mine, _)) if to_version => mine,
            Some((_, stored)) => stored,
            None => field,
        }
    }

    /// The object with its top-level fields renamed: to this version's names, or to the
    /// stored ones.
    fn convert(&self, v: Value, to_version: bool) -> Value {
        let Value::Object(fields) = v else {
            return v;
        };
        let renamed = fields
            .into_iter()
            .map(|(k, v)| (self.rename(&k, to_version).to_owned(), v))
            .collect();
        Value::Object(renamed)
    }
}

/// The verbs every stored resource serves.
const VERBS: &[&str] = &[
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
    /// The verbs it serves: all of them, but for a namespace, which is deleted one at a
    /// time (kube-apiserver's namespace storage has no `deletecollection`).
    pub fn verbs(&self) -> &'static [&'static str] {
        match self.kind_id {
            Kind::Namespace => &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
            _ => VERBS,
        }
    }

    /// The verbs of its subresource `sub`: `finalize` only takes an update.
    pub fn subresource_verbs(sub: &str) -> &'static [&'static str] {
        match sub {
            "finalize" => &["update"],
            _ => &["get", "patch", "update"],
        }
    }

    /// Whether it serves `verb` (on subresource `sub`, if not empty).
    pub fn serves(&self, verb: &str, sub: &str) -> bool {
        match sub {
            "" => self.verbs().contains(&verb),
            sub => Self::subresource_verbs(sub).contains(&verb),
        }
    }
}

/// Each cause as an `Invalid` status lists it, for the validation tests.
#[cfg(test)]
pub(crate) fn messages(causes: impl AsRef<[kubeboot_api::StatusCause]>) -> Vec<String> {
    causes
        .as_ref()
        .iter()
        .map(kubeboot_api::StatusCause::summary)
        .collect()
}

/// apimachinery's `ParseGroupVersion`: `<group>/<version>` or `<version>` (of the core
/// group); none for more than one `/`.
pub(crate) fn parse_group_version(api_version: &str) -> Option<(&str, &str)> {
    match api_version.split('/').count() {
        1 => Some(("", api_version)),
        2 => api_version.split_once('/'),
        _ => None,
    }
}

impl ResourceDef {
    /// Whether `api_version` (`<group>/<version>`, or `<version>` of the core group) names
    /// this kind's group and version.
    pub fn is_api_version(&self, api_version: &str) -> bool {
        parse_group_version(api_version) == Some((self.group, self.version))
    }

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

    /// A stored object as this version has it.
    pub fn to_version(&self, stored: Value) -> Value {
        match self.conversion {
            Some(c) => c.convert(stored, true),
            None => stored,
        }
    }

    /// An object of this version as stored.
    pub fn to_storage(&self, sent: Value) -> Value {
        match self.conversion {
            Some(c) => c.convert(sent, false),
            None => sent,
        }
    }

    /// The stored field a field selector of this version reads (`regarding.name` is
    /// `involvedObject.name`).
    pub fn stored_field(&self, field: &str) -> String {
        let Some(c) = self.conversion else {
            return field.to_owned();
        };
        match field.split_once('.') {
            Some((top, rest)) => format!("{}.{rest}", c.rename(top, false)),
            None => c.rename(field, false).to_owned(),
        }
    }

    /// The singular name (`kubectl get` accepts it): the kind in lower case.
    pub fn singular(&self) -> String {
        self.kind.to_ascii_lowercase()
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

pub(crate) fn schema<T: schemars::JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or_default()
}

pub(crate) fn normalize<T: serde::de::DeserializeOwned + serde::Serialize>(
    v: Value,
) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v).map_err(|e| e.to_string())?;
    serde_json::to_value(typed).map_err(|e| e.to_string())
}

/// Every stored resource the server serves, in discovery order: one line each.
pub static RESOURCES: &[&ResourceDef] = &[
    &namespace::NAMESPACES,
    &secret::SECRETS,
    &configmap::CONFIGMAPS,
    &node::NODES,
    &lease::LEASES,
    &pod::PODS,
    &event::EVENTS,
    &service::SERVICES,
    &endpoints::ENDPOINTS,
    &csr::CSRS,
    &csr::CSRS_V1BETA1,
    &cluster_trust_bundle::CLUSTER_TRUST_BUNDLES,
    &cluster_trust_bundle::CLUSTER_TRUST_BUNDLES_V1BETA1,
    &roles::CLUSTER_ROLES,
    &rolebindings::CLUSTER_ROLE_BINDINGS,
    &roles::ROLES,
    &rolebindings::ROLE_BINDINGS,
    &ipaddress::IP_ADDRESSES,
    &events_v1::EVENTS_V1,
];

/// A subresource that only takes a create of another kind: `pods/eviction` (policy/v1
/// Eviction), which deletes the pod as kube-apiserver's eviction does when no
/// PodDisruptionBudget stands in the way.
#[derive(Debug)]
pub struct CreateSubresource {
    /// The resource's plural.
    pub plural: &'static str,
    /// The subresource.
    pub subresource: &'static str,
    /// The group, version and kind of what is created.
    pub group: &'static str,
    /// Its version.
    pub version: &'static str,
    /// Its kind.
    pub kind: &'static str,
}

/// Every create-only subresource served.
pub static CREATE_SUBRESOURCES: &[CreateSubresource] = &[CreateSubresource {
    plural: "pods",
    subresource: "eviction",
    group: "policy",
    version: "v1",
    kind: "Eviction",
}];

/// ObjectMeta's patch tags: `ownerReferences` merged by `uid`, `finalizers` as a set.
pub(crate) static OBJECT_META_PATCH: Schema = Schema {
    fields: &[
        ("ownerReferences", Field::of(Merge::MergeByKey("uid"))),
        ("finalizers", Field::of(Merge::Merge)),
    ],
};

/// A kind whose only tagged fields are its metadata's (Secret, ConfigMap, Lease and the
/// RBAC kinds; a CSR has its own, for server-side apply's `status.conditions`).
pub(crate) static METADATA_PATCH: Schema = Schema {
    fields: &[(
        "metadata",
        Field::nested(Merge::Untagged, &OBJECT_META_PATCH),
    )],
};

pub(crate) static CONDITIONS_BY_TYPE: Schema = Schema {
    fields: &[("conditions", Field::of(Merge::MergeByKey("type")))],
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
    /// Asked in a namespace (LocalSubjectAccessReview) or cluster-wide.
    pub namespaced: bool,
    /// Its protobuf field numbers.
    pub protobuf: &'static [ProtobufField],
}

/// The review resources.
pub static REVIEWS: &[ReviewDef] = &[
    ReviewDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        protobuf: crate::protobuf::schema::SELF_SUBJECT_ACCESS_REVIEW,
    },
    ReviewDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "subjectaccessreviews",
        kind: "SubjectAccessReview",
        namespaced: false,
        protobuf: crate::protobuf::schema::SUBJECT_ACCESS_REVIEW,
    },
    ReviewDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "localsubjectaccessreviews",
        kind: "LocalSubjectAccessReview",
        namespaced: true,
        protobuf: crate::protobuf::schema::SUBJECT_ACCESS_REVIEW,
    },
    ReviewDef {
        group: "authentication.k8s.io",
        version: "v1",
        plural: "tokenreviews",
        kind: "TokenReview",
        namespaced: false,
        protobuf: crate::protobuf::schema::TOKEN_REVIEW,
    },
    ReviewDef {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectrulesreviews",
        kind: "SelfSubjectRulesReview",
        namespaced: false,
        protobuf: crate::protobuf::schema::SELF_SUBJECT_RULES_REVIEW,
    },
    ReviewDef {
        group: "authentication.k8s.io",
        version: "v1",
        plural: "selfsubjectreviews",
        kind: "SelfSubjectReview",
        namespaced: false,
        protobuf: crate::protobuf::schema::SELF_SUBJECT_REVIEW,
    },
    // kubectl 1.27 asks the beta and alpha versions for `auth whoami`.
    ReviewDef {
        group: "authentication.k8s.io",
        version: "v1beta1",
        plural: "selfsubjectreviews",
        kind: "SelfSubjectReview",
        namespaced: false,
        protobuf: crate::protobuf::schema::SELF_SUBJECT_REVIEW,
    },
    ReviewDef {
        group: "authentication.k8s.io",
        version: "v1alpha1",
        plural: "selfsubjectreviews",
        kind: "SelfSubjectReview",
        namespaced: false,
        protobuf: crate::protobuf::schema::SELF_SUBJECT_REVIEW,
    },
];

/// Finds a stored resource by group, version and plural.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceDef> {
    RESOURCES
        .iter()
        .copied()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// Finds the preferred (first) version of a resource by kind.
pub fn by_kind(kind: Kind) -> &'static ResourceDef {
    RESOURCES
        .iter()
        .copied()
        .find(|r| r.kind_id == kind)
        .expect("every Kind has a ResourceDef")
}

/// The protobuf schema of a kind a client sends (`apiVersion` and `kind` of its envelope).
pub fn protobuf_schema(api_version: &str, kind: &str) -> Option<&'static [ProtobufField]> {
    use crate::protobuf::schema as pb;
    let stored = RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
        .and_then(|r| r.protobuf);
    let review = REVIEWS
        .iter()
        .find(|r| r.kind == kind && format!("{}/{}", r.group, r.version) == api_version)
        .map(|r| r.protobuf);
    let delete_options = matches!(api_version, "v1" | "meta.k8s.io/v1") && kind == "DeleteOptions";
    stored
        .or(review)
        .or(delete_options.then_some(pb::DELETE_OPTIONS))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_api_version_names_the_group_and_version_of_its_kind() {
        let csrs = find("certificates.k8s.io", "v1", "certificatesigningrequests").unwrap();
        let configmaps = find("", "v1", "configmaps").unwrap();
        for (def, api_version, names) in [
            (csrs, "certificates.k8s.io/v1", true),
            (csrs, "certificates.k8s.io/v1beta1", false),
            (csrs, "v1", false),
            (csrs, "certificates.k8s.io", false),
            (csrs, "/v1", false),
            (configmaps, "v1", true),
            // As apimachinery's ParseGroupVersion reads it: the empty group.
            (configmaps, "/v1", true),
            (csrs, "certificates.k8s.io/v1/x", false),
            (configmaps, "apps/v1", false),
            (configmaps, "v2", false),
        ] {
            assert_eq!(def.is_api_version(api_version), names, "{api_version}");
        }
    }
}
