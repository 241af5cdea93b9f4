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

/// One thing a Service holds from the cluster's ranges, and the key that reserves it.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Held {
    ClusterIp(IpAddr),
    NodePort(u16),
}

impl Held {
    fn key(self) -> String {
        match self {
            Held::ClusterIp(ip) => registry::by_kind(Kind::IpAddress).key("", &ip.to_string()),
            Held::NodePort(port) => format!("{NODE_PORTS}{port}"),
        }
    }

    /// The object that reserves it for `svc`: an IPAddress, or a NodePort record.
    fn record(self, family: &str, svc: &Value, now: SystemTime) -> Value {
        let (name, labels, uid) = match self {
            Held::ClusterIp(ip) => (
                ip.to_string(),
                json!({"ipaddress.kubernetes.io/ip-family": family,
                       "ipaddress.kubernetes.io/managed-by": MANAGED_BY}),
                Some(crate::object::random_uid()),
            ),
            Held::NodePort(port) => (
                port.to_string(),
                json!({"ipaddress.kubernetes.io/managed-by": MANAGED_BY}),
                None,
            ),
        };
        let mut meta = json!({
            "name": name,
            "creationTimestamp": format_rfc3339(now),
            "labels": labels,
        });
        if let Some(uid) = uid {
            meta["uid"] = json!(uid);
        }
        json!({"metadata": meta, "spec": {"parentRef": Parent::of(svc).json()}})
    }

    /// kube-apiserver's refusal of it for `svc`, naming the field that asked for it.
    fn invalid(self, svc: &Value, detail: &str) -> Status {
        let (field, value) = match self {
            Held::ClusterIp(ip) => (
                "spec.clusterIPs".to_owned(),
                kubeboot_api::status::go_strings(&[&ip.to_string()]),
            ),
            Held::NodePort(port) => (node_port_field(svc, port), port.to_string()),
        };
        let cause = StatusCause::invalid_rendered(&field, &value, detail);
        Status::invalid("Service", "", meta_str(svc, "name"), vec![cause])
    }

    /// Why it cannot be asked for, when it is outside the cluster's range.
    fn out_of_range(self, network: &ServiceNetwork) -> Option<String> {
        match self {
            Held::ClusterIp(ip) => allocator::out_of_range(&network.cidr, ip)
                .map(|refusal| format!("failed to allocate IP {ip}: {refusal}")),
            Held::NodePort(port) => (!network.node_ports.contains(port)).then(|| {
                format!(
                    "provided port is not in the valid range. The range of valid ports is {}",
                    network.node_ports.as_string()
                )
            }),
        }
    }

    fn taken_detail(self) -> String {
        match self {
            Held::ClusterIp(ip) => {
                format!("failed to allocate IP {ip}: provided IP is already allocated")
            }
            Held::NodePort(_) => "provided port is already allocated".to_owned(),
        }
    }
}

/// A range dynamic allocations are drawn from, as indexes from 0.
#[derive(Clone, Copy)]
enum Pool {
    ClusterIps(allocator::ServiceCidr),
    NodePorts(allocator::PortRange),
}

impl Pool {
    fn prefix(self) -> String {
        match self {
            Pool::ClusterIps(_) => registry::by_kind(Kind::IpAddress).prefix(),
            Pool::NodePorts(_) => NODE_PORTS.to_owned(),
        }
    }

    fn size_and_band(self) -> (u64, u64) {
        match self {
            Pool::ClusterIps(cidr) => (cidr.size(), cidr.static_band()),
            Pool::NodePorts(range) => (u64::from(range.size), range.static_band()),
        }
    }

    fn at(self, index: u64) -> Option<Held> {
        match self {
            Pool::ClusterIps(cidr) => cidr.at(index).map(Held::ClusterIp),
            Pool::NodePorts(range) => u16::try_from(index)
                .ok()
                .and_then(|i| range.base.checked_add(i))
                .filter(|p| range.contains(*p))
                .map(Held::NodePort),
        }
    }

    fn index_of(self, held: Held) -> Option<u64> {
        match (self, held) {
            (Pool::ClusterIps(cidr), Held::ClusterIp(ip)) => cidr.index_of(ip),
            (Pool::NodePorts(range), Held::NodePort(p)) if range.contains(p) => {
                Some(u64::from(p - range.base))
            }
            _ => None,
        }
    }

    /// The index of the reservation stored under `name` (the part of its key after the
    /// prefix).
    fn index_of_name(self, name: &str) -> Option<u64> {
        let held = match self {
            Pool::ClusterIps(_) => Held::ClusterIp(name.parse().ok()?),
            Pool::NodePorts(_) => Held::NodePort(name.parse().ok()?),
        };
        self.index_of(held)
    }

