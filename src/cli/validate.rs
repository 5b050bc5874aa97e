//! Checking one instance against AMC: before saving it (`instance create`),
//! when re-activating it, and on demand (`instance test`).

use super::Ctx;
use super::checks::target;
use super::connect::NetArgs;
use crate::domain::{Account, Action, AuditNote, Instance, NewInstance, User};
use crate::domain::{HealthStatus, InstanceStatus};
use crate::error::{Error, Kind, Result};
use crate::health::{self, CheckResult, Target};

/// Runs one check of `t` with the credentials of `login`, the user whose
/// login serves the instance (see [`Ctx::login_for`]; the environment's
/// credentials only when that is the acting user).
fn check_one(ctx: &mut Ctx, login: &User, t: &Target, net: &NetArgs) -> Result<CheckResult> {
    let client = ctx.amc_client(net)?;
    let acting = ctx.user()?;
    let session = ctx.session(&client, login, &t.profile, login.id == acting.id)?;
    Ok(crate::ops::runtime()?.block_on(health::check(t, Some(&Ok(session)), false)))
}

/// Which command a check ran for: each failure hint names what that
/// command can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Purpose {
    /// `instance create`, before saving.
    Create,
    /// `instance activate`.
    Activate,
    /// `instance test`.
    Test,
}

/// The error for a check that did not come back HEALTHY: exit 7 when the
/// credentials were at fault, else exit 6 with AMC's reason. The hint: the
/// error's own (a network failure names the proxy and CA settings), else
/// what the command at hand can do.
fn failure(r: &CheckResult, purpose: Purpose) -> Error {
    let kind = if r.auth_failure {
        Kind::Auth
    } else {
        Kind::Api
    };
    let reason = r.error.as_deref().unwrap_or("no reason given");
    let what = if purpose == Purpose::Test {
        "test"
    } else {
        "validation"
    };
    let err = Error::new(
        kind,
        format!("{what} of {} failed: {reason}", r.instance_id),
    );
    if let Some(hint) = r.hint {
        return err.with_hint(match purpose {
            Purpose::Create => format!("{hint}; or pass --skip-validation to save it as PENDING"),
            Purpose::Activate | Purpose::Test => hint.to_owned(),
        });
    }
    if r.auth_failure {
        return err.with_hint(
            "check the credentials with `amcctl auth status`, or run `amcctl auth login`",
        );
    }
    err.with_hint(match purpose {
        Purpose::Create => "fix the instance ID, account or region, or pass --skip-validation to save it as PENDING".to_owned(),
        Purpose::Activate => "fix the instance ID, account or region (`amcctl instance edit`), or pass --skip-validation to activate it as PENDING".to_owned(),
        Purpose::Test => format!(
            "compare the instance ID, account and region with AMC's (`amcctl instance show {id}`, `amcctl instance edit`), then run `amcctl instance test {id} -v` to see each request",
            id = r.instance_id
        ),
    })
}

/// Whether a check could run for `user` now: credentials of the profile
/// the user's commands use found (stored or in the environment) and
/// readable with the key, and a client that can be built. Asks nothing of
/// the network. The account, and with it a profile of its own, is not
/// known yet.
pub(super) fn can_validate(ctx: &mut Ctx, user: &User) -> Result<()> {
    let client = ctx.amc_client(&NetArgs::default())?;
    let profile = ctx.profile_of(user)?;
    ctx.session(&client, user, &profile, true).map(drop)
}

/// Validates a new instance against AMC; returns the status to save it with
/// (ACTIVE), or the failure (nothing is saved).
pub(super) fn check_before_save(
    ctx: &mut Ctx,
    user: &User,
    new: &NewInstance,
    account: &Account,
) -> Result<InstanceStatus> {
    let t = Target {
        id: new.id.unwrap_or_default(),
        instance_id: new.instance_id.clone(),
        name: new.name.clone(),
        owner: user.name.clone(),
        user_id: user.id,
        profile: match &account.profile {
            Some(p) => p.clone(),
            None => ctx.profile_of(user)?,
        },
        advertiser: crate::amc::Advertiser::new(
            account.account_id.clone(),
            account.country,
            new.region,
        ),
        api_endpoint: new.api_endpoint.clone(),
    };
    let r = check_one(ctx, user, &t, &NetArgs::default())?;
    if r.status == HealthStatus::Healthy {
        Ok(InstanceStatus::Active)
    } else {
        Err(failure(&r, Purpose::Create))
    }
}

/// Checks an instance being re-activated and records the outcome: it
/// becomes ACTIVE, or ERROR (exit 6/7, the instance stays activated).
pub(super) fn recheck(ctx: &mut Ctx, inst: &Instance, note: AuditNote) -> Result<Instance> {
    let profile = ctx.instance_profile(inst)?;
    let login = ctx.login_for(inst)?;
    let r = check_one(
        ctx,
        &login,
        &target(inst, login.id, profile)?,
        &NetArgs::default(),
    )?;
    let store = ctx.store()?;
    store
        .audited(note)
        .set_status(inst.id, InstanceStatus::Pending)?;
    store.record_health(&[crate::ops::check::record(&r)])?;
    let mut updated = store
        .instance(inst.id)?
        .ok_or_else(|| Error::not_found("the instance no longer exists"))?;
    updated.role = inst.role;
    if r.status == HealthStatus::Healthy {
        Ok(updated)
    } else {
        ctx.out.changed(&updated)?;
        Err(failure(&r, Purpose::Activate))
    }
}

/// `instance test`: one check, printed, nothing stored.
pub(super) fn test(ctx: &mut Ctx, reference: Option<&str>, net: &NetArgs) -> Result<()> {
    let (_, inst) = ctx.instance_for(reference, Action::Test, "instance test")?;
    let profile = ctx.instance_profile(&inst)?;
    let login = ctx.login_for(&inst)?;
    let r = check_one(ctx, &login, &target(&inst, login.id, profile)?, net)?;
    ctx.out.one(&r)?;
    let latency = r
        .latency_ms
        .map(|l| format!(" in {l} ms"))
        .unwrap_or_default();
    ctx.out.info(format!(
        "{} is {}{latency} ({} attempt(s))",
        r.instance_id, r.status, r.attempts
    ));
    if r.status == HealthStatus::Healthy {
        Ok(())
    } else {
        Err(failure(&r, Purpose::Test))
    }
}
