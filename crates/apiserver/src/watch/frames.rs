//! The lines of a watch response: one JSON `{"type": ..., "object": ...}` per event, the
//! object as stored (its shared bytes spliced, never parsed again) or as a one-row Table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use kubeboot_api::clock::Clock;
use kubeboot_store::Revision;
use serde_json::{Value, json};

use super::bookmark::INITIAL_EVENTS_END;
use super::cache::{CachedEvent, EventType};
use super::selection::State;
use crate::object::set_type;
use crate::registry::ResourceDef;
use crate::shape::Shape;
use crate::tables;

/// Turns events into watch frames for one watch.
pub struct Frames {
    /// The resource watched.
    pub def: &'static ResourceDef,
    /// Objects as themselves, one-row Tables or their metadata alone (`Accept`'s `as=`).
    pub shape: Shape,
    /// `includeObject` of those tables.
    pub include_object: String,
    /// Ages in table cells.
    pub clock: Arc<dyn Clock>,
    /// Whether a Table has gone out: only the first carries the column definitions (the
    /// rest `null`), as kube-apiserver's watch encoder sends them.
    pub headers_sent: AtomicBool,
}

impl Frames {
    /// The frame of a cached event, sent as `ty` with the object's `state`.
    pub fn event(&self, e: &CachedEvent, ty: EventType, state: State) -> Bytes {
        if state == State::Replaced {
            let replaced = e.prev_object().unwrap_or_else(|| e.object());
            return self.object(ty.as_str(), replaced);
        }
        if self.shape != Shape::Object
            || self.def.conversion.is_some()
            || !e.json.starts_with(b"{\"")
        {
            return self.object(ty.as_str(), e.object());
        }
        // Splice the shared bytes: {"type":T,"object":{"kind":K,"apiVersion":V, <rest>}
        let head = format!(
            r#"{{"type":"{}","object":{{"kind":"{}","apiVersion":"{}","#,
            ty.as_str(),
            self.def.kind,
            self.def.api_version()
        );
        let mut line = Vec::with_capacity(head.len() + e.json.len() + 2);
        line.extend_from_slice(head.as_bytes());
        line.extend_from_slice(&e.json[1..]);
        line.extend_from_slice(b"}\n");
        Bytes::from(line)
    }

    /// The frame of an object (an initial event of a watch without a resourceVersion).
    pub fn object(&self, ty: &str, obj: Value) -> Bytes {
        let mut obj = self.def.to_version(obj);
        set_type(&mut obj, &self.def.api_version(), self.def.kind);
        let object = match self.shape {
            Shape::Table => {
                let table = tables::of_one(self.def, obj, self.clock.now(), &self.include_object);
                let mut table = serde_json::to_value(table).unwrap_or(Value::Null);
                if self.headers_sent.swap(true, Ordering::Relaxed) {
                    table["columnDefinitions"] = Value::Null;
                }
                table
            }
            Shape::Metadata => crate::shape::partial(&obj),
            Shape::Object => obj,
        };
        line(&json!({"type": ty, "object": object}))
    }

    /// A bookmark at `rev`; the one that ends a streaming list's initial events carries
    /// the `k8s.io/initial-events-end` annotation.
    pub fn bookmark(&self, rev: Revision, ends_initial_events: bool) -> Bytes {
        let mut metadata = json!({"resourceVersion": rev.to_string(), "creationTimestamp": null});
        if ends_initial_events {
            metadata["annotations"] = json!({INITIAL_EVENTS_END: "true"});
        }
        let object = json!({"kind": self.def.kind, "apiVersion": self.def.api_version(), "metadata": metadata});
        let object = match self.shape {
            Shape::Metadata => crate::shape::partial(&object),
            Shape::Object | Shape::Table => object,
        };

        line(&json!({"type": "BOOKMARK", "object": object}))
    }
}

/// A `Value` as one line of JSON (writing a `Value` into memory cannot fail).
fn line(v: &Value) -> Bytes {
    let mut out = v.to_string().into_bytes();
    out.push(b'\n');
    Bytes::from(out)
}
