//! Failed-login tracking (`security.failed_logins`): `warn` alerts, `lock` refuses logins
//! for `lock_for` (per user and client address, or per user with `lock_scope: user`),
//! `attack` alerts on failures across all users.
//!
//! Counting is exact over sliding windows: a key keeps at most as many timestamps as its
//! largest threshold (10 for `lock: 10/5m`), which is all a "reached N" test needs.
//! Memory is bounded: idle keys are pruned, and past [`MAX_TRACKED`] keys new ones are
//! not tracked one by one (they still count towards `attack`, which is what a spray of
//! user names or addresses is).

use crate::policy::{FailedLoginSettings, LockScope, Rate, Severity};
use std::collections::{HashMap, VecDeque};
use std::time::Duration;
use time::OffsetDateTime;

/// SQLSTATE for a login refused because of a lock (invalid_authorization_specification).
pub const SQLSTATE_LOCKED: &str = "28000";

/// Keys tracked at most; bounds memory under a spray of user names or addresses.
pub const MAX_TRACKED: usize = 100_000;

/// An alert raised by a failed login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginAlert {
    /// `warn` reached for a user (and address, unless `lock_scope: user`).
    Warn {
        user: String,
        client_addr: Option<String>,
        failures: u64,
        limit: Rate,
    },
    /// `lock` reached: logins refused until `until`.
    Locked {
        user: String,
        client_addr: Option<String>,
        until: OffsetDateTime,
    },
    /// `attack` reached across all users.
    Attack { failures: u64, limit: Rate },
}

impl LoginAlert {
    pub fn severity(&self) -> Severity {
        match self {
            LoginAlert::Warn { .. } => Severity::Medium,
            LoginAlert::Locked { .. } | LoginAlert::Attack { .. } => Severity::Critical,
        }
    }
}

/// Failures within the sliding window of a rate, keeping only what thresholds need.
#[derive(Debug, Clone, Default)]
struct Failures {
    times: VecDeque<OffsetDateTime>,
}

impl Failures {
    fn push(&mut self, now: OffsetDateTime, keep: usize) {
        self.times.push_back(now);
        while self.times.len() > keep.max(1) {
            self.times.pop_front();
        }
    }

    fn within(&self, window: Duration, now: OffsetDateTime) -> u64 {
        let since = minus(now, window);
        self.times.iter().filter(|t| **t > since).count() as u64
    }

    fn last(&self) -> Option<OffsetDateTime> {
        self.times.back().copied()
    }
}

#[derive(Debug, Clone, Default)]
struct Tracker {
    failures: Failures,
    /// Warned since the count last dropped below `warn`: one alert per crossing.
    warned: bool,
    locked_until: Option<OffsetDateTime>,
}

type Key = (String, Option<String>);

#[derive(Debug, Default)]
pub struct FailedLogins {
    settings: FailedLoginSettings,
    keys: HashMap<Key, Tracker>,
    all: Failures,
    attack_raised: bool,
    /// Prune when `keys` grows past this; doubles with the live set (amortized O(1)).
    prune_at: usize,
}

const PRUNE_FLOOR: usize = 1024;

fn rate_count(rate: Option<Rate>) -> usize {
    rate.map_or(0, |r| usize::try_from(r.count).unwrap_or(usize::MAX))
}

impl FailedLogins {
    pub fn new(settings: FailedLoginSettings) -> Self {
        Self {
            settings,
            prune_at: PRUNE_FLOOR,
            ..Self::default()
        }
    }

    /// Take new settings on reload; counts and locks in force are kept.
    pub fn update_settings(&mut self, settings: FailedLoginSettings) {
        self.settings = settings;
    }

    fn key(&self, user: &str, client_addr: &str) -> Key {
        let addr = match self.settings.lock_scope {
            LockScope::User => None,
            LockScope::UserAddress => Some(client_addr.to_string()),
        };
        (user.to_string(), addr)
    }

    /// Record one failed login and return the alerts it raises.
    pub fn record_failure(
        &mut self,
        user: &str,
        client_addr: &str,
        now: OffsetDateTime,
    ) -> Vec<LoginAlert> {
        let mut alerts = Vec::new();
        let s = self.settings.clone();
        if s.warn.is_some() || s.lock.is_some() {
            self.maybe_prune(now);
            let key = self.key(user, client_addr);
            if self.keys.len() < MAX_TRACKED || self.keys.contains_key(&key) {
                let tracker = self.keys.entry(key.clone()).or_default();
                record_for_key(tracker, &s, key, now, &mut alerts);
            }
        }
        if let Some(rate) = s.attack {
            self.all.push(now, rate_count(Some(rate)));
            let failures = self.all.within(rate.window, now);
            if failures >= rate.count && !self.attack_raised {
                self.attack_raised = true;
                alerts.push(LoginAlert::Attack {
                    failures,
                    limit: rate,
                });
            } else if failures < rate.count {
                self.attack_raised = false;
            }
        }
        alerts
    }

