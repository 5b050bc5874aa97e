//! The store: the one seam between the program and where its data lives.
//!
//! Commands call the methods of [`Store`] with domain types and get domain
//! types back, or a [`StoreError`] that says what failed; nothing outside
//! this module sees a row, a column or SQL. A store is one of the
//! [`Backend`]s, each behind every method: SQLite in `sqlite/`, the
//! PostgreSQL team store in `postgres/`.

mod copy;
mod error;
mod location;
mod postgres;
mod sqlite;
mod writer;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, Utc};

pub use copy::{Copied, CopyError};
pub use error::{BackendError, BackupFailure, Clash, Missing, Rule, StoreError, StoreResult};
pub use location::{Location, PgTarget, SslMode, is_url};
pub use writer::Writer;

pub(crate) use postgres::is_conflict as is_pg_conflict;

use crate::amc::{ExecutionStatus, UsageSnapshot};
use crate::domain::*;

/// An open store.
pub struct Store {
    backend: Backend,
}

/// The backends a store can be. An enum rather than a trait object: writes
/// take the caller's closures (generic methods, which a trait object cannot
/// have), and a new backend must then answer every method of [`Store`], or
/// the match in [`each!`] does not compile.
enum Backend {
    Sqlite(sqlite::Db),
    Postgres(postgres::Db),
}

/// Calls the same method of whichever backend `$store` is.
macro_rules! each {
    ($store:expr, $db:ident => $call:expr) => {
        match &$store.backend {
            Backend::Sqlite($db) => $call,
            Backend::Postgres($db) => $call,
        }
    };
}

/// [`each!`] for the methods that change the store.
macro_rules! each_mut {
    ($store:expr, $db:ident => $call:expr) => {
        match &mut $store.backend {
            Backend::Sqlite($db) => $call,
            Backend::Postgres($db) => $call,
        }
    };
}

/// An error a transaction may end with that says whether running the
/// transaction again could succeed: PostgreSQL's serialization failures
/// and deadlocks, which the team store's writers retry.
pub trait Retryable {
    /// Whether the transaction that failed with this may be run again.
    fn is_retryable(&self) -> bool;
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflicted(_))
    }
}

/// What a key rotation rewrites: the secrets of `user` and those recorded
/// under the key `from`, re-encrypted under the key `to`.
#[derive(Debug, Clone, Copy)]
pub struct Rekey<'a> {
    /// The rotating user.
    pub user: RowId,
    /// The fingerprint of the key being replaced.
    pub from: &'a str,
    /// The fingerprint of the new key.
    pub to: &'a str,
}

impl Rekey<'_> {
    /// Whether a secret of `owner` recorded under `fingerprint` must be
    /// rewritten (a failure to open it then fails the rotation), rather
    /// than tried and left as it is when the key does not open it.
    pub fn must_rewrite(&self, owner: RowId, fingerprint: Option<&str>) -> bool {
        owner == self.user || fingerprint == Some(self.from)
    }
}

/// Creates the new, private file a backup is written to (never over an
/// existing file, never through a symlink). Both backends' `db backup`
/// must refuse and report alike, whichever store they copy, so the file
/// and its errors are made here.
fn create_backup_file(dest: &Path) -> StoreResult<()> {
    crate::fsutil::create_new_private_file(dest).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            StoreError::Conflict(Clash::BackupExists(dest.to_owned()))
        } else {
            StoreError::Backup {
                dest: dest.to_owned(),
                reason: BackupFailure::Create(e),
            }
        }
    })
}

/// The schema version this binary writes for the store at `location`.
pub fn schema_version(location: &Location) -> usize {
    match location {
        Location::Sqlite(_) => sqlite::schema_version(),
        Location::Postgres(_) => postgres::schema_version(),
    }
}

impl Store {
    /// Opens the store at `location`. A SQLite store is created if needed
    /// (its folder 0700, its file 0600) and brought up to date; a
    /// PostgreSQL store must have been migrated (`amcctl db migrate`) to
    /// this binary's schema.
    pub fn open(location: &Location) -> StoreResult<Store> {
        let backend = match location {
            Location::Sqlite(path) => Backend::Sqlite(sqlite::Db::open(path, location)?),
            Location::Postgres(target) => Backend::Postgres(postgres::Db::open(target, location)?),
        };
        Ok(Store { backend })
    }

