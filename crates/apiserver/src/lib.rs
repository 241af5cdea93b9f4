//! The Kubernetes-compatible API server: TLS, authentication (client certificates, bearer
//! tokens, anonymous), authorization (RBAC, Node), the served resources over a [`Store`],
//! watch, discovery and OpenAPI. It depends on `store`, never the reverse.
//!
//! [`Store`]: kubeboot_store::Store

pub mod admission;
pub mod allocator;
pub mod app;
pub mod audit;
pub mod authn;
pub mod authz;
pub mod body;
pub mod ca_rotation;
pub mod connection;
pub mod datadir;
pub mod discovery;
pub mod encryption;
pub mod event_ttl;
pub mod fieldmanager;
pub mod gate;
pub mod handlers;
pub mod health;
pub mod impersonation;
pub mod in_process;
pub mod inflight;
pub mod kubernetes_service;
pub mod listoptions;
pub mod metrics;
pub mod namespace_finisher;
pub mod object;
pub mod patch;
pub mod periodic;
pub mod policy;
pub mod protobuf;
pub mod ratelimit;
pub mod reconcile;
pub mod registry;
pub mod requestinfo;
pub mod response;
pub mod routing;
pub mod seed;
pub mod selectors;
pub mod server;
pub mod serving;
pub mod shape;
pub mod status;
pub mod strict;
pub mod tables;
pub mod tls;
pub mod watch;
pub mod written;

pub use server::{RunningServer, ServerConfig, StartError, start};
