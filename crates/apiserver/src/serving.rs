//! What the server presents and trusts on its listener: the serving certificate and key
//! and the client CA bundle, read again from their files when they change, as
//! kube-apiserver reloads `--tls-cert-file`, `--tls-private-key-file` and
//! `--client-ca-file`. A new connection gets the current ones; a connection already open
//! keeps the certificate it was served with, and its client certificate the verdict it
//! was given.

use std::path::PathBuf;
use std::sync::Arc;

use kubeboot_pki::reload::Reloading;

use crate::authn::ClientCa;

/// The files the server's TLS comes from.
#[derive(Clone, Debug)]
pub struct ServingFiles {
    /// The serving certificate chain (`--tls-cert-file`).
    pub cert: PathBuf,
    /// Its key (`--tls-private-key-file`).
    pub key: PathBuf,
    /// The client CA bundle (`--client-ca-file`); None: client certificates are not used.
    pub client_ca: Option<PathBuf>,
}

/// The TLS configuration and client CA of the moment.
pub struct Serving {
    /// The rustls configuration new connections are accepted with.
    pub tls: Arc<rustls::ServerConfig>,
    /// The CAs client certificates must chain to.
    pub client_ca: Option<ClientCa>,
}

/// Reads `files` now, and again whenever they change.
pub fn open(files: &ServingFiles) -> Result<Reloading<Serving>, String> {
    let mut paths = vec![files.cert.clone(), files.key.clone()];
    paths.extend(files.client_ca.clone());
    Reloading::files(paths, Box::new(parse))
}

/// The serving material of the files' texts: certificate, key and, if given, client CA.
fn parse(texts: &[String]) -> Result<Serving, String> {
    let client_ca = texts
        .get(2)
        .map(|pem| ClientCa::from_pem(pem))
        .transpose()?;
    let subjects = client_ca
        .as_ref()
        .map(ClientCa::subjects)
        .unwrap_or_default();
    let tls = crate::tls::server_config(&texts[0], &texts[1], subjects)?;
    Ok(Serving {
        tls: Arc::new(tls),
        client_ca,
    })
}
