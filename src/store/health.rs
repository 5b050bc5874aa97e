//! Health check results: the last state on each instance, and the history.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use super::{Store, StoreError, StoreResult, fmt_time};
use crate::model::{HealthStatus, InstanceStatus, RowId};

/// The outcome of one check of one instance, as the store keeps it.
#[derive(Debug, Clone)]
pub struct HealthRecord {
    /// The instance checked.
    pub instance: RowId,
    /// When the check finished.
    pub checked_at: DateTime<Utc>,
    /// The verdict (never `Unknown`).
    pub status: HealthStatus,
    /// The last HTTP status AMC answered, if any.
    pub http_status: Option<u16>,
    /// Latency of the final attempt.
    pub latency_ms: Option<u64>,
    /// Requests made, retries included.
    pub attempts: u32,
    /// What went wrong, if anything.
    pub error: Option<String>,
}

/// One row of `health history`.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    /// When the check finished.
    pub checked_at: String,
    /// Verdict.
    pub status: HealthStatus,
    /// HTTP status.
    pub http_status: Option<u16>,
    /// Latency.
    pub latency_ms: Option<u64>,
    /// Attempts.
    pub attempts: u32,
    /// Error.
    pub error: Option<String>,
}

/// Per-instance figures of `health report`.
#[derive(Debug, Clone, Serialize)]
pub struct HealthSummary {
    /// Row id of the instance.
    pub id: RowId,
    /// AMC instance ID.
    pub instance_id: String,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: String,
    /// Entity ID of the account.
    pub account_id: String,
    /// Checks in the period.
    pub checks: u64,
    /// HEALTHY checks in the period.
    pub healthy: u64,
    /// Share of HEALTHY checks, percent (null without checks).
    pub uptime_pct: Option<f64>,
    /// Share of ERROR checks, percent (null without checks).
    pub error_rate_pct: Option<f64>,
    /// Median latency of checks that got an answer.
    pub p50_ms: Option<u64>,
    /// 95th percentile latency.
    pub p95_ms: Option<u64>,
    /// The most recent error in the period.
    pub last_error: Option<String>,
    /// When the most recent check in the period ran.
    pub last_checked_at: Option<String>,
}

/// The fleet line of `health report`: totals over the instances reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HealthFleet {
    /// Instances reported.
    pub instances: usize,
    /// Checks in the period, all instances.
    pub checks: u64,
    /// Share of HEALTHY checks over the fleet, percent (null without checks).
    pub uptime_pct: Option<f64>,
    /// Start of the period.
    pub since: String,
}

impl HealthFleet {
    /// The totals of `rows`, a report over the period starting at `since`.
    pub fn of(rows: &[HealthSummary], since: &DateTime<Utc>) -> HealthFleet {
        let checks: u64 = rows.iter().map(|r| r.checks).sum();
        let healthy: u64 = rows.iter().map(|r| r.healthy).sum();
        HealthFleet {
            instances: rows.len(),
            checks,
            uptime_pct: (checks > 0)
                .then(|| (10_000.0 * healthy as f64 / checks as f64).round() / 100.0),
            since: fmt_time(since),
        }
    }
}

/// Sorts a report worst first: the lowest uptime leads, instances not
/// checked in the period go last, ties by name.
pub fn worst_first(rows: &mut [HealthSummary]) {
    rows.sort_by(|a, b| {
        let key = |r: &HealthSummary| r.uptime_pct.unwrap_or(f64::INFINITY);
        key(a).total_cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
    });
}

/// Latency of the checks of one UTC day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayLatency {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// Checks that day.
    pub checks: u64,
    /// HEALTHY checks that day.
    pub healthy: u64,
    /// Median latency of the checks that got an answer.
    pub p50_ms: Option<u64>,
    /// 95th percentile latency.
    pub p95_ms: Option<u64>,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

