//! kube-apiserver's max-in-flight filter: at most `--max-requests-inflight` read-only and
//! `--max-mutating-requests-inflight` mutating requests are served at once; the next one is
//! answered 429 with `Retry-After: 1` at once, before its body is read, so a crowd of
//! clients uploading large bodies cannot hold the server's memory. Long-running requests
//! (watches) are not counted, and `system:masters` is served even when the limit is
//! reached, as in Kubernetes: the administrator can always get in.

use std::sync::Arc;

use kubeboot_api::Status;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::authn::UserInfo;

/// The limits (`0`: unlimited).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InFlightLimits {
    /// `--max-requests-inflight`: read-only requests at once.
    pub read_only: usize,
    /// `--max-mutating-requests-inflight`: mutating requests at once.
    pub mutating: usize,
}

impl Default for InFlightLimits {
    /// kube-apiserver's defaults.
    fn default() -> Self {
        Self {
            read_only: 400,
            mutating: 200,
        }
    }
}

/// What the filter counts a request as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestClass {
    /// Served however many there are (`watch`, `proxy`, `log`, `exec`, …).
    LongRunning,
    /// `get`, `list` (and anything that is not a write).
    ReadOnly,
    /// `create`, `update`, `patch`, `delete`, `deletecollection`.
    Mutating,
}

/// The class of a request, from its Kubernetes verb and subresource.
pub fn classify(verb: &str, subresource: &str) -> RequestClass {
    const LONG_RUNNING_SUBRESOURCES: [&str; 5] = ["attach", "exec", "proxy", "log", "portforward"];
    if matches!(verb, "watch" | "proxy") || LONG_RUNNING_SUBRESOURCES.contains(&subresource) {
        RequestClass::LongRunning
    } else if matches!(
        verb,
        "create" | "update" | "patch" | "delete" | "deletecollection"
    ) {
        RequestClass::Mutating
    } else {
        RequestClass::ReadOnly
    }
}

/// The two pools of request slots.
pub struct InFlight {
    read_only: Option<Arc<Semaphore>>,
    mutating: Option<Arc<Semaphore>>,
}

/// A request's slot, held until its response is built; `Exempt` holds none.
#[derive(Debug)]
pub enum Slot {
    /// A counted request.
    Held(OwnedSemaphorePermit),
    /// A request that is not counted (long-running, unlimited, or `system:masters`).
    Exempt,
}

impl InFlight {
    /// Pools of the given sizes.
    pub fn new(limits: InFlightLimits) -> Self {
        let pool = |n: usize| (n > 0).then(|| Arc::new(Semaphore::new(n)));
        Self {
            read_only: pool(limits.read_only),
            mutating: pool(limits.mutating),
        }
    }

    /// A slot for a request of `class` by `user`, or the 429 to answer.
    pub fn admit(&self, class: RequestClass, user: &UserInfo) -> Result<Slot, Status> {
        let pool = match class {
            RequestClass::LongRunning => return Ok(Slot::Exempt),
            RequestClass::ReadOnly => &self.read_only,
            RequestClass::Mutating => &self.mutating,
        };
        let Some(pool) = pool else {
            return Ok(Slot::Exempt);
        };
        match pool.clone().try_acquire_owned() {
            Ok(permit) => Ok(Slot::Held(permit)),
            Err(_) if user.in_group(SYSTEM_MASTERS) => Ok(Slot::Exempt),
            Err(_) => Err(Status::too_many_requests(1)),
        }
    }
}

const SYSTEM_MASTERS: &str = "system:masters";

#[cfg(test)]
mod tests {
    use super::*;

    fn user(groups: &[&str]) -> UserInfo {
        UserInfo {
            name: "u".into(),
            uid: String::new(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            extra: Default::default(),
        }
    }

    #[test]
    fn requests_are_classed_as_kube_apiserver_classes_them() {
        for (verb, sub, want) in [
            ("get", "", RequestClass::ReadOnly),
            ("list", "", RequestClass::ReadOnly),
            ("watch", "", RequestClass::LongRunning),
            ("get", "log", RequestClass::LongRunning),
            ("create", "exec", RequestClass::LongRunning),
            ("create", "", RequestClass::Mutating),
            ("update", "status", RequestClass::Mutating),
            ("patch", "approval", RequestClass::Mutating),
            ("delete", "", RequestClass::Mutating),
            ("deletecollection", "", RequestClass::Mutating),
            ("post", "", RequestClass::ReadOnly),
        ] {
            assert_eq!(classify(verb, sub), want, "{verb} {sub}");
        }
    }

    #[test]
    fn past_the_limit_requests_get_429_and_a_freed_slot_serves_the_next() {
        let f = InFlight::new(InFlightLimits {
            read_only: 2,
            mutating: 1,
        });
        let token = user(&["system:bootstrappers", "system:authenticated"]);
        let w1 = f
            .admit(RequestClass::Mutating, &token)
            .expect("first write");
        let refused = f
            .admit(RequestClass::Mutating, &token)
            .expect_err("second write");
        assert_eq!(
            (refused.code, refused.reason.as_str()),
            (429, "TooManyRequests")
        );
        assert_eq!(
            refused.details.and_then(|d| d.retry_after_seconds),
            Some(1),
            "Retry-After: 1"
        );
        // Reads have their own pool.
        let _r1 = f.admit(RequestClass::ReadOnly, &token).expect("read");
        let _r2 = f.admit(RequestClass::ReadOnly, &token).expect("read");
        assert!(f.admit(RequestClass::ReadOnly, &token).is_err());
        // Watches are never counted; the administrator is always served.
        assert!(f.admit(RequestClass::LongRunning, &token).is_ok());
        let admin = user(&["system:masters", "system:authenticated"]);
        assert!(matches!(
            f.admit(RequestClass::Mutating, &admin),
            Ok(Slot::Exempt)
        ));
        drop(w1);
        assert!(f.admit(RequestClass::Mutating, &token).is_ok());
    }

    #[test]
    fn a_zero_limit_is_no_limit() {
        let f = InFlight::new(InFlightLimits {
            read_only: 0,
            mutating: 0,
        });
        let token = user(&["system:authenticated"]);
        let held: Vec<_> = (0..1000)
            .map(|_| f.admit(RequestClass::Mutating, &token).expect("unlimited"))
            .collect();
        assert_eq!(held.len(), 1000);
    }
}
