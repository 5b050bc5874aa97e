//! The global settings of one run, resolved once at start-up.

use std::path::PathBuf;

use super::GlobalArgs;
use crate::config::{Config, Paths};
use crate::env::Env;
use crate::error::Result;
use crate::output::Format;

/// Every global setting of a run, each taken from the first layer that sets
/// it: the command-line flag, its environment variable (both read by clap),
/// the config file, the built-in default. The environment's other variables
/// come with it, read once.
#[derive(Debug)]
pub struct Settings {
    /// Where the store, the config file and the key live.
    pub paths: Paths,
    /// The config file's values.
    pub config: Config,
    /// The output format, before `--jq` makes it JSON.
    pub format: Format,
    /// The acting user named by `--user`, `AMCCTL_USER` or config `user`;
    /// `None`: the OS login name.
    pub user: Option<String>,
    /// The profile `--profile` or `AMCCTL_PROFILE` names.
    pub profile: Option<String>,
    /// The extra CA certificates of `--ca-bundle`, `AMCCTL_CA_BUNDLE` or
    /// config `ca_bundle`.
    pub ca_bundle: Option<PathBuf>,
    /// The environment of this run.
    pub env: Env,
}

impl Settings {
    /// Resolves the settings of `g` and `env`, reading the config file.
    pub fn resolve(g: &GlobalArgs, env: Env) -> Result<Settings> {
        let mut paths = Paths::resolve(g.home.as_deref(), g.db.as_deref(), g.config.as_deref())?;
        let config = Config::load(&paths.config)?;
        if g.db.is_none() {
            paths.use_config_db(&config)?;
        }
        paths.find_db_password(&env);
        let format = if g.json {
            Format::Json
        } else {
            g.output.or(config.output).unwrap_or(Format::Table)
        };
        Ok(Settings {
            format,
            user: g.user.clone().or_else(|| config.user.clone()),
            profile: g.profile.clone().filter(|p| !p.is_empty()),
            ca_bundle: g.ca_bundle.clone().or_else(|| config.ca_bundle.clone()),
            paths,
            config,
            env,
        })
    }
}
