//! Login-with-Amazon credentials per user and profile, every secret a Fernet
//! token recorded with the fingerprint of its key, and the re-encryption of
//! one user's secrets for `key rotate`.

use rusqlite::{OptionalExtension, params};

use super::decode::{opt_time, parsed, time};
use super::{Db, StoreError, StoreResult, fmt_time, now};
use crate::domain::RowId;
use crate::domain::{DEFAULT_PROFILE, SealedSecret, SecretOf, StoredCredentials};
use crate::error::Result;
use crate::store::Rekey;
const SELECT: &str = "SELECT profile, client_id, client_secret_enc, refresh_token_enc, region,
    access_token_enc, access_token_expires, updated_at, key_fingerprint FROM credentials";

/// A user's secrets, one row each: a kind (0 a login, 1 an instance's
/// settings), whose (the profile or the instance ID), the token and its
/// key's fingerprint. `?1` is the user, `?2` a profile left out (or NULL).
const OWN_SECRETS: &str = "SELECT 0 AS kind, profile AS name, client_secret_enc AS token,
        key_fingerprint AS fp
    FROM credentials WHERE user_id = ?1 AND (?2 IS NULL OR profile <> ?2)
    UNION ALL
    SELECT 1, instance_id, encrypted_config, settings_key_fingerprint
    FROM amc_instances WHERE user_id = ?1 AND encrypted_config IS NOT NULL";

