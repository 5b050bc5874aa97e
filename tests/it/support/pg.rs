//! The team store under test: a fresh PostgreSQL database for every
//! [`TestEnv`](super::TestEnv) that asks for one, on the server named by
//! `AMCCTL_TEST_PG` (an administrator's URL, password included; `.ci/run`
//! starts such a server on loopback and sets it).
//!
//! Commands run as the database login role named like the user they run
//! as (`alice`, `bob`: members, under the store's row security, as real
//! members would be), made on the server on first use with the
//! administrator's password and registered in the test's database through
//! amcctl's library (`Store::add_user`, as `amcctl user add` would). The
//! rows a test arranges or looks at go through the administrator (a
//! superuser, which row security does not apply to): the probe and
//! [`TestEnv::open_store`](super::TestEnv::open_store).
//!
//! Tests that run on both backends are listed in [`on_both_backends!`]:
//! each becomes `NAME::sqlite` and `NAME::postgres`, one body run twice.
//! Without a server the PostgreSQL half says it is skipped, or fails under
//! `CI=true`, where a skipped half would hide a broken backend.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

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

    /// amcctl's URL for `db` as the login role `user` (no password: every
    /// test role has the administrator's, given in `PGPASSWORD`).
    pub fn url_as(&self, user: &str, db: &str) -> String {
        let mut url = url::Url::parse(&self.url(db)).expect("a test database URL");
        url.set_username(user).expect("a URL with a user");
        url.to_string()
    }

    /// The password of the administrator's login.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A connection to `db` as the administrator.
    pub fn connect(&self, db: &str) -> postgres::Client {
        self.connect_as(&self.user, db)
    }

    /// A connection to `db` as the login role `user` (made by
    /// [`Server::member`] or [`Server::admin_role`]), the way any client
    /// of the team store would connect: for tests that go around amcctl.
    pub fn connect_as(&self, user: &str, db: &str) -> postgres::Client {
        postgres::Config::new()
            .user(user)
            .password(&self.password)
            .host(&self.host)
            .port(self.port)
            .dbname(db)
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("connect to the test server's {db} as {user}: {e}"))
    }

    /// The store `db` opened through amcctl's library as the administrator.
    pub fn open_store(&self, db: &str) -> amcctl::store::Store {
        let target = amcctl::store::PgTarget::parse(&self.url(db), false)
            .expect("a test database URL")
            .with_password(Some(self.password()), None);
        amcctl::store::Store::open(&amcctl::store::Location::Postgres(target))
            .expect("open the test database")
    }

    /// The name of the test database `url` names on this server, if it
    /// names one (whichever user it is for).
    fn test_database(&self, url: &str) -> Option<String> {
        let url = url::Url::parse(url).ok()?;
        let db = url.path().trim_start_matches('/');
        (url.host_str() == Some(self.host.as_str())
            && url.port().unwrap_or(5432) == self.port
            && db.starts_with("amcctl_t_"))
        .then(|| db.to_owned())
    }

    /// The login role `name` (a member: no superuser, no administrator),
    /// made on the server if missing, registered as a user of the test
    /// database `db` if not yet; returns amcctl's URL for it.
    /// An administrator made by [`Server::admin_role`] is one too, and
    /// keeps its powers.
    pub fn member(&self, name: &str, db: &str) -> String {
        if self.login_role(name)
            && !ADMINS
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(name)
        {
            let (superuser, admin) = self.role_powers(name);
            assert!(
                !superuser && !admin,
                "the test role {name:?} is a superuser or a member of amcctl_admin on the test \
                 server: members must not be (administrators have names of their own, see \
                 TestEnv::make_admin)"
            );
        }
        self.register(name, db);
        self.url_as(name, db)
    }

    /// The login role `name` made an administrator of the team store: a
    /// member of `amcctl_admin` (cluster-wide: in every test database),
    /// not a superuser; registered as a user of `db`.
    pub fn admin_role(&self, name: &str, db: &str) {
        ADMINS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned());
        self.login_role(name);
        let grant = format!("GRANT amcctl_admin TO {}", ident(name));
        // Tests in other processes may grant the same at the same moment.
        retry(&grant, || {
            if self.role_powers(name).1 {
                return Ok(());
            }
            self.connect("postgres").batch_execute(&grant)
        });
        assert!(
            !self.role_powers(name).0,
            "the test administrator {name:?} is a superuser"
        );
        self.register(name, db);
    }

    /// Makes the login role `name` if this process has not, with the
    /// administrator's password; tolerates other test processes doing the
    /// same at the same moment. Returns whether this call made it.
    pub fn login_role(&self, name: &str) -> bool {
        static MADE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
        let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
        if made.contains(name) {
            return false;
        }
        let (ident, password) = (ident(name), literal(&self.password));
        let create = format!(
            "DO $amcctl$ BEGIN
                 IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {}) THEN
                     CREATE ROLE {ident} LOGIN PASSWORD {password};
                 END IF;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
             END $amcctl$",
            literal(name)
        );
        // A role left by an earlier run may have another password.
        let alter = format!("ALTER ROLE {ident} LOGIN PASSWORD {password}");
        for sql in [create, alter] {
            retry(&sql, || self.connect("postgres").batch_execute(&sql));
        }
        made.insert(name.to_owned());
        true
    }

    /// Whether the role `name` is a superuser, and whether it is a member
    /// of `amcctl_admin`.
    fn role_powers(&self, name: &str) -> (bool, bool) {
        let row = self
            .connect("postgres")
            .query_one(
                "SELECT rolsuper, pg_has_role(oid, 'amcctl_admin', 'MEMBER')
                 FROM pg_roles WHERE rolname = $1",
                &[&name],
            )
            .unwrap_or_else(|e| panic!("look up the role {name}: {e}"));
        (row.get(0), row.get(1))
    }

    /// Registers the role `name` as a user of the test database `db`, once
    /// in the process (a test that removes the user later finds it
    /// removed): as an administrator running `amcctl user add` would.
    fn register(&self, name: &str, db: &str) {
        static DONE: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());
        let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
        let key = (db.to_owned(), name.to_owned());
        if done.contains(&key) {
            return;
        }
        match self.open_store(db).add_user(name, false) {
            Ok(_) | Err(amcctl::store::StoreError::Conflict(_)) => {}
            Err(e) => panic!("register {name} in {db}: {e}"),
        }
        done.insert(key);
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

