//! Amazon Ads AMC accounts (entity IDs). Accounts are shared by all users of a
//! store; instances link to them.

use chrono::{DateTime, Utc};
use postgres::{Row, ToStatement, Transaction};

use super::decode::{count, country, entity, get, row_id, time};
use super::{Db, collect, is_unique_violation};
use crate::domain::{Account, AccountPatch, NewAccount, RowId, now};
use crate::store::{Clash, Missing, StoreError, StoreResult};

const SELECT: &str = "SELECT a.id, a.account_id, a.account_name, a.advertiser_id, a.country_code,
    a.marketplace_id, a.created_at, a.updated_at,
    amcctl_account_instances(a.id), a.profile
    FROM amc_accounts a";

/// The insert [`insert`] runs, shared with callers that prepare it once
/// for many accounts.
pub(super) const INSERT: &str = "INSERT INTO amc_accounts (id, account_id, account_name,
         advertiser_id, country_code, marketplace_id, created_at, updated_at, profile)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)";

/// Decodes one row of [`SELECT`]; a value the domain cannot hold fails the
/// read instead of printing a wrong account.
fn row(r: &Row) -> StoreResult<Account> {
    Ok(Account {
        id: row_id(r, 0)?,
        account_id: entity(r, 1)?,
        account_name: get(r, 2)?,
        advertiser_id: get(r, 3)?,
        country: country(r, 4)?,
        created_at: time(r, 6)?,
        updated_at: time(r, 7)?,
        instance_count: count(r, 8)?,
        profile: get(r, 9)?,
    })
}

/// A failed account write as the store reports it: a taken entity ID (or
/// row id) is a clash naming the entity, anything else the driver's error.
fn conflict_or_db(e: postgres::Error, account_id: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(Clash::Account(account_id.to_owned()))
    } else {
        e.into()
    }
}

/// Inserts `new` inside `tx`, created and updated `at`; shared by create,
/// import and discovery so that all three report a taken entity ID alike.
pub(super) fn insert(
    tx: &mut Transaction<'_>,
    new: &NewAccount,
    at: DateTime<Utc>,
) -> StoreResult<RowId> {
    insert_with(tx, INSERT, new, at)
}

/// As [`insert`], running `statement` (which must be [`INSERT`]): a caller
/// creating many accounts in one transaction prepares it once.
pub(super) fn insert_with<S: ToStatement + ?Sized>(
    tx: &mut Transaction<'_>,
    statement: &S,
    new: &NewAccount,
    at: DateTime<Utc>,
) -> StoreResult<RowId> {
    let id = new.id.unwrap_or_default();
    tx.execute(
        statement,
        &[
            &id,
            &new.account_id.as_str(),
            &new.account_name,
            &new.advertiser_id,
            &new.country.code(),
            &new.country.marketplace_id(),
            &at,
            &new.profile,
        ],
    )
    .map_err(|e| conflict_or_db(e, new.account_id.as_str()))?;
    Ok(id)
}

/// The account with this entity ID, with its instance count, for the
/// checks made before a transaction.
pub(super) fn by_entity(db: &Db, entity: &str) -> StoreResult<Option<Account>> {
    let found =
        db.read(|c| c.query_opt(&format!("{SELECT} WHERE a.account_id = $1"), &[&entity]))?;
    found.as_ref().map(row).transpose()
}

/// The row ids of the accounts with these entity IDs, keyed by entity ID,
/// in one statement: an import looks up every row's account at once.
pub(super) fn ids_by_entity(
    tx: &mut Transaction<'_>,
    entities: &[&str],
) -> StoreResult<Vec<(String, RowId)>> {
    let rows = tx.query(
        "SELECT account_id, id FROM amc_accounts WHERE account_id = ANY($1::text[])",
        &[&entities],
    )?;
    collect(rows, |r| Ok((get(r, 0)?, row_id(r, 1)?)))
}

impl Db {
    /// Every account, by name; names compare bytewise (`COLLATE "C"`) so
    /// that the order is the SQLite store's whatever the database's locale.
    pub(crate) fn accounts(&self) -> StoreResult<Vec<Account>> {
        let rows = self.read(|c| {
            c.query(
                &format!(
                    "{SELECT} ORDER BY a.account_name COLLATE \"C\", a.account_id COLLATE \"C\""
                ),
                &[],
            )
        })?;
        collect(rows, row)
    }

