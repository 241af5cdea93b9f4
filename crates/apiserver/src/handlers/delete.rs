//! `delete` of one object (with its preconditions) or of a selected collection; a
//! namespace goes with its contents, and an object with finalizers stays, marked as being
//! deleted, until they are gone.

use http::StatusCode;
use kubeboot_api::Status;
use kubeboot_api::clock::format_rfc3339;
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
        let (old, old_rev) = self.read_object(def, ns, name).await?;
        if let Some(failed) = failed_precondition(def, opts.as_ref(), &old, old_rev) {
            return Err(failed);
        }
        let mut old_rev = old_rev;
        if def.kind_id == registry::Kind::Namespace
            && let Some(denial) = namespace_lifecycle::delete_denial(name)
        {
            return Err(denial);
        }
        // A dry run is checked like the real delete, and changes nothing.
        if opts.as_ref().is_some_and(asks_dry_run) {
            return Ok(self.output(def, old));
        }
        if def.kind_id == registry::Kind::Namespace {
            old_rev = self
                .mark_terminating(def, name, old.clone(), old_rev)
                .await?;
            let waiting = self.delete_namespace_contents(name).await?;
            if waiting > 0 || deletion::waits_for_finalizers(&old) {
                // What is left goes as its finalizers do; the namespace after it.
                let (namespace, _) = self.read_object(def, ns, name).await?;
                return Ok(self.output(def, namespace));
            }
        }
        let key = def.key(ns, name);
        match self
            .remove_or_mark_latest(def, &key, (old, old_rev), opts.as_ref())
            .await?
        {
            Some(obj) => Ok(self.output(def, obj)),
            None => Err(Status::not_found(def.subject(name))),
        }
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
            let Some(kv) = self
                .store
                .get(key)
                .await
                .map_err(|e| from_store(e, def, &name))?
            else {
                return Ok(None);
            };
            obj = serde_json::from_slice(&kv.value)
                .map_err(|e| Status::internal(format!("stored object is not JSON: {e}")))?;
            read_at = kv.mod_revision;
            set_resource_version(&mut obj, read_at);
            if let Some(failed) = failed_precondition(def, opts, &obj, read_at) {
                return Err(failed);
            }
        }
        Err(Status::conflict(
            def.subject(&name),
            "the object kept changing while it was being deleted; please try again",
        ))
    }

    /// Deletes the selected objects of a collection; the list of what went.
    pub(super) async fn delete_collection(&self, def: &ResourceDef, ns: &str, q: &Query) -> Res {
        let selector = selector(def, q)?;
        let dry_run = crate::listoptions::is_dry_run(q);
        let page = self
            .store
            .list(&def.ns_prefix(ns), None, None)
            .await
            .map_err(|e| from_store(e, def, ""))?;
        let mut deleted = Vec::new();
        // Kubernetes deletes what it may and answers with the first refusal.
        let mut refused = None;
        for kv in page.items {
            let Ok(obj) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            if !selector.matches(&obj) {
                continue;
            }
            let mut at = kv.mod_revision;
            if def.kind_id == registry::Kind::Namespace
                && let Some(denial) = namespace_lifecycle::delete_denial(meta_str(&obj, "name"))
            {
                refused.get_or_insert(denial);
                continue;
            }
            if dry_run {
                deleted.push(obj);
                continue;
            }
            if def.kind_id == registry::Kind::Namespace {
                let name = meta_str(&obj, "name").to_owned();
                let rev = self
                    .mark_terminating(def, &name, obj.clone(), kv.mod_revision)
                    .await?;
                if self.delete_namespace_contents(&name).await? > 0
                    || deletion::waits_for_finalizers(&obj)
                {
                    deleted.push(obj);
                    continue;
                }
                at = rev;
            }
            if let Some(obj) = self
                .remove_or_mark_latest(def, &kv.key, (obj, at), None)
                .await?
            {
                deleted.push(obj);
            }
        }
        if let Some(refused) = refused {
            return Err(refused);
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

/// The `Precondition failed` of DeleteOptions `opts` whose uid or resourceVersion the
/// object `obj` at revision `rev` does not have.
fn failed_precondition(
    def: &ResourceDef,
    opts: Option<&Value>,
    obj: &Value,
    rev: Revision,
) -> Option<Status> {
    let opts = opts?;
    let name = meta_str(obj, "name");
    let uid = meta_str(obj, "uid");
    let failed = |detail: String| Some(Status::conflict(def.subject(name), &detail));
    if let Some(want) = opts.pointer("/preconditions/uid").and_then(Value::as_str)
        && want != uid
    {
        return failed(format!(
            "Precondition failed: UID in precondition: {want}, UID in object meta: {uid}"
        ));
    }
    match opts
        .pointer("/preconditions/resourceVersion")
        .and_then(Value::as_str)
    {
        Some(want) if want != rev.to_string() => failed(format!(
            "Precondition failed: ResourceVersion in precondition: {want}, ResourceVersion in object meta: {rev}"
        )),
        _ => None,
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
