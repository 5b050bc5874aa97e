//! Sharing and the audit trail. What a member may read or change here is
//! decided by the database's row security as well (migration 2): these
//! statements return what the connection's login may see.

use std::collections::HashMap;

use postgres::{Row, Transaction};

use super::decode::{decoded, get, row_id, time};
use super::health::stored;
use super::{Db, collect};
use crate::domain::{
    AuditEntry, AuditFilter, AuditNote, AuditObject, Role, RowId, Share, ShareChange, ShareRole,
    now,
};
use crate::store::{Missing, StoreError, StoreResult};

/// Appends `note` to the trail inside `tx`.
pub(super) fn append(tx: &mut Transaction<'_>, note: &AuditNote) -> Result<(), postgres::Error> {
    tx.execute(
        "INSERT INTO audit_log
            (at, actor, command, object_kind, object_id, object_name, instance_id, summary)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &stored(&now()),
            &note.actor,
            &note.command,
            &note.object_kind.as_str(),
            &note.object_id,
            &note.object_name,
            &note.instance,
            &note.summary,
        ],
    )?;
    Ok(())
}

fn share_role(r: &Row, idx: usize) -> StoreResult<ShareRole> {
    decoded(r, idx, "a share role", ShareRole::parse)
}

impl Db {
    /// See [`crate::store::Store::share`].
    pub(crate) fn share(
        &self,
        instance: RowId,
        user: RowId,
        role: ShareRole,
        by: &str,
        note: &(dyn Fn(ShareChange) -> AuditNote + Sync),
    ) -> StoreResult<ShareChange> {
        let at = stored(&now());
        self.write(|tx| {
            let had = tx.query_opt(
                "SELECT role FROM instance_shares WHERE instance_id = $1 AND user_id = $2",
                &[&instance, &user],
            )?;
            let change = match had.as_ref().map(|r| share_role(r, 0)).transpose()? {
                Some(r) if r == role => return Ok(ShareChange::Unchanged),
                Some(r) => ShareChange::Changed(r),
                None => ShareChange::Added,
            };
            let written = tx.execute(
                "INSERT INTO instance_shares (instance_id, user_id, role, granted_by, created_at)
                 SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM amc_instances WHERE id = $1)
                 ON CONFLICT (instance_id, user_id)
                 DO UPDATE SET role = excluded.role, granted_by = excluded.granted_by,
                               created_at = excluded.created_at",
                &[&instance, &user, &role.as_str(), &by, &at],
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
        &self,
        instance: RowId,
        user: RowId,
        note: &(dyn Fn(ShareRole) -> AuditNote + Sync),
    ) -> StoreResult<Option<ShareRole>> {
        self.write(|tx| {
            let had = tx.query_opt(
                "DELETE FROM instance_shares WHERE instance_id = $1 AND user_id = $2
                 RETURNING role",
                &[&instance, &user],
            )?;
            let had = had.as_ref().map(|r| share_role(r, 0)).transpose()?;
            if let Some(role) = had {
                append(tx, &note(role))?;
            }
            Ok(had)
        })
    }

    /// See [`crate::store::Store::access`].
    pub(crate) fn access(&self, instance: RowId) -> StoreResult<Vec<Share>> {
        let rows = self.read(|c| {
            c.query(
                // Names compare bytewise, as in the SQLite store.
                "SELECT name, role, since, granted_by FROM (
                     SELECT u.name, 'owner' AS role, i.created_at AS since,
                            NULL::text AS granted_by, 0 AS rank
                       FROM amc_instances i JOIN users u ON u.id = i.user_id WHERE i.id = $1
                     UNION ALL
                     SELECT u.name, s.role, s.created_at, s.granted_by, 1
                       FROM instance_shares s JOIN users u ON u.id = s.user_id
                      WHERE s.instance_id = $1
                 ) a
                 ORDER BY rank, name COLLATE \"C\"",
                &[&instance],
            )
        })?;
        collect(rows, |r| {
            let role = match get::<String>(r, 1)?.as_str() {
                "owner" => Role::Owner,
                _ => share_role(r, 1)?.into(),
            };
            Ok(Share {
                user: get(r, 0)?,
                role,
                since: time(r, 2)?,
                granted_by: get(r, 3)?,
            })
        })
    }

    /// See [`crate::store::Store::shared_with`].
    pub(crate) fn shared_with(&self, user: RowId) -> StoreResult<HashMap<RowId, ShareRole>> {
        let rows = self.read(|c| {
            c.query(
                "SELECT instance_id, role FROM instance_shares WHERE user_id = $1",
                &[&user],
            )
        })?;
        rows.iter()
            .map(|r| Ok((row_id(r, 0)?, share_role(r, 1)?)))
            .collect()
    }

    /// See [`crate::store::Store::audited`].
    pub(crate) fn arm_audit(&self, note: AuditNote) {
        *self.audit.borrow_mut() = Some(Box::new(note));
    }

    /// See [`crate::store::Store::append_audit`].
    pub(crate) fn append_audit(&self, note: AuditNote) -> StoreResult<()> {
        self.write(|tx| append(tx, &note).map_err(StoreError::from))
    }

    /// See [`crate::store::Store::audit_entries`]. Row security leaves out
    /// the entries the login may not read: those of others about instances
    /// they cannot see.
    pub(crate) fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        let since = filter.since.as_ref().map(stored);
        let rows = self.read(|c| {
            c.query(
                "SELECT id, at, actor, command, object_kind, object_id, object_name, summary
                   FROM audit_log
                  WHERE ($1::uuid IS NULL OR instance_id = $1)
                    AND ($2::text IS NULL OR actor = $2)
                    AND ($3::timestamptz IS NULL OR at >= $3)
                  ORDER BY id",
                &[&filter.instance, &filter.actor, &since],
            )
        })?;
        collect(rows, |r| {
            Ok(AuditEntry {
                id: get(r, 0)?,
                at: time(r, 1)?,
                actor: get(r, 2)?,
                command: get(r, 3)?,
                object_kind: decoded(r, 4, "an audit object kind", AuditObject::parse)?,
                object_id: get(r, 5)?,
                object_name: get(r, 6)?,
                summary: get(r, 7)?,
            })
        })
    }

    /// See [`crate::store::Store::login`]: the role of the connection.
    pub(crate) fn login(&self) -> StoreResult<Option<String>> {
        let row = self.read(|c| c.query_one("SELECT current_user::text", &[]))?;
        Ok(Some(get(&row, 0)?))
    }
}
