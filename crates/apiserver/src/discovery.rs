//! Discovery (`/api`, `/apis`, per group-version, and the aggregated v2/v2beta1 format) and
//! the OpenAPI v3 documents kubectl consults before `create -f` / `apply -f`.

use serde_json::{Value, json};

use crate::registry::{CREATE_SUBRESOURCES, Kind, RESOURCES, REVIEWS, ResourceDef, group_versions};

/// The aggregated discovery version a client asked for in `Accept`, if any.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let params: Vec<&str> = part.split(';').map(str::trim).collect();
        let has = |p: &str| params.contains(&p);
        if has("g=apidiscovery.k8s.io") && has("as=APIGroupDiscoveryList") {
            if has("v=v2") {
                return Some("v2");
            }
            if has("v=v2beta1") {
                return Some("v2beta1");
            }
        }
    }
    None
}

/// The Content-Type of an aggregated discovery answer.
pub fn aggregated_content_type(v: &str) -> String {
    format!("application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList")
}

/// Legacy `GET /api`.
pub fn api_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
}

/// Legacy `GET /apis`.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = groups().into_iter().map(group_json).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// Legacy `GET /apis/<group>`.
pub fn api_group(group: &str) -> Option<Value> {
    groups().into_iter().find(|(g, _)| *g == group).map(|g| {
        let mut v = group_json(g);
        v["kind"] = json!("APIGroup");
        v["apiVersion"] = json!("v1");
        v
    })
}

fn groups() -> Vec<(&'static str, Vec<&'static str>)> {
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (g, v) in group_versions().into_iter().filter(|(g, _)| !g.is_empty()) {
        match out.iter_mut().find(|(og, _)| *og == g) {
            Some((_, vs)) => vs.push(v),
            None => out.push((g, vec![v])),
        }
    }
    out
}

fn group_json((group, versions): (&str, Vec<&str>)) -> Value {
    let gv = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
    json!({"name": group, "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(), "preferredVersion": gv(versions[0])})
}

/// The categories a resource belongs to, as kube-apiserver's storage declares them
/// (`CategoriesProvider`): `all` for pods and services, so `kubectl get all` lists them.
fn categories(r: &ResourceDef) -> &'static [&'static str] {
    match r.kind_id {
        Kind::Pod | Kind::Service => &["all"],
        _ => &[],
    }
}

/// A discovery entry with its resource's categories, when it has any (`omitempty`).
fn with_categories(entry: &mut Value, r: &ResourceDef) {
    let categories = categories(r);
    if !categories.is_empty() {
        entry["categories"] = json!(categories);
    }
}

/// Legacy `GET /api/v1` or `/apis/<g>/<v>`.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    if !group_versions().contains(&(group, version)) {
        return None;
    }
    let mut resources = Vec::new();
    for r in RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        let mut resource = json!({"name": r.plural, "singularName": r.singular(), "namespaced": r.namespaced,
            "kind": r.kind, "verbs": r.verbs(), "shortNames": r.short_names});
        with_categories(&mut resource, r);
        resources.push(resource);
        for s in r.subresources {
            resources.push(json!({"name": format!("{}/{s}", r.plural), "singularName": "", "namespaced": r.namespaced,
                "kind": r.kind, "verbs": ResourceDef::subresource_verbs(s)}));
        }
        for c in CREATE_SUBRESOURCES.iter().filter(|c| c.plural == r.plural) {
            resources.push(json!({"name": format!("{}/{}", r.plural, c.subresource), "singularName": "",
                "namespaced": r.namespaced, "group": c.group, "version": c.version, "kind": c.kind, "verbs": ["create"]}));
        }
    }
    for r in REVIEWS
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        resources.push(json!({"name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced, "kind": r.kind, "verbs": ["create"]}));
    }
    let gv = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// Aggregated discovery for `/api` (core) or `/apis` (groups).
pub fn aggregated(core: bool, v: &str) -> Value {
    let mut items = Vec::new();
    let gvs = group_versions();
    let mut group_names: Vec<&str> = Vec::new();
    for (g, _) in &gvs {
        if (g.is_empty() == core) && !group_names.contains(g) {
            group_names.push(g);
        }
    }
    for g in group_names {
        let versions: Vec<Value> = gvs
            .iter()
            .filter(|(gg, _)| *gg == g)
            .map(|(_, ver)| {
                let mut resources: Vec<Value> = RESOURCES
                    .iter()
                    .filter(|r| r.group == g && r.version == *ver)
                    .map(|r| {
                        let kind = json!({"group": g, "version": ver, "kind": r.kind});
                        let mut resource = json!({"resource": r.plural, "responseKind": kind,
                            "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": r.singular(), "shortNames": r.short_names, "verbs": r.verbs(),
                            "subresources": r.subresources.iter().map(|s| json!({"subresource": s, "responseKind": kind, "verbs": ResourceDef::subresource_verbs(s)}))
                                .chain(CREATE_SUBRESOURCES.iter().filter(|c| c.plural == r.plural).map(|c| json!({"subresource": c.subresource,
                                    "responseKind": {"group": c.group, "version": c.version, "kind": c.kind}, "verbs": ["create"]})))
                                .collect::<Vec<_>>()});
                        with_categories(&mut resource, r);
                        resource
                    })
                    .collect();
                resources.extend(REVIEWS.iter().filter(|r| r.group == g && r.version == *ver).map(|r| {
                    json!({"resource": r.plural, "responseKind": {"group": g, "version": ver, "kind": r.kind},
                        "scope": if r.namespaced { "Namespaced" } else { "Cluster" }, "singularResource": r.kind.to_lowercase(), "verbs": ["create"]})
                }));
                json!({"version": ver, "freshness": "Current", "resources": resources})
            })
            .collect();
        items.push(json!({"metadata": {"name": g}, "versions": versions}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{v}"), "metadata": {}, "items": items})
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// `GET /openapi/v3`: the group-versions and where their documents are.
pub fn openapi_v3_root() -> Value {
    let mut paths = serde_json::Map::new();
    for (g, v) in group_versions() {
        let p = gv_path(g, v);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", DOC_HASH)}),
        );
    }
    json!({"paths": paths})
}

const DOC_HASH: &str = "kubeboot1";

/// `GET /openapi/v3/<api path>`: per kind, a patch operation carrying the GVK and the
/// `fieldValidation` parameter, which tells kubectl the server validates fields itself.
pub fn openapi_v3_doc(api_path: &str) -> Option<&'static Value> {
    static DOCS: std::sync::OnceLock<Vec<(String, Value)>> = std::sync::OnceLock::new();
    let docs = DOCS.get_or_init(|| {
        group_versions()
            .into_iter()
            .filter_map(|(g, v)| Some((gv_path(g, v), build_openapi_v3_doc(&gv_path(g, v))?)))
            .collect()
    });
    docs.iter().find(|(p, _)| p == api_path).map(|(_, d)| d)
}

fn build_openapi_v3_doc(api_path: &str) -> Option<Value> {
    let (g, v) = group_versions()
        .into_iter()
        .find(|(g, v)| gv_path(g, v) == api_path)?;
    let mut paths = serde_json::Map::new();
    let mut schemas = serde_json::Map::new();
    for r in RESOURCES.iter().filter(|r| r.group == g && r.version == v) {
        let gvk = json!([{"group": g, "version": v, "kind": r.kind}]);
        let base = if r.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}/{{name}}",
                gv_path(g, v),
                r.plural
            )
        } else {
            format!("/{}/{}/{{name}}", gv_path(g, v), r.plural)
        };
        let op = |verb: &str| {
            json!({"operationId": format!("{verb}{}", r.kind), "x-kubernetes-action": verb,
            "x-kubernetes-group-version-kind": gvk[0],
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                           {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}}],
            "responses": {"200": {"description": "OK"}}})
        };
        paths.insert(base, json!({"patch": op("patch"), "put": op("put")}));
        let mut kind_schema = (r.schema)();
        let defs = kind_schema.as_object_mut().and_then(|o| o.remove("$defs"));
        for (name, def) in defs
            .as_ref()
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            schemas.insert(name.clone(), openapi_refs(def.clone()));
        }
        let name = kind_schema
            .get("title")
            .and_then(Value::as_str)
            .map_or_else(|| r.kind.to_owned(), str::to_owned);
        if let Some(o) = kind_schema.as_object_mut() {
            o.remove("$schema");
            o.remove("title");
            o.insert("x-kubernetes-group-version-kind".into(), gvk.clone());
        }
        schemas.insert(name, openapi_refs(kind_schema));
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": paths, "components": {"schemas": schemas}}),
    )
}

