//! What discovery found in AMC, and what saving it changed.

use serde::Serialize;

use super::InstanceId;

/// Counts of a discovery upsert.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UpsertCounts {
    /// New rows.
    pub created: usize,
    /// Rows that changed.
    pub updated: usize,
    /// Rows that already matched.
    pub unchanged: usize,
}

/// An instance as AMC's listing reports it.
#[derive(Debug, Clone)]
pub struct DiscoveredInstance {
    /// AMC's instance ID.
    pub instance_id: InstanceId,
    /// AMC's name for it, if any.
    pub name: Option<String>,
    /// Its own API endpoint, if AMC gave one.
    pub api_endpoint: Option<String>,
    /// Whether AMC reports it COMPLETED (usable).
    pub completed: bool,
    /// `instanceType`, if AMC gave one.
    pub instance_type: Option<String>,
    /// `customerCanonicalName`, if AMC gave one.
    pub customer_canonical_name: Option<String>,
    /// The data-upload AWS account, if AMC gave one.
    pub data_upload_account_id: Option<String>,
}
