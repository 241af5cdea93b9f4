//! What a Service is given from the cluster's ranges, reserved in the store before the
//! Service is written and released when it lets go (an update, a delete, its namespace's
//! deletion). A ClusterIP is an IPAddress object named by the address, as kube-apiserver
//! 1.33 keeps them; a NodePort a `/registry/servicenodeports/<port>` key. Each reservation
//! is a create, so two requests (or two servers on one etcd) never get the same one. A
//! reservation whose Service never got written (a crash between the two) is removed by
//! [`Handlers::repair_service_reservations`].

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use kubeboot_api::clock::{format_rfc3339, parse_rfc3339};
use kubeboot_api::{Status, StatusCause};
use kubeboot_store::StoreError;
use serde_json::{Value, json};

use super::{Handlers, encode};
use crate::allocator::{self, free_index};
use crate::object::meta_str;
use crate::registry::service::{self, ClusterIpWanted};
use crate::registry::{self, Kind, ResourceDef};
use crate::status::from_store;

/// The label value of the reservations the server makes (kube-apiserver's allocator's).
const MANAGED_BY: &str = "ipallocator.k8s.io";
/// Where NodePort reservations are kept.
const NODE_PORTS: &str = "/registry/servicenodeports/";
/// How often a dynamic allocation tries again when another took its pick meanwhile.
const TRIES: usize = 16;
/// How old a reservation without its Service must be before the repair removes it: older
/// than any request that is still writing the Service.
const ORPHAN_AGE: Duration = Duration::from_secs(120);

/// The cluster's ranges (`--service-cluster-ip-range`, `--service-node-port-range`).
#[derive(Clone, Copy, Debug)]
pub struct ServiceNetwork {
    /// The ClusterIP range.
    pub cidr: allocator::ServiceCidr,
    /// The NodePort range.
    pub node_ports: allocator::PortRange,
}

impl Default for ServiceNetwork {
    /// kubeadm's defaults: `10.96.0.0/12` and `30000-32767`.
    fn default() -> Self {
        Self {
            cidr: allocator::ServiceCidr::parse("10.96.0.0/12").expect("a valid CIDR"),
            node_ports: allocator::PortRange::parse("30000-32767").expect("a valid range"),
        }
    }
}

/// How often reservations no Service holds are looked for.
const REPAIR_EVERY: Duration = Duration::from_secs(180);

/// Starts removing leftover reservations, now and every three minutes.
pub fn spawn_service_repair(handlers: std::sync::Arc<Handlers>) {
    crate::periodic::every(handlers, REPAIR_EVERY, |handlers, _| async move {
        handlers.repair_service_reservations().await;
    });
}

/// Whose a reservation is: the Service, as an IPAddress's `parentRef` names it.
struct Parent<'a> {
    ns: &'a str,
    name: &'a str,
}

impl Parent<'_> {
    fn of(svc: &Value) -> Parent<'_> {
        Parent {
            ns: meta_str(svc, "namespace"),
            name: meta_str(svc, "name"),
        }
    }

    fn json(&self) -> Value {
        json!({"group": "", "resource": "services", "namespace": self.ns, "name": self.name})
    }
}

impl Handlers {
    /// Gives a Service about to be written (`new`) what it asks for and the stored one
    /// (`old`, on an update) does not hold yet: the keys reserved, which the caller
    /// releases if the write fails. A dry run only checks.
    pub(super) async fn reserve_for(
        &self,
        def: &ResourceDef,
        new: &mut Value,
        old: Option<&Value>,
        dry_run: bool,
    ) -> Result<Vec<String>, Status> {
        if def.kind_id != Kind::Service {
            return Ok(Vec::new());
        }
        let mut reserved = Vec::new();
        let result = self.reserve_all(new, old, dry_run, &mut reserved).await;
        if result.is_err() {
            self.release(&reserved).await;
        }
        result.map(|()| reserved)
    }

