//! `amcctl auth`: Login-with-Amazon credentials of the acting user, one
//! grant per profile.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use comfy_table::Cell;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use super::Ctx;
use super::connect::NetArgs;
use crate::amc::{CachedToken, Credentials, NoTokenCache};
use crate::config::parse_duration;
use crate::domain::{AuditNote, AuditObject, Region};
use crate::domain::{fmt_time, rfc3339, validate_profile};
use crate::env;
use crate::error::{Error, Kind, Result};
use crate::ops::login::{self, BrowserSettings, Event};
use crate::ops::weblogin::Callback;
use crate::output::{Output, Tabular, csv_cells, csv_header};
use crate::secrets::redact;

/// Auth commands. Each takes the global `--profile NAME` (or
/// `AMCCTL_PROFILE`): the login profile it acts on.
#[derive(Debug, Subcommand)]
pub enum AuthCmd {
    /// Log in: in the browser with --web (or --no-browser to paste the code back),
    /// else with a pasted refresh token; stored encrypted after one token refresh
    Login {
        /// LwA client ID [default: AMCCTL_CLIENT_ID, else asked]
        #[arg(long, value_name = "ID")]
        client_id: Option<String>,
        /// Region of the token endpoint and authorize page [default: config `region`, else na]
        #[arg(long, value_enum)]
        region: Option<Region>,
        /// Read the client secret from the first line of stdin
        #[arg(long)]
        client_secret_stdin: bool,
        /// Read the refresh token from stdin (the next line, after the client secret if both are read)
        #[arg(long, conflicts_with_all = ["web", "no_browser"])]
        refresh_token_stdin: bool,
        /// Log in in the browser (authorization code with PKCE) instead of pasting a refresh token
        #[arg(long)]
        web: bool,
        /// Port of the loopback return URL http://127.0.0.1:PORT/callback (0: any free port) [default: 8484]
        #[arg(long, value_name = "PORT", conflicts_with = "redirect_uri")]
        port: Option<u16>,
        /// The exact return URL registered in the security profile (http://127.0.0.1:PORT/PATH or localhost)
        #[arg(long, value_name = "URL")]
        redirect_uri: Option<String>,
        /// Print the login URL instead of opening a browser, then read the return URL or code pasted back
        #[arg(long)]
        no_browser: bool,
        /// How long to wait for the browser's return
        #[arg(long, value_name = "DUR", value_parser = parse_duration, default_value = "5m")]
        wait: Duration,
        #[command(flatten)]
        net: NetArgs,
    },
    /// List your login profiles (never a secret)
    List,
    /// Make a profile your default
    Switch {
        /// Profile name
        name: String,
    },
    /// Print a valid access token (refreshed if needed) for other tools; only the token on stdout
    Token {
        #[command(flatten)]
        net: NetArgs,
    },
    /// Show who is logged in, with secrets redacted
    Status,
    /// Forget a profile's stored credentials and cached token
    Logout,
}

/// What `auth status` shows; never a secret in clear.
#[derive(Debug, Serialize)]
struct Status {
    user: String,
    profile: String,
    client_id: String,
    region: Region,
    refresh_token: String,
    #[serde(serialize_with = "rfc3339::option")]
    access_token_expires_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "rfc3339::serialize")]
    updated_at: DateTime<Utc>,
}

/// One line of `auth list`; never a secret.
#[derive(Debug, Serialize)]
struct ProfileRow {
    profile: String,
    client_id: String,
    region: Region,
    default: bool,
    #[serde(serialize_with = "rfc3339::option")]
    access_token_expires_at: Option<DateTime<Utc>>,
}

impl Tabular for ProfileRow {
    fn columns() -> Vec<&'static str> {
        vec!["PROFILE", "CLIENT ID", "REGION", "DEFAULT", "TOKEN EXPIRES"]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(&self.profile),
            Cell::new(&self.client_id),
            Cell::new(self.region.as_str()),
            Cell::new(if self.default { "*" } else { "" }),
            Cell::new(
                self.access_token_expires_at
                    .as_ref()
                    .map_or("-".into(), fmt_time),
            ),
        ]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<ProfileCsv>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(&ProfileCsv {
            profile: &self.profile,
            client_id: &self.client_id,
            region: Some(self.region),
            default: self.default,
            access_token_expires_at: self.access_token_expires_at.as_ref().map(fmt_time),
        })
    }
}

/// The CSV record of a profile: the row as JSON has it, the region an
/// option so that an empty view can name the columns.
#[derive(Default, Serialize)]
struct ProfileCsv<'a> {
    profile: &'a str,
    client_id: &'a str,
    region: Option<Region>,
    default: bool,
    access_token_expires_at: Option<String>,
}