impl Store {
    /// Saves a batch of results in one transaction: a history row each, and the
    /// instance's last health and status updated (see
    /// [`InstanceStatus::after_check`]). Results for
    /// instances deleted meanwhile are skipped.
    pub fn record_health(&mut self, batch: &[HealthRecord]) -> StoreResult<()> {
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
    pub fn history(
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
                checked_at: r.get(0)?,
                status: r
                    .get::<_, String>(1)?
                    .parse()
                    .unwrap_or(HealthStatus::Error),
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
    pub fn health_report(
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
                 WHERE ?1 IS NULL OR i.user_id = ?1
                 ORDER BY i.name, i.instance_id, i.id, h.checked_at, h.id",
        )?;
        let mut rows = stmt.query(params![owner, fmt_time(&since)])?;
        let mut out: Vec<HealthSummary> = Vec::new();
        let mut latencies: Vec<u64> = Vec::new();
        let mut errors = 0u64;
        let finish = |s: &mut HealthSummary, lat: &mut Vec<u64>, errors: u64| {
            lat.sort_unstable();
            s.p50_ms = percentile(lat, 50.0);
            s.p95_ms = percentile(lat, 95.0);
            if s.checks > 0 {
                s.uptime_pct = Some(round2(100.0 * s.healthy as f64 / s.checks as f64));
                s.error_rate_pct = Some(round2(100.0 * errors as f64 / s.checks as f64));
            }
            lat.clear();
        };
        while let Some(r) = rows.next()? {
            let id: RowId = r.get(0)?;
            if out.last().map(|s| s.id) != Some(id) {
                if let Some(prev) = out.last_mut() {
                    finish(prev, &mut latencies, errors);
                }
                errors = 0;
                out.push(HealthSummary {
                    id,
                    instance_id: r.get(1)?,
                    name: r.get(2)?,
                    owner: r.get(3)?,
                    account_id: r.get(4)?,
                    checks: 0,
                    healthy: 0,
                    uptime_pct: None,
                    error_rate_pct: None,
                    p50_ms: None,
                    p95_ms: None,
                    last_error: None,
                    last_checked_at: None,
                });
            }
            let Some(s) = out.last_mut() else { continue };
            let status: Option<String> = r.get(5)?;
            let Some(status) = status else { continue };
            s.checks += 1;
            match status.as_str() {
                "HEALTHY" => s.healthy += 1,
                "ERROR" => errors += 1,
                _ => {}
            }
            if let Some(l) = r.get::<_, Option<u64>>(6)? {
                latencies.push(l);
            }
            if let Some(e) = r.get::<_, Option<String>>(7)? {
                s.last_error = Some(e);
            }
            s.last_checked_at = r.get(8)?;
        }
        if let Some(last) = out.last_mut() {
            finish(last, &mut latencies, errors);
        }
        Ok(out)
    }

    /// Checks per UTC day since `since` (every day of the period, oldest
    /// first, empty ones included), with their latency percentiles; only
    /// the checks of `instances` when given.
    pub fn latency_by_day(
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
        let mut days: BTreeMap<String, (u64, u64, Vec<u64>)> = BTreeMap::new();
        let mut day = since.date_naive();
        while day <= now.date_naive() {
            days.insert(day.to_string(), (0, 0, Vec::new()));
            match day.succ_opt() {
                Some(next) => day = next,
                None => break,
            }
        }
        while let Some(r) = rows.next()? {
            if let Some(set) = instances {
                let id: RowId = r.get(0)?;
                if !set.contains(&id) {
                    continue;
                }
            }
            let day: String = r.get(1)?;
            let entry = days.entry(day).or_default();
            entry.0 += 1;
            if r.get::<_, String>(2)? == "HEALTHY" {
                entry.1 += 1;
            }
            if let Some(l) = r.get::<_, Option<u64>>(3)? {
                entry.2.push(l);
            }
        }
        Ok(days
            .into_iter()
            .map(|(day, (checks, healthy, mut lat))| {
                lat.sort_unstable();
                DayLatency {
                    day,
                    checks,
                    healthy,
                    p50_ms: percentile(&lat, 50.0),
                    p95_ms: percentile(&lat, 95.0),
                }
            })
            .collect())
    }

    /// Deletes history rows older than `before`; returns how many.
    pub fn prune_history(&mut self, before: DateTime<Utc>) -> StoreResult<usize> {
        let before = fmt_time(&before);
        self.write(|tx| {
            tx.execute("DELETE FROM health_checks WHERE checked_at < ?1", [&before])
                .map_err(StoreError::from)
        })
    }
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
