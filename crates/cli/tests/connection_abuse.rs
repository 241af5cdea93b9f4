//! Connection abuse against the real server, with the real `openssl` and `curl`: a client
//! that opens an HTTP/2 connection and never speaks is cut off; past the in-flight limit
//! requests get 429 before their bodies are read, and the administrator still gets in.
//! Section C of the adversarial review (transport): stalled handshakes and headers,
//! HTTP/1.1 smuggling and oversized requests, HTTP/2 floods written frame by frame through
//! `openssl s_client`, and client certificates that must not authenticate.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{Server, csr_pem, eventually, openssl, wait_bounded, wait_exit};

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
    let mut held = vec![upload(), upload()];
    let post = |auth: &[&str]| {
        let mut args = auth.to_vec();
        args.extend(["-i", "-H", json, "--data-binary", "{}"]);
        s.curl(&args, CSRS)
    };
    let mut refused = String::new();
    let mut tries = 0;
    assert!(
        eventually(Duration::from_secs(20), || {
            // The server's own controllers write too: an upload that met the limit while
            // one of theirs was in flight was refused (and its curl waits on its stdin), so
            // the uploads are sent again now and then until both are held.
            tries += 1;
            if tries % 5 == 0 {
                held = vec![upload(), upload()];
            }
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

#[test]
fn stalled_tls_handshakes_are_cut_and_block_nobody() {
    let s = Server::start();
    let connect = || {
        let c = TcpStream::connect(s.addr()).expect("connect");
        c.set_nonblocking(true).expect("nonblocking");
        c
    };
    let silent = connect();
    let mut partial = connect();
    partial.write_all(&CLIENT_HELLO_START).expect("write");
    let many: Vec<TcpStream> = (0..300).map(|_| connect()).collect();
    // A byte a second, for as long as the server reads them: whether it hung up first.
    let mut trickled = connect();
    let trickle = std::thread::spawn(move || {
        for b in CLIENT_HELLO_START.iter().cycle().take(40) {
            if trickled.write_all(&[*b]).is_err() || closed(&trickled) {
                return true;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        false
    });
    assert_eq!(
        s.curl(&[], "/healthz"),
        (200, "ok".to_owned()),
        "others are served meanwhile"
    );
    let cases = [
        (
            "C330 a TCP connection that never sends a ClientHello",
            &silent,
        ),
        ("C331 part of a ClientHello, then silence", &partial),
    ];
    assert!(
        eventually(Duration::from_secs(25), || cases
            .iter()
            .all(|(_, c)| closed(c))
            && many.iter().all(closed)),
        "the stalled handshakes were cut: {:?}, C332 {} of 300 connections that never handshake",
        cases.map(|(case, c)| (case, closed(c))),
        many.iter().filter(|c| closed(c)).count()
    );
    assert!(
        trickle.join().expect("the trickle"),
        "C333 a ClientHello trickled a byte a second is cut before its 40th byte"
    );
    assert_eq!(s.curl(&[], "/healthz"), (200, "ok".to_owned()));
}

/// Whether the server has closed `c` (an alert before the close is read past).
fn closed(c: &TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match (&*c).read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn http1_requests_that_smuggle_or_overflow_are_refused_and_answered_once() {
    let s = Server::start();
    let host = "Host: 127.0.0.1\r\n";
    let post =
        "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nContent-Type: application/json\r\n";
    let headers: String = (0..2000)
        .map(|i| format!("X-H{i}: {}\r\n", "a".repeat(100)))
        .collect();
    let params: Vec<String> = (0..8000).map(|i| format!("p{i}=v")).collect();
    #[rustfmt::skip]
    let rows: Vec<(&str, String, &str)> = vec![
        ("C210 Content-Length: 99999999999999999999", format!("{post}{host}Content-Length: 99999999999999999999\r\n\r\n{{}}"), "HTTP/1.1 400"),
        // Were the body read by its length, the GET inside it would be a second request.
        ("C211 Content-Length and Transfer-Encoding", format!("{post}{host}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\n{host}Connection: close\r\n\r\n"), "HTTP/1.1 400"),
        ("extra: two Content-Lengths", format!("{post}{host}Content-Length: 2\r\nContent-Length: 5\r\n\r\n{{}}"), "HTTP/1.1 400"),
        ("extra: Transfer-Encoding: xchunked", format!("{post}{host}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"), "HTTP/1.1 400"),
        ("C212 2000 request headers (220 KB)", format!("GET /healthz HTTP/1.1\r\n{host}{headers}\r\n"), "HTTP/1.1 431"),
        ("C351 a path of 100 KB", format!("GET /api/v1/namespaces/default/configmaps/{} HTTP/1.1\r\n{host}\r\n", "a".repeat(100_000)), "HTTP/1.1 414"),
        ("C352 8000 query parameters", format!("GET /api/v1/namespaces/default/configmaps?{} HTTP/1.1\r\n{host}Connection: close\r\n\r\n", params.join("&")), "HTTP/1.1 200"),
    ];
    let mut failures = Vec::new();
    for (case, request, want) in rows {
        let got = exchange(&s, request.into_bytes());
        let answers = got.matches("HTTP/1.1 ").count();
        if !got.starts_with(want) || answers != 1 {
            failures.push(format!(
                "{case}: want one {want}, got {answers}: {}",
                short(&got)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Over HTTP/2 the same headers are past the header list size: refused, or the
    // connection closed.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("headers");
    std::fs::write(&file, headers).expect("write headers");
    let at_file = format!("@{}", file.display());
    let over_h2 = [
        (
            "C212 over HTTP/2",
            s.curl(&["--http2", "-H", &at_file], "/healthz").0,
        ),
        (
            "C351 over HTTP/2",
            s.curl(
                &["--http2"],
                &format!(
                    "/api/v1/namespaces/default/configmaps/{}",
                    "a".repeat(100_000)
                ),
            )
            .0,
        ),
    ];
    for (case, code) in over_h2 {
        assert!([0, 414, 431].contains(&code), "{case}: got {code}");
    }
    assert_eq!(s.admin_curl(&[], "/healthz"), (200, "ok".to_owned()));
}

/// Sends `request` as the admin on a TLS connection of its own, without ALPN (so
/// HTTP/1.1); everything the server sent until it closed (or 20 s passed).
fn exchange(s: &Server, request: Vec<u8>) -> String {
    let (cert, key) = s.admin_cert_files();
    let mut child = Command::new("openssl")
        .args(["s_client", "-quiet", "-connect", s.addr(), "-cert"])
        .arg(cert)
        .arg("-key")
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut input = child.stdin.take().expect("stdin");
    // Written on a thread: the server may answer and close before it has read it all.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&request);
    });
    let out = wait_bounded(child, Duration::from_secs(20));
    let _ = writer.join();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn connections_that_stall_their_headers_or_idle_are_closed_and_block_nobody() {
    let s = Server::start();
    let no_request = Tls::open(&s, &[]);
    let mut kept_alive = Tls::open(&s, &[]);
    assert!(kept_alive.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"));
    let mut slow = Tls::open(&s, &[]);
    let mut input = slow.input.take().expect("stdin");
    let slowloris = std::thread::spawn(move || {
        // 43 bytes: 86 s, were it not cut.
        for b in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" {
            if input.write_all(&[*b]).and_then(|()| input.flush()).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    let mut headers_unfinished = Tls::open(&s, &["-alpn", "h2"]);
    assert!(headers_unfinished.send(&[PREFACE, &frame(SETTINGS, 0, 0, &[])].concat()));
    assert!(headers_unfinished.send(&frame(HEADERS, END_STREAM, 1, &get("/healthz"))));
    assert_eq!(
        s.admin_curl(&[], "/healthz"),
        (200, "ok".to_owned()),
        "others are served meanwhile"
    );
    let mut cases = [
        ("C334 HTTP/1.1: TLS done, no request", no_request),
        (
            "C347 HTTP/1.1: idle keep-alive after one request",
            kept_alive,
        ),
        (
            "C348 HTTP/1.1: the request line trickled a byte every 2 s",
            slow,
        ),
        (
            "C356 HTTP/2: HEADERS without END_HEADERS, then silence",
            headers_unfinished,
        ),
    ];
    // HTTP/1.1 headers have 30 s; the HTTP/2 connection is closed when it does not answer
    // the server's keep-alive PING (sent after 30 s).
    let all_closed = eventually(Duration::from_secs(75), || {
        cases.iter_mut().all(|(_, c)| c.closed())
    });
    let open: Vec<&str> = cases
        .iter_mut()
        .filter_map(|(case, c)| (!c.closed()).then_some(*case))
        .collect();
    assert!(
        all_closed,
        "closed: every stalled connection; still open: {open:?}"
    );
    let _ = slowloris.join();
    let [_, (_, kept_alive), (_, slow), _] = &cases;
    assert!(
        String::from_utf8_lossy(&kept_alive.got()).starts_with("HTTP/1.1 200 OK"),
        "C347 the request before the idle time was answered"
    );
    assert!(
        !String::from_utf8_lossy(&slow.got()).contains("200 OK"),
        "C348 the trickled request was never served"
    );
    assert_eq!(s.admin_curl(&[], "/healthz"), (200, "ok".to_owned()));
}

#[test]
fn http2_floods_are_refused_or_cut_off_and_others_are_served() {
    let s = Server::start();
    #[rustfmt::skip]
    let rows: [Flood; 5] = [
        ("C326 1000 concurrent streams (the server allows 200)", 1000, |i| frame(HEADERS, END_STREAM | END_HEADERS, stream(i), &get("/healthz")), Outcome::EveryStreamAnswered(1000)),
        ("C327 rapid reset: 20000 HEADERS and RST_STREAM pairs", 20_000, |i| [frame(HEADERS, END_STREAM | END_HEADERS, stream(i), &get("/healthz")), frame(RST_STREAM, 0, stream(i), &CANCEL)].concat(), Outcome::CutOff),
        ("C328 CONTINUATION flood of up to 300 MB of header fragments", 19_200, |i| match i { 0 => frame(HEADERS, END_STREAM, 1, &get("/healthz")), _ => frame(CONTINUATION, 0, 1, &header_fragment()) }, Outcome::CutOff),
        ("C329 PING flood: 100000 PINGs", 100_000, |_| frame(PING, 0, 0, b"12345678"), Outcome::Bounded),
        ("extra: SETTINGS flood: 100000 SETTINGS frames", 100_000, |_| frame(SETTINGS, 0, 0, &[0, 3, 0, 0, 0, 100]), Outcome::Bounded),
    ];
    for (case, count, nth, outcome) in rows {
        let mut h2 = Tls::open(&s, &["-alpn", "h2"]);
        assert!(
            h2.send(&[PREFACE, &frame(SETTINGS, 0, 0, &[])].concat()),
            "{case}: preface"
        );
        let mut input = h2.input.take().expect("stdin");
        let flood = std::thread::spawn(move || {
            (0..count)
                .take_while(|i| input.write_all(&nth(*i)).is_ok())
                .count()
        });
        assert_eq!(
            s.admin_curl(&[], "/healthz"),
            (200, "ok".to_owned()),
            "{case}: others are served during the flood"
        );
        match outcome {
            Outcome::EveryStreamAnswered(n) => {
                let answered = || answered_streams(&frames(&h2.got()));
                assert!(
                    eventually(Duration::from_secs(30), || answered().0 == n),
                    "{case}: each stream is served or refused: {:?}",
                    answered()
                );
                let (_, resets) = answered();
                assert!(
                    resets.keys().all(|code| *code == REFUSED_STREAM),
                    "{case}: the streams past the limit are refused, to be retried: {resets:?}"
                );
            }
            Outcome::CutOff => assert!(
                wait_exit(&mut h2.client, Duration::from_secs(30)),
                "{case}: the server closes the connection"
            ),
            Outcome::Bounded => {
                let sent = eventually(Duration::from_secs(60), || flood.is_finished());
                assert!(
                    sent,
                    "{case}: the flood was read (or the connection closed)"
                );
            }
        }
        drop(h2);
        let _ = flood.join();
        assert_eq!(
            s.admin_curl(&[], "/healthz"),
            (200, "ok".to_owned()),
            "{case}: the server still serves"
        );
    }
}

#[test]
fn http2_clients_that_take_no_response_are_closed_though_they_answer_pings() {
    let s = Server::start();
    let mut h2 = Tls::open(&s, &["-alpn", "h2"]);
    // SETTINGS_INITIAL_WINDOW_SIZE = 0: the server may send no DATA on any stream.
    let no_window = frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0, 0]);
    assert!(h2.send(&[PREFACE, &no_window].concat()));
    let request = get("/api/v1/namespaces/default/configmaps");
    assert!(h2.send(&frame(HEADERS, END_STREAM | END_HEADERS, 1, &request)));
    // A live client: it acknowledges the server's SETTINGS and answers every PING.
    let (mut acked, mut pings) = (false, 0);
    let closed = eventually(Duration::from_secs(120), || {
        let got = frames(&h2.got());
        if !acked && got.iter().any(|f| f.kind == SETTINGS && f.flags & ACK == 0) {
            acked = h2.send(&frame(SETTINGS, ACK, 0, &[]));
        }
        let asked: Vec<&Frame> = got
            .iter()
            .filter(|f| f.kind == PING && f.flags & ACK == 0)
            .collect();
        for ping in &asked[pings..] {
            h2.send(&frame(PING, ACK, 0, &ping.payload));
        }
        pings = asked.len();
        h2.closed()
    });
    let got = frames(&h2.got());
    assert!(
        got.iter().any(|f| f.kind == HEADERS && f.stream == 1),
        "the answer's headers were sent"
    );
    assert!(
        !got.iter().any(|f| f.kind == DATA && !f.payload.is_empty()),
        "no DATA past a shut window"
    );
    assert!(
        pings >= 1,
        "the client answered the server's keep-alive PINGs"
    );
    assert!(
        closed,
        "a client that takes none of its answer for 60 s is disconnected"
    );
    assert_eq!(s.admin_curl(&[], "/healthz"), (200, "ok".to_owned()));
}

/// An HTTP/2 flood: the review's case, how many chunks, the `i`-th chunk's frames, and
/// what the server must do.
type Flood = (&'static str, usize, fn(usize) -> Vec<u8>, Outcome);

/// What the server must do with an HTTP/2 flood.
enum Outcome {
    /// Answer each of these streams: a response, or a reset.
    EveryStreamAnswered(usize),
    /// Close the connection.
    CutOff,
    /// Keep reading it without falling over.
    Bounded,
}

/// How many streams got a response or a reset, and how many resets of each error code.
fn answered_streams(frames: &[Frame]) -> (usize, BTreeMap<u32, usize>) {
    let mut streams = BTreeSet::new();
    let mut resets = BTreeMap::new();
    for f in frames {
        match f.kind {
            HEADERS => {
                streams.insert(f.stream);
            }
            RST_STREAM => {
                streams.insert(f.stream);
                let code: [u8; 4] = f.payload[..4].try_into().expect("RST_STREAM has a code");
                *resets.entry(u32::from_be_bytes(code)).or_default() += 1;
            }
            _ => {}
        }
    }
    (streams.len(), resets)
}

#[test]
fn client_certificates_that_do_not_chain_or_are_out_of_date_are_401_never_anonymous() {
    let s = Server::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(d.join("ca.cnf"), CA_CONFIG).expect("write ca.cnf");
    std::fs::write(d.join("index.txt"), "").expect("write index");
    std::fs::write(d.join("serial"), "1000\n").expect("write serial");
    let cluster = (s.ca(), s.dir.join("pki/ca.key"));
    let cluster = (cluster.0.as_path(), cluster.1.as_path());
    let self_signed = |name: &str, subject: &str| {
        let (key, crt) = (format!("{name}.key"), format!("{name}.crt"));
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &crt,
                "-subj",
                subject,
                "-days",
                "1",
            ],
        );
        (d.join(crt), d.join(key))
    };
    let cluster_dn = Command::new("openssl")
        .args(["x509", "-noout", "-subject", "-nameopt", "compat", "-in"])
        .arg(s.ca())
        .output()
        .expect("openssl x509");
    let cluster_dn = String::from_utf8_lossy(&cluster_dn.stdout)
        .trim()
        .trim_start_matches("subject=")
        .to_owned();
    let other_ca = self_signed("other-ca", "/CN=evil");
    let same_dn_ca = self_signed("same-dn-ca", &cluster_dn);
    let issue =
        |name: &str, subject: &str, by: (&Path, &Path), ext: &str, dates: Option<(&str, &str)>| {
            csr_pem(d, name, subject);
            sign(d, name, by, ext, dates)
        };
    let flags = |crt: &Path, key: &Path| {
        vec![
            "--cert".to_owned(),
            crt.display().to_string(),
            "--key".to_owned(),
            key.display().to_string(),
        ]
    };
    let key = |name: &str| d.join(format!("{name}.key"));
    let masters = "/O=system:masters/CN=evil";
    let from_other = issue(
        "from-other",
        masters,
        (&other_ca.0, &other_ca.1),
        "client",
        None,
    );
    let from_same_dn = issue(
        "from-same-dn",
        masters,
        (&same_dn_ca.0, &same_dn_ca.1),
        "client",
        None,
    );
    let expired = issue(
        "expired",
        masters,
        cluster,
        "client",
        Some(("20200101000000Z", "20210101000000Z")),
    );
    let not_yet = issue(
        "not-yet",
        masters,
        cluster,
        "client",
        Some(("20900101000000Z", "20910101000000Z")),
    );
    let server_only = issue("server-only", masters, cluster, "server", None);
    let tester = issue("tester", "/O=grp-a/CN=tester", cluster, "client", None);
    let node = issue(
        "node",
        "/O=system:nodes/CN=system:node:n1",
        cluster,
        "client",
        None,
    );
    let by_node = issue("by-node", masters, (&node, &key("node")), "client", None);
    let chain = d.join("chain.crt");
    let pems = [
        std::fs::read(&by_node).expect("leaf"),
        std::fs::read(&node).expect("node"),
    ]
    .concat();
    std::fs::write(&chain, pems).expect("write chain");
    let token = s.token();
    let token_user = format!(
        "system:bootstrap:{}",
        token.split('.').next().expect("a token id")
    );
    let bearer = |t: &str| vec!["-H".to_owned(), format!("Authorization: Bearer {t}")];
    let (admin_crt, admin_key) = s.admin_cert_files();
    let cn = cluster_dn
        .rsplit("CN=")
        .next()
        .expect("the CA has a CN")
        .to_owned();
    #[rustfmt::skip]
    let rows: Vec<(&str, Vec<String>, Option<&str>)> = vec![
        ("C335 a certificate from another CA (O=system:masters)", flags(&from_other, &key("from-other")), None),
        ("C336 issuer DN of the cluster CA, signed by another key", flags(&from_same_dn, &key("from-same-dn")), None),
        ("C337 expired, from the cluster CA (O=system:masters)", flags(&expired, &key("expired")), None),
        ("C338 not yet valid, from the cluster CA", flags(&not_yet, &key("not-yet")), None),
        ("C339 serverAuth only, from the cluster CA (O=system:masters)", flags(&server_only, &key("server-only")), None),
        ("C340 the API server's own serving certificate", flags(&s.dir.join("pki/apiserver.crt"), &s.dir.join("pki/apiserver.key")), None),
        ("C341 a client certificate of the cluster CA (control)", flags(&tester, &key("tester")), Some("tester")),
        ("C342 signed by a node's key, with the node's certificate as its chain", flags(&chain, &key("by-node")), None),
        ("C343 the cluster CA's own certificate (needs its key)", flags(cluster.0, cluster.1), Some(&cn)),
        ("C344 a certificate from another CA and a valid bootstrap token", [flags(&from_other, &key("from-other")), bearer(&token)].concat(), Some(&token_user)),
        ("C345 the admin's certificate and an unknown bootstrap token", [flags(&admin_crt, &admin_key), bearer("abcdef.0123456789abcdef")].concat(), None),
    ];
    let mut failures = Vec::new();
    for (case, args, user) in rows {
        let mut review = args.clone();
        review.extend(
            [
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                SELF_SUBJECT_REVIEW,
            ]
            .map(String::from),
        );
        let review: Vec<&str> = review.iter().map(String::as_str).collect();
        let (code, text) = s.curl(&review, "/apis/authentication.k8s.io/v1/selfsubjectreviews");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let got = v
            .pointer("/status/userInfo/username")
            .and_then(|u| u.as_str());
        match user {
            Some(user) if code != 201 || got != Some(user) => {
                failures.push(format!(
                    "{case}: want 201 as {user}, got {code} {}",
                    short(&text)
                ));
            }
            Some(_) => {}
            None => {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let (info, _) = s.curl(
                    &args,
                    "/api/v1/namespaces/kube-public/configmaps/cluster-info",
                );
                if code != 401 || info != 401 {
                    failures.push(format!("{case}: want 401 for the review and for cluster-info (never anonymous), got {code} and {info}: {}", short(&text)));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Signs `{name}.csr` in `dir` with `by` (certificate, key) through `openssl ca`, with the
/// extension section `ext` of [`CA_CONFIG`], for a day or for `dates` (openssl's
/// `YYYYMMDDHHMMSSZ`); the certificate's path.
fn sign(
    dir: &Path,
    name: &str,
    by: (&Path, &Path),
    ext: &str,
    dates: Option<(&str, &str)>,
) -> PathBuf {
    let (csr, crt) = (format!("{name}.csr"), format!("{name}.crt"));
    let (ca, key) = (by.0.to_str().expect("utf8"), by.1.to_str().expect("utf8"));
    let mut args = vec![
        "ca",
        "-batch",
        "-notext",
        "-preserveDN",
        "-config",
        "ca.cnf",
        "-cert",
        ca,
        "-keyfile",
        key,
        "-in",
        &csr,
        "-out",
        &crt,
        "-extensions",
        ext,
    ];
    match dates {
        Some((from, to)) => args.extend(["-startdate", from, "-enddate", to]),
        None => args.extend(["-days", "1"]),
    }
    openssl(dir, &args);
    dir.join(crt)
}

/// A TLS connection to the server through `openssl s_client`: what is written to it goes
/// to the server as it is, and what the server sends is gathered on a thread.
struct Tls {
    client: Child,
    input: Option<ChildStdin>,
    /// Guarded: everything the server has sent so far.
    got: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Tls {
    fn open(s: &Server, extra: &[&str]) -> Self {
        let mut client = Command::new("openssl")
            .args(["s_client", "-quiet", "-connect", s.addr()])
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("openssl s_client");
        let mut out = client.stdout.take().expect("stdout");
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n @ 1..) = out.read(&mut buf) {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]);
            }
        });
        Self {
            input: client.stdin.take(),
            client,
            got,
            reader: Some(reader),
        }
    }

    /// Sends `bytes`; false once the connection is gone.
    fn send(&mut self, bytes: &[u8]) -> bool {
        self.input
            .as_mut()
            .is_some_and(|i| i.write_all(bytes).and_then(|()| i.flush()).is_ok())
    }

    fn got(&self) -> Vec<u8> {
        self.got
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the server has closed the connection (s_client then exits).
    fn closed(&mut self) -> bool {
        matches!(self.client.try_wait(), Ok(Some(_)))
    }
}

impl Drop for Tls {
    fn drop(&mut self) {
        let _ = self.client.kill();
        let _ = self.client.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

/// An HTTP/2 frame.
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// An HTTP/2 frame's bytes.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).expect("a frame's length fits");
    [
        &len.to_be_bytes()[1..],
        &[kind, flags],
        &stream.to_be_bytes(),
        payload,
    ]
    .concat()
}

/// The whole frames in `bytes`.
fn frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    while let [a, b, c, kind, flags, s0, s1, s2, s3, rest @ ..] = bytes {
        let len = usize::from(*a) << 16 | usize::from(*b) << 8 | usize::from(*c);
        if rest.len() < len {
            break;
        }
        out.push(Frame {
            kind: *kind,
            flags: *flags,
            stream: u32::from_be_bytes([*s0, *s1, *s2, *s3]) & 0x7fff_ffff,
            payload: rest[..len].to_vec(),
        });
        bytes = &rest[len..];
    }
    out
}

/// The `i`-th stream a client opens.
fn stream(i: usize) -> u32 {
    u32::try_from(2 * i + 1).expect("a stream id")
}

/// The HPACK block of `GET path`: the method and scheme from the static table, the path
/// and authority as literals that are not indexed, so every request is the same bytes.
fn get(path: &str) -> Vec<u8> {
    let literal = |name: u8, value: &str| {
        let len = u8::try_from(value.len()).expect("a short value");
        assert!(len < 127, "one length byte");
        [&[name, len][..], value.as_bytes()].concat()
    };
    [vec![0x82, 0x87], literal(4, path), literal(1, "127.0.0.1")].concat()
}

/// About 16 KB of literal header fields, a CONTINUATION frame's worth.
fn header_fragment() -> Vec<u8> {
    let field = [&[0x00, 5][..], b"x-abc", &[16], b"aaaaaaaaaaaaaaaa"].concat();
    field.repeat(680)
}

fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

/// A TLS record header and the start of a ClientHello that says more is coming.
const CLIENT_HELLO_START: [u8; 11] = [
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const ACK: u8 = 0x1;
const DATA: u8 = 0x0;
const CANCEL: [u8; 4] = [0, 0, 0, 0x8];
const REFUSED_STREAM: u32 = 0x7;
const SELF_SUBJECT_REVIEW: &str =
    r#"{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}"#;
/// `openssl ca`'s configuration: any subject, the request's DN kept, and the extension
/// sections `client` and `server`.
const CA_CONFIG: &str = "[ca]
default_ca = own
[own]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
organizationName = optional
commonName = supplied
[client]
extendedKeyUsage = clientAuth
[server]
extendedKeyUsage = serverAuth
";

#[test]
fn head_requests_over_http2_get_headers_and_no_body() {
    let s = Server::start();
    let (cert, key) = s.admin_cert_files();
    // A non-resource HEAD is the verb `head`, which Kubernetes' default policy does not
    // grant anonymous users (only `get`): 403, as kube-apiserver answers.
    for (who, path, want) in [
        (&[][..], "/healthz", "403"),
        (&[][..], "/api/v1/namespaces/kube-system/secrets", "403"),
        (
            &[
                "--cert",
                cert.to_str().expect("utf8"),
                "--key",
                key.to_str().expect("utf8"),
            ][..],
            "/api/v1/namespaces/default/configmaps",
            "200",
        ),
    ] {
        let out = Command::new("curl")
            .args([
                "-sS",
                "--http2",
                "--head",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cacert",
            ])
            .arg(s.ca())
            .args(who)
            .arg(format!("{}{path}", s.url))
            .output()
            .expect("curl");
        assert!(
            out.status.success(),
            "HEAD {path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "HEAD {path}");
    }
}
