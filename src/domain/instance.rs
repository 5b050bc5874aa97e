//! AMC instances as the registry keeps them, and what changes them.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{
    Country, EntityId, HealthStatus, InstanceId, InstanceStatus, NewAccount, Region, RowId,
};

/// The last known health of an instance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Health {
    /// `UNKNOWN` when never checked.
    pub status: HealthStatus,
    /// When it was last checked.
    #[serde(serialize_with = "super::rfc3339::option")]
    pub checked_at: Option<DateTime<Utc>>,
    /// Latency of the last check.
    pub latency_ms: Option<u64>,
    /// The error of the last check.
    pub error: Option<String>,
}

/// The account as embedded in an instance's JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccountBrief {
    /// Row id.
    pub id: RowId,
    /// Entity ID.
    pub account_id: EntityId,
    /// Name.
    pub account_name: String,
    /// Advertiser ID.
    pub advertiser_id: Option<String>,
    /// The marketplace country (`country_code` and `marketplace_id`).
    #[serde(flatten)]
    pub country: Country,
    /// The profile whose grant serves the account (`None`: the owner's default).
    #[serde(skip)]
    pub profile: Option<String>,
}

/// An instance as stored, in the JSON shape `instance show -o json` prints.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Instance {
    /// Row id.
    pub id: RowId,
    /// AMC's instance ID.
    pub instance_id: InstanceId,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// API region.
    pub region: Region,
    /// Lifecycle state.
    pub status: InstanceStatus,
    /// False once deactivated.
    pub is_active: bool,
    /// The owning user's name.
    pub owner: String,
    /// What the acting user is to the instance (`None`: nothing, as in
    /// `--all-users` lists); set by the command, not the store.
    pub role: Option<super::Role>,
    /// The account (entity) the instance belongs to.
    pub account: AccountBrief,
    /// Brands, sorted.
    pub brands: Vec<String>,
    /// Last known health.
    pub health: Health,
    /// The instance's own API endpoint from discovery, if known.
    pub api_endpoint: Option<String>,
    /// AMC's `instanceType` (`STANDARD`, `SANDBOX`, …) from discovery, if known.
    pub instance_type: Option<String>,
    /// AMC's `customerCanonicalName` from discovery, if known.
    pub customer_canonical_name: Option<String>,
    /// The AWS account that uploads data to the instance, from discovery, if known.
    pub data_upload_account_id: Option<String>,
    /// Creation time.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub created_at: DateTime<Utc>,
    /// Last change.
    #[serde(serialize_with = "super::rfc3339::serialize")]
    pub updated_at: DateTime<Utc>,
    /// The owner's row id (not part of the JSON shape).
    #[serde(skip)]
    pub user_id: RowId,
}

impl Instance {
    /// How importing `new`, linked to the account `account`, would change
    /// this stored instance. An import leaves health, timestamps and the
    /// discovered details alone, so only the fields it writes are compared;
    /// both backends must call the same rows unchanged, or a re-import would
    /// count differently on each.
    pub fn import_diff<'a>(&self, new: &'a NewInstance, account: RowId) -> ImportDiff<'a> {
        let mut brands: Vec<&'a str> = new.brands.iter().map(String::as_str).collect();
        brands.sort_unstable();
        let brands_changed = self.brands.len() != brands.len()
            || self.brands.iter().zip(&brands).any(|(a, b)| a != b);
        let fields_changed = self.name != new.name
            || self.description != new.description
            || self.region != new.region
            || self.account.id != account
            || self.status != new.status
            || self.api_endpoint != new.api_endpoint;
        ImportDiff {
            brands,
            brands_changed,
            fields_changed,
        }
    }
}

/// What importing a row would change of the instance stored under its AMC
/// ID (see [`Instance::import_diff`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportDiff<'a> {
    /// The row's brands, sorted as the store keeps them, for writing when
    /// they changed.
    pub brands: Vec<&'a str>,
    /// Whether the brands differ from the stored ones.
    pub brands_changed: bool,
    /// Whether any other imported field differs.
    pub fields_changed: bool,
}

impl ImportDiff<'_> {
    /// Whether the row matches the stored instance: nothing to write.
    pub fn unchanged(&self) -> bool {
        !self.brands_changed && !self.fields_changed
    }
}

/// Which instances to list; `None` fields do not filter.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    /// Only the instances this user owns or that are shared with them
    /// (`None`: every user's).
    pub member: Option<RowId>,
    /// Only with this status.
    pub status: Option<InstanceStatus>,
    /// Only with this health (`Unknown`: never checked).
    pub health: Option<HealthStatus>,
    /// Only linked to this account.
    pub account: Option<RowId>,
    /// Only carrying this brand.
    pub brand: Option<String>,
    /// Only in this region.
    pub region: Option<Region>,
    /// Only not-healthy ones (UNHEALTHY, ERROR or never checked).
    pub not_healthy: bool,
    /// Only of this `instanceType` (compared without regard to case).
    pub instance_type: Option<String>,
}

/// A new instance.
#[derive(Debug, Clone)]
pub struct NewInstance {
    /// Row id to use; `None` for a fresh one.
    pub id: Option<RowId>,
    /// AMC's instance ID.
    pub instance_id: InstanceId,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// API region.
    pub region: Region,
    /// Linked account.
    pub account: RowId,
    /// Initial state.
    pub status: InstanceStatus,
    /// Brands.
    pub brands: Vec<String>,
    /// API endpoint from discovery.
    pub api_endpoint: Option<String>,
}

/// Changes to an instance; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InstancePatch {
    /// New name.
    pub name: Option<String>,
    /// New description (`Some(None)` clears it).
    pub description: Option<Option<String>>,
    /// New region.
    pub region: Option<Region>,
    /// New account.
    pub account: Option<RowId>,
}

impl InstancePatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// What an upsert did to one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UpsertResult {
    /// A new row.
    Created,
    /// An existing row changed.
    Updated,
    /// An existing row already matched.
    Unchanged,
}

/// The effect of an import.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportOutcome {
    /// New instances.
    pub created: usize,
    /// Changed instances.
    pub updated: usize,
    /// Instances that already matched.
    pub unchanged: usize,
    /// New accounts.
    pub accounts_created: usize,
    /// Whether nothing was written (`--dry-run`).
    pub dry_run: bool,
}

impl ImportOutcome {
    /// Whether the import creates or changes anything.
    pub fn changed(&self) -> bool {
        self.created + self.updated + self.accounts_created > 0
    }
}

/// One instance of an import file, validated, with the account it names.
#[derive(Debug, Clone)]
pub struct ImportRow {
    /// Where the row stands in its file (`[2]`, `line 3`), for messages.
    pub position: String,
    /// The instance; `account` is ignored in favour of `account_entity`.
    pub instance: NewInstance,
    /// The entity ID of its account.
    pub account_entity: EntityId,
    /// The account to create when the entity ID is not in the store yet.
    pub new_account: Option<NewAccount>,
    /// `is_active`.
    pub is_active: bool,
    /// Health as exported.
    pub health: Health,
    /// Creation time as exported.
    pub created_at: Option<DateTime<Utc>>,
    /// Last change as exported.
    pub updated_at: Option<DateTime<Utc>>,
}
