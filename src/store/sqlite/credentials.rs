//! Login-with-Amazon credentials per user and profile, every secret a Fernet
//! token, and the re-encryption of all stored secrets for `key rotate`.

use rusqlite::{OptionalExtension, params};

use super::decode::{opt_time, parsed, time};
use super::{Db, StoreError, StoreResult, fmt_time, now};
use crate::domain::RowId;
use crate::domain::{DEFAULT_PROFILE, StoredCredentials};
use crate::error::Result;
const SELECT: &str = "SELECT profile, client_id, client_secret_enc, refresh_token_enc, region,
    access_token_enc, access_token_expires, updated_at FROM credentials";

fn cred_row(r: &rusqlite::Row) -> rusqlite::Result<StoredCredentials> {
    Ok(StoredCredentials {
        profile: r.get(0)?,
        client_id: r.get(1)?,
        client_secret_enc: r.get(2)?,
        refresh_token_enc: r.get(3)?,
        region: parsed(r, 4, "a region")?,
        access_token_enc: r.get(5)?,
        access_token_expires: opt_time(r, 6)?,
        updated_at: time(r, 7)?,
    })
}

impl Db {
    /// The credentials of `user` under `profile`, if logged in there.
    pub(crate) fn credentials(
        &self,
        user: RowId,
        profile: &str,
    ) -> StoreResult<Option<StoredCredentials>> {
        self.read()
            .query_row(
                &format!("{SELECT} WHERE user_id = ?1 AND profile = ?2"),
                params![user, profile],
                cred_row,
            )
            .optional()
            .map_err(StoreError::from)
    }

