//! `amcctl key`: the Fernet key that encrypts stored secrets.

use clap::Subcommand;
use secrecy::ExposeSecret;

use super::Ctx;
use crate::error::{Error, Result};
use crate::secrets::{KEY_ENV, KEY_LOCK_PATIENCE, KeyLock, Keyring};

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Print where the key file is
    Path,
    /// Make a new key and re-encrypt every stored secret with it (one transaction); the old key is kept as key.old
    Rotate {
        /// Do not ask for confirmation
        #[arg(long, short)]
        yes: bool,
    },
}

pub(super) fn run(ctx: &mut Ctx, cmd: KeyCmd) -> Result<()> {
    match cmd {
        KeyCmd::Path => {
            if ctx.env.non_blank(KEY_ENV).is_some() {
                ctx.out
                    .warn(format!("{KEY_ENV} is set: it is used instead of this file"));
            }
            let path = ctx.paths.key.display().to_string();
            ctx.out.value("path", &path)
        }
        KeyCmd::Rotate { yes } => {
            if ctx.env.non_blank(KEY_ENV).is_some() {
                return Err(Error::usage(format!(
                    "the key comes from {KEY_ENV}: rotate it where it is kept, not here"
                )));
            }
            // Loading settles any earlier interrupted rotation first; the
            // key (and its shared lock) is let go before asking.
            drop(ctx.keyring(false)?);
            if !ctx.confirm(yes, "Re-encrypt every stored secret with a new key?")? {
                ctx.out.info("Nothing changed.");
                return Ok(());
            }
            let key_path = ctx.paths.key.clone();
            // Exclusive: waits until no other amcctl uses the key, and keeps
            // them waiting until the new key is in place.
            let _lock = KeyLock::exclusive(&key_path, KEY_LOCK_PATIENCE)?;
            if Keyring::new_key_path(&key_path).exists() {
                // A rotation died between our first look and the lock.
                let sample = ctx.store()?.sample_secret()?;
                Keyring::recover_rotation(&key_path, sample.as_deref())?;
            }
            Keyring::remove_staging_leftovers(&key_path)?;
            let old = Keyring::load(None, &key_path)?;
            let new = Keyring::stage_rotation(&key_path)?;
            let result = ctx.store()?.reencrypt_secrets(&|token: &str| {
                let plain = old.decrypt(token)?;
                Ok(new.encrypt(plain.expose_secret()))
            });
            let count = match result {
                Ok(n) => n,
                Err(e) => {
                    // Nothing was committed: the staged key is stale.
                    let sample = ctx.store()?.sample_secret()?;
                    Keyring::recover_rotation(&key_path, sample.as_deref())?;
                    return Err(e);
                }
            };
            Keyring::promote_rotation(&key_path)?;
            ctx.out.info(format!(
                "Rotated the key: {count} secret(s) re-encrypted; the previous key is kept as {}",
                Keyring::old_key_path(&key_path).display()
            ));
            Ok(())
        }
    }
}
