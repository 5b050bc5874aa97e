//! `amcctl config`: read and change the config file.
//!
//! The file holds defaults only; a flag or an environment variable still wins
//! over it (precedence: flag > env > config > default). `config` commands
//! show and change the file itself, not the effective values of one run.

use clap::Subcommand;
use comfy_table::Cell;
use serde::Serialize;

use super::Ctx;
use crate::config::{Config, KEYS};
use crate::error::{Error, Result};
use crate::output::{Output, Tabular};

/// Config commands.
#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print a key's value from the config file (exit 3 when not set)
    Get {
        /// One of: user, output, region, concurrency, rate, timeout
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(KEYS))]
        key: String,
    },
    /// Set a key in the config file (the value is checked first)
    Set {
        /// One of: user, output, region, concurrency, rate, timeout
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(KEYS))]
        key: String,
        /// The value, like `json`, `eu`, `8`, `2.5`, `30s`
        value: String,
    },
    /// Remove a key from the config file
    Unset {
        /// One of: user, output, region, concurrency, rate, timeout
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(KEYS))]
        key: String,
    },
    /// Print every key and its value in the config file
    #[command(visible_alias = "ls")]
    List,
    /// Print where the config file is
    Path,
}

/// One key of `config list`.
#[derive(Debug, Serialize)]
struct Entry {
    key: &'static str,
    value: Option<String>,
}

impl Tabular for Entry {
    fn columns() -> Vec<&'static str> {
        vec!["KEY", "VALUE"]
    }
    fn row(&self) -> Vec<Cell> {
        vec![
            Cell::new(self.key),
            Cell::new(self.value.as_deref().unwrap_or("")),
        ]
    }
}

/// `config path`, which works without reading the config file.
pub(super) fn print_path(out: &Output, path: &std::path::Path) -> Result<()> {
    out.value("path", &path.display().to_string())
}

pub(super) fn run(ctx: &mut Ctx, cmd: ConfigCmd) -> Result<()> {
    let file = ctx.paths.config.clone();
    match cmd {
        ConfigCmd::Get { key } => match ctx.config.get(&key)? {
            Some(v) => ctx.out.value("value", &v),
            None => Err(Error::not_found(format!(
                "{key} is not set in {}",
                file.display()
            ))),
        },
        ConfigCmd::Set { key, value } => {
            let mut next: Config = ctx.config.clone();
            next.set(&key, &value)?;
            next.save(&file)?;
            let shown = next.get(&key)?.unwrap_or_default();
            ctx.config = next;
            ctx.out
                .info(format!("Set {key} = {shown} in {}", file.display()));
            Ok(())
        }
        ConfigCmd::Unset { key } => {
            if ctx.config.get(&key)?.is_none() {
                ctx.out
                    .info(format!("{key} was not set in {}", file.display()));
                return Ok(());
            }
            let mut next = ctx.config.clone();
            next.unset(&key)?;
            next.save(&file)?;
            ctx.config = next;
            ctx.out
                .info(format!("Removed {key} from {}", file.display()));
            Ok(())
        }
        ConfigCmd::List => {
            let entries = KEYS
                .iter()
                .map(|k| {
                    Ok(Entry {
                        key: k,
                        value: ctx.config.get(k)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            if ctx.out.format == crate::output::Format::Json {
                // One object with typed values (`jq .rate` is a number),
                // every key present, unset ones null.
                ctx.out.one(&ctx.config)
            } else {
                ctx.out.list(&entries)
            }
        }
        ConfigCmd::Path => print_path(&ctx.out, &file),
    }
}
