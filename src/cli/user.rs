//! `amcctl user`: the users who own instances in this store.

use clap::Subcommand;
use comfy_table::Cell;

use super::Ctx;
use crate::domain::{User, fmt_time};
use crate::error::Result;
use crate::output::{Tabular, csv_cells, csv_header};

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// List the users and how many instances each owns
    List,
    /// Add a user
    Add {
        /// Login name
        name: String,
    },
    /// Remove a user who owns no instances
    Remove {
        /// Login name
        name: String,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

impl Tabular for User {
    fn columns() -> Vec<&'static str> {
        vec!["NAME", "INSTANCES", "CREATED"]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<UserCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&UserCsv {
            id: Some(self.id),
            name: &self.name,
            instance_count: self.instance_count,
            created_at: fmt_time(&self.created_at),
        })
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(&self.name),
            Cell::new(self.instance_count),
            Cell::new(fmt_time(&self.created_at)),
        ]
    }
}

/// The CSV record of a user, the id an option so that an empty view can
/// name the columns.
#[derive(Default, serde::Serialize)]
struct UserCsv<'a> {
    id: Option<crate::domain::RowId>,
    name: &'a str,
    instance_count: u64,
    created_at: String,
}

pub(super) fn run(ctx: &mut Ctx, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::List => {
            ctx.user()?;
            let users = ctx.store()?.users()?;
            ctx.out.list(&users)
        }
        UserCmd::Add { name } => {
            crate::domain::validate_name(&name)?;
            let user = ctx.store()?.add_user(&name, false)?;
            ctx.out.info(format!("Added user {}", user.name));
            ctx.out.changed(&user)
        }
        UserCmd::Remove { name, yes } => {
            if !ctx.confirm(yes, &format!("Remove user {name}?"))? {
                ctx.out.info("Nothing removed.");
                return Ok(());
            }
            ctx.store()?.remove_user(&name)?;
            ctx.out.info(format!("Removed user {name}"));
            Ok(())
        }
    }
}
