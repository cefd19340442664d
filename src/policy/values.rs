//! Parsers for the small value languages inside a policy file: class names, durations,
//! `N/duration` rates, `outside_hours` and permission strings. Each returns the reason text
//! of a `PolicyError` on failure; the caller adds file and key path.

use super::model::{Action, BusinessHours, NamePattern, Permission, Rate, Resource};
use super::Class;
use std::time::Duration;

pub(crate) const CLASS_NAMES: &str = "PUBLIC, INTERNAL, CONFIDENTIAL, RESTRICTED";

/// Class names are upper-case exactly as in SPEC section 5 (`Class`'s serde form).
pub(crate) fn parse_class(text: &str) -> Result<Class, String> {
    match text {
        "PUBLIC" => Ok(Class::Public),
        "INTERNAL" => Ok(Class::Internal),
        "CONFIDENTIAL" => Ok(Class::Confidential),
        "RESTRICTED" => Ok(Class::Restricted),
        _ => Err(format!(
            "unknown class {text:?} (expected one of {CLASS_NAMES})"
        )),
    }
}

/// `30s`, `5m`, `1h30m`, `2d`: one or more `<integer><unit>` parts, units s, m, h, d.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (expected e.g. 30s, 5m, 1h30m, 2d)");
    let mut total: u64 = 0;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit_seconds = match rest[digits..].chars().next() {
            Some('s') => 1,
            Some('m') => 60,
            Some('h') => 3600,
            Some('d') => 86_400,
            _ => return Err(bad()),
        };
        total = number
            .checked_mul(unit_seconds)
            .and_then(|s| total.checked_add(s))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
        rest = &rest[digits + 1..];
    }
    if total == 0 {
        return Err(format!("duration {text:?} must be longer than zero"));
    }
    Ok(Duration::from_secs(total))
}

/// `5/5m`: at most 5 per 5 minutes.
pub(crate) fn parse_rate(text: &str) -> Result<Rate, String> {
    let Some((count, window)) = text.split_once('/') else {
        return Err(format!(
            "invalid rate {text:?} (expected <count>/<duration>, e.g. 5/5m)"
        ));
    };
    let count: u64 = count
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("invalid rate {text:?}: count must be a positive integer"))?;
    let window =
        parse_duration(window).map_err(|reason| format!("invalid rate {text:?}: {reason}"))?;
    Ok(Rate { count, window })
}

const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// `Mon-Fri 08:00-18:00 Europe/Berlin`: days (ranges and lists, `Mon-Fri,Sun`), local hours
/// `HH:MM-HH:MM` (end may be `24:00`; an end before the start runs past midnight), and a
/// zone name whose shape looks like IANA. The zone is looked up in the system tz database
/// when `engine::Engine` is built (an unknown zone fails there), not while loading.
pub(crate) fn parse_business_hours(text: &str) -> Result<BusinessHours, String> {
    let expected =
        "expected \"<days> HH:MM-HH:MM <Zone>\", e.g. \"Mon-Fri 08:00-18:00 Europe/Berlin\"";
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [days, hours, zone] = parts[..] else {
        return Err(format!("invalid outside_hours {text:?} ({expected})"));
    };
    let days = parse_days(days).map_err(|r| format!("invalid outside_hours {text:?}: {r}"))?;
    let (start, end) = hours.split_once('-').ok_or_else(|| {
        format!("invalid outside_hours {text:?}: hours {hours:?} must be HH:MM-HH:MM")
    })?;
    let start_minute =
        parse_clock(start, false).map_err(|r| format!("invalid outside_hours {text:?}: {r}"))?;
    let end_minute =
        parse_clock(end, true).map_err(|r| format!("invalid outside_hours {text:?}: {r}"))?;
    if start_minute == end_minute {
        return Err(format!(
            "invalid outside_hours {text:?}: start and end are the same time"
        ));
    }
    if !is_zone_shaped(zone) {
        return Err(format!(
            "invalid outside_hours {text:?}: {zone:?} does not look like an IANA time zone (e.g. Europe/Berlin, UTC)"
        ));
    }
    Ok(BusinessHours {
        days,
        start_minute,
        end_minute,
        zone: zone.to_string(),
    })
}