    /// The account with this row id.
    pub(crate) fn account(&self, id: RowId) -> StoreResult<Option<Account>> {
        let found = self.read(|c| c.query_opt(&format!("{SELECT} WHERE a.id = $1"), &[&id]))?;
        found.as_ref().map(row).transpose()
    }

    /// Accounts matching a reference: the row UUID, the entity ID, or the exact name.
    /// A reference shaped like a UUID is a row id first, as for instances.
    pub(crate) fn find_accounts(&self, reference: &str) -> StoreResult<Vec<Account>> {
        let reference = reference.trim();
        let as_id = reference.parse::<RowId>().ok();
        if let Some(id) = as_id
            && let Some(account) = self.account(id)?
        {
            return Ok(vec![account]);
        }
        // The id column is a uuid: a reference that is no UUID cannot name
        // a row by id, and is not bound as one.
        let rows = self.read(|c| {
            c.query(
                &format!(
                    "{SELECT} WHERE ($2::uuid IS NOT NULL AND a.id = $2)
                         OR a.account_id = $1 OR a.account_name = $1
                     ORDER BY a.account_name COLLATE \"C\", a.account_id COLLATE \"C\""
                ),
                &[&reference, &as_id],
            )
        })?;
        collect(rows, row)
    }

    /// Creates an account; exit 5 if the entity ID is already registered.
    pub(crate) fn create_account(&self, new: &NewAccount) -> StoreResult<Account> {
        let at = now();
        let id = self.write(|tx| insert(tx, new, at))?;
        self.account(id)?
            .ok_or_else(|| StoreError::Vanished("account"))
    }

    /// Applies `patch` to the account `id`.
    pub(crate) fn update_account(&self, id: RowId, patch: &AccountPatch) -> StoreResult<Account> {
        let at = now();
        // One statement: a NULL parameter keeps the column (COALESCE); the
        // advertiser ID, which may be cleared, says with $4 whether to set it.
        let entity = patch.account_id.as_ref().map(|e| e.as_str().to_owned());
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE amc_accounts SET
                         account_id = COALESCE($2::text, account_id),
                         account_name = COALESCE($3::text, account_name),
                         advertiser_id = CASE WHEN $4::boolean THEN $5::text ELSE advertiser_id END,
                         country_code = COALESCE($6::text, country_code),
                         marketplace_id = COALESCE($7::text, marketplace_id),
                         profile = COALESCE($9::text, profile),
                         updated_at = $8
                     WHERE id = $1",
                    &[
                        &id,
                        &entity,
                        &patch.account_name,
                        &patch.advertiser_id.is_some(),
                        &patch.advertiser_id.clone().flatten(),
                        &patch.country.map(|c| c.code()),
                        &patch.country.map(|c| c.marketplace_id()),
                        &at,
                        &patch.profile,
                    ],
                )
                .map_err(|e| conflict_or_db(e, entity.as_deref().unwrap_or_default()))?;
            if n == 0 {
                return Err(StoreError::NotFound(Missing::Account));
            }
            Ok(())
        })?;
        self.account(id)?
            .ok_or_else(|| StoreError::NotFound(Missing::Account))
    }

    /// Deletes an account; exit 5, naming them, while instances link to it.
    pub(crate) fn delete_account(&self, id: RowId) -> StoreResult<()> {
        self.write(|tx| {
            let rows = tx.query(
                "SELECT i.instance_id, u.name FROM amc_instances i JOIN users u ON u.id = i.user_id
                     WHERE i.account_id = $1 ORDER BY i.instance_id COLLATE \"C\"",
                &[&id],
            )?;
            let mut linked = collect(rows, |r| {
                Ok(format!(
                    "{} ({})",
                    get::<String>(r, 0)?,
                    get::<String>(r, 1)?
                ))
            })?;
            // Those row security hides are counted, never named.
            let all = tx.query_one("SELECT amcctl_account_instances($1)", &[&id])?;
            let hidden = count(&all, 0)?.saturating_sub(linked.len() as u64);
            linked.extend((0..hidden).map(|_| "another user's instance".to_owned()));
            if !linked.is_empty() {
                return Err(StoreError::Conflict(Clash::AccountInUse(linked)));
            }
            let n = tx.execute("DELETE FROM amc_accounts WHERE id = $1", &[&id])?;
            if n == 0 {
                return Err(StoreError::NotFound(Missing::Account));
            }
            Ok(())
        })
    }
}
