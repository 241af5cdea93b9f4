//! `create`: a new object checked against its kind, given what the server owns (name,
//! uid, creation time), admitted by its strategy, stored in an existing namespace.

use kubeboot_api::clock::format_rfc3339;
use kubeboot_api::{Status, StatusCause};
use serde_json::{Value, json};

use super::incoming::{check_type, normalize, validate_name};
use super::{Handlers, encode};
use crate::authn::UserInfo;
use crate::object::{self, meta_mut, meta_str, set_resource_version};
use crate::registry::ResourceDef;
use crate::registry::strategy::{self, Admission};
use crate::requestinfo::Query;
use crate::status::from_store;
use crate::strict;

impl Handlers {
    /// Creates an object from what a client (or the server itself, as `user`) sent: the
    /// object as stored, with its resourceVersion (none for a dry run).
    pub async fn create(
        &self,
        def: &ResourceDef,
        ns: &str,
        sent: Value,
        q: &Query,
        user: &UserInfo,
    ) -> Result<Value, Status> {
        self.create_owned(def, ns, sent, q, user, false).await
    }

    /// A create; `applied`: the object is an apply's result and carries its managed
    /// fields, else the request's field manager owns everything it set.
    pub(super) async fn create_owned(
        &self,
        def: &ResourceDef,
        ns: &str,
        sent: Value,
        q: &Query,
        user: &UserInfo,
        applied: bool,
    ) -> Result<Value, Status> {
        let generated = meta_str(&sent, "name").is_empty();
        let versioned = names_a_version(&sent);
        let mut obj = self.prepare_new(def, ns, sent, strict::is_strict(q))?;
        if !applied {
            // As kube-apiserver records it: what the request sent, with the kind's
            // defaults, before the server sets its own fields (a CSR's requester).
            let time = format_rfc3339(self.now());
            let manager = crate::fieldmanager::Manager::of(q, "", &time);
            crate::fieldmanager::settle_sent_record(&mut obj, None, "");
            crate::fieldmanager::track_update(def, None, &mut obj, &manager);
        }
        self.confirm_no_escalation(def, (ns, ""), (&obj, None), user)
            .await?;
        self.admit_new(def, &mut obj, user)?;
        let name = meta_str(&obj, "name").to_owned();
        if def.namespaced {
            self.ensure_namespace(def, &name, ns, 0).await?;
        }
        let dry_run = crate::listoptions::is_dry_run(q);
        let reserved = self.reserve_for(def, &mut obj, None, dry_run).await?;
        if dry_run {
            return Ok(self.output(def, obj));
        }
        if versioned && !applied {
            // The store refuses it (etcd3's `Create`), after everything else, as an error
            // that is no API status: a 500 in its own words.
            self.release(&reserved).await;
            return Err(Status::failure(
                500,
                "",
                "resourceVersion should not be set on objects to be created",
            ));
        }
        match self.store_new(def, ns, &mut obj, generated).await {
            Ok(()) => Ok(self.output(def, obj)),
            Err(refused) => {
                self.release(&reserved).await;
                Err(refused)
            }
        }
    }

    /// Writes a new object (a taken generated name generated again), and takes it back
    /// when its namespace went away meanwhile.
    async fn store_new(
        &self,
        def: &ResourceDef,
        ns: &str,
        obj: &mut Value,
        generated: bool,
    ) -> Result<(), Status> {
        let mut name = meta_str(obj, "name").to_owned();
        // A generated name that is taken is generated again, as kube-apiserver does
        // (RetryGenerateName: up to 7 more tries); five random characters collide now and
        // then among thousands of objects.
        let mut retries = if generated { 7 } else { 0 };
        let kv = loop {
            let result = self.store.create(&def.key(ns, &name), encode(obj)?).await;
            match result {
                Err(kubeboot_store::StoreError::AlreadyExists(_)) if retries > 0 => {
                    retries -= 1;
                    let prefix = meta_str(obj, "generateName").to_owned();
                    name = format!("{prefix}{}", object::random_suffix());
                    meta_mut(obj).insert("name".into(), json!(name));
                    def.strategy.canonicalize(obj);
                }
                other => break other.map_err(|e| from_store(e, def, &name))?,
            }
        };
        if def.namespaced {
            // The check above and the namespace's deletion can cross. The deletion marks
            // the namespace Terminating before it lists what is in it: either that list
            // finds this object, or this second look finds the mark and takes the object
            // back. Either way nothing outlives its namespace.
            if let Err(refused) = self.ensure_namespace(def, &name, ns, kv.mod_revision).await {
                self.take_back(&def.key(ns, &name), &kv).await;
                return Err(refused);
            }
        }
        set_resource_version(obj, kv.mod_revision);
        Ok(())
    }

