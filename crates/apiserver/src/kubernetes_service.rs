//! The `kubernetes` Service in `default` and its Endpoints, as kube-apiserver keeps them:
//! in-cluster clients find the API server there. The Service (the first address of the
//! service range, port 443 to the secure port) is created when missing and otherwise left
//! alone; the Endpoints list the address each API server advertises, written every 10
//! seconds when this server's is missing. (kube-apiserver also removes the addresses of
//! servers gone for good, through their leases; here an operator deletes the Endpoints and
//! the live servers write themselves back.) A loopback or unspecified address is no
//! endpoint, as Endpoints validation says: such a server publishes none.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use kubeboot_api::Status;
use serde_json::{Value, json};

use crate::handlers::{Handlers, Update};
use crate::registry::{self, Kind};
use crate::requestinfo::Query;
use crate::seed::{is_already_exists, user};

/// How often the Service and Endpoints are looked at (`--endpoint-reconciler` interval).
const EVERY: Duration = Duration::from_secs(10);
const NAME: &str = "kubernetes";
const NAMESPACE: &str = "default";

/// Keeps the `kubernetes` Service and this server's endpoint (`advertise`:`port`).
pub fn spawn(handlers: Arc<Handlers>, advertise: IpAddr, port: u16) {
    crate::periodic::every(handlers, EVERY, move |handlers, first| async move {
        if let Err(e) = handlers.ensure_kubernetes_service(advertise, port).await
            && first
        {
            tracing::warn!(error = %e.message, "cannot publish the kubernetes Service yet; retrying");
        }
    });
}

/// The `kubernetes` Service: the first address of the range, 443 to `port`, no selector.
pub fn service(cluster_ip: IpAddr, port: u16) -> Value {
    json!({
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"provider": "kubernetes", "component": "apiserver"}},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip.to_string(),
            "sessionAffinity": "None",
            "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": port}],
        },
    })
}

/// The Endpoints with `ip`:`port` among them: `None` when `current` already lists it.
/// Other servers' addresses stay when they serve the same port; the addresses are sorted.
pub fn with_endpoint(current: Option<&Value>, ip: IpAddr, port: u16) -> Option<Value> {
    let ports = json!([{"name": "https", "port": port, "protocol": "TCP"}]);
    let subset = current.and_then(|c| c.pointer("/subsets/0"));
    let mut ips: Vec<String> = match subset {
        Some(ss) if ss["ports"] == ports => ss["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["ip"].as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let only_one_subset = current
        .and_then(|c| c["subsets"].as_array())
        .is_some_and(|s| s.len() == 1);
    if ips.contains(&ip.to_string()) && only_one_subset {
        return None;
    }
    ips.push(ip.to_string());
    ips.sort();
    ips.dedup();
    let addresses: Vec<Value> = ips.iter().map(|ip| json!({"ip": ip})).collect();
    let mut out = current.cloned().unwrap_or_else(|| {
        json!({"metadata": {"name": NAME, "namespace": NAMESPACE, "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}}})
    });
    out["subsets"] = json!([{"addresses": addresses, "ports": ports}]);
    Some(out)
}

impl Handlers {
    /// Creates the `kubernetes` Service when it is missing, and adds this server's
    /// endpoint to its Endpoints.
    pub async fn ensure_kubernetes_service(
        &self,
        advertise: IpAddr,
        port: u16,
    ) -> Result<(), Status> {
        let services = registry::by_kind(Kind::Service);
        let first = self
            .service_network()
            .cidr
            .at(0)
            .ok_or_else(|| Status::internal("the service range is empty"))?;
        if self.object(services, NAMESPACE, NAME).await?.is_none() {
            match self
                .create(
                    services,
                    NAMESPACE,
                    service(first, port),
                    &Query::default(),
                    &user(),
                )
                .await
            {
                Ok(_) => {}
                Err(s) if is_already_exists(&s) => {}
                Err(s) => return Err(s),
            }
        }
        if advertise.is_loopback() || advertise.is_unspecified() {
            return Ok(());
        }
        let endpoints = registry::by_kind(Kind::Endpoints);
        let current = self.object(endpoints, NAMESPACE, NAME).await?;
        let Some(wanted) = with_endpoint(current.as_ref(), advertise, port) else {
            return Ok(());
        };
        let written = match current {
            None => {
                self.create(endpoints, NAMESPACE, wanted, &Query::default(), &user())
                    .await
            }
            Some(_) => {
                let change = Update::Replace(wanted);
                self.update(
                    endpoints,
                    NAMESPACE,
                    NAME,
                    "",
                    change,
                    &Query::default(),
                    &user(),
                )
                .await
            }
        };
        // Another server wrote meanwhile: the next round looks again.
        match written {
            Err(s) if s.code != 409 => Err(s),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_server_adds_its_address_once() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let first = with_endpoint(None, ip("10.0.0.2"), 6443).unwrap();
        assert_eq!(
            first["subsets"],
            json!([{"addresses": [{"ip": "10.0.0.2"}], "ports": [{"name": "https", "port": 6443, "protocol": "TCP"}]}])
        );
        assert_eq!(
            first["metadata"]["labels"]["endpointslice.kubernetes.io/skip-mirror"],
            "true"
        );
        assert_eq!(with_endpoint(Some(&first), ip("10.0.0.2"), 6443), None);
        let two = with_endpoint(Some(&first), ip("10.0.0.1"), 6443).unwrap();
        let listed: Vec<&str> = two["subsets"][0]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["ip"].as_str().unwrap())
            .collect();
        assert_eq!(listed, ["10.0.0.1", "10.0.0.2"]);
        // A server on another port replaces what no longer matches.
        let moved = with_endpoint(Some(&two), ip("10.0.0.1"), 7443).unwrap();
        assert_eq!(
            moved["subsets"][0]["addresses"],
            json!([{"ip": "10.0.0.1"}])
        );
    }

    #[test]
    fn the_service_is_the_first_address_to_the_secure_port() {
        let s = service("10.96.0.1".parse().unwrap(), 6443);
        assert_eq!(s["spec"]["clusterIP"], "10.96.0.1");
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 6443);
        assert_eq!(s["metadata"]["labels"]["component"], "apiserver");
    }
}
