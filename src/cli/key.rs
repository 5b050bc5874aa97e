//! `amcctl key`: the Fernet key that encrypts stored secrets.

use clap::Subcommand;

use super::Ctx;
use crate::domain::{AuditNote, AuditObject};
use crate::error::{Error, Result};
use crate::secrets::KEY_ENV;

/// Key commands.
#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Print where the key file is
    Path,
    /// Make a new key and re-encrypt your stored secrets with it (one transaction); the old key is kept as key.old
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
            if !ctx.confirm(yes, "Re-encrypt your stored secrets with a new key?")? {
                ctx.out.info("Nothing changed.");
                return Ok(());
            }
            let key_path = ctx.paths.key.clone();
            // Only the acting user's secrets: in a team store every user's
            // are under a key of their own.
            let user = ctx.user()?;
            let note = |rekey: &crate::store::Rekey<'_>| {
                // Fingerprints name the keys without revealing them.
                AuditNote::other(
                    &user.name,
                    "key rotate",
                    AuditObject::Store,
                    None,
                    None,
                    format!("secrets re-encrypted: key {} -> {}", rekey.from, rekey.to),
                )
            };
            let rotated = crate::ops::rotate::rotate(&key_path, ctx.store()?, user.id, note)?;
            ctx.out.info(format!(
                "Rotated the key: {} secret(s) re-encrypted; the previous key is kept as {}",
                rotated.reencrypted,
                rotated.old_key.display()
            ));
            Ok(())
        }
    }
}
