//! Which certificates a cluster needs: exactly the identities Kubernetes' RBAC and Node
//! authorizers recognise, with usages per role.

use std::net::IpAddr;

use kubeboot_pki::Usage;

use crate::spec::Checked;

/// One certificate to issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The file stem: `<stem>.pem`, `<stem>-key.pem`, `<stem>.kubeconfig`.
    pub stem: String,
    /// Subject CN.
    pub cn: String,
    /// Subject O values.
    pub orgs: Vec<String>,
    /// DNS SANs.
    pub dns: Vec<String>,
    /// IP SANs.
    pub ips: Vec<IpAddr>,
    /// Key and extended key usages.
    pub usages: Vec<Usage>,
    /// Whether a kubeconfig is written for it.
    pub kubeconfig: bool,
}

fn client(stem: &str, cn: &str, orgs: &[&str]) -> Identity {
    Identity {
        stem: stem.into(),
        cn: cn.into(),
        orgs: orgs.iter().map(|o| o.to_string()).collect(),
        dns: vec![],
        ips: vec![],
        usages: vec![
            Usage::DigitalSignature,
            Usage::KeyEncipherment,
            Usage::ClientAuth,
        ],
        kubeconfig: true,
    }
}

/// Every identity of the cluster, in a stable order.
pub fn identities(c: &Checked) -> Vec<Identity> {
    let s = &c.spec;
    let mut out = vec![
        client("admin", "admin", &["system:masters"]),
        client(
            "kube-controller-manager",
            "system:kube-controller-manager",
            &["system:kube-controller-manager"],
        ),
        client(
            "kube-scheduler",
            "system:kube-scheduler",
            &["system:kube-scheduler"],
        ),
        client("kube-proxy", "system:kube-proxy", &["system:node-proxier"]),
    ];
    for n in s.control_plane.iter().chain(&s.workers) {
        let mut dns = vec![n.name.clone()];
        dns.extend(n.dns.iter().cloned());
        out.push(Identity {
            stem: n.name.clone(),
            cn: format!("system:node:{}", n.name),
            orgs: vec!["system:nodes".into()],
            dns,
            ips: n.ips.iter().filter_map(|ip| ip.parse().ok()).collect(),
            // A kubelet's certificate is its client identity and its serving certificate.
            usages: vec![
                Usage::DigitalSignature,
                Usage::KeyEncipherment,
                Usage::ServerAuth,
                Usage::ClientAuth,
            ],
            kubeconfig: true,
        });
    }
    let mut dns: Vec<String> = ["kubernetes", "kubernetes.default", "kubernetes.default.svc"]
        .iter()
        .map(|x| x.to_string())
        .collect();
    dns.push(format!("kubernetes.default.svc.{}", s.cluster_domain));
    dns.push("localhost".into());
    let mut ips: Vec<IpAddr> = vec![c.service_ip, IpAddr::from([127, 0, 0, 1])];
    let add =
        |name: &str, dns: &mut Vec<String>, ips: &mut Vec<IpAddr>| match name.parse::<IpAddr>() {
            Ok(ip) if !ips.contains(&ip) => ips.push(ip),
            Ok(_) => {}
            Err(_) if !dns.iter().any(|d| d == name) => dns.push(name.to_owned()),
            Err(_) => {}
        };
    add(&c.endpoint_host, &mut dns, &mut ips);
    for n in &s.control_plane {
        add(&n.name, &mut dns, &mut ips);
        for x in n.dns.iter().chain(&n.ips) {
            add(x, &mut dns, &mut ips);
        }
    }
    for x in &s.extra_sans {
        add(x, &mut dns, &mut ips);
    }
    out.push(Identity {
        stem: "kubernetes".into(),
        cn: "kubernetes".into(),
        orgs: vec!["Kubernetes".into()],
        dns,
        ips,
        usages: vec![
            Usage::DigitalSignature,
            Usage::KeyEncipherment,
            Usage::ServerAuth,
        ],
        kubeconfig: false,
    });
    out.push(Identity {
        stem: "service-account".into(),
        cn: "service-accounts".into(),
        orgs: vec!["Kubernetes".into()],
        dns: vec![],
        ips: vec![],
        usages: vec![Usage::DigitalSignature],
        kubeconfig: false,
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_for_the_starting_spec() {
        let c = crate::spec::parse(crate::spec::STARTING_SPEC).unwrap();
        let ids = identities(&c);
        let stems: Vec<&str> = ids.iter().map(|i| i.stem.as_str()).collect();
        assert_eq!(
            stems,
            [
                "admin",
                "kube-controller-manager",
                "kube-scheduler",
                "kube-proxy",
                "controller-0",
                "worker-0",
                "kubernetes",
                "service-account"
            ]
        );
        let api = ids.iter().find(|i| i.stem == "kubernetes").unwrap();
        for want in [
            "kubernetes.default.svc.cluster.local",
            "controller-0",
            "localhost",
        ] {
            assert!(api.dns.iter().any(|d| d == want), "{want}");
        }
        for want in ["10.32.0.1", "127.0.0.1", "10.240.0.10"] {
            assert!(api.ips.contains(&want.parse().unwrap()), "{want}");
        }
        assert!(
            !api.usages.contains(&Usage::ClientAuth),
            "server auth only on serving certificates"
        );
        let admin = &ids[0];
        assert!(
            admin.usages.contains(&Usage::ClientAuth) && !admin.usages.contains(&Usage::ServerAuth)
        );
        let worker = ids.iter().find(|i| i.stem == "worker-0").unwrap();
        assert_eq!(
            (worker.cn.as_str(), worker.orgs.as_slice()),
            ("system:node:worker-0", &["system:nodes".to_owned()][..])
        );
        assert!(
            worker.usages.contains(&Usage::ClientAuth)
                && worker.usages.contains(&Usage::ServerAuth)
        );
    }
}
