//! Copying a whole store into another, of either backend (`db copy`, and
//! `db backup` of the team store).
//!
//! The two schemas hold the same tables and columns in different types
//! (SQLite's text ids and times, PostgreSQL's `uuid` and `timestamptz`),
//! so a copy goes through one typed row format, [`Value`], rather than
//! through the domain records: those leave columns out (ciphertexts, the
//! ids of history rows) that a copy must carry over exactly. [`TABLES`] is
//! the one list of what is copied; each backend reads a table into
//! [`Value`]s and writes them in its own types.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::{Location, Retryable, Store, StoreError, StoreResult};

/// The type a column holds, which says how each backend stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A UUID: text in SQLite, `uuid` in PostgreSQL.
    Uuid,
    /// Text in both.
    Text,
    /// An instant: RFC 3339 text in SQLite, `timestamptz` in PostgreSQL.
    Time,
    /// A flag: 0 or 1 in SQLite, `boolean` in PostgreSQL.
    Bool,
    /// A 64-bit integer (`bigint`).
    Int,
    /// A 32-bit integer (`integer`): SQLite holds any 64-bit value there,
    /// which PostgreSQL would refuse, so it is checked on reading.
    Int32,
}

/// One column of a copied table.
#[derive(Debug)]
pub(crate) struct Column {
    /// Its name, the same in both schemas.
    pub(crate) name: &'static str,
    /// What it holds.
    pub(crate) kind: Kind,
    /// For a column only the SQLite schema stores: the expression
    /// PostgreSQL computes its value with instead (a copy from the team
    /// store reads it; a copy into it leaves it out).
    pub(crate) pg_derived: Option<&'static str>,
}

/// One copied table.
#[derive(Debug)]
pub(crate) struct Table {
    /// Its name, the same in both schemas.
    pub(crate) name: &'static str,
    /// Its columns, in the order of the schemas.
    pub(crate) columns: &'static [Column],
    /// Its primary key: rows are read in this order, so a copy is the
    /// same file every time and indexes fill in order.
    pub(crate) key: &'static str,
}

impl Table {
    /// The columns as a select list or an insert's column list.
    pub(crate) fn column_list(&self) -> String {
        let names: Vec<&str> = self.columns.iter().map(|c| c.name).collect();
        names.join(", ")
    }

    /// An expression naming a row by its key as text (the parts of a
    /// composite key joined by `/`), the same in both dialects: what an
    /// unreadable value's message names the row by.
    pub(crate) fn key_text(&self) -> String {
        let parts: Vec<String> = self
            .key
            .split(", ")
            .map(|k| format!("CAST({k} AS TEXT)"))
            .collect();
        parts.join(" || '/' || ")
    }

    /// The query reading the whole table in key order: its columns, then
    /// [`Table::key_text`].
    pub(crate) fn select(&self) -> String {
        self.select_list(self.column_list())
    }

    /// [`Table::select`] for PostgreSQL, where a derived column is its
    /// expression.
    pub(crate) fn pg_select(&self) -> String {
        let exprs: Vec<String> = self
            .columns
            .iter()
            .map(|c| match c.pg_derived {
                Some(expr) => format!("{expr} AS {}", c.name),
                None => c.name.to_owned(),
            })
            .collect();
        self.select_list(exprs.join(", "))
    }

    fn select_list(&self, columns: String) -> String {
        format!(
            // Named, or PostgreSQL finds `ORDER BY id` ambiguous.
            "SELECT {columns}, {} AS row_key FROM {} ORDER BY {}",
            self.key_text(),
            self.name,
            self.key
        )
    }

    /// The columns PostgreSQL stores (all but the derived ones).
    pub(crate) fn pg_stored(&self) -> impl Iterator<Item = (usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.pg_derived.is_none())
    }
}

/// A shorthand for the table list below.
const fn col(name: &'static str, kind: Kind) -> Column {
    Column {
        name,
        kind,
        pg_derived: None,
    }
}

/// Whether a user is an administrator, in the team store: a member of the
/// role `amcctl_admin`. A user copied from a SQLite store may have no
/// database role, which `pg_has_role` would fail on: looked up first.
const PG_IS_ADMIN: &str = "EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = users.name \
                           AND pg_has_role(r.oid, 'amcctl_admin', 'MEMBER'))";

