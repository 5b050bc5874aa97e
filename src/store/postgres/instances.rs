//! AMC instances and their brands.
//!
//! Text orders and brand lists use `COLLATE "C"` (bytewise, as SQLite
//! compares), so that listings come in the SQLite store's order whatever
//! locale the database was created with.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use postgres::types::ToSql;
use postgres::{Row, Statement, Transaction};

use super::accounts;
use super::decode::{
    count, country, decoded, decoded_opt, entity, get, opt_count, opt_time, parsed, row_id, time,
};
use super::{Db, collect, is_unique_violation, signed};
use crate::domain::{
    Account, AccountBrief, AuditNote, Health, HealthStatus, ImportOutcome, ImportRow, Instance,
    InstanceFilter, InstanceId, InstancePatch, InstanceStatus, MAX_BRANDS, NewInstance, RowId,
    UpsertResult, now,
};
use crate::store::{Clash, Missing, Rule, StoreError, StoreResult};

const SELECT: &str = "SELECT i.id, i.instance_id, i.name, i.description, i.region, i.status,
    i.is_active, u.name, a.id, a.account_id, a.account_name, a.advertiser_id, a.country_code,
    a.marketplace_id, i.health_status, i.last_health_check, i.health_latency_ms, i.health_error,
    i.api_endpoint, i.created_at, i.updated_at, i.user_id,
    (SELECT array_agg(b.brand_name ORDER BY b.brand_name COLLATE \"C\")
       FROM instance_brands b WHERE b.instance_id = i.id),
    i.instance_type, i.customer_canonical_name, i.data_upload_account_id, a.profile
    FROM amc_instances i
    JOIN users u ON u.id = i.user_id
    JOIN amc_accounts a ON a.id = i.account_id";

/// The order of every instance listing.
const ORDER: &str =
    "ORDER BY i.name COLLATE \"C\", i.instance_id COLLATE \"C\", u.name COLLATE \"C\"";

/// A statement's parameters, built up with its WHERE clause.
type Params<'a> = Vec<&'a (dyn ToSql + Sync)>;

/// Decodes one row of [`SELECT`]; a value the domain cannot hold fails the
/// read naming the column instead of printing a wrong instance.
fn row(r: &Row) -> StoreResult<Instance> {
    let brands: Option<Vec<String>> = get(r, 22)?;
    Ok(Instance {
        id: row_id(r, 0)?,
        instance_id: decoded(r, 1, "an AMC instance ID", |s| InstanceId::parse(s).ok())?,
        name: get(r, 2)?,
        description: get(r, 3)?,
        region: parsed(r, 4, "a region")?,
        status: parsed(r, 5, "an instance status")?,
        is_active: get(r, 6)?,
        owner: get(r, 7)?,
        role: None,
        account: AccountBrief {
            id: row_id(r, 8)?,
            account_id: entity(r, 9)?,
            account_name: get(r, 10)?,
            advertiser_id: get(r, 11)?,
            country: country(r, 12)?,
            profile: get(r, 26)?,
        },
        health: Health {
            status: decoded_opt(r, 14, "a health status", |s| s.parse().ok())?
                .unwrap_or(HealthStatus::Unknown),
            checked_at: opt_time(r, 15)?,
            latency_ms: opt_count(r, 16)?,
            error: get(r, 17)?,
        },
        api_endpoint: get(r, 18)?,
        instance_type: get(r, 23)?,
        customer_canonical_name: get(r, 24)?,
        data_upload_account_id: get(r, 25)?,
        created_at: time(r, 19)?,
        updated_at: time(r, 20)?,
        user_id: row_id(r, 21)?,
        brands: brands.unwrap_or_default(),
    })
}

/// The instances `where_sql` selects, in listing order, read outside a
/// transaction.
fn select(db: &Db, where_sql: &str, params: &[&(dyn ToSql + Sync)]) -> StoreResult<Vec<Instance>> {
    let sql = format!("{SELECT} {where_sql} {ORDER}");
    let rows = db.read(|c| c.query(&sql, params))?;
    collect(rows, row)
}

/// The instance with this row id, read outside a transaction.
fn get_one(db: &Db, id: RowId) -> StoreResult<Option<Instance>> {
    Ok(select(db, "WHERE i.id = $1", &[&id])?.pop())
}

/// Gives instance `id` these brands, created `at`, keeping those it has:
/// one statement however many brands.
fn insert_brands(
    tx: &mut Transaction<'_>,
    id: RowId,
    brands: &[String],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    if brands.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO instance_brands (instance_id, brand_name, created_at)
         SELECT $1, b, $3 FROM unnest($2::text[]) AS b
         ON CONFLICT DO NOTHING",
        &[&id, &brands, &at],
    )?;
    Ok(())
}

