//! `update` and `patch`: the object as sent (or the stored one patched), checked against
//! its kind, merged by its strategy for the subresource, written if it changed — retried
//! when another write crossed it and the client named no resourceVersion.

use bytes::Bytes;
use kubeboot_api::clock::format_rfc3339;
use kubeboot_api::{Status, StatusCause};
use kubeboot_store::{Revision, StoreError};
use serde_json::{Map, Value, json};

use super::incoming::{check_type, normalize};
use super::{Handlers, stored_form};
use crate::authn::UserInfo;
use crate::fieldmanager;
use crate::object::{meta_mut, meta_str, set_resource_version};
use crate::patch::{self, PatchType};
use crate::registry::strategy::{self, Admission};
use crate::registry::{Kind, ResourceDef, deletion};
use crate::requestinfo::Query;
use crate::status::from_store;
use crate::strict;

impl Handlers {
    /// Applies a client's (or the server's own) change to an object: the object as
    /// stored, with its resourceVersion.
    #[allow(clippy::too_many_arguments)]
    pub async fn update(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        sub: &str,
        mut change: Update,
        q: &Query,
        user: &UserInfo,
    ) -> Result<Value, Status> {
        // The version the client replaces, when the watch cache holds it: no store read.
        let mut cached = sent_revision(&change)
            .and_then(|rv| Some((self.cache.object_at(&def.key(ns, name), rv)?.object(), rv)));
        // A replacement names itself as the URL does before anything is read (an object
        // that is not there is a 404 only for a body that names it).
        if let Update::Replace(sent) = &change {
            check_name(def, (ns, name), sent)?;
        }
        // Retry on conflicts the client did not cause (it sent no resourceVersion).
        for _ in 0..16 {
            let (old, old_rev) = match cached.take() {
                Some(hit) => hit,
                None => self.read_object(def, ns, name).await?,
            };
            let mut new = self.sent_object(def, (ns, name, sub), &mut change, &old, q)?;
            if matches!(change, Update::Replace(_)) {
                uid_precondition(def, (ns, name), &new, &old)?;
            }
            def.strategy.set_defaults(&mut new);
            let sent_rv = meta_str(&new, "resourceVersion").to_owned();
            let expected = expected_revision(def, name, &sent_rv, old_rev)?;
            let adm = Admission {
                user,
                now: self.now(),
                authz: &self.authz,
            };
            let applied = matches!(change, Update::Apply { .. });
            prepare_keeping_apply_record(def, (&mut new, &old, sub), &adm, applied)?;
            self.confirm_no_escalation(def, (ns, name), (&new, Some(&old)), user)
                .await?;
            carry_server_metadata(&mut new, &old, def, ns);
            def.strategy.canonicalize(&mut new);
            let causes = strategy::validate(def, &new, Some(&old));
            if !causes.is_empty() {
                return Err(Status::invalid(def.kind, def.group, name, causes));
            }
            if !applied {
                fieldmanager::settle_sent_record(&mut new, Some(&old), sub);
            }
            if unchanged(&new, &old) {
                return Ok(self.output(def, old));
            }
            if !applied {
                let time = format_rfc3339(self.now());
                let manager = fieldmanager::Manager::of(q, sub, &time);
                fieldmanager::track_update(def, Some(&old), &mut new, &manager);
            }
            strip_rv(&mut new);
            let dry_run = crate::listoptions::is_dry_run(q);
            let reserved = self.reserve_for(def, &mut new, Some(&old), dry_run).await?;
            if dry_run {
                // What would be written, at the version it would replace (as
                // kube-apiserver's dry run answers: `kubectl diff` compares it).
                set_resource_version(&mut new, old_rev);
                return Ok(self.output(def, new));
            }
            let written = self.write_update(def, (ns, name), &new, expected).await;
            if written.is_err() {
                self.release(&reserved).await;
            }
            match written {
                Ok(done) => {
                    return Ok(self
                        .after_write(def, (ns, name), (old, new), done, &reserved)
                        .await);
                }
                Err(StoreError::Conflict { .. }) if sent_rv.is_empty() => continue,
                Err(e) => return Err(from_store(e, def, name)),
            }
        }
        Err(Status::conflict(
            def.subject(name),
            "the object is being modified too often; try again",
        ))
    }

