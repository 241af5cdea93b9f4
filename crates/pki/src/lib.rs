//! Keys, certificate requests, certificates, CA pins and kubeconfig files.
//!
//! Pure functions of their inputs (time and randomness are parameters, keys come from the
//! caller) except `files`, which writes keys and kubeconfigs 0600 and everything atomically
//! (write, fsync, rename), and `reload`, which reads key material again when its files
//! change.

pub mod ca_rotation;
pub mod cert;
pub mod chain;
pub mod csr;
pub mod der;
pub mod files;
pub mod key;
pub mod kubeconfig;
pub mod name;
pub mod pem;
pub mod pin;
pub mod reload;
pub mod tls;
pub mod usage;

pub use cert::{CertificateAuthority, IssueError, LeafSpec};
pub use key::{KeyAlgorithm, PrivateKey};
pub use kubeconfig::Kubeconfig;
pub use usage::Usage;
