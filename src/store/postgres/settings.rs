//! The encrypted settings of an instance (`encrypted_config`): one Fernet
//! token, or NULL when the instance has none. The store only moves the
//! token; sealing and opening it is the caller's, with the key.

use super::Db;
use super::decode::get;
use crate::domain::{RowId, now};
use crate::store::{Missing, Retryable, StoreError, StoreResult};

impl Db {
    /// The settings token of instance `id` (`None`: no settings).
    pub(crate) fn settings_token(&self, id: RowId) -> StoreResult<Option<String>> {
        let found = self.read(|c| {
            c.query_opt(
                "SELECT encrypted_config FROM amc_instances WHERE id = $1",
                &[&id],
            )
        })?;
        match found {
            Some(r) => get(&r, 0),
            None => Err(StoreError::NotFound(Missing::Instance)),
        }
    }

    /// Reads the settings token of instance `id` and replaces it with what
    /// `change` makes of it (`None`: no settings left), in one transaction,
    /// so that two processes changing settings at once lose neither change.
    /// If `change` fails, nothing is written. `change` runs again, on the
    /// token as it then is, when the transaction conflicted with another.
    pub(crate) fn change_settings<T: Send, E: From<StoreError> + Retryable + Send>(
        &self,
        id: RowId,
        mut change: impl FnMut(Option<&str>) -> Result<(Option<String>, T), E> + Send,
    ) -> Result<T, E> {
        self.write_with(|tx| {
            let found = tx
                .query_opt(
                    "SELECT encrypted_config FROM amc_instances WHERE id = $1",
                    &[&id],
                )
                .map_err(StoreError::from)?;
            let current: Option<String> = match found {
                Some(r) => get(&r, 0)?,
                None => return Err(StoreError::NotFound(Missing::Instance).into()),
            };
            let (token, value) = change(current.as_deref())?;
            tx.execute(
                "UPDATE amc_instances SET encrypted_config = $2, updated_at = $3 WHERE id = $1",
                &[&id, &token, &now()],
            )
            .map_err(StoreError::from)?;
            Ok(value)
        })
    }
}
