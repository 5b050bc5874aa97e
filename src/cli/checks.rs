//! The conversions between the store's rows and the health engine's types,
//! shared by the bulk commands (`health check`, `usage sync`) and the
//! one-instance checks (`instance create`, `activate`, `test`).

use crate::amc::Advertiser;
use crate::domain::{Country, EntityId};
use crate::domain::{HealthRecord, Instance};
use crate::error::Result;
use crate::health::{CheckResult, Target};

/// The engine's view of an instance, served by its owner's `profile`.
pub(super) fn target(i: &Instance, profile: String) -> Result<Target> {
    Ok(Target {
        id: i.id,
        instance_id: i.instance_id.clone(),
        name: i.name.clone(),
        owner: i.owner.clone(),
        user_id: i.user_id,
        profile,
        advertiser: Advertiser::new(
            EntityId::parse(&i.account.account_id)?,
            Country::parse(&i.account.country_code)?,
            i.region,
        ),
        api_endpoint: i.api_endpoint.clone(),
    })
}

/// The store's record of a check result.
pub(super) fn record(r: &CheckResult) -> HealthRecord {
    HealthRecord {
        instance: r.id,
        checked_at: r.checked_at,
        status: r.status,
        http_status: r.http_status,
        latency_ms: r.latency_ms,
        attempts: r.attempts,
        error: r.error.clone(),
    }
}
