//! Key rotation and the settling of an interrupted one (the protocol is
//! described in [`crate::secrets`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;

use crate::domain::{AuditNote, RowId, SealedSecret};
use crate::error::Result;
use crate::secrets::{KEY_LOCK_PATIENCE, KeyLock, Keyring, SecretsError};
use crate::store::{Rekey, Store};

/// What a finished rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// Stored secrets re-encrypted with the new key.
    pub reencrypted: usize,
    /// Where the previous key is kept.
    pub old_key: PathBuf,
}

/// Makes a new key and re-encrypts the secrets of `user` (the acting user:
/// every profile's login, the settings of the instances they own) with it
/// in one transaction, keeping the previous key as `key.old`; and the
/// secrets of users who share this home's key (recorded under it, or under
/// no key yet and opened by it), so that none is left under a key the next
/// rotation would discard. Other users' secrets are under their own keys
/// and stay as they are. A secret of the
/// user's recorded under another key than the key file's fails the
/// rotation, naming both keys, before anything changes. Holds the
/// exclusive key lock throughout: it waits until no other amcctl uses the
/// key, and keeps them waiting until the new key is in place. The audit
/// entry `note` makes of the two keys is written with the re-encryption.
pub fn rotate(
    key_path: &Path,
    store: &mut Store,
    user: RowId,
    note: impl FnOnce(&Rekey<'_>) -> AuditNote,
) -> Result<Rotated> {
    let _lock = KeyLock::exclusive(key_path, KEY_LOCK_PATIENCE)?;
    if Keyring::new_key_path(key_path).exists() {
        // A rotation died between the caller's first look and the lock.
        let samples = store.key_samples(user, None)?;
        Keyring::recover_rotation(key_path, recovery_sample(key_path, &samples))?;
    }
    Keyring::remove_staging_leftovers(key_path)?;
    let old = Keyring::load(None, key_path)?;
    let new = Keyring::stage_rotation(key_path)?;
    let rekey = Rekey {
        user,
        from: old.fingerprint(),
        to: new.fingerprint(),
    };
    // The entry is written with the re-encryption, or not at all.
    let result = store
        .audited(note(&rekey))
        .reencrypt_secrets(&rekey, &|sealed: &SealedSecret| {
            let plain = old.open(sealed)?;
            Ok(new.encrypt(plain.expose_secret()))
        });
    let reencrypted = match result {
        Ok(n) => n,
        Err(e) => {
            // Nothing was committed: the staged key is stale. (The sample
            // tells, should a commit have happened after all.)
            let samples = store.key_samples(user, None)?;
            Keyring::recover_rotation(key_path, recovery_sample(key_path, &samples))?;
            return Err(e);
        }
    };
    Keyring::promote_rotation(key_path)?;
    Ok(Rotated {
        reencrypted,
        old_key: Keyring::old_key_path(key_path),
    })
}

/// The one of `samples` (the acting user's secrets, one per key, from
/// [`Store::key_samples`]) that settles an interrupted rotation of the key
/// at `key_path`: one recorded under that key or the staged `key.new`,
/// else one recorded under no key. A rotation re-encrypted all of the
/// user's secrets or none, so either opens under exactly the key file that
/// wins. A secret under yet another key (the user's login from another
/// host, say) tells nothing, so `None` when there is no other.
pub fn recovery_sample<'a>(key_path: &Path, samples: &'a [SealedSecret]) -> Option<&'a str> {
    let known = [
        Keyring::file_fingerprint(key_path),
        Keyring::file_fingerprint(&Keyring::new_key_path(key_path)),
    ];
    let recorded_known = |s: &&SealedSecret| {
        s.key_fingerprint
            .as_deref()
            .is_some_and(|fp| known.iter().flatten().any(|k| k == fp))
    };
    samples
        .iter()
        .find(recorded_known)
        .or_else(|| samples.iter().find(|s| s.key_fingerprint.is_none()))
        .map(|s| s.token.as_str())
}

/// Settles a rotation that was interrupted (its `key.new` is left), under
/// the exclusive key lock: a rotation still running holds that lock, so its
/// staged key is never mistaken for a stale one. Waits while a rotation
/// runs; returns as soon as no `key.new` is left. `samples` gives the
/// acting user's secrets, one per key ([`Store::key_samples`]), of which
/// [`recovery_sample`] picks the one to decide by; it is only called when
/// there is a rotation to settle, so that a command that needs no store
/// does not open one.
pub fn settle_interrupted(
    key_path: &Path,
    mut samples: impl FnMut() -> Result<Vec<SealedSecret>>,
) -> Result<()> {
    let staged = Keyring::new_key_path(key_path);
    let started = Instant::now();
    while staged.exists() {
        if let Some(_lock) = KeyLock::try_exclusive(key_path)? {
            if staged.exists() {
                let samples = samples()?;
                let sample = recovery_sample(key_path, &samples);
                let outcome = Keyring::recover_rotation(key_path, sample)?;
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
