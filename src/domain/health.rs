//! Health checks: the records, the per-instance and fleet summaries, and their arithmetic.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{EntityId, HealthStatus, InstanceId, RowId};

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
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub checked_at: DateTime<Utc>,
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
    pub instance_id: InstanceId,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: String,
    /// Entity ID of the account.
    pub account_id: EntityId,
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
    #[serde(serialize_with = "super::rfc3339::option")]
    pub last_checked_at: Option<DateTime<Utc>>,
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
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub since: DateTime<Utc>,
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
            since: *since,
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

/// Rounds to two decimals, as percentages are shown.
pub(crate) fn round2(v: f64) -> f64 {
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
