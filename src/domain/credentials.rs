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
    /// The fingerprint of the key the three ciphertexts are under (see
    /// [`crate::secrets::Keyring::fingerprint`]): in a team store each user
    /// has a key of their own, and a reader must tell "another key" from
    /// "damaged data" before trying to decrypt. `None` for logins stored
    /// before fingerprints were recorded.
    pub key_fingerprint: Option<String>,
}

impl StoredCredentials {
    /// What these credentials are, for messages about their key.
    pub fn secret_of(&self) -> SecretOf {
        SecretOf::Login {
            profile: self.profile.clone(),
        }
    }
}

/// Whose a stored ciphertext is, so that a message about its key can say
/// which secret cannot be opened (never what it holds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOf {
    /// The stored login (client secret, refresh and access tokens) of a profile.
    Login {
        /// The profile.
        profile: String,
    },
    /// The encrypted settings of an instance.
    Settings {
        /// AMC's ID of the instance.
        instance_id: String,
    },
}

impl SecretOf {
    /// `it` or `them`, as a message refers to the secret.
    pub fn pronoun(&self) -> &'static str {
        match self {
            SecretOf::Login { .. } => "it",
            SecretOf::Settings { .. } => "them",
        }
    }

    /// `was` or `were`, as a message's verb agrees with the secret.
    pub fn was(&self) -> &'static str {
        match self {
            SecretOf::Login { .. } => "was",
            SecretOf::Settings { .. } => "were",
        }
    }
}

impl std::fmt::Display for SecretOf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretOf::Login { profile } => write!(f, "the stored login of profile {profile}"),
            SecretOf::Settings { instance_id } => {
                write!(f, "the settings of instance {instance_id}")
            }
        }
    }
}

/// One stored ciphertext with the fingerprint of the key recorded as the
/// one that made it (`None`: stored before fingerprints were recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Whose it is.
    pub of: SecretOf,
    /// The Fernet token.
    pub token: String,
    /// The fingerprint of its key, when recorded.
    pub key_fingerprint: Option<String>,
}
