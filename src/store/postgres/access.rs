//! Sharing and the audit trail.

use std::collections::HashMap;

use super::Db;
use crate::domain::{AuditEntry, AuditFilter, AuditNote, RowId, Share, ShareChange, ShareRole};
use crate::store::StoreResult;

impl Db {
    pub(crate) fn share(&self, _instance: RowId, _user: RowId, _role: ShareRole, _by: &str) -> StoreResult<ShareChange> {
        todo!("postgres share")
    }
    pub(crate) fn unshare(&self, _instance: RowId, _user: RowId) -> StoreResult<Option<ShareRole>> {
        todo!("postgres unshare")
    }
    pub(crate) fn access(&self, _instance: RowId) -> StoreResult<Vec<Share>> {
        todo!("postgres access")
    }
    pub(crate) fn shared_with(&self, _user: RowId) -> StoreResult<HashMap<RowId, ShareRole>> {
        todo!("postgres shared_with")
    }
    pub(crate) fn arm_audit(&self, _note: AuditNote) {
        todo!("postgres arm_audit")
    }
    pub(crate) fn append_audit(&self, _note: AuditNote) -> StoreResult<()> {
        todo!("postgres append_audit")
    }
    pub(crate) fn audit_entries(&self, _filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        todo!("postgres audit_entries")
    }
    pub(crate) fn login(&self) -> StoreResult<Option<String>> {
        todo!("postgres login")
    }
}
