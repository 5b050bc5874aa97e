//! Fernet encryption of stored secrets, the key that unlocks them, and
//! redaction of secrets for display.
//!
//! # The key
//!
//! Secrets (client secrets, refresh tokens, cached access tokens, an
//! instance's `encrypted_config`) are stored as standard Fernet tokens, the
//! format of Python's `cryptography.fernet`, so a key and its ciphertexts move
//! between this tool and a Python service unchanged.
//!
//! The key is the value of [`KEY_ENV`] when the caller passes one, else the
//! content of the key file. [`Keyring::load`] never creates anything: a
//! missing key is an error that names both places it looked. The caller uses
//! [`Keyring::load_or_create`] only when it is about to store the *first*
//! secret (creating a key while the store already holds ciphertext would make
//! that ciphertext unreadable); it then learns from [`KeyOrigin::Created`]
//! that it must print the one-time "back up this key" notice, because this
//! module never prints.
//!
//! Key file rules: the file is created `0600` inside a folder created `0700`;
//! it is written to a temporary sibling and then linked into place, so a
//! reader never sees half a key and two processes creating it at once agree
//! on one key (the loser reads the winner's). A key file that group or others
//! may access is refused rather than silently used: that key decrypts every
//! stored secret.
//!
//! # One key per user, and fingerprints
//!
//! A team store is shared by people who each have a home and a key of their
//! own, so one store holds ciphertexts of several keys: each user's secrets
//! are under that user's key. Beside each ciphertext the store records the
//! [fingerprint](Keyring::fingerprint) of the key that made it (`fp:` and
//! the first 16 hex digits of the SHA-256 of the key's 32 bytes; never the
//! key). A reader compares it with its own key's before decrypting
//! ([`Keyring::open`]), so a secret of another key is an error that names
//! both fingerprints, not a failed decryption that looks like damage.
//! Ciphertexts stored before fingerprints were recorded have none; the key
//! is simply tried on them.
//!
//! # Rotation
//!
//! The store re-encrypts the acting user's secrets (every profile's login,
//! the settings of the instances they own) in one transaction, recording
//! the new key's fingerprint; other users' secrets are under their own keys
//! and are left alone. This module gives it the file half of the protocol,
//! built so that a crash at any point leaves a key that decrypts the
//! user's secrets:
//!
//! 1. [`Keyring::recover_rotation`] first, to settle any earlier interrupted
//!    rotation (it is harmless when there is none).
//! 2. [`Keyring::stage_rotation`] writes a fresh key as `key.new` (next to the
//!    key file, `0600`) and returns it. `key` is untouched, so a crash here
//!    leaves the store and `key` consistent, with a stale `key.new`.
//! 3. The store decrypts each of the user's secrets with the current key,
//!    encrypts it with the new one and commits.
//! 4. [`Keyring::promote_rotation`] renames `key` → `key.old` (the previous
//!    key is kept, replacing an older `key.old`) and then `key.new` → `key`.
//!    Each rename is atomic.
//!
//! A crash between 3 and 4 leaves the user's secrets encrypted with
//! `key.new` while `key` is the old key. [`Keyring::recover_rotation`],
//! given any one of the acting user's stored ciphertexts, tells the cases
//! apart: if `key` decrypts it, the transaction
//! never committed and `key.new` is stale (removed); if only `key.new` does,
//! the promotion is finished. A crash between the two renames of step 4
//! leaves no `key` but a `key.new`; loading and recovery both finish that
//! promotion, since `key.new` only ever outlives `key` after a commit.
//! Rotation needs the key file: with the key in [`KEY_ENV`] the user rotates
//! by hand.
//!
//! # Sharing the key between processes
//!
//! Cron jobs and people run amcctl at the same time, so the key file is
//! guarded by an advisory lock on its sibling `key.lock` ([`KeyLock`]): a
//! process that uses the key holds it *shared* for as long as it may
//! decrypt or encrypt with the key it loaded, and a rotation — steps 1 to 4
//! — holds it *exclusive*, as does settling an interrupted rotation. So no
//! process encrypts with a key that a rotation has just replaced, and no
//! process takes the `key.new` of a rotation still running for the leftover
//! of a crashed one (and deletes it). The operating system drops the lock
//! of a process that dies, so a crash never leaves the key locked.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fernet::Fernet;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

use crate::domain::{SealedSecret, SecretOf};

/// The environment variable that may hold the key instead of the key file.
pub const KEY_ENV: &str = crate::env::KEY;

/// How long a process waits for the key lock ([`KeyLock`]) before giving up.
pub const KEY_LOCK_PATIENCE: Duration = Duration::from_secs(60);

/// Where a key came from, for error messages that say where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The [`KEY_ENV`] environment variable.
    Env,
    /// A key file (the key file proper, or `key.new` during a rotation).
    File(PathBuf),
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Env => write!(f, "the {KEY_ENV} environment variable"),
            KeySource::File(p) => write!(f, "the key file {}", p.display()),
        }
    }
}

