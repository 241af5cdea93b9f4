//! The query parameters of a list or watch (`metav1.ListOptions`) that are read the same
//! everywhere, as kube-apiserver reads them: `resourceVersion` must be an unsigned integer
//! (`storage.ValidateListOptions`), and a watch's `timeoutSeconds` ends it after that long —
//! at once when negative, after the default when absent or zero. And the `continue` token
//! of a paged list, and the options of a write (`dryRun`, `fieldValidation`), whose
//! unknown values are refused rather than ignored (a mistyped `dryRun` must never write).

use std::time::Duration;

use crate::patch::PatchType;
use base64::Engine;
use kubeboot_api::{Status, StatusCause};
use kubeboot_store::Revision;
use serde_json::{Value, json};

use crate::requestinfo::Query;

/// `resourceVersion`: `None` when absent or empty; 400 with Kubernetes' message when it is
/// not an unsigned integer.
pub fn resource_version(q: &Query) -> Result<Option<u64>, Status> {
    match q.get("resourceVersion").map(String::as_str) {
        None | Some("") => Ok(None),
        Some(rv) => parse_uint(rv).map(Some).map_err(|why| {
            Status::bad_request(format!(
                "invalid resource version: resourceVersion: Invalid value: {rv:?}: strconv.ParseUint: parsing {rv:?}: {why}"
            ))
        }),
    }
}

/// How long a read at a resourceVersion the server has not reached waits for it
/// (kube-apiserver's watch cache `blockTimeout`).
pub const FRESHNESS_WAIT: Duration = Duration::from_secs(3);

/// The revision a list or get must wait for before it reads: its `resourceVersion` when
/// above 0 (an exact read too: a revision the store has not reached is not there yet).
pub fn must_have_reached(q: &Query) -> Result<Option<u64>, Status> {
    Ok(resource_version(q)?.filter(|rv| *rv > 0))
}

/// The revision a list asks to be read at exactly: `resourceVersionMatch=Exact`, or the
/// older form kube-apiserver still reads so (`ValidateListOptions`' legacy case): a
/// resourceVersion above 0 with a `limit` and no match, continuing nothing.
pub fn exact_revision(q: &Query) -> Result<Option<Revision>, Status> {
    let exact = match q.get("resourceVersionMatch").map(String::as_str) {
        Some("Exact") => true,
        None | Some("") => {
            let (limit, _) = list_numbers(q)?;
            limit.is_some() && q.get("continue").is_none_or(|c| c.is_empty())
        }
        Some(_) => false,
    };
    match resource_version(q)?.filter(|rv| exact && *rv > 0) {
        Some(rv) => Revision::try_from(rv).map(Some).map_err(|_| {
            Status::bad_request(format!("invalid resource version: {rv} is out of range"))
        }),
        None => Ok(None),
    }
}

/// The `limit` of a list: none at resourceVersion 0, which kube-apiserver serves whole
/// from its watch cache (`computeListLimit`).
pub fn list_limit(q: &Query) -> Result<Option<usize>, Status> {
    let (limit, _) = list_numbers(q)?;
    Ok(limit.filter(|_| resource_version(q).ok().flatten() != Some(0)))
}

/// kube-apiserver's 410 for a list at a revision whose history is gone.
pub const LIST_TOO_OLD: &str = "The resourceVersion for the provided list is too old.";

/// kube-apiserver's 410 for a continue token whose revision's history is gone, carrying a
/// token that continues after `key` at the latest revision.
pub fn inconsistent_continue(key: &str) -> Status {
    let mut status = Status::expired(
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
    );
    status
        .metadata
        .insert("continue".into(), json!(encode_continue(key, -1)));
    status
}

/// Whether a write asks for a dry run (`dryRun=All`, the one value `write_options`
/// accepts): checked in full, stored nowhere.
pub fn is_dry_run(q: &Query) -> bool {
    q.get("dryRun").is_some_and(|d| d == "All")
}

