//! `amcctl health`: bulk checks with progress, history, reports and pruning.

use std::collections::HashMap;
use std::time::Duration;

use chrono::Utc;
use clap::{Args, Subcommand};
use comfy_table::Cell;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Ctx;
use super::checks::target;
use super::connect::NetArgs;
use crate::domain::{
    Action, AuditNote, AuditObject, HealthStatus, InstanceStatus, RowId, fmt_time,
};
use crate::domain::{
    HealthFleet, HealthSummary, HistoryRow, Instance, InstanceFilter, percentile, worst_first,
};
use crate::error::{Error, Kind, Result};
use crate::exit::ExitStatus;
use crate::health::{CheckResult, SessionKey, Sessions, Tally, Target};
use crate::ops;
use crate::output::{Format, Output, Tabular, csv_cells, csv_header, health_cell};

/// Health commands.
#[derive(Debug, Subcommand)]
pub enum HealthCmd {
    /// Check instances against AMC now and record the results
    Check(CheckArgs),
    /// Last known state per instance, from the store (no network)
    Status {
        /// Only instances that are not HEALTHY
        #[arg(long)]
        unhealthy: bool,
        /// Every user's instances
        #[arg(long)]
        all_users: bool,
    },
    /// The recorded checks of one instance, newest first
    History {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
        /// Only checks newer than this, like 24h or 7d
        #[arg(long, value_name = "DUR", value_parser = crate::config::parse_duration)]
        since: Option<Duration>,
        /// At most this many rows
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Uptime, error rate and latency per instance over a period
    Report {
        /// The period, like 24h or 7d
        #[arg(long, value_name = "DUR", default_value = "7d", value_parser = crate::config::parse_duration)]
        since: Duration,
        /// Every user's instances
        #[arg(long)]
        all_users: bool,
    },
    /// Delete recorded checks older than a duration
    Prune {
        /// Like 30d
        #[arg(long, value_name = "DUR", value_parser = crate::config::parse_duration)]
        older_than: Duration,
    },
}

/// Flags of `health check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Instances to check (UUID, AMC instance ID or exact name)
    instances: Vec<String>,
    /// Check all your active instances
    #[arg(long, conflicts_with = "instances")]
    all: bool,
    /// With --all: every user's instances, each with its owner's credentials
    #[arg(long, requires = "all")]
    all_users: bool,
    /// With --all: INACTIVE instances too (their status does not change)
    #[arg(long, requires = "all")]
    include_inactive: bool,
    /// Checks in flight at once [default: config `concurrency`, else 16]
    #[arg(long, value_name = "N")]
    concurrency: Option<usize>,
    #[command(flatten)]
    net: NetArgs,
    /// Also list one workflow: the reporting API must answer too
    #[arg(long)]
    deep: bool,
    /// Print one monitoring-plugin line and exit 0/1/2/3 (OK/WARNING/CRITICAL/UNKNOWN)
    #[arg(long)]
    nagios: bool,
}

/// A summary table lists every result up to this many; beyond, only the unhealthy ones.
const FULL_TABLE_MAX: usize = 50;

pub(super) fn run(ctx: &mut Ctx, cmd: HealthCmd) -> Result<ExitStatus> {
    match cmd {
        HealthCmd::Check(a) => {
            let nagios = a.nagios;
            return check(ctx, a).or_else(|e| {
                if nagios {
                    nagios_unknown(&ctx.out, e)
                } else {
                    Err(e)
                }
            });
        }
        HealthCmd::Status {
            unhealthy,
            all_users,
        } => {
            let user = ctx.user()?;
            let filter = InstanceFilter {
                member: (!all_users).then_some(user.id),
                not_healthy: unhealthy,
                ..Default::default()
            };
            let list: Vec<StatusRow> = ctx
                .store()?
                .instances(&filter)?
                .into_iter()
                .map(StatusRow::from)
                .collect();
            ctx.out.list(&list)
        }
        HealthCmd::History {
            instance,
            since,
            limit,
        } => {
            let (_, inst) =
                ctx.instance_for(instance.as_deref(), Action::History, "health history")?;
            let since = since.map(ago).transpose()?;
            let rows = ctx.store()?.history(inst.id, since, limit)?;
            ctx.out.list(&rows)
        }
        HealthCmd::Report { since, all_users } => report(ctx, since, all_users),
        HealthCmd::Prune { older_than } => {
            let user = ctx.user()?;
            let before = ago(older_than)?;
            let note = AuditNote::other(
                &user.name,
                "health prune",
                AuditObject::Store,
                None,
                None,
                format!("recorded checks before {} deleted", fmt_time(&before)),
            );
            let n = ctx.store()?.audited(note).prune_history(before)?;
            ctx.out.info(format!("Deleted {n} recorded check(s)"));
            if ctx.out.format.is_machine() {
                ctx.out.one(&serde_json::json!({ "deleted": n }))?;
            }
            Ok(())
        }
    }
    .map(|()| ExitStatus::Success)
}

