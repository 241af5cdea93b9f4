//! Protobuf field numbers of the kinds this server accepts in protobuf
//! (from Kubernetes' `generated.proto` files). The numbers come from k8s.io/apimachinery's
//! `pkg/runtime`, `pkg/api/resource` and `pkg/apis/meta/v1` `generated.proto`, and from
//! k8s.io/api's `core/v1`, `coordination/v1`, `certificates/v1`, `rbac/v1`,
//! `authorization/v1` and `authentication/v1` `generated.proto`.

/// The type of a field.
#[derive(Debug)]
pub enum Ty {
    /// string
    Str,
    /// bytes (JSON: base64)
    Bytes,
    /// int64
    I64,
    /// int32
    I32,
    /// bool
    Bool,
    /// meta/v1 Time (JSON: RFC 3339 seconds)
    Time,
    /// meta/v1 MicroTime (JSON: RFC 3339 microseconds)
    MicroTime,
    /// resource.Quantity (JSON: its string)
    Quantity,
    /// a nested message
    Msg(&'static [Field]),
    /// map<string,string>
    MapStr,
    /// map<string,bytes>
    MapBytes,
    /// map<string,Message>
    MapMsg(&'static [Field]),
    /// certificates/authorization ExtraValue (JSON: list of strings)
    ExtraValue,
    /// map<string,ExtraValue> (JSON: map of string lists)
    MapExtra,
    /// map<string,Quantity> (JSON: map of strings)
    MapQuantity,
}

/// One field of a message.
#[derive(Debug)]
pub struct Field {
    /// Field number.
    pub num: u32,
    /// JSON name.
    pub name: &'static str,
    /// Type.
    pub ty: Ty,
    /// `repeated`.
    pub repeated: bool,
}

/// A singular field.
const fn f(num: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

/// A `repeated` field.
const fn rep(num: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: true,
    }
}

// ---- k8s.io/apimachinery/pkg/runtime/generated.proto ----

/// runtime.Unknown: the envelope of every protobuf body.
pub static UNKNOWN: &[Field] = &[
    f(1, "typeMeta", Ty::Msg(TYPE_META)),
    f(2, "raw", Ty::Bytes),
    f(3, "contentEncoding", Ty::Str),
    f(4, "contentType", Ty::Str),
];

/// runtime.TypeMeta.
pub static TYPE_META: &[Field] = &[f(1, "apiVersion", Ty::Str), f(2, "kind", Ty::Str)];

// ---- k8s.io/apimachinery/pkg/api/resource/generated.proto ----

/// resource.Quantity.
pub static QUANTITY: &[Field] = &[f(1, "string", Ty::Str)];

// ---- k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto ----

/// meta/v1 Time and MicroTime (both encoded as a Timestamp).
pub static TIME: &[Field] = &[f(1, "seconds", Ty::I64), f(2, "nanos", Ty::I32)];

/// meta/v1 ObjectMeta (without managedFields).
pub static OBJECT_META: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "generateName", Ty::Str),
    f(3, "namespace", Ty::Str),
    f(4, "selfLink", Ty::Str),
    f(5, "uid", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "generation", Ty::I64),
    f(8, "creationTimestamp", Ty::Time),
    f(9, "deletionTimestamp", Ty::Time),
    f(10, "deletionGracePeriodSeconds", Ty::I64),
    f(11, "labels", Ty::MapStr),
    f(12, "annotations", Ty::MapStr),
    rep(13, "ownerReferences", Ty::Msg(OWNER_REFERENCE)),
    rep(14, "finalizers", Ty::Str),
];

/// meta/v1 OwnerReference.
pub static OWNER_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "controller", Ty::Bool),
    f(7, "blockOwnerDeletion", Ty::Bool),
];

/// meta/v1 Condition.
pub static CONDITION: &[Field] = &[
    f(1, "type", Ty::Str),
    f(2, "status", Ty::Str),
    f(3, "observedGeneration", Ty::I64),
    f(4, "lastTransitionTime", Ty::Time),
    f(5, "reason", Ty::Str),
    f(6, "message", Ty::Str),
];

/// meta/v1 LabelSelector.
pub static LABEL_SELECTOR: &[Field] = &[
    f(1, "matchLabels", Ty::MapStr),
    rep(2, "matchExpressions", Ty::Msg(LABEL_SELECTOR_REQUIREMENT)),
];