    async fn reserve_all(
        &self,
        svc: &mut Value,
        old: Option<&Value>,
        dry_run: bool,
        reserved: &mut Vec<String>,
    ) -> Result<(), Status> {
        let held_ips = old.map(service::held_ips).unwrap_or_default();
        reserved.extend(self.reserve_cluster_ip(svc, &held_ips, dry_run).await?);
        let held_ports = old.map(service::held_node_ports).unwrap_or_default();
        let wanted = service::held_node_ports(svc);
        for port in wanted.into_iter().filter(|p| !held_ports.contains(p)) {
            self.reserve_node_port(svc, port, dry_run).await?;
            if !dry_run {
                reserved.push(format!("{NODE_PORTS}{port}"));
            }
        }
        for i in service::ports_without_node_port(svc) {
            let port = self.free_node_port(svc, dry_run, reserved).await?;
            svc["spec"]["ports"][i]["nodePort"] = json!(port);
        }
        Ok(())
    }

    /// Releases what a Service held (`old`) and no longer holds (`new`; `None` when it was
    /// deleted, and then its Endpoints go too, as kube-apiserver's `afterDelete` does).
    pub(super) async fn release_dropped(
        &self,
        def: &ResourceDef,
        old: &Value,
        new: Option<&Value>,
    ) {
        if def.kind_id != Kind::Service {
            return;
        }
        if new.is_none() {
            let endpoints = registry::by_kind(Kind::Endpoints);
            let key = endpoints.key(meta_str(old, "namespace"), meta_str(old, "name"));
            self.release(&[key]).await;
        }
        let kept_ips = new.map(service::held_ips).unwrap_or_default();
        let kept_ports = new.map(service::held_node_ports).unwrap_or_default();
        let ips = service::held_ips(old)
            .into_iter()
            .filter(|ip| !kept_ips.contains(ip));
        let ports = service::held_node_ports(old)
            .into_iter()
            .filter(|p| !kept_ports.contains(p));
        let keys: Vec<String> = ips
            .map(ip_key)
            .chain(ports.map(|p| format!("{NODE_PORTS}{p}")))
            .collect();
        self.release_held(&keys, &Parent::of(old)).await;
    }

    /// Deletes the reservations among `keys` that `parent` holds: one another Service
    /// holds now (its address given again after an operator deleted the IPAddress) stays.
    async fn release_held(&self, keys: &[String], parent: &Parent<'_>) {
        for key in keys {
            let Ok(Some(kv)) = self.store.get(key).await else {
                continue;
            };
            let obj: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
            if obj.pointer("/spec/parentRef") == Some(&parent.json()) {
                let _ = self.store.delete(key, Some(kv.mod_revision)).await;
            }
        }
    }

    /// Deletes reservations (one already gone is fine; a failure is left to the repair).
    pub(super) async fn release(&self, keys: &[String]) {
        for key in keys {
            if let Err(e) = self.store.delete(key, None).await
                && !matches!(e, StoreError::NotFound(_))
            {
                tracing::warn!(%key, error = %e, "cannot release a Service's reservation now; the repair will");
            }
        }
    }

    async fn reserve_cluster_ip(
        &self,
        svc: &mut Value,
        held: &[IpAddr],
        dry_run: bool,
    ) -> Result<Option<String>, Status> {
        let cidr = self.network.cidr;
        let ip = match service::cluster_ip_wanted(svc) {
            ClusterIpWanted::Nothing => return Ok(None),
            ClusterIpWanted::Headless => {
                service::set_cluster_ip(svc, None, cidr.family());
                return Ok(None);
            }
            ClusterIpWanted::Exact(ip) if held.contains(&ip) => return Ok(None),
            ClusterIpWanted::Exact(ip) => {
                if let Some(refusal) = allocator::out_of_range(&cidr, ip) {
                    return Err(cluster_ip_invalid(
                        svc,
                        ip,
                        &format!("failed to allocate IP {ip}: {refusal}"),
                    ));
                }
                if !self
                    .create_reservation(
                        &ip_key(ip),
                        ip_address(ip, cidr.family(), svc, self.now()),
                        dry_run,
                    )
                    .await?
                {
                    let detail =
                        format!("failed to allocate IP {ip}: provided IP is already allocated");
                    return Err(cluster_ip_invalid(svc, ip, &detail));
                }
                ip
            }
            ClusterIpWanted::Any => self.free_cluster_ip(svc, dry_run).await?,
        };
        service::set_cluster_ip(svc, Some(ip), cidr.family());
        Ok((!dry_run).then(|| ip_key(ip)))
    }

