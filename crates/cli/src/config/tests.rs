use super::*;

fn flags(out: &FromFile) -> Vec<(&str, &str)> {
    out.flags
        .iter()
        .map(|(f, v)| (f.as_str(), v.as_str()))
        .collect()
}

fn server_flags() -> Vec<String> {
    ["event-ttl", "advertise-address", "secure-port"]
        .map(String::from)
        .to_vec()
}

#[test]
fn an_init_and_cluster_configuration_stand_for_server_flags() {
    let text = "\
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: abcdef.0123456789abcdef
  ttl: 2h0m0s
  groups: [system:bootstrappers:workers]
localAPIEndpoint:
  advertiseAddress: 10.0.0.10
  bindPort: 7443
nodeRegistration:
  name: cp-1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
networking:
  serviceSubnet: 10.100.0.0/16
apiServer:
  certSANs: [cp.example.com, 10.0.0.11]
  extraArgs:
  - name: event-ttl
    value: 2h
  - name: authorization-mode
    value: Node,RBAC
";
    let out = from_text(text, Reader::Server, &server_flags()).expect("reads");
    assert_eq!(
        flags(&out),
        [
            ("advertise-address", "10.0.0.10"),
            ("secure-port", "7443"),
            ("service-cluster-ip-range", "10.100.0.0/16"),
            ("apiserver-cert-extra-sans", "cp.example.com,10.0.0.11"),
            ("event-ttl", "2h"),
        ]
    );
    assert_eq!(out.tokens.len(), 1);
    let token = &out.tokens[0];
    assert_eq!(token.token.expose(), "abcdef.0123456789abcdef");
    assert_eq!(token.ttl, Some(Duration::from_secs(7200)));
    assert_eq!(token.groups, ["system:bootstrappers:workers"]);
    assert_eq!(token.usages, ["signing", "authentication"]);
    assert_eq!(
        out.unused,
        [
            "InitConfiguration nodeRegistration",
            "ClusterConfiguration apiServer.extraArgs authorization-mode (kubeboot server has no --authorization-mode)",
        ]
    );
}

use std::time::Duration;

#[test]
fn a_join_configuration_stands_for_join_flags() {
    let text = "\
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: 10.0.0.10:6443
    token: abcdef.0123456789abcdef
    caCertHashes:
    - sha256:aa
    - sha256:bb
  tlsBootstrapToken: abcdef.0123456789abcdef
nodeRegistration:
  name: worker-1
timeouts:
  discovery: 1m0s
";
    let out = from_text(text, Reader::Join, &[]).expect("reads");
    assert_eq!(out.positional.as_deref(), Some("10.0.0.10:6443"));
    assert_eq!(
        flags(&out),
        [
            ("discovery-token", "abcdef.0123456789abcdef"),
            ("discovery-token-ca-cert-hash", "sha256:aa"),
            ("discovery-token-ca-cert-hash", "sha256:bb"),
            ("tls-bootstrap-token", "abcdef.0123456789abcdef"),
            ("node-name", "worker-1"),
            ("discovery-timeout", "1m0s"),
        ]
    );
}

#[test]
fn a_kubelet_configuration_stands_for_node_flags() {
    let text = "\
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
rotateCertificates: true
serverTLSBootstrap: true
address: 127.0.0.1
port: 10260
cgroupDriver: systemd
";
    let out = from_text(text, Reader::Node, &[]).expect("reads");
    assert_eq!(
        flags(&out),
        [
            ("rotate-certificates", ""),
            ("rotate-server-certificates", ""),
            ("address", "127.0.0.1"),
            ("port", "10260"),
        ]
    );
    assert_eq!(out.unused, ["KubeletConfiguration cgroupDriver"]);
}

#[test]
fn mistakes_name_their_line() {
    let cases: &[(&str, Reader, usize, &str)] = &[
        (
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\ndiscovery:\n  bootstrapToken:\n    tokn: x\n",
            Reader::Join,
            5,
            "strict decoding error: unknown field \"discovery.bootstrapToken.tokn\" in JoinConfiguration",
        ),
        (
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n\nrotateCertificate: true\n",
            Reader::Node,
            4,
            "strict decoding error: unknown field \"rotateCertificate\" in KubeletConfiguration",
        ),
        (
            "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\nport: \"10250\"\n",
            Reader::Node,
            3,
            "port: expected an integer",
        ),
        (
            "# tokens\n---\napiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nbootstrapTokens:\n- token: bogus\n",
            Reader::Server,
            6,
            "the bootstrap token \"bogus\" was not of the form",
        ),
        (
            "apiVersion: kubeadm.k8s.io/v1beta3\nkind: InitConfiguration\n",
            Reader::Server,
            1,
            "kubeadm.k8s.io/v1beta3 is not supported",
        ),
        (
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n",
            Reader::Server,
            2,
            "JoinConfiguration of kubeadm.k8s.io/v1beta4 is not read by kubeboot server",
        ),
        (
            "apiVersion: v1\nkind: KubeletConfiguration\nport: [\n",
            Reader::Node,
            3,
            "not YAML",
        ),
        (
            "apiVersion: kubeadm.k8s.io/v1beta4\nkind: InitConfiguration\nbootstrapTokens:\n- token: abcdef.0123456789abcdef\n  ttl: forever\n",
            Reader::Server,
            5,
            "bootstrapTokens.0.ttl",
        ),
    ];
    for (text, reader, line, message) in cases {
        let e = from_text(text, *reader, &[]).expect_err(text);
        assert_eq!(e.line, *line, "{text}: {e:?}");
        assert!(e.message.contains(message), "{text}: {e:?}");
    }
}

#[test]
fn flags_on_the_command_line_win_over_the_file() {
    let from_file = FromFile {
        flags: vec![
            ("secure-port".into(), "7443".into()),
            ("rotate-certificates".into(), String::new()),
        ],
        positional: Some("10.0.0.10:6443".into()),
        ..FromFile::default()
    };
    let args: Vec<OsString> = ["kubeboot", "join", "--secure-port", "9443"]
        .map(OsString::from)
        .to_vec();
    let merged = merged_args(&args, &from_file, |id| id == "secure_port");
    assert_eq!(
        merged,
        [
            "kubeboot",
            "join",
            "--secure-port",
            "9443",
            "--rotate-certificates",
            "10.0.0.10:6443"
        ]
        .map(OsString::from)
    );
    let merged = merged_args(&args, &from_file, |id| id == "endpoint");
    assert_eq!(merged.len(), 6, "{merged:?}");
    assert_eq!(merged[4], "--secure-port=7443");
}
