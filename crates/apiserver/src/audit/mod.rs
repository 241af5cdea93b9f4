//! Auditing as kube-apiserver audits: each request is given a level by the policy
//! (`--audit-policy-file`), and at each stage not omitted an `audit.k8s.io/v1` `Event` is
//! written to the log (`--audit-log-path`): who (user, source address, user agent), what
//! (verb, URI, the object), the decision and the answer's code, with the request's object
//! at `Request` and the response's at `RequestResponse`. Secrets and token reviews are never
//! recorded above `Metadata`, whatever the policy says: a bootstrap token's secret, a key or
//! a token under review never reaches the log. Headers (credentials) are never recorded.

pub mod log;
pub mod policy;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::Response;
use http_body_util::BodyExt;
use kubeboot_api::{Clock, Status};
use serde_json::{Map, Value, json};

pub use self::log::{AuditLog, LogOptions, Mode};
pub use self::policy::{Level, Policy, Stage};
use crate::authn::UserInfo;
use crate::authz::{Attributes, Decision};
use crate::response::Body;

/// What the server audits, and where to.
pub struct Auditor {
    policy: Policy,
    log: AuditLog,
    clock: Arc<dyn Clock>,
}

/// One request's record, filled in as the request goes through the server.
#[derive(Clone, Debug)]
pub struct Record {
    id: String,
    received: SystemTime,
    uri: String,
    verb: String,
    source: IpAddr,
    user_agent: String,
    user: Option<UserInfo>,
    /// Whom the user acts as, when it impersonates.
    impersonated: Option<UserInfo>,
    object_ref: Map<String, Value>,
    level: Level,
    omit: Vec<Stage>,
    omit_managed_fields: bool,
    request_object: Option<Value>,
    annotations: Map<String, Value>,
}

impl Auditor {
    /// An auditor writing what `policy` asks for to `log`.
    pub fn new(policy: Policy, log: AuditLog, clock: Arc<dyn Clock>) -> Self {
        Self { policy, log, clock }
    }

    /// Writes out every event recorded so far, waiting at most `limit`: on shutdown, so
    /// that what was recorded is not lost with the process.
    pub fn flush(&self, limit: std::time::Duration) -> bool {
        self.log.flush(limit)
    }

    /// A record of a request just received (before anything is known of its user).
    pub fn begin(&self, uri: &str, verb: &str, source: IpAddr, user_agent: &str) -> Record {
        Record {
            id: crate::object::random_uid(),
            received: self.clock.now(),
            uri: uri.to_owned(),
            verb: verb.to_owned(),
            source,
            user_agent: user_agent.to_owned(),
            user: None,
            impersonated: None,
            object_ref: Map::new(),
            level: Level::None,
            omit: Vec::new(),
            omit_managed_fields: false,
            request_object: None,
            annotations: Map::new(),
        }
    }

    /// The request's user is known: decides its level and writes `RequestReceived`.
    /// `version` is the API version of a resource request.
    pub fn authenticated(
        &self,
        record: &mut Record,
        user: &UserInfo,
        a: &Attributes,
        version: &str,
    ) {
        Self::apply(record, self.policy.audit(Some(user), a), a);
        record.user = Some(user.clone());
        record.object_ref = object_ref(a, version);
        self.write(record, Stage::RequestReceived, None, None);
    }

    /// The request failed authentication: its level is what the policy gives a request of
    /// no user, and its one event (`ResponseStarted`, as kube-apiserver writes it) names no
    /// user.
    pub fn unauthenticated(&self, record: &mut Record, a: &Attributes, version: &str) {
        Self::apply(record, self.policy.audit(None, a), a);
        record.object_ref = object_ref(a, version);
    }

    /// Sets what the policy decided for a request of attributes `a` (secrets and token
    /// reviews never above `Metadata`).
    fn apply(record: &mut Record, audited: policy::Audited, a: &Attributes) {
        record.level = audited.level.min(ceiling(a));
        record.omit = audited.omit_stages;
        record.omit_managed_fields = audited.omit_managed_fields;
    }

    /// The authorizer's decision, as kube-apiserver annotates it.
    pub fn decided(&self, record: &mut Record, allowed: bool, reason: &str) {
        let decision = if allowed { "allow" } else { "forbid" };
        record
            .annotations
            .insert("authorization.k8s.io/decision".into(), json!(decision));
        if !reason.is_empty() {
            record
                .annotations
                .insert("authorization.k8s.io/reason".into(), json!(reason));
        }
    }

    /// The request's object (its body): names the object when the URL did not, and is kept
    /// when the level records it.
    pub fn request_object(&self, record: &mut Record, object: Option<&Value>) {
        let Some(object) = object else {
            return;
        };
        for (field, key) in [("name", "name"), ("namespace", "namespace")] {
            let value = object
                .pointer(&format!("/metadata/{key}"))
                .and_then(Value::as_str);
            if let Some(v) = value.filter(|v| !v.is_empty())
                && !record.object_ref.is_empty()
                && !record.object_ref.contains_key(field)
            {
                record.object_ref.insert(field.into(), json!(v));
            }
        }
        if record.level >= Level::Request {
            record.request_object = Some(object.clone());
        }
    }

