//! `outside_hours`: business hours evaluated in the rule's IANA time zone at `now`, with
//! zones resolved once when the engine is built (never per statement).

use crate::policy::BusinessHours;
use std::collections::BTreeMap;
use time::{OffsetDateTime, UtcOffset};
use tz::TimeZone;

/// Time zones by IANA name, resolved when the engine is built.
#[derive(Debug, Default)]
pub(crate) struct Zones {
    by_name: BTreeMap<String, TimeZone>,
}

impl Zones {
    pub fn insert(&mut self, name: &str, zone: TimeZone) {
        self.by_name.insert(name.to_string(), zone);
    }

    pub fn contains(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    pub fn get(&self, name: &str) -> Option<&TimeZone> {
        self.by_name.get(name)
    }
}

/// Read a zone from the system tz database (`/usr/share/zoneinfo`), so zone rules follow
/// the OS's tzdata updates instead of a copy frozen into the binary. `UTC` needs no file.
pub fn system_zone(name: &str) -> Option<TimeZone> {
    if matches!(name, "UTC" | "Etc/UTC" | "Zulu" | "Etc/Zulu") {
        return Some(TimeZone::utc());
    }
    // The loader checked the shape; refuse anything path-like all the same, because the
    // name becomes a file path under the zoneinfo directory.
    if name.starts_with('/') || name.split('/').any(|p| p.is_empty() || p.starts_with('.')) {
        return None;
    }
    TimeZone::from_posix_tz(name).ok()
}

/// Whether `now` falls outside `hours` in `zone`. Days name the day a span starts on: with
/// `Mon-Fri 22:00-06:00`, Saturday 03:00 is inside (Friday's night shift).
pub(crate) fn is_outside(hours: &BusinessHours, zone: &TimeZone, now: OffsetDateTime) -> bool {
    let Some(local) = local_time(zone, now) else {
        // An instant the zone cannot describe: count it as outside, so after-hours rules
        // err towards alerting rather than silence.
        return true;
    };
    let minute = u16::from(local.hour()) * 60 + u16::from(local.minute());
    let today = hours.includes_day(local.weekday());
    let (start, end) = (hours.start_minute, hours.end_minute);
    let inside = if start < end {
        today && (start..end).contains(&minute)
    } else {
        let yesterday = hours.includes_day(local.weekday().previous());
        (today && minute >= start) || (yesterday && minute < end)
    };
    !inside
}

fn local_time(zone: &TimeZone, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let offset = zone
        .find_local_time_type(now.unix_timestamp())
        .ok()?
        .ut_offset();
    Some(now.to_offset(UtcOffset::from_whole_seconds(offset).ok()?))
}