/// meta/v1 LabelSelectorRequirement.
pub static LABEL_SELECTOR_REQUIREMENT: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    rep(3, "values", Ty::Str),
];

/// meta/v1 FieldSelectorRequirement.
pub static FIELD_SELECTOR_REQUIREMENT: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "operator", Ty::Str),
    rep(3, "values", Ty::Str),
];

/// meta/v1 DeleteOptions.
pub static DELETE_OPTIONS: &[Field] = &[
    f(1, "gracePeriodSeconds", Ty::I64),
    f(2, "preconditions", Ty::Msg(PRECONDITIONS)),
    f(3, "orphanDependents", Ty::Bool),
    f(4, "propagationPolicy", Ty::Str),
    rep(5, "dryRun", Ty::Str),
    f(
        6,
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        Ty::Bool,
    ),
];

/// meta/v1 Preconditions.
pub static PRECONDITIONS: &[Field] = &[f(1, "uid", Ty::Str), f(2, "resourceVersion", Ty::Str)];

// ---- k8s.io/api/core/v1/generated.proto ----

/// core/v1 Namespace.
pub static NAMESPACE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NAMESPACE_SPEC)),
    f(3, "status", Ty::Msg(NAMESPACE_STATUS)),
];

/// core/v1 NamespaceSpec.
pub static NAMESPACE_SPEC: &[Field] = &[rep(1, "finalizers", Ty::Str)];

/// core/v1 NamespaceStatus.
pub static NAMESPACE_STATUS: &[Field] = &[
    f(1, "phase", Ty::Str),
    rep(2, "conditions", Ty::Msg(NAMESPACE_CONDITION)),
];

/// core/v1 NamespaceCondition.
pub static NAMESPACE_CONDITION: &[Field] = &[
    f(1, "type", Ty::Str),
    f(2, "status", Ty::Str),
    f(4, "lastTransitionTime", Ty::Time),
    f(5, "reason", Ty::Str),
    f(6, "message", Ty::Str),
];

/// core/v1 ConfigMap.
pub static CONFIG_MAP: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapStr),
    f(3, "binaryData", Ty::MapBytes),
    f(4, "immutable", Ty::Bool),
];

/// core/v1 Secret.
pub static SECRET: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "data", Ty::MapBytes),
    f(3, "type", Ty::Str),
    f(4, "stringData", Ty::MapStr),
    f(5, "immutable", Ty::Bool),
];

/// core/v1 Node.
pub static NODE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(NODE_SPEC)),
    f(3, "status", Ty::Msg(NODE_STATUS)),
];

/// core/v1 NodeSpec (without the deprecated configSource).
pub static NODE_SPEC: &[Field] = &[
    f(1, "podCIDR", Ty::Str),
    f(2, "externalID", Ty::Str),
    f(3, "providerID", Ty::Str),
    f(4, "unschedulable", Ty::Bool),
    rep(5, "taints", Ty::Msg(TAINT)),
    rep(7, "podCIDRs", Ty::Str),
];

/// core/v1 NodeStatus (without images and the deprecated config).
pub static NODE_STATUS: &[Field] = &[
    f(1, "capacity", Ty::MapQuantity),
    f(2, "allocatable", Ty::MapQuantity),
    f(3, "phase", Ty::Str),
    rep(4, "conditions", Ty::Msg(NODE_CONDITION)),
    rep(5, "addresses", Ty::Msg(NODE_ADDRESS)),
    f(6, "daemonEndpoints", Ty::Msg(NODE_DAEMON_ENDPOINTS)),
    f(7, "nodeInfo", Ty::Msg(NODE_SYSTEM_INFO)),
    rep(9, "volumesInUse", Ty::Str),
    rep(10, "volumesAttached", Ty::Msg(ATTACHED_VOLUME)),
    rep(12, "runtimeHandlers", Ty::Msg(NODE_RUNTIME_HANDLER)),
    f(13, "features", Ty::Msg(NODE_FEATURES)),
    rep(14, "declaredFeatures", Ty::Str),
];

/// core/v1 NodeCondition.
pub static NODE_CONDITION: &[Field] = &[
    f(1, "type", Ty::Str),
    f(2, "status", Ty::Str),
    f(3, "lastHeartbeatTime", Ty::Time),
    f(4, "lastTransitionTime", Ty::Time),
    f(5, "reason", Ty::Str),
    f(6, "message", Ty::Str),
];

/// core/v1 NodeAddress.
pub static NODE_ADDRESS: &[Field] = &[f(1, "type", Ty::Str), f(2, "address", Ty::Str)];