/// The clash of an instance ID its owner already has.
fn duplicate(instance_id: &InstanceId) -> StoreError {
    StoreError::Conflict(Clash::Instance(instance_id.to_string()))
}

/// Runs `change` on instance `id` in one write transaction (it gets the
/// transaction and the time of the change), bumps `updated_at`, and
/// returns the instance as it now is; exit 3 if it no longer exists.
fn change_instance(
    db: &Db,
    id: RowId,
    mut change: impl FnMut(&mut Transaction<'_>, DateTime<Utc>) -> StoreResult<()> + Send,
) -> StoreResult<Instance> {
    let at = now();
    db.write(|tx| {
        change(tx, at)?;
        let n = tx.execute(
            "UPDATE amc_instances SET updated_at = $2 WHERE id = $1",
            &[&id, &at],
        )?;
        if n == 0 {
            return Err(StoreError::NotFound(Missing::Instance));
        }
        Ok(())
    })?;
    get_one(db, id)?.ok_or(StoreError::NotFound(Missing::Instance))
}

impl Db {
    /// Instances matching `filter`, sorted by name.
    pub(crate) fn instances(&self, filter: &InstanceFilter) -> StoreResult<Vec<Instance>> {
        // Only the filters set become conditions: each parameter then has
        // a type, and the planner sees no "NULL lets everything through".
        let status = filter.status.map(|s| s.as_str());
        let health = filter.health.map(|h| h.as_str());
        let region = filter.region.map(|r| r.as_str());
        let mut params: Params = Vec::new();
        let mut conditions: Vec<String> = Vec::new();
        if let Some(owner) = &filter.member {
            params.push(owner);
            let n = params.len();
            conditions.push(format!(
                "(i.user_id = ${n} OR EXISTS (SELECT 1 FROM instance_shares sh
                                             WHERE sh.instance_id = i.id AND sh.user_id = ${n}))"
            ));
        }
        if let Some(status) = &status {
            params.push(status);
            conditions.push(format!("i.status = ${}", params.len()));
        }
        if let Some(health) = &health {
            params.push(health);
            let n = params.len();
            conditions.push(format!(
                "(i.health_status = ${n}::text
                  OR (${n}::text = 'UNKNOWN' AND i.health_status IS NULL))"
            ));
        }
        if filter.not_healthy {
            conditions.push("(i.health_status IS NULL OR i.health_status != 'HEALTHY')".to_owned());
        }
        if let Some(account) = &filter.account {
            params.push(account);
            conditions.push(format!("i.account_id = ${}", params.len()));
        }
        if let Some(region) = &region {
            params.push(region);
            conditions.push(format!("i.region = ${}", params.len()));
        }
        if let Some(brand) = &filter.brand {
            params.push(brand);
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM instance_brands b
                         WHERE b.instance_id = i.id AND b.brand_name = ${})",
                params.len()
            ));
        }
        if let Some(kind) = &filter.instance_type {
            params.push(kind);
            // Under "C", upper() folds ASCII letters only, as SQLite's does.
            conditions.push(format!(
                "upper(i.instance_type COLLATE \"C\") = upper(${}::text COLLATE \"C\")",
                params.len()
            ));
        }
        let where_sql = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        select(self, &where_sql, &params)
    }

    /// The instance with this row id.
    pub(crate) fn instance(&self, id: RowId) -> StoreResult<Option<Instance>> {
        get_one(self, id)
    }

    /// Instances of every user matching a reference: the row UUID, the AMC
    /// instance ID, or the exact name.
    /// A reference shaped like a UUID is a row id first: if a row has it,
    /// that row is the only match, whatever names other rows carry.
    pub(crate) fn find_instances(&self, given: &str) -> StoreResult<Vec<Instance>> {
        let reference = given.trim();
        let as_id = reference.parse::<RowId>().ok();
        if let Some(id) = as_id
            && let Some(inst) = self.instance(id)?
        {
            return Ok(vec![inst]);
        }
        // The id column is a uuid: a reference that is no UUID cannot name
        // a row by id, and is not bound as one.
        let found = select(
            self,
            "WHERE ($2::uuid IS NOT NULL AND i.id = $2) OR i.instance_id = $1 OR i.name = $1",
            &[&reference, &as_id],
        )?;
        if !found.is_empty() {
            return Ok(found);
        }
        // Another user's instance, which row security hides, is refused as
        // such (exit 4, as a SQLite store's callers tell it by its owner),
        // not reported missing; nothing of it but its existence is read.
        let all = self.read(|c| {
            c.query_one(
                "SELECT amcctl_instance_matches($1, $2)",
                &[&reference, &as_id],
            )
        })?;
        if count(&all, 0)? > 0 {
            return Err(StoreError::ForeignInstance(given.to_owned()));
        }
        Ok(found)
    }

    /// Creates an instance owned by `owner`; exit 5 if the owner already has that instance ID.
    pub(crate) fn create_instance(&self, owner: RowId, new: &NewInstance) -> StoreResult<Instance> {
        let at = now();
        let id = new.id.unwrap_or_default();
        self.write(|tx| {
            tx.execute(
                "INSERT INTO amc_instances (id, user_id, instance_id, name, description, region,
                     account_id, is_active, status, api_endpoint, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)",
                &[
                    &id,
                    &owner,
                    &new.instance_id.as_str(),
                    &new.name,
                    &new.description,
                    &new.region.as_str(),
                    &new.account,
                    &(new.status != InstanceStatus::Inactive),
                    &new.status.as_str(),
                    &new.api_endpoint,
                    &at,
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    duplicate(&new.instance_id)
                } else {
                    e.into()
                }
            })?;
            insert_brands(tx, id, &new.brands, at)
        })?;
        self.instance(id)?
            .ok_or_else(|| StoreError::Vanished("instance"))
    }

    /// Applies `patch` to the instance `id`.
    pub(crate) fn update_instance(
        &self,
        id: RowId,
        patch: &InstancePatch,
    ) -> StoreResult<Instance> {
        // One statement: a NULL parameter keeps the column (COALESCE); the
        // description, which may be cleared, says with $3 whether to set it.
        let description = patch.description.clone().flatten();
        let region = patch.region.map(|r| r.as_str());
        change_instance(self, id, |tx, _| {
            tx.execute(
                "UPDATE amc_instances SET
                     name = COALESCE($2::text, name),
                     description = CASE WHEN $3::boolean THEN $4::text ELSE description END,
                     region = COALESCE($5::text, region),
                     account_id = COALESCE($6::uuid, account_id)
                 WHERE id = $1",
                &[
                    &id,
                    &patch.name,
                    &patch.description.is_some(),
                    &description,
                    &region,
                    &patch.account,
                ],
            )?;
            Ok(())
        })
    }

    /// Sets the lifecycle state (`is_active` follows: false only for INACTIVE).
    pub(crate) fn set_status(&self, id: RowId, status: InstanceStatus) -> StoreResult<Instance> {
        change_instance(self, id, |tx, _| {
            tx.execute(
                "UPDATE amc_instances SET status = $2, is_active = $3 WHERE id = $1",
                &[&id, &status.as_str(), &(status != InstanceStatus::Inactive)],
            )?;
            Ok(())
        })
    }

    /// Deletes an instance with its brands and health history.
    pub(crate) fn delete_instance(&self, id: RowId) -> StoreResult<()> {
        self.write(|tx| {
            let n = tx.execute("DELETE FROM amc_instances WHERE id = $1", &[&id])?;
            if n == 0 {
                return Err(StoreError::NotFound(Missing::Instance));
            }
            Ok(())
        })
    }

    /// Replaces the brand set of an instance in one transaction.
    pub(crate) fn set_brands(&self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        change_instance(self, id, |tx, at| {
            tx.execute("DELETE FROM instance_brands WHERE instance_id = $1", &[&id])?;
            insert_brands(tx, id, brands, at)
        })
    }

    /// Adds brands to an instance (present ones are kept once).
    pub(crate) fn add_brands(&self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        change_instance(self, id, |tx, at| {
            insert_brands(tx, id, brands, at)?;
            let found = tx.query_one(
                "SELECT count(*) FROM instance_brands WHERE instance_id = $1",
                &[&id],
            )?;
            let count: i64 = get(&found, 0)?;
            if usize::try_from(count).is_ok_and(|n| n > MAX_BRANDS) {
                return Err(StoreError::Constraint(Rule::TooManyBrands {
                    max: MAX_BRANDS,
                }));
            }
            Ok(())
        })
    }

    /// Removes brands from an instance; exit 3 naming a brand it does not carry.
    pub(crate) fn remove_brands(&self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        change_instance(self, id, |tx, _| {
            let delete = tx.prepare(
                "DELETE FROM instance_brands WHERE instance_id = $1 AND brand_name = $2",
            )?;
            // One brand at a time, in the order given: the first one the
            // instance does not carry is the one the error names.
            for b in brands {
                let n = tx.execute(&delete, &[&id, b])?;
                if n == 0 {
                    return Err(StoreError::NotFound(Missing::Brand(b.clone())));
                }
            }
            Ok(())
        })
    }

    /// Every brand with the AMC instance IDs that carry it, limited to `owner` when given.
    pub(crate) fn brand_index(
        &self,
        owner: Option<RowId>,
    ) -> StoreResult<Vec<(String, Vec<String>)>> {
        let rows = self.read(|c| {
            c.query(
                "SELECT b.brand_name, i.instance_id FROM instance_brands b
                     JOIN amc_instances i ON i.id = b.instance_id
                     WHERE $1::uuid IS NULL OR i.user_id = $1
                        OR EXISTS (SELECT 1 FROM instance_shares sh
                                    WHERE sh.instance_id = i.id AND sh.user_id = $1)
                     ORDER BY b.brand_name COLLATE \"C\", i.instance_id COLLATE \"C\"",
                &[&owner],
            )
        })?;
        let mut index: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in &rows {
            let brand: String = get(r, 0)?;
            let instance: String = get(r, 1)?;
            let list = index.entry(brand).or_default();
            // Users may share an instance ID: it is listed once.
            if list.last() != Some(&instance) {
                list.push(instance);
            }
        }
        Ok(index.into_iter().collect())
    }

    /// Imports `rows` for `owner` in one transaction: upsert on (owner,
    /// instance_id), accounts created when missing. With `dry_run` the
    /// transaction is rolled back and only the counts are returned.
    ///
    /// The outcome, and the first error in file order, are those of
    /// upserting the rows one by one (as the SQLite store does); the writes
    /// themselves go in a few set-based statements, so that a large file
    /// costs a handful of round trips to the server rather than several
    /// per row.
    pub(crate) fn import(
        &self,
        owner: RowId,
        rows: &[ImportRow],
        dry_run: bool,
        note: &(dyn Fn(&ImportOutcome) -> AuditNote + Sync),
    ) -> StoreResult<ImportOutcome> {
        let at = now();
        self.write_or_rehearse(dry_run, |tx| {
            let mut out = ImportOutcome {
                dry_run,
                ..Default::default()
            };
            let mut entities: Vec<&str> = rows.iter().map(|r| r.account_entity.as_str()).collect();
            entities.sort_unstable();
            entities.dedup();
            let mut accounts = ImportAccounts {
                known: accounts::ids_by_entity(tx, &entities)?
                    .into_iter()
                    .collect(),
                insert: None,
                at,
            };
            for segment in segments(rows) {
                import_segment(tx, owner, segment, at, &mut accounts, &mut out)?;
            }
            if !dry_run && out.changed() {
                super::access::append(tx, &note(&out))?;
            }
            Ok(out)
        })
    }

    /// The account with this entity ID.
    pub(crate) fn account_by_entity(&self, entity: &str) -> StoreResult<Option<Account>> {
        accounts::by_entity(self, entity)
    }
}