pub(super) fn ago(d: Duration) -> Result<chrono::DateTime<Utc>> {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| crate::clock::now().checked_sub_signed(d))
        .ok_or_else(|| Error::usage("that duration reaches too far back"))
}

/// The instances a check covers, in the order they are checked.
fn targets(ctx: &mut Ctx, a: &CheckArgs) -> Result<Vec<Instance>> {
    select(
        ctx,
        &Selection {
            instances: &a.instances,
            all: a.all,
            all_users: a.all_users,
            include_inactive: a.include_inactive,
            action: Action::Check,
            command: "health check",
        },
        "check",
    )
}

/// Which instances a bulk command covers.
pub(super) struct Selection<'a> {
    /// Named instances (UUID, AMC instance ID or exact name).
    pub instances: &'a [String],
    /// All of the user's instances.
    pub all: bool,
    /// With `all`: every user's.
    pub all_users: bool,
    /// With `all`: INACTIVE ones too.
    pub include_inactive: bool,
    /// What the command does to each: a named instance the user's role
    /// does not allow it on is refused (exit 4); `all` leaves such shared
    /// instances out.
    pub action: Action,
    /// The command, for the refusal.
    pub command: &'a str,
}

/// The instances of a selection, in order, each once; `verb` names the
/// command in the usage error when nothing was selected.
pub(super) fn select(ctx: &mut Ctx, a: &Selection<'_>, verb: &str) -> Result<Vec<Instance>> {
    let user = ctx.user()?;
    if a.all {
        let filter = InstanceFilter {
            member: (!a.all_users).then_some(user.id),
            ..Default::default()
        };
        let mut list = ctx.instances_with_roles(&filter)?;
        if !a.include_inactive {
            list.retain(|i| i.status != InstanceStatus::Inactive);
        }
        if !a.all_users {
            // Shared instances whose role does not allow the action (a
            // viewer's, for a check) are not the user's to work on.
            list.retain(|i| i.role.is_some_and(|r| r.allows(a.action)));
        }
        return Ok(list);
    }
    if a.instances.is_empty() {
        return Err(Error::usage(format!(
            "name the instances to {verb}, or pass --all"
        )));
    }
    let mut list = Vec::with_capacity(a.instances.len());
    for r in a.instances {
        let (_, inst) = ctx.instance_for(Some(r), a.action, a.command)?;
        if !list.iter().any(|i: &Instance| i.id == inst.id) {
            list.push(inst);
        }
    }
    Ok(list)
}

