//! AMC instances and their brands.

use crate::domain::{Account, HealthStatus, InstanceId, InstanceStatus, RowId};
use std::collections::{BTreeMap, HashMap};

use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, Transaction, params, params_from_iter};

use super::accounts;
use super::decode::{country, decoded, decoded_opt, entity, opt_time, parsed, time};
use super::{
    Clash, Db, Missing, Rule, StoreError, StoreResult, fmt_time, is_unique_violation, now,
};
use crate::domain::{
    AccountBrief, AuditNote, Health, ImportOutcome, ImportRow, Instance, InstanceFilter,
    InstancePatch, NewInstance, UpsertResult,
};
const SELECT: &str = "SELECT i.id, i.instance_id, i.name, i.description, i.region, i.status,
    i.is_active, u.name, a.id, a.account_id, a.account_name, a.advertiser_id, a.country_code,
    a.marketplace_id, i.health_status, i.last_health_check, i.health_latency_ms, i.health_error,
    i.api_endpoint, i.created_at, i.updated_at, i.user_id,
    (SELECT group_concat(b.brand_name, char(31) ORDER BY b.brand_name)
       FROM instance_brands b WHERE b.instance_id = i.id),
    i.instance_type, i.customer_canonical_name, i.data_upload_account_id, a.profile
    FROM amc_instances i
    JOIN users u ON u.id = i.user_id
    JOIN amc_accounts a ON a.id = i.account_id";

fn row(r: &Row) -> rusqlite::Result<Instance> {
    let brands: Option<String> = r.get(22)?;
    Ok(Instance {
        id: r.get(0)?,
        instance_id: decoded(r, 1, "an AMC instance ID", |s| InstanceId::parse(s).ok())?,
        name: r.get(2)?,
        description: r.get(3)?,
        region: parsed(r, 4, "a region")?,
        status: parsed(r, 5, "an instance status")?,
        is_active: r.get(6)?,
        owner: r.get(7)?,
        role: None,
        account: AccountBrief {
            id: r.get(8)?,
            account_id: entity(r, 9)?,
            account_name: r.get(10)?,
            advertiser_id: r.get(11)?,
            country: country(r, 12)?,
            profile: r.get(26)?,
        },
        health: Health {
            status: decoded_opt(r, 14, "a health status", |s| s.parse().ok())?
                .unwrap_or(HealthStatus::Unknown),
            checked_at: opt_time(r, 15)?,
            latency_ms: r.get(16)?,
            error: r.get(17)?,
        },
        api_endpoint: r.get(18)?,
        instance_type: r.get(23)?,
        customer_canonical_name: r.get(24)?,
        data_upload_account_id: r.get(25)?,
        created_at: time(r, 19)?,
        updated_at: time(r, 20)?,
        user_id: r.get(21)?,
        brands: brands
            .map(|b| b.split('\u{1f}').map(str::to_owned).collect())
            .unwrap_or_default(),
    })
}

fn query(
    conn: &rusqlite::Connection,
    where_sql: &str,
    args: Vec<Value>,
) -> StoreResult<Vec<Instance>> {
    let sql = format!("{SELECT} {where_sql} ORDER BY i.name, i.instance_id, u.name");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args), row)?;
    rows.collect::<rusqlite::Result<_>>()
        .map_err(StoreError::from)
}

fn get(conn: &rusqlite::Connection, id: RowId) -> StoreResult<Option<Instance>> {
    Ok(query(conn, "WHERE i.id = ?1", vec![Value::Text(id.to_string())])?.pop())
}

fn insert_brands<S: AsRef<str>>(
    tx: &Transaction,
    id: RowId,
    brands: &[S],
    at: &str,
) -> StoreResult<()> {
    let mut stmt = tx
        .prepare_cached(
            "INSERT OR IGNORE INTO instance_brands (instance_id, brand_name, created_at) VALUES (?1, ?2, ?3)",
        )
        ?;
    for b in brands {
        stmt.execute(params![id, b.as_ref(), at])?;
    }
    Ok(())
}

fn duplicate(instance_id: &InstanceId) -> StoreError {
    StoreError::Conflict(Clash::Instance(instance_id.to_string()))
}