/// Everything that can go wrong with the key or a ciphertext. Every message
/// names where the key was looked for; none contains key material.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Neither the environment variable nor the key file holds a key.
    #[error("no encryption key: {KEY_ENV} is not set and the key file {} does not exist", path.display())]
    Missing {
        /// The key file that was looked for.
        path: PathBuf,
    },
    /// The key is not the url-safe base64 of 32 bytes.
    #[error(
        "the encryption key in {at} is malformed: a Fernet key is the url-safe base64 of 32 bytes"
    )]
    Malformed {
        /// Where the bad key was found.
        at: KeySource,
    },
    /// The key file may be read or written by group or others.
    #[error(
        "the key file {} is accessible to other users (mode {mode:04o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    TooPermissive {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The token was not made with this key, or was altered.
    #[error(
        "cannot decrypt a stored secret with the key from {at}: wrong key, or the data is corrupt"
    )]
    WrongKey {
        /// Where the key that failed came from.
        at: KeySource,
    },
    /// The store records that the secret was encrypted with another key
    /// than this one: decrypting is not even tried.
    #[error(
        "{of} {} encrypted with key {recorded}, not this key ({acting}, from {at})",
        of.was()
    )]
    ForeignKey {
        /// Whose secret it is.
        of: SecretOf,
        /// The fingerprint recorded with the secret.
        recorded: String,
        /// The fingerprint of the key in use.
        acting: String,
        /// Where the key in use came from.
        at: KeySource,
    },
    /// The token decrypted, but not to UTF-8 text.
    #[error("a stored secret decrypted with the key from {at} is not text")]
    NotText {
        /// Where the key came from.
        at: KeySource,
    },
    /// A `key.new` exists: an earlier rotation has not been settled.
    #[error(
        "an earlier key rotation did not finish ({} exists); it must be recovered before rotating again",
        path.display()
    )]
    RotationPending {
        /// The leftover `key.new`.
        path: PathBuf,
    },
    /// The key lock could not be had in time: a rotation is running, or
    /// (for a rotation) other amcctl processes are still using the key.
    #[error(
        "the key {} is busy: another amcctl is rotating it or still running with it; try again when it has finished",
        path.display()
    )]
    Busy {
        /// The key file.
        path: PathBuf,
    },
    /// A file operation failed.
    #[error("cannot {op} {}: {err}", path.display())]
    Io {
        /// What was being done (`read`, `create`, `rename`, …).
        op: &'static str,
        /// The file or folder concerned.
        path: PathBuf,
        /// The operating system's reason.
        err: io::Error,
    },
}

impl SecretsError {
    /// What the user can do about this error, when there is something
    /// particular to say.
    pub fn hint(&self) -> Option<String> {
        match self {
            SecretsError::ForeignKey { of, .. } => {
                let again = match of {
                    SecretOf::Login { profile } => format!(
                        ", or log in again (`amcctl auth login --profile {profile}`) to store it under this key"
                    ),
                    SecretOf::Settings { .. } => String::new(),
                };
                Some(format!(
                    "use the key that made {}: its key file (after `amcctl key rotate` the previous key is key.old beside the key; `amcctl key path` shows where), or set {KEY_ENV} to it{again}",
                    of.pronoun()
                ))
            }
            _ => None,
        }
    }

    fn io(op: &'static str, path: &Path, err: io::Error) -> Self {
        SecretsError::Io {
            op,
            path: path.to_owned(),
            err,
        }
    }
}

/// Whether [`Keyring::load_or_create`] found a key or made one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The key came from the environment or an existing file.
    Existing,
    /// A new key file was written: the caller tells the user to back it up.
    Created,
}

/// What [`Keyring::recover_rotation`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// No rotation was pending.
    Nothing,
    /// The store had been re-encrypted with `key.new`: it is now `key`.
    Promoted,
    /// The re-encryption never committed: the stale `key.new` was removed.
    RemovedStale,
}

/// A loaded Fernet key: encrypts and decrypts stored secrets.
#[derive(Clone)]
pub struct Keyring {
    fernet: Fernet,
    source: KeySource,
    /// See [`Keyring::fingerprint`].
    fingerprint: String,
    /// The shared key lock, held as long as any clone of this keyring lives.
    lock: Option<Arc<KeyLock>>,
}

/// An advisory lock on `<key file>.lock` (see the module doc): shared while
/// a process uses the key, exclusive while one rotates it or settles an
/// interrupted rotation. Released when dropped, or when the process dies.
#[derive(Debug)]
pub struct KeyLock {
    _file: fs::File,
}

impl KeyLock {
    /// Waits up to `patience` for the shared lock of the key at `key_path`.
    /// A process takes it once: while any keyring of this process holds
    /// the shared lock of a key, asking again hands out the same lock (one
    /// file descriptor, however many users a bulk check has sessions for).
    pub fn shared(key_path: &Path, patience: Duration) -> Result<Arc<KeyLock>, SecretsError> {
        static HELD: std::sync::Mutex<Vec<(PathBuf, std::sync::Weak<KeyLock>)>> =
            std::sync::Mutex::new(Vec::new());
        let mut held = HELD.lock().unwrap_or_else(|p| p.into_inner());
        held.retain(|(_, lock)| lock.strong_count() > 0);
        if let Some(lock) = held
            .iter()
            .find(|(path, _)| path == key_path)
            .and_then(|(_, lock)| lock.upgrade())
        {
            return Ok(lock);
        }
        let lock = Arc::new(Self::wait(key_path, patience, || {
            Self::try_shared(key_path)
        })?);
        held.push((key_path.to_owned(), Arc::downgrade(&lock)));
        Ok(lock)
    }

    /// Waits up to `patience` for the exclusive lock of the key at `key_path`.
    pub fn exclusive(key_path: &Path, patience: Duration) -> Result<KeyLock, SecretsError> {
        Self::wait(key_path, patience, || Self::try_exclusive(key_path))
    }