    /// The answer to a written update (its revision, and whether it removed the object),
    /// once what the old object held and the new one does not is released.
    async fn after_write(
        &self,
        def: &ResourceDef,
        (ns, name): (&str, &str),
        (old, mut new): (Value, Value),
        (rev, removed): (Revision, bool),
        reserved: &[String],
    ) -> Value {
        if removed {
            // As kube-apiserver answers it: the object as it was stored, at the revision
            // that removed it.
            self.release(reserved).await;
            self.release_dropped(def, &old, None).await;
            let mut gone = old;
            set_resource_version(&mut gone, rev);
            self.finish_after_finalizers(def, ns, name).await;
            return self.output(def, gone);
        }
        self.release_dropped(def, &old, Some(&new)).await;
        set_resource_version(&mut new, rev);
        if deletion::is_finalized(&new) {
            self.finish_after_finalizers(def, ns, name).await;
        }
        self.output(def, new)
    }

    /// Writes an update at revision `expected`, or, when it took the last finalizer from
    /// an object being deleted, removes the object (a namespace goes once what was in it
    /// is gone); the revision written, and whether the object was removed.
    async fn write_update(
        &self,
        def: &ResourceDef,
        (ns, name): (&str, &str),
        new: &Value,
        expected: Revision,
    ) -> Result<(Revision, bool), StoreError> {
        let key = def.key(ns, name);
        if deletion::is_finalized(new) && def.kind_id != Kind::Namespace {
            let kv = self.store.delete(&key, Some(expected)).await?;
            return Ok((kv.mod_revision, true));
        }
        let kv = self
            .store
            .update(&key, stored_form(new)?, Some(expected))
            .await?;
        Ok((kv.mod_revision, false))
    }

    /// After the last finalizer left a namespace being deleted, or an object of a
    /// namespace being deleted: the namespace goes if nothing else holds it.
    async fn finish_after_finalizers(&self, def: &ResourceDef, ns: &str, name: &str) {
        let namespace = match def.kind_id {
            Kind::Namespace => name,
            _ if def.namespaced => ns,
            _ => return,
        };
        if let Err(e) = self.finish_namespace_deletion(namespace).await {
            tracing::warn!(%namespace, error = %e.message, "cannot finish deleting the namespace yet; retrying in a minute");
        }
    }

    /// The object a change asks for — as sent, or the stored one patched — checked against
    /// the kind, the URL and (under Strict) the fields it may have.
    fn sent_object(
        &self,
        def: &ResourceDef,
        (ns, name, sub): (&str, &str, &str),
        change: &mut Update,
        old: &Value,
        q: &Query,
    ) -> Result<Value, Status> {
        let sent = match change {
            // An object naming the version it replaces is tried once (a conflict is the
            // client's to resolve): it is used as sent, not copied for another try.
            Update::Replace(v) if !meta_str(v, "resourceVersion").is_empty() => std::mem::take(v),
            Update::Replace(v) => v.clone(),
            Update::Patch(ty, body) => {
                let base = self.output(def, old.clone());
                patch::apply(&base, body, *ty, def.patch_schema)?
            }
            Update::Apply { config, force } => {
                let time = format_rfc3339(self.now());
                let manager = fieldmanager::Manager::of(q, sub, &time);
                let mut applied = fieldmanager::apply(
                    def,
                    Some(&self.output(def, old.clone())),
                    config,
                    &manager,
                    *force,
                )?;
                fieldmanager::sync_last_applied(&mut applied, config, &manager);
                applied
            }
        };
        check_type(def, &sent)?;
        check_name(def, (ns, name), &sent)?;
        let strict = strict::is_strict(q);
        let patched = matches!(change, Update::Patch(..)).then(|| sent.clone());
        let (new, unknown) = normalize(def, sent, strict)?;
        match (change, patched) {
            (Update::Apply { .. }, _) if !unknown.is_empty() && strict => {
                return Err(strict::decoding_error(def, &unknown));
            }
            (Update::Patch(ty, body), Some(patched)) if strict => {
                let mut errors = strict::patch_errors(*ty, body);
                errors.extend(unknown);
                if !errors.is_empty() {
                    return Err(strict::patch_error(*ty, &patched, body, &errors));
                }
            }
            _ if !unknown.is_empty() => return Err(strict::decoding_error(def, &unknown)),
            _ => {}
        }
        Ok(def.to_storage(new))
    }
}

