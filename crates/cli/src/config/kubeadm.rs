//! kubeadm's configuration (`kubeadm.k8s.io/v1beta4`, `cmd/kubeadm/app/apis/kubeadm/v1beta4`):
//! the fields of each kind, and what of them kubeboot's server and join take — the
//! bootstrap tokens, the API endpoint and certificate SANs, the Service range, external
//! etcd, the components' `extraArgs` that are kubeboot server flags, the validity of the
//! certificates a first start makes, the discovery token and CA pins, the node's name and
//! the timeouts.

use std::time::Duration;

use kubeboot_apiserver::seed::InitialToken;

use super::schema::{Field, unknown_field};
use super::{ConfigError, Document, FromFile};
use Field::{Any, List, Object};

const ARG: &[(&str, Field)] = &[("name", Any), ("value", Any)];
const COMPONENT: &[(&str, Field)] = &[
    ("extraArgs", List(ARG)),
    ("extraVolumes", Any),
    ("extraEnvs", Any),
];
const API_SERVER: &[(&str, Field)] = &[
    ("extraArgs", List(ARG)),
    ("extraVolumes", Any),
    ("extraEnvs", Any),
    ("certSANs", Any),
];
const BOOTSTRAP_TOKEN: &[(&str, Field)] = &[
    ("token", Any),
    ("description", Any),
    ("ttl", Any),
    ("expires", Any),
    ("usages", Any),
    ("groups", Any),
];
const NODE_REGISTRATION: &[(&str, Field)] = &[
    ("name", Any),
    ("criSocket", Any),
    ("taints", Any),
    ("kubeletExtraArgs", Any),
    ("ignorePreflightErrors", Any),
    ("imagePullPolicy", Any),
    ("imagePullSerial", Any),
];
const API_ENDPOINT: &[(&str, Field)] = &[("advertiseAddress", Any), ("bindPort", Any)];
const TIMEOUTS: &[(&str, Field)] = &[
    ("controlPlaneComponentHealthCheck", Any),
    ("kubeletHealthCheck", Any),
    ("kubernetesAPICall", Any),
    ("etcdAPICall", Any),
    ("tlsBootstrap", Any),
    ("discovery", Any),
    ("upgradeManifests", Any),
];
const EXTERNAL_ETCD: &[(&str, Field)] = &[
    ("endpoints", Any),
    ("caFile", Any),
    ("certFile", Any),
    ("keyFile", Any),
];
const ETCD: &[(&str, Field)] = &[("local", Any), ("external", Object(EXTERNAL_ETCD))];
const NETWORKING: &[(&str, Field)] = &[
    ("serviceSubnet", Any),
    ("podSubnet", Any),
    ("dnsDomain", Any),
];

/// `InitConfiguration`.
pub(super) const INIT_CONFIGURATION: &[(&str, Field)] = &[
    ("apiVersion", Any),
    ("kind", Any),
    ("bootstrapTokens", List(BOOTSTRAP_TOKEN)),
    ("dryRun", Any),
    ("nodeRegistration", Object(NODE_REGISTRATION)),
    ("localAPIEndpoint", Object(API_ENDPOINT)),
    ("certificateKey", Any),
    ("skipPhases", Any),
    ("patches", Any),
    ("timeouts", Object(TIMEOUTS)),
];

/// `ClusterConfiguration`.
pub(super) const CLUSTER_CONFIGURATION: &[(&str, Field)] = &[
    ("apiVersion", Any),
    ("kind", Any),
    ("etcd", Object(ETCD)),
    ("networking", Object(NETWORKING)),
    ("kubernetesVersion", Any),
    ("controlPlaneEndpoint", Any),
    ("apiServer", Object(API_SERVER)),
    ("controllerManager", Object(COMPONENT)),
    ("scheduler", Object(COMPONENT)),
    ("dns", Any),
    ("proxy", Any),
    ("certificatesDir", Any),
    ("imageRepository", Any),
    ("featureGates", Any),
    ("clusterName", Any),
    ("encryptionAlgorithm", Any),
    ("certificateValidityPeriod", Any),
    ("caCertificateValidityPeriod", Any),
];

const BOOTSTRAP_TOKEN_DISCOVERY: &[(&str, Field)] = &[
    ("token", Any),
    ("apiServerEndpoint", Any),
    ("caCertHashes", Any),
    ("unsafeSkipCAVerification", Any),
];
const DISCOVERY: &[(&str, Field)] = &[
    ("bootstrapToken", Object(BOOTSTRAP_TOKEN_DISCOVERY)),
    ("file", Object(&[("kubeConfigPath", Any)])),
    ("tlsBootstrapToken", Any),
];

