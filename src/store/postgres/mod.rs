//! The PostgreSQL backend: the team store. Every SQL statement for it lives
//! below this module, one file per table family, as for SQLite.
//!
//! The schema uses PostgreSQL's own types (`uuid`, `timestamptz`,
//! `boolean`, `bigint`); rows come back as the same domain records the
//! SQLite backend returns, so commands print the same bytes from either.
//!
//! Concurrency: every write is one SERIALIZABLE transaction run through
//! [`Db::write`], which runs the whole transaction again when PostgreSQL
//! reports a serialization failure or a deadlock, so those never reach a
//! user. Reads run outside transactions, each one statement.
//!
//! Connections are opened with a bounded connect timeout, and a lost server
//! (down, restarted, cut off) is reported as [`StoreError::Lost`], naming
//! the location (host, port, user, database: never the password).

mod access;
mod accounts;
mod copy;
mod credentials;
mod decode;
mod discovery;
mod health;
mod instances;
mod settings;
mod tls;
mod usage;
mod users;

use std::cell::RefCell;
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::{Client, IsolationLevel, Transaction};
use secrecy::ExposeSecret;

use super::location::{PgTarget, SslMode};
use super::{Location, StoreError, StoreResult};
use crate::domain::AuditNote;

/// The schema, one numbered file per version. Never edit or remove an entry:
/// released stores were migrated with it.
const MIGRATIONS: &[&str] = &[
    include_str!("../../../migrations/postgres/0001_init.sql"),
    include_str!("../../../migrations/postgres/0002_sharing.sql"),
];

/// The schema version this binary writes.
pub fn schema_version() -> usize {
    MIGRATIONS.len()
}

/// How long opening a connection may take before the server counts as
/// unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a writer keeps retrying a transaction that conflicts with others.
const CONFLICT_PATIENCE: Duration = Duration::from_secs(60);

/// The tables holding users' data, each under row security (`db check`
/// says when one is not).
const SECURED_TABLES: &[&str] = &[
    "users",
    "amc_accounts",
    "amc_instances",
    "instance_brands",
    "health_checks",
    "credentials",
    "instance_shares",
    "workflows",
    "workflow_executions",
    "workflow_schedules",
    "usage_syncs",
    "audit_log",
];

/// The advisory lock `db migrate` holds, so that one client migrates at a time.
const MIGRATION_LOCK: i64 = 0x616d_6363_746c; // "amcctl"

/// An open PostgreSQL store: one connection.
pub(crate) struct Db {
    // Queries need the client mutably; the store's readers take `&self`.
    // `None` only while the store is dropped (see the `Drop`).
    client: RefCell<Option<Client>>,
    location: Location,
    /// The audit entry the next committed write appends (see
    /// [`crate::store::Store::audited`]). Boxed: the store is an enum of
    /// the backends, which should not grow by a note's size.
    audit: RefCell<Option<Box<AuditNote>>>,
}

impl Db {
    /// Connects to the database at `target` and checks that its schema is
    /// the one this binary writes: an older one is exit 8 naming
    /// `amcctl db migrate`, a newer one exit 8 too.
    pub(crate) fn open(target: &PgTarget, location: &Location) -> StoreResult<Db> {
        let (client, found) = off_runtime(|| {
            let mut client = connect(target, location)?;
            let found = stored_version(&mut client).map_err(|e| {
                // Only the users an administrator added may read even the
                // schema's version.
                if denial(&e).is_some() {
                    StoreError::NotMember(target.user.clone())
                } else {
                    lost_or(location, e)
                }
            })?;
            Ok::<_, StoreError>((client, found))
        })?;
        let supported = schema_version();
        if found > supported {
            return Err(StoreError::SchemaTooNew {
                location: location.clone(),
                found,
                supported,
            });
        }
        if found < supported {
            return Err(StoreError::SchemaTooOld {
                location: location.clone(),
                found,
                supported,
            });
        }
        Ok(Db {
            client: RefCell::new(Some(client)),
            location: location.clone(),
            audit: RefCell::new(None),
        })
    }

