//! Bootstrap tokens and the Secret that stores them (the rules of Kubernetes'
//! `bootstrap.kubernetes.io/token` Secrets), the detached JWS of `cluster-info` and what the
//! bootstrap signer keeps there. Pure: no I/O, no clock reads.

pub mod authn;
pub mod cluster_info;
pub mod jws;
pub mod listing;
pub mod secret;
pub mod token;

pub use secret::{TokenSecretError, validate_token_secret};
pub use token::{BootstrapToken, TokenError, TokenId, TokenSecret};
