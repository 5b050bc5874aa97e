//! `amcctl user`: the users who own instances in this store.

use clap::Subcommand;
use comfy_table::Cell;

use super::Ctx;
use crate::domain::{AuditNote, AuditObject, User, fmt_time};
use crate::error::{Error, Kind, Result};
use crate::output::{Tabular, csv_cells, csv_header};

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// List the users and how many instances each owns
    List,
    /// Add a user (in the team store: register a database login role)
    Add {
        /// Login name (in the team store, an existing database role)
        name: String,
        /// Make the user an administrator (SQLite store only; in the team
        /// store, administrators are the members of the role amcctl_admin)
        #[arg(long)]
        admin: bool,
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
        vec!["NAME", "ADMIN", "INSTANCES", "CREATED"]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<UserCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&UserCsv {
            id: Some(self.id),
            name: &self.name,
            admin: self.admin,
            instance_count: self.instance_count,
            created_at: fmt_time(&self.created_at),
        })
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(&self.name),
            Cell::new(if self.admin { "yes" } else { "" }),
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
    admin: bool,
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
        UserCmd::Add { name, admin } => {
            crate::domain::validate_name(&name)?;
            let me = may_manage_users(ctx, "user add")?;
            let summary = if admin {
                "added as an administrator"
            } else {
                "added"
            };
            let note = AuditNote::other(
                &me,
                "user add",
                AuditObject::User,
                None,
                Some(name.clone()),
                summary,
            );
            let user = ctx.store()?.audited(note).add_user(&name, admin)?;
            ctx.out.info(format!("Added user {}", user.name));
            ctx.out.changed(&user)
        }
        UserCmd::Remove { name, yes } => {
            let me = may_manage_users(ctx, "user remove")?;
            if !ctx.confirm(yes, &format!("Remove user {name}?"))? {
                ctx.out.info("Nothing removed.");
                return Ok(());
            }
            let note = AuditNote::other(
                &me,
                "user remove",
                AuditObject::User,
                None,
                Some(name.clone()),
                "removed",
            );
            ctx.store()?.audited(note).remove_user(&name)?;
            ctx.out.info(format!("Removed user {name}"));
            Ok(())
        }
    }
}

/// The name of the acting user, when they may add and remove users: an
/// administrator, or anyone in a SQLite store that has none yet (a store
/// of one person, where the user named by `--user` may not exist yet: the
/// one being added). Else exit 4.
fn may_manage_users(ctx: &mut Ctx, command: &str) -> Result<String> {
    let team = ctx.store()?.login()?.is_some();
    if !team && !ctx.store()?.users()?.iter().any(|u| u.admin) {
        return match ctx.user() {
            Ok(me) => Ok(me.name),
            Err(e) if e.kind == Kind::NotFound => Ok(ctx.named_user().unwrap_or_default()),
            Err(e) => Err(e),
        };
    }
    let me = ctx.user()?;
    if me.admin {
        return Ok(me.name);
    }
    Err(Error::permission_denied(format!(
        "permission denied: `{command}` is for administrators, and {} is not one",
        me.name
    ))
    .with_hint(if team {
        "a database administrator makes one with `GRANT amcctl_admin TO NAME`"
    } else {
        "an administrator of this store can do it"
    }))
}