/// core/v1 NodeDaemonEndpoints.
pub static NODE_DAEMON_ENDPOINTS: &[Field] = &[f(1, "kubeletEndpoint", Ty::Msg(DAEMON_ENDPOINT))];

/// core/v1 DaemonEndpoint (its JSON name really is `Port`).
pub static DAEMON_ENDPOINT: &[Field] = &[f(1, "Port", Ty::I32)];

/// core/v1 NodeSystemInfo.
pub static NODE_SYSTEM_INFO: &[Field] = &[
    f(1, "machineID", Ty::Str),
    f(2, "systemUUID", Ty::Str),
    f(3, "bootID", Ty::Str),
    f(4, "kernelVersion", Ty::Str),
    f(5, "osImage", Ty::Str),
    f(6, "containerRuntimeVersion", Ty::Str),
    f(7, "kubeletVersion", Ty::Str),
    f(8, "kubeProxyVersion", Ty::Str),
    f(9, "operatingSystem", Ty::Str),
    f(10, "architecture", Ty::Str),
    f(11, "swap", Ty::Msg(NODE_SWAP_STATUS)),
];

/// core/v1 NodeSwapStatus.
pub static NODE_SWAP_STATUS: &[Field] = &[f(1, "capacity", Ty::I64)];

/// core/v1 AttachedVolume.
pub static ATTACHED_VOLUME: &[Field] = &[f(1, "name", Ty::Str), f(2, "devicePath", Ty::Str)];

/// core/v1 NodeRuntimeHandler.
pub static NODE_RUNTIME_HANDLER: &[Field] = &[
    f(1, "name", Ty::Str),
    f(2, "features", Ty::Msg(NODE_RUNTIME_HANDLER_FEATURES)),
];

/// core/v1 NodeRuntimeHandlerFeatures.
pub static NODE_RUNTIME_HANDLER_FEATURES: &[Field] = &[
    f(1, "recursiveReadOnlyMounts", Ty::Bool),
    f(2, "userNamespaces", Ty::Bool),
];

/// core/v1 NodeFeatures.
pub static NODE_FEATURES: &[Field] = &[f(1, "supplementalGroupsPolicy", Ty::Bool)];

/// core/v1 Taint.
pub static TAINT: &[Field] = &[
    f(1, "key", Ty::Str),
    f(2, "value", Ty::Str),
    f(3, "effect", Ty::Str),
    f(4, "timeAdded", Ty::Time),
];

// ---- k8s.io/api/coordination/v1/generated.proto ----

/// coordination/v1 Lease.
pub static LEASE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(LEASE_SPEC)),
];

/// coordination/v1 LeaseSpec.
pub static LEASE_SPEC: &[Field] = &[
    f(1, "holderIdentity", Ty::Str),
    f(2, "leaseDurationSeconds", Ty::I32),
    f(3, "acquireTime", Ty::MicroTime),
    f(4, "renewTime", Ty::MicroTime),
    f(5, "leaseTransitions", Ty::I32),
    f(6, "strategy", Ty::Str),
    f(7, "preferredHolder", Ty::Str),
];

// ---- k8s.io/api/certificates/v1/generated.proto ----

/// certificates/v1 (and authorization/v1, authentication/v1) ExtraValue.
pub static EXTRA_VALUE: &[Field] = &[rep(1, "items", Ty::Str)];

/// certificates/v1 CertificateSigningRequest.
pub static CSR: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(CSR_SPEC)),
    f(3, "status", Ty::Msg(CSR_STATUS)),
];

/// certificates/v1 CertificateSigningRequestSpec.
pub static CSR_SPEC: &[Field] = &[
    f(1, "request", Ty::Bytes),
    f(2, "username", Ty::Str),
    f(3, "uid", Ty::Str),
    rep(4, "groups", Ty::Str),
    rep(5, "usages", Ty::Str),
    f(6, "extra", Ty::MapExtra),
    f(7, "signerName", Ty::Str),
    f(8, "expirationSeconds", Ty::I32),
];

/// certificates/v1 CertificateSigningRequestStatus.
pub static CSR_STATUS: &[Field] = &[
    rep(1, "conditions", Ty::Msg(CSR_CONDITION)),
    f(2, "certificate", Ty::Bytes),
];

