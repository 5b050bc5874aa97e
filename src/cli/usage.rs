//! `amcctl usage`: fetch workflows, executions and schedules from AMC into
//! the store (`sync`, through the same engine as `health check`), and report
//! on them from the store (`report`, `executions`); `instance advertisers`.

use std::time::Duration;

use chrono::TimeDelta;
use clap::{Args, Subcommand};
use comfy_table::Cell;

use super::Ctx;
use super::checks::target;
use super::connect::NetArgs;
use super::health::{Selection, ago, progress_bar, select, sessions_for, shows_bar};
use crate::amc::{ExecutionStatus, LinkedAdvertiser};
use crate::domain::{Action, ExecutionRow, InstanceFilter, UsageRow};
use crate::domain::{InstanceId, RowId, fmt_time};
use crate::error::{Error, Result};
use crate::exit::ExitStatus;
use crate::ops::{self, sync::SyncResult};
use crate::output::{Format, Tabular, csv_cells, csv_header};

/// Usage commands.
#[derive(Debug, Subcommand)]
pub enum UsageCmd {
    /// Fetch workflows, executions and schedules from AMC into the store
    Sync(SyncArgs),
    /// Executions, success rate, durations and limits per instance, from the store
    Report {
        /// Instances to report on [default: all of yours]
        instances: Vec<String>,
        /// Executions created in this period, like 24h or 7d
        #[arg(long, value_name = "DUR", default_value = "30d", value_parser = crate::config::parse_duration)]
        since: Duration,
        /// Every user's instances
        #[arg(long, conflicts_with = "instances")]
        all_users: bool,
    },
    /// The stored executions of one instance, newest first
    Executions {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
        /// Only with this status
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<ExecutionStatus>,
        /// Only created in this period, like 24h or 7d
        #[arg(long, value_name = "DUR", value_parser = crate::config::parse_duration)]
        since: Option<Duration>,
    },
}

/// Flags of `usage sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Instances to sync (UUID, AMC instance ID or exact name)
    instances: Vec<String>,
    /// Sync all your active instances
    #[arg(long, conflicts_with = "instances")]
    all: bool,
    /// With --all: every user's instances, each with its owner's credentials
    #[arg(long, requires = "all")]
    all_users: bool,
    /// Executions created in this period, like 7d [default: since the last sync, else 30d]
    #[arg(long, value_name = "DUR", value_parser = crate::config::parse_duration)]
    since: Option<Duration>,
    /// Instances synced at once [default: config `concurrency`, else 16]
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    #[command(flatten)]
    net: NetArgs,
}

pub(super) fn run(ctx: &mut Ctx, cmd: UsageCmd) -> Result<ExitStatus> {
    match cmd {
        UsageCmd::Sync(a) => return sync(ctx, a),
        UsageCmd::Report {
            instances,
            since,
            all_users,
        } => report(ctx, &instances, since, all_users),
        UsageCmd::Executions {
            instance,
            status,
            since,
        } => {
            let (_, inst) =
                ctx.instance_for(instance.as_deref(), Action::Usage, "usage executions")?;
            let since = since.map(ago).transpose()?;
            let rows = ctx.store()?.executions(inst.id, status, since)?;
            ctx.out.list(&rows)
        }
    }
    .map(|()| ExitStatus::Success)
}

