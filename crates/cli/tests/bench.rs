//! `kubeboot bench join --self` as a smoke test: every simulated node is admitted with a
//! certificate that authenticates it, and nothing fails. No time is asserted.

mod common;

use std::process::Command;
use std::time::Duration;

#[test]
fn bench_join_admits_every_node() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out_file = tmp.path().join("results.json");
    let plot = tmp.path().join("latency.svg");
    let child = Command::new(common::bin())
        .args([
            "bench",
            "join",
            "--self",
            "--nodes",
            "200",
            "--concurrency",
            "20",
            "--plot",
        ])
        .arg(&plot)
        .arg("--output")
        .arg(&out_file)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("bench");
    let out = common::wait_bounded(child, Duration::from_secs(300));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_file).expect("results")).expect("json");
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
    let svg = std::fs::read_to_string(&plot).expect("the plot is written");
    assert_eq!(
        svg.matches("<circle").count(),
        200,
        "a dot per admitted node"
    );
}
