//! The command tree (clap) and the context every command runs in.

mod account;
mod audit;
mod auth;
mod brand;
mod checks;
pub mod completions;
mod config_cmd;
mod connect;
mod dashboard;
mod db;
mod discover;
mod global;
mod health;
mod instance;
mod key;
pub mod man;
mod refs;
mod schedule;
mod settings;
mod usage;
mod user;
mod validate;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Paths};
use crate::domain::{RowId, ShareRole, User};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::exit::ExitStatus;
use crate::output::{ColorWhen, Format, Output, Streams};
use crate::prompt::{Console, NoInput, Prompter};
use crate::store::Store;

pub use auth::MAX_SECRET_BYTES;
pub use global::Settings;
pub use refs::{resolve_account, resolve_instance};

/// amcctl — administer Amazon Marketing Cloud instances: registry, validation, discovery and health.
#[derive(Debug, Parser)]
#[command(
    name = "amcctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// One folder for store, config and key (tests, cron, containers)
    #[arg(long, global = true, env = crate::env::HOME, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// The store: a SQLite file, or a team store's postgres:// URL (no password) [default: config db, else <data dir>/amcctl.db]
    #[arg(long, global = true, env = crate::env::DB, value_name = "PATH|URL")]
    pub db: Option<PathBuf>,
    /// The config file [default: <config dir>/config.toml]
    #[arg(long, global = true, env = crate::env::CONFIG, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// The acting user [default: config `user`, else the OS login name]
    #[arg(long, global = true, env = crate::env::USER, value_name = "NAME")]
    pub user: Option<String>,
    /// Whether `user` came from the command line rather than the
    /// environment: `audit list --user U` names whose entries to show.
    #[arg(skip)]
    pub user_on_command_line: bool,
    /// Output format [default: config `output`, else table]
    #[arg(
        short = 'o',
        long,
        global = true,
        env = crate::env::OUTPUT,
        value_enum,
        value_name = "FMT"
    )]
    pub output: Option<Format>,
    /// Same as `-o json`
    #[arg(long, global = true, conflicts_with = "output")]
    pub json: bool,
    /// Never prompt (implied when stdin or stderr is not a terminal)
    #[arg(long, global = true, env = crate::env::NO_INPUT, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_input: bool,
    /// Only results and errors on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More diagnostics on stderr (-vv for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// When to use colour
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ColorWhen,
    /// Filter the JSON output with a jq expression (implies -o json; a string result prints raw)
    #[arg(long, global = true, value_name = "EXPR")]
    pub jq: Option<String>,
    /// The login profile to use [default: the one `auth switch` chose, else `default`]
    #[arg(long, global = true, env = crate::env::PROFILE, value_name = "NAME")]
    pub profile: Option<String>,
    /// Extra CA certificates (PEM) to trust, e.g. a proxy that inspects TLS [default: config `ca_bundle`]
    #[arg(long, global = true, env = crate::env::CA_BUNDLE, value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage AMC instances
    #[command(subcommand)]
    Instance(instance::InstanceCmd),
    /// Manage Amazon Ads AMC accounts (entity IDs)
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// Manage the brands of instances
    #[command(subcommand)]
    Brand(brand::BrandCmd),
    /// Check instances against AMC; history and reports
    #[command(subcommand)]
    Health(health::HealthCmd),
    /// Workflows and executions: fetch them from AMC, report on them
    #[command(subcommand)]
    Usage(usage::UsageCmd),
    /// Workflow schedules, from the store
    #[command(subcommand)]
    Schedule(schedule::ScheduleCmd),
    /// Write the fleet's health and usage as one self-contained HTML page
    Dashboard(dashboard::DashboardArgs),
    /// Store, show or forget your Login-with-Amazon credentials
    #[command(subcommand)]
    Auth(auth::AuthCmd),
    /// The key that encrypts stored secrets
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Manage the users of this registry
    #[command(subcommand)]
    User(user::UserCmd),
    /// Who changed what in the store, and when
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// The store: where it is, check, migrate, back up or copy it
    #[command(subcommand)]
    Db(db::DbCmd),
    /// Read and change the config file (defaults below flags and environment)
    #[command(subcommand)]
    Config(config_cmd::ConfigCmd),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish)
    Completions(completions::CompletionsArgs),
    /// Print the man page (or write them all with --out DIR)
    Man(man::ManArgs),
}

