//! What admitting nodes costs etcd in reads, counted by etcd itself (`/metrics`) while
//! `kubeboot bench join` admits nodes through a real server on a real etcd member: a join
//! reads etcd once, for the public cluster-info (a GET is read through to etcd, as
//! kube-apiserver reads it). The other lookups of a join come from the watch cache: the
//! namespace its `Issued` Event is created in (before the write and again after it), and
//! whether the cache has reached the version the node's watch starts from. `bench join`
//! reports what its etcd members spent on a run from the same counters.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{control_plane, eventually, ok, run_bounded};
use kubeboot_store::etcd_cluster::EtcdCluster;

/// The Range calls etcd has answered so far.
fn ranges(endpoint: &str) -> u64 {
    let out = Command::new("curl")
        .args(["-sf", &format!("{endpoint}/metrics")])
        .output()
        .expect("curl");
    let metrics = kubeboot_bench::etcd::parse(&ok(out, "etcd's /metrics"));
    metrics.calls.get("Range").copied().unwrap_or_default() as u64
}

#[test]
fn a_join_reads_etcd_once() {
    // Seen before: 3.08 Range calls per join (`--nodes 1000`): the Event's namespace read
    // from etcd before and after its create, and the store's revision read when the node's
    // watch arrived before the cache had its CSR.
    const NODES: u64 = 100;
    let cluster = EtcdCluster::start(1).expect("etcd starts (scripts/test installs etcd-server)");
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = control_plane(&tmp.path().join("cp"), &cluster.servers_flag(), None, &[]);
    // The controllers run (the bootstrap signer has signed cluster-info) before counting.
    let signed = || s.cluster_info("json").contains("jws-kubeconfig-");
    assert!(
        eventually(Duration::from_secs(30), signed),
        "cluster-info is signed"
    );
    let endpoint = &cluster.endpoints()[0];
    let before = ranges(endpoint);
    let out = run_bounded(
        Command::new(common::bin())
            .args(["bench", "join", "--server", &s.url])
            .args(["--token", &s.join_arg("--token")])
            .args([
                "--discovery-token-ca-cert-hash",
                &s.join_arg("--discovery-token-ca-cert-hash"),
            ])
            .args(["--nodes", &NODES.to_string(), "--concurrency", "10"]),
        Duration::from_secs(300),
        "bench join",
    );
    assert!(
        out.contains(&format!("nodes admitted: {NODES} of {NODES}")),
        "{out}"
    );
    let per_join = (ranges(endpoint) - before) as f64 / NODES as f64;
    // One for cluster-info; the rest is what runs meanwhile (the controllers' Lease).
    assert!(per_join <= 1.5, "{per_join:.2} etcd Range calls per join");
}

#[test]
fn bench_join_on_etcd_reports_what_etcd_spent() {
    let cluster = EtcdCluster::start(1).expect("etcd starts (scripts/test installs etcd-server)");
    let tmp = tempfile::tempdir().expect("tempdir");
    let results = tmp.path().join("results.json");
    let out = run_bounded(
        Command::new(common::bin())
            .args([
                "bench",
                "join",
                "--self",
                "--etcd-servers",
                &cluster.servers_flag(),
            ])
            .args(["--nodes", "50", "--concurrency", "10", "--output"])
            .arg(&results),
        Duration::from_secs(300),
        "bench join",
    );
    assert!(out.contains("etcd (1 member): CPU "), "{out}");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).expect("results")).expect("json");
    let etcd = &report["etcd"];
    assert_eq!(etcd["members"], 1, "{report}");
    assert!(
        etcd["cpu_ms_per_node"].as_f64().is_some_and(|ms| ms > 0.0),
        "{etcd}"
    );
    let calls = |method: &str| etcd["calls_per_node"][method].as_f64().unwrap_or_default();
    // Per node, not in all: four writes a join (the CSR, its approval, its certificate, the
    // Issued Event) and one read (cluster-info), with what the controllers do meanwhile
    // (their Leases; on a slow machine, the tail of their first lists). How few reads a
    // join makes is `a_join_reads_etcd_once`'s to check, on a longer run.
    assert!((4.0..10.0).contains(&calls("Txn")), "{etcd}");
    assert!((1.0..10.0).contains(&calls("Range")), "{etcd}");
}