/// Refuses a write whose `dryRun` is not `All` or whose `fieldValidation` is not `Ignore`,
/// `Warn` or `Strict`: 422 `Invalid` of the verb's options kind, as kube-apiserver's
/// `ValidateCreateOptions` (and its update, patch and delete twins) answers.
pub fn write_options(verb: &str, q: &Query) -> Result<(), Status> {
    let kind = match verb {
        "create" => "CreateOptions",
        "update" => "UpdateOptions",
        "patch" => "PatchOptions",
        "delete" | "deletecollection" => "DeleteOptions",
        _ => return Ok(()),
    };
    let mut causes = Vec::new();
    if let Some(dry_run) = q.get("dryRun").filter(|d| *d != "All") {
        causes.push(StatusCause::new(
            "FieldValueNotSupported",
            "dryRun",
            format!(
                "Unsupported value: {}: supported values: \"All\"",
                kubeboot_api::status::go_strings(&[dry_run])
            ),
        ));
    }
    let validation = q
        .get("fieldValidation")
        .map(String::as_str)
        .unwrap_or_default();
    if kind != "DeleteOptions" && !matches!(validation, "" | "Ignore" | "Warn" | "Strict") {
        causes.push(StatusCause::new(
            "FieldValueNotSupported",
            "fieldValidation",
            format!(
                "Unsupported value: {validation:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ),
        ));
    }
    match causes.is_empty() {
        true => Ok(()),
        false => Err(Status::invalid(kind, "meta.k8s.io", "", causes)),
    }
}

/// Checks `PatchOptions` and the field manager of any write as kube-apiserver does
/// (`ValidatePatchOptions`, `ValidateFieldManager`): an apply names its field manager,
/// only an apply may `force`, a field manager is at most 128 printable characters.
pub fn patch_options(verb: &str, ty: Option<PatchType>, q: &Query) -> Result<(), Status> {
    let kind = match verb {
        "create" => "CreateOptions",
        "update" => "UpdateOptions",
        "patch" => "PatchOptions",
        _ => return Ok(()),
    };
    let manager = q
        .get("fieldManager")
        .map(String::as_str)
        .unwrap_or_default();
    let mut causes = Vec::new();
    if verb == "patch" {
        match ty {
            Some(PatchType::Apply) if manager.is_empty() => {
                causes.push(StatusCause::required(
                    "fieldManager",
                    "is required for apply patch",
                ));
            }
            Some(PatchType::Apply) => {}
            _ if q.contains_key("force") => causes.push(StatusCause::forbidden(
                "force",
                "may not be specified for non-apply patch",
            )),
            _ => {}
        }
    }
    if manager.len() > crate::fieldmanager::MAX_MANAGER_LENGTH {
        causes.push(StatusCause::too_long(
            "fieldManager",
            crate::fieldmanager::MAX_MANAGER_LENGTH,
        ));
    }
    if let Some((i, c)) = manager.char_indices().find(|(_, c)| c.is_control()) {
        causes.push(StatusCause::invalid(
            "fieldManager",
            manager,
            &format!("invalid character U+{:04X} (at position {i})", c as u32),
        ));
    }
    match causes.is_empty() {
        true => Ok(()),
        false => Err(Status::invalid(kind, "meta.k8s.io", "", causes)),
    }
}

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchStart {
    /// With the objects as they are (sent as ADDED), once the store has reached the given
    /// revision if any: a watch without a resourceVersion (or at 0), or a streaming list.
    InitialState {
        /// The revision the state must not be older than.
        not_older_than: Option<u64>,
    },
    /// After this revision: the changes since.
    After(u64),
    /// From the current revision on, nothing before: `sendInitialEvents=false` without a
    /// resourceVersion (or at 0).
    Now,
}

/// A watch's options (`metav1.ListOptions` with `watch=true`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatchOptions {
    /// Where it starts.
    pub start: WatchStart,
    /// `allowWatchBookmarks=true`.
    pub bookmarks: bool,
    /// `sendInitialEvents=true` with bookmarks: a streaming list, whose initial events end
    /// with a bookmark.
    pub streaming_list: bool,
    /// How long it runs.
    pub timeout: Duration,
}

impl WatchOptions {
    /// Reads and checks a watch's query.
    pub fn parse(q: &Query) -> Result<Self, Status> {
        let (_, timeout_seconds) = list_numbers(q)?;
        let rv = resource_version(q)?;
        let bookmarks = q.get("allowWatchBookmarks").is_some_and(|v| query_bool(v));
        let send_initial_events = q.get("sendInitialEvents").map(|v| query_bool(v));
        validate_watch(q, send_initial_events)?;
        let start = match (send_initial_events, rv) {
            (Some(true), rv) => WatchStart::InitialState {
                not_older_than: rv.filter(|rv| *rv > 0),
            },
            (Some(false) | None, Some(rv)) if rv > 0 => WatchStart::After(rv),
            // Without initial events and without a resourceVersion: from now on.
            (Some(false), _) => WatchStart::Now,
            (None, _) => WatchStart::InitialState {
                not_older_than: None,
            },
        };
        Ok(Self {
            start,
            bookmarks,
            // kube-apiserver's `isListWatchRequest`: the initial events end with a bookmark
            // only for a watch that takes bookmarks.
            streaming_list: send_initial_events == Some(true) && bookmarks,
            timeout: watch_timeout(timeout_seconds),
        })
    }
}

