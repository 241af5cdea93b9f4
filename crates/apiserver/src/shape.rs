//! The form a read answers in, as the `as=` parameter of the client's `Accept` asks
//! (kube-apiserver's content negotiation): objects as stored, a Table (`kubectl get`), or
//! their metadata alone — `PartialObjectMetadata`, what client-go's metadata client and
//! the informers of controllers that need nothing more (a garbage collector) read.

use serde_json::{Value, json};

/// The form of a get's, list's or watch's objects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// The objects themselves.
    Object,
    /// A Table of rows (`as=Table`).
    Table,
    /// Their metadata alone (`as=PartialObjectMetadata`, `as=PartialObjectMetadataList`).
    Metadata,
}

/// The group and version of `PartialObjectMetadata`.
pub const META_API_VERSION: &str = "meta.k8s.io/v1";

impl Shape {
    /// The form `accept` asks for: that of its first media type this server answers (one
    /// with an `as=` it does not know is passed over), else the objects themselves.
    pub fn of(accept: &str) -> Self {
        for media in accept.split(',') {
            let wanted = media
                .split(';')
                .skip(1)
                .find_map(|p| p.trim().strip_prefix("as="));
            match wanted {
                None => return Shape::Object,
                Some("Table") => return Shape::Table,
                Some("PartialObjectMetadata" | "PartialObjectMetadataList") => {
                    return Shape::Metadata;
                }
                Some(_) => {}
            }
        }
        Shape::Object
    }
}

/// An object (with its kind and apiVersion) as `PartialObjectMetadata`.
pub fn partial(obj: &Value) -> Value {
    let metadata = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    json!({"kind": "PartialObjectMetadata", "apiVersion": META_API_VERSION, "metadata": metadata})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_form_answered_is_the_one_given() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        let metadata_list = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
        let cases = [
            ("", Shape::Object),
            ("application/json", Shape::Object),
            ("application/vnd.kubernetes.protobuf, */*", Shape::Object),
            (table, Shape::Table),
            (metadata_list, Shape::Metadata),
            (
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
                Shape::Metadata,
            ),
            (
                "application/json;as=APIGroupDiscoveryList;g=apidiscovery.k8s.io;v=v2,application/json",
                Shape::Object,
            ),
        ];
        for (accept, want) in cases {
            assert_eq!(Shape::of(accept), want, "{accept}");
        }
    }

    #[test]
    fn partial_metadata_keeps_the_metadata_alone() {
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a", "resourceVersion": "7"}, "data": {"k": "v"}});
        assert_eq!(
            partial(&cm),
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "a", "resourceVersion": "7"}})
        );
    }
}
