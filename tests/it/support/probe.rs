//! The store's rows as the tests see them. Only this file talks to the
//! store directly: the tests count, read and arrange rows through a
//! [`Probe`], on SQLite or on PostgreSQL, so that the same tests run on
//! both backends. Values render the same on both (times as the RFC 3339
//! text SQLite keeps, booleans as 0 and 1), so a test's expected rows do
//! not depend on the backend.
//!
//! Reads open the store read-only and never through amcctl, so what a test
//! asserts does not depend on the code under test.

use std::fmt::Write as _;
use std::path::PathBuf;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

/// A store (the home's file, a backup, or a test database on the
/// PostgreSQL test server) and the ways a test looks at it.
pub struct Probe {
    path: PathBuf,
    /// The test database, when the store is PostgreSQL.
    pg: Option<String>,
}

/// A read connection kept open: while it lives, SQLite keeps the WAL and
/// shared-memory files beside the store.
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// Folds the WAL into the database file, then closes the connection.
    pub fn checkpoint(self) {
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .expect("checkpoint the WAL");
    }
}

/// The credentials' three ciphertext columns.
const CIPHERTEXTS: &str =
    "SELECT client_secret_enc, refresh_token_enc, access_token_enc FROM credentials";

impl Probe {
    /// The store at `path` (which may not exist yet).
    pub fn new(path: impl Into<PathBuf>) -> Probe {
        Probe {
            path: path.into(),
            pg: None,
        }
    }

    /// The test database `db` on the PostgreSQL test server.
    pub fn postgres(db: &str) -> Probe {
        Probe {
            path: PathBuf::new(),
            pg: Some(db.to_owned()),
        }
    }

    fn pg(&self) -> Option<postgres::Client> {
        let db = self.pg.as_deref()?;
        Some(super::pg::server().expect("a test server").connect(db))
    }

