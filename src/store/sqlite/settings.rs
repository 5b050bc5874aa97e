//! The encrypted settings of an instance (`encrypted_config`): one Fernet
//! token, or NULL when the instance has none. The store only moves the
//! token; sealing and opening it is the caller's, with the key.

use rusqlite::{OptionalExtension, params};

use super::{Db, Missing, StoreError, StoreResult, fmt_time, now};
use crate::domain::RowId;

impl Db {
    /// The settings token of instance `id` (`None`: no settings).
    pub(crate) fn settings_token(&self, id: RowId) -> StoreResult<Option<String>> {
        self.read()
            .query_row(
                "SELECT encrypted_config FROM amc_instances WHERE id = ?1",
                [id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .ok_or_else(|| StoreError::NotFound(Missing::Instance))
    }

    /// Reads the settings token of instance `id` and replaces it with what
    /// `change` makes of it (`None`: no settings left), in one transaction,
    /// so that two processes changing settings at once lose neither change.
    /// If `change` fails, nothing is written.
    pub(crate) fn change_settings<T, E: From<StoreError>>(
        &mut self,
        id: RowId,
        mut change: impl FnMut(Option<&str>) -> Result<(Option<String>, T), E>,
    ) -> Result<T, E> {
        self.write_with(|tx| {
            let current: Option<String> = tx
                .query_row(
                    "SELECT encrypted_config FROM amc_instances WHERE id = ?1",
                    [id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(StoreError::from)?
                .ok_or(StoreError::NotFound(Missing::Instance))?;
            let (token, value) = change(current.as_deref())?;
            tx.execute(
                "UPDATE amc_instances SET encrypted_config = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, token, fmt_time(&now())],
            )
            .map_err(StoreError::from)?;
            Ok(value)
        })
    }
}
