//! What can go wrong in the store, as facts: which row, which key, which
//! file. The sentences a user reads are made from these in `crate::error`,
//! so a second backend reports the same failures in the same words.

use std::path::PathBuf;
use std::time::Duration;

use super::Location;

/// The error of a backend's driver, kept as the cause of a [`StoreError`].
pub type BackendError = Box<dyn std::error::Error + Send + Sync>;

/// The result of a store operation.
pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process held the write lock for longer than a writer waits.
    #[error("the store stayed locked for {}s: {source}", waited.as_secs())]
    Busy {
        /// How long the writer waited, all retries included.
        waited: Duration,
        /// The driver's last "locked" error.
        source: BackendError,
    },
    /// The row an operation names does not exist (any more).
    #[error("not found: {0:?}")]
    NotFound(Missing),
    /// A row with the same key exists, or the row is still referenced.
    #[error("conflict: {0:?}")]
    Conflict(Clash),
    /// The database refused the acting login: a privilege it lacks, or a
    /// row that its row security hides or forbids it to write (the team
    /// store's sharing rules, enforced by the server). Holds the server's
    /// message, which names the table but never a row's values.
    #[error("permission denied: {0}")]
    Denied(String),
    /// The team store's login has not been added as a user (`amcctl user
    /// add`), so the database grants it nothing; holds the login.
    #[error("{0:?} is not a user of this team store")]
    NotMember(String),
    /// The reference names only instances of other users, which the
    /// team store's row security hides from the acting login: exit 4, as
    /// when the caller finds them owned by another user.
    #[error("instance {0:?} belongs to another user")]
    ForeignInstance(String),
    /// A change would break a rule the store keeps.
    #[error("constraint: {0:?}")]
    Constraint(Rule),
    /// The store was written by a newer amcctl.
    #[error("the store {location} has schema version {found}, newer than {supported}")]
    SchemaTooNew {
        /// Where the store is.
        location: Location,
        /// The store's schema version.
        found: usize,
        /// The newest version this build knows.
        supported: usize,
    },
    /// The team store's schema is older than this binary's: someone must
    /// run `amcctl db migrate` (clients never migrate a shared store on
    /// their own).
    #[error("the store {location} has schema version {found}, older than {supported}")]
    SchemaTooOld {
        /// Where the store is.
        location: Location,
        /// The store's schema version (0: none yet).
        found: usize,
        /// The version this build writes.
        supported: usize,
    },
    /// The database server cannot be reached, refused the login, or has no
    /// such database.
    #[error("cannot connect to the store {location}: {source}")]
    Unreachable {
        /// The database (printed without its password).
        location: Location,
        /// The driver's error.
        source: BackendError,
    },
    /// The connection to the database server was lost mid-command; the
    /// transaction under way was not committed.
    #[error("lost the connection to the store {location}: {source}")]
    Lost {
        /// The database (printed without its password).
        location: Location,
        /// What the driver saw.
        source: BackendError,
    },
    /// The transaction conflicted with another client's (a serialization
    /// failure or a deadlock): running it again may succeed, and the
    /// writers do so before anyone sees this.
    #[error("the transaction conflicted with another: {0}")]
    Conflicted(BackendError),
    /// There is no store where one must already exist.
    #[error("there is no store at {location}")]
    NoStore {
        /// Where it was looked for.
        location: Location,
    },
    /// The folder or the file of a new store cannot be created.
    #[error("cannot create {}: {source}", path.display())]
    Create {
        /// The folder (`folder`) or the file that cannot be created.
        path: PathBuf,
        /// Whether `path` is the store's folder rather than its file.
        folder: bool,
        /// Why.
        source: std::io::Error,
    },
    /// The store exists but cannot be opened: not a database, unreadable.
    #[error("cannot open the store {location}: {source}")]
    Open {
        /// Where the store is.
        location: Location,
        /// The driver's error.
        source: BackendError,
    },
    /// The schema cannot be brought up to date.
    #[error("cannot migrate the store {location}: {source}")]
    Migrate {
        /// Where the store is.
        location: Location,
        /// The migration's error.
        source: BackendError,
    },
    /// A backup cannot be written.
    #[error("backup to {} failed: {reason:?}", dest.display())]
    Backup {
        /// Where the backup was to go.
        dest: PathBuf,
        /// What failed.
        reason: BackupFailure,
    },
    /// A stored value cannot be read back as what its column must hold
    /// (written by hand, or by a broken tool): `db check` names the row.
    #[error("the store holds a value amcctl cannot read: {0}")]
    Unreadable(String),
    /// A row written a moment ago cannot be read back in the same process:
    /// a bug, not the user's doing.
    #[error("{0} vanished after insert")]
    Vanished(&'static str),
    /// Any other failure of the backend.
    #[error("store error: {0}")]
    Backend(BackendError),
}

/// What an operation looked for and did not find.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The instance (deleted by another process meanwhile).
    Instance,
    /// The account (deleted by another process meanwhile).
    Account,
    /// The user of this name.
    User(String),
    /// The team store's database has no login role of this name (a user
    /// must be one).
    Role(String),
    /// A brand the instance does not carry.
    Brand(String),
    /// The account an import row names, when the file does not define it.
    ImportAccount {
        /// The account's entity ID.
        entity: String,
        /// The AMC instance ID of the row naming it.
        instance_id: String,
    },
}

/// What an operation collided with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Clash {
    /// An account with this entity ID exists.
    Account(String),
    /// The owner already has an instance with this AMC instance ID.
    Instance(String),
    /// An imported instance's row id is another instance's.
    ImportRowId {
        /// The AMC instance ID of the imported row.
        instance_id: String,
        /// The row id it carries.
        id: String,
    },
    /// A user of this name exists.
    User(String),
    /// The account is still linked to instances, named by AMC instance ID
    /// and owner (all of them, in order).
    AccountInUse(Vec<String>),
    /// The user still owns this many instances.
    UserOwns {
        /// The user's name.
        name: String,
        /// How many instances.
        instances: u64,
    },
    /// The backup's file exists already.
    BackupExists(PathBuf),
}

/// A rule of the store a change would break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// The team store's administrators are the members of the database role
    /// `amcctl_admin`, not users added as such: the user of this name.
    AdminByRole(String),
    /// An instance would carry more brands than allowed.
    TooManyBrands {
        /// The most an instance may carry.
        max: usize,
    },
}

/// Why a backup failed.
#[derive(Debug)]
pub enum BackupFailure {
    /// The file cannot be created.
    Create(std::io::Error),
    /// Copying into it failed (the partial file is removed).
    Copy(BackendError),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            rusqlite::Error::FromSqlConversionFailure(_, _, cause)
                if cause.is::<super::sqlite::Undecodable>() =>
            {
                StoreError::Unreadable(cause.to_string())
            }
            e => StoreError::Backend(Box::new(e)),
        }
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        if super::postgres::is_conflict(&e) {
            StoreError::Conflicted(Box::new(e))
        } else if let Some(message) = super::postgres::denial(&e) {
            StoreError::Denied(message)
        } else {
            StoreError::Backend(Box::new(e))
        }
    }
}
