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
    pub(crate) fn record_health(&self, batch: &[HealthRecord]) -> StoreResult<()> {
        unimplemented!()
    }

    pub(crate) fn history(
        &self,
        instance: RowId,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> StoreResult<Vec<HistoryRow>> {
        unimplemented!()
    }

    pub(crate) fn health_report(
        &self,
        owner: Option<RowId>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<HealthSummary>> {
        unimplemented!()
    }

    pub(crate) fn latency_by_day(
        &self,
        instances: Option<&HashSet<RowId>>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DayLatency>> {
        unimplemented!()
    }

    pub(crate) fn prune_history(&self, before: DateTime<Utc>) -> StoreResult<usize> {
        unimplemented!()
    }

}
