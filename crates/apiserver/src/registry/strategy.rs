//! How a kind behaves on create and update, as kube-apiserver's registry strategies define
//! it: the `Strategy` each resource file implements (defaulting, admission, validation,
//! table columns), and the update through a subresource that every kind shares.

use std::fmt::Debug;
use std::time::SystemTime;

use kubeboot_api::{Status, StatusCause, TableColumn};
use serde_json::Value;

use super::ResourceDef;
use crate::authn::UserInfo;
use crate::authz::{Attributes, Authorizer, Decision};
use crate::object::meta_str;

/// What a strategy may consult: the requester, the time, and the authorizer.
pub struct Admission<'a> {
    /// Who is asking.
    pub user: &'a UserInfo,
    /// Now.
    pub now: SystemTime,
    /// The authorizer (RBAC escalation checks, CSR signer permissions).
    pub authz: &'a Authorizer,
}

impl Admission<'_> {
    /// Whether the requester may do `a`.
    pub fn can(&self, a: &Attributes) -> bool {
        matches!(self.authz.authorize(self.user, a), Decision::Allowed { .. })
    }

    /// Whether the requester may `verb` (`approve`, `sign`, `attest`) for `signer`: on
    /// `signers/<signer>` or `signers/<domain>/*` in certificates.k8s.io
    /// (`certauthorization.IsAuthorizedForSignerName`).
    pub fn can_for_signer(&self, verb: &str, signer: &str) -> bool {
        let check = |name: &str| {
            self.can(&Attributes {
                is_resource: true,
                verb: verb.into(),
                group: "certificates.k8s.io".into(),
                resource: "signers".into(),
                name: name.into(),
                ..Default::default()
            })
        };
        let domain_wildcard = signer.split_once('/').map(|(d, _)| format!("{d}/*"));
        check(signer) || domain_wildcard.is_some_and(|w| check(&w))
    }
}

/// An update a strategy prepares: the object the client sent (which becomes the result),
/// the stored one, and who asks.
pub struct Change<'a> {
    /// What the client sent; what will be stored.
    pub new: &'a mut Value,
    /// What is stored.
    pub old: &'a Value,
    /// The requester, the time, the authorizer.
    pub adm: &'a Admission<'a>,
}

/// What a strategy's admission step answers: nothing, or the refusal.
pub type Admitted = Result<(), Status>;

/// One kind's behaviour. Every step has the default of a kind with nothing special.
pub trait Strategy: Debug + Sync {
    /// The kind's defaults, as its scheme's defaulting sets them on every object a request
    /// sends (`SetDefaults_<Kind>`, and a Secret's `stringData` folded into `data` as its
    /// decoding does). On a create, before the record of who set what
    /// (`metadata.managedFields`): the sender owns them, where what `prepare_create` sets
    /// afterwards is the server's.
    fn set_defaults(&self, _obj: &mut Value) {}

    /// Normalizes an object about to be written, whatever wrote it (a create once its
    /// name is final, an update through the object or any subresource, once its name is
    /// the stored one): the strategy's `Canonicalize`.
    fn canonicalize(&self, _obj: &mut Value) {}

    /// Whether an update that names no resourceVersion is taken (`AllowUnconditionalUpdate`):
    /// most kinds; a Lease must say which version it replaces.
    fn allows_unconditional_update(&self) -> bool {
        true
    }

    /// Sets what the server owns on a new object and runs create-time admission.
    fn prepare_create(&self, _def: &ResourceDef, _obj: &mut Value, _adm: &Admission) -> Admitted {
        Ok(())
    }

    /// Runs update-time defaulting and admission on an update of the object itself (its
    /// status already kept, for a kind with a status subresource).
    fn prepare_update(&self, _def: &ResourceDef, _c: Change<'_>) -> Admitted {
        Ok(())
    }

    /// Merges an update through subresource `sub` into `old`: by default the `status`
    /// subresource replaces the status, and nothing else.
    fn prepare_subresource(&self, def: &ResourceDef, sub: &str, c: Change<'_>) -> Admitted {
        let Change { new, old, .. } = c;
        match sub {
            "status" => {
                *new = with_status_of(old, new);
                Ok(())
            }
            other => Err(Status::not_found(
                def.subject(&format!("{}/{other}", meta_str(old, "name"))),
            )),
        }
    }