    /// Whether the response's object is wanted.
    pub fn wants_response(&self, record: &Record) -> bool {
        record.level >= Level::RequestResponse
    }

    /// Writes the event of `stage` with the answer's code (and its Status when it failed).
    pub fn finish(
        &self,
        record: &Record,
        stage: Stage,
        code: u16,
        failure: Option<&Status>,
        response_object: Option<Value>,
    ) {
        let status = match failure {
            Some(s) => {
                json!({"metadata": {}, "status": "Failure", "message": s.message, "reason": s.reason, "code": s.code})
            }
            None => json!({"metadata": {}, "code": code}),
        };
        self.write(record, stage, Some(status), response_object);
    }

    fn write(&self, r: &Record, stage: Stage, status: Option<Value>, response: Option<Value>) {
        if r.level == Level::None || r.omit.contains(&stage) {
            return;
        }
        let now = self.clock.now();
        let mut event = json!({
            "kind": "Event",
            "apiVersion": "audit.k8s.io/v1",
            "level": r.level.as_str(),
            "auditID": r.id,
            "stage": stage.as_str(),
            "requestURI": r.uri,
            "verb": r.verb,
            "user": r.user.as_ref().map(user_json).unwrap_or_else(|| json!({})),
            "sourceIPs": [r.source.to_string()],
            "requestReceivedTimestamp": micro_time(r.received),
            "stageTimestamp": micro_time(now),
        });
        let e = event.as_object_mut().expect("an object literal");
        if let Some(u) = &r.impersonated {
            e.insert("impersonatedUser".into(), user_json(u));
        }
        if !r.user_agent.is_empty() {
            e.insert("userAgent".into(), json!(r.user_agent));
        }
        if !r.object_ref.is_empty() {
            e.insert("objectRef".into(), Value::Object(r.object_ref.clone()));
        }
        if let Some(status) = status {
            e.insert("responseStatus".into(), status);
        }
        let recorded = |mut object: Value| {
            if r.omit_managed_fields {
                without_managed_fields(&mut object);
            }
            object
        };
        if let Some(object) = &r.request_object {
            e.insert("requestObject".into(), recorded(object.clone()));
        }
        if let Some(object) = response.filter(|_| r.level >= Level::RequestResponse) {
            e.insert("responseObject".into(), recorded(object));
        }
        if !r.annotations.is_empty() {
            e.insert("annotations".into(), Value::Object(r.annotations.clone()));
        }
        match serde_json::to_vec(&event) {
            Ok(line) => self.log.write(now, line),
            Err(e) => tracing::warn!(error = %e, "an audit event could not be encoded"),
        }
    }
}

/// One request's way through the audit, as the request path reports it: does nothing when
/// the server does not audit.
pub struct Trail(Option<(Arc<Auditor>, Record)>);

impl Trail {
    /// A request just received, audited by `auditor` if there is one.
    pub fn begin<B>(
        auditor: Option<&Arc<Auditor>>,
        req: &http::Request<B>,
        verb: &str,
        source: IpAddr,
    ) -> Self {
        Self(auditor.map(|a| {
            let uri = req.uri().path_and_query().map_or("", |p| p.as_str());
            let agent = req.headers().get(http::header::USER_AGENT);
            let agent = agent.and_then(|v| v.to_str().ok()).unwrap_or_default();
            (a.clone(), a.begin(uri, verb, source, agent))
        }))
    }

    /// Authentication's outcome: the user, or a refusal.
    pub fn authenticated(&mut self, user: Option<&UserInfo>, a: &Attributes, version: &str) {
        if let Some((auditor, record)) = &mut self.0 {
            match user {
                Some(user) => auditor.authenticated(record, user, a, version),
                None => auditor.unauthenticated(record, a, version),
            }
        }
    }

    /// Whom the request acts as (its user impersonates): later stages name them as
    /// `impersonatedUser`.
    pub fn impersonated(&mut self, user: &UserInfo) {
        if let Some((_, record)) = &mut self.0 {
            record.impersonated = Some(user.clone());
        }
    }

    /// The authorizer's decision.
    pub fn decided(&mut self, decision: &Decision) {
        if let Some((auditor, record)) = &mut self.0 {
            match decision {
                Decision::Allowed { reason } => auditor.decided(record, true, reason),
                Decision::Denied { reason } => auditor.decided(record, false, reason),
            }
        }
    }

    /// The request's body, decoded only when the record needs it: to name what a create
    /// makes, or to keep it at `Request` level and above.
    pub fn request_body(&mut self, verb: &str, content_type: &str, body: &[u8]) {
        if let Some((auditor, record)) = &mut self.0
            && !body.is_empty()
            && (verb == "create" || record.level >= Level::Request)
        {
            let object = crate::body::decode(content_type, body).ok();
            auditor.request_object(record, object.as_ref());
        }
    }

    /// Writes the last events and gives the response (see `respond`).
    pub async fn respond(
        self,
        verb: &str,
        result: Result<Response<Body>, Status>,
    ) -> Response<Body> {
        match self.0 {
            Some((auditor, record)) => respond(auditor, record, verb, result).await,
            None => result.unwrap_or_else(|s| crate::status::status_response(&s)),
        }
    }
}