/// The accounts of an import: those found by entity ID, and those the
/// import creates as it goes.
struct ImportAccounts {
    /// Row id by entity ID.
    known: HashMap<String, RowId>,
    /// The account insert, prepared on first use.
    insert: Option<Statement>,
    /// The time of the import.
    at: DateTime<Utc>,
}

impl ImportAccounts {
    /// The row id of the account `r` names, created from the file when the
    /// store has none; exit 3 when the file does not define it either.
    fn resolve(
        &mut self,
        tx: &mut Transaction<'_>,
        r: &ImportRow,
        out: &mut ImportOutcome,
    ) -> StoreResult<RowId> {
        let entity = r.account_entity.as_str();
        if let Some(&id) = self.known.get(entity) {
            return Ok(id);
        }
        let Some(new) = &r.new_account else {
            return Err(StoreError::NotFound(Missing::ImportAccount {
                entity: entity.to_owned(),
                instance_id: r.instance.instance_id.to_string(),
            }));
        };
        let statement = match &self.insert {
            Some(s) => s.clone(),
            None => {
                let s = tx.prepare(accounts::INSERT)?;
                self.insert = Some(s.clone());
                s
            }
        };
        out.accounts_created += 1;
        let id = accounts::insert_with(tx, &statement, new, self.at)?;
        self.known.insert(entity.to_owned(), id);
        Ok(id)
    }
}

