//! Wiring of the controller-manager: kube-controller-manager's flags (controllers,
//! signing, leader election) mapped onto `kubeboot_controllers::manager`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use kubeboot_api::SystemClock;
use kubeboot_controllers::csr::signer::{SignerCas, SigningCa};
use kubeboot_controllers::leader_election::{Candidate, LeaderElection};
use kubeboot_controllers::manager;
use kubeboot_controllers::metrics::Counters;
use kubeboot_controllers::trust_bundle_publisher::Source;
use kubeboot_pki::Kubeconfig;
use kubeboot_pki::reload::Reloading;

use crate::ControllerManagerArgs;
use crate::control_plane::{hostname, read, short_id};

/// kube-controller-manager's leader election flags.
#[derive(Args, Clone)]
pub(crate) struct LeaderElectArgs {
    /// Run the controllers only while holding the leader Lease, so that of several servers
    /// exactly one acts.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) leader_elect: bool,
    /// How long other candidates wait after the leader's last renewal before taking over.
    #[arg(long, default_value = "15s")]
    pub(crate) leader_elect_lease_duration: String,
    /// How long the leader tries to renew before it stops its controllers.
    #[arg(long, default_value = "10s")]
    pub(crate) leader_elect_renew_deadline: String,
    /// How often candidates try to acquire and the leader renews.
    #[arg(long, default_value = "2s")]
    pub(crate) leader_elect_retry_period: String,
    /// The Lease's name.
    #[arg(long, default_value = "kube-controller-manager")]
    pub(crate) leader_elect_resource_name: String,
    /// The Lease's namespace.
    #[arg(long, default_value = "kube-system")]
    pub(crate) leader_elect_resource_namespace: String,
}

impl LeaderElectArgs {
    /// The election, for a candidate named `identity` (None: `--leader-elect=false`).
    pub(crate) fn election(&self, identity: String) -> Result<Option<LeaderElection>> {
        if !self.leader_elect {
            return Ok(None);
        }
        let d = |flag: &str, v: &str| {
            kubeboot_api::clock::parse_go_duration(v).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
        };
        let le = LeaderElection {
            namespace: self.leader_elect_resource_namespace.clone(),
            name: self.leader_elect_resource_name.clone(),
            identity,
            lease_duration: d(
                "leader-elect-lease-duration",
                &self.leader_elect_lease_duration,
            )?,
            renew_deadline: d(
                "leader-elect-renew-deadline",
                &self.leader_elect_renew_deadline,
            )?,
            retry_period: d("leader-elect-retry-period", &self.leader_elect_retry_period)?,
        };
        le.validate().map_err(anyhow::Error::msg)?;
        Ok(Some(le))
    }
}

/// kube-controller-manager's signing and approving flags.
#[derive(Args, Clone)]
pub(crate) struct SigningArgs {
    /// The CA certificate that signs cluster certificates (default for `server`: <data-dir>/pki/ca.crt).
    #[arg(long)]
    pub(crate) cluster_signing_cert_file: Option<PathBuf>,
    /// The CA key (default for `server`: <data-dir>/pki/ca.key).
    #[arg(long)]
    pub(crate) cluster_signing_key_file: Option<PathBuf>,
    /// The CA of the API server's serving certificate, published as the
    /// kubernetes.io/kube-apiserver-serving ClusterTrustBundle (default: the CA of
    /// --kubeconfig; for `server`: <data-dir>/pki/ca.crt).
    #[arg(long)]
    pub(crate) root_ca_file: Option<PathBuf>,
    /// The longest validity of a signed certificate.
    #[arg(long, default_value = "8760h")]
    pub(crate) cluster_signing_duration: String,
    /// CA certificate for kubernetes.io/kube-apiserver-client-kubelet.
    #[arg(long)]
    pub(crate) cluster_signing_kubelet_client_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/kube-apiserver-client-kubelet.
    #[arg(long)]
    pub(crate) cluster_signing_kubelet_client_key_file: Option<PathBuf>,
    /// CA certificate for kubernetes.io/kubelet-serving.
    #[arg(long)]
    pub(crate) cluster_signing_kubelet_serving_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/kubelet-serving.
    #[arg(long)]
    pub(crate) cluster_signing_kubelet_serving_key_file: Option<PathBuf>,
    /// CA certificate for kubernetes.io/kube-apiserver-client.
    #[arg(long)]
    pub(crate) cluster_signing_kube_apiserver_client_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/kube-apiserver-client.
    #[arg(long)]
    pub(crate) cluster_signing_kube_apiserver_client_key_file: Option<PathBuf>,
    /// CA certificate for kubernetes.io/legacy-unknown.
    #[arg(long)]
    pub(crate) cluster_signing_legacy_unknown_cert_file: Option<PathBuf>,
    /// CA key for kubernetes.io/legacy-unknown.
    #[arg(long)]
    pub(crate) cluster_signing_legacy_unknown_key_file: Option<PathBuf>,
    /// Workers of each CSR controller (csrapproving, csrsigning): how many CSRs each
    /// handles at once; never one CSR in two workers. Default: the CPUs available, and at
    /// least 16 (a worker mostly waits on the store).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub(crate) concurrent_csr_syncs: Option<u16>,
    /// Approve kubelet-serving CSRs whose names are all addresses of the requesting node
    /// (Kubernetes never approves these by itself).
    #[arg(long)]
    pub(crate) approve_kubelet_serving: bool,
    /// Also allow DNS names matching this regular expression in kubelet serving certificates.
    #[arg(long)]
    pub(crate) kubelet_serving_allowed_dns_regex: Option<String>,
    /// Also allow IPs in these ranges (CIDRs) in kubelet serving certificates.
    #[arg(long, value_delimiter = ',')]
    pub(crate) kubelet_serving_allowed_ip_ranges: Vec<String>,
    #[command(flatten)]
    pub(crate) node_lifecycle: NodeLifecycleArgs,
}

