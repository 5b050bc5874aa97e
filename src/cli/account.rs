//! `amcctl account`: Amazon Ads AMC accounts, identified by their entity ID.

use clap::{Args, Subcommand};
use comfy_table::Cell;

use super::Ctx;
use crate::domain::{Account, AccountPatch, AuditNote, AuditObject, NewAccount, RowId, User};
use crate::domain::{Country, EntityId, InvalidValue, fmt_time, parse_advertiser_id, parse_name};
use crate::error::{Error, Result};
use crate::output::{Tabular, csv_cells, csv_header};

/// Account commands.
#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// List accounts
    List,
    /// Show one account
    Show {
        /// UUID, entity ID or exact name
        account: Option<String>,
    },
    /// Register an account
    Create(AccountFields),
    /// Change an account; `--profile P` binds it to your login profile P
    /// (its instances are then checked and synced with that grant)
    Edit {
        /// UUID, entity ID or exact name
        account: Option<String>,
        #[command(flatten)]
        fields: AccountFields,
    },
    /// Find the AMC accounts your credentials see and add them to the store
    Discover {
        /// Report what would change, change nothing
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        net: super::connect::NetArgs,
    },
    /// Delete an account no instance links to
    Delete {
        /// UUID, entity ID or exact name
        account: Option<String>,
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

/// The editable fields of an account.
#[derive(Debug, Clone, Args)]
pub struct AccountFields {
    /// Entity ID (ENTITY…), the advertiser ID AMC calls expect
    #[arg(long, value_name = "ENTITY")]
    pub account_id: Option<String>,
    /// Display name
    #[arg(long)]
    pub name: Option<String>,
    /// Amazon Ads advertiser ID, if different
    #[arg(long, value_name = "ID")]
    pub advertiser_id: Option<String>,
    /// Marketplace country (US, UK, DE, …) [default: US]
    #[arg(long, value_name = "CC")]
    pub country: Option<String>,
}

impl AccountFields {
    fn is_empty(&self) -> bool {
        self.account_id.is_none()
            && self.name.is_none()
            && self.advertiser_id.is_none()
            && self.country.is_none()
    }
}

impl Tabular for Account {
    fn columns() -> Vec<&'static str> {
        vec!["NAME", "ENTITY ID", "COUNTRY", "MARKETPLACE", "INSTANCES"]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(&self.account_name),
            Cell::new(&self.account_id),
            Cell::new(self.country.code()),
            Cell::new(self.country.marketplace_id()),
            Cell::new(self.instance_count),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<AccountCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&AccountCsv {
            id: Some(self.id),
            account_id: self.account_id.as_str(),
            account_name: &self.account_name,
            advertiser_id: self.advertiser_id.as_deref(),
            country_code: self.country.code(),
            marketplace_id: self.country.marketplace_id(),
            instance_count: self.instance_count,
            created_at: fmt_time(&self.created_at),
            updated_at: fmt_time(&self.updated_at),
        })
    }
}

/// The CSV record of an account: the JSON shape without the profile, the
/// id an option so that an empty view can name the columns.
#[derive(Default, serde::Serialize)]
struct AccountCsv<'a> {
    id: Option<crate::domain::RowId>,
    account_id: &'a str,
    account_name: &'a str,
    advertiser_id: Option<&'a str>,
    country_code: &'a str,
    marketplace_id: &'a str,
    instance_count: u64,
    created_at: String,
    updated_at: String,
}

fn validator<T>(
    f: impl Fn(&str) -> std::result::Result<T, InvalidValue>,
) -> impl Fn(&str) -> std::result::Result<(), String> {
    move |s| f(s).map(|_| ()).map_err(|e| e.to_string())
}

