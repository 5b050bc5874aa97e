//! Usage: workflows, schedules and executions as synced from AMC, and their summaries.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{InstanceId, RowId, day_buckets, percentile};
use crate::amc::ExecutionStatus;

/// Where an instance's last sync left off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncMark {
    /// When the last successful sync started.
    pub synced_at: DateTime<Utc>,
    /// The creation time of the oldest execution stored as still in flight,
    /// which the next sync must look at again.
    pub oldest_in_flight: Option<DateTime<Utc>>,
}

/// Executions counted by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[allow(non_snake_case)]
pub struct StatusCounts {
    /// Finished with a result.
    pub SUCCEEDED: u64,
    /// Finished without one.
    pub FAILED: u64,
    /// Running.
    pub RUNNING: u64,
    /// Queued.
    pub PENDING: u64,
    /// Stopped.
    pub CANCELLED: u64,
    /// Refused by AMC.
    pub REJECTED: u64,
}

impl StatusCounts {
    /// Counts `n` more executions of `status`.
    pub fn add(&mut self, status: ExecutionStatus, n: u64) {
        let slot = match status {
            ExecutionStatus::Succeeded => &mut self.SUCCEEDED,
            ExecutionStatus::Failed => &mut self.FAILED,
            ExecutionStatus::Running => &mut self.RUNNING,
            ExecutionStatus::Pending => &mut self.PENDING,
            ExecutionStatus::Cancelled => &mut self.CANCELLED,
            ExecutionStatus::Rejected => &mut self.REJECTED,
        };
        *slot += n;
    }

    /// Adds the counts of `o`.
    pub fn merge(&mut self, o: &StatusCounts) {
        self.SUCCEEDED += o.SUCCEEDED;
        self.FAILED += o.FAILED;
        self.RUNNING += o.RUNNING;
        self.PENDING += o.PENDING;
        self.CANCELLED += o.CANCELLED;
        self.REJECTED += o.REJECTED;
    }

    /// All executions counted.
    pub fn total(&self) -> u64 {
        self.SUCCEEDED + self.FAILED + self.RUNNING + self.PENDING + self.CANCELLED + self.REJECTED
    }

    /// SUCCEEDED / (SUCCEEDED + FAILED); `None` when neither occurred.
    pub fn success_rate(&self) -> Option<f64> {
        let decided = self.SUCCEEDED + self.FAILED;
        (decided > 0).then(|| self.SUCCEEDED as f64 / decided as f64)
    }
}

/// Duration figures of finished executions, in seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Durations {
    /// Mean.
    pub avg: Option<f64>,
    /// Median (nearest rank).
    pub p50: Option<u64>,
    /// 95th percentile (nearest rank).
    pub p95: Option<u64>,
}

impl Durations {
    /// The summary of durations sorted ascending.
    pub fn of(sorted: &[u64]) -> Durations {
        let sum: u64 = sorted.iter().sum();
        Durations {
            avg: (!sorted.is_empty()).then(|| sum as f64 / sorted.len() as f64),
            p50: percentile(sorted, 50.0),
            p95: percentile(sorted, 95.0),
        }
    }
}

/// The latest failed execution.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failure {
    /// AMC's execution ID.
    pub execution_id: String,
    /// Its workflow.
    pub workflow_id: Option<String>,
    /// When it failed (its last update).
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub failed_at: DateTime<Utc>,
    /// Why, when AMC said.
    pub error: Option<String>,
}

