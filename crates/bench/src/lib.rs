//! The load generator behind `kubeboot bench`: it talks to a server only over HTTPS, as any
//! client would, and reports throughput, latency percentiles and the server's resources.

pub mod api;
pub mod bound;
pub mod etcd;
pub mod flows;
pub mod join;
pub mod plot;
pub mod server;
pub mod stats;
pub mod threads;
