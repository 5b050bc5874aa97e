//! The end-to-end test harness: every test runs the real `amcctl` binary in a
//! hermetic environment and looks at what a user would see — the exit code,
//! stdout (parsed, not string-matched), stderr, and the rows of the SQLite
//! store afterwards.
//!
//! ```ignore
//! use crate::support::TestEnv;
//!
//! let env = TestEnv::new();                       // USER=alice, empty home
//! let acct = env.create_account("ENTITY1AA1AA11AAA1", "Acme");
//! env.run(&["instance", "create", "--instance-id", "amcibersblt",
//!           "--account", "Acme", "--skip-validation"]).ok();
//! let before = env.dump();
//! env.run_as("bob", &["instance", "delete", "amcibersblt", "--yes"]).code(4);
//! assert_eq!(env.dump(), before);
//! ```

pub mod amc;
pub mod cdp;
pub mod pg;
pub mod probe;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub use probe::Probe;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_amcctl");

/// The user every command runs as unless told otherwise (`$USER`).
pub const DEFAULT_USER: &str = "alice";

/// The keys of an instance object in JSON, in order.
pub const INSTANCE_KEYS: [&str; 18] = [
    "id",
    "instance_id",
    "name",
    "description",
    "region",
    "status",
    "is_active",
    "owner",
    "role",
    "account",
    "brands",
    "health",
    "api_endpoint",
    "instance_type",
    "customer_canonical_name",
    "data_upload_account_id",
    "created_at",
    "updated_at",
];

/// The keys of the account embedded in an instance.
pub const INSTANCE_ACCOUNT_KEYS: [&str; 6] = [
    "id",
    "account_id",
    "account_name",
    "advertiser_id",
    "country_code",
    "marketplace_id",
];

/// The keys of an instance's `health` object.
pub const HEALTH_KEYS: [&str; 4] = ["status", "checked_at", "latency_ms", "error"];

/// The keys of an account object (`account list|show|create|edit`).
pub const ACCOUNT_KEYS: [&str; 9] = [
    "id",
    "account_id",
    "account_name",
    "advertiser_id",
    "country_code",
    "marketplace_id",
    "instance_count",
    "created_at",
    "updated_at",
];

/// The keys of a user object (`user list|add`).
pub const USER_KEYS: [&str; 5] = ["id", "name", "admin", "instance_count", "created_at"];

/// The keys of the `-o json` report of `instance import`.
pub const IMPORT_KEYS: [&str; 5] = [
    "created",
    "updated",
    "unchanged",
    "accounts_created",
    "dry_run",
];

/// A private `AMCCTL_HOME` in a temporary folder, and a way to run the binary in it.
pub struct TestEnv {
    dir: tempfile::TempDir,
    home: PathBuf,
    user: String,
    vars: Vec<(OsString, OsString)>,
    fixed_clock: bool,
    commands: AtomicU64,
    /// The team store's database, when the test runs on PostgreSQL.
    pg: Option<pg::Database>,
}

