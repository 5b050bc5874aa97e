//! `amcctl dashboard`: the fleet's health and usage as one HTML page.
//!
//! The figures come from the same store functions as `health report` and
//! `usage report` (and the same worst-first order and fleet totals), so the
//! page and those reports always agree for the same window.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;

use super::Ctx;
use super::health::{Selection, ago, select};
use crate::dashboard::{Dashboard, render};
use crate::domain::{Action, HealthFleet, InstanceFilter, worst_first};
use crate::domain::{HealthStatus, InstanceId, InstanceStatus, RowId};
use crate::error::{Error, Result};

/// The file written when stdout is a terminal and no `--out` is given.
const DEFAULT_FILE: &str = "dashboard.html";

/// Flags of `amcctl dashboard`.
#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Instances to show (UUID, AMC instance ID or exact name) [default: all of yours]
    instances: Vec<String>,
    /// Only instances of this account (UUID, entity ID or name)
    #[arg(long, value_name = "ACCOUNT")]
    account: Option<String>,
    /// Only instances carrying this brand
    #[arg(long, value_name = "BRAND")]
    brand: Option<String>,
    /// The window of the figures and charts, like 7d
    #[arg(long, value_name = "DUR", default_value = "30d", value_parser = crate::config::parse_duration)]
    since: Duration,
    /// Write the page to FILE (`-`: stdout) [default: stdout when it is not a terminal, else dashboard.html beside the store]
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Every user's instances
    #[arg(long, conflicts_with = "instances")]
    all_users: bool,
}

/// A window for people: `30 days`, `12 hours`, else humantime's form.
fn window_text(d: Duration) -> String {
    let s = d.as_secs();
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    if s > 0 && s.is_multiple_of(86_400) {
        plural(s / 86_400, "day")
    } else if s > 0 && s.is_multiple_of(3600) {
        plural(s / 3600, "hour")
    } else {
        humantime::format_duration(d).to_string()
    }
}

pub(super) fn run(ctx: &mut Ctx, a: DashboardArgs) -> Result<()> {
    let user = ctx.user()?;
    let from = ago(a.since)?;
    let now = crate::clock::now();
    let owner = (!a.all_users).then_some(user.id);
    let mut filters = Vec::new();
    let account = match &a.account {
        Some(r) => {
            let acct = super::resolve_account(ctx.store()?, r)?;
            filters.push(format!(
                "account {} ({})",
                acct.account_name, acct.account_id
            ));
            Some(acct.id)
        }
        None => None,
    };
    if let Some(b) = &a.brand {
        filters.push(format!("brand {b}"));
    }
    let filter = InstanceFilter {
        member: owner,
        account,
        brand: a.brand.clone(),
        ..Default::default()
    };
    let mut instances = ctx.store()?.instances(&filter)?;
    if !a.instances.is_empty() {
        let picked = select(
            ctx,
            &Selection {
                instances: &a.instances,
                all: false,
                all_users: false,
                include_inactive: true,
                action: Action::Show,
                command: "dashboard",
            },
            "show",
        )?;
        let allowed: HashSet<RowId> = instances.iter().map(|i| i.id).collect();
        instances = picked
            .into_iter()
            .filter(|i| allowed.contains(&i.id))
            .collect();
        filters.push(format!("{} named instance(s)", instances.len()));
    }
    if a.all_users {
        filters.push("every user's instances".into());
    }
    let ids: HashSet<RowId> = instances.iter().map(|i| i.id).collect();
    let amc_ids: HashSet<String> = instances
        .iter()
        .map(|i| i.instance_id.to_string())
        .collect();

    let count = |pick: &dyn Fn(&crate::domain::Instance) -> bool| -> usize {
        instances.iter().filter(|i| pick(i)).count()
    };
    let by_health: Vec<(HealthStatus, usize)> = [
        HealthStatus::Healthy,
        HealthStatus::Unhealthy,
        HealthStatus::Error,
        HealthStatus::Unknown,
    ]
    .into_iter()
    .map(|h| (h, count(&|i| i.health.status == h)))
    .collect();
    let by_status: Vec<(InstanceStatus, usize)> = [
        InstanceStatus::Active,
        InstanceStatus::Pending,
        InstanceStatus::Inactive,
        InstanceStatus::Error,
    ]
    .into_iter()
    .map(|s| (s, count(&|i| i.status == s)))
    .collect();
    let health_now: HashMap<RowId, HealthStatus> =
        instances.iter().map(|i| (i.id, i.health.status)).collect();

    let store = ctx.store()?;
    let mut health = store.health_report(owner, from)?;
    health.retain(|r| ids.contains(&r.id));
    worst_first(&mut health);
    let health_fleet = HealthFleet::of(&health, &from);
    let usage_ids: Vec<(RowId, InstanceId, String)> = instances
        .iter()
        .map(|i| (i.id, i.instance_id.clone(), i.name.clone()))
        .collect();
    drop(instances);
    let (usage, usage_fleet) = store.usage_report(&usage_ids, from, now)?;
    let latency = store.latency_by_day(Some(&ids), from, now)?;
    let executions = store.executions_by_day(&ids, from, now)?;
    let failing: Vec<_> = store
        .schedules(None, owner)?
        .into_iter()
        .filter(|s| s.failing() && amc_ids.contains(&s.instance_id))
        .collect();

    let page = render(&Dashboard {
        generated_at: crate::domain::fmt_time(&crate::domain::now()),
        window: window_text(a.since),
        filters,
        by_health,
        by_status,
        health_now: &health_now,
        health: &health,
        health_fleet: &health_fleet,
        usage: &usage,
        usage_fleet: &usage_fleet,
        latency: &latency,
        executions: &executions,
        failing: &failing,
        version: env!("CARGO_PKG_VERSION"),
    });

    let dest = match a.out {
        Some(p) if p.as_os_str() == "-" => None,
        Some(p) => Some(p),
        None if !ctx.out.stdout_tty => None,
        None => Some(
            ctx.paths
                .db
                .file()
                .and_then(Path::parent)
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."))
                .join(DEFAULT_FILE),
        ),
    };
    let Some(path) = dest else {
        return ctx.out.print(page);
    };
    write_atomically(&path, page.as_bytes())?;
    ctx.out.info(format!(
        "Wrote the dashboard of {} instance(s) over the last {} ({} KB) to {}",
        health_fleet.instances,
        window_text(a.since),
        page.len().div_ceil(1024),
        path.display()
    ));
    if ctx.out.format.is_machine() {
        ctx.out.one(&serde_json::json!({
            "path": path.display().to_string(),
            "bytes": page.len(),
            "instances": health_fleet.instances,
        }))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file beside it, renamed into
/// place: a web server or a mail job reading the page never sees half of it.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let cannot = |e: std::io::Error| Error::usage(format!("cannot write {}: {e}", path.display()));
    let name = path
        .file_name()
        .ok_or_else(|| Error::usage(format!("{} is not a file name", path.display())))?;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(cannot(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::window_text;
    use std::time::Duration;

    #[test]
    fn windows_read_as_days_or_hours() {
        assert_eq!(window_text(Duration::from_secs(30 * 86_400)), "30 days");
        assert_eq!(window_text(Duration::from_secs(86_400)), "1 day");
        assert_eq!(window_text(Duration::from_secs(7200)), "2 hours");
        assert_eq!(window_text(Duration::from_secs(90)), "1m 30s");
    }
}
