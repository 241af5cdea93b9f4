//! PEM and kubeconfig files on disk: the only module of this crate that does I/O.
//! Every write is atomic (temporary file, fsync, rename, fsync of the directory), so a
//! crash leaves either the old file or the new one, never half of one.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// Who may read a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// 0600: private keys and kubeconfigs with credentials.
    Private,
    /// 0644: certificates and other public material.
    Public,
}

impl Mode {
    fn bits(self) -> u32 {
        match self {
            Mode::Private => 0o600,
            Mode::Public => 0o644,
        }
    }
}

/// Atomic writes made by this process, numbering their temporary files.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` atomically with the given mode.
pub fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    // A leftover of a crashed write with the same name goes first (unlinking a planted
    // symlink removes the link, never its target); then the file is created exclusively
    // (O_EXCL: never an existing file, never through a symlink) and O_NOFOLLOW besides.
    let _ = fs::remove_file(&tmp);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(mode.bits())
            .open(&tmp)?;
        // The mode given to open() is filtered by the umask; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode.bits()))?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates `dir` (and its missing parents) readable by this user only (0700), or tightens an
/// existing one to 0700 — where a server keeps what only it may read (its store holds every
/// Secret), as etcd and kubeadm keep their data directories. Returns the mode it had when
/// that mode let others in, so the caller can say it was changed.
pub fn private_dir(dir: &Path) -> io::Result<Option<u32>> {
    DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // A symlink to a directory is the directory (an operator's choice of where data lives).
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a directory", dir.display()),
        ));
    }
    let was = meta.permissions().mode() & 0o7777;
    if was & 0o077 == 0 {
        return Ok(None);
    }
    // A shared directory (sticky, like /tmp) is not this server's to close: refuse it.
    if was & 0o1000 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is a shared directory (mode {was:04o}): give a directory of this server's own",
                dir.display()
            ),
        ));
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(Some(was))
}

/// Reads a file as UTF-8 text, saying which file when it fails.
pub fn read_text(path: &Path) -> io::Result<String> {
    fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_files_are_0600_and_replace_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/ca.key");
        write_atomic(&p, b"one", Mode::Private).unwrap();
        write_atomic(&p, b"two", Mode::Private).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = fs::read_dir(p.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_symlink_planted_where_a_temporary_file_goes_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        let p = dir.path().join("ca.key");
        // Every name a write of this process could use next.
        let next = WRITES.load(Ordering::Relaxed);
        for n in next..next + 64 {
            let tmp = dir
                .path()
                .join(format!(".ca.key.tmp-{}-{n}", std::process::id()));
            std::os::unix::fs::symlink(&victim, tmp).unwrap();
        }
        write_atomic(&p, b"secret", Mode::Private).unwrap();
        assert_eq!(
            fs::read(&victim).unwrap(),
            b"keep",
            "the link's target is untouched"
        );
        assert_eq!(fs::read(&p).unwrap(), b"secret");
        assert!(!fs::symlink_metadata(&p).unwrap().file_type().is_symlink());
    }

    #[test]
    fn private_dirs_are_made_and_tightened_to_0700() {
        let root = tempfile::tempdir().unwrap();
        let fresh = root.path().join("a/b");
        assert_eq!(private_dir(&fresh).unwrap(), None);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&fresh), 0o700);
        assert_eq!(mode(&root.path().join("a")), 0o700);
        let old = root.path().join("old");
        fs::create_dir(&old).unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(private_dir(&old).unwrap(), Some(0o755));
        assert_eq!(mode(&old), 0o700);
        let file = root.path().join("file");
        fs::write(&file, b"").unwrap();
        assert!(private_dir(&file).is_err(), "a file is not a directory");
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&old, &link).unwrap();
        assert_eq!(
            private_dir(&link).unwrap(),
            None,
            "a link to a private dir is one"
        );
        let shared = root.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(
            private_dir(&shared).is_err(),
            "a sticky shared dir is refused"
        );
        assert_eq!(mode(&shared), 0o777, "and left as it was");
    }
}