/// The kind's update-time preparation of `new` (`strategy::prepare_update`); an apply's
/// record of who set what is the field manager's, whatever the subresource's merge keeps
/// of the stored metadata.
fn prepare_keeping_apply_record(
    def: &ResourceDef,
    (new, old, sub): (&mut Value, &Value, &str),
    adm: &Admission,
    applied: bool,
) -> Result<(), Status> {
    let record = applied
        .then(|| new.pointer("/metadata/managedFields").cloned())
        .flatten();
    strategy::prepare_update(def, new, old, sub, adm)?;
    if let Some(record) = record {
        meta_mut(new).insert("managedFields".into(), record);
    }
    Ok(())
}

/// The uid a replacing object names, if any, is a precondition of its write, as
/// kube-apiserver makes it (`defaultUpdatedObjectInfo.Preconditions`): 409 when the stored
/// object has another, such as one deleted and made again since the sender read it.
fn uid_precondition(
    def: &ResourceDef,
    (ns, name): (&str, &str),
    new: &Value,
    old: &Value,
) -> Result<(), Status> {
    let (want, had) = (meta_str(new, "uid"), meta_str(old, "uid"));
    if want.is_empty() || want == had {
        return Ok(());
    }
    Err(super::delete::storage_precondition_failed(
        def,
        name,
        &def.key(ns, name),
        &format!("Precondition failed: UID in precondition: {want}, UID in object meta: {had}"),
    ))
}

/// The resourceVersion a replacing object names, if it is a revision.
fn sent_revision(change: &Update) -> Option<Revision> {
    match change {
        Update::Replace(obj) => obj
            .pointer("/metadata/resourceVersion")?
            .as_str()?
            .parse()
            .ok(),
        Update::Patch(..) | Update::Apply { .. } => None,
    }
}

/// The revision an update expects to replace: the one the client sent (409 when the
/// object has moved on since), or the stored one when it sent none — every kind served
/// here allows an unconditional update, as their Kubernetes strategies do.
fn expected_revision(
    def: &ResourceDef,
    name: &str,
    sent_rv: &str,
    stored: Revision,
) -> Result<Revision, Status> {
    if sent_rv.is_empty() && !def.strategy.allows_unconditional_update() {
        // As the generic store words it: the resource and group as the kind.
        let cause = StatusCause::invalid_rendered(
            "metadata.resourceVersion",
            "0x0",
            "must be specified for an update",
        );
        return Err(Status::invalid(def.plural, def.group, name, vec![cause]));
    }
    if sent_rv.is_empty() {
        return Ok(stored);
    }
    let rv: Revision = sent_rv
        .parse()
        .map_err(|_| Status::bad_request(format!("invalid resourceVersion {sent_rv:?}")))?;
    if rv != stored {
        return Err(Status::conflict(
            def.subject(name),
            "the object has been modified; please apply your changes to the latest version and try again",
        ));
    }
    Ok(rv)
}

