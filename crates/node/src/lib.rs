//! The node side of TLS bootstrapping, written by Kubernetes' reference behaviour (kubeadm
//! join's discovery, the kubelet's certificate manager), so it works against any
//! Kubernetes-compatible API server: token discovery with CA pinning, the TLS bootstrap,
//! the kubelet-style certificate store, rotation, and the Node and its Lease.

pub mod agent;
pub mod cert_store;
pub mod discovery;
pub mod files;
pub mod identity;
pub mod join;
pub mod leftovers;
pub mod rotation;
pub mod tls_bootstrap;
