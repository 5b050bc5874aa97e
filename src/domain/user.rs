//! Users: the owners of instances and credentials.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::RowId;
use crate::error::{Error, Result};

/// A user of the registry.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    /// Row id.
    pub id: RowId,
    /// Login name.
    pub name: String,
    /// Whether the user administers the store: adds and removes users, acts
    /// on every instance. In the team store, a member of the database role
    /// `amcctl_admin`.
    pub admin: bool,
    /// How many instances the user owns.
    pub instance_count: u64,
    /// When the user was added.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
}

/// Checks a user name: 1-64 characters, letters, digits, `.`, `_`, `-`, `@`.
pub fn validate_name(name: &str) -> Result<&str> {
    let ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(name)
    } else {
        Err(Error::usage(format!(
            "invalid user name {name:?}: use 1-64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}
