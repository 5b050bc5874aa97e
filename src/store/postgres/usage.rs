//! Workflows, executions and schedules as `usage sync` fetched them, and the
//! figures `usage report` computes from them.
//!
//! An instance's sync is saved in one transaction (its workflows and
//! schedules replaced, its executions upserted by AMC's ID, its sync mark
//! moved), so a failed or interrupted sync leaves nothing of itself behind.
//! Each list goes in one statement however long it is: an instance may
//! report hundreds of executions.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use postgres::types::ToSql;

use super::decode::{decoded_opt, get, opt_time, parsed, row_id, time};
use super::health::stored;
use super::{Db, StoreResult, unsigned};
use crate::amc::{ExecutionStatus, UsageSnapshot};
use crate::domain::{
    DayExecutions, ExecutionDays, ExecutionRow, Failure, ScheduleRow, SyncMark, UsageFigures,
    UsageFleet, UsageRow,
};
use crate::domain::{InstanceId, RowId};

/// The status column at `idx`, checked against the statuses AMC has.
fn execution_status(r: &postgres::Row, idx: usize) -> StoreResult<ExecutionStatus> {
    parsed(r, idx, "an execution status")
}

/// The positions of `items` with duplicate keys removed, the last of each
/// kept: what inserting them one at a time with replacement leaves, which a
/// single multi-row statement cannot do on its own (it refuses to touch a
/// row twice).
fn last_of_each<'a, T, K: std::hash::Hash + Eq>(
    items: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut last: HashMap<K, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        last.insert(key(item), i);
    }
    items
        .iter()
        .enumerate()
        .filter(|(i, item)| last.get(&key(item)) == Some(i))
        .map(|(_, item)| item)
        .collect()
}

/// Counts per instance from rows of (instance id, count).
fn counts(rows: Vec<postgres::Row>) -> StoreResult<HashMap<RowId, u64>> {
    let mut map = HashMap::new();
    for r in rows {
        map.insert(row_id(&r, 0)?, unsigned(get(&r, 1)?));
    }
    Ok(map)
}

impl Db {
    /// Where the last sync of every instance left off.
    pub(crate) fn sync_marks(&self) -> StoreResult<HashMap<RowId, SyncMark>> {
        let rows = self.read(|c| {
            c.query(
                "SELECT u.instance_id, u.synced_at,
                        (SELECT min(e.created_at) FROM workflow_executions e
                          WHERE e.instance_id = u.instance_id AND e.status IN ('PENDING', 'RUNNING'))
                 FROM usage_syncs u",
                &[],
            )
        })?;
        rows.iter()
            .map(|r| {
                Ok((
                    row_id(r, 0)?,
                    SyncMark {
                        synced_at: time(r, 1)?,
                        oldest_in_flight: opt_time(r, 2)?,
                    },
                ))
            })
            .collect()
    }

