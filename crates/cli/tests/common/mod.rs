//! Test harness: the real `kubeboot` binary on a free loopback port, driven by the real
//! `kubectl`, `curl` and `openssl`. Every wait is bounded.
#![allow(dead_code, unreachable_pub)]
#![allow(
    clippy::disallowed_methods,
    reason = "an integration test waits in real time on a real process"
)]

pub mod node;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running `kubeboot server` on 127.0.0.1 with its own data dir.
pub struct Server {
    pub child: Child,
    pub dir: PathBuf,
    pub url: String,
    pub join_command: Option<String>,
    _tmp: Option<tempfile::TempDir>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_kubeboot")
}

impl Server {
    /// Starts a server on a fresh data dir.
    pub fn start() -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("cluster");
        let mut s = Self::start_in(&dir);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on a fresh data dir with extra flags.
    pub fn start_with(extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("cluster");
        let mut s = Self::start_in_with(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on `dir` (reusing what is there).
    pub fn start_in(dir: &Path) -> Self {
        Self::start_in_with(dir, &[])
    }

    /// Starts a server on `dir` with extra flags.
    pub fn start_in_with(dir: &Path, extra: &[&str]) -> Self {
        Self::start_on(dir, 0, extra)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port in url")
    }

    /// Starts a server on `dir` and `port` (0: a free one) with extra flags.
    pub fn start_on(dir: &Path, port: u16, extra: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .args(["server", "--data-dir"])
            .arg(dir)
            .args([
                "--secure-port",
                &port.to_string(),
                "--bind-address",
                "127.0.0.1",
            ])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn kubeboot server");
        let rx = lines_of(&mut child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut url = None;
        let mut join = None;
        while Instant::now() < deadline {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line) => {
                    if let Some(addr) = line.strip_prefix("kubeboot API server listening on ") {
                        url = Some(addr.trim().to_owned());
                    }
                    if line.trim_start().starts_with("kubeboot join ") {
                        join = Some(line.trim().to_owned());
                    }
                    if line.contains("kubectl get --raw /version") {
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        panic!("kubeboot server exited early: {status}");
                    }
                }
                Err(_) => break,
            }
        }
        let url = url.expect("the server printed its address within 60s");
        Self {
            child,
            dir: dir.to_owned(),
            url,
            join_command: join,
            _tmp: None,
        }
    }

    /// The value of `flag` (`--token`, `--discovery-token-ca-cert-hash`) in the join
    /// command the server printed.
    pub fn join_arg(&self, flag: &str) -> String {
        flag_value(self.join_command.as_deref().expect("join command"), flag)
    }

    /// The bootstrap token of the join command the server printed.
    pub fn token(&self) -> String {
        self.join_arg("--token")
    }

    /// `host:port`.
    pub fn addr(&self) -> &str {
        self.url.trim_start_matches("https://")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.conf")
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.join("pki/ca.crt")
    }

    /// The public `kube-public/cluster-info` ConfigMap as the admin's `kubectl get -o
    /// <output>` shows it (nothing when kubectl fails).
    pub fn cluster_info(&self, output: &str) -> String {
        let args = [
            "get",
            "configmap",
            "-n",
            "kube-public",
            "cluster-info",
            "-o",
            output,
        ];
        stdout(&self.kubectl("kubectl", &args))
    }

    /// Runs a kubectl binary against this server as the admin.
    pub fn kubectl(&self, kubectl: &str, args: &[&str]) -> Output {
        self.kubectl_as(kubectl, &self.kubeconfig(), args, None)
    }

    pub fn kubectl_as(
        &self,
        kubectl: &str,
        kubeconfig: &Path,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Output {
        let cache = self.dir.join("kubectl-cache");
        let mut cmd = Command::new(kubectl);
        cmd.args(args)
            .arg("--request-timeout=30s")
            .arg(format!("--cache-dir={}", cache.display()))
            .env("KUBECONFIG", kubeconfig)
            .env("HOME", &self.dir)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn kubectl");
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("write stdin");
        }
        wait_bounded(child, Duration::from_secs(60))
    }

    /// Extracts the admin's client certificate and key into files for curl.
    pub fn admin_cert_files(&self) -> (PathBuf, PathBuf) {
        let text = std::fs::read_to_string(self.kubeconfig()).expect("admin.conf");
        let field = |name: &str| {
            let line = text
                .lines()
                .find(|l| l.trim_start().starts_with(name))
                .expect("field in kubeconfig");
            let b64 = line
                .split_once(':')
                .expect("key: value")
                .1
                .trim()
                .trim_matches('"');
            use base64::Engine;
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64")
        };
        let cert = self.dir.join("admin.crt");
        let key = self.dir.join("admin.key");
        std::fs::write(&cert, field("client-certificate-data")).expect("write cert");
        std::fs::write(&key, field("client-key-data")).expect("write key");
        (cert, key)
    }

    /// `curl` against this server; returns (HTTP code, body).
    pub fn curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "30", "--cacert"])
            .arg(self.ca())
            .args(["-w", "\n%{http_code}"])
            .args(args)
            .arg(format!(
                "https://{}{}",
                self.url.trim_start_matches("https://"),
                path
            ))
            .output()
            .expect("run curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }

    /// `method` of a JSON `body` to `path` as the admin: the code and the answer.
    pub fn admin_send(&self, method: &str, path: &str, body: &serde_json::Value) -> (u16, String) {
        let body = body.to_string();
        let args = [
            "-X",
            method,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body,
        ];
        self.admin_curl(&args, path)
    }

    /// curl as the admin (client certificate).
    pub fn admin_curl(&self, args: &[&str], path: &str) -> (u16, String) {
        let (cert, key) = self.admin_cert_files();
        let mut all = vec![
            "--cert",
            cert.to_str().expect("utf8"),
            "--key",
            key.to_str().expect("utf8"),
        ];
        all.extend_from_slice(args);
        self.curl(&all, path)
    }

    /// Creates an object as the admin (POST of `body` to `path`, expecting 201); the object
    /// as created.
    pub fn admin_create(&self, path: &str, body: &str) -> serde_json::Value {
        let (code, out) = self.admin_curl(
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                body,
            ],
            path,
        );
        assert_eq!(code, 201, "{out}");
        serde_json::from_str(&out).expect("json")
    }

    /// A watch as the admin (`curl -N`, at most `limit_secs`), its output piped.
    pub fn admin_watch(&self, path: &str, limit_secs: u32) -> Child {
        let (cert, key) = self.admin_cert_files();
        Command::new("curl")
            .args(["-sN", "--max-time", &limit_secs.to_string(), "--cacert"])
            .arg(self.ca())
            .arg("--cert")
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg(format!("{}{path}", self.url))
            .stdout(Stdio::piped())
            .spawn()
            .expect("curl")
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `cond` every 100 ms for at most `limit`; whether it became true.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    cond()
}

