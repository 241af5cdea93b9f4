//! The gate every request passes before it is routed: who it is (authentication), the
//! per-address limit on anonymous requests, whom it acts as (impersonation), the limit on
//! requests served at once, and whether the user may do what it asks (authorization).
//! Each step refuses with the `Status` kube-apiserver's filter of the same name answers.

use std::sync::Arc;
use tokio::time::Instant;

use http::HeaderMap;
use kubeboot_api::Status;

use crate::audit::Trail;
use crate::authn::{ANONYMOUS, Authenticator, Conn, UserInfo};
use crate::authz::{Attributes, Authorizer, Decision, forbidden_message};
use crate::impersonation;
use crate::inflight::{self, InFlight, Slot};
use crate::ratelimit::Limiter;
use crate::requestinfo::RequestInfo;

/// The filters in front of the handlers.
pub struct Gate {
    authn: Authenticator,
    authz: Arc<Authorizer>,
    anonymous_limiter: Option<Limiter>,
    inflight: InFlight,
}

impl Gate {
    /// A gate of these filters.
    pub fn new(
        authn: Authenticator,
        authz: Arc<Authorizer>,
        anonymous_limiter: Option<Limiter>,
        inflight: InFlight,
    ) -> Self {
        Self {
            authn,
            authz,
            anonymous_limiter,
            inflight,
        }
    }

    /// The authenticator (connections consult it for their client certificate).
    pub fn authenticator(&self) -> &Authenticator {
        &self.authn
    }

    /// Who the requester is and the slot the request holds until its response is built
    /// (its body included), or why it is refused.
    pub async fn admit(
        &self,
        headers: &HeaderMap,
        info: &RequestInfo,
        conn: &Conn,
        trail: &mut Trail,
    ) -> Result<(UserInfo, Slot), Status> {
        let attrs = attributes(info);
        let user = self.authn.authenticate(headers, &conn.cert).await;
        trail.authenticated(user.as_ref().ok(), &attrs, &info.version);
        let user = user?;
        if user.name == ANONYMOUS
            && let Some(limiter) = &self.anonymous_limiter
            && let Err(wait) = limiter.check(conn.remote, Instant::now())
        {
            return Err(Status::too_many_requests(wait));
        }
        let user = self.impersonate(headers, user, trail)?;
        let slot = self
            .inflight
            .admit(inflight::classify(&info.verb, &info.subresource), &user)?;
        let decision = self.authz.authorize(&user, &attrs);
        trail.decided(&decision);
        if let Decision::Denied { reason } = decision {
            let subject = info.is_resource.then(|| kubeboot_api::status::Subject {
                resource: &info.resource,
                group: &info.group,
                name: &info.name,
            });
            let mut message = forbidden_message(&user, &attrs);
            if !reason.is_empty() {
                message = format!("{message}: {reason}");
            }
            return Err(Status::forbidden(subject, &message));
        }
        Ok((user, slot))
    }

    /// The user the request acts as: the requester, or whom its `Impersonate-*` headers
    /// name once the requester is allowed to impersonate each part (403 otherwise).
    fn impersonate(
        &self,
        headers: &HeaderMap,
        requester: UserInfo,
        trail: &mut Trail,
    ) -> Result<UserInfo, Status> {
        let asked = impersonation::asked(headers)?;
        if asked.is_empty() {
            return Ok(requester);
        }
        for a in &asked {
            let attrs = a.attributes();
            if let Decision::Denied { .. } = self.authz.authorize(&requester, &attrs) {
                return Err(impersonation::forbidden(&requester, &attrs));
            }
        }
        let acting = impersonation::acting_as(&asked);
        tracing::debug!(requester = %requester.name, impersonated = %acting.name, "impersonating");
        trail.impersonated(&acting);
        Ok(acting)
    }
}

/// What a request asks to do, as the authorizer reads it.
fn attributes(info: &RequestInfo) -> Attributes {
    Attributes {
        is_resource: info.is_resource,
        verb: info.verb.clone(),
        path: info.path.clone(),
        group: info.group.clone(),
        namespace: info.namespace.clone(),
        resource: info.resource.clone(),
        subresource: info.subresource.clone(),
        name: info.name.clone(),
        field_selector: info.field_selector.clone(),
    }
}
