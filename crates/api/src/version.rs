//! What this build is: the `version.Info` kube-apiserver's `/version` and `kubeadm version`
//! report, with kubeboot's own version in `gitVersion` after the Kubernetes version it
//! serves (`v1.33.0-kubeboot.0.1.0`), and the commit and date of the build (`build.rs`).

use serde_json::{Value, json};

/// The Kubernetes version whose API this build serves.
pub const KUBERNETES_VERSION: &str = "v1.33.0";

/// The `version.Info` object of this build.
pub fn info() -> Value {
    let epoch: u64 = env!("KUBEBOOT_BUILD_EPOCH").parse().unwrap_or(0);
    let built = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch);
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": format!("{KUBERNETES_VERSION}-kubeboot.{}", env!("CARGO_PKG_VERSION")),
        "gitCommit": env!("KUBEBOOT_GIT_COMMIT"),
        "gitTreeState": env!("KUBEBOOT_GIT_TREE_STATE"),
        "buildDate": crate::clock::format_rfc3339(built),
        "goVersion": env!("KUBEBOOT_RUSTC_VERSION"),
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, arch()),
    })
}

/// The architecture as Go names it (`amd64`, `arm64`).
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `kubeadm version`'s default line: the object as Go's `%#v` prints a `version.Info`.
pub fn go_struct(info: &Value) -> String {
    let field = |k: &str| info[k].as_str().unwrap_or_default().to_owned();
    let names = [
        ("Major", "major"),
        ("Minor", "minor"),
        ("GitVersion", "gitVersion"),
        ("GitCommit", "gitCommit"),
        ("GitTreeState", "gitTreeState"),
        ("BuildDate", "buildDate"),
        ("GoVersion", "goVersion"),
        ("Compiler", "compiler"),
        ("Platform", "platform"),
    ];
    let fields: Vec<String> = names
        .iter()
        .map(|(go, json)| format!("{go}:{:?}", field(json)))
        .collect();
    format!("&version.Info{{{}}}", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_is_described_as_kubernetes_describes_its_own() {
        let v = info();
        assert_eq!(
            v["gitVersion"],
            format!("v1.33.0-kubeboot.{}", env!("CARGO_PKG_VERSION"))
        );
        let date = v["buildDate"].as_str().unwrap();
        assert!(crate::clock::parse_rfc3339(date).is_some(), "{date}");
        assert!(matches!(
            v["gitTreeState"].as_str(),
            Some("clean" | "dirty" | "")
        ));
        let line = go_struct(&v);
        assert!(
            line.starts_with(
                "&version.Info{Major:\"1\", Minor:\"33\", GitVersion:\"v1.33.0-kubeboot."
            ),
            "{line}"
        );
        assert!(line.contains(", Compiler:\"rustc\", Platform:\""), "{line}");
    }
}