/// The client ID: the flag, else `AMCCTL_CLIENT_ID`, else asked.
fn client_id(ctx: &mut Ctx, flag: Option<String>) -> Result<String> {
    let client_id = match flag.or_else(|| ctx.env.non_blank(env::CLIENT_ID).map(str::to_owned)) {
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
    Ok(client_id)
}

pub(super) fn run(ctx: &mut Ctx, cmd: AuthCmd) -> Result<()> {
    match cmd {
        AuthCmd::Login {
            client_id: client_id_flag,
            region,
            client_secret_stdin,
            refresh_token_stdin,
            web,
            port,
            redirect_uri,
            no_browser,
            wait,
            net,
        } => {
            let web = web || no_browser;
            if !web && (port.is_some() || redirect_uri.is_some()) {
                return Err(Error::usage(
                    "--port and --redirect-uri belong to the browser login: add --web",
                ));
            }
            let user = ctx.user()?;
            let profile = ctx.profile_of(&user)?;
            let client_id = client_id(ctx, client_id_flag)?;
            let mut stdin = std::io::stdin().lock();
            let client_secret = if client_secret_stdin {
                read_secret_line(&mut stdin, "client secret")?
            } else if let Some(s) = ctx.env.non_blank(env::CLIENT_SECRET) {
                SecretString::from(s.to_owned())
            } else {
                ctx.prompt()
                    .secret("LwA client secret", "--client-secret-stdin")?
            };
            let region = region.or(ctx.config.region).unwrap_or(Region::Na);
            let client = ctx.amc_client(&net)?;
            let (refresh_token, token) = if web {
                let settings = BrowserSettings {
                    callback: Callback::from_flags(port, redirect_uri.as_deref())?,
                    wait,
                    no_browser,
                };
                drop(stdin);
                let credentials = Credentials {
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    refresh_token: SecretString::from(String::new()),
                    region,
                };
                let session = client.session(credentials, Arc::new(NoTokenCache));
                web_login(ctx, &session, region, settings)?
            } else {
                let refresh_token = if refresh_token_stdin {
                    read_secret_line(&mut stdin, "refresh token")?
                } else if let Some(s) = ctx.env.non_blank(env::REFRESH_TOKEN) {
                    SecretString::from(s.to_owned())
                } else {
                    ctx.prompt()
                        .secret("Refresh token (Atzr|…)", "--refresh-token-stdin")?
                };
                let credentials = Credentials {
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    refresh_token: refresh_token.clone(),
                    region,
                };
                // Prove the credentials before saving anything.
                let session = client.session(credentials, Arc::new(NoTokenCache));
                let token = login::access_token(&session)?;
                (refresh_token, token)
            };
            let keyring = ctx.keyring_to_store(user.id, &profile)?;
            let proved = login::Proved {
                profile: profile.clone(),
                client_id,
                client_secret,
                refresh_token,
                region,
                token,
            };
            let note = AuditNote::other(
                &user.name,
                "auth login",
                AuditObject::Login,
                None,
                Some(profile.clone()),
                format!(
                    "profile {profile}, client {}, region {region}",
                    short_client_id(&proved.client_id)
                ),
            );
            let stored = login::save(ctx.store()?.audited(note), &keyring, user.id, proved)?;
            ctx.out.info(format!(
                "Logged in as {} (profile {profile}) with client {} ({region}); access token valid until {}",
                user.name,
                stored.client_id,
                stored.access_token_expires.as_ref().map(fmt_time).unwrap_or_default()
            ));
            Ok(())
        }
        AuthCmd::List => {
            let user = ctx.user()?;
            let default = ctx.store()?.default_profile(user.id)?;
            let rows: Vec<ProfileRow> = ctx
                .store()?
                .profiles(user.id)?
                .into_iter()
                .map(|c| ProfileRow {
                    default: c.profile == default,
                    profile: c.profile,
                    client_id: c.client_id,
                    region: c.region,
                    access_token_expires_at: c.access_token_expires,
                })
                .collect();
            if rows.is_empty() {
                ctx.out.info(format!(
                    "{} has no login profiles yet: run `amcctl auth login`",
                    user.name
                ));
            }
            ctx.out.list(&rows)
        }
        AuthCmd::Switch { name } => {
            let user = ctx.user()?;
            validate_profile(&name)?;
            if ctx.store()?.credentials(user.id, &name)?.is_none() {
                return Err(ctx.no_profile(&user, &name)?);
            }
            ctx.store()?.set_default_profile(user.id, &name)?;
            ctx.out
                .info(format!("{}'s default profile is now {name}", user.name));
            Ok(())
        }
        AuthCmd::Token { net } => {
            let user = ctx.user()?;
            let profile = ctx.profile_of(&user)?;
            let client = ctx.amc_client(&net)?;
            let session = ctx.session(&client, &user, &profile, true)?;
            let token = login::access_token(&session)?;
            if ctx.out.format.is_machine() {
                ctx.out.one(&serde_json::json!({
                    "profile": profile,
                    "access_token": token.access_token.expose_secret(),
                    "expires_at": fmt_time(&token.expires_at),
                }))
            } else {
                ctx.out
                    .print(format!("{}\n", token.access_token.expose_secret()))
            }
        }
        AuthCmd::Status => {
            let user = ctx.user()?;
            let profile = ctx.profile_of(&user)?;
            if ctx.store()?.credentials(user.id, &profile)?.is_none() {
                return Err(not_logged_in(ctx, &user, &profile)?);
            }
            // The key first, then the ciphertext: read under the key lock,
            // it cannot be from before a rotation that replaced the key.
            let keyring = ctx.keyring(false)?;
            let Some(c) = ctx.store()?.credentials(user.id, &profile)? else {
                return Err(not_logged_in(ctx, &user, &profile)?);
            };
            keyring.check_recorded(c.key_fingerprint.as_deref(), &c.secret_of())?;
            let refresh = keyring.decrypt(&c.refresh_token_enc)?;
            let status = Status {
                user: user.name,
                profile: c.profile,
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
            let profile = ctx.profile_of(&user)?;
            // Only a login that is there is deleted, and audited: the
            // deletion of nothing would commit the entry all the same.
            let has = ctx.store()?.credentials(user.id, &profile)?.is_some();
            let note = AuditNote::other(
                &user.name,
                "auth logout",
                AuditObject::Login,
                None,
                Some(profile.clone()),
                format!("profile {profile} forgotten"),
            );
            if has
                && ctx
                    .store()?
                    .audited(note)
                    .delete_credentials(user.id, &profile)?
            {
                ctx.out
                    .info(format!("Logged out {} (profile {profile})", user.name));
                Ok(())
            } else if ctx.store()?.profiles(user.id)?.is_empty() {
                Err(Error::not_found(format!("{} is not logged in", user.name)))
            } else {
                Err(ctx.no_profile(&user, &profile)?)
            }
        }
    }
}

/// A client ID as the audit trail shows it: not a secret, but long; its
/// first 40 characters tell it apart.
fn short_client_id(id: &str) -> String {
    match id.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &id[..i]),
        None => id.to_owned(),
    }
}