/// `rows` cut into runs in which no instance ID comes twice: within a run
/// every row's stored state can be read up front, since no other row of
/// the run changes it. A file without repeats (every file `instance
/// import` accepts) is one run.
fn segments(rows: &[ImportRow]) -> Vec<&[ImportRow]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut seen: HashSet<&str> = HashSet::new();
    for (i, r) in rows.iter().enumerate() {
        let key = r.instance.instance_id.as_str();
        if !seen.insert(key) {
            out.push(&rows[start..i]);
            start = i;
            seen.clear();
            seen.insert(key);
        }
    }
    out.push(&rows[start..]);
    out
}

/// The writes an import run makes, column by column, for the set-based
/// statements of [`ImportPlan::apply`].
#[derive(Default)]
struct ImportPlan<'r> {
    // The instances to insert: entry i of every `new_` column is one row.
    new_ids: Vec<RowId>,
    new_instance_ids: Vec<&'r str>,
    new_names: Vec<&'r str>,
    new_descriptions: Vec<Option<&'r str>>,
    new_regions: Vec<&'static str>,
    new_accounts: Vec<RowId>,
    new_active: Vec<bool>,
    new_statuses: Vec<&'static str>,
    new_endpoints: Vec<Option<&'r str>>,
    new_health: Vec<Option<&'static str>>,
    new_checked: Vec<Option<DateTime<Utc>>>,
    new_latency: Vec<Option<i64>>,
    new_errors: Vec<Option<&'r str>>,
    new_created: Vec<DateTime<Utc>>,
    new_updated: Vec<DateTime<Utc>>,

    // The instances to update, likewise by `upd_` column.
    upd_ids: Vec<RowId>,
    upd_names: Vec<&'r str>,
    upd_descriptions: Vec<Option<&'r str>>,
    upd_regions: Vec<&'static str>,
    upd_accounts: Vec<RowId>,
    upd_statuses: Vec<&'static str>,
    upd_active: Vec<bool>,
    upd_endpoints: Vec<Option<&'r str>>,
    upd_updated: Vec<DateTime<Utc>>,

    /// Instances whose brands are replaced.
    rebranded: Vec<RowId>,
    // The brands to insert, likewise by `brand_` column.
    brand_instances: Vec<RowId>,
    brand_names: Vec<&'r str>,
    brand_created: Vec<DateTime<Utc>>,
}

