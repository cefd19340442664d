//! Rate limits and failed logins: windows, thresholds, locks and bounded memory.

use super::*;
use crate::policy::{FailedLoginSettings, LockScope, Rate, RateLimitSettings, Severity};
use std::time::Duration as StdDuration;
use time::Duration;

fn rate(count: u64, secs: u64) -> Rate {
    Rate {
        count,
        window: StdDuration::from_secs(secs),
    }
}

/// A minute boundary: windows are aligned to the Unix epoch.
const T0: OffsetDateTime = datetime!(2026-01-14 09:00 UTC);

fn limiter(per_user: Option<Rate>, total_alert: Option<Rate>) -> RateLimiter {
    RateLimiter::new(RateLimitSettings {
        per_user,
        total_alert,
    })
}

#[test]
fn per_user_rate_refuses_beyond_the_limit_with_53400() {
    let mut l = limiter(Some(rate(3, 60)), None);
    for _ in 0..3 {
        assert_eq!(l.admit("alice", T0), Admission::default());
    }
    let refused = l.admit("alice", T0).refused.expect("fourth refused");
    assert_eq!(refused.sqlstate, SQLSTATE_RATE_LIMITED);
    assert!(
        refused.message.contains("3 statements per 60s"),
        "{}",
        refused.message
    );
    assert!(l.admit("bob", T0).refused.is_none(), "per user");
}

#[test]
fn per_user_rate_slides_over_the_previous_window() {
    let mut l = limiter(Some(rate(3, 60)), None);
    for _ in 0..3 {
        l.admit("alice", T0);
    }
    // At the start of the next window the previous one still weighs fully.
    assert!(l
        .admit("alice", T0 + Duration::seconds(60))
        .refused
        .is_some());
    // Halfway: 3 * 30/60 = 1 (rounded down) left from before, so two more fit.
    let half = T0 + Duration::seconds(90);
    assert!(l.admit("alice", half).refused.is_none());
    assert!(l.admit("alice", half).refused.is_none());
    assert!(l.admit("alice", half).refused.is_some());
    // Two windows later nothing is left.
    assert!(l
        .admit("alice", T0 + Duration::seconds(180))
        .refused
        .is_none());
}

#[test]
fn refused_statements_do_not_count() {
    let mut l = limiter(Some(rate(1, 60)), None);
    l.admit("alice", T0);
    for _ in 0..100 {
        assert!(l
            .admit("alice", T0 + Duration::seconds(1))
            .refused
            .is_some());
    }
    // Had the refusals counted, the previous window would still be full at +90s.
    assert!(l
        .admit("alice", T0 + Duration::seconds(90))
        .refused
        .is_none());
}

#[test]
fn total_alert_fires_once_per_window() {
    let mut l = limiter(None, Some(rate(5, 60)));
    let alerts = |l: &mut RateLimiter, n: usize, at: OffsetDateTime| {
        (0..n)
            .filter(|i| l.admit(&format!("u{i}"), at).alert.is_some())
            .count()
    };
    assert_eq!(alerts(&mut l, 5, T0), 0, "at the limit, not above");
    assert_eq!(alerts(&mut l, 50, T0 + Duration::seconds(10)), 1);
    assert_eq!(
        alerts(&mut l, 50, T0 + Duration::seconds(70)),
        1,
        "next window"
    );
    let alert = l
        .admit("x", T0 + Duration::seconds(130))
        .alert
        .expect("third window");
    assert_eq!(alert.limit, rate(5, 60));
}

#[test]
fn rate_limiter_forgets_idle_users() {
    let mut l = limiter(Some(rate(10, 60)), None);
    for i in 0..1000 {
        l.admit(&format!("user{i}"), T0);
    }
    assert_eq!(l.tracked_users(), 1000);
    l.admit("late", T0 + Duration::seconds(180));
    assert_eq!(
        l.tracked_users(),
        1,
        "only users of the last two windows are kept"
    );
}

