//! The Debian package, installed on this machine as an operator installs it: `dpkg -i`,
//! the server started by its unit's command line as the unit's user (systemd is not PID 1
//! here, so the test runs the unit's `ExecStart` itself, with its `EnvironmentFile`), a
//! node joined into the kubelet's places and run by the node unit's command line, then
//! `dpkg --purge`. It needs root and a machine without kubeboot installed or a kubelet
//! configured; everything it adds is removed at the end, whatever happens.

mod common;

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{KillOnDrop, bin, eventually, ok, stdout};

const UNITS: &str = "/lib/systemd/system";
/// What the node's join and agent write, beside what the package installs.
const KUBELET_PLACES: [&str; 2] = ["/etc/kubernetes", "/var/lib/kubelet"];

/// Removes the package and everything the test made, when the test ends.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").args(["--purge", "kubeboot"]).output();
        for dir in ["/var/lib/kubeboot", "/var/log/kubeboot"]
            .iter()
            .chain(KUBELET_PLACES.iter())
        {
            let _ = std::fs::remove_dir_all(dir);
        }
        let _ = Command::new("userdel").arg("kubeboot").output();
    }
}

fn run(cmd: &mut Command, what: &str) -> String {
    ok(cmd.output().unwrap_or_else(|e| panic!("{what}: {e}")), what)
}

/// A `Key=value` line of a unit file.
fn unit_value(unit: &str, key: &str) -> Option<String> {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(str::to_owned)
}

/// The variables of an `EnvironmentFile` (`KEY="value"` lines; comments skipped).
fn environment_file(text: &str) -> HashMap<String, String> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

/// The unit's `ExecStart` as systemd runs it: words split on spaces, and `$VAR` replaced
/// by the words of the variable's value.
fn exec_start(unit: &str, env: &HashMap<String, String>) -> Vec<String> {
    let line = unit_value(unit, "ExecStart").expect("ExecStart");
    line.split_whitespace()
        .flat_map(|w| match w.strip_prefix('$') {
            Some(var) => env
                .get(var)
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            None => vec![w.to_owned()],
        })
        .collect()
}

/// Starts a unit's `ExecStart`, as its `User=` with its `UMask=` and only the variables of
/// its environment file, as systemd would.
fn start_unit(name: &str, env_text: &str) -> (KillOnDrop, std::sync::mpsc::Receiver<String>) {
    let unit = std::fs::read_to_string(format!("{UNITS}/{name}.service")).expect("unit");
    let env_path = unit_value(&unit, "EnvironmentFile").expect("EnvironmentFile");
    let env_path = env_path.trim_start_matches('-');
    std::fs::write(env_path, env_text).expect("write the unit's environment file");
    let env = environment_file(env_text);
    let argv = exec_start(&unit, &env);
    let umask = unit_value(&unit, "UMask").unwrap_or_else(|| "0022".into());
    let mut script = format!("umask {umask} && exec");
    // setpriv executes the command in place (runuser would fork it and leave it running
    // when killed).
    if let Some(user) = unit_value(&unit, "User") {
        let group = unit_value(&unit, "Group").unwrap_or_else(|| user.clone());
        script.push_str(&format!(
            " setpriv --reuid {user} --regid {group} --init-groups --"
        ));
    }
    script.push_str(" \"$@\"");
    let mut child = Command::new("sh")
        .args(["-c", &script, "sh"])
        .args(&argv)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .envs(&env)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the unit's command");
    let lines = common::lines(child.stdout.take().expect("stdout"));
    (KillOnDrop(child), lines)
}

fn mode_and_owner(path: &str) -> (u32, String) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let owner = stdout(
        &Command::new("stat")
            .args(["-c", "%U"])
            .arg(path)
            .output()
            .expect("stat"),
    );
    (meta.permissions().mode() & 0o7777, owner.trim().to_owned())
}

fn preconditions() {
    let uid = Command::new("id").arg("-u").output().expect("id");
    assert_eq!(
        stdout(&uid).trim(),
        "0",
        "the package test installs a .deb: run it as root"
    );
    let installed = Command::new("dpkg")
        .args(["-s", "kubeboot"])
        .output()
        .expect("dpkg");
    assert!(
        !installed.status.success(),
        "kubeboot is installed on this machine; the package test would replace it: remove it first (dpkg --purge kubeboot)"
    );
    for place in KUBELET_PLACES {
        assert!(
            !Path::new(place).exists(),
            "{place} exists: this machine has a kubelet configured, which the package test would overwrite"
        );
    }
}

fn build_and_install(out: &Path) -> Installed {
    let deb = run(
        Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../packaging/build-deb"
        ))
        .args(["--binary", bin(), "--out"])
        .arg(out),
        "packaging/build-deb",
    );
    let installed = Installed;
    run(Command::new("dpkg").args(["-i", deb.trim()]), "dpkg -i");
    installed
}

