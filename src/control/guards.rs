//! Per-process counters the policy's `security` section drives: failed logins (warn, lock,
//! attack) and per-user statement rates. The counting logic is pure (policy::engine); this
//! only shares it between sessions.

use crate::policy::engine::{FailedLogins, RateLimiter};
use crate::policy::Policy;
use std::sync::Mutex;

pub struct Guards {
    pub logins: Mutex<FailedLogins>,
    pub rate: Mutex<RateLimiter>,
}

impl Guards {
    pub fn new(policy: &Policy) -> Self {
        Self {
            logins: Mutex::new(FailedLogins::new(policy.security().failed_logins.clone())),
            rate: Mutex::new(RateLimiter::new(policy.security().rate_limit.clone())),
        }
    }
}
