//! Login-with-Amazon credentials per user and profile, every secret a Fernet
//! token recorded with the fingerprint of its key, and the re-encryption of
//! one user's secrets for `key rotate`.

use super::decode::{get, opt_time, parsed, row_id, time};
use super::health::stored;
use super::{Db, StoreError, StoreResult};
use crate::domain::{
    DEFAULT_PROFILE, RowId, SealedSecret, SecretOf, StoredCredentials, now, parse_time,
};
use crate::store::Rekey;

const SELECT: &str = "SELECT profile, client_id, client_secret_enc, refresh_token_enc, region,
    access_token_enc, access_token_expires, updated_at, key_fingerprint FROM credentials";

/// A user's secrets, one row each: a kind (0 a login, 1 an instance's
/// settings), whose (the profile or the instance ID), the token and its
/// key's fingerprint. `$1` is the user, `$2` a profile left out (or NULL).
const OWN_SECRETS: &str = "SELECT 0 AS kind, profile AS name, client_secret_enc AS token,
        key_fingerprint AS fp
    FROM credentials WHERE user_id = $1 AND ($2::text IS NULL OR profile <> $2::text)
    UNION ALL
    SELECT 1, instance_id, encrypted_config, settings_key_fingerprint
    FROM amc_instances WHERE user_id = $1 AND encrypted_config IS NOT NULL";

