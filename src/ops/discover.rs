//! Discovery: the accounts and instances AMC knows, upserted into the store.

use std::collections::HashMap;

use super::runtime;
use crate::amc::{Advertiser, Session};
use crate::domain::{Account, AuditNote, DiscoveredInstance, NewAccount, UpsertCounts};
use crate::domain::{Country, InstanceId, parse_name};
use crate::error::Result;
use crate::store::Store;

/// What happens during a discovery, as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// A record AMC sent was skipped; the text says which and why.
    Skipped(String),
    /// One account's instances were listed and upserted.
    AccountDone {
        /// The account.
        account: &'a Account,
        /// Instances AMC listed for it (the skipped ones left out).
        found: usize,
        /// What the upsert did.
        counts: UpsertCounts,
    },
}

/// What a discovery found and did.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// Records found (the skipped ones left out).
    pub found: usize,
    /// What the upserts did, summed.
    pub counts: UpsertCounts,
}

/// What instance discovery needs from its caller, when it needs it: the
/// store, and sessions, so that credentials are only looked up for the
/// profiles the accounts use, in the order they come.
pub trait Env {
    /// The store to upsert into.
    fn store(&mut self) -> Result<&mut Store>;
    /// The credentials profile of an account that names none.
    fn default_profile(&mut self) -> Result<String>;
    /// A session with the credentials of `profile`.
    fn session(&mut self, profile: &str) -> Result<Session>;
}

/// `GET /amc/accounts` with `session`, and every account upserted by entity
/// ID, recorded as served by `profile`; unless `dry_run`, with the audit
/// entry `note` makes of the counts, in the same transaction.
pub fn accounts(
    store: &mut Store,
    session: &Session,
    profile: &str,
    dry_run: bool,
    note: impl FnOnce(&UpsertCounts) -> AuditNote,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Discovered> {
    let reply = runtime()?.block_on(session.list_accounts())?;
    let mut found = Vec::new();
    for a in reply.value {
        let entity = match a.entity_id() {
            Ok(e) => e,
            Err(e) => {
                on_event(Event::Skipped(format!(
                    "skipping account {:?}: {e}",
                    shown(&a.account_id)
                )));
                continue;
            }
        };
        let market = a.marketplace_id.as_deref().unwrap_or_default();
        let Some(country) = Country::from_marketplace(market) else {
            on_event(Event::Skipped(format!(
                "skipping account {entity}: unknown marketplace {:?}",
                shown(market)
            )));
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
            profile: Some(profile.to_owned()),
        });
    }
    // The counts a dry run (rolled back) finds are what the entry written
    // with the real upsert says; a rerun that changes nothing writes nothing.
    let mut counts = store.upsert_accounts(&found, true)?;
    if !dry_run && counts.created + counts.updated > 0 {
        counts = store
            .audited(note(&counts))
            .upsert_accounts(&found, false)?;
    }
    Ok(Discovered {
        found: found.len(),
        counts,
    })
}

/// `GET /amc/instances` (every page) for each of `accounts`, each with the
/// profile that serves it, and `owner`'s instances upserted account by
/// account.
pub fn instances(
    env: &mut impl Env,
    owner: crate::domain::RowId,
    accounts: &[Account],
    dry_run: bool,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Discovered> {
    let mut sessions: HashMap<String, Session> = HashMap::new();
    let rt = runtime()?;
    let mut total = Discovered::default();
    for account in accounts {
        let country = account.country;
        let region = country.region();
        let advertiser = Advertiser::new(account.account_id.clone(), country, region);
        let profile = match &account.profile {
            Some(p) => p.clone(),
            None => env.default_profile()?,
        };
        let session = match sessions.get(&profile) {
            Some(s) => s.clone(),
            None => {
                let s = env.session(&profile)?;
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
                    on_event(Event::Skipped(format!(
                        "skipping instance {:?}: {e}",
                        shown(&i.instance_id)
                    )));
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
        total.found += found.len();
        let c = env
            .store()?
            .upsert_discovered(owner, account.id, region, &found, dry_run)?;
        total.counts.created += c.created;
        total.counts.updated += c.updated;
        total.counts.unchanged += c.unchanged;
        on_event(Event::AccountDone {
            account,
            found: found.len(),
            counts: c,
        });
    }
    Ok(total)
}

/// An identifier AMC sent that failed validation, cut to a length a
/// warning can quote (the warning escapes what it quotes).
fn shown(id: &str) -> String {
    match id.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &id[..i]),
        None => id.to_owned(),
    }
}