/// The instant the commands of a [`TestEnv::with_fixed_clock`] see.
pub const FIXED_NOW: &str = "2026-11-24T18:00:00Z";

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    /// A fresh, empty home and store; commands run as `alice` (through
    /// `$USER`, so she is created on first use like any OS login; in the
    /// team store she is a registered user from the start). The store is
    /// a SQLite file in the home, or a fresh PostgreSQL database when the
    /// test runs on that backend (see [`pg::run_on`]).
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("amcctl-test-")
            .tempdir()
            .expect("create a temporary folder");
        let home = dir.path().join("home");
        let pg = (pg::current() == pg::Backend::Postgres).then(pg::Database::new);
        // In the team store the default user is registered from the start
        // (as an administrator would have added them), so that registering
        // does not show between a test's dump and its first command.
        if let Some(db) = &pg {
            pg::server()
                .expect("a test server")
                .member(DEFAULT_USER, &db.name);
        }
        TestEnv {
            dir,
            home,
            user: DEFAULT_USER.to_owned(),
            vars: Vec::new(),
            fixed_clock: false,
            commands: AtomicU64::new(0),
            pg,
        }
    }

    /// The store's location as `--db` takes it: the SQLite file, or the
    /// database's URL (without its password) for the default user's login
    /// role. A home pointed at it (`with_env("AMCCTL_DB", …)`) connects as
    /// the login role of whoever its commands run as.
    pub fn db_location(&self) -> String {
        match &self.pg {
            Some(db) => pg::server()
                .expect("a test server")
                .url_as(&self.user, &db.name),
            None => self.db_path().display().to_string(),
        }
    }

    /// The store opened in the test's own process through amcctl's library,
    /// to arrange what no command writes (history of past days, usage); on
    /// PostgreSQL as the server's administrator (a superuser: row security
    /// does not apply).
    pub fn open_store(&self) -> amcctl::store::Store {
        match &self.pg {
            Some(db) => pg::server().expect("a test server").open_store(&db.name),
            None => amcctl::store::Store::open(&amcctl::store::Location::Sqlite(self.db_path()))
                .expect("open the store"),
        }
    }

    /// Makes `name` an administrator of the store, registered as a user:
    /// in the team store a login role granted `amcctl_admin` (not a
    /// superuser: its powers are the store's, under row security), in
    /// SQLite a user added as an administrator. Give administrators names
    /// of their own (`root`): the role's membership is the whole test
    /// server's, and the harness refuses to run a member's commands as an
    /// administrator.
    pub fn make_admin(&self, name: &str) {
        match &self.pg {
            Some(db) => pg::server()
                .expect("a test server")
                .admin_role(name, &db.name),
            None => {
                self.open_store()
                    .add_user(name, true)
                    .unwrap_or_else(|e| panic!("add the administrator {name}: {e}"));
            }
        }
    }

    /// In the team store, makes the login role `name` on the server
    /// without registering it as a user (what an administrator does before
    /// `amcctl user add NAME`); nothing in SQLite, which has no logins.
    pub fn create_role(&self, name: &str) {
        if self.pg.is_some() {
            pg::server().expect("a test server").login_role(name);
        }
    }

    /// The same with the clock stopped at [`FIXED_NOW`] and the row ids
    /// seeded, so that tables show the same ids, times and ages on every
    /// run. Each command gets the next seed (as jj's tests number their
    /// commands), so two commands never make the same id.
    pub fn with_fixed_clock(mut self) -> TestEnv {
        self.fixed_clock = true;
        self
    }

    /// Adds an environment variable to every command of this environment.
    pub fn with_env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> TestEnv {
        self.vars.push((key.into(), value.into()));
        self
    }

    /// Points the binary at a fake AMC server (`AMCCTL_API_URL`, `AMCCTL_AUTH_URL`).
    pub fn with_fake_amc(self, amc: &fake_amc::FakeAmc) -> TestEnv {
        self.with_env("AMCCTL_API_URL", amc.base_url())
            .with_env("AMCCTL_AUTH_URL", amc.token_url())
    }

    /// `AMCCTL_HOME` (created by the binary on first use).
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The SQLite store inside the home.
    pub fn db_path(&self) -> PathBuf {
        self.home.join("amcctl.db")
    }

    /// The rows of the store, to arrange states the commands cannot reach
    /// and to look at what they left.
    pub fn probe(&self) -> Probe {
        match &self.pg {
            Some(db) => Probe::postgres(&db.name),
            None => Probe::new(self.db_path()),
        }
    }

    /// A deterministic text dump of the whole store (see [`Probe::dump`]).
    pub fn dump(&self) -> String {
        self.probe().dump()
    }

    /// A scratch folder outside the home, for import files and exports;
    /// also the working directory of every command.
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `contents` to `name` in the scratch folder and returns its path.
    pub fn write_file(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).expect("write a scratch file");
        path
    }

    /// A `Command` for the binary with only this environment's variables:
    /// PATH, AMCCTL_HOME, USER, AMCCTL_NO_INPUT=1, NO_COLOR=1, the fixed clock
    /// if asked for, and those added with [`TestEnv::with_env`]. Stdin is null.
    /// On PostgreSQL it connects as the login role `user` (made and
    /// registered on first use, see [`pg`]).
    pub fn command(&self, user: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AMCCTL_HOME", &self.home)
            .env("USER", user)
            .env("AMCCTL_NO_INPUT", "1")
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // The team store's acting user is the database login: that of the
        // OS login the command runs as (`USER`, which this environment's
        // own variables may set instead).
        let user = self
            .vars
            .iter()
            .rev()
            .find(|(k, _)| k == "USER")
            .and_then(|(_, v)| v.to_str())
            .unwrap_or(user);
        if let Some(db) = &self.pg {
            let server = pg::server().expect("a test server");
            cmd.env("AMCCTL_DB", server.member(user, &db.name))
                .env("PGPASSWORD", server.password());
        }
        if self.fixed_clock {
            let seed = self.commands.fetch_add(1, Ordering::Relaxed);
            cmd.env("AMCCTL_TEST_NOW", FIXED_NOW)
                .env("AMCCTL_TEST_SEED", seed.to_string());
        }
        for (k, v) in &self.vars {
            // Another home on a test database connects as `user` too.
            let rewritten = if k == "AMCCTL_DB" {
                pg::as_user(v, user)
            } else {
                None
            };
            match rewritten {
                Some(url) => cmd.env(k, url),
                None => cmd.env(k, v),
            };
        }
        cmd
    }

    /// Runs `amcctl ARGS` as the default user.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_as(&self.user.clone(), args)
    }

    /// Runs `amcctl ARGS` as the OS login `user` (`$USER`): the user is
    /// created in the store on first use, as for a real login.
    pub fn run_as(&self, user: &str, args: &[&str]) -> Output {
        Output::from_command(args, self.command(user, args))
    }

    /// Runs `amcctl ARGS` with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: impl AsRef<[u8]>) -> Output {
        let mut cmd = self.command(&self.user, args);
        cmd.stdin(Stdio::piped());
        let mut child = cmd.spawn().expect("start amcctl");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.as_ref().to_vec();
        // A writer thread, so a binary that answers before reading all of a
        // large input cannot deadlock the test.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = wait_bounded(args, child);
        let _ = writer.join();
        Output::new(args, out)
    }

    /// Runs `amcctl ARGS` as `user` with extra environment variables for
    /// this one command only (secrets for `auth login`, a key, a fault URL).
    pub fn run_env(&self, user: &str, args: &[&str], extra: &[(&str, &str)]) -> Output {
        let mut cmd = self.command(user, args);
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Output::from_command(args, cmd)
    }

    /// Like [`TestEnv::run_env`] for the default user, with `unset` removed
    /// from the environment (the store's URL and password the harness
    /// sets, to see what a config file alone does).
    pub fn run_unsetting(&self, args: &[&str], extra: &[(&str, &str)], unset: &[&str]) -> Output {
        let mut cmd = self.command(&self.user, args);
        for k in unset {
            cmd.env_remove(k);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Output::from_command(args, cmd)
    }

    /// `auth login --client-id CLIENT_ID` as `user`, the secret and the
    /// refresh token given through the environment (never argv).
    pub fn login(&self, user: &str, client_id: &str, secret: &str, refresh: &str) -> Output {
        self.run_env(
            user,
            &["auth", "login", "--client-id", client_id],
            &[
                ("AMCCTL_CLIENT_SECRET", secret),
                ("AMCCTL_REFRESH_TOKEN", refresh),
            ],
        )
    }

    /// Asserts the store passes the integrity and foreign-key checks.
    #[track_caller]
    pub fn assert_store_sound(&self, context: impl std::fmt::Display) {
        let problems = self.probe().problems();
        assert!(
            problems.is_empty(),
            "the store is damaged ({context}):\n{}",
            problems.join("\n")
        );
    }

    /// Runs a command that must succeed with `-o json` and returns its parsed stdout.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["-o", "json"]);
        self.run(&full).ok().json()
    }

    /// `account create` (country US) and its JSON.
    pub fn create_account(&self, entity: &str, name: &str) -> Value {
        self.json(&["account", "create", "--account-id", entity, "--name", name])
    }

    /// `instance create --skip-validation` for the default user, and its JSON.
    pub fn create_instance(
        &self,
        instance_id: &str,
        name: &str,
        account: &str,
        brands: &[&str],
    ) -> Value {
        self.create_instance_as(&self.user.clone(), instance_id, name, account, brands)
    }

    /// `instance create --skip-validation` for `user`, and its JSON.
    pub fn create_instance_as(
        &self,
        user: &str,
        instance_id: &str,
        name: &str,
        account: &str,
        brands: &[&str],
    ) -> Value {
        // `--flag=value`, so that values starting with `-` stay values.
        let mut owned = vec![
            format!("--instance-id={instance_id}"),
            format!("--name={name}"),
            format!("--account={account}"),
        ];
        owned.extend(brands.iter().map(|b| format!("--brand={b}")));
        let mut args = vec!["instance", "create", "--skip-validation", "-o", "json"];
        args.extend(owned.iter().map(String::as_str));
        self.run_as(user, &args).ok().json()
    }
}