    /// The shared lock, if no one holds it exclusively right now.
    pub fn try_shared(key_path: &Path) -> Result<Option<KeyLock>, SecretsError> {
        let file = Self::open(key_path)?;
        Self::taken(key_path, file.try_lock_shared(), file)
    }

    /// The exclusive lock, if no one holds the lock at all right now.
    pub fn try_exclusive(key_path: &Path) -> Result<Option<KeyLock>, SecretsError> {
        let file = Self::open(key_path)?;
        Self::taken(key_path, file.try_lock(), file)
    }

    /// The lock file of the key at `key_path`: `<key file>.lock`.
    pub fn path(key_path: &Path) -> PathBuf {
        sibling(key_path, "lock")
    }

    fn open(key_path: &Path) -> Result<fs::File, SecretsError> {
        ensure_parent(key_path)?;
        let path = Self::path(key_path);
        let mut options = fs::OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(&path)
            .map_err(|e| SecretsError::io("open", &path, e))
    }

    fn taken(
        key_path: &Path,
        outcome: Result<(), fs::TryLockError>,
        file: fs::File,
    ) -> Result<Option<KeyLock>, SecretsError> {
        match outcome {
            Ok(()) => Ok(Some(KeyLock { _file: file })),
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(e)) => {
                Err(SecretsError::io("lock", &Self::path(key_path), e))
            }
        }
    }

    fn wait(
        key_path: &Path,
        patience: Duration,
        mut attempt: impl FnMut() -> Result<Option<KeyLock>, SecretsError>,
    ) -> Result<KeyLock, SecretsError> {
        let started = Instant::now();
        loop {
            if let Some(lock) = attempt()? {
                return Ok(lock);
            }
            if started.elapsed() >= patience {
                return Err(SecretsError::Busy {
                    path: key_path.to_owned(),
                });
            }
            std::thread::sleep(Duration::from_millis(fastrand::u64(5..25)));
        }
    }
}

impl fmt::Debug for Keyring {
    // Only where the key came from: the key itself never reaches a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A new random key, in the text form the key file and [`KEY_ENV`] hold.
    pub fn generate_key() -> String {
        Fernet::generate_key()
    }

    /// A keyring from key text (surrounding whitespace ignored); `source`
    /// says where the text came from, for error messages.
    pub fn from_key(key: &str, source: KeySource) -> Result<Self, SecretsError> {
        let key = key.trim();
        let fernet =
            Fernet::new(key).ok_or_else(|| SecretsError::Malformed { at: source.clone() })?;
        let fingerprint =
            fingerprint(key).ok_or_else(|| SecretsError::Malformed { at: source.clone() })?;
        Ok(Keyring {
            fernet,
            source,
            fingerprint,
            lock: None,
        })
    }

    /// The fingerprint of this key, recorded beside every ciphertext it
    /// makes so that a reader with another key can tell whose key a secret
    /// needs: `fp:` and the first 16 hex digits of the SHA-256 of the key's
    /// 32 bytes. It names the key without revealing it.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The fingerprint of the key in the file at `path`, if it holds one
    /// that can be read; for choosing, among stored secrets, one that a
    /// rotation of that key touched.
    pub fn file_fingerprint(path: &Path) -> Option<String> {
        read_key_file(path).ok().flatten().map(|k| k.fingerprint)
    }

