//! Amazon Ads AMC accounts (entity IDs). Accounts are shared by all users of a
//! store; instances link to them.

use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::decode::{country, entity, time};
use super::{Clash, Db, Missing, StoreError, StoreResult, fmt_time, is_unique_violation, now};
use crate::domain::RowId;
use crate::domain::{Account, AccountPatch, NewAccount};

const SELECT: &str = "SELECT a.id, a.account_id, a.account_name, a.advertiser_id, a.country_code,
    a.marketplace_id, a.created_at, a.updated_at,
    (SELECT count(*) FROM amc_instances i WHERE i.account_id = a.id), a.profile
    FROM amc_accounts a";

fn row(r: &Row) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get(0)?,
        account_id: entity(r, 1)?,
        account_name: r.get(2)?,
        advertiser_id: r.get(3)?,
        country: country(r, 4)?,
        created_at: time(r, 6)?,
        updated_at: time(r, 7)?,
        instance_count: r.get(8)?,
        profile: r.get(9)?,
    })
}

fn conflict_or_db(e: rusqlite::Error, account_id: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict(Clash::Account(account_id.to_owned()))
    } else {
        e.into()
    }
}

/// Inserts `new` inside `tx`; used by create and by import.
pub(super) fn insert(tx: &Transaction, new: &NewAccount, at: &str) -> StoreResult<RowId> {
    let id = new.id.unwrap_or_default();
    tx.execute(
        "INSERT INTO amc_accounts (id, account_id, account_name, advertiser_id, country_code,
             marketplace_id, created_at, updated_at, profile)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)",
        params![
            id,
            new.account_id.as_str(),
            new.account_name,
            new.advertiser_id,
            new.country.code(),
            new.country.marketplace_id(),
            at,
            new.profile
        ],
    )
    .map_err(|e| conflict_or_db(e, new.account_id.as_str()))?;
    Ok(id)
}

pub(super) fn by_entity(tx: &rusqlite::Connection, entity: &str) -> StoreResult<Option<Account>> {
    tx.query_row(&format!("{SELECT} WHERE a.account_id = ?1"), [entity], row)
        .optional()
        .map_err(StoreError::from)
}

/// The row id of the account with this entity ID, without the counts
/// [`by_entity`] computes.
pub(super) fn id_by_entity(tx: &rusqlite::Connection, entity: &str) -> StoreResult<Option<RowId>> {
    tx.query_row(
        "SELECT id FROM amc_accounts WHERE account_id = ?1",
        [entity],
        |r| r.get(0),
    )
    .optional()
    .map_err(StoreError::from)
}

impl Db {
    /// Every account, by name.
    pub(crate) fn accounts(&self) -> StoreResult<Vec<Account>> {
        let mut stmt = self
            .read()
            .prepare(&format!("{SELECT} ORDER BY a.account_name, a.account_id"))?;
        let rows = stmt.query_map([], row)?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// The account with this row id.
    pub(crate) fn account(&self, id: RowId) -> StoreResult<Option<Account>> {
        self.read()
            .query_row(&format!("{SELECT} WHERE a.id = ?1"), [id], row)
            .optional()
            .map_err(StoreError::from)
    }

    /// Accounts matching a reference: the row UUID, the entity ID, or the exact name.
    /// A reference shaped like a UUID is a row id first, as for instances.
    pub(crate) fn find_accounts(&self, reference: &str) -> StoreResult<Vec<Account>> {
        let reference = reference.trim();
        if reference.parse::<crate::domain::RowId>().is_ok() {
            let mut stmt = self.read().prepare(&format!("{SELECT} WHERE a.id = ?1"))?;
            let by_id: Vec<Account> = stmt
                .query_map([super::canonical_id(reference)], row)?
                .collect::<rusqlite::Result<_>>()?;
            if !by_id.is_empty() {
                return Ok(by_id);
            }
        }
        let mut stmt = self.read().prepare(&format!(
            "{SELECT} WHERE a.id = ?2 OR a.account_id = ?1 OR a.account_name = ?1
                 ORDER BY a.account_name"
        ))?;
        let rows = stmt.query_map([reference, &super::canonical_id(reference)], row)?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// Creates an account; exit 5 if the entity ID is already registered.
    pub(crate) fn create_account(&mut self, new: &NewAccount) -> StoreResult<Account> {
        let at = fmt_time(&now());
        let id = self.write(|tx| insert(tx, new, &at))?;
        self.account(id)?
            .ok_or_else(|| StoreError::Vanished("account"))
    }

    /// Applies `patch` to the account `id`.
    pub(crate) fn update_account(
        &mut self,
        id: RowId,
        patch: &AccountPatch,
    ) -> StoreResult<Account> {
        let at = fmt_time(&now());
        // One statement: a NULL parameter keeps the column (COALESCE); the
        // advertiser ID, which may be cleared, says with ?4 whether to set it.
        let entity = patch.account_id.as_ref().map(|e| e.as_str().to_owned());
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE amc_accounts SET
                         account_id = COALESCE(?2, account_id),
                         account_name = COALESCE(?3, account_name),
                         advertiser_id = CASE WHEN ?4 THEN ?5 ELSE advertiser_id END,
                         country_code = COALESCE(?6, country_code),
                         marketplace_id = COALESCE(?7, marketplace_id),
                         profile = COALESCE(?9, profile),
                         updated_at = ?8
                     WHERE id = ?1",
                    params![
                        id,
                        entity,
                        patch.account_name,
                        patch.advertiser_id.is_some(),
                        patch.advertiser_id.clone().flatten(),
                        patch.country.map(|c| c.code()),
                        patch.country.map(|c| c.marketplace_id()),
                        at,
                        patch.profile
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
    pub(crate) fn delete_account(&mut self, id: RowId) -> StoreResult<()> {
        self.write(|tx| {
            let mut stmt = tx.prepare(
                "SELECT i.instance_id, u.name FROM amc_instances i JOIN users u ON u.id = i.user_id
                     WHERE i.account_id = ?1 ORDER BY i.instance_id",
            )?;
            let linked: Vec<String> = stmt
                .query_map([id], |r| {
                    Ok(format!(
                        "{} ({})",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?
                    ))
                })?
                .collect::<rusqlite::Result<_>>()?;
            if !linked.is_empty() {
                return Err(StoreError::Conflict(Clash::AccountInUse(linked)));
            }
            let n = tx.execute("DELETE FROM amc_accounts WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound(Missing::Account));
            }
            Ok(())
        })
    }
}
