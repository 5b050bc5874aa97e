//! The config file (`config.toml`) and where amcctl keeps its files.
//!
//! Precedence, highest first: command-line flag, environment variable, config
//! file, built-in default. Flags and environment are clap's job; this module
//! supplies the last two layers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::domain::Region;
use crate::error::{Error, Result};
use crate::output::Format;
use crate::store::Location;

/// The keys a config file may set.
pub const KEYS: [&str; 8] = [
    "user",
    "output",
    "region",
    "concurrency",
    "rate",
    "timeout",
    "ca_bundle",
    "db",
];

/// Defaults read from `config.toml`; every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The acting user.
    pub user: Option<String>,
    /// The output format.
    pub output: Option<Format>,
    /// The region of new instances and logins.
    pub region: Option<Region>,
    /// Health-check concurrency.
    pub concurrency: Option<usize>,
    /// Requests per second to AMC.
    pub rate: Option<f64>,
    /// Per-request timeout, like "30s".
    pub timeout: Option<String>,
    /// A PEM file of extra CA certificates (a proxy that inspects TLS).
    pub ca_bundle: Option<PathBuf>,
    /// The store: a SQLite file's path or a `postgres://` URL, which may
    /// carry the password here (and only here: the file is 0600).
    pub db: Option<String>,
}

impl Config {
    /// Reads `path`; a missing file is an empty config, a broken one is exit 2
    /// naming the file and line.
    pub fn load(path: &Path) -> Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => {
                return Err(Error::usage(format!(
                    "cannot read the config file {}: {e}",
                    path.display()
                )));
            }
        };
        Self::parse(&text)
            .map_err(|e| Error::usage(format!("invalid config file {}: {e}", path.display())))
    }

    /// Parses config text; the error names the line.
    pub fn parse(text: &str) -> std::result::Result<Config, String> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(l) => format!("line {l}: {}", e.message()),
                None => e.message().to_owned(),
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> std::result::Result<(), String> {
        if let Some(u) = &self.user {
            crate::domain::validate_name(u).map_err(|e| e.message)?;
        }
        if let Some(c) = self.concurrency {
            check_concurrency(c)?;
        }
        if let Some(r) = self.rate {
            check_rate(r)?;
        }
        if let Some(t) = &self.timeout {
            parse_duration(t)?;
        }
        if let Some(db) = &self.db {
            Location::parse(Path::new(db), true)?;
        }
        Ok(())
    }

    /// The value of `key` as text, if set.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        let v = toml::Value::try_from(self).map_err(|e| Error::internal(e.to_string()))?;
        check_key(key)?;
        Ok(v.get(key).map(|v| match v {
            // A database URL is shown without its password.
            toml::Value::String(s) if key == "db" => {
                Location::parse(Path::new(s), true).map_or_else(|_| s.clone(), |l| l.to_string())
            }
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        }))
    }

    /// Sets `key` from text, validating the value.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        check_key(key)?;
        if key == "db" {
            // `config set` takes its value from the command line.
            Location::parse(Path::new(value), false)
                .map_err(|e| Error::usage(format!("invalid value for db: {e}")))?;
        }
        let quoted = match key {
            "concurrency" | "rate" => value.to_owned(),
            _ => toml::Value::String(value.to_owned()).to_string(),
        };
        let mut next = Self::parse(&format!("{key} = {quoted}"))
            .map_err(|e| Error::usage(format!("invalid value for {key}: {e}")))?;
        merge(&mut next, self);
        *self = next;
        Ok(())
    }

    /// Removes `key`.
    pub fn unset(&mut self, key: &str) -> Result<()> {
        check_key(key)?;
        match key {
            "user" => self.user = None,
            "output" => self.output = None,
            "region" => self.region = None,
            "concurrency" => self.concurrency = None,
            "rate" => self.rate = None,
            "ca_bundle" => self.ca_bundle = None,
            "db" => self.db = None,
            _ => self.timeout = None,
        }
        Ok(())
    }

    /// Writes the config to `path` (atomically, 0600).
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = toml::to_string(self).map_err(|e| Error::internal(e.to_string()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::fsutil::create_private_dir(dir)
                .map_err(|e| Error::file("create the folder", dir, e))?;
        }
        let tmp = path.with_extension("toml.tmp");
        let written = crate::fsutil::create_private_file(&tmp)
            .and_then(|()| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, path));
        written.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::file("write the config file", path, e)
        })
    }
}

/// Fills the unset fields of `into` from `from`.
fn merge(into: &mut Config, from: &Config) {
    into.user = into.user.take().or_else(|| from.user.clone());
    into.output = into.output.or(from.output);
    into.region = into.region.or(from.region);
    into.concurrency = into.concurrency.or(from.concurrency);
    into.rate = into.rate.or(from.rate);
    into.timeout = into.timeout.take().or_else(|| from.timeout.clone());
    into.ca_bundle = into.ca_bundle.take().or_else(|| from.ca_bundle.clone());
    into.db = into.db.take().or_else(|| from.db.clone());
}

fn check_key(key: &str) -> Result<()> {
    if KEYS.contains(&key) {
        Ok(())
    } else {
        Err(Error::usage(format!(
            "unknown config key {key:?}; known keys: {}",
            KEYS.join(", ")
        )))
    }
}