/// Refuses what kube-apiserver's `ValidateListOptions` refuses of a list's options: 422
/// `Invalid` of kind `ListOptions`.
pub fn validate_list(q: &Query) -> Result<(), Status> {
    let mut causes = Vec::new();
    let rv = q
        .get("resourceVersion")
        .map(String::as_str)
        .unwrap_or_default();
    if let Some(m) = q.get("resourceVersionMatch").filter(|m| !m.is_empty()) {
        if rv.is_empty() {
            causes.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if q.get("continue").is_some_and(|c| !c.is_empty()) {
            causes.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if !matches!(m.as_str(), "Exact" | "NotOlderThan") {
            causes.push(StatusCause::not_supported(
                "resourceVersionMatch",
                m,
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if m == "Exact" && rv == "0" {
            causes.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
    }
    if q.contains_key("sendInitialEvents") {
        causes.push(forbidden(
            "sendInitialEvents",
            "sendInitialEvents is forbidden for list",
        ));
    }
    invalid_list_options(causes)
}

fn validate_watch(q: &Query, send_initial_events: Option<bool>) -> Result<(), Status> {
    let mut causes = Vec::new();
    let m = q
        .get("resourceVersionMatch")
        .map(String::as_str)
        .unwrap_or_default();
    if send_initial_events.is_some() && m != "NotOlderThan" {
        causes.push(forbidden(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if !m.is_empty() {
        if send_initial_events.is_none() {
            causes.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if m != "NotOlderThan" {
            causes.push(StatusCause::not_supported(
                "resourceVersionMatch",
                m,
                &["NotOlderThan"],
            ));
        }
        if q.get("continue").is_some_and(|c| !c.is_empty()) {
            causes.push(forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
    }
    invalid_list_options(causes)
}

fn invalid_list_options(causes: Vec<StatusCause>) -> Result<(), Status> {
    match causes.is_empty() {
        true => Ok(()),
        false => Err(Status::invalid("ListOptions", "meta.k8s.io", "", causes)),
    }
}

fn forbidden(field: &str, detail: &str) -> StatusCause {
    StatusCause::forbidden(field, detail)
}

/// A boolean query parameter as apimachinery's conversion reads it
/// (`Convert_Slice_string_To_bool`): `0` and `false` in any case are false, anything else,
/// the empty string included, true.
pub fn query_bool(v: &str) -> bool {
    !(v == "0" || v.eq_ignore_ascii_case("false"))
}

/// An integer query parameter as Go's `strconv.ParseInt` reads it, its refusal a 400 in
/// its words (apimachinery's `Convert_Slice_string_To_int64`).
pub fn query_int(q: &Query, name: &str) -> Result<Option<i64>, Status> {
    let Some(v) = q.get(name) else {
        return Ok(None);
    };
    v.parse::<i64>().map(Some).map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        Status::bad_request(format!("strconv.ParseInt: parsing {v:?}: {why}"))
    })
}

/// A list's or a watch's numbers, decoded before anything else is looked at, as
/// kube-apiserver decodes its `ListOptions`: `limit` (none when not above 0) and
/// `timeoutSeconds`.
pub fn list_numbers(q: &Query) -> Result<(Option<usize>, Option<i64>), Status> {
    let limit = query_int(q, "limit")?;
    let timeout = query_int(q, "timeoutSeconds")?;
    let limit = limit
        .and_then(|l| usize::try_from(l).ok())
        .filter(|l| *l > 0);
    Ok((limit, timeout))
}

/// How long a watch runs, given its `timeoutSeconds`.
pub fn watch_timeout(timeout_seconds: Option<i64>) -> Duration {
    match timeout_seconds {
        None | Some(0) => DEFAULT_WATCH_TIMEOUT,
        Some(t) if t < 0 => Duration::ZERO,
        Some(t) => Duration::from_secs(t.unsigned_abs()).min(MAX_WATCH_TIMEOUT),
    }
}

/// The continue token of a list page that ends before `key`, at revision `rev`.
pub fn encode_continue(key: &str, rev: Revision) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key}).to_string())
}

/// The key and revision a continue token carries; 400 for a token this server did not make.
pub fn decode_continue(token: &str) -> Result<(String, Revision), Status> {
    let bad = || Status::bad_request("continue key is not valid: the continue token is malformed");
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    Ok((
        v.get("start")
            .and_then(Value::as_str)
            .ok_or_else(bad)?
            .to_owned(),
        v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?,
    ))
}

/// Go's `strconv.ParseUint(s, 10, 64)`: digits only (no sign), within 64 bits.
fn parse_uint(s: &str) -> Result<u64, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err("invalid syntax");
    }
    s.parse().map_err(|_| "value out of range")
}

/// kube-apiserver's `--min-request-timeout`.
const DEFAULT_WATCH_TIMEOUT: Duration = Duration::from_secs(1800);
/// No watch runs longer than this, whatever it asks.
const MAX_WATCH_TIMEOUT: Duration = Duration::from_secs(3600);

#[cfg(test)]
mod tests;