    /// Brings the schema at `target` up to date under an advisory lock, so
    /// that of several clients migrating at once one does the work and the
    /// others find it done. Returns the versions before and after.
    pub(crate) fn migrate(target: &PgTarget, location: &Location) -> StoreResult<(usize, usize)> {
        let mut client = connect(target, location)?;
        let fail = |e: postgres::Error| match lost_or(location, e) {
            StoreError::Backend(source) => StoreError::Migrate {
                location: location.clone(),
                source,
            },
            other => other,
        };
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .map_err(fail)?;
        let result = (|| {
            let before = stored_version(&mut client)?;
            if before > schema_version() {
                return Ok(Err(before));
            }
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(before) {
                let mut tx = client.transaction()?;
                tx.batch_execute(sql)?;
                tx.execute(
                    "INSERT INTO amcctl_schema_migrations (version, applied_at) VALUES ($1, now())",
                    &[&(i as i32 + 1)],
                )?;
                tx.commit()?;
            }
            Ok(Ok(before))
        })();
        // The lock goes with the connection anyway; unlocking is a courtesy.
        let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
        match result.map_err(fail)? {
            Ok(before) => Ok((before, schema_version())),
            Err(found) => Err(StoreError::SchemaTooNew {
                location: location.clone(),
                found,
                supported: schema_version(),
            }),
        }
    }

    /// Where the store lives.
    pub(crate) fn location(&self) -> &Location {
        &self.location
    }