/// One session per (owner, profile) of `instances`: each instance is worked
/// on with its owner's grant under the profile its account is bound to
/// (else the owner's default profile), so every profile's token is
/// refreshed at most once per run. With `tolerate_auth` (runs over every
/// user's instances), an owner without usable credentials (or, in a team
/// store, with a login under their own key, which the acting key is not)
/// gets an error text instead, and their instances fail one by one; so
/// does an instance whose account names a profile its owner lacks, in any
/// run.
pub(super) fn sessions_for(
    ctx: &mut Ctx,
    client: &crate::amc::AmcClient,
    instances: &[Instance],
    tolerate_auth: bool,
) -> Result<(Sessions, Vec<Target>)> {
    let acting = ctx.user()?;
    let mut sessions = HashMap::new();
    let mut targets = Vec::with_capacity(instances.len());
    // Each login's default profile, looked up once, not per instance.
    let mut defaults: HashMap<RowId, String> = HashMap::new();
    for i in instances {
        let login = ctx.login_for(i)?;
        let default_profile = match defaults.get(&login.id) {
            Some(p) => p.clone(),
            None => {
                let p = ctx.profile_of(&login)?;
                defaults.insert(login.id, p.clone());
                p
            }
        };
        let bound = i.account.profile.is_some();
        let profile = i.account.profile.clone().unwrap_or(default_profile);
        let key: SessionKey = (login.id, profile.clone());
        targets.push(target(i, login.id, profile.clone())?);
        if sessions.contains_key(&key) {
            continue;
        }
        // Another user's login (every user's instances of a SQLite store)
        // that cannot be used fails that user's instances one by one: the
        // acting user's own instances must not fail for it.
        let owner = login;
        let tolerate = tolerate_auth || owner.id != acting.id;
        let session = match ctx.session(client, &owner, &profile, owner.id == acting.id) {
            Ok(s) => Ok(s),
            Err(e) if e.kind == Kind::Auth && tolerate => Err(e.message),
            // In a team store another user's login is under their own key.
            Err(e) if e.is_foreign_key() && tolerate && owner.id != acting.id => Err(e.message),
            // An account bound to a profile the owner lacks fails its own
            // instances, not the run.
            Err(e) if e.kind == Kind::NotFound && bound => Err(e.message),
            Err(e) => return Err(e),
        };
        sessions.insert(key, session);
    }
    Ok((sessions, targets))
}

/// Whether a bulk command shows a progress bar.
pub(super) fn shows_bar(ctx: &Ctx, machine_line: bool) -> bool {
    let format = ctx.out.format;
    ctx.out.stderr_tty
        && !ctx.out.quiet
        && !machine_line
        && (!format.is_machine() || ctx.out.stdout_tty)
}

fn check(ctx: &mut Ctx, a: CheckArgs) -> Result<ExitStatus> {
    let concurrency = ctx.concurrency(a.concurrency)?;
    let instances = targets(ctx, &a)?;
    if instances.is_empty() {
        return Err(Error::not_found("no instances to check")
            .with_hint("add some with `amcctl instance create`"));
    }
    let client = ctx.amc_client_bounded(&a.net, Some(concurrency))?;
    let (sessions, targets) = sessions_for(ctx, &client, &instances, a.all_users)?;
    // The rows are not needed any more; on a big fleet they are a fair share
    // of the peak, which comes at the end with every result held.
    drop(instances);
    let total = targets.len();
    let settings = ops::check::Settings {
        concurrency,
        deep: a.deep,
    };

    let format = ctx.out.format;
    let bar = progress_bar(total as u64, shows_bar(ctx, a.nagios));
    let out = ctx.out.clone();
    let outcome = ops::check::run(
        ctx.store()?,
        targets,
        sessions,
        settings,
        |event| match event {
            ops::check::Event::Interrupted => {
                bar.set_message("interrupted: finishing work in flight…")
            }
            ops::check::Event::Checked { result, tally } => {
                bar.inc(1);
                bar.set_message(format!(
                    "✔ {}  ✖ {}  ⚠ {}",
                    tally.healthy, tally.unhealthy, tally.error
                ));
                if format == Format::Ndjson && !a.nagios {
                    let line = crate::output::json_string(result);
                    // A reader that went away stops the printing, not the
                    // checks and their saving.
                    let _ = out.print(format!("{line}\n"));
                }
            }
        },
    );
    bar.finish_and_clear();
    let ops::check::Checked {
        mut results,
        tally,
        interrupted,
        elapsed,
    } = outcome?;

    if a.nagios {
        return nagios(&ctx.out, &results, total);
    }
    results.sort_by(|x, y| {
        rank(x.status)
            .cmp(&rank(y.status))
            .then_with(|| x.name.cmp(&y.name))
    });
    let summary = serde_json::json!({
        "checked": tally.checked,
        "healthy": tally.healthy,
        "unhealthy": tally.unhealthy,
        "error": tally.error,
        "elapsed_ms": elapsed.as_millis() as u64,
    });
    match format {
        Format::Json => ctx.out.one(&CheckReport {
            summary,
            results: &results,
        })?,
        Format::Ndjson => {}
        Format::Csv => ctx.out.list(&results)?,
        Format::Table => {
            let shown: Vec<&CheckResult> = if results.len() <= FULL_TABLE_MAX {
                results.iter().collect()
            } else {
                results
                    .iter()
                    .filter(|r| r.status != HealthStatus::Healthy)
                    .collect()
            };
            let shown: Vec<CheckResult> = shown.into_iter().cloned().collect();
            if !shown.is_empty() {
                ctx.out.list(&shown)?;
            }
        }
    }
    ctx.out.info(format!(
        "{}{} checked in {:.1}s: {} healthy, {} unhealthy, {} error{}",
        if interrupted { "Interrupted: " } else { "" },
        tally.checked,
        elapsed.as_secs_f64(),
        tally.healthy,
        tally.unhealthy,
        tally.error,
        if interrupted {
            format!(" ({} not checked)", total - tally.checked)
        } else {
            String::new()
        }
    ));
    if interrupted {
        return Ok(ExitStatus::Interrupted(
            "interrupted; the completed results were saved".into(),
        ));
    }
    if tally.healthy < total {
        return Ok(ExitStatus::Unhealthy(format!(
            "{} of {total} instance(s) not healthy",
            total - tally.healthy
        )));
    }
    Ok(ExitStatus::Success)
}

