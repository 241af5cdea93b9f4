//! `delete` of one object (with its preconditions) or of a selected collection; a
//! namespace goes with its contents, and an object with finalizers stays, marked as being
//! deleted, until they are gone.

use http::StatusCode;
use kubeboot_api::clock::format_rfc3339;
use kubeboot_api::{Status, StatusCause};
use kubeboot_store::{Revision, StoreError};
use serde_json::{Value, json};

use super::read::selector;
use super::update::strip_rv;
use super::{Handlers, Res, stored_form};
use crate::admission::namespace_lifecycle;
use crate::object::{meta_str, set_resource_version};
use crate::registry::{self, ResourceDef, deletion};
use crate::requestinfo::Query;
use crate::response;
use crate::status::from_store;

impl Handlers {
    /// Deletes one object, if the preconditions in `opts` (DeleteOptions) hold: its last
    /// state, at the delete's resourceVersion.
    pub async fn delete(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        opts: Option<Value>,
    ) -> Result<Value, Status> {
        if let Some(opts) = opts.as_ref() {
            validate_delete_options(opts)?;
        }
        let (old, old_rev) = self.read_object(def, ns, name).await?;
        if let Some(failed) = failed_precondition(opts.as_ref(), &old, old_rev) {
            return Err(before_delete_wording(def, name, failed));
        }
        if def.kind_id == registry::Kind::Namespace
            && let Some(denial) = namespace_lifecycle::delete_denial(name)
        {
            return Err(denial);
        }
        // A dry run is checked like the real delete, and changes nothing.
        if opts.as_ref().is_some_and(asks_dry_run) {
            return Ok(self.deleted(def, old));
        }
        if def.kind_id == registry::Kind::Namespace {
            self.mark_terminating(def, name, old, old_rev).await?;
            // Its contents go now; what is left goes as its finalizers do, and the
            // namespace after it. Once it is Terminating the delete has been done: what
            // stops the rest for now is retried (the finisher, a minute on), as
            // kube-apiserver's namespace controller retries.
            let (namespace, _) = self.read_object(def, ns, name).await?;
            if let Err(e) = self.finish_namespace_deletion(name).await {
                tracing::warn!(namespace = %name, error = %e.message, "cannot finish deleting the namespace yet; retrying in a minute");
            }
            return Ok(self.output(def, namespace));
        }
        let key = def.key(ns, name);
        match self
            .remove_or_mark_latest(def, &key, (old, old_rev), opts.as_ref())
            .await?
        {
            Some(obj) => Ok(self.deleted(def, obj)),
            None => Err(Status::not_found(def.subject(name))),
        }
    }

    /// What a delete answers (kube-apiserver's `finalizeDelete`): an object its finalizers
    /// keep, as it is now; one that is gone, as itself for pods, services and namespaces
    /// (their stores' `ReturnDeletedObject`), else a Success Status naming it.
    fn deleted(&self, def: &ResourceDef, obj: Value) -> Value {
        let returned = matches!(
            def.kind_id,
            registry::Kind::Pod | registry::Kind::Service | registry::Kind::Namespace
        );
        if returned || deletion::waits_for_finalizers(&obj) {
            return self.output(def, obj);
        }
        success_status(def, &obj)
    }

    /// Removes an object read at revision `read_at` from the store if it is still at that
    /// revision, or, when it has finalizers, marks it as being deleted (if it is still as
    /// read); the object as it is then, with its resourceVersion.
    async fn remove_or_mark(
        &self,
        def: &ResourceDef,
        key: &str,
        mut obj: Value,
        read_at: Revision,
    ) -> Result<Value, StoreError> {
        if deletion::waits_for_finalizers(&obj) {
            let now = format_rfc3339(self.now());
            if deletion::mark_deleting(&mut obj, &now) {
                strip_rv(&mut obj);
                let kv = self
                    .store
                    .update(key, stored_form(&obj)?, Some(read_at))
                    .await?;
                set_resource_version(&mut obj, kv.mod_revision);
            }
            return Ok(obj);
        }
        let kv = self.store.delete(key, Some(read_at)).await?;
        self.release_dropped(def, &obj, None).await;
        set_resource_version(&mut obj, kv.mod_revision);
        Ok(obj)
    }

