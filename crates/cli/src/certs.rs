//! Wiring of `kubeboot certs` and `kubeboot kubeconfig`.

use kubeboot_api::{Clock, SystemClock};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kubeboot_pki::Kubeconfig;
use kubeboot_pki::kubeconfig::Credential;

#[derive(Subcommand)]
pub(crate) enum CertsCommand {
    /// Print a commented starting spec.
    InitSpec,
    /// Generate (or complete) the PKI of a spec: CA, certificates, kubeconfigs, encryption config.
    Generate {
        /// The spec file.
        #[arg(long)]
        spec: PathBuf,
        /// The directory the PKI is written into (kubeadm's name; `--out` is accepted too).
        #[arg(long, default_value = "auth", alias = "out")]
        cert_dir: PathBuf,
        /// Replace existing keys (and so every certificate) instead of keeping them.
        #[arg(long)]
        force: bool,
    },
    /// Show when each certificate expires.
    CheckExpiration {
        /// The directory of the PKI (`--dir` is accepted too).
        #[arg(long, default_value = "auth", alias = "dir")]
        cert_dir: PathBuf,
    },
    /// Re-issue certificates from the same CA and keys.
    Renew {
        /// What to renew: all.
        what: String,
        /// The directory of the PKI (`--dir` is accepted too).
        #[arg(long, default_value = "auth", alias = "dir")]
        cert_dir: PathBuf,
        /// Validity of the renewed certificates.
        #[arg(long, default_value = "8760h")]
        validity: String,
    },
}

#[derive(Args)]
pub(crate) struct KubeconfigArgs {
    /// The CA certificate (PEM).
    #[arg(long)]
    ca: PathBuf,
    /// The client certificate (PEM).
    #[arg(long)]
    cert: PathBuf,
    /// The client key (PEM).
    #[arg(long)]
    key: PathBuf,
    /// The API server URL.
    #[arg(long)]
    server: String,
    /// The user name in the kubeconfig.
    #[arg(long)]
    user: String,
    /// The cluster name in the kubeconfig.
    #[arg(long, default_value = "kubernetes")]
    cluster: String,
}

pub(crate) fn run(cmd: CertsCommand) -> Result<()> {
    match cmd {
        CertsCommand::InitSpec => {
            kubeboot_api::out!("{}", kubeboot_certs::spec::STARTING_SPEC);
            Ok(())
        }
        CertsCommand::Generate {
            spec,
            cert_dir: out,
            force,
        } => {
            let text = std::fs::read_to_string(&spec)
                .with_context(|| format!("reading {}", spec.display()))?;
            let checked = match kubeboot_certs::spec::parse(&text) {
                Ok(c) => c,
                Err(errs) => {
                    for e in &errs {
                        eprintln!("{}:{}: {}", spec.display(), e.line, e.message);
                    }
                    bail!("{} has {} error(s)", spec.display(), errs.len());
                }
            };
            let outcome = kubeboot_certs::generate(&checked, &out, force, SystemClock.now())?;
            for f in &outcome.written {
                kubeboot_api::outln!("[certs] wrote {}", out.join(f).display());
            }
            kubeboot_api::outln!(
                "[certs] {} file(s) written, {} already up to date",
                outcome.written.len(),
                outcome.kept.len()
            );
            Ok(())
        }
        CertsCommand::CheckExpiration { cert_dir: dir } => {
            kubeboot_api::out!(
                "{}",
                kubeboot_certs::check_expiration(&dir, SystemClock.now())?
            );
            Ok(())
        }
        CertsCommand::Renew {
            what,
            cert_dir: dir,
            validity,
        } => {
            if what != "all" {
                bail!("only `renew all` is supported");
            }
            let validity =
                kubeboot_api::clock::parse_go_duration(&validity).map_err(anyhow::Error::msg)?;
            let outcome = kubeboot_certs::renew_all(&dir, validity, SystemClock.now())?;
            for f in &outcome.written {
                kubeboot_api::outln!("[renew] wrote {}", dir.join(f).display());
            }
            Ok(())
        }
    }
}

pub(crate) fn kubeconfig(args: KubeconfigArgs) -> Result<()> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let kc = Kubeconfig::new(
        &args.cluster,
        &args.server,
        &read(&args.ca)?,
        &args.user,
        Credential::ClientCert {
            cert_pem: read(&args.cert)?,
            key_pem: read(&args.key)?,
        },
    );
    kubeboot_api::out!("{}", kc.to_yaml());
    Ok(())
}