/// One instance of `usage report`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageRow {
    /// Row id.
    pub id: RowId,
    /// AMC's instance ID.
    pub instance_id: InstanceId,
    /// Display name.
    pub name: String,
    /// Workflows stored.
    pub workflows: u64,
    /// Schedules switched on.
    pub schedules_enabled: u64,
    /// Executions created in the window, by status.
    pub executions: StatusCounts,
    /// SUCCEEDED / (SUCCEEDED + FAILED) in the window.
    pub success_rate: Option<f64>,
    /// Durations of the window's finished executions.
    pub duration_s: Durations,
    /// Executions running or pending now (AMC allows 10 at once).
    pub in_flight: u64,
    /// Ad hoc executions created in the last 24 hours (AMC allows 30 a day).
    pub ad_hoc_24h: u64,
    /// The latest failure in the window.
    pub last_failure: Option<Failure>,
    /// When the instance was last synced.
    #[serde(serialize_with = "super::rfc3339::option")]
    pub synced_at: Option<DateTime<Utc>>,
}

/// The fleet line of `usage report`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageFleet {
    /// Instances reported.
    pub instances: usize,
    /// Workflows, all instances.
    pub workflows: u64,
    /// Enabled schedules, all instances.
    pub schedules_enabled: u64,
    /// Executions in the window, by status.
    pub executions: StatusCounts,
    /// Over the fleet.
    pub success_rate: Option<f64>,
    /// Over the fleet's finished executions.
    pub duration_s: Durations,
    /// Running or pending now.
    pub in_flight: u64,
    /// Ad hoc executions in the last 24 hours.
    pub ad_hoc_24h: u64,
    /// Instances with at least one failure in the window.
    pub instances_with_failures: usize,
    /// Start of the window.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub since: DateTime<Utc>,
}

/// The per-instance figures of `usage report` as a store backend reads them
/// from its queries, keyed by the instance's row id; an instance missing
/// from a map has none of that figure. Each backend only fills these in its
/// own SQL, so that turning them into rows and the fleet line (the sums,
/// rates and percentiles) is done once and comes out the same for both.
#[derive(Debug, Default)]
pub struct UsageFigures {
    /// Workflows stored.
    pub workflows: HashMap<RowId, u64>,
    /// Schedules switched on.
    pub schedules_enabled: HashMap<RowId, u64>,
    /// Executions running or pending now.
    pub in_flight: HashMap<RowId, u64>,
    /// Ad hoc executions of the last 24 hours.
    pub ad_hoc_24h: HashMap<RowId, u64>,
    /// Executions created in the window, by status.
    pub executions: HashMap<RowId, StatusCounts>,
    /// Durations of the window's finished executions, in any order.
    pub durations: HashMap<RowId, Vec<u64>>,
    /// The latest failure in the window.
    pub last_failure: HashMap<RowId, Failure>,
    /// When the instance was last synced.
    pub synced_at: HashMap<RowId, DateTime<Utc>>,
}

impl UsageFigures {
    /// The report rows of `instances` (row id, AMC ID, name), in the order
    /// given, and their fleet line over the window starting at `since`.
    /// The fleet's durations are pooled before their percentiles are taken:
    /// a percentile of per-instance percentiles would be a different figure.
    pub fn report(
        mut self,
        instances: &[(RowId, InstanceId, String)],
        since: DateTime<Utc>,
    ) -> (Vec<UsageRow>, UsageFleet) {
        let count = |map: &HashMap<RowId, u64>, id: &RowId| map.get(id).copied().unwrap_or(0);
        let mut fleet_counts = StatusCounts::default();
        let mut fleet_durations: Vec<u64> = Vec::new();
        let mut rows = Vec::with_capacity(instances.len());
        for (id, instance_id, name) in instances {
            let counts = self.executions.get(id).copied().unwrap_or_default();
            let mut d = self.durations.remove(id).unwrap_or_default();
            d.sort_unstable();
            fleet_counts.merge(&counts);
            fleet_durations.extend_from_slice(&d);
            rows.push(UsageRow {
                id: *id,
                instance_id: instance_id.clone(),
                name: name.clone(),
                workflows: count(&self.workflows, id),
                schedules_enabled: count(&self.schedules_enabled, id),
                executions: counts,
                success_rate: counts.success_rate(),
                duration_s: Durations::of(&d),
                in_flight: count(&self.in_flight, id),
                ad_hoc_24h: count(&self.ad_hoc_24h, id),
                last_failure: self.last_failure.remove(id),
                synced_at: self.synced_at.remove(id),
            });
        }
        fleet_durations.sort_unstable();
        let fleet = UsageFleet {
            instances: rows.len(),
            workflows: rows.iter().map(|r| r.workflows).sum(),
            schedules_enabled: rows.iter().map(|r| r.schedules_enabled).sum(),
            executions: fleet_counts,
            success_rate: fleet_counts.success_rate(),
            duration_s: Durations::of(&fleet_durations),
            in_flight: rows.iter().map(|r| r.in_flight).sum(),
            ad_hoc_24h: rows.iter().map(|r| r.ad_hoc_24h).sum(),
            instances_with_failures: rows.iter().filter(|r| r.last_failure.is_some()).count(),
            since,
        };
        (rows, fleet)
    }
}