    /// A free ClusterIP, reserved: a random pick of the upper band, then the next free one.
    async fn free_cluster_ip(&self, svc: &Value, dry_run: bool) -> Result<IpAddr, Status> {
        let cidr = self.network.cidr;
        let mut taken: HashSet<u64> = self
            .reservation_names(&registry::by_kind(Kind::IpAddress).prefix())
            .await?
            .iter()
            .filter_map(|n| cidr.index_of(n.parse().ok()?))
            .collect();
        for _ in 0..TRIES {
            let Some(ip) = free_index(cidr.size(), cidr.static_band(), random_u64(), &taken)
                .and_then(|i| cidr.at(i))
            else {
                break;
            };
            if self
                .create_reservation(
                    &ip_key(ip),
                    ip_address(ip, cidr.family(), svc, self.now()),
                    dry_run,
                )
                .await?
            {
                return Ok(ip);
            }
            taken.extend(cidr.index_of(ip));
        }
        Err(Status::internal(
            "failed to allocate a serviceIP: range is full",
        ))
    }

    async fn reserve_node_port(&self, svc: &Value, port: u16, dry_run: bool) -> Result<(), Status> {
        let range = self.network.node_ports;
        let field = node_port_field(svc, port);
        if !range.contains(port) {
            let detail = format!(
                "provided port is not in the valid range. The range of valid ports is {}",
                range.as_string()
            );
            return Err(node_port_invalid(svc, &field, port, &detail));
        }
        let key = format!("{NODE_PORTS}{port}");
        if !self
            .create_reservation(&key, node_port(port, svc, self.now()), dry_run)
            .await?
        {
            return Err(node_port_invalid(
                svc,
                &field,
                port,
                "provided port is already allocated",
            ));
        }
        Ok(())
    }

    /// A free NodePort, reserved (and added to `reserved`).
    async fn free_node_port(
        &self,
        svc: &Value,
        dry_run: bool,
        reserved: &mut Vec<String>,
    ) -> Result<u16, Status> {
        let range = self.network.node_ports;
        let mut taken: HashSet<u64> = self
            .reservation_names(NODE_PORTS)
            .await?
            .iter()
            .filter_map(|n| n.parse::<u16>().ok())
            .filter(|p| range.contains(*p))
            .map(|p| u64::from(p - range.base))
            .collect();
        // Ports this Service holds or was just given are not free, even in a dry run.
        taken.extend(
            service::held_node_ports(svc)
                .iter()
                .filter(|p| range.contains(**p))
                .map(|p| u64::from(p - range.base)),
        );
        for _ in 0..TRIES {
            let Some(i) = free_index(
                u64::from(range.size),
                range.static_band(),
                random_u64(),
                &taken,
            ) else {
                break;
            };
            let port = range.base + i as u16;
            let key = format!("{NODE_PORTS}{port}");
            if self
                .create_reservation(&key, node_port(port, svc, self.now()), dry_run)
                .await?
            {
                if !dry_run {
                    reserved.push(key);
                }
                return Ok(port);
            }
            taken.insert(i);
        }
        Err(Status::internal(
            "failed to allocate a nodePort: range is full",
        ))
    }

    /// Creates a reservation (a dry run only looks): whether it was free.
    async fn create_reservation(
        &self,
        key: &str,
        obj: Value,
        dry_run: bool,
    ) -> Result<bool, Status> {
        let def = registry::by_kind(Kind::IpAddress);
        if dry_run {
            let found = self
                .store
                .get(key)
                .await
                .map_err(|e| from_store(e, def, ""))?;
            return Ok(found.is_none());
        }
        match self.store.create(key, encode(&obj)?).await {
            Ok(_) => Ok(true),
            Err(StoreError::AlreadyExists(_)) => Ok(false),
            Err(e) => Err(from_store(e, def, "")),
        }
    }

    async fn reservation_names(&self, prefix: &str) -> Result<Vec<String>, Status> {
        let def = registry::by_kind(Kind::IpAddress);
        let page = self
            .store
            .list(prefix, None, None)
            .await
            .map_err(|e| from_store(e, def, ""))?;
        Ok(page
            .items
            .iter()
            .filter_map(|kv| kv.key.strip_prefix(prefix).map(str::to_owned))
            .collect())
    }