    /// Opens an existing store for reading only: nothing is created, migrated
    /// or written. For shell completion (which must never change anything and
    /// must never fail loudly) and for `db check`/`db backup`, which look at a
    /// store as it is. A missing store is exit 8.
    pub fn open_read_only(location: &Location) -> StoreResult<Store> {
        let backend = match location {
            Location::Sqlite(path) => Backend::Sqlite(sqlite::Db::open_read_only(path, location)?),
            // The team store's schema is only ever changed by `db migrate`.
            Location::Postgres(target) => Backend::Postgres(postgres::Db::open(target, location)?),
        };
        Ok(Store { backend })
    }

    /// Brings the schema of the store at `location` up to date (`db
    /// migrate`); returns the versions before and after. A SQLite store is
    /// migrated whenever it is opened; a PostgreSQL store only here, under
    /// a lock that lets one client migrate at a time.
    pub fn migrate(location: &Location) -> StoreResult<(usize, usize)> {
        match location {
            Location::Sqlite(path) => sqlite::Db::migrate(path, location),
            Location::Postgres(target) => postgres::Db::migrate(target, location),
        }
    }

    /// Where the store lives.
    pub fn location(&self) -> &Location {
        each!(self, db => db.location())
    }

    /// Runs the backend's integrity checks and the schema's row rules;
    /// returns the problems found, one line each.
    pub fn check(&self) -> StoreResult<Vec<String>> {
        each!(self, db => db.check())
    }

    /// Writes a consistent copy of the store to the new file `dest`, while
    /// other processes may keep writing; it holds no deleted content.
    pub fn backup(&self, dest: &Path) -> StoreResult<()> {
        each!(self, db => db.backup(dest))
    }

    /// Copies every row of this store into the empty store at `dest` (a
    /// new or empty SQLite file, or a PostgreSQL database migrated to this
    /// binary's schema with no rows), in one transaction there: row ids,
    /// times, history ids and ciphertexts as they are. On failure the
    /// destination is left as it was, and a SQLite file the copy created
    /// is removed.
    pub fn copy_to(&self, dest: &Location) -> Result<Copied, CopyError> {
        copy::copy_to(self, dest)
    }

    /// Every table, read in one transaction: what a copy writes.
    fn snapshot(&self) -> StoreResult<copy::Snapshot> {
        each!(self, db => db.snapshot())
    }

    /// Every account, by name.
    pub fn accounts(&self) -> StoreResult<Vec<Account>> {
        each!(self, db => db.accounts())
    }

    /// The account with this row id.
    pub fn account(&self, id: RowId) -> StoreResult<Option<Account>> {
        each!(self, db => db.account(id))
    }

    /// Accounts matching a reference: the row UUID, the entity ID, or the exact name.
    /// A reference shaped like a UUID is a row id first, as for instances.
    pub fn find_accounts(&self, reference: &str) -> StoreResult<Vec<Account>> {
        each!(self, db => db.find_accounts(reference))
    }

    /// Creates an account; exit 5 if the entity ID is already registered.
    pub fn create_account(&mut self, new: &NewAccount) -> StoreResult<Account> {
        each_mut!(self, db => db.create_account(new))
    }

    /// Applies `patch` to the account `id`.
    pub fn update_account(&mut self, id: RowId, patch: &AccountPatch) -> StoreResult<Account> {
        each_mut!(self, db => db.update_account(id, patch))
    }

    /// Deletes an account; exit 5, naming them, while instances link to it.
    pub fn delete_account(&mut self, id: RowId) -> StoreResult<()> {
        each_mut!(self, db => db.delete_account(id))
    }

    /// The credentials of `user` under `profile`, if logged in there.
    pub fn credentials(
        &self,
        user: RowId,
        profile: &str,
    ) -> StoreResult<Option<StoredCredentials>> {
        each!(self, db => db.credentials(user, profile))
    }

