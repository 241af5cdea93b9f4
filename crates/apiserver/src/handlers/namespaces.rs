//! The namespace lifecycle the handlers share: nothing is created in a namespace that does
//! not exist or is being deleted, and a namespace is marked Terminating before its contents
//! go, then deleted — finished later if a crash interrupts it, or once the finalizers of
//! what was in it, and its own, are gone.

use kubeboot_api::Status;
use kubeboot_api::clock::format_rfc3339;
use kubeboot_store::{Revision, StoreError};
use serde_json::{Value, json};

use super::update::strip_rv;
use super::{Handlers, encode};
use crate::admission::namespace_lifecycle;
use crate::object::meta_mut;
use crate::registry::namespace_conditions::{self, Remaining};
use crate::registry::{self, ResourceDef, deletion};
use crate::status::from_store;

/// What the handlers need of a namespace: whether it is being deleted.
pub(crate) struct Lifecycle {
    terminating: bool,
}

impl Lifecycle {
    /// A stored namespace's lifecycle (one that is not JSON counts as active).
    pub(crate) fn parse(stored: &[u8]) -> Option<Self> {
        let namespace: Value = serde_json::from_slice(stored).unwrap_or(Value::Null);
        Some(Self {
            terminating: namespace_lifecycle::is_terminating(&namespace),
        })
    }

    /// Whether what the cache knows of a namespace is enough to let a create in: it is
    /// active. Being deleted, or not known, the store says for sure (the cache may not have
    /// applied yet that the deletion ended and a namespace of the same name was made).
    fn lets_in(known: Option<&Self>) -> bool {
        known.is_some_and(|l| !l.terminating)
    }
}

impl Handlers {
    /// Refuses a new `name` of `def` in namespace `ns` unless `ns` exists and is not being
    /// deleted (NamespaceLifecycle), as of at least revision `after` (0 before a create,
    /// the create's own to look again after it). The namespace is followed through the
    /// watch cache, as kube-apiserver's admission follows it through an informer; one the
    /// cache does not know is looked up in the store (created a moment ago, or never).
    pub(super) async fn ensure_namespace(
        &self,
        def: &ResourceDef,
        name: &str,
        ns: &str,
        after: Revision,
    ) -> Result<(), Status> {
        let ns_def = registry::by_kind(registry::Kind::Namespace);
        // A name no namespace can have names none (and is looked up nowhere).
        if !crate::object::is_dns1123_label(ns) {
            return Err(Status::not_found(ns_def.subject(ns)));
        }
        let key = ns_def.key("", ns);
        let namespace = self
            .namespaces
            .get_after(&key, after, Lifecycle::lets_in)
            .await
            .map_err(|e| from_store(e, ns_def, ns))?
            .ok_or_else(|| Status::not_found(ns_def.subject(ns)))?;
        if namespace.terminating {
            return Err(namespace_lifecycle::terminating_denial(
                def.subject(name),
                ns,
            ));
        }
        Ok(())
    }

    /// Marks a namespace about to be deleted `Terminating` (with its deletionTimestamp), so
    /// nothing new is created in it while its contents go; returns its new revision.
    pub(super) async fn mark_terminating(
        &self,
        def: &ResourceDef,
        name: &str,
        mut namespace: Value,
        rev: Revision,
    ) -> Result<Revision, Status> {
        if namespace_lifecycle::is_terminating(&namespace) {
            return Ok(rev);
        }
        namespace["status"]["phase"] = json!("Terminating");
        meta_mut(&mut namespace).insert(
            "deletionTimestamp".into(),
            json!(format_rfc3339(self.now())),
        );
        strip_rv(&mut namespace);
        let kv = self
            .store
            .update(&def.key("", name), encode(&namespace)?, Some(rev))
            .await
            .map_err(|e| from_store(e, def, name))?;
        Ok(kv.mod_revision)
    }

    /// Finishes deleting namespace `name` if it is Terminating (a deletion interrupted by
    /// a crash or a failed store write, or one waiting for finalizers): its contents, then
    /// the namespace once nothing in it and none of its own finalizers is left. Whether it
    /// is gone.
    pub async fn finish_namespace_deletion(&self, name: &str) -> Result<bool, Status> {
        let def = registry::by_kind(registry::Kind::Namespace);
        let Some(kv) = self
            .store
            .get(&def.key("", name))
            .await
            .map_err(|e| from_store(e, def, name))?
        else {
            return Ok(false);
        };
        let namespace: Value = serde_json::from_slice(&kv.value).unwrap_or(Value::Null);
        if !namespace_lifecycle::is_terminating(&namespace) {
            return Ok(false);
        }
        let remaining = self.delete_namespace_contents(name).await?;
        let (namespace, rev) = self
            .record_deletion_conditions(def, name, (namespace, kv.mod_revision), &remaining)
            .await?;
        if remaining.total() > 0 {
            return Ok(false);
        }
        self.finalize_namespace(def, name, namespace, rev).await
    }

