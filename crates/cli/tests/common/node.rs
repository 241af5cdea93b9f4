//! Joining nodes in tests: the server's own join command, run with extra flags; a token
//! whose CSRs only a person approves.

use std::process::{Command, Stdio};
use std::time::Duration;

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
