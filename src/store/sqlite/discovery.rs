//! Upserting what AMC discovery reports: accounts by entity ID, instances by
//! (owner, instance ID). Each call is one transaction; a dry run rolls back.

use crate::domain::NewAccount;
use rusqlite::{OptionalExtension, Transaction, params};

use super::{Db, StoreResult, fmt_time, now};
use crate::domain::{DiscoveredInstance, UpsertCounts};
use crate::domain::{InstanceStatus, Region, RowId};
impl Db {
    /// Creates missing accounts and renames/re-homes changed ones.
    pub(crate) fn upsert_accounts(
        &mut self,
        found: &[NewAccount],
        dry_run: bool,
    ) -> StoreResult<UpsertCounts> {
        let at = fmt_time(&now());
        let body = |tx: &Transaction| {
            let mut counts = UpsertCounts::default();
            for a in found {
                let current: Option<(String, String)> = tx
                    .query_row(
                        "SELECT account_name, marketplace_id FROM amc_accounts WHERE account_id = ?1",
                        [a.account_id.as_str()],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    ?;
                // The first profile that finds an account serves it, until
                // `account edit --profile` says otherwise.
                if current.is_some() && a.profile.is_some() {
                    tx.execute(
                        "UPDATE amc_accounts SET profile = ?2 WHERE account_id = ?1 AND profile IS NULL",
                        params![a.account_id.as_str(), a.profile],
                    )
                    ?;
                }
                match current {
                    None => {
                        super::accounts::insert(tx, a, &at)?;
                        counts.created += 1;
                    }
                    Some((name, market))
                        if name == a.account_name && market == a.country.marketplace_id() =>
                    {
                        counts.unchanged += 1
                    }
                    Some(_) => {
                        tx.execute(
                            "UPDATE amc_accounts SET account_name = ?2, country_code = ?3, marketplace_id = ?4,
                                 updated_at = ?5 WHERE account_id = ?1",
                            params![
                                a.account_id.as_str(),
                                a.account_name,
                                a.country.code(),
                                a.country.marketplace_id(),
                                at
                            ],
                        )
                        ?;
                        counts.updated += 1;
                    }
                }
            }
            Ok(counts)
        };
        self.write_or_rehearse(dry_run, body)
    }

    /// Upserts `owner`'s instances of `account` as discovered. New instances
    /// are ACTIVE when AMC reports them COMPLETED, else PENDING; existing ones
    /// keep their name, status and brands, and get the endpoint, account and
    /// details (type, canonical name, data-upload account) AMC reports; a
    /// detail AMC leaves out keeps its stored value.
    pub(crate) fn upsert_discovered(
        &mut self,
        owner: RowId,
        account: RowId,
        region: Region,
        found: &[DiscoveredInstance],
        dry_run: bool,
    ) -> StoreResult<UpsertCounts> {
        let at = fmt_time(&now());
        let body = |tx: &Transaction| {
            let mut counts = UpsertCounts::default();
            for d in found {
                type Current = (RowId, RowId, Option<String>, [Option<String>; 3]);
                let current: Option<Current> = tx
                    .query_row(
                        "SELECT id, account_id, api_endpoint, instance_type, customer_canonical_name,
                             data_upload_account_id
                         FROM amc_instances WHERE user_id = ?1 AND instance_id = ?2",
                        params![owner, d.instance_id.as_str()],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, [r.get(3)?, r.get(4)?, r.get(5)?])),
                    )
                    .optional()
                    ?;
                match current {
                    None => {
                        let status = if d.completed {
                            InstanceStatus::Active
                        } else {
                            InstanceStatus::Pending
                        };
                        let name = d.name.clone().unwrap_or_else(|| d.instance_id.to_string());
                        tx.execute(
                            "INSERT INTO amc_instances (id, user_id, instance_id, name, region, account_id,
                                 is_active, status, api_endpoint, created_at, updated_at, instance_type,
                             customer_canonical_name, data_upload_account_id)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8, ?9, ?9, ?10, ?11, ?12)",
                            params![
                                RowId::new(),
                                owner,
                                d.instance_id.as_str(),
                                name,
                                region.as_str(),
                                account,
                                status.as_str(),
                                d.api_endpoint,
                                at,
                                d.instance_type,
                                d.customer_canonical_name,
                                d.data_upload_account_id
                            ],
                        )
                        ?;
                        counts.created += 1;
                    }
                    Some((id, acc, endpoint, details)) => {
                        let found = [
                            &d.instance_type,
                            &d.customer_canonical_name,
                            &d.data_upload_account_id,
                        ];
                        let details_same = found
                            .iter()
                            .zip(&details)
                            .all(|(new, old)| new.is_none() || *new == old);
                        if acc == account && endpoint == d.api_endpoint && details_same {
                            counts.unchanged += 1;
                            continue;
                        }
                        tx.execute(
                            "UPDATE amc_instances SET account_id = ?2, api_endpoint = ?3, updated_at = ?4,
                                 instance_type = COALESCE(?5, instance_type),
                                 customer_canonical_name = COALESCE(?6, customer_canonical_name),
                                 data_upload_account_id = COALESCE(?7, data_upload_account_id)
                             WHERE id = ?1",
                            params![
                                id,
                                account,
                                d.api_endpoint,
                                at,
                                d.instance_type,
                                d.customer_canonical_name,
                                d.data_upload_account_id
                            ],
                        )
                        ?;
                        counts.updated += 1;
                    }
                }
            }
            Ok(counts)
        };
        self.write_or_rehearse(dry_run, body)
    }
}
