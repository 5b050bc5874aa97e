//! Sharing and the audit trail.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Transaction, params};

use super::decode::{decoded, time};
use super::{Db, Missing, StoreError, StoreResult, fmt_time, now};
use crate::domain::{
    AuditEntry, AuditFilter, AuditNote, AuditObject, Role, RowId, Share, ShareChange, ShareRole,
};

/// Appends `note` to the trail inside `tx`.
pub(super) fn append(tx: &Transaction, note: &AuditNote) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO audit_log
            (at, actor, command, object_kind, object_id, object_name, instance_id, summary)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            fmt_time(&now()),
            note.actor,
            note.command,
            note.object_kind.as_str(),
            note.object_id,
            note.object_name,
            note.instance,
            note.summary,
        ],
    )?;
    Ok(())
}

fn share_role(r: &rusqlite::Row, idx: usize) -> rusqlite::Result<ShareRole> {
    decoded(r, idx, "a share role", ShareRole::parse)
}

impl Db {
    /// See [`crate::store::Store::share`].
    pub(crate) fn share(
        &mut self,
        instance: RowId,
        user: RowId,
        role: ShareRole,
        by: &str,
        note: &(dyn Fn(ShareChange) -> AuditNote + Sync),
    ) -> StoreResult<ShareChange> {
        let at = fmt_time(&now());
        self.write(|tx| {
            let had: Option<ShareRole> = tx
                .query_row(
                    "SELECT role FROM instance_shares WHERE instance_id = ?1 AND user_id = ?2",
                    params![instance, user],
                    |r| share_role(r, 0),
                )
                .optional()?;
            let change = match had {
                Some(r) if r == role => return Ok(ShareChange::Unchanged),
                Some(r) => ShareChange::Changed(r),
                None => ShareChange::Added,
            };
            let written = tx.execute(
                "INSERT INTO instance_shares (instance_id, user_id, role, granted_by, created_at)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM amc_instances WHERE id = ?1)
                 ON CONFLICT (instance_id, user_id)
                 DO UPDATE SET role = excluded.role, granted_by = excluded.granted_by,
                               created_at = excluded.created_at",
                params![instance, user, role.as_str(), by, at],
            )?;
            if written == 0 {
                return Err(StoreError::NotFound(Missing::Instance));
            }
            append(tx, &note(change))?;
            Ok(change)
        })
    }

    /// See [`crate::store::Store::unshare`].
    pub(crate) fn unshare(
        &mut self,
        instance: RowId,
        user: RowId,
        note: &(dyn Fn(ShareRole) -> AuditNote + Sync),
    ) -> StoreResult<Option<ShareRole>> {
        self.write(|tx| {
            let had: Option<ShareRole> = tx
                .query_row(
                    "DELETE FROM instance_shares WHERE instance_id = ?1 AND user_id = ?2
                     RETURNING role",
                    params![instance, user],
                    |r| share_role(r, 0),
                )
                .optional()?;
            if let Some(role) = had {
                append(tx, &note(role))?;
            }
            Ok(had)
        })
    }

    /// See [`crate::store::Store::access`].
    pub(crate) fn access(&self, instance: RowId) -> StoreResult<Vec<Share>> {
        let mut stmt = self.read().prepare(
            "SELECT u.name, 'owner', i.created_at, NULL, 0
               FROM amc_instances i JOIN users u ON u.id = i.user_id WHERE i.id = ?1
             UNION ALL
             SELECT u.name, s.role, s.created_at, s.granted_by, 1
               FROM instance_shares s JOIN users u ON u.id = s.user_id WHERE s.instance_id = ?1
             ORDER BY 5, 1",
        )?;
        let rows = stmt.query_map([instance], |r| {
            let role = match r.get::<_, String>(1)?.as_str() {
                "owner" => Role::Owner,
                _ => share_role(r, 1)?.into(),
            };
            Ok(Share {
                user: r.get(0)?,
                role,
                since: time(r, 2)?,
                granted_by: r.get(3)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// See [`crate::store::Store::shared_with`].
    pub(crate) fn shared_with(&self, user: RowId) -> StoreResult<HashMap<RowId, ShareRole>> {
        let mut stmt = self
            .read()
            .prepare("SELECT instance_id, role FROM instance_shares WHERE user_id = ?1")?;
        let rows = stmt.query_map([user], |r| Ok((r.get(0)?, share_role(r, 1)?)))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// See [`crate::store::Store::audited`].
    pub(crate) fn arm_audit(&mut self, note: AuditNote) {
        self.audit = Some(note);
    }

    /// See [`crate::store::Store::append_audit`].
    pub(crate) fn append_audit(&mut self, note: AuditNote) -> StoreResult<()> {
        self.write(|tx| append(tx, &note).map_err(StoreError::from))
    }

    /// See [`crate::store::Store::audit_entries`]. A SQLite store has no
    /// logins: every entry is readable.
    pub(crate) fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let mut stmt = self.read().prepare(
            "SELECT id, at, actor, command, object_kind, object_id, object_name, summary
               FROM audit_log
              WHERE (?1 IS NULL OR instance_id = ?1)
                AND (?2 IS NULL OR actor = ?2)
                AND (?3 IS NULL OR at >= ?3)
              ORDER BY id",
        )?;
        let rows = stmt.query_map(
            params![
                filter.instance,
                filter.actor,
                filter.since.as_ref().map(fmt_time)
            ],
            |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: time(r, 1)?,
                    actor: r.get(2)?,
                    command: r.get(3)?,
                    object_kind: decoded(r, 4, "an audit object kind", AuditObject::parse)?,
                    object_id: r.get(5)?,
                    object_name: r.get(6)?,
                    summary: r.get(7)?,
                })
            },
        )?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// See [`crate::store::Store::login`].
    pub(crate) fn login(&self) -> StoreResult<Option<String>> {
        Ok(None)
    }
}
