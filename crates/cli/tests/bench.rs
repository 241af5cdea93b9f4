//! `kubeboot bench join --self` as a smoke test: every simulated node is admitted with a
//! certificate that authenticates it and that openssl verifies against the cluster CA, and
//! nothing fails; `bench api` runs every phase. No time is asserted.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Runs `kubeboot bench <args> --output <output>` to its end (at most 5 minutes), checks
/// that it succeeded, and reads its JSON results.
fn bench<'a>(args: impl IntoIterator<Item = &'a OsStr>, output: &Path) -> serde_json::Value {
    common::run_bounded(
        Command::new(common::bin())
            .arg("bench")
            .args(args)
            .arg("--output")
            .arg(output),
        Duration::from_secs(300),
        "kubeboot bench",
    );
    serde_json::from_slice(&std::fs::read(output).expect("results")).expect("json")
}

#[test]
fn bench_join_admits_every_node() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_file = tmp.path().join("results.json");
    let plot = tmp.path().join("latency.svg");
    let certs = tmp.path().join("certs");
    let report = bench(
        [
            "join",
            "--self",
            "--nodes",
            "200",
            "--concurrency",
            "20",
            "--server-cpus",
            "0",
            "--load-cpus",
            "0",
            "--plot",
        ]
        .map(OsStr::new)
        .into_iter()
        .chain([
            plot.as_os_str(),
            OsStr::new("--cert-dir"),
            certs.as_os_str(),
        ]),
        &out_file,
    );
    assert_eq!(report["admitted"], 200, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert!(
        report["crypto"]["nodes_per_second"]
            .as_f64()
            .is_some_and(|b| b > 0.0),
        "the crypto bound is measured"
    );
    for step in ["discovery", "certificate", "first-request"] {
        assert_eq!(report["steps"][step]["count"], 200, "{step}");
    }
    // The server and the load ran on the CPUs asked for, and the server's CPU is reported
    // by thread: the store's writer by name, the shares adding up to the whole.
    let server = &report["server"];
    assert_eq!(server["cpus"], "0", "{server}");
    assert_eq!(report["load_cpus"], "0", "{report}");
    let threads = server["threads"].as_array().expect("threads");
    assert!(
        threads.iter().any(|t| t["name"] == "sqlite-writer"),
        "{server}"
    );
    let shares: f64 = threads.iter().filter_map(|t| t["share"].as_f64()).sum();
    assert!((shares - 1.0).abs() < 0.01, "{server}");
    assert!(
        server["cpu_ms_per_node"].as_f64().is_some_and(|c| c > 0.0),
        "{server}"
    );
    // So is the load generator's, which shares the machine in a `--self` run.
    let load = &report["load"];
    assert!(
        load["cpu_ms_per_node"].as_f64().is_some_and(|c| c > 0.0),
        "{report}"
    );
    assert!(
        load["cpu_seconds"].as_f64().is_some_and(|c| c > 0.0),
        "{report}"
    );
    // Every node's certificate verifies against the cluster CA, by openssl's own checks.
    let mut node_certs: Vec<std::path::PathBuf> = std::fs::read_dir(&certs)
        .expect("cert dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != "ca.crt"))
        .collect();
    node_certs.sort();
    assert_eq!(
        node_certs.len(),
        200,
        "a certificate per node: {node_certs:?}"
    );
    let verified = Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(certs.join("ca.crt"))
        .args(&node_certs)
        .output()
        .expect("openssl verify");
    let said = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert_eq!(
        said.lines().filter(|l| l.ends_with(": OK")).count(),
        200,
        "{said}"
    );
    let svg = std::fs::read_to_string(&plot).expect("the plot is written");
    assert_eq!(
        svg.matches("<circle").count(),
        200,
        "a dot per admitted node"
    );
}

#[test]
fn bench_api_runs_every_phase_by_certificate_and_by_token() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_file = tmp.path().join("api.json");
    let report = bench(
        [
            "api",
            "--self",
            "--sequential",
            "20",
            "--concurrent",
            "300",
            "--lists",
            "20",
            "--watch-events",
            "100",
            "--concurrency",
            "8",
        ]
        .map(OsStr::new),
        &out_file,
    );
    let phases: Vec<&serde_json::Value> = report["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .map(|p| &p["phase"])
        .collect();
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "create x20, 1 client(s), certificate",
            "create x300, 8 client(s), certificate",
            "get x300, 8 client(s), certificate",
            "list 500 a page x20, 8 client(s), certificate",
            "watched update x100, 8 client(s), certificate",
            "create x300, 8 client(s), token",
            "get x300, 8 client(s), token",
            "list 500 a page x20, 8 client(s), token",
            "watched update x100, 8 client(s), token",
        ]
    );
    for p in &phases {
        let name = p["name"].as_str().expect("name");
        let count: u64 = name
            .split_once(" x")
            .and_then(|(_, rest)| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .expect("a count in the name");
        assert_eq!(p["errors"], 0, "{p}");
        assert_eq!(
            p["latency"]["count"], count,
            "every operation succeeded: {p}"
        );
    }
    // The server took the certificate phases for the admin and the token phases for one
    // bootstrap token.
    let users = |how: &str| -> std::collections::BTreeSet<&str> {
        phases
            .iter()
            .filter(|p| p["name"].as_str().is_some_and(|n| n.ends_with(how)))
            .map(|p| p["user"].as_str().expect("user"))
            .collect()
    };
    assert_eq!(users(", certificate"), ["kubernetes-admin"].into());
    let token_users = users(", token");
    assert_eq!(token_users.len(), 1, "{token_users:?}");
    let id = token_users
        .first()
        .and_then(|u| u.strip_prefix("system:bootstrap:"))
        .expect("a bootstrap token's user");
    assert!(
        id.len() == 6
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()),
        "{id}"
    );
}