impl TestEnv {
    /// Asserts that the store's dump is still `before` (see [`assert_dump_eq`]).
    #[track_caller]
    pub fn assert_unchanged(&self, before: &str, context: impl std::fmt::Display) {
        assert_dump_eq(before, &self.dump(), context);
    }
}

/// Asserts two dumps are identical; on failure shows only the lines that
/// differ rather than two whole dumps.
#[track_caller]
pub fn assert_dump_eq(before: &str, after: &str, context: impl std::fmt::Display) {
    assert_lines_eq(before, after, format!("the store changed: {context}"));
}

/// Asserts two texts are identical; on failure shows the lines only in the
/// first (`-`) and only in the second (`+`).
#[track_caller]
pub fn assert_lines_eq(expected: &str, got: &str, context: impl std::fmt::Display) {
    if expected == got {
        return;
    }
    let old: Vec<&str> = expected.lines().collect();
    let new: Vec<&str> = got.lines().collect();
    let mut diff = String::new();
    for line in old.iter().filter(|l| !new.contains(l)) {
        writeln!(diff, "- {line}").unwrap();
    }
    for line in new.iter().filter(|l| !old.contains(l)) {
        writeln!(diff, "+ {line}").unwrap();
    }
    if diff.is_empty() {
        diff.push_str("(the same lines, in another order or number)\n");
    }
    panic!("{context}\n{diff}");
}

