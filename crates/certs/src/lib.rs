//! `kubeboot certs`: the PKI of a cluster built by hand, from one spec — the identities the
//! RBAC and Node authorizers recognise, each with its own usages, the API server's SANs,
//! kubeconfigs, and an encryption config. Generation is idempotent: an unchanged spec
//! changes no file, and existing keys are kept unless forced.

pub mod generate;
pub mod plan;
pub mod rotate;
pub mod spec;

pub use generate::{Layout, Outcome, check_expiration, generate, renew_all};
pub use plan::{Identity, identities};
pub use spec::{Spec, SpecError};