/// `JoinConfiguration`.
pub(super) const JOIN_CONFIGURATION: &[(&str, Field)] = &[
    ("apiVersion", Any),
    ("kind", Any),
    ("dryRun", Any),
    ("nodeRegistration", Object(NODE_REGISTRATION)),
    ("caCertPath", Any),
    ("discovery", Object(DISCOVERY)),
    ("controlPlane", Any),
    ("skipPhases", Any),
    ("patches", Any),
    ("timeouts", Object(TIMEOUTS)),
];

/// The version kubeboot reads, and kubeadm's strict decoding of the kind's fields.
fn check(doc: &Document, fields: &[(&str, Field)]) -> Result<(), ConfigError> {
    if doc.api_version != "kubeadm.k8s.io/v1beta4" {
        return Err(doc.error(
            &["apiVersion"],
            format!(
                "{} is not supported: kubeboot reads kubeadm.k8s.io/v1beta4 (convert an older file with 'kubeadm config migrate')",
                doc.api_version
            ),
        ));
    }
    match unknown_field(&doc.value, fields) {
        None => Ok(()),
        Some(path) => {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            Err(doc.error(
                &path,
                format!(
                    "strict decoding error: unknown field \"{}\" in {}",
                    path.join("."),
                    doc.kind
                ),
            ))
        }
    }
}

/// Records the set fields of `doc` under `paths` that kubeboot has no use for.
fn unused(doc: &Document, paths: &[&[&str]], out: &mut FromFile) {
    for path in paths {
        if doc.at(path).is_some() {
            out.unused.push(format!("{} {}", doc.kind, path.join(".")));
        }
    }
}

fn flag(out: &mut FromFile, name: &str, value: impl Into<String>) {
    out.flags.push((name.to_owned(), value.into()));
}

/// `InitConfiguration` for `kubeboot server`.
pub(super) fn init(doc: &Document, out: &mut FromFile) -> Result<(), ConfigError> {
    check(doc, INIT_CONFIGURATION)?;
    if let Some(a) = doc.str_at(&["localAPIEndpoint", "advertiseAddress"])? {
        flag(out, "advertise-address", a);
    }
    if let Some(p) = doc.int_at(&["localAPIEndpoint", "bindPort"])? {
        flag(out, "secure-port", p.to_string());
    }
    let count = doc
        .at(&["bootstrapTokens"])
        .and_then(|v| v.as_array())
        .map_or(0, Vec::len);
    for i in 0..count {
        out.tokens.push(bootstrap_token(doc, &i.to_string())?);
    }
    unused(
        doc,
        &[
            &["dryRun"],
            &["nodeRegistration"],
            &["certificateKey"],
            &["skipPhases"],
            &["patches"],
            &["timeouts"],
        ],
        out,
    );
    Ok(())
}

/// One of `bootstrapTokens`, with kubeadm's defaults for what it leaves out.
fn bootstrap_token(doc: &Document, i: &str) -> Result<InitialToken, ConfigError> {
    let at = |field: &'static str| ["bootstrapTokens", i, field];
    let mut token = InitialToken::kubeadm_default();
    token.description = String::new();
    if let Some(text) = doc.str_at(&at("token"))? {
        token.token = text
            .parse()
            .map_err(|e: kubeboot_bootstrap::TokenError| doc.error(&at("token"), e.to_string()))?;
    }
    if let Some(d) = doc.str_at(&at("description"))? {
        token.description = d;
    }
    if let Some(ttl) = doc.str_at(&at("ttl"))? {
        token.ttl = duration(doc, &at("ttl"), &ttl)?.filter(|d| !d.is_zero());
    }
    if doc.at(&at("expires")).is_some() {
        return Err(doc.error(
            &at("expires"),
            "bootstrapTokens expires is not supported by kubeboot: give a ttl",
        ));
    }
    let usages = doc.strings_at(&at("usages"))?;
    if !usages.is_empty() {
        token.usages = usages;
    }
    let groups = doc.strings_at(&at("groups"))?;
    if !groups.is_empty() {
        token.groups = groups;
    }
    Ok(token)
}

fn duration(doc: &Document, path: &[&str], text: &str) -> Result<Option<Duration>, ConfigError> {
    kubeboot_api::clock::parse_go_duration(text)
        .map(Some)
        .map_err(|e| doc.error(path, format!("{}: {e}", path.join("."))))
}