    /// Writes what a pass over namespace `name` (read as `namespace` at its revision) left
    /// behind into its conditions, as the namespace deleter does; the namespace and
    /// revision as they are after (unchanged when nothing is to say, or when it changed
    /// meanwhile: the next pass says it).
    async fn record_deletion_conditions(
        &self,
        def: &ResourceDef,
        name: &str,
        (mut namespace, rev): (Value, Revision),
        remaining: &Remaining,
    ) -> Result<(Value, Revision), Status> {
        let existing = namespace
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        // Nothing left and nothing said: the namespace goes now, unchanged.
        let said = existing.iter().any(|c| c["status"] == "True");
        if remaining.total() == 0 && !said {
            return Ok((namespace, rev));
        }
        let now = format_rfc3339(self.now());
        let Some(conditions) = namespace_conditions::after_pass(&existing, remaining, &now) else {
            return Ok((namespace, rev));
        };
        namespace["status"]["conditions"] = Value::Array(conditions);
        strip_rv(&mut namespace);
        match self
            .store
            .update(&def.key("", name), encode(&namespace)?, Some(rev))
            .await
        {
            Ok(kv) => Ok((namespace, kv.mod_revision)),
            Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => Ok((namespace, rev)),
            Err(e) => Err(from_store(e, def, name)),
        }
    }

    /// The namespace controller's last step, once nothing is left in namespace `name`
    /// (read as `namespace` at `rev`): `kubernetes` leaves its spec's finalizers, then the
    /// namespace goes, unless other finalizers, of its spec (which `finalize` removes) or
    /// its metadata, hold it. Whether it is gone; a namespace that changed meanwhile is
    /// looked at again later.
    async fn finalize_namespace(
        &self,
        def: &ResourceDef,
        name: &str,
        mut namespace: Value,
        mut rev: Revision,
    ) -> Result<bool, Status> {
        let key = def.key("", name);
        let mut finalizers = registry::spec_finalizers(&namespace);
        if finalizers
            .iter()
            .any(|f| f == registry::KUBERNETES_FINALIZER)
        {
            finalizers.retain(|f| f != registry::KUBERNETES_FINALIZER);
            registry::set_spec_finalizers(&mut namespace, finalizers);
            strip_rv(&mut namespace);
            match self
                .store
                .update(&key, encode(&namespace)?, Some(rev))
                .await
            {
                Ok(kv) => rev = kv.mod_revision,
                Err(StoreError::Conflict { .. } | StoreError::NotFound(_)) => return Ok(false),
                Err(e) => return Err(from_store(e, def, name)),
            }
        }
        if !registry::spec_finalizers(&namespace).is_empty()
            || deletion::waits_for_finalizers(&namespace)
        {
            return Ok(false);
        }
        match self.store.delete(&key, Some(rev)).await {
            Ok(_) | Err(StoreError::NotFound(_)) => Ok(true),
            Err(StoreError::Conflict { .. }) => Ok(false),
            Err(e) => Err(from_store(e, def, name)),
        }
    }

    pub(super) async fn delete_namespace_contents(&self, ns: &str) -> Result<Remaining, Status> {
        let mut waiting = Remaining::default();
        for def in registry::RESOURCES
            .iter()
            .filter(|d| d.namespaced && d.version == "v1" && d.conversion.is_none())
        {
            let prefix = def.ns_prefix(ns);
            let mut after = None;
            for _ in 0..10_000 {
                let page = self
                    .store
                    .list(&prefix, after.as_deref(), Some(1000))
                    .await
                    .map_err(|e| from_store(e, def, ""))?;
                for kv in &page.items {
                    let obj = serde_json::from_slice(&kv.value).unwrap_or_default();
                    let read = (obj, kv.mod_revision);
                    match self.remove_or_mark_latest(def, &kv.key, read, None).await {
                        Ok(Some(left)) if deletion::waits_for_finalizers(&left) => {
                            let finalizers = crate::object::str_list(&left, "/metadata/finalizers");
                            waiting.add(def.plural, def.group, &finalizers);
                        }
                        Ok(_) => {}
                        // Kept changing: looked at again at the next try.
                        Err(busy) if busy.code == 409 => waiting.add(def.plural, def.group, &[]),
                        Err(e) => return Err(e),
                    }
                }
                if !page.more {
                    break;
                }
                after = page.items.last().map(|kv| kv.key.clone());
            }
        }
        Ok(waiting)
    }

    /// Finishes every namespace deletion that was interrupted: at the server's start, each
    /// Terminating namespace; later, each Terminating for longer than a request can take.
    pub async fn finish_stalled_namespace_deletions(&self, at_start: bool) {
        let def = registry::by_kind(registry::Kind::Namespace);
        let Ok(page) = self.store.list(&def.ns_prefix(""), None, None).await else {
            return;
        };
        let now = self.clock.now();
        for kv in page.items {
            let Ok(namespace) = serde_json::from_slice::<Value>(&kv.value) else {
                continue;
            };
            if !namespace_lifecycle::is_stalled(&namespace, now, at_start) {
                continue;
            }
            let name = crate::object::meta_str(&namespace, "name").to_owned();
            match self.finish_namespace_deletion(&name).await {
                Ok(true) => {
                    tracing::info!(namespace = %name, "finished an interrupted namespace deletion")
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(namespace = %name, error = %e.message, "cannot finish deleting the namespace yet; retrying in a minute")
                }
            }
        }
    }
}