/// Everything a command needs: settings, output, prompts, and the store on demand.
pub struct Ctx {
    /// Where files live.
    pub paths: Paths,
    /// The config file's values.
    pub config: Config,
    /// How to print.
    pub out: Output,
    /// Whether prompts may be shown.
    pub interactive: bool,
    /// The environment of this run.
    pub env: Env,
    /// `--user`, `AMCCTL_USER` or config `user`.
    user_name: Option<String>,
    /// `--user` as typed on the command line, if it was.
    user_flag: Option<String>,
    /// `AMCCTL_USER`, else config `user`: the acting user named when
    /// `--user` is taken for something else.
    config_user: Option<String>,
    profile_flag: Option<String>,
    ca_bundle: Option<PathBuf>,
    store: Option<Store>,
    /// The acting user, once resolved: bulk commands ask for every
    /// instance, and the lookup counts the user's instances.
    acting: Option<User>,
    /// The instances shared with the acting user, once read.
    shared: Option<HashMap<RowId, ShareRole>>,
    /// Whether the store is the team store (known once the acting user is).
    in_team_store: bool,
    prompter: Box<dyn Prompter>,
}

/// Warns when the folder of the store or of the key may be written by any
/// user: anyone could then swap the store, the key or the config for their
/// own (the files' own modes do not stop a rename inside the folder).
fn warn_if_world_writable(out: &Output, paths: &crate::config::Paths) {
    use std::os::unix::fs::PermissionsExt;
    let mut seen: Vec<&std::path::Path> = Vec::new();
    let files = [paths.db.file(), Some(&paths.key), Some(&paths.config)];
    for file in files.into_iter().flatten() {
        let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) else {
            continue;
        };
        if seen.contains(&dir) {
            continue;
        }
        seen.push(dir);
        if let Ok(meta) = std::fs::metadata(dir)
            && meta.permissions().mode() & 0o002 != 0
        {
            out.warn(format!(
                "the folder {} can be written by every user: another user could replace the store, the key or the config; run `chmod 700 {}`",
                dir.display(),
                dir.display()
            ));
        }
    }
}

impl Ctx {
    /// Builds the context from the global flags and `env` (reads the config
    /// file), printing to `streams`.
    pub fn new(g: &GlobalArgs, env: Env, streams: Arc<Streams>) -> Result<Ctx> {
        let settings = Settings::resolve(g, env)?;
        let config_user = settings
            .env
            .non_empty(crate::env::USER)
            .map(str::to_owned)
            .or_else(|| settings.config.user.clone());
        let stderr_tty = streams.stderr_tty();
        let out = Output::for_args(streams, g, settings.format, settings.env.no_color())?;
        warn_if_world_writable(&out, &settings.paths);
        let interactive = !g.no_input && std::io::stdin().is_terminal() && stderr_tty;
        let prompter: Box<dyn Prompter> = if interactive {
            Box::new(Console::new())
        } else {
            Box::new(NoInput)
        };
        Ok(Ctx {
            paths: settings.paths,
            config: settings.config,
            out,
            interactive,
            env: settings.env,
            user_name: settings.user,
            user_flag: g.user.clone().filter(|_| g.user_on_command_line),
            config_user,
            profile_flag: settings.profile,
            ca_bundle: settings.ca_bundle,
            store: None,
            acting: None,
            shared: None,
            in_team_store: false,
            prompter,
        })
    }

    /// The store, opened (and migrated) on first use.
    pub fn store(&mut self) -> Result<&mut Store> {
        if self.store.is_none() {
            self.store = Some(Store::open(&self.paths.db)?);
        }
        self.store
            .as_mut()
            .ok_or_else(|| Error::internal("store not open"))
    }

    /// The prompter: the terminal, or one that fails naming the flag.
    pub fn prompt(&mut self) -> &mut dyn Prompter {
        self.prompter.as_mut()
    }

    /// The acting user, resolved once per command. In a SQLite store:
    /// `--user`/`AMCCTL_USER`, else config `user` (which must exist, exit
    /// 3), else the OS login name (created on first use). In the team
    /// store: the database login, which a named user must be (exit 4), and
    /// which an administrator must have added (`amcctl user add`; an
    /// administrator is added on first use).
    pub fn user(&mut self) -> Result<User> {
        if let Some(user) = &self.acting {
            return Ok(user.clone());
        }
        let named = self.user_name.clone();
        let login = self.store()?.login()?;
        self.in_team_store = login.is_some();
        let user = match login {
            Some(login) => self.team_member(login, named)?,
            None => match named {
                Some(name) => self.store()?.user(&name)?.ok_or_else(|| {
                    Error::not_found(format!("no user {name:?} in this store"))
                        .with_hint(format!("add it with `amcctl user add {name}`"))
                })?,
                None => {
                    let login = os_login_name(&self.env)?;
                    let store = self.store()?;
                    match store.user(&login)? {
                        Some(user) => user,
                        None => {
                            crate::domain::validate_name(&login)?;
                            store.ensure_user(&login)?
                        }
                    }
                }
            },
        };
        self.acting = Some(user.clone());
        Ok(user)
    }