impl Db {
    /// Instances matching `filter`, sorted by name.
    pub(crate) fn instances(&self, filter: &InstanceFilter) -> StoreResult<Vec<Instance>> {
        // One statement for every filter: an unset filter is a NULL parameter
        // that lets every row through.
        let text = |v: Option<String>| v.map_or(Value::Null, Value::Text);
        let args = vec![
            text(filter.member.map(|o| o.to_string())),
            text(filter.status.map(|s| s.as_str().to_owned())),
            text(filter.health.map(|h| h.as_str().to_owned())),
            Value::Integer(filter.not_healthy.into()),
            text(filter.account.map(|a| a.to_string())),
            text(filter.region.map(|r| r.as_str().to_owned())),
            text(filter.brand.clone()),
            text(filter.instance_type.clone()),
        ];
        query(
            self.read(),
            "WHERE (?1 IS NULL OR i.user_id = ?1
                      OR EXISTS (SELECT 1 FROM instance_shares sh WHERE sh.instance_id = i.id AND sh.user_id = ?1))
               AND (?2 IS NULL OR i.status = ?2)
               AND (?3 IS NULL OR i.health_status = ?3 OR (?3 = 'UNKNOWN' AND i.health_status IS NULL))
               AND (?4 = 0 OR i.health_status IS NULL OR i.health_status != 'HEALTHY')
               AND (?5 IS NULL OR i.account_id = ?5)
               AND (?6 IS NULL OR i.region = ?6)
               AND (?7 IS NULL OR EXISTS (SELECT 1 FROM instance_brands b
                                          WHERE b.instance_id = i.id AND b.brand_name = ?7))
               AND (?8 IS NULL OR upper(i.instance_type) = upper(?8))",
            args,
        )
    }

    /// The instance with this row id.
    pub(crate) fn instance(&self, id: RowId) -> StoreResult<Option<Instance>> {
        get(self.read(), id)
    }

    /// Instances of every user matching a reference: the row UUID, the AMC
    /// instance ID, or the exact name.
    /// A reference shaped like a UUID is a row id first: if a row has it,
    /// that row is the only match, whatever names other rows carry.
    pub(crate) fn find_instances(&self, reference: &str) -> StoreResult<Vec<Instance>> {
        let reference = reference.trim();
        if let Ok(id) = reference.parse::<RowId>()
            && let Some(inst) = self.instance(id)?
        {
            return Ok(vec![inst]);
        }
        query(
            self.read(),
            "WHERE i.id = ?2 OR i.instance_id = ?1 OR i.name = ?1",
            vec![
                Value::Text(reference.to_owned()),
                Value::Text(super::canonical_id(reference)),
            ],
        )
    }

    /// Creates an instance owned by `owner`; exit 5 if the owner already has that instance ID.
    pub(crate) fn create_instance(
        &mut self,
        owner: RowId,
        new: &NewInstance,
    ) -> StoreResult<Instance> {
        let at = fmt_time(&now());
        let id = new.id.unwrap_or_default();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO amc_instances (id, user_id, instance_id, name, description, region,
                     account_id, is_active, status, api_endpoint, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                params![
                    id,
                    owner,
                    new.instance_id.as_str(),
                    new.name,
                    new.description,
                    new.region.as_str(),
                    new.account,
                    new.status != InstanceStatus::Inactive,
                    new.status.as_str(),
                    new.api_endpoint,
                    at
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    duplicate(&new.instance_id)
                } else {
                    e.into()
                }
            })?;
            insert_brands(tx, id, &new.brands, &at)
        })?;
        self.instance(id)?
            .ok_or_else(|| StoreError::Vanished("instance"))
    }

    /// Applies `patch` to the instance `id`.
    pub(crate) fn update_instance(
        &mut self,
        id: RowId,
        patch: &InstancePatch,
    ) -> StoreResult<Instance> {
        // One statement: a NULL parameter keeps the column (COALESCE); the
        // description, which may be cleared, says with ?3 whether to set it.
        self.change_instance(id, |tx, _| {
            tx.execute(
                "UPDATE amc_instances SET
                     name = COALESCE(?2, name),
                     description = CASE WHEN ?3 THEN ?4 ELSE description END,
                     region = COALESCE(?5, region),
                     account_id = COALESCE(?6, account_id)
                 WHERE id = ?1",
                params![
                    id,
                    patch.name,
                    patch.description.is_some(),
                    patch.description.clone().flatten(),
                    patch.region.map(|r| r.as_str()),
                    patch.account
                ],
            )?;
            Ok(())
        })
    }

    /// Sets the lifecycle state (`is_active` follows: false only for INACTIVE).
    pub(crate) fn set_status(
        &mut self,
        id: RowId,
        status: InstanceStatus,
    ) -> StoreResult<Instance> {
        self.change_instance(id, |tx, _| {
            tx.execute(
                "UPDATE amc_instances SET status = ?2, is_active = ?3 WHERE id = ?1",
                params![id, status.as_str(), status != InstanceStatus::Inactive],
            )?;
            Ok(())
        })
    }

    /// Deletes an instance with its brands and health history.
    pub(crate) fn delete_instance(&mut self, id: RowId) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM amc_instances WHERE id = ?1", [id])?;
            if n == 0 {
                return Err(StoreError::NotFound(Missing::Instance));
            }
            Ok(())
        })
    }

    /// Replaces the brand set of an instance in one transaction.
    pub(crate) fn set_brands(&mut self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        self.change_instance(id, |tx, at| {
            tx.execute("DELETE FROM instance_brands WHERE instance_id = ?1", [id])?;
            insert_brands(tx, id, brands, at)
        })
    }

    /// Adds brands to an instance (present ones are kept once).
    pub(crate) fn add_brands(&mut self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        self.change_instance(id, |tx, at| {
            insert_brands(tx, id, brands, at)?;
            let count: i64 = tx.query_row(
                "SELECT count(*) FROM instance_brands WHERE instance_id = ?1",
                [id],
                |r| r.get(0),
            )?;
            if count as usize > crate::domain::MAX_BRANDS {
                return Err(StoreError::Constraint(Rule::TooManyBrands {
                    max: crate::domain::MAX_BRANDS,
                }));
            }
            Ok(())
        })
    }

    /// Removes brands from an instance; exit 3 naming a brand it does not carry.
    pub(crate) fn remove_brands(&mut self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        self.change_instance(id, |tx, _| {
            for b in brands {
                let n = tx.execute(
                    "DELETE FROM instance_brands WHERE instance_id = ?1 AND brand_name = ?2",
                    params![id, b],
                )?;
                if n == 0 {
                    return Err(StoreError::NotFound(Missing::Brand(b.clone())));
                }
            }
            Ok(())
        })
    }

    /// Runs `change` on instance `id` in one write transaction (it gets the
    /// transaction and the time of the change), bumps `updated_at`, and
    /// returns the instance as it now is; exit 3 if it no longer exists.
    fn change_instance(
        &mut self,
        id: RowId,
        mut change: impl FnMut(&Transaction, &str) -> StoreResult<()>,
    ) -> StoreResult<Instance> {
        let at = fmt_time(&now());
        self.write(|tx| {
            change(tx, &at)?;
            let n = tx.execute(
                "UPDATE amc_instances SET updated_at = ?2 WHERE id = ?1",
                params![id, at],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(Missing::Instance));
            }
            Ok(())
        })?;
        self.instance(id)?
            .ok_or_else(|| StoreError::NotFound(Missing::Instance))
    }

    /// Every brand with the AMC instance IDs that carry it, limited to `owner` when given.
    pub(crate) fn brand_index(
        &self,
        owner: Option<RowId>,
    ) -> StoreResult<Vec<(String, Vec<String>)>> {
        let mut stmt = self.read().prepare(
            "SELECT b.brand_name, i.instance_id FROM instance_brands b
                 JOIN amc_instances i ON i.id = b.instance_id
                 WHERE ?1 IS NULL OR i.user_id = ?1 OR EXISTS (SELECT 1 FROM instance_shares sh WHERE sh.instance_id = i.id AND sh.user_id = ?1)
                 ORDER BY b.brand_name, i.instance_id",
        )?;
        let rows = stmt.query_map([owner], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        let mut index: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in rows {
            let (brand, instance) = row?;
            let list = index.entry(brand).or_default();
            if list.last() != Some(&instance) {
                list.push(instance);
            }
        }
        Ok(index.into_iter().collect())
    }

    /// Imports `rows` for `owner` in one transaction: upsert on (owner,
    /// instance_id), accounts created when missing. With `dry_run` the
    /// transaction is rolled back and only the counts are returned.
    pub(crate) fn import(
        &mut self,
        owner: RowId,
        rows: &[ImportRow],
        dry_run: bool,
        note: &(dyn Fn(&ImportOutcome) -> AuditNote + Sync),
    ) -> StoreResult<ImportOutcome> {
        let now_s = fmt_time(&now());
        let body = |tx: &Transaction| {
            let mut out = ImportOutcome {
                dry_run,
                ..Default::default()
            };
            // Rows of one account share its lookup: a file is mostly a few
            // accounts with many instances each.
            let mut known: HashMap<&str, RowId> = HashMap::new();
            for r in rows {
                let entity = r.account_entity.as_str();
                let account = match known.get(entity) {
                    Some(&id) => id,
                    None => {
                        let id = match accounts::id_by_entity(tx, entity)? {
                            Some(id) => id,
                            None => match &r.new_account {
                                Some(new) => {
                                    out.accounts_created += 1;
                                    accounts::insert(tx, new, &now_s)?
                                }
                                None => {
                                    return Err(StoreError::NotFound(Missing::ImportAccount {
                                        entity: entity.to_owned(),
                                        instance_id: r.instance.instance_id.to_string(),
                                    }));
                                }
                            },
                        };
                        known.insert(entity, id);
                        id
                    }
                };
                match upsert_import_row(tx, owner, account, r, &now_s)? {
                    UpsertResult::Created => out.created += 1,
                    UpsertResult::Updated => out.updated += 1,
                    UpsertResult::Unchanged => out.unchanged += 1,
                }
            }
            if !dry_run && out.changed() {
                super::access::append(tx, &note(&out))?;
            }
            Ok(out)
        };
        self.write_or_rehearse(dry_run, body)
    }
}

