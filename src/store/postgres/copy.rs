//! The PostgreSQL side of a whole-store copy: the tables read into typed
//! [`Value`]s in one snapshot, written with binary `COPY` (a fleet's
//! history is tens of thousands of rows: one statement a table, not one a
//! row), and the team store's SQLite backup made from the same snapshot.

use std::path::Path;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{IsNull, ToSql, Type, private::BytesMut};
use postgres::{IsolationLevel, Row, Transaction};

use super::Db;
use crate::store::copy::{
    Column, CopyError, Kind, Snapshot, TABLES, Table, TableRows, Value, copy_into_sqlite,
    first_nonempty, unreadable,
};
use crate::store::{BackupFailure, Location, StoreError, StoreResult};

/// The error type of [`ToSql`]'s methods.
type SqlError = Box<dyn std::error::Error + Sync + Send>;

impl Db {
    /// Every table, read in one REPEATABLE READ transaction: one moment of
    /// the store while other clients keep writing. A member's snapshot
    /// holds what row security lets them see, which is consistent in
    /// itself (the instances they see with their owners, accounts and
    /// rows); the tables' owner's is the whole store.
    pub(crate) fn snapshot(&self) -> StoreResult<Snapshot> {
        self.read(|client| {
            let mut tx = client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            let mut out = Vec::with_capacity(TABLES.len());
            for table in TABLES {
                match read_table(&mut tx, table)? {
                    Ok(rows) => out.push(TableRows { table, rows }),
                    Err(e) => return Ok(Err(e)),
                }
            }
            tx.commit()?;
            Ok(Ok(out))
        })?
    }

    /// The first table that holds rows, if any: a copy goes only into an
    /// empty store.
    pub(crate) fn first_nonempty(&self) -> StoreResult<Option<&'static str>> {
        self.read(|client| first_nonempty(|table| has_rows(client, table)))
    }

    /// Inserts every row of `snapshot` in one transaction, after taking a
    /// lock that keeps other writers out of every table and checking that
    /// they are still empty; on any failure nothing is written. The
    /// identities of `health_checks.id` and `audit_log.id` then continue
    /// after the copied ids, so that the next row does not collide with
    /// one of them.
    pub(crate) fn insert_all(&self, snapshot: &Snapshot) -> Result<(), CopyError> {
        let location = self.location.clone();
        let names: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        let lock = format!(
            "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
            names.join(", ")
        );
        self.write_with(|tx| {
            let pg = |e| CopyError::Store(write_error(&location, None, e));
            if let Some(refusal) = partial_view(tx).map_err(pg)? {
                return Err(refusal.into());
            }
            tx.batch_execute(&lock).map_err(pg)?;
            if let Some(table) = first_nonempty(|table| has_rows(tx, table)).map_err(pg)? {
                return Err(CopyError::NotEmpty {
                    location: location.clone(),
                    table,
                });
            }
            for TableRows { table, rows } in snapshot {
                if !rows.is_empty() {
                    write_table(tx, table, rows)
                        .map_err(|e| write_error(&location, Some(table.name), e))?;
                }
            }
            for table in ["health_checks", "audit_log"] {
                tx.execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                                       coalesce(max(id), 1), max(id) IS NOT NULL)
                         FROM {table}"
                    ),
                    &[],
                )
                .map_err(pg)?;
            }
            Ok(())
        })
    }

    /// Writes a SQLite snapshot of the team store to the new file `dest`:
    /// created exclusively and 0600 (never over an existing file, never
    /// through a symlink), removed again if the copy fails.
    pub(crate) fn backup(&self, dest: &Path) -> StoreResult<()> {
        crate::store::create_backup_file(dest)?;
        let location = Location::Sqlite(dest.to_owned());
        match copy_into_sqlite(|| self.snapshot(), dest, &location, true, true) {
            Ok(_) => Ok(()),
            // What the team store itself did: said as it is, with its hints.
            Err(CopyError::Store(
                e @ (StoreError::Unreadable(_)
                | StoreError::Lost { .. }
                | StoreError::Busy { .. }
                | StoreError::Denied(_)),
            )) => Err(e),
            Err(e) => Err(StoreError::Backup {
                dest: dest.to_owned(),
                reason: BackupFailure::Copy(Box::new(e)),
            }),
        }
    }
}

/// A failed statement of the copy: a conflict or a lost connection as
/// such, anything else with the server's reason and the table being
/// written (the driver's own text is only "db error"). The server's
/// detail is left out: it quotes the failing row, secrets included.
fn write_error(location: &Location, table: Option<&str>, e: postgres::Error) -> StoreError {
    let reason = e.as_db_error().map(|db| db.message().to_owned());
    match (super::lost_or(location, e), reason) {
        (StoreError::Backend(_), Some(reason)) => StoreError::Backend(
            match table {
                Some(table) => format!("copying {table} into {location}: {reason}"),
                None => format!("copying into {location}: {reason}"),
            }
            .into(),
        ),
        (other, _) => other,
    }
}

