//! Protobuf field numbers of the messages every kind shares (ObjectMeta, conditions,
//! selectors, DeleteOptions) and of the reviews; each stored kind's own are in its resource
//! file. Field numbers of the kinds this server accepts in protobuf
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
    /// intstr.IntOrString (JSON: a number or a string)
    IntOrString,
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
pub const fn f(num: u32, name: &'static str, ty: Ty) -> Field {
    Field {
        num,
        name,
        ty,
        repeated: false,
    }
}

/// A `repeated` field.
pub const fn rep(num: u32, name: &'static str, ty: Ty) -> Field {
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
/// core/v1 ObjectReference.
pub static OBJECT_REFERENCE: &[Field] = &[
    f(1, "kind", Ty::Str),
    f(2, "namespace", Ty::Str),
    f(3, "name", Ty::Str),
    f(4, "uid", Ty::Str),
    f(5, "apiVersion", Ty::Str),
    f(6, "resourceVersion", Ty::Str),
    f(7, "fieldPath", Ty::Str),
];

/// core/v1 (and events.k8s.io/v1) EventSeries.
pub static EVENT_SERIES: &[Field] = &[
    f(1, "count", Ty::I32),
    f(2, "lastObservedTime", Ty::MicroTime),
];

/// core/v1 EventSource.
pub static EVENT_SOURCE: &[Field] = &[f(1, "component", Ty::Str), f(2, "host", Ty::Str)];

/// intstr.IntOrString: `type` 0 is `intVal`, 1 is `strVal`.
pub static INT_OR_STRING: &[Field] = &[
    f(1, "type", Ty::I64),
    f(2, "intVal", Ty::I32),
    f(3, "strVal", Ty::Str),
];

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

// ---- k8s.io/api/certificates/v1/generated.proto ----

/// certificates/v1 (and authorization/v1, authentication/v1) ExtraValue.
pub static EXTRA_VALUE: &[Field] = &[rep(1, "items", Ty::Str)];

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

/// authentication/v1 TokenReview.
pub static TOKEN_REVIEW: &[Field] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    f(2, "spec", Ty::Msg(TOKEN_REVIEW_SPEC)),
    f(3, "status", Ty::Msg(TOKEN_REVIEW_STATUS)),
];

/// authentication/v1 TokenReviewSpec.
pub static TOKEN_REVIEW_SPEC: &[Field] = &[f(1, "token", Ty::Str), rep(2, "audiences", Ty::Str)];

/// authentication/v1 TokenReviewStatus.
pub static TOKEN_REVIEW_STATUS: &[Field] = &[
    f(1, "authenticated", Ty::Bool),
    f(2, "user", Ty::Msg(USER_INFO)),
    f(3, "error", Ty::Str),
    rep(4, "audiences", Ty::Str),
];

/// authentication/v1 UserInfo.
pub static USER_INFO: &[Field] = &[
    f(1, "username", Ty::Str),
    f(2, "uid", Ty::Str),
    rep(3, "groups", Ty::Str),
    f(4, "extra", Ty::MapExtra),
];
