//! Time-bound approvals (SPEC section 5): granted through the admin endpoint, consulted by
//! the engine for `require_approval` rules, persisted so they survive a restart.
//!
//! Persistence: the whole set is one JSON file (an array of [`ApprovalRecord`]), rewritten
//! atomically on every change (write a temp file in the same directory, fsync, rename,
//! fsync the directory). The file is small (approvals are few and expire), so rewriting it
//! is simpler and safer than appending. A change is made in memory only after it is on
//! disk: an approval the admin API acknowledged is never lost by a crash.

use crate::policy::engine::Approval;
use crate::policy::Class;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use time::OffsetDateTime;

/// One approval as granted, stored and listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// Random hex id (revocation handle).
    pub id: String,
    pub approver: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<Class>,
    /// `schema.table`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    pub reason: String,
    /// RFC 3339, for people reading the file or the API.
    pub granted_at: String,
    pub expires_at: String,
    /// Unix seconds: what the store itself reads back.
    pub expires_unix: i64,
}

impl ApprovalRecord {
    pub fn expires(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.expires_unix).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.expires() > now
    }

    fn approval(&self) -> Approval {
        Approval {
            user: self.user.clone(),
            class: self.class,
            table: self.table.clone(),
            expires_at: self.expires(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApprovalsError {
    #[error("cannot read the approvals file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the approvals file {path} is not valid: {reason}")]
    Invalid { path: String, reason: String },
    #[error("cannot write the approvals file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// Approvals in force, optionally backed by a file.
#[derive(Default)]
pub struct ApprovalStore {
    path: Option<PathBuf>,
    approvals: RwLock<Vec<ApprovalRecord>>,
    /// Serializes changes so two grants never race on the file.
    changing: Mutex<()>,
}

impl ApprovalStore {
    /// A store kept in memory only (tests, no approvals file).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Open (or start) the file at `path`; approvals already expired are dropped. A file
    /// that exists but cannot be parsed is an error: silently losing approvals, or
    /// overwriting the evidence, is worse than refusing to start.
    pub fn open(path: &Path, now: OffsetDateTime) -> Result<Self, ApprovalsError> {
        let records = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Vec::new(),
            Ok(bytes) => serde_json::from_slice::<Vec<ApprovalRecord>>(&bytes).map_err(|e| {
                ApprovalsError::Invalid {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(ApprovalsError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let active: Vec<ApprovalRecord> =
            records.into_iter().filter(|r| r.is_active(now)).collect();
        Ok(Self {
            path: Some(path.to_path_buf()),
            approvals: RwLock::new(active),
            changing: Mutex::new(()),
        })
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Approvals for `user` still in force at `now`.
    pub fn active_for(&self, user: &str, now: OffsetDateTime) -> Vec<Approval> {
        match self.approvals.read() {
            Ok(list) => list
                .iter()
                .filter(|a| a.user == user && a.is_active(now))
                .map(ApprovalRecord::approval)
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Every approval in force at `now`, soonest expiry first.
    pub fn list(&self, now: OffsetDateTime) -> Vec<ApprovalRecord> {
        let mut list: Vec<ApprovalRecord> = match self.approvals.read() {
            Ok(list) => list.iter().filter(|a| a.is_active(now)).cloned().collect(),
            Err(_) => Vec::new(),
        };
        list.sort_by(|a, b| a.expires_unix.cmp(&b.expires_unix).then(a.id.cmp(&b.id)));
        list
    }

    /// Add an approval without an approver record (tests and internal use); in memory
    /// only when the file cannot be written (logged).
    pub fn add(&self, approval: Approval) {
        let now = OffsetDateTime::now_utc();
        let record = ApprovalRecord {
            id: random_id(),
            approver: String::new(),
            user: approval.user,
            class: approval.class,
            table: approval.table,
            reason: String::new(),
            granted_at: format_time(now),
            expires_at: format_time(approval.expires_at),
            expires_unix: approval.expires_at.unix_timestamp(),
        };
        if let Err(e) = self.grant(record, now) {
            tracing::error!(error = %e, "approval kept in memory only");
        }
    }

    /// Store a granted approval: on disk first, then in force. Expired ones are pruned.
    pub fn grant(&self, record: ApprovalRecord, now: OffsetDateTime) -> Result<(), ApprovalsError> {
        self.change(now, |list| {
            list.push(record);
            Some(())
        })
        .map(|_| ())
    }

    /// Revoke by id; `Ok(None)` when no approval in force has that id.
    pub fn revoke(
        &self,
        id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<ApprovalRecord>, ApprovalsError> {
        self.change(now, |list| {
            let pos = list.iter().position(|r| r.id == id)?;
            Some(list.remove(pos))
        })
    }

    /// Apply `edit` to a copy of the list; when it returns `Some`, persist the copy and
    /// make it current. Expired approvals are dropped on the way.
    fn change<T>(
        &self,
        now: OffsetDateTime,
        edit: impl FnOnce(&mut Vec<ApprovalRecord>) -> Option<T>,
    ) -> Result<Option<T>, ApprovalsError> {
        let _changing = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let mut next: Vec<ApprovalRecord> = match self.approvals.read() {
            Ok(list) => list.iter().filter(|r| r.is_active(now)).cloned().collect(),
            Err(p) => p.into_inner().clone(),
        };
        let Some(result) = edit(&mut next) else {
            return Ok(None);
        };
        if let Some(path) = &self.path {
            write_atomically(path, &next).map_err(|source| ApprovalsError::Write {
                path: path.display().to_string(),
                source,
            })?;
        }
        match self.approvals.write() {
            Ok(mut list) => *list = next,
            Err(p) => *p.into_inner() = next,
        }
        Ok(Some(result))
    }
}

/// Write temp + fsync + rename + fsync(dir): readers see the old or the new file, whole.
fn write_atomically(path: &Path, records: &[ApprovalRecord]) -> std::io::Result<()> {
    let mut text = serde_json::to_vec_pretty(records).map_err(std::io::Error::other)?;
    text.push(b'\n');
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "approvals".into());
    let tmp = dir.join(format!(".{file_name}.{}.tmp", random_id()));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        file.write_all(&text)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&tmp, path)?;
        // The rename itself must survive a crash.
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// 128 random bits as hex (from the OS RNG behind `uuid`).
pub fn random_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// RFC 3339 with an explicit offset, like audit timestamps.
pub fn format_time(t: OffsetDateTime) -> String {
    crate::audit::event::rfc3339(t.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(user: &str, expires: OffsetDateTime) -> ApprovalRecord {
        ApprovalRecord {
            id: random_id(),
            approver: "alice".into(),
            user: user.into(),
            class: Some(Class::Restricted),
            table: None,
            reason: "TICKET-1".into(),
            granted_at: format_time(OffsetDateTime::now_utc()),
            expires_at: format_time(expires),
            expires_unix: expires.unix_timestamp(),
        }
    }

    #[test]
    fn approvals_survive_reopening_and_expired_ones_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("approvals.json");
        let now = OffsetDateTime::now_utc();
        let store = ApprovalStore::open(&path, now).unwrap();
        let live = record("bob", now + time::Duration::hours(1));
        let short = record("carol", now + time::Duration::seconds(5));
        store.grant(live.clone(), now).unwrap();
        store.grant(short.clone(), now).unwrap();
        assert_eq!(store.active_for("bob", now).len(), 1);
        let later = now + time::Duration::seconds(10);
        let reopened = ApprovalStore::open(&path, later).unwrap();
        assert_eq!(reopened.list(later), vec![live.clone()]);
        assert_eq!(reopened.revoke(&live.id, later).unwrap(), Some(live));
        assert_eq!(reopened.revoke("nope", later).unwrap(), None);
        assert!(ApprovalStore::open(&path, later)
            .unwrap()
            .list(later)
            .is_empty());
        // No temp files left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("approvals.json");
        std::fs::write(&path, "{not json").unwrap();
        let err = ApprovalStore::open(&path, OffsetDateTime::now_utc())
            .err()
            .unwrap();
        assert!(err.to_string().contains("approvals.json"), "{err}");
    }
}