fn sync(ctx: &mut Ctx, a: SyncArgs) -> Result<ExitStatus> {
    let concurrency = ctx.concurrency(a.concurrency)?;
    if a.since.is_some_and(|d| TimeDelta::from_std(d).is_err()) {
        return Err(Error::usage("that duration reaches too far back"));
    }
    let instances = select(
        ctx,
        &Selection {
            instances: &a.instances,
            all: a.all,
            all_users: a.all_users,
            include_inactive: false,
            action: Action::Test,
            command: "usage sync",
        },
        "sync",
    )?;
    if instances.is_empty() {
        return Err(Error::not_found("no instances to sync")
            .with_hint("add some with `amcctl instance create`"));
    }
    let client = ctx.amc_client(&a.net)?;
    let (sessions, targets) = sessions_for(ctx, &client, &instances, a.all_users)?;
    drop(instances);
    let total = targets.len();
    let settings = ops::sync::Settings {
        concurrency,
        since: a.since,
    };
    let format = ctx.out.format;
    let bar = progress_bar(total as u64, shows_bar(ctx, false));
    let out = ctx.out.clone();
    let outcome = ops::sync::run(ctx.store()?, targets, sessions, settings, |event| {
        match event {
            ops::sync::Event::Interrupted => {
                bar.set_message("interrupted: finishing work in flight…");
            }
            ops::sync::Event::Synced { result, ok, failed } => {
                bar.inc(1);
                bar.set_message(format!("✔ {ok}  ✖ {failed}"));
                // The program's own type always serialises.
                if format == Format::Ndjson
                    && let Ok(line) = serde_json::to_string(result)
                {
                    // A reader that went away stops the printing, not the sync.
                    let _ = out.print(format!("{line}\n"));
                }
            }
        }
    });
    bar.finish_and_clear();
    let ops::sync::Synced {
        mut results,
        ok,
        failed,
        interrupted,
        elapsed,
    } = outcome?;
    results.sort_by(|x, y| x.ok().cmp(&y.ok()).then_with(|| x.name.cmp(&y.name)));
    let executions: usize = results.iter().filter_map(|r| r.executions).sum();
    let pages: u32 = results.iter().map(|r| r.pages).sum();
    match format {
        Format::Json => ctx.out.one(&serde_json::json!({
            "summary": {
                "synced": ok,
                "failed": failed,
                "executions": executions,
                "pages": pages,
                "elapsed_ms": elapsed.as_millis() as u64,
            },
            "results": results,
        }))?,
        Format::Ndjson => {}
        Format::Csv => ctx.out.list(&results)?,
        Format::Table => {
            let shown: Vec<SyncResult> = if results.len() <= 50 {
                results.clone()
            } else {
                results.iter().filter(|r| !r.ok()).cloned().collect()
            };
            if !shown.is_empty() {
                ctx.out.list(&shown)?;
            }
        }
    }
    ctx.out.info(format!(
        "{}{} of {total} instance(s) synced in {:.1}s: {executions} execution(s) from {pages} page(s), {failed} failed",
        if interrupted { "Interrupted: " } else { "" },
        ok,
        elapsed.as_secs_f64(),
    ));
    if interrupted {
        return Ok(ExitStatus::Interrupted(
            "interrupted; the instances synced so far were saved".into(),
        ));
    }
    if failed > 0 {
        return Ok(ExitStatus::PartlyFailed(format!(
            "{failed} of {total} instance(s) could not be synced"
        )));
    }
    Ok(ExitStatus::Success)
}

impl Tabular for SyncResult {
    fn columns() -> Vec<&'static str> {
        vec![
            "STATUS",
            "NAME",
            "INSTANCE ID",
            "WORKFLOWS",
            "EXECUTIONS",
            "SCHEDULES",
            "PAGES",
            "ERROR",
        ]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            crate::output::status_cell(self.status),
            Cell::new(&self.name),
            Cell::new(&self.instance_id),
            Cell::new(opt(self.workflows)),
            Cell::new(opt(self.executions)),
            Cell::new(opt(self.schedules)),
            Cell::new(self.pages),
            Cell::new(self.error.as_deref().unwrap_or("")),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<SyncCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&SyncCsv {
            id: Some(self.id),
            instance_id: &self.instance_id,
            name: &self.name,
            owner: &self.owner,
            status: self.status,
            workflows: self.workflows,
            executions: self.executions,
            schedules: self.schedules,
            pages: self.pages,
            attempts: self.attempts,
            since: &self.since,
            error: self.error.as_deref(),
        })
    }
}

/// The CSV record of a sync: the result as JSON has it, the id an option
/// so that an empty view can name the columns.
#[derive(Default, serde::Serialize)]
struct SyncCsv<'a> {
    id: Option<RowId>,
    instance_id: &'a str,
    name: &'a str,
    owner: &'a str,
    status: &'a str,
    workflows: Option<usize>,
    executions: Option<usize>,
    schedules: Option<usize>,
    pages: u32,
    attempts: u32,
    since: &'a str,
    error: Option<&'a str>,
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn rate(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |r| format!("{:.1}%", r * 100.0))
}

