//! Upserting what AMC discovery reports: accounts by entity ID, instances by
//! (owner, instance ID). Each call is one transaction; a dry run rolls back.
//!
//! The stored state of everything found is read in one statement up front
//! and kept up to date here as the upsert goes, so the outcome is that of
//! upserting the found rows one by one (as the SQLite store does, a row
//! found twice included) without a read per row. New instances, the bulk
//! of a first discovery, go in one statement.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use postgres::Transaction;
use postgres::types::ToSql;

use super::decode::{get, row_id};
use super::{Db, StoreResult, accounts};
use crate::domain::{DiscoveredInstance, NewAccount, UpsertCounts};
use crate::domain::{InstanceStatus, Region, RowId, now};

/// What the upsert knows of a stored (or just created) account.
struct KnownAccount {
    name: String,
    marketplace: String,
    /// Whether no profile serves it yet.
    unclaimed: bool,
}

/// What the upsert knows of a stored (or just created) instance.
struct KnownInstance {
    id: RowId,
    account: RowId,
    endpoint: Option<String>,
    /// Instance type, customer canonical name, data-upload account.
    details: [Option<String>; 3],
    /// Its position among the instances to insert, if this call creates it.
    pending: Option<usize>,
}

/// An instance this call creates, as it will be inserted.
struct NewInstance {
    id: RowId,
    instance_id: String,
    name: String,
    status: InstanceStatus,
    account: RowId,
    endpoint: Option<String>,
    details: [Option<String>; 3],
}

impl Db {
    /// Creates missing accounts and renames/re-homes changed ones.
    pub(crate) fn upsert_accounts(
        &self,
        found: &[NewAccount],
        dry_run: bool,
    ) -> StoreResult<UpsertCounts> {
        let at = now();
        let entities: Vec<&str> = found.iter().map(|a| a.account_id.as_str()).collect();
        self.write_or_rehearse(dry_run, |tx| {
            let mut known: HashMap<String, KnownAccount> = HashMap::new();
            for r in tx.query(
                "SELECT account_id, account_name, marketplace_id, profile IS NULL
                 FROM amc_accounts WHERE account_id = ANY($1::text[])",
                &[&entities],
            )? {
                known.insert(
                    get(&r, 0)?,
                    KnownAccount {
                        name: get(&r, 1)?,
                        marketplace: get(&r, 2)?,
                        unclaimed: get(&r, 3)?,
                    },
                );
            }
            let mut counts = UpsertCounts::default();
            for a in found {
                let entity = a.account_id.as_str();
                let Some(current) = known.get_mut(entity) else {
                    accounts::insert(tx, a, at)?;
                    known.insert(
                        entity.to_owned(),
                        KnownAccount {
                            name: a.account_name.clone(),
                            marketplace: a.country.marketplace_id().to_owned(),
                            unclaimed: a.profile.is_none(),
                        },
                    );
                    counts.created += 1;
                    continue;
                };
                // The first profile that finds an account serves it, until
                // `account edit --profile` says otherwise.
                if current.unclaimed && a.profile.is_some() {
                    tx.execute(
                        "UPDATE amc_accounts SET profile = $2 WHERE account_id = $1 AND profile IS NULL",
                        &[&entity, &a.profile],
                    )?;
                    current.unclaimed = false;
                }
                if current.name == a.account_name && current.marketplace == a.country.marketplace_id()
                {
                    counts.unchanged += 1;
                    continue;
                }
                tx.execute(
                    "UPDATE amc_accounts SET account_name = $2, country_code = $3, marketplace_id = $4,
                         updated_at = $5 WHERE account_id = $1",
                    &[
                        &entity,
                        &a.account_name,
                        &a.country.code(),
                        &a.country.marketplace_id(),
                        &at,
                    ],
                )?;
                current.name = a.account_name.clone();
                current.marketplace = a.country.marketplace_id().to_owned();
                counts.updated += 1;
            }
            Ok(counts)
        })
    }