impl<'r> ImportPlan<'r> {
    /// Plans brands `names` for instance `id`, created `at` (a repeat is
    /// kept once, as the insert ignores it).
    fn brands(&mut self, id: RowId, names: impl IntoIterator<Item = &'r str>, at: DateTime<Utc>) {
        for b in names {
            self.brand_instances.push(id);
            self.brand_names.push(b);
            self.brand_created.push(at);
        }
    }

    /// Runs the planned writes: the new instances, the changed ones, then
    /// the brands (after the instances they belong to, and after the old
    /// brands of re-branded instances are gone).
    fn apply(&self, tx: &mut Transaction<'_>, owner: RowId) -> StoreResult<()> {
        if !self.new_ids.is_empty() {
            tx.execute(
                "INSERT INTO amc_instances (id, user_id, instance_id, name, description, region,
                     account_id, is_active, status, api_endpoint, health_status,
                     last_health_check, health_latency_ms, health_error, created_at, updated_at)
                 SELECT v.id, $1, v.instance_id, v.name, v.description, v.region, v.account_id,
                     v.is_active, v.status, v.api_endpoint, v.health_status, v.last_health_check,
                     v.health_latency_ms, v.health_error, v.created_at, v.updated_at
                 FROM unnest($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::uuid[], $8::boolean[], $9::text[], $10::text[], $11::text[],
                     $12::timestamptz[], $13::bigint[], $14::text[], $15::timestamptz[],
                     $16::timestamptz[])
                   AS v(id, instance_id, name, description, region, account_id, is_active,
                        status, api_endpoint, health_status, last_health_check,
                        health_latency_ms, health_error, created_at, updated_at)",
                &[
                    &owner,
                    &self.new_ids,
                    &self.new_instance_ids,
                    &self.new_names,
                    &self.new_descriptions,
                    &self.new_regions,
                    &self.new_accounts,
                    &self.new_active,
                    &self.new_statuses,
                    &self.new_endpoints,
                    &self.new_health,
                    &self.new_checked,
                    &self.new_latency,
                    &self.new_errors,
                    &self.new_created,
                    &self.new_updated,
                ],
            )?;
        }
        if !self.upd_ids.is_empty() {
            tx.execute(
                "UPDATE amc_instances AS i SET name = v.name, description = v.description,
                     region = v.region, account_id = v.account_id, status = v.status,
                     is_active = v.is_active, api_endpoint = v.api_endpoint,
                     updated_at = v.updated_at
                 FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::uuid[],
                     $6::text[], $7::boolean[], $8::text[], $9::timestamptz[])
                   AS v(id, name, description, region, account_id, status, is_active,
                        api_endpoint, updated_at)
                 WHERE i.id = v.id",
                &[
                    &self.upd_ids,
                    &self.upd_names,
                    &self.upd_descriptions,
                    &self.upd_regions,
                    &self.upd_accounts,
                    &self.upd_statuses,
                    &self.upd_active,
                    &self.upd_endpoints,
                    &self.upd_updated,
                ],
            )?;
        }
        if !self.rebranded.is_empty() {
            tx.execute(
                "DELETE FROM instance_brands WHERE instance_id = ANY($1::uuid[])",
                &[&self.rebranded],
            )?;
        }
        if !self.brand_instances.is_empty() {
            tx.execute(
                "INSERT INTO instance_brands (instance_id, brand_name, created_at)
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[])
                 ON CONFLICT DO NOTHING",
                &[
                    &self.brand_instances,
                    &self.brand_names,
                    &self.brand_created,
                ],
            )?;
        }
        Ok(())
    }
}

