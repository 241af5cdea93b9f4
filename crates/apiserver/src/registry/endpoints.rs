//! core/v1 Endpoints (`pkg/registry/core/endpoint/strategy.go`): the addresses behind a
//! Service of the same name. The API server keeps `default/kubernetes` listing itself
//! (`crate::kubernetes_service`); other Endpoints are stored as clients write them.

use std::net::IpAddr;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::Endpoints;
use kubeboot_api::{StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{AGE, NAME, name_and_age};
use super::service::{port_number_error, protocol_error};
use super::strategy::Strategy;
use super::{Kind, METADATA_PATCH, NameRule, ResourceDef, normalize, schema};
use crate::protobuf::schema::{Field as Pb, OBJECT_META, OBJECT_REFERENCE, Ty, f, rep};
use crate::selectors::FieldLabels;

/// The resource.
pub(super) static ENDPOINTS: ResourceDef = ResourceDef {
    kind_id: Kind::Endpoints,
    group: "",
    version: "v1",
    kind: "Endpoints",
    plural: "endpoints",
    short_names: &["ep"],
    namespaced: true,
    storage: "services/endpoints",
    subresources: &[],
    field_selectors: FieldLabels::Metadata,
    name_rule: NameRule::Dns1123Subdomain,
    normalize: normalize::<Endpoints>,
    schema: schema::<Endpoints>,
    patch_schema: &METADATA_PATCH,
    protobuf: Some(PROTOBUF),
    conversion: None,
    strategy: &EndpointsStrategy,
};

/// core/v1 Endpoints and its subsets (`generated.proto`).
static PROTOBUF: &[Pb] = &[
    f(1, "metadata", Ty::Msg(OBJECT_META)),
    rep(2, "subsets", Ty::Msg(SUBSET)),
];

static SUBSET: &[Pb] = &[
    rep(1, "addresses", Ty::Msg(ADDRESS)),
    rep(2, "notReadyAddresses", Ty::Msg(ADDRESS)),
    rep(3, "ports", Ty::Msg(PORT)),
];

static ADDRESS: &[Pb] = &[
    f(1, "ip", Ty::Str),
    f(3, "hostname", Ty::Str),
    f(4, "nodeName", Ty::Str),
    f(2, "targetRef", Ty::Msg(OBJECT_REFERENCE)),
];

static PORT: &[Pb] = &[
    f(1, "name", Ty::Str),
    f(2, "port", Ty::I32),
    f(3, "protocol", Ty::Str),
    f(4, "appProtocol", Ty::Str),
];

#[derive(Debug)]
struct EndpointsStrategy;

impl Strategy for EndpointsStrategy {
    fn set_defaults(&self, obj: &mut Value) {
        set_defaults(obj);
    }

    fn validate(&self, _def: &ResourceDef, obj: &Value, _old: Option<&Value>) -> Vec<StatusCause> {
        validate_subsets(obj)
    }

    fn columns(&self) -> Vec<TableColumn> {
        vec![
            NAME,
            TableColumn::text("Endpoints", "Endpoints of the Service"),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        vec![name, json!(endpoints_cell(obj)), age]
    }
}

/// `SetDefaults_Endpoints`: a port's protocol is `TCP` unless it says otherwise.
fn set_defaults(obj: &mut Value) {
    let subsets = obj.get_mut("subsets").and_then(Value::as_array_mut);
    for ss in subsets.into_iter().flatten() {
        let ports = ss.get_mut("ports").and_then(Value::as_array_mut);
        for p in ports.into_iter().flatten().filter_map(Value::as_object_mut) {
            p.entry("protocol").or_insert(json!("TCP"));
        }
    }
}

fn subsets(obj: &Value) -> &[Value] {
    obj.get("subsets")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn items<'a>(v: &'a Value, field: &str) -> &'a [Value] {
    v.get(field)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The checks of `ValidateEndpoints` a writer meets: each address an IP, each port a
/// number with a supported protocol, named when a subset has several.
fn validate_subsets(obj: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    for (i, ss) in subsets(obj).iter().enumerate() {
        for list in ["addresses", "notReadyAddresses"] {
            for (j, a) in items(ss, list).iter().enumerate() {
                let ip = a["ip"].as_str().unwrap_or_default();
                let field = format!("subsets[{i}].{list}[{j}].ip");
                let detail = match ip.parse::<IpAddr>() {
                    Err(_) => Some("must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"),
                    Ok(ip) => special_ip(ip),
                };
                out.extend(detail.map(|d| StatusCause::invalid(&field, ip, d)));
            }
        }
        let ports = items(ss, "ports");
        for (j, p) in ports.iter().enumerate() {
            let at = format!("subsets[{i}].ports[{j}]");
            if ports.len() > 1 && p["name"].as_str().is_none_or(str::is_empty) {
                out.push(StatusCause::required(&format!("{at}.name"), ""));
            }
            out.extend(port_number_error(&format!("{at}.port"), &p["port"]));
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            out.extend(protocol_error(&format!("{at}.protocol"), proto));
        }
    }
    out
}

/// Why an endpoint may not be `ip` (`ValidateNonSpecialIP`): no traffic reaches a
/// Service through it.
fn special_ip(ip: IpAddr) -> Option<&'static str> {
    let link_local = match ip {
        IpAddr::V4(v) => v.is_link_local(),
        IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
    };
    let link_local_multicast = match ip {
        IpAddr::V4(v) => v.octets()[..3] == [224, 0, 0],
        IpAddr::V6(v) => v.segments()[0] & 0xff0f == 0xff02,
    };
    if ip.is_unspecified() {
        Some(match ip {
            IpAddr::V4(_) => "may not be unspecified (0.0.0.0)",
            IpAddr::V6(_) => "may not be unspecified (::)",
        })
    } else if ip.is_loopback() {
        Some("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    } else if link_local {
        Some("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    } else if link_local_multicast {
        Some("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    } else {
        None
    }
}

/// The Endpoints cell (`formatEndpoints`): up to three `ip:port`, then `+ N more...`.
pub(super) fn endpoints_cell(obj: &Value) -> String {
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut count = 0;
    for ss in subsets(obj) {
        let addresses: Vec<&str> = items(ss, "addresses")
            .iter()
            .map(|a| a["ip"].as_str().unwrap_or_default())
            .collect();
        let ports: Vec<Option<i64>> = match items(ss, "ports") {
            [] => vec![None],
            ports => ports.iter().map(|p| p["port"].as_i64()).collect(),
        };
        for port in ports {
            count += addresses.len();
            for ip in &addresses {
                if list.len() == MAX {
                    break;
                }
                list.push(match port {
                    None => (*ip).to_owned(),
                    Some(p) if ip.contains(':') => format!("[{ip}]:{p}"),
                    Some(p) => format!("{ip}:{p}"),
                });
            }
        }
    }
    let joined = list.join(",");
    match (count > MAX, joined.is_empty()) {
        (true, _) => format!("{joined} + {} more...", count - MAX),
        (false, true) => "<none>".to_owned(),
        (false, false) => joined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_endpoints_cell_shows_three_and_counts_the_rest() {
        let ep = |subsets: Value| json!({"subsets": subsets});
        assert_eq!(endpoints_cell(&json!({})), "<none>");
        assert_eq!(
            endpoints_cell(&ep(
                json!([{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 6443}]}])
            )),
            "10.0.0.1:6443"
        );
        let four = json!([{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}, {"ip": "10.0.0.4"}], "ports": [{"port": 80}]}]);
        assert_eq!(
            endpoints_cell(&ep(four)),
            "10.0.0.1:80,10.0.0.2:80,[fd00::3]:80 + 1 more..."
        );
        assert_eq!(
            endpoints_cell(&ep(json!([{"addresses": [{"ip": "10.0.0.1"}]}]))),
            "10.0.0.1"
        );
    }

    #[test]
    fn endpoints_name_their_ports_and_addresses() {
        let causes = validate_subsets(&json!({"subsets": [{
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "nope"}, {"ip": "127.0.0.1"}, {"ip": "169.254.1.1"}],
            "ports": [{"port": 80}, {"name": "b", "port": 0, "protocol": "ICMP"}]
        }]}));
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "subsets[0].addresses[1].ip",
                "subsets[0].addresses[2].ip",
                "subsets[0].addresses[3].ip",
                "subsets[0].ports[0].name",
                "subsets[0].ports[1].port",
                "subsets[0].ports[1].protocol"
            ]
        );
    }
}