/// A row of [`OWN_SECRETS`] as the domain's record.
fn sealed_row(r: &postgres::Row) -> StoreResult<SealedSecret> {
    let kind: i32 = get(r, 0)?;
    let name: String = get(r, 1)?;
    Ok(SealedSecret {
        of: if kind == 0 {
            SecretOf::Login { profile: name }
        } else {
            SecretOf::Settings { instance_id: name }
        },
        token: get(r, 2)?,
        key_fingerprint: get(r, 3)?,
    })
}

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
        key_fingerprint: get(r, 8)?,
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
                     region, access_token_enc, access_token_expires, created_at, updated_at,
                     key_fingerprint)
                 VALUES ($1, $9, $2, $3, $4, $5, $6, $7, $8, $8, $10)
                 ON CONFLICT (user_id, profile) DO UPDATE SET client_id = $2, client_secret_enc = $3,
                     refresh_token_enc = $4, region = $5, access_token_enc = $6,
                     access_token_expires = $7, updated_at = $8, key_fingerprint = $10",
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
                    &c.key_fingerprint,
                ],
            )?;
            Ok(())
        })
    }

    /// Caches an access token (encrypted) for `user`'s `profile`, unless
    /// the login is recorded under another key than `key_fingerprint`. The
    /// expiry comes as the store's time text; the column is a timestamp, so
    /// text that is not one is refused rather than stored.
    pub(crate) fn save_access_token(
        &self,
        user: RowId,
        profile: &str,
        token_enc: &str,
        expires: &str,
        key_fingerprint: &str,
    ) -> StoreResult<()> {
        let expires = parse_time(expires).map(|t| stored(&t)).ok_or_else(|| {
            StoreError::Backend(
                format!("access token expiry {expires:?} is not an RFC 3339 time").into(),
            )
        })?;
        self.write(|tx| {
            tx.execute(
                "UPDATE credentials SET access_token_enc = $3, access_token_expires = $4,
                     key_fingerprint = $5
                 WHERE user_id = $1 AND profile = $2
                     AND (key_fingerprint IS NULL OR key_fingerprint = $5)",
                &[&user, &profile, &token_enc, &expires, &key_fingerprint],
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

    /// One of `user`'s secrets per key fingerprint recorded with them (see
    /// [`crate::store::Store::key_samples`]).
    pub(crate) fn key_samples(
        &self,
        user: RowId,
        except_profile: Option<&str>,
    ) -> StoreResult<Vec<SealedSecret>> {
        let sql = format!(
            "SELECT kind, name, token, fp FROM (
                 SELECT kind, name, token, fp,
                     row_number() OVER (PARTITION BY fp ORDER BY kind, name COLLATE \"C\") AS nth
                 FROM ({OWN_SECRETS}) AS own) AS firsts
             WHERE nth = 1 ORDER BY fp COLLATE \"C\""
        );
        let rows = self.read(|c| c.query(&sql, &[&user, &except_profile]))?;
        super::collect(rows, sealed_row)
    }

    /// Rewrites the secrets `rekey` names through `reencrypt` in one
    /// transaction (see [`crate::store::Store::reencrypt_secrets`]). Each
    /// table is rewritten in one statement, so that a fleet's thousands of
    /// instance configurations do not cost a round trip each.
    pub(crate) fn reencrypt_secrets<E: From<StoreError> + crate::store::Retryable + Send>(
        &self,
        rekey: &Rekey<'_>,
        reencrypt: &(dyn Fn(&SealedSecret) -> Result<String, E> + Sync),
    ) -> Result<usize, E> {
        self.write_with(|tx| {
            let mut count = 0;
            let creds = tx
                .query(
                    "SELECT user_id, profile, client_secret_enc, refresh_token_enc,
                         access_token_enc, key_fingerprint
                     FROM credentials
                     WHERE user_id = $1 OR key_fingerprint = $2 OR key_fingerprint IS NULL",
                    &[&rekey.user, &rekey.from],
                )
                .map_err(StoreError::from)?;
            let mut owners = Vec::with_capacity(creds.len());
            let mut profiles = Vec::with_capacity(creds.len());
            let mut secrets = Vec::with_capacity(creds.len());
            let mut refreshes = Vec::with_capacity(creds.len());
            let mut accesses = Vec::with_capacity(creds.len());
            for r in &creds {
                let owner = row_id(r, 0)?;
                let profile: String = get(r, 1)?;
                let fp: Option<String> = get(r, 5)?;
                let sealed = |idx: usize| -> StoreResult<Option<SealedSecret>> {
                    let token: Option<String> = get(r, idx)?;
                    Ok(token.map(|token| SealedSecret {
                        of: SecretOf::Login {
                            profile: profile.clone(),
                        },
                        token,
                        key_fingerprint: fp.clone(),
                    }))
                };
                let renewed = |idx: usize| -> Result<Option<String>, E> {
                    match sealed(idx)? {
                        Some(s) => Ok(Some(reencrypt(&s)?)),
                        None => Ok(None),
                    }
                };
                let all = (|| Ok::<_, E>((renewed(2)?, renewed(3)?, renewed(4)?)))();
                let (secret, refresh, access) = match all {
                    Ok(all) => all,
                    Err(e) if rekey.must_rewrite(owner, fp.as_deref()) => return Err(e),
                    // Another user's, from before keys were recorded, and
                    // not under this key: theirs to rotate.
                    Err(_) => continue,
                };
                count += 2 + usize::from(access.is_some());
                owners.push(owner);
                secrets.push(secret);
                refreshes.push(refresh);
                accesses.push(access);
                profiles.push(profile);
            }
            if !profiles.is_empty() {
                tx.execute(
                    "UPDATE credentials c SET client_secret_enc = n.s, refresh_token_enc = n.r,
                         access_token_enc = n.a, key_fingerprint = $6
                     FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[])
                         AS n(u, p, s, r, a)
                     WHERE c.user_id = n.u AND c.profile = n.p",
                    &[&owners, &profiles, &secrets, &refreshes, &accesses, &rekey.to],
                )
                .map_err(StoreError::from)?;
            }

            let configs = tx
                .query(
                    "SELECT id, instance_id, encrypted_config, settings_key_fingerprint, user_id
                     FROM amc_instances
                     WHERE encrypted_config IS NOT NULL AND (user_id = $1
                         OR settings_key_fingerprint = $2 OR settings_key_fingerprint IS NULL)",
                    &[&rekey.user, &rekey.from],
                )
                .map_err(StoreError::from)?;
            let mut ids = Vec::with_capacity(configs.len());
            let mut sealed = Vec::with_capacity(configs.len());
            for r in &configs {
                let fp: Option<String> = get(r, 3)?;
                let secret = SealedSecret {
                    of: SecretOf::Settings {
                        instance_id: get(r, 1)?,
                    },
                    token: get(r, 2)?,
                    key_fingerprint: fp.clone(),
                };
                let token = match reencrypt(&secret) {
                    Ok(token) => token,
                    Err(e) if rekey.must_rewrite(row_id(r, 4)?, fp.as_deref()) => return Err(e),
                    Err(_) => continue,
                };
                ids.push(row_id(r, 0)?);
                sealed.push(token);
                count += 1;
            }
            if !ids.is_empty() {
                tx.execute(
                    "UPDATE amc_instances i SET encrypted_config = n.c, settings_key_fingerprint = $3
                     FROM unnest($1::uuid[], $2::text[]) AS n(id, c)
                     WHERE i.id = n.id",
                    &[&ids, &sealed, &rekey.to],
                )
                .map_err(StoreError::from)?;
            }
            Ok(count)
        })
    }
}