fn secs(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |s| format!("{s:.0}s"))
}

fn report(ctx: &mut Ctx, refs: &[String], since: Duration, all_users: bool) -> Result<()> {
    let user = ctx.user()?;
    let instances = if refs.is_empty() {
        let filter = InstanceFilter {
            member: (!all_users).then_some(user.id),
            ..Default::default()
        };
        ctx.store()?.instances(&filter)?
    } else {
        select(
            ctx,
            &Selection {
                instances: refs,
                all: false,
                all_users: false,
                include_inactive: true,
                action: Action::Usage,
                command: "usage report",
            },
            "report on",
        )?
    };
    let from = ago(since)?;
    let ids: Vec<(RowId, InstanceId, String)> = instances
        .into_iter()
        .map(|i| (i.id, i.instance_id, i.name))
        .collect();
    let (rows, fleet) = ctx.store()?.usage_report(&ids, from, crate::clock::now())?;
    match ctx.out.format {
        Format::Json => ctx
            .out
            .one(&serde_json::json!({ "instances": rows, "fleet": fleet })),
        Format::Ndjson => {
            ctx.out.list(&rows)?;
            ctx.out.one(&serde_json::json!({ "fleet": fleet }))
        }
        Format::Csv | Format::Table => {
            ctx.out.list(&rows)?;
            ctx.out.info(format!(
                "Fleet: {} instance(s), {} execution(s) since {}, success {}, p95 {}, {} in flight, {} with failures",
                fleet.instances,
                fleet.executions.total(),
                fmt_time(&fleet.since),
                rate(fleet.success_rate),
                secs(fleet.duration_s.p95.map(|p| p as f64)),
                fleet.in_flight,
                fleet.instances_with_failures,
            ));
            Ok(())
        }
    }
}

impl Tabular for UsageRow {
    fn columns() -> Vec<&'static str> {
        vec![
            "NAME",
            "INSTANCE ID",
            "WORKFLOWS",
            "SCHEDULES",
            "RUNS",
            "FAILED",
            "SUCCESS",
            "AVG",
            "P50",
            "P95",
            "IN FLIGHT",
            "AD HOC 24H",
            "LAST FAILURE",
        ]
    }
    fn row(&self) -> Vec<Cell> {
        let e = &self.executions;
        vec![
            Cell::new(&self.name),
            Cell::new(&self.instance_id),
            Cell::new(self.workflows),
            Cell::new(self.schedules_enabled),
            Cell::new(e.total()),
            Cell::new(e.FAILED),
            Cell::new(rate(self.success_rate)),
            Cell::new(secs(self.duration_s.avg)),
            Cell::new(secs(self.duration_s.p50.map(|p| p as f64))),
            Cell::new(secs(self.duration_s.p95.map(|p| p as f64))),
            Cell::new(format!("{}/10", self.in_flight)),
            Cell::new(format!("{}/30", self.ad_hoc_24h)),
            Cell::new(
                self.last_failure
                    .as_ref()
                    .map(|f| {
                        format!(
                            "{} {}",
                            fmt_time(&f.failed_at),
                            f.error.as_deref().unwrap_or("")
                        )
                    })
                    .unwrap_or_default(),
            ),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<UsageCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        let e = &self.executions;
        let failure = self.last_failure.as_ref();
        csv_cells(&UsageCsv {
            id: Some(self.id),
            instance_id: self.instance_id.as_str(),
            name: &self.name,
            workflows: self.workflows,
            schedules_enabled: self.schedules_enabled,
            succeeded: e.SUCCEEDED,
            failed: e.FAILED,
            running: e.RUNNING,
            pending: e.PENDING,
            cancelled: e.CANCELLED,
            rejected: e.REJECTED,
            success_rate: self.success_rate,
            duration_avg_s: self.duration_s.avg,
            duration_p50_s: self.duration_s.p50,
            duration_p95_s: self.duration_s.p95,
            in_flight: self.in_flight,
            ad_hoc_24h: self.ad_hoc_24h,
            last_failure_at: failure.map(|f| fmt_time(&f.failed_at)),
            last_failure_execution_id: failure.map(|f| f.execution_id.as_str()),
            synced_at: self.synced_at.as_ref().map(fmt_time),
        })
    }
}

