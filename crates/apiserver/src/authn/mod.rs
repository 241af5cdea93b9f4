//! Authentication, one chain as kube-apiserver's: a bearer token when the request carries
//! one (it must authenticate: a bad token is 401, never anonymous), else the connection's
//! client certificate, else the anonymous user when anonymous requests are allowed.

pub mod bootstrap_token;
pub mod client_cert;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderMap, header};
use kubeboot_api::{Clock, Status};
use kubeboot_pki::reload::Reloading;
use kubeboot_store::BoxFuture;

pub use self::client_cert::{CertAuthError, ClientCa};
use crate::serving::Serving;

/// An authenticated user, as Kubernetes' `user.Info`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// UID (empty for certificate users).
    pub uid: String,
    /// Groups, including `system:authenticated` or `system:unauthenticated`.
    pub groups: Vec<String>,
    /// Extra attributes.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The group every authenticated user is in.
pub const AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous requests.
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
/// The anonymous user.
pub const ANONYMOUS: &str = "system:anonymous";

impl UserInfo {
    /// The anonymous user.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS.into(),
            groups: vec![UNAUTHENTICATED.into()],
            ..Default::default()
        }
    }

    /// True when the user is in `group`.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// Authenticates bearer tokens (the bootstrap-token authenticator plugs in here).
pub trait TokenAuthenticator: Send + Sync {
    /// The user a token is, `None` when this authenticator does not know it.
    fn authenticate<'a>(&'a self, token: &'a str) -> BoxFuture<'a, Option<UserInfo>>;
}

/// The identity a TLS connection's client certificate established.
#[derive(Clone, Debug)]
pub enum PeerCert {
    /// No certificate presented.
    None,
    /// A valid certificate: this user, until the certificate's end.
    Valid(UserInfo, SystemTime),
    /// A certificate that failed verification.
    Invalid,
}

/// What a connection brings to each of its requests.
#[derive(Clone, Debug)]
pub struct Conn {
    /// The client certificate's verdict.
    pub cert: PeerCert,
    /// The client's address.
    pub remote: std::net::IpAddr,
}

/// The authenticator chain.
pub struct Authenticator {
    serving: Arc<Reloading<Serving>>,
    tokens: Option<Arc<dyn TokenAuthenticator>>,
    anonymous: bool,
    clock: Arc<dyn Clock>,
}

impl Authenticator {
    /// A chain of client certificates (when `serving` has a client CA: the one of the
    /// moment), bearer tokens (when `tokens` is given) and, when `anonymous`, the anonymous
    /// user.
    pub fn new(
        serving: Arc<Reloading<Serving>>,
        tokens: Option<Arc<dyn TokenAuthenticator>>,
        anonymous: bool,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            serving,
            tokens,
            anonymous,
            clock,
        }
    }

    /// The verdict on a connection's client certificate (`leaf`, DER), if it presented one.
    pub fn peer_cert(&self, leaf: Option<&[u8]>) -> PeerCert {
        let serving = self.serving.get();
        match (leaf, &serving.client_ca) {
            (Some(leaf), Some(ca)) => match ca.authenticate(leaf, self.clock.now()) {
                Ok((user, not_after)) => PeerCert::Valid(user, not_after),
                Err(e) => {
                    tracing::debug!(error = %e, "client certificate refused");
                    PeerCert::Invalid
                }
            },
            _ => PeerCert::None,
        }
    }

    /// Whether a client certificate authenticates now (for in-process connections).
    pub fn check_client_cert(&self, leaf: &[u8]) -> Result<(), String> {
        let serving = self.serving.get();
        let Some(ca) = &serving.client_ca else {
            return Err("the server has no client CA (--client-ca-file) to authenticate it".into());
        };
        ca.authenticate(leaf, self.clock.now())
            .map(|_| ())
            .map_err(|e| format!("the client certificate does not authenticate: {e}"))
    }

    /// The user a bearer token is, if a token authenticator knows it (a TokenReview).
    pub async fn authenticate_token(&self, token: &str) -> Option<UserInfo> {
        self.tokens.as_ref()?.authenticate(token).await
    }

    /// Who sent a request with these headers over a connection whose certificate gave
    /// `peer`; 401 when nobody.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: &PeerCert,
    ) -> Result<UserInfo, Status> {
        // Any bytes, as Go's server takes them: a header that is not ASCII still carries a
        // token, which fails (401) rather than counting as no header (anonymous).
        let header = headers
            .get(header::AUTHORIZATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        if let Some(token) = header.as_deref().and_then(bearer_token) {
            if let Some(tokens) = &self.tokens
                && let Some(user) = tokens.authenticate(token).await
            {
                return Ok(user);
            }
            return Err(Status::unauthorized());
        }
        match peer {
            PeerCert::Valid(u, not_after) if self.clock.now() <= *not_after => Ok(u.clone()),
            // The certificate expired while the connection lived.
            PeerCert::Valid(..) => Err(Status::unauthorized()),
            PeerCert::Invalid => Err(Status::unauthorized()),
            PeerCert::None if self.anonymous => Ok(UserInfo::anonymous()),
            PeerCert::None => Err(Status::unauthorized()),
        }
    }
}

/// The bearer token of an `Authorization` header value, read as Kubernetes' bearer-token
/// authenticator reads it: the value trimmed and split on single spaces; the scheme is
/// `bearer` in any case, the token is the second part and must not be empty (so
/// `Bearer  <token>`, with two spaces, carries none), and a third part is ignored. `None`:
/// the header carries no bearer token, and the request is authenticated as if it had none.
pub fn bearer_token(header: &str) -> Option<&str> {
    let mut parts = header.trim().splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_as_kubernetes_reads_them() {
        for (header, want) in [
            (
                "Bearer abcdef.0123456789abcdef",
                Some("abcdef.0123456789abcdef"),
            ),
            (
                "bearer abcdef.0123456789abcdef",
                Some("abcdef.0123456789abcdef"),
            ),
            ("BEARER t", Some("t")),
            ("  Bearer t  ", Some("t")),
            ("Bearer t extra", Some("t")),
            ("Bearer  t", None),
            ("Bearer ", None),
            ("Bearer", None),
            ("Basic dXNlcjpwYXNz", None),
            ("Bearer\tt", None),
        ] {
            assert_eq!(bearer_token(header), want, "{header:?}");
        }
    }
}