/// Imports one run of [`segments`]: reads the stored state of its rows in
/// two statements, decides each row in order as the row-by-row upsert
/// would (the same counts, the same first error), then writes.
fn import_segment(
    tx: &mut Transaction<'_>,
    owner: RowId,
    rows: &[ImportRow],
    at: DateTime<Utc>,
    accounts: &mut ImportAccounts,
    out: &mut ImportOutcome,
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = rows
        .iter()
        .map(|r| r.instance.instance_id.as_str())
        .collect();
    let found = tx.query(
        &format!("{SELECT} WHERE i.user_id = $1 AND i.instance_id = ANY($2::text[])"),
        &[&owner, &keys],
    )?;
    // A stored row that cannot be read fails the import only when a row of
    // the file reaches it, as reading it there would.
    let mut existing: HashMap<String, StoreResult<Instance>> = HashMap::with_capacity(found.len());
    for r in &found {
        existing.insert(get(r, 1)?, row(r));
    }
    // Row ids the file brings that other instances hold already.
    let wanted: Vec<RowId> = rows.iter().filter_map(|r| r.instance.id).collect();
    let mut taken: HashSet<RowId> = if wanted.is_empty() {
        HashSet::new()
    } else {
        // Other users' included, which row security hides.
        let rows = tx.query("SELECT amcctl_taken_ids($1::uuid[])", &[&wanted])?;
        collect(rows, |r| row_id(r, 0))?.into_iter().collect()
    };
    let mut plan = ImportPlan::default();
    for r in rows {
        let account = accounts.resolve(tx, r, out)?;
        let result = match existing.remove(r.instance.instance_id.as_str()) {
            None => plan_create(&mut plan, &mut taken, account, r, at)?,
            Some(current) => plan_update(&mut plan, &current?, account, r, at),
        };
        match result {
            UpsertResult::Created => out.created += 1,
            UpsertResult::Updated => out.updated += 1,
            UpsertResult::Unchanged => out.unchanged += 1,
        }
    }
    plan.apply(tx, owner)
}