    /// Removes the reservations whose Service does not hold them (a crash between the
    /// reservation and the write, a release that failed), once they are older than any
    /// request still at work.
    pub async fn repair_service_reservations(&self) {
        let services = registry::by_kind(Kind::Service);
        let Ok(all) = self.objects(services, "").await else {
            return;
        };
        let mut held: HashSet<String> = HashSet::new();
        for svc in &all {
            held.extend(service::held_ips(svc).into_iter().map(ip_key));
            held.extend(
                service::held_node_ports(svc)
                    .into_iter()
                    .map(|p| format!("{NODE_PORTS}{p}")),
            );
        }
        let now = self.now();
        for prefix in [
            registry::by_kind(Kind::IpAddress).prefix(),
            NODE_PORTS.to_owned(),
        ] {
            let Ok(page) = self.store.list(&prefix, None, None).await else {
                continue;
            };
            let orphans = page
                .items
                .iter()
                .filter(|kv| !held.contains(&kv.key))
                .filter(|kv| {
                    let obj: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
                    is_orphan(&obj, now)
                });
            for kv in orphans {
                if self
                    .store
                    .delete(&kv.key, Some(kv.mod_revision))
                    .await
                    .is_ok()
                {
                    tracing::info!(key = %kv.key, "released a Service reservation that no Service holds");
                }
            }
        }
    }
}

/// Whether a reservation no Service holds is old enough to be a leftover; one the server
/// did not make (no parent naming a Service) is not the repair's to remove.
fn is_orphan(obj: &Value, now: SystemTime) -> bool {
    let ours = obj
        .pointer("/spec/parentRef/resource")
        .and_then(Value::as_str)
        == Some("services")
        && obj.pointer("/metadata/labels/ipaddress.kubernetes.io~1managed-by")
            == Some(&json!(MANAGED_BY));
    let created = parse_rfc3339(meta_str(obj, "creationTimestamp"));
    ours && created.is_some_and(|t| t + ORPHAN_AGE <= now)
}

fn ip_key(ip: IpAddr) -> String {
    registry::by_kind(Kind::IpAddress).key("", &ip.to_string())
}

/// The IPAddress that reserves `ip` for `svc`.
fn ip_address(ip: IpAddr, family: &str, svc: &Value, now: SystemTime) -> Value {
    json!({
        "metadata": {
            "name": ip.to_string(),
            "uid": crate::object::random_uid(),
            "creationTimestamp": format_rfc3339(now),
            "labels": {
                "ipaddress.kubernetes.io/ip-family": family,
                "ipaddress.kubernetes.io/managed-by": MANAGED_BY,
            },
        },
        "spec": {"parentRef": Parent::of(svc).json()},
    })
}

/// The record that reserves NodePort `port` for `svc`.
fn node_port(port: u16, svc: &Value, now: SystemTime) -> Value {
    json!({
        "metadata": {
            "name": port.to_string(),
            "creationTimestamp": format_rfc3339(now),
            "labels": {"ipaddress.kubernetes.io/managed-by": MANAGED_BY},
        },
        "spec": {"parentRef": Parent::of(svc).json()},
    })
}

fn cluster_ip_invalid(svc: &Value, ip: IpAddr, detail: &str) -> Status {
    let cause = StatusCause::new(
        "FieldValueInvalid",
        "spec.clusterIPs",
        format!("Invalid value: []string{{{:?}}}: {detail}", ip.to_string()),
    );
    Status::invalid("Service", "", meta_str(svc, "name"), vec![cause])
}

/// The field of the first port that asks for NodePort `port`.
fn node_port_field(svc: &Value, port: u16) -> String {
    let ports = svc.pointer("/spec/ports").and_then(Value::as_array);
    let i = ports
        .into_iter()
        .flatten()
        .position(|p| p.get("nodePort").and_then(Value::as_u64) == Some(u64::from(port)))
        .unwrap_or(0);
    format!("spec.ports[{i}].nodePort")
}

fn node_port_invalid(svc: &Value, field: &str, port: u16, detail: &str) -> Status {
    let cause = StatusCause::new(
        "FieldValueInvalid",
        field,
        format!("Invalid value: {port}: {detail}"),
    );
    Status::invalid("Service", "", meta_str(svc, "name"), vec![cause])
}

fn random_u64() -> u64 {
    u64::from_le_bytes(kubeboot_api::random::bytes::<8>(
        &kubeboot_api::random::OsRandom,
    ))
}
