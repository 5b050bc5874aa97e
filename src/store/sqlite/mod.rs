//! The SQLite backend: every SQL statement of the program lives below this
//! module, one file per table family.
//!
//! Concurrency: the database runs in WAL mode with a busy timeout, and every
//! write is one `BEGIN IMMEDIATE` transaction run through [`Db::write`],
//! which retries the whole transaction while another process holds the write
//! lock, so "database is locked" never reaches a user.

mod access;
mod accounts;
mod copy;
mod credentials;
mod decode;
mod discovery;
mod health;
mod instances;
mod settings;
mod usage;
mod users;

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};
use rusqlite_migration::{M, Migrations};

pub(crate) use decode::Undecodable;

use super::{BackupFailure, Clash, Location, Missing, Rule, StoreError, StoreResult};
use crate::domain::{AuditNote, fmt_time, now};

/// The schema, one numbered file per version. Never edit or remove an entry:
/// released stores were migrated with it.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/sqlite/0001_init.sql"),
    include_str!("../../../migrations/sqlite/0002_usage.sql"),
    include_str!("../../../migrations/sqlite/0003_profiles.sql"),
    include_str!("../../../migrations/sqlite/0004_key_fingerprints.sql"),
    include_str!("../../../migrations/sqlite/0005_sharing_audit.sql"),
];

/// How long a writer waits for another process's write lock, all retries included.
const WRITE_LOCK_PATIENCE: Duration = Duration::from_secs(60);

/// An open SQLite store.
pub(crate) struct Db {
    conn: Connection,
    location: Location,
    /// The audit entry the next committed write appends (see
    /// [`crate::store::Store::audited`]).
    audit: Option<AuditNote>,
}

fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect())
}

/// The schema version this binary writes.
pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

