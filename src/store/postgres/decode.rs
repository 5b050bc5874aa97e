//! Reading typed values out of PostgreSQL rows. The schema's own types
//! (`uuid`, `timestamptz`, `boolean`, `bigint`) come back as they are; the
//! domain's text values (regions, statuses, entity IDs, countries) are
//! parsed here, and one that does not parse (written by hand with `psql`)
//! fails the read with [`StoreError::Unreadable`] naming the column and
//! the value. Every read is `try_get`: a column of an unexpected type is
//! an error, never a panic.

use chrono::{DateTime, Utc};
use postgres::Row;
use postgres::types::FromSql;

use crate::domain::{Country, EntityId, RowId};
use crate::store::{StoreError, StoreResult};

/// Column `idx` of `r` as `T`.
pub(super) fn get<'a, T: FromSql<'a>>(r: &'a Row, idx: usize) -> StoreResult<T> {
    r.try_get(idx).map_err(StoreError::from)
}

/// Column `idx` of `r`, as text, decoded by `parse`; `None` from `parse`
/// fails the read naming `expected`.
pub(super) fn decoded<T>(
    r: &Row,
    idx: usize,
    expected: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> StoreResult<T> {
    let text: String = get(r, idx)?;
    parse(&text).ok_or_else(|| unreadable(r, idx, &text, expected))
}

/// As [`decoded`], for a column that may be NULL.
pub(super) fn decoded_opt<T>(
    r: &Row,
    idx: usize,
    expected: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> StoreResult<Option<T>> {
    match get::<Option<String>>(r, idx)? {
        None => Ok(None),
        Some(text) => parse(&text)
            .map(Some)
            .ok_or_else(|| unreadable(r, idx, &text, expected)),
    }
}

/// Column `idx` parsed with [`std::str::FromStr`].
pub(super) fn parsed<T: std::str::FromStr>(
    r: &Row,
    idx: usize,
    expected: &'static str,
) -> StoreResult<T> {
    decoded(r, idx, expected, |s| s.parse().ok())
}

/// A row id column.
pub(super) fn row_id(r: &Row, idx: usize) -> StoreResult<RowId> {
    get(r, idx).map(RowId)
}

/// A timestamp column.
pub(super) fn time(r: &Row, idx: usize) -> StoreResult<DateTime<Utc>> {
    get(r, idx)
}

/// A timestamp column that may be NULL.
pub(super) fn opt_time(r: &Row, idx: usize) -> StoreResult<Option<DateTime<Utc>>> {
    get(r, idx)
}

/// A `bigint` column holding a count or a duration, never negative.
pub(super) fn count(r: &Row, idx: usize) -> StoreResult<u64> {
    get::<i64>(r, idx).map(super::unsigned)
}

/// As [`count`], for a column that may be NULL.
pub(super) fn opt_count(r: &Row, idx: usize) -> StoreResult<Option<u64>> {
    get::<Option<i64>>(r, idx).map(|v| v.map(super::unsigned))
}

/// An entity ID column.
pub(super) fn entity(r: &Row, idx: usize) -> StoreResult<EntityId> {
    decoded(r, idx, "an entity ID", |s| EntityId::parse(s).ok())
}

/// A country: its code at `idx`, its marketplace ID at `idx + 1`.
pub(super) fn country(r: &Row, idx: usize) -> StoreResult<Country> {
    let marketplace: String = get(r, idx + 1)?;
    decoded(
        r,
        idx,
        "a country code matching its marketplace ID",
        |code| Country::stored(code, &marketplace),
    )
}

fn unreadable(r: &Row, idx: usize, value: &str, expected: &str) -> StoreError {
    let column = r
        .columns()
        .get(idx)
        .map_or_else(|| idx.to_string(), |c| c.name().to_owned());
    StoreError::Unreadable(format!(
        "column {column} holds {value:?}, which is not {expected}"
    ))
}
