//! Key rotation and the settling of an interrupted one (the protocol is
//! described in [`crate::secrets`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use crate::error::Result;
use crate::secrets::{KEY_LOCK_PATIENCE, KeyLock, Keyring, SecretsError};
use crate::store::Store;

/// What a finished rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Stored secrets re-encrypted with the new key.
    pub reencrypted: usize,
    /// Where the previous key is kept.
    pub old_key: PathBuf,
}

/// Makes a new key and re-encrypts every stored secret with it in one
/// transaction, keeping the previous key as `key.old`. Holds the exclusive
/// key lock throughout: it waits until no other amcctl uses the key, and
/// keeps them waiting until the new key is in place.
pub fn rotate(key_path: &Path, store: &mut Store) -> Result<Rotated> {
    let _lock = KeyLock::exclusive(key_path, KEY_LOCK_PATIENCE)?;
    if Keyring::new_key_path(key_path).exists() {
        // A rotation died between the caller's first look and the lock.
        Keyring::recover_rotation(key_path, store.sample_secret()?.as_deref())?;
    }
    Keyring::remove_staging_leftovers(key_path)?;
    let old = Keyring::load(None, key_path)?;
    let new = Keyring::stage_rotation(key_path)?;
    let result = store.reencrypt_secrets(&|token: &str| {
        let plain = old.decrypt(token)?;
        Ok(new.encrypt(plain.expose_secret()))
    });
    let reencrypted = match result {
        Ok(n) => n,
        Err(e) => {
            // Nothing was committed: the staged key is stale.
            Keyring::recover_rotation(key_path, store.sample_secret()?.as_deref())?;
            return Err(e);
        }
    };
    Keyring::promote_rotation(key_path)?;
    Ok(Rotated {
        reencrypted,
        old_key: Keyring::old_key_path(key_path),
    })
}

/// Settles a rotation that was interrupted (its `key.new` is left), under
/// the exclusive key lock: a rotation still running holds that lock, so its
/// staged key is never mistaken for a stale one. Waits while a rotation
/// runs; returns as soon as no `key.new` is left. `sample` gives one stored
/// secret; it is only called when there is a rotation to settle, so that a
/// command that needs no store does not open one.
pub fn settle_interrupted(
    key_path: &Path,
    mut sample: impl FnMut() -> Result<Option<String>>,
) -> Result<()> {
    let staged = Keyring::new_key_path(key_path);
    let started = Instant::now();
    while staged.exists() {
        if let Some(_lock) = KeyLock::try_exclusive(key_path)? {
            if staged.exists() {
                let outcome = Keyring::recover_rotation(key_path, sample()?.as_deref())?;
                tracing::info!("settled an interrupted key rotation: {outcome:?}");
            }
            break;
        }
        if started.elapsed() >= KEY_LOCK_PATIENCE {
            return Err(SecretsError::Busy {
                path: key_path.to_path_buf(),
            }
            .into());
        }
        std::thread::sleep(Duration::from_millis(fastrand::u64(5..25)));
    }
    // A rotation killed while writing its new key leaves a temporary file
    // holding that (never used) key. Removed when no rotation is running; if
    // one is, the next command does it.
    if !Keyring::staging_leftovers(key_path)?.is_empty()
        && let Some(_lock) = KeyLock::try_exclusive(key_path)?
    {
        Keyring::remove_staging_leftovers(key_path)?;
    }
    Ok(())
}
