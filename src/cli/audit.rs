//! `amcctl audit`: the trail of changes to the store, who made them and when.

use std::time::Duration;

use clap::Subcommand;
use comfy_table::Cell;

use super::Ctx;
use crate::domain::{Action, AuditEntry, AuditFilter, AuditObject, fmt_time};
use crate::error::Result;
use crate::output::{Tabular, csv_cells, csv_header};

/// What `audit list --help` says the trail leaves out, and why.
const NOT_AUDITED: &str = "\
Every command that changes the store adds one entry: instance create, edit, delete,
activate, deactivate, link, import, discover, share, unshare and config set/unset;
account create, edit, delete and discover; brand set, add, remove and clear;
key rotate; auth login and logout; user add and remove; health prune.
Dry runs and failed commands add none. Routine monitoring is not audited:
`health check` and `usage sync` only record what AMC answered.
The summary says what changed, never a secret.";

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// The entries of the audit trail, oldest first
    #[command(visible_alias = "ls", after_help = NOT_AUDITED)]
    List {
        /// Only entries about this instance (UUID, AMC instance ID or exact name)
        #[arg(long, value_name = "INSTANCE")]
        instance: Option<String>,
        /// Only entries by this user; `--user USER` on the command line says
        /// the same here (not who runs the command)
        #[arg(long, value_name = "USER")]
        actor: Option<String>,
        /// Only entries newer than this, like 24h or 7d
        #[arg(long, value_name = "DUR", value_parser = crate::config::parse_duration)]
        since: Option<Duration>,
    },
}

pub(super) fn run(ctx: &mut Ctx, cmd: AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::List {
            instance,
            actor,
            since,
        } => {
            let named = ctx.take_user_flag();
            let actor = actor.or(named);
            ctx.user()?;
            let instance = match instance.as_deref() {
                Some(r) => Some(ctx.instance_for(Some(r), Action::Show, "audit list")?.1.id),
                None => None,
            };
            let filter = AuditFilter {
                instance,
                actor,
                since: since.map(super::health::ago).transpose()?,
            };
            let entries = ctx.store()?.audit_entries(&filter)?;
            ctx.out.list(&entries)
        }
    }
}

impl Tabular for AuditEntry {
    fn columns() -> Vec<&'static str> {
        vec!["ID", "AT", "ACTOR", "COMMAND", "OBJECT", "SUMMARY"]
    }
    fn row(&self) -> Vec<Cell> {
        let object = match &self.object_name {
            Some(name) => format!("{} {name}", self.object_kind.as_str()),
            None => self.object_kind.as_str().to_owned(),
        };
        vec![
            Cell::new(self.id),
            Cell::new(fmt_time(&self.at)),
            Cell::new(&self.actor),
            Cell::new(&self.command),
            Cell::new(object),
            Cell::new(&self.summary),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<AuditCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&AuditCsv {
            id: self.id,
            at: fmt_time(&self.at),
            actor: &self.actor,
            command: &self.command,
            object_kind: Some(self.object_kind),
            object_id: self.object_id.as_deref(),
            object_name: self.object_name.as_deref(),
            summary: &self.summary,
        })
    }
}

/// The CSV record of an entry: the JSON's fields, the kind an option so
/// that an empty view can name the columns.
#[derive(Default, serde::Serialize)]
struct AuditCsv<'a> {
    id: i64,
    at: String,
    actor: &'a str,
    command: &'a str,
    object_kind: Option<AuditObject>,
    object_id: Option<&'a str>,
    object_name: Option<&'a str>,
    summary: &'a str,
}