    /// Every profile of `user`, by name.
    pub(crate) fn profiles(&self, user: RowId) -> StoreResult<Vec<StoredCredentials>> {
        let mut stmt = self
            .read()
            .prepare(&format!("{SELECT} WHERE user_id = ?1 ORDER BY profile"))?;
        let rows = stmt.query_map([user], cred_row)?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// The profile `user`'s commands use when none is named.
    pub(crate) fn default_profile(&self, user: RowId) -> StoreResult<String> {
        let stored: Option<Option<String>> = self
            .read()
            .query_row(
                "SELECT default_profile FROM users WHERE id = ?1",
                [user],
                |r| r.get(0),
            )
            .optional()?;
        Ok(stored
            .flatten()
            .unwrap_or_else(|| DEFAULT_PROFILE.to_owned()))
    }

    /// Makes `profile` the one `user`'s commands use when none is named.
    pub(crate) fn set_default_profile(&mut self, user: RowId, profile: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE users SET default_profile = ?2 WHERE id = ?1",
                params![user, profile],
            )?;
            Ok(())
        })
    }

    /// Saves (replacing) the credentials of `user` under `c.profile`; a
    /// cached access token is kept only when given.
    pub(crate) fn save_credentials(
        &mut self,
        user: RowId,
        c: &StoredCredentials,
    ) -> StoreResult<()> {
        let at = fmt_time(&now());
        self.write(|tx| {
            tx.execute(
                "INSERT INTO credentials (user_id, profile, client_id, client_secret_enc, refresh_token_enc,
                     region, access_token_enc, access_token_expires, created_at, updated_at)
                 VALUES (?1, ?9, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)
                 ON CONFLICT (user_id, profile) DO UPDATE SET client_id = ?2, client_secret_enc = ?3,
                     refresh_token_enc = ?4, region = ?5, access_token_enc = ?6,
                     access_token_expires = ?7, updated_at = ?8",
                params![
                    user,
                    c.client_id,
                    c.client_secret_enc,
                    c.refresh_token_enc,
                    c.region.as_str(),
                    c.access_token_enc,
                    c.access_token_expires.as_ref().map(fmt_time),
                    at,
                    c.profile
                ],
            )
            ?;
            Ok(())
        })
    }

    /// Caches an access token (encrypted) for `user`'s `profile`.
    pub(crate) fn save_access_token(
        &mut self,
        user: RowId,
        profile: &str,
        token_enc: &str,
        expires: &str,
    ) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE credentials SET access_token_enc = ?3, access_token_expires = ?4
                 WHERE user_id = ?1 AND profile = ?2",
                params![user, profile, token_enc, expires],
            )?;
            Ok(())
        })
    }

    /// Removes the credentials of `user`'s `profile`; returns whether there
    /// were any.
    pub(crate) fn delete_credentials(&mut self, user: RowId, profile: &str) -> StoreResult<bool> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM credentials WHERE user_id = ?1 AND profile = ?2",
                params![user, profile],
            )
            .map(|n| n > 0)
            .map_err(StoreError::from)
        })
    }

    /// One stored secret, if any: rotation uses it to tell which key the store is under.
    pub(crate) fn sample_secret(&self) -> StoreResult<Option<String>> {
        self.read()
            .query_row(
                "SELECT client_secret_enc FROM credentials
                 UNION ALL SELECT encrypted_config FROM amc_instances WHERE encrypted_config IS NOT NULL
                 LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::from)
    }

    /// One stored secret that is not the credentials of `user`'s `profile`,
    /// if any: the key that stores new credentials there must open it, so
    /// that one store never holds ciphertexts of two keys.
    pub(crate) fn sample_secret_except(
        &self,
        user: RowId,
        profile: &str,
    ) -> StoreResult<Option<String>> {
        self.read()
            .query_row(
                "SELECT client_secret_enc FROM credentials WHERE NOT (user_id = ?1 AND profile = ?2)
                 UNION ALL SELECT encrypted_config FROM amc_instances WHERE encrypted_config IS NOT NULL
                 LIMIT 1",
                params![user, profile],
                |r| r.get(0),
            )
            .optional()
            .map_err(StoreError::from)
    }

    /// Rewrites every stored secret through `reencrypt` in one transaction;
    /// returns how many secrets were rewritten. If `reencrypt` fails for any
    /// secret, nothing changes.
    pub(crate) fn reencrypt_secrets<E: From<StoreError>>(
        &mut self,
        reencrypt: &(dyn Fn(&str) -> Result<String, E> + Sync),
    ) -> Result<usize, E> {
        self.write_with(|tx| {
            let mut count = 0;
            type Row = (RowId, String, String, String, Option<String>);
            let creds: Vec<Row> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT user_id, profile, client_secret_enc, refresh_token_enc, access_token_enc
                         FROM credentials",
                    )
                    .map_err(StoreError::from)?;
                let rows = stmt
                    .query_map([], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .map_err(StoreError::from)?;
                rows.collect::<rusqlite::Result<_>>().map_err(StoreError::from)?
            };
            // Every profile of every user: one key for the whole store.
            for (user, profile, secret, refresh, access) in creds {
                let access = access.as_deref().map(reencrypt).transpose()?;
                tx.execute(
                    "UPDATE credentials SET client_secret_enc = ?3, refresh_token_enc = ?4, access_token_enc = ?5
                     WHERE user_id = ?1 AND profile = ?2",
                    params![user, profile, reencrypt(&secret)?, reencrypt(&refresh)?, access],
                )
                .map_err(StoreError::from)?;
                count += 2 + usize::from(access.is_some());
            }
            let configs: Vec<(RowId, String)> = {
                let mut stmt = tx
                    .prepare("SELECT id, encrypted_config FROM amc_instances WHERE encrypted_config IS NOT NULL")
                    .map_err(StoreError::from)?;
                let rows = stmt
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .map_err(StoreError::from)?;
                rows.collect::<rusqlite::Result<_>>().map_err(StoreError::from)?
            };
            for (id, config) in configs {
                tx.execute(
                    "UPDATE amc_instances SET encrypted_config = ?2 WHERE id = ?1",
                    params![id, reencrypt(&config)?],
                )
                .map_err(StoreError::from)?;
                count += 1;
            }
            Ok(count)
        })
    }
}