#[test]
fn rate_limiter_without_settings_admits_everything() {
    let mut l = limiter(None, None);
    for _ in 0..10_000 {
        assert_eq!(l.admit("alice", T0), Admission::default());
    }
    assert_eq!(l.tracked_users(), 0);
}

fn logins(scope: LockScope) -> FailedLogins {
    FailedLogins::new(FailedLoginSettings {
        warn: Some(rate(5, 300)),
        lock: Some(rate(10, 300)),
        lock_for: StdDuration::from_secs(15 * 60),
        lock_scope: scope,
        attack: Some(rate(50, 300)),
    })
}

/// `n` failures a second apart from `start`; all alerts raised.
fn fail(
    f: &mut FailedLogins,
    user: &str,
    addr: &str,
    n: i64,
    start: OffsetDateTime,
) -> Vec<LoginAlert> {
    (0..n)
        .flat_map(|i| f.record_failure(user, addr, start + Duration::seconds(i)))
        .collect()
}

#[test]
fn warn_once_then_lock_with_remaining_time() {
    let mut f = logins(LockScope::UserAddress);
    assert!(fail(&mut f, "alice", "10.0.0.1", 4, T0).is_empty());
    let alerts = fail(&mut f, "alice", "10.0.0.1", 1, T0 + Duration::seconds(4));
    assert!(matches!(
        &alerts[..],
        [LoginAlert::Warn { failures: 5, .. }]
    ));
    assert_eq!(alerts[0].severity(), Severity::Medium);
    assert!(
        fail(&mut f, "alice", "10.0.0.1", 4, T0 + Duration::seconds(5)).is_empty(),
        "warned once"
    );
    assert_eq!(
        f.is_locked("alice", "10.0.0.1", T0 + Duration::seconds(9)),
        None
    );

    let at = T0 + Duration::seconds(9);
    let alerts = f.record_failure("alice", "10.0.0.1", at);
    let until = at + Duration::minutes(15);
    assert_eq!(
        alerts,
        [LoginAlert::Locked {
            user: "alice".into(),
            client_addr: Some("10.0.0.1".into()),
            until
        }]
    );
    assert_eq!(alerts[0].severity(), Severity::Critical);
    assert_eq!(
        f.is_locked("alice", "10.0.0.1", at + Duration::minutes(5)),
        Some(StdDuration::from_secs(10 * 60))
    );
    assert_eq!(
        f.is_locked("alice", "10.0.0.2", at),
        None,
        "another address is not locked"
    );
    assert_eq!(
        f.is_locked("alice", "10.0.0.1", until),
        None,
        "the lock ends"
    );
}

#[test]
fn lock_scope_user_locks_every_address() {
    let mut f = logins(LockScope::User);
    for i in 0..10 {
        f.record_failure("alice", &format!("10.0.0.{i}"), T0 + Duration::seconds(i));
    }
    let later = T0 + Duration::minutes(1);
    assert!(f.is_locked("alice", "192.168.1.1", later).is_some());
    assert!(f.is_locked("bob", "10.0.0.1", later).is_none());
}

#[test]
fn failures_outside_the_window_do_not_count() {
    let mut f = logins(LockScope::UserAddress);
    // One failure every 40 s: at most 8 in any 5 minutes, never 10.
    for i in 0..50 {
        f.record_failure("alice", "10.0.0.1", T0 + Duration::seconds(40 * i));
    }
    assert!(f
        .is_locked("alice", "10.0.0.1", T0 + Duration::seconds(40 * 49))
        .is_none());
}

