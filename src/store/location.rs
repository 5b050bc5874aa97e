//! Where a store lives: a SQLite file, or a PostgreSQL database named by a
//! `postgres://` URL. Parsed once, from `--db`, `AMCCTL_DB`, config `db` or
//! the default, and handed to [`super::Store::open`].
//!
//! A URL's password is kept apart from everything that prints: the
//! [`Display`](std::fmt::Display) of a location, which every message and
//! `db path` use, never shows it, and neither does `Debug`.

use std::fmt;
use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres(PgTarget),
}

/// A PostgreSQL database as a `postgres://` URL names it.
#[derive(Clone)]
pub struct PgTarget {
    /// The login role.
    pub user: String,
    /// The server's host name or address.
    pub host: String,
    /// The server's port.
    pub port: u16,
    /// The database.
    pub dbname: String,
    /// How TLS is used.
    pub sslmode: SslMode,
    /// The password the URL carried (config file only), else the one found
    /// in `PGPASSWORD` or `~/.pgpass` when the store is opened.
    pub password: Option<SecretString>,
}

/// The `sslmode` of a URL, as libpq means it (the modes amcctl supports).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it (libpq's default).
    Prefer,
    /// TLS or nothing, the certificate not verified.
    Require,
    /// TLS with the certificate verified against the trusted roots and the host name.
    VerifyFull,
}

impl SslMode {
    fn parse(s: &str) -> Option<SslMode> {
        Some(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }

    /// As written in a URL.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// The port PostgreSQL listens on unless told otherwise.
const DEFAULT_PORT: u16 = 5432;

impl PartialEq for PgTarget {
    fn eq(&self, other: &Self) -> bool {
        self.user == other.user
            && self.host == other.host
            && self.port == other.port
            && self.dbname == other.dbname
            && self.sslmode == other.sslmode
            && self.password.as_ref().map(ExposeSecret::expose_secret)
                == other.password.as_ref().map(ExposeSecret::expose_secret)
    }
}

impl Eq for PgTarget {}

/// Without the password.
impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PgTarget({self})")
    }
}

/// The URL as users write it, without the password; `sslmode` is shown
/// when it is not the default.
impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        write!(
            f,
            "postgres://{}@{host}:{}/{}",
            url_part(&self.user),
            self.port,
            url_part(&self.dbname)
        )?;
        if self.sslmode != SslMode::Prefer {
            write!(f, "?sslmode={}", self.sslmode.as_str())?;
        }
        Ok(())
    }
}

/// A user or database name as a URL carries it.
fn url_part(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Whether `s` names a PostgreSQL database rather than a file.
pub fn is_url(s: &str) -> bool {
    let lower = s.get(..13).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

impl Location {
    /// A store named by `--db`, `AMCCTL_DB` or config `db`: a URL when it
    /// starts with `postgres://` or `postgresql://`, else a file's path.
    /// `password_allowed` is true only for the config file: a password on
    /// the command line would be seen by every user of the machine.
    pub fn parse(s: &Path, password_allowed: bool) -> Result<Location, String> {
        match s.to_str() {
            Some(text) if is_url(text) => {
                PgTarget::parse(text, password_allowed).map(Location::Postgres)
            }
            _ => Ok(Location::Sqlite(s.to_owned())),
        }
    }

    /// The file the store is kept in, for what only a file has (a folder
    /// next to it, its permissions).
    pub fn file(&self) -> Option<&Path> {
        match self {
            Location::Sqlite(path) => Some(path),
            Location::Postgres(_) => None,
        }
    }
}

/// As users name it: the file's path, or the URL without its password.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(path) => path.display().fmt(f),
            Location::Postgres(target) => target.fmt(f),
        }
    }
}

