//! `amcctl instance`: the registry of AMC instances.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use comfy_table::Cell;

use super::Ctx;
use super::account::{AccountFields, new_account};
use crate::domain::{
    Account, Action, AuditNote, AuditObject, ImportOutcome, Instance, InstanceFilter,
    InstancePatch, NewInstance, Role, RowId, Share, ShareChange, ShareRole,
};
use crate::domain::{
    HealthStatus, InstanceId, InstanceStatus, InvalidValue, Region, User, fmt_time, parse_brands,
    parse_description, parse_name,
};
use crate::error::{Error, Kind, Result};
use crate::ops::import;
use crate::output::{Format, Tabular, csv_cells, csv_header, health_cell, status_cell, write_csv};
use crate::transfer::{self, FileFormat, csv_columns, csv_record};

/// Instance commands.
#[derive(Debug, Subcommand)]
pub enum InstanceCmd {
    /// List instances
    #[command(visible_alias = "ls")]
    List(ListArgs),
    /// Show one instance
    Show {
        /// UUID, AMC instance ID or exact name (a picker on a terminal when omitted)
        instance: Option<String>,
    },
    /// Register an instance
    Create(CreateArgs),
    /// Change an instance
    Edit(EditArgs),
    /// Delete an instance with its brands and health history
    #[command(visible_alias = "rm")]
    Delete {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
    /// Mark an instance INACTIVE: bulk checks skip it
    Deactivate {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
    },
    /// Re-enable an INACTIVE instance
    Activate {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
        /// Do not check it against AMC now; it becomes PENDING
        #[arg(long)]
        skip_validation: bool,
    },
    /// Link an instance to another account
    Link {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
        /// UUID, entity ID or exact name of the account
        #[arg(long)]
        account: Option<String>,
    },
    /// Check one instance against AMC now; prints the outcome, stores nothing
    Test {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
        #[command(flatten)]
        net: super::connect::NetArgs,
    },
    /// Give another user access to an instance you own
    #[command(after_help = SHARE_HELP)]
    Share {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
        /// The user to share it with
        #[arg(long = "with", value_name = "USER")]
        with: String,
        /// What they may do with it
        #[arg(long, value_enum, default_value = "viewer")]
        role: ShareRole,
    },
    /// Take a user's access to an instance you own away
    Unshare {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
        /// The user whose access ends
        #[arg(long = "with", value_name = "USER")]
        with: String,
    },
    /// Who has access to an instance you own: its owner, then each user it is shared with
    Access {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
    },
    /// List the advertisers linked to an instance (asks AMC now)
    Advertisers {
        /// UUID, AMC instance ID or exact name
        instance: Option<String>,
        #[command(flatten)]
        net: super::connect::NetArgs,
    },
    /// Find your AMC instances through the API and add them to the store
    Discover {
        /// Only this account's instances (default: every account in the store)
        #[arg(long)]
        account: Option<String>,
        /// Report what would change, change nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        net: super::connect::NetArgs,
    },
    /// Write instances to stdout as JSON or CSV, for `instance import`
    Export {
        /// Only these instances (default: all of yours)
        instances: Vec<String>,
        /// File format [default: json, or csv with -o csv]
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
    },
    /// An instance's encrypted settings: set, get, unset, list
    #[command(subcommand)]
    Config(super::settings::ConfigCmd),
    /// Create or update instances from a JSON or CSV file, all or nothing
    Import {
        /// The file (`-` for stdin)
        file: PathBuf,
        /// File format [default: from the file name, else json]
        #[arg(long, value_enum)]
        format: Option<FileFormat>,
        /// Report what would change, change nothing
        #[arg(long)]
        dry_run: bool,
    },
}

/// What each role allows, under `instance share --help`.
const SHARE_HELP: &str = "\
Roles:
  viewer    show, list, health history, status and report, usage
  operator  what a viewer may, and test, health check, activate and deactivate,
            brands, and editing the description
Only the owner (or an administrator) shares, deletes, exports, links and edits
anything else. Sharing again with another role changes the role.";

/// Filters of `instance list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only with this status
    #[arg(long, value_enum, ignore_case = true)]
    status: Option<InstanceStatus>,
    /// Only with this health
    #[arg(long, value_enum, ignore_case = true)]
    health: Option<HealthStatus>,
    /// Only of this account (UUID, entity ID or name)
    #[arg(long)]
    account: Option<String>,
    /// Only carrying this brand
    #[arg(long)]
    brand: Option<String>,
    /// Only in this region
    #[arg(long, value_enum)]
    region: Option<Region>,
    /// Every user's instances, not only yours
    #[arg(long)]
    all_users: bool,
    /// Only of this AMC instance type, like sandbox or standard (as discovery found it)
    #[arg(long = "type", value_name = "TYPE")]
    instance_type: Option<String>,
}

