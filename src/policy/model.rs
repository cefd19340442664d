//! Compiled, validated policy values: what the rest of pgvigil reads. No parsing here.

use super::Class;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// How a RESTRICTED column is shown to a caller without `restricted:read` (SPEC section 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mask {
    /// Keep the last four letters or digits, `*` for the others, punctuation kept.
    Last4,
    /// Keep the first six and the last four letters or digits.
    First6Last4,
    /// `****`.
    Redact,
    /// SQL NULL.
    Null,
    /// Stable keyed hash in hex.
    Hash,
}

impl Mask {
    /// YAML names, in the order error messages list them.
    pub const NAMES: [&'static str; 5] = ["last4", "first6last4", "redact", "null", "hash"];

    pub fn parse(name: &str) -> Option<Mask> {
        Some(match name {
            "last4" => Mask::Last4,
            "first6last4" => Mask::First6Last4,
            "redact" => Mask::Redact,
            "null" => Mask::Null,
            "hash" => Mask::Hash,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mask::Last4 => "last4",
            Mask::First6Last4 => "first6last4",
            Mask::Redact => "redact",
            Mask::Null => "null",
            Mask::Hash => "hash",
        }
    }
}

/// The compiled settings of one column; every field resolved (no "inherit" left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRule {
    /// The column's own class, or its table's.
    pub class: Class,
    /// Mask for callers without plaintext access; `redact` unless given.
    pub mask: Mask,
    /// Column that holds the keyed HMAC used for equality search on this column.
    pub blind_index: Option<String>,
    /// Whether values are stored encrypted; true by default for RESTRICTED, only allowed
    /// for RESTRICTED.
    pub encrypt: bool,
}

/// One classified relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRule {
    pub schema: String,
    pub table: String,
    /// The table's class: its own `class`, else the policy's `default_class`.
    pub class: Class,
    /// Columns listed in the policy, by name as written in YAML.
    pub columns: BTreeMap<String, ColumnRule>,
    /// File that defined the table, and its key there as written (`customers` or
    /// `public.customers`), so messages point at what the user wrote.
    pub source: PathBuf,
    pub key: String,
}

/// `*` or one exact name (schema or table part of a `table:` permission).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum NamePattern {
    Any,
    Exact(String),
}

impl NamePattern {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NamePattern::Any => true,
            NamePattern::Exact(n) => n == name,
        }
    }
}

/// The resource part of a permission.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `*`: any resource, including classes and single tables.
    Any,
    /// `public`, `internal`, `confidential`, `restricted`: data of that class.
    Class(Class),
    /// `table:<schema.table>`: one table (or a `*` pattern of tables).
    Table {
        schema: NamePattern,
        table: NamePattern,
    },
    /// `ddl`
    Ddl,
    /// `data` (`data:export` = COPY TO)
    Data,
    /// `approval`
    Approval,
    /// `audit`
    Audit,
}

/// The action part of a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Any,
    Read,
    Write,
    Execute,
    Export,
    Grant,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Any => "*",
            Action::Read => "read",
            Action::Write => "write",
            Action::Execute => "execute",
            Action::Export => "export",
            Action::Grant => "grant",
        }
    }
}

/// A compiled permission string. `Display` gives back the canonical text (for audit events).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Permission {
    pub resource: Resource,
    pub action: Action,
}

impl Permission {
    /// Whether holding `self` grants `required` (`*` matches any part). `required` is a
    /// concrete permission such as `restricted:read` or `table:public.tickets:write`.
    /// A class permission never grants a table permission or vice versa: SPEC says either
    /// suffices, so the engine asks for both and accepts either.
    pub fn covers(&self, required: &Permission) -> bool {
        let action_ok = self.action == Action::Any || self.action == required.action;
        let resource_ok = match (&self.resource, &required.resource) {
            (Resource::Any, _) => true,
            (
                Resource::Table { schema, table },
                Resource::Table {
                    schema: rs,
                    table: rt,
                },
            ) => pattern_covers(schema, rs) && pattern_covers(table, rt),
            (held, req) => held == req,
        };
        action_ok && resource_ok
    }
}

fn pattern_covers(held: &NamePattern, required: &NamePattern) -> bool {
    match (held, required) {
        (NamePattern::Any, _) => true,
        (NamePattern::Exact(h), NamePattern::Exact(r)) => h == r,
        (NamePattern::Exact(_), NamePattern::Any) => false,
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            NamePattern::Any => f.write_str("*"),
            NamePattern::Exact(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let action = self.action.as_str();
        match &self.resource {
            Resource::Any => write!(f, "*:{action}"),
            Resource::Class(c) => write!(f, "{}:{action}", class_name(*c).to_lowercase()),
            Resource::Table { schema, table } => write!(f, "table:{schema}.{table}:{action}"),
            Resource::Ddl => write!(f, "ddl:{action}"),
            Resource::Data => write!(f, "data:{action}"),
            Resource::Approval => write!(f, "approval:{action}"),
            Resource::Audit => write!(f, "audit:{action}"),
        }
    }
}

/// Upper-case YAML name of a class.
pub fn class_name(class: Class) -> &'static str {
    match class {
        Class::Public => "PUBLIC",
        Class::Internal => "INTERNAL",
        Class::Confidential => "CONFIDENTIAL",
        Class::Restricted => "RESTRICTED",
    }
}