fn upsert_import_row(
    tx: &Transaction,
    owner: RowId,
    account: RowId,
    r: &ImportRow,
    now_s: &str,
) -> StoreResult<UpsertResult> {
    let new = &r.instance;
    let existing: Option<Instance> = {
        let found: Option<RowId> = tx
            .prepare_cached("SELECT id FROM amc_instances WHERE user_id = ?1 AND instance_id = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![owner, new.instance_id.as_str()], |row| row.get(0))
                    .optional()
            })?;
        match found {
            Some(id) => get(tx, id)?,
            None => None,
        }
    };
    let health_status = match r.health.status {
        HealthStatus::Unknown => None,
        h => Some(h.as_str()),
    };
    match existing {
        None => {
            let id = new.id.unwrap_or_default();
            let created = r
                .created_at
                .map_or_else(|| now_s.to_owned(), |t| fmt_time(&t));
            let updated = r
                .updated_at
                .map_or_else(|| now_s.to_owned(), |t| fmt_time(&t));
            tx.prepare_cached(
                "INSERT INTO amc_instances (id, user_id, instance_id, name, description, region,
                     account_id, is_active, status, api_endpoint, health_status, last_health_check,
                     health_latency_ms, health_error, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    id,
                    owner,
                    new.instance_id.as_str(),
                    new.name,
                    new.description,
                    new.region.as_str(),
                    account,
                    r.is_active,
                    new.status.as_str(),
                    new.api_endpoint,
                    health_status,
                    r.health.checked_at.as_ref().map(fmt_time),
                    r.health.latency_ms,
                    r.health.error,
                    created,
                    updated
                ])
            })
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(Clash::ImportRowId {
                        instance_id: new.instance_id.to_string(),
                        id: id.to_string(),
                    })
                } else {
                    e.into()
                }
            })?;
            insert_brands(tx, id, &new.brands, &created)?;
            Ok(UpsertResult::Created)
        }
        Some(cur) => {
            let diff = cur.import_diff(new, account);
            if diff.unchanged() {
                return Ok(UpsertResult::Unchanged);
            }
            let updated = r
                .updated_at
                .map_or_else(|| now_s.to_owned(), |t| fmt_time(&t));
            tx.execute(
                "UPDATE amc_instances SET name = ?2, description = ?3, region = ?4, account_id = ?5,
                     status = ?6, is_active = ?7, api_endpoint = ?8, updated_at = ?9 WHERE id = ?1",
                params![
                    cur.id,
                    new.name,
                    new.description,
                    new.region.as_str(),
                    account,
                    new.status.as_str(),
                    new.status != InstanceStatus::Inactive,
                    new.api_endpoint,
                    updated
                ],
            )
            ?;
            if diff.brands_changed {
                tx.execute(
                    "DELETE FROM instance_brands WHERE instance_id = ?1",
                    [cur.id],
                )?;
                insert_brands(tx, cur.id, &diff.brands, now_s)?;
            }
            Ok(UpsertResult::Updated)
        }
    }
}

/// Looks up an account by entity ID (for import validation outside a transaction).
impl Db {
    /// The account with this entity ID.
    pub(crate) fn account_by_entity(&self, entity: &str) -> StoreResult<Option<Account>> {
        accounts::by_entity(self.read(), entity)
    }
}