/// `auth status` without a login: exit 7 when the user has none at all,
/// else exit 3 naming the profiles there are.
fn not_logged_in(ctx: &mut Ctx, user: &crate::domain::User, profile: &str) -> Result<Error> {
    if ctx.store()?.profiles(user.id)?.is_empty() {
        return Ok(
            Error::new(Kind::Auth, format!("{} is not logged in", user.name))
                .with_hint("run `amcctl auth login`"),
        );
    }
    ctx.no_profile(user, profile)
}

/// Shows the browser login's events on stderr.
fn show_login(out: &Output, event: Event<'_>) {
    match event {
        Event::Visit { url, redirect_uri } => out.tell(format!(
            "Open this URL in a browser, sign in and allow access:\n\n  {url}\n\n\
             The browser then goes to {redirect_uri} (the page may not load on this host): copy that address, or just its code, and paste it here."
        )),
        Event::Opened { url, wait } => out.info(format!(
            "Opened the browser to log in; waiting up to {} for it (Ctrl-C to stop). If it did not open, visit:\n  {url}",
            humantime::format_duration(wait)
        )),
        Event::CannotOpen { url, why } => out.warn(format!(
            "cannot open a browser ({why}); visit this URL to log in:\n  {url}"
        )),
    }
}

/// The browser login; with `--no-browser` the return is pasted back at the
/// prompt, or read from stdin when there is none.
fn web_login(
    ctx: &mut Ctx,
    session: &crate::amc::Session,
    region: Region,
    settings: BrowserSettings,
) -> Result<(SecretString, CachedToken)> {
    let out = ctx.out.clone();
    let env = ctx.env.clone();
    let paste = || {
        if ctx.interactive {
            ctx.prompt().secret("Return URL or code", "--no-browser")
        } else {
            read_secret_line(&mut std::io::stdin().lock(), "return URL or code")
        }
    };
    login::browser(
        session,
        &env,
        region,
        settings,
        |e| show_login(&out, e),
        paste,
    )
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