    /// [`Self::remove_or_mark`] of the object at `key`, read as `read`, and again of the
    /// object as it is now each time it changed in between, as kube-apiserver's deletes
    /// retry (`GuaranteedUpdate`, `conditionalDelete`); the DeleteOptions' preconditions
    /// `opts` are held each time. None when the object is gone.
    pub(super) async fn remove_or_mark_latest(
        &self,
        def: &ResourceDef,
        key: &str,
        read: (Value, Revision),
        opts: Option<&Value>,
    ) -> Result<Option<Value>, Status> {
        let (mut obj, mut read_at) = read;
        let name = meta_str(&obj, "name").to_owned();
        for _ in 0..DELETE_ATTEMPTS {
            match self.remove_or_mark(def, key, obj, read_at).await {
                Ok(obj) => return Ok(Some(obj)),
                Err(StoreError::NotFound(_)) => return Ok(None),
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(from_store(e, def, &name)),
            }
            let Some(now) = self.read_key(def, key, &name).await? else {
                return Ok(None);
            };
            (obj, read_at) = now;
            if let Some(failed) = failed_precondition(opts, &obj, read_at) {
                let detail = failed.in_storage_words();
                return Err(storage_precondition_failed(def, &name, key, &detail));
            }
        }
        Err(Status::conflict(
            def.subject(&name),
            "the object kept changing while it was being deleted; please try again",
        ))
    }

    /// Deletes the selected objects of a collection; the list of what went.
    pub(super) async fn delete_collection(&self, def: &ResourceDef, ns: &str, q: &Query) -> Res {
        if let Some(opts) = query_delete_options(q) {
            validate_delete_options(&opts)?;
        }
        let selector = selector(def, q)?;
        let dry_run = crate::listoptions::is_dry_run(q);
        let page = self
            .store
            .list(&def.ns_prefix(ns), None, None)
            .await
            .map_err(|e| from_store(e, def, ""))?;
        let mut deleted = Vec::new();
        for kv in page.items {
            let Ok(obj) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            if !selector.matches(&obj) {
                continue;
            }
            if dry_run {
                deleted.push(obj);
                continue;
            }
            if let Some(obj) = self
                .remove_or_mark_latest(def, &kv.key, (obj, kv.mod_revision), None)
                .await?
            {
                deleted.push(obj);
            }
        }
        let rev = self
            .store
            .revision()
            .await
            .map_err(|e| from_store(e, def, ""))?;
        Ok(response::json(
            StatusCode::OK,
            &json!({"kind": format!("{}List", def.kind), "apiVersion": def.api_version(), "metadata": {"resourceVersion": rev.to_string()}, "items": deleted}),
        ))
    }
}

/// How many times a delete reads the object again when it changed since it was read.
const DELETE_ATTEMPTS: usize = 16;

/// A DeleteOptions precondition the object does not meet.
enum FailedPrecondition {
    /// `(wanted, had)` uids.
    Uid(String, String),
    /// `(wanted, had)` resourceVersions.
    ResourceVersion(String, Revision),
}

impl FailedPrecondition {
    /// As the store's preconditions word it (`Preconditions.Check`).
    fn in_storage_words(&self) -> String {
        match self {
            Self::Uid(want, had) => {
                format!(
                    "Precondition failed: UID in precondition: {want}, UID in object meta: {had}"
                )
            }
            Self::ResourceVersion(want, had) => format!(
                "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {had}"
            ),
        }
    }
}

/// The precondition of DeleteOptions `opts` (uid, then resourceVersion) that the object
/// `obj` at revision `rev` does not meet.
fn failed_precondition(
    opts: Option<&Value>,
    obj: &Value,
    rev: Revision,
) -> Option<FailedPrecondition> {
    let opts = opts?;
    let uid = meta_str(obj, "uid");
    if let Some(want) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
        && want != uid
    {
        return Some(FailedPrecondition::Uid(want.into(), uid.into()));
    }
    match opts
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
    {
        Some(want) if want != rev.to_string() => {
            Some(FailedPrecondition::ResourceVersion(want.into(), rev))
        }
        _ => None,
    }
}