/// kube-controller-manager's node health flags (the nodelifecycle controller).
#[derive(Args, Clone)]
pub(crate) struct NodeLifecycleArgs {
    /// How long a node may go without renewing its Lease or posting its Ready heartbeat
    /// before its conditions are set Unknown and it is tainted unreachable.
    #[arg(long, default_value = "40s")]
    pub(crate) node_monitor_grace_period: String,
    /// How often every node's health is checked.
    #[arg(long, default_value = "5s")]
    pub(crate) node_monitor_period: String,
}

impl NodeLifecycleArgs {
    fn monitor(&self) -> Result<kubeboot_controllers::node_lifecycle::NodeMonitor> {
        let d = |flag: &str, v: &str| {
            kubeboot_api::clock::parse_go_duration(v)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    anyhow::anyhow!("--{flag}: {v:?} is not a positive duration (such as 40s)")
                })
        };
        Ok(kubeboot_controllers::node_lifecycle::NodeMonitor {
            grace: d("node-monitor-grace-period", &self.node_monitor_grace_period)?,
            period: d("node-monitor-period", &self.node_monitor_period)?,
        })
    }
}

pub(crate) async fn controller_manager(args: ControllerManagerArgs) -> Result<()> {
    let kc = Kubeconfig::from_yaml(&read(&args.kubeconfig)?)
        .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
    let identity = format!("{}_{}", hostname(), short_id(None));
    let controllers = run_controllers(
        &kc,
        None,
        &args.controllers,
        &args.signing,
        args.election.election(identity)?,
        Arc::new(Counters::default()),
    )?;
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    controllers.stop().await;
    Ok(())
}

/// The controllers `spec` selects, with what they need from the signing flags.
fn controller_plan(
    spec: &[String],
    signing: &SigningArgs,
    kc: &Kubeconfig,
) -> Result<manager::Plan> {
    let selected = kubeboot_controllers::selected(spec).map_err(anyhow::Error::msg)?;
    let serving = signing
        .approve_kubelet_serving
        .then(|| serving_rules(signing))
        .transpose()?;
    let cas = if selected.contains(&"csrsigning") {
        let cas = signer_cas(signing)?;
        if cas.is_empty() {
            tracing::warn!(
                "csrsigning has no CA (--cluster-signing-cert-file/--cluster-signing-key-file): it signs nothing"
            );
        }
        cas
    } else {
        HashMap::new()
    };
    let max_duration = kubeboot_api::clock::parse_go_duration(&signing.cluster_signing_duration)
        .map_err(|e| anyhow::anyhow!("--cluster-signing-duration: {e}"))?;
    Ok(manager::Plan {
        policy: kubeboot_controllers::csr::policy::SigningPolicy { max_duration },
        csr_workers: signing.concurrent_csr_syncs.map_or_else(
            || {
                manager::default_csr_workers(
                    std::thread::available_parallelism().map_or(1, |n| n.get()),
                )
            },
            usize::from,
        ),
        trust_bundles: trust_bundles(&selected, signing, &cas, kc)?,
        node_monitor: signing.node_lifecycle.monitor()?,
        selected,
        serving,
        cas,
    })
}