/// `health check -o json`. The results are borrowed and written straight
/// out: `json!` would first copy them into a JSON tree, about 1 KB each.
#[derive(serde::Serialize)]
struct CheckReport<'a> {
    summary: serde_json::Value,
    results: &'a [CheckResult],
}

fn rank(s: HealthStatus) -> u8 {
    match s {
        HealthStatus::Error => 0,
        HealthStatus::Unhealthy => 1,
        HealthStatus::Unknown => 2,
        HealthStatus::Healthy => 3,
    }
}

pub(super) fn progress_bar(total: u64, visible: bool) -> ProgressBar {
    if !visible {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr_with_hz(10));
    let style = ProgressStyle::with_template(
        "{spinner:.cyan} [{elapsed_precise}] {bar:30.cyan/blue} {pos}/{len} {rate:.dim} ETA {eta}  {msg}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{:.0}/s", state.per_sec());
    })
    .progress_chars("━╸─");
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// The monitoring-plugin line and exit code.
fn nagios(out: &Output, results: &[CheckResult], total: usize) -> Result<ExitStatus> {
    let mut tally = Tally::default();
    let mut latencies: Vec<u64> = Vec::new();
    for r in results {
        tally.add(r.status);
        latencies.extend(r.latency_ms);
    }
    latencies.sort_unstable();
    let p95 = percentile(&latencies, 95.0).unwrap_or(0) as f64 / 1000.0;
    let (state, code) = if tally.checked == 0 {
        ("UNKNOWN", 3)
    } else if tally.error > 0 || tally.healthy == 0 {
        ("CRITICAL", 2)
    } else if tally.healthy < total {
        ("WARNING", 1)
    } else {
        ("OK", 0)
    };
    let mut bad: Vec<&CheckResult> = results
        .iter()
        .filter(|r| r.status != HealthStatus::Healthy)
        .collect();
    bad.sort_by_key(|r| rank(r.status));
    let worst = bad
        .into_iter()
        .map(|r| format!("{} {}", r.instance_id, r.status))
        .take(5)
        .collect::<Vec<_>>();
    let detail = if worst.is_empty() {
        String::new()
    } else {
        format!(" ({})", worst.join(", "))
    };
    let line = format!(
        "AMC {state} - {}/{total} healthy{detail} | healthy={};;;0;{total} unhealthy={};;;0;{total} error={};;;0;{total} latency_p95={p95:.3}s",
        tally.healthy, tally.healthy, tally.unhealthy, tally.error
    );
    out.print(format!("{line}\n"))?;
    Ok(if code == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Plugin(code)
    })
}

