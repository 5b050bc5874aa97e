//! Checking an instance against AMC before saving or re-activating it.

use super::Ctx;
use crate::error::{Error, Result};
use crate::model::InstanceStatus;
use crate::store::{Account, Instance, NewInstance, User};

/// Validates a new instance against AMC; returns the status to save it with.
pub(super) fn check_before_save(
    _ctx: &mut Ctx,
    _user: &User,
    _new: &NewInstance,
    _account: &Account,
) -> Result<InstanceStatus> {
    Err(
        Error::usage("validation against AMC is not available in this build")
            .with_hint("pass --skip-validation"),
    )
}

/// Re-validates an existing instance and saves the outcome.
pub(super) fn recheck(_ctx: &mut Ctx, _user: &User, _inst: &Instance) -> Result<Instance> {
    Err(
        Error::usage("validation against AMC is not available in this build")
            .with_hint("pass --skip-validation"),
    )
}
