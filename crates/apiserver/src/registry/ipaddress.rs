//! networking.k8s.io/v1 IPAddress (`pkg/registry/networking/ipaddress/strategy.go`): one
//! allocated Service IP, named by the address, pointing at the Service that holds it. The
//! server creates one before it stores a Service with that ClusterIP: the create is the
//! reservation, so two Services (or two servers) never get one address.

use std::net::IpAddr;
use std::time::SystemTime;

use k8s_openapi::api::networking::v1::IPAddress;
use kubeboot_api::{StatusCause, TableColumn};
use serde_json::{Value, json};

use super::columns::{AGE, NAME, name_and_age, str_at};
use super::strategy::Strategy;
use super::{Kind, METADATA_PATCH, NameRule, ResourceDef, normalize, schema};
use crate::object::meta_str;
use crate::selectors::FieldLabels;

/// The resource.
pub(super) static IP_ADDRESSES: ResourceDef = ResourceDef {
    kind_id: Kind::IpAddress,
    group: "networking.k8s.io",
    version: "v1",
    kind: "IPAddress",
    plural: "ipaddresses",
    short_names: &["ip"],
    namespaced: false,
    storage: "ipaddresses",
    subresources: &[],
    field_selectors: FieldLabels::Metadata,
    name_rule: NameRule::PathSegment,
    normalize: normalize::<IPAddress>,
    schema: schema::<IPAddress>,
    patch_schema: &METADATA_PATCH,
    protobuf: None,
    conversion: None,
    strategy: &IpAddressStrategy,
};

#[derive(Debug)]
struct IpAddressStrategy;

impl Strategy for IpAddressStrategy {
    fn validate(&self, _def: &ResourceDef, obj: &Value, old: Option<&Value>) -> Vec<StatusCause> {
        let mut out = validate_ip_address(obj);
        if let Some(old) = old
            && obj.pointer("/spec/parentRef") != old.pointer("/spec/parentRef")
        {
            out.push(StatusCause::invalid(
                "spec.parentRef",
                &parent_ref(obj),
                "field is immutable",
            ));
        }
        out
    }

    fn columns(&self) -> Vec<TableColumn> {
        vec![
            NAME,
            TableColumn::text(
                "ParentRef",
                "ParentRef references the resource that an IPAddress is attached to. An IPAddress must reference a parent object.",
            ),
            AGE,
        ]
    }

    fn cells(&self, obj: &Value, now: SystemTime) -> Vec<Value> {
        let (name, age) = name_and_age(obj, now);
        vec![name, json!(parent_ref(obj)), age]
    }
}

/// The ParentRef cell: `services/default/kubernetes`.
fn parent_ref(obj: &Value) -> String {
    let Some(r) = obj.pointer("/spec/parentRef") else {
        return "<none>".to_owned();
    };
    let field = |f: &str| str_at(r, &[f]);
    let mut out = match field("group") {
        "" => field("resource").to_ascii_lowercase(),
        g => format!("{}.{g}", field("resource")).to_ascii_lowercase(),
    };
    if !field("namespace").is_empty() {
        out = format!("{out}/{}", field("namespace"));
    }
    format!("{out}/{}", field("name"))
}

/// The checks of `ValidateIPAddress`: the name is an address in its canonical form, and
/// the parent is named.
fn validate_ip_address(obj: &Value) -> Vec<StatusCause> {
    let mut out = Vec::new();
    let name = meta_str(obj, "name");
    match name.parse::<IpAddr>() {
        Err(_) => out.push(StatusCause::invalid(
            "metadata.name",
            name,
            "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
        )),
        Ok(ip) if ip.to_string() != name => out.push(StatusCause::invalid(
            "metadata.name",
            name,
            &format!("must be in canonical form (\"{ip}\")"),
        )),
        Ok(ip) if ip.is_unspecified() || ip.is_loopback() => out.push(StatusCause::invalid(
            "metadata.name",
            name,
            "may not be an unspecified or loopback address",
        )),
        Ok(_) => {}
    }
    match obj.pointer("/spec/parentRef") {
        None | Some(Value::Null) => out.push(StatusCause::required("spec.parentRef", "")),
        Some(r) => {
            for f in ["resource", "name"] {
                if str_at(r, &[f]).is_empty() {
                    out.push(StatusCause::required(&format!("spec.parentRef.{f}"), ""));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_address_is_named_by_its_canonical_form_and_names_its_parent() {
        let ip = |name: &str, parent: Value| json!({"metadata": {"name": name}, "spec": {"parentRef": parent}});
        let svc = json!({"group": "", "resource": "services", "namespace": "default", "name": "kubernetes"});
        let fields = |v: Value| -> Vec<String> {
            validate_ip_address(&v)
                .into_iter()
                .map(|c| c.field)
                .collect()
        };
        assert!(fields(ip("10.96.0.1", svc.clone())).is_empty());
        assert!(fields(ip("fd00::1", svc.clone())).is_empty());
        assert_eq!(fields(ip("fd00:0::1", svc.clone())), ["metadata.name"]);
        assert_eq!(fields(ip("10.96.0", svc.clone())), ["metadata.name"]);
        assert_eq!(fields(ip("127.0.0.1", svc.clone())), ["metadata.name"]);
        assert_eq!(
            fields(ip("10.96.0.2", json!({"resource": "services"}))),
            ["spec.parentRef.name"]
        );
        assert_eq!(
            parent_ref(&ip("10.96.0.1", svc)),
            "services/default/kubernetes"
        );
    }
}
