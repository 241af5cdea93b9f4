//! What an operator meets before anything else: a command's output into a pipe that
//! closes (`| head -1`), an error said in kubeadm's words without a backtrace, `kubeboot
//! version`, shell completion, man pages, and `--logging-format` / `-v`.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{Server, bin, ok, stderr, stdout};

/// Runs `kubeboot args` with its standard output a pipe whose reader is already gone.
fn into_closed_pipe(args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kubeboot");
    drop(child.stdout.take());
    common::wait_bounded(child, Duration::from_secs(30))
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_as_sigpipe_does() {
    let s = Server::start();
    let kubeconfig = s.kubeconfig();
    let kubeconfig = kubeconfig.to_str().expect("utf8");
    for i in 0..3 {
        let token = format!("abcde{i}.0123456789abcdef");
        ok(
            Command::new(bin())
                .args(["token", "create", &token, "--kubeconfig", kubeconfig])
                .output()
                .expect("token create"),
            "token create",
        );
    }
    for args in [
        &["token", "list", "-o", "json", "--kubeconfig", kubeconfig][..],
        &["completion", "bash"],
        &["certs", "init-spec"],
    ] {
        let out = into_closed_pipe(args);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {out:?}");
        assert_eq!(stderr(&out), "", "{args:?}: nothing but the status");
    }
}

#[test]
fn errors_are_one_line_in_kubeadms_words() {
    let out = Command::new(bin())
        .args(["token", "create", "bogus", "--kubeconfig", "/nonexistent"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("token create");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "error: the bootstrap token \"bogus\" was not of the form \"\\\\A([a-z0-9]{6})\\\\.([a-z0-9]{16})\\\\z\"\n"
    );
    // A token-shaped mistake never shows its secret.
    let out = Command::new(bin())
        .args(["token", "create", "abcdef.0123456789ABCDEF"])
        .output()
        .expect("token create");
    assert!(
        stderr(&out).contains("\"abcdef\".<redacted>") && !stderr(&out).contains("0123456789"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn version_names_the_commit_it_was_built_from_as_the_server_does() {
    let out = ok(
        Command::new(bin())
            .args(["version", "-o", "json"])
            .output()
            .expect("version"),
        "version",
    );
    let info: serde_json::Value = serde_json::from_str(&out).expect("json");
    let client = &info["clientVersion"];
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git");
    assert_eq!(
        client["gitCommit"].as_str(),
        Some(stdout(&head).trim()),
        "{info}"
    );
    assert!(
        client["gitVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("v1.33.0-kubeboot.")),
        "{info}"
    );
    let short = ok(
        Command::new(bin())
            .args(["version", "-o", "short"])
            .output()
            .expect("version"),
        "short",
    );
    assert_eq!(short.trim(), client["gitVersion"].as_str().unwrap_or(""));
    let line = ok(
        Command::new(bin())
            .arg("version")
            .output()
            .expect("version"),
        "version",
    );
    assert!(
        line.starts_with("kubeboot version: &version.Info{Major:\"1\", Minor:\"33\", "),
        "{line}"
    );
    let yaml = ok(
        Command::new(bin())
            .args(["version", "-o", "yaml"])
            .output()
            .expect("version"),
        "yaml",
    );
    assert!(yaml.starts_with("clientVersion:\n"), "{yaml}");
    // The server reports the same build through kubectl.
    let s = Server::start();
    let served = ok(
        s.kubectl("kubectl", &["version", "-o", "json"]),
        "kubectl version",
    );
    let served: serde_json::Value = serde_json::from_str(&served).expect("json");
    assert_eq!(served["serverVersion"], *client, "{served}");
}

#[test]
fn completion_scripts_load_in_their_shells() {
    let bash = Command::new("bash")
        .args([
            "-c",
            &format!(
                "source <({} completion bash) && complete -p kubeboot",
                bin()
            ),
        ])
        .output()
        .expect("bash");
    assert!(
        stdout(&bash).contains("kubeboot"),
        "{}{}",
        stdout(&bash),
        stderr(&bash)
    );
    let script = |shell: &str| {
        ok(
            Command::new(bin())
                .args(["completion", shell])
                .output()
                .expect("completion"),
            shell,
        )
    };
    assert!(script("zsh").starts_with("#compdef kubeboot"));
    assert!(script("fish").contains("complete -c kubeboot"));
    let refused = Command::new(bin())
        .args(["completion", "tcsh"])
        .output()
        .expect("completion");
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("possible values: bash, zsh, fish"));
}

#[test]
fn every_command_has_a_man_page_from_its_help() {
    let dir = tempfile::tempdir().expect("tempdir");
    ok(
        Command::new(bin())
            .args(["man", "--dir"])
            .arg(dir.path())
            .output()
            .expect("man"),
        "man",
    );
    for page in [
        "kubeboot.1",
        "kubeboot-join.1",
        "kubeboot-node.1",
        "kubeboot-server.1",
        "kubeboot-token-create.1",
        "kubeboot-certs-generate.1",
        "kubeboot-version.1",
    ] {
        assert!(dir.path().join(page).exists(), "{page}");
    }
    assert!(
        !dir.path().join("kubeboot-man.1").exists(),
        "hidden commands get no page"
    );
    let join = std::fs::read_to_string(dir.path().join("kubeboot-join.1")).expect("page");
    assert!(join.contains(".TH kubeboot-join 1"), "{join}");
    assert!(join.contains("kubeboot join"), "{join}");
    assert!(
        join.contains("discovery\\-token\\-ca\\-cert\\-hash"),
        "{join}"
    );
    let help = ok(
        Command::new(bin()).arg("--help").output().expect("help"),
        "help",
    );
    assert!(
        help.contains("node admission at scale (`bench join`)"),
        "{help}"
    );
}

#[test]
fn logs_can_be_json_lines_at_klogs_verbosity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf8");
    for (flags, want_level) in [
        (&["--logging-format", "json"][..], "INFO"),
        (&["--logging-format", "json", "-v", "4"][..], "DEBUG"),
    ] {
        let mut child = Command::new(bin())
            .args(["server", "--data-dir", data, "--secure-port", "0"])
            .args(["--bind-address", "127.0.0.1"])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let lines = common::lines(child.stderr.take().expect("stderr"));
        let mut seen = Vec::new();
        let found = (0..2000).any(|_| {
            let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) else {
                return true;
            };
            let parsed: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("{flags:?}: not JSON ({e}): {line}"));
            assert!(parsed["timestamp"].is_string() && parsed["message"].is_string());
            seen.push(parsed["level"].as_str().unwrap_or_default().to_owned());
            seen.iter().any(|l| l == want_level)
        });
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            found && seen.iter().any(|l| l == want_level),
            "{flags:?}: {seen:?}"
        );
    }
}
