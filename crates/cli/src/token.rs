//! `kubeboot token`: kubeadm token's commands, flags and output.

use kubeboot_api::{Clock, SystemClock};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use kubeboot_api::clock::parse_go_duration;
use kubeboot_bootstrap::listing::{self, TokenRow};
use kubeboot_bootstrap::secret::{SECRET_TYPE, TokenOptions, token_secret};
use kubeboot_bootstrap::{BootstrapToken, TokenId};
use kubeboot_client::Client;
use kubeboot_pki::Kubeconfig;
use serde_json::{Value, json};

const SECRETS: &str = "/api/v1/namespaces/kube-system/secrets";

#[derive(Args, Clone)]
pub(crate) struct Common {
    /// The kubeconfig to use (default: <data-dir>/admin.conf if present, else $KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true)]
    kubeconfig: Option<PathBuf>,
    /// The data dir of a kubeboot server on this machine.
    #[arg(long, global = true, default_value = "kubeboot-data")]
    data_dir: PathBuf,
}

#[derive(Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a bootstrap token on the server.
    Create {
        /// The token to create (random if omitted), as [a-z0-9]{6}.[a-z0-9]{16}.
        token: Option<String>,
        /// How long the token is valid (0: forever).
        #[arg(long, default_value = "24h0m0s")]
        ttl: String,
        /// What the token may be used for: signing, authentication.
        #[arg(long, value_delimiter = ',', default_value = "signing,authentication")]
        usages: Vec<String>,
        /// Extra groups the token authenticates with.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "system:bootstrappers:kubeadm:default-node-token"
        )]
        groups: Vec<String>,
        /// A human-readable description.
        #[arg(long, default_value = "")]
        description: String,
        /// Print the whole `kubeboot join` command instead of the token.
        #[arg(long)]
        print_join_command: bool,
    },
    /// List bootstrap tokens.
    List {
        /// Output format: text, json, yaml.
        #[arg(short = 'o', long = "output", default_value = "text")]
        output: String,
    },
    /// Delete bootstrap tokens, given as ids or whole tokens.
    Delete {
        /// Token ids or tokens.
        tokens: Vec<String>,
    },
    /// Print a new random token (nothing is created).
    Generate,
}

pub(crate) async fn run(args: TokenArgs) -> Result<()> {
    let common = args.common;
    match args.command {
        TokenCommand::Generate => {
            kubeboot_api::outln!("{}", new_token().expose());
            Ok(())
        }
        TokenCommand::Create {
            token,
            ttl,
            usages,
            groups,
            description,
            print_join_command,
        } => {
            let token = match token {
                Some(t) => t.parse::<BootstrapToken>().map_err(anyhow::Error::new)?,
                None => new_token(),
            };
            let ttl = parse_go_duration(&ttl).map_err(anyhow::Error::msg)?;
            let usages = string_slice(&usages);
            let groups = string_slice(&groups);
            let options = TokenOptions {
                description: &description,
                ttl: (!ttl.is_zero()).then_some(ttl),
                usages: &usages,
                groups: &groups,
            };
            options.check().map_err(anyhow::Error::msg)?;
            let (kc, client) = connect(&common)?;
            let secret = token_secret(&token, &options, SystemClock.now());
            match client.create::<Value>(SECRETS, &secret).await {
                Err(e) if e.code() == Some(409) => {
                    bail!("a token with id {:?} already exists", token.id.as_str())
                }
                r => {
                    r.with_context(|| format!("creating bootstrap token {:?}", token.id.as_str()))?
                }
            };
            if print_join_command {
                let (cluster, _) = kc.current()?;
                let ca = ca_pem(cluster)?;
                let pins = pins_of(&ca);
                kubeboot_api::outln!(
                    "{}",
                    listing::join_command(&cluster.server, &token.expose(), &pins)
                );
            } else {
                kubeboot_api::outln!("{}", token.expose());
            }
            Ok(())
        }
        TokenCommand::List { output } => {
            let (_, client) = connect(&common)?;
            let list: Value = client
                .get(&format!(
                    "{SECRETS}?fieldSelector=type%3D{}",
                    SECRET_TYPE.replace('/', "%2F")
                ))
                .await?;
            let mut rows: Vec<TokenRow> = Vec::new();
            for s in list
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let name = s
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                match listing::row_from_secret(name, &kubeboot_controllers::secret_data(s)) {
                    Ok(r) => rows.push(r),
                    Err(e) => eprint!("{e}"),
                }
            }
            match output.as_str() {
                "text" => kubeboot_api::out!("{}", listing::format_table(&rows, SystemClock.now())),
                "json" | "yaml" => {
                    for r in &rows {
                        let mut obj = json!({"kind": "BootstrapToken", "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
                            "token": r.token, "usages": r.usages, "groups": r.groups});
                        if !r.description.is_empty() {
                            obj["description"] = json!(r.description);
                        }
                        if let Some(e) = &r.expires {
                            obj["expires"] = json!(e);
                        }
                        if output == "json" {
                            kubeboot_api::outln!("{}", serde_json::to_string_pretty(&obj)?);
                        } else {
                            kubeboot_api::outln!("---\n{}", serde_saphyr_free_yaml(&obj));
                        }
                    }
                }
                other => bail!("unsupported output format {other:?} (text, json, yaml)"),
            }
            Ok(())
        }
        TokenCommand::Delete { tokens } => {
            if tokens.is_empty() {
                bail!(
                    "missing argument; 'token delete' is missing token of form \"[a-z0-9]{{6}}.[a-z0-9]{{16}}\" or \"[a-z0-9]{{6}}\""
                );
            }
            let (_, client) = connect(&common)?;
            for t in tokens {
                let id = match (t.parse::<BootstrapToken>(), t.parse::<TokenId>()) {
                    (Ok(tok), _) => tok.id,
                    (_, Ok(id)) => id,
                    _ => bail!(
                        "given token didn't match pattern \"[a-z0-9]{{6}}.[a-z0-9]{{16}}\" or \"[a-z0-9]{{6}}\""
                    ),
                };
                client
                    .delete(&format!("{SECRETS}/{}", id.secret_name()), None)
                    .await
                    .with_context(|| {
                        format!("failed to delete bootstrap token {:?}", id.as_str())
                    })?;
                kubeboot_api::outln!("bootstrap token {:?} deleted", id.as_str());
            }
            Ok(())
        }
    }
}

