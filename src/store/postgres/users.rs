//! Users: the owners of instances and credentials.

use postgres::Row;

use super::decode::{count, get, row_id, time};
use super::{Db, collect, is_unique_violation};
use crate::domain::{RowId, User, now};
use crate::store::{Clash, Missing, StoreError, StoreResult};

const SELECT: &str = "SELECT u.id, u.name, u.created_at,
    (SELECT count(*) FROM amc_instances i WHERE i.user_id = u.id)
    FROM users u";

/// Decodes one row of [`SELECT`], failing on a value of the wrong type
/// rather than panicking.
fn row(r: &Row) -> StoreResult<User> {
    Ok(User {
        id: row_id(r, 0)?,
        name: get(r, 1)?,
        created_at: time(r, 2)?,
        instance_count: count(r, 3)?,
        admin: false,
    })
}

impl Db {
    /// The user called `name`, if any.
    pub(crate) fn user(&self, name: &str) -> StoreResult<Option<User>> {
        let found = self.read(|c| c.query_opt(&format!("{SELECT} WHERE u.name = $1"), &[&name]))?;
        found.as_ref().map(row).transpose()
    }

    /// Every user, by name; names compare bytewise (`COLLATE "C"`), as in
    /// the SQLite store, whatever the database's locale.
    pub(crate) fn users(&self) -> StoreResult<Vec<User>> {
        let rows =
            self.read(|c| c.query(&format!("{SELECT} ORDER BY u.name COLLATE \"C\""), &[]))?;
        collect(rows, row)
    }

    /// Adds a user (its name checked by [`crate::domain::validate_name`]);
    /// a clash if the name is taken.
    pub(crate) fn add_user(&self, name: &str, _admin: bool) -> StoreResult<User> {
        let id = RowId::new();
        let created = now();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3)",
                &[&id, &name, &created],
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

    /// The user called `name` (checked by [`crate::domain::validate_name`]),
    /// created if missing (the OS login user on first use). Two clients
    /// creating the same user at once both end up with the one row.
    pub(crate) fn ensure_user(&self, name: &str) -> StoreResult<User> {
        if let Some(u) = self.user(name)? {
            return Ok(u);
        }
        let id = RowId::new();
        let created = now();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT DO NOTHING",
                &[&id, &name, &created],
            )?;
            Ok(())
        })?;
        self.user(name)?.ok_or_else(|| StoreError::Vanished("user"))
    }

    /// Removes a user; exit 3 if unknown, exit 5 while the user owns instances.
    pub(crate) fn remove_user(&self, name: &str) -> StoreResult<()> {
        self.write(|tx| {
            let found = tx.query_opt(
                "SELECT id, (SELECT count(*) FROM amc_instances i WHERE i.user_id = u.id)
                 FROM users u WHERE name = $1",
                &[&name],
            )?;
            let Some(found) = found else {
                return Err(StoreError::NotFound(Missing::User(name.to_owned())));
            };
            let id = row_id(&found, 0)?;
            let owned = count(&found, 1)?;
            if owned > 0 {
                return Err(StoreError::Conflict(Clash::UserOwns {
                    name: name.to_owned(),
                    instances: owned,
                }));
            }
            tx.execute("DELETE FROM users WHERE id = $1", &[&id])?;
            Ok(())
        })
    }
}