/// The roles this process made administrators (see [`Server::admin_role`]).
static ADMINS: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// `name` as an SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Runs `f` until it succeeds, a few times: statements on roles, which are
/// the whole server's, fail when another test process changes the same
/// role at the same moment ("tuple concurrently updated").
fn retry(what: &str, mut f: impl FnMut() -> Result<(), postgres::Error>) {
    let mut tries = 0;
    loop {
        match f() {
            Ok(()) => return,
            Err(e) if tries < 20 => {
                tries += 1;
                eprintln!("{what}: {e}; again");
                std::thread::sleep(std::time::Duration::from_millis(50 * tries));
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

/// The URL a command of `user` uses for `AMCCTL_DB`: `url` itself, or,
/// when it names a test database of the test server (another home pointed
/// at this one's database), the same database as the login role `user`.
pub fn as_user(url: &std::ffi::OsStr, user: &str) -> Option<String> {
    let server = server()?;
    let db = server.test_database(url.to_str()?)?;
    Some(server.member(user, &db))
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
    /// A connection to this environment's team database as the login role
    /// `user` (a member, registered as a user, unless made an
    /// administrator with [`make_admin`](super::TestEnv::make_admin)): what
    /// `psql` would give them, around amcctl.
    pub fn connect_as(&self, user: &str) -> postgres::Client {
        let db = self.pg.as_ref().expect("a TestEnv on PostgreSQL");
        let server = server().expect("a test server");
        server.member(user, &db.name);
        server.connect_as(user, &db.name)
    }

    /// Another host on this environment's team store: a home of its own
    /// (config, key, logs; empty, as on a machine that never ran amcctl
    /// before), the same database, and this environment's extra variables
    /// (a fake AMC's URLs, say). Look at the rows through this environment's
    /// [`probe`](super::TestEnv::probe): the host's own probe would open
    /// the SQLite file of its home. Its commands connect as the login role
    /// of the user they run as, as this environment's do.
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
