//! What a failed join must not leave behind: every file it created — the kubeconfigs, the
//! client certificate and key, the `-current` link — is removed, and everything that was
//! there before it began is kept (a node that joins again keeps its old identity if the
//! new join fails).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// The files and directory entries present before a join.
#[derive(Debug)]
pub struct Before {
    files: Vec<(PathBuf, bool)>,
    dirs: Vec<(PathBuf, HashSet<std::ffi::OsString>)>,
}

impl Before {
    /// Notes whether each of `files` exists and what each of `dirs` holds.
    pub fn note(files: &[&Path], dirs: &[&Path]) -> Self {
        Self {
            files: files.iter().map(|f| (f.to_path_buf(), exists(f))).collect(),
            dirs: dirs.iter().map(|d| (d.to_path_buf(), entries(d))).collect(),
        }
    }

    /// Removes what was created since [`Before::note`]: the files that did not exist and
    /// the new entries of the directories (files and links; a link is removed, never its
    /// target). Returns what it could not remove.
    pub fn remove_created(&self) -> Vec<PathBuf> {
        let mut created: Vec<PathBuf> = self
            .files
            .iter()
            .filter(|(f, existed)| !existed && exists(f))
            .map(|(f, _)| f.clone())
            .collect();
        for (dir, before) in &self.dirs {
            created.extend(entries(dir).difference(before).map(|name| dir.join(name)));
        }
        created
            .into_iter()
            .filter(|p| std::fs::remove_file(p).is_err() && exists(p))
            .collect()
    }
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn entries(dir: &Path) -> HashSet<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_the_join_created_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let pki = root.path().join("pki");
        std::fs::create_dir(&pki).unwrap();
        let old_pem = pki.join("kubelet-client-2020.pem");
        std::fs::write(&old_pem, "old").unwrap();
        let kubeconfig = root.path().join("kubelet.conf");
        let bootstrap = root.path().join("bootstrap-kubelet.conf");
        std::fs::write(&bootstrap, "token").unwrap();
        let before = Before::note(&[&kubeconfig, &bootstrap], &[&pki]);

        std::fs::write(&kubeconfig, "new").unwrap();
        let new_pem = pki.join("kubelet-client-2026.pem");
        std::fs::write(&new_pem, "cert and key").unwrap();
        std::os::unix::fs::symlink(&new_pem, pki.join("kubelet-client-current.pem")).unwrap();

        assert!(before.remove_created().is_empty());
        let left: HashSet<_> = entries(&pki);
        assert_eq!(left, HashSet::from(["kubelet-client-2020.pem".into()]));
        assert!(!exists(&kubeconfig), "the new kubeconfig is gone");
        assert!(
            exists(&bootstrap),
            "what was there before is the caller's to remove"
        );
    }
}