/// A failed precondition as a delete first finds it (`rest.BeforeDelete`): a conflict on
/// the object's kind, naming what it might mean.
fn before_delete_wording(def: &ResourceDef, name: &str, failed: FailedPrecondition) -> Status {
    let detail = match failed {
        FailedPrecondition::Uid(want, had) => format!(
            "the UID in the precondition ({want}) does not match the UID in record ({had}). The object might have been deleted and then recreated"
        ),
        FailedPrecondition::ResourceVersion(want, had) => format!(
            "the ResourceVersion in the precondition ({want}) does not match the ResourceVersion in record ({had}). The object might have been modified"
        ),
    };
    let kind = kubeboot_api::status::Subject {
        resource: def.kind,
        group: def.group,
        name,
    };
    Status::conflict(kind, &detail)
}

/// A precondition the store found failed, as kube-apiserver reports its storage error: a
/// conflict on the resource, quoting the `StorageError`.
pub(super) fn storage_precondition_failed(
    def: &ResourceDef,
    name: &str,
    key: &str,
    detail: &str,
) -> Status {
    Status::conflict(
        def.subject(name),
        &format!(
            "StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: {detail}"
        ),
    )
}

/// `ValidateDeleteOptions`: a known propagation policy, and not both it and the older
/// `orphanDependents` (the dry run is checked with the query).
fn validate_delete_options(opts: &Value) -> Result<(), Status> {
    const POLICIES: [&str; 3] = ["Foreground", "Background", "Orphan"];
    let policy = opts.get("propagationPolicy").filter(|p| !p.is_null());
    let mut causes = Vec::new();
    let printed = |p: &Value| p.as_str().map_or_else(|| p.to_string(), str::to_owned);
    if let Some(p) = policy
        && opts.get("orphanDependents").is_some_and(|o| !o.is_null())
    {
        causes.push(StatusCause::invalid(
            "propagationPolicy",
            &printed(p),
            "orphanDependents and deletionPropagation cannot be both set",
        ));
    }
    if let Some(p) = policy
        && !p.as_str().is_some_and(|p| POLICIES.contains(&p))
    {
        causes.push(StatusCause::not_supported(
            "propagationPolicy",
            &printed(p),
            &["Foreground", "Background", "Orphan", "nil"],
        ));
    }
    match causes.is_empty() {
        true => Ok(()),
        false => Err(Status::invalid("DeleteOptions", "meta.k8s.io", "", causes)),
    }
}

/// Whether DeleteOptions ask for a dry run (`dryRun: ["All"]`).
pub(super) fn asks_dry_run(opts: &Value) -> bool {
    opts.get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|v| v == "All"))
}

/// DeleteOptions with the query's `dryRun=All` merged in, as kube-apiserver merges them.
pub(super) fn with_query_dry_run(opts: Option<Value>, q: &Query) -> Option<Value> {
    if !crate::listoptions::is_dry_run(q) {
        return opts;
    }
    let mut opts = opts.unwrap_or_else(|| json!({}));
    if let Some(o) = opts.as_object_mut() {
        o.insert("dryRun".into(), json!(["All"]));
    }
    Some(opts)
}

/// The DeleteOptions of a delete without a body, from its query, as kube-apiserver decodes
/// them (`propagationPolicy`, `orphanDependents`); none when the query sets neither.
pub(super) fn query_delete_options(q: &Query) -> Option<Value> {
    let mut opts = serde_json::Map::new();
    if let Some(p) = q.get("propagationPolicy") {
        opts.insert("propagationPolicy".into(), json!(p));
    }
    if let Some(o) = q.get("orphanDependents") {
        opts.insert(
            "orphanDependents".into(),
            json!(crate::listoptions::query_bool(o)),
        );
    }
    (!opts.is_empty()).then_some(Value::Object(opts))
}
/// The Success Status of an object that is gone, as `finalizeDelete` writes it (the
/// resource in `details.kind`, as Kubernetes puts it there).
fn success_status(def: &ResourceDef, obj: &Value) -> Value {
    let mut details =
        json!({"name": meta_str(obj, "name"), "kind": def.plural, "uid": meta_str(obj, "uid")});
    if !def.group.is_empty() {
        details["group"] = def.group.into();
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details})
}