    /// Fails with [`SecretsError::ForeignKey`] when `recorded` (the
    /// fingerprint stored with `of`'s ciphertexts) is not this key's;
    /// nothing recorded passes (the key is then simply tried).
    pub fn check_recorded(
        &self,
        recorded: Option<&str>,
        of: &SecretOf,
    ) -> Result<(), SecretsError> {
        match recorded {
            Some(fp) if fp != self.fingerprint => Err(SecretsError::ForeignKey {
                of: of.clone(),
                recorded: fp.to_owned(),
                acting: self.fingerprint.clone(),
                at: self.source.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Decrypts a stored secret after checking that the key recorded with
    /// it is this one ([`Keyring::check_recorded`]).
    pub fn open(&self, sealed: &SealedSecret) -> Result<SecretString, SecretsError> {
        self.check_recorded(sealed.key_fingerprint.as_deref(), &sealed.of)?;
        self.decrypt(&sealed.token)
    }

    /// Loads the key from `env_key` (the value of [`KEY_ENV`], if set and not
    /// empty) or else from the key file at `path`; creates nothing.
    pub fn load(env_key: Option<&str>, path: &Path) -> Result<Self, SecretsError> {
        if let Some(key) = env_key.filter(|k| !k.trim().is_empty()) {
            return Self::from_key(key, KeySource::Env);
        }
        finish_interrupted_promotion(path)?;
        read_key_file(path)?.ok_or_else(|| SecretsError::Missing {
            path: path.to_owned(),
        })
    }

    /// Like [`Keyring::load`], but when there is no key at all, creates the
    /// key file (and its folder) and says so.
    pub fn load_or_create(
        env_key: Option<&str>,
        path: &Path,
    ) -> Result<(Self, KeyOrigin), SecretsError> {
        match Self::load(env_key, path) {
            Err(SecretsError::Missing { .. }) => {}
            other => return other.map(|k| (k, KeyOrigin::Existing)),
        }
        let key = Self::generate_key();
        if write_new_file(path, &key)? {
            let keyring = Self::from_key(&key, KeySource::File(path.to_owned()))?;
            Ok((keyring, KeyOrigin::Created))
        } else {
            // Another process created it first: its key wins, ours was never used.
            let keyring = read_key_file(path)?.ok_or_else(|| SecretsError::Missing {
                path: path.to_owned(),
            })?;
            Ok((keyring, KeyOrigin::Existing))
        }
    }

    /// This keyring holding `lock` for as long as it (or a clone) lives.
    pub fn with_lock(mut self, lock: Arc<KeyLock>) -> Self {
        self.lock = Some(lock);
        self
    }

    /// Removes the temporary files of stagings that died before their key
    /// was linked into place as `key.new`. Only call it while holding the
    /// exclusive [`KeyLock`], which every staging holds.
    pub fn remove_staging_leftovers(key_path: &Path) -> Result<(), SecretsError> {
        for path in Self::staging_leftovers(key_path)? {
            fs::remove_file(&path).map_err(|e| SecretsError::io("remove", &path, e))?;
        }
        Ok(())
    }

    /// The temporary files (`key.new.tmp-*`) of stagings that died before
    /// their key was linked into place. A rotation that is running has one
    /// too, so remove them only under the exclusive [`KeyLock`].
    pub fn staging_leftovers(key_path: &Path) -> Result<Vec<PathBuf>, SecretsError> {
        let dir = match key_path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let prefix = sibling(key_path, "new.tmp-");
        let Some(prefix) = prefix.file_name().and_then(|n| n.to_str()) else {
            return Ok(Vec::new());
        };
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SecretsError::io("list", dir, e)),
        };
        Ok(entries
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_str()
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .map(|e| e.path())
            .collect())
    }

    /// Where this key came from.
    pub fn source(&self) -> &KeySource {
        &self.source
    }

    /// Encrypts `plaintext` into a standard Fernet token (url-safe base64).
    pub fn encrypt(&self, plaintext: &str) -> String {
        self.fernet.encrypt(plaintext.as_bytes())
    }

    /// Decrypts a Fernet token made with this key. Tokens do not expire
    /// (no TTL): stored secrets are meant to last.
    pub fn decrypt(&self, token: &str) -> Result<SecretString, SecretsError> {
        let bytes = self
            .fernet
            .decrypt(token.trim())
            .map_err(|_| SecretsError::WrongKey {
                at: self.source.clone(),
            })?;
        String::from_utf8(bytes)
            .map(SecretString::from)
            .map_err(|_| SecretsError::NotText {
                at: self.source.clone(),
            })
    }

    /// Whether `token` decrypts with this key.
    pub fn can_decrypt(&self, token: &str) -> bool {
        self.fernet.decrypt(token.trim()).is_ok()
    }

    /// The path of the staged key during a rotation: `<key file>.new`.
    pub fn new_key_path(key_path: &Path) -> PathBuf {
        sibling(key_path, "new")
    }

    /// The path of the previous key after a rotation: `<key file>.old`.
    pub fn old_key_path(key_path: &Path) -> PathBuf {
        sibling(key_path, "old")
    }

    /// Step 2 of a rotation (see the module doc): checks the current key
    /// file, writes a fresh key as `key.new` and returns it. Refuses when a
    /// `key.new` is already there: it may be the only key that opens the
    /// store, so it is never overwritten here.
    pub fn stage_rotation(key_path: &Path) -> Result<Keyring, SecretsError> {
        read_key_file(key_path)?.ok_or_else(|| SecretsError::Missing {
            path: key_path.to_owned(),
        })?;
        let new_path = Self::new_key_path(key_path);
        let key = Self::generate_key();
        if !write_new_file(&new_path, &key)? {
            return Err(SecretsError::RotationPending { path: new_path });
        }
        Self::from_key(&key, KeySource::File(new_path))
    }

    /// Step 4 of a rotation, after the store's transaction committed:
    /// `key` → `key.old`, then `key.new` → `key`.
    pub fn promote_rotation(key_path: &Path) -> Result<(), SecretsError> {
        let new_path = Self::new_key_path(key_path);
        // Check the staged key before moving anything, so a bad key.new
        // cannot replace a good key.
        read_key_file(&new_path)?.ok_or_else(|| SecretsError::Missing {
            path: new_path.clone(),
        })?;
        let old_path = Self::old_key_path(key_path);
        fs::rename(key_path, &old_path).map_err(|e| SecretsError::io("rename", key_path, e))?;
        fs::rename(&new_path, key_path).map_err(|e| SecretsError::io("rename", &new_path, e))?;
        sync_parent(key_path);
        Ok(())
    }

    /// Settles a rotation interrupted by a crash (see the module doc).
    /// `sample` is any one ciphertext from the store, or `None` when the
    /// store holds none (then no key is preferable and a `key.new` is simply
    /// removed).
    pub fn recover_rotation(
        key_path: &Path,
        sample: Option<&str>,
    ) -> Result<Recovery, SecretsError> {
        let new_path = Self::new_key_path(key_path);
        if !exists(&new_path)? {
            return Ok(Recovery::Nothing);
        }
        if finish_interrupted_promotion(key_path)? {
            return Ok(Recovery::Promoted);
        }
        let current = read_key_file(key_path)?.ok_or_else(|| SecretsError::Missing {
            path: key_path.to_owned(),
        })?;
        let staged = read_key_file(&new_path)?.ok_or_else(|| SecretsError::Missing {
            path: new_path.clone(),
        })?;
        match sample {
            Some(token) if !current.can_decrypt(token) => {
                if staged.can_decrypt(token) {
                    Self::promote_rotation(key_path)?;
                    Ok(Recovery::Promoted)
                } else {
                    Err(SecretsError::WrongKey { at: current.source })
                }
            }
            _ => {
                fs::remove_file(&new_path).map_err(|e| SecretsError::io("remove", &new_path, e))?;
                sync_parent(&new_path);
                Ok(Recovery::RemovedStale)
            }
        }
    }
}

/// The fingerprint of the key text `key` (see [`Keyring::fingerprint`]),
/// decoded as Fernet decodes it; `None` if it is not base64.
fn fingerprint(key: &str) -> Option<String> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(key.trim_end_matches('='))
        .ok()?;
    let digest = Sha256::digest(&raw);
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("fp:{hex}"))
}

