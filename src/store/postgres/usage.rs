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
    pub(crate) fn sync_marks(&self) -> StoreResult<HashMap<RowId, SyncMark>> {
        unimplemented!()
    }

    pub(crate) fn save_usage(
        &self,
        instance: RowId,
        started: DateTime<Utc>,
        window_start: DateTime<Utc>,
        snap: &UsageSnapshot,
    ) -> StoreResult<bool> {
        unimplemented!()
    }

    pub(crate) fn usage_report(
        &self,
        instances: &[(RowId, InstanceId, String)],
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Vec<UsageRow>, UsageFleet)> {
        unimplemented!()
    }

    pub(crate) fn executions_by_day(
        &self,
        instances: &HashSet<RowId>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DayExecutions>> {
        unimplemented!()
    }

    pub(crate) fn executions(
        &self,
        instance: RowId,
        status: Option<ExecutionStatus>,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<ExecutionRow>> {
        unimplemented!()
    }

    pub(crate) fn schedules(
        &self,
        instance: Option<RowId>,
        owner: Option<RowId>,
    ) -> StoreResult<Vec<ScheduleRow>> {
        unimplemented!()
    }

}
