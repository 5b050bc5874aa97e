//! Login-with-Amazon credentials as stored, per user and profile.

use chrono::{DateTime, Utc};

use super::Region;
use crate::error::{Error, Result};

/// The profile of a login made without `--profile`, and of every login made
/// before profiles existed.
pub const DEFAULT_PROFILE: &str = "default";

/// Checks a profile name: 1-64 letters, digits, `.`, `_` or `-`, starting
/// with a letter or digit (it shows in tables and goes into commands).
pub fn validate_profile(name: &str) -> Result<&str> {
    let ok = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name)
    } else {
        Err(Error::usage(format!(
            "invalid --profile {:?}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            crate::domain::printable(name)
        )))
    }
}

/// A user's stored credentials under one profile; the `_enc` fields are
/// Fernet tokens.
#[derive(Debug, Clone)]
pub struct StoredCredentials {
    /// The profile name.
    pub profile: String,
    /// The LwA client ID (not a secret).
    pub client_id: String,
    /// Encrypted client secret.
    pub client_secret_enc: String,
    /// Encrypted refresh token.
    pub refresh_token_enc: String,
    /// Region of the token endpoint.
    pub region: Region,
    /// Encrypted cached access token.
    pub access_token_enc: Option<String>,
    /// When the cached access token expires.
    pub access_token_expires: Option<DateTime<Utc>>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}
