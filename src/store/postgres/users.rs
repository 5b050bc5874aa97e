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
    pub(crate) fn user(&self, name: &str) -> StoreResult<Option<User>> {
        unimplemented!()
    }

    pub(crate) fn users(&self) -> StoreResult<Vec<User>> {
        unimplemented!()
    }

    pub(crate) fn add_user(&self, name: &str) -> StoreResult<User> {
        unimplemented!()
    }

    pub(crate) fn ensure_user(&self, name: &str) -> StoreResult<User> {
        unimplemented!()
    }

    pub(crate) fn remove_user(&self, name: &str) -> StoreResult<()> {
        unimplemented!()
    }

}
