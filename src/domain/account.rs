//! Advertiser accounts: the AMC entities instances belong to.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{Country, EntityId, RowId};

/// An account as stored, in the JSON shape `account show -o json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Account {
    /// Row id.
    pub id: RowId,
    /// The entity ID.
    pub account_id: EntityId,
    /// Display name.
    pub account_name: String,
    /// The optional Amazon Ads advertiser ID.
    pub advertiser_id: Option<String>,
    /// The marketplace country (`country_code` and `marketplace_id`).
    #[serde(flatten)]
    pub country: Country,
    /// The profile whose grant serves the account's instances (`None`: each
    /// owner's default profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// How many instances (of all users) link to the account.
    pub instance_count: u64,
    /// Creation time.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub updated_at: DateTime<Utc>,
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Row id to use; `None` for a fresh one (import keeps ids).
    pub id: Option<RowId>,
    /// The entity ID.
    pub account_id: EntityId,
    /// Display name.
    pub account_name: String,
    /// Optional advertiser ID.
    pub advertiser_id: Option<String>,
    /// Country, which decides the marketplace.
    pub country: Country,
    /// The profile whose grant serves it (discovery records the one it used).
    pub profile: Option<String>,
}

/// Changes to an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountPatch {
    /// New entity ID.
    pub account_id: Option<EntityId>,
    /// New name.
    pub account_name: Option<String>,
    /// New advertiser ID (`Some(None)` clears it).
    pub advertiser_id: Option<Option<String>>,
    /// New country.
    pub country: Option<Country>,
    /// New profile.
    pub profile: Option<String>,
}

impl AccountPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.account_id.is_none()
            && self.account_name.is_none()
            && self.advertiser_id.is_none()
            && self.country.is_none()
            && self.profile.is_none()
    }
}
