//! `amcctl instance config`: an instance's encrypted settings.
//!
//! The settings are one JSON object sealed in one Fernet token (see
//! [`crate::settings`]); every change opens it, edits the object and seals
//! it again in one store transaction. Only the owner of the instance (or an
//! administrator) gets this far: the settings are the owner's secrets, so
//! reading them needs what changing them does ([`Action::Edit`]); anyone
//! else is exit 4. A value
//! reaches stdout only from `get` and `list --reveal`, and never a log or
//! an error message.

use std::io::Read;
use std::sync::Arc;

use clap::{Args, Subcommand};
use comfy_table::Cell;
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;

use super::Ctx;
use super::connect::check_own_key;
use crate::domain::printable;
use crate::domain::{Action, AuditNote, Instance, SealedSecret};
use crate::error::{Error, Result};
use crate::output::{Format, Tabular, csv_cells, csv_header};
use crate::secrets::{Keyring, redact};
use crate::settings::{self, MAX_VALUE_BYTES, Settings, SettingsError};

/// Settings commands.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Set a setting (a secret: asked without echo, or --value-stdin; never on the command line)
    Set(SetArgs),
    /// Print one setting's value
    Get {
        /// UUID, AMC instance ID or exact name
        instance: String,
        /// The setting's name
        key: String,
    },
    /// Remove a setting
    Unset {
        /// UUID, AMC instance ID or exact name
        instance: String,
        /// The setting's name
        key: String,
    },
    /// List the settings, values cut unless --reveal
    #[command(visible_alias = "ls")]
    List {
        /// UUID, AMC instance ID or exact name
        instance: String,
        /// Show the values in full
        #[arg(long)]
        reveal: bool,
    },
}

/// Arguments of `instance config set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// UUID, AMC instance ID or exact name
    instance: String,
    /// The setting's name (at most 128 bytes, no control characters)
    key: String,
    /// The value, for a value that is not secret [default: asked without echo]
    #[arg(conflicts_with = "value_stdin")]
    value: Option<String>,
    /// The value is a secret: ask for it without echo (or read it with --value-stdin)
    #[arg(long)]
    secret: bool,
    /// Read the value from stdin (all of it, at most 64 KiB, one final line break dropped)
    #[arg(long)]
    value_stdin: bool,
}

/// One row of `instance config list` (and the result of `get`).
#[derive(Debug, Default, Serialize)]
struct Setting {
    key: String,
    value: String,
}

impl Tabular for Setting {
    fn columns() -> Vec<&'static str> {
        vec!["KEY", "VALUE"]
    }
    fn row(&self) -> Vec<Cell> {
        vec![Cell::new(&self.key), Cell::new(&self.value)]
    }
    fn csv_columns() -> Vec<String> {
        csv_header::<Self>()
    }
    fn csv_row(&self) -> Vec<String> {
        csv_cells(self)
    }
}

/// What a change prints for scripts: never a value.
#[derive(Debug, Serialize)]
struct Changed<'a> {
    instance_id: &'a str,
    key: &'a str,
    action: &'static str,
    settings: usize,
}

pub(super) fn run(ctx: &mut Ctx, cmd: ConfigCmd) -> Result<()> {
    match cmd {
        ConfigCmd::Set(a) => set(ctx, a),
        ConfigCmd::Get { instance, key } => get(ctx, &instance, &key),
        ConfigCmd::Unset { instance, key } => unset(ctx, &instance, &key),
        ConfigCmd::List { instance, reveal } => list(ctx, &instance, reveal),
    }
}

fn check_key(key: &str) -> Result<()> {
    settings::check_key(key).map_err(Error::usage)
}

fn unknown_key(inst: &Instance, key: &str) -> Error {
    Error::not_found(format!(
        "instance {} has no setting {:?}",
        inst.instance_id, key
    ))
    .with_hint(format!(
        "list its settings with `amcctl instance config list {}`",
        inst.instance_id
    ))
}

