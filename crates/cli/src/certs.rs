//! Wiring of `kubeboot certs` and `kubeboot kubeconfig`.

use kubeboot_api::{Clock, SystemClock};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kubeboot_certs::Layout;
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
        /// The directory the kubeconfigs are written into (default: the cert dir).
        #[arg(long)]
        kubeconfig_dir: Option<PathBuf>,
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
        /// The directory of the kubeconfigs that carry the certificates (default: the cert dir).
        #[arg(long)]
        kubeconfig_dir: Option<PathBuf>,
        /// Validity of the renewed certificates.
        #[arg(long, default_value = "8760h")]
        validity: String,
    },
    /// Rotate the CA of the PKI in three phases, copying the files to the machines between
    /// them as each phase prints: prepare (every kubeconfig trusts a new CA beside the
    /// old), switch (every certificate re-issued from the new CA, same keys and names),
    /// finish (the old CA is trusted no more).
    RotateCa(RotateCaArgs),
}

#[derive(Args)]
pub(crate) struct RotateCaArgs {
    /// The directory of the PKI.
    #[arg(long, default_value = "auth", alias = "dir")]
    cert_dir: PathBuf,
    /// The directory of the kubeconfigs (default: the cert dir).
    #[arg(long)]
    kubeconfig_dir: Option<PathBuf>,
    /// Which phase to run.
    #[arg(long, value_enum)]
    phase: RotateCaPhase,
    /// prepare: the new CA's certificate (PEM), instead of one made here.
    #[arg(long, requires = "ca_key_file")]
    ca_cert_file: Option<PathBuf>,
    /// prepare: the new CA's key (PEM).
    #[arg(long, requires = "ca_cert_file")]
    ca_key_file: Option<PathBuf>,
    /// prepare: the new CA's key algorithm (ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072,
    /// rsa-4096, ed25519).
    #[arg(long, default_value = "ecdsa-p256")]
    key_algorithm: String,
    /// finish: drop the old CA although certificates or kubeconfigs of it remain (each is
    /// then refused wherever the new bundle is trusted).
    #[arg(long)]
    force: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RotateCaPhase {
    Prepare,
    Switch,
    Finish,
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
            cert_dir,
            kubeconfig_dir,
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
            let layout = Layout {
                cert_dir: &cert_dir,
                kubeconfig_dir: kubeconfig_dir.as_deref().unwrap_or(&cert_dir),
            };
            let outcome = kubeboot_certs::generate(&checked, layout, force, SystemClock.now())?;
            for f in &outcome.written {
                kubeboot_api::outln!("[certs] wrote {}", layout.path_of(f).display());
            }
            kubeboot_api::outln!(
                "[certs] {} file(s) written, {} already up to date",
                outcome.written.len(),
                outcome.kept.len()
            );
            Ok(())
        }
        CertsCommand::RotateCa(args) => rotate_ca(args),
        CertsCommand::CheckExpiration { cert_dir: dir } => {
            kubeboot_api::out!(
                "{}",
                kubeboot_certs::check_expiration(&dir, SystemClock.now())?
            );
            Ok(())
        }
        CertsCommand::Renew {
            what,
            cert_dir,
            kubeconfig_dir,
            validity,
        } => {
            if what != "all" {
                bail!("only `renew all` is supported");
            }
            let validity =
                kubeboot_api::clock::parse_go_duration(&validity).map_err(anyhow::Error::msg)?;
            let layout = Layout {
                cert_dir: &cert_dir,
                kubeconfig_dir: kubeconfig_dir.as_deref().unwrap_or(&cert_dir),
            };
            let outcome = kubeboot_certs::renew_all(layout, validity, SystemClock.now())?;
            for f in &outcome.written {
                kubeboot_api::outln!("[renew] wrote {}", layout.path_of(f).display());
            }
            Ok(())
        }
    }
}

fn rotate_ca(args: RotateCaArgs) -> Result<()> {
    use kubeboot_certs::rotate::RotatePhase;
    let layout = Layout {
        cert_dir: &args.cert_dir,
        kubeconfig_dir: args.kubeconfig_dir.as_deref().unwrap_or(&args.cert_dir),
    };
    let phase = match args.phase {
        RotateCaPhase::Prepare => RotatePhase::Prepare,
        RotateCaPhase::Switch => RotatePhase::Switch,
        RotateCaPhase::Finish => RotatePhase::Finish,
    };
    let alg = kubeboot_certs::spec::key_algorithm(&args.key_algorithm).with_context(|| {
        format!(
            "--key-algorithm {:?} is not one of ecdsa-p256, ecdsa-p384, rsa-2048, rsa-3072, rsa-4096, ed25519",
            args.key_algorithm
        )
    })?;
    if args.ca_cert_file.is_some() && phase != RotatePhase::Prepare {
        bail!("--ca-cert-file and --ca-key-file go with --phase prepare");
    }
    let given = crate::ca::read_ca_pair(args.ca_cert_file.as_deref(), args.ca_key_file.as_deref())?;
    let outcome = kubeboot_certs::rotate::rotate_ca(
        layout,
        phase,
        given,
        alg,
        args.force,
        SystemClock.now(),
    )?;
    for f in &outcome.written {
        kubeboot_api::outln!("[rotate-ca] wrote {}", layout.path_of(f).display());
    }
    kubeboot_api::outln!("[rotate-ca] next, in this order:");
    for (i, step) in kubeboot_certs::rotate::next_steps(phase, layout)
        .iter()
        .enumerate()
    {
        kubeboot_api::outln!("  {}. {step}", i + 1);
    }
    Ok(())
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
