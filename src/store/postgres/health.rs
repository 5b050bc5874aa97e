//! Health check results: the last state on each instance, and the history.
//!
//! Times are written at the store's precision (whole seconds), as the
//! SQLite backend writes them, so that both order and compare checks alike.
//! Text sort keys use the "C" collation: byte order, as SQLite sorts.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, SubsecRound, Utc};

use super::decode::{decoded, entity, get, opt_time, parsed, row_id, time};
use super::{Db, StoreError, StoreResult, signed};
use crate::domain::{
    DayLatency, HealthRecord, HealthSummary, HealthTally, HistoryRow, LatencyDays,
};
use crate::domain::{InstanceId, InstanceStatus, RowId};

/// A time as the store keeps it: whole seconds, like the SQLite backend's
/// RFC 3339 text, so that comparisons and ties come out the same.
pub(super) fn stored(t: &DateTime<Utc>) -> DateTime<Utc> {
    t.trunc_subsecs(0)
}

/// A stored `integer` that the domain holds unsigned; a negative or too
/// large value (written by hand) fails the read rather than wrapping.
fn small<T: TryFrom<i32>>(v: i32, column: &str) -> StoreResult<T> {
    T::try_from(v).map_err(|_| {
        StoreError::Unreadable(format!("column {column} holds {v}, which is out of range"))
    })
}

/// The final state an instance is left in by the checks of one batch.
struct LastHealth<'a> {
    record: &'a HealthRecord,
    status: InstanceStatus,
}

