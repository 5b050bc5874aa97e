//! Turning an `INSTANCE` or `ACCOUNT` argument into exactly one row: a row UUID, an AMC ID, or an exact name.

use super::Ctx;
use crate::domain::{Account, Instance, InstanceFilter, User};
use crate::error::{Error, Result};
use crate::store::Store;

/// Resolves `reference` (row UUID, AMC instance ID or exact name) among the
/// acting user's instances. Several matches: exit 2 listing them. None of
/// the user's, but another user's: exit 4. None at all: exit 3.
pub fn resolve_instance(store: &Store, user: &User, reference: &str) -> Result<Instance> {
    let all = store.find_instances(reference)?;
    let (mine, others): (Vec<Instance>, Vec<Instance>) =
        all.into_iter().partition(|i| i.user_id == user.id);
    match mine.len() {
        1 => Ok(mine.into_iter().next().expect("one element")),
        0 if !others.is_empty() => Err(Error::permission_denied(format!(
            "permission denied: instance {reference:?} belongs to another user"
        ))),
        0 => Err(Error::not_found(format!("no instance {reference:?}"))
            .with_hint("list yours with `amcctl instance list`")),
        _ => {
            let names: Vec<String> = mine
                .iter()
                .map(|i| format!("{} ({}, {})", i.id, i.instance_id, i.name))
                .collect();
            Err(Error::usage(format!(
                "{reference:?} matches {} instances: {}",
                mine.len(),
                names.join("; ")
            ))
            .with_hint("use the id (UUID) to pick one"))
        }
    }
}

/// Resolves `reference` (row UUID, entity ID or exact name) to one account.
pub fn resolve_account(store: &Store, reference: &str) -> Result<Account> {
    let mut found = store.find_accounts(reference)?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(
            Error::not_found(format!("no account {reference:?}")).with_hint(
                "list them with `amcctl account list`, or add one with `amcctl account create`",
            ),
        ),
        n => {
            let names: Vec<String> = found
                .iter()
                .map(|a| format!("{} ({}, {})", a.id, a.account_id, a.account_name))
                .collect();
            Err(Error::usage(format!(
                "{reference:?} matches {n} accounts: {}",
                names.join("; ")
            ))
            .with_hint("use the entity ID or the id (UUID) to pick one"))
        }
    }
}

impl Ctx {
    /// The instance named by `reference`, or, with none given on a terminal, a
    /// fuzzy selection among the user's instances (active ones first).
    pub fn pick_instance(&mut self, reference: Option<&str>) -> Result<(User, Instance)> {
        let user = self.user()?;
        if let Some(r) = reference {
            let inst = resolve_instance(self.store()?, &user, r)?;
            return Ok((user, inst));
        }
        if !self.interactive {
            return Err(Error::missing_flag("INSTANCE"));
        }
        let filter = InstanceFilter {
            member: Some(user.id),
            ..Default::default()
        };
        let mut list = self.store()?.instances(&filter)?;
        if list.is_empty() {
            return Err(Error::not_found("you have no instances")
                .with_hint("add one with `amcctl instance create`"));
        }
        list.sort_by_key(|i| !i.is_active);
        let items: Vec<String> = list
            .iter()
            .map(|i| {
                format!(
                    "{}  ({})  {}  {}",
                    i.name, i.instance_id, i.status, i.health.status
                )
            })
            .collect();
        let idx = self.prompt().fuzzy_select("Instance", &items, "INSTANCE")?;
        Ok((user, list.swap_remove(idx)))
    }

    /// The account named by `reference`, or a selection list on a terminal.
    pub fn pick_account(&mut self, reference: Option<&str>, flag: &str) -> Result<Account> {
        if let Some(r) = reference {
            return resolve_account(self.store()?, r);
        }
        if !self.interactive {
            return Err(Error::missing_flag(flag));
        }
        let mut list = self.store()?.accounts()?;
        if list.is_empty() {
            return Err(Error::not_found("there are no accounts")
                .with_hint("add one with `amcctl account create`"));
        }
        let items: Vec<String> = list
            .iter()
            .map(|a| format!("{}  ({}, {})", a.account_name, a.account_id, a.country))
            .collect();
        let idx = self.prompt().fuzzy_select("Account", &items, flag)?;
        Ok(list.swap_remove(idx))
    }
}
