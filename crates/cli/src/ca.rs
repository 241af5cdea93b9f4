//! `kubeboot ca`: the cluster CA's rotation on a control plane's data dirs (the phases are
//! `kubeboot_apiserver::ca_rotation`), with what lives in the API kept in step:
//! cluster-info's CA (re-signed for every token by the bootstrap signer), a check after
//! each phase that every running server took the new files, and, before the old CA goes,
//! the nodes and kubeconfigs still holding its certificates. A control plane of several
//! servers has one data dir each (`--data-dir` once per server): each phase runs on every
//! one of them, with the same new CA, before the next phase starts.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kubeboot_api::{Clock, SystemClock};
use kubeboot_apiserver::ca_rotation::{Phase, Rotation};
use kubeboot_apiserver::datadir::DataDir;
use kubeboot_client::Client;
use kubeboot_pki::chain::{first_der, issued_by};
use kubeboot_pki::{CertificateAuthority, Kubeconfig};
use serde_json::Value;

mod plan;

use plan::{DirState, PhaseArg, check_finish, common_target, phases_for_all, states};

#[derive(Subcommand)]
pub(crate) enum CaCommand {
    /// Rotate the cluster CA: prepare (trust a new CA beside the old), switch (the new CA
    /// signs the serving certificate, the kubeconfigs and every CSR), finish (the old CA is
    /// trusted no more).
    Rotate(RotateArgs),
    /// Show where a CA rotation stands, and who still holds a certificate of the old CA.
    Status(DirArgs),
}

#[derive(Args)]
pub(crate) struct DirArgs {
    /// The data dir of the kubeboot server on this machine.
    #[arg(long, default_value = "kubeboot-data")]
    data_dir: PathBuf,
}

#[derive(Args)]
pub(crate) struct RotateArgs {
    /// The data dir of each kubeboot server of the control plane (repeat it for each
    /// server); each phase runs on every one before the next.
    #[arg(long = "data-dir", default_value = "kubeboot-data")]
    data_dirs: Vec<PathBuf>,
    /// Which phase to run; `all` runs the three in order.
    #[arg(long, value_enum)]
    phase: PhaseArg,
    /// prepare: the new CA's certificate (PEM), instead of one made here.
    #[arg(long, requires = "ca_key_file")]
    ca_cert_file: Option<PathBuf>,
    /// prepare: the new CA's key (PEM).
    #[arg(long, requires = "ca_cert_file")]
    ca_key_file: Option<PathBuf>,
    /// finish: how long to wait for the nodes and kubeconfigs still on the old CA to renew
    /// before stopping (0: do not wait).
    #[arg(long, default_value = "5m0s")]
    timeout: String,
    /// finish: drop the old CA even though something still holds its certificates (each
    /// is then refused by the API server until it gets a certificate of the new CA).
    #[arg(long)]
    force: bool,
}

pub(crate) async fn run(cmd: CaCommand) -> Result<()> {
    match cmd {
        CaCommand::Rotate(args) => rotate(args).await,
        CaCommand::Status(args) => status(&DataDir::new(&args.data_dir)).await,
    }
}

