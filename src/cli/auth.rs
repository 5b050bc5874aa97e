//! `amcctl auth`: Login-with-Amazon credentials of the acting user.

use clap::Subcommand;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::Ctx;
use super::session::NetArgs;
use crate::amc::{Credentials, NoTokenCache};
use crate::error::{Error, Kind, Result};
use crate::model::Region;
use crate::secrets::redact;
use crate::store::{StoredCredentials, fmt_time};

/// Auth commands.
#[derive(Debug, Subcommand)]
pub enum AuthCmd {
    /// Store your Login-with-Amazon credentials, encrypted, after proving them with one token refresh
    Login {
        /// LwA client ID [default: AMCCTL_CLIENT_ID, else asked]
        #[arg(long, value_name = "ID")]
        client_id: Option<String>,
        /// Region of the token endpoint [default: config `region`, else na]
        #[arg(long, value_enum)]
        region: Option<Region>,
        /// Read the client secret from the first line of stdin
        #[arg(long)]
        client_secret_stdin: bool,
        /// Read the refresh token from stdin (the next line, after the client secret if both are read)
        #[arg(long)]
        refresh_token_stdin: bool,
        #[command(flatten)]
        net: NetArgs,
    },
    /// Show who is logged in, with secrets redacted
    Status,
    /// Forget your stored credentials and cached token
    Logout,
}

/// What `auth status` shows; never a secret in clear.
#[derive(Debug, Serialize)]
struct Status {
    user: String,
    client_id: String,
    region: Region,
    refresh_token: String,
    access_token_expires_at: Option<String>,
    updated_at: String,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

pub(super) fn run(ctx: &mut Ctx, cmd: AuthCmd) -> Result<()> {
    match cmd {
        AuthCmd::Login {
            client_id,
            region,
            client_secret_stdin,
            refresh_token_stdin,
            net,
        } => {
            let user = ctx.user()?;
            let client_id = match client_id.or_else(|| env("AMCCTL_CLIENT_ID")) {
                Some(c) => c,
                None => ctx.prompt().text(
                    "LwA client ID",
                    None,
                    &|s: &str| {
                        if s.trim().is_empty() {
                            Err("required".into())
                        } else {
                            Ok(())
                        }
                    },
                    "--client-id",
                )?,
            };
            let client_id = client_id.trim().to_owned();
            if client_id.is_empty() {
                return Err(Error::usage("invalid --client-id: must not be empty"));
            }
            if client_id.len() > 256
                || client_id
                    .chars()
                    .any(|c| c.is_control() || c.is_whitespace())
            {
                return Err(Error::usage(
                    "invalid --client-id: no spaces or control characters, at most 256",
                ));
            }
            let mut stdin = std::io::stdin().lock();
            let mut from_stdin = |what: &str| read_secret_line(&mut stdin, what);
            let client_secret = if client_secret_stdin {
                from_stdin("client secret")?
            } else if let Some(s) = env("AMCCTL_CLIENT_SECRET") {
                SecretString::from(s)
            } else {
                ctx.prompt()
                    .secret("LwA client secret", "--client-secret-stdin")?
            };
            let refresh_token = if refresh_token_stdin {
                from_stdin("refresh token")?
            } else if let Some(s) = env("AMCCTL_REFRESH_TOKEN") {
                SecretString::from(s)
            } else {
                ctx.prompt()
                    .secret("Refresh token (Atzr|…)", "--refresh-token-stdin")?
            };
            let region = region.or(ctx.config.region).unwrap_or(Region::Na);
            let credentials = Credentials {
                client_id: client_id.clone(),
                client_secret,
                refresh_token,
                region,
            };
            // Prove the credentials before saving anything.
            let client = ctx.amc_client(&net)?;
            let session = client.session(credentials.clone(), std::sync::Arc::new(NoTokenCache));
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
            let token = runtime.block_on(session.access_token())?;
            let keyring = ctx.keyring_to_store(user.id)?;
            let stored = StoredCredentials {
                client_id,
                client_secret_enc: keyring.encrypt(credentials.client_secret.expose_secret()),
                refresh_token_enc: keyring.encrypt(credentials.refresh_token.expose_secret()),
                region,
                access_token_enc: Some(keyring.encrypt(token.access_token.expose_secret())),
                access_token_expires: Some(fmt_time(&token.expires_at)),
                updated_at: String::new(),
            };
            ctx.store()?.save_credentials(user.id, &stored)?;
            ctx.out.info(format!(
                "Logged in as {} with client {} ({region}); access token valid until {}",
                user.name,
                stored.client_id,
                fmt_time(&token.expires_at)
            ));
            Ok(())
        }
        AuthCmd::Status => {
            let user = ctx.user()?;
            let not_logged_in = || {
                Error::new(Kind::Auth, format!("{} is not logged in", user.name))
                    .with_hint("run `amcctl auth login`")
            };
            if ctx.store()?.credentials(user.id)?.is_none() {
                return Err(not_logged_in());
            }
            // The key first, then the ciphertext: read under the key lock,
            // it cannot be from before a rotation that replaced the key.
            let keyring = ctx.keyring(false)?;
            let c = ctx
                .store()?
                .credentials(user.id)?
                .ok_or_else(not_logged_in)?;
            let refresh = keyring.decrypt(&c.refresh_token_enc)?;
            let status = Status {
                user: user.name,
                client_id: c.client_id,
                region: c.region,
                refresh_token: redact(refresh.expose_secret()),
                access_token_expires_at: c.access_token_expires,
                updated_at: c.updated_at,
            };
            ctx.out.one(&status)
        }
        AuthCmd::Logout => {
            let user = ctx.user()?;
            if ctx.store()?.delete_credentials(user.id)? {
                ctx.out.info(format!("Logged out {}", user.name));
                Ok(())
            } else {
                Err(Error::not_found(format!("{} is not logged in", user.name)))
            }
        }
    }
}

/// Longest secret read from stdin or typed at the prompt: LwA's secrets and
/// refresh tokens are well under 1 KiB, and an endless input (`< /dev/zero`)
/// must end in a usage error, not in memory exhaustion.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// Reads one line holding a secret from `input`, at most
/// [`MAX_SECRET_BYTES`]; longer, empty, missing or not UTF-8 is exit 2.
fn read_secret_line(input: &mut impl std::io::BufRead, what: &str) -> Result<SecretString> {
    use std::io::{BufRead, Read};
    let mut buf = Vec::new();
    let read = input
        .by_ref()
        .take(MAX_SECRET_BYTES as u64 + 1)
        .read_until(b'\n', &mut buf);
    let line = match read {
        Ok(_) if buf.len() > MAX_SECRET_BYTES => {
            return Err(Error::usage(format!(
                "the {what} on stdin is longer than {} KiB",
                MAX_SECRET_BYTES / 1024
            )));
        }
        Ok(_) => String::from_utf8(buf).ok(),
        Err(_) => None,
    };
    match line {
        Some(l) if !l.trim().is_empty() => Ok(SecretString::from(l.trim().to_owned())),
        _ => Err(Error::usage(format!("expected the {what} on stdin"))),
    }
}