    /// Saves one instance's sync in one transaction: workflows and schedules
    /// replaced by the fetched lists, executions upserted by AMC's ID, and
    /// the sync mark set to `started`. An instance deleted meanwhile is
    /// skipped (`false`).
    pub(crate) fn save_usage(
        &self,
        instance: RowId,
        started: DateTime<Utc>,
        window_start: DateTime<Utc>,
        snap: &UsageSnapshot,
    ) -> StoreResult<bool> {
        let at = stored(&started);
        let window = stored(&window_start);

        let workflows = last_of_each(&snap.workflows, |w| w.workflow_id.as_str());
        let wf_id: Vec<&str> = workflows.iter().map(|w| w.workflow_id.as_str()).collect();
        let wf_sql: Vec<Option<&str>> = workflows.iter().map(|w| w.sql_query.as_deref()).collect();

        let schedules = last_of_each(&snap.schedules, |s| s.schedule_id.as_str());
        let sc_id: Vec<&str> = schedules.iter().map(|s| s.schedule_id.as_str()).collect();
        let sc_wf: Vec<Option<&str>> = schedules.iter().map(|s| s.workflow_id.as_deref()).collect();
        let sc_period: Vec<Option<&str>> = schedules
            .iter()
            .map(|s| s.aggregation_period.as_deref())
            .collect();
        let sc_hour: Vec<Option<i32>> = schedules
            .iter()
            .map(|s| s.aggregation_hour_utc.map(i32::from))
            .collect();
        let sc_enabled: Vec<bool> = schedules.iter().map(|s| s.enabled).collect();

        let executions = last_of_each(&snap.executions, |e| e.execution_id.as_str());
        let ex_id: Vec<&str> = executions.iter().map(|e| e.execution_id.as_str()).collect();
        let ex_wf: Vec<Option<&str>> = executions
            .iter()
            .map(|e| e.workflow_id.as_deref())
            .collect();
        let ex_status: Vec<&str> = executions.iter().map(|e| e.status.as_str()).collect();
        let ex_category: Vec<Option<&str>> =
            executions.iter().map(|e| e.category.as_deref()).collect();
        let ex_created: Vec<DateTime<Utc>> =
            executions.iter().map(|e| stored(&e.created_at)).collect();
        let ex_updated: Vec<Option<DateTime<Utc>>> = executions
            .iter()
            .map(|e| e.updated_at.as_ref().map(stored))
            .collect();
        let ex_duration: Vec<Option<i64>> = executions.iter().map(|e| e.duration_s()).collect();
        let ex_error: Vec<Option<&str>> = executions.iter().map(|e| e.error.as_deref()).collect();

        self.write(|tx| {
            if tx
                .query_opt("SELECT 1 FROM amc_instances WHERE id = $1", &[&instance])?
                .is_none()
            {
                return Ok(false);
            }
            tx.execute("DELETE FROM workflows WHERE instance_id = $1", &[&instance])?;
            if !wf_id.is_empty() {
                tx.execute(
                    "INSERT INTO workflows (instance_id, workflow_id, sql_query, synced_at)
                     SELECT $1, w, q, $4 FROM unnest($2::text[], $3::text[]) AS t(w, q)",
                    &[&instance, &wf_id, &wf_sql, &at],
                )?;
            }
            tx.execute(
                "DELETE FROM workflow_schedules WHERE instance_id = $1",
                &[&instance],
            )?;
            if !sc_id.is_empty() {
                tx.execute(
                    "INSERT INTO workflow_schedules (instance_id, schedule_id, workflow_id,
                         aggregation_period, aggregation_hour_utc, enabled, synced_at)
                     SELECT $1, s, w, p, h, e, $7
                     FROM unnest($2::text[], $3::text[], $4::text[], $5::integer[], $6::boolean[])
                          AS t(s, w, p, h, e)",
                    &[
                        &instance,
                        &sc_id,
                        &sc_wf,
                        &sc_period,
                        &sc_hour,
                        &sc_enabled,
                        &at,
                    ],
                )?;
            }
            if !ex_id.is_empty() {
                let params: [&(dyn ToSql + Sync); 10] = [
                    &instance,
                    &ex_id,
                    &ex_wf,
                    &ex_status,
                    &ex_category,
                    &ex_created,
                    &ex_updated,
                    &ex_duration,
                    &ex_error,
                    &at,
                ];
                tx.execute(
                    "INSERT INTO workflow_executions (instance_id, execution_id, workflow_id, status,
                         execution_category, created_at, updated_at, duration_s, error, synced_at)
                     SELECT $1, x, w, s, c, t, u, d, e, $10
                     FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
                                 $7::timestamptz[], $8::bigint[], $9::text[])
                          AS n(x, w, s, c, t, u, d, e)
                     ON CONFLICT (instance_id, execution_id) DO UPDATE SET
                         workflow_id = excluded.workflow_id, status = excluded.status,
                         execution_category = excluded.execution_category,
                         created_at = excluded.created_at, updated_at = excluded.updated_at,
                         duration_s = excluded.duration_s, error = excluded.error,
                         synced_at = excluded.synced_at",
                    &params,
                )?;
            }
            tx.execute(
                "INSERT INTO usage_syncs (instance_id, synced_at, window_start) VALUES ($1, $2, $3)
                 ON CONFLICT (instance_id) DO UPDATE SET synced_at = excluded.synced_at,
                     window_start = excluded.window_start",
                &[&instance, &at, &window],
            )?;
            Ok(true)
        })
    }

    /// The usage figures of `instances` (row id, AMC ID, name) over the
    /// executions created since `since`; ad hoc counts look at the 24 hours
    /// before `now`. Rows come in the order given. Only the rows of
    /// `instances` are read; durations are summed up here, with the same
    /// nearest-rank percentiles as every other report.
    pub(crate) fn usage_report(
        &self,
        instances: &[(RowId, InstanceId, String)],
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Vec<UsageRow>, UsageFleet)> {
        let ids: Vec<RowId> = instances.iter().map(|(id, _, _)| *id).collect();
        let since_s = stored(&since);
        let day_s = stored(&(now - chrono::TimeDelta::hours(24)));
        let query = |sql: &str, params: &[&(dyn ToSql + Sync)]| self.read(|c| c.query(sql, params));

        let mut figures = UsageFigures {
            workflows: counts(query(
                "SELECT instance_id, count(*) FROM workflows WHERE instance_id = ANY($1)
                 GROUP BY instance_id",
                &[&ids],
            )?)?,
            schedules_enabled: counts(query(
                "SELECT instance_id, count(*) FROM workflow_schedules
                 WHERE enabled AND instance_id = ANY($1) GROUP BY instance_id",
                &[&ids],
            )?)?,
            in_flight: counts(query(
                "SELECT instance_id, count(*) FROM workflow_executions
                 WHERE status IN ('PENDING', 'RUNNING') AND instance_id = ANY($1) GROUP BY instance_id",
                &[&ids],
            )?)?,
            ad_hoc_24h: counts(query(
                "SELECT instance_id, count(*) FROM workflow_executions
                 WHERE execution_category = 'AD_HOC' AND created_at >= $2 AND instance_id = ANY($1)
                 GROUP BY instance_id",
                &[&ids, &day_s],
            )?)?,
            ..UsageFigures::default()
        };

        for r in query(
            "SELECT instance_id, status, count(*) FROM workflow_executions
             WHERE created_at >= $2 AND instance_id = ANY($1) GROUP BY instance_id, status",
            &[&ids, &since_s],
        )? {
            figures
                .executions
                .entry(row_id(&r, 0)?)
                .or_default()
                .add(execution_status(&r, 1)?, unsigned(get(&r, 2)?));
        }

        for r in query(
            "SELECT instance_id, duration_s FROM workflow_executions
             WHERE created_at >= $2 AND duration_s IS NOT NULL
               AND status IN ('SUCCEEDED', 'FAILED', 'CANCELLED') AND instance_id = ANY($1)",
            &[&ids, &since_s],
        )? {
            figures
                .durations
                .entry(row_id(&r, 0)?)
                .or_default()
                .push(unsigned(get(&r, 1)?));
        }

        // The newest failure of each instance in the window: latest update
        // first, ties by the execution ID's bytes, downwards.
        for r in query(
            "SELECT DISTINCT ON (instance_id) instance_id, execution_id, workflow_id,
                    COALESCE(updated_at, created_at), error
             FROM workflow_executions
             WHERE created_at >= $2 AND status = 'FAILED' AND instance_id = ANY($1)
             ORDER BY instance_id, COALESCE(updated_at, created_at) DESC,
                      execution_id COLLATE \"C\" DESC",
            &[&ids, &since_s],
        )? {
            figures.last_failure.insert(
                row_id(&r, 0)?,
                Failure {
                    execution_id: get(&r, 1)?,
                    workflow_id: get(&r, 2)?,
                    failed_at: time(&r, 3)?,
                    error: get(&r, 4)?,
                },
            );
        }

        for r in query(
            "SELECT instance_id, synced_at FROM usage_syncs WHERE instance_id = ANY($1)",
            &[&ids],
        )? {
            figures.synced_at.insert(row_id(&r, 0)?, time(&r, 1)?);
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
        let ids: Vec<RowId> = instances.iter().copied().collect();
        let since = stored(&since);
        let rows = self.read(|c| {
            c.query(
                "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), status, count(*)
                 FROM workflow_executions WHERE created_at >= $1 AND instance_id = ANY($2)
                 GROUP BY 1, 2",
                &[&since, &ids],
            )
        })?;
        for r in rows {
            let day: String = get(&r, 0)?;
            days.add(day, execution_status(&r, 1)?, unsigned(get(&r, 2)?));
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
        let status = status.map(|s| s.as_str());
        let since = since.as_ref().map(stored);
        let rows = self.read(|c| {
            c.query(
                "SELECT execution_id, workflow_id, status, execution_category, created_at,
                        updated_at, duration_s, error
                 FROM workflow_executions
                 WHERE instance_id = $1 AND ($2::text IS NULL OR status = $2)
                   AND ($3::timestamptz IS NULL OR created_at >= $3)
                 ORDER BY created_at DESC, execution_id COLLATE \"C\" DESC",
                &[&instance, &status, &since],
            )
        })?;
        super::collect(rows, |r| {
            Ok(ExecutionRow {
                execution_id: get(r, 0)?,
                workflow_id: get(r, 1)?,
                status: execution_status(r, 2)?,
                category: get(r, 3)?,
                created_at: time(r, 4)?,
                updated_at: opt_time(r, 5)?,
                duration_s: get::<Option<i64>>(r, 6)?.map(unsigned),
                error: get(r, 7)?,
            })
        })
    }

    /// Stored schedules of one instance, or of every instance of `owner`
    /// (`None`: everyone's), with the state of each one's latest scheduled run.
    /// Two users' instances of the same name and AMC ID come in row id
    /// order, the order SQLite reads its schedules in.
    pub(crate) fn schedules(
        &self,
        instance: Option<RowId>,
        owner: Option<RowId>,
    ) -> StoreResult<Vec<ScheduleRow>> {
        let rows = self.read(|c| {
            c.query(
                "SELECT i.instance_id, i.name, s.schedule_id, s.workflow_id, s.aggregation_period,
                        s.aggregation_hour_utc, s.enabled, e.status, e.created_at
                 FROM workflow_schedules s
                 JOIN amc_instances i ON i.id = s.instance_id
                 LEFT JOIN workflow_executions e ON e.instance_id = s.instance_id AND e.execution_id = (
                     SELECT x.execution_id FROM workflow_executions x
                      WHERE x.instance_id = s.instance_id AND x.workflow_id = s.workflow_id
                        AND x.execution_category = 'SCHEDULED'
                      ORDER BY x.created_at DESC, x.execution_id COLLATE \"C\" DESC LIMIT 1)
                 WHERE ($1::uuid IS NULL OR s.instance_id = $1) AND ($2::uuid IS NULL OR i.user_id = $2
                      OR EXISTS (SELECT 1 FROM instance_shares sh
                                  WHERE sh.instance_id = i.id AND sh.user_id = $2))
                 ORDER BY i.name COLLATE \"C\", i.instance_id COLLATE \"C\", s.schedule_id COLLATE \"C\",
                          s.instance_id",
                &[&instance, &owner],
            )
        })?;
        super::collect(rows, |r| {
            Ok(ScheduleRow {
                instance_id: get(r, 0)?,
                instance_name: get(r, 1)?,
                schedule_id: get(r, 2)?,
                workflow_id: get(r, 3)?,
                aggregation_period: get(r, 4)?,
                aggregation_hour_utc: get::<Option<i32>>(r, 5)?.and_then(|h| u8::try_from(h).ok()),
                enabled: get(r, 6)?,
                last_status: decoded_opt(r, 7, "an execution status", |s| s.parse().ok())?,
                last_run_at: opt_time(r, 8)?,
            })
        })
    }
}