/// The number of CSRs the server holds, and how many are approved but carry no certificate.
fn csrs(s: &common::Server) -> (usize, usize) {
    let (code, body) = s.admin_curl(
        &[],
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
    );
    if code != 200 {
        return (0, 0);
    }
    let list: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let unsigned = items
        .iter()
        .filter(|c| {
            let approved = c["status"]["conditions"]
                .as_array()
                .is_some_and(|cs| cs.iter().any(|x| x["type"] == "Approved"));
            approved && c["status"]["certificate"].as_str().unwrap_or("").is_empty()
        })
        .count();
    (items.len(), unsigned)
}

#[test]
fn a_join_burst_rides_out_a_kill_9_of_its_only_server() {
    // Seen before the fix: the only server killed with kill -9 during a 3,000-node burst and
    // restarted a second later: 2,837 nodes joined; the rest gave up, most while waiting
    // for their certificate. A kubelet waits on until its deadline, so every node must join,
    // each with one CSR.
    const NODES: usize = 600;
    let tmp = tempfile::tempdir().expect("tempdir");
    let data = tmp.path().join("cluster");
    let mut s = common::Server::start_in(&data);
    let port = s.port();
    let out_file = tmp.path().join("results.json");
    let burst = Command::new(common::bin())
        .args(["bench", "join", "--server"])
        .arg(format!("https://127.0.0.1:{port}"))
        .args(["--token", &s.join_arg("--token")])
        .args([
            "--discovery-token-ca-cert-hash",
            &s.join_arg("--discovery-token-ca-cert-hash"),
        ])
        .args([
            "--nodes",
            &NODES.to_string(),
            "--concurrency",
            "60",
            "--output",
        ])
        .arg(&out_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bench");
    let mut at_kill = 0;
    assert!(
        common::eventually(Duration::from_secs(120), || {
            at_kill = csrs(&s).0;
            at_kill >= NODES / 6
        }),
        "the burst is under way"
    );
    s.kill();
    assert!(
        at_kill < NODES,
        "killed mid-burst: {at_kill} CSRs of {NODES}"
    );
    std::thread::sleep(Duration::from_secs(1)); // the outage a restart takes, as the issue saw
    let s = common::Server::start_on(&data, port, &[]);
    common::ok(
        common::wait_bounded(burst, Duration::from_secs(300)),
        "bench join",
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).expect("results")).expect("json");
    assert_eq!(report["admitted"], NODES, "every node joined: {report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    let (count, unsigned) = csrs(&s);
    assert_eq!(count, NODES, "one CSR per node, none created twice");
    assert_eq!(unsigned, 0, "no CSR is left approved but unsigned");
}

/// `scripts/bench-scaling --quick`, the many-core measurements' script, on this machine:
/// every run it makes (joins on all cores shared, the server and the load apart, `bench api`)
/// ends with figures and no errors in its summary, and each keeps its JSON.
#[test]
fn the_scaling_script_measures_every_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench-scaling");
    common::run_bounded(
        Command::new("bash")
            .arg(script)
            .args(["--quick", "--bin", common::bin(), "--out"])
            .arg(&out),
        Duration::from_secs(600),
        "scripts/bench-scaling --quick",
    );
    let summary = std::fs::read_to_string(out.join("summary.txt")).expect("summary.txt");
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let mut runs = vec![format!("api-{}", cores.min(2))];
    if cores >= 2 {
        runs.push("join-shared-2".into());
        runs.push(format!("join-split-{}-{}", cores / 2, cores / 2));
    }
    for run in &runs {
        let line = summary
            .lines()
            .find(|l| l.starts_with(&format!("{run}: ")))
            .unwrap_or_else(|| panic!("no {run} line in the summary:\n{summary}"));
        assert!(!line.contains("failed"), "{line}");
        if run.starts_with("join") {
            assert!(
                line.contains(" nodes/s, ") && line.ends_with("errors 0"),
                "{line}"
            );
        } else {
            assert!(line.contains("get x") && line.contains("/s"), "{line}");
        }
        assert!(out.join(format!("{run}.json")).exists(), "{run}.json");
    }
}
