//! What kube-apiserver answers on the wire, checked with curl where a client library reads
//! the answer: a delete answers a Success Status (an object only for pods and services,
//! or one its finalizers keep), a create naming a resourceVersion is refused by the
//! store, and a replacement's name is checked against the URL before anything is read.

mod common;

use common::Server;
use serde_json::{Value, json};

const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

fn parsed(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

/// Seen before: a ConfigMap's delete answered the ConfigMap, which the JavaScript client
/// read as a `V1Status` with no status and Python's as a dict of kind ConfigMap.
#[test]
fn a_delete_answers_a_success_status_unless_the_kind_returns_the_object() {
    let s = Server::start();
    let post = |path: &str, body: Value| {
        let (code, text) = s.admin_send("POST", path, &body);
        assert_eq!(code, 201, "{text}");
        parsed(&text)
    };
    let created = post(CONFIGMAPS, json!({"metadata": {"name": "gone"}}));
    let (code, text) = s.admin_curl(&["-X", "DELETE"], &format!("{CONFIGMAPS}/gone"));
    assert_eq!(code, 200, "{text}");
    assert_eq!(
        parsed(&text),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
               "details": {"name": "gone", "kind": "configmaps", "uid": created["metadata"]["uid"]}})
    );
    // A group's resource names its group.
    let role = json!({"metadata": {"name": "r"}, "rules": []});
    post(
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles",
        role,
    );
    let path = "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles/r";
    let (_, text) = s.admin_curl(&["-X", "DELETE"], path);
    let details = &parsed(&text)["details"];
    assert_eq!(
        (details["group"].as_str(), details["kind"].as_str()),
        (Some("rbac.authorization.k8s.io"), Some("roles")),
        "{text}"
    );
    // One its finalizers keep is answered as it is now.
    post(
        CONFIGMAPS,
        json!({"metadata": {"name": "kept", "finalizers": ["example.com/hold"]}}),
    );
    let (_, text) = s.admin_curl(&["-X", "DELETE"], &format!("{CONFIGMAPS}/kept"));
    let kept = parsed(&text);
    assert_eq!(kept["kind"], "ConfigMap", "{text}");
    assert!(kept["metadata"]["deletionTimestamp"].is_string(), "{text}");
    // A pod is returned (its store's ReturnDeletedObject).
    let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
    post("/api/v1/namespaces/default/pods", pod);
    let (_, text) = s.admin_curl(&["-X", "DELETE"], "/api/v1/namespaces/default/pods/p");
    assert_eq!(parsed(&text)["kind"], "Pod", "{text}");
}

/// Seen before: a create naming a resourceVersion was accepted, where kube-apiserver's
/// store refuses it (code that worked here failed on Kubernetes); and a PUT to a name that
/// is not there, of a body naming another, was a 404 instead of checkName's 400.
#[test]
fn a_create_naming_a_version_and_a_misnamed_replacement_are_refused() {
    let s = Server::start();
    let body = json!({"metadata": {"name": "rv", "resourceVersion": "5"}});
    let (code, text) = s.admin_send("POST", CONFIGMAPS, &body);
    assert_eq!(code, 500, "{text}");
    assert_eq!(
        parsed(&text),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "resourceVersion should not be set on objects to be created", "code": 500})
    );
    let (code, _) = s.admin_curl(&[], &format!("{CONFIGMAPS}/rv"));
    assert_eq!(code, 404, "nothing was created");
    // A dry run is not stored, and not refused.
    let (code, text) = s.admin_send("POST", &format!("{CONFIGMAPS}?dryRun=All"), &body);
    assert_eq!(code, 201, "{text}");

    let body = json!({"metadata": {"name": "a"}});
    let (code, text) = s.admin_send("PUT", &format!("{CONFIGMAPS}/b"), &body);
    assert_eq!(code, 400, "{text}");
    assert_eq!(
        parsed(&text)["message"],
        "the name of the object (a) does not match the name on the URL (b)"
    );
}

/// Reads asked for metadata alone (`Accept: …;as=PartialObjectMetadata[List]`, client-go's
/// metadata client, a garbage collector's informers) answer `PartialObjectMetadata`, in a
/// get, a list and a watch. Seen before: the whole objects came back, which a metadata
/// watch cannot decode.
#[test]
fn metadata_alone_is_answered_when_asked() {
    let s = Server::start();
    let body =
        json!({"metadata": {"name": "m", "labels": {"app": "x"}}, "data": {"secretish": "v"}});
    assert_eq!(s.admin_send("POST", CONFIGMAPS, &body).0, 201);
    let metadata_of = |list: bool| {
        let kind = if list {
            "PartialObjectMetadataList"
        } else {
            "PartialObjectMetadata"
        };
        format!(
            "Accept: application/vnd.kubernetes.protobuf;as={kind};g=meta.k8s.io;v=v1,application/json;as={kind};g=meta.k8s.io;v=v1,application/json"
        )
    };
    let (code, text) = s.admin_curl(&["-H", &metadata_of(false)], &format!("{CONFIGMAPS}/m"));
    assert_eq!(code, 200, "{text}");
    let one = parsed(&text);
    assert_eq!(
        (one["kind"].as_str(), one["apiVersion"].as_str()),
        (Some("PartialObjectMetadata"), Some("meta.k8s.io/v1")),
        "{text}"
    );
    assert_eq!(one["metadata"]["labels"]["app"], "x");
    assert!(one.get("data").is_none(), "{text}");
    let (_, text) = s.admin_curl(&["-H", &metadata_of(true)], CONFIGMAPS);
    let list = parsed(&text);
    assert_eq!(list["kind"], "PartialObjectMetadataList", "{text}");
    let items = list["items"].as_array().expect("items");
    assert!(
        items
            .iter()
            .all(|i| i["kind"] == "PartialObjectMetadata" && i.get("data").is_none()),
        "{text}"
    );
    assert!(items.iter().any(|i| i["metadata"]["name"] == "m"), "{text}");
    let watch = format!("{CONFIGMAPS}?watch=1&timeoutSeconds=1&fieldSelector=metadata.name%3Dm");
    let (_, text) = s.admin_curl(&["-H", &metadata_of(false)], &watch);
    let events: Vec<Value> = text.lines().map(parsed).collect();
    assert!(!events.is_empty(), "{text}");
    for e in &events {
        assert_eq!(e["object"]["kind"], "PartialObjectMetadata", "{e}");
        assert!(e["object"].get("data").is_none(), "{e}");
    }
}

/// A Lease is replaced only naming the version it replaces (its strategy allows no
/// unconditional update), and a ConfigMap key may not name a directory. Seen before: both
/// were accepted.
#[test]
fn a_lease_names_its_version_and_a_key_no_directory() {
    let s = Server::start();
    let leases = "/apis/coordination.k8s.io/v1/namespaces/default/leases";
    let lease = json!({"metadata": {"name": "l"}, "spec": {"holderIdentity": "a"}});
    assert_eq!(s.admin_send("POST", leases, &lease).0, 201);
    let (code, text) = s.admin_send("PUT", &format!("{leases}/l"), &lease);
    assert_eq!(code, 422, "{text}");
    assert_eq!(
        parsed(&text)["message"],
        r#"leases.coordination.k8s.io "l" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"#
    );
    let cm = json!({"metadata": {"name": "dots"}, "data": {"..": "x"}});
    let (code, text) = s.admin_send("POST", CONFIGMAPS, &cm);
    assert_eq!(code, 422, "{text}");
    assert!(
        text.contains(r#"data[..]: Invalid value: \"..\": must not be '..'"#),
        "{text}"
    );
}