/// A row of [`OWN_SECRETS`] as the domain's record.
fn sealed_row(r: &rusqlite::Row) -> rusqlite::Result<SealedSecret> {
    let kind: i64 = r.get(0)?;
    let name: String = r.get(1)?;
    Ok(SealedSecret {
        of: if kind == 0 {
            SecretOf::Login { profile: name }
        } else {
            SecretOf::Settings { instance_id: name }
        },
        token: r.get(2)?,
        key_fingerprint: r.get(3)?,
    })
}

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
        key_fingerprint: r.get(8)?,
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
                     region, access_token_enc, access_token_expires, created_at, updated_at,
                     key_fingerprint)
                 VALUES (?1, ?9, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?10)
                 ON CONFLICT (user_id, profile) DO UPDATE SET client_id = ?2, client_secret_enc = ?3,
                     refresh_token_enc = ?4, region = ?5, access_token_enc = ?6,
                     access_token_expires = ?7, updated_at = ?8, key_fingerprint = ?10",
                params![
                    user,
                    c.client_id,
                    c.client_secret_enc,
                    c.refresh_token_enc,
                    c.region.as_str(),
                    c.access_token_enc,
                    c.access_token_expires.as_ref().map(fmt_time),
                    at,
                    c.profile,
                    c.key_fingerprint
                ],
            )?;
            Ok(())
        })
    }

    /// Caches an access token (encrypted) for `user`'s `profile`, unless
    /// the login is recorded under another key than `key_fingerprint`.
    pub(crate) fn save_access_token(
        &mut self,
        user: RowId,
        profile: &str,
        token_enc: &str,
        expires: &str,
        key_fingerprint: &str,
    ) -> StoreResult<()> {
        self.write(|tx| {
            tx.execute(
                "UPDATE credentials SET access_token_enc = ?3, access_token_expires = ?4,
                     key_fingerprint = ?5
                 WHERE user_id = ?1 AND profile = ?2
                     AND (key_fingerprint IS NULL OR key_fingerprint = ?5)",
                params![user, profile, token_enc, expires, key_fingerprint],
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

    /// One of `user`'s secrets per key fingerprint recorded with them (see
    /// [`crate::store::Store::key_samples`]).
    pub(crate) fn key_samples(
        &self,
        user: RowId,
        except_profile: Option<&str>,
    ) -> StoreResult<Vec<SealedSecret>> {
        let mut stmt = self.read().prepare(&format!(
            "SELECT kind, name, token, fp FROM (
                 SELECT kind, name, token, fp,
                     row_number() OVER (PARTITION BY fp ORDER BY kind, name) AS nth
                 FROM ({OWN_SECRETS}))
             WHERE nth = 1 ORDER BY fp"
        ))?;
        let rows = stmt.query_map(params![user, except_profile], sealed_row)?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// Rewrites the secrets `rekey` names through `reencrypt` in one
    /// transaction (see [`crate::store::Store::reencrypt_secrets`]).
    pub(crate) fn reencrypt_secrets<E: From<StoreError>>(
        &mut self,
        rekey: &Rekey<'_>,
        reencrypt: &(dyn Fn(&SealedSecret) -> Result<String, E> + Sync),
    ) -> Result<usize, E> {
        self.write_with(|tx| {
            let mut count = 0;
            type Row = (
                RowId,
                String,
                String,
                String,
                Option<String>,
                Option<String>,
            );
            let creds: Vec<Row> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT user_id, profile, client_secret_enc, refresh_token_enc,
                             access_token_enc, key_fingerprint
                         FROM credentials
                         WHERE user_id = ?1 OR key_fingerprint = ?2 OR key_fingerprint IS NULL",
                    )
                    .map_err(StoreError::from)?;
                let rows = stmt
                    .query_map(params![rekey.user, rekey.from], |r| {
                        Ok((
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                        ))
                    })
                    .map_err(StoreError::from)?;
                rows.collect::<rusqlite::Result<_>>()
                    .map_err(StoreError::from)?
            };
            for (owner, profile, secret, refresh, access, fp) in creds {
                let of = SecretOf::Login {
                    profile: profile.clone(),
                };
                let sealed = |token: String| SealedSecret {
                    of: of.clone(),
                    token,
                    key_fingerprint: fp.clone(),
                };
                let renewed = (|| {
                    Ok::<_, E>((
                        reencrypt(&sealed(secret))?,
                        reencrypt(&sealed(refresh))?,
                        access.map(|a| reencrypt(&sealed(a))).transpose()?,
                    ))
                })();
                let (secret, refresh, access) = match renewed {
                    Ok(renewed) => renewed,
                    Err(e) if rekey.must_rewrite(owner, fp.as_deref()) => return Err(e),
                    // Another user's, from before keys were recorded, and
                    // not under this key: theirs to rotate.
                    Err(_) => continue,
                };
                tx.execute(
                    "UPDATE credentials SET client_secret_enc = ?3, refresh_token_enc = ?4,
                         access_token_enc = ?5, key_fingerprint = ?6
                     WHERE user_id = ?1 AND profile = ?2",
                    params![owner, profile, secret, refresh, access, rekey.to],
                )
                .map_err(StoreError::from)?;
                count += 2 + usize::from(access.is_some());
            }
            type Config = (RowId, RowId, String, String, Option<String>);
            let configs: Vec<Config> = {
                let mut stmt = tx
                    .prepare(
                        "SELECT id, user_id, instance_id, encrypted_config, settings_key_fingerprint
                         FROM amc_instances
                         WHERE encrypted_config IS NOT NULL AND (user_id = ?1
                             OR settings_key_fingerprint = ?2 OR settings_key_fingerprint IS NULL)",
                    )
                    .map_err(StoreError::from)?;
                let rows = stmt
                    .query_map(params![rekey.user, rekey.from], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })
                    .map_err(StoreError::from)?;
                rows.collect::<rusqlite::Result<_>>()
                    .map_err(StoreError::from)?
            };
            for (id, owner, instance_id, token, fp) in configs {
                let sealed = SealedSecret {
                    of: SecretOf::Settings { instance_id },
                    token,
                    key_fingerprint: fp.clone(),
                };
                let token = match reencrypt(&sealed) {
                    Ok(token) => token,
                    Err(e) if rekey.must_rewrite(owner, fp.as_deref()) => return Err(e),
                    Err(_) => continue,
                };
                tx.execute(
                    "UPDATE amc_instances SET encrypted_config = ?2, settings_key_fingerprint = ?3
                     WHERE id = ?1",
                    params![id, token, rekey.to],
                )
                .map_err(StoreError::from)?;
                count += 1;
            }
            Ok(count)
        })
    }
}
