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
    pub(crate) fn accounts(&self) -> StoreResult<Vec<Account>> {
        unimplemented!()
    }

    pub(crate) fn account(&self, id: RowId) -> StoreResult<Option<Account>> {
        unimplemented!()
    }

    pub(crate) fn find_accounts(&self, reference: &str) -> StoreResult<Vec<Account>> {
        unimplemented!()
    }

    pub(crate) fn create_account(&self, new: &NewAccount) -> StoreResult<Account> {
        unimplemented!()
    }

    pub(crate) fn update_account(
        &self,
        id: RowId,
        patch: &AccountPatch,
    ) -> StoreResult<Account> {
        unimplemented!()
    }

    pub(crate) fn delete_account(&self, id: RowId) -> StoreResult<()> {
        unimplemented!()
    }

}
