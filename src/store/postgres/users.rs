//! Users: the owners of instances and credentials.

use postgres::Row;

use super::decode::{count, get, row_id, time};
use super::{Db, collect};
use crate::domain::{RowId, User, now};
use crate::store::{Clash, Missing, Rule, StoreError, StoreResult};

/// A user's row. An administrator is a member of the role `amcctl_admin`;
/// the role is looked up in `pg_roles` first, since a user copied from a
/// SQLite store may have no database role (where `pg_has_role` would fail).
/// The instance count is of the instances the login can see.
const SELECT: &str = "SELECT u.id, u.name, u.created_at,
    (SELECT count(*) FROM amc_instances i WHERE i.user_id = u.id),
    EXISTS (SELECT 1 FROM pg_roles r
             WHERE r.rolname = u.name AND pg_has_role(r.oid, 'amcctl_admin', 'MEMBER'))
    FROM users u";

/// Decodes one row of [`SELECT`], failing on a value of the wrong type
/// rather than panicking.
fn row(r: &Row) -> StoreResult<User> {
    Ok(User {
        id: row_id(r, 0)?,
        name: get(r, 1)?,
        created_at: time(r, 2)?,
        instance_count: count(r, 3)?,
        admin: get(r, 4)?,
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
    /// a clash if the name is taken. The name must be a database login
    /// role, which gets what a member needs in this database, in the same
    /// transaction (a user whose row came with `db copy` but whose role has
    /// no privileges yet is completed so, no clash). Administrators are not made here but with `GRANT
    /// amcctl_admin`, so `admin` is a usage error.
    pub(crate) fn add_user(&self, name: &str, admin: bool) -> StoreResult<User> {
        if admin {
            // Nothing is written: the entry armed for this change goes too.
            self.audit.borrow_mut().take();
            return Err(StoreError::Constraint(Rule::AdminByRole(name.to_owned())));
        }
        let id = RowId::new();
        let created = now();
        self.write(|tx| {
            let role = tx.query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&name])?;
            if role.is_none() {
                return Err(StoreError::NotFound(Missing::Role(name.to_owned())));
            }
            // A user copied from a SQLite store (`db copy`) has a row but
            // not yet the privileges of one: adding it completes it.
            let inserted = tx.execute(
                "INSERT INTO users (id, name, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
                &[&id, &name, &created],
            )?;
            if inserted == 0 {
                let member = tx.query_one(
                    "SELECT has_table_privilege($1::text::name, 'public.amc_instances', 'SELECT')",
                    &[&name],
                )?;
                if member.try_get::<_, bool>(0)? {
                    return Err(StoreError::Conflict(Clash::User(name.to_owned())));
                }
            }
            tx.execute("SELECT amcctl_grant_member($1)", &[&name])?;
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
            // Its privileges go with it; a name with no role (copied from
            // a SQLite store) has none to lose.
            tx.execute("SELECT amcctl_revoke_member($1)", &[&name])?;
            Ok(())
        })
    }
}