/// The CSV record of `usage report`: the row with its counts, durations
/// and latest failure flattened, the id an option so that an empty view
/// can name the columns.
#[derive(Default, serde::Serialize)]
struct UsageCsv<'a> {
    id: Option<RowId>,
    instance_id: &'a str,
    name: &'a str,
    workflows: u64,
    schedules_enabled: u64,
    succeeded: u64,
    failed: u64,
    running: u64,
    pending: u64,
    cancelled: u64,
    rejected: u64,
    success_rate: Option<f64>,
    duration_avg_s: Option<f64>,
    duration_p50_s: Option<u64>,
    duration_p95_s: Option<u64>,
    in_flight: u64,
    ad_hoc_24h: u64,
    last_failure_at: Option<String>,
    last_failure_execution_id: Option<&'a str>,
    synced_at: Option<String>,
}

impl Tabular for ExecutionRow {
    fn columns() -> Vec<&'static str> {
        vec![
            "CREATED",
            "STATUS",
            "EXECUTION ID",
            "WORKFLOW",
            "CATEGORY",
            "DURATION",
            "ERROR",
        ]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(fmt_time(&self.created_at)),
            crate::output::status_cell(self.status.as_str()),
            Cell::new(&self.execution_id),
            Cell::new(self.workflow_id.as_deref().unwrap_or("")),
            Cell::new(self.category.as_deref().unwrap_or("")),
            Cell::new(self.duration_s.map(|d| format!("{d}s")).unwrap_or_default()),
            Cell::new(self.error.as_deref().unwrap_or("")),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<ExecutionCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&ExecutionCsv {
            execution_id: &self.execution_id,
            workflow_id: self.workflow_id.as_deref(),
            status: Some(self.status),
            category: self.category.as_deref(),
            created_at: fmt_time(&self.created_at),
            updated_at: self.updated_at.as_ref().map(fmt_time),
            duration_s: self.duration_s,
            error: self.error.as_deref(),
        })
    }
}

/// The CSV record of an execution: the row as JSON has it, the status an
/// option so that an empty view can name the columns.
#[derive(Default, serde::Serialize)]
struct ExecutionCsv<'a> {
    execution_id: &'a str,
    workflow_id: Option<&'a str>,
    status: Option<ExecutionStatus>,
    category: Option<&'a str>,
    created_at: String,
    updated_at: Option<String>,
    duration_s: Option<u64>,
    error: Option<&'a str>,
}

impl Tabular for LinkedAdvertiser {
    fn columns() -> Vec<&'static str> {
        vec!["ID", "NAME", "TYPE", "MARKETPLACE"]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(&self.id),
            Cell::new(self.name.as_deref().unwrap_or("")),
            Cell::new(self.kind.as_deref().unwrap_or("")),
            Cell::new(self.marketplace_id.as_deref().unwrap_or("")),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<Self>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(self)
    }
}

/// `instance advertisers`: the advertisers linked to an instance, asked of AMC now.
pub(super) fn advertisers(ctx: &mut Ctx, reference: Option<&str>, net: &NetArgs) -> Result<()> {
    let (user, inst) = ctx.instance_for(reference, Action::Test, "instance advertisers")?;
    let profile = ctx.instance_profile(&inst)?;
    let login = ctx.login_for(&inst)?;
    let t = target(&inst, login.id, profile)?;
    let client = ctx.amc_client(net)?;
    let session = ctx.session(&client, &login, &t.profile, login.id == user.id)?;
    let rt = ops::runtime()?;
    let reply = rt.block_on(session.list_advertisers(&t.advertiser, &t.instance_id))?;
    ctx.out.list(&reply.value)?;
    ctx.out.info(format!(
        "{} advertiser(s) linked to {}",
        reply.value.len(),
        inst.instance_id
    ));
    Ok(())
}