/// A list flag's values as pflag's `StringSlice` reads them: `--groups ""` is no group
/// (kubeadm's way to make a signing-only token), not one empty group.
fn string_slice(values: &[String]) -> Vec<&str> {
    match values {
        [only] if only.is_empty() => Vec::new(),
        _ => values.iter().map(String::as_str).collect(),
    }
}

fn new_token() -> BootstrapToken {
    BootstrapToken::random(&kubeboot_api::random::OsRandom)
}

fn kubeconfig_path(c: &Common) -> PathBuf {
    if let Some(p) = &c.kubeconfig {
        return p.clone();
    }
    let beside_server = c.data_dir.join("admin.conf");
    if beside_server.exists() {
        return beside_server;
    }
    if let Some(p) = std::env::var_os("KUBECONFIG").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".kube/config")
}

fn connect(c: &Common) -> Result<(Kubeconfig, Client)> {
    let path = kubeconfig_path(c);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading the kubeconfig {}", path.display()))?;
    let kc = Kubeconfig::from_yaml(&text).with_context(|| format!("parsing {}", path.display()))?;
    let client = Client::from_kubeconfig(&kc)?;
    Ok((kc, client))
}

fn ca_pem(cluster: &kubeboot_pki::kubeconfig::Cluster) -> Result<Vec<u8>> {
    use base64::Engine;
    if let Some(d) = &cluster.certificate_authority_data {
        return Ok(base64::engine::general_purpose::STANDARD.decode(d.trim())?);
    }
    if let Some(p) = &cluster.certificate_authority {
        return Ok(std::fs::read(p)?);
    }
    bail!("the kubeconfig's cluster has no CA to pin")
}

fn pins_of(ca_pem: &[u8]) -> Vec<String> {
    x509_parser::pem::Pem::iter_from_buffer(ca_pem)
        .filter_map(Result::ok)
        .filter_map(|p| kubeboot_pki::pin::cert_pin(&p.contents))
        .collect()
}

fn serde_saphyr_free_yaml(v: &Value) -> String {
    // A flat object of strings and string lists: YAML by hand keeps the dependency graph lean.
    let mut out = String::new();
    if let Some(o) = v.as_object() {
        for (k, v) in o {
            match v {
                Value::Array(a) if a.is_empty() => out.push_str(&format!("{k}: []\n")),
                Value::Array(a) => {
                    out.push_str(&format!("{k}:\n"));
                    for i in a {
                        out.push_str(&format!(
                            "- {}\n",
                            serde_json::to_string(i).unwrap_or_default()
                        ));
                    }
                }
                other => out.push_str(&format!(
                    "{k}: {}\n",
                    serde_json::to_string(other).unwrap_or_default()
                )),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_list_flag_is_no_value_as_pflag_reads_it() {
        let v = |s: &[&str]| s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert!(string_slice(&v(&[""])).is_empty());
        assert_eq!(string_slice(&v(&["a", "b"])), ["a", "b"]);
        assert_eq!(string_slice(&v(&["a", ""])), ["a", ""]);
    }
}
