//! The server's own writes — the default namespaces and RBAC policy, the first bootstrap
//! token, and `kube-public/cluster-info` — made through the same create and update handlers
//! as a request's, as the user `system:apiserver` (in `system:masters`): checked, defaulted
//! and admitted exactly as a client's write would be.

use std::time::SystemTime;

use kubeboot_api::Status;
use serde_json::{Value, json};

use crate::authn::{AUTHENTICATED, UserInfo};
use crate::authz::MASTERS;
use crate::handlers::{Handlers, Update};
use crate::object::meta_str;
use crate::registry::{self, Kind};
use crate::requestinfo::Query;

/// Creates each default object that does not exist yet, and reconciles the default RBAC
/// objects that do (`crate::reconcile`), as kube-apiserver does at every start.
pub async fn defaults(handlers: &Handlers) -> Result<(), Status> {
    for (kind, obj) in crate::policy::default_objects() {
        let def = registry::by_kind(kind);
        let ns = meta_str(&obj, "namespace").to_owned();
        match handlers
            .create(def, &ns, obj.clone(), &Query::default(), &user())
            .await
        {
            Ok(_) => {}
            Err(s) if is_already_exists(&s) => reconcile(handlers, kind, &ns, &obj).await?,
            Err(s) => return Err(s),
        }
    }
    label_namespaces(handlers).await;
    Ok(())
}

/// Labels each namespace that lacks `kubernetes.io/metadata.name` (stored by an older
/// kubeboot; kube-apiserver adds it as it reads one from etcd), through an update as any
/// client's, where the namespace strategy sets it. A namespace being deleted is left to
/// its deletion; one that changes meanwhile is labelled by the update that changed it.
async fn label_namespaces(handlers: &Handlers) {
    let def = registry::by_kind(Kind::Namespace);
    let namespaces = match handlers.objects(def, "").await {
        Ok(all) => all,
        Err(s) => {
            tracing::warn!(error = %s.message, "listing the namespaces to label them with their names");
            return;
        }
    };
    let unlabelled = namespaces.into_iter().filter(|ns| {
        !registry::has_name_label(ns) && !crate::admission::namespace_lifecycle::is_terminating(ns)
    });
    for ns in unlabelled {
        let name = meta_str(&ns, "name").to_owned();
        let change = Update::Replace(ns);
        match handlers
            .update(def, "", &name, "", change, &Query::default(), &user())
            .await
        {
            Ok(_) => tracing::info!(namespace = %name, "labelled kubernetes.io/metadata.name"),
            Err(s) if matches!(s.code, 404 | 409) => {}
            Err(s) => {
                tracing::warn!(namespace = %name, error = %s.message, "labelling the namespace with its name");
            }
        }
    }
}

/// Brings an existing default RBAC object up to its default (another server may be doing
/// the same: a conflict is looked at again).
async fn reconcile(
    handlers: &Handlers,
    kind: Kind,
    ns: &str,
    expected: &Value,
) -> Result<(), Status> {
    let decide: Decide = match kind {
        Kind::ClusterRole | Kind::Role => crate::reconcile::role,
        Kind::ClusterRoleBinding | Kind::RoleBinding => crate::reconcile::binding,
        _ => return Ok(()),
    };
    let def = registry::by_kind(kind);
    let name = meta_str(expected, "name");
    // kubeadm's objects are kubeadm's to change, not the API server's bootstrap policy.
    if name.starts_with("kubeadm:") {
        return Ok(());
    }
    for _ in 0..10 {
        match reconcile_once(handlers, def, ns, expected, decide).await {
            Err(s) if s.code == 409 => continue,
            other => return other,
        }
    }
    Err(Status::internal(format!(
        "{} {name} kept changing while it was being reconciled",
        def.kind
    )))
}

/// How a kind's existing object is compared with its default.
type Decide = fn(&Value, &Value) -> crate::reconcile::Reconciled;

/// One look at a default RBAC object, and the write it needs; a 409 when it changed
/// meanwhile.
async fn reconcile_once(
    handlers: &Handlers,
    def: &'static registry::ResourceDef,
    ns: &str,
    expected: &Value,
    decide: Decide,
) -> Result<(), Status> {
    use crate::reconcile::{AUTOUPDATE, Reconciled};
    let name = meta_str(expected, "name");
    let q = Query::default();
    let Some(existing) = handlers.object(def, ns, name).await? else {
        // Deleted meanwhile: make it again.
        return handlers
            .create(def, ns, expected.clone(), &q, &user())
            .await
            .map(|_| ());
    };
    let obj = match decide(&existing, expected) {
        Reconciled::Unchanged => return Ok(()),
        Reconciled::Protected => {
            tracing::info!(kind = def.kind, %name, "not reconciling a default RBAC object annotated {AUTOUPDATE}: \"false\"");
            return Ok(());
        }
        Reconciled::Update(obj) => {
            let change = Update::Replace(obj);
            handlers
                .update(def, ns, name, "", change, &q, &user())
                .await?
        }
        Reconciled::Recreate(obj) => {
            let opts = json!({"preconditions": {"uid": meta_str(&existing, "uid")}});
            match handlers.delete(def, ns, name, Some(opts)).await {
                Ok(_) => {}
                Err(s) if s.code == 404 => {}
                Err(s) => return Err(s),
            }
            handlers.create(def, ns, obj, &q, &user()).await?
        }
    };
    tracing::info!(kind = def.kind, name = %meta_str(&obj, "name"), "reconciled a default RBAC object");
    Ok(())
}

