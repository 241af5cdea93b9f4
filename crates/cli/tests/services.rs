//! Services as an operator's kubectl meets them, with the oldest and newest kubectl:
//! `cluster-info`, the `kubernetes` Service and its Endpoints, `kubectl create service`
//! (which sends protobuf) of every type, ClusterIPs and NodePorts given from the ranges
//! and never twice (also under concurrent creates), refused with kube-apiserver's words
//! when taken or out of range, kept by a re-apply, and released by a delete.

mod common;

use std::time::Duration;

use common::{Server, eventually, kubectls, ok, stderr};
use serde_json::Value;

fn json_of(s: &Server, k: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(s.kubectl(k, &all), "kubectl get")).expect("JSON")
}

fn ip_addresses(s: &Server, k: &str) -> Vec<(String, String)> {
    let list = json_of(s, k, &["get", "ipaddresses"]);
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            let r = &i["spec"]["parentRef"];
            (
                i["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                format!(
                    "{}/{}",
                    r["namespace"].as_str().unwrap_or_default(),
                    r["name"].as_str().unwrap_or_default()
                ),
            )
        })
        .collect()
}

/// Text without the ANSI colour codes kubectl's cluster-info always writes.
fn without_colours(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('\x1b') {
        out.push_str(&rest[..i]);
        rest = rest[i..].split_once('m').map_or("", |(_, r)| r);
    }
    out.push_str(rest);
    out
}

