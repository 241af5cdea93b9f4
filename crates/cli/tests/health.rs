//! The health endpoints as kube-apiserver answers them, on a real etcd: `ok` while the
//! store answers, each check listed with `?verbose`, one check at its own path, and a 500
//! naming the failed `etcd` check once etcd is gone. Seen before: `/readyz` said `ok` while
//! every write failed for want of etcd, and `/readyz/etcd` was a 404.

mod common;

use std::time::Duration;

use common::{control_plane, eventually};
use kubeboot_store::etcd_cluster::EtcdCluster;

#[test]
fn readiness_follows_the_store() {
    let mut cluster =
        EtcdCluster::start(1).expect("etcd starts (scripts/test installs etcd-server)");
    let tmp = tempfile::tempdir().expect("tempdir");
    let s = control_plane(&tmp.path().join("cp"), &cluster.servers_flag(), None, &[]);
    assert_eq!(s.curl(&[], "/readyz"), (200, "ok".to_owned()));
    let (code, verbose) = s.curl(&[], "/readyz?verbose");
    assert_eq!(code, 200, "{verbose}");
    assert_eq!(
        verbose,
        "[+]ping ok\n[+]log ok\n[+]etcd ok\nreadyz check passed\n"
    );
    // One check at its own path: `system:monitoring`'s (`/livez/*`), not anonymous.
    assert_eq!(s.curl(&[], "/livez/etcd").0, 403);
    assert_eq!(s.admin_curl(&[], "/livez/etcd"), (200, "ok".to_owned()));
    assert_eq!(s.admin_curl(&[], "/readyz/nothing").0, 404);
    cluster.kill(0);
    assert!(
        eventually(Duration::from_secs(30), || s.curl(&[], "/readyz").0 == 500),
        "not ready without etcd"
    );
    let (code, body) = s.curl(&[], "/livez");
    assert_eq!(code, 500, "{body}");
    assert!(
        body.contains("[-]etcd failed: reason withheld\n")
            && body.ends_with("livez check failed\n"),
        "{body}"
    );
    assert_eq!(s.admin_curl(&[], "/readyz/etcd").0, 500);
    assert_eq!(s.admin_curl(&[], "/readyz/ping"), (200, "ok".to_owned()));
}
