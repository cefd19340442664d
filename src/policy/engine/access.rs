//! The engine's inputs: one statement's [`Access`], the session's row totals
//! ([`SessionUsage`]) and time-bound [`Approval`]s.

use crate::policy::{Class, StatementKindMatch};
use crate::sql::StatementKind;
use time::OffsetDateTime;

impl From<StatementKind> for StatementKindMatch {
    /// One-to-one: `StatementKindMatch` mirrors the kinds by name so `policy` can parse
    /// `statement:` without the SQL analyzer; the engine is where the two meet.
    fn from(kind: StatementKind) -> Self {
        match kind {
            StatementKind::Select => StatementKindMatch::Select,
            StatementKind::Insert => StatementKindMatch::Insert,
            StatementKind::Update => StatementKindMatch::Update,
            StatementKind::Delete => StatementKindMatch::Delete,
            StatementKind::Merge => StatementKindMatch::Merge,
            StatementKind::CopyTo => StatementKindMatch::CopyTo,
            StatementKind::CopyFrom => StatementKindMatch::CopyFrom,
            StatementKind::Ddl => StatementKindMatch::Ddl,
            StatementKind::Set => StatementKindMatch::Set,
            StatementKind::Transaction => StatementKindMatch::Transaction,
            StatementKind::Other => StatementKindMatch::Other,
            StatementKind::Unparsed => StatementKindMatch::Unparsed,
        }
    }
}

/// A relation the statement uses, resolved by the session (schema from search_path and
/// the catalog; class from [`Policy::table_class`](crate::policy::Policy::table_class),
/// which makes catalogs PUBLIC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub schema: String,
    pub table: String,
    pub class: Class,
    /// The statement changes rows of this relation (target of INSERT, UPDATE, DELETE,
    /// MERGE, COPY FROM). A target with no written column listed writes whole rows.
    pub target: bool,
}

/// A column the statement reads or writes, with its class
/// ([`Policy::column_class`](crate::policy::Policy::column_class)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnRef {
    pub schema: String,
    pub table: String,
    pub column: String,
    pub class: Class,
    pub write: bool,
}

/// Everything the engine needs to know about one statement. Built by the session from
/// `sql::StatementInfo` after resolving names; holds no data value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// `CopyTo` also needs `data:export`; `Ddl` needs `ddl:execute`.
    pub kind: StatementKind,
    pub tables: Vec<TableRef>,
    pub columns: Vec<ColumnRef>,
    pub user: String,
    /// Carried for the audit event and for future address-scoped rules; no rule
    /// condition reads it today.
    pub client_addr: String,
}

impl Access {
    pub fn new(
        kind: StatementKind,
        user: impl Into<String>,
        client_addr: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            tables: Vec::new(),
            columns: Vec::new(),
            user: user.into(),
            client_addr: client_addr.into(),
        }
    }

    /// Builder: add a relation.
    pub fn table(mut self, schema: &str, table: &str, class: Class, target: bool) -> Self {
        self.tables.push(TableRef {
            schema: schema.to_string(),
            table: table.to_string(),
            class,
            target,
        });
        self
    }

    /// Builder: add a column read (`write = false`) or written.
    pub fn column(
        mut self,
        schema: &str,
        table: &str,
        column: &str,
        class: Class,
        write: bool,
    ) -> Self {
        self.columns.push(ColumnRef {
            schema: schema.to_string(),
            table: table.to_string(),
            column: column.to_string(),
            class,
            write,
        });
        self
    }
}

/// A small set of classes (a bitmask): cheap to copy, order-free, no allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ClassSet(u8);

impl ClassSet {
    pub const ALL: [Class; 4] = [
        Class::Public,
        Class::Internal,
        Class::Confidential,
        Class::Restricted,
    ];

    fn bit(class: Class) -> u8 {
        1 << (class as u8)
    }

    pub fn insert(&mut self, class: Class) {
        self.0 |= Self::bit(class);
    }

    pub fn contains(self, class: Class) -> bool {
        self.0 & Self::bit(class) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn intersects(self, other: ClassSet) -> bool {
        self.0 & other.0 != 0
    }

    /// Every class of `other` is in `self`.
    pub fn contains_all(self, other: ClassSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Classes in ascending order of sensitivity.
    pub fn iter(self) -> impl Iterator<Item = Class> {
        Self::ALL.into_iter().filter(move |c| self.contains(*c))
    }

    fn bits(self) -> usize {
        usize::from(self.0)
    }
}

impl FromIterator<Class> for ClassSet {
    fn from_iter<I: IntoIterator<Item = Class>>(iter: I) -> Self {
        let mut set = ClassSet::default();
        iter.into_iter().for_each(|c| set.insert(c));
        set
    }
}

/// Rows of one session, by the exact set of classes each statement touched. Keyed by the
/// set (16 buckets) rather than by class so that "rows touching any of these classes"
/// counts a statement touching two of them once, not twice.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionUsage {
    rows_by_classes: [u64; 16],
}

impl SessionUsage {
    /// Add rows a statement returned or changed (call with increments as they happen,
    /// e.g. per FETCH, or once at completion), with the verdict's `classes`.
    pub fn add_rows(&mut self, classes: ClassSet, rows: u64) {
        if classes.is_empty() {
            return; // statements touching no data (SELECT 1) count for no rule
        }
        let bucket = &mut self.rows_by_classes[classes.bits()];
        *bucket = bucket.saturating_add(rows);
    }

    /// Rows so far of statements that touched any class of `classes`.
    pub fn rows_touching(&self, classes: ClassSet) -> u64 {
        self.rows_by_classes
            .iter()
            .enumerate()
            .filter(|(bits, _)| *bits & classes.bits() != 0)
            .fold(0u64, |sum, (_, rows)| sum.saturating_add(*rows))
    }
}

/// A time-bound approval granted to `user` for a class or one table (`schema.table`).
/// Both set: the approval covers only that class in that table. Neither set: covers
/// nothing (an approval must name what it approves).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub user: String,
    pub class: Option<Class>,
    pub table: Option<String>,
    pub expires_at: OffsetDateTime,
}

impl Approval {
    /// Whether this approval lets `user` touch `class` data of `schema.table` at `now`.
    pub(crate) fn covers(
        &self,
        user: &str,
        class: Class,
        schema: &str,
        table: &str,
        now: OffsetDateTime,
    ) -> bool {
        if self.user != user || now >= self.expires_at {
            return false;
        }
        let class_ok = self.class.is_none_or(|c| c == class);
        let table_ok = self
            .table
            .as_deref()
            .is_none_or(|t| is_table(t, schema, table));
        (self.class.is_some() || self.table.is_some()) && class_ok && table_ok
    }
}

/// `schema.table` equals `t` (without allocating the joined name).
fn is_table(t: &str, schema: &str, table: &str) -> bool {
    t.len() == schema.len() + 1 + table.len()
        && t.starts_with(schema)
        && t.as_bytes().get(schema.len()) == Some(&b'.')
        && t.ends_with(table)
}