/// Rewrites JSON Schema `$defs` references into OpenAPI `components/schemas` ones.
fn openapi_refs(v: Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        let r = r.replace("#/$defs/", "#/components/schemas/");
                        (k, Value::String(r))
                    }
                    (_, v) => (k, openapi_refs(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(openapi_refs).collect()),
        other => other,
    }
}

/// The Content-Type of the protobuf OpenAPI v2 answer (clients ask with an `@` in the
/// `Accept` value, which Go's media-type parser refuses in a response).
pub const OPENAPI_V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

/// A minimal OpenAPI v2 document (`swagger: "2.0"` and `info`), encoded as gnostic's
/// `openapi_v2.Document` protobuf. Older kubectl (1.27) fetches it before `apply`; the
/// kinds served here are built into kubectl, so it needs no schemas from it.
pub fn openapi_v2_protobuf() -> Vec<u8> {
    fn field(out: &mut Vec<u8>, num: u8, bytes: &[u8]) {
        out.push((num << 3) | 2);
        let mut n = bytes.len();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(bytes);
    }
    let mut info = Vec::new();
    field(&mut info, 1, b"Kubernetes");
    field(&mut info, 2, b"v1.33.0");
    let mut doc = Vec::new();
    field(&mut doc, 1, b"2.0");
    field(&mut doc, 2, &info);
    doc
}

/// The same minimal OpenAPI v2 document as JSON.
pub fn openapi_v2_json() -> Value {
    json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": {}, "definitions": {}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregated_accept_headers_of_each_kubectl() {
        assert_eq!(
            aggregated_version(
                "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2beta1")
        );
        assert_eq!(
            aggregated_version(
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
            ),
            Some("v2")
        );
        assert_eq!(aggregated_version("application/json, */*"), None);
    }

    #[test]
    fn pods_and_services_are_in_the_all_category_in_both_discoveries() {
        let legacy = api_resource_list("", "v1").unwrap();
        let core = aggregated(true, "v2");
        let aggregated_resources = core["items"][0]["versions"][0]["resources"].clone();
        for resources in [&legacy["resources"], &aggregated_resources] {
            let mut in_all: Vec<&str> = resources
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["categories"] == json!(["all"]))
                .map(|r| r["name"].as_str().or(r["resource"].as_str()).unwrap())
                .collect();
            in_all.sort_unstable();
            assert_eq!(in_all, ["pods", "services"]);
        }
    }

    #[test]
    fn certificates_discovery_lists_csrs_with_their_subresources_and_trust_bundles() {
        let l = api_resource_list("certificates.k8s.io", "v1").unwrap();
        let names: Vec<&str> = l["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "certificatesigningrequests",
                "certificatesigningrequests/approval",
                "certificatesigningrequests/status",
                "clustertrustbundles"
            ]
        );
        assert_eq!(l["resources"][0]["shortNames"][0], "csr");
    }
}
