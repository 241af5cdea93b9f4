//! What a Service asks for and holds of the cluster's ranges: its ClusterIP and NodePorts,
//! as `handlers::services` reserves and releases them.

use std::net::IpAddr;

use serde_json::{Value, json};

use super::service_type;
use crate::registry::columns::str_at;

/// What ClusterIP a Service asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterIpWanted {
    /// None at all (an `ExternalName` Service).
    Nothing,
    /// `None`: a headless Service.
    Headless,
    /// Any free address.
    Any,
    /// This address.
    Exact(IpAddr),
}

/// What ClusterIP `svc` asks for (its `clusterIP` already checked by validation).
pub fn cluster_ip_wanted(svc: &Value) -> ClusterIpWanted {
    if service_type(svc) == "ExternalName" {
        return ClusterIpWanted::Nothing;
    }
    match str_at(svc, &["spec", "clusterIP"]) {
        "" => ClusterIpWanted::Any,
        "None" => ClusterIpWanted::Headless,
        ip => ip
            .parse()
            .map_or(ClusterIpWanted::Any, ClusterIpWanted::Exact),
    }
}

/// Sets the ClusterIP a Service was given (`None`: a headless Service) and its families
/// (`initIPFamilyFields`): the cluster's single family, but both, `RequireDualStack`, for a
/// headless Service without a selector, as Kubernetes defaults it.
pub fn set_cluster_ip(svc: &mut Value, ip: Option<IpAddr>, family: &str) {
    let open_headless = super::families::is_open_headless(svc);
    let asked = svc.pointer("/spec/ipFamilyPolicy").and_then(Value::as_str);
    let dual = asked.is_none_or(|p| p == "RequireDualStack");
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let (ip, families, policy) = match ip {
        Some(ip) => (ip.to_string(), json!([family]), "SingleStack"),
        // Both families unless it asks for less (this cluster has one).
        None if open_headless && dual => {
            let other = if family == "IPv4" { "IPv6" } else { "IPv4" };
            (
                "None".to_owned(),
                json!([family, other]),
                "RequireDualStack",
            )
        }
        None => ("None".to_owned(), json!([family]), "SingleStack"),
    };
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    spec.entry("ipFamilies").or_insert(families);
    spec.entry("ipFamilyPolicy").or_insert(json!(policy));
}

/// The ClusterIPs a Service holds.
pub fn held_ips(svc: &Value) -> Vec<IpAddr> {
    if service_type(svc) == "ExternalName" {
        return Vec::new();
    }
    let ips = svc.pointer("/spec/clusterIPs").and_then(Value::as_array);
    let mut out: Vec<IpAddr> = ips
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str()?.parse().ok())
        .collect();
    if let Ok(ip) = str_at(svc, &["spec", "clusterIP"]).parse()
        && !out.contains(&ip)
    {
        out.push(ip);
    }
    out
}

/// Whether a Service's ports get NodePorts: a `NodePort` Service, and a `LoadBalancer`
/// one unless `allocateLoadBalancerNodePorts` is false.
pub fn wants_node_ports(svc: &Value) -> bool {
    match service_type(svc) {
        "NodePort" => true,
        "LoadBalancer" => svc.pointer("/spec/allocateLoadBalancerNodePorts") != Some(&json!(false)),
        _ => false,
    }
}

/// The NodePorts a Service holds, each once.
pub fn held_node_ports(svc: &Value) -> Vec<u16> {
    let mut out = Vec::new();
    let ports = svc.pointer("/spec/ports").and_then(Value::as_array);
    for p in ports.into_iter().flatten() {
        let n = p.get("nodePort").and_then(Value::as_u64).unwrap_or(0);
        if let Ok(n) = u16::try_from(n)
            && n != 0
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}

/// The indexes of the ports that still need a NodePort.
pub fn ports_without_node_port(svc: &Value) -> Vec<usize> {
    if !wants_node_ports(svc) {
        return Vec::new();
    }
    let ports = svc.pointer("/spec/ports").and_then(Value::as_array);
    ports
        .into_iter()
        .flatten()
        .enumerate()
        .filter(|(_, p)| p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) == 0)
        .map(|(i, _)| i)
        .collect()
}
