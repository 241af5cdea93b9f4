//! Request attributes from the URL, as kube-apiserver's `requestinfo.go` derives them: the
//! verb, and for resource requests the group, version, namespace, resource, subresource
//! and name that authorization and dispatch work on.

use std::collections::HashMap;

/// What a request is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestInfo {
    /// True for `/api/<v>/...` and `/apis/<g>/<v>/...` with something after the version.
    pub is_resource: bool,
    /// Kubernetes verb: get, list, watch, create, update, patch, delete, deletecollection;
    /// for non-resource requests the lower-case HTTP method.
    pub verb: String,
    /// The URL path.
    pub path: String,
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Namespace, if the URL has one.
    pub namespace: String,
    /// Plural resource.
    pub resource: String,
    /// Subresource (`status`, `approval`).
    pub subresource: String,
    /// Object name (from the URL, or a `metadata.name=` field selector on list/watch).
    pub name: String,
    /// A list's, watch's or deletecollection's field selector terms, `(field, value,
    /// equal?)`, when it reads (kube-apiserver's `AuthorizeWithSelectors`): the Node
    /// authorizer lets a kubelet list the pods `spec.nodeName=<its name>` selects.
    pub field_selector: Vec<(String, String, bool)>,
}

/// Parsed query parameters (last value wins).
pub type Query = HashMap<String, String>;