/// Plans the insert of a row its owner does not have yet; a clash when
/// its row id is another instance's (or an earlier row's of the file).
fn plan_create<'r>(
    plan: &mut ImportPlan<'r>,
    taken: &mut HashSet<RowId>,
    account: RowId,
    r: &'r ImportRow,
    at: DateTime<Utc>,
) -> StoreResult<UpsertResult> {
    let new = &r.instance;
    let id = new.id.unwrap_or_default();
    if !taken.insert(id) {
        return Err(StoreError::Conflict(Clash::ImportRowId {
            instance_id: new.instance_id.to_string(),
            id: id.to_string(),
        }));
    }
    let created = r.created_at.unwrap_or(at);
    plan.new_ids.push(id);
    plan.new_instance_ids.push(new.instance_id.as_str());
    plan.new_names.push(&new.name);
    plan.new_descriptions.push(new.description.as_deref());
    plan.new_regions.push(new.region.as_str());
    plan.new_accounts.push(account);
    plan.new_active.push(r.is_active);
    plan.new_statuses.push(new.status.as_str());
    plan.new_endpoints.push(new.api_endpoint.as_deref());
    plan.new_health.push(match r.health.status {
        HealthStatus::Unknown => None,
        h => Some(h.as_str()),
    });
    plan.new_checked.push(r.health.checked_at);
    plan.new_latency.push(r.health.latency_ms.map(signed));
    plan.new_errors.push(r.health.error.as_deref());
    plan.new_created.push(created);
    plan.new_updated.push(r.updated_at.unwrap_or(at));
    plan.brands(id, new.brands.iter().map(String::as_str), created);
    Ok(UpsertResult::Created)
}

/// Plans the update of an instance the owner has, `cur`: nothing when the
/// row matches it, brands replaced only when they differ.
fn plan_update<'r>(
    plan: &mut ImportPlan<'r>,
    cur: &Instance,
    account: RowId,
    r: &'r ImportRow,
    at: DateTime<Utc>,
) -> UpsertResult {
    let new = &r.instance;
    let diff = cur.import_diff(new, account);
    if diff.unchanged() {
        return UpsertResult::Unchanged;
    }
    plan.upd_ids.push(cur.id);
    plan.upd_names.push(&new.name);
    plan.upd_descriptions.push(new.description.as_deref());
    plan.upd_regions.push(new.region.as_str());
    plan.upd_accounts.push(account);
    plan.upd_statuses.push(new.status.as_str());
    plan.upd_active.push(new.status != InstanceStatus::Inactive);
    plan.upd_endpoints.push(new.api_endpoint.as_deref());
    plan.upd_updated.push(r.updated_at.unwrap_or(at));
    if diff.brands_changed {
        plan.rebranded.push(cur.id);
        plan.brands(cur.id, diff.brands, at);
    }
    UpsertResult::Updated
}