/// Fields of `instance create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// AMC instance ID (like amcibersblt)
    #[arg(long, value_name = "ID")]
    instance_id: Option<String>,
    /// Display name [default: the instance ID]
    #[arg(long)]
    name: Option<String>,
    /// API region [default: the account's marketplace region]
    #[arg(long, value_enum)]
    region: Option<Region>,
    /// Account (UUID, entity ID or name)
    #[arg(long)]
    account: Option<String>,
    /// Free text
    #[arg(long)]
    description: Option<String>,
    /// A brand (repeat for several)
    #[arg(long = "brand", value_name = "BRAND")]
    brands: Vec<String>,
    /// Save as PENDING without checking the instance against AMC
    #[arg(long)]
    skip_validation: bool,
}

impl CreateArgs {
    fn has_fields(&self) -> bool {
        self.instance_id.is_some()
            || self.name.is_some()
            || self.region.is_some()
            || self.account.is_some()
            || self.description.is_some()
            || !self.brands.is_empty()
    }
}

/// Fields of `instance edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// UUID, AMC instance ID or exact name
    instance: Option<String>,
    /// New name
    #[arg(long)]
    name: Option<String>,
    /// New description ("" clears it)
    #[arg(long)]
    description: Option<String>,
    /// New region
    #[arg(long, value_enum)]
    region: Option<Region>,
    /// New account (UUID, entity ID or name)
    #[arg(long)]
    account: Option<String>,
}

impl Tabular for Share {
    fn columns() -> Vec<&'static str> {
        vec!["USER", "ROLE", "SINCE", "GRANTED BY"]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(&self.user),
            Cell::new(self.role),
            Cell::new(fmt_time(&self.since)),
            Cell::new(self.granted_by.as_deref().unwrap_or("")),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<ShareCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&ShareCsv {
            user: &self.user,
            role: Some(self.role),
            since: fmt_time(&self.since),
            granted_by: self.granted_by.as_deref(),
        })
    }
}

/// The CSV record of one user's access: the JSON's fields, the role an
/// option so that an empty view can name the columns.
#[derive(Default, serde::Serialize)]
struct ShareCsv<'a> {
    user: &'a str,
    role: Option<Role>,
    since: String,
    granted_by: Option<&'a str>,
}

/// An instance in a list that holds some the acting user does not own:
/// its table row also says what the user is to it (ROLE). Only then: on a
/// list of one's own instances the column would say `owner` on every line,
/// and push a table of the usual width past 80 columns. JSON and CSV carry
/// `role` either way.
#[derive(serde::Serialize)]
#[serde(transparent)]
struct WithRole(Instance);

impl Tabular for WithRole {
    fn columns() -> Vec<&'static str> {
        let mut columns = Instance::columns();
        columns.push("ROLE");
        columns
    }
    fn row(&self) -> Vec<Cell> {
        let mut row = self.0.row();
        row.push(Cell::new(self.0.role.map_or("", Role::as_str)));
        row
    }
    fn csv_columns() -> Vec<String> {
        Instance::csv_columns()
    }
    fn csv_row(&self) -> Vec<String> {
        self.0.csv_row()
    }
}

impl Tabular for Instance {
    fn columns() -> Vec<&'static str> {
        vec![
            "NAME",
            "INSTANCE ID",
            "ACCOUNT",
            "REGION",
            "STATUS",
            "HEALTH",
            "BRANDS",
            "OWNER",
        ]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(match self.instance_type.as_deref() {
                Some(t) if t.eq_ignore_ascii_case("SANDBOX") => format!("{} [sandbox]", self.name),
                _ => self.name.clone(),
            }),
            Cell::new(&self.instance_id),
            Cell::new(&self.account.account_name),
            Cell::new(self.region),
            status_cell(self.status.as_str()),
            health_cell(self.health.status),
            Cell::new(self.brands.join(", ")),
            Cell::new(&self.owner),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_columns()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_record(self)
    }
}

