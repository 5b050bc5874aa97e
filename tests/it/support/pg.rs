//! The team store under test: a fresh PostgreSQL database for every
//! [`TestEnv`](super::TestEnv) that asks for one, on the server named by
//! `AMCCTL_TEST_PG` (an administrator's URL, password included; `.ci/run`
//! starts such a server on loopback and sets it).
//!
//! Tests that run on both backends are listed in [`on_both_backends!`]:
//! each becomes `NAME::sqlite` and `NAME::postgres`, one body run twice.
//! Without a server the PostgreSQL half says it is skipped, or fails under
//! `CI=true`, where a skipped half would hide a broken backend.

use std::cell::Cell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable naming the test server.
pub const TEST_PG: &str = "AMCCTL_TEST_PG";

/// The backend the [`TestEnv`](super::TestEnv)s of this thread's test use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the test's home (the default).
    Sqlite,
    /// A database of its own on the test server.
    Postgres,
}

thread_local! {
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Sqlite) };
}

/// The backend new test environments of this thread use.
pub fn current() -> Backend {
    BACKEND.with(Cell::get)
}

/// Runs `test` with every [`TestEnv`](super::TestEnv) it makes on `backend`.
/// On PostgreSQL without a test server: skipped with a line saying so, or a
/// failure under `CI=true`.
pub fn run_on(backend: Backend, test: fn()) {
    if backend == Backend::Postgres && server().is_none() {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "{TEST_PG} is not set: CI must test the PostgreSQL store (.ci/run starts a server)"
        );
        eprintln!("skipped: no PostgreSQL test server ({TEST_PG} is not set)");
        return;
    }
    BACKEND.with(|b| b.set(backend));
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            BACKEND.with(|b| b.set(Backend::Sqlite));
        }
    }
    let _reset = Reset;
    test();
}

/// Declares each named test function (a plain `fn()`, no `#[test]`) as
/// two tests, `NAME::sqlite` and `NAME::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    $crate::support::pg::run_on($crate::support::pg::Backend::Sqlite, super::$name);
                }
                #[test]
                fn postgres() {
                    $crate::support::pg::run_on($crate::support::pg::Backend::Postgres, super::$name);
                }
            }
        )*
    };
}

/// The test server: how to reach it as its administrator.
pub struct Server {
    /// `user`, `host`, `port` of the administrator's login.
    user: String,
    host: String,
    port: u16,
    password: String,
    /// A database migrated once, copied for each test.
    template: String,
}

/// The test server, its template database made on first use; `None`
/// without `AMCCTL_TEST_PG`.
pub fn server() -> Option<&'static Server> {
    static SERVER: OnceLock<Option<Server>> = OnceLock::new();
    SERVER
        .get_or_init(|| {
            let admin = std::env::var(TEST_PG).ok().filter(|v| !v.is_empty())?;
            Some(Server::start(&admin))
        })
        .as_ref()
}

impl Server {
    fn start(admin: &str) -> Server {
        let url = url::Url::parse(admin).unwrap_or_else(|e| panic!("{TEST_PG} is not a URL: {e}"));
        let server = Server {
            user: url.username().to_owned(),
            host: url.host_str().unwrap_or("127.0.0.1").to_owned(),
            port: url.port().unwrap_or(5432),
            password: url.password().unwrap_or_default().to_owned(),
            template: format!("amcctl_tpl_{}", std::process::id()),
        };
        server.drop_leftovers();
        server.admin(&format!("DROP DATABASE IF EXISTS {}", server.template));
        server.admin(&format!("CREATE DATABASE {}", server.template));
        // The schema as the binary under test migrates it.
        let out = std::process::Command::new(super::BIN)
            .args(["db", "migrate"])
            .env_clear()
            .env(
                "AMCCTL_HOME",
                std::env::temp_dir().join("amcctl-test-template"),
            )
            .env("AMCCTL_DB", server.url(&server.template))
            .env("PGPASSWORD", &server.password)
            .env("USER", "template")
            .output()
            .expect("run amcctl db migrate");
        assert!(
            out.status.success(),
            "db migrate of the test template failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server
    }

    /// amcctl's URL for `db` (no password: that goes in `PGPASSWORD`).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}@{}:{}/{db}?sslmode=disable",
            self.user, self.host, self.port
        )
    }

    /// The password of the administrator's login.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A connection to `db` as the administrator.
    pub fn connect(&self, db: &str) -> postgres::Client {
        postgres::Config::new()
            .user(&self.user)
            .password(&self.password)
            .host(&self.host)
            .port(self.port)
            .dbname(db)
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test server's {db}: {e}"))
    }

    /// Drops the databases of test runs that are gone (killed before their
    /// databases were dropped), named by their process id.
    fn drop_leftovers(&self) {
        let mut client = self.connect("postgres");
        let names: Vec<String> = client
            .query(
                "SELECT datname FROM pg_database WHERE datname ~ '^amcctl_(tpl|t)_[0-9]+'",
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default();
        for name in names {
            let pid = name.split('_').nth(2).unwrap_or_default();
            if !std::path::Path::new("/proc").join(pid).exists() {
                let _ =
                    client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }

    fn admin(&self, sql: &str) {
        self.connect("postgres")
            .batch_execute(sql)
            .unwrap_or_else(|e| {
                panic!(
                    "{sql}: {}",
                    e.as_db_error().map_or(e.to_string(), |d| d.to_string())
                )
            });
    }
}

/// A database of one test, dropped with it.
pub struct Database {
    /// Its name.
    pub name: String,
}

impl Database {
    /// A fresh copy of the migrated template.
    pub fn new() -> Database {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let server = server().expect("a PostgreSQL test server");
        let name = format!(
            "amcctl_t_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        server.admin(&format!(
            "CREATE DATABASE {name} TEMPLATE {}",
            server.template
        ));
        Database { name }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Some(server) = server() {
            let _ = server.connect("postgres").batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}
