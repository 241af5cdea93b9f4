//! Events the controllers record about what they decide, as client-go's recorder writes
//! them (core/v1, `source.component` the controller's): a node gone `NotReady`, a CSR
//! approved, issued or refused. An Event about a cluster-scoped object lives in `default`,
//! named `<object>.<nanoseconds in hex>`. Recording never holds up the decision: it is
//! written in the background, and a failure is logged.

use std::time::SystemTime;

use kubeboot_api::clock::format_rfc3339;
use kubeboot_client::Client;
use serde_json::{Value, json};

use crate::tasks::Tasks;

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// Something went as it should.
    Normal,
    /// Something an operator should look at.
    Warning,
}

/// The object an Event is about: the `involvedObject` of a cluster-scoped object.
pub struct Regarding<'a> {
    /// Its `apiVersion`.
    pub api_version: &'a str,
    /// Its `kind`.
    pub kind: &'a str,
    /// The object itself (its name and uid are read).
    pub object: &'a Value,
}

/// One Event.
pub struct Recorded<'a> {
    /// Normal or Warning.
    pub ty: EventType,
    /// Its reason (`AutoApproved`, `NodeNotReady`).
    pub reason: &'a str,
    /// What happened, for a person.
    pub message: &'a str,
    /// The controller (`source.component`, `reportingComponent`).
    pub component: &'a str,
}

/// The Event client-go's recorder writes.
pub fn event(about: &Regarding, what: &Recorded, now: SystemTime) -> Value {
    let name = about
        .object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let stamp = format_rfc3339(now);
    let ty = match what.ty {
        EventType::Normal => "Normal",
        EventType::Warning => "Warning",
    };
    json!({
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": format!("{name}.{nanos:x}"), "namespace": "default"},
        "involvedObject": {"apiVersion": about.api_version, "kind": about.kind, "name": name,
            "uid": about.object.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)},
        "reason": what.reason, "message": what.message,
        "type": ty, "source": {"component": what.component},
        "reportingComponent": what.component, "reportingInstance": "",
        "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
    })
}

/// Writes Events in the background.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    tasks: Tasks,
}

impl Recorder {
    /// A recorder writing through `client`, its writes among `tasks`.
    pub fn new(client: Client, tasks: Tasks) -> Self {
        Self { client, tasks }
    }

    /// Records an Event (in the background).
    pub fn record(&self, event: Value) {
        let client = self.client.clone();
        self.tasks.spawn(async move {
            let path = "/api/v1/namespaces/default/events";
            if let Err(e) = client.create::<serde::de::IgnoredAny>(path, &event).await {
                let name = event
                    .pointer("/involvedObject/name")
                    .cloned()
                    .unwrap_or_default();
                tracing::warn!(object = %name, error = %e, "cannot record an event");
            }
        });
    }
}