/// The refusal of a copy into the team store to a login that row security
/// applies to: it may write only its own rows, and a copy is all or
/// nothing. The tables' owner (the role that migrated them) and superusers
/// are not under row security.
fn partial_view(
    client: &mut impl postgres::GenericClient,
) -> Result<Option<StoreError>, postgres::Error> {
    let row = client.query_one(
        "SELECT current_user::text, row_security_active('credentials')",
        &[],
    )?;
    let (login, limited): (String, bool) = (row.try_get(0)?, row.try_get(1)?);
    Ok(limited.then(|| {
        StoreError::Denied(format!(
            "a copy into the team store needs the login that owns its tables (the one that \
             ran `amcctl db migrate`) or a superuser; row security lets {login} write only \
             its own rows"
        ))
    }))
}

/// Whether `table` holds any row.
fn has_rows(
    client: &mut impl postgres::GenericClient,
    table: &Table,
) -> Result<bool, postgres::Error> {
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", table.name);
    client.query_one(&sql, &[])?.try_get(0)
}

/// Every row of `table`, in key order, as [`Value`]s. The outer error is
/// the server's; the inner one a value that is not what its column holds.
pub(crate) fn read_table(
    tx: &mut Transaction<'_>,
    table: &'static Table,
) -> Result<StoreResult<Vec<Vec<Value>>>, postgres::Error> {
    let rows = tx.query(&table.pg_select(), &[])?;
    Ok(rows.iter().map(|row| decode_row(table, row)).collect())
}

/// One row's values, each read as its column's kind.
fn decode_row(table: &Table, row: &Row) -> StoreResult<Vec<Value>> {
    table
        .columns
        .iter()
        .enumerate()
        .map(|(i, column)| {
            decode(column, row, i).map_err(|what| {
                // The key, read only now: most rows never need it.
                let key: Option<String> = row.try_get(table.columns.len()).ok().flatten();
                unreadable(table, column, &key.unwrap_or_default(), what)
            })
        })
        .collect()
}

/// Column `i` of `row` as `column`'s kind; a column of another type (a
/// schema changed by hand) is unreadable, never a panic.
fn decode(column: &Column, row: &Row, i: usize) -> Result<Value, String> {
    fn get<'a, T: postgres::types::FromSql<'a>>(
        row: &'a Row,
        i: usize,
    ) -> Result<Option<T>, String> {
        row.try_get::<_, Option<T>>(i).map_err(|_| {
            let ty = row.columns().get(i).map_or("?", |c| c.type_().name());
            format!("a value of type {ty}")
        })
    }
    let value = match column.kind {
        Kind::Uuid => get(row, i)?.map(Value::Uuid),
        Kind::Text => get(row, i)?.map(Value::Text),
        Kind::Time => get(row, i)?.map(Value::Time),
        Kind::Bool => get(row, i)?.map(Value::Bool),
        Kind::Int => get(row, i)?.map(Value::Int),
        Kind::Int32 => get(row, i)?.map(Value::Int32),
    };
    Ok(value.unwrap_or(Value::Null))
}

/// The PostgreSQL type the schema gives a column of `kind`.
fn pg_type(kind: Kind) -> Type {
    match kind {
        Kind::Uuid => Type::UUID,
        Kind::Text => Type::TEXT,
        Kind::Time => Type::TIMESTAMPTZ,
        Kind::Bool => Type::BOOL,
        Kind::Int => Type::INT8,
        Kind::Int32 => Type::INT4,
    }
}

/// Sends every row of `table` in one binary `COPY`.
fn write_table(
    tx: &mut Transaction<'_>,
    table: &Table,
    rows: &[Vec<Value>],
) -> Result<(), postgres::Error> {
    // A column PostgreSQL derives rather than stores is left out.
    let stored: Vec<usize> = table.pg_stored().map(|(i, _)| i).collect();
    let types: Vec<Type> = table.pg_stored().map(|(_, c)| pg_type(c.kind)).collect();
    let names: Vec<&str> = table.pg_stored().map(|(_, c)| c.name).collect();
    let sink = tx.copy_in(&format!(
        "COPY {} ({}) FROM STDIN (FORMAT binary)",
        table.name,
        names.join(", ")
    ))?;
    let mut writer = BinaryCopyInWriter::new(sink, &types);
    let mut values: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(types.len());
    for row in rows {
        values.clear();
        values.extend(stored.iter().map(|&i| &row[i] as &(dyn ToSql + Sync)));
        writer.write(&values)?;
    }
    writer.finish()?;
    Ok(())
}

/// A value in the PostgreSQL type of its kind; the checks were made when
/// it was read, so only the driver's own type check remains.
impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, SqlError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Uuid(v) => v.to_sql(ty, out),
            Value::Text(v) => v.to_sql(ty, out),
            Value::Time(v) => v.to_sql(ty, out),
            Value::Bool(v) => v.to_sql(ty, out),
            Value::Int(v) => v.to_sql(ty, out),
            Value::Int32(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::UUID,
            Type::TEXT,
            Type::TIMESTAMPTZ,
            Type::BOOL,
            Type::INT8,
            Type::INT4,
        ]
        .contains(ty)
    }

    fn to_sql_checked(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, SqlError> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Uuid(v) => v.to_sql_checked(ty, out),
            Value::Text(v) => v.to_sql_checked(ty, out),
            Value::Time(v) => v.to_sql_checked(ty, out),
            Value::Bool(v) => v.to_sql_checked(ty, out),
            Value::Int(v) => v.to_sql_checked(ty, out),
            Value::Int32(v) => v.to_sql_checked(ty, out),
        }
    }
}
