//! `account discover` and `instance discover`: what AMC knows, into the store.

use super::Ctx;
use super::connect::NetArgs;
use crate::amc::Advertiser;
use crate::domain::{Account, DiscoveredInstance, NewAccount, UpsertCounts};
use crate::domain::{Country, EntityId, InstanceId, parse_name};
use crate::error::{Error, Result};

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}

fn report(ctx: &Ctx, what: &str, c: UpsertCounts, dry_run: bool) -> Result<()> {
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

/// `GET /amc/accounts` and upsert every account by entity ID.
pub(super) fn accounts(ctx: &mut Ctx, net: &NetArgs, dry_run: bool) -> Result<()> {
    let user = ctx.user()?;
    let profile = ctx.profile_of(&user)?;
    let client = ctx.amc_client(net)?;
    let session = ctx.session(&client, &user, &profile, true)?;
    let reply = runtime()?.block_on(session.list_accounts())?;
    let mut found = Vec::new();
    for a in reply.value {
        let entity = match a.entity_id() {
            Ok(e) => e,
            Err(e) => {
                ctx.out
                    .warn(format!("skipping account {:?}: {e}", shown(&a.account_id)));
                continue;
            }
        };
        let market = a.marketplace_id.as_deref().unwrap_or_default();
        let Some(country) = Country::from_marketplace(market) else {
            ctx.out.warn(format!(
                "skipping account {entity}: unknown marketplace {:?}",
                shown(market)
            ));
            continue;
        };
        let name = a
            .account_name
            .as_deref()
            .and_then(|n| parse_name("account_name", n).ok())
            .unwrap_or_else(|| entity.to_string());
        found.push(NewAccount {
            id: None,
            account_id: entity,
            account_name: name,
            advertiser_id: None,
            country,
            profile: Some(profile.clone()),
        });
    }
    let counts = ctx.store()?.upsert_accounts(&found, dry_run)?;
    report(
        ctx,
        &format!("{} account(s) found", found.len()),
        counts,
        dry_run,
    )
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
    // Each account's instances are listed with the profile that serves it.
    let mut sessions: std::collections::HashMap<String, crate::amc::Session> =
        std::collections::HashMap::new();
    let rt = runtime()?;
    let mut total = UpsertCounts::default();
    let mut found_total = 0;
    for account in &accounts {
        let country = Country::parse(&account.country_code)?;
        let region = country.region();
        let advertiser = Advertiser::new(EntityId::parse(&account.account_id)?, country, region);
        let profile = match &account.profile {
            Some(p) => p.clone(),
            None => ctx.profile_of(&user)?,
        };
        let session = match sessions.get(&profile) {
            Some(s) => s.clone(),
            None => {
                let s = ctx.session(&client, &user, &profile, true)?;
                sessions.insert(profile, s.clone());
                s
            }
        };
        let reply = rt.block_on(session.list_instances(&advertiser))?;
        let mut found = Vec::with_capacity(reply.value.len());
        for i in reply.value {
            let id = match InstanceId::parse(&i.instance_id) {
                Ok(id) => id,
                Err(e) => {
                    ctx.out.warn(format!(
                        "skipping instance {:?}: {e}",
                        shown(&i.instance_id)
                    ));
                    continue;
                }
            };
            let detail = |v: &Option<String>| {
                v.as_deref()
                    .map(str::trim)
                    .filter(|v| !v.is_empty() && v.len() <= 256)
                    .map(str::to_owned)
            };
            found.push(DiscoveredInstance {
                completed: i.is_completed(),
                instance_type: detail(&i.instance_type).map(|t| t.to_ascii_uppercase()),
                customer_canonical_name: detail(&i.customer_canonical_name),
                data_upload_account_id: detail(&i.data_upload_account_id),
                name: i
                    .instance_name
                    .as_deref()
                    .and_then(|n| parse_name("name", n).ok()),
                api_endpoint: i
                    .api_endpoint
                    .as_deref()
                    .and_then(|e| crate::transfer::parse_endpoint(e).ok()),
                instance_id: id,
            });
        }
        found_total += found.len();
        let c = ctx
            .store()?
            .upsert_discovered(user.id, account.id, region, &found, dry_run)?;
        ctx.out.info(format!(
            "{} ({}): {} instance(s), {} new, {} updated",
            account.account_name,
            account.account_id,
            found.len(),
            c.created,
            c.updated
        ));
        total.created += c.created;
        total.updated += c.updated;
        total.unchanged += c.unchanged;
    }
    report(
        ctx,
        &format!("{found_total} instance(s) found"),
        total,
        dry_run,
    )
}

/// An identifier AMC sent that failed validation, cut to a length a
/// warning can quote (the warning escapes what it quotes).
fn shown(id: &str) -> String {
    match id.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &id[..i]),
        None => id.to_owned(),
    }
}
