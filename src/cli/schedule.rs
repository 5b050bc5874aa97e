//! `amcctl schedule`: workflow schedules as the last `usage sync` stored them.

use clap::Subcommand;
use comfy_table::Cell;

use super::Ctx;
use crate::domain::{Action, ScheduleRow, fmt_time};
use crate::error::Result;
use crate::output::{Tabular, csv_cells, csv_header};

/// Schedule commands.
#[derive(Debug, Subcommand)]
pub enum ScheduleCmd {
    /// Schedules per instance with their latest scheduled run, from the store
    List {
        /// Only this instance's (UUID, AMC instance ID or exact name)
        instance: Option<String>,
        /// Only schedules whose latest scheduled execution failed
        #[arg(long)]
        failing: bool,
        /// Every user's instances
        #[arg(long, conflicts_with = "instance")]
        all_users: bool,
    },
}

pub(super) fn run(ctx: &mut Ctx, cmd: ScheduleCmd) -> Result<()> {
    match cmd {
        ScheduleCmd::List {
            instance,
            failing,
            all_users,
        } => {
            let user = ctx.user()?;
            let (instance, owner) = match instance.as_deref() {
                Some(r) => (
                    Some(
                        ctx.instance_for(Some(r), Action::Usage, "schedule list")?
                            .1
                            .id,
                    ),
                    None,
                ),
                None => (None, (!all_users).then_some(user.id)),
            };
            let mut rows = ctx.store()?.schedules(instance, owner)?;
            if failing {
                rows.retain(ScheduleRow::failing);
            }
            ctx.out.list(&rows)
        }
    }
}

impl Tabular for ScheduleRow {
    fn columns() -> Vec<&'static str> {
        vec![
            "INSTANCE",
            "SCHEDULE ID",
            "WORKFLOW",
            "PERIOD",
            "HOUR (UTC)",
            "ENABLED",
            "LAST RUN",
            "LAST STATUS",
        ]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(&self.instance_name),
            Cell::new(&self.schedule_id),
            Cell::new(self.workflow_id.as_deref().unwrap_or("")),
            Cell::new(self.aggregation_period.as_deref().unwrap_or("")),
            Cell::new(
                self.aggregation_hour_utc
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
            ),
            Cell::new(if self.enabled { "yes" } else { "no" }),
            Cell::new(self.last_run_at.as_ref().map_or("never".into(), fmt_time)),
            match self.last_status {
                Some(s) => crate::output::status_cell(s.as_str()),
                None => Cell::new(""),
            },
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<Self>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(self)
    }
}
