//! `kubeboot certs`: the PKI of a cluster built by hand, from one spec — the identities the
//! RBAC and Node authorizers recognise, each with its own usages, the API server's SANs,
//! kubeconfigs, and an encryption config. Generation is idempotent: an unchanged spec
//! changes no file, and existing keys are kept unless forced.

pub mod generate;
pub mod plan;
pub mod renew;
pub mod rotate;
pub mod spec;

pub use generate::{Layout, Outcome, generate};
pub use plan::{Identity, identities};
pub use renew::{check_expiration, renew_all};
pub use spec::{Spec, SpecError};