/// Parses `a=b&c=d`, percent-decoding keys and values.
pub fn parse_query(q: Option<&str>) -> Query {
    let mut out = HashMap::new();
    for pair in q.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

/// Decodes `%XX` escapes and `+` as space.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// True when a `watch` query value asks for a watch (anything but `0` and `false` in any
/// case, as apimachinery converts a boolean).
pub fn is_watch(query: &Query) -> bool {
    query
        .get("watch")
        .is_some_and(|v| crate::listoptions::query_bool(v))
}

impl RequestInfo {
    /// Derives the request attributes from the method, path and query.
    pub fn new(method: &str, path: &str, query: &Query) -> Self {
        let mut info = RequestInfo {
            is_resource: false,
            verb: method.to_ascii_lowercase(),
            path: path.to_owned(),
            group: String::new(),
            version: String::new(),
            namespace: String::new(),
            resource: String::new(),
            subresource: String::new(),
            name: String::new(),
            field_selector: Vec::new(),
        };
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        let rest = match parts.as_slice() {
            ["api", version, rest @ ..] if !rest.is_empty() => {
                info.version = (*version).to_owned();
                rest
            }
            ["apis", group, version, rest @ ..] if !rest.is_empty() => {
                info.group = (*group).to_owned();
                info.version = (*version).to_owned();
                rest
            }
            _ => return info,
        };
        info.is_resource = true;
        let mut watch_segment = false;
        let mut rest = rest;
        if rest.first() == Some(&"watch") {
            watch_segment = true;
            rest = &rest[1..];
        }
        // namespaces/<ns>/<resource>/... ; a bare namespaces[/<ns>[/status|finalize]] is the
        // namespace resource itself.
        let segs: Vec<&str> = match rest {
            ["namespaces", ns, resource, tail @ ..]
                if !matches!(*resource, "status" | "finalize") || !tail.is_empty() =>
            {
                info.namespace = (*ns).to_owned();
                std::iter::once(*resource)
                    .chain(tail.iter().copied())
                    .collect()
            }
            other => other.to_vec(),
        };
        info.resource = segs.first().copied().unwrap_or_default().to_owned();
        info.name = segs.get(1).copied().unwrap_or_default().to_owned();
        info.subresource = segs.get(2).copied().unwrap_or_default().to_owned();
        if info.resource == "namespaces" && !info.name.is_empty() && info.namespace.is_empty() {
            // The namespace resource is named by itself.
            info.namespace = info.name.clone();
        }
        let watch = watch_segment || (info.name.is_empty() && is_watch(query));
        info.verb = verb(method, info.name.is_empty(), watch);
        // The name a list's or watch's field selector pins, as kube-apiserver authorizes
        // it; a name in the path (`/watch/<resource>/<name>`) stays, for the handler to
        // hold the selector to.
        if matches!(info.verb.as_str(), "list" | "watch")
            && info.name.is_empty()
            && let Some(name) = single_name_selector(query)
        {
            info.name = name;
        }
        if matches!(info.verb.as_str(), "list" | "watch" | "deletecollection")
            && let Some(fields) = query.get("fieldSelector")
        {
            info.field_selector = crate::selectors::field_terms(fields).unwrap_or_default();
        }
        info
    }
}

/// Kubernetes' verb of a resource request: its method, and whether it names an object or
/// watches.
fn verb(method: &str, collection: bool, watch: bool) -> String {
    match method {
        "POST" => "create",
        "GET" | "HEAD" if watch => "watch",
        "GET" | "HEAD" if collection => "list",
        "GET" | "HEAD" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" if collection => "deletecollection",
        "DELETE" => "delete",
        other => return other.to_ascii_lowercase(),
    }
    .to_owned()
}

/// The name a list's or a watch's field selector requires (`metadata.name=x`: its first
/// such term in the selector's order, as `RequiresExactMatch` finds it), if all of the
/// list's options decode (kube-apiserver takes no name from options it cannot read) and
/// the name could name an object.
fn single_name_selector(query: &Query) -> Option<String> {
    let fields = query.get("fieldSelector")?;
    crate::listoptions::list_numbers(query).ok()?;
    if let Some(labels) = query.get("labelSelector") {
        crate::selectors::LabelSelector::parse(labels).ok()?;
    }
    let terms = crate::selectors::field_terms(fields).ok()?;
    let (_, name, _) = terms
        .into_iter()
        .find(|(field, _, equal)| *equal && field == "metadata.name")?;
    crate::object::is_path_segment(&name).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: &str, url: &str) -> RequestInfo {
        let (path, q) = url.split_once('?').unwrap_or((url, ""));
        RequestInfo::new(method, path, &parse_query(Some(q)))
    }

    #[test]
    fn attributes_match_kubernetes_requestinfo() {
        // (method, URL, verb, namespace, resource, subresource, name)
        #[rustfmt::skip]
        let cases = [
            ("GET", "/api/v1/namespaces/kube-public/configmaps/cluster-info", "get", "kube-public", "configmaps", "", "cluster-info"),
            ("GET", "/api/v1/namespaces/default/configmaps", "list", "default", "configmaps", "", ""),
            ("GET", "/api/v1/namespaces/default/configmaps?watch=true", "watch", "default", "configmaps", "", ""),
            ("GET", "/api/v1/namespaces/default/configmaps?watch=false", "list", "default", "configmaps", "", ""),
            ("GET", "/api/v1/watch/namespaces/default/configmaps", "watch", "default", "configmaps", "", ""),
            ("GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests?fieldSelector=metadata.name%3Dcsr-1&watch=1", "watch", "", "certificatesigningrequests", "", "csr-1"),
            ("GET", "/api/v1/nodes?fieldSelector=metadata.name%3Dn1%20", "list", "", "nodes", "", "n1 "),
            ("GET", "/api/v1/nodes?fieldSelector=metadata.name%3Db,metadata.name%3Da", "list", "", "nodes", "", "a"),
            ("GET", "/api/v1/nodes?fieldSelector=metadata.name!%3Da,metadata.name%3D%3Db", "list", "", "nodes", "", "b"),
            ("GET", "/api/v1/nodes?fieldSelector=metadata.name%3Da%3Db", "list", "", "nodes", "", ""),
            ("GET", "/api/v1/nodes?fieldSelector=metadata.name%3D..", "list", "", "nodes", "", ""),
            ("GET", "/api/v1/nodes?fieldSelector=metadata.name%3Dn1&limit=x", "list", "", "nodes", "", ""),
            ("GET", "/api/v1/nodes?fieldSelector=metadata.name%3Dn1&labelSelector=a%3Db%3Dc", "list", "", "nodes", "", ""),
            ("GET", "/api/v1/namespaces/default/configmaps?watch=", "watch", "default", "configmaps", "", ""),
            ("GET", "/api/v1/namespaces/default/configmaps?watch=FALSE", "list", "default", "configmaps", "", ""),
            ("PUT", "/apis/certificates.k8s.io/v1/certificatesigningrequests/csr-1/approval", "update", "", "certificatesigningrequests", "approval", "csr-1"),
            ("POST", "/api/v1/namespaces", "create", "", "namespaces", "", ""),
            ("GET", "/api/v1/namespaces/demo", "get", "demo", "namespaces", "", "demo"),
            ("PUT", "/api/v1/namespaces/demo/status", "update", "demo", "namespaces", "status", "demo"),
            ("DELETE", "/api/v1/namespaces/demo/secrets", "deletecollection", "demo", "secrets", "", ""),
            ("PATCH", "/api/v1/nodes/n1/status", "patch", "", "nodes", "status", "n1"),
        ];
        for (method, url, verb, ns, resource, sub, name) in cases {
            let i = info(method, url);
            assert!(i.is_resource, "{url}");
            assert_eq!(
                (
                    i.verb.as_str(),
                    i.namespace.as_str(),
                    i.resource.as_str(),
                    i.subresource.as_str(),
                    i.name.as_str()
                ),
                (verb, ns, resource, sub, name),
                "{method} {url}"
            );
        }
    }

    #[test]
    fn discovery_and_health_are_non_resource() {
        for url in [
            "/",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/certificates.k8s.io/v1",
            "/healthz",
            "/version",
        ] {
            let i = info("GET", url);
            assert!(!i.is_resource, "{url}");
            assert_eq!(i.verb, "get");
        }
    }
}