impl Db {
    /// Opens (creating if needed) the SQLite file at `path`, the store at
    /// `location`, and brings its schema up to date. The folder is created
    /// 0700 and the file 0600.
    pub(crate) fn open(path: &Path, location: &Location) -> StoreResult<Db> {
        let fresh = !path.exists();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fsutil::create_private_dir(dir).map_err(|source| StoreError::Create {
                path: dir.to_owned(),
                folder: true,
                source,
            })?;
        }
        if fresh {
            crate::fsutil::create_private_file(path).map_err(|source| StoreError::Create {
                path: path.to_owned(),
                folder: false,
                source,
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|e| open_error(location, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .and_then(|_| conn.pragma_update(None, "foreign_keys", "ON"))
            .map_err(|e| open_error(location, e))?;
        // WAL is a property of the file; switching needs the write lock, which
        // another process may hold right now, so retry like a writer.
        retry_busy(|| {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
        })
        .map_err(|e| open_error(location, e))?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| open_error(location, e))?;
        // SQLite's default page cache (2 MiB) is smaller than the indexes of
        // a large account's instances, whose random row ids make each insert
        // touch a different page: an import then slows down as it grows.
        conn.pragma_update(None, "cache_size", -32_768)
            .map_err(|e| open_error(location, e))?;
        // Deleted and overwritten content (a logged-out user's credentials,
        // the ciphertext a key rotation replaced) is zeroed, not left in free
        // pages where the key would still decrypt it and a backup would copy it.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(|e| open_error(location, e))?;

        let version: usize = conn
            .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .map_err(|e| open_error(location, e))?
            .try_into()
            .unwrap_or(usize::MAX);
        if version > schema_version() {
            return Err(StoreError::SchemaTooNew {
                location: location.clone(),
                found: version,
                supported: schema_version(),
            });
        }
        if version < schema_version() {
            migrate(&mut conn).map_err(|e| StoreError::Migrate {
                location: location.clone(),
                source: Box::new(e),
            })?;
        }
        Ok(Db {
            conn,
            location: location.clone(),
            audit: None,
        })
    }

    /// Brings the SQLite file at `path` up to date, as opening it does;
    /// returns the schema versions before and after.
    pub(crate) fn migrate(path: &Path, location: &Location) -> StoreResult<(usize, usize)> {
        let before = if path.is_file() {
            Db::open_read_only(path, location)?
                .conn
                .pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
                .map_err(|e| open_error(location, e))?
                .try_into()
                .unwrap_or(usize::MAX)
        } else {
            0
        };
        Db::open(path, location)?;
        Ok((before, schema_version()))
    }

    /// Opens the existing SQLite file at `path` for reading only.
    pub(crate) fn open_read_only(path: &Path, location: &Location) -> StoreResult<Db> {
        if !path.is_file() {
            return Err(StoreError::NoStore {
                location: location.clone(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(location, e))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(|e| open_error(location, e))?;
        // Reading the schema proves the file is a database at all, so "not a
        // database" surfaces here rather than in the first query.
        conn.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))
            .map_err(|e| open_error(location, e))?;
        Ok(Db {
            conn,
            location: location.clone(),
            audit: None,
        })
    }

    /// Where the store lives.
    pub(crate) fn location(&self) -> &Location {
        &self.location
    }

    /// Runs `f` in one IMMEDIATE transaction, retrying the whole transaction
    /// while another process holds the write lock. `f` may run more than once.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnMut(&Transaction) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.transact(true, f)
    }

    /// Like [`Db::write`], for a transaction that runs the caller's code
    /// (a key rotation's re-encryption, a settings change): its errors, of
    /// the caller's type, end the transaction as they are.
    pub(crate) fn write_with<T, E: From<StoreError>>(
        &mut self,
        f: impl FnMut(&Transaction) -> Result<T, E>,
    ) -> Result<T, E> {
        self.transact(true, f)
    }

    /// Like [`Db::write`], but with `dry_run` the transaction is rolled
    /// back: what a change would do, computed against the real data under
    /// the write lock.
    pub(crate) fn write_or_rehearse<T>(
        &mut self,
        dry_run: bool,
        f: impl FnMut(&Transaction) -> StoreResult<T>,
    ) -> StoreResult<T> {
        self.transact(!dry_run, f)
    }

    fn transact<T, E: From<StoreError>>(
        &mut self,
        commit: bool,
        mut f: impl FnMut(&Transaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        let audit = self.audit.take();
        loop {
            let attempt = (|| {
                let tx = self
                    .conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(Retry::from_sqlite)?;
                let value = f(&tx).map_err(Retry::Fatal)?;
                if commit {
                    if let Some(note) = &audit {
                        access::append(&tx, note).map_err(Retry::from_sqlite)?;
                    }
                    tx.commit().map_err(Retry::from_sqlite)?;
                }
                Ok(value)
            })();
            match attempt {
                Ok(v) => return Ok(v),
                Err(Retry::Busy(e)) if started.elapsed() < WRITE_LOCK_PATIENCE => {
                    tracing::debug!("store busy ({e}), retrying the transaction");
                    std::thread::sleep(
                        pause + Duration::from_millis(fastrand::u64(0..=pause.as_millis() as u64)),
                    );
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Err(Retry::Busy(e)) => {
                    return Err(StoreError::Busy {
                        waited: WRITE_LOCK_PATIENCE,
                        source: Box::new(e),
                    }
                    .into());
                }
                Err(Retry::Fatal(e)) => return Err(e),
            }
        }
    }

    /// A read-only view for queries; reads never block writers in WAL mode.
    pub(crate) fn read(&self) -> &Connection {
        &self.conn
    }

    /// Runs SQLite's integrity and foreign-key checks; returns the problems found.
    pub(crate) fn check(&self) -> StoreResult<Vec<String>> {
        let mut problems = Vec::new();
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        for row in rows {
            let line = row?;
            if line != "ok" {
                problems.push(line);
            }
        }
        let mut stmt = self.conn.prepare("PRAGMA foreign_key_check")?;
        let rows = stmt.query_map([], |r| {
            Ok(format!(
                "foreign key violation in {} row {}",
                r.get::<_, String>(0)?,
                r.get::<_, Option<i64>>(1)?
                    .map_or("?".into(), |v| v.to_string())
            ))
        })?;
        for row in rows {
            problems.push(row?);
        }
        problems.extend(self.row_problems()?);
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version as usize != schema_version() {
            problems.push(format!(
                "schema version {version}, expected {}",
                schema_version()
            ));
        }
        Ok(problems)
    }

    /// Rows that break the schema's rules (a status or region outside its
    /// set, a value of the wrong type, an identifier of the wrong shape) and
    /// that the commands reading them would fail on; each named by table
    /// and row id. SQLite's own checks report such rows without naming them,
    /// or (a BLOB in a text column) not at all.
    fn row_problems(&self) -> StoreResult<Vec<String>> {
        let mut problems = Vec::new();
        for (table, key, rule, what) in ROW_RULES {
            let sql = format!("SELECT CAST({key} AS TEXT) FROM {table} WHERE NOT ({rule})");
            let mut stmt = self.conn.prepare(&sql)?;
            let rows = stmt.query_map([], |r| r.get::<_, Option<String>>(0))?;
            for row in rows {
                let id = row?.unwrap_or_default();
                problems.push(format!(
                    "{table} row {}: {what}",
                    crate::domain::printable(&id)
                ));
            }
        }
        for (table, key, columns) in TIME_COLUMNS {
            for column in *columns {
                let sql = format!(
                    "SELECT CAST({key} AS TEXT), CAST({column} AS TEXT) FROM {table}
                     WHERE {column} IS NOT NULL"
                );
                let mut stmt = self.conn.prepare(&sql)?;
                let rows = stmt.query_map([], |r| {
                    Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
                })?;
                for row in rows {
                    let (id, value) = row?;
                    if crate::domain::parse_time(&value).is_none() {
                        problems.push(format!(
                            "{table} row {}: {column} is not an RFC 3339 time",
                            crate::domain::printable(&id.unwrap_or_default())
                        ));
                    }
                }
            }
        }
        // What the commands themselves decode: a row that passes the rules
        // above but still cannot be read (an instance ID of the wrong shape).
        let ids: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id FROM amc_instances WHERE typeof(id) = 'text'")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for id in ids {
            let Ok(row_id) = id.parse::<crate::domain::RowId>() else {
                problems.push(format!(
                    "amc_instances row {}: the id is not a UUID",
                    crate::domain::printable(&id)
                ));
                continue;
            };
            if let Err(e) = self.instance(row_id) {
                problems.push(format!(
                    "amc_instances row {id}: cannot be read: {}",
                    crate::error::Error::from(e).message
                ));
            }
        }
        problems.dedup();
        Ok(problems)
    }

    /// Writes a consistent copy of the store to `dest` with SQLite's online
    /// backup API, while other processes may keep writing. The file is
    /// created exclusively (never through a symlink, never over an existing
    /// file) and compacted, so it holds no deleted content.
    pub(crate) fn backup(&self, dest: &Path) -> StoreResult<()> {
        crate::store::create_backup_file(dest)?;
        let result = (|| {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW;
            let mut target = Connection::open_with_flags(dest, flags)?;
            let backup = rusqlite::backup::Backup::new(&self.conn, &mut target)?;
            backup.run_to_completion(256, Duration::from_millis(5), None)?;
            drop(backup);
            // A backup is one self-contained file, not a WAL pair.
            target.pragma_update(None, "journal_mode", "DELETE")?;
            // A store from before secure deletion may still hold deleted
            // rows in its free pages; the copy does not.
            target.execute_batch("VACUUM")?;
            Ok::<_, rusqlite::Error>(())
        })();
        result.map_err(|e| {
            let _ = std::fs::remove_file(dest);
            StoreError::Backup {
                dest: dest.to_owned(),
                reason: BackupFailure::Copy(Box::new(e)),
            }
        })
    }
}

/// The rules [`Db::row_problems`] checks: table, the column naming a
/// row, the condition every row must meet, and what a failure means.
const ROW_RULES: &[(&str, &str, &str, &str)] = &[
    (
        "users",
        "id",
        "typeof(id) = 'text' AND typeof(name) = 'text' AND length(name) BETWEEN 1 AND 64",
        "the id or name is not text of 1 to 64 characters",
    ),
    (
        "amc_accounts",
        "id",
        "typeof(id) = 'text' AND typeof(account_id) = 'text' AND typeof(account_name) = 'text'
         AND typeof(country_code) = 'text' AND typeof(marketplace_id) = 'text'",
        "a value that must be text is not",
    ),
    (
        "amc_instances",
        "id",
        "typeof(id) = 'text' AND typeof(instance_id) = 'text' AND typeof(name) = 'text'
         AND typeof(description) IN ('text', 'null') AND typeof(api_endpoint) IN ('text', 'null')
         AND typeof(health_error) IN ('text', 'null')",
        "a value that must be text is not",
    ),
    (
        "amc_instances",
        "id",
        "region IN ('na', 'eu', 'fe')",
        "the region is not na, eu or fe",
    ),
    (
        "amc_instances",
        "id",
        "status IN ('PENDING', 'ACTIVE', 'INACTIVE', 'ERROR')",
        "the status is not PENDING, ACTIVE, INACTIVE or ERROR",
    ),
    (
        "amc_instances",
        "id",
        "is_active IN (0, 1) AND (status = 'INACTIVE') = (is_active = 0)",
        "is_active does not agree with the status",
    ),
    (
        "amc_instances",
        "id",
        "health_status IS NULL OR health_status IN ('HEALTHY', 'UNHEALTHY', 'ERROR')",
        "the health status is not HEALTHY, UNHEALTHY or ERROR",
    ),
    (
        "instance_brands",
        "instance_id",
        "typeof(brand_name) = 'text'",
        "a brand name is not text",
    ),
    (
        "health_checks",
        "id",
        "status IN ('HEALTHY', 'UNHEALTHY', 'ERROR')",
        "the status is not HEALTHY, UNHEALTHY or ERROR",
    ),
    (
        "health_checks",
        "id",
        "typeof(error) IN ('text', 'null')",
        "the error is not text",
    ),
    (
        "credentials",
        "user_id || '/' || profile",
        "region IN ('na', 'eu', 'fe') AND typeof(client_id) = 'text'
         AND typeof(client_secret_enc) = 'text' AND typeof(refresh_token_enc) = 'text'",
        "the region is not na, eu or fe, or a value that must be text is not",
    ),
];

/// The timestamp columns [`Db::row_problems`] reads back: table, the
/// column naming a row, the columns.
const TIME_COLUMNS: &[(&str, &str, &[&str])] = &[
    ("users", "id", &["created_at"]),
    ("amc_accounts", "id", &["created_at", "updated_at"]),
    (
        "amc_instances",
        "id",
        &["created_at", "updated_at", "last_health_check"],
    ),
    ("instance_brands", "instance_id", &["created_at"]),
    ("health_checks", "id", &["checked_at"]),
    (
        "credentials",
        "user_id || '/' || profile",
        &["access_token_expires", "created_at", "updated_at"],
    ),
    (
        "workflows",
        "instance_id || '/' || workflow_id",
        &["synced_at"],
    ),
    (
        "workflow_executions",
        "instance_id || '/' || execution_id",
        &["created_at", "updated_at", "synced_at"],
    ),
    (
        "workflow_schedules",
        "instance_id || '/' || schedule_id",
        &["synced_at"],
    ),
    ("usage_syncs", "instance_id", &["synced_at", "window_start"]),
];

enum Retry<E> {
    Busy(rusqlite::Error),
    Fatal(E),
}

impl<E: From<StoreError>> Retry<E> {
    fn from_sqlite(e: rusqlite::Error) -> Self {
        if is_busy(&e) {
            Retry::Busy(e)
        } else {
            Retry::Fatal(StoreError::from(e).into())
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

/// Applies the pending migrations, waiting while another process holds the
/// write lock (it may be migrating the same store right now).
fn migrate(conn: &mut Connection) -> std::result::Result<(), rusqlite_migration::Error> {
    let started = Instant::now();
    loop {
        match migrations().to_latest(conn) {
            Err(rusqlite_migration::Error::RusqliteError { err, .. })
                if is_busy(&err) && started.elapsed() < WRITE_LOCK_PATIENCE =>
            {
                std::thread::sleep(Duration::from_millis(fastrand::u64(5..50)));
            }
            other => return other,
        }
    }
}

/// Retries a one-statement operation while the database is busy.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let started = Instant::now();
    loop {
        match f() {
            Err(e) if is_busy(&e) && started.elapsed() < WRITE_LOCK_PATIENCE => {
                std::thread::sleep(Duration::from_millis(fastrand::u64(5..50)));
            }
            other => return other,
        }
    }
}

fn open_error(location: &Location, e: rusqlite::Error) -> StoreError {
    StoreError::Open {
        location: location.clone(),
        source: Box::new(e),
    }
}

/// Whether `e` is a UNIQUE constraint violation.
pub(crate) fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// A reference as the store writes row ids: a UUID in any of the forms
/// users paste (upper case, braces, `urn:uuid:`) becomes the lower-case
/// hyphenated text of the `id` columns; anything else is kept as it is.
pub(crate) fn canonical_id(reference: &str) -> String {
    reference
        .parse::<crate::domain::RowId>()
        .map_or_else(|_| reference.to_owned(), |id| id.to_string())
}

impl rusqlite::types::ToSql for crate::domain::RowId {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::from(self.to_string()))
    }
}

impl rusqlite::types::FromSql for crate::domain::RowId {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        let s = v.as_str()?;
        s.parse()
            .map_err(|e| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().expect("migrations validate");
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let location = Location::Sqlite(path.clone());
        drop(Db::open(&path, &location).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        let err = Db::open(&path, &location).err().expect("refused");
        assert!(
            matches!(
                err,
                StoreError::SchemaTooNew {
                    found: 99,
                    supported,
                    ..
                } if supported == schema_version()
            ),
            "{err}"
        );
        let err = crate::error::Error::from(err);
        assert_eq!(err.kind, crate::error::Kind::Store);
        assert!(err.message.contains("newer"), "{}", err.message);
    }
}
