//! Reading typed values out of rows. A stored value that does not decode (a
//! timestamp that is not RFC 3339, a country without a marketplace) fails
//! the read with [`Undecodable`], which names the column and the value, so
//! the user hears what is wrong instead of the driver's column index.

use chrono::{DateTime, Utc};
use rusqlite::Row;
use rusqlite::types::Type;

use crate::domain::{Country, EntityId, parse_time};

/// A stored value amcctl cannot read back.
#[derive(Debug, thiserror::Error)]
#[error("column {column} holds {value:?}, which is not {expected}")]
pub(crate) struct Undecodable {
    /// The column's name in the query.
    pub column: String,
    /// The stored text, as it is.
    pub value: String,
    /// What the column must hold.
    pub expected: &'static str,
}

/// Column `idx` of `r`, as text, decoded by `parse`; `None` from `parse`
/// fails the read naming `expected`.
pub(super) fn decoded<T>(
    r: &Row,
    idx: usize,
    expected: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = r.get(idx)?;
    parse(&text).ok_or_else(|| {
        let column = r
            .as_ref()
            .column_name(idx)
            .map_or_else(|_| idx.to_string(), str::to_owned);
        rusqlite::Error::FromSqlConversionFailure(
            idx,
            Type::Text,
            Box::new(Undecodable {
                column,
                value: text,
                expected,
            }),
        )
    })
}

/// As [`decoded`], for a column that may be NULL.
pub(super) fn decoded_opt<T>(
    r: &Row,
    idx: usize,
    expected: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<Option<T>> {
    match r.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(_) => decoded(r, idx, expected, parse).map(Some),
    }
}

/// Column `idx` parsed with [`std::str::FromStr`].
pub(super) fn parsed<T: std::str::FromStr>(
    r: &Row,
    idx: usize,
    expected: &'static str,
) -> rusqlite::Result<T> {
    decoded(r, idx, expected, |s| s.parse().ok())
}

const TIME: &str = "an RFC 3339 time";

/// A timestamp column.
pub(super) fn time(r: &Row, idx: usize) -> rusqlite::Result<DateTime<Utc>> {
    decoded(r, idx, TIME, parse_time)
}

/// A timestamp column that may be NULL.
pub(super) fn opt_time(r: &Row, idx: usize) -> rusqlite::Result<Option<DateTime<Utc>>> {
    decoded_opt(r, idx, TIME, parse_time)
}

/// An entity ID column.
pub(super) fn entity(r: &Row, idx: usize) -> rusqlite::Result<EntityId> {
    decoded(r, idx, "an entity ID", |s| EntityId::parse(s).ok())
}

/// A country: its code at `idx`, its marketplace ID at `idx + 1`.
pub(super) fn country(r: &Row, idx: usize) -> rusqlite::Result<Country> {
    let marketplace: String = r.get(idx + 1)?;
    decoded(
        r,
        idx,
        "a country code matching its marketplace ID",
        |code| Country::stored(code, &marketplace),
    )
}