/// Executions being counted per UTC day for `usage report`'s daily chart.
/// It starts with every day of the window, so that days without executions
/// show as zeros and both backends list the same days; a backend only adds
/// what its query counted.
#[derive(Debug)]
pub struct ExecutionDays(BTreeMap<String, StatusCounts>);

impl ExecutionDays {
    /// Every UTC day from `since`'s to `now`'s, none counted yet.
    pub fn new(since: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self(day_buckets(since, now))
    }

    /// Counts `n` executions of `status` created on `day` (`YYYY-MM-DD`);
    /// a day outside the window gets a bucket of its own rather than being
    /// lost.
    pub fn add(&mut self, day: String, status: ExecutionStatus, n: u64) {
        self.0.entry(day).or_default().add(status, n);
    }

    /// The days, oldest first.
    pub fn finish(self) -> Vec<DayExecutions> {
        self.0
            .into_iter()
            .map(|(day, executions)| DayExecutions { day, executions })
            .collect()
    }
}

/// The executions created on one UTC day, by status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayExecutions {
    /// The day, `YYYY-MM-DD`.
    pub day: String,
    /// Executions created that day.
    pub executions: StatusCounts,
}

/// One stored execution (`usage executions`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecutionRow {
    /// AMC's execution ID.
    pub execution_id: String,
    /// Its workflow.
    pub workflow_id: Option<String>,
    /// Its state when last synced.
    pub status: ExecutionStatus,
    /// `AD_HOC`, `SCHEDULED`, …
    pub category: Option<String>,
    /// AMC's createTime.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    /// AMC's lastUpdatedTime.
    #[serde(serialize_with = "super::rfc3339::option")]
    pub updated_at: Option<DateTime<Utc>>,
    /// Seconds it ran, once finished.
    pub duration_s: Option<u64>,
    /// Why it failed.
    pub error: Option<String>,
}

/// One stored schedule (`schedule list`). Its default names the CSV
/// columns of an empty list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScheduleRow {
    /// AMC's instance ID.
    pub instance_id: String,
    /// The instance's name.
    pub instance_name: String,
    /// AMC's schedule ID.
    pub schedule_id: String,
    /// The workflow it runs.
    pub workflow_id: Option<String>,
    /// `DAILY`, `WEEKLY`, …
    pub aggregation_period: Option<String>,
    /// UTC hour of the run.
    pub aggregation_hour_utc: Option<u8>,
    /// Switched on.
    pub enabled: bool,
    /// Status of its workflow's latest scheduled execution.
    pub last_status: Option<ExecutionStatus>,
    /// When that execution was created.
    #[serde(serialize_with = "super::rfc3339::option")]
    pub last_run_at: Option<DateTime<Utc>>,
}

impl ScheduleRow {
    /// Whether its latest scheduled execution failed.
    pub fn failing(&self) -> bool {
        self.last_status == Some(ExecutionStatus::Failed)
    }
}
