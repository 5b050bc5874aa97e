//! The health engine's view of the store's instances, shared by the bulk
//! commands (`health check`, `usage sync`) and the one-instance checks
//! (`instance create`, `activate`, `test`). The way back, a result into
//! the store's record, is [`crate::ops::check::record`].

use crate::amc::Advertiser;
use crate::domain::Instance;
use crate::error::Result;
use crate::health::Target;

/// The engine's view of an instance, served by the `profile` of the user
/// `login` (see [`super::Ctx::login_for`]).
pub(super) fn target(i: &Instance, login: crate::domain::RowId, profile: String) -> Result<Target> {
    Ok(Target {
        id: i.id,
        instance_id: i.instance_id.clone(),
        name: i.name.clone(),
        owner: i.owner.clone(),
        user_id: login,
        profile,
        advertiser: Advertiser::new(i.account.account_id.clone(), i.account.country, i.region),
        api_endpoint: i.api_endpoint.clone(),
    })
}
