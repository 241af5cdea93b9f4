//! The checks of `ValidateService` and `ValidateServiceUpdate` (`pkg/apis/core/validation`)
//! with Kubernetes' field paths and messages.

use std::net::IpAddr;

use kubeboot_api::StatusCause;
use serde_json::Value;

use super::service_type;
use crate::object::is_dns1123_label;
use crate::registry::columns::str_at;

const TYPES: &[&str] = &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"];
const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];
const AFFINITIES: &[&str] = &["ClientIP", "None"];
/// The kubelet's port, which a LoadBalancer may not expose.
const KUBELET_PORT: i64 = 10250;

/// Everything wrong with a Service.
pub(super) fn validate_service(svc: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let ty = str_at(svc, &["spec", "type"]);
    let ports: &[Value] = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let headless = str_at(svc, &["spec", "clusterIP"]) == "None";
    if ports.is_empty() && !headless && ty != "ExternalName" {
        out.push(StatusCause::required("spec.ports", ""));
    }
    out.extend(by_type(svc, ty, ports, headless));
    let mut names: Vec<&str> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        out.extend(validate_port(
            p,
            ports.len() > 1,
            &mut names,
            &format!("spec.ports[{i}]"),
        ));
    }
    match str_at(svc, &["spec", "sessionAffinity"]) {
        "" => out.push(StatusCause::required("spec.sessionAffinity", "")),
        a if !AFFINITIES.contains(&a) => {
            out.push(StatusCause::not_supported(
                "spec.sessionAffinity",
                a,
                AFFINITIES,
            ));
        }
        _ => {}
    }
    match ty {
        "" => out.push(StatusCause::required("spec.type", "")),
        t if !TYPES.contains(&t) => out.push(StatusCause::not_supported("spec.type", t, TYPES)),
        _ => {}
    }
    out.extend(duplicates(ports));
    out.extend(validate_cluster_ips(svc));
    out
}