impl Db {
    /// Saves a batch of results in one transaction: a history row each, and the
    /// instance's last health and status updated (see
    /// [`InstanceStatus::after_check`]). Results for
    /// instances deleted meanwhile are skipped. A bulk check sends
    /// thousands of results, so the batch goes in three statements whatever
    /// its size: the instances' statuses read, the history inserted, the
    /// instances updated.
    pub(crate) fn record_health(&self, batch: &[HealthRecord]) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let ids: Vec<RowId> = batch.iter().map(|r| r.instance).collect();
        self.write(|tx| {
            let mut current: HashMap<RowId, InstanceStatus> = HashMap::new();
            for r in tx.query(
                "SELECT id, status FROM amc_instances WHERE id = ANY($1) FOR UPDATE",
                &[&ids],
            )? {
                let status: String = get(&r, 1)?;
                current.insert(
                    row_id(&r, 0)?,
                    status.parse().unwrap_or(InstanceStatus::Error),
                );
            }

            // The results applied one after the other, as SQLite does: an
            // instance checked twice in a batch ends with its last result
            // and the status both transitions lead to.
            let mut last: HashMap<RowId, LastHealth> = HashMap::new();
            let mut order: Vec<RowId> = Vec::new();
            let kept: Vec<&HealthRecord> = batch
                .iter()
                .filter(|r| current.contains_key(&r.instance))
                .collect();
            for r in &kept {
                let before = match last.get(&r.instance) {
                    Some(l) => l.status,
                    None => match current.get(&r.instance) {
                        Some(s) => *s,
                        None => continue,
                    },
                };
                if !last.contains_key(&r.instance) {
                    order.push(r.instance);
                }
                last.insert(
                    r.instance,
                    LastHealth {
                        record: r,
                        status: before.after_check(r.status),
                    },
                );
            }
            if kept.is_empty() {
                return Ok(());
            }

            let instance: Vec<RowId> = kept.iter().map(|r| r.instance).collect();
            let at: Vec<DateTime<Utc>> = kept.iter().map(|r| stored(&r.checked_at)).collect();
            let status: Vec<&str> = kept.iter().map(|r| r.status.as_str()).collect();
            let http: Vec<Option<i32>> = kept
                .iter()
                .map(|r| r.http_status.map(i32::from))
                .collect();
            let latency: Vec<Option<i64>> =
                kept.iter().map(|r| r.latency_ms.map(signed)).collect();
            let attempts: Vec<i32> = kept
                .iter()
                .map(|r| i32::try_from(r.attempts).unwrap_or(i32::MAX))
                .collect();
            let error: Vec<Option<&str>> = kept.iter().map(|r| r.error.as_deref()).collect();
            // Ordered by the batch's order, so the ids (the tie-break of
            // checks made in the same second) follow it as in SQLite.
            tx.execute(
                "INSERT INTO health_checks (instance_id, checked_at, status, http_status, latency_ms,
                     attempts, error)
                 SELECT i, t, s, h, l, a, e
                 FROM unnest($1::uuid[], $2::timestamptz[], $3::text[], $4::integer[], $5::bigint[],
                             $6::integer[], $7::text[])
                      WITH ORDINALITY AS b(i, t, s, h, l, a, e, n)
                 ORDER BY n",
                &[&instance, &at, &status, &http, &latency, &attempts, &error],
            )?;

            let mut u_id = Vec::with_capacity(order.len());
            let mut u_health = Vec::with_capacity(order.len());
            let mut u_at = Vec::with_capacity(order.len());
            let mut u_error = Vec::with_capacity(order.len());
            let mut u_latency = Vec::with_capacity(order.len());
            let mut u_status = Vec::with_capacity(order.len());
            for id in &order {
                let Some(l) = last.get(id) else { continue };
                u_id.push(*id);
                u_health.push(l.record.status.as_str());
                u_at.push(stored(&l.record.checked_at));
                u_error.push(l.record.error.as_deref());
                u_latency.push(l.record.latency_ms.map(signed));
                u_status.push(l.status.as_str());
            }
            tx.execute(
                "UPDATE amc_instances i SET health_status = u.h, last_health_check = u.t,
                     health_error = u.e, health_latency_ms = u.l, status = u.s
                 FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::bigint[],
                             $6::text[]) AS u(id, h, t, e, l, s)
                 WHERE i.id = u.id",
                &[&u_id, &u_health, &u_at, &u_error, &u_latency, &u_status],
            )?;
            Ok(())
        })
    }

    /// The checks of one instance, newest first.
    pub(crate) fn history(
        &self,
        instance: RowId,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> StoreResult<Vec<HistoryRow>> {
        let since = since.as_ref().map(stored);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.read(|c| {
            c.query(
                "SELECT checked_at, status, http_status, latency_ms, attempts, error
                 FROM health_checks
                 WHERE instance_id = $1 AND ($2::timestamptz IS NULL OR checked_at >= $2)
                 ORDER BY checked_at DESC, id DESC LIMIT $3",
                &[&instance, &since, &limit],
            )
        })?;
        super::collect(rows, |r| {
            Ok(HistoryRow {
                checked_at: time(r, 0)?,
                status: parsed(r, 1, "a health status")?,
                http_status: get::<Option<i32>>(r, 2)?
                    .map(|v| small(v, "http_status"))
                    .transpose()?,
                latency_ms: get::<Option<i64>>(r, 3)?.map(super::unsigned),
                attempts: small(get(r, 4)?, "attempts")?,
                error: get(r, 5)?,
            })
        })
    }

    /// Per-instance uptime, error rate and latency percentiles since `since`,
    /// for `owner`'s instances (every user's with `None`), sorted by name.
    /// The percentiles are computed here from the checks, with the same
    /// nearest-rank rule as every other report.
    pub(crate) fn health_report(
        &self,
        owner: Option<RowId>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<HealthSummary>> {
        let since = stored(&since);
        // The rows are decoded inside the read so that they stream rather
        // than all being held at once; a decoding failure rides out in the
        // inner result.
        self.read(|c| {
            let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&owner, &since];
            let mut rows = c.query_raw(
                "SELECT i.id, i.instance_id, i.name, u.name, a.account_id,
                        h.status, h.latency_ms, h.error, h.checked_at
                 FROM amc_instances i
                 JOIN users u ON u.id = i.user_id
                 JOIN amc_accounts a ON a.id = i.account_id
                 LEFT JOIN health_checks h ON h.instance_id = i.id AND h.checked_at >= $2
                 WHERE $1::uuid IS NULL OR i.user_id = $1
                    OR EXISTS (SELECT 1 FROM instance_shares sh
                                WHERE sh.instance_id = i.id AND sh.user_id = $1)
                 ORDER BY i.name COLLATE \"C\", i.instance_id COLLATE \"C\", i.id,
                          h.checked_at, h.id",
                params,
            )?;
            let mut report = HealthTally::default();
            while let Some(r) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)? {
                if let Err(e) = tally(&mut report, &r) {
                    return Ok(Err(e));
                }
            }
            Ok(Ok(report.finish()))
        })?
    }

    /// Checks per UTC day since `since` (every day of the period, oldest
    /// first, empty ones included), with their latency percentiles; only
    /// the checks of `instances` when given.
    pub(crate) fn latency_by_day(
        &self,
        instances: Option<&HashSet<RowId>>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DayLatency>> {
        let mut days = LatencyDays::new(since, now);
        let since = stored(&since);
        // The instance filter goes to the server: a day's checks of a large
        // fleet need not cross the network to be dropped here.
        let only: Option<Vec<RowId>> = instances.map(|set| set.iter().copied().collect());
        self.read(|c| {
            let params: [&(dyn postgres::types::ToSql + Sync); 2] = [&since, &only];
            let mut rows = c.query_raw(
                "SELECT checked_at, status = 'HEALTHY', latency_ms FROM health_checks
                 WHERE checked_at >= $1 AND ($2::uuid[] IS NULL OR instance_id = ANY($2))",
                params,
            )?;
            while let Some(r) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)? {
                let at: DateTime<Utc> = r.try_get(0)?;
                let healthy: bool = r.try_get(1)?;
                let latency: Option<i64> = r.try_get(2)?;
                days.add(
                    at.date_naive().to_string(),
                    healthy,
                    latency.map(super::unsigned),
                );
            }
            Ok(())
        })?;
        Ok(days.finish())
    }

    /// Deletes history rows older than `before`; returns how many.
    pub(crate) fn prune_history(&self, before: DateTime<Utc>) -> StoreResult<usize> {
        let before = stored(&before);
        self.write(|tx| {
            let n = tx.execute(
                "DELETE FROM health_checks WHERE checked_at < $1",
                &[&before],
            )?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}

/// Counts one row of `health report`'s query: a new instance opens a
/// summary (closing the one before); a check, if the row has one, counts
/// towards the open one.
fn tally(report: &mut HealthTally, r: &postgres::Row) -> StoreResult<()> {
    let id = row_id(r, 0)?;
    if !report.is_open(id) {
        report.open(
            id,
            decoded(r, 1, "an AMC instance ID", |s| InstanceId::parse(s).ok())?,
            get(r, 2)?,
            get(r, 3)?,
            entity(r, 4)?,
        );
    }
    let Some(status) = get::<Option<String>>(r, 5)? else {
        return Ok(());
    };
    report.check(
        &status,
        get::<Option<i64>>(r, 6)?.map(super::unsigned),
        get(r, 7)?,
        opt_time(r, 8)?,
    );
    Ok(())
}