/// The longest any one command of a test may run: a hang fails its test,
/// naming the command, instead of stalling `cargo test`.
const COMMAND_BOUND: Duration = Duration::from_secs(300);

/// Waits for `child`, killing it and failing the test when it runs past
/// [`COMMAND_BOUND`].
fn wait_bounded(args: &[&str], child: std::process::Child) -> std::process::Output {
    let pid = child.id() as libc::pid_t;
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        let late = finished.recv_timeout(COMMAND_BOUND).is_err();
        if late {
            // SAFETY: a plain signal to a pid. The child is still running
            // (the waiter has not reported it finished), so the pid is its.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        late
    });
    let out = child.wait_with_output().expect("wait for amcctl");
    let _ = done.send(());
    let late = watchdog.join().unwrap_or(false);
    assert!(
        !late,
        "amcctl {args:?} ran past {COMMAND_BOUND:?} and was killed"
    );
    out
}

/// What a run of the binary showed.
#[derive(Debug, Clone)]
pub struct Output {
    /// The command line, for failure messages.
    pub args: Vec<String>,
    /// The exit code (-1 if killed by a signal).
    pub code: i32,
    /// Stdout as text (lossy).
    pub stdout: String,
    /// Stderr as text (lossy).
    pub stderr: String,
    /// Stdout exactly as written.
    pub stdout_bytes: Vec<u8>,
}

