//! Watch semantics on the wire: resuming from a resourceVersion, 410 when it is older than
//! the history kept, and name-selected watches that see only their object.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Server, wait_bounded};

fn create_cm(s: &Server, name: &str) -> String {
    let body = format!(r#"{{"metadata":{{"name":"{name}"}},"data":{{"a":"1"}}}}"#);
    let (code, out) = s.admin_curl(
        &[
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
        ],
        "/api/v1/namespaces/default/configmaps",
    );
    assert_eq!(code, 201, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    v["metadata"]["resourceVersion"]
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
    assert_eq!(code, 410, "{body}");
    assert!(
        body.contains(r#""reason":"Expired""#) && body.contains("too old resource version"),
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