/// certificates/v1 CertificateSigningRequestCondition.
pub static CSR_CONDITION: &[Field] = &[
    f(1, "type", Ty::Str),
    f(2, "reason", Ty::Str),
    f(3, "message", Ty::Str),
    f(4, "lastUpdateTime", Ty::Time),
    f(5, "lastTransitionTime", Ty::Time),
    f(6, "status", Ty::Str),
];

// ---- k8s.io/api/rbac/v1/generated.proto ----

/// rbac/v1 PolicyRule.
pub static POLICY_RULE: &[Field] = &[
    rep(1, "verbs", Ty::Str),
    rep(2, "apiGroups", Ty::Str),
    rep(3, "resources", Ty::Str),
    rep(4, "resourceNames", Ty::Str),
    rep(5, "nonResourceURLs", Ty::Str),
];

/// rbac/v1 AggregationRule.
pub static AGGREGATION_RULE: &[Field] = &[rep(1, "clusterRoleSelectors", Ty::Msg(LABEL_SELECTOR))];

/// rbac/v1 Role.
pub static ROLE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "rules", Ty::Msg(POLICY_RULE)),
];

/// rbac/v1 ClusterRole.
pub static CLUSTER_ROLE: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "rules", Ty::Msg(POLICY_RULE)),
    f(3, "aggregationRule", Ty::Msg(AGGREGATION_RULE)),
];

/// rbac/v1 Subject.
pub static SUBJECT: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "apiGroup", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "namespace", Ty::Str),
];

/// rbac/v1 RoleRef.
pub static ROLE_REF: &[Field] = &[
    f(1, "apiGroup", Ty::Str),
    f(2, "kind", Ty::Str),
    f(3, "name", Ty::Str),
];

/// rbac/v1 RoleBinding.
pub static ROLE_BINDING: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "subjects", Ty::Msg(SUBJECT)),
    f(3, "roleRef", Ty::Msg(ROLE_REF)),
];

/// rbac/v1 ClusterRoleBinding.
pub static CLUSTER_ROLE_BINDING: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "subjects", Ty::Msg(SUBJECT)),
    f(3, "roleRef", Ty::Msg(ROLE_REF)),
];

// ---- k8s.io/api/authorization/v1/generated.proto ----

/// authorization/v1 SelfSubjectAccessReview.
pub static SELF_SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SELF_SUBJECT_ACCESS_REVIEW_SPEC)),
    f(3, "status", Ty::Msg(SUBJECT_ACCESS_REVIEW_STATUS)),
];

/// authorization/v1 SelfSubjectAccessReviewSpec.
pub static SELF_SUBJECT_ACCESS_REVIEW_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
];

/// authorization/v1 ResourceAttributes.
pub static RESOURCE_ATTRIBUTES: &[Field] = &[
    f(1, "namespace", Ty::Str),
    f(2, "verb", Ty::Str),
    f(3, "group", Ty::Str),
    f(4, "version", Ty::Str),
    f(5, "resource", Ty::Str),
    f(6, "subresource", Ty::Str),
    f(7, "name", Ty::Str),
    f(8, "fieldSelector", Ty::Msg(FIELD_SELECTOR_ATTRIBUTES)),
    f(9, "labelSelector", Ty::Msg(LABEL_SELECTOR_ATTRIBUTES)),
];

/// authorization/v1 FieldSelectorAttributes.
pub static FIELD_SELECTOR_ATTRIBUTES: &[Field] = &[
    f(1, "rawSelector", Ty::Str),
    rep(2, "requirements", Ty::Msg(FIELD_SELECTOR_REQUIREMENT)),
];

/// authorization/v1 LabelSelectorAttributes.
pub static LABEL_SELECTOR_ATTRIBUTES: &[Field] = &[
    f(1, "rawSelector", Ty::Str),
    rep(2, "requirements", Ty::Msg(LABEL_SELECTOR_REQUIREMENT)),
];

/// authorization/v1 NonResourceAttributes.
pub static NON_RESOURCE_ATTRIBUTES: &[Field] = &[f(1, "path", Ty::Str), f(2, "verb", Ty::Str)];

/// authorization/v1 SubjectAccessReview.
pub static SUBJECT_ACCESS_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SUBJECT_ACCESS_REVIEW_SPEC)),
    f(3, "status", Ty::Msg(SUBJECT_ACCESS_REVIEW_STATUS)),
];