    /// Runs `f` with the connection, for reads (each statement on its own).
    pub(crate) fn read<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, postgres::Error> + Send,
    ) -> StoreResult<T> {
        let mut client = self.client.borrow_mut();
        let client = client.as_mut().ok_or(StoreError::Vanished("connection"))?;
        off_runtime(move || f(client)).map_err(|e| lost_or(&self.location, e))
    }

    /// Runs `f` in one SERIALIZABLE transaction and commits it, running the
    /// whole transaction again when it conflicted with another (a
    /// serialization failure or a deadlock). `f` may run more than once.
    pub(crate) fn write<T: Send>(
        &self,
        f: impl FnMut(&mut Transaction) -> StoreResult<T> + Send,
    ) -> StoreResult<T> {
        self.transact(true, f)
    }

    /// Like [`Db::write`], for a transaction that runs the caller's code
    /// (a key rotation's re-encryption, a settings change): its errors, of
    /// the caller's type, end the transaction as they are.
    pub(crate) fn write_with<T: Send, E: From<StoreError> + super::Retryable + Send>(
        &self,
        f: impl FnMut(&mut Transaction) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        self.transact(true, f)
    }

    /// Like [`Db::write`], but with `dry_run` the transaction is rolled
    /// back: what a change would do, computed against the real data.
    pub(crate) fn write_or_rehearse<T: Send>(
        &self,
        dry_run: bool,
        f: impl FnMut(&mut Transaction) -> StoreResult<T> + Send,
    ) -> StoreResult<T> {
        self.transact(!dry_run, f)
    }

    fn transact<T: Send, E: From<StoreError> + super::Retryable + Send>(
        &self,
        commit: bool,
        f: impl FnMut(&mut Transaction) -> Result<T, E> + Send,
    ) -> Result<T, E> {
        let mut client = self.client.borrow_mut();
        let client = client
            .as_mut()
            .ok_or_else(|| E::from(StoreError::Vanished("connection")))?;
        let location = &self.location;
        // Taken once: every attempt of the transaction appends the same
        // entry, and a failed or rehearsed write leaves it unused.
        let audit = self.audit.borrow_mut().take();
        off_runtime(move || Self::transact_on(client, location, commit, audit.as_deref(), f))
    }

    fn transact_on<T, E: From<StoreError> + super::Retryable>(
        client: &mut Client,
        location: &Location,
        commit: bool,
        audit: Option<&AuditNote>,
        mut f: impl FnMut(&mut Transaction) -> Result<T, E>,
    ) -> Result<T, E> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            let attempt: Result<T, E> = (|| {
                let mut tx = client
                    .build_transaction()
                    .isolation_level(IsolationLevel::Serializable)
                    .start()
                    .map_err(|e| E::from(lost_or(location, e)))?;
                let value = f(&mut tx)?;
                if commit {
                    if let Some(note) = audit {
                        access::append(&mut tx, note).map_err(|e| E::from(lost_or(location, e)))?;
                    }
                    tx.commit().map_err(|e| E::from(lost_or(location, e)))?;
                }
                Ok(value)
            })();
            match attempt {
                Err(e) if e.is_retryable() && started.elapsed() < CONFLICT_PATIENCE => {
                    tracing::debug!("transaction conflicted with another; running it again");
                    std::thread::sleep(
                        pause + Duration::from_millis(fastrand::u64(0..=pause.as_millis() as u64)),
                    );
                    pause = (pause * 2).min(Duration::from_millis(250));
                }
                Err(e) if e.is_retryable() => {
                    return Err(StoreError::Busy {
                        waited: CONFLICT_PATIENCE,
                        source: "transactions kept conflicting with other clients'".into(),
                    }
                    .into());
                }
                // A statement of `f` failed because the server went away:
                // say where, whatever `f` made of the driver's error.
                Err(_) if client.is_closed() => {
                    return Err(StoreError::Lost {
                        location: location.clone(),
                        source: "the server closed the connection".into(),
                    }
                    .into());
                }
                Err(e) => return Err(e),
                Ok(v) => return Ok(v),
            }
        }
    }

    /// Checks the schema version and that every constraint is in force.
    pub(crate) fn check(&self) -> StoreResult<Vec<String>> {
        let mut problems = Vec::new();
        let found = self.read(stored_version)?;
        if found != schema_version() {
            problems.push(format!(
                "schema version {found}, expected {}",
                schema_version()
            ));
        }
        let unvalidated = self.read(|c| {
            c.query(
                "SELECT conrelid::regclass::text, conname FROM pg_constraint
                 WHERE NOT convalidated AND connamespace = current_schema()::regnamespace
                 ORDER BY 1, 2",
                &[],
            )
        })?;
        for row in unvalidated {
            problems.push(format!(
                "constraint {} of {} is not validated",
                row.get::<_, String>(1),
                row.get::<_, String>(0)
            ));
        }
        // Sharing is enforced by the server only while every table of a
        // user's data has row security on and its policies in place.
        let tables: Vec<&str> = SECURED_TABLES.to_vec();
        let secured = self.read(move |c| {
            c.query(
                "SELECT t.name, c.relrowsecurity,
                        EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
                 FROM unnest($1::text[]) AS t(name)
                 LEFT JOIN pg_class c ON c.relname = t.name
                      AND c.relnamespace = current_schema()::regnamespace
                 ORDER BY t.name",
                &[&tables],
            )
        })?;
        for row in secured {
            let table: String = row.try_get(0)?;
            let on: Option<bool> = row.try_get(1)?;
            let policies: Option<bool> = row.try_get(2)?;
            match (on, policies) {
                (None, _) => problems.push(format!("table {table} is missing")),
                (Some(false), _) => {
                    problems.push(format!("row security is not enabled on table {table}"))
                }
                (Some(true), Some(false)) => {
                    problems.push(format!("table {table} has no row security policy"))
                }
                _ => {}
            }
        }
        Ok(problems)
    }
}

/// Closing the connection blocks like any call of the client: off the
/// caller's runtime, if it has one.
impl Drop for Db {
    fn drop(&mut self) {
        if let Some(client) = self.client.get_mut().take() {
            off_runtime(move || drop(client));
        }
    }
}