/// Every table of the store, parents before the tables that refer to
/// them, so that rows can be inserted in this order with foreign keys on.
/// PostgreSQL's `amcctl_schema_migrations` is not here: the destination
/// has its own, made by `db migrate`.
pub(crate) const TABLES: &[Table] = &[
    Table {
        name: "users",
        key: "id",
        columns: &[
            col("id", Kind::Uuid),
            col("name", Kind::Text),
            col("created_at", Kind::Time),
            col("default_profile", Kind::Text),
            Column {
                name: "is_admin",
                kind: Kind::Bool,
                pg_derived: Some(PG_IS_ADMIN),
            },
        ],
    },
    Table {
        name: "amc_accounts",
        key: "id",
        columns: &[
            col("id", Kind::Uuid),
            col("account_id", Kind::Text),
            col("account_name", Kind::Text),
            col("advertiser_id", Kind::Text),
            col("country_code", Kind::Text),
            col("marketplace_id", Kind::Text),
            col("created_at", Kind::Time),
            col("updated_at", Kind::Time),
            col("profile", Kind::Text),
        ],
    },
    Table {
        name: "amc_instances",
        key: "id",
        columns: &[
            col("id", Kind::Uuid),
            col("user_id", Kind::Uuid),
            col("instance_id", Kind::Text),
            col("name", Kind::Text),
            col("description", Kind::Text),
            col("region", Kind::Text),
            col("account_id", Kind::Uuid),
            col("is_active", Kind::Bool),
            col("status", Kind::Text),
            col("encrypted_config", Kind::Text),
            col("api_endpoint", Kind::Text),
            col("last_health_check", Kind::Time),
            col("health_status", Kind::Text),
            col("health_error", Kind::Text),
            col("health_latency_ms", Kind::Int),
            col("created_at", Kind::Time),
            col("updated_at", Kind::Time),
            col("instance_type", Kind::Text),
            col("customer_canonical_name", Kind::Text),
            col("data_upload_account_id", Kind::Text),
            col("settings_key_fingerprint", Kind::Text),
        ],
    },
    Table {
        name: "instance_shares",
        key: "instance_id, user_id",
        columns: &[
            col("instance_id", Kind::Uuid),
            col("user_id", Kind::Uuid),
            col("role", Kind::Text),
            col("granted_by", Kind::Text),
            col("created_at", Kind::Time),
        ],
    },
    Table {
        name: "instance_brands",
        key: "instance_id, brand_name",
        columns: &[
            col("instance_id", Kind::Uuid),
            col("brand_name", Kind::Text),
            col("created_at", Kind::Time),
        ],
    },
    Table {
        name: "health_checks",
        key: "id",
        columns: &[
            col("id", Kind::Int),
            col("instance_id", Kind::Uuid),
            col("checked_at", Kind::Time),
            col("status", Kind::Text),
            col("http_status", Kind::Int32),
            col("latency_ms", Kind::Int),
            col("attempts", Kind::Int32),
            col("error", Kind::Text),
        ],
    },
    Table {
        name: "credentials",
        key: "user_id, profile",
        columns: &[
            col("user_id", Kind::Uuid),
            col("profile", Kind::Text),
            col("client_id", Kind::Text),
            col("client_secret_enc", Kind::Text),
            col("refresh_token_enc", Kind::Text),
            col("region", Kind::Text),
            col("access_token_enc", Kind::Text),
            col("access_token_expires", Kind::Time),
            col("created_at", Kind::Time),
            col("updated_at", Kind::Time),
            col("key_fingerprint", Kind::Text),
        ],
    },
    Table {
        name: "workflows",
        key: "instance_id, workflow_id",
        columns: &[
            col("instance_id", Kind::Uuid),
            col("workflow_id", Kind::Text),
            col("sql_query", Kind::Text),
            col("synced_at", Kind::Time),
        ],
    },
    Table {
        name: "workflow_executions",
        key: "instance_id, execution_id",
        columns: &[
            col("instance_id", Kind::Uuid),
            col("execution_id", Kind::Text),
            col("workflow_id", Kind::Text),
            col("status", Kind::Text),
            col("execution_category", Kind::Text),
            col("created_at", Kind::Time),
            col("updated_at", Kind::Time),
            col("duration_s", Kind::Int),
            col("error", Kind::Text),
            col("synced_at", Kind::Time),
        ],
    },
    Table {
        name: "workflow_schedules",
        key: "instance_id, schedule_id",
        columns: &[
            col("instance_id", Kind::Uuid),
            col("schedule_id", Kind::Text),
            col("workflow_id", Kind::Text),
            col("aggregation_period", Kind::Text),
            col("aggregation_hour_utc", Kind::Int32),
            col("enabled", Kind::Bool),
            col("synced_at", Kind::Time),
        ],
    },
    Table {
        name: "usage_syncs",
        key: "instance_id",
        columns: &[
            col("instance_id", Kind::Uuid),
            col("synced_at", Kind::Time),
            col("window_start", Kind::Time),
        ],
    },
    Table {
        name: "audit_log",
        key: "id",
        columns: &[
            col("id", Kind::Int),
            col("at", Kind::Time),
            col("actor", Kind::Text),
            col("command", Kind::Text),
            col("object_kind", Kind::Text),
            col("object_id", Kind::Text),
            col("object_name", Kind::Text),
            col("instance_id", Kind::Uuid),
            col("summary", Kind::Text),
        ],
    },
];