/// Opens the sealed settings of `inst`: exit 8 naming both keys when they
/// are recorded under another key than `keyring`, or when they do not open.
fn open(keyring: &Keyring, inst: &Instance, sealed: &SealedSecret) -> Result<Settings> {
    keyring.check_recorded(sealed.key_fingerprint.as_deref(), &sealed.of)?;
    settings::decrypt(keyring, &sealed.token).map_err(|e| match e {
        SettingsError::Key(k) => Error::from(k),
        SettingsError::NotAnObject => Error::store(format!(
            "the settings of instance {} decrypt, but not to a JSON object; `instance config unset` cannot repair them, fix the column by hand",
            inst.instance_id
        )),
    })
}

/// The key that seals the settings of `inst`: a new key when its owner
/// holds no secret in the store yet, else the key their stored secrets
/// open with (one key per user; other users' keys do not matter).
fn keyring_to_write(ctx: &mut Ctx, inst: &Instance) -> Result<Arc<Keyring>> {
    if ctx.store()?.key_samples(inst.user_id, None)?.is_empty() {
        return ctx.keyring(true);
    }
    let hint = "your other secrets in this store are encrypted with your key: set AMCCTL_KEY to it or restore the key file (`amcctl key path`)";
    let keyring = ctx.keyring(false).map_err(|e| e.with_hint(hint))?;
    // Read again under the key lock, so not from before a rotation.
    let samples = ctx.store()?.key_samples(inst.user_id, None)?;
    check_own_key(&keyring, &samples, hint)?;
    Ok(keyring)
}

/// The instance's settings, opened (empty when it has none).
fn read_settings(ctx: &mut Ctx, inst: &Instance) -> Result<Settings> {
    if ctx.store()?.settings_token(inst.id)?.is_none() {
        return Ok(Settings::new());
    }
    // The key first, then the token: under the key lock it cannot be from
    // before a rotation that replaced the key.
    let keyring = ctx.keyring(false)?;
    match ctx.store()?.settings_token(inst.id)? {
        Some(sealed) => open(&keyring, inst, &sealed),
        None => Ok(Settings::new()),
    }
}

/// The value to set: from argv (not for secrets), stdin, or a hidden prompt.
fn read_value(ctx: &mut Ctx, a: &SetArgs) -> Result<String> {
    let value = match &a.value {
        Some(_) if a.secret => {
            return Err(Error::usage(
                "a secret value is not taken from the command line (other users see it in the process list, and it stays in the shell history)",
            )
            .with_hint("leave VALUE out to be asked for it without echo, or pipe it in with --value-stdin"));
        }
        Some(v) => v.clone(),
        None if a.value_stdin => read_stdin()?,
        None => ctx
            .prompt()
            .secret(&format!("Value of {}", a.key), "--value-stdin")?
            .expose_secret()
            .to_owned(),
    };
    settings::check_value(&value).map_err(Error::usage)?;
    Ok(value)
}

/// All of stdin, at most [`MAX_VALUE_BYTES`] (one final line break dropped).
fn read_stdin() -> Result<String> {
    let mut buf = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_VALUE_BYTES as u64 + 3)
        .read_to_end(&mut buf)
        .map_err(|e| Error::usage(format!("cannot read the value from stdin: {e}")))?;
    if buf.ends_with(b"\n") {
        buf.pop();
        if buf.ends_with(b"\r") {
            buf.pop();
        }
    }
    if buf.len() > MAX_VALUE_BYTES {
        return Err(Error::usage(format!(
            "the value on stdin is longer than {} KiB",
            MAX_VALUE_BYTES / 1024
        )));
    }
    String::from_utf8(buf).map_err(|_| Error::usage("the value on stdin is not UTF-8 text"))
}

