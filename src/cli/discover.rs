//! `account discover` and `instance discover`: what AMC knows, into the store.

use super::Ctx;
use super::connect::NetArgs;
use crate::amc::{AmcClient, Session};
use crate::domain::{Account, AuditNote, AuditObject, UpsertCounts, User};
use crate::error::{Error, Result};
use crate::ops::discover::{self, Discovered, Env, Event};
use crate::output::Output;
use crate::store::Store;

fn report(ctx: &Ctx, what: &str, d: &Discovered, dry_run: bool) -> Result<()> {
    let c = d.counts;
    ctx.out.info(format!(
        "{}{what}: {} created, {} updated, {} unchanged",
        if dry_run {
            "Dry run, nothing changed. "
        } else {
            ""
        },
        c.created,
        c.updated,
        c.unchanged
    ));
    if ctx.out.format.is_machine() {
        ctx.out.one(&serde_json::json!({
            "created": c.created, "updated": c.updated, "unchanged": c.unchanged, "dry_run": dry_run
        }))?;
    }
    Ok(())
}

/// A discovery's counts as its audit entry says them.
fn counts_summary(what: &str, c: &UpsertCounts) -> String {
    format!(
        "{} {what}: {} created, {} updated, {} unchanged",
        c.created + c.updated + c.unchanged,
        c.created,
        c.updated,
        c.unchanged
    )
}

/// Shows discovery's events as they come: skipped records as warnings, each
/// account's instances as a line.
fn show(out: &Output, event: Event<'_>) {
    match event {
        Event::Skipped(why) => out.warn(why),
        Event::AccountDone {
            account,
            found,
            counts,
        } => out.info(format!(
            "{} ({}): {found} instance(s), {} new, {} updated",
            account.account_name, account.account_id, counts.created, counts.updated
        )),
    }
}

/// `GET /amc/accounts` and upsert every account by entity ID.
pub(super) fn accounts(ctx: &mut Ctx, net: &NetArgs, dry_run: bool) -> Result<()> {
    let user = ctx.user()?;
    let profile = ctx.profile_of(&user)?;
    let client = ctx.amc_client(net)?;
    let session = ctx.session(&client, &user, &profile, true)?;
    let out = ctx.out.clone();
    let note = |c: &UpsertCounts| {
        AuditNote::other(
            &user.name,
            "account discover",
            AuditObject::Store,
            None,
            None,
            counts_summary("accounts", c),
        )
    };
    let found = discover::accounts(ctx.store()?, &session, &profile, dry_run, note, |e| {
        show(&out, e)
    })?;
    report(
        ctx,
        &format!("{} account(s) found", found.found),
        &found,
        dry_run,
    )
}

/// Instance discovery's view of the command's context.
struct CtxEnv<'a> {
    ctx: &'a mut Ctx,
    client: AmcClient,
    user: User,
}

impl Env for CtxEnv<'_> {
    fn store(&mut self) -> Result<&mut Store> {
        self.ctx.store()
    }

    fn default_profile(&mut self) -> Result<String> {
        self.ctx.profile_of(&self.user)
    }

    fn session(&mut self, profile: &str) -> Result<Session> {
        self.ctx.session(&self.client, &self.user, profile, true)
    }
}

/// `GET /amc/instances` (every page) for one account or all, and upsert the
/// acting user's instances.
pub(super) fn instances(
    ctx: &mut Ctx,
    account: Option<&str>,
    net: &NetArgs,
    dry_run: bool,
) -> Result<()> {
    let user = ctx.user()?;
    let accounts: Vec<Account> = match account {
        Some(r) => vec![super::resolve_account(ctx.store()?, r)?],
        None => ctx.store()?.accounts()?,
    };
    if accounts.is_empty() {
        return Err(
            Error::not_found("there are no accounts to discover instances for")
                .with_hint("run `amcctl account discover` or `amcctl account create` first"),
        );
    }
    let client = ctx.amc_client(net)?;
    let out = ctx.out.clone();
    let owner = user.id;
    let actor = user.name.clone();
    let mut env = CtxEnv {
        ctx: &mut *ctx,
        client,
        user,
    };
    let found = discover::instances(&mut env, owner, &accounts, dry_run, |e| show(&out, e))?;
    if !dry_run && found.counts.created + found.counts.updated > 0 {
        // One upsert per account: the entry follows once they all went in
        // (a rerun that changed nothing has nothing to say).
        let only = account.map(|_| accounts.iter().map(|a| a.account_id.to_string()).collect());
        ctx.store()?.append_audit(AuditNote::other(
            &actor,
            "instance discover",
            AuditObject::Store,
            None,
            only,
            counts_summary("instances", &found.counts),
        ))?;
    }
    report(
        ctx,
        &format!("{} instance(s) found", found.found),
        &found,
        dry_run,
    )
}