    fn full(self) -> Status {
        Status::internal(match self {
            Pool::ClusterIps(_) => "failed to allocate a serviceIP: range is full",
            Pool::NodePorts(_) => "failed to allocate a nodePort: range is full",
        })
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
        let mut keep = |held: Held| {
            if !dry_run {
                reserved.push(held.key());
            }
        };
        let family = self.network.cidr.family();
        let causes = service::ip_family_causes(svc, old, family);
        if !causes.is_empty() {
            let name = crate::object::meta_str(svc, "name");
            return Err(Status::invalid("Service", "", name, causes));
        }
        let held_ips = old.map(service::held_ips).unwrap_or_default();
        let ip = match service::cluster_ip_wanted(svc) {
            ClusterIpWanted::Nothing => None,
            ClusterIpWanted::Headless => {
                service::set_cluster_ip(svc, None, family);
                None
            }
            ClusterIpWanted::Exact(ip) if held_ips.contains(&ip) => None,
            ClusterIpWanted::Exact(ip) => {
                Some(self.reserve(Held::ClusterIp(ip), svc, dry_run).await?)
            }
            ClusterIpWanted::Any => Some(
                self.reserve_free(Pool::ClusterIps(self.network.cidr), svc, dry_run)
                    .await?,
            ),
        };
        if let Some(held @ Held::ClusterIp(ip)) = ip {
            keep(held);
            service::set_cluster_ip(svc, Some(ip), family);
        }
        let held_ports = old.map(service::held_node_ports).unwrap_or_default();
        let wanted = service::held_node_ports(svc);
        for port in wanted.into_iter().filter(|p| !held_ports.contains(p)) {
            keep(self.reserve(Held::NodePort(port), svc, dry_run).await?);
        }
        for i in service::ports_without_node_port(svc) {
            let pool = Pool::NodePorts(self.network.node_ports);
            let held = self.reserve_free(pool, svc, dry_run).await?;
            keep(held);
            if let Held::NodePort(port) = held {
                svc["spec"]["ports"][i]["nodePort"] = json!(port);
            }
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
        let kept = new.map(holdings).unwrap_or_default();
        let keys: Vec<String> = holdings(old)
            .into_iter()
            .filter(|h| !kept.contains(h))
            .map(Held::key)
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

    /// Reserves what `svc` asks for by name: refused when it is outside the range or taken.
    async fn reserve(&self, held: Held, svc: &Value, dry_run: bool) -> Result<Held, Status> {
        if let Some(refusal) = held.out_of_range(&self.network) {
            return Err(held.invalid(svc, &refusal));
        }
        if !self.create_reservation(held, svc, dry_run).await? {
            return Err(held.invalid(svc, &held.taken_detail()));
        }
        Ok(held)
    }

    /// Reserves a free one of `pool`: a random pick of the upper band, then the next free
    /// one. What `svc` already holds or was just given is not free, even in a dry run.
    async fn reserve_free(&self, pool: Pool, svc: &Value, dry_run: bool) -> Result<Held, Status> {
        let prefix = pool.prefix();
        let mut taken: HashSet<u64> = self
            .reservation_names(&prefix)
            .await?
            .iter()
            .filter_map(|name| pool.index_of_name(name))
            .collect();
        taken.extend(holdings(svc).into_iter().filter_map(|h| pool.index_of(h)));
        let (size, band) = pool.size_and_band();
        for _ in 0..TRIES {
            let Some((i, held)) =
                free_index(size, band, random_u64(), &taken).and_then(|i| Some((i, pool.at(i)?)))
            else {
                break;
            };
            if self.create_reservation(held, svc, dry_run).await? {
                return Ok(held);
            }
            taken.insert(i);
        }
        Err(pool.full())
    }

    /// Creates the reservation of `held` for `svc` (a dry run only looks): whether it was
    /// free.
    async fn create_reservation(
        &self,
        held: Held,
        svc: &Value,
        dry_run: bool,
    ) -> Result<bool, Status> {
        let def = registry::by_kind(Kind::IpAddress);
        let key = held.key();
        if dry_run {
            let found = self
                .store
                .get(&key)
                .await
                .map_err(|e| from_store(e, def, ""))?;
            return Ok(found.is_none());
        }
        let record = held.record(self.network.cidr.family(), svc, self.now());
        match self.store.create(&key, encode(&record)?).await {
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
        let held: HashSet<String> = all.iter().flat_map(holdings).map(Held::key).collect();
        let now = self.now();
        for pool in [
            Pool::ClusterIps(self.network.cidr),
            Pool::NodePorts(self.network.node_ports),
        ] {
            let Ok(page) = self.store.list(&pool.prefix(), None, None).await else {
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

/// Everything `svc` holds: its ClusterIPs and NodePorts.
fn holdings(svc: &Value) -> Vec<Held> {
    let ips = service::held_ips(svc).into_iter().map(Held::ClusterIp);
    let ports = service::held_node_ports(svc)
        .into_iter()
        .map(Held::NodePort);
    ips.chain(ports).collect()
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

fn random_u64() -> u64 {
    u64::from_le_bytes(kubeboot_api::random::bytes::<8>(
        &kubeboot_api::random::OsRandom,
    ))
}