fn set(ctx: &mut Ctx, a: SetArgs) -> Result<()> {
    check_key(&a.key)?;
    let (user, inst) = ctx.instance_for(Some(&a.instance), Action::Edit, "instance config set")?;
    let value = read_value(ctx, &a)?;
    let keyring = keyring_to_write(ctx, &inst)?;
    let key = a.key.clone();
    let fingerprint = keyring.fingerprint().to_owned();
    let note = AuditNote::instance(
        &user.name,
        "instance config set",
        &inst,
        format!("setting {} set", a.key),
    );
    let count = ctx
        .store()?
        .audited(note)
        .change_settings(inst.id, &fingerprint, |sealed| {
            let mut map = match sealed {
                Some(s) => open(&keyring, &inst, s)?,
                None => Settings::new(),
            };
            map.insert(key.clone(), Value::String(value.clone()));
            Ok::<_, Error>((Some(settings::encrypt(&keyring, &map)), map.len()))
        })?;
    ctx.out
        .info(format!("Set {} on {}", a.key, inst.instance_id));
    ctx.out.changed(&Changed {
        instance_id: inst.instance_id.as_str(),
        key: &a.key,
        action: "set",
        settings: count,
    })
}

fn get(ctx: &mut Ctx, reference: &str, key: &str) -> Result<()> {
    check_key(key)?;
    let (_, inst) = ctx.instance_for(Some(reference), Action::Edit, "instance config get")?;
    let map = read_settings(ctx, &inst)?;
    let value = map
        .get(key)
        .map(settings::display)
        .ok_or_else(|| unknown_key(&inst, key))?;
    if ctx.out.format.is_machine() {
        return ctx.out.one(&Setting {
            key: key.to_owned(),
            value,
        });
    }
    // The value alone, for `$(amcctl instance config get …)`; on a terminal
    // with control characters escaped, so a value cannot drive the terminal.
    if ctx.out.stdout_tty {
        ctx.out.print(format!("{}\n", printable(&value)))
    } else {
        ctx.out.print(format!("{value}\n"))
    }
}

fn unset(ctx: &mut Ctx, reference: &str, key: &str) -> Result<()> {
    check_key(key)?;
    let (user, inst) = ctx.instance_for(Some(reference), Action::Edit, "instance config unset")?;
    if ctx.store()?.settings_token(inst.id)?.is_none() {
        return Err(unknown_key(&inst, key));
    }
    let keyring = ctx.keyring(false)?;
    let fingerprint = keyring.fingerprint().to_owned();
    let note = AuditNote::instance(
        &user.name,
        "instance config unset",
        &inst,
        format!("setting {key} removed"),
    );
    let count = ctx
        .store()?
        .audited(note)
        .change_settings(inst.id, &fingerprint, |sealed| {
            let Some(s) = sealed else {
                return Err(unknown_key(&inst, key));
            };
            let mut map = open(&keyring, &inst, s)?;
            if map.shift_remove(key).is_none() {
                return Err(unknown_key(&inst, key));
            }
            let token = (!map.is_empty()).then(|| settings::encrypt(&keyring, &map));
            Ok::<_, Error>((token, map.len()))
        })?;
    ctx.out
        .info(format!("Removed {key} from {}", inst.instance_id));
    ctx.out.changed(&Changed {
        instance_id: inst.instance_id.as_str(),
        key,
        action: "unset",
        settings: count,
    })
}

fn list(ctx: &mut Ctx, reference: &str, reveal: bool) -> Result<()> {
    let (_, inst) = ctx.instance_for(Some(reference), Action::Edit, "instance config list")?;
    let map = read_settings(ctx, &inst)?;
    let rows: Vec<Setting> = map
        .iter()
        .map(|(k, v)| Setting {
            key: k.clone(),
            value: if reveal {
                settings::display(v)
            } else {
                redact(&settings::display(v))
            },
        })
        .collect();
    if rows.is_empty() && ctx.out.format == Format::Table {
        ctx.out.info(format!(
            "{} has no settings; add one with `amcctl instance config set {} KEY`",
            inst.instance_id, inst.instance_id
        ));
        return Ok(());
    }
    ctx.out.list(&rows)
}
