//! Watch semantics on the wire: resuming from a resourceVersion, 410 when it is older than
//! the history kept, name-selected watches that see only their object, label-selected
//! watches that see objects enter and leave their selection, bookmarks on kube-apiserver's
//! schedule, and streaming lists (`sendInitialEvents`) with their end-of-initial-events
//! bookmark.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, read_json_lines, wait_bounded};

fn create_cm(s: &Server, name: &str) -> String {
    let body = format!(r#"{{"metadata":{{"name":"{name}"}},"data":{{"a":"1"}}}}"#);
    let made = s.admin_create("/api/v1/namespaces/default/configmaps", &body);
    made["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_owned()
}

#[test]
fn a_watch_older_than_the_cache_is_410_expired() {
    let s = Server::start_with(&["--default-watch-cache-size", "10"]);
    let first = create_cm(&s, "c0");
    for i in 1..30 {
        create_cm(&s, &format!("c{i}"));
    }
    let (code, body) = s.admin_curl(&[], &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={first}&timeoutSeconds=2"));
    // As kube-apiserver's watch cache answers it (seen before the fix: an HTTP 410): a
    // watch of one ERROR event carrying the 410 Status.
    assert_eq!(code, 200, "{body}");
    let event: serde_json::Value = serde_json::from_str(body.trim()).expect("one event");
    assert_eq!(event["type"], "ERROR", "{body}");
    assert_eq!(event["object"]["code"], 410, "{body}");
    assert_eq!(event["object"]["reason"], "Expired", "{body}");
    let message = event["object"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("too old resource version: {first} (")),
        "{body}"
    );
}

#[test]
fn a_name_selected_watch_sees_only_its_object_from_its_version() {
    let s = Server::start();
    let rv = create_cm(&s, "mine");
    let (cert, key) = s.admin_cert_files();
    let url = format!(
        "{}/api/v1/namespaces/default/configmaps?watch=1&fieldSelector=metadata.name%3Dmine&resourceVersion={rv}&timeoutSeconds=3",
        s.url
    );
    let child = Command::new("curl")
        .args(["-sN", "--max-time", "10", "--cacert"])
        .arg(s.ca())
        .arg("--cert")
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .arg(&url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("curl");
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..5 {
        create_cm(&s, &format!("other{i}"));
    }
    let patch = r#"{"data":{"a":"2"}}"#;
    let (code, out) = s.admin_curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/merge-patch+json",
            "--data-binary",
            patch,
        ],
        "/api/v1/namespaces/default/configmaps/mine",
    );
    assert_eq!(code, 200, "{out}");
    let out = wait_bounded(child, Duration::from_secs(15));
    let text = String::from_utf8_lossy(&out.stdout);
    let events: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    assert_eq!(
        events.len(),
        1,
        "only the update of 'mine' after {rv}: {text}"
    );
    assert_eq!(events[0]["type"], "MODIFIED");
    assert_eq!(events[0]["object"]["metadata"]["name"], "mine");
    assert_eq!(events[0]["object"]["kind"], "ConfigMap");
    assert_eq!(events[0]["object"]["data"]["a"], "2");
}

fn patch_cm(s: &Server, name: &str, patch: &str) {
    let (code, out) = s.admin_curl(
        &[
            "-X",
            "PATCH",
            "-H",
            "Content-Type: application/merge-patch+json",
            "--data-binary",
            patch,
        ],
        &format!("/api/v1/namespaces/default/configmaps/{name}"),
    );
    assert_eq!(code, 200, "{out}");
}

/// A resourceVersion as a number.
fn version_of(v: &serde_json::Value) -> u64 {
    v.as_str()
        .and_then(|v| v.parse().ok())
        .expect("resourceVersion")
}

fn event_types(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[test]
fn a_label_selected_watch_sees_objects_enter_and_leave_its_selection() {
    // Seen before the fix: MODIFIED, MODIFIED, DELETED for labelled in / out / in /
    // deleted — a selective informer kept the object after it stopped matching.
    let s = Server::start();
    let rv = create_cm(&s, "moving");
    let watch = s.admin_watch(
        &format!("/api/v1/namespaces/default/configmaps?watch=1&labelSelector=app%3Dweb&resourceVersion={rv}&timeoutSeconds=20"),
        25,
    );
    patch_cm(&s, "moving", r#"{"metadata":{"labels":{"app":"web"}}}"#);
    patch_cm(&s, "moving", r#"{"metadata":{"labels":{"app":"db"}}}"#);
    patch_cm(
        &s,
        "moving",
        r#"{"metadata":{"labels":{"app":"web"}},"data":{"a":"3"}}"#,
    );
    patch_cm(&s, "moving", r#"{"data":{"a":"4"}}"#);
    let (code, out) = s.admin_curl(
        &["-X", "DELETE"],
        "/api/v1/namespaces/default/configmaps/moving",
    );
    assert_eq!(code, 200, "{out}");
    let events = read_json_lines(watch, Duration::from_secs(20), |e| e.len() >= 5);
    assert_eq!(
        event_types(&events),
        ["ADDED", "DELETED", "ADDED", "MODIFIED", "DELETED"],
        "{events:#?}"
    );
    // Leaving the selection sends the last state that matched, at the change's version.
    let left = &events[1]["object"];
    assert_eq!(left["metadata"]["labels"]["app"], "web", "{left}");
    let version = |e: &serde_json::Value| version_of(&e["object"]["metadata"]["resourceVersion"]);
    assert!(version(&events[1]) > version(&events[0]), "{events:#?}");
    assert_eq!(events[2]["object"]["data"]["a"], "3");
    assert_eq!(events[4]["object"]["data"]["a"], "4");
}

#[test]
fn a_selective_watch_gets_a_bookmark_before_its_timeout_at_the_latest_version() {
    // Seen before the fix: a bookmark only after 30 s without any event on the prefix,
    // events the selector filtered out restarting the timer — a selective watch got none.
    let s = Server::start();
    let rv = create_cm(&s, "b0");
    let watch = s.admin_watch(
        &format!("/api/v1/namespaces/default/configmaps?watch=1&labelSelector=app%3Dnone&allowWatchBookmarks=true&resourceVersion={rv}&timeoutSeconds=6"),
        20,
    );
    let mut last = rv;
    for i in 1..4 {
        last = create_cm(&s, &format!("b{i}"));
    }
    // kube-apiserver sends the bookmark 2 s before the watch's timeout.
    let events = read_json_lines(watch, Duration::from_secs(15), |_| false);
    assert_eq!(event_types(&events), ["BOOKMARK"], "{events:#?}");
    let bookmark = &events[0]["object"];
    assert_eq!(bookmark["kind"], "ConfigMap");
    let at = version_of(&bookmark["metadata"]["resourceVersion"]);
    assert!(
        at >= last.parse::<u64>().expect("rv"),
        "the bookmark carries the changes the selector filtered out: {at} < {last}"
    );
}

#[test]
fn a_streaming_list_ends_its_initial_events_with_an_annotated_bookmark() {
    // Seen before the fix: the initial ADDED events and then nothing — client-go's and
    // kube-rs's WatchList informers wait for this bookmark before they call the list synced.
    let s = Server::start();
    let mut last = String::new();
    for i in 0..3 {
        last = create_cm(&s, &format!("s{i}"));
    }
    let watch = s.admin_watch(
        "/api/v1/namespaces/default/configmaps?watch=1&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=20",
        25,
    );
    let events = read_json_lines(watch, Duration::from_secs(20), |e| {
        e.last().is_some_and(|l| l["type"] == "BOOKMARK")
    });
    let types = event_types(&events);
    assert!(types.len() >= 4, "{events:#?}");
    assert!(
        types[..types.len() - 1].iter().all(|t| t == "ADDED"),
        "{types:?}"
    );
    let names: Vec<&str> = events
        .iter()
        .filter_map(|e| e["object"]["metadata"]["name"].as_str())
        .collect();
    for want in ["s0", "s1", "s2"] {
        assert!(names.contains(&want), "{names:?}");
    }
    let end = &events[events.len() - 1]["object"]["metadata"];
    assert_eq!(
        end["annotations"]["k8s.io/initial-events-end"], "true",
        "{end}"
    );
    // The bookmark carries the version the initial state was read at: no older than the
    // last object in it, no newer than a list read after.
    let (code, list) = s.admin_curl(&[], "/api/v1/namespaces/default/configmaps");
    assert_eq!(code, 200);
    let list: serde_json::Value = serde_json::from_str(&list).expect("json");
    let at = version_of(&end["resourceVersion"]);
    assert!(at >= last.parse::<u64>().expect("rv"), "{end}");
    assert!(
        at <= version_of(&list["metadata"]["resourceVersion"]),
        "{end}"
    );
}

#[test]
fn streaming_list_options_are_checked_as_kube_apiserver_checks_them() {
    let s = Server::start();
    for (query, field, message) in [
        (
            "watch=1&sendInitialEvents=true&allowWatchBookmarks=true",
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ),
        (
            "watch=1&resourceVersionMatch=NotOlderThan&resourceVersion=1",
            "resourceVersionMatch",
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ),
        (
            "resourceVersionMatch=Exact",
            "resourceVersionMatch",
            "resourceVersionMatch is forbidden unless resourceVersion is provided",
        ),
        (
            "sendInitialEvents=true",
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ),
    ] {
        let (code, body) = s.admin_curl(
            &[],
            &format!("/api/v1/namespaces/default/configmaps?{query}&timeoutSeconds=1"),
        );
        assert_eq!(code, 422, "{query}: {body}");
        let status: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(status["reason"], "Invalid", "{body}");
        assert_eq!(status["details"]["kind"], "ListOptions", "{body}");
        assert_eq!(status["details"]["group"], "meta.k8s.io", "{body}");
        let causes = status["details"]["causes"].as_array().expect("causes");
        assert!(
            causes.iter().any(|c| c["field"] == field
                && c["message"].as_str().is_some_and(|m| m.contains(message))),
            "{query}: {body}"
        );
    }
}

#[test]
fn list_and_watch_versions_are_read_as_kube_apiserver_reads_them() {
    // Each seen before the fix: a list at a resourceVersion with a limit was read at the
    // latest version; a list at 0 was paged; a continue token was taken with a version; the
    // older `/watch/<resource>/<name>` path watched every object; a watch without initial
    // events replayed the whole history.
    let s = Server::start();
    let cms = "/api/v1/namespaces/default/configmaps";
    let raw = |path: &str| s.kubectl("kubectl", &["get", "--raw", path]);
    let json = |path: &str| -> serde_json::Value {
        let out = raw(path);
        assert!(out.status.success(), "{path}: {}", common::stderr(&out));
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let names = |list: &serde_json::Value| -> Vec<String> {
        let items = list["items"].as_array().expect("items");
        items
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = create_cm(&s, "a");
    create_cm(&s, "b");

    let at_first = json(&format!("{cms}?resourceVersion={first}&limit=500"));
    assert_eq!(at_first["metadata"]["resourceVersion"], first.as_str());
    assert_eq!(names(&at_first), ["a"], "exactly as it was at {first}");

    let at_zero = json(&format!("{cms}?resourceVersion=0&limit=1"));
    assert_eq!(names(&at_zero), ["a", "b"], "a list at 0 is whole");
    assert!(at_zero["metadata"]["continue"].is_null(), "{at_zero}");

    let page = json(&format!("{cms}?limit=1"));
    let token = page["metadata"]["continue"]
        .as_str()
        .expect("a continue token");
    let out = raw(&format!(
        "{cms}?limit=1&continue={token}&resourceVersion={first}"
    ));
    assert!(!out.status.success());
    let said = common::stderr(&out);
    assert!(
        said.contains("specifying resource version is not allowed when using continue"),
        "{said}"
    );

    let watch = |path: &str| -> Vec<serde_json::Value> {
        let out = raw(path);
        assert!(out.status.success(), "{path}: {}", common::stderr(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("an event"))
            .collect()
    };
    let named = watch("/api/v1/watch/namespaces/default/configmaps/a?timeoutSeconds=1");
    let seen: Vec<&str> = named
        .iter()
        .map(|e| e["object"]["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(seen, ["a"], "{named:?}");
    let out = raw("/api/v1/watch/namespaces/default/configmaps/a?fieldSelector=metadata.name%3Db");
    assert!(
        common::stderr(&out).contains("fieldSelector metadata.name doesn't match requested name")
    );

    let from_now = watch(&format!(
        "{cms}?watch=1&sendInitialEvents=false&resourceVersionMatch=NotOlderThan&timeoutSeconds=1"
    ));
    assert!(
        from_now.is_empty(),
        "nothing from before it began: {from_now:?}"
    );
}

#[test]
fn a_table_watch_sends_the_column_definitions_once() {
    // Seen before the fix: every event's Table repeated them; kube-apiserver's watch encoder
    // sends them with the first and `null` after (`NoHeaders`).
    let s = Server::start();
    create_cm(&s, "t1");
    create_cm(&s, "t2");
    let accept = "Accept: application/json;as=Table;v=v1;g=meta.k8s.io";
    let (code, body) = s.admin_curl(
        &["-H", accept],
        "/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1",
    );
    assert_eq!(code, 200, "{body}");
    let events: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("an event"))
        .collect();
    assert_eq!(events.len(), 2, "{body}");
    let columns = |e: &serde_json::Value| e["object"]["columnDefinitions"].clone();
    assert!(
        columns(&events[0])
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{body}"
    );
    assert!(columns(&events[1]).is_null(), "{body}");
    assert_eq!(events[1]["object"]["rows"][0]["cells"][0], "t2", "{body}");
}