/// What the trust bundle publisher publishes, when it runs: the serving CA
/// (`--root-ca-file`, else the CA the controllers' kubeconfig trusts, as
/// kube-controller-manager does), and the CA file of each signer csrsigning runs.
fn trust_bundles(
    selected: &[&str],
    signing: &SigningArgs,
    cas: &SignerCas,
    kc: &Kubeconfig,
) -> Result<Vec<(String, Source)>> {
    use kubeboot_controllers::trust_bundle_publisher::{KUBE_APISERVER_SERVING, NAME};
    if !selected.contains(&NAME) {
        return Ok(Vec::new());
    }
    let serving = match &signing.root_ca_file {
        Some(p) => Source::file(p.clone())
            .map_err(|e| anyhow::anyhow!("--root-ca-file {}: {e}", p.display()))?,
        None => Source::File(Arc::new(Reloading::fixed(kubeconfig_ca(kc)?))),
    };
    let mut out = vec![(KUBE_APISERVER_SERVING.to_owned(), serving)];
    let mut signers: Vec<_> = cas.iter().collect();
    signers.sort_by_key(|(signer, _)| **signer);
    out.extend(
        signers
            .into_iter()
            .map(|(signer, ca)| ((*signer).to_owned(), Source::Signer(ca.clone()))),
    );
    Ok(out)
}

/// The CA bundle PEM a kubeconfig's current cluster trusts.
fn kubeconfig_ca(kc: &Kubeconfig) -> Result<String> {
    use base64::Engine;
    let (cluster, _) = kc.current()?;
    match (
        &cluster.certificate_authority_data,
        &cluster.certificate_authority,
    ) {
        (Some(data), _) => {
            let pem = base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .context("the kubeconfig's certificate-authority-data is not base64")?;
            String::from_utf8(pem).context("the kubeconfig's certificate-authority-data")
        }
        (None, Some(path)) => read(std::path::Path::new(path)),
        (None, None) => bail!(
            "the kubeconfig names no CA: give --root-ca-file for the kubernetes.io/kube-apiserver-serving trust bundle"
        ),
    }
}

/// The client certificate (PEM) of a kubeconfig's current user, checked as a TLS client
/// would load it (its key must be there and belong to it).
fn controller_manager_cert(kc: &Kubeconfig) -> Result<Vec<u8>> {
    let (cert, key) = kubeboot_client::kubeconfig_client_cert(kc)?
        .context("the controller-manager kubeconfig has no client certificate and key")?;
    kubeboot_client::CertSource::from_pem(&cert, &key)?;
    Ok(cert)
}

/// The DER client certificate of the kubeconfig at `path`, read again when it changes (a
/// CA rotation rewrites it).
pub(crate) fn reloading_client_cert(path: PathBuf) -> Result<Arc<Reloading<Vec<u8>>>> {
    let parse: kubeboot_pki::reload::Parse<Vec<u8>> = Box::new(|t| {
        let kc = Kubeconfig::from_yaml(&t[0]).map_err(|e| e.to_string())?;
        let pem = controller_manager_cert(&kc).map_err(|e| format!("{e:#}"))?;
        let (_, block) = x509_parser::pem::parse_x509_pem(&pem)
            .map_err(|e| format!("the client certificate is not PEM: {e}"))?;
        Ok(block.contents)
    });
    let read = Reloading::files(vec![path.clone()], parse)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(Arc::new(read))
}