/// `path` with `.suffix` appended to its file name (`key` → `key.new`).
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

fn exists(path: &Path) -> Result<bool, SecretsError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SecretsError::io("inspect", path, e)),
    }
}

/// A crash between the two renames of a promotion leaves `key.new` without
/// `key`; since `key.new` outlives `key` only after the store committed,
/// finishing the rename is the only right move. Returns whether it did.
fn finish_interrupted_promotion(key_path: &Path) -> Result<bool, SecretsError> {
    let new_path = Keyring::new_key_path(key_path);
    if exists(key_path)? || !exists(&new_path)? {
        return Ok(false);
    }
    tracing::warn!(
        key = %key_path.display(),
        "finishing an interrupted key rotation: promoting the staged key"
    );
    fs::rename(&new_path, key_path).map_err(|e| SecretsError::io("rename", &new_path, e))?;
    sync_parent(key_path);
    Ok(true)
}

/// Reads and checks a key file; `Ok(None)` when it does not exist.
fn read_key_file(path: &Path) -> Result<Option<Keyring>, SecretsError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(SecretsError::io("read", path, e)),
    };
    check_permissions(path, &meta)?;
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            return Err(SecretsError::Malformed {
                at: KeySource::File(path.to_owned()),
            });
        }
        Err(e) => return Err(SecretsError::io("read", path, e)),
    };
    Keyring::from_key(&text, KeySource::File(path.to_owned())).map(Some)
}

#[cfg(unix)]
fn check_permissions(path: &Path, meta: &fs::Metadata) -> Result<(), SecretsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretsError::TooPermissive {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _meta: &fs::Metadata) -> Result<(), SecretsError> {
    // Other systems guard files with ACLs, which the folder's defaults cover.
    Ok(())
}

/// Creates the folder of `path` (`0700`) when it is missing.
fn ensure_parent(path: &Path) -> Result<(), SecretsError> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => crate::fsutil::create_private_dir(dir)
            .map_err(|e| SecretsError::io("create the folder", dir, e)),
        None => Ok(()),
    }
}

/// Writes `key` to `path` only if `path` does not exist yet, atomically:
/// a `0600` temporary sibling is written and synced, then hard-linked into
/// place (a link, unlike a rename, fails when the target exists, so a
/// concurrent creator's key is never replaced). Returns whether it wrote.
fn write_new_file(path: &Path, key: &str) -> Result<bool, SecretsError> {
    ensure_parent(path)?;
    let tmp = sibling(path, &format!("tmp-{:016x}", fastrand::u64(..)));
    let result = write_tmp(&tmp, key).and_then(|()| link_no_clobber(&tmp, path));
    // The temporary name is gone after a rename fallback; any other leftover goes.
    let _ = fs::remove_file(&tmp);
    if matches!(result, Ok(true)) {
        sync_parent(path);
    }
    result
}

fn write_tmp(tmp: &Path, key: &str) -> Result<(), SecretsError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(tmp)
        .map_err(|e| SecretsError::io("create", tmp, e))?;
    file.write_all(key.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(|e| SecretsError::io("write", tmp, e))
}

fn link_no_clobber(tmp: &Path, path: &Path) -> Result<bool, SecretsError> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(_) => {
            // Some file systems have no hard links: fall back to a rename,
            // which is atomic but can race with another creator.
            if exists(path)? {
                return Ok(false);
            }
            fs::rename(tmp, path).map_err(|e| SecretsError::io("create", path, e))?;
            Ok(true)
        }
    }
}

/// Makes a rename or link durable; best effort, since not every system
/// can sync a folder and the data itself is already synced.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A secret shortened for display: `Atzr|abcdef…` → `Atzr|…`, anything
/// else → `…`. At most the short `Xxxx|` type prefix of an Amazon token is
/// kept, which tells a reader what kind of secret it is and nothing more.
pub fn redact(secret: &str) -> String {
    match secret.split_once('|') {
        Some((prefix, _))
            if (1..=4).contains(&prefix.len())
                && prefix.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!("{prefix}|…")
        }
        _ => "…".to_owned(),
    }
}

/// Prefixes of Login-with-Amazon client secrets, cut wherever they appear.
const SECRET_PREFIXES: [&str; 1] = ["amzn1.oa2-cs."];