    /// Deletes the object a create wrote, changed since or not (a controller may have
    /// answered its ADDED event), as long as the key still holds that object.
    async fn take_back(&self, key: &str, created: &kubeboot_store::KeyValue) {
        let mut expected = created.mod_revision;
        for _ in 0..8 {
            match self.store.delete(key, Some(expected)).await {
                Err(kubeboot_store::StoreError::Conflict { .. }) => {}
                _ => return,
            }
            match self.store.get(key).await {
                Ok(Some(now)) if now.create_revision == created.create_revision => {
                    expected = now.mod_revision;
                }
                _ => return,
            }
        }
    }

    /// Decodes a new object (under `fieldValidation=Strict` when `strict`) with the kind's
    /// defaults, and sets its name, namespace, uid and creation time.
    fn prepare_new(
        &self,
        def: &ResourceDef,
        ns: &str,
        sent: Value,
        strict: bool,
    ) -> Result<Value, Status> {
        check_type(def, &sent)?;
        let (obj, unknown) = normalize(def, sent, strict)?;
        if !unknown.is_empty() {
            return Err(strict::decoding_error(def, &unknown));
        }
        let mut obj = def.to_storage(obj);
        def.strategy.set_defaults(&mut obj);
        let meta = meta_mut(&mut obj);
        let body_ns = meta
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if def.namespaced {
            if !body_ns.is_empty() && body_ns != ns {
                return Err(Status::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        let mut name = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let generate = meta
            .get("generateName")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            if generate.is_empty() {
                return Err(Status::invalid(
                    def.kind,
                    def.group,
                    "",
                    vec![StatusCause::required(
                        "metadata.name",
                        "name or generateName is required",
                    )],
                ));
            }
            name = format!("{generate}{}", object::random_suffix());
        }
        validate_name(def, &name, &generate)?;
        meta.insert("name".into(), json!(name));
        meta.insert("uid".into(), json!(object::random_uid()));
        meta.insert(
            "creationTimestamp".into(),
            json!(format_rfc3339(self.now())),
        );
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            meta.remove(k);
        }
        Ok(obj)
    }

    /// Sets what the server owns on a new object (`PrepareForCreate`), runs the kind's
    /// create-time admission, and validates the result.
    fn admit_new(&self, def: &ResourceDef, obj: &mut Value, user: &UserInfo) -> Result<(), Status> {
        let adm = Admission {
            user,
            now: self.now(),
            authz: &self.authz,
        };
        def.strategy.prepare_create(def, obj, &adm)?;
        def.strategy.canonicalize(obj);
        let causes = strategy::validate(def, obj, None);
        if !causes.is_empty() {
            return Err(Status::invalid(
                def.kind,
                def.group,
                meta_str(obj, "name"),
                causes,
            ));
        }
        Ok(())
    }
}

/// Whether a new object names a resourceVersion (a number above 0, as the storage's
/// versioner reads it; anything else it takes for none).
fn names_a_version(sent: &Value) -> bool {
    meta_str(sent, "resourceVersion")
        .parse::<u64>()
        .is_ok_and(|v| v > 0)
}