    /// Every profile of `user`, by name.
    pub fn profiles(&self, user: RowId) -> StoreResult<Vec<StoredCredentials>> {
        each!(self, db => db.profiles(user))
    }

    /// The profile `user`'s commands use when none is named.
    pub fn default_profile(&self, user: RowId) -> StoreResult<String> {
        each!(self, db => db.default_profile(user))
    }

    /// Makes `profile` the one `user`'s commands use when none is named.
    pub fn set_default_profile(&mut self, user: RowId, profile: &str) -> StoreResult<()> {
        each_mut!(self, db => db.set_default_profile(user, profile))
    }

    /// Saves (replacing) the credentials of `user` under `c.profile`, with
    /// `c.key_fingerprint` recorded as their key; a cached access token is
    /// kept only when given.
    pub fn save_credentials(&mut self, user: RowId, c: &StoredCredentials) -> StoreResult<()> {
        each_mut!(self, db => db.save_credentials(user, c))
    }

    /// Caches an access token (encrypted) for `user`'s `profile`, made with
    /// the key of fingerprint `key_fingerprint`, which the login then
    /// records. Nothing is written when the login is recorded under another
    /// key (it was replaced meanwhile): one login never mixes two keys.
    pub fn save_access_token(
        &mut self,
        user: RowId,
        profile: &str,
        token_enc: &str,
        expires: &str,
        key_fingerprint: &str,
    ) -> StoreResult<()> {
        each_mut!(self, db => db.save_access_token(user, profile, token_enc, expires, key_fingerprint))
    }

    /// Removes the credentials of `user`'s `profile`; returns whether there
    /// were any.
    pub fn delete_credentials(&mut self, user: RowId, profile: &str) -> StoreResult<bool> {
        each_mut!(self, db => db.delete_credentials(user, profile))
    }

    /// One of `user`'s stored secrets (their logins, leaving out
    /// `except_profile`'s, and the settings of the instances they own) for
    /// each key fingerprint recorded with them, one more for those recorded
    /// with none. A key that is to store or read more of the user's secrets
    /// must be the key of these (one key per user, whatever other users'
    /// keys are), and the settling of an interrupted rotation tells by one
    /// of them which key file the store is under. Empty when the user has
    /// no secret.
    pub fn key_samples(
        &self,
        user: RowId,
        except_profile: Option<&str>,
    ) -> StoreResult<Vec<SealedSecret>> {
        each!(self, db => db.key_samples(user, except_profile))
    }

    /// Rewrites the secrets the rotating key holds through `reencrypt` in
    /// one transaction, recording `rekey.to` as their key; returns how many
    /// secrets were rewritten. Those are every secret of `rekey.user`
    /// (each profile's login, the settings of each instance they own) and
    /// any other user's recorded under the same key (`rekey.from`: users
    /// who share one home and its key file), or recorded under no key yet
    /// and opened by it. Secrets under other users' own keys are not
    /// touched. If `reencrypt` fails for a secret that must be rewritten,
    /// nothing changes.
    pub fn reencrypt_secrets<E: From<StoreError> + Retryable + Send>(
        &mut self,
        rekey: &Rekey<'_>,
        reencrypt: &(dyn Fn(&SealedSecret) -> Result<String, E> + Sync),
    ) -> Result<usize, E> {
        each_mut!(self, db => db.reencrypt_secrets(rekey, reencrypt))
    }

    /// Creates missing accounts and renames/re-homes changed ones.
    pub fn upsert_accounts(
        &mut self,
        found: &[NewAccount],
        dry_run: bool,
    ) -> StoreResult<UpsertCounts> {
        each_mut!(self, db => db.upsert_accounts(found, dry_run))
    }

    /// Upserts `owner`'s instances of `account` as discovered. New instances
    /// are ACTIVE when AMC reports them COMPLETED, else PENDING; existing ones
    /// keep their name, status and brands, and get the endpoint, account and
    /// details (type, canonical name, data-upload account) AMC reports; a
    /// detail AMC leaves out keeps its stored value.
    pub fn upsert_discovered(
        &mut self,
        owner: RowId,
        account: RowId,
        region: Region,
        found: &[DiscoveredInstance],
        dry_run: bool,
    ) -> StoreResult<UpsertCounts> {
        each_mut!(self, db => db.upsert_discovered(owner, account, region, found, dry_run))
    }

