//! `amcctl db`: where the store is, whether it is sound, its schema, and a
//! consistent copy of it.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;

use super::Ctx;
use crate::error::{Error, Result};
use crate::store::{CopyError, Location, Store, schema_version};

/// Store commands.
#[derive(Debug, Subcommand)]
pub enum DbCmd {
    /// Print where the store is
    Path,
    /// Check the store: integrity and foreign keys (SQLite), constraints and row security (PostgreSQL), schema version (exit 8 on problems)
    Check,
    /// Copy the store to FILE, consistently, while other amcctl processes keep working
    Backup {
        /// The new file (must not exist)
        file: PathBuf,
    },
    /// Bring the store's schema up to date (the team store is migrated only by this)
    Migrate,
    /// Copy every row of the store into another, empty store, in one transaction there
    Copy {
        /// The destination: a `postgres://` URL (migrated with `db migrate`, no
        /// password: PGPASSWORD or ~/.pgpass) or a SQLite file's path
        #[arg(long, value_name = "URL|PATH")]
        to: PathBuf,
    },
}

/// What `db migrate` did.
#[derive(Debug, Serialize)]
struct MigrateReport {
    path: String,
    from_version: usize,
    to_version: usize,
}

/// What `db check` found.
#[derive(Debug, Serialize)]
struct CheckReport {
    path: String,
    ok: bool,
    problems: Vec<String>,
}

/// What `db copy` wrote: the rows of each table, in the order copied.
#[derive(Debug, Serialize)]
struct CopyReport {
    source: String,
    destination: String,
    rows: u64,
    tables: serde_json::Map<String, serde_json::Value>,
}

/// What `db backup` wrote.
#[derive(Debug, Serialize)]
struct BackupReport {
    source: String,
    backup: String,
    bytes: u64,
}

pub(super) fn run(ctx: &mut Ctx, cmd: DbCmd) -> Result<()> {
    match cmd {
        DbCmd::Path => {
            let path = ctx.paths.db.to_string();
            ctx.out.value("path", &path)
        }
        DbCmd::Check => check(ctx),
        DbCmd::Backup { file } => backup(ctx, &file),
        DbCmd::Migrate => migrate(ctx),
        DbCmd::Copy { to } => copy(ctx, &to),
    }
}

fn migrate(ctx: &mut Ctx) -> Result<()> {
    let (from, to) = Store::migrate(&ctx.paths.db)?;
    let path = ctx.paths.db.to_string();
    let line = if from == to {
        format!("{path}: schema version {to}, up to date")
    } else {
        format!("{path}: migrated from schema version {from} to {to}")
    };
    ctx.out.line_or(
        &line,
        &MigrateReport {
            path,
            from_version: from,
            to_version: to,
        },
    )
}

fn check(ctx: &mut Ctx) -> Result<()> {
    // Read-only: a check must not migrate or otherwise change what it checks,
    // so an old schema is reported, not silently upgraded.
    let store = Store::open_read_only(&ctx.paths.db)?;
    let problems = store.check()?;
    let path = ctx.paths.db.to_string();
    let report = CheckReport {
        path: path.clone(),
        ok: problems.is_empty(),
        problems: problems.clone(),
    };
    if problems.is_empty() {
        let checked = match &ctx.paths.db {
            Location::Sqlite(_) => "integrity, foreign keys",
            Location::Postgres(_) => "constraints, row security",
        };
        let line = format!(
            "{path}: ok ({checked}, schema version {})",
            schema_version(&ctx.paths.db)
        );
        return ctx.out.line_or(&line, &report);
    }
    if ctx.out.format.is_machine() {
        ctx.out.one(&report)?;
    }
    Err(Error::store(format!(
        "the store {path} has {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    ))
    .with_hint("restore a backup (`amcctl db backup` makes one), or open a fresh store with --db"))
}

fn backup(ctx: &mut Ctx, file: &std::path::Path) -> Result<()> {
    if file.exists() {
        return Err(Error::conflict(format!(
            "{} already exists; amcctl does not overwrite a file with a backup",
            file.display()
        ))
        .with_hint("choose a new file name, or remove the old one first"));
    }
    let store = Store::open_read_only(&ctx.paths.db)?;
    store.backup(file)?;
    let bytes = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    ctx.out.info(format!(
        "Backed up {} to {} ({bytes} bytes)",
        ctx.paths.db,
        file.display()
    ));
    if ctx.out.format.is_machine() {
        ctx.out.one(&BackupReport {
            source: ctx.paths.db.to_string(),
            backup: file.display().to_string(),
            bytes,
        })?;
    }
    Ok(())
}

fn copy(ctx: &mut Ctx, to: &std::path::Path) -> Result<()> {
    let dest =
        Location::parse(to, false).map_err(|e| Error::usage(format!("invalid --to: {e}")))?;
    let dest = crate::config::with_db_password(dest, &ctx.env);
    // Read-only, as for a backup: copying changes nothing in the source.
    let store = Store::open_read_only(&ctx.paths.db)?;
    let copied = store.copy_to(&dest).map_err(|e| match e {
        CopyError::NotEmpty { location, table } => Error::conflict(format!(
            "the store {location} is not empty (table {table} has rows); \
             amcctl copies only into an empty store"
        ))
        .with_hint("copy into a new SQLite file, or a freshly migrated database"),
        CopyError::Store(e) => Error::from(e),
    })?;
    let report = CopyReport {
        source: ctx.paths.db.to_string(),
        destination: dest.to_string(),
        rows: copied.rows(),
        tables: copied
            .tables
            .iter()
            .map(|(name, n)| ((*name).to_owned(), serde_json::Value::from(*n)))
            .collect(),
    };
    let line = format!(
        "Copied {} rows in {} tables from {} to {}",
        report.rows,
        copied.tables.len(),
        report.source,
        report.destination
    );
    ctx.out.line_or(&line, &report)
}