async fn rotate(args: RotateArgs) -> Result<()> {
    let dirs: Vec<DataDir> = args.data_dirs.iter().map(DataDir::new).collect();
    let timeout = kubeboot_api::clock::parse_go_duration(&args.timeout)
        .map_err(|e| anyhow::anyhow!("--timeout: {e}"))?;
    let mut given = given_ca(&args)?;
    let phases: &[PhaseArg] = match args.phase {
        PhaseArg::All => {
            let states = states(&dirs)?;
            let first = Rotation::read(&dirs[0])?;
            // A finish stopped before cluster-info dropped the old CA leaves every dir
            // idle: that rotation is completed, not a new one started.
            if states.iter().all(|s| s.phase == Phase::Idle)
                && publish_bundle(&dirs[0], &first).await?
            {
                kubeboot_api::outln!(
                    "[ca] finished the rotation under way: cluster-info now publishes only the signing CA. Run --phase all again to start another"
                );
                return Ok(());
            }
            phases_for_all(&states)
        }
        PhaseArg::Prepare => &[PhaseArg::Prepare],
        PhaseArg::Switch => &[PhaseArg::Switch],
        PhaseArg::Finish => &[PhaseArg::Finish],
    };
    for (i, phase) in phases.iter().enumerate() {
        if *phase == PhaseArg::Switch && i > 0 {
            // Nodes look at the published bundle every 5 s: a switch before they took the
            // new CA would leave them unable to verify the server.
            kubeboot_api::outln!(
                "[ca] giving the nodes {ADOPT_GRACE:?} to trust the new CA before the switch"
            );
            tokio::time::sleep(ADOPT_GRACE).await;
        }
        let states = states(&dirs)?;
        let target = common_target(&dirs, &states)?;
        match phase {
            PhaseArg::Prepare => {
                if let Some(t) = &target {
                    // The CA another dir prepared already, with its key from that dir.
                    let held = dirs
                        .iter()
                        .filter_map(|d| Rotation::read(d).ok())
                        .find_map(|r| r.prepared().filter(|c| c.cert_pem() == t).map(copy_ca))
                        .transpose()?;
                    given = given.or(held);
                }
                for dir in &dirs {
                    prepare(dir, &mut given).await?;
                }
                kubeboot_api::outln!(
                    "[ca] prepared: the new CA is trusted beside the old one, which still signs"
                );
            }
            PhaseArg::Switch => {
                switch(&dirs, &states, target.as_deref()).await?;
                kubeboot_api::outln!(
                    "[ca] switched: the new CA signs the serving certificate, the kubeconfigs and every new certificate; nodes renew theirs"
                );
            }
            PhaseArg::Finish
                if target.is_none() && states.iter().all(|s| s.phase == Phase::Idle) =>
            {
                // Finished already, or never begun: nothing to say it did.
                kubeboot_api::outln!("[ca] no CA rotation is under way: nothing to finish");
            }
            PhaseArg::Finish => {
                check_finish(&dirs, &states, target.as_deref())?;
                let left = wait_for_renewals(&dirs, timeout).await?;
                for dir in &dirs {
                    Rotation::read(dir)?.finish(&left, args.force)?;
                    publish_bundle(dir, &Rotation::read(dir)?).await?;
                }
                kubeboot_api::outln!("[ca] finished: only the new CA is trusted");
            }
            PhaseArg::All => unreachable!("expanded above"),
        }
    }
    Ok(())
}

fn copy_ca(ca: &CertificateAuthority) -> Result<CertificateAuthority> {
    Ok(CertificateAuthority::from_pem(
        ca.cert_pem(),
        &ca.key_pem(),
    )?)
}

/// Prepares `dir` with `given` (made here when `None`), waits until its server trusts
/// the new CA and publishes the bundle; `given` is then the new CA, for the next dir.
async fn prepare(dir: &DataDir, given: &mut Option<CertificateAuthority>) -> Result<()> {
    Rotation::read(dir)?.prepare(given.take(), SystemClock.now())?;
    let new = Rotation::read(dir)?;
    if let Some(ca) = new.prepared() {
        *given = Some(copy_ca(ca)?);
    }
    wait_until_trusted(dir, &new).await?;
    publish_bundle(dir, &new).await?;
    Ok(())
}

/// Switches every dir to `target`, the CA the rotation prepared; a dir that already
/// finished with it (a finish stopped part way) is past it.
async fn switch(dirs: &[DataDir], states: &[DirState], target: Option<&str>) -> Result<()> {
    for (dir, s) in dirs.iter().zip(states) {
        if target.is_some_and(|t| s.finished_with(t)) {
            continue;
        }
        Rotation::read(dir)?.switch(SystemClock.now())?;
        let new = Rotation::read(dir)?;
        wait_until_served(dir, &new).await?;
        publish_bundle(dir, &new).await?;
    }
    Ok(())
}

/// The CA `--ca-cert-file`/`--ca-key-file` name, checked.
fn given_ca(args: &RotateArgs) -> Result<Option<CertificateAuthority>> {
    if args.ca_cert_file.is_some() && args.phase != PhaseArg::Prepare && args.phase != PhaseArg::All
    {
        bail!("--ca-cert-file and --ca-key-file go with --phase prepare (or all)");
    }
    read_ca_pair(args.ca_cert_file.as_deref(), args.ca_key_file.as_deref())
}

/// The CA an operator placed: its certificate and key files, checked to be a CA and a
/// pair; `None` when neither is given.
pub(crate) fn read_ca_pair(
    cert: Option<&std::path::Path>,
    key: Option<&std::path::Path>,
) -> Result<Option<CertificateAuthority>> {
    let (Some(cert), Some(key)) = (cert, key) else {
        return Ok(None);
    };
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
    };
    let ca = kubeboot_pki::chain::given_ca(&read(cert)?, &read(key)?)
        .with_context(|| format!("{} / {}", cert.display(), key.display()))?;
    Ok(Some(ca))
}