    /// Saves a batch of results in one transaction: a history row each, and the
    /// instance's last health and status updated (see
    /// [`InstanceStatus::after_check`]). Results for
    /// instances deleted meanwhile are skipped.
    pub fn record_health(&mut self, batch: &[HealthRecord]) -> StoreResult<()> {
        each_mut!(self, db => db.record_health(batch))
    }

    /// The checks of one instance, newest first.
    pub fn history(
        &self,
        instance: RowId,
        since: Option<DateTime<Utc>>,
        limit: usize,
    ) -> StoreResult<Vec<HistoryRow>> {
        each!(self, db => db.history(instance, since, limit))
    }

    /// Per-instance uptime, error rate and latency percentiles since `since`,
    /// for the instances `owner` owns or that are shared with them (every
    /// user's with `None`), sorted by name.
    pub fn health_report(
        &self,
        owner: Option<RowId>,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<HealthSummary>> {
        each!(self, db => db.health_report(owner, since))
    }

    /// Checks per UTC day since `since` (every day of the period, oldest
    /// first, empty ones included), with their latency percentiles; only
    /// the checks of `instances` when given.
    pub fn latency_by_day(
        &self,
        instances: Option<&HashSet<RowId>>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DayLatency>> {
        each!(self, db => db.latency_by_day(instances, since, now))
    }

    /// Deletes history rows older than `before`; returns how many.
    pub fn prune_history(&mut self, before: DateTime<Utc>) -> StoreResult<usize> {
        each_mut!(self, db => db.prune_history(before))
    }

    /// Instances matching `filter`, sorted by name.
    pub fn instances(&self, filter: &InstanceFilter) -> StoreResult<Vec<Instance>> {
        each!(self, db => db.instances(filter))
    }

    /// The instance with this row id.
    pub fn instance(&self, id: RowId) -> StoreResult<Option<Instance>> {
        each!(self, db => db.instance(id))
    }

    /// Instances of every user matching a reference: the row UUID, the AMC
    /// instance ID, or the exact name. In the team store, of every user the
    /// login may see (row security); when only instances it may not see
    /// match, [`StoreError::ForeignInstance`].
    /// A reference shaped like a UUID is a row id first: if a row has it,
    /// that row is the only match, whatever names other rows carry.
    pub fn find_instances(&self, reference: &str) -> StoreResult<Vec<Instance>> {
        each!(self, db => db.find_instances(reference))
    }

    /// Creates an instance owned by `owner`; exit 5 if the owner already has that instance ID.
    pub fn create_instance(&mut self, owner: RowId, new: &NewInstance) -> StoreResult<Instance> {
        each_mut!(self, db => db.create_instance(owner, new))
    }

    /// Applies `patch` to the instance `id`.
    pub fn update_instance(&mut self, id: RowId, patch: &InstancePatch) -> StoreResult<Instance> {
        each_mut!(self, db => db.update_instance(id, patch))
    }

    /// Sets the lifecycle state (`is_active` follows: false only for INACTIVE).
    pub fn set_status(&mut self, id: RowId, status: InstanceStatus) -> StoreResult<Instance> {
        each_mut!(self, db => db.set_status(id, status))
    }

    /// Deletes an instance with its brands and health history.
    pub fn delete_instance(&mut self, id: RowId) -> StoreResult<()> {
        each_mut!(self, db => db.delete_instance(id))
    }

    /// Replaces the brand set of an instance in one transaction.
    pub fn set_brands(&mut self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        each_mut!(self, db => db.set_brands(id, brands))
    }

    /// Adds brands to an instance (present ones are kept once).
    pub fn add_brands(&mut self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        each_mut!(self, db => db.add_brands(id, brands))
    }

    /// Removes brands from an instance; exit 3 naming a brand it does not carry.
    pub fn remove_brands(&mut self, id: RowId, brands: &[String]) -> StoreResult<Instance> {
        each_mut!(self, db => db.remove_brands(id, brands))
    }

    /// Every brand with the AMC instance IDs that carry it, limited to the
    /// instances `owner` owns or that are shared with them when given.
    pub fn brand_index(&self, owner: Option<RowId>) -> StoreResult<Vec<(String, Vec<String>)>> {
        each!(self, db => db.brand_index(owner))
    }

    /// Imports `rows` for `owner` in one transaction: upsert on (owner,
    /// instance_id), accounts created when missing. With `dry_run` the
    /// transaction is rolled back and only the counts are returned. An
    /// import that changes anything appends the audit entry `note` makes
    /// of its counts, in the same transaction (an audit entry says what
    /// changed, which only the import itself finds out).
    pub fn import(
        &mut self,
        owner: RowId,
        rows: &[ImportRow],
        dry_run: bool,
        note: &(dyn Fn(&ImportOutcome) -> AuditNote + Sync),
    ) -> StoreResult<ImportOutcome> {
        each_mut!(self, db => db.import(owner, rows, dry_run, note))
    }

    /// The account with this entity ID.
    pub fn account_by_entity(&self, entity: &str) -> StoreResult<Option<Account>> {
        each!(self, db => db.account_by_entity(entity))
    }

    /// The settings of instance `id` as stored (`None`: no settings), with
    /// the fingerprint of their key.
    pub fn settings_token(&self, id: RowId) -> StoreResult<Option<SealedSecret>> {
        each!(self, db => db.settings_token(id))
    }

    /// Reads the settings of instance `id` and replaces their token with
    /// what `change` makes of them (`None`: no settings left), recorded as
    /// made with the key of fingerprint `key_fingerprint`, in one
    /// transaction, so that two processes changing settings at once lose
    /// neither change. If `change` fails, nothing is written.
    pub fn change_settings<T: Send, E: From<StoreError> + Retryable + Send>(
        &mut self,
        id: RowId,
        key_fingerprint: &str,
        change: impl FnMut(Option<&SealedSecret>) -> Result<(Option<String>, T), E> + Send,
    ) -> Result<T, E> {
        each_mut!(self, db => db.change_settings(id, key_fingerprint, change))
    }

    /// Where the last sync of every instance left off.
    pub fn sync_marks(&self) -> StoreResult<HashMap<RowId, SyncMark>> {
        each!(self, db => db.sync_marks())
    }

    /// Saves one instance's sync in one transaction: workflows and schedules
    /// replaced by the fetched lists, executions upserted by AMC's ID, and
    /// the sync mark set to `started`. An instance deleted meanwhile is
    /// skipped (`false`).
    pub fn save_usage(
        &mut self,
        instance: RowId,
        started: DateTime<Utc>,
        window_start: DateTime<Utc>,
        snap: &UsageSnapshot,
    ) -> StoreResult<bool> {
        each_mut!(self, db => db.save_usage(instance, started, window_start, snap))
    }

    /// The usage figures of `instances` (row id, AMC ID, name) over the
    /// executions created since `since`; ad hoc counts look at the 24 hours
    /// before `now`. Rows come in the order given.
    pub fn usage_report(
        &self,
        instances: &[(RowId, InstanceId, String)],
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<(Vec<UsageRow>, UsageFleet)> {
        each!(self, db => db.usage_report(instances, since, now))
    }

    /// Executions of `instances` created since `since`, per UTC day (every
    /// day up to `now`, oldest first, empty ones included).
    pub fn executions_by_day(
        &self,
        instances: &HashSet<RowId>,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<DayExecutions>> {
        each!(self, db => db.executions_by_day(instances, since, now))
    }

    /// The stored executions of one instance, newest first.
    pub fn executions(
        &self,
        instance: RowId,
        status: Option<ExecutionStatus>,
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<ExecutionRow>> {
        each!(self, db => db.executions(instance, status, since))
    }

    /// Stored schedules of one instance, or of every instance `owner` owns
    /// or that is shared with them (`None`: everyone's), with the state of each one's latest scheduled run.
    pub fn schedules(
        &self,
        instance: Option<RowId>,
        owner: Option<RowId>,
    ) -> StoreResult<Vec<ScheduleRow>> {
        each!(self, db => db.schedules(instance, owner))
    }

    /// Shares `instance` with `user` as `role` (replacing another role);
    /// returns what changed. `by` is the sharing user's name. A change
    /// appends the audit entry `note` makes of it, in the same transaction;
    /// the same role again changes nothing and appends none.
    pub fn share(
        &mut self,
        instance: RowId,
        user: RowId,
        role: ShareRole,
        by: &str,
        note: &(dyn Fn(ShareChange) -> AuditNote + Sync),
    ) -> StoreResult<ShareChange> {
        each_mut!(self, db => db.share(instance, user, role, by, note))
    }

    /// Takes `user`'s access to `instance` away; returns the role they had
    /// (`None`: they had none, and nothing changed). Taking it appends the
    /// audit entry `note` makes of the old role, in the same transaction.
    pub fn unshare(
        &mut self,
        instance: RowId,
        user: RowId,
        note: &(dyn Fn(ShareRole) -> AuditNote + Sync),
    ) -> StoreResult<Option<ShareRole>> {
        each_mut!(self, db => db.unshare(instance, user, note))
    }

    /// Who has access to `instance`: its owner first, then the users it is
    /// shared with, by name.
    pub fn access(&self, instance: RowId) -> StoreResult<Vec<Share>> {
        each!(self, db => db.access(instance))
    }

    /// The instances shared with `user`, with the role of each.
    pub fn shared_with(&self, user: RowId) -> StoreResult<HashMap<RowId, ShareRole>> {
        each!(self, db => db.shared_with(user))
    }

    /// Arms the audit trail: the next write transaction that commits also
    /// appends `note`, in the same transaction, so that a change and its
    /// entry are written together or not at all (a dry run or a failed
    /// change leaves none). Call it right before the write it describes.
    pub fn audited(&mut self, note: AuditNote) -> &mut Store {
        each_mut!(self, db => db.arm_audit(note));
        self
    }

    /// Appends `note` to the audit trail in a transaction of its own, for a
    /// command whose change took several transactions (a discovery).
    pub fn append_audit(&mut self, note: AuditNote) -> StoreResult<()> {
        each_mut!(self, db => db.append_audit(note))
    }

    /// The audit entries matching `filter` that the acting user may read,
    /// oldest first.
    pub fn audit_entries(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditEntry>> {
        each!(self, db => db.audit_entries(filter))
    }

    /// The database login of the connection (the team store's acting user);
    /// `None` for a SQLite store, which has no logins.
    pub fn login(&self) -> StoreResult<Option<String>> {
        each!(self, db => db.login())
    }

    /// The user called `name`, if any.
    pub fn user(&self, name: &str) -> StoreResult<Option<User>> {
        each!(self, db => db.user(name))
    }

    /// Every user, by name.
    pub fn users(&self) -> StoreResult<Vec<User>> {
        each!(self, db => db.users())
    }

    /// Adds a user (its name checked by [`validate_name`]); a clash if the
    /// name is taken. In the team store the name is a database login role,
    /// which gets the privileges a member needs, and `admin` must be false
    /// (administrators are the members of the role `amcctl_admin`); in a
    /// SQLite store `admin` makes the user an administrator.
    pub fn add_user(&mut self, name: &str, admin: bool) -> StoreResult<User> {
        each_mut!(self, db => db.add_user(name, admin))
    }

    /// The user called `name` (checked by [`validate_name`]), created if
    /// missing (the OS login user on first use).
    pub fn ensure_user(&mut self, name: &str) -> StoreResult<User> {
        each_mut!(self, db => db.ensure_user(name))
    }

    /// Removes a user; exit 3 if unknown, exit 5 while the user owns instances.
    pub fn remove_user(&mut self, name: &str) -> StoreResult<()> {
        each_mut!(self, db => db.remove_user(name))
    }
}
