//! `security:` section -> [`SecuritySettings`]: failed-login thresholds and rate limits.

use super::compile::Sink;
use super::model::{FailedLoginSettings, LockScope, Rate, SecuritySettings};
use super::raw::{RawFailedLogins, RawRateLimit, RawSecurity};
use super::values::{parse_duration, parse_rate};
use std::path::Path;

pub(crate) fn compile_security(file: &Path, raw: RawSecurity, sink: &mut Sink) -> SecuritySettings {
    let mut settings = SecuritySettings::default();
    if let Some(raw) = raw.failed_logins {
        settings.failed_logins = compile_failed_logins(file, raw, sink);
    }
    if let Some(RawRateLimit {
        per_user,
        total_alert,
    }) = raw.rate_limit
    {
        let path = "security.rate_limit";
        settings.rate_limit.per_user = rate(file, path, "per_user", per_user, sink);
        settings.rate_limit.total_alert = rate(file, path, "total_alert", total_alert, sink);
    }
    settings
}

fn compile_failed_logins(
    file: &Path,
    raw: RawFailedLogins,
    sink: &mut Sink,
) -> FailedLoginSettings {
    let path = "security.failed_logins";
    let mut settings = FailedLoginSettings {
        warn: rate(file, path, "warn", raw.warn, sink),
        lock: rate(file, path, "lock", raw.lock, sink),
        attack: rate(file, path, "attack", raw.attack, sink),
        ..FailedLoginSettings::default()
    };
    if let Some(text) = raw.lock_for {
        match parse_duration(&text) {
            Ok(d) => settings.lock_for = d,
            Err(reason) => sink.error(file, format!("{path}.lock_for"), reason),
        }
        if settings.lock.is_none() {
            sink.warn(
                file,
                format!("{path}.lock_for"),
                "lock_for has no effect without `lock`",
            );
        }
    }
    match raw.lock_scope.as_deref() {
        None | Some("user_address") => {}
        Some("user") => settings.lock_scope = LockScope::User,
        Some(text) => sink.error(
            file,
            format!("{path}.lock_scope"),
            format!("unknown lock_scope {text:?} (expected user or user_address)"),
        ),
    }
    settings
}

fn rate(file: &Path, path: &str, key: &str, text: Option<String>, sink: &mut Sink) -> Option<Rate> {
    let text = text?;
    parse_rate(&text)
        .map_err(|reason| sink.error(file, format!("{path}.{key}"), reason))
        .ok()
}