/// A check that could not run, as a plugin says it: UNKNOWN, with the
/// reason. A closed stdout stays an error: there is no one to tell.
fn nagios_unknown(out: &Output, e: Error) -> Result<ExitStatus> {
    if e.kind == Kind::ClosedPipe {
        return Err(e);
    }
    out.print(format!(
        "AMC UNKNOWN - {}\n",
        crate::domain::printable(e.message.lines().next().unwrap_or_default())
    ))?;
    Ok(ExitStatus::Plugin(3))
}

/// A latency in milliseconds, blank when unknown.
fn ms_cell(ms: Option<u64>) -> Cell {
    Cell::new(ms.map(|l| format!("{l}ms")).unwrap_or_default())
}

impl Tabular for CheckResult {
    fn columns() -> Vec<&'static str> {
        vec![
            "HEALTH",
            "NAME",
            "INSTANCE ID",
            "OWNER",
            "HTTP",
            "LATENCY",
            "ATTEMPTS",
            "ERROR",
        ]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            health_cell(self.status),
            Cell::new(&self.name),
            Cell::new(&self.instance_id),
            Cell::new(&self.owner),
            Cell::new(self.http_status.map(|s| s.to_string()).unwrap_or_default()),
            ms_cell(self.latency_ms),
            Cell::new(self.attempts),
            Cell::new(self.error.as_deref().unwrap_or("")),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<CheckCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&CheckCsv {
            id: Some(self.id),
            instance_id: Some(&self.instance_id),
            name: &self.name,
            owner: &self.owner,
            status: Some(self.status),
            http_status: self.http_status,
            latency_ms: self.latency_ms,
            attempts: self.attempts,
            error: self.error.as_deref(),
            checked_at: fmt_time(&self.checked_at),
        })
    }
}

/// The CSV record of a check. Fields a default cannot fill are options so
/// that an empty view can name the columns.
#[derive(Default, serde::Serialize)]
struct CheckCsv<'a> {
    id: Option<crate::domain::RowId>,
    instance_id: Option<&'a crate::domain::InstanceId>,
    name: &'a str,
    owner: &'a str,
    status: Option<HealthStatus>,
    http_status: Option<u16>,
    latency_ms: Option<u64>,
    attempts: u32,
    error: Option<&'a str>,
    checked_at: String,
}

/// One line of `health status`.
#[derive(Debug, serde::Serialize)]
struct StatusRow {
    id: crate::domain::RowId,
    instance_id: String,
    name: String,
    owner: String,
    status: InstanceStatus,
    health: crate::domain::Health,
}

impl From<Instance> for StatusRow {
    fn from(i: Instance) -> Self {
        StatusRow {
            id: i.id,
            instance_id: i.instance_id.to_string(),
            name: i.name,
            owner: i.owner,
            status: i.status,
            health: i.health,
        }
    }
}

impl Tabular for StatusRow {
    fn columns() -> Vec<&'static str> {
        vec![
            "HEALTH",
            "NAME",
            "INSTANCE ID",
            "STATUS",
            "CHECKED",
            "LATENCY",
            "ERROR",
        ]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            health_cell(self.health.status),
            Cell::new(&self.name),
            Cell::new(&self.instance_id),
            crate::output::status_cell(self.status.as_str()),
            Cell::new(
                self.health
                    .checked_at
                    .as_ref()
                    .map_or("never".into(), fmt_time),
            ),
            ms_cell(self.health.latency_ms),
            Cell::new(self.health.error.as_deref().unwrap_or("")),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<StatusCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&StatusCsv {
            id: Some(self.id),
            instance_id: &self.instance_id,
            name: &self.name,
            owner: &self.owner,
            status: Some(self.status),
            health_status: Some(self.health.status),
            checked_at: self.health.checked_at.as_ref().map(fmt_time),
            latency_ms: self.health.latency_ms,
            error: self.health.error.as_deref(),
        })
    }
}

/// The CSV record of `health status`: the instance with its health
/// flattened. Options where a default cannot fill a field.
#[derive(Default, serde::Serialize)]
struct StatusCsv<'a> {
    id: Option<crate::domain::RowId>,
    instance_id: &'a str,
    name: &'a str,
    owner: &'a str,
    status: Option<InstanceStatus>,
    health_status: Option<HealthStatus>,
    checked_at: Option<String>,
    latency_ms: Option<u64>,
    error: Option<&'a str>,
}

