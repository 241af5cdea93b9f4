//! The kubelet's configuration file (`kubelet.config.k8s.io/v1beta1`
//! `KubeletConfiguration`, `staging/src/k8s.io/kubelet/config/v1beta1/types.go`): every
//! field it has is accepted; kubeboot's node agent takes those of its certificate side —
//! `rotateCertificates`, `serverTLSBootstrap`, and the `address` and `port` it serves on.

use super::schema::{Field, unknown_field};
use super::{ConfigError, Document, FromFile};

/// The fields of a KubeletConfiguration.
const KUBELET_CONFIGURATION: &[&str] = &include!("kubelet_fields.in");

/// `KubeletConfiguration` for `kubeboot node`.
pub(super) fn node(doc: &Document, out: &mut FromFile) -> Result<(), ConfigError> {
    if doc.api_version != "kubelet.config.k8s.io/v1beta1" {
        return Err(doc.error(
            &["apiVersion"],
            format!(
                "{} is not supported: kubeboot reads kubelet.config.k8s.io/v1beta1",
                doc.api_version
            ),
        ));
    }
    let fields: Vec<(&str, Field)> = KUBELET_CONFIGURATION
        .iter()
        .map(|f| (*f, Field::Any))
        .collect();
    if let Some(path) = unknown_field(&doc.value, &fields) {
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        return Err(doc.error(
            &path,
            format!(
                "strict decoding error: unknown field \"{}\" in KubeletConfiguration",
                path.join(".")
            ),
        ));
    }
    if doc.bool_at(&["rotateCertificates"])? == Some(true) {
        out.flags
            .push(("rotate-certificates".into(), String::new()));
    }
    if doc.bool_at(&["serverTLSBootstrap"])? == Some(true) {
        out.flags
            .push(("rotate-server-certificates".into(), String::new()));
    }
    if let Some(a) = doc.str_at(&["address"])? {
        out.flags.push(("address".into(), a));
    }
    if let Some(p) = doc.int_at(&["port"])? {
        out.flags.push(("port".into(), p.to_string()));
    }
    let used = [
        "apiVersion",
        "kind",
        "rotateCertificates",
        "serverTLSBootstrap",
        "address",
        "port",
    ];
    for field in doc.value.as_object().into_iter().flatten().map(|(k, _)| k) {
        if !used.contains(&field.as_str()) {
            out.unused.push(format!("KubeletConfiguration {field}"));
        }
    }
    Ok(())
}
