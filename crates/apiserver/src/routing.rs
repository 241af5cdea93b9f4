//! Routing: which handler serves a request, from what it asks (`RequestInfo`) and its
//! method, with kube-apiserver's answers for what no handler serves — 404 for a resource,
//! subresource or scope that does not exist, 405 for a verb the URL does not take.

use http::Method;
use kubeboot_api::Status;

use crate::registry::{self, ResourceDef, ReviewDef};
use crate::requestinfo::RequestInfo;

/// Where a resource request goes.
#[derive(Debug)]
pub enum Route {
    /// A create-only access or identity review.
    Review(&'static ReviewDef),
    /// A stored resource.
    Resource(Target),
    /// A create through a create-only subresource (`pods/<name>/eviction`).
    Subresource(&'static registry::CreateSubresource, Target),
}

/// A verb on a stored resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `GET` of one object.
    Get,
    /// `GET` of a collection.
    List,
    /// `GET ?watch=true`.
    Watch,
    /// `POST` to a collection.
    Create,
    /// `PUT` of one object.
    Update,
    /// `PATCH` of one object.
    Patch,
    /// `DELETE` of one object.
    Delete,
    /// `DELETE` of a collection.
    DeleteCollection,
}

impl Verb {
    /// The verb's name, as authorization and audit write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// What a request on a stored resource acts on.
#[derive(Debug)]
pub struct Target {
    /// The resource.
    pub def: &'static ResourceDef,
    /// The verb.
    pub verb: Verb,
    /// The namespace (empty for a cluster-scoped resource, or a list across namespaces).
    pub ns: String,
    /// The object's name (empty for a collection).
    pub name: String,
    /// The subresource (`status`, `approval`), or empty.
    pub subresource: String,
}

/// The route of a resource request (`info.is_resource`).
pub fn route(info: &RequestInfo, method: &Method) -> Result<Route, Status> {
    if let Some(review) = registry::REVIEWS
        .iter()
        .find(|r| r.group == info.group && r.version == info.version && r.plural == info.resource)
    {
        if method != Method::POST {
            return Err(Status::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({})",
                review.plural
            )));
        }
        if review.namespaced == info.namespace.is_empty() {
            return Err(not_found());
        }
        return Ok(Route::Review(review));
    }
    let def = registry::find(&info.group, &info.version, &info.resource).ok_or_else(not_found)?;
    // `namespaces/<a>/namespaces/<b>` would be authorized in namespace <a> but act on <b>.
    if info.resource == "namespaces" && !info.namespace.is_empty() && info.namespace != info.name {
        return Err(not_found());
    }
    let verb = verb(&info.verb)?;
    // What is authorized is what is done: no create of a named URL, no update of a
    // collection, and no create or delete through a subresource.
    let named = !info.name.is_empty();
    let sub = !info.subresource.is_empty();
    let create_only = registry::CREATE_SUBRESOURCES
        .iter()
        .find(|c| c.plural == def.plural && c.subresource == info.subresource);
    if let Some(c) = create_only {
        if verb != Verb::Create || !named {
            return Err(Status::method_not_allowed(
                "the server does not allow this method on the requested resource",
            ));
        }
        if def.namespaced && info.namespace.is_empty() {
            return Err(not_found());
        }
        return Ok(Route::Subresource(
            c,
            Target {
                def,
                verb,
                ns: info.namespace.clone(),
                name: info.name.clone(),
                subresource: info.subresource.clone(),
            },
        ));
    }
    let refused = match verb {
        Verb::Create => named || sub,
        Verb::Update | Verb::Patch => !named,
        Verb::Delete | Verb::DeleteCollection => sub,
        Verb::Get | Verb::List | Verb::Watch => false,
    } || !def.serves(&info.verb, &info.subresource);
    if refused {
        return Err(Status::method_not_allowed(
            "the server does not allow this method on the requested resource",
        ));
    }
    let served_subresource = !sub || def.subresources.contains(&info.subresource.as_str());
    let scope_fits = if def.namespaced {
        !info.namespace.is_empty() || matches!(verb, Verb::List | Verb::Watch)
    } else {
        info.namespace.is_empty() || info.resource == "namespaces"
    };
    if !served_subresource || !scope_fits {
        return Err(not_found());
    }
    Ok(Route::Resource(Target {
        def,
        verb,
        ns: if def.namespaced {
            info.namespace.clone()
        } else {
            String::new()
        },
        name: info.name.clone(),
        subresource: info.subresource.clone(),
    }))
}