impl Output {
    fn from_command(args: &[&str], mut cmd: Command) -> Output {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = cmd.spawn().expect("start amcctl");
        Output::new(args, wait_bounded(args, child))
    }

    /// The output of a finished command; a panic in amcctl (exit 101, or
    /// Rust's panic message) fails the test whatever it expected.
    fn new(args: &[&str], out: std::process::Output) -> Output {
        let out = Output {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            stdout_bytes: out.stdout,
        };
        assert!(
            out.code != 101 && !out.stderr.contains("panicked at"),
            "amcctl panicked\n{}",
            out.context()
        );
        out
    }

    fn context(&self) -> String {
        format!(
            "amcctl {:?}\n--- exit code {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    /// What a person sees, for a snapshot: the exit code, stdout and
    /// stderr, closed by a line of its own so that the snapshot keeps every
    /// byte (trailing blanks and newlines included).
    pub fn human(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}--- stderr\n{}--- end",
            self.code, self.stdout, self.stderr
        )
    }

    /// Asserts exit 0.
    #[track_caller]
    pub fn ok(self) -> Output {
        self.code(0)
    }

    /// Asserts the exit code.
    #[track_caller]
    pub fn code(self, expected: i32) -> Output {
        assert_eq!(
            self.code,
            expected,
            "unexpected exit code\n{}",
            self.context()
        );
        self
    }

    /// Asserts a non-zero exit code whose message (stderr) contains every one of `needles`.
    #[track_caller]
    pub fn fails(self, expected: i32, needles: &[&str]) -> Output {
        let out = self.code(expected);
        for n in needles {
            assert!(
                out.stderr.contains(n),
                "stderr lacks {n:?}\n{}",
                out.context()
            );
        }
        out
    }

    /// Stdout parsed as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON: {e}\n{}", self.context()))
    }

    /// Stdout parsed as NDJSON: one JSON value per line, no blank lines.
    #[track_caller]
    pub fn ndjson(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| {
                    panic!("line {line:?} is not JSON: {e}\n{}", self.context())
                })
            })
            .collect()
    }

    /// Stdout parsed as CSV: the header and the records.
    #[track_caller]
    pub fn csv(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut r = csv::ReaderBuilder::new()
            .flexible(false)
            .from_reader(self.stdout.as_bytes());
        let header = r
            .headers()
            .unwrap_or_else(|e| panic!("no CSV header: {e}\n{}", self.context()))
            .iter()
            .map(str::to_owned)
            .collect();
        let rows = r
            .records()
            .map(|rec| {
                rec.unwrap_or_else(|e| panic!("bad CSV record: {e}\n{}", self.context()))
                    .iter()
                    .map(str::to_owned)
                    .collect()
            })
            .collect();
        (header, rows)
    }

    /// The `error` object a machine-format failure prints on stderr
    /// (`{"error":{"code":…,"message":…}}`); asserts stdout is empty.
    #[track_caller]
    pub fn error_json(&self) -> Value {
        assert!(
            self.stdout.is_empty(),
            "a failure wrote to stdout\n{}",
            self.context()
        );
        let v: Value = serde_json::from_str(self.stderr.trim())
            .unwrap_or_else(|e| panic!("stderr is not one JSON error: {e}\n{}", self.context()));
        let err = v
            .get("error")
            .unwrap_or_else(|| panic!("no \"error\" key\n{}", self.context()))
            .clone();
        assert!(err["code"].is_string(), "error.code\n{}", self.context());
        assert!(
            err["message"].is_string(),
            "error.message\n{}",
            self.context()
        );
        err
    }
}