fn validator<T>(
    f: impl Fn(&str) -> std::result::Result<T, InvalidValue>,
) -> impl Fn(&str) -> std::result::Result<(), String> {
    move |s| f(s).map(|_| ()).map_err(|e| e.to_string())
}

fn optional_description(v: &str) -> std::result::Result<Option<String>, InvalidValue> {
    if v.trim().is_empty() {
        Ok(None)
    } else {
        parse_description(v).map(Some)
    }
}

pub(super) fn run(ctx: &mut Ctx, cmd: InstanceCmd) -> Result<()> {
    match cmd {
        InstanceCmd::List(a) => list(ctx, a),
        InstanceCmd::Show { instance } => {
            let (_, inst) = ctx.instance_for(instance.as_deref(), Action::Show, "instance show")?;
            ctx.out.one(&inst)
        }
        InstanceCmd::Create(a) => create(ctx, a),
        InstanceCmd::Edit(a) => edit(ctx, a),
        InstanceCmd::Delete { instance, yes } => {
            let (user, inst) =
                ctx.instance_for(instance.as_deref(), Action::Delete, "instance delete")?;
            let q = format!(
                "Delete instance {} ({}) with its brands and health history?",
                inst.name, inst.instance_id
            );
            if !ctx.confirm(yes, &q)? {
                ctx.out.info("Nothing deleted.");
                return Ok(());
            }
            let note = AuditNote::instance(
                &user.name,
                "instance delete",
                &inst,
                format!(
                    "deleted {} ({}, owner {})",
                    inst.name, inst.region, inst.owner
                ),
            );
            ctx.store()?.audited(note).delete_instance(inst.id)?;
            ctx.out
                .info(format!("Deleted instance {}", inst.instance_id));
            Ok(())
        }
        InstanceCmd::Deactivate { instance } => {
            let (user, inst) =
                ctx.instance_for(instance.as_deref(), Action::SetState, "instance deactivate")?;
            if inst.status == InstanceStatus::Inactive {
                ctx.out
                    .info(format!("{} is already inactive", inst.instance_id));
                return ctx.out.changed(&inst);
            }
            let note = AuditNote::instance(
                &user.name,
                "instance deactivate",
                &inst,
                format!("status: {} -> {}", inst.status, InstanceStatus::Inactive),
            );
            let role = inst.role;
            let mut inst = ctx
                .store()?
                .audited(note)
                .set_status(inst.id, InstanceStatus::Inactive)?;
            inst.role = role;
            ctx.out.info(format!("Deactivated {}", inst.instance_id));
            ctx.out.changed(&inst)
        }
        InstanceCmd::Activate {
            instance,
            skip_validation,
        } => activate(ctx, instance.as_deref(), skip_validation),
        InstanceCmd::Link { instance, account } => {
            let (user, inst) =
                ctx.instance_for(instance.as_deref(), Action::Edit, "instance link")?;
            let account = ctx.pick_account(account.as_deref(), "--account")?;
            let patch = InstancePatch {
                account: Some(account.id),
                ..Default::default()
            };
            let note = AuditNote::instance(
                &user.name,
                "instance link",
                &inst,
                format!(
                    "account: {} -> {}",
                    inst.account.account_id, account.account_id
                ),
            );
            let role = inst.role;
            let mut inst = ctx
                .store()?
                .audited(note)
                .update_instance(inst.id, &patch)?;
            inst.role = role;
            ctx.out.info(format!(
                "Linked {} to account {}",
                inst.instance_id, account.account_id
            ));
            ctx.out.changed(&inst)
        }
        InstanceCmd::Test { instance, net } => {
            super::validate::test(ctx, instance.as_deref(), &net)
        }
        InstanceCmd::Share {
            instance,
            with,
            role,
        } => share(ctx, instance.as_deref(), &with, role),
        InstanceCmd::Unshare { instance, with } => unshare(ctx, instance.as_deref(), &with),
        InstanceCmd::Access { instance } => {
            let (_, inst) =
                ctx.instance_for(instance.as_deref(), Action::Share, "instance access")?;
            let list = ctx.store()?.access(inst.id)?;
            ctx.out.list(&list)
        }
        InstanceCmd::Advertisers { instance, net } => {
            super::usage::advertisers(ctx, instance.as_deref(), &net)
        }
        InstanceCmd::Discover {
            account,
            dry_run,
            net,
        } => super::discover::instances(ctx, account.as_deref(), &net, dry_run),
        InstanceCmd::Export { instances, format } => export(ctx, &instances, format),
        InstanceCmd::Config(c) => super::settings::run(ctx, c),
        InstanceCmd::Import {
            file,
            format,
            dry_run,
        } => import(ctx, &file, format, dry_run),
    }
}

