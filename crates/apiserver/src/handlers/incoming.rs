//! What a client sent, checked against the kind it was sent to: its kind and apiVersion,
//! the fields the kind has (the rest dropped, or refused under Strict), and its name.

use kubeboot_api::{Status, StatusCause};
use serde_json::Value;

use crate::object::{self, set_type};
use crate::registry::{NameRule, ResourceDef};

pub(super) fn check_type(def: &ResourceDef, obj: &Value) -> Result<(), Status> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    if !kind.is_empty() && kind != def.kind {
        return Err(Status::bad_request(format!(
            "the kind of the provided object ({kind}) does not match the kind served at this path ({})",
            def.kind
        )));
    }
    if !api_version.is_empty() && !def.is_api_version(api_version) {
        return Err(Status::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            def.api_version()
        )));
    }
    Ok(())
}

/// Round-trips through the typed schema: the fields the kind does not have are dropped,
/// and returned as strict errors (`unknown field "x"`) when `strict`.
pub(super) fn normalize(
    def: &ResourceDef,
    mut sent: Value,
    strict: bool,
) -> Result<(Value, Vec<String>), Status> {
    // The typed schema is v1; v1beta1 CSRs share it.
    set_type(
        &mut sent,
        format!("{}/v1", def.group).trim_start_matches('/'),
        def.kind,
    );
    if def.group.is_empty() {
        set_type(&mut sent, "v1", def.kind);
    }
    // The body as sent is kept only when unknown fields must be reported.
    let (kept, sent) = if strict {
        ((def.normalize)(sent.clone()), Some(sent))
    } else {
        ((def.normalize)(sent), None)
    };
    let kept = kept.map_err(|e| {
        Status::bad_request(format!("the body of the request could not be decoded: {e}"))
    })?;
    let unknown: Vec<String> = sent
        .map(|sent| object::unknown_fields(&sent, &kept))
        .unwrap_or_default()
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    let mut kept = kept;
    if let Some(o) = kept.as_object_mut() {
        o.remove("apiVersion");
        o.remove("kind");
    }
    Ok((kept, unknown))
}

pub(super) fn validate_name(
    def: &ResourceDef,
    name: &str,
    generate_name: &str,
) -> Result<(), Status> {
    // As apimachinery's ValidateObjectMeta: the generateName (its trailing dash masked by
    // the DNS name rules), then the name.
    let mut causes = Vec::new();
    if !generate_name.is_empty() {
        let masked = match def.name_rule {
            NameRule::PathSegment => generate_name.to_owned(),
            _ => kubeboot_api::names::mask_trailing_dash(generate_name),
        };
        for e in name_errors(def, &masked) {
            causes.push(StatusCause::invalid(
                "metadata.generateName",
                generate_name,
                &e,
            ));
        }
    }
    for e in name_errors(def, name) {
        causes.push(StatusCause::invalid("metadata.name", name, &e));
    }
    match causes.is_empty() {
        true => Ok(()),
        false => Err(Status::invalid(def.kind, def.group, name, causes)),
    }
}

/// What the kind's name rule finds wrong with `name`: the length and the pattern, each its
/// own message, as Kubernetes' validators give them.
fn name_errors(def: &ResourceDef, name: &str) -> Vec<String> {
    let (max, pattern_ok, rule) = match def.name_rule {
        NameRule::Dns1123Label => (
            63,
            object::matches_label_pattern(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        NameRule::Dns1123Subdomain => (
            253,
            object::matches_subdomain_pattern(name),
            object::SUBDOMAIN_RULE,
        ),
        NameRule::Dns1035Label => (
            63,
            object::matches_dns1035_pattern(name),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
        NameRule::PathSegment => {
            return kubeboot_api::names::path_segment_errors(name)
                .into_iter()
                .map(str::to_owned)
                .collect();
        }
    };
    let mut errors = Vec::new();
    if name.len() > max {
        errors.push(format!("must be no more than {max} characters"));
    }
    if !pattern_ok {
        errors.push(rule.to_owned());
    }
    errors
}
