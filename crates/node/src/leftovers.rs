//! What a failed join must not leave behind: every file it created — the kubeconfigs, the
//! client certificate and key, the `-current` link — is removed, and everything that was
//! there before it began is put back as it was (a node that joins again keeps its old
//! identity, its kubeconfig and its `-current` link, if the new join fails).

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use kubeboot_pki::files::{Mode, write_atomic};

/// The files and directory entries present before a join, and what they held.
#[derive(Debug)]
pub struct Before {
    files: Vec<(PathBuf, Option<Saved>)>,
    dirs: Vec<(PathBuf, HashMap<OsString, Option<Saved>>)>,
}

/// What a path held: a file's bytes and whether it was private, or a link's target.
/// Regular files in a directory are not saved (a join only adds new ones there).
#[derive(Debug, PartialEq, Eq)]
enum Saved {
    File { contents: Vec<u8>, private: bool },
    Link(PathBuf),
}

impl Before {
    /// Notes what each of `files` holds and what each of `dirs` holds.
    pub fn note(files: &[&Path], dirs: &[&Path]) -> Self {
        Self {
            files: files
                .iter()
                .filter_map(|f| Some((f.to_path_buf(), saved(f, true)?)))
                .collect(),
            dirs: dirs
                .iter()
                .map(|d| {
                    let held = entries(d)
                        .into_iter()
                        .map(|name| {
                            let link = saved(&d.join(&name), false).flatten();
                            (name, link)
                        })
                        .collect();
                    (d.to_path_buf(), held)
                })
                .collect(),
        }
    }

    /// Puts things back as [`Before::note`] found them: removes the files that did not
    /// exist and the new entries of the directories (a link is removed, never its target),
    /// and writes back the files and links that were changed. Returns what it could not.
    pub fn restore(&self) -> Vec<PathBuf> {
        let mut failed = Vec::new();
        for (path, was) in &self.files {
            if !put_back(path, was.as_ref()) {
                failed.push(path.clone());
            }
        }
        for (dir, before) in &self.dirs {
            let now = entries(dir);
            for name in now.iter().filter(|n| !before.contains_key(*n)) {
                if !put_back(&dir.join(name), None) {
                    failed.push(dir.join(name));
                }
            }
            for (name, link) in before.iter().filter(|(_, l)| l.is_some()) {
                if !put_back(&dir.join(name), link.as_ref()) {
                    failed.push(dir.join(name));
                }
            }
        }
        failed
    }
}

/// What `path` holds now: `None` when it cannot be read; `Some(None)` when absent (or, for
/// `files == false`, a regular file).
fn saved(path: &Path, files: bool) -> Option<Option<Saved>> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Some(None);
    };
    if meta.file_type().is_symlink() {
        return Some(Some(Saved::Link(std::fs::read_link(path).ok()?)));
    }
    if !files {
        return Some(None);
    }
    Some(Some(Saved::File {
        contents: std::fs::read(path).ok()?,
        private: meta.permissions().mode() & 0o077 == 0,
    }))
}

/// Makes `path` hold `was` again (absent when `None`), touching it only if it differs;
/// whether it now does.
fn put_back(path: &Path, was: Option<&Saved>) -> bool {
    if saved(path, true).is_some_and(|now| now.as_ref() == was) {
        return true;
    }
    let put = match was {
        None => std::fs::remove_file(path),
        Some(Saved::File { contents, private }) => {
            let mode = if *private {
                Mode::Private
            } else {
                Mode::Public
            };
            write_atomic(path, contents, mode)
        }
        Some(Saved::Link(target)) => {
            // A new link beside it, renamed over it: the link is never missing.
            let beside = path.with_extension("restored");
            let _ = std::fs::remove_file(&beside);
            std::os::unix::fs::symlink(target, &beside)
                .and_then(|()| std::fs::rename(&beside, path))
        }
    };
    put.is_ok() || (was.is_none() && !exists(path))
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

fn entries(dir: &Path) -> HashSet<OsString> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_join_created_is_removed_and_what_it_changed_put_back() {
        let root = tempfile::tempdir().unwrap();
        let pki = root.path().join("pki");
        std::fs::create_dir(&pki).unwrap();
        let old_pem = pki.join("kubelet-client-2020.pem");
        std::fs::write(&old_pem, "old").unwrap();
        let current = pki.join("kubelet-client-current.pem");
        std::os::unix::fs::symlink(&old_pem, &current).unwrap();
        let kubeconfig = root.path().join("kubelet.conf");
        write_atomic(&kubeconfig, b"old cluster", Mode::Private).unwrap();
        let bootstrap = root.path().join("bootstrap-kubelet.conf");
        let before = Before::note(&[&kubeconfig, &bootstrap], &[&pki]);

        std::fs::write(&bootstrap, "token").unwrap();
        write_atomic(&kubeconfig, b"new cluster", Mode::Public).unwrap();
        let new_pem = pki.join("kubelet-client-2026.pem");
        std::fs::write(&new_pem, "cert and key").unwrap();
        std::fs::remove_file(&current).unwrap();
        std::os::unix::fs::symlink(&new_pem, &current).unwrap();

        assert_eq!(before.restore(), Vec::<PathBuf>::new());
        let left: HashSet<_> = entries(&pki);
        assert_eq!(
            left,
            HashSet::from([
                "kubelet-client-2020.pem".into(),
                "kubelet-client-current.pem".into()
            ])
        );
        assert_eq!(std::fs::read_link(&current).unwrap(), old_pem);
        assert_eq!(std::fs::read(&kubeconfig).unwrap(), b"old cluster");
        let mode = std::fs::metadata(&kubeconfig).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private again");
        assert!(!exists(&bootstrap), "what the join made is gone");
    }

    #[test]
    fn a_first_join_that_fails_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let pki = root.path().join("pki");
        let kubeconfig = root.path().join("kubelet.conf");
        let before = Before::note(&[&kubeconfig], &[&pki]);
        std::fs::create_dir(&pki).unwrap();
        std::fs::write(pki.join("kubelet-client-2026.pem"), "x").unwrap();
        std::fs::write(&kubeconfig, "new").unwrap();
        assert_eq!(before.restore(), Vec::<PathBuf>::new());
        assert!(entries(&pki).is_empty());
        assert!(!exists(&kubeconfig));
    }
}