/// What each type of Service allows.
fn by_type(svc: &Value, ty: &str, ports: &[Value], headless: bool) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let none_for = |t: &str| {
        StatusCause::invalid(
            "spec.clusterIPs[0]",
            "None",
            &format!("may not be set to 'None' for {t} services"),
        )
    };
    match ty {
        "LoadBalancer" => {
            for (i, p) in ports.iter().enumerate() {
                if p["port"].as_i64() == Some(KUBELET_PORT) {
                    out.push(invalid_int(
                        &format!("spec.ports[{i}]"),
                        KUBELET_PORT,
                        "may not expose port 10250 externally since it is used by kubelet",
                    ));
                }
            }
            if headless {
                out.push(none_for("LoadBalancer"));
            }
        }
        "NodePort" if headless => out.push(none_for("NodePort")),
        "ExternalName" => {
            let name = str_at(svc, &["spec", "externalName"]);
            let cname = name.strip_suffix('.').unwrap_or(name);
            if !str_at(svc, &["spec", "clusterIP"]).is_empty() {
                out.push(StatusCause::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if cname.is_empty() {
                out.push(StatusCause::required("spec.externalName", ""));
            } else if !crate::object::is_dns1123_subdomain(cname) {
                out.push(StatusCause::invalid("spec.externalName", cname, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"));
            }
        }
        "ClusterIP" => {
            for (i, p) in ports.iter().enumerate() {
                if p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
                    out.push(StatusCause::forbidden(
                        &format!("spec.ports[{i}].nodePort"),
                        "may not be used when `type` is 'ClusterIP'",
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

/// One port (`validateServicePort`): a DNS-1123 label name (required when there are
/// several), a port number, a supported protocol, a target port number or name.
fn validate_port<'a>(
    p: &'a Value,
    require_name: bool,
    names: &mut Vec<&'a str>,
    at: &str,
) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let name = p["name"].as_str().unwrap_or_default();
    if name.is_empty() {
        if require_name {
            out.push(StatusCause::required(&format!("{at}.name"), ""));
        }
    } else if !is_dns1123_label(name) {
        out.push(StatusCause::invalid(&format!("{at}.name"), name, "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"));
    } else if names.contains(&name) {
        out.push(StatusCause::duplicate(&format!("{at}.name"), name));
    } else {
        names.push(name);
    }
    out.extend(port_number_error(&format!("{at}.port"), &p["port"]));
    let node_port = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
    if node_port != 0 {
        out.extend(port_number_error(&format!("{at}.nodePort"), &p["nodePort"]));
    }
    match p["protocol"].as_str().unwrap_or_default() {
        "" => out.push(StatusCause::required(&format!("{at}.protocol"), "")),
        proto => out.extend(protocol_error(&format!("{at}.protocol"), proto)),
    }
    let target = format!("{at}.targetPort");
    match &p["targetPort"] {
        Value::String(s) => out.extend(
            port_name_errors(s)
                .into_iter()
                .map(|m| StatusCause::invalid(&target, s, m)),
        ),
        v => out.extend(port_number_error(&target, v)),
    }
    out
}

/// `IsValidPortNum`: a port of a Service or an endpoint is 1 to 65535.
pub(crate) fn port_number_error(field: &str, port: &Value) -> Option<StatusCause> {
    let port = port.as_i64().unwrap_or(0);
    (!(1..=65535).contains(&port))
        .then(|| invalid_int(field, port, "must be between 1 and 65535, inclusive"))
}

/// A protocol other than the three a Service or an endpoint may use.
pub(crate) fn protocol_error(field: &str, protocol: &str) -> Option<StatusCause> {
    (!PROTOCOLS.contains(&protocol)).then(|| StatusCause::not_supported(field, protocol, PROTOCOLS))
}

/// `IsValidPortName`: an IANA service name.
pub(super) fn port_name_errors(name: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if name.len() > 15 {
        out.push("must be no more than 15 characters");
    }
    if name.is_empty()
        || !name
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        out.push("must not contain consecutive hyphens (-)");
    }
    if name.starts_with('-') || name.ends_with('-') {
        out.push("must not begin or end with a hyphen (-)");
    }
    out
}

/// The same port and protocol twice, or one NodePort for the same protocol twice.
fn duplicates(ports: &[Value]) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let mut seen_ports: Vec<(i64, &str)> = Vec::new();
    let mut seen_node_ports: Vec<(i64, &str)> = Vec::new();
    for (i, p) in ports.iter().enumerate() {
        let proto = p["protocol"].as_str().unwrap_or_default();
        let port = p["port"].as_i64().unwrap_or(0);
        if seen_ports.contains(&(port, proto)) {
            let value = format!(
                "core.ServicePort{{Name:\"\", Protocol:{proto:?}, AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}"
            );
            out.push(StatusCause::new(
                "FieldValueDuplicate",
                &format!("spec.ports[{i}]"),
                format!("Duplicate value: {value}"),
            ));
        }
        seen_ports.push((port, proto));
        let node_port = p.get("nodePort").and_then(Value::as_i64).unwrap_or(0);
        if node_port != 0 {
            if seen_node_ports.contains(&(node_port, proto)) {
                out.push(StatusCause::new(
                    "FieldValueDuplicate",
                    &format!("spec.ports[{i}].nodePort"),
                    format!("Duplicate value: {node_port}"),
                ));
            }
            seen_node_ports.push((node_port, proto));
        }
    }
    out
}

/// `spec.clusterIP` and `spec.clusterIPs`: addresses (or `None` alone), the first of the
/// list the same as `clusterIP`.
fn validate_cluster_ips(svc: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let ip = str_at(svc, &["spec", "clusterIP"]);
    let ips: Vec<&str> = svc
        .pointer("/spec/clusterIPs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap_or_default())
        .collect();
    if let Some(first) = ips.first()
        && *first != ip
    {
        out.push(StatusCause::invalid_strings(
            "spec.clusterIPs",
            &ips,
            "first value must match `clusterIP`",
        ));
    }
    if ips.len() > 1 {
        out.push(StatusCause::invalid_strings(
            "spec.clusterIPs",
            &ips,
            "may specify no more than one IP for each IP family",
        ));
    }
    if !ip.is_empty() && ip != "None" && ip.parse::<IpAddr>().is_err() {
        out.push(StatusCause::invalid(
            "spec.clusterIPs[0]",
            ip,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        ));
    }
    out
}

/// What an update may not change: the ClusterIP, unless the Service goes to or from
/// `ExternalName`.
pub(super) fn validate_update(new: &Value, old: &Value) -> Vec<StatusCause> {
    if service_type(new) == "ExternalName" || service_type(old) == "ExternalName" {
        return Vec::new();
    }
    let (new_ip, old_ip) = (
        str_at(new, &["spec", "clusterIP"]),
        str_at(old, &["spec", "clusterIP"]),
    );
    if !old_ip.is_empty() && new_ip != old_ip {
        return vec![StatusCause::invalid_strings(
            "spec.clusterIPs[0]",
            &[new_ip],
            "may not change once set",
        )];
    }
    Vec::new()
}

/// `Invalid value: 70000: …` (numbers are printed bare).
fn invalid_int(field: &str, value: i64, detail: &str) -> StatusCause {
    StatusCause::invalid_rendered(field, &value.to_string(), detail)
}
