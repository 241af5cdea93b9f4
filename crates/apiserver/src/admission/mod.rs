//! Kubernetes' built-in admission plugins that kubeboot enforces, each a pure decision over
//! the request's user and objects: `NodeRestriction` (what a kubelet may change of its own
//! Node), `TaintNodesByCondition` (a new Node is not ready until it says so),
//! `DefaultTolerationSeconds` and `Priority` (a pod's defaults) and `NamespaceLifecycle`
//! (which namespaces live forever, and no new content in one being deleted). The handlers
//! call them; they call nothing.

pub mod namespace_lifecycle;
pub mod node_restriction;
pub mod node_taint;
pub mod pod_defaults;
