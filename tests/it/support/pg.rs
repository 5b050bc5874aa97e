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

impl super::TestEnv {
    /// Another host on this environment's team store: a home of its own
    /// (config, key, logs; empty, as on a machine that never ran amcctl
    /// before), the same database, and this environment's extra variables
    /// (a fake AMC's URLs, say). Look at the rows through this environment's
    /// [`probe`](super::TestEnv::probe): the host's own probe would open
    /// the SQLite file of its home.
    pub fn another_host(&self) -> super::TestEnv {
        let db = self
            .pg
            .as_ref()
            .expect("another host of a TestEnv on PostgreSQL");
        let server = server().expect("a test server");
        // A home without a database of its own: the new environment is made
        // as on SQLite, then pointed at this one's database.
        let previous = BACKEND.with(|b| b.replace(Backend::Sqlite));
        let mut host = super::TestEnv::new();
        BACKEND.with(|b| b.set(previous));
        host.vars = self.vars.clone();
        host.with_env("AMCCTL_DB", server.url(&db.name))
            .with_env("PGPASSWORD", server.password())
    }
}

/// The PostgreSQL server binaries (`initdb`, `pg_ctl`), found as
/// `.ci/postgres` finds them: `pg_config --bindir`, then Debian's
/// `/usr/lib/postgresql/*/bin` (the newest), then `PATH`.
fn server_binaries() -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let has_initdb = |dir: &std::path::Path| dir.join("initdb").is_file();
    if let Ok(out) = std::process::Command::new("pg_config")
        .arg("--bindir")
        .output()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_initdb(&dir) {
            return Some(dir);
        }
    }
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has_initdb(d))
        .collect();
    debian.sort();
    if let Some(dir) = debian.pop() {
        return Some(dir);
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).find(|d| has_initdb(d))
}

/// A PostgreSQL server of one test's own, for tests that stop it: a new
/// data folder in a temporary folder, on a free loopback port, run by an
/// unprivileged user (`postgres` when the tests run as root: PostgreSQL
/// refuses root), stopped when dropped. Logins over TCP need the password,
/// as on the shared test server.
pub struct PrivateServer {
    bin: std::path::PathBuf,
    /// Root of the server's files: `pg/` (the owner's: data, socket, log).
    dir: tempfile::TempDir,
    port: u16,
    password: String,
    running: std::sync::atomic::AtomicBool,
}

/// The administrator's login of a [`PrivateServer`].
const PRIVATE_ADMIN: &str = "amcctl_admin";

impl PrivateServer {
    /// A new server, started; `None` (with a line saying the test is
    /// skipped) when no PostgreSQL server binaries are installed, or a
    /// failure under `CI=true`, where `.ci/run` installs them.
    pub fn start_or_skip() -> Option<PrivateServer> {
        let Some(bin) = server_binaries() else {
            assert!(
                std::env::var_os("CI").is_none_or(|v| v != "true"),
                "no PostgreSQL server binaries (initdb): CI must run the team store's fault tests \
                 (.ci/run installs postgresql)"
            );
            eprintln!("skipped: no PostgreSQL server binaries (initdb) found");
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("amcctl-pg-")
            .tempdir()
            .expect("create a temporary folder");
        // The server's user must reach its folder inside ours.
        set_mode(dir.path(), 0o755);
        let own = dir.path().join("pg");
        std::fs::create_dir(&own).expect("create the server's folder");
        set_mode(&own, 0o700);
        let password = format!("pw{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let pwfile = own.join("pw");
        std::fs::write(&pwfile, format!("{password}\n")).expect("write the password file");
        if running_as_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(&own)
                .status()
                .expect("run chown");
            assert!(status.success(), "chown the server's folder to postgres");
        }
        let server = PrivateServer {
            bin,
            dir,
            port: free_port(),
            password,
            running: std::sync::atomic::AtomicBool::new(false),
        };
        server.pg_tool(
            "initdb",
            &[
                "-D",
                &server.data().display().to_string(),
                "-U",
                PRIVATE_ADMIN,
                &format!("--pwfile={}", pwfile.display()),
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
        );
        let _ = std::fs::remove_file(&pwfile);
        server.start();
        Some(server)
    }

    fn own(&self) -> std::path::PathBuf {
        self.dir.path().join("pg")
    }

    fn data(&self) -> std::path::PathBuf {
        self.own().join("data")
    }

    /// Runs one of the server's programs as the server's user; fails the
    /// test with its output (and the server's log) when it fails.
    fn pg_tool(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let out = as_server_user(&program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed: {}{}\n--- server log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.own().join("server.log")).unwrap_or_default()
        );
    }

    /// Starts the server (again) and waits until it accepts connections;
    /// after [`stop_immediate`](Self::stop_immediate) this is crash
    /// recovery, as after a power cut.
    pub fn start(&self) {
        let own = self.own().display().to_string();
        // fsync=off only saves the machine's disk: the OS survives an
        // immediate stop, so written data is kept. Commits are still
        // written to the OS before they are acknowledged (synchronous_commit
        // stays on, unlike .ci/postgres's), or an immediate stop would lose
        // acknowledged commits and prove nothing about amcctl.
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {own} -c fsync=off -c max_connections=50",
            self.port
        );
        self.pg_tool(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-l",
                &format!("{own}/server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        );
        self.running
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Stops the server hard (`pg_ctl stop -m immediate`): every backend
    /// quits at once, open transactions are neither committed nor rolled
    /// back until the next start recovers.
    pub fn stop_immediate(&self) {
        self.running
            .store(false, std::sync::atomic::Ordering::SeqCst);
        self.pg_tool(
            "pg_ctl",
            &[
                "-D",
                &self.data().display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// amcctl's URL for `db` (no password: that goes in `PGPASSWORD`).
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{PRIVATE_ADMIN}@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The password of the administrator's login.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A connection to `db` as the administrator.
    pub fn connect(&self, db: &str) -> postgres::Client {
        postgres::Config::new()
            .user(PRIVATE_ADMIN)
            .password(&self.password)
            .host("127.0.0.1")
            .port(self.port)
            .dbname(db)
            .connect_timeout(std::time::Duration::from_secs(10))
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the private server's {db}: {e}"))
    }

    /// Creates the database `name` and migrates it with the binary under
    /// test (`amcctl db migrate`).
    pub fn create_database(&self, name: &str) {
        self.connect("postgres")
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let out = std::process::Command::new(super::BIN)
            .args(["db", "migrate"])
            .env_clear()
            .env("AMCCTL_HOME", self.dir.path().join("migrate-home"))
            .env("AMCCTL_DB", self.url(name))
            .env("PGPASSWORD", &self.password)
            .env("USER", "migrate")
            .output()
            .expect("run amcctl db migrate");
        assert!(
            out.status.success(),
            "db migrate of {name} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if self.running.load(std::sync::atomic::Ordering::SeqCst) {
            // Its data goes with the folder: nothing to shut down cleanly.
            let _ = as_server_user(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

/// A command running `program` as the server's user: `postgres` when the
/// tests run as root (PostgreSQL refuses root), else the caller.
fn as_server_user(program: &std::path::Path) -> std::process::Command {
    if running_as_root() {
        let mut cmd = std::process::Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        std::process::Command::new(program)
    }
}

fn running_as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// A loopback port nobody listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a loopback port")
        .port()
}
