//! Records what `kubeboot version` and `/version` report of the build: the git commit, whether
//! the tree had uncommitted changes, the build date and the compiler. A build outside a git
//! checkout (a source tarball, a package build) takes them from `KUBEBOOT_GIT_COMMIT`,
//! `KUBEBOOT_GIT_TREE_STATE` and `SOURCE_DATE_EPOCH`. The build date is the commit's date
//! unless `SOURCE_DATE_EPOCH` says otherwise, so that a build is reproducible.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for f in ["HEAD", "index", "packed-refs"] {
            println!("cargo:rerun-if-changed={dir}/{f}");
        }
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
    }
    for var in [
        "KUBEBOOT_GIT_COMMIT",
        "KUBEBOOT_GIT_TREE_STATE",
        "SOURCE_DATE_EPOCH",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let commit = std::env::var("KUBEBOOT_GIT_COMMIT")
        .ok()
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_default();
    let state = std::env::var("KUBEBOOT_GIT_TREE_STATE")
        .ok()
        .unwrap_or_else(
            || match git(&["status", "--porcelain", "--untracked-files=no"]) {
                Some(s) if s.is_empty() => "clean".to_owned(),
                Some(_) => "dirty".to_owned(),
                None => String::new(),
            },
        );
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .or_else(|| git(&["log", "-1", "--format=%ct"]))
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0);
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let compiler = Command::new(rustc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("cargo:rustc-env=KUBEBOOT_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=KUBEBOOT_GIT_TREE_STATE={state}");
    println!("cargo:rustc-env=KUBEBOOT_BUILD_EPOCH={epoch}");
    println!("cargo:rustc-env=KUBEBOOT_RUSTC_VERSION={compiler}");
}
