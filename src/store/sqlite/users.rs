//! Users: the owners of instances and credentials.

use rusqlite::{OptionalExtension, params};

use super::{Clash, Db, Missing, StoreError, StoreResult, fmt_time, is_unique_violation, now};
use crate::domain::RowId;
use crate::domain::User;

const SELECT: &str = "SELECT u.id, u.name, u.created_at,
    (SELECT count(*) FROM amc_instances i WHERE i.user_id = u.id), u.is_admin
    FROM users u";

fn row(r: &rusqlite::Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        name: r.get(1)?,
        created_at: super::decode::time(r, 2)?,
        instance_count: r.get(3)?,
        admin: r.get(4)?,
    })
}

impl Db {
    /// The user called `name`, if any.
    pub(crate) fn user(&self, name: &str) -> StoreResult<Option<User>> {
        self.read()
            .query_row(&format!("{SELECT} WHERE u.name = ?1"), [name], row)
            .optional()
            .map_err(StoreError::from)
    }

    /// Every user, by name.
    pub(crate) fn users(&self) -> StoreResult<Vec<User>> {
        let mut stmt = self.read().prepare(&format!("{SELECT} ORDER BY u.name"))?;
        let rows = stmt.query_map([], row)?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// Adds a user (its name checked by [`validate_name`]); a clash if the
    /// name is taken.
    pub(crate) fn add_user(&mut self, name: &str, admin: bool) -> StoreResult<User> {
        let id = RowId::new();
        let created = fmt_time(&now());
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, name, created_at, is_admin) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, created, admin],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(Clash::User(name.to_owned()))
                } else {
                    e.into()
                }
            })?;
            Ok(())
        })?;
        self.user(name)?.ok_or_else(|| StoreError::Vanished("user"))
    }

    /// The user called `name` (checked by [`validate_name`]), created if
    /// missing (the OS login user on first use).
    pub(crate) fn ensure_user(&mut self, name: &str) -> StoreResult<User> {
        if let Some(u) = self.user(name)? {
            return Ok(u);
        }
        let id = RowId::new();
        let created = fmt_time(&now());
        self.write(|tx| {
            tx.execute(
                "INSERT OR IGNORE INTO users (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![id, name, created],
            )?;
            Ok(())
        })?;
        self.user(name)?.ok_or_else(|| StoreError::Vanished("user"))
    }

    /// Removes a user; exit 3 if unknown, exit 5 while the user owns instances.
    pub(crate) fn remove_user(&mut self, name: &str) -> StoreResult<()> {
        self.write(|tx| {
            let found: Option<(String, u64)> = tx
                .query_row(
                    "SELECT id, (SELECT count(*) FROM amc_instances i WHERE i.user_id = u.id)
                     FROM users u WHERE name = ?1",
                    [name],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((id, owned)) = found else {
                return Err(StoreError::NotFound(Missing::User(name.to_owned())));
            };
            if owned > 0 {
                return Err(StoreError::Conflict(Clash::UserOwns {
                    name: name.to_owned(),
                    instances: owned,
                }));
            }
            tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
            Ok(())
        })
    }
}