fn list(ctx: &mut Ctx, a: ListArgs) -> Result<()> {
    let user = ctx.user()?;
    let account = match &a.account {
        Some(r) => Some(super::resolve_account(ctx.store()?, r)?.id),
        None => None,
    };
    let filter = InstanceFilter {
        member: (!a.all_users).then_some(user.id),
        status: a.status,
        health: a.health,
        account,
        brand: a.brand,
        region: a.region,
        not_healthy: false,
        instance_type: a.instance_type.map(|t| t.trim().to_ascii_uppercase()),
    };
    let list = ctx.instances_with_roles(&filter)?;
    if list.iter().all(|i| i.role == Some(Role::Owner)) {
        ctx.out.list(&list)
    } else {
        let list: Vec<WithRole> = list.into_iter().map(WithRole).collect();
        ctx.out.list(&list)
    }
}

/// The user called `name`, who is to get or lose access to `inst`: exit 3
/// when there is no such user, exit 2 for its owner or the acting user.
fn share_target(ctx: &mut Ctx, acting: &User, inst: &Instance, name: &str) -> Result<User> {
    let target = ctx.store()?.user(name)?.ok_or_else(|| {
        Error::not_found(format!("no user {name:?} in this store"))
            .with_hint("list the users with `amcctl user list`")
    })?;
    if target.id == inst.user_id {
        return Err(Error::usage(format!(
            "{name} owns {}: an owner's access is not shared or taken away",
            inst.instance_id
        )));
    }
    if target.id == acting.id {
        return Err(Error::usage(format!(
            "you cannot change your own access to {}",
            inst.instance_id
        )));
    }
    Ok(target)
}

/// `instance share`: gives `with` the role `role` on the instance, or
/// changes the role they have; the same role again writes nothing.
fn share(ctx: &mut Ctx, instance: Option<&str>, with: &str, role: ShareRole) -> Result<()> {
    let (user, inst) = ctx.instance_for(instance, Action::Share, "instance share")?;
    let target = share_target(ctx, &user, &inst, with)?;
    let note = |change: ShareChange| {
        let summary = match change {
            ShareChange::Changed(old) => {
                format!("{}: {} -> {}", target.name, old.as_str(), role.as_str())
            }
            _ => format!("shared with {} as {}", target.name, role.as_str()),
        };
        AuditNote::instance(&user.name, "instance share", &inst, summary)
    };
    let change = ctx
        .store()?
        .share(inst.id, target.id, role, &user.name, &note)?;
    let line = match change {
        ShareChange::Unchanged => format!(
            "{} is already {} of {}; nothing changed",
            target.name,
            article(role),
            inst.instance_id
        ),
        ShareChange::Changed(old) => format!(
            "{} is now {} of {} (was {})",
            target.name,
            article(role),
            inst.instance_id,
            old.as_str()
        ),
        ShareChange::Added => format!(
            "Shared {} with {} as {}",
            inst.instance_id,
            target.name,
            role.as_str()
        ),
    };
    ctx.out.info(line);
    match current_share(ctx, &inst, &target)? {
        Some(share) => ctx.out.changed(&share),
        None => Err(Error::not_found(format!(
            "instance {} was deleted meanwhile",
            inst.instance_id
        ))),
    }
}

/// "a viewer", "an operator".
fn article(role: ShareRole) -> String {
    match role {
        ShareRole::Viewer => "a viewer".into(),
        ShareRole::Operator => "an operator".into(),
    }
}

/// `target`'s share of `inst`, if they have one.
fn current_share(ctx: &mut Ctx, inst: &Instance, target: &User) -> Result<Option<Share>> {
    Ok(ctx
        .store()?
        .access(inst.id)?
        .into_iter()
        .find(|s| s.user == target.name && s.role != Role::Owner))
}

