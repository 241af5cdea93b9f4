//! The node's registration and heartbeat, as the kubelet posts them: the Node object with
//! its addresses, Ready condition and node info, its status every 10 s, and its Lease in
//! `kube-node-lease`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use kubeboot_api::Clock;
use kubeboot_api::clock::{format_micro_time, format_rfc3339};
use kubeboot_client::{Client, ClientError};
use serde_json::{Value, json};

use crate::rotation::backoff;

/// What the node posts about itself, and the client it posts with.
#[derive(Clone)]
pub(crate) struct NodeStatus {
    pub(crate) client: Client,
    pub(crate) name: String,
    pub(crate) ips: Vec<IpAddr>,
    pub(crate) port: u16,
    pub(crate) clock: Arc<dyn Clock>,
}

const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases";

impl NodeStatus {
    /// The Node object, Ready or not.
    fn object(&self, ready: bool) -> Value {
        node_object(
            &self.name,
            &self.ips,
            self.port,
            ready,
            &format_rfc3339(self.clock.now()),
        )
    }

    /// Registers the Node (creating it if it is not there) and marks it Ready, retrying
    /// with backoff until it succeeds.
    pub(crate) async fn register(&self) {
        let path = format!("/api/v1/nodes/{}", self.name);
        for attempt in 1..=u32::MAX {
            let result = match self.client.get::<Value>(&path).await {
                Ok(_) => self.post(true).await,
                Err(e) if e.code() == Some(404) => {
                    match self
                        .client
                        .create::<Value>("/api/v1/nodes", &self.object(true))
                        .await
                    {
                        Ok(_) => self.post(true).await,
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    tracing::info!(node = %self.name, "registered the node");
                    return;
                }
                Err(e) => {
                    tracing::warn!(node = %self.name, error = %e, "registering the node failed; retrying");
                    tokio::time::sleep(backoff(attempt, 0.0)).await;
                }
            }
        }
    }

    /// Posts the node's status, Ready or not.
    pub(crate) async fn post(&self, ready: bool) -> Result<(), ClientError> {
        let status = self.object(ready)["status"].clone();
        self.client
            .merge_patch::<Value>(
                &format!("/api/v1/nodes/{}/status", self.name),
                &json!({"status": status}),
            )
            .await
            .map(|_| ())
    }

    /// Renews the node's Lease and posts its status every 10 s, for ever.
    pub(crate) async fn heartbeat(self) {
        let name = &self.name;
        let lease = format!("{LEASES}/{name}");
        loop {
            let now = format_micro_time(self.clock.now());
            let renewed = match self
                .client
                .merge_patch::<Value>(&lease, &json!({"spec": {"renewTime": now, "holderIdentity": name}}))
                .await
            {
                Err(e) if e.code() == Some(404) => self
                    .client
                    .create::<Value>(
                        LEASES,
                        &json!({"metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": {"holderIdentity": name, "leaseDurationSeconds": 40, "renewTime": now}}),
                    )
                    .await
                    .map(|_| ()),
                other => other.map(|_| ()),
            };
            if let Err(e) = renewed {
                tracing::warn!(node = %name, error = %e, "renewing the node lease failed");
            }
            if let Err(e) = self.post(true).await {
                tracing::warn!(node = %name, error = %e, "updating the node status failed");
            }
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
    }
}

fn node_object(name: &str, ips: &[IpAddr], port: u16, ready: bool, now: &str) -> Value {
    let mut addresses: Vec<Value> = ips
        .iter()
        .map(|ip| json!({"type": "InternalIP", "address": ip.to_string()}))
        .collect();
    addresses.push(json!({"type": "Hostname", "address": name}));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": arch}},
        "status": {
            "addresses": addresses,
            "conditions": [ready_condition(ready, now)],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "", "kernelVersion": kernel_version(), "osImage": "kubeboot node",
                "containerRuntimeVersion": "none://", "kubeletVersion": concat!("v1.33.0-kubeboot.", env!("CARGO_PKG_VERSION")),
                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": arch}
        }
    })
}

fn ready_condition(ready: bool, now: &str) -> Value {
    if ready {
        json!({"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubeboot node agent is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now})
    } else {
        json!({"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "kubeboot node agent stopped", "lastHeartbeatTime": now, "lastTransitionTime": now})
    }
}

fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

/// The local address used to reach the API server (no packet is sent).
pub(crate) fn outbound_ip(server: &str) -> Option<IpAddr> {
    let host = server
        .trim_start_matches("https://")
        .rsplit_once(':')
        .map_or(server, |(h, _)| h);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let target: IpAddr = host.parse().ok()?;
    let sock = std::net::UdpSocket::bind(SocketAddr::new(
        if target.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        },
        0,
    ))
    .ok()?;
    sock.connect(SocketAddr::new(target, 443)).ok()?;
    sock.local_addr().ok().map(|a| a.ip())
}