/// One stored value, in the type its column's [`Kind`] says, so that
/// writing it to the other backend cannot fail on a conversion: every
/// check happens when reading, where the table and column are known.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// SQL NULL, in a column of any kind.
    Null,
    /// A [`Kind::Uuid`] value.
    Uuid(uuid::Uuid),
    /// A [`Kind::Text`] value.
    Text(String),
    /// A [`Kind::Time`] value.
    Time(DateTime<Utc>),
    /// A [`Kind::Bool`] value.
    Bool(bool),
    /// A [`Kind::Int`] value.
    Int(i64),
    /// A [`Kind::Int32`] value.
    Int32(i32),
}

/// The rows of one table, as read from the source.
pub(crate) struct TableRows {
    /// The table.
    pub(crate) table: &'static Table,
    /// Its rows, each value in the order of [`Table::columns`].
    pub(crate) rows: Vec<Vec<Value>>,
}

/// Every table of a store, read in one transaction, so that the copy is
/// of one moment even while other clients keep writing.
pub(crate) type Snapshot = Vec<TableRows>;

/// The failure of a value read from the source: names the table, the row
/// (by its key) and the column, so that it can be found and repaired.
pub(crate) fn unreadable(
    table: &Table,
    column: &Column,
    key: &str,
    what: impl std::fmt::Display,
) -> StoreError {
    StoreError::Unreadable(format!(
        "{} row {}: {} holds {what}, which is not {}",
        table.name,
        crate::domain::printable(key),
        column.name,
        match column.kind {
            Kind::Uuid => "a UUID",
            Kind::Text => "text",
            Kind::Time => "an RFC 3339 time",
            Kind::Bool => "0 or 1",
            Kind::Int => "an integer",
            Kind::Int32 => "a 32-bit integer",
        }
    ))
}

/// How many rows of each table a copy wrote, in [`TABLES`]' order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Each table's name and its row count.
    pub tables: Vec<(&'static str, u64)>,
}

impl Copied {
    /// The counts of `snapshot`, which the destination now holds.
    fn of(snapshot: &Snapshot) -> Copied {
        Copied {
            tables: snapshot
                .iter()
                .map(|t| (t.table.name, t.rows.len() as u64))
                .collect(),
        }
    }