/// Checks a concurrency value (1..=1024).
pub fn check_concurrency(c: usize) -> std::result::Result<usize, String> {
    if (1..=1024).contains(&c) {
        Ok(c)
    } else {
        Err("concurrency must be between 1 and 1024".into())
    }
}

/// The slowest rate accepted: one request every 100 seconds. Anything
/// slower would space requests further apart than any time budget allows.
pub const MIN_RATE: f64 = 0.01;

/// Checks a rate value (requests per second, 0.01 to 10,000).
pub fn check_rate(r: f64) -> std::result::Result<f64, String> {
    if r.is_finite() && (MIN_RATE..=10_000.0).contains(&r) {
        Ok(r)
    } else {
        Err("rate must be a number of requests per second from 0.01 to 10000".into())
    }
}

/// Parses a duration like `30s`, `1m30s`, `7d`, `250ms`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|e| format!("invalid duration {s:?}: {e} (use e.g. 30s, 5m, 7d)"))
}

/// Where the store, config and key live.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The store.
    pub db: Location,
    /// The config file.
    pub config: PathBuf,
    /// The Fernet key file.
    pub key: PathBuf,
}

impl Paths {
    /// Resolves `--home`, `--db` and `--config` against the platform's
    /// folders. `--db` (or `AMCCTL_DB`) is a file's path or a `postgres://`
    /// URL without a password; a bad URL is exit 2 naming what is wrong.
    pub fn resolve(home: Option<&Path>, db: Option<&Path>, config: Option<&Path>) -> Result<Paths> {
        let (data_dir, config_dir) = match home {
            Some(h) => (h.to_owned(), h.to_owned()),
            None => {
                let dirs = directories::ProjectDirs::from("", "", "amcctl").ok_or_else(|| {
                    Error::usage("cannot find a home folder; set AMCCTL_HOME or pass --home")
                })?;
                (dirs.data_dir().to_owned(), dirs.config_dir().to_owned())
            }
        };
        let db = match db {
            Some(given) => Location::parse(given, false)
                .map_err(|e| Error::usage(format!("invalid --db: {e}")))?,
            None => Location::Sqlite(data_dir.join("amcctl.db")),
        };
        Ok(Paths {
            db,
            config: config
                .map(Path::to_owned)
                .unwrap_or_else(|| config_dir.join("config.toml")),
            key: data_dir.join("key"),
        })
    }

    /// Takes the store from config `db` when neither `--db` nor
    /// `AMCCTL_DB` named one. A URL there may carry a password, which the
    /// config file then must keep from other users (mode 0600).
    pub fn use_config_db(&mut self, config: &Config) -> Result<()> {
        let Some(db) = &config.db else {
            return Ok(());
        };
        let location = Location::parse(Path::new(db), true)
            .map_err(|e| Error::usage(format!("invalid db in {}: {e}", self.config.display())))?;
        if let Location::Postgres(target) = &location
            && target.password.is_some()
        {
            crate::fsutil::check_private(&self.config)?;
        }
        self.db = location;
        Ok(())
    }

    /// Finds the team store's password when its URL has none: see
    /// [`with_db_password`].
    pub fn find_db_password(&mut self, env: &crate::env::Env) {
        self.db = with_db_password(self.db.clone(), env);
    }
}

/// `location` with the password to log in with when it is a PostgreSQL
/// database whose URL has none: `PGPASSWORD`, else the password file
/// (`PGPASSFILE`, default `~/.pgpass`), as libpq does. The main store and
/// the other stores a command names (`db copy --to`) find it alike.
pub fn with_db_password(location: Location, env: &crate::env::Env) -> Location {
    let Location::Postgres(target) = location else {
        return location;
    };
    let file = env.path(crate::env::PGPASSFILE).or_else(|| {
        env.path(crate::env::USER_HOME)
            .map(|home| home.join(".pgpass"))
    });
    let pgpass = file.and_then(|f| std::fs::read_to_string(f).ok());
    Location::Postgres(target.with_password(env.get(crate::env::PGPASSWORD), pgpass.as_deref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_config_names_the_line() {
        let err = Config::parse("user = \"alice\"\nrate = \"fast\"\n").unwrap_err();
        assert!(err.starts_with("line 2:"), "{err}");
        let err = Config::parse("user = \"a\"\n\ncolour = 1\n").unwrap_err();
        assert!(err.starts_with("line 3:"), "{err}");
        assert!(Config::parse("concurrency = 0").is_err());
        assert!(Config::parse("timeout = \"soon\"").is_err());
    }

    #[test]
    fn set_get_unset() {
        let mut c = Config::default();
        c.set("rate", "5").unwrap();
        c.set("output", "json").unwrap();
        c.set("timeout", "10s").unwrap();
        assert_eq!(c.get("rate").unwrap().as_deref(), Some("5.0"));
        assert_eq!(c.get("output").unwrap().as_deref(), Some("json"));
        assert!(c.set("output", "xml").is_err());
        assert!(c.set("nope", "1").is_err());
        c.unset("rate").unwrap();
        assert_eq!(c.get("rate").unwrap(), None);
        assert_eq!(c.get("timeout").unwrap().as_deref(), Some("10s"));
    }
}