    /// Takes `--user` as typed on the command line to be something other
    /// than the acting user (`audit list --user U`: whose entries); the
    /// acting user is then `AMCCTL_USER` or config `user`, or the login,
    /// as without it.
    pub fn take_user_flag(&mut self) -> Option<String> {
        let flag = self.user_flag.take()?;
        self.user_name = self.config_user.clone();
        self.acting = None;
        self.shared = None;
        Some(flag)
    }

    /// The user `--user`, `AMCCTL_USER` or config `user` names, if any.
    pub fn named_user(&self) -> Option<String> {
        self.user_name.clone()
    }

    /// The team store's acting user: the database login `login`.
    fn team_member(&mut self, login: String, named: Option<String>) -> Result<User> {
        if let Some(name) = named.filter(|n| *n != login) {
            return Err(Error::permission_denied(format!(
                "permission denied: you are logged in to the team store as {login:?}, \
                 and cannot act as {name:?}"
            ))
            .with_hint(
                "in the team store the acting user is the database login: drop --user, \
                 AMCCTL_USER and config `user`, or connect as that user",
            ));
        }
        let store = self.store()?;
        if let Some(user) = store.user(&login)? {
            return Ok(user);
        }
        // Only an administrator has the privileges to get this far
        // unregistered (a member not added is refused when the store
        // opens), and is added on first use.
        Ok(store.ensure_user(&login)?)
    }

    /// Asks for confirmation of a destructive action unless `yes`; exit 2 when
    /// it cannot ask.
    pub fn confirm(&mut self, yes: bool, question: &str) -> Result<bool> {
        if yes {
            return Ok(true);
        }
        self.prompt().confirm(question, false, "--yes")
    }
}

/// The OS login name: `$USER`/`$LOGNAME`, else the passwd entry of our uid.
fn os_login_name(env: &Env) -> Result<String> {
    use std::os::unix::fs::MetadataExt;
    if let Some(name) = crate::env::LOGIN_NAMES
        .iter()
        .find_map(|v| env.non_empty(v))
    {
        return Ok(name.to_owned());
    }
    let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
    let from_passwd = uid.and_then(|uid| {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd.lines().find_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            (f.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
        })
    });
    from_passwd.ok_or_else(|| {
        Error::usage(
            "cannot tell who you are: set --user, AMCCTL_USER or `user` in the config file",
        )
    })
}

/// Runs the commands that need neither the config file nor the store, so
/// that they work even when the config file is broken (`config path` tells
/// where to fix it). `None`: the command needs a [`Ctx`]; use [`run`].
pub fn run_without_ctx(cli: &Cli, out: &Output) -> Option<Result<ExitStatus>> {
    let done = match &cli.command {
        Command::Completions(a) => Some(completions::run(a, out)),
        Command::Man(a) => Some(man::run(a, out)),
        Command::Config(config_cmd::ConfigCmd::Path) => Some(
            Paths::resolve(
                cli.global.home.as_deref(),
                cli.global.db.as_deref(),
                cli.global.config.as_deref(),
            )
            .and_then(|paths| config_cmd::print_path(out, &paths.config)),
        ),
        _ => None,
    };
    done.map(|r| r.map(|()| ExitStatus::Success))
}

/// Runs a parsed command line. Most commands either succeed or fail; those
/// whose result may be an exit code of its own (`health`, `usage`) say how
/// they went.
pub fn run(cli: Cli, ctx: &mut Ctx) -> Result<ExitStatus> {
    let done = match cli.command {
        Command::Health(c) => return health::run(ctx, c),
        Command::Usage(c) => return usage::run(ctx, c),
        Command::Db(c) => db::run(ctx, c),
        Command::Config(c) => config_cmd::run(ctx, c),
        Command::Completions(a) => completions::run(&a, &ctx.out),
        Command::Man(a) => man::run(&a, &ctx.out),
        Command::Instance(c) => instance::run(ctx, c),
        Command::Account(c) => account::run(ctx, c),
        Command::Brand(c) => brand::run(ctx, c),
        Command::Schedule(c) => schedule::run(ctx, c),
        Command::Dashboard(a) => dashboard::run(ctx, a),
        Command::User(c) => user::run(ctx, c),
        Command::Audit(c) => audit::run(ctx, c),
        Command::Auth(c) => auth::run(ctx, c),
        Command::Key(c) => key::run(ctx, c),
    };
    done.map(|()| ExitStatus::Success)
}