/// Cuts anything that looks like an Amazon token (`Atza|…`, `Atzr|…`) or a
/// client secret (`amzn1.oa2-cs.…`) out of free text, such as an error
/// body a server sent back, before it reaches a message or a log.
pub fn scrub(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        let keep_until = if let Some(sep) = token_separator(&bytes[i..])
            && i >= 4
            && bytes[i - 4..i].iter().all(u8::is_ascii_alphanumeric)
            && (i == 4 || !bytes[i - 5].is_ascii_alphanumeric())
        {
            Some(i + sep)
        } else {
            SECRET_PREFIXES
                .iter()
                .find(|p| bytes[i..].starts_with(p.as_bytes()))
                .map(|p| i + p.len())
        };
        if let Some(start) = keep_until {
            let end = start
                + bytes[start..]
                    .iter()
                    .take_while(|b| is_token_byte(**b))
                    .count();
            if end > start {
                // Both cut points sit next to ASCII bytes, so on char boundaries.
                out.push_str(&text[copied..start]);
                out.push('…');
                copied = end;
                i = end;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[copied..]);
    out
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~+/=%\\".contains(&b)
}

/// The length of the `|` of an Amazon token's `Xxxx|` prefix at the start
/// of `rest`, in any of the forms a server may echo it in: as it is,
/// percent-encoded (`%7C`, `%7c`, as in a form body) or JSON-escaped
/// (`\u007c`).
fn token_separator(rest: &[u8]) -> Option<usize> {
    if rest.first() == Some(&b'|') {
        return Some(1);
    }
    if rest.len() >= 3 && rest[0] == b'%' && rest[1..3].eq_ignore_ascii_case(b"7c") {
        return Some(3);
    }
    if rest.len() >= 6 && rest[..2] == *b"\\u" && rest[2..6].eq_ignore_ascii_case(b"007c") {
        return Some(6);
    }
    None
}

/// Replaces every occurrence of each of `secrets` in `text` with its
/// [`redact`]ed form, whatever encoding the occurrence is in: as it is,
/// percent-encoded (upper or lower case hex, `+` for a space, as in the
/// form a token request sends), JSON-escaped (`\u00XX`, `\/`), or any mix
/// of these, since a server or proxy may echo a request in any of them.
/// Secrets shorter than 8 bytes are left alone (they would match ordinary
/// words).
pub fn redact_secrets(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        out = redact_one(&out, secret);
    }
    out
}

