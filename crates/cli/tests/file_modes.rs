//! What the server leaves on disk is private to its user: the data dir and the store hold
//! every Secret (bootstrap tokens included), keys and kubeconfigs hold credentials.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::Server;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

fn assert_private(dir: &Path) {
    let db = dir.join("db");
    for (path, want) in [
        (dir.to_path_buf(), 0o700),
        (db.clone(), 0o700),
        (db.join("state.db"), 0o600),
        (db.join("state.db-wal"), 0o600),
        (db.join("state.db-shm"), 0o600),
        (dir.join("pki/ca.key"), 0o600),
        (dir.join("pki/apiserver.key"), 0o600),
        (dir.join("admin.conf"), 0o600),
        (dir.join("controller-manager.conf"), 0o600),
    ] {
        assert_eq!(mode(&path), want, "{}", path.display());
    }
}

#[test]
fn a_new_data_dir_and_its_store_are_private() {
    let s = Server::start();
    assert_private(&s.dir);
}

#[test]
fn a_data_dir_left_open_by_an_earlier_version_is_made_private() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("cluster");
    drop(Server::start_in(&dir));
    let open = |p: &Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).expect("chmod")
    };
    open(&dir, 0o755);
    open(&dir.join("db"), 0o755);
    for f in ["state.db", "state.db-wal", "state.db-shm"] {
        let p = dir.join("db").join(f);
        if p.exists() {
            open(&p, 0o644);
        }
    }
    let s = Server::start_in(&dir);
    assert_private(&s.dir);
}