fn verb(verb: &str) -> Result<Verb, Status> {
    Ok(match verb {
        "get" => Verb::Get,
        "list" => Verb::List,
        "watch" => Verb::Watch,
        "create" => Verb::Create,
        "update" => Verb::Update,
        "patch" => Verb::Patch,
        "delete" => Verb::Delete,
        "deletecollection" => Verb::DeleteCollection,
        other => {
            return Err(Status::method_not_allowed(format!(
                "verb {other:?} is not supported"
            )));
        }
    })
}

/// kube-apiserver's 404 for a path it does not serve.
pub fn not_found() -> Status {
    Status::failure(
        404,
        "NotFound",
        "the server could not find the requested resource",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requestinfo::{RequestInfo, parse_query};

    fn routed(method: &str, path: &str) -> Result<String, u16> {
        let q = parse_query(path.split_once('?').map(|(_, q)| q));
        let path = path.split('?').next().unwrap_or_default();
        let info = RequestInfo::new(method, path, &q);
        let method: Method = method.parse().unwrap();
        if !info.is_resource {
            return Ok("non-resource".into());
        }
        match route(&info, &method) {
            Ok(Route::Review(r)) => Ok(format!("review {}", r.plural)),
            Ok(Route::Subresource(c, t)) => {
                Ok(format!("{} {}/{} {}", c.kind, t.ns, t.name, c.group))
            }
            Ok(Route::Resource(t)) => Ok(format!(
                "{:?} {} ns={:?} name={:?} sub={:?}",
                t.verb, t.def.plural, t.ns, t.name, t.subresource
            )),
            Err(s) => Err(s.code),
        }
    }

    #[test]
    fn requests_go_where_kube_apiserver_sends_them() {
        let ok = |s: &str| Ok(s.to_owned());
        for (method, path, want) in [
            ("GET", "/healthz", ok("non-resource")),
            ("GET", "/apis", ok("non-resource")),
            (
                "GET",
                "/api/v1/namespaces/d/configmaps/x",
                ok(r#"Get configmaps ns="d" name="x" sub="""#),
            ),
            (
                "GET",
                "/api/v1/configmaps",
                ok(r#"List configmaps ns="" name="" sub="""#),
            ),
            (
                "GET",
                "/api/v1/configmaps?watch=1",
                ok(r#"Watch configmaps ns="" name="" sub="""#),
            ),
            (
                "POST",
                "/api/v1/namespaces/d/configmaps",
                ok(r#"Create configmaps ns="d" name="" sub="""#),
            ),
            (
                "PUT",
                "/api/v1/nodes/n/status",
                ok(r#"Update nodes ns="" name="n" sub="status""#),
            ),
            (
                "PATCH",
                "/apis/certificates.k8s.io/v1/certificatesigningrequests/c/approval",
                ok(r#"Patch certificatesigningrequests ns="" name="c" sub="approval""#),
            ),
            (
                "DELETE",
                "/api/v1/namespaces/d/secrets",
                ok(r#"DeleteCollection secrets ns="d" name="" sub="""#),
            ),
            (
                "GET",
                "/api/v1/namespaces/d",
                ok(r#"Get namespaces ns="" name="d" sub="""#),
            ),
            (
                "POST",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                ok("review selfsubjectaccessreviews"),
            ),
            (
                "GET",
                "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                Err(405),
            ),
            (
                "GET",
                "/api/v1/pods",
                ok("List pods ns=\"\" name=\"\" sub=\"\""),
            ),
            ("GET", "/api/v1/limitranges", Err(404)),
            (
                "POST",
                "/api/v1/namespaces/d/pods/p/eviction",
                ok("Eviction d/p policy"),
            ),
            ("GET", "/api/v1/namespaces/d/pods/p/eviction", Err(405)),
            (
                "POST",
                "/api/v1/namespaces/d/configmaps/x/eviction",
                Err(405),
            ),
            ("GET", "/api/v1/namespaces/a/namespaces/b", Err(404)),
            ("POST", "/api/v1/namespaces/d/configmaps/x", Err(405)),
            ("PUT", "/api/v1/namespaces/d/configmaps", Err(405)),
            ("DELETE", "/api/v1/nodes/n/status", Err(405)),
            ("GET", "/api/v1/namespaces/d/configmaps/x/status", Err(404)),
            ("GET", "/api/v1/namespaces/d/nodes/n", Err(404)),
            ("GET", "/api/v1/configmaps/x", Err(404)),
            ("POST", "/api/v1/configmaps", Err(404)),
        ] {
            assert_eq!(routed(method, path), want, "{method} {path}");
        }
    }
}
