//! What the binary says of itself, from the same definitions as `--help`: `kubeboot
//! version` (as `kubeadm version`), `kubeboot completion bash|zsh|fish` (as `kubectl
//! completion`) and the man pages, one per command (`kubeboot-join(1)`), that packages
//! install.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, CommandFactory, ValueEnum};

/// `kubeboot version`.
#[derive(Args)]
pub(crate) struct VersionArgs {
    /// Output format: json, yaml or short (the version alone); the default is kubeadm's
    /// one line.
    #[arg(short, long)]
    output: Option<String>,
}

/// `kubeboot completion`.
#[derive(Args)]
pub(crate) struct CompletionArgs {
    /// The shell.
    shell: Shell,
}

#[derive(Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// `kubeboot man`.
#[derive(Args)]
pub(crate) struct ManArgs {
    /// Where to write the pages (`kubeboot.1`, `kubeboot-join.1`, …).
    #[arg(long)]
    dir: PathBuf,
}

pub(crate) fn version(args: &VersionArgs) -> Result<()> {
    let info = kubeboot_api::version::info();
    let whole = serde_json::json!({ "clientVersion": info });
    match args.output.as_deref() {
        None | Some("") => kubeboot_api::outln!(
            "kubeboot version: {}",
            kubeboot_api::version::go_struct(&info)
        ),
        Some("short") => kubeboot_api::outln!("{}", info["gitVersion"].as_str().unwrap_or("")),
        Some("json") => kubeboot_api::outln!("{}", serde_json::to_string_pretty(&whole)?),
        Some("yaml") => kubeboot_api::out!("{}", serde_saphyr::to_string(&whole)?),
        Some(other) => bail!(
            "invalid output format: {other}; it must be one of: json, yaml, short, or left out"
        ),
    }
    Ok(())
}

pub(crate) fn completion(args: &CompletionArgs) {
    let mut cmd = crate::Cli::command();
    let mut script = Vec::new();
    match args.shell {
        Shell::Bash => clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut cmd,
            "kubeboot",
            &mut script,
        ),
        Shell::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, "kubeboot", &mut script)
        }
        Shell::Fish => clap_complete::generate(
            clap_complete::Shell::Fish,
            &mut cmd,
            "kubeboot",
            &mut script,
        ),
    }
    kubeboot_api::out!("{}", String::from_utf8_lossy(&script));
}

/// Writes a page for `kubeboot` and one for each command and sub-command, named as git
/// names its own (`kubeboot-certs-generate.1`).
pub(crate) fn man(args: &ManArgs) -> Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let cmd = crate::Cli::command();
    let mut written = Vec::new();
    write_pages(&cmd, ("kubeboot", "kubeboot"), &args.dir, &mut written)?;
    kubeboot_api::outln!(
        "{} man pages written to {}",
        written.len(),
        args.dir.display()
    );
    Ok(())
}

/// `names`: the page's name (`kubeboot-certs`) and the command as typed (`kubeboot certs`).
fn write_pages(
    cmd: &clap::Command,
    names: (&str, &str),
    dir: &Path,
    written: &mut Vec<PathBuf>,
) -> Result<()> {
    let (page_name, typed) = names;
    let cmd = cmd
        .clone()
        .name(page_name.to_owned())
        .bin_name(typed.to_owned());
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
    let path = dir.join(format!("{page_name}.1"));
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    written.push(path);
    let shown = cmd
        .get_subcommands()
        .filter(|s| s.get_name() != "help" && !s.is_hide_set());
    for sub in shown {
        let sub_page = format!("{page_name}-{}", sub.get_name());
        let sub_typed = format!("{typed} {}", sub.get_name());
        write_pages(sub, (&sub_page, &sub_typed), dir, written)?;
    }
    Ok(())
}