/// Asks for (or takes from flags) every field of a new account.
pub(super) fn new_account(ctx: &mut Ctx, f: &AccountFields) -> Result<NewAccount> {
    let interactive_form = ctx.interactive && f.is_empty();
    let entity = match &f.account_id {
        Some(v) => EntityId::parse(v)?,
        None => {
            let v = ctx.prompt().text(
                "Entity ID (ENTITY…)",
                None,
                &validator(EntityId::parse),
                "--account-id",
            )?;
            EntityId::parse(&v)?
        }
    };
    let name = match &f.name {
        Some(v) => parse_name("name", v)?,
        None => {
            let v = ctx.prompt().text(
                "Account name",
                None,
                &validator(|s| parse_name("name", s)),
                "--name",
            )?;
            parse_name("name", &v)?
        }
    };
    let country = match &f.country {
        Some(c) => Country::parse(c)?,
        None if interactive_form => {
            let countries: Vec<Country> = Country::all().collect();
            let items: Vec<String> = countries
                .iter()
                .map(|c| format!("{} ({})", c.code(), c.marketplace_id()))
                .collect();
            countries[ctx.prompt().select("Country", &items, 0, "--country")?]
        }
        None => Country::US,
    };
    let advertiser_id = match &f.advertiser_id {
        Some(v) => parse_advertiser_id(v)?,
        None if interactive_form => {
            let v = ctx.prompt().text(
                "Advertiser ID (optional)",
                Some(""),
                &validator(parse_advertiser_id),
                "--advertiser-id",
            )?;
            parse_advertiser_id(&v)?
        }
        None => None,
    };
    Ok(NewAccount {
        id: None,
        account_id: entity,
        account_name: name,
        advertiser_id,
        country,
        profile: None,
    })
}

fn patch_from_flags(f: &AccountFields) -> Result<AccountPatch> {
    Ok(AccountPatch {
        account_id: f.account_id.as_deref().map(EntityId::parse).transpose()?,
        account_name: f
            .name
            .as_deref()
            .map(|n| parse_name("name", n))
            .transpose()?,
        advertiser_id: f
            .advertiser_id
            .as_deref()
            .map(parse_advertiser_id)
            .transpose()?,
        country: f.country.as_deref().map(Country::parse).transpose()?,
        profile: None,
    })
}

fn patch_from_prompts(ctx: &mut Ctx, cur: &Account) -> Result<AccountPatch> {
    let name = ctx.prompt().text(
        "Account name",
        Some(&cur.account_name),
        &validator(|s| parse_name("name", s)),
        "--name",
    )?;
    let adv = ctx.prompt().text(
        "Advertiser ID (optional)",
        Some(cur.advertiser_id.as_deref().unwrap_or("")),
        &validator(parse_advertiser_id),
        "--advertiser-id",
    )?;
    let countries: Vec<Country> = Country::all().collect();
    let items: Vec<String> = countries
        .iter()
        .map(|c| format!("{} ({})", c.code(), c.marketplace_id()))
        .collect();
    let current = countries
        .iter()
        .position(|c| *c == cur.country)
        .unwrap_or(0);
    let country = countries[ctx
        .prompt()
        .select("Country", &items, current, "--country")?];
    let name = parse_name("name", &name)?;
    let adv = parse_advertiser_id(&adv)?;
    Ok(AccountPatch {
        account_id: None,
        account_name: (name != cur.account_name).then_some(name),
        advertiser_id: (adv != cur.advertiser_id).then_some(adv),
        country: (country != cur.country).then_some(country),
        profile: None,
    })
}

/// Creates the account `new`, with its audit entry naming `command`.
pub(super) fn create(ctx: &mut Ctx, mut new: NewAccount, command: &str) -> Result<Account> {
    let user = ctx.user()?;
    // The row id is chosen here, so that the entry written with the new
    // row can name it.
    let id = RowId::new();
    new.id = Some(id);
    let note = AuditNote::other(
        &user.name,
        command,
        AuditObject::Account,
        Some(id.to_string()),
        Some(new.account_id.to_string()),
        format!("created {} ({})", new.account_name, new.country.code()),
    );
    Ok(ctx.store()?.audited(note).create_account(&new)?)
}

/// An audit entry about the account `a`.
fn account_note(user: &User, command: &str, a: &Account, summary: String) -> AuditNote {
    AuditNote::other(
        &user.name,
        command,
        AuditObject::Account,
        Some(a.id.to_string()),
        Some(a.account_id.to_string()),
        summary,
    )
}