/// Asserts that `$text` is the snapshot `$name` committed under
/// tests/it/snapshots/; a change shows as a diff (`cargo insta review`, or
/// `INSTA_UPDATE=always`, accepts it).
macro_rules! assert_snapshot {
    ($name:expr, $text:expr) => {
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/snapshots"),
            omit_expression => true,
        }, {
            insta::assert_snapshot!($name, $text);
        })
    };
}
pub(crate) use assert_snapshot;

/// Asserts that `v` is an object with exactly `keys` (in any order).
#[track_caller]
pub fn assert_keys(v: &Value, keys: &[&str]) {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"));
    let mut got: Vec<&str> = obj.keys().map(String::as_str).collect();
    let mut want = keys.to_vec();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want, "keys of {v}");
}

/// Asserts the JSON shape of an instance: exactly its keys, nested
/// objects included, and the type of every value (`null` where absent).
#[track_caller]
pub fn assert_instance_shape(v: &Value) {
    assert_keys(v, &INSTANCE_KEYS);
    assert_keys(&v["account"], &INSTANCE_ACCOUNT_KEYS);
    assert_keys(&v["health"], &HEALTH_KEYS);
    assert_uuid(&v["id"]);
    assert_uuid(&v["account"]["id"]);
    for k in ["instance_id", "name", "region", "status", "owner"] {
        assert!(v[k].is_string(), "{k} of {v}");
    }
    for k in [
        "description",
        "api_endpoint",
        "instance_type",
        "customer_canonical_name",
        "data_upload_account_id",
    ] {
        assert!(v[k].is_string() || v[k].is_null(), "{k} of {v}");
    }
    assert!(v["is_active"].is_boolean(), "is_active of {v}");
    assert!(
        v["brands"]
            .as_array()
            .is_some_and(|b| b.iter().all(Value::is_string)),
        "brands of {v}"
    );
    assert_timestamp(&v["created_at"]);
    assert_timestamp(&v["updated_at"]);
    let h = &v["health"];
    assert!(h["status"].is_string(), "health.status of {v}");
    if h["checked_at"].is_null() {
        assert_eq!(h["status"], "UNKNOWN", "never checked: {v}");
    } else {
        assert_timestamp(&h["checked_at"]);
    }
    assert!(h["latency_ms"].is_u64() || h["latency_ms"].is_null());
    assert!(h["error"].is_string() || h["error"].is_null());
    let a = &v["account"];
    assert!(a["advertiser_id"].is_string() || a["advertiser_id"].is_null());
}

/// Asserts the JSON shape of an account.
#[track_caller]
pub fn assert_account_shape(v: &Value) {
    assert_keys(v, &ACCOUNT_KEYS);
    assert_uuid(&v["id"]);
    for k in [
        "account_id",
        "account_name",
        "country_code",
        "marketplace_id",
    ] {
        assert!(v[k].is_string(), "{k} of {v}");
    }
    assert!(v["advertiser_id"].is_string() || v["advertiser_id"].is_null());
    assert!(v["instance_count"].is_u64(), "instance_count of {v}");
    assert_timestamp(&v["created_at"]);
    assert_timestamp(&v["updated_at"]);
}

/// Asserts a UUID string.
#[track_caller]
pub fn assert_uuid(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert!(uuid::Uuid::parse_str(s).is_ok(), "not a UUID: {s}");
}

/// Asserts an RFC 3339 UTC timestamp with a `Z`, like `2026-11-24T18:00:00Z`.
#[track_caller]
pub fn assert_timestamp(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a string: {v}"));
    assert!(
        s.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(s).is_ok(),
        "not an RFC 3339 UTC time: {s}"
    );
}

/// The string values of a JSON array.
#[track_caller]
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| {
            s.as_str()
                .unwrap_or_else(|| panic!("not a string: {s}"))
                .to_owned()
        })
        .collect()
}

/// The values of `key` in every object of a JSON array.
#[track_caller]
pub fn pluck(v: &Value, key: &str) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|o| match &o[key] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}