/// Writes a request's last events and gives its response: `ResponseComplete` now, or for
/// a watch `ResponseStarted` now and `ResponseComplete` when its stream ends; the response
/// object is read (and the body given on unchanged) only when the level records it.
async fn respond(
    auditor: Arc<Auditor>,
    record: Record,
    verb: &str,
    result: Result<Response<Body>, Status>,
) -> Response<Body> {
    let resp = match result {
        Ok(resp) => resp,
        Err(status) => {
            let stage = match record.user {
                None => Stage::ResponseStarted,
                Some(_) => Stage::ResponseComplete,
            };
            auditor.finish(&record, stage, status.code, Some(&status), None);
            return crate::status::status_response(&status);
        }
    };
    let code = resp.status().as_u16();
    if verb == "watch" {
        auditor.finish(&record, Stage::ResponseStarted, code, None, None);
        let done = Completed {
            auditor,
            record,
            code,
        };
        return resp.map(|body| {
            body.map_frame(move |frame| {
                let _until_the_end = &done;
                frame
            })
            .boxed()
        });
    }
    if !auditor.wants_response(&record) {
        auditor.finish(&record, Stage::ResponseComplete, code, None, None);
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(never) => match never {},
    };
    let object = serde_json::from_slice(&bytes).ok();
    auditor.finish(&record, Stage::ResponseComplete, code, None, object);
    Response::from_parts(parts, crate::response::full(bytes))
}

/// Writes a watch's `ResponseComplete` when its stream is dropped.
struct Completed {
    auditor: Arc<Auditor>,
    record: Record,
    code: u16,
}

impl Drop for Completed {
    fn drop(&mut self) {
        self.auditor
            .finish(&self.record, Stage::ResponseComplete, self.code, None, None);
    }
}

/// The most that may be recorded of a request: Secrets and token reviews hold credentials,
/// so never more than who touched which.
/// Removes `metadata.managedFields` from an object, or from each item of a list.
fn without_managed_fields(object: &mut Value) {
    let strip = |o: &mut Value| {
        if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.remove("managedFields");
        }
    };
    strip(object);
    if let Some(items) = object.get_mut("items").and_then(Value::as_array_mut) {
        items.iter_mut().for_each(strip);
    }
}

fn ceiling(a: &Attributes) -> Level {
    match (a.group.as_str(), a.resource.as_str()) {
        ("", "secrets") | ("authentication.k8s.io", "tokenreviews") => Level::Metadata,
        _ => Level::RequestResponse,
    }
}

fn object_ref(a: &Attributes, version: &str) -> Map<String, Value> {
    let mut r = Map::new();
    if !a.is_resource {
        return r;
    }
    for (k, v) in [
        ("resource", &a.resource),
        ("namespace", &a.namespace),
        ("name", &a.name),
        ("apiGroup", &a.group),
        ("apiVersion", &version.to_owned()),
        ("subresource", &a.subresource),
    ] {
        if !v.is_empty() {
            r.insert(k.into(), json!(v));
        }
    }
    r
}

fn user_json(u: &UserInfo) -> Value {
    let mut v = json!({"username": u.name, "groups": u.groups});
    if !u.uid.is_empty() {
        v["uid"] = json!(u.uid);
    }
    if !u.extra.is_empty() {
        v["extra"] = json!(u.extra);
    }
    v
}

/// RFC 3339 in UTC with microseconds, as audit events carry their times.
pub(crate) fn micro_time(t: SystemTime) -> String {
    let d = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second(),
        d.microsecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_carry_microseconds_in_utc() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_micros(1_764_868_520_123_456);
        assert_eq!(micro_time(t), "2025-12-04T17:15:20.123456Z");
    }

    #[test]
    fn secrets_and_token_reviews_are_never_recorded_above_metadata() {
        let a = |group: &str, resource: &str| Attributes {
            is_resource: true,
            group: group.into(),
            resource: resource.into(),
            ..Default::default()
        };
        assert_eq!(ceiling(&a("", "secrets")), Level::Metadata);
        assert_eq!(
            ceiling(&a("authentication.k8s.io", "tokenreviews")),
            Level::Metadata
        );
        assert_eq!(ceiling(&a("", "configmaps")), Level::RequestResponse);
        assert_eq!(
            ceiling(&a("certificates.k8s.io", "certificatesigningrequests")),
            Level::RequestResponse
        );
    }

    #[test]
    fn managed_fields_are_left_out_of_objects_and_list_items() {
        let mut object =
            json!({"metadata": {"name": "a", "managedFields": [{"manager": "kubectl"}]}});
        without_managed_fields(&mut object);
        assert_eq!(object, json!({"metadata": {"name": "a"}}));
        let mut list = json!({"items": [{"metadata": {"managedFields": []}}, {"data": {}}]});
        without_managed_fields(&mut list);
        assert_eq!(list, json!({"items": [{"metadata": {}}, {"data": {}}]}));
    }
}