/// What an account edit changes, one `field: old -> new` each; `None`
/// when every field given already has its value.
fn patch_summary(cur: &Account, p: &AccountPatch) -> Option<String> {
    let mut changes = Vec::new();
    if let Some(v) = p.account_id.as_ref().filter(|v| **v != cur.account_id) {
        changes.push(format!("account_id: {} -> {v}", cur.account_id));
    }
    if let Some(v) = p.account_name.as_ref().filter(|v| **v != cur.account_name) {
        changes.push(format!("account_name: {:?} -> {v:?}", cur.account_name));
    }
    if let Some(v) = p
        .advertiser_id
        .as_ref()
        .filter(|v| **v != cur.advertiser_id)
    {
        let show = |a: &Option<String>| a.clone().unwrap_or_else(|| "(none)".into());
        changes.push(format!(
            "advertiser_id: {} -> {}",
            show(&cur.advertiser_id),
            show(v)
        ));
    }
    if let Some(v) = p.country.filter(|v| *v != cur.country) {
        changes.push(format!("country: {} -> {}", cur.country.code(), v.code()));
    }
    if let Some(v) = &p.profile {
        let from = cur.profile.as_deref().unwrap_or("(none)");
        changes.push(format!("profile: {from} -> {v}"));
    }
    (!changes.is_empty()).then(|| changes.join(", "))
}

pub(super) fn run(ctx: &mut Ctx, cmd: AccountCmd) -> Result<()> {
    match cmd {
        AccountCmd::List => {
            let accounts = ctx.store()?.accounts()?;
            ctx.out.list(&accounts)
        }
        AccountCmd::Show { account } => {
            let a = ctx.pick_account(account.as_deref(), "ACCOUNT")?;
            ctx.out.one(&a)
        }
        AccountCmd::Create(fields) => {
            let new = new_account(ctx, &fields)?;
            let a = create(ctx, new, "account create")?;
            ctx.out.info(format!(
                "Created account {} ({})",
                a.account_name, a.account_id
            ));
            ctx.out.changed(&a)
        }
        AccountCmd::Edit { account, fields } => {
            let cur = ctx.pick_account(account.as_deref(), "ACCOUNT")?;
            let bind = ctx.profile_to_bind()?;
            let mut patch = if fields.is_empty() && bind.is_some() {
                AccountPatch::default()
            } else if fields.is_empty() {
                if !ctx.interactive {
                    return Err(Error::usage(
                        "nothing to change: give at least one of --account-id, --name, --advertiser-id, --country, --profile",
                    ));
                }
                patch_from_prompts(ctx, &cur)?
            } else {
                patch_from_flags(&fields)?
            };
            patch.profile = bind.filter(|p| cur.profile.as_ref() != Some(p));
            let summary = patch_summary(&cur, &patch);
            if patch.is_empty() || summary.is_none() {
                ctx.out.info("Nothing changed.");
                return ctx.out.changed(&cur);
            }
            let user = ctx.user()?;
            let summary = summary.unwrap_or_default();
            let note = account_note(&user, "account edit", &cur, summary);
            let a = ctx.store()?.audited(note).update_account(cur.id, &patch)?;
            ctx.out.info(format!("Updated account {}", a.account_id));
            ctx.out.changed(&a)
        }
        AccountCmd::Discover { dry_run, net } => super::discover::accounts(ctx, &net, dry_run),
        AccountCmd::Delete { account, yes } => {
            let a = ctx.pick_account(account.as_deref(), "ACCOUNT")?;
            if a.instance_count == 0
                && !ctx.confirm(
                    yes,
                    &format!("Delete account {} ({})?", a.account_name, a.account_id),
                )?
            {
                ctx.out.info("Nothing deleted.");
                return Ok(());
            }
            let user = ctx.user()?;
            let summary = format!("deleted {} ({})", a.account_name, a.country.code());
            let note = account_note(&user, "account delete", &a, summary);
            ctx.store()?.audited(note).delete_account(a.id)?;
            ctx.out.info(format!("Deleted account {}", a.account_id));
            Ok(())
        }
    }
}
