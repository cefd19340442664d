//! The audit trail: [`AuditEvent`] records and the bounded writer that appends them as JSON
//! lines. Sessions hand events to an [`AuditSink`]; one writer thread owns the file.

pub mod event;
pub mod writer;

pub use event::{AuditEvent, ColumnAccess, EventKind, Outcome, SessionInfo};
pub use writer::{AuditSink, AuditWriter};