#[test]
fn attack_counts_across_users_and_rearms() {
    let mut f = logins(LockScope::UserAddress);
    let mut attacks = 0;
    for i in 0..120 {
        let alerts = f.record_failure(
            &format!("user{i}"),
            "203.0.113.9",
            T0 + Duration::seconds(i),
        );
        attacks += alerts
            .iter()
            .filter(|a| matches!(a, LoginAlert::Attack { .. }))
            .count();
    }
    assert_eq!(attacks, 1, "one alert while the attack goes on");
    // After a quiet spell the count drops below the threshold and re-arms.
    let later = T0 + Duration::minutes(30);
    assert!(f.record_failure("x", "203.0.113.9", later).is_empty());
    let alerts = fail(
        &mut f,
        "y",
        "203.0.113.10",
        49,
        later + Duration::seconds(1),
    );
    assert!(alerts
        .iter()
        .any(|a| matches!(a, LoginAlert::Attack { failures: 50, .. })));
}

#[test]
fn clear_and_success_reset_counts() {
    let mut f = logins(LockScope::UserAddress);
    fail(&mut f, "alice", "10.0.0.1", 10, T0);
    fail(&mut f, "alice", "10.0.0.2", 10, T0);
    let at = T0 + Duration::seconds(20);
    assert!(f.is_locked("alice", "10.0.0.1", at).is_some());
    f.clear("alice");
    assert!(f.is_locked("alice", "10.0.0.1", at).is_none());
    assert!(f.is_locked("alice", "10.0.0.2", at).is_none());

    fail(&mut f, "bob", "10.0.0.1", 9, T0);
    f.record_success("bob", "10.0.0.1");
    assert!(
        fail(&mut f, "bob", "10.0.0.1", 1, at).is_empty(),
        "count restarted"
    );
    assert!(f.is_locked("bob", "10.0.0.1", at).is_none());
}

#[test]
fn failed_login_memory_is_bounded() {
    let mut f = logins(LockScope::UserAddress);
    // 5,000 addresses, one failure each, spread over hours: idle keys are pruned.
    for i in 0..5000 {
        f.record_failure("alice", &format!("addr{i}"), T0 + Duration::seconds(10 * i));
    }
    assert!(f.tracked() <= 2048, "tracked {}", f.tracked());
}

#[test]
fn failed_logins_without_settings_track_nothing() {
    let mut f = FailedLogins::new(FailedLoginSettings::default());
    assert!(fail(&mut f, "alice", "10.0.0.1", 100, T0).is_empty());
    assert_eq!(f.tracked(), 0);
    assert!(f.is_locked("alice", "10.0.0.1", T0).is_none());
}

#[test]
fn huge_durations_saturate_instead_of_panicking() {
    let mut f = FailedLogins::new(FailedLoginSettings {
        warn: None,
        lock: Some(Rate {
            count: 1,
            window: StdDuration::from_secs(u64::MAX / 4),
        }),
        lock_for: StdDuration::from_secs(u64::MAX / 4),
        lock_scope: LockScope::UserAddress,
        attack: None,
    });
    assert_eq!(f.record_failure("alice", "a", T0).len(), 1);
    assert!(f.is_locked("alice", "a", T0).is_some());
    let mut l = limiter(
        Some(Rate {
            count: 1,
            window: StdDuration::from_secs(u64::MAX / 4),
        }),
        None,
    );
    assert!(l.admit("alice", T0).refused.is_none());
    assert!(l.admit("alice", T0).refused.is_some());
}

#[test]
fn locks_lists_locks_in_force_for_the_admin_api() {
    let mut f = logins(LockScope::UserAddress);
    fail(&mut f, "alice", "10.0.0.1", 10, T0);
    fail(&mut f, "bob", "10.0.0.2", 3, T0);
    let now = T0 + Duration::minutes(1);
    let locks = f.locks(now);
    assert_eq!(locks.len(), 1);
    assert_eq!(
        (locks[0].0.as_str(), locks[0].1.as_deref()),
        ("alice", Some("10.0.0.1"))
    );
    assert!(locks[0].2 > now);
    assert!(f.locks(T0 + Duration::hours(1)).is_empty());
    f.clear("alice");
    assert!(f.locks(now).is_empty());
}