/// authorization/v1 SubjectAccessReviewSpec.
pub static SUBJECT_ACCESS_REVIEW_SPEC: &[Field] = &[
    f(1, "resourceAttributes", Ty::Msg(RESOURCE_ATTRIBUTES)),
    f(2, "nonResourceAttributes", Ty::Msg(NON_RESOURCE_ATTRIBUTES)),
    f(3, "user", Ty::Str),
    rep(4, "groups", Ty::Str),
    f(5, "extra", Ty::MapExtra),
    f(6, "uid", Ty::Str),
];

/// authorization/v1 SubjectAccessReviewStatus.
pub static SUBJECT_ACCESS_REVIEW_STATUS: &[Field] = &[
    f(1, "allowed", Ty::Bool),
    f(2, "reason", Ty::Str),
    f(3, "evaluationError", Ty::Str),
    f(4, "denied", Ty::Bool),
];

/// authorization/v1 SelfSubjectRulesReview.
pub static SELF_SUBJECT_RULES_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(SELF_SUBJECT_RULES_REVIEW_SPEC)),
    f(3, "status", Ty::Msg(SUBJECT_RULES_REVIEW_STATUS)),
];

/// authorization/v1 SelfSubjectRulesReviewSpec.
pub static SELF_SUBJECT_RULES_REVIEW_SPEC: &[Field] = &[f(1, "namespace", Ty::Str)];

/// authorization/v1 SubjectRulesReviewStatus.
pub static SUBJECT_RULES_REVIEW_STATUS: &[Field] = &[
    rep(1, "resourceRules", Ty::Msg(RESOURCE_RULE)),
    rep(2, "nonResourceRules", Ty::Msg(NON_RESOURCE_RULE)),
    f(3, "incomplete", Ty::Bool),
    f(4, "evaluationError", Ty::Str),
];

/// authorization/v1 ResourceRule.
pub static RESOURCE_RULE: &[Field] = &[
    rep(1, "verbs", Ty::Str),
    rep(2, "apiGroups", Ty::Str),
    rep(3, "resources", Ty::Str),
    rep(4, "resourceNames", Ty::Str),
];

/// authorization/v1 NonResourceRule.
pub static NON_RESOURCE_RULE: &[Field] =
    &[rep(1, "verbs", Ty::Str), rep(2, "nonResourceURLs", Ty::Str)];

// ---- k8s.io/api/authentication/v1/generated.proto ----

/// authentication/v1 SelfSubjectReview.
pub static SELF_SUBJECT_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "status", Ty::Msg(SELF_SUBJECT_REVIEW_STATUS)),
];

/// authentication/v1 SelfSubjectReviewStatus.
pub static SELF_SUBJECT_REVIEW_STATUS: &[Field] = &[f(1, "userInfo", Ty::Msg(USER_INFO))];

/// authentication/v1 UserInfo.
pub static USER_INFO: &[Field] = &[
    f(1, "username", Ty::Str),
    f(2, "uid", Ty::Str),
    rep(3, "groups", Ty::Str),
    f(4, "extra", Ty::MapExtra),
];

/// The schema of a kind sent in protobuf, by apiVersion and kind.
pub fn for_kind(api_version: &str, kind: &str) -> Option<&'static [Field]> {
    match (api_version, kind) {
        ("v1", "Namespace") => Some(NAMESPACE),
        ("v1", "ConfigMap") => Some(CONFIG_MAP),
        ("v1", "Secret") => Some(SECRET),
        ("v1", "Node") => Some(NODE),
        ("v1" | "meta.k8s.io/v1", "DeleteOptions") => Some(DELETE_OPTIONS),
        ("coordination.k8s.io/v1", "Lease") => Some(LEASE),
        ("certificates.k8s.io/v1", "CertificateSigningRequest") => Some(CSR),
        ("rbac.authorization.k8s.io/v1", "Role") => Some(ROLE),
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => Some(CLUSTER_ROLE),
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => Some(ROLE_BINDING),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => Some(CLUSTER_ROLE_BINDING),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => Some(SELF_SUBJECT_ACCESS_REVIEW),
        ("authorization.k8s.io/v1", "SubjectAccessReview") => Some(SUBJECT_ACCESS_REVIEW),
        ("authorization.k8s.io/v1", "SelfSubjectRulesReview") => Some(SELF_SUBJECT_RULES_REVIEW),
        (
            "authentication.k8s.io/v1"
            | "authentication.k8s.io/v1beta1"
            | "authentication.k8s.io/v1alpha1",
            "SelfSubjectReview",
        ) => Some(SELF_SUBJECT_REVIEW),
        _ => None,
    }
}
