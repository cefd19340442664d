//! Time-bound approvals (SPEC section 5): granted through the admin endpoint, consulted by
//! the engine for `require_approval` rules. (Persistence and the admin API build on this.)

use crate::policy::engine::Approval;
use std::sync::RwLock;
use time::OffsetDateTime;

#[derive(Default)]
pub struct ApprovalStore {
    approvals: RwLock<Vec<Approval>>,
}

impl ApprovalStore {
    /// Approvals for `user` still in force at `now`.
    pub fn active_for(&self, user: &str, now: OffsetDateTime) -> Vec<Approval> {
        match self.approvals.read() {
            Ok(list) => list
                .iter()
                .filter(|a| a.user == user && a.expires_at > now)
                .cloned()
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn add(&self, approval: Approval) {
        if let Ok(mut list) = self.approvals.write() {
            list.push(approval);
        }
    }
}