/// `instance unshare`: ends `with`'s access to the instance. Someone
/// without access is exit 3, as removing a brand an instance does not
/// carry is: a script learns that its idea of the shares was wrong.
fn unshare(ctx: &mut Ctx, instance: Option<&str>, with: &str) -> Result<()> {
    let (user, inst) = ctx.instance_for(instance, Action::Share, "instance unshare")?;
    let target = share_target(ctx, &user, &inst, with)?;
    // What the user had, as `instance access` shows it, for the output.
    let had = current_share(ctx, &inst, &target)?;
    let note = |old: ShareRole| {
        let summary = format!("access of {} ({}) removed", target.name, old.as_str());
        AuditNote::instance(&user.name, "instance unshare", &inst, summary)
    };
    let taken = ctx.store()?.unshare(inst.id, target.id, &note)?;
    let Some(old) = taken else {
        return Err(Error::not_found(format!(
            "{} has no access to {} to take away",
            target.name, inst.instance_id
        ))
        .with_hint(format!(
            "see who has with `amcctl instance access {}`",
            inst.instance_id
        )));
    };
    ctx.out.info(format!(
        "{} no longer has access to {} (was {})",
        target.name,
        inst.instance_id,
        old.as_str()
    ));
    // Shared between the look and the unshare: what the store said it was.
    let had = had.unwrap_or_else(|| Share {
        user: target.name.clone(),
        role: old.into(),
        since: crate::domain::now(),
        granted_by: None,
    });
    ctx.out.changed(&had)
}

/// Asks for the account of a new instance, offering to create one.
fn choose_account(ctx: &mut Ctx) -> Result<Account> {
    let accounts = ctx.store()?.accounts()?;
    let mut items: Vec<String> = accounts
        .iter()
        .map(|a| format!("{}  ({}, {})", a.account_name, a.account_id, a.country))
        .collect();
    items.push("+ create a new account".into());
    let idx = ctx.prompt().select("Account", &items, 0, "--account")?;
    match accounts.get(idx) {
        Some(a) => Ok(a.clone()),
        None => {
            let fields = AccountFields {
                account_id: None,
                name: None,
                advertiser_id: None,
                country: None,
            };
            let new = new_account(ctx, &fields)?;
            super::account::create(ctx, new, "instance create")
        }
    }
}