    /// Upserts `owner`'s instances of `account` as discovered. New instances
    /// are ACTIVE when AMC reports them COMPLETED, else PENDING; existing ones
    /// keep their name, status and brands, and get the endpoint, account and
    /// details (type, canonical name, data-upload account) AMC reports; a
    /// detail AMC leaves out keeps its stored value.
    pub(crate) fn upsert_discovered(
        &self,
        owner: RowId,
        account: RowId,
        region: Region,
        found: &[DiscoveredInstance],
        dry_run: bool,
    ) -> StoreResult<UpsertCounts> {
        let at = now();
        let wanted: Vec<&str> = found.iter().map(|d| d.instance_id.as_str()).collect();
        self.write_or_rehearse(dry_run, |tx| {
            let mut known: HashMap<String, KnownInstance> = HashMap::new();
            for r in tx.query(
                "SELECT instance_id, id, account_id, api_endpoint, instance_type,
                        customer_canonical_name, data_upload_account_id
                 FROM amc_instances WHERE user_id = $1 AND instance_id = ANY($2::text[])",
                &[&owner, &wanted],
            )? {
                known.insert(
                    get(&r, 0)?,
                    KnownInstance {
                        id: row_id(&r, 1)?,
                        account: row_id(&r, 2)?,
                        endpoint: get(&r, 3)?,
                        details: [get(&r, 4)?, get(&r, 5)?, get(&r, 6)?],
                        pending: None,
                    },
                );
            }
            let mut counts = UpsertCounts::default();
            let mut created: Vec<NewInstance> = Vec::new();
            for d in found {
                let reported = [
                    d.instance_type.clone(),
                    d.customer_canonical_name.clone(),
                    d.data_upload_account_id.clone(),
                ];
                let Some(current) = known.get_mut(d.instance_id.as_str()) else {
                    let new = NewInstance {
                        id: RowId::new(),
                        instance_id: d.instance_id.as_str().to_owned(),
                        name: d.name.clone().unwrap_or_else(|| d.instance_id.to_string()),
                        status: if d.completed {
                            InstanceStatus::Active
                        } else {
                            InstanceStatus::Pending
                        },
                        account,
                        endpoint: d.api_endpoint.clone(),
                        details: reported,
                    };
                    known.insert(
                        new.instance_id.clone(),
                        KnownInstance {
                            id: new.id,
                            account,
                            endpoint: new.endpoint.clone(),
                            details: new.details.clone(),
                            pending: Some(created.len()),
                        },
                    );
                    created.push(new);
                    counts.created += 1;
                    continue;
                };
                let details_same = reported
                    .iter()
                    .zip(&current.details)
                    .all(|(new, old)| new.is_none() || new == old);
                if current.account == account && current.endpoint == d.api_endpoint && details_same
                {
                    counts.unchanged += 1;
                    continue;
                }
                current.account = account;
                current.endpoint = d.api_endpoint.clone();
                for (old, new) in current.details.iter_mut().zip(reported) {
                    if new.is_some() {
                        *old = new;
                    }
                }
                match current.pending.and_then(|i| created.get_mut(i)) {
                    // Created by this call: it is inserted as it ends up.
                    Some(new) => {
                        new.account = current.account;
                        new.endpoint = current.endpoint.clone();
                        new.details = current.details.clone();
                    }
                    None => {
                        tx.execute(
                            "UPDATE amc_instances SET account_id = $2, api_endpoint = $3, updated_at = $4,
                                 instance_type = COALESCE($5, instance_type),
                                 customer_canonical_name = COALESCE($6, customer_canonical_name),
                                 data_upload_account_id = COALESCE($7, data_upload_account_id)
                             WHERE id = $1",
                            &[
                                &current.id,
                                &account,
                                &d.api_endpoint,
                                &at,
                                &d.instance_type,
                                &d.customer_canonical_name,
                                &d.data_upload_account_id,
                            ],
                        )?;
                    }
                }
                counts.updated += 1;
            }
            insert_instances(tx, owner, region, &created, at)?;
            Ok(counts)
        })
    }
}

/// Inserts the instances a discovery creates, in one statement, in the
/// order they were found.
fn insert_instances(
    tx: &mut Transaction<'_>,
    owner: RowId,
    region: Region,
    created: &[NewInstance],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    if created.is_empty() {
        return Ok(());
    }
    let ids: Vec<RowId> = created.iter().map(|n| n.id).collect();
    let instance_ids: Vec<&str> = created.iter().map(|n| n.instance_id.as_str()).collect();
    let names: Vec<&str> = created.iter().map(|n| n.name.as_str()).collect();
    let accounts: Vec<RowId> = created.iter().map(|n| n.account).collect();
    let statuses: Vec<&str> = created.iter().map(|n| n.status.as_str()).collect();
    let endpoints: Vec<Option<&str>> = created.iter().map(|n| n.endpoint.as_deref()).collect();
    let detail = |i: usize| -> Vec<Option<&str>> {
        created
            .iter()
            .map(|n| n.details.get(i).and_then(|d| d.as_deref()))
            .collect()
    };
    let (types, canonical, upload) = (detail(0), detail(1), detail(2));
    let region = region.as_str();
    let params: [&(dyn ToSql + Sync); 12] = [
        &owner,
        &region,
        &at,
        &ids,
        &instance_ids,
        &names,
        &accounts,
        &statuses,
        &endpoints,
        &types,
        &canonical,
        &upload,
    ];
    tx.execute(
        "INSERT INTO amc_instances (id, user_id, instance_id, name, region, account_id, is_active,
             status, api_endpoint, created_at, updated_at, instance_type, customer_canonical_name,
             data_upload_account_id)
         SELECT n.id, $1, n.instance_id, n.name, $2, n.account, true, n.status, n.endpoint, $3, $3,
                n.type, n.canonical, n.upload
         FROM unnest($4::uuid[], $5::text[], $6::text[], $7::uuid[], $8::text[], $9::text[],
                     $10::text[], $11::text[], $12::text[])
              WITH ORDINALITY AS n(id, instance_id, name, account, status, endpoint, type,
                                   canonical, upload, ord)
         ORDER BY n.ord",
        &params,
    )?;
    Ok(())
}