fn read_admin(dir: &DataDir) -> Result<Kubeconfig> {
    let path = dir.admin_conf();
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Kubeconfig::from_yaml(&text).with_context(|| path.display().to_string())
}

/// A client as the admin, trusting `trust` (PEM) for the serving certificate.
fn admin(dir: &DataDir, trust: Option<&str>) -> Result<Client> {
    let mut kc = read_admin(dir)?;
    if let Some(pem) = trust {
        kc.set_certificate_authority_data(pem);
    }
    Ok(Client::from_kubeconfig(&kc)?.with_timeout(Duration::from_secs(10)))
}

/// How long `--phase all` waits between prepare and switch: several times the node
/// agents' look at the published bundle (5 s).
const ADOPT_GRACE: Duration = Duration::from_secs(20);

/// How long the server has to take changed files.
const TAKE_LIMIT: Duration = Duration::from_secs(30);

/// Waits until `probe` answers, at most [`TAKE_LIMIT`]; the last error otherwise.
async fn until_ok<F, Fut>(what: &str, mut probe: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let deadline = tokio::time::Instant::now() + TAKE_LIMIT;
    loop {
        match probe().await {
            Ok(()) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                return Err(e.context(format!(
                    "the server did not {what} within {TAKE_LIMIT:?}: is it running on this data dir? Start it and run the phase again"
                )));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// After prepare: the server accepts a client certificate of the new CA (a short-lived
/// one made for the check, which `/version` answers as anyone authenticated).
async fn wait_until_trusted(dir: &DataDir, r: &Rotation) -> Result<()> {
    let Some(next) = r.prepared() else {
        return Ok(());
    };
    let server = admin_server(dir)?;
    let probe = kubeboot_apiserver::datadir::client_kubeconfig(
        next,
        &server,
        "kubeboot:ca-rotation-check",
        vec![],
        SystemClock.now(),
        Duration::from_secs(600),
    )
    .map_err(anyhow::Error::msg)?;
    let mut probe = probe;
    probe.set_certificate_authority_data(&r.bundle());
    until_ok("take the new client CA bundle", || async {
        let client = Client::from_kubeconfig(&probe)?.with_timeout(Duration::from_secs(10));
        let _: Value = client.get("/version").await?;
        Ok(())
    })
    .await
}

fn admin_server(dir: &DataDir) -> Result<String> {
    let kc = read_admin(dir)?;
    let (cluster, _) = kc.current()?;
    Ok(cluster.server.clone())
}

/// After switch: the server presents a certificate of the new CA (a client trusting only
/// the new CA connects) and accepts the admin's new certificate.
async fn wait_until_served(dir: &DataDir, r: &Rotation) -> Result<()> {
    let new = r.signing().cert_pem().to_owned();
    until_ok("serve a certificate of the new CA", || async {
        let client = admin(dir, Some(&new))?;
        let _: Value = client
            .get("/api/v1/namespaces/kube-public/configmaps/cluster-info")
            .await?;
        Ok(())
    })
    .await
}

/// Puts the trusted bundle in cluster-info's kubeconfig, which nodes discover the CA
/// from (the bootstrap signer signs it again for every token).
async fn publish_bundle(dir: &DataDir, r: &Rotation) -> Result<bool> {
    const PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";
    let client = admin(dir, None)?;
    let mut cm: Value = client.get(PATH).await.context("reading cluster-info")?;
    let Some(text) = cm.pointer("/data/kubeconfig").and_then(Value::as_str) else {
        bail!("kube-public/cluster-info holds no kubeconfig");
    };
    let mut kc = Kubeconfig::from_yaml(text).context("cluster-info's kubeconfig")?;
    let before = kc.to_yaml();
    kc.set_certificate_authority_data(&r.bundle());
    if kc.to_yaml() == before {
        return Ok(false);
    }
    cm["data"]["kubeconfig"] = Value::String(kc.to_yaml());
    let _: Value = client
        .update(PATH, &cm)
        .await
        .context("updating cluster-info")?;
    Ok(true)
}

/// Who still holds a certificate of an old CA: the kubeconfigs of each switched data dir,
/// and each user (node) whose newest certificate issued through the CSR API is of an old
/// CA. Empty when no dir is switched.
async fn still_on_old(dirs: &[DataDir]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut switched = None;
    for dir in dirs {
        let r = Rotation::read(dir)?;
        if r.phase() == Phase::Switched {
            out.extend(r.kubeconfigs_on_old_ca()?);
            switched.get_or_insert((dir, r));
        }
    }
    let Some((dir, r)) = switched else {
        return Ok(out);
    };
    let client = admin(dir, None)?;
    let list: Value = client
        .get("/apis/certificates.k8s.io/v1/certificatesigningrequests")
        .await
        .context("listing CSRs")?;
    let issued = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(issued_cert);
    for (holder, cert) in newest_per_holder(issued) {
        if r.on_old_ca(&cert) {
            out.push(holder);
        }
    }
    Ok(out)
}

/// `(who, certificate PEM, not before)` of an issued CSR.
fn issued_cert(csr: &Value) -> Option<(String, String, i64)> {
    use base64::Engine;
    let b64 = csr.pointer("/status/certificate")?.as_str()?;
    let pem =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).ok()?).ok()?;
    let der = first_der(&pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    let signer = csr
        .pointer("/spec/signerName")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = if signer.ends_with("kubelet-serving") {
        "serving"
    } else {
        "client"
    };
    Some((
        format!("{cn} ({kind} certificate)"),
        pem,
        cert.validity().not_before.timestamp(),
    ))
}

fn newest_per_holder(issued: impl Iterator<Item = (String, String, i64)>) -> Vec<(String, String)> {
    let mut newest: std::collections::BTreeMap<String, (i64, String)> = Default::default();
    for (holder, pem, since) in issued {
        let e = newest.entry(holder).or_insert((i64::MIN, String::new()));
        if since >= e.0 {
            *e = (since, pem);
        }
    }
    newest.into_iter().map(|(h, (_, pem))| (h, pem)).collect()
}

/// Waits until nothing holds a certificate of an old CA, at most `timeout`; what still
/// does then.
async fn wait_for_renewals(dirs: &[DataDir], timeout: Duration) -> Result<Vec<String>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut shown = Vec::new();
    loop {
        let left = still_on_old(dirs).await?;
        if left.is_empty() || tokio::time::Instant::now() >= deadline {
            return Ok(left);
        }
        if left != shown {
            kubeboot_api::outln!(
                "[ca] waiting for {} to renew onto the new CA: {}",
                left.len(),
                left.join(", ")
            );
            shown = left;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

async fn status(dir: &DataDir) -> Result<()> {
    let r = Rotation::read(dir)?;
    kubeboot_api::outln!("phase: {}", r.phase());
    kubeboot_api::outln!("signing CA: {}", describe(r.signing().cert_pem()));
    for other in r.others() {
        kubeboot_api::outln!("also trusted: {}", describe(other));
    }
    if r.phase() == Phase::Switched {
        let left = still_on_old(std::slice::from_ref(dir)).await?;
        kubeboot_api::outln!(
            "still on the old CA: {}",
            if left.is_empty() {
                "none".to_owned()
            } else {
                left.join(", ")
            }
        );
    }
    let client = admin(dir, None)?;
    if let Ok(list) = client
        .get::<Value>("/apis/certificates.k8s.io/v1/certificatesigningrequests")
        .await
    {
        let issued = list["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(issued_cert);
        let newest = newest_per_holder(issued);
        let on_signing = |(_, c): &(String, String)| issued_by(c, r.signing().cert_der());
        let nodes: Vec<_> = newest
            .iter()
            .filter(|(h, _)| h.starts_with("system:node:") && h.ends_with("(client certificate)"))
            .collect();
        let signing = nodes.iter().filter(|h| on_signing(h)).count();
        kubeboot_api::outln!(
            "nodes (by their newest client certificate): {signing} on the signing CA, {} on another",
            nodes.len() - signing
        );
        let signing = newest.iter().filter(|c| on_signing(c)).count();
        kubeboot_api::outln!(
            "certificates issued through CSRs (newest per holder): {signing} of the signing CA, {} of another",
            newest.len() - signing
        );
    }
    Ok(())
}

/// `CN=kubernetes, not after 2036-12-03T10:00:00Z, sha256:…`.
fn describe(pem: &str) -> String {
    let Some(der) = first_der(pem) else {
        return "unreadable".into();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(&der) else {
        return "unreadable".into();
    };
    format!(
        "{}, not after {}, {}",
        cert.subject(),
        cert.validity().not_after,
        kubeboot_pki::pin::cert_pin(&der).unwrap_or_default()
    )
}