/// The bytes of a base64 field of a kubeconfig (`certificate-authority-data`,
/// `client-key-data`), decoded.
pub fn kubeconfig_data(kubeconfig_text: &str, field: &str) -> Vec<u8> {
    use base64::Engine;
    let b64 = kubeconfig_text
        .lines()
        .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("{field} in the kubeconfig"))
        .trim()
        .trim_matches('"');
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64")
}

/// Waits at most `limit` for a child to exit; whether it did.
pub fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    eventually(limit, || matches!(child.try_wait(), Ok(Some(_))))
}

/// Runs `cmd` to its end (at most `limit`, killed after), checks that it succeeded (`what`
/// names it if not) and returns its standard output.
pub fn run_bounded(cmd: &mut Command, limit: Duration, what: &str) -> String {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    ok(wait_bounded(child, limit), what)
}

/// Waits for a child at most `limit`, killing it after. Its output is read while it runs,
/// so a large output never blocks it on a full pipe.
pub fn wait_bounded(mut child: Child, limit: Duration) -> Output {
    use std::io::Read;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    if !wait_exit(&mut child, limit) {
        let _ = child.kill();
    }
    let status = child.wait().expect("wait");
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// The lines a child prints on stdout, as they come (read on a thread of their own; the
/// channel closes when the child closes its stdout).
fn lines_of(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    lines(child.stdout.take().expect("the child's stdout is piped"))
}

/// The lines of a pipe, read on a thread of their own as they come.
pub fn lines(pipe: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Reads a running child's stdout until a line contains `want` or `limit` passes, then
/// kills it; everything it printed. For watches: waits for the event, not a guessed time.
pub fn read_until(mut child: Child, want: &str, limit: Duration) -> String {
    let rx = lines_of(&mut child);
    let deadline = Instant::now() + limit;
    let mut seen = String::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        seen.push_str(&line);
        seen.push('\n');
        if line.contains(want) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

/// The JSON lines a running child prints, until `done` holds for what was read or `limit`
/// passes; then the child is killed.
pub fn read_json_lines(
    mut child: Child,
    limit: Duration,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let rx = lines_of(&mut child);
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Ok(line) = rx.recv_timeout(left) else {
            break;
        };
        if line.trim().is_empty() {
            continue;
        }
        seen.push(serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}")));
        if done(&seen) {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    seen
}

/// The kubectl binaries to test: the oldest and the newest installed beside `kubectl`.
pub fn kubectls() -> Vec<String> {
    let found = Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v kubectl)\""])
        .output()
        .expect("sh");
    let path = PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
    let dir = path.parent().expect("kubectl has a directory").to_owned();
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .expect("read kubectl dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let minor = name.strip_prefix("kubectl.1.")?.parse().ok()?;
            Some((minor, e.path()))
        })
        .collect();
    versions.sort();
    let mut out = Vec::new();
    if let Some((_, p)) = versions.first() {
        out.push(p.display().to_string());
    }
    if let Some((_, p)) = versions.last() {
        out.push(p.display().to_string());
    }
    if out.is_empty() {
        out.push("kubectl".into());
    }
    out.dedup();
    out
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts a command succeeded, showing its output if not.
pub fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed:\nstdout: {}\nstderr: {}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Kills a child process however the test ends (a failed assertion must not leave a
/// server holding the test's pipes).
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `kubeboot apiserver` on 127.0.0.1 and a free port with `args`; returns the
/// process (killed on drop) and its `https://` URL.
pub fn start_apiserver(args: &[&std::ffi::OsStr]) -> (KillOnDrop, String) {
    let child = Command::new(bin())
        .args([
            "apiserver",
            "--bind-address",
            "127.0.0.1",
            "--secure-port",
            "0",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn kubeboot apiserver");
    let mut child = KillOnDrop(child);
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read the address line");
    let url = line
        .trim()
        .strip_prefix("kubeboot API server listening on ")
        .expect("the address line")
        .to_owned();
    (child, url)
}

/// Runs `kubeboot init --data-dir data`, then `kubeboot apiserver` serving with that
/// PKI (its certificate and key, `ca.crt` as the client CA) on a store in `store`, with
/// `extra` flags: the child and its URL.
pub fn apiserver_from_init(data: &Path, store: &Path, extra: &[&str]) -> (KillOnDrop, String) {
    ok(
        Command::new(bin())
            .args(["init", "--data-dir"])
            .arg(data)
            .output()
            .expect("run kubeboot init"),
        "kubeboot init",
    );
    let pki = data.join("pki");
    let mut args: Vec<std::ffi::OsString> = extra.iter().map(Into::into).collect();
    for (flag, file) in [
        ("--tls-cert-file", "apiserver.crt"),
        ("--tls-private-key-file", "apiserver.key"),
        ("--client-ca-file", "ca.crt"),
    ] {
        args.push(flag.into());
        args.push(pki.join(file).into());
    }
    args.push("--storage-dir".into());
    args.push(store.into());
    let args: Vec<&std::ffi::OsStr> = args.iter().map(AsRef::as_ref).collect();
    start_apiserver(&args)
}

/// Runs the real `openssl` in `dir`; a failure fails the test with openssl's stderr.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new P-256 key and PKCS#10 request for `subject`, written as `{name}.key` and
/// `{name}.csr` in `dir`; returns the request's PEM.
pub fn csr_pem(dir: &Path, name: &str, subject: &str) -> Vec<u8> {
    let (key, csr) = (format!("{name}.key"), format!("{name}.csr"));
    openssl(
        dir,
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            subject,
        ],
    );
    std::fs::read(dir.join(csr)).expect("read csr")
}

/// A one-day client certificate for `subject` signed by `ca`/`ca_key` with openssl:
/// writes `{name}.key` and `{name}.crt` in `dir` and returns the curl flags that present it.
pub fn client_cert(dir: &Path, name: &str, subject: &str, ca: &Path, ca_key: &Path) -> [String; 4] {
    csr_pem(dir, name, subject);
    std::fs::write(dir.join("ext.cnf"), "extendedKeyUsage=clientAuth\n").expect("write ext");
    let (csr, crt) = (format!("{name}.csr"), format!("{name}.crt"));
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            ca.to_str().expect("utf8"),
            "-CAkey",
            ca_key.to_str().expect("utf8"),
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            "1",
            "-extfile",
            "ext.cnf",
        ],
    );
    let path = |f: String| dir.join(f).to_str().expect("utf8").to_owned();
    [
        "--cert".to_owned(),
        path(crt),
        "--key".to_owned(),
        path(format!("{name}.key")),
    ]
}

/// The flags that make a server audit to `log` under the audit policy `policy` (its YAML,
/// written to `dir/policy.yaml`).
pub fn audit_flags(dir: &Path, policy: &str, log: &Path) -> Vec<String> {
    let file = dir.join("policy.yaml");
    std::fs::write(&file, policy).expect("write the audit policy");
    vec![
        "--audit-policy-file".into(),
        file.display().to_string(),
        "--audit-log-path".into(),
        log.display().to_string(),
    ]
}

impl Server {
    /// A server auditing to `log` under the audit policy `policy` (its YAML, written to
    /// `dir/policy.yaml`).
    pub fn start_audited(dir: &Path, policy: &str, log: &Path) -> Self {
        let flags = audit_flags(dir, policy, log);
        Self::start_with(&flags.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

/// The word after `flag` in a command line (such as a printed `kubeboot join …`).
pub fn flag_value(command: &str, flag: &str) -> String {
    command
        .split_whitespace()
        .skip_while(|w| *w != flag)
        .nth(1)
        .unwrap_or_else(|| panic!("{flag} in {command:?}"))
        .to_owned()
}

/// The audit events written to `log` so far, one JSON object per line.
pub fn audit_events(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

/// A server of the control plane on `etcd`, joining `join` when given.
pub fn control_plane(dir: &Path, etcd: &str, join: Option<&Path>, extra: &[&str]) -> Server {
    let mut flags = vec![
        "--etcd-servers",
        etcd,
        "--anonymous-requests-per-second",
        "0",
    ];
    let join_dir;
    if let Some(j) = join {
        join_dir = j.display().to_string();
        flags.extend(["--join-control-plane", &join_dir]);
    }
    flags.extend_from_slice(extra);
    Server::start_on(dir, 0, &flags)
}

/// `kubectl args` as the admin, `stdin` its input.
pub fn as_admin(s: &Server, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    s.kubectl_as("kubectl", &s.kubeconfig(), args, stdin)
}

/// Asserts `kubectl args` (as the admin, `stdin` its input) failed, saying `want`.
pub fn refused(s: &Server, args: &[&str], stdin: Option<&str>, want: &str) {
    let out = as_admin(s, args, stdin);
    assert!(!out.status.success(), "{args:?}: {}", stdout(&out));
    assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
}