    /// Remaining lock time, if logins by `user` from `client_addr` are refused at `now`.
    pub fn is_locked(
        &self,
        user: &str,
        client_addr: &str,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        let until = self.keys.get(&self.key(user, client_addr))?.locked_until?;
        let remaining = until - now;
        (remaining.is_positive()).then(|| remaining.unsigned_abs())
    }

    /// A successful login forgets that key's failures (a lock in force stays: a locked
    /// key never reaches the server to succeed).
    pub fn record_success(&mut self, user: &str, client_addr: &str) {
        let key = self.key(user, client_addr);
        if let Some(t) = self.keys.get_mut(&key) {
            t.failures = Failures::default();
            t.warned = false;
        }
    }

    /// Admin: clear every lock and count of `user`, from any address.
    pub fn clear(&mut self, user: &str) {
        self.keys.retain(|(u, _), _| u != user);
    }

    /// Admin: locks in force at `now` as (user, client address unless `lock_scope: user`,
    /// locked until), ordered by user.
    pub fn locks(&self, now: OffsetDateTime) -> Vec<(String, Option<String>, OffsetDateTime)> {
        let mut locks: Vec<_> = self
            .keys
            .iter()
            .filter_map(|((user, addr), t)| {
                let until = t.locked_until.filter(|u| *u > now)?;
                Some((user.clone(), addr.clone(), until))
            })
            .collect();
        locks.sort();
        locks
    }

    /// Keys tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        self.keys.len()
    }

    /// Drop keys with no lock in force and no failure inside any window.
    fn maybe_prune(&mut self, now: OffsetDateTime) {
        if self.keys.len() < self.prune_at {
            return;
        }
        let longest = [self.settings.warn, self.settings.lock]
            .iter()
            .flatten()
            .map(|r| r.window)
            .max()
            .unwrap_or_default();
        let since = minus(now, longest);
        self.keys.retain(|_, t| {
            t.locked_until.is_some_and(|u| u > now) || t.failures.last().is_some_and(|l| l > since)
        });
        self.prune_at = (self.keys.len() * 2).max(PRUNE_FLOOR);
    }
}

fn record_for_key(
    tracker: &mut Tracker,
    s: &FailedLoginSettings,
    (user, client_addr): Key,
    now: OffsetDateTime,
    alerts: &mut Vec<LoginAlert>,
) {
    if tracker.locked_until.is_some_and(|u| u > now) {
        return; // already locked and alerted; the proxy refuses before auth anyway
    }
    tracker.locked_until = None;
    tracker
        .failures
        .push(now, rate_count(s.warn).max(rate_count(s.lock)));
    if let Some(rate) = s.warn {
        let failures = tracker.failures.within(rate.window, now);
        if failures >= rate.count && !tracker.warned {
            tracker.warned = true;
            alerts.push(LoginAlert::Warn {
                user: user.clone(),
                client_addr: client_addr.clone(),
                failures,
                limit: rate,
            });
        } else if failures < rate.count {
            tracker.warned = false;
        }
    }
    if let Some(rate) = s.lock {
        if tracker.failures.within(rate.window, now) >= rate.count {
            let until = plus(now, s.lock_for);
            tracker.locked_until = Some(until);
            // A lock starts a new count: the next lock takes `lock` fresh failures.
            tracker.failures = Failures::default();
            tracker.warned = false;
            alerts.push(LoginAlert::Locked {
                user,
                client_addr,
                until,
            });
        }
    }
}

/// `now - d`, saturating: durations come from the policy file and may be absurdly long.
fn minus(now: OffsetDateTime, d: Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| now.checked_sub(d))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `now + d`, saturating far in the future.
fn plus(now: OffsetDateTime, d: Duration) -> OffsetDateTime {
    time::Duration::try_from(d)
        .ok()
        .and_then(|d| now.checked_add(d))
        .unwrap_or(time::macros::datetime!(9999-12-31 23:59:59 UTC))
}