/// Runs the selected controllers (`crates/controllers/src/manager.rs`), as `kc`'s user:
/// with `in_process`, through an API server in this process; otherwise at the server `kc` names.
pub(crate) fn run_controllers(
    kc: &Kubeconfig,
    in_process: Option<kubeboot_client::InProcess>,
    spec: &[String],
    signing: &SigningArgs,
    election: Option<LeaderElection>,
    counters: Arc<Counters>,
) -> Result<manager::Running> {
    let plan = controller_plan(spec, signing, kc)?;
    let kc = kc.clone();
    let agent = kubeboot_client::user_agent("kubeboot-controller-manager");
    let connect = move || -> Result<kubeboot_client::Client, String> {
        let client = match &in_process {
            Some(serve) => {
                let (cluster, _) = kc.current().map_err(|e| e.to_string())?;
                kubeboot_client::Client::in_process(&cluster.server, serve.clone())
            }
            None => kubeboot_client::Client::from_kubeconfig(&kc).map_err(|e| e.to_string())?,
        };
        Ok(client.with_user_agent(&agent))
    };
    let clock: Arc<dyn kubeboot_api::Clock> = Arc::new(SystemClock);
    let candidate = election
        .map(|election| -> Result<Candidate> {
            Ok(Candidate {
                client: connect().map_err(anyhow::Error::msg)?,
                election,
                clock: clock.clone(),
            })
        })
        .transpose()?;
    let shared = manager::Shared {
        clock,
        random: Arc::new(kubeboot_api::random::OsRandom),
        counters,
    };
    manager::run(plan, Box::new(connect), candidate, shared).map_err(anyhow::Error::msg)
}

fn serving_rules(s: &SigningArgs) -> Result<kubeboot_controllers::csr::policy::ServingRules> {
    use kubeboot_controllers::csr::policy::{ServingRules, parse_cidr};
    let dns = s
        .kubelet_serving_allowed_dns_regex
        .as_deref()
        .map(|r| {
            regex_lite::Regex::new(r)
                .map_err(|e| anyhow::anyhow!("--kubelet-serving-allowed-dns-regex: {e}"))
        })
        .transpose()?;
    let ip_ranges = s
        .kubelet_serving_allowed_ip_ranges
        .iter()
        .map(|r| {
            parse_cidr(r).map_err(|e| anyhow::anyhow!("--kubelet-serving-allowed-ip-ranges: {e}"))
        })
        .collect::<Result<_>>()?;
    Ok(ServingRules { dns, ip_ranges })
}

/// The CA of each signer: its own flags if given, else the cluster signing CA. Each pair
/// of files is read once (and again when it changes).
fn signer_cas(s: &SigningArgs) -> Result<SignerCas> {
    use kubeboot_controllers::csr::policy::{
        KUBE_APISERVER_CLIENT, KUBELET_CLIENT, KUBELET_SERVING, LEGACY_UNKNOWN,
    };
    type Loaded = Arc<Reloading<SigningCa>>;
    let mut loaded: HashMap<(PathBuf, PathBuf), Loaded> = HashMap::new();
    let mut load = |cert: &PathBuf, key: &PathBuf| -> Result<Loaded> {
        if let Some(ca) = loaded.get(&(cert.clone(), key.clone())) {
            return Ok(ca.clone());
        }
        let ca = SigningCa::open(cert.clone(), key.clone()).map_err(|e| {
            anyhow::anyhow!(
                "loading the signing CA {} / {}: {e}",
                cert.display(),
                key.display()
            )
        })?;
        let ca = Arc::new(ca);
        loaded.insert((cert.clone(), key.clone()), ca.clone());
        Ok(ca)
    };
    let default = (&s.cluster_signing_cert_file, &s.cluster_signing_key_file);
    let mut out = HashMap::new();
    for (signer, own) in [
        (
            KUBELET_CLIENT,
            (
                &s.cluster_signing_kubelet_client_cert_file,
                &s.cluster_signing_kubelet_client_key_file,
            ),
        ),
        (
            KUBELET_SERVING,
            (
                &s.cluster_signing_kubelet_serving_cert_file,
                &s.cluster_signing_kubelet_serving_key_file,
            ),
        ),
        (
            KUBE_APISERVER_CLIENT,
            (
                &s.cluster_signing_kube_apiserver_client_cert_file,
                &s.cluster_signing_kube_apiserver_client_key_file,
            ),
        ),
        (
            LEGACY_UNKNOWN,
            (
                &s.cluster_signing_legacy_unknown_cert_file,
                &s.cluster_signing_legacy_unknown_key_file,
            ),
        ),
    ] {
        let pair = match own {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => match default {
                (Some(c), Some(k)) => Some((c, k)),
                (None, None) => None,
                _ => {
                    bail!("--cluster-signing-cert-file and --cluster-signing-key-file go together")
                }
            },
            _ => bail!("the per-signer certificate and key flags of {signer} go together"),
        };
        if let Some((c, k)) = pair {
            out.insert(signer, load(c, k)?);
        }
    }
    Ok(out)
}
