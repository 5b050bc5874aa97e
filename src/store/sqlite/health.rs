//! Health check results: the last state on each instance, and the history.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::decode::{decoded, entity, opt_time, parsed, time};
use super::{Db, StoreError, StoreResult, fmt_time};
use crate::domain::{
    DayLatency, HealthRecord, HealthSummary, HealthTally, HistoryRow, LatencyDays,
};
use crate::domain::{InstanceId, InstanceStatus, RowId};
impl Db {
    /// Saves a batch of results in one transaction: a history row each, and the
    /// instance's last health and status updated (see
    /// [`InstanceStatus::after_check`]). Results for
    /// instances deleted meanwhile are skipped.
    pub(crate) fn record_health(&mut self, batch: &[HealthRecord]) -> StoreResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.write(|tx| {
            let mut status_of = tx
                .prepare_cached("SELECT status FROM amc_instances WHERE id = ?1")
                ?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO health_checks (instance_id, checked_at, status, http_status, latency_ms, attempts, error)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                ?;
            let mut update = tx
                .prepare_cached(
                    "UPDATE amc_instances SET health_status = ?2, last_health_check = ?3, health_error = ?4,
                         health_latency_ms = ?5, status = ?6 WHERE id = ?1",
                )
                ?;
            for r in batch {
                let current: Option<String> = status_of
                    .query_row([r.instance], |row| row.get(0))
                    .optional()
                    ?;
                let Some(current) = current else { continue };
                let current: InstanceStatus = current.parse().unwrap_or(InstanceStatus::Error);
                let at = fmt_time(&r.checked_at);
                insert
                    .execute(params![r.instance, at, r.status.as_str(), r.http_status, r.latency_ms, r.attempts, r.error])
                    ?;
                update
                    .execute(params![
                        r.instance,
                        r.status.as_str(),
                        at,
                        r.error,
                        r.latency_ms,
                        current.after_check(r.status).as_str()
                    ])
                    ?;
            }
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
        let since = since.map(|t| fmt_time(&t)).unwrap_or_default();
        let mut stmt = self
            .read()
            .prepare(
                "SELECT checked_at, status, http_status, latency_ms, attempts, error FROM health_checks
                 WHERE instance_id = ?1 AND checked_at >= ?2 ORDER BY checked_at DESC, id DESC LIMIT ?3",
            )
            ?;
        let rows = stmt.query_map(params![instance, since, limit as i64], |r| {
            Ok(HistoryRow {
                checked_at: time(r, 0)?,
                status: parsed(r, 1, "a health status")?,
                http_status: r.get(2)?,
                latency_ms: r.get(3)?,
                attempts: r.get(4)?,
                error: r.get(5)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// Per-instance uptime, error rate and latency percentiles since `since`,
    /// for `owner`'s instances (every user's with `None`), sorted by name.
    pub(crate) fn health_report(
        &self,
        owner: Option<RowId>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<HealthSummary>> {
        let mut stmt = self.read().prepare(
            "SELECT i.id, i.instance_id, i.name, u.name, a.account_id,
                        h.status, h.latency_ms, h.error, h.checked_at
                 FROM amc_instances i
                 JOIN users u ON u.id = i.user_id
                 JOIN amc_accounts a ON a.id = i.account_id
                 LEFT JOIN health_checks h ON h.instance_id = i.id AND h.checked_at >= ?2
                 WHERE ?1 IS NULL OR i.user_id = ?1 OR EXISTS (SELECT 1 FROM instance_shares sh WHERE sh.instance_id = i.id AND sh.user_id = ?1)
                 ORDER BY i.name, i.instance_id, i.id, h.checked_at, h.id",
        )?;
        let mut rows = stmt.query(params![owner, fmt_time(&since)])?;
        let mut report = HealthTally::default();
        while let Some(r) = rows.next()? {
            let id: RowId = r.get(0)?;
            if !report.is_open(id) {
                report.open(
                    id,
                    decoded(r, 1, "an AMC instance ID", |s| InstanceId::parse(s).ok())?,
                    r.get(2)?,
                    r.get(3)?,
                    entity(r, 4)?,
                );
            }
            let status: Option<String> = r.get(5)?;
            let Some(status) = status else { continue };
            report.check(&status, r.get(6)?, r.get(7)?, opt_time(r, 8)?);
        }
        Ok(report.finish())
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
        let mut stmt = self.read().prepare(
            "SELECT instance_id, substr(checked_at, 1, 10), status, latency_ms
                 FROM health_checks WHERE checked_at >= ?1",
        )?;
        let mut rows = stmt.query([fmt_time(&since)])?;
        let mut days = LatencyDays::new(since, now);
        while let Some(r) = rows.next()? {
            if let Some(set) = instances {
                let id: RowId = r.get(0)?;
                if !set.contains(&id) {
                    continue;
                }
            }
            days.add(r.get(1)?, r.get::<_, String>(2)? == "HEALTHY", r.get(3)?);
        }
        Ok(days.finish())
    }

    /// Deletes history rows older than `before`; returns how many.
    pub(crate) fn prune_history(&mut self, before: DateTime<Utc>) -> StoreResult<usize> {
        let before = fmt_time(&before);
        self.write(|tx| {
            tx.execute("DELETE FROM health_checks WHERE checked_at < ?1", [&before])
                .map_err(StoreError::from)
        })
    }
}
