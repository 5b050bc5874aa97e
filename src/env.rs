//! The environment variables amcctl honours, read here and nowhere else.
//!
//! A run reads the process environment once into an [`Env`]; everything
//! below takes its variables from that value, so a test that runs a command
//! in-process hands it an environment of its own. Only the test clock
//! ([`crate::clock`]) and the completion engine, which run before or
//! outside of a command, read the process's directly, through here.
//!
//! The global flags' own variables ([`HOME`] to [`CA_BUNDLE`]) are read by
//! clap as it parses, so that `--help` names them; [`Env`] holds them too.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

/// One folder for store, config and key.
pub const HOME: &str = "AMCCTL_HOME";
/// The store: a SQLite file's path or a `postgres://` URL.
pub const DB: &str = "AMCCTL_DB";
/// The config file.
pub const CONFIG: &str = "AMCCTL_CONFIG";
/// The acting user.
pub const USER: &str = "AMCCTL_USER";
/// The output format.
pub const OUTPUT: &str = "AMCCTL_OUTPUT";
/// Never prompt.
pub const NO_INPUT: &str = "AMCCTL_NO_INPUT";
/// Extra CA certificates to trust.
pub const CA_BUNDLE: &str = "AMCCTL_CA_BUNDLE";
/// The login profile.
pub const PROFILE: &str = "AMCCTL_PROFILE";
/// The Fernet key itself, instead of the key file.
pub const KEY: &str = "AMCCTL_KEY";
/// Login-with-Amazon credentials that need no stored login.
pub const CLIENT_ID: &str = "AMCCTL_CLIENT_ID";
/// See [`CLIENT_ID`].
pub const CLIENT_SECRET: &str = "AMCCTL_CLIENT_SECRET";
/// See [`CLIENT_ID`].
pub const REFRESH_TOKEN: &str = "AMCCTL_REFRESH_TOKEN";
/// The AMC API's base URL (a test server, a proxy).
pub const API_URL: &str = "AMCCTL_API_URL";
/// The token endpoint's base URL.
pub const AUTH_URL: &str = "AMCCTL_AUTH_URL";
/// The browser login's authorize page.
pub const AUTHORIZE_URL: &str = "AMCCTL_AUTHORIZE_URL";
/// The log filter.
pub const LOG: &str = "AMCCTL_LOG";
/// Tests only: the fixed wall clock (RFC 3339).
pub const TEST_NOW: &str = "AMCCTL_TEST_NOW";
/// Tests only: the seed of the row ids.
pub const TEST_SEED: &str = "AMCCTL_TEST_SEED";
/// Set to anything non-empty: no colour unless `--color always` (no-color.org).
pub const NO_COLOR: &str = "NO_COLOR";
/// The command that opens a URL.
pub const BROWSER: &str = "BROWSER";

/// The team store's password, as libpq reads it.
pub const PGPASSWORD: &str = "PGPASSWORD";
/// The team store's password file, as libpq reads it (default `~/.pgpass`).
pub const PGPASSFILE: &str = "PGPASSFILE";
/// The user's home folder, where `.pgpass` is.
pub const USER_HOME: &str = "HOME";

/// The OS login name, in the order they are tried.
pub const LOGIN_NAMES: [&str; 2] = ["USER", "LOGNAME"];

/// Every variable read, so that nothing else of the environment is kept.
const HONOURED: [&str; 25] = [
    HOME,
    DB,
    CONFIG,
    USER,
    OUTPUT,
    NO_INPUT,
    CA_BUNDLE,
    PROFILE,
    KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    API_URL,
    AUTH_URL,
    AUTHORIZE_URL,
    LOG,
    TEST_NOW,
    TEST_SEED,
    NO_COLOR,
    BROWSER,
    PGPASSWORD,
    PGPASSFILE,
    USER_HOME,
    LOGIN_NAMES[0],
    LOGIN_NAMES[1],
];

/// The honoured variables of one run, as they were when it started.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<&'static str, OsString>,
}

impl Env {
    /// This process's environment, as it is now.
    pub fn from_process() -> Env {
        Env::from_pairs(std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))))
    }

    /// An environment of the given variables; the ones amcctl does not
    /// honour are dropped.
    pub fn from_pairs<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Env
    where
        K: AsRef<str>,
        V: Into<OsString>,
    {
        let vars = pairs
            .into_iter()
            .filter_map(|(k, v)| {
                let name = HONOURED.iter().find(|n| **n == k.as_ref())?;
                Some((*name, v.into()))
            })
            .collect();
        Env { vars }
    }

    /// The value of `name`, as it is (possibly empty); `None` when unset or
    /// not UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).and_then(|v| v.to_str())
    }

    /// The value of `name` unless it is unset or empty.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.is_empty())
    }

    /// The value of `name` unless it is unset or only white space.
    pub fn non_blank(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// The path `name` holds, unless it is unset or empty (any bytes).
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.vars
            .get(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    /// Whether `NO_COLOR` asks for no colour: set to anything non-empty.
    pub fn no_color(&self) -> bool {
        self.vars.get(NO_COLOR).is_some_and(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_what_it_honours() {
        let env = Env::from_pairs([
            (KEY, "k"),
            ("PATH", "/bin"),
            (NO_COLOR, ""),
            (BROWSER, "  "),
        ]);
        assert_eq!(env.get(KEY), Some("k"));
        assert_eq!(env.get("PATH"), None);
        assert!(!env.no_color(), "an empty NO_COLOR is not set");
        assert_eq!(env.get(BROWSER), Some("  "));
        assert_eq!(env.non_empty(BROWSER), Some("  "));
        assert_eq!(env.non_blank(BROWSER), None, "blank is unset");
    }
}
