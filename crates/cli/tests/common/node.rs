//! Joining nodes in tests: the server's own join command, run with extra flags; a token
//! whose CSRs only a person approves; a running node agent and its log.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use super::{Server, bin, ok};

/// The arguments of the join command the server printed (without `kubeboot`).
pub fn join_args(s: &Server) -> Vec<String> {
    s.join_command
        .as_deref()
        .expect("join command")
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

/// Runs `kubeboot <args> <extra>` to its end (at most a minute).
pub fn join(args: &[String], extra: &[&str]) -> std::process::Output {
    let child = Command::new(bin())
        .args(args)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("join");
    super::wait_bounded(child, Duration::from_secs(60))
}

/// A bootstrap token in a group no approval policy covers: its CSRs wait for
/// `kubectl certificate approve`.
pub fn manual_token(s: &Server) -> String {
    ok(
        s.kubectl(
            "kubectl",
            &[
                "create",
                "clusterrolebinding",
                "manual-bootstrap",
                "--clusterrole=system:node-bootstrapper",
                "--group=system:bootstrappers:manual",
            ],
        ),
        "binding",
    );
    ok(
        Command::new(bin())
            .args(["token", "create", "--groups", "system:bootstrappers:manual"])
            .arg("--kubeconfig")
            .arg(s.kubeconfig())
            .output()
            .expect("token"),
        "token create",
    )
    .trim()
    .to_owned()
}

/// A running `kubeboot node`, killed if a test ends before it stops, and its log lines.
pub struct Agent {
    child: Child,
    lines: Receiver<String>,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Agent {
    pub fn start(args: &[&str], dir: &Path) -> Self {
        let mut child = Command::new(bin())
            .arg("node")
            .args(args)
            .arg("--dir")
            .arg(dir)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("node");
        let lines = super::lines(child.stderr.take().expect("stderr"));
        Self { child, lines }
    }

    /// Whether a log line containing `needle` came within `limit`.
    pub fn logs(&self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }

    /// The warnings and errors the agent logged since the last look at its log.
    pub fn warnings(&self) -> Vec<String> {
        self.lines
            .try_iter()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .collect()
    }

    /// Kills the agent with SIGKILL, as a crash or `kill -9` would, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM; whether the agent exited within 5 s.
    pub fn terminate(&mut self) -> bool {
        let term = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(term.success());
        super::wait_exit(&mut self.child, Duration::from_secs(5))
    }
}

/// Joins node `name` into `dir` with the server's join command.
pub fn joined(s: &Server, dir: &Path, name: &str) {
    joined_with(join_args(s), dir, name);
}

/// Joins node `name` into `dir` with the join command `args`.
pub fn joined_with(mut args: Vec<String>, dir: &Path, name: &str) {
    args.extend([
        "--node-name".into(),
        name.into(),
        "--dir".into(),
        dir.display().to_string(),
    ]);
    let out = join(&args, &[]);
    assert!(out.status.success(), "{name}: {out:?}");
}