/// A named set of permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub permissions: Vec<Permission>,
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleAction {
    Allow,
    Alert,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

/// `enforce` carries out the action; `monitor` turns a block into an alert (dry run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuleMode {
    Enforce,
    Monitor,
}

/// Statement kinds a rule's `statement:` may name: the kinds of SPEC section 3, by the same
/// snake_case names as the audit trail's `statement_kind`. Kept here, not borrowed from
/// `sql`, because `policy` must not depend on `sql` (see `lib.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatementKindMatch {
    Select,
    Insert,
    Update,
    Delete,
    Merge,
    CopyTo,
    CopyFrom,
    Ddl,
    Set,
    Transaction,
    Other,
    Unparsed,
}

impl StatementKindMatch {
    pub const NAMES: [&'static str; 12] = [
        "select",
        "insert",
        "update",
        "delete",
        "merge",
        "copy_to",
        "copy_from",
        "ddl",
        "set",
        "transaction",
        "other",
        "unparsed",
    ];

    pub fn parse(name: &str) -> Option<Self> {
        use StatementKindMatch::*;
        Some(match name {
            "select" => Select,
            "insert" => Insert,
            "update" => Update,
            "delete" => Delete,
            "merge" => Merge,
            "copy_to" => CopyTo,
            "copy_from" => CopyFrom,
            "ddl" => Ddl,
            "set" => Set,
            "transaction" => Transaction,
            "other" => Other,
            "unparsed" => Unparsed,
            _ => return None,
        })
    }
}

/// Business hours of an `outside_hours` condition: the rule matches outside them.
/// Only the shape of the zone name is checked at load time; `engine::Engine::new` resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessHours {
    /// Monday first: `days[0]` is Monday, `days[6]` Sunday.
    pub days: [bool; 7],
    /// Minutes after midnight, local time in `zone`.
    pub start_minute: u16,
    /// Minutes after midnight (1440 allowed for `24:00`); below `start_minute` means the
    /// hours run past midnight.
    pub end_minute: u16,
    /// IANA zone name as written, e.g. `Europe/Berlin`.
    pub zone: String,
}

impl BusinessHours {
    pub fn includes_day(&self, day: time::Weekday) -> bool {
        self.days[usize::from(day.number_days_from_monday())]
    }
}

/// One rule, compiled. Conditions are all optional; a rule without conditions matches any
/// access to its classes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    /// Classes the rule applies to, already expanded for `at_least` (a rule without `class`
    /// applies to every class).
    pub classes: Vec<Class>,
    /// Only for callers holding one of these roles; `None` means everyone.
    pub roles: Option<Vec<String>>,
    /// Never for callers holding one of these roles.
    pub except_roles: Vec<String>,
    pub rows_per_query: Option<u64>,
    pub rows_per_session: Option<u64>,
    pub require_approval: bool,
    pub outside_hours: Option<BusinessHours>,
    pub statement: Option<StatementKindMatch>,
    /// Matches when a statement touches all of these classes at once.
    pub classes_together: Vec<Class>,
    pub action: RuleAction,
    /// `MEDIUM` unless given.
    pub severity: Severity,
    pub mode: RuleMode,
    /// Position in the `rules` list (for messages).
    pub index: usize,
}

/// `N/duration`: at most `count` events per sliding `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u64,
    pub window: Duration,
}

/// Who a failed-login lock applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockScope {
    /// The user everywhere (lets anyone lock an account out).
    User,
    /// The user from one client address (default).
    UserAddress,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedLoginSettings {
    pub warn: Option<Rate>,
    pub lock: Option<Rate>,
    /// How long a lock lasts; 15 minutes unless given.
    pub lock_for: Duration,
    pub lock_scope: LockScope,
    /// Failures across all users that count as an attack.
    pub attack: Option<Rate>,
}

impl Default for FailedLoginSettings {
    fn default() -> Self {
        Self {
            warn: None,
            lock: None,
            lock_for: Duration::from_secs(15 * 60),
            lock_scope: LockScope::UserAddress,
            attack: None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub per_user: Option<Rate>,
    pub total_alert: Option<Rate>,
}

/// The `security` section; absent keys leave the feature off (`None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecuritySettings {
    pub failed_logins: FailedLoginSettings,
    pub rate_limit: RateLimitSettings,
}
