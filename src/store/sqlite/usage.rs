//! Workflows, executions and schedules as `usage sync` fetched them, and the
//! figures `usage report` computes from them.
//!
//! An instance's sync is saved in one transaction (its workflows and
//! schedules replaced, its executions upserted by AMC's ID, its sync mark
//! moved), so a failed or interrupted sync leaves nothing of itself behind.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::decode::{decoded_opt, opt_time, parsed, time};
use super::{Db, StoreError, StoreResult, fmt_time};
use crate::amc::{ExecutionStatus, UsageSnapshot};
use crate::domain::{
    DayExecutions, ExecutionDays, ExecutionRow, Failure, ScheduleRow, SyncMark, UsageFigures,
    UsageFleet, UsageRow,
};
use crate::domain::{InstanceId, RowId};
fn execution_status(r: &rusqlite::Row, idx: usize) -> rusqlite::Result<ExecutionStatus> {
    parsed(r, idx, "an execution status")
}

impl Db {
    /// Where the last sync of every instance left off.
    pub(crate) fn sync_marks(&self) -> StoreResult<HashMap<RowId, SyncMark>> {
        let mut stmt = self
            .read()
            .prepare(
                "SELECT u.instance_id, u.synced_at,
                        (SELECT min(e.created_at) FROM workflow_executions e
                          WHERE e.instance_id = u.instance_id AND e.status IN ('PENDING', 'RUNNING'))
                 FROM usage_syncs u",
            )
            ?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, RowId>(0)?,
                SyncMark {
                    synced_at: time(r, 1)?,
                    oldest_in_flight: opt_time(r, 2)?,
                },
            ))
        })?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// Saves one instance's sync in one transaction: workflows and schedules
    /// replaced by the fetched lists, executions upserted by AMC's ID, and
    /// the sync mark set to `started`. An instance deleted meanwhile is
    /// skipped (`false`).
    pub(crate) fn save_usage(
        &mut self,
        instance: RowId,
        started: DateTime<Utc>,
        window_start: DateTime<Utc>,
        snap: &UsageSnapshot,
    ) -> StoreResult<bool> {
        let at = fmt_time(&started);
        let window = fmt_time(&window_start);
        self.write(|tx| {
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM amc_instances WHERE id = ?1", [instance], |r| {
                    r.get(0)
                })
                .optional()
                ?;
            if exists.is_none() {
                return Ok(false);
            }
            tx.execute("DELETE FROM workflows WHERE instance_id = ?1", [instance])
                ?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO workflows (instance_id, workflow_id, sql_query, synced_at)
                         VALUES (?1, ?2, ?3, ?4)",
                    )
                    ?;
                for w in &snap.workflows {
                    stmt.execute(params![instance, w.workflow_id, w.sql_query, at])
                        ?;
                }
            }
            tx.execute(
                "DELETE FROM workflow_schedules WHERE instance_id = ?1",
                [instance],
            )
            ?;
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO workflow_schedules (instance_id, schedule_id, workflow_id,
                             aggregation_period, aggregation_hour_utc, enabled, synced_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    ?;
                for s in &snap.schedules {
                    stmt.execute(params![
                        instance,
                        s.schedule_id,
                        s.workflow_id,
                        s.aggregation_period,
                        s.aggregation_hour_utc,
                        s.enabled,
                        at
                    ])
                    ?;
                }
            }
            {
                let mut stmt = tx
                    .prepare_cached(
                        "INSERT INTO workflow_executions (instance_id, execution_id, workflow_id, status,
                             execution_category, created_at, updated_at, duration_s, error, synced_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                         ON CONFLICT (instance_id, execution_id) DO UPDATE SET
                             workflow_id = excluded.workflow_id, status = excluded.status,
                             execution_category = excluded.execution_category,
                             created_at = excluded.created_at, updated_at = excluded.updated_at,
                             duration_s = excluded.duration_s, error = excluded.error,
                             synced_at = excluded.synced_at",
                    )
                    ?;
                for e in &snap.executions {
                    stmt.execute(params![
                        instance,
                        e.execution_id,
                        e.workflow_id,
                        e.status.as_str(),
                        e.category,
                        fmt_time(&e.created_at),
                        e.updated_at.as_ref().map(fmt_time),
                        e.duration_s(),
                        e.error,
                        at
                    ])
                    ?;
                }
            }
            tx.execute(
                "INSERT INTO usage_syncs (instance_id, synced_at, window_start) VALUES (?1, ?2, ?3)
                 ON CONFLICT (instance_id) DO UPDATE SET synced_at = excluded.synced_at,
                     window_start = excluded.window_start",
                params![instance, at, window],
            )
            ?;
            Ok(true)
        })
    }

    /// The usage figures of `instances` (row id, AMC ID, name) over the
    /// executions created since `since`; ad hoc counts look at the 24 hours
    /// before `now`. Rows come in the order given.
    pub(crate) fn usage_report(
        &self,
        instances: &[(RowId, InstanceId, String)],
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Vec<UsageRow>, UsageFleet)> {
        let conn = self.read();
        let since_s = fmt_time(&since);
        let day_s = fmt_time(&(now - chrono::TimeDelta::hours(24)));
        let counts =
            |sql: &str, args: &[&dyn rusqlite::ToSql]| -> StoreResult<HashMap<RowId, u64>> {
                let mut stmt = conn.prepare(sql)?;
                let rows =
                    stmt.query_map(args, |r| Ok((r.get::<_, RowId>(0)?, r.get::<_, i64>(1)?)))?;
                let mut map = HashMap::new();
                for row in rows {
                    let (id, n) = row?;
                    map.insert(id, n.max(0) as u64);
                }
                Ok(map)
            };
        let mut figures = UsageFigures {
            workflows: counts(
                "SELECT instance_id, count(*) FROM workflows GROUP BY instance_id",
                &[],
            )?,
            schedules_enabled: counts(
                "SELECT instance_id, count(*) FROM workflow_schedules WHERE enabled = 1 GROUP BY instance_id",
                &[],
            )?,
            in_flight: counts(
                "SELECT instance_id, count(*) FROM workflow_executions
                 WHERE status IN ('PENDING', 'RUNNING') GROUP BY instance_id",
                &[],
            )?,
            ad_hoc_24h: counts(
                "SELECT instance_id, count(*) FROM workflow_executions
                 WHERE execution_category = 'AD_HOC' AND created_at >= ?1 GROUP BY instance_id",
                &[&day_s],
            )?,
            ..UsageFigures::default()
        };

        {
            let mut stmt = conn.prepare(
                "SELECT instance_id, status, count(*) FROM workflow_executions
                     WHERE created_at >= ?1 GROUP BY instance_id, status",
            )?;
            let rows = stmt.query_map([&since_s], |r| {
                Ok((
                    r.get::<_, RowId>(0)?,
                    execution_status(r, 1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for row in rows {
                let (id, status, n) = row?;
                figures
                    .executions
                    .entry(id)
                    .or_default()
                    .add(status, n.max(0) as u64);
            }
        }

        {
            let mut stmt = conn.prepare(
                "SELECT instance_id, duration_s FROM workflow_executions
                     WHERE created_at >= ?1 AND duration_s IS NOT NULL
                       AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED')",
            )?;
            let rows = stmt.query_map([&since_s], |r| {
                Ok((r.get::<_, RowId>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (id, d) = row?;
                figures
                    .durations
                    .entry(id)
                    .or_default()
                    .push(d.max(0) as u64);
            }
        }

        {
            // The newest failure of each instance: the window's FAILED rows,
            // latest update first, the first one seen per instance kept.
            let mut stmt = conn
                .prepare(
                    "SELECT instance_id, execution_id, workflow_id, COALESCE(updated_at, created_at), error
                     FROM workflow_executions WHERE created_at >= ?1 AND status = 'FAILED'
                     ORDER BY instance_id, COALESCE(updated_at, created_at) DESC, execution_id DESC",
                )
                ?;
            let rows = stmt.query_map([&since_s], |r| {
                Ok((
                    r.get::<_, RowId>(0)?,
                    Failure {
                        execution_id: r.get(1)?,
                        workflow_id: r.get(2)?,
                        failed_at: time(r, 3)?,
                        error: r.get(4)?,
                    },
                ))
            })?;
            for row in rows {
                let (id, f) = row?;
                figures.last_failure.entry(id).or_insert(f);
            }
        }

        {
            let mut stmt = conn.prepare("SELECT instance_id, synced_at FROM usage_syncs")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, RowId>(0)?, time(r, 1)?)))?;
            for row in rows {
                let (id, at) = row?;
                figures.synced_at.insert(id, at);
            }
        }

        Ok(figures.report(instances, since))
    }

    /// Executions of `instances` created since `since`, per UTC day (every
    /// day up to `now`, oldest first, empty ones included).
    pub(crate) fn executions_by_day(
        &self,
        instances: &HashSet<RowId>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DayExecutions>> {
        let mut days = ExecutionDays::new(since, now);
        let mut stmt = self.read().prepare(
            "SELECT instance_id, substr(created_at, 1, 10), status, count(*)
                 FROM workflow_executions WHERE created_at >= ?1 GROUP BY 1, 2, 3",
        )?;
        let rows = stmt.query_map([fmt_time(&since)], |r| {
            Ok((
                r.get::<_, RowId>(0)?,
                r.get::<_, String>(1)?,
                execution_status(r, 2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (id, day, status, n) = row?;
            if instances.contains(&id) {
                days.add(day, status, n.max(0) as u64);
            }
        }
        Ok(days.finish())
    }

    /// The stored executions of one instance, newest first.
    pub(crate) fn executions(
        &self,
        instance: RowId,
        status: Option<ExecutionStatus>,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<ExecutionRow>> {
        let mut stmt = self.read().prepare(
            "SELECT execution_id, workflow_id, status, execution_category, created_at,
                        updated_at, duration_s, error
                 FROM workflow_executions
                 WHERE instance_id = ?1 AND (?2 IS NULL OR status = ?2)
                   AND (?3 IS NULL OR created_at >= ?3)
                 ORDER BY created_at DESC, execution_id DESC",
        )?;
        let rows = stmt.query_map(
            params![
                instance,
                status.map(|s| s.as_str()),
                since.as_ref().map(fmt_time)
            ],
            |r| {
                Ok(ExecutionRow {
                    execution_id: r.get(0)?,
                    workflow_id: r.get(1)?,
                    status: execution_status(r, 2)?,
                    category: r.get(3)?,
                    created_at: time(r, 4)?,
                    updated_at: opt_time(r, 5)?,
                    duration_s: r.get::<_, Option<i64>>(6)?.map(|d| d.max(0) as u64),
                    error: r.get(7)?,
                })
            },
        )?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }

    /// Stored schedules of one instance, or of every instance of `owner`
    /// (`None`: everyone's), with the state of each one's latest scheduled run.
    pub(crate) fn schedules(
        &self,
        instance: Option<RowId>,
        owner: Option<RowId>,
    ) -> StoreResult<Vec<ScheduleRow>> {
        let mut stmt = self
            .read()
            .prepare(
                "SELECT i.instance_id, i.name, s.schedule_id, s.workflow_id, s.aggregation_period,
                        s.aggregation_hour_utc, s.enabled, e.status, e.created_at
                 FROM workflow_schedules s
                 JOIN amc_instances i ON i.id = s.instance_id
                 LEFT JOIN workflow_executions e ON e.instance_id = s.instance_id AND e.execution_id = (
                     SELECT x.execution_id FROM workflow_executions x
                      WHERE x.instance_id = s.instance_id AND x.workflow_id = s.workflow_id
                        AND x.execution_category = 'SCHEDULED'
                      ORDER BY x.created_at DESC, x.execution_id DESC LIMIT 1)
                 WHERE (?1 IS NULL OR s.instance_id = ?1) AND (?2 IS NULL OR i.user_id = ?2 OR EXISTS (SELECT 1 FROM instance_shares sh WHERE sh.instance_id = i.id AND sh.user_id = ?2))
                 ORDER BY i.name, i.instance_id, s.schedule_id",
            )
            ?;
        let rows = stmt.query_map(params![instance, owner], |r| {
            Ok(ScheduleRow {
                instance_id: r.get(0)?,
                instance_name: r.get(1)?,
                schedule_id: r.get(2)?,
                workflow_id: r.get(3)?,
                aggregation_period: r.get(4)?,
                aggregation_hour_utc: r
                    .get::<_, Option<i64>>(5)?
                    .and_then(|h| u8::try_from(h).ok()),
                enabled: r.get(6)?,
                last_status: decoded_opt(r, 7, "an execution status", |s| s.parse().ok())?,
                last_run_at: opt_time(r, 8)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(StoreError::from)
    }
}