/// Runs `f` where the blocking client may block: the client drives its
/// connection with a runtime of its own, which cannot run inside another.
/// Commands call the store from within the AMC client's runtime (a token
/// cached mid-check, a usage sync saving as results arrive), so there `f`
/// runs on a thread of its own while the caller waits.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// Opens a connection to `target`, within [`CONNECT_TIMEOUT`].
fn connect(target: &PgTarget, location: &Location) -> StoreResult<Client> {
    let mut config = postgres::Config::new();
    config
        .user(&target.user)
        .host(&target.host)
        .port(target.port)
        .dbname(&target.dbname)
        .application_name("amcctl")
        // Row security turns the per-instance subqueries (brands) into
        // plans the planner prices high enough to compile with JIT, which
        // then costs more than the whole query: 0.44 s of a 10,000-instance
        // list. amcctl's statements are small; they run better without it.
        .options("-c jit=off")
        .connect_timeout(CONNECT_TIMEOUT)
        .keepalives_idle(Duration::from_secs(30));
    if let Some(password) = &target.password {
        config.password(password.expose_secret());
    }
    let unreachable = |e: postgres::Error| StoreError::Unreachable {
        location: location.clone(),
        source: Box::new(e),
    };
    match target.sslmode {
        SslMode::Disable => {
            config.ssl_mode(postgres::config::SslMode::Disable);
            config.connect(postgres::NoTls).map_err(unreachable)
        }
        mode => {
            config.ssl_mode(if mode == SslMode::Prefer {
                postgres::config::SslMode::Prefer
            } else {
                postgres::config::SslMode::Require
            });
            let tls = tls::connector(mode == SslMode::VerifyFull).map_err(|e| {
                StoreError::Unreachable {
                    location: location.clone(),
                    source: e.into(),
                }
            })?;
            config.connect(tls).map_err(unreachable)
        }
    }
}

/// The schema version recorded in the database; 0 when it has none yet.
fn stored_version(client: &mut Client) -> Result<usize, postgres::Error> {
    match client.query_one(
        "SELECT coalesce(max(version), 0) FROM amcctl_schema_migrations",
        &[],
    ) {
        Ok(row) => Ok(usize::try_from(row.get::<_, i32>(0)).unwrap_or(0)),
        Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(0),
        Err(e) => Err(e),
    }
}

/// A driver error as a store error: a lost connection names the location.
pub(crate) fn lost_or(location: &Location, e: postgres::Error) -> StoreError {
    if is_lost(&e) {
        StoreError::Lost {
            location: location.clone(),
            source: Box::new(e),
        }
    } else {
        StoreError::from(e)
    }
}

/// Whether `e` means the connection is gone: closed, an I/O failure, or
/// the server shutting down.
fn is_lost(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    if let Some(code) = e.code() {
        return matches!(
            *code,
            SqlState::ADMIN_SHUTDOWN | SqlState::CRASH_SHUTDOWN | SqlState::CANNOT_CONNECT_NOW
        ) || code.code().starts_with("08");
    }
    // No SQLSTATE: not the server's answer, so the transport's failure.
    std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
}

/// Whether `e` is PostgreSQL asking for the transaction to be run again.
pub(crate) fn is_conflict(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(&SqlState::T_R_SERIALIZATION_FAILURE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    )
}

/// The server's message when `e` is a refusal of the login: a missing
/// privilege, or a row its row security forbids it to write (both
/// `insufficient_privilege`, 42501).
pub(crate) fn denial(e: &postgres::Error) -> Option<String> {
    e.as_db_error()
        .filter(|db| *db.code() == SqlState::INSUFFICIENT_PRIVILEGE)
        .map(|db| db.message().to_owned())
}

/// Whether `e` is a UNIQUE or primary-key violation.
pub(crate) fn is_unique_violation(e: &postgres::Error) -> bool {
    e.code() == Some(&SqlState::UNIQUE_VIOLATION)
}

/// Rows of `sql` mapped by `f`, for the families' readers.
pub(crate) fn collect<T>(
    rows: Vec<postgres::Row>,
    f: impl Fn(&postgres::Row) -> StoreResult<T>,
) -> StoreResult<Vec<T>> {
    rows.iter().map(f).collect()
}

/// An unsigned count or duration as stored (`bigint`).
pub(crate) fn unsigned(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// An unsigned count or duration as stored: `bigint`, saturating.
pub(crate) fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Row ids are bound as `uuid`.
impl postgres::types::ToSql for crate::domain::RowId {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.0.to_sql(ty, out)
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        <uuid::Uuid as postgres::types::ToSql>::accepts(ty)
    }

    postgres::types::to_sql_checked!();
}

impl<'a> postgres::types::FromSql<'a> for crate::domain::RowId {
    fn from_sql(
        ty: &postgres::types::Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        uuid::Uuid::from_sql(ty, raw).map(crate::domain::RowId)
    }

    fn accepts(ty: &postgres::types::Type) -> bool {
        <uuid::Uuid as postgres::types::FromSql>::accepts(ty)
    }
}
