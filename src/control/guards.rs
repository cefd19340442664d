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

    /// Take the `security` settings of a reloaded policy. Counters survive where their
    /// windows did not change (see `RateLimiter::update_settings`), so a reload neither
    /// clears a lock nor resets a rate window.
    pub fn apply(&self, policy: &Policy) {
        if let Ok(mut logins) = self.logins.lock() {
            logins.update_settings(policy.security().failed_logins.clone());
        }
        if let Ok(mut rate) = self.rate.lock() {
            rate.update_settings(policy.security().rate_limit.clone());
        }
    }
}
