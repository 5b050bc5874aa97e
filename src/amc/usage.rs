//! The reporting calls behind `usage sync` and the linked-advertiser call:
//! workflows, workflow executions, schedules, advertisers — each read page
//! by page and validated here, at the edge, so the store only ever sees
//! whole, well-formed listings. One bad page (malformed, truncated, an
//! unknown status, a missing timestamp, a repeated `nextToken`) fails the
//! whole listing of that instance.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::api::{Advertiser, Listing, PAGE_LIMIT, decode_error};
use super::client::Reply;
use super::error::AmcError;
use super::session::Session;
use super::types::Page;
use crate::domain::InstanceId;

/// What AMC says an execution is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ExecutionStatus {
    /// Queued.
    Pending,
    /// Running now.
    Running,
    /// Finished with a result.
    Succeeded,
    /// Finished without one.
    Failed,
    /// Stopped by someone.
    Cancelled,
    /// Refused by AMC before it ran (a limit, a bad query).
    Rejected,
}

impl ExecutionStatus {
    /// Every status, in report order.
    pub const ALL: [ExecutionStatus; 6] = [
        ExecutionStatus::Succeeded,
        ExecutionStatus::Failed,
        ExecutionStatus::Running,
        ExecutionStatus::Pending,
        ExecutionStatus::Cancelled,
        ExecutionStatus::Rejected,
    ];

    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Pending => "PENDING",
            ExecutionStatus::Running => "RUNNING",
            ExecutionStatus::Succeeded => "SUCCEEDED",
            ExecutionStatus::Failed => "FAILED",
            ExecutionStatus::Cancelled => "CANCELLED",
            ExecutionStatus::Rejected => "REJECTED",
        }
    }

    /// Still queued or running: AMC may change it later.
    pub fn in_flight(self) -> bool {
        matches!(self, ExecutionStatus::Pending | ExecutionStatus::Running)
    }

    /// Ran to an end whose duration means something (succeeded, failed, cancelled).
    pub fn finished(self) -> bool {
        matches!(
            self,
            ExecutionStatus::Succeeded | ExecutionStatus::Failed | ExecutionStatus::Cancelled
        )
    }
}

impl fmt::Display for ExecutionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutionStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ExecutionStatus::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown execution status {s:?}"))
    }
}

impl clap::ValueEnum for ExecutionStatus {
    fn value_variants<'a>() -> &'a [Self] {
        &Self::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// A workflow (a saved query) of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowInfo {
    /// AMC's workflow ID.
    pub workflow_id: String,
    /// Its SQL, when listed.
    pub sql_query: Option<String>,
}

/// One execution of a workflow, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Execution {
    /// AMC's execution ID.
    pub execution_id: String,
    /// The workflow it ran.
    pub workflow_id: Option<String>,
    /// Its state.
    pub status: ExecutionStatus,
    /// `AD_HOC`, `SCHEDULED`, … when given.
    pub category: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When AMC last changed it (present for every finished execution).
    pub updated_at: Option<DateTime<Utc>>,
    /// Why it failed, when AMC says.
    pub error: Option<String>,
}

impl Execution {
    /// Seconds from creation to the last update, for finished executions.
    pub fn duration_s(&self) -> Option<i64> {
        if !self.status.finished() {
            return None;
        }
        self.updated_at.map(|u| (u - self.created_at).num_seconds())
    }
}

/// A schedule that runs a workflow periodically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// AMC's schedule ID.
    pub schedule_id: String,
    /// The workflow it runs.
    pub workflow_id: Option<String>,
    /// `DAILY`, `WEEKLY`, … when given.
    pub aggregation_period: Option<String>,
    /// The UTC hour it runs at, when given.
    pub aggregation_hour_utc: Option<u8>,
    /// Whether it is switched on.
    pub enabled: bool,
}