fn redact_one(text: &str, secret: &str) -> String {
    let t = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut i) = (0, 0);
    while i < t.len() {
        match encoded_match(&t[i..], secret.as_bytes()) {
            // Every encoded unit is ASCII, so both ends are char boundaries.
            Some(len) if text.is_char_boundary(i) && text.is_char_boundary(i + len) => {
                out.push_str(&text[copied..i]);
                out.push_str(&redact(secret));
                i += len;
                copied = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// How many bytes at the start of `t` spell `secret` in some encoding.
fn encoded_match(t: &[u8], secret: &[u8]) -> Option<usize> {
    let mut p = 0;
    for &b in secret {
        p += encoded_unit(&t[p..], b)?;
    }
    Some(p)
}

/// How many bytes at the start of `t` encode the byte `b`.
fn encoded_unit(t: &[u8], b: u8) -> Option<usize> {
    let hex = |h: &[u8]| -> Option<u8> {
        let s = std::str::from_utf8(h).ok()?;
        u8::from_str_radix(s, 16).ok()
    };
    match t.first()? {
        &c if c == b => Some(1),
        b'+' if b == b' ' => Some(1),
        b'%' if t.len() >= 3 && hex(&t[1..3]) == Some(b) => Some(3),
        b'\\' if t.len() >= 6 && t[1] == b'u' && hex(&t[2..6]) == Some(b) => Some(6),
        b'\\' if t.len() >= 2 && t[1] == b && b"/\\\"".contains(&b) => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("Atzr|IwEBIabcdef"), "Atzr|…");
        assert_eq!(redact("Atza|x"), "Atza|…");
        assert_eq!(redact("amzn1.oa2-cs.v1.abcdef"), "…");
        assert_eq!(redact("toolong|abc"), "…");
        assert_eq!(redact(""), "…");
        assert_eq!(redact("|abc"), "…");
    }

    #[test]
    fn secrets_are_redacted_in_every_encoding() {
        let refresh = "Atzr|IwEB+a/b=c";
        let secret = "cs+MARKER/7f=3a";
        for form in [
            "Atzr|IwEB+a/b=c",
            "Atzr%7CIwEB%2Ba%2Fb%3Dc",
            "Atzr%7cIwEB%2ba%2fb%3dc",
            "Atzr\\u007cIwEB+a\\/b\\u003dc",
            "Atzr%7CIwEB+a/b=c",
        ] {
            let text = format!("echo: refresh_token={form}&x=1");
            let got = redact_secrets(&text, &[refresh]);
            assert_eq!(got, "echo: refresh_token=Atzr|…&x=1", "{form}");
        }
        for form in [
            "cs%2BMARKER%2F7f%3D3a",
            "cs+MARKER\\/7f=3a",
            "cs%2bMARKER/7f%3d3a",
        ] {
            let got = redact_secrets(&format!("s={form}"), &[secret]);
            assert_eq!(got, "s=…", "{form}");
        }
        assert_eq!(redact_secrets("short", &["short"]), "short");
        assert_eq!(
            redact_secrets("ünï Atzr|IwEB+a/b=c ✓", &[refresh]),
            "ünï Atzr|… ✓"
        );
    }

    #[test]
    fn scrubbing() {
        assert_eq!(scrub("x=Atzr%7CIwEB%2Babc&y"), "x=Atzr%7C…&y");
        assert_eq!(scrub("x=Atzr%7cIwEB"), "x=Atzr%7c…");
        assert_eq!(scrub(r#"{"t":"Atzr\u007cIwEB"}"#), r#"{"t":"Atzr\u007c…"}"#);
        assert_eq!(
            scrub(r#"{"error":"bad token Atza|IwEB-abc_9= here","x":"amzn1.oa2-cs.v1.deadbeef"}"#),
            r#"{"error":"bad token Atza|… here","x":"amzn1.oa2-cs.…"}"#
        );
        assert_eq!(scrub("a | b, XAtzr|abc"), "a | b, XAtzr|abc");
        assert_eq!(scrub("ünïcode Atzr|abc ✓"), "ünïcode Atzr|… ✓");
        assert_eq!(scrub("plain"), "plain");
    }

    #[test]
    fn env_key_wins_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let key = Keyring::generate_key();
        let k = Keyring::load(Some(&key), &path).unwrap();
        assert_eq!(k.source(), &KeySource::Env);
        assert!(!path.exists());
        let err = Keyring::load(Some("not a key"), &path).unwrap_err();
        assert!(matches!(
            err,
            SecretsError::Malformed { at: KeySource::Env }
        ));
        assert!(err.to_string().contains("AMCCTL_KEY"), "{err}");
        // An empty variable counts as unset.
        let err = Keyring::load(Some(""), &path).unwrap_err();
        assert!(matches!(err, SecretsError::Missing { .. }));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn key_file_is_created_once_with_tight_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/amcctl/key");
        assert!(matches!(
            Keyring::load(None, &path),
            Err(SecretsError::Missing { .. })
        ));
        let (k1, origin) = Keyring::load_or_create(None, &path).unwrap();
        assert_eq!(origin, KeyOrigin::Created);
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let (k2, origin) = Keyring::load_or_create(None, &path).unwrap();
        assert_eq!(origin, KeyOrigin::Existing);
        let token = k1.encrypt("Atzr|secret");
        assert_eq!(k2.decrypt(&token).unwrap().expose_secret(), "Atzr|secret");
        // No temporary files are left behind.
        let names: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn permissive_and_malformed_key_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, Keyring::generate_key()).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = Keyring::load(None, &path).unwrap_err();
        assert!(
            matches!(err, SecretsError::TooPermissive { mode: 0o644, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        // Creation must not paper over it either.
        assert!(Keyring::load_or_create(None, &path).is_err());

        fs::write(&path, "short").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let err = Keyring::load(None, &path).unwrap_err();
        assert!(
            matches!(
                err,
                SecretsError::Malformed {
                    at: KeySource::File(_)
                }
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(&path.display().to_string()));
    }

    #[test]
    fn fingerprints_name_a_key_without_revealing_it() {
        let text = Keyring::generate_key();
        let a = Keyring::from_key(&text, KeySource::Env).unwrap();
        let again = Keyring::from_key(&format!("  {text}\n"), KeySource::Env).unwrap();
        let b = Keyring::from_key(&Keyring::generate_key(), KeySource::Env).unwrap();
        let fp = a.fingerprint();
        assert_eq!(fp.len(), 19, "{fp}");
        assert!(fp.starts_with("fp:"), "{fp}");
        assert!(
            fp[3..]
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(fp, again.fingerprint());
        assert_ne!(fp, b.fingerprint());
        assert!(!text.contains(&fp[3..]));
        // The SHA-256 of the 32 bytes, by hand: 32 zero bytes.
        let zero = Keyring::from_key(&"A".repeat(43), KeySource::Env).unwrap();
        assert_eq!(zero.fingerprint(), "fp:66687aadf862bd77");
        assert!(!format!("{a:?}").contains(fp));

        let of = SecretOf::Login {
            profile: "default".into(),
        };
        let sealed = SealedSecret {
            of: of.clone(),
            token: b.encrypt("x"),
            key_fingerprint: Some(b.fingerprint().to_owned()),
        };
        let err = a.open(&sealed).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(b.fingerprint()) && msg.contains(fp), "{msg}");
        assert!(msg.contains("profile default"), "{msg}");
        assert!(err.hint().unwrap().contains("log in again"));
        assert_eq!(b.open(&sealed).unwrap().expose_secret(), "x");
        // Nothing recorded: the key is tried, as before fingerprints.
        let unrecorded = SealedSecret {
            key_fingerprint: None,
            ..sealed
        };
        assert!(matches!(
            a.open(&unrecorded),
            Err(SecretsError::WrongKey { .. })
        ));
        assert!(b.open(&unrecorded).is_ok());
    }

    #[test]
    fn wrong_key_and_garbage_are_errors_without_secrets() {
        let a = Keyring::from_key(&Keyring::generate_key(), KeySource::Env).unwrap();
        let b = Keyring::from_key(&Keyring::generate_key(), KeySource::Env).unwrap();
        let token = a.encrypt("Atzr|topsecret");
        let err = b.decrypt(&token).unwrap_err();
        assert!(matches!(err, SecretsError::WrongKey { .. }));
        assert!(!err.to_string().contains("topsecret"));
        assert!(!format!("{a:?}").contains(&token));
        assert!(matches!(
            a.decrypt("garbage"),
            Err(SecretsError::WrongKey { .. })
        ));
    }

    fn setup_rotation() -> (tempfile::TempDir, PathBuf, Keyring, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let (old, _) = Keyring::load_or_create(None, &path).unwrap();
        let sample = old.encrypt("secret");
        (dir, path, old, sample)
    }

    #[test]
    fn rotation_happy_path_keeps_the_old_key() {
        let (_dir, path, old, sample) = setup_rotation();
        assert_eq!(
            Keyring::recover_rotation(&path, Some(&sample)).unwrap(),
            Recovery::Nothing
        );
        let new = Keyring::stage_rotation(&path).unwrap();
        assert_eq!(mode(&Keyring::new_key_path(&path)), 0o600);
        assert!(matches!(
            Keyring::stage_rotation(&path),
            Err(SecretsError::RotationPending { .. })
        ));
        let re = new.encrypt(old.decrypt(&sample).unwrap().expose_secret());
        Keyring::promote_rotation(&path).unwrap();
        let loaded = Keyring::load(None, &path).unwrap();
        assert_eq!(loaded.decrypt(&re).unwrap().expose_secret(), "secret");
        let kept = Keyring::load(None, &Keyring::old_key_path(&path)).unwrap();
        assert!(kept.can_decrypt(&sample));
        assert!(!Keyring::new_key_path(&path).exists());
    }

    #[test]
    fn recovery_after_crash_before_commit_removes_stale_key() {
        let (_dir, path, _old, sample) = setup_rotation();
        Keyring::stage_rotation(&path).unwrap();
        // The store never committed: `sample` is still under the old key.
        assert_eq!(
            Keyring::recover_rotation(&path, Some(&sample)).unwrap(),
            Recovery::RemovedStale
        );
        assert!(!Keyring::new_key_path(&path).exists());
        assert!(Keyring::load(None, &path).unwrap().can_decrypt(&sample));
    }

    #[test]
    fn recovery_after_crash_between_commit_and_promote_finishes_it() {
        let (_dir, path, _old, sample) = setup_rotation();
        let new = Keyring::stage_rotation(&path).unwrap();
        let committed = new.encrypt("secret");
        assert_eq!(
            Keyring::recover_rotation(&path, Some(&committed)).unwrap(),
            Recovery::Promoted
        );
        assert!(Keyring::load(None, &path).unwrap().can_decrypt(&committed));
        assert!(
            Keyring::load(None, &Keyring::old_key_path(&path))
                .unwrap()
                .can_decrypt(&sample)
        );
    }

    #[test]
    fn crash_between_the_two_renames_is_finished_on_load() {
        let (_dir, path, _old, _sample) = setup_rotation();
        let new = Keyring::stage_rotation(&path).unwrap();
        let committed = new.encrypt("secret");
        fs::rename(&path, Keyring::old_key_path(&path)).unwrap();
        // Loading must not create a fresh key here: it finishes the promotion.
        let (loaded, origin) = Keyring::load_or_create(None, &path).unwrap();
        assert_eq!(origin, KeyOrigin::Existing);
        assert!(loaded.can_decrypt(&committed));
        assert_eq!(
            Keyring::recover_rotation(&path, Some(&committed)).unwrap(),
            Recovery::Nothing
        );
    }

    #[test]
    fn the_key_lock_is_shared_by_users_and_exclusive_for_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("home/key");
        let a = KeyLock::try_shared(&path).unwrap().expect("shared");
        let b = KeyLock::try_shared(&path).unwrap().expect("shared twice");
        assert!(KeyLock::try_exclusive(&path).unwrap().is_none());
        drop((a, b));
        let x = KeyLock::try_exclusive(&path).unwrap().expect("exclusive");
        assert!(KeyLock::try_shared(&path).unwrap().is_none());
        assert!(matches!(
            KeyLock::shared(&path, Duration::from_millis(30)),
            Err(SecretsError::Busy { .. })
        ));
        drop(x);
        let one = KeyLock::shared(&path, Duration::ZERO).expect("free again");
        let two = KeyLock::shared(&path, Duration::ZERO).expect("again");
        assert!(Arc::ptr_eq(&one, &two), "one lock per process");
        drop((one, two));
        assert!(KeyLock::try_exclusive(&path).unwrap().is_some(), "released");
        assert_eq!(mode(&KeyLock::path(&path)), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
    }

    #[test]
    fn staging_leftovers_are_removed_and_nothing_else() {
        let (dir, path, _old, _sample) = setup_rotation();
        let new = Keyring::new_key_path(&path);
        fs::write(sibling(&new, "tmp-0123456789abcdef"), "x").unwrap();
        fs::write(sibling(&path, "tmp-0123456789abcdef"), "y").unwrap();
        Keyring::stage_rotation(&path).unwrap();
        Keyring::remove_staging_leftovers(&path).unwrap();
        let mut names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["key", "key.new", "key.tmp-0123456789abcdef"]);
    }

    #[test]
    fn recovery_with_a_foreign_sample_is_an_error() {
        let (_dir, path, _old, _sample) = setup_rotation();
        Keyring::stage_rotation(&path).unwrap();
        let stranger = Keyring::from_key(&Keyring::generate_key(), KeySource::Env).unwrap();
        let err = Keyring::recover_rotation(&path, Some(&stranger.encrypt("x"))).unwrap_err();
        assert!(matches!(err, SecretsError::WrongKey { .. }));
        // Nothing was moved or removed.
        assert!(Keyring::new_key_path(&path).exists());
        assert_eq!(
            Keyring::recover_rotation(&path, None).unwrap(),
            Recovery::RemovedStale
        );
    }
}