/// A client's change to an object.
pub enum Update {
    /// The whole object (`PUT`).
    Replace(Value),
    /// A patch of this format (`PATCH`).
    Patch(PatchType, Bytes),
    /// A configuration applied by the request's field manager (server-side apply).
    Apply {
        /// The applied configuration.
        config: Value,
        /// `force=true`: take over the fields other managers own.
        force: bool,
    },
}

/// Whether an update changes nothing: the same object, resourceVersion and the times of
/// the managed fields aside (an apply of the same configuration writes nothing). Compared
/// in place: this runs on every write.
fn unchanged(new: &Value, old: &Value) -> bool {
    let (Some(n), Some(o)) = (new.as_object(), old.as_object()) else {
        return new == old;
    };
    let same_meta = match (metadata(n), metadata(o)) {
        (Some(a), Some(b)) => {
            same_except(a, b, &["resourceVersion", "managedFields"])
                && same_entries(a.get("managedFields"), b.get("managedFields"))
        }
        (a, b) => a == b,
    };
    same_meta && same_except(n, o, &["metadata"])
}

fn metadata(obj: &Map<String, Value>) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

fn entries(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array).map_or(&[], Vec::as_slice)
}

/// Whether two objects hold the same fields, `except` aside.
fn same_except(a: &Map<String, Value>, b: &Map<String, Value>, except: &[&str]) -> bool {
    let kept = |m: &Map<String, Value>| m.keys().filter(|k| !except.contains(&k.as_str())).count();
    kept(a) == kept(b)
        && a.iter()
            .filter(|(k, _)| !except.contains(&k.as_str()))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// Whether two lists of managed fields are the same but for their times.
fn same_entries(a: Option<&Value>, b: Option<&Value>) -> bool {
    let (a, b) = (entries(a), entries(b));
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| match (x.as_object(), y.as_object()) {
                (Some(x), Some(y)) => same_except(x, y, &["time"]),
                _ => x == y,
            })
}

/// Keeps what only the server sets: uid, creation time, name, namespace, the generation
/// (none of the kinds served here counts generations, as their Kubernetes strategies do
/// not), and the deletion's timestamp and grace period, which an update can neither set
/// nor remove (`rest.BeforeUpdate`): only a DELETE begins a deletion.
fn carry_server_metadata(new: &mut Value, old: &Value, def: &ResourceDef, ns: &str) {
    let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
    let meta = meta_mut(new);
    // A uid the update names is its to keep: one that is not the object's is refused (a
    // replace is held to it as a precondition, `uid_precondition`; a patch that changes it
    // by `ValidateObjectMetaUpdate`). Only an update that names none takes the stored one.
    let names_uid = meta
        .get("uid")
        .and_then(Value::as_str)
        .is_some_and(|u| !u.is_empty());
    if !names_uid && let Some(uid) = old_meta.get("uid") {
        meta.insert("uid".into(), uid.clone());
    }
    for k in [
        "creationTimestamp",
        "name",
        "generation",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        match old_meta.get(k) {
            Some(v) => {
                meta.insert(k.into(), v.clone());
            }
            None => {
                meta.remove(k);
            }
        }
    }
    if def.namespaced {
        meta.insert("namespace".into(), json!(ns));
    }
}

pub(super) fn strip_rv(obj: &mut Value) {
    meta_mut(obj).remove("resourceVersion");
}

/// kube-apiserver's `checkName`: the object names itself as the URL does (a body or patch
/// that drops the name is refused, as one that changes it), and its namespace, if any.
fn check_name(def: &ResourceDef, (ns, name): (&str, &str), sent: &Value) -> Result<(), Status> {
    let sent_name = meta_str(sent, "name");
    if sent_name != name {
        return Err(Status::bad_request(format!(
            "the name of the object ({sent_name}) does not match the name on the URL ({name})"
        )));
    }
    let sent_ns = meta_str(sent, "namespace");
    if def.namespaced && !sent_ns.is_empty() && sent_ns != ns {
        return Err(Status::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        ));
    }
    Ok(())
}