/// A bootstrap token the server makes on its first start (`kubeboot server --token`, or
/// an InitConfiguration's `bootstrapTokens`).
#[derive(Clone, Debug)]
pub struct InitialToken {
    /// The token.
    pub token: kubeboot_bootstrap::BootstrapToken,
    /// Its description.
    pub description: String,
    /// How long it lives; `None` never expires.
    pub ttl: Option<std::time::Duration>,
    /// Its usages.
    pub usages: Vec<String>,
    /// Its extra groups.
    pub groups: Vec<String>,
}

impl InitialToken {
    /// A random token with kubeadm's defaults (24 h, signing and authentication, the
    /// default node group), as `kubeadm init` makes one.
    pub fn kubeadm_default() -> Self {
        use kubeboot_bootstrap::secret::{DEFAULT_NODE_TOKEN_GROUP, USAGES};
        Self {
            token: kubeboot_bootstrap::BootstrapToken::random(&kubeboot_api::random::OsRandom),
            description: "The default bootstrap token generated by 'kubeboot server'.".into(),
            ttl: Some(std::time::Duration::from_secs(24 * 3600)),
            usages: USAGES.iter().map(|u| (*u).to_owned()).collect(),
            groups: vec![DEFAULT_NODE_TOKEN_GROUP.to_owned()],
        }
    }
}

/// On a cluster without bootstrap tokens (its first start): makes `tokens`, and returns the
/// first, for the join command the server prints. A restart makes none, so a token an
/// operator deleted is not made again.
pub async fn first_tokens(
    handlers: &Handlers,
    now: SystemTime,
    tokens: &[InitialToken],
) -> Result<Option<InitialToken>, Status> {
    use kubeboot_bootstrap::secret::{SECRET_TYPE, TokenOptions, token_secret};
    let def = registry::by_kind(Kind::Secret);
    let secrets = handlers.objects(def, "kube-system").await?;
    if secrets
        .iter()
        .any(|s| s.get("type").and_then(Value::as_str) == Some(SECRET_TYPE))
    {
        return Ok(None);
    }
    for t in tokens {
        let usages: Vec<&str> = t.usages.iter().map(String::as_str).collect();
        let groups: Vec<&str> = t.groups.iter().map(String::as_str).collect();
        let options = TokenOptions {
            description: &t.description,
            ttl: t.ttl,
            usages: &usages,
            groups: &groups,
        };
        options.check().map_err(Status::bad_request)?;
        let secret = token_secret(&t.token, &options, now);
        handlers
            .create(def, "kube-system", secret, &Query::default(), &user())
            .await?;
    }
    Ok(tokens.first().cloned())
}

/// Publishes `kube-public/cluster-info` with the kubeconfig nodes discover (the server URL
/// and the CA bundle), creating it or, with `overwrite`, updating its kubeconfig when they
/// changed. A server that joined a control plane does not overwrite: nodes keep discovering
/// the endpoint the first server published. The bootstrap signer then signs it.
pub async fn cluster_info(
    handlers: &Handlers,
    server_url: &str,
    ca_pem: &str,
    overwrite: bool,
) -> Result<(), Status> {
    use kubeboot_bootstrap::cluster_info::{KUBECONFIG_KEY, NAME, NAMESPACE, kubeconfig};
    let def = registry::by_kind(Kind::ConfigMap);
    let text = kubeconfig(server_url, ca_pem);
    for _ in 0..10 {
        let written = match handlers.object(def, NAMESPACE, NAME).await? {
            None => {
                let obj = json!({"metadata": {"name": NAME, "namespace": NAMESPACE}, "data": {KUBECONFIG_KEY: text}});
                handlers
                    .create(def, NAMESPACE, obj, &Query::default(), &user())
                    .await
            }
            Some(mut obj) => {
                let current = obj.pointer("/data/kubeconfig").and_then(Value::as_str);
                if !overwrite || current == Some(text.as_str()) {
                    return Ok(());
                }
                obj["data"][KUBECONFIG_KEY] = Value::String(text.clone());
                let change = Update::Replace(obj);
                handlers
                    .update(def, NAMESPACE, NAME, "", change, &Query::default(), &user())
                    .await
            }
        };
        match written {
            Ok(_) => return Ok(()),
            // Another server wrote it in between: look again.
            Err(s) if s.code == 409 => continue,
            Err(s) => return Err(s),
        }
    }
    Err(Status::internal(
        "cluster-info kept changing while it was being published",
    ))
}

/// The identity the server writes as.
pub(crate) fn user() -> UserInfo {
    UserInfo {
        name: "system:apiserver".into(),
        uid: String::new(),
        groups: vec![MASTERS.into(), AUTHENTICATED.into()],
        extra: Default::default(),
    }
}

pub(crate) fn is_already_exists(s: &Status) -> bool {
    s.code == 409 && s.reason == "AlreadyExists"
}
