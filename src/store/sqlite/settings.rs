//! The encrypted settings of an instance (`encrypted_config`): one Fernet
//! token, or NULL when the instance has none, with the fingerprint of its
//! key (`settings_key_fingerprint`). The store only moves the token;
//! sealing and opening it is the caller's, with the key.

use rusqlite::{OptionalExtension, params};

use super::{Db, Missing, StoreError, StoreResult, fmt_time, now};
use crate::domain::{RowId, SealedSecret, SecretOf};

/// The settings of one instance: its AMC ID, token and key fingerprint.
const SELECT: &str = "SELECT instance_id, encrypted_config, settings_key_fingerprint
    FROM amc_instances WHERE id = ?1";

/// A row of [`SELECT`]: the settings, if there are any.
fn sealed_row(r: &rusqlite::Row) -> rusqlite::Result<Option<SealedSecret>> {
    let instance_id: String = r.get(0)?;
    let token: Option<String> = r.get(1)?;
    let key_fingerprint: Option<String> = r.get(2)?;
    Ok(token.map(|token| SealedSecret {
        of: SecretOf::Settings { instance_id },
        token,
        key_fingerprint,
    }))
}

impl Db {
    /// The settings of instance `id` (`None`: no settings).
    pub(crate) fn settings_token(&self, id: RowId) -> StoreResult<Option<SealedSecret>> {
        self.read()
            .query_row(SELECT, [id], sealed_row)
            .optional()?
            .ok_or_else(|| StoreError::NotFound(Missing::Instance))
    }

    /// Reads the settings of instance `id` and replaces their token with
    /// what `change` makes of them (`None`: no settings left), recorded
    /// under `key_fingerprint`, in one transaction, so that two processes
    /// changing settings at once lose neither change. If `change` fails,
    /// nothing is written.
    pub(crate) fn change_settings<T, E: From<StoreError>>(
        &mut self,
        id: RowId,
        key_fingerprint: &str,
        mut change: impl FnMut(Option<&SealedSecret>) -> Result<(Option<String>, T), E>,
    ) -> Result<T, E> {
        self.write_with(|tx| {
            let current = tx
                .query_row(SELECT, [id], sealed_row)
                .optional()
                .map_err(StoreError::from)?
                .ok_or(StoreError::NotFound(Missing::Instance))?;
            let (token, value) = change(current.as_ref())?;
            let fingerprint = token.as_ref().map(|_| key_fingerprint);
            tx.execute(
                "UPDATE amc_instances SET encrypted_config = ?2, settings_key_fingerprint = ?3,
                     updated_at = ?4
                 WHERE id = ?1",
                params![id, token, fingerprint, fmt_time(&now())],
            )
            .map_err(StoreError::from)?;
            Ok(value)
        })
    }
}