impl Tabular for HistoryRow {
    fn columns() -> Vec<&'static str> {
        vec!["CHECKED", "HEALTH", "HTTP", "LATENCY", "ATTEMPTS", "ERROR"]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(fmt_time(&self.checked_at)),
            health_cell(self.status),
            Cell::new(self.http_status.map(|s| s.to_string()).unwrap_or_default()),
            ms_cell(self.latency_ms),
            Cell::new(self.attempts),
            Cell::new(self.error.as_deref().unwrap_or("")),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<HistoryCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&HistoryCsv {
            checked_at: fmt_time(&self.checked_at),
            status: Some(self.status),
            http_status: self.http_status,
            latency_ms: self.latency_ms,
            attempts: self.attempts,
            error: self.error.as_deref(),
        })
    }
}

/// The CSV record of one past check: the row as JSON has it, with the
/// status an option so that an empty view can name the columns.
#[derive(Default, serde::Serialize)]
struct HistoryCsv<'a> {
    checked_at: String,
    status: Option<HealthStatus>,
    http_status: Option<u16>,
    latency_ms: Option<u64>,
    attempts: u32,
    error: Option<&'a str>,
}

impl Tabular for HealthSummary {
    fn columns() -> Vec<&'static str> {
        vec![
            "NAME",
            "INSTANCE ID",
            "CHECKS",
            "UPTIME",
            "ERRORS",
            "P50",
            "P95",
            "LAST ERROR",
        ]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(&self.name),
            Cell::new(&self.instance_id),
            Cell::new(self.checks),
            Cell::new(
                self.uptime_pct
                    .map(|v| format!("{v:.1}%"))
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::new(
                self.error_rate_pct
                    .map(|v| format!("{v:.1}%"))
                    .unwrap_or_else(|| "-".into()),
            ),
            ms_cell(self.p50_ms),
            ms_cell(self.p95_ms),
            Cell::new(self.last_error.as_deref().unwrap_or("")),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<SummaryCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&SummaryCsv {
            id: Some(self.id),
            instance_id: self.instance_id.as_str(),
            name: &self.name,
            owner: &self.owner,
            account_id: self.account_id.as_str(),
            checks: self.checks,
            healthy: self.healthy,
            uptime_pct: self.uptime_pct,
            error_rate_pct: self.error_rate_pct,
            p50_ms: self.p50_ms,
            p95_ms: self.p95_ms,
            last_error: self.last_error.as_deref(),
            last_checked_at: self.last_checked_at.as_ref().map(fmt_time),
        })
    }
}

/// The CSV record of `health report`: the summary as JSON has it, the id
/// an option so that an empty view can name the columns. Percentages print
/// as Rust prints a float (`100`, where JSON says `100.0`).
#[derive(Default, serde::Serialize)]
struct SummaryCsv<'a> {
    id: Option<crate::domain::RowId>,
    instance_id: &'a str,
    name: &'a str,
    owner: &'a str,
    account_id: &'a str,
    checks: u64,
    healthy: u64,
    uptime_pct: Option<f64>,
    error_rate_pct: Option<f64>,
    p50_ms: Option<u64>,
    p95_ms: Option<u64>,
    last_error: Option<&'a str>,
    last_checked_at: Option<String>,
}

fn report(ctx: &mut Ctx, since: Duration, all_users: bool) -> Result<()> {
    let user = ctx.user()?;
    let from = ago(since)?;
    let mut rows = ctx
        .store()?
        .health_report((!all_users).then_some(user.id), from)?;
    worst_first(&mut rows);
    let fleet = HealthFleet::of(&rows, &from);
    match ctx.out.format {
        Format::Json => ctx
            .out
            .one(&serde_json::json!({ "fleet": fleet, "instances": rows })),
        _ => {
            ctx.out.list(&rows)?;
            ctx.out.info(format!(
                "Fleet: {} instance(s), {} check(s) since {}, uptime {}",
                fleet.instances,
                fleet.checks,
                fmt_time(&fleet.since),
                fleet.uptime_pct.map_or("-".into(), |u| format!("{u:.2}%"))
            ));
            Ok(())
        }
    }
}
