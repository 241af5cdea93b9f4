//! Connection abuse against the real server, with the real `openssl` and `curl`: a client
//! that opens an HTTP/2 connection and never speaks is cut off; past the in-flight limit
//! requests get 429 before their bodies are read, and the administrator still gets in.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Server, eventually, wait_exit};

const CSRS: &str = "/apis/certificates.k8s.io/v1/certificatesigningrequests";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn http2_connections_that_never_send_the_preface_are_closed() {
    let s = Server::start();
    // TLS with ALPN h2, then silence (stdin stays open): Go's servers wait 10 s for the
    // client's preface; so does kubeboot.
    let mut silent: Vec<Killed> = (0..3)
        .map(|_| {
            Killed(
                Command::new("openssl")
                    .args(["s_client", "-connect", s.addr(), "-alpn", "h2", "-quiet"])
                    .stdin(Stdio::piped())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("openssl s_client"),
            )
        })
        .collect();
    let (code, body) = s.curl(&["--http2"], "/healthz");
    assert_eq!(
        (code, body.as_str()),
        (200, "ok"),
        "others are served meanwhile"
    );
    for c in &mut silent {
        assert!(
            wait_exit(&mut c.0, Duration::from_secs(40)),
            "the server closed the silent HTTP/2 connection"
        );
    }
}

#[test]
fn past_the_mutating_limit_requests_get_429_and_the_admin_still_gets_in() {
    let s = Server::start_with(&["--max-mutating-requests-inflight", "2"]);
    let bearer = format!("Authorization: Bearer {}", s.token());
    let json = "Content-Type: application/json";
    // Two uploads that send part of their body and hold the rest back.
    let upload = || {
        let mut c = Command::new("curl")
            .args(["-sS", "--max-time", "60", "--cacert"])
            .arg(s.ca())
            .args(["-H", &bearer, "-H", json, "-X", "POST", "-T", "-"])
            .arg(format!("{}{CSRS}", s.url))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("curl");
        let stdin = c.stdin.as_mut().expect("stdin");
        stdin.write_all(br#"{"apiVersion":"#).expect("write");
        stdin.flush().expect("flush");
        Killed(c)
    };
    let held = [upload(), upload()];
    let post = |auth: &[&str]| {
        let mut args = auth.to_vec();
        args.extend(["-i", "-H", json, "--data-binary", "{}"]);
        s.curl(&args, CSRS)
    };
    let mut refused = String::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            let (code, text) = post(&["-H", &bearer]);
            refused = text;
            code == 429
        }),
        "a third write is refused while two are in flight: {refused}"
    );
    let lower = refused.to_ascii_lowercase();
    assert!(lower.contains("retry-after: 1"), "{refused}");
    assert!(
        refused.contains(r#""reason":"TooManyRequests""#),
        "{refused}"
    );
    let admin = s.admin_curl(
        &["-H", json, "--data-binary", r#"{"metadata":{"name":"in"}}"#],
        "/api/v1/namespaces/default/configmaps",
    );
    assert_eq!(
        admin.0, 201,
        "system:masters is served past the limit: {}",
        admin.1
    );
    drop(held);
    assert!(
        eventually(Duration::from_secs(20), || {
            let code = post(&["-H", &bearer]).0;
            (400..429).contains(&code)
        }),
        "once the uploads end, writes are served again (this one is refused as invalid)"
    );
}