impl PgTarget {
    /// Parses `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=MODE]`.
    /// Every part but the password is required, so that a store is never
    /// chosen by what happens to be in the environment.
    pub fn parse(text: &str, password_allowed: bool) -> Result<PgTarget, String> {
        let url = url::Url::parse(text).map_err(|e| format!("not a valid URL: {e}"))?;
        let decode = |s: &str| {
            percent_decode(s).ok_or_else(|| "the URL has a part that is not UTF-8".to_owned())
        };
        let user = decode(url.username())?;
        if user.is_empty() {
            return Err("the URL names no user (postgres://USER@HOST/DB)".into());
        }
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(a)) => a.to_string(),
            Some(url::Host::Ipv6(a)) => a.to_string(),
            _ => return Err("the URL names no host (postgres://USER@HOST/DB)".into()),
        };
        let dbname = decode(url.path().trim_start_matches('/'))?;
        if dbname.is_empty() || dbname.contains('/') {
            return Err("the URL names no database (postgres://USER@HOST/DB)".into());
        }
        let password = match url.password() {
            None => None,
            Some(_) if !password_allowed => {
                return Err("a password does not belong on the command line or in \
                            AMCCTL_DB, where other users of the machine can read it; \
                            use PGPASSWORD, ~/.pgpass or the config file"
                    .into());
            }
            Some(p) => Some(SecretString::from(decode(p)?)),
        };
        let mut sslmode = SslMode::Prefer;
        for (key, value) in url.query_pairs() {
            match &*key {
                "sslmode" => {
                    sslmode = SslMode::parse(&value).ok_or_else(|| {
                        format!(
                            "sslmode {value:?} is not one of disable, prefer, require, verify-full"
                        )
                    })?;
                }
                other => return Err(format!("unknown URL parameter {other:?}; only sslmode")),
            }
        }
        if url.fragment().is_some() {
            return Err("the URL has a #fragment".into());
        }
        Ok(PgTarget {
            user,
            host,
            port: url.port().unwrap_or(DEFAULT_PORT),
            dbname,
            sslmode,
            password,
        })
    }

    /// The password to log in with: the URL's, else `pgpassword` (the
    /// `PGPASSWORD` variable), else the first matching line of the pgpass
    /// file's `pgpass` text.
    pub fn with_password(mut self, pgpassword: Option<&str>, pgpass: Option<&str>) -> PgTarget {
        if self.password.is_none() {
            self.password = pgpassword
                .filter(|p| !p.is_empty())
                .map(|p| SecretString::from(p.to_owned()))
                .or_else(|| pgpass.and_then(|text| self.pgpass_match(text)));
        }
        self
    }

    /// The password of the first line of a `.pgpass` file
    /// (`host:port:database:user:password`, `*` matching anything, `\`
    /// escaping `:` and `\`) that matches this target.
    fn pgpass_match(&self, text: &str) -> Option<SecretString> {
        let port = self.port.to_string();
        let wanted = [
            self.host.as_str(),
            port.as_str(),
            self.dbname.as_str(),
            self.user.as_str(),
        ];
        text.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .find_map(|line| {
                let fields = split_pgpass(line)?;
                let matches = fields[..4]
                    .iter()
                    .zip(wanted)
                    .all(|(f, w)| f == "*" || f == w || (f == "localhost" && w == "127.0.0.1"));
                matches.then(|| SecretString::from(fields[4].clone()))
            })
    }
}

/// The five fields of a `.pgpass` line, unescaped; `None` for a line of
/// another shape.
fn split_pgpass(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut()?.push(chars.next().unwrap_or('\\')),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut()?.push(c),
        }
    }
    (fields.len() == 5).then_some(fields)
}

fn percent_decode(s: &str) -> Option<String> {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(s: &str) -> PgTarget {
        PgTarget::parse(s, true).unwrap()
    }

    #[test]
    fn a_url_is_parsed_and_printed_without_its_password() {
        let t = pg("postgres://alice:s3cr%40t@db.example:6543/amc?sslmode=require");
        assert_eq!(t.user, "alice");
        assert_eq!(t.host, "db.example");
        assert_eq!(t.port, 6543);
        assert_eq!(t.dbname, "amc");
        assert_eq!(t.sslmode, SslMode::Require);
        assert_eq!(t.password.as_ref().unwrap().expose_secret(), "s3cr@t");
        assert_eq!(
            t.to_string(),
            "postgres://alice@db.example:6543/amc?sslmode=require"
        );
        assert!(!format!("{t:?}").contains("s3cr"));
        let t = pg("postgresql://bob@127.0.0.1/team");
        assert_eq!((t.port, t.sslmode), (5432, SslMode::Prefer));
        assert_eq!(t.to_string(), "postgres://bob@127.0.0.1:5432/team");
    }

    #[test]
    fn a_bad_url_says_what_is_wrong() {
        for (url, says) in [
            ("postgres://127.0.0.1/db", "no user"),
            ("postgres://a@/db", "host"),
            ("postgres://a@h", "no database"),
            ("postgres://a@h/db?sslmode=maybe", "sslmode"),
            ("postgres://a@h/db?timeout=3", "unknown URL parameter"),
            ("postgres://a@h:99999/db", "not a valid URL"),
        ] {
            let err = PgTarget::parse(url, true).unwrap_err();
            assert!(err.contains(says), "{url}: {err}");
        }
        let err = PgTarget::parse("postgres://a:pw@h/db", false).unwrap_err();
        assert!(err.contains("PGPASSWORD"), "{err}");
        assert!(!err.contains("pw@"), "{err}");
    }

    #[test]
    fn the_password_comes_from_the_url_then_pgpassword_then_pgpass() {
        let pgpass = "# comment\nother:*:*:*:no\n127.0.0.1:5432:team:bob:from\\:pass\n";
        let t = pg("postgres://bob@127.0.0.1/team").with_password(None, Some(pgpass));
        assert_eq!(t.password.unwrap().expose_secret(), "from:pass");
        let t = pg("postgres://bob@127.0.0.1/team").with_password(Some("env"), Some(pgpass));
        assert_eq!(t.password.unwrap().expose_secret(), "env");
        let t = pg("postgres://bob:url@127.0.0.1/team").with_password(Some("env"), None);
        assert_eq!(t.password.unwrap().expose_secret(), "url");
        let t = pg("postgres://carol@127.0.0.1/team").with_password(None, Some(pgpass));
        assert!(t.password.is_none());
    }

    #[test]
    fn a_path_is_a_sqlite_file() {
        assert_eq!(
            Location::parse(Path::new("/tmp/a.db"), false).unwrap(),
            Location::Sqlite("/tmp/a.db".into())
        );
        assert!(matches!(
            Location::parse(Path::new("POSTGRES://a@h/db"), false).unwrap(),
            Location::Postgres(_)
        ));
    }
}