/// `ClusterConfiguration` for `kubeboot server`; `server_flags` are the flags the server
/// takes, which the components' `extraArgs` may name.
pub(super) fn cluster(
    doc: &Document,
    server_flags: &[String],
    out: &mut FromFile,
) -> Result<(), ConfigError> {
    check(doc, CLUSTER_CONFIGURATION)?;
    if let Some(subnet) = doc.str_at(&["networking", "serviceSubnet"])? {
        flag(out, "service-cluster-ip-range", subnet);
    }
    let sans = doc.strings_at(&["apiServer", "certSANs"])?;
    if !sans.is_empty() {
        flag(out, "apiserver-cert-extra-sans", sans.join(","));
    }
    let endpoints = doc.strings_at(&["etcd", "external", "endpoints"])?;
    if !endpoints.is_empty() {
        flag(out, "etcd-servers", endpoints.join(","));
    }
    for (field, name) in [
        ("caFile", "etcd-cafile"),
        ("certFile", "etcd-certfile"),
        ("keyFile", "etcd-keyfile"),
    ] {
        if let Some(v) = doc.str_at(&["etcd", "external", field])? {
            flag(out, name, v);
        }
    }
    for component in ["apiServer", "controllerManager"] {
        extra_args(doc, component, server_flags, out)?;
    }
    for (field, into) in [
        ("certificateValidityPeriod", &mut out.certificate_validity),
        (
            "caCertificateValidityPeriod",
            &mut out.ca_certificate_validity,
        ),
    ] {
        if let Some(text) = doc.str_at(&[field])? {
            *into = duration(doc, &[field], &text)?.filter(|d| !d.is_zero());
        }
    }
    unused(
        doc,
        &[
            &["etcd", "local"],
            &["networking", "podSubnet"],
            &["networking", "dnsDomain"],
            &["kubernetesVersion"],
            &["controlPlaneEndpoint"],
            &["scheduler"],
            &["dns"],
            &["proxy"],
            &["certificatesDir"],
            &["imageRepository"],
            &["featureGates"],
            &["clusterName"],
            &["encryptionAlgorithm"],
        ],
        out,
    );
    Ok(())
}

/// A component's `extraArgs` (`- name: event-ttl` / `value: 2h`): those that name a flag
/// of kubeboot server set it; the others are kube-apiserver's or kube-controller-manager's
/// own, and are reported unused.
fn extra_args(
    doc: &Document,
    component: &str,
    server_flags: &[String],
    out: &mut FromFile,
) -> Result<(), ConfigError> {
    let count = doc
        .at(&[component, "extraArgs"])
        .and_then(|v| v.as_array())
        .map_or(0, Vec::len);
    for i in 0..count {
        let i = i.to_string();
        let name_at = [component, "extraArgs", i.as_str(), "name"];
        let name = doc
            .str_at(&name_at)?
            .ok_or_else(|| doc.error(&name_at, "an extraArgs entry needs a name"))?;
        let value = doc
            .str_at(&[component, "extraArgs", i.as_str(), "value"])?
            .unwrap_or_default();
        if server_flags.contains(&name) {
            flag(out, &name, value);
        } else {
            out.unused.push(format!(
                "{} {component}.extraArgs {name} (kubeboot server has no --{name})",
                doc.kind
            ));
        }
    }
    Ok(())
}

/// `JoinConfiguration` for `kubeboot join`.
pub(super) fn join(doc: &Document, out: &mut FromFile) -> Result<(), ConfigError> {
    check(doc, JOIN_CONFIGURATION)?;
    let token = ["discovery", "bootstrapToken"];
    let at = |f: &'static str| [token[0], token[1], f];
    if let Some(t) = doc.str_at(&at("token"))? {
        flag(out, "discovery-token", t);
    }
    out.positional = doc.str_at(&at("apiServerEndpoint"))?;
    for hash in doc.strings_at(&at("caCertHashes"))? {
        flag(out, "discovery-token-ca-cert-hash", hash);
    }
    if doc.bool_at(&at("unsafeSkipCAVerification"))? == Some(true) {
        flag(out, "discovery-token-unsafe-skip-ca-verification", "");
    }
    if let Some(f) = doc.str_at(&["discovery", "file", "kubeConfigPath"])? {
        flag(out, "discovery-file", f);
    }
    if let Some(t) = doc.str_at(&["discovery", "tlsBootstrapToken"])? {
        flag(out, "tls-bootstrap-token", t);
    }
    if let Some(n) = doc.str_at(&["nodeRegistration", "name"])? {
        flag(out, "node-name", n);
    }
    for (field, name) in [
        ("discovery", "discovery-timeout"),
        ("tlsBootstrap", "tls-bootstrap-timeout"),
    ] {
        if let Some(v) = doc.str_at(&["timeouts", field])? {
            duration(doc, &["timeouts", field], &v)?;
            flag(out, name, v);
        }
    }
    unused(
        doc,
        &[
            &["dryRun"],
            &["caCertPath"],
            &["controlPlane"],
            &["skipPhases"],
            &["patches"],
            &["nodeRegistration", "criSocket"],
            &["nodeRegistration", "taints"],
            &["nodeRegistration", "kubeletExtraArgs"],
            &["nodeRegistration", "ignorePreflightErrors"],
            &["nodeRegistration", "imagePullPolicy"],
            &["nodeRegistration", "imagePullSerial"],
        ],
        out,
    );
    Ok(())
}
