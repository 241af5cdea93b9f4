//! Server-side apply (`PATCH` with `application/apply-patch+yaml`): the request's field
//! manager's configuration merged into the object as `crate::fieldmanager` rules, through
//! the same update (or, for an object that does not exist yet, create) as any write.

use bytes::Bytes;
use kubeboot_api::Status;
use kubeboot_api::clock::format_rfc3339;
use serde_json::Value;

use super::Handlers;
use super::update::Update;
use crate::authn::UserInfo;
use crate::object::meta_str;
use crate::registry::ResourceDef;
use crate::requestinfo::Query;

impl Handlers {
    /// Applies a configuration: the object as written, and whether it was created.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply(
        &self,
        def: &ResourceDef,
        ns: &str,
        name: &str,
        sub: &str,
        body: Bytes,
        force: bool,
        q: &Query,
        user: &UserInfo,
    ) -> Result<(Value, bool), Status> {
        let config = applied_configuration(def, name, &body)?;
        for _ in 0..4 {
            let change = Update::Apply {
                config: config.clone(),
                force,
            };
            match self.update(def, ns, name, sub, change, q, user).await {
                // Nothing to apply to (not another object the update looked up).
                Err(s) if sub.is_empty() && is_not_found(&s, def, name) => {}
                other => return other.map(|obj| (obj, false)),
            }
            // Nothing to apply to: the configuration makes the object.
            let time = format_rfc3339(self.now());
            let manager = crate::fieldmanager::Manager::of(q, "", &time);
            let mut new = crate::fieldmanager::apply(def, None, &config, &manager, force)?;
            crate::fieldmanager::sync_last_applied(&mut new, &config, &manager);
            match self.create_owned(def, ns, new, q, user, true).await {
                Err(s) if s.code == 409 && s.reason == "AlreadyExists" => continue,
                other => return other.map(|obj| (obj, true)),
            }
        }
        Err(Status::conflict(
            def.subject(name),
            "the object kept being created and deleted; try again",
        ))
    }
}

/// The applied configuration (YAML or JSON): of the kind of the URL, and of its name.
fn applied_configuration(def: &ResourceDef, name: &str, body: &[u8]) -> Result<Value, Status> {
    let config = crate::body::decode("application/yaml", body)?;
    if !config.is_object() {
        return Err(Status::bad_request(
            "the applied configuration must be an object",
        ));
    }
    check_applied_type(def, &config)?;
    if config
        .pointer("/metadata/managedFields")
        .is_some_and(Value::is_array)
    {
        return Err(Status::bad_request("metadata.managedFields must be nil"));
    }
    let sent = meta_str(&config, "name");
    if !sent.is_empty() && sent != name {
        return Err(Status::bad_request(format!(
            "the name of the object ({sent}) does not match the name on the URL ({name})"
        )));
    }
    Ok(config)
}

/// An applied configuration names the group, version and kind it is of, exactly those of
/// the URL (the field manager's `versionCheckManager`, in its words).
fn check_applied_type(def: &ResourceDef, config: &Value) -> Result<(), Status> {
    let text = |f: &str| config.get(f).and_then(Value::as_str).unwrap_or_default();
    let (group, version) = match text("apiVersion").split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", text("apiVersion")),
    };
    let kind = text("kind");
    if (group, version, kind) == (def.group, def.version, def.kind) {
        return Ok(());
    }
    Err(Status::bad_request(format!(
        "invalid object type: {group}/{version}, Kind={kind}"
    )))
}

/// Whether `s` is the 404 of the object `name` of `def` itself.
fn is_not_found(s: &Status, def: &ResourceDef, name: &str) -> bool {
    let details = s.details.as_ref();
    s.code == 404
        && s.reason == "NotFound"
        && details.is_some_and(|d| d.name == name && d.kind == def.plural)
}
