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
    pub(crate) fn settings_token(&self, id: RowId) -> StoreResult<Option<String>> {
        unimplemented!()
    }

    pub(crate) fn change_settings<T, E: From<StoreError> + crate::store::Retryable>(
        &self,
        id: RowId,
        mut change: impl FnMut(Option<&str>) -> Result<(Option<String>, T), E>,
    ) -> Result<T, E> {
        unimplemented!()
    }

}