fn create(ctx: &mut Ctx, a: CreateArgs) -> Result<()> {
    let user = ctx.user()?;
    let form = ctx.interactive && !a.has_fields();
    let mut skip_validation = a.skip_validation;
    // On a terminal, find out before the first question whether the answers
    // can be validated at the end: no login should not cost them.
    if ctx.interactive
        && !skip_validation
        && let Err(e) = super::validate::can_validate(ctx, &user)
    {
        let question = format!(
            "Validation cannot run ({}). Go on and save the instance as PENDING, unvalidated?",
            e.message
        );
        if !ctx
            .prompt()
            .confirm(&question, false, "--skip-validation")?
        {
            return Err(e);
        }
        skip_validation = true;
    }
    let instance_id = match &a.instance_id {
        Some(v) => InstanceId::parse(v)?,
        None => {
            let v = ctx.prompt().text(
                "AMC instance ID",
                None,
                &validator(InstanceId::parse),
                "--instance-id",
            )?;
            InstanceId::parse(&v)?
        }
    };
    if !instance_id.has_usual_shape() {
        ctx.out.warn(format!(
            "{instance_id} does not look like an AMC instance ID (amc followed by 8 letters or digits)"
        ));
    }
    let name = match &a.name {
        Some(v) => parse_name("name", v)?,
        None if ctx.interactive => {
            let v = ctx.prompt().text(
                "Name",
                Some(instance_id.as_str()),
                &validator(|s| parse_name("name", s)),
                "--name",
            )?;
            parse_name("name", &v)?
        }
        None => instance_id.to_string(),
    };
    let account = match &a.account {
        Some(r) => super::resolve_account(ctx.store()?, r)?,
        None if ctx.interactive => choose_account(ctx)?,
        None => return Err(Error::missing_flag("--account")),
    };
    let account_region = account.country.region();
    let region = match a.region {
        Some(r) => r,
        None if form => {
            let default = ctx.config.region.unwrap_or(account_region);
            let items: Vec<String> = Region::ALL.iter().map(|r| r.to_string()).collect();
            let idx = Region::ALL.iter().position(|r| *r == default).unwrap_or(0);
            Region::ALL[ctx.prompt().select("Region", &items, idx, "--region")?]
        }
        None => ctx.config.region.unwrap_or(account_region),
    };
    let description = match &a.description {
        Some(d) => optional_description(d)?,
        None if form => {
            let v = ctx.prompt().text(
                "Description (optional)",
                Some(""),
                &validator(optional_description),
                "--description",
            )?;
            optional_description(&v)?
        }
        None => None,
    };
    let brands = if !a.brands.is_empty() {
        parse_brands(&a.brands)?
    } else if form {
        let split = |s: &str| -> Vec<String> {
            s.split(',')
                .map(str::trim)
                .filter(|b| !b.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let v = ctx.prompt().text(
            "Brands (comma-separated, optional)",
            Some(""),
            &|s: &str| {
                parse_brands(&split(s))
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
            "--brand",
        )?;
        parse_brands(&split(&v))?
    } else {
        Vec::new()
    };
    let new = NewInstance {
        id: None,
        instance_id,
        name,
        description,
        region,
        account: account.id,
        status: InstanceStatus::Pending,
        brands,
        api_endpoint: None,
    };
    if form {
        let summary = format!(
            "Create {} ({}) in {} for account {} ({}){}?",
            new.name,
            new.instance_id,
            new.region,
            account.account_name,
            account.account_id,
            if new.brands.is_empty() {
                String::new()
            } else {
                format!(" with brands {}", new.brands.join(", "))
            }
        );
        if !ctx.prompt().confirm(&summary, true, "--yes")? {
            ctx.out.info("Nothing saved.");
            return Ok(());
        }
    }
    let mut new = new;
    if !skip_validation {
        match super::validate::check_before_save(ctx, &user, &new, &account) {
            Ok(status) => new.status = status,
            // On a terminal the answers are not thrown away: they can be
            // kept as PENDING, to be tested once the cause is fixed.
            Err(e) if ctx.interactive && matches!(e.kind, Kind::Api | Kind::Auth) => {
                ctx.out.warn(&e.message);
                if let Some(hint) = &e.hint {
                    ctx.out.warn(format!("hint: {hint}"));
                }
                let question = format!(
                    "Save {} as PENDING anyway (check it later with `amcctl instance test {}`)?",
                    new.instance_id, new.instance_id
                );
                if !ctx.prompt().confirm(&question, true, "--skip-validation")? {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
    // The row id is chosen here, so that the entry written with the new
    // row can name it.
    let id = RowId::new();
    new.id = Some(id);
    let note = AuditNote {
        actor: user.name.clone(),
        command: "instance create".into(),
        object_kind: AuditObject::Instance,
        object_id: Some(id.to_string()),
        object_name: Some(new.instance_id.to_string()),
        instance: Some(id),
        summary: format!(
            "created {} in {} for account {}, {}",
            new.name, new.region, account.account_id, new.status
        ),
    };
    let mut inst = ctx.store()?.audited(note).create_instance(user.id, &new)?;
    inst.role = Some(Role::Owner);
    ctx.out.info(format!(
        "Created instance {} ({}), {}",
        inst.name, inst.instance_id, inst.status
    ));
    ctx.out.changed(&inst)
}

fn edit(ctx: &mut Ctx, a: EditArgs) -> Result<()> {
    let no_flags =
        a.name.is_none() && a.description.is_none() && a.region.is_none() && a.account.is_none();
    // An operator may change the description and nothing else: asking for
    // only that needs no more, while the form (every field) needs it all.
    let only_description =
        a.description.is_some() && a.name.is_none() && a.region.is_none() && a.account.is_none();
    let action = if only_description {
        Action::EditDescription
    } else {
        Action::Edit
    };
    let (user, cur) = ctx.instance_for(a.instance.as_deref(), action, "instance edit")?;
    let patch = if no_flags {
        if !ctx.interactive {
            return Err(Error::usage(
                "nothing to change: give at least one of --name, --description, --region, --account",
            ));
        }
        edit_prompts(ctx, &cur)?
    } else {
        InstancePatch {
            name: a
                .name
                .as_deref()
                .map(|n| parse_name("name", n))
                .transpose()?,
            description: a
                .description
                .as_deref()
                .map(optional_description)
                .transpose()?,
            region: a.region,
            account: match &a.account {
                Some(r) => Some(super::resolve_account(ctx.store()?, r)?.id),
                None => None,
            },
        }
    };
    let summary = edit_summary(ctx, &cur, &patch)?;
    if summary.is_empty() {
        ctx.out.info("Nothing changed.");
        return ctx.out.changed(&cur);
    }
    let note = AuditNote::instance(&user.name, "instance edit", &cur, summary.join(", "));
    let mut inst = ctx.store()?.audited(note).update_instance(cur.id, &patch)?;
    inst.role = cur.role;
    ctx.out
        .info(format!("Updated instance {}", inst.instance_id));
    ctx.out.changed(&inst)
}

/// What an edit changes, one `field: old -> new` each, for the audit
/// trail; empty when every field given already has its value.
fn edit_summary(ctx: &mut Ctx, cur: &Instance, patch: &InstancePatch) -> Result<Vec<String>> {
    let mut changes = Vec::new();
    if let Some(name) = patch.name.as_ref().filter(|n| **n != cur.name) {
        changes.push(format!("name: {:?} -> {:?}", cur.name, name));
    }
    if let Some(d) = patch
        .description
        .as_ref()
        .filter(|d| **d != cur.description)
    {
        let show = |d: &Option<String>| match d {
            Some(d) => format!("{:?}", clip(d)),
            None => "(none)".to_owned(),
        };
        changes.push(format!(
            "description: {} -> {}",
            show(&cur.description),
            show(d)
        ));
    }
    if let Some(region) = patch.region.filter(|r| *r != cur.region) {
        changes.push(format!("region: {} -> {region}", cur.region));
    }
    if let Some(account) = patch.account.filter(|a| *a != cur.account.id) {
        let to = ctx
            .store()?
            .account(account)?
            .map_or_else(|| account.to_string(), |a| a.account_id.to_string());
        changes.push(format!("account: {} -> {to}", cur.account.account_id));
    }
    Ok(changes)
}

/// Free text as an audit summary quotes it: at most 80 characters.
fn clip(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// The edit form: current values as defaults; only what changed is saved.
fn edit_prompts(ctx: &mut Ctx, cur: &Instance) -> Result<InstancePatch> {
    let name = ctx.prompt().text(
        "Name",
        Some(&cur.name),
        &validator(|s| parse_name("name", s)),
        "--name",
    )?;
    let name = parse_name("name", &name)?;
    let description = ctx.prompt().text(
        "Description",
        Some(cur.description.as_deref().unwrap_or("")),
        &validator(optional_description),
        "--description",
    )?;
    let description = optional_description(&description)?;
    let items: Vec<String> = Region::ALL.iter().map(|r| r.to_string()).collect();
    let idx = Region::ALL
        .iter()
        .position(|r| *r == cur.region)
        .unwrap_or(0);
    let region = Region::ALL[ctx.prompt().select("Region", &items, idx, "--region")?];
    let accounts = ctx.store()?.accounts()?;
    let items: Vec<String> = accounts
        .iter()
        .map(|a| format!("{}  ({}, {})", a.account_name, a.account_id, a.country))
        .collect();
    let idx = accounts
        .iter()
        .position(|a| a.id == cur.account.id)
        .unwrap_or(0);
    let account = accounts
        .get(ctx.prompt().select("Account", &items, idx, "--account")?)
        .map(|a| a.id)
        .unwrap_or(cur.account.id);
    Ok(InstancePatch {
        name: (name != cur.name).then_some(name),
        description: (description != cur.description).then_some(description),
        region: (region != cur.region).then_some(region),
        account: (account != cur.account.id).then_some(account),
    })
}

fn activate(ctx: &mut Ctx, instance: Option<&str>, skip_validation: bool) -> Result<()> {
    let (user, inst) = ctx.instance_for(instance, Action::SetState, "instance activate")?;
    if inst.status != InstanceStatus::Inactive {
        ctx.out.info(format!(
            "{} is already active ({})",
            inst.instance_id, inst.status
        ));
        return ctx.out.changed(&inst);
    }
    let summary = format!("status: {} -> {}", inst.status, InstanceStatus::Pending);
    let role = inst.role;
    let mut inst = if skip_validation {
        let note = AuditNote::instance(&user.name, "instance activate", &inst, summary);
        ctx.store()?
            .audited(note)
            .set_status(inst.id, InstanceStatus::Pending)?
    } else {
        // The check's outcome moves the status on as any check does; the
        // entry records the activation itself.
        let note = AuditNote::instance(
            &user.name,
            "instance activate",
            &inst,
            format!("{summary}, then checked against AMC"),
        );
        super::validate::recheck(ctx, &inst, note)?
    };
    inst.role = role;
    ctx.out
        .info(format!("Activated {}: {}", inst.instance_id, inst.status));
    ctx.out.changed(&inst)
}

fn export(ctx: &mut Ctx, refs: &[String], format: Option<FileFormat>) -> Result<()> {
    let user = ctx.user()?;
    let list = if refs.is_empty() {
        // The user's own instances: an export is for importing as one's
        // own, and a shared instance may not be exported.
        let filter = InstanceFilter {
            member: Some(user.id),
            ..Default::default()
        };
        let mut list = ctx.instances_with_roles(&filter)?;
        list.retain(|i| i.role.is_some_and(|r| r.allows(Action::Export)));
        list
    } else {
        let mut list: Vec<Instance> = Vec::with_capacity(refs.len());
        for r in refs {
            let (_, inst) = ctx.instance_for(Some(r), Action::Export, "instance export")?;
            if !list.iter().any(|i| i.id == inst.id) {
                list.push(inst);
            }
        }
        list
    };
    let format = format.unwrap_or(if ctx.out.format == Format::Csv {
        FileFormat::Csv
    } else {
        FileFormat::Json
    });
    {
        let mut out = ctx.out.stdout();
        match format {
            FileFormat::Json => ctx.out.write_json(&mut *out, &list)?,
            FileFormat::Csv => write_csv(&mut *out, csv_columns(), list.iter().map(csv_record))?,
        }
        out.flush()?;
    }
    ctx.out.info(format!("Exported {} instance(s)", list.len()));
    Ok(())
}

fn import(
    ctx: &mut Ctx,
    file: &std::path::Path,
    format: Option<FileFormat>,
    dry_run: bool,
) -> Result<()> {
    let text = read_input(file)?;
    let format = format.unwrap_or_else(|| {
        let csv_name = file
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
        if csv_name {
            FileFormat::Csv
        } else {
            FileFormat::Json
        }
    });
    let rejected = |r: import::Rejected| {
        Error::new(
            r.kind,
            format!(
                "{} has {} problem(s); nothing was imported",
                file.display(),
                r.problems.len()
            ),
        )
        .with_problems(r.problems)
    };
    let rows = import::parse(&text, format).map_err(rejected)?;
    let user = ctx.user()?;
    let note = |outcome: &ImportOutcome| {
        AuditNote::other(
            &user.name,
            "instance import",
            AuditObject::Store,
            None,
            // The file's name, not its path: the trail is read by others.
            Some(
                file.file_name()
                    .map_or_else(|| "stdin".to_owned(), |n| n.to_string_lossy().into_owned()),
            ),
            import::summary(outcome),
        )
    };
    let outcome = import::apply(ctx.store()?, user.id, &rows, dry_run, note)?.map_err(rejected)?;
    ctx.out.info(format!(
        "{}{} created, {} updated, {} unchanged, {} account(s) created",
        if dry_run {
            "Dry run, nothing changed: "
        } else {
            "Imported: "
        },
        outcome.created,
        outcome.updated,
        outcome.unchanged,
        outcome.accounts_created
    ));
    if ctx.out.format.is_machine() {
        ctx.out.one(&outcome)
    } else {
        Ok(())
    }
}

/// Reads a file, or stdin for `-`.
fn read_input(file: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let mut buf = Vec::new();
    let limit = transfer::MAX_IMPORT_BYTES as u64 + 1;
    if file.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(limit)
            .read_to_end(&mut buf)
            .map_err(|e| Error::usage(format!("cannot read stdin: {e}")))?;
    } else {
        std::fs::File::open(file)
            .and_then(|f| f.take(limit).read_to_end(&mut buf))
            .map_err(|e| Error::usage(format!("cannot read {}: {e}", file.display())))?;
    }
    String::from_utf8(buf)
        .map_err(|_| Error::usage(format!("{} is not UTF-8 text", file.display())))
}
