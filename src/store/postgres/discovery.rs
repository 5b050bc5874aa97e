//! Stub: ported from the SQLite backend.

#![allow(unused_variables)]

use super::*;
#[allow(unused_imports)]
use crate::domain::*;
#[allow(unused_imports)]
use crate::amc::{ExecutionStatus, UsageSnapshot};
#[allow(unused_imports)]
use std::collections::{HashMap, HashSet};
#[allow(unused_imports)]
use chrono::{DateTime, Utc};

impl Db {
    pub(crate) fn upsert_accounts(
        &self,
        found: &[NewAccount],
        dry_run: bool,
    ) -> StoreResult<UpsertCounts> {
        unimplemented!()
    }

    pub(crate) fn upsert_discovered(
        &self,
        owner: RowId,
        account: RowId,
        region: Region,
        found: &[DiscoveredInstance],
        dry_run: bool,
    ) -> StoreResult<UpsertCounts> {
        unimplemented!()
    }

}