/// An advertiser linked to an instance. Its default names the CSV columns
/// of an empty list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinkedAdvertiser {
    /// The advertiser's ID.
    pub id: String,
    /// Its name.
    pub name: Option<String>,
    /// Its kind (`SPONSORED_ADS`, `DSP`, …).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Its marketplace.
    pub marketplace_id: Option<String>,
}

/// Everything one `usage sync` fetches for an instance.
#[derive(Debug, Clone)]
pub struct UsageSnapshot {
    /// Every workflow.
    pub workflows: Vec<WorkflowInfo>,
    /// The executions created since the window start.
    pub executions: Vec<Execution>,
    /// Every schedule.
    pub schedules: Vec<Schedule>,
    /// Pages read, all lists together.
    pub pages: u32,
    /// Requests sent, retries included.
    pub attempts: u32,
}

// The API's JSON. Identifiers are required; a page without its list is malformed.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawWorkflow {
    workflow_id: String,
    #[serde(default)]
    sql_query: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawExecution {
    workflow_execution_id: String,
    #[serde(default)]
    workflow_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    create_time: Option<String>,
    #[serde(default)]
    last_updated_time: Option<String>,
    #[serde(default)]
    execution_category: Option<String>,
    #[serde(default)]
    status_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawSchedule {
    schedule_id: String,
    #[serde(default)]
    workflow_id: Option<String>,
    #[serde(default)]
    aggregation_period: Option<String>,
    #[serde(default)]
    aggregation_hour_utc: Option<u8>,
    #[serde(default)]
    schedule_enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawAdvertiser {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    marketplace_id: Option<String>,
}

macro_rules! page {
    ($name:ident, $field:ident, $item:ty) => {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct $name {
            #[serde(default)]
            $field: Vec<$item>,
            #[serde(default)]
            next_token: Option<String>,
        }
        impl Page for $name {
            type Item = $item;
            fn into_parts(self) -> (Vec<$item>, Option<String>) {
                (self.$field, self.next_token)
            }
        }
    };
}

page!(WorkflowPage, workflows, RawWorkflow);
page!(ExecutionPage, executions, RawExecution);
page!(SchedulePage, schedules, RawSchedule);
page!(AdvertiserPage, advertisers, RawAdvertiser);

/// AMC's timestamps: RFC 3339, or `yyyy-MM-ddTHH:mm:ss[.fff]` meaning UTC.
fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// The `minCreationTime` parameter: `yyyy-MM-ddTHH:mm:ss`, UTC, no zone.
pub(crate) fn amc_time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S").to_string()
}

fn execution(raw: RawExecution) -> Result<Execution, String> {
    let id = raw.workflow_execution_id;
    let status: ExecutionStatus = raw
        .status
        .as_deref()
        .ok_or_else(|| format!("execution {id} has no status"))?
        .parse()
        .map_err(|e| format!("execution {id}: {e}"))?;
    let time = |field: &str, value: Option<&str>| -> Result<Option<DateTime<Utc>>, String> {
        match value {
            None => Ok(None),
            Some(v) => parse_time(v)
                .map(Some)
                .ok_or_else(|| format!("execution {id} has an unreadable {field} {v:?}")),
        }
    };
    let created_at = time("createTime", raw.create_time.as_deref())?
        .ok_or_else(|| format!("execution {id} has no createTime"))?;
    let updated_at = time("lastUpdatedTime", raw.last_updated_time.as_deref())?;
    match updated_at {
        None if status.finished() => {
            return Err(format!(
                "execution {id} is {status} but has no lastUpdatedTime"
            ));
        }
        Some(u) if u < created_at => {
            return Err(format!(
                "execution {id} was last updated before it was created"
            ));
        }
        _ => {}
    }
    Ok(Execution {
        execution_id: id,
        workflow_id: raw.workflow_id,
        status,
        category: raw.execution_category,
        created_at,
        updated_at,
        error: raw.status_reason,
    })
}

impl Session {
    /// Every page of one of an instance's listings (`limit=100`), under
    /// the bounds every listing has (see [`Session::list_all`]).
    async fn read_all<P: Page>(
        &self,
        base: &str,
        path: &str,
        extra: &[(&str, &str)],
        advertiser: &Advertiser,
        what: &str,
    ) -> Result<Listing<P::Item>, AmcError> {
        let limit = PAGE_LIMIT.to_string();
        let mut query: Vec<(&str, &str)> = extra.to_vec();
        query.push(("limit", &limit));
        self.list_all::<P>(base, path, &query, Some(advertiser), what)
            .await
    }

    /// Every workflow of an instance.
    pub async fn list_all_workflows(
        &self,
        advertiser: &Advertiser,
        instance: &InstanceId,
        api_endpoint: Option<&str>,
    ) -> Result<Reply<Vec<WorkflowInfo>>, AmcError> {
        Ok(self
            .workflows_counted(advertiser, instance, api_endpoint)
            .await?
            .0)
    }

    /// The executions of an instance created at or after `since`
    /// (`minCreationTime`, which AMC requires), validated: an unknown
    /// status or a missing timestamp fails the listing.
    pub async fn list_executions(
        &self,
        advertiser: &Advertiser,
        instance: &InstanceId,
        api_endpoint: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<(Reply<Vec<Execution>>, u32), AmcError> {
        let base = self.api_base(advertiser.region, api_endpoint);
        let path = format!("/amc/reporting/{instance}/workflowExecutions");
        let since = amc_time(&since);
        let l = self
            .read_all::<ExecutionPage>(
                &base,
                &path,
                &[("minCreationTime", &since)],
                advertiser,
                &format!("executions of instance {instance}"),
            )
            .await?;
        let items = l
            .items
            .into_iter()
            .map(execution)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| decode_error(&path, l.status, &m, l.attempts))?;
        Ok(reply(items, l.status, l.attempts, l.latency, l.pages))
    }

    /// Every schedule of an instance.
    pub async fn list_schedules(
        &self,
        advertiser: &Advertiser,
        instance: &InstanceId,
        api_endpoint: Option<&str>,
    ) -> Result<(Reply<Vec<Schedule>>, u32), AmcError> {
        let base = self.api_base(advertiser.region, api_endpoint);
        let path = format!("/amc/reporting/{instance}/schedules");
        let l = self
            .read_all::<SchedulePage>(
                &base,
                &path,
                &[],
                advertiser,
                &format!("schedules of instance {instance}"),
            )
            .await?;
        let items = l
            .items
            .into_iter()
            .map(|s| Schedule {
                schedule_id: s.schedule_id,
                workflow_id: s.workflow_id,
                aggregation_period: s.aggregation_period,
                aggregation_hour_utc: s.aggregation_hour_utc,
                enabled: s.schedule_enabled.unwrap_or(false),
            })
            .collect();
        Ok(reply(items, l.status, l.attempts, l.latency, l.pages))
    }

    /// The advertisers linked to an instance (`GET /amc/instances/{id}/advertisers`).
    /// An administration call: the region's host, never the instance's
    /// `apiEndpoint`.
    pub async fn list_advertisers(
        &self,
        advertiser: &Advertiser,
        instance: &InstanceId,
    ) -> Result<Reply<Vec<LinkedAdvertiser>>, AmcError> {
        let base = self.api_base(advertiser.region, None);
        let path = format!("/amc/instances/{instance}/advertisers");
        let l = self
            .read_all::<AdvertiserPage>(
                &base,
                &path,
                &[],
                advertiser,
                &format!("advertisers linked to instance {instance}"),
            )
            .await?;
        let items = l
            .items
            .into_iter()
            .map(|a| LinkedAdvertiser {
                id: a.id,
                name: a.name,
                kind: a.kind,
                marketplace_id: a.marketplace_id,
            })
            .collect();
        Ok(reply(items, l.status, l.attempts, l.latency, l.pages).0)
    }

    /// What `usage sync` needs of one instance: every workflow and schedule,
    /// and the executions created since `since`. The three listings run at
    /// once; any failure fails the whole snapshot, so nothing partial is kept.
    pub async fn fetch_usage(
        &self,
        advertiser: &Advertiser,
        instance: &InstanceId,
        api_endpoint: Option<&str>,
        since: DateTime<Utc>,
    ) -> Result<UsageSnapshot, AmcError> {
        let (workflows, executions, schedules) = tokio::try_join!(
            self.workflows_counted(advertiser, instance, api_endpoint),
            self.list_executions(advertiser, instance, api_endpoint, since),
            self.list_schedules(advertiser, instance, api_endpoint),
        )?;
        Ok(UsageSnapshot {
            pages: workflows.1 + executions.1 + schedules.1,
            attempts: workflows.0.attempts + executions.0.attempts + schedules.0.attempts,
            workflows: workflows.0.value,
            executions: executions.0.value,
            schedules: schedules.0.value,
        })
    }

    async fn workflows_counted(
        &self,
        advertiser: &Advertiser,
        instance: &InstanceId,
        api_endpoint: Option<&str>,
    ) -> Result<(Reply<Vec<WorkflowInfo>>, u32), AmcError> {
        let base = self.api_base(advertiser.region, api_endpoint);
        let path = format!("/amc/reporting/{instance}/workflows");
        let l = self
            .read_all::<WorkflowPage>(
                &base,
                &path,
                &[],
                advertiser,
                &format!("workflows of instance {instance}"),
            )
            .await?;
        let items = l
            .items
            .into_iter()
            .map(|w| WorkflowInfo {
                workflow_id: w.workflow_id,
                sql_query: w.sql_query,
            })
            .collect();
        Ok(reply(items, l.status, l.attempts, l.latency, l.pages))
    }
}

fn reply<T>(
    value: T,
    status: u16,
    attempts: u32,
    latency: Duration,
    pages: u32,
) -> (Reply<T>, u32) {
    (
        Reply {
            value,
            status,
            attempts,
            latency,
        },
        pages,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_in_both_spellings() {
        let a = parse_time("2026-11-24T18:00:00Z").unwrap();
        let b = parse_time("2026-11-24T18:00:00").unwrap();
        let c = parse_time("2026-11-24T18:00:00.000").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(amc_time(&a), "2026-11-24T18:00:00");
        assert!(parse_time("yesterday").is_none());
    }

    #[test]
    fn executions_are_validated() {
        let raw =
            |status: Option<&str>, create: Option<&str>, updated: Option<&str>| RawExecution {
                workflow_execution_id: "e1".into(),
                workflow_id: Some("wf".into()),
                status: status.map(Into::into),
                create_time: create.map(Into::into),
                last_updated_time: updated.map(Into::into),
                execution_category: None,
                status_reason: None,
            };
        let t0 = Some("2026-11-24T18:00:00Z");
        let t1 = Some("2026-11-24T18:01:40Z");
        let ok = execution(raw(Some("SUCCEEDED"), t0, t1)).unwrap();
        assert_eq!(ok.duration_s(), Some(100));
        assert!(execution(raw(Some("RUNNING"), t0, None)).is_ok());
        assert!(
            execution(raw(Some("EXPLODED"), t0, t1))
                .unwrap_err()
                .contains("unknown")
        );
        assert!(
            execution(raw(Some("SUCCEEDED"), None, t1))
                .unwrap_err()
                .contains("createTime")
        );
        assert!(
            execution(raw(Some("FAILED"), t0, None))
                .unwrap_err()
                .contains("lastUpdatedTime")
        );
        assert!(execution(raw(None, t0, t1)).is_err());
        assert!(execution(raw(Some("SUCCEEDED"), t1, t0)).is_err());
    }
}
