//! Turning an `INSTANCE` or `ACCOUNT` argument into exactly one row: a row UUID, an AMC ID, or an exact name.

use std::collections::HashMap;

use super::Ctx;
use crate::domain::{Account, Action, Instance, InstanceFilter, Role, RowId, ShareRole, User};
use crate::error::{Error, Result};
use crate::store::Store;

/// What `user` is to `instance`, given the instances shared with them:
/// owner, the role it is shared with, administrator, or nothing.
pub fn role_of(
    user: &User,
    shared: &HashMap<RowId, ShareRole>,
    instance: &Instance,
) -> Option<Role> {
    if instance.user_id == user.id {
        Some(Role::Owner)
    } else if let Some(r) = shared.get(&instance.id) {
        Some((*r).into())
    } else if user.admin {
        Some(Role::Admin)
    } else {
        None
    }
}

/// Resolves `reference` (row UUID, AMC instance ID or exact name) among the
/// instances `user` may reach, its `role` set: their own first, then those
/// shared with them, then (an administrator) everyone's. Several matches at
/// the first level that has any: exit 2 listing them. None the user may
/// reach, but another user's: exit 4. None at all: exit 3.
pub fn resolve_instance(
    store: &Store,
    user: &User,
    shared: &HashMap<RowId, ShareRole>,
    reference: &str,
) -> Result<Instance> {
    let mut tiers: [Vec<Instance>; 3] = Default::default();
    let mut others = 0;
    for mut inst in store.find_instances(reference)? {
        let role = role_of(user, shared, &inst);
        inst.role = role;
        match role {
            Some(Role::Owner) => tiers[0].push(inst),
            Some(Role::Operator | Role::Viewer) => tiers[1].push(inst),
            Some(Role::Admin) => tiers[2].push(inst),
            None => others += 1,
        }
    }
    let Some(mut found) = tiers.into_iter().find(|t| !t.is_empty()) else {
        if others > 0 {
            return Err(Error::permission_denied(format!(
                "permission denied: instance {reference:?} belongs to another user"
            ))
            .with_hint("its owner can share it with you: `amcctl instance share`"));
        }
        return Err(Error::not_found(format!("no instance {reference:?}"))
            .with_hint("list yours with `amcctl instance list`"));
    };
    if found.len() == 1 {
        return Ok(found.remove(0));
    }
    let names: Vec<String> = found
        .iter()
        .map(|i| format!("{} ({}, {}, {})", i.id, i.instance_id, i.name, i.owner))
        .collect();
    Err(Error::usage(format!(
        "{reference:?} matches {} instances: {}",
        found.len(),
        names.join("; ")
    ))
    .with_hint("use the id (UUID) to pick one"))
}

/// Refuses `action` on `instance` unless its role allows it (exit 4).
pub fn authorize(instance: &Instance, action: Action, command: &str) -> Result<()> {
    let Some(role) = instance.role else {
        return Err(Error::permission_denied(format!(
            "permission denied: instance {} belongs to another user",
            instance.instance_id
        )));
    };
    if role.allows(action) {
        return Ok(());
    }
    let error = |needed: &str| {
        Error::permission_denied(format!(
            "permission denied: you are a {role} of instance {} ({}'s); `{command}` needs {needed}",
            instance.instance_id, instance.owner
        ))
    };
    Err(match Role::needed_for(action) {
        Role::Operator => error("the operator role").with_hint(format!(
            "its owner, {}, can make you an operator: `amcctl instance share {} --with YOU --role operator`",
            instance.owner, instance.instance_id
        )),
        _ => error("its owner"),
    })
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
    /// The instances shared with the acting user, read once per command.
    pub fn shared_with_me(&mut self) -> Result<&HashMap<RowId, ShareRole>> {
        if self.shared.is_none() {
            let user = self.user()?;
            self.shared = Some(self.store()?.shared_with(user.id)?);
        }
        self.shared
            .as_ref()
            .ok_or_else(|| Error::internal("shares not read"))
    }

    /// The instances `filter` selects, each with what the acting user is
    /// to it (`role`). The instances and the user's shares are read one
    /// after the other, not in one snapshot: an instance listed for being
    /// shared with the user but unshared in between is left out, as it
    /// would be if it had been unshared a moment earlier.
    pub fn instances_with_roles(&mut self, filter: &InstanceFilter) -> Result<Vec<Instance>> {
        let mut list = self.store()?.instances(filter)?;
        self.annotate_roles(&mut list)?;
        if filter.member.is_some() {
            list.retain(|i| i.role.is_some());
        }
        Ok(list)
    }

    /// Sets what the acting user is to each of `instances` (`role`).
    fn annotate_roles(&mut self, instances: &mut [Instance]) -> Result<()> {
        let user = self.user()?;
        let shared = self.shared_with_me()?;
        for inst in instances {
            inst.role = role_of(&user, shared, inst);
        }
        Ok(())
    }

    /// The instance named by `reference`, or, with none given on a terminal, a
    /// fuzzy selection among those the user may reach (active ones first),
    /// once the user's role on it allows `action` (else exit 4). The
    /// instance comes with its `role` set.
    pub fn instance_for(
        &mut self,
        reference: Option<&str>,
        action: Action,
        command: &str,
    ) -> Result<(User, Instance)> {
        let user = self.user()?;
        let inst = match reference {
            Some(r) => {
                let shared = self.shared_with_me()?.clone();
                resolve_instance(self.store()?, &user, &shared, r)?
            }
            None => self.pick_interactively(&user, action)?,
        };
        authorize(&inst, action, command)?;
        Ok((user, inst))
    }

    fn pick_interactively(&mut self, user: &User, action: Action) -> Result<Instance> {
        if !self.interactive {
            return Err(Error::missing_flag("INSTANCE"));
        }
        let filter = InstanceFilter {
            member: Some(user.id),
            ..Default::default()
        };
        let mut list = self.instances_with_roles(&filter)?;
        list.retain(|i| i.role.is_some_and(|r| r.allows(action)));
        if list.is_empty() {
            return Err(Error::not_found("you have no instances to pick from")
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
        Ok(list.swap_remove(idx))
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
