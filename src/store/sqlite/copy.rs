//! The SQLite side of a whole-store copy: the tables read into typed
//! [`Value`]s (text ids and times parsed, 0/1 flags checked), and written
//! back in SQLite's own form, all rows in one transaction.

use rusqlite::Connection;
use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};

use super::{Db, schema_version};
use crate::domain::{fmt_time, parse_time, printable};
use crate::store::copy::{
    Column, CopyError, Kind, Snapshot, TABLES, Table, TableRows, Value, first_nonempty, unreadable,
};
use crate::store::{StoreError, StoreResult};

impl Db {
    /// Every table, read in one read transaction: in WAL mode that is one
    /// moment of the store while other processes keep writing. A store of
    /// another schema version is refused, since its columns are not the
    /// ones the copy names.
    pub(crate) fn snapshot(&self) -> StoreResult<Snapshot> {
        let found: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?;
        let found = usize::try_from(found).unwrap_or(usize::MAX);
        if found < schema_version() {
            return Err(StoreError::SchemaTooOld {
                location: self.location.clone(),
                found,
                supported: schema_version(),
            });
        }
        if found > schema_version() {
            return Err(StoreError::SchemaTooNew {
                location: self.location.clone(),
                found,
                supported: schema_version(),
            });
        }
        // Never committed: it only reads, and ends (rolled back) when dropped.
        let tx = self.conn.unchecked_transaction()?;
        TABLES
            .iter()
            .map(|table| {
                Ok(TableRows {
                    table,
                    rows: read_table(&tx, table)?,
                })
            })
            .collect()
    }

    /// The first table that holds rows, if any: a copy goes only into an
    /// empty store.
    pub(crate) fn first_nonempty(&self) -> StoreResult<Option<&'static str>> {
        first_nonempty(|table| has_rows(&self.conn, table))
    }

    /// Inserts every row of `snapshot` in one IMMEDIATE transaction, after
    /// checking under the write lock that the store is still empty; on any
    /// failure nothing is written. With `single_file` the database is left
    /// without a write-ahead log beside it.
    pub(crate) fn insert_all(
        &mut self,
        snapshot: &Snapshot,
        single_file: bool,
    ) -> Result<(), CopyError> {
        let location = self.location.clone();
        self.write_with(|tx| {
            if let Some(table) = first_nonempty(|table| has_rows(tx, table))? {
                return Err(CopyError::NotEmpty {
                    location: location.clone(),
                    table,
                });
            }
            for TableRows { table, rows } in snapshot {
                let marks: Vec<String> =
                    (1..=table.columns.len()).map(|i| format!("?{i}")).collect();
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    table.name,
                    table.column_list(),
                    marks.join(", ")
                );
                let mut stmt = tx.prepare(&sql).map_err(StoreError::from)?;
                for row in rows {
                    stmt.execute(rusqlite::params_from_iter(row.iter()))
                        .map_err(StoreError::from)?;
                }
            }
            Ok(())
        })?;
        if single_file {
            self.conn
                .pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0))
                .map_err(StoreError::from)?;
        }
        Ok(())
    }
}

/// Whether `table` holds any row.
fn has_rows(conn: &Connection, table: &Table) -> StoreResult<bool> {
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", table.name);
    Ok(conn.query_row(&sql, [], |r| r.get(0))?)
}

/// Every row of `table`, in key order, each value checked against its
/// column's kind.
pub(crate) fn read_table(conn: &Connection, table: &'static Table) -> StoreResult<Vec<Vec<Value>>> {
    let mut stmt = conn.prepare(&table.select())?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, column)| {
                decode(column, row.get_ref(i)?).map_err(|what| {
                    // The key, read only now: most rows never need it.
                    let key: Option<String> = row.get(table.columns.len()).ok().flatten();
                    unreadable(table, column, &key.unwrap_or_default(), what)
                })
            })
            .collect::<StoreResult<Vec<Value>>>()?;
        out.push(values);
    }
    Ok(out)
}

/// One stored value as its column's kind says it must be; else what the
/// value is instead.
fn decode(column: &Column, raw: ValueRef<'_>) -> Result<Value, String> {
    let text = |bytes| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| "text that is not UTF-8".to_owned())
    };
    Ok(match (column.kind, raw) {
        (_, ValueRef::Null) => Value::Null,
        (Kind::Text, ValueRef::Text(b)) => Value::Text(text(b)?),
        (Kind::Uuid, ValueRef::Text(b)) => {
            let s = text(b)?;
            Value::Uuid(uuid::Uuid::parse_str(&s).map_err(|_| format!("{:?}", printable(&s)))?)
        }
        (Kind::Time, ValueRef::Text(b)) => {
            let s = text(b)?;
            Value::Time(parse_time(&s).ok_or_else(|| format!("{:?}", printable(&s)))?)
        }
        (Kind::Bool, ValueRef::Integer(0)) => Value::Bool(false),
        (Kind::Bool, ValueRef::Integer(1)) => Value::Bool(true),
        (Kind::Int, ValueRef::Integer(i)) => Value::Int(i),
        (Kind::Int32, ValueRef::Integer(i)) => {
            Value::Int32(i32::try_from(i).map_err(|_| i.to_string())?)
        }
        (_, ValueRef::Integer(i)) => return Err(format!("the integer {i}")),
        (_, ValueRef::Real(f)) => return Err(format!("the number {f}")),
        (_, ValueRef::Text(_)) => return Err("text".into()),
        (_, ValueRef::Blob(b)) => return Err(format!("a blob of {} bytes", b.len())),
    })
}

/// A value as the SQLite schema stores its kind: ids as lower-case
/// hyphenated text, times as [`fmt_time`] writes them, flags as 0 or 1.
impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value as Sql;
        Ok(match self {
            Value::Null => ToSqlOutput::Owned(Sql::Null),
            Value::Uuid(u) => ToSqlOutput::Owned(Sql::Text(u.to_string())),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Time(t) => ToSqlOutput::Owned(Sql::Text(fmt_time(t))),
            Value::Bool(b) => ToSqlOutput::Owned(Sql::Integer(i64::from(*b))),
            Value::Int(i) => ToSqlOutput::Owned(Sql::Integer(*i)),
            Value::Int32(i) => ToSqlOutput::Owned(Sql::Integer(i64::from(*i))),
        })
    }
}
