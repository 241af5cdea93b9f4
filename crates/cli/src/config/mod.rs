//! Configuration files as kubeadm and the kubelet take them. `kubeboot server --config`
//! reads kubeadm's `InitConfiguration` and `ClusterConfiguration`, `kubeboot join --config`
//! its `JoinConfiguration` (all `kubeadm.k8s.io/v1beta4`), and `kubeboot node --config` a
//! `KubeletConfiguration` (`kubelet.config.k8s.io/v1beta1`). A file stands for the flags it
//! sets; a flag given on the command line overrides the file. Fields the kind has that
//! kubeboot has no use for are accepted, each named in a warning; a field the kind does
//! not have, a value of the wrong type, or a kind the command does not read is an error
//! naming the file and line, as kubeadm's strict decoding refuses them.

mod kubeadm;
mod kubelet;
mod schema;
#[cfg(test)]
mod tests;

use std::ffi::OsString;
use std::path::Path;

use serde_json::Value;

/// One YAML document of a file: its kind and where it starts.
pub(crate) struct Document {
    /// `apiVersion`.
    pub(crate) api_version: String,
    /// `kind`.
    pub(crate) kind: String,
    /// The document's text.
    pub(crate) text: String,
    /// The file line (1-based) its text starts on.
    pub(crate) first_line: usize,
    /// The document, parsed.
    pub(crate) value: Value,
}

/// A problem in a configuration file.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// The file line (1-based; 0 when the file as a whole).
    pub(crate) line: usize,
    /// What is wrong.
    pub(crate) message: String,
}

impl Document {
    /// An error about the field at `path` of this document.
    pub(crate) fn error(&self, path: &[&str], message: impl Into<String>) -> ConfigError {
        ConfigError {
            line: self.first_line + schema::line_of(&self.text, path),
            message: message.into(),
        }
    }

    /// The value at `path`, if set.
    pub(crate) fn at(&self, path: &[&str]) -> Option<&Value> {
        path.iter()
            .try_fold(&self.value, |v, k| match (v, k.parse::<usize>()) {
                (Value::Array(items), Ok(i)) => items.get(i),
                _ => v.get(k),
            })
            .filter(|v| !v.is_null())
    }

    /// The string at `path`.
    pub(crate) fn str_at(&self, path: &[&str]) -> Result<Option<String>, ConfigError> {
        match self.at(path) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.error(path, format!("{}: expected a string", path.join(".")))),
        }
    }

    /// The integer at `path`.
    pub(crate) fn int_at(&self, path: &[&str]) -> Result<Option<i64>, ConfigError> {
        match self.at(path) {
            None => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                self.error(path, format!("{}: expected an integer", path.join(".")))
            }),
        }
    }

    /// The boolean at `path`.
    pub(crate) fn bool_at(&self, path: &[&str]) -> Result<Option<bool>, ConfigError> {
        match self.at(path) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.error(path, format!("{}: expected true or false", path.join(".")))),
        }
    }

    /// The list of strings at `path`.
    pub(crate) fn strings_at(&self, path: &[&str]) -> Result<Vec<String>, ConfigError> {
        match self.at(path) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => Ok(items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_owned))
                .collect()),
            Some(_) => Err(self.error(
                path,
                format!("{}: expected a list of strings", path.join(".")),
            )),
        }
    }
}

/// Splits a file into its YAML documents (`---` lines) and parses each.
pub(crate) fn documents(text: &str) -> Result<Vec<Document>, ConfigError> {
    let mut out = Vec::new();
    let mut start = 1;
    let mut current = String::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let separator = line.trim_end() == "---" || line.starts_with("--- ");
        if !separator {
            current.push_str(line);
            current.push('\n');
        }
        if separator || i + 1 == lines.len() {
            if let Some(doc) = document(&current, start)? {
                out.push(doc);
            }
            current.clear();
            start = i + 2;
        }
    }
    Ok(out)
}

fn document(text: &str, first_line: usize) -> Result<Option<Document>, ConfigError> {
    if text
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Ok(None);
    }
    let value: Value = serde_saphyr::from_str(text).map_err(|e| {
        let message = e.to_string();
        let line = message
            .split("line ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<usize>().ok())
            .map_or(0, |n| n + first_line - 1);
        ConfigError {
            line,
            message: format!("not YAML: {}", message.lines().next().unwrap_or_default()),
        }
    })?;
    let field = |k: &str| {
        value
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let doc = Document {
        api_version: field("apiVersion"),
        kind: field("kind"),
        text: text.to_owned(),
        first_line,
        value: value.clone(),
    };
    if !value.is_object() {
        return Err(doc.error(&[], "a document must be a mapping with apiVersion and kind"));
    }
    if doc.kind.is_empty() || doc.api_version.is_empty() {
        return Err(doc.error(&[], "a document needs apiVersion and kind"));
    }
    Ok(Some(doc))
}

/// The flags a file stands for, and what else it says.
#[derive(Debug, Default)]
pub(crate) struct FromFile {
    /// `(flag without --, value)`; a flag without a value is `(flag, "")`.
    pub(crate) flags: Vec<(String, String)>,
    /// A positional argument (join's API server endpoint), if the file names one.
    pub(crate) positional: Option<String>,
    /// Fields accepted but not used, as `Kind field.path`.
    pub(crate) unused: Vec<String>,
    /// The bootstrap tokens an InitConfiguration lists.
    pub(crate) tokens: Vec<kubeboot_apiserver::seed::InitialToken>,
    /// A ClusterConfiguration's `certificateValidityPeriod`.
    pub(crate) certificate_validity: Option<std::time::Duration>,
    /// A ClusterConfiguration's `caCertificateValidityPeriod`.
    pub(crate) ca_certificate_validity: Option<std::time::Duration>,
}

/// Which command reads the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reader {
    /// `kubeboot server`.
    Server,
    /// `kubeboot join`.
    Join,
    /// `kubeboot node`.
    Node,
}

