//! Which permissions a statement needs (SPEC 5) and whether the caller holds them; which
//! RESTRICTED columns are masked instead of refused.

use super::access::{Access, ClassSet};
use crate::policy::{Action, Class, NamePattern, Permission, Policy, Resource};
use crate::sql::StatementKind;

/// One piece of data a statement touches: the unit both permissions and rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Touch<'a> {
    pub schema: &'a str,
    pub table: &'a str,
    /// `None` for whole-table or whole-row access (`count(*)`, DELETE, an INSERT without
    /// a column list): such access cannot be masked column by column.
    pub column: Option<&'a str>,
    pub class: Class,
    pub write: bool,
}

/// The data a statement touches. Reads are column-grained when the statement names
/// columns (a column may be less sensitive than its table, e.g. `customers.created_at`);
/// a relation with no column named is read as a whole at its table class. A write target
/// with no written column writes whole rows, so it needs write on its table class and on
/// every class of its listed columns (deleting a customer deletes the ssn too).
/// An unparsed statement could be a read or a write: fail closed and need both.
pub(crate) fn touches<'a>(access: &'a Access, policy: &Policy) -> Vec<Touch<'a>> {
    let mut out = Vec::new();
    if matches!(access.kind, StatementKind::Set | StatementKind::Transaction) {
        return out;
    }
    for c in &access.columns {
        out.push(Touch {
            schema: &c.schema,
            table: &c.table,
            column: Some(&c.column),
            class: c.class,
            write: c.write,
        });
    }
    for t in &access.tables {
        let whole = |class, write| Touch {
            schema: &t.schema,
            table: &t.table,
            column: None,
            class,
            write,
        };
        let of_table = access
            .columns
            .iter()
            .filter(|c| c.schema == t.schema && c.table == t.table);
        let (mut named, mut written) = (false, false);
        for c in of_table {
            named = true;
            written |= c.write;
        }
        if access.kind == StatementKind::Unparsed {
            out.push(whole(t.class, false));
            out.push(whole(t.class, true));
        } else if t.target && !written {
            out.push(whole(t.class, true));
            let listed = policy.table(&t.schema, &t.table).into_iter();
            for column in listed.flat_map(|rule| rule.columns.values()) {
                out.push(whole(column.class, true));
            }
        } else if !named {
            out.push(whole(t.class, false));
        }
    }
    out
}

pub(crate) fn classes_of(touches: &[Touch]) -> ClassSet {
    touches.iter().map(|t| t.class).collect()
}

/// One required permission; `alternative` (the table permission) suffices as well.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Need {
    permission: Permission,
    alternative: Option<Permission>,
}

impl Need {
    fn text(&self) -> String {
        match &self.alternative {
            Some(alt) => format!("{}|{alt}", self.permission),
            None => self.permission.to_string(),
        }
    }

    fn held_by(&self, held: &[&Permission]) -> bool {
        let covers = |p: &Permission| held.iter().any(|h| h.covers(p));
        covers(&self.permission) || self.alternative.as_ref().is_some_and(covers)
    }
}

/// Result of the permission check.
#[derive(Debug, Default)]
pub(crate) struct PermissionCheck {
    pub required: Vec<String>,
    pub held: Vec<String>,
    /// Required permissions not held (empty: allowed).
    pub missing: Vec<String>,
    pub masked: Vec<(String, String)>,
}

/// Derive and check permissions. With access control off nothing is checked or masked,
/// but `required` is still listed for the audit trail.
pub(crate) fn check(
    access: &Access,
    touches: &[Touch],
    held: &[&Permission],
    enforce: bool,
) -> PermissionCheck {
    let mut result = PermissionCheck {
        held: dedup(held.iter().map(|p| p.to_string())),
        ..PermissionCheck::default()
    };
    // Masking only works on rows that flow back to the client; a RESTRICTED read inside
    // INSERT ... SELECT or CREATE TABLE AS copies plaintext server-side and is refused.
    let maskable = matches!(access.kind, StatementKind::Select | StatementKind::CopyTo);
    let mut needs: Vec<Need> = Vec::new();
    for touch in touches {
        let need = data_need(touch);
        let masked_instead = enforce
            && maskable
            && touch.class == Class::Restricted
            && !touch.write
            && touch.column.is_some()
            && !need.held_by(held);
        match (masked_instead, touch.column) {
            (true, Some(column)) => {
                let entry = (
                    format!("{}.{}", touch.schema, touch.table),
                    column.to_string(),
                );
                if !result.masked.contains(&entry) {
                    result.masked.push(entry);
                }
            }
            _ => needs.push(need),
        }
    }
    match access.kind {
        StatementKind::Ddl => needs.push(plain(Resource::Ddl, Action::Execute)),
        StatementKind::CopyTo => needs.push(plain(Resource::Data, Action::Export)),
        _ => {}
    }
    result.required = dedup(needs.iter().map(Need::text));
    if enforce {
        result.missing = dedup(needs.iter().filter(|n| !n.held_by(held)).map(Need::text));
    }
    result
}

fn data_need(touch: &Touch) -> Need {
    let action = if touch.write {
        Action::Write
    } else {
        Action::Read
    };
    Need {
        permission: Permission {
            resource: Resource::Class(touch.class),
            action,
        },
        alternative: Some(Permission {
            resource: Resource::Table {
                schema: NamePattern::Exact(touch.schema.to_string()),
                table: NamePattern::Exact(touch.table.to_string()),
            },
            action,
        }),
    }
}

fn plain(resource: Resource, action: Action) -> Need {
    Need {
        permission: Permission { resource, action },
        alternative: None,
    }
}

/// Sorted, without duplicates: stable audit output whatever the statement's order.
fn dedup(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut v: Vec<String> = items.collect();
    v.sort();
    v.dedup();
    v
}