fn day_index(name: &str) -> Result<usize, String> {
    DAYS.iter()
        .position(|d| *d == name)
        .ok_or_else(|| format!("unknown day {name:?} (expected Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn parse_days(text: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for item in text.split(',') {
        match item.split_once('-') {
            Some((from, to)) => {
                let (from, to) = (day_index(from)?, day_index(to)?);
                if from > to {
                    return Err(format!(
                        "day range {item:?} runs backwards (write e.g. Sat-Sun or Mon,Sun)"
                    ));
                }
                days[from..=to].iter_mut().for_each(|d| *d = true);
            }
            None => days[day_index(item)?] = true,
        }
    }
    Ok(days)
}

fn parse_clock(text: &str, allow_24: bool) -> Result<u16, String> {
    let bad = || format!("time {text:?} must be HH:MM (00:00 to 23:59)");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if allow_24 && h == 24 && m == 0 {
        return Ok(24 * 60);
    }
    if h > 23 || m > 59 {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// `UTC`, `Europe/Berlin`, `America/Argentina/Buenos_Aires`, `Etc/GMT+2`: parts separated by
/// `/`, each starting with a letter, made of letters, digits, `_`, `-`, `+`.
fn is_zone_shaped(zone: &str) -> bool {
    zone.split('/').all(|part| {
        part.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    })
}

/// `<resource>:<action>` or `table:<schema.table>:<action>`, `*` matching any part.
/// Only combinations SPEC section 5 gives a meaning to are accepted, so a typo such as
/// `restricted:raed` or `ddl:read` is an error instead of a permission that never matches.
pub(crate) fn parse_permission(text: &str) -> Result<Permission, String> {
    let expected = "expected <class>:read|write, table:<schema.table>:read|write, ddl:execute, \
                    data:export, approval:grant or audit:read, with * wildcards";
    let parts: Vec<&str> = text.split(':').collect();
    let (resource, action) = match parts[..] {
        ["table", name, action] => (parse_table_pattern(name, text)?, action),
        [resource, action] => (
            parse_resource(resource).ok_or_else(|| {
                format!("unknown permission resource {resource:?} in {text:?} ({expected})")
            })?,
            action,
        ),
        _ => return Err(format!("invalid permission {text:?} ({expected})")),
    };
    let action = match action {
        "*" => Action::Any,
        "read" => Action::Read,
        "write" => Action::Write,
        "execute" => Action::Execute,
        "export" => Action::Export,
        "grant" => Action::Grant,
        _ => {
            return Err(format!(
                "unknown permission action {action:?} in {text:?} ({expected})"
            ))
        }
    };
    let allowed: &[Action] = match resource {
        Resource::Any => &[
            Action::Read,
            Action::Write,
            Action::Execute,
            Action::Export,
            Action::Grant,
        ],
        Resource::Class(_) | Resource::Table { .. } => &[Action::Read, Action::Write],
        Resource::Ddl => &[Action::Execute],
        Resource::Data => &[Action::Export],
        Resource::Approval => &[Action::Grant],
        Resource::Audit => &[Action::Read],
    };
    if action != Action::Any && !allowed.contains(&action) {
        return Err(format!("permission {text:?} has no meaning ({expected})"));
    }
    Ok(Permission { resource, action })
}

fn parse_resource(text: &str) -> Option<Resource> {
    Some(match text {
        "*" => Resource::Any,
        "public" => Resource::Class(Class::Public),
        "internal" => Resource::Class(Class::Internal),
        "confidential" => Resource::Class(Class::Confidential),
        "restricted" => Resource::Class(Class::Restricted),
        "ddl" => Resource::Ddl,
        "data" => Resource::Data,
        "approval" => Resource::Approval,
        "audit" => Resource::Audit,
        _ => return None,
    })
}

/// `public.tickets`, `tickets` (schema public, like table keys), `public.*`, `*`.
fn parse_table_pattern(name: &str, text: &str) -> Result<Resource, String> {
    let pattern = |part: &str| -> Result<NamePattern, String> {
        match part {
            "" => Err(format!("empty schema or table name in permission {text:?}")),
            "*" => Ok(NamePattern::Any),
            _ if part.contains('*') => Err(format!(
                "permission {text:?}: `*` must stand for a whole schema or table name"
            )),
            _ => Ok(NamePattern::Exact(part.to_string())),
        }
    };
    let (schema, table) = match name.split('.').collect::<Vec<_>>()[..] {
        ["*"] => (NamePattern::Any, NamePattern::Any),
        [table] => (NamePattern::Exact("public".into()), pattern(table)?),
        [schema, table] => (pattern(schema)?, pattern(table)?),
        _ => {
            return Err(format!(
                "permission {text:?}: table must be <schema.table> or <table>"
            ))
        }
    };
    Ok(Resource::Table { schema, table })
}

/// `schema.table` or bare `table` (schema `public`) as used for `tables:` keys.
pub(crate) fn parse_table_key(key: &str) -> Result<(String, String), String> {
    let parts: Vec<&str> = key.split('.').collect();
    let (schema, table) = match parts[..] {
        [table] => ("public", table),
        [schema, table] => (schema, table),
        _ => {
            return Err(format!(
                "table key {key:?} must be <schema.table> or <table>"
            ))
        }
    };
    if schema.is_empty() || table.is_empty() {
        return Err(format!(
            "table key {key:?} has an empty schema or table name"
        ));
    }
    Ok((schema.to_string(), table.to_string()))
}
