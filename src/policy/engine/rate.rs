//! Statement rate limits (`security.rate_limit`): `per_user` refuses beyond N per window,
//! `total_alert` raises one alert per window when all users together pass N.
//!
//! Each counter is a sliding-window estimate over two fixed windows (the previous
//! window's count weighted by how much of it still overlaps the sliding window, plus the
//! current count), as nginx and Cloudflare do: O(1) memory per user whatever N is, where
//! exact timestamps would cost N entries per user. Windows are aligned to the Unix epoch
//! so results depend only on the inputs.

use crate::policy::{Rate, RateLimitSettings};
use std::collections::HashMap;
use time::OffsetDateTime;

/// SQLSTATE for a statement refused by `per_user` (configuration_limit_exceeded).
pub const SQLSTATE_RATE_LIMITED: &str = "53400";

/// The answer for one statement.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Admission {
    /// Set when the statement must be refused.
    pub refused: Option<Refusal>,
    /// Set once per window when the total rate passes `total_alert`.
    pub alert: Option<RateAlert>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub sqlstate: &'static str,
    /// Client-safe: names the limit, not other users' activity.
    pub message: String,
}

/// All users together went above `total_alert` in this window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateAlert {
    pub limit: Rate,
}

#[derive(Debug, Clone, Copy, Default)]
struct SlidingCounter {
    /// Index of the current fixed window (Unix time / window length).
    window_index: i128,
    current: u64,
    previous: u64,
}

impl SlidingCounter {
    fn roll(&mut self, index: i128) {
        if index == self.window_index + 1 {
            self.previous = self.current;
        } else if index != self.window_index {
            // A gap of more than one window (or a clock step backwards): start afresh.
            self.previous = 0;
        } else {
            return;
        }
        self.current = 0;
        self.window_index = index;
    }

    /// Estimated events in the sliding window ending at `now` (after `roll`).
    fn estimate(&self, into_window: u128, window: u128) -> u64 {
        let overlap = window.saturating_sub(into_window);
        let weighted = u128::from(self.previous) * overlap / window.max(1);
        u64::try_from(weighted)
            .unwrap_or(u64::MAX)
            .saturating_add(self.current)
    }
}

/// Where `now` falls: (window index, nanoseconds into that window, window length).
fn position(now: OffsetDateTime, rate: &Rate) -> (i128, u128, u128) {
    let window = rate.window.as_nanos().max(1);
    let nanos = now.unix_timestamp_nanos();
    let w = i128::try_from(window).unwrap_or(i128::MAX);
    (
        nanos.div_euclid(w),
        nanos.rem_euclid(w).unsigned_abs(),
        window,
    )
}

/// Per-user and total statement counters.
#[derive(Debug, Default)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    users: HashMap<String, SlidingCounter>,
    total: SlidingCounter,
    /// Window index in which the total alert last fired: once per window.
    total_alerted: Option<i128>,
    /// Window index of the last pruning pass over `users`.
    pruned_at: i128,
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    /// Take new settings on reload, keeping the counts when the windows are unchanged.
    pub fn update_settings(&mut self, settings: RateLimitSettings) {
        if settings.per_user.map(|r| r.window) != self.settings.per_user.map(|r| r.window) {
            self.users.clear();
        }
        if settings.total_alert.map(|r| r.window) != self.settings.total_alert.map(|r| r.window) {
            self.total = SlidingCounter::default();
            self.total_alerted = None;
        }
        self.settings = settings;
    }

    /// Count one statement by `user` at `now`. A refused statement is not counted, so a
    /// client that backs off gets through again as the window slides.
    pub fn admit(&mut self, user: &str, now: OffsetDateTime) -> Admission {
        let mut admission = Admission::default();
        if let Some(rate) = self.settings.per_user {
            let (index, into, window) = position(now, &rate);
            self.prune(index);
            let counter = match self.users.get_mut(user) {
                Some(c) => c,
                None => self.users.entry(user.to_string()).or_default(),
            };
            counter.roll(index);
            if counter.estimate(into, window) >= rate.count {
                admission.refused = Some(Refusal {
                    sqlstate: SQLSTATE_RATE_LIMITED,
                    message: format!(
                        "rate limit exceeded: at most {} statements per {}s per user",
                        rate.count,
                        rate.window.as_secs()
                    ),
                });
            } else {
                counter.current = counter.current.saturating_add(1);
            }
        }
        if let Some(rate) = self.settings.total_alert {
            // Attempts count towards the total, refused or not: the alert is about load.
            let (index, into, window) = position(now, &rate);
            self.total.roll(index);
            self.total.current = self.total.current.saturating_add(1);
            if self.total.estimate(into, window) > rate.count && self.total_alerted != Some(index) {
                self.total_alerted = Some(index);
                admission.alert = Some(RateAlert { limit: rate });
            }
        }
        admission
    }

    /// Users tracked now (for tests and metrics).
    pub fn tracked_users(&self) -> usize {
        self.users.len()
    }

    /// Once per window, forget users idle for two windows: their estimate is zero, so
    /// memory stays bounded by the users active in the last two windows.
    fn prune(&mut self, index: i128) {
        if index <= self.pruned_at {
            return;
        }
        self.pruned_at = index;
        self.users.retain(|_, c| c.window_index >= index - 1);
    }
}
