//! Login-with-Amazon credentials per user and profile, every secret a Fernet
//! token, and the re-encryption of all stored secrets for `key rotate`.

use super::decode::{get, opt_time, parsed, row_id, time};
use super::health::stored;
use super::{Db, StoreError, StoreResult};
use crate::domain::{DEFAULT_PROFILE, RowId, StoredCredentials, now, parse_time};

const SELECT: &str = "SELECT profile, client_id, client_secret_enc, refresh_token_enc, region,
    access_token_enc, access_token_expires, updated_at FROM credentials";

/// A row of [`SELECT`] as the domain's record.
fn cred_row(r: &postgres::Row) -> StoreResult<StoredCredentials> {
    Ok(StoredCredentials {
        profile: get(r, 0)?,
        client_id: get(r, 1)?,
        client_secret_enc: get(r, 2)?,
        refresh_token_enc: get(r, 3)?,
        region: parsed(r, 4, "a region")?,
        access_token_enc: get(r, 5)?,
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
        let row = self.read(|c| {
            c.query_opt(
                &format!("{SELECT} WHERE user_id = $1 AND profile = $2"),
                &[&user, &profile],
            )
        })?;
        row.as_ref().map(cred_row).transpose()
    }

    /// Every profile of `user`, by name (byte order, as SQLite sorts).
    pub(crate) fn profiles(&self, user: RowId) -> StoreResult<Vec<StoredCredentials>> {
        let rows = self.read(|c| {
            c.query(
                &format!("{SELECT} WHERE user_id = $1 ORDER BY profile COLLATE \"C\""),
                &[&user],
            )
        })?;
        super::collect(rows, cred_row)
    }

    /// The profile `user`'s commands use when none is named.
    pub(crate) fn default_profile(&self, user: RowId) -> StoreResult<String> {
        let row = self
            .read(|c| c.query_opt("SELECT default_profile FROM users WHERE id = $1", &[&user]))?;
        let stored: Option<String> = match row {
            Some(r) => get(&r, 0)?,
            None => None,
        };
        Ok(stored.unwrap_or_else(|| DEFAULT_PROFILE.to_owned()))
    }

    /// Makes `profile` the one `user`'s commands use when none is named.
    pub(crate) fn set_default_profile(&self, user: RowId, profile: &str) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE users SET default_profile = $2 WHERE id = $1",
                &[&user, &profile],
            )?;
            Ok(())
        })
    }

    /// Saves (replacing) the credentials of `user` under `c.profile`; a
    /// cached access token is kept only when given.
    pub(crate) fn save_credentials(&self, user: RowId, c: &StoredCredentials) -> StoreResult<()> {
        let at = now();
        let expires = c.access_token_expires.as_ref().map(stored);
        let region = c.region.as_str();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO credentials (user_id, profile, client_id, client_secret_enc, refresh_token_enc,
                     region, access_token_enc, access_token_expires, created_at, updated_at)
                 VALUES ($1, $9, $2, $3, $4, $5, $6, $7, $8, $8)
                 ON CONFLICT (user_id, profile) DO UPDATE SET client_id = $2, client_secret_enc = $3,
                     refresh_token_enc = $4, region = $5, access_token_enc = $6,
                     access_token_expires = $7, updated_at = $8",
                &[
                    &user,
                    &c.client_id,
                    &c.client_secret_enc,
                    &c.refresh_token_enc,
                    &region,
                    &c.access_token_enc,
                    &expires,
                    &at,
                    &c.profile,
                ],
            )?;
            Ok(())
        })
    }

    /// Caches an access token (encrypted) for `user`'s `profile`. The
    /// expiry comes as the store's time text; the column is a timestamp, so
    /// text that is not one is refused rather than stored.
    pub(crate) fn save_access_token(
        &self,
        user: RowId,
        profile: &str,
        token_enc: &str,
        expires: &str,
    ) -> StoreResult<()> {
        let expires = parse_time(expires).map(|t| stored(&t)).ok_or_else(|| {
            StoreError::Backend(
                format!("access token expiry {expires:?} is not an RFC 3339 time").into(),
            )
        })?;
        self.write(|tx| {
            tx.execute(
                "UPDATE credentials SET access_token_enc = $3, access_token_expires = $4
                 WHERE user_id = $1 AND profile = $2",
                &[&user, &profile, &token_enc, &expires],
            )?;
            Ok(())
        })
    }

    /// Removes the credentials of `user`'s `profile`; returns whether there
    /// were any.
    pub(crate) fn delete_credentials(&self, user: RowId, profile: &str) -> StoreResult<bool> {
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM credentials WHERE user_id = $1 AND profile = $2",
                &[&user, &profile],
            )?;
            Ok(n > 0)
        })
    }

    /// One stored secret, if any: rotation uses it to tell which key the store is under.
    pub(crate) fn sample_secret(&self) -> StoreResult<Option<String>> {
        let row = self.read(|c| {
            c.query_opt(
                "SELECT client_secret_enc FROM credentials
                 UNION ALL SELECT encrypted_config FROM amc_instances WHERE encrypted_config IS NOT NULL
                 LIMIT 1",
                &[],
            )
        })?;
        row.as_ref().map(|r| get(r, 0)).transpose()
    }

    /// One stored secret that is not the credentials of `user`'s `profile`,
    /// if any: the key that stores new credentials there must open it, so
    /// that one store never holds ciphertexts of two keys.
    pub(crate) fn sample_secret_except(
        &self,
        user: RowId,
        profile: &str,
    ) -> StoreResult<Option<String>> {
        let row = self.read(|c| {
            c.query_opt(
                "SELECT client_secret_enc FROM credentials WHERE NOT (user_id = $1 AND profile = $2)
                 UNION ALL SELECT encrypted_config FROM amc_instances WHERE encrypted_config IS NOT NULL
                 LIMIT 1",
                &[&user, &profile],
            )
        })?;
        row.as_ref().map(|r| get(r, 0)).transpose()
    }

    /// Rewrites every stored secret through `reencrypt` in one transaction;
    /// returns how many secrets were rewritten. If `reencrypt` fails for any
    /// secret, nothing changes. Each table is rewritten in one statement, so
    /// that a fleet's thousands of instance configurations do not cost a
    /// round trip each.
    pub(crate) fn reencrypt_secrets<E: From<StoreError> + crate::store::Retryable + Send>(
        &self,
        reencrypt: &(dyn Fn(&str) -> Result<String, E> + Sync),
    ) -> Result<usize, E> {
        self.write_with(|tx| {
            let mut count = 0;
            let creds = tx
                .query(
                    "SELECT user_id, profile, client_secret_enc, refresh_token_enc, access_token_enc
                     FROM credentials",
                    &[],
                )
                .map_err(StoreError::from)?;
            // Every profile of every user: one key for the whole store.
            let mut users = Vec::with_capacity(creds.len());
            let mut profiles = Vec::with_capacity(creds.len());
            let mut secrets = Vec::with_capacity(creds.len());
            let mut refreshes = Vec::with_capacity(creds.len());
            let mut accesses = Vec::with_capacity(creds.len());
            for r in &creds {
                let secret: String = get(r, 2)?;
                let refresh: String = get(r, 3)?;
                let access: Option<String> = get(r, 4)?;
                let access = access.as_deref().map(reencrypt).transpose()?;
                count += 2 + usize::from(access.is_some());
                users.push(row_id(r, 0)?);
                profiles.push(get::<String>(r, 1)?);
                secrets.push(reencrypt(&secret)?);
                refreshes.push(reencrypt(&refresh)?);
                accesses.push(access);
            }
            if !users.is_empty() {
                tx.execute(
                    "UPDATE credentials c SET client_secret_enc = n.s, refresh_token_enc = n.r,
                         access_token_enc = n.a
                     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
                          AS n(u, p, s, r, a)
                     WHERE c.user_id = n.u AND c.profile = n.p",
                    &[&users, &profiles, &secrets, &refreshes, &accesses],
                )
                .map_err(StoreError::from)?;
            }

            let configs = tx
                .query(
                    "SELECT id, encrypted_config FROM amc_instances WHERE encrypted_config IS NOT NULL",
                    &[],
                )
                .map_err(StoreError::from)?;
            let mut ids = Vec::with_capacity(configs.len());
            let mut sealed = Vec::with_capacity(configs.len());
            for r in &configs {
                let config: String = get(r, 1)?;
                ids.push(row_id(r, 0)?);
                sealed.push(reencrypt(&config)?);
                count += 1;
            }
            if !ids.is_empty() {
                tx.execute(
                    "UPDATE amc_instances i SET encrypted_config = n.c
                     FROM unnest($1::uuid[], $2::text[]) AS n(id, c)
                     WHERE i.id = n.id",
                    &[&ids, &sealed],
                )
                .map_err(StoreError::from)?;
            }
            Ok(count)
        })
    }
}
