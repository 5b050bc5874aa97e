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
    pub(crate) fn credentials(
        &self,
        user: RowId,
        profile: &str,
    ) -> StoreResult<Option<StoredCredentials>> {
        unimplemented!()
    }

    pub(crate) fn profiles(&self, user: RowId) -> StoreResult<Vec<StoredCredentials>> {
        unimplemented!()
    }

    pub(crate) fn default_profile(&self, user: RowId) -> StoreResult<String> {
        unimplemented!()
    }

    pub(crate) fn set_default_profile(&self, user: RowId, profile: &str) -> StoreResult<()> {
        unimplemented!()
    }

    pub(crate) fn save_credentials(
        &self,
        user: RowId,
        c: &StoredCredentials,
    ) -> StoreResult<()> {
        unimplemented!()
    }

    pub(crate) fn save_access_token(
        &self,
        user: RowId,
        profile: &str,
        token_enc: &str,
        expires: &str,
    ) -> StoreResult<()> {
        unimplemented!()
    }

    pub(crate) fn delete_credentials(&self, user: RowId, profile: &str) -> StoreResult<bool> {
        unimplemented!()
    }

    pub(crate) fn sample_secret(&self) -> StoreResult<Option<String>> {
        unimplemented!()
    }

    pub(crate) fn sample_secret_except(
        &self,
        user: RowId,
        profile: &str,
    ) -> StoreResult<Option<String>> {
        unimplemented!()
    }

    pub(crate) fn reencrypt_secrets<E: From<StoreError> + crate::store::Retryable>(
        &self,
        reencrypt: &dyn Fn(&str) -> Result<String, E>,
    ) -> Result<usize, E> {
        unimplemented!()
    }

}
