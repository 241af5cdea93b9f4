//! Which node this is. Once a node holds a client certificate, that certificate says who it
//! is (`CN=system:node:<name>`), as it says to the API server: the agent takes its name from
//! there, and a `--node-name` that says otherwise is refused rather than tried — under
//! another name every request of the node would be forbidden, for ever.

/// The node name a client certificate's subject common name certifies, if it is a node's.
pub fn certified(common_name: &str) -> Option<&str> {
    common_name
        .strip_prefix("system:node:")
        .filter(|n| !n.is_empty())
}

/// Why the node's name cannot be settled.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// `--node-name` names another node than the certificate.
    #[error(
        "--node-name {given} disagrees with the client certificate {certificate}, which is node {certified}'s: drop --node-name, or give --node-name {certified}"
    )]
    Mismatch {
        /// What `--node-name` said.
        given: String,
        /// Whose the certificate is.
        certified: String,
        /// The certificate's file.
        certificate: String,
    },
    /// The client certificate is not a node's.
    #[error(
        "the client certificate {certificate} is for {common_name:?}, not a node (CN=system:node:<name>): join the node again with kubeboot join"
    )]
    NotANode {
        /// Its subject common name.
        common_name: String,
        /// The certificate's file.
        certificate: String,
    },
}

/// The node's name: the one its client certificate (`certificate`, with `common_name`)
/// certifies when it holds one, else `--node-name` (`given`), else the host name.
pub fn node_name(
    given: Option<&str>,
    held: Option<(&str, &str)>,
    hostname: &str,
) -> Result<String, IdentityError> {
    let Some((common_name, certificate)) = held else {
        return Ok(given.unwrap_or(hostname).to_owned());
    };
    let Some(certified) = certified(common_name) else {
        return Err(IdentityError::NotANode {
            common_name: common_name.to_owned(),
            certificate: certificate.to_owned(),
        });
    };
    match given {
        Some(g) if g != certified => Err(IdentityError::Mismatch {
            given: g.to_owned(),
            certified: certified.to_owned(),
            certificate: certificate.to_owned(),
        }),
        _ => Ok(certified.to_owned()),
    }
}

/// Why a name cannot be a node's, in kubeadm's words (`ValidateNodeRegistrationOptions`):
/// none, or not a lowercase RFC 1123 subdomain. A node is not asked a certificate for
/// a name its Node could never have.
pub fn name_errors(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("nodeRegistration: Required value: --node-name or .nodeRegistration.name in the config file is a required value. It seems like this value couldn't be automatically detected in your environment, please specify the desired value using the CLI or config file.".to_owned());
    }
    let errors: Vec<String> = kubeboot_api::names::subdomain_errors(name)
        .into_iter()
        .map(|e| format!("nodeRegistration.name: Invalid value: {name:?}: {e}"))
        .collect();
    (!errors.is_empty()).then(|| errors.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_name_is_a_lowercase_rfc_1123_subdomain() {
        for ok in ["worker-1", "w1.example.com", "a"] {
            assert_eq!(name_errors(ok), None, "{ok}");
        }
        for (bad, says) in [
            ("", "nodeRegistration: Required value: --node-name"),
            (
                "Bad_Name",
                "nodeRegistration.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain",
            ),
            (
                "a/b",
                "nodeRegistration.name: Invalid value: \"a/b\": a lowercase RFC 1123 subdomain",
            ),
            (&"a".repeat(300), "must be no more than 253 characters"),
        ] {
            let err = name_errors(bad).unwrap_or_default();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn a_node_is_who_its_certificate_says() {
        let cert = "pki/kubelet-client-current.pem";
        let held = |cn| Some((cn, cert));
        for (case, given, held, want) in [
            ("no certificate, no flag: the host", None, None, Ok("vm")),
            (
                "no certificate: the flag",
                Some("worker-1"),
                None,
                Ok("worker-1"),
            ),
            (
                "the certificate's name",
                None,
                held("system:node:worker-1"),
                Ok("worker-1"),
            ),
            (
                "the flag agrees",
                Some("worker-1"),
                held("system:node:worker-1"),
                Ok("worker-1"),
            ),
            (
                "the flag disagrees",
                Some("worker-2"),
                held("system:node:worker-1"),
                Err(
                    "--node-name worker-2 disagrees with the client certificate pki/kubelet-client-current.pem, which is node worker-1's: drop --node-name, or give --node-name worker-1",
                ),
            ),
            (
                "not a node's certificate",
                None,
                held("kubernetes-admin"),
                Err(
                    "the client certificate pki/kubelet-client-current.pem is for \"kubernetes-admin\", not a node (CN=system:node:<name>): join the node again with kubeboot join",
                ),
            ),
            (
                "an empty node name",
                None,
                held("system:node:"),
                Err(
                    "the client certificate pki/kubelet-client-current.pem is for \"system:node:\", not a node (CN=system:node:<name>): join the node again with kubeboot join",
                ),
            ),
        ] {
            let got = node_name(given, held, "vm").map_err(|e| e.to_string());
            assert_eq!(
                got,
                want.map(str::to_owned).map_err(str::to_owned),
                "{case}"
            );
        }
    }
}