    /// The number of rows of `table`.
    pub fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT count(*) FROM \"{table}\""))
    }

    /// A single integer from a query such as `SELECT count(*) FROM users WHERE …`.
    pub fn scalar(&self, sql: &str) -> i64 {
        if let Some(mut c) = self.pg() {
            let row = c
                .query_one(sql, &[])
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            return row
                .try_get::<_, i64>(0)
                .or_else(|_| row.try_get::<_, i32>(0).map(i64::from))
                .or_else(|_| row.try_get::<_, bool>(0).map(i64::from))
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        self.reader()
            .query_row(sql, [], |r| r.get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The rows of a query, every value rendered as in [`Probe::dump`].
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        if let Some(mut c) = self.pg() {
            let rows = c.query(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
            return rows.iter().map(render_pg).collect();
        }
        let conn = self.reader();
        let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = stmt.column_count();
        let rows = stmt
            .query_map([], |r| {
                (0..n)
                    .map(|i| r.get_ref(i).map(render))
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        rows.collect::<rusqlite::Result<_>>()
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// The ciphertexts of every stored login: client secret, refresh token
    /// and cached access token (`NULL` when none), as in [`Probe::rows`].
    pub fn credential_ciphertexts(&self) -> Vec<Vec<String>> {
        self.rows(CIPHERTEXTS)
    }

    /// The encrypted settings of an instance as stored (`None`: NULL).
    pub fn settings_token(&self, instance_id: &str) -> Option<String> {
        if let Some(mut c) = self.pg() {
            return c
                .query_one(
                    "SELECT encrypted_config FROM amc_instances WHERE instance_id = $1",
                    &[&instance_id],
                )
                .and_then(|r| r.try_get(0))
                .expect("read encrypted_config");
        }
        self.reader()
            .query_row(
                "SELECT encrypted_config FROM amc_instances WHERE instance_id = ?1",
                [instance_id],
                |r| r.get(0),
            )
            .expect("read encrypted_config")
    }

    /// Stores `token` as the encrypted settings of an instance, the way
    /// another program sharing the key would.
    pub fn set_settings_token(&self, instance_id: &str, token: &str) {
        if let Some(mut c) = self.pg() {
            c.execute(
                "UPDATE amc_instances SET encrypted_config = $1 WHERE instance_id = $2",
                &[&token, &instance_id],
            )
            .expect("store encrypted_config");
            return;
        }
        self.writer()
            .execute(
                "UPDATE amc_instances SET encrypted_config = ?1 WHERE instance_id = ?2",
                [token, instance_id],
            )
            .expect("store encrypted_config");
    }

    /// Makes every cached access token one that expired long ago.
    pub fn expire_access_tokens(&self) {
        self.exec("UPDATE credentials SET access_token_expires = '2000-01-01T00:00:00Z'");
    }

    /// Drops every cached access token, as if none had been issued yet.
    pub fn forget_access_tokens(&self) {
        self.exec("UPDATE credentials SET access_token_enc = NULL, access_token_expires = NULL");
    }

    /// Runs one statement with foreign keys on, to arrange a state the
    /// commands under test cannot reach; returns the number of rows changed.
    pub fn exec(&self, sql: &str) -> usize {
        if let Some(mut c) = self.pg() {
            return c.execute(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}")) as usize;
        }
        self.writer()
            .execute(sql, [])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Runs several statements on one connection (pragmas included), to
    /// build or break a store on purpose.
    pub fn exec_batch(&self, sql: &str) {
        if let Some(mut c) = self.pg() {
            c.batch_execute(sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            return;
        }
        self.writer()
            .execute_batch(sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Sets the schema version the store claims (to fake a newer schema).
    pub fn set_user_version(&self, version: i64) {
        self.writer()
            .pragma_update(None, "user_version", version)
            .expect("set user_version");
    }

    /// The store's journal mode (`wal`, `delete`, …).
    pub fn journal_mode(&self) -> String {
        self.reader()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .expect("journal mode")
    }

    /// Keeps a reader open until the returned value is dropped.
    pub fn hold_open(&self) -> Reader {
        let conn = Connection::open(&self.path).expect("open the store");
        conn.query_row("SELECT count(*) FROM users", [], |r| r.get::<_, i64>(0))
            .expect("read the store");
        Reader { conn }
    }

    /// What SQLite's `PRAGMA integrity_check` and `PRAGMA foreign_key_check`
    /// find wrong with the store (empty when it is sound).
    pub fn problems(&self) -> Vec<String> {
        if let Some(mut c) = self.pg() {
            // PostgreSQL enforces its constraints as rows are written; what
            // it can still hold is a constraint added without validation.
            let rows = c
                .query(
                    "SELECT conrelid::regclass::text || ': ' || conname FROM pg_constraint
                     WHERE NOT convalidated AND connamespace = 'public'::regnamespace",
                    &[],
                )
                .expect("read the constraints");
            return rows.iter().map(|r| r.get(0)).collect();
        }
        let Some(conn) = self.open_read_only() else {
            return vec!["no store".to_owned()];
        };
        let mut problems = Vec::new();
        let mut stmt = conn
            .prepare("PRAGMA integrity_check")
            .expect("integrity_check");
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .expect("integrity_check");
        for row in rows {
            let line = row.expect("integrity_check row");
            if line != "ok" {
                problems.push(line);
            }
        }
        let mut stmt = conn
            .prepare("PRAGMA foreign_key_check")
            .expect("foreign_key_check");
        let rows = stmt
            .query_map([], |r| {
                Ok(format!(
                    "foreign key violation: {} rowid {:?} -> {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?,
                    r.get::<_, String>(2)?
                ))
            })
            .expect("foreign_key_check");
        for row in rows {
            problems.push(row.expect("foreign_key_check row"));
        }
        problems
    }

    /// A deterministic text dump of the whole store: `PRAGMA user_version`,
    /// the schema, then every row of every table sorted by all its columns.
    /// Two dumps are equal exactly when the store's content is; compare one
    /// taken before a command with one taken after it.
    pub fn dump(&self) -> String {
        if let Some(mut c) = self.pg() {
            return dump_pg(&mut c);
        }
        let Some(conn) = self.open_read_only() else {
            return "no store\n".to_owned();
        };
        let mut out = String::new();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("user_version");
        writeln!(out, "user_version = {version}").unwrap();
        let schema: Vec<(String, String, String)> = {
            let mut stmt = conn
                .prepare(
                    "SELECT type, name, coalesce(sql, '') FROM sqlite_schema
                     WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
                )
                .expect("read the schema");
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .expect("read the schema")
                .collect::<rusqlite::Result<_>>()
                .expect("read the schema")
        };
        for (kind, name, sql) in &schema {
            writeln!(out, "{kind} {name}: {sql}").unwrap();
        }
        for (_, table, _) in schema.iter().filter(|(kind, _, _)| kind == "table") {
            let columns: Vec<String> = {
                let mut stmt = conn
                    .prepare(&format!(
                        "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
                    ))
                    .expect("table info");
                stmt.query_map([], |r| r.get(0))
                    .expect("table info")
                    .collect::<rusqlite::Result<_>>()
                    .expect("table info")
            };
            let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
            let sql = format!(
                "SELECT {cols} FROM \"{table}\" ORDER BY {cols}",
                cols = quoted.join(", ")
            );
            let mut stmt = conn.prepare(&sql).expect("select a table");
            let rows: Vec<String> = stmt
                .query_map([], |r| {
                    let cells = (0..columns.len())
                        .map(|i| r.get_ref(i).map(render))
                        .collect::<rusqlite::Result<Vec<String>>>()?;
                    Ok(cells.join(" | "))
                })
                .expect("select a table")
                .collect::<rusqlite::Result<_>>()
                .expect("select a table");
            writeln!(
                out,
                "\n[{table}] {} row(s): {}",
                rows.len(),
                columns.join(" | ")
            )
            .unwrap();
            for row in rows {
                writeln!(out, "{row}").unwrap();
            }
        }
        out
    }

    fn reader(&self) -> Connection {
        self.open_read_only().expect("the store exists")
    }

    fn writer(&self) -> Connection {
        let conn = Connection::open(&self.path).expect("open the store");
        conn.pragma_update(None, "foreign_keys", "ON")
            .expect("foreign keys on");
        conn
    }

    fn open_read_only(&self) -> Option<Connection> {
        if !self.path.exists() {
            return None;
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .expect("open the store read-only");
        Some(conn)
    }
}

/// One value of a row, unambiguously: NULL, numbers as such, text quoted
/// with every control character escaped, blobs in hex.
fn render(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => "NULL".to_owned(),
        ValueRef::Integer(i) => i.to_string(),
        ValueRef::Real(f) => format!("{f:?}"),
        ValueRef::Text(t) => format!("{:?}", String::from_utf8_lossy(t)),
        ValueRef::Blob(b) => {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("x'{hex}'")
        }
    }
}

/// [`Probe::dump`] of a PostgreSQL store: the schema's tables and columns,
/// then every row of every table sorted by all its columns.
fn dump_pg(c: &mut postgres::Client) -> String {
    let mut out = String::new();
    let columns = c
        .query(
            "SELECT table_name::text, column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
            &[],
        )
        .expect("read the schema");
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    for row in &columns {
        let (table, column, kind): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        writeln!(out, "{table}.{column}: {kind}").unwrap();
        match tables.last_mut() {
            Some((t, cols)) if *t == table => cols.push(column),
            _ => tables.push((table, vec![column])),
        }
    }
    for (table, cols) in &tables {
        let quoted: Vec<String> = cols.iter().map(|c| format!("\"{c}\"")).collect();
        let sql = format!(
            "SELECT {cols} FROM \"{table}\" ORDER BY {cols}",
            cols = quoted.join(", ")
        );
        let rows = c.query(&sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
        writeln!(
            out,
            "\n[{table}] {} row(s): {}",
            rows.len(),
            cols.join(" | ")
        )
        .unwrap();
        for row in &rows {
            writeln!(out, "{}", render_pg(row).join(" | ")).unwrap();
        }
    }
    out
}

/// The values of a PostgreSQL row as [`render`] shows SQLite's: ids and
/// times as the text SQLite keeps, booleans as 0 and 1.
fn render_pg(row: &postgres::Row) -> Vec<String> {
    use postgres::types::Type;
    (0..row.len())
        .map(|i| {
            let ty = row.columns()[i].type_().clone();
            let text = |v: Option<String>| v.map_or("NULL".to_owned(), |s| format!("{s:?}"));
            let num = |v: Option<i64>| v.map_or("NULL".to_owned(), |n| n.to_string());
            match ty {
                Type::UUID => text(row.get::<_, Option<uuid::Uuid>>(i).map(|u| u.to_string())),
                Type::TIMESTAMPTZ => text(
                    row.get::<_, Option<chrono::DateTime<chrono::Utc>>>(i)
                        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
                ),
                Type::BOOL => num(row.get::<_, Option<bool>>(i).map(i64::from)),
                Type::INT8 => num(row.get(i)),
                Type::INT4 => num(row.get::<_, Option<i32>>(i).map(i64::from)),
                Type::INT2 => num(row.get::<_, Option<i16>>(i).map(i64::from)),
                Type::FLOAT8 => row
                    .get::<_, Option<f64>>(i)
                    .map_or("NULL".to_owned(), |f| format!("{f:?}")),
                _ => text(row.get(i)),
            }
        })
        .collect()
}