fn check_installed_files() {
    let version = run(
        Command::new("/usr/bin/kubeboot").args(["version", "-o", "short"]),
        "version",
    );
    assert!(version.starts_with("v1.33.0-kubeboot."), "{version}");
    run(
        Command::new("systemd-analyze").args([
            "verify",
            &format!("{UNITS}/kubeboot-server.service"),
            &format!("{UNITS}/kubeboot-node.service"),
        ]),
        "systemd-analyze verify",
    );
    let page = run(
        Command::new("man")
            .arg("kubeboot-join")
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "400"),
        "man kubeboot-join",
    );
    assert!(
        page.contains("kubeboot-join - Join this machine to a cluster"),
        "{page}"
    );
    assert!(Path::new("/usr/share/bash-completion/completions/kubeboot").exists());
    let user = run(
        Command::new("getent").args(["passwd", "kubeboot"]),
        "getent",
    );
    assert!(
        user.trim_end()
            .ends_with(":/var/lib/kubeboot:/usr/sbin/nologin"),
        "{user}"
    );
    assert_eq!(
        mode_and_owner("/var/lib/kubeboot"),
        (0o700, "kubeboot".to_owned())
    );
}

/// Waits for a line containing `want`.
fn line_with(lines: &std::sync::mpsc::Receiver<String>, want: &str) -> String {
    for _ in 0..50 {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.contains(want) => return line,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no line with {want:?}")
}

fn wait_bounded(child: Child) -> Output {
    common::wait_bounded(child, Duration::from_secs(60))
}

#[test]
fn the_deb_installs_runs_a_server_and_a_node_and_purges() {
    preconditions();
    let tmp = tempfile::tempdir().expect("tempdir");
    let installed = build_and_install(tmp.path());
    check_installed_files();

    // The server, as `systemctl start kubeboot-server` runs it, on a loopback port.
    let (_server, lines) = start_unit(
        "kubeboot-server",
        "KUBEBOOT_SERVER_ARGS=\"--bind-address 127.0.0.1 --secure-port 0\"\n",
    );
    let join = line_with(&lines, "kubeboot join ");
    let admin = "/var/lib/kubeboot/admin.conf";
    assert_eq!(mode_and_owner(admin), (0o600, "kubeboot".to_owned()));

    // The join the server printed, into the kubelet's places, then the node unit.
    let mut words = join.split_whitespace().skip(1);
    let joined = Command::new("/usr/bin/kubeboot")
        .args(words.by_ref())
        .args(["--node-name", "pkg-node"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("join");
    let joined = wait_bounded(joined);
    let said = ok(joined, "kubeboot join");
    assert!(
        said.contains("'systemctl enable --now kubeboot-node'"),
        "{said}"
    );
    assert_eq!(
        mode_and_owner("/etc/kubernetes/kubelet.conf"),
        (0o600, "root".to_owned())
    );
    let (_node, _) = start_unit(
        "kubeboot-node",
        "KUBEBOOT_NODE_ARGS=\"--node-name pkg-node\"\n",
    );
    let ready = || {
        let out = Command::new("kubectl")
            .args(["--kubeconfig", admin, "get", "node", "pkg-node"])
            .args([
                "-o",
                "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}",
            ])
            .output()
            .expect("kubectl");
        stdout(&out) == "True"
    };
    assert!(eventually(Duration::from_secs(60), ready), "pkg-node Ready");
    let client = std::fs::read_link("/var/lib/kubelet/pki/kubelet-client-current.pem")
        .expect("the kubelet's client certificate link");
    assert!(
        client
            .to_string_lossy()
            .starts_with("/var/lib/kubelet/pki/kubelet-client-"),
        "{client:?}"
    );
    drop(_node);
    drop(_server);

    // Removed cleanly: nothing of the package is left, the cluster's data is.
    run(
        Command::new("dpkg").args(["--purge", "kubeboot"]),
        "dpkg --purge",
    );
    for gone in [
        "/usr/bin/kubeboot",
        "/lib/systemd/system/kubeboot-server.service",
        "/lib/systemd/system/kubeboot-node.service",
        "/etc/kubeboot",
        "/usr/share/man/man1/kubeboot-join.1.gz",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is left after the purge");
    }
    assert!(
        std::fs::metadata("/var/lib/kubeboot").is_ok_and(|m| m.uid() != 0),
        "the cluster's data is kept"
    );
    drop(installed);
}

#[test]
fn unit_command_lines_expand_their_environment_as_systemd_does() {
    let unit = "[Service]\nEnvironmentFile=-/etc/kubeboot/x.env\nExecStart=/usr/bin/kubeboot server --data-dir /d $ARGS\n";
    let env = environment_file("# flags\nARGS=\"--a 1  --b\"\n");
    assert_eq!(
        exec_start(unit, &env),
        [
            "/usr/bin/kubeboot",
            "server",
            "--data-dir",
            "/d",
            "--a",
            "1",
            "--b"
        ]
    );
    assert_eq!(
        exec_start(unit, &HashMap::new()),
        ["/usr/bin/kubeboot", "server", "--data-dir", "/d"]
    );
}