    /// Rows in all tables.
    pub fn rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

/// Why a copy did not happen. Kept apart from [`StoreError`]: a
/// destination that already holds rows is a refusal of `db copy`, which
/// no other store operation has.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The destination holds rows (in `table`, the first found): a copy
    /// never merges into, or overwrites, a store.
    #[error("the store {location} is not empty (table {table} has rows)")]
    NotEmpty {
        /// The destination.
        location: Location,
        /// A table that has rows.
        table: &'static str,
    },
    /// Opening, reading or writing a store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A conflict with another client's transaction on the destination may
/// go away when the copy runs again; a full destination never does.
impl Retryable for CopyError {
    fn is_retryable(&self) -> bool {
        matches!(self, CopyError::Store(e) if e.is_retryable())
    }
}

/// The first table of [`TABLES`] that `has_rows` says holds rows: the
/// destination's emptiness test, the same for both backends.
pub(crate) fn first_nonempty<E>(
    mut has_rows: impl FnMut(&'static Table) -> Result<bool, E>,
) -> Result<Option<&'static str>, E> {
    for table in TABLES {
        if has_rows(table)? {
            return Ok(Some(table.name));
        }
    }
    Ok(None)
}

/// [`Store::copy_to`]: into a SQLite file (created when missing), or into
/// a migrated PostgreSQL database.
pub(super) fn copy_to(source: &Store, dest: &Location) -> Result<Copied, CopyError> {
    match dest {
        Location::Sqlite(path) => {
            let fresh = matches!(
                std::fs::symlink_metadata(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound
            );
            copy_into_sqlite(|| source.snapshot(), path, dest, fresh, false)
        }
        Location::Postgres(target) => {
            let db = super::postgres::Db::open(target, dest)?;
            // Refused before the source is read, so a full destination
            // costs nothing; checked again under the copy's lock.
            if let Some(table) = db.first_nonempty()? {
                return Err(CopyError::NotEmpty {
                    location: dest.clone(),
                    table,
                });
            }
            let snapshot = source.snapshot()?;
            db.insert_all(&snapshot)?;
            Ok(Copied::of(&snapshot))
        }
    }
}

/// Copies what `snapshot` reads into the SQLite file at `path`, which the
/// copy made when `fresh`: then it is removed with its journal files when
/// anything fails, so that a failed copy leaves nothing behind. With
/// `single_file` the result is one self-contained file, not a WAL pair (a
/// backup, which is moved and archived alone).
pub(crate) fn copy_into_sqlite(
    snapshot: impl FnOnce() -> StoreResult<Snapshot>,
    path: &Path,
    location: &Location,
    fresh: bool,
    single_file: bool,
) -> Result<Copied, CopyError> {
    let result = (|| {
        let mut db = super::sqlite::Db::open(path, location)?;
        if let Some(table) = db.first_nonempty()? {
            return Err(CopyError::NotEmpty {
                location: location.clone(),
                table,
            });
        }
        let snapshot = snapshot()?;
        db.insert_all(&snapshot, single_file)?;
        Ok(Copied::of(&snapshot))
    })();
    if result.is_err() && fresh {
        remove_sqlite_files(path);
    }
    result
}

/// Removes a SQLite database file and the journal files SQLite keeps next
/// to it; those that are not there are no failure.
pub(crate) fn remove_sqlite_files(path: &Path) {
    let _ = std::fs::remove_file(path);
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

/// Row counts by table name, for tests comparing two stores.
#[cfg(test)]
fn counts(copied: &Copied) -> std::collections::HashMap<&'static str, u64> {
    copied.tables.iter().copied().collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::store::Backend;

    /// The column names of each table in `sql`'s `CREATE TABLE`s, in
    /// order: one column or constraint a line, as the migration writes them.
    fn schema_columns(sql: &str) -> HashMap<String, Vec<String>> {
        let mut tables: HashMap<String, Vec<String>> = HashMap::new();
        let mut current: Option<String> = None;
        for line in sql.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("CREATE TABLE ") {
                let name = rest.split_whitespace().next().unwrap_or_default();
                current = Some(name.to_owned());
                tables.insert(name.to_owned(), Vec::new());
                continue;
            }
            if line.starts_with(')') {
                current = None;
                continue;
            }
            let Some(table) = &current else { continue };
            let first = line.split_whitespace().next().unwrap_or_default();
            let not_a_column = first.is_empty()
                || ["PRIMARY", "UNIQUE", "CHECK", "FOREIGN", "--", "(", "'"]
                    .iter()
                    .any(|w| first.starts_with(w));
            if !not_a_column {
                tables
                    .entry(table.clone())
                    .or_default()
                    .push(first.to_owned());
            }
        }
        tables
    }

    /// The columns of [`TABLES`], as the schemas are compared with them.
    fn expected() -> HashMap<String, Vec<String>> {
        TABLES
            .iter()
            .map(|t| {
                (
                    t.name.to_owned(),
                    t.columns.iter().map(|c| c.name.to_owned()).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn the_table_list_is_the_postgres_schema() {
        let schema = [
            include_str!("../../migrations/postgres/0001_init.sql"),
            include_str!("../../migrations/postgres/0002_sharing.sql"),
        ]
        .join("\n");
        let mut found = schema_columns(&schema);
        found.remove("amcctl_schema_migrations");
        let stored: HashMap<String, Vec<String>> = TABLES
            .iter()
            .map(|t| {
                let names = t.pg_stored().map(|(_, c)| c.name.to_owned()).collect();
                (t.name.to_owned(), names)
            })
            .collect();
        assert_eq!(found, stored);
    }

    #[test]
    fn the_table_list_is_the_sqlite_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let location = Location::Sqlite(path.clone());
        let store = Store::open(&location).unwrap();
        let Backend::Sqlite(db) = &store.backend else {
            panic!("a SQLite store");
        };
        let conn = db.read();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .unwrap();
        let names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut found = HashMap::new();
        for name in names {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT name FROM pragma_table_info('{name}') ORDER BY cid"
                ))
                .unwrap();
            let cols: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            found.insert(name, cols);
        }
        // SQLite's own: the counter of audit_log's AUTOINCREMENT ids.
        found.remove("sqlite_sequence");
        assert_eq!(found, expected());
    }

    #[test]
    fn sqlite_to_sqlite_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let src = Location::Sqlite(dir.path().join("a.db"));
        let mut store = Store::open(&src).unwrap();
        store.ensure_user("alice").unwrap();
        store.add_user("bob", false).unwrap();
        let dest_path = dir.path().join("b.db");
        let dest = Location::Sqlite(dest_path.clone());
        let copied = store.copy_to(&dest).unwrap();
        assert_eq!(counts(&copied)["users"], 2);
        assert_eq!(counts(&copied)["amc_accounts"], 0);
        let again = Store::open(&dest).unwrap();
        assert_eq!(again.snapshot().unwrap().len(), TABLES.len());
        assert_eq!(
            again.snapshot().unwrap()[0].rows,
            store.snapshot().unwrap()[0].rows
        );
        // A second copy into the now full file is refused, and leaves it.
        let err = store.copy_to(&dest).unwrap_err();
        assert!(
            matches!(err, CopyError::NotEmpty { table: "users", .. }),
            "{err}"
        );
        assert!(dest_path.exists());
    }
}