/// Reads `path` for `reader`: the flags it stands for.
pub(crate) fn read(
    path: &Path,
    reader: Reader,
    server_flags: &[String],
) -> Result<FromFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the config file {}: {e}", path.display()))?;
    from_text(&text, reader, server_flags)
        .map_err(|e| format!("{}:{}: {}", path.display(), e.line, e.message))
}

/// [`read`] of a file's text.
pub(crate) fn from_text(
    text: &str,
    reader: Reader,
    server_flags: &[String],
) -> Result<FromFile, ConfigError> {
    let mut out = FromFile::default();
    for doc in documents(text)? {
        let group = doc.api_version.split('/').next().unwrap_or_default();
        match (reader, group, doc.kind.as_str()) {
            (Reader::Server, "kubeadm.k8s.io", "InitConfiguration") => {
                kubeadm::init(&doc, &mut out)?;
            }
            (Reader::Server, "kubeadm.k8s.io", "ClusterConfiguration") => {
                kubeadm::cluster(&doc, server_flags, &mut out)?;
            }
            (Reader::Join, "kubeadm.k8s.io", "JoinConfiguration") => kubeadm::join(&doc, &mut out)?,
            (Reader::Node, "kubelet.config.k8s.io", "KubeletConfiguration") => {
                kubelet::node(&doc, &mut out)?;
            }
            // kubeadm hands these to the kubelet and kube-proxy; kubeboot's server has no use
            // for them.
            (
                Reader::Server | Reader::Join,
                "kubelet.config.k8s.io" | "kubeproxy.config.k8s.io",
                "KubeletConfiguration" | "KubeProxyConfiguration",
            ) => out.unused.push(doc.kind.clone()),
            _ => {
                return Err(doc.error(
                    &["kind"],
                    format!(
                        "{} of {} is not read by kubeboot {}: it reads {}",
                        doc.kind,
                        doc.api_version,
                        reader.name(),
                        reader.reads()
                    ),
                ));
            }
        }
    }
    Ok(out)
}

impl Reader {
    fn name(self) -> &'static str {
        match self {
            Reader::Server => "server",
            Reader::Join => "join",
            Reader::Node => "node",
        }
    }

    fn reads(self) -> &'static str {
        match self {
            Reader::Server => "kubeadm.k8s.io/v1beta4 InitConfiguration and ClusterConfiguration",
            Reader::Join => "kubeadm.k8s.io/v1beta4 JoinConfiguration",
            Reader::Node => "kubelet.config.k8s.io/v1beta1 KubeletConfiguration",
        }
    }
}

/// The command line with the file's flags added where the command line did not give them:
/// `given(id)` says whether the argument with clap id `id` came from the command line.
pub(crate) fn merged_args(
    args: &[OsString],
    from_file: &FromFile,
    given: impl Fn(&str) -> bool,
) -> Vec<OsString> {
    let mut out = args.to_vec();
    for (flag, value) in &from_file.flags {
        if given(&flag.replace('-', "_")) {
            continue;
        }
        if value.is_empty() {
            out.push(format!("--{flag}").into());
        } else {
            out.push(format!("--{flag}={value}").into());
        }
    }
    if let Some(p) = &from_file.positional
        && !given("endpoint")
    {
        out.push(p.into());
    }
    out
}

/// The command line, with the configuration file of `server`, `join` or `node --config`
/// read into it; and the file's fields that were accepted but not used. Exits as clap does
/// on a bad command line, and with the file's error on a bad file.
pub(crate) fn parse_command_line(args: Vec<OsString>) -> (crate::Cli, Vec<String>) {
    use clap::{CommandFactory, FromArgMatches, parser::ValueSource};
    let exit = |e: clap::Error| -> ! { e.exit() };
    let matches = crate::Cli::command().get_matches_from(&args);
    let reader = match matches.subcommand_name() {
        Some("server") => Reader::Server,
        Some("join") => Reader::Join,
        Some("node") => Reader::Node,
        _ => {
            return (
                crate::Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit(e)),
                Vec::new(),
            );
        }
    };
    let sub = matches.subcommand().map(|(_, m)| m).expect("a subcommand");
    let Some(path) = sub.get_one::<std::path::PathBuf>("config") else {
        return (
            crate::Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit(e)),
            Vec::new(),
        );
    };
    let server = crate::Cli::command();
    let server_flags: Vec<String> = server
        .find_subcommand("server")
        .into_iter()
        .flat_map(|c| c.get_arguments())
        .filter_map(|a| a.get_long().map(str::to_owned))
        .collect();
    let from_file = read(path, reader, &server_flags).unwrap_or_else(|e| {
        let _ = std::io::Write::write_fmt(&mut std::io::stderr(), format_args!("error: {e}\n"));
        std::process::exit(1);
    });
    let merged = merged_args(&args, &from_file, |id| {
        sub.try_get_raw(id).is_ok() && sub.value_source(id) == Some(ValueSource::CommandLine)
    });
    let matches = crate::Cli::command().get_matches_from(merged);
    let mut cli = crate::Cli::from_arg_matches(&matches).unwrap_or_else(|e| exit(e));
    if let crate::Command::Server(s) = &mut cli.command {
        s.config_tokens = from_file.tokens;
        s.init.certificate_validity = from_file.certificate_validity;
        s.init.ca_certificate_validity = from_file.ca_certificate_validity;
    }
    (cli, from_file.unused)
}