    /// Admission that looks at the result of any update, through the object or a
    /// subresource (NodeRestriction on a Node).
    fn admit_update(&self, _def: &ResourceDef, _c: &Change<'_>) -> Admitted {
        Ok(())
    }

    /// Everything wrong with an object (after preparation), as `Invalid` causes; `old` is
    /// the stored object on an update.
    fn validate(&self, _def: &ResourceDef, _obj: &Value, _old: Option<&Value>) -> Vec<StatusCause> {
        Vec::new()
    }

    /// The columns of `kubectl get`.
    fn columns(&self) -> Vec<TableColumn>;

    /// The cells of one object's row, one per column.
    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value>;
}

/// Everything wrong with an object about to be written: its metadata, as for every kind
/// (`ValidateObjectMeta`, `ValidateObjectMetaUpdate`), then what its kind checks.
pub fn validate(def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
    let mut causes = super::object_meta::causes(def, obj);
    if let Some(old) = old {
        causes.extend(super::object_meta::update_causes(obj, old));
        causes.extend(super::deletion::new_finalizer_causes(obj, old));
    }
    causes.extend(def.strategy.validate(def, obj, old));
    causes
}

/// Merges what a client sent into an update of `old` through `subresource` (empty for the
/// object itself) and runs the kind's update-time admission. `new` holds the client's
/// object and becomes the result.
pub fn prepare_update(
    def: &ResourceDef,
    new: &mut Value,
    old: &Value,
    subresource: &str,
    adm: &Admission,
) -> Admitted {
    if subresource.is_empty() {
        if def.subresources.contains(&"status") {
            // The status changes only through its subresource.
            keep_status(new, old);
        }
        def.strategy.prepare_update(def, Change { new, old, adm })?;
    } else {
        let change = Change {
            new: &mut *new,
            old,
            adm,
        };
        def.strategy.prepare_subresource(def, subresource, change)?;
    }
    def.strategy.admit_update(def, &Change { new, old, adm })
}

/// Whether an update changes nothing but the fields the garbage collector writes (owner
/// references, finalizers) and what the server keeps itself (`IsOnlyMutatingGCFields`).
pub fn only_gc_fields_change(new: &Value, old: &Value) -> bool {
    const IGNORED: [&str; 5] = [
        "ownerReferences",
        "finalizers",
        "selfLink",
        "managedFields",
        "resourceVersion",
    ];
    let without = |v: &Value| {
        let mut v = v.clone();
        if let Some(meta) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            for k in IGNORED {
                meta.remove(k);
            }
        }
        v
    };
    without(new) == without(old)
}

/// `old` with the status `sent` carries, and the metadata a client may change.
pub fn with_status_of(old: &Value, sent: &Value) -> Value {
    let mut merged = old.clone();
    match sent.get("status") {
        Some(s) => merged["status"] = s.clone(),
        None => {
            if let Some(o) = merged.as_object_mut() {
                o.remove("status");
            }
        }
    }
    carry_metadata_from(&mut merged, sent);
    merged
}

/// The stored status, whatever `new` says.
fn keep_status(new: &mut Value, old: &Value) {
    match old.get("status") {
        Some(s) => new["status"] = s.clone(),
        None => {
            if let Some(o) = new.as_object_mut() {
                o.remove("status");
            }
        }
    }
}

/// The metadata a client may change with any update: labels, annotations, and the
/// resourceVersion it expects.
pub fn carry_metadata_from(merged: &mut Value, sent: &Value) {
    let Some(sent_meta) = sent.get("metadata").and_then(Value::as_object) else {
        return;
    };
    let meta = crate::object::meta_mut(merged);
    for k in ["resourceVersion", "labels", "annotations"] {
        match sent_meta.get(k) {
            Some(v) => {
                meta.insert(k.into(), v.clone());
            }
            None => {
                meta.remove(k);
            }
        }
    }
}
