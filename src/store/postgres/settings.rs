//! The encrypted settings of an instance (`encrypted_config`): one Fernet
//! token, or NULL when the instance has none, with the fingerprint of its
//! key (`settings_key_fingerprint`). The store only moves the token;
//! sealing and opening it is the caller's, with the key.

use super::Db;
use super::decode::get;
use crate::domain::{RowId, SealedSecret, SecretOf, now};
use crate::store::{Missing, Retryable, StoreError, StoreResult};

/// The settings of one instance: its AMC ID, token and key fingerprint.
const SELECT: &str = "SELECT instance_id, encrypted_config, settings_key_fingerprint
    FROM amc_instances WHERE id = $1";

/// A row of [`SELECT`]: the settings, if there are any.
fn sealed_row(r: &postgres::Row) -> StoreResult<Option<SealedSecret>> {
    let instance_id: String = get(r, 0)?;
    let token: Option<String> = get(r, 1)?;
    let key_fingerprint: Option<String> = get(r, 2)?;
    Ok(token.map(|token| SealedSecret {
        of: SecretOf::Settings { instance_id },
        token,
        key_fingerprint,
    }))
}

impl Db {
    /// The settings of instance `id` (`None`: no settings).
    pub(crate) fn settings_token(&self, id: RowId) -> StoreResult<Option<SealedSecret>> {
        let found = self.read(|c| c.query_opt(SELECT, &[&id]))?;
        match found {
            Some(r) => sealed_row(&r),
            None => Err(StoreError::NotFound(Missing::Instance)),
        }
    }

    /// Reads the settings of instance `id` and replaces their token with
    /// what `change` makes of them (`None`: no settings left), recorded
    /// under `key_fingerprint`, in one transaction, so that two processes
    /// changing settings at once lose neither change. If `change` fails,
    /// nothing is written. `change` runs again, on the settings as they
    /// then are, when the transaction conflicted with another.
    pub(crate) fn change_settings<T: Send, E: From<StoreError> + Retryable + Send>(
        &self,
        id: RowId,
        key_fingerprint: &str,
        mut change: impl FnMut(Option<&SealedSecret>) -> Result<(Option<String>, T), E> + Send,
    ) -> Result<T, E> {
        self.write_with(|tx| {
            let found = tx.query_opt(SELECT, &[&id]).map_err(StoreError::from)?;
            let current = match found {
                Some(r) => sealed_row(&r)?,
                None => return Err(StoreError::NotFound(Missing::Instance).into()),
            };
            let (token, value) = change(current.as_ref())?;
            let fingerprint = token.as_ref().map(|_| key_fingerprint);
            tx.execute(
                "UPDATE amc_instances SET encrypted_config = $2, settings_key_fingerprint = $3,
                     updated_at = $4
                 WHERE id = $1",
                &[&id, &token, &fingerprint, &now()],
            )
            .map_err(StoreError::from)?;
            Ok(value)
        })
    }
}
