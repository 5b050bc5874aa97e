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
    pub(crate) fn instances(&self, filter: &InstanceFilter) -> StoreResult<Vec<Instance>> {
        unimplemented!()
    }

    pub(crate) fn instance(&self, id: RowId) -> StoreResult<Option<Instance>> {
        unimplemented!()
    }

    pub(crate) fn find_instances(&self, reference: &str) -> StoreResult<Vec<Instance>> {
        unimplemented!()
    }

    pub(crate) fn create_instance(
        &self,
        owner: RowId,
        new: &NewInstance,
    ) -> StoreResult<Instance> {
        unimplemented!()
    }

    pub(crate) fn update_instance(
        &self,
        id: RowId,
        patch: &InstancePatch,
    ) -> StoreResult<Instance> {
        unimplemented!()
    }

    pub(crate) fn set_status(
        &self,
        id: RowId,
        status: InstanceStatus,
    ) -> StoreResult<Instance> {
        unimplemented!()
    }

    pub(crate) fn delete_instance(&self, id: RowId) -> StoreResult<()> {
        unimplemented!()
    }

    pub(crate) fn set_brands(&self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        unimplemented!()
    }

    pub(crate) fn add_brands(&self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        unimplemented!()
    }

    pub(crate) fn remove_brands(&self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        unimplemented!()
    }

    pub(crate) fn brand_index(
        &self,
        owner: Option<RowId>,
    ) -> StoreResult<Vec<(String, Vec<String>)>> {
        unimplemented!()
    }

    pub(crate) fn import(
        &self,
        owner: RowId,
        rows: &[ImportRow],
        dry_run: bool,
    ) -> StoreResult<ImportOutcome> {
        unimplemented!()
    }

    pub(crate) fn account_by_entity(&self, entity: &str) -> StoreResult<Option<Account>> {
        unimplemented!()
    }

}
