//! Health checks: the records, the per-instance and fleet summaries, and their arithmetic.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{EntityId, HealthStatus, InstanceId, RowId, day_buckets};

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

/// `health report` being summed up from the rows of a backend's query, one
/// instance after the other (rows grouped by instance, checks oldest first).
/// The backends differ only in how they read a row; what a check counts
/// towards, and the rates and percentiles of an instance, are worked out
/// here so that both report the same figures.
#[derive(Debug, Default)]
pub struct HealthTally {
    out: Vec<HealthSummary>,
    latencies: Vec<u64>,
    errors: u64,
}

impl HealthTally {
    /// Whether `id` is the instance whose checks are being counted: the
    /// caller decodes an instance's own columns only when it is not.
    pub fn is_open(&self, id: RowId) -> bool {
        self.out.last().map(|s| s.id) == Some(id)
    }

    /// Closes the instance being counted and opens one without checks yet.
    pub fn open(
        &mut self,
        id: RowId,
        instance_id: InstanceId,
        name: String,
        owner: String,
        account_id: EntityId,
    ) {
        self.close();
        self.out.push(HealthSummary {
            id,
            instance_id,
            name,
            owner,
            account_id,
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

    /// Counts one check of the open instance: its status as stored
    /// (`HEALTHY`, `ERROR`, …), its latency and error if any, and when it
    /// ran. Checks come oldest first, so the last error and time seen stay.
    pub fn check(
        &mut self,
        status: &str,
        latency_ms: Option<u64>,
        error: Option<String>,
        checked_at: Option<DateTime<Utc>>,
    ) {
        let Some(s) = self.out.last_mut() else {
            return;
        };
        s.checks += 1;
        match status {
            "HEALTHY" => s.healthy += 1,
            "ERROR" => self.errors += 1,
            _ => {}
        }
        if let Some(l) = latency_ms {
            self.latencies.push(l);
        }
        if let Some(e) = error {
            s.last_error = Some(e);
        }
        s.last_checked_at = checked_at;
    }

    /// Computes the figures of the open instance from its checks.
    fn close(&mut self) {
        if let Some(s) = self.out.last_mut() {
            self.latencies.sort_unstable();
            s.p50_ms = percentile(&self.latencies, 50.0);
            s.p95_ms = percentile(&self.latencies, 95.0);
            if s.checks > 0 {
                s.uptime_pct = Some(round2(100.0 * s.healthy as f64 / s.checks as f64));
                s.error_rate_pct = Some(round2(100.0 * self.errors as f64 / s.checks as f64));
            }
        }
        self.latencies.clear();
        self.errors = 0;
    }

    /// The summaries in the order opened, the last one closed.
    pub fn finish(mut self) -> Vec<HealthSummary> {
        self.close();
        self.out
    }
}

/// The checks of one UTC day, their latencies kept for the percentiles.
#[derive(Debug, Default)]
struct DayChecks {
    checks: u64,
    healthy: u64,
    latencies: Vec<u64>,
}

/// Checks being counted per UTC day for the latency chart. It starts with
/// every day of the period, so that days without checks show and both
/// backends list the same days; a backend only adds the checks it read.
#[derive(Debug)]
pub struct LatencyDays(BTreeMap<String, DayChecks>);

impl LatencyDays {
    /// Every UTC day from `since`'s to `now`'s, without checks yet.
    pub fn new(since: DateTime<Utc>, now: DateTime<Utc>) -> Self {
        Self(day_buckets(since, now))
    }

    /// Counts one check made on `day` (`YYYY-MM-DD`); a day outside the
    /// period gets a bucket of its own rather than being lost.
    pub fn add(&mut self, day: String, healthy: bool, latency_ms: Option<u64>) {
        let entry = self.0.entry(day).or_default();
        entry.checks += 1;
        if healthy {
            entry.healthy += 1;
        }
        if let Some(l) = latency_ms {
            entry.latencies.push(l);
        }
    }

    /// The days, oldest first, with their latency percentiles.
    pub fn finish(self) -> Vec<DayLatency> {
        self.0
            .into_iter()
            .map(|(day, mut c)| {
                c.latencies.sort_unstable();
                DayLatency {
                    day,
                    checks: c.checks,
                    healthy: c.healthy,
                    p50_ms: percentile(&c.latencies, 50.0),
                    p95_ms: percentile(&c.latencies, 95.0),
                }
            })
            .collect()
    }
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
fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::{LatencyDays, percentile};

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 95.0), Some(95));
        assert_eq!(percentile(&[7], 95.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn every_day_of_the_period_is_listed_oldest_first() {
        let since = Utc.with_ymd_and_hms(2024, 2, 28, 23, 0, 0).unwrap();
        let now = Utc.with_ymd_and_hms(2024, 3, 1, 1, 0, 0).unwrap();
        let mut days = LatencyDays::new(since, now);
        days.add("2024-02-29".into(), true, Some(30));
        days.add("2024-02-29".into(), false, Some(10));
        let days = days.finish();
        let names: Vec<&str> = days.iter().map(|d| d.day.as_str()).collect();
        assert_eq!(names, ["2024-02-28", "2024-02-29", "2024-03-01"]);
        assert_eq!((days[0].checks, days[0].p50_ms), (0, None));
        assert_eq!((days[1].checks, days[1].healthy), (2, 1));
        assert_eq!((days[1].p50_ms, days[1].p95_ms), (Some(10), Some(30)));
    }
}