#[test]
fn cluster_info_and_the_kubernetes_service() {
    let s = Server::start_with(&["--service-cluster-ip-range", "10.100.0.0/16"]);
    for k in kubectls() {
        let out = without_colours(&ok(s.kubectl(&k, &["cluster-info"]), "cluster-info"));
        assert!(
            out.contains(&format!("Kubernetes control plane is running at {}", s.url)),
            "{k}: {out}"
        );
        let svc = json_of(&s, &k, &["get", "service", "kubernetes", "-n", "default"]);
        assert_eq!(
            svc["spec"]["clusterIP"], "10.100.0.1",
            "{k}: the first address of the range"
        );
        assert_eq!(svc["spec"]["ports"][0]["port"], 443, "{k}");
        assert_eq!(
            svc["spec"]["ports"][0]["targetPort"],
            s.port(),
            "{k}: to the secure port"
        );
        assert_eq!(svc["metadata"]["labels"]["component"], "apiserver", "{k}");
        let table = ok(s.kubectl(&k, &["get", "svc", "-n", "default"]), "get svc");
        assert!(
            table.contains("kubernetes   ClusterIP   10.100.0.1"),
            "{k}: {table}"
        );
        assert!(ip_addresses(&s, &k).contains(&("10.100.0.1".into(), "default/kubernetes".into())));
    }
    // A bad range is refused at start with what is wrong.
    let out = std::process::Command::new(common::bin())
        .args([
            "server",
            "--service-cluster-ip-range",
            "10.0.0.0/30",
            "--data-dir",
        ])
        .arg(s.dir.join("other"))
        .output()
        .expect("run kubeboot");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("must be at least 8 IP addresses"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kubectl_create_service_of_every_type() {
    let s = Server::start_with(&["--service-node-port-range", "30100-30199"]);
    for (i, k) in kubectls().iter().enumerate() {
        let k = k.as_str();
        let name = |n: &str| format!("{n}{i}");
        let create = |args: &[&str]| s.kubectl(k, &[&["create", "service"][..], args].concat());
        ok(
            create(&["clusterip", &name("web"), "--tcp=80:8080"]),
            "create clusterip",
        );
        ok(
            create(&["nodeport", &name("np"), "--tcp=80:8080"]),
            "create nodeport",
        );
        let dns_ip = format!("10.96.0.{}", 10 + i);
        ok(
            create(&[
                "clusterip",
                &name("dns"),
                "--tcp=53:53",
                "--clusterip",
                &dns_ip,
            ]),
            "create with an IP",
        );
        ok(
            create(&["clusterip", &name("headless"), "--clusterip=None"]),
            "create headless",
        );
        ok(
            create(&[
                "externalname",
                &name("ext"),
                "--external-name=db.example.com",
            ]),
            "create externalname",
        );

        let web = json_of(&s, k, &["get", "svc", &name("web")]);
        let web_ip = web["spec"]["clusterIP"]
            .as_str()
            .expect("a ClusterIP")
            .to_owned();
        assert!(web_ip.starts_with("10."), "{k}: {web}");
        assert_eq!(
            web["spec"]["clusterIPs"],
            serde_json::json!([web_ip]),
            "{k}"
        );
        assert_eq!(
            web["spec"]["ipFamilies"],
            serde_json::json!(["IPv4"]),
            "{k}"
        );
        assert_eq!(web["spec"]["ports"][0]["targetPort"], 8080, "{k}");
        let np = json_of(&s, k, &["get", "svc", &name("np")]);
        let node_port = np["spec"]["ports"][0]["nodePort"]
            .as_u64()
            .expect("a NodePort");
        assert!((30100..=30199).contains(&node_port), "{k}: {np}");
        let headless = json_of(&s, k, &["get", "svc", &name("headless")]);
        assert_eq!(headless["spec"]["clusterIP"], "None", "{k}");
        let ext = json_of(&s, k, &["get", "svc", &name("ext")]);
        assert!(ext["spec"].get("clusterIP").is_none(), "{k}: {ext}");

        let table = ok(
            s.kubectl(k, &["get", "svc", &name("np"), &name("ext")]),
            "get svc",
        );
        assert!(
            table.contains(&format!("80:{node_port}/TCP")),
            "{k}: {table}"
        );
        assert!(table.contains("ExternalName   <none>"), "{k}: {table}");
        let ips = ip_addresses(&s, k);
        for (ip, svc) in [(&web_ip, name("web")), (&dns_ip, name("dns"))] {
            assert!(
                ips.contains(&(ip.clone(), format!("default/{svc}"))),
                "{k}: {ips:?}"
            );
        }
        let selected = ok(
            s.kubectl(
                k,
                &[
                    "get",
                    "svc",
                    "--field-selector",
                    "spec.type=NodePort",
                    "-o",
                    "name",
                ],
            ),
            "field selector",
        );
        assert!(
            selected.contains(&format!("service/{}", name("np")))
                && !selected.contains(&name("web")),
            "{k}: {selected}"
        );

        // Taken and out of range, in kube-apiserver's words; nothing is stored.
        let taken = create(&[
            "clusterip",
            &name("dns2"),
            "--tcp=53:53",
            "--clusterip",
            &dns_ip,
        ]);
        assert!(!taken.status.success());
        assert!(
            stderr(&taken).contains(&format!("Service \"{}\" is invalid: spec.clusterIPs: Invalid value: []string{{\"{dns_ip}\"}}: failed to allocate IP {dns_ip}: provided IP is already allocated", name("dns2"))),
            "{k}: {}",
            stderr(&taken)
        );
        let outside = create(&[
            "clusterip",
            &name("out"),
            "--tcp=53:53",
            "--clusterip",
            "192.0.2.1",
        ]);
        assert!(stderr(&outside).contains("failed to allocate IP 192.0.2.1: the provided network does not match the current range"), "{k}: {}", stderr(&outside));
        let port_taken = create(&[
            "nodeport",
            &name("np2"),
            "--tcp=80:8080",
            &format!("--node-port={node_port}"),
        ]);
        assert!(stderr(&port_taken).contains(&format!("spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already allocated")), "{k}: {}", stderr(&port_taken));
        let port_outside = create(&[
            "nodeport",
            &name("np3"),
            "--tcp=80:8080",
            "--node-port=31000",
        ]);
        assert!(
            stderr(&port_outside).contains(
                "provided port is not in the valid range. The range of valid ports is 30100-30199"
            ),
            "{k}: {}",
            stderr(&port_outside)
        );
        for gone in ["dns2", "out", "np2", "np3"] {
            let got = s.kubectl(k, &["get", "svc", &name(gone)]);
            assert!(!got.status.success(), "{k}: {gone} was not stored");
        }

        // A delete releases the address and the port: both may be asked for again.
        ok(
            s.kubectl(k, &["delete", "svc", &name("dns"), &name("np")]),
            "delete",
        );
        assert!(
            !ip_addresses(&s, k).iter().any(|(ip, _)| *ip == dns_ip),
            "{k}: released"
        );
        ok(
            create(&[
                "clusterip",
                &name("dns3"),
                "--tcp=53:53",
                "--clusterip",
                &dns_ip,
            ]),
            "the released IP again",
        );
        ok(
            create(&[
                "nodeport",
                &name("np4"),
                "--tcp=80:8080",
                &format!("--node-port={node_port}"),
            ]),
            "the released port again",
        );
    }
}

const APP: &str = "apiVersion: v1
kind: Service
metadata: {name: app}
spec:
  type: NodePort
  selector: {app: a}
  ports: [{port: 80, targetPort: 8080}]
";

#[test]
fn a_reapplied_manifest_keeps_its_address_and_port() {
    let s = Server::start();
    for k in kubectls() {
        ok(
            s.kubectl_as(&k, &s.kubeconfig(), &["apply", "-f", "-"], Some(APP)),
            "apply",
        );
        let first = json_of(&s, &k, &["get", "svc", "app"]);
        ok(
            s.kubectl_as(&k, &s.kubeconfig(), &["apply", "-f", "-"], Some(APP)),
            "apply again",
        );
        ok(
            s.kubectl_as(&k, &s.kubeconfig(), &["replace", "-f", "-"], Some(APP)),
            "replace",
        );
        let after = json_of(&s, &k, &["get", "svc", "app"]);
        assert_eq!(
            after["spec"]["clusterIP"], first["spec"]["clusterIP"],
            "{k}"
        );
        assert_eq!(
            after["spec"]["ports"][0]["nodePort"], first["spec"]["ports"][0]["nodePort"],
            "{k}"
        );
        // A new ClusterIP is refused; a change to ExternalName lets both go.
        let moved = s.kubectl(
            &k,
            &[
                "patch",
                "svc",
                "app",
                "-p",
                r#"{"spec":{"clusterIP":"10.96.3.3"}}"#,
            ],
        );
        assert!(stderr(&moved).contains("spec.clusterIPs[0]: Invalid value: []string{\"10.96.3.3\"}: may not change once set"), "{k}: {}", stderr(&moved));
        ok(
            s.kubectl(
                &k,
                &[
                    "patch",
                    "svc",
                    "app",
                    "-p",
                    r#"{"spec":{"type":"ExternalName","externalName":"x.example.com"}}"#,
                ],
            ),
            "to ExternalName",
        );
        let ip = first["spec"]["clusterIP"].as_str().expect("ip").to_owned();
        assert!(
            !ip_addresses(&s, &k).iter().any(|(a, _)| *a == ip),
            "{k}: the IP was released"
        );
        ok(s.kubectl(&k, &["delete", "svc", "app"]), "delete");
    }
}

#[test]
fn concurrent_creates_never_share_an_address() {
    let s = Server::start();
    let body = |name: &str, ip: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"Service","metadata":{{"name":"{name}"}},"spec":{{"clusterIP":"{ip}","ports":[{{"port":80}}]}}}}"#
        )
    };
    // The admin's certificate files are written once, before the threads use them.
    let (cert, key) = s.admin_cert_files();
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let post = |b: String| {
        let args = [
            "--cert",
            &cert,
            "--key",
            &key,
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &b,
        ];
        s.curl(&args, "/api/v1/namespaces/default/services").0
    };
    // Sixteen creates ask for one address at once: exactly one gets it.
    let codes: Vec<u16> = std::thread::scope(|t| {
        let handles: Vec<_> = (0..16)
            .map(|i| t.spawn(move || post(body(&format!("same{i}"), "10.96.0.50"))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 422).count(), 15, "{codes:?}");
    // Twenty-four creates of any address: all distinct.
    let codes: Vec<u16> = std::thread::scope(|t| {
        let handles: Vec<_> = (0..24)
            .map(|i| t.spawn(move || post(body(&format!("any{i}"), ""))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    assert!(codes.iter().all(|c| *c == 201), "{codes:?}");
    let k = "kubectl";
    let list = json_of(&s, k, &["get", "svc", "-A"]);
    let mut ips: Vec<String> = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            i["spec"]["clusterIP"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let n = ips.len();
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), n, "every Service has its own address");
    assert_eq!(ip_addresses(&s, k).len(), n, "one IPAddress per Service");
    // A namespace's deletion releases its Services' addresses.
    ok(s.kubectl(k, &["create", "namespace", "team"]), "create ns");
    ok(
        s.kubectl(
            k,
            &[
                "create",
                "service",
                "clusterip",
                "t",
                "--tcp=80",
                "-n",
                "team",
                "--clusterip",
                "10.96.0.60",
            ],
        ),
        "create in team",
    );
    ok(s.kubectl(k, &["delete", "namespace", "team"]), "delete ns");
    assert!(
        eventually(Duration::from_secs(30), || !ip_addresses(&s, k)
            .iter()
            .any(|(ip, _)| ip == "10.96.0.60")),
        "the namespace's Service released its address"
    );
}

#[test]
fn each_api_server_lists_itself_in_the_kubernetes_endpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (_api, url) = common::apiserver_from_init(
        &data,
        &dir.path().join("store"),
        &["--advertise-address", "192.0.2.10"],
    );
    let port = url.rsplit(':').next().expect("port").to_owned();
    for k in kubectls() {
        let get = || {
            std::process::Command::new(&k)
                .args([
                    "get",
                    "endpoints",
                    "kubernetes",
                    "-n",
                    "default",
                    "--request-timeout=30s",
                ])
                .arg(format!("--server={url}"))
                .env("KUBECONFIG", data.join("admin.conf"))
                .env("HOME", dir.path())
                .output()
                .expect("kubectl")
        };
        let want = format!("192.0.2.10:{port}");
        assert!(
            eventually(Duration::from_secs(30), || String::from_utf8_lossy(
                &get().stdout
            )
            .contains(&want)),
            "{k}: {}",
            String::from_utf8_lossy(&get().stdout)
        );
    }
}

/// A Service's IP families are held to this single-stack cluster, as kube-apiserver holds
/// them. Seen before: `RequireDualStack`, `ipFamilies: [IPv6]` (an IPv4 address labelled
/// IPv6), two families under `SingleStack` and unknown values were all created.
#[test]
fn ip_families_are_held_to_the_cluster() {
    let s = Server::start();
    let svc = |name: &str, spec: &str| {
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{ports: [{{port: 80}}], {spec}}}\n"
        )
    };
    let create = |manifest: &str| {
        s.kubectl_as(
            "kubectl",
            &s.kubeconfig(),
            &["create", "-f", "-"],
            Some(manifest),
        )
    };
    for (name, spec, says) in [
        (
            "dual",
            "ipFamilyPolicy: RequireDualStack",
            r#"spec.ipFamilyPolicy: Invalid value: "RequireDualStack": this cluster is not configured for dual-stack services"#,
        ),
        (
            "six",
            "ipFamilies: [IPv6]",
            r#"spec.ipFamilies[0]: Invalid value: "IPv6": not configured on this cluster"#,
        ),
        (
            "two",
            "ipFamilies: [IPv4, IPv6]",
            r#"spec.ipFamilyPolicy: Invalid value: "SingleStack": must be 'RequireDualStack' or 'PreferDualStack' when multiple IP families are specified"#,
        ),
        (
            "foo",
            "ipFamilyPolicy: Foo",
            r#"spec.ipFamilyPolicy: Unsupported value: "Foo""#,
        ),
    ] {
        let out = create(&svc(name, spec));
        assert!(!out.status.success(), "{name} was created");
        assert!(stderr(&out).contains(says), "{name}: {}", stderr(&out));
    }
    ok(
        create(&svc("prefer", "ipFamilyPolicy: PreferDualStack")),
        "PreferDualStack",
    );
    let prefer = json_of(&s, "kubectl", &["get", "service", "prefer"]);
    assert_eq!(prefer["spec"]["ipFamilies"], serde_json::json!(["IPv4"]));
    ok(
        create(&svc("open", "clusterIP: None, ipFamilyPolicy: SingleStack")),
        "headless",
    );
    let open = json_of(&s, "kubectl", &["get", "service", "open"]);
    assert_eq!(
        open["spec"]["ipFamilies"],
        serde_json::json!(["IPv4"]),
        "{open}"
    );
}
