use std::net::IpAddr;

use serde_json::json;

use super::validation::{port_name_errors, validate_service, validate_update};
use super::*;

fn svc(spec: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn defaulted(spec: Value) -> Value {
    let mut s = svc(spec);
    set_defaults(&mut s);
    s
}

fn fields(v: &Value) -> Vec<String> {
    validate_service(v).into_iter().map(|c| c.field).collect()
}

#[test]
fn a_service_gets_kubernetes_defaults() {
    let s = defaulted(
        json!({"ports": [{"port": 80}, {"port": 53, "protocol": "UDP", "targetPort": "dns"}]}),
    );
    assert_eq!(s["spec"]["type"], "ClusterIP");
    assert_eq!(s["spec"]["sessionAffinity"], "None");
    assert_eq!(s["spec"]["internalTrafficPolicy"], "Cluster");
    assert!(s["spec"].get("externalTrafficPolicy").is_none());
    assert_eq!(
        s["spec"]["ports"][0],
        json!({"port": 80, "protocol": "TCP", "targetPort": 80})
    );
    assert_eq!(s["spec"]["ports"][1]["targetPort"], "dns");
    let lb = defaulted(json!({"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 0}]}));
    assert_eq!(lb["spec"]["externalTrafficPolicy"], "Cluster");
    assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    assert_eq!(lb["spec"]["ports"][0]["targetPort"], 80);
    // clusterIPs follows clusterIP after the defaults, as the server's own field.
    let mut named = defaulted(json!({"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}));
    assert!(named["spec"].get("clusterIPs").is_none());
    normalize_cluster_ips(&mut named);
    assert_eq!(named["spec"]["clusterIPs"], json!(["10.96.0.10"]));
    let ext = defaulted(json!({"type": "ExternalName", "externalName": "example.com"}));
    assert!(ext["spec"].get("internalTrafficPolicy").is_none());
}

#[test]
fn validation_names_each_fault_as_kubernetes_does() {
    assert!(fields(&defaulted(json!({"ports": [{"port": 80}]}))).is_empty());
    assert_eq!(fields(&defaulted(json!({}))), ["spec.ports"]);
    assert!(
        fields(&defaulted(json!({"clusterIP": "None"}))).is_empty(),
        "headless needs no ports"
    );
    let bad = defaulted(
        json!({"type": "Bogus", "sessionAffinity": "Sticky", "ports": [
            {"port": 0, "protocol": "HTTP"},
            {"name": "b", "port": 80, "targetPort": "Not_A-Name--"},
            {"name": "b", "port": 80}
        ]}),
    );
    let causes = validate_service(&bad);
    let got: Vec<(&str, &str)> = causes
        .iter()
        .map(|c| (c.field.as_str(), c.message.as_str()))
        .collect();
    assert!(
        got.contains(&("spec.ports[0].name", "Required value")),
        "{got:?}"
    );
    assert!(got.contains(&(
        "spec.ports[0].port",
        "Invalid value: 0: must be between 1 and 65535, inclusive"
    )));
    assert!(got.contains(&(
        "spec.ports[0].protocol",
        "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
    )));
    assert!(got.contains(&("spec.ports[2].name", "Duplicate value: \"b\"")));
    assert!(got.contains(&(
        "spec.sessionAffinity",
        "Unsupported value: \"Sticky\": supported values: \"ClientIP\", \"None\""
    )));
    assert!(got.contains(&("spec.type", "Unsupported value: \"Bogus\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"")));
    assert!(got.iter().any(|(f, m)| *f == "spec.ports[2]"
        && m.starts_with("Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\"")));
    assert!(got.iter().any(|(f, _)| *f == "spec.ports[1].targetPort"));
    let np = defaulted(json!({"ports": [{"port": 80, "nodePort": 30080}]}));
    assert_eq!(fields(&np), ["spec.ports[0].nodePort"]);
    let out_of_range = defaulted(
        json!({"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 70000}, {"name": "b", "port": 81, "nodePort": -1}]}),
    );
    assert_eq!(
        fields(&out_of_range),
        ["spec.ports[0].nodePort", "spec.ports[1].nodePort"]
    );
    let ext = defaulted(json!({"type": "ExternalName"}));
    assert_eq!(fields(&ext), ["spec.externalName"]);
    let lb_headless =
        defaulted(json!({"type": "LoadBalancer", "clusterIP": "None", "ports": [{"port": 10250}]}));
    assert_eq!(
        fields(&lb_headless),
        ["spec.ports[0]", "spec.clusterIPs[0]"]
    );
    let bad_ip = defaulted(json!({"clusterIP": "10.96.0.300", "ports": [{"port": 80}]}));
    assert_eq!(fields(&bad_ip), ["spec.clusterIPs[0]"]);
}

#[test]
fn port_names_are_iana_service_names() {
    assert!(port_name_errors("https").is_empty());
    assert!(port_name_errors("dns-tcp").is_empty());
    assert_eq!(port_name_errors("123").len(), 1);
    assert_eq!(port_name_errors("-a--b").len(), 2);
    assert_eq!(port_name_errors("a-very-long-port-name").len(), 1);
}

#[test]
fn an_update_keeps_what_was_allocated_and_may_not_change_the_cluster_ip() {
    let old = defaulted(
        json!({"type": "NodePort", "clusterIP": "10.96.5.5", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    let mut new = defaulted(json!({"type": "NodePort", "ports": [{"port": 80}]}));
    keep_allocated(&mut new, &old);
    assert_eq!(new["spec"]["clusterIP"], "10.96.5.5");
    assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    assert!(validate_update(&new, &old).is_empty());
    let changed =
        defaulted(json!({"type": "NodePort", "clusterIP": "10.96.5.6", "ports": [{"port": 80}]}));
    let causes = validate_update(&changed, &old);
    assert_eq!(causes[0].field, "spec.clusterIPs[0]");
    assert_eq!(
        causes[0].message,
        "Invalid value: []string{\"10.96.5.6\"}: may not change once set"
    );
}

#[test]
fn a_new_cluster_ip_on_update_replaces_the_list() {
    let old = defaulted(json!({"clusterIP": "10.96.5.5", "ports": [{"port": 80}]}));
    let mut new = old.clone();
    new["spec"]["clusterIP"] = json!("10.96.3.3");
    normalize_cluster_ips_on_update(&mut new, &old);
    assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.3.3"]));
    let causes = validate_service(&new)
        .into_iter()
        .chain(validate_update(&new, &old));
    let fields: Vec<String> = causes.map(|c| c.field).collect();
    assert_eq!(fields, ["spec.clusterIPs[0]"]);
    let mut cleared = old.clone();
    cleared["spec"]["clusterIP"] = json!("");
    normalize_cluster_ips_on_update(&mut cleared, &old);
    assert!(cleared["spec"].get("clusterIPs").is_none());
}

#[test]
fn a_change_of_type_drops_what_the_new_type_has_no_use_for() {
    let old = defaulted(
        json!({"type": "NodePort", "clusterIP": "10.96.5.5", "ports": [{"port": 80, "nodePort": 30080}]}),
    );
    // `kubectl patch -p '{"spec":{"type":"ExternalName","externalName":"x.example"}}'`
    let mut to_ext = old.clone();
    to_ext["spec"]["type"] = json!("ExternalName");
    to_ext["spec"]["externalName"] = json!("x.example");
    drop_type_dependent_fields(&mut to_ext, &old);
    assert!(to_ext["spec"].get("clusterIP").is_none());
    assert!(to_ext["spec"]["ports"][0].get("nodePort").is_none());
    assert!(to_ext["spec"].get("externalTrafficPolicy").is_none());
    assert!(
        fields(&to_ext).is_empty(),
        "{:?}",
        validate_service(&to_ext)
    );
    let mut to_cluster_ip = old.clone();
    to_cluster_ip["spec"]["type"] = json!("ClusterIP");
    drop_type_dependent_fields(&mut to_cluster_ip, &old);
    assert!(to_cluster_ip["spec"]["ports"][0].get("nodePort").is_none());
    assert_eq!(to_cluster_ip["spec"]["clusterIP"], "10.96.5.5");
}

#[test]
fn what_a_service_wants_and_holds() {
    let any = defaulted(json!({"ports": [{"port": 80}]}));
    assert_eq!(cluster_ip_wanted(&any), ClusterIpWanted::Any);
    let exact = defaulted(json!({"clusterIP": "10.96.0.10", "ports": [{"port": 53}]}));
    assert_eq!(
        cluster_ip_wanted(&exact),
        ClusterIpWanted::Exact("10.96.0.10".parse().unwrap())
    );
    assert_eq!(held_ips(&exact), ["10.96.0.10".parse::<IpAddr>().unwrap()]);
    let ext = defaulted(json!({"type": "ExternalName", "externalName": "a.b"}));
    assert_eq!(cluster_ip_wanted(&ext), ClusterIpWanted::Nothing);
    let np = defaulted(
        json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}, {"name": "b", "port": 81}]}),
    );
    assert_eq!(held_node_ports(&np), [30080]);
    assert_eq!(ports_without_node_port(&np), [1]);
    let lb = defaulted(
        json!({"type": "LoadBalancer", "allocateLoadBalancerNodePorts": false, "ports": [{"port": 80}]}),
    );
    assert!(ports_without_node_port(&lb).is_empty());
    let mut headless = defaulted(json!({"clusterIP": "None"}));
    set_cluster_ip(&mut headless, None, "IPv4");
    assert_eq!(headless["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    assert_eq!(headless["spec"]["ipFamilyPolicy"], "RequireDualStack");
    let mut given = any;
    set_cluster_ip(&mut given, Some("10.96.7.7".parse().unwrap()), "IPv4");
    assert_eq!(given["spec"]["clusterIPs"], json!(["10.96.7.7"]));
    assert_eq!(given["spec"]["ipFamilyPolicy"], "SingleStack");
}

#[test]
fn the_columns_read_as_kubectl_prints_them() {
    let mut s = defaulted(
        json!({"type": "NodePort", "selector": {"b": "2", "a": "1"}, "ports": [{"port": 80, "nodePort": 30080}, {"name": "dns", "port": 53, "protocol": "UDP"}]}),
    );
    set_cluster_ip(&mut s, Some("10.96.7.7".parse().unwrap()), "IPv4");
    assert_eq!(ports_cell(&s), "80:30080/TCP,53/UDP");
    assert_eq!(selector_cell(&s), "a=1,b=2");
    assert_eq!(external_ip(&s), "<none>");
    let lb = defaulted(json!({"type": "LoadBalancer", "ports": [{"port": 80}]}));
    assert_eq!(external_ip(&lb), "<pending>");
    let ext = defaulted(json!({"type": "ExternalName", "externalName": "db.example"}));
    assert_eq!(external_ip(&ext), "db.example");
    assert_eq!(ports_cell(&ext), "<none>");
}
