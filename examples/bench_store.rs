//! Is the PostgreSQL team store as fast as the SQLite file for the commands
//! people and cron run most? A benchmark, not a test: it runs the real
//! release binary on fresh stores of both kinds, one backend after the
//! other within each repetition (so a burst of load on the shared machine
//! hits both alike), and times
//!
//! 1. `instance list -o json` over 10,000 instances: best and median of 5,
//!    process start included (target: PostgreSQL ≤ 2× SQLite);
//! 2. `instance import` of 10,000 rows into a fresh store: best of 3
//!    (target: ≤ 1 s);
//! 3. `health check --all` of 2,000 instances against the fake AMC on
//!    loopback, every call taking L = 50 ms, `--concurrency 64 --rate 10000`
//!    (the rate never binds, as in `bench_health`'s latency-bound scenario):
//!    best and median of 3 (target: PostgreSQL ≤ 1.1× SQLite).
//!
//! The PostgreSQL side needs a server and a role that may create databases
//! and roles (it acts as the member `amcctl_bench`, under row security):
//! its admin URL, password included, in `AMCCTL_BENCH_PG` (it must be on
//! 127.0.0.1). Every measurement gets a database of its own, created here
//! and dropped when done, migrated with `amcctl db migrate`; amcctl is given
//! the URL without the password and the password in `PGPASSWORD`, as a
//! person would run it (it refuses a password on its command line).
//!
//! ```text
//! cargo build --release
//! AMCCTL_BENCH_PG='postgres://admin:secret@127.0.0.1:5432/postgres?sslmode=disable' \
//!     cargo run --release --example bench_store
//! cargo run --release --example bench_store -- --only list,import --bin path/to/amcctl
//! ```

#[path = "support/machine.rs"]
mod machine;
use machine::{compilers_running, loadavg};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use amcctl::domain::Country;
use clap::{Parser, ValueEnum};
use fake_amc::{FakeAmc, Fault};

/// The variable holding the server's admin URL.
const PG_VAR: &str = "AMCCTL_BENCH_PG";

const LIST_N: usize = 10_000;
const LIST_RUNS: usize = 5;
const IMPORT_N: usize = 10_000;
const IMPORT_RUNS: usize = 3;
const CHECK_N: usize = 2_000;
const CHECK_RUNS: usize = 3;
const CHECK_LATENCY: Duration = Duration::from_millis(50);
const CHECK_CONCURRENCY: usize = 64;
/// amcctl's limiter for the check: high enough never to bind, so the run
/// is bound by latency and concurrency alone (ideal N·L/C = 1.56 s).
const CHECK_RATE: u32 = 10_000;

/// The account of the list and import files (as in `bench_import`).
const ENTITY: &str = "ENTITY1BENCHSTORE";
/// Instances of the check are spread over this many accounts.
const CHECK_ACCOUNTS: usize = 10;
/// The user the benchmark acts as; in PostgreSQL a login role it creates.
const USER: &str = "amcctl_bench";
const CLIENT_ID: &str = "amzn1.application-oa2-client.bench";
const CLIENT_SECRET: &str = "bench-client-secret";
const REFRESH_TOKEN: &str = "Atzr|bench-refresh-token";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Measure {
    /// `instance list -o json` over 10,000 instances
    List,
    /// `instance import` of 10,000 rows into a fresh store
    Import,
    /// `health check --all` of 2,000 instances, L=50 ms, C=64
    Check,
}

/// Time amcctl on the SQLite and the PostgreSQL store.
#[derive(Debug, Parser)]
struct Args {
    /// Measurements to run, comma-separated
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "list,import,check"
    )]
    only: Vec<Measure>,
    /// The amcctl binary [default: next to this example, ../amcctl]
    #[arg(long)]
    bin: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    const BOTH: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];
}

/// The PostgreSQL server, as its admin URL names it.
struct Server {
    admin: postgres::Config,
    /// `postgres://USER@HOST:PORT/` with `sslmode`, without a database or
    /// password: each store's URL for amcctl is this plus a database name.
    base: url::Url,
    password: String,
    /// Databases made so far, for unique names.
    made: usize,
}

impl Server {
    /// The server of [`PG_VAR`]; exit 2 with a message when it is unset or
    /// names anything but a loopback server.
    fn from_env() -> Server {
        let Ok(admin_url) = std::env::var(PG_VAR) else {
            eprintln!(
                "bench_store needs a PostgreSQL server: set {PG_VAR} to its admin URL, \
                 password included, on 127.0.0.1, e.g.\n  \
                 {PG_VAR}='postgres://admin:secret@127.0.0.1:5432/postgres?sslmode=disable' \
                 cargo run --release --example bench_store"
            );
            std::process::exit(2);
        };
        let fail = |why: &str| -> ! {
            // Never echo the URL: it holds the password.
            eprintln!("{PG_VAR}: {why}");
            std::process::exit(2);
        };
        let admin = postgres::Config::from_str(&admin_url)
            .unwrap_or_else(|e| fail(&format!("not a PostgreSQL URL ({e})")));
        let host = match admin.get_hosts() {
            [postgres::config::Host::Tcp(h)] => h.clone(),
            _ => fail("name exactly one TCP host"),
        };
        // The benchmark only ever talks to this machine.
        if host != "127.0.0.1" && host != "localhost" {
            fail("the server must be on 127.0.0.1");
        }
        let port = admin.get_ports().first().copied().unwrap_or(5432);
        let user = admin
            .get_user()
            .unwrap_or_else(|| fail("name the admin user"));
        let password = admin
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .unwrap_or_else(|| fail("include the admin password"));
        let sslmode = match admin.get_ssl_mode() {
            postgres::config::SslMode::Disable => "disable",
            _ => "prefer",
        };
        let mut base = url::Url::parse(&format!("postgres://127.0.0.1:{port}/?sslmode={sslmode}"))
            .expect("a base URL");
        base.set_username(user).expect("a user name in the URL");
        Server {
            admin,
            base,
            password,
            made: 0,
        }
    }

    /// Makes sure the login role [`USER`] exists with the admin's
    /// password: the benchmark acts as a member, under row level security,
    /// as a team's users do.
    fn ensure_member_role(&self) {
        let sql = format!(
            "DO $$ BEGIN
                 CREATE ROLE {USER} LOGIN;
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
             END $$;
             ALTER ROLE {USER} LOGIN PASSWORD '{}'",
            self.password.replace('\'', "''")
        );
        self.connect()
            .batch_execute(&sql)
            .unwrap_or_else(|e| panic!("create the role {USER}: {e}"));
    }

    fn connect(&self) -> postgres::Client {
        self.admin
            .connect(postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the server of {PG_VAR}: {e}"))
    }

    /// A new, empty database, dropped with the returned guard.
    fn create(&mut self) -> Database {
        self.made += 1;
        let name = format!("amcctl_bench_store_{}_{}", std::process::id(), self.made);
        self.connect()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        self.ensure_member_role();
        let mut admin_url = self.base.clone();
        admin_url.set_path(&name);
        let mut url = admin_url.clone();
        url.set_username(USER).expect("a user name in the URL");
        Database {
            admin: self.admin.clone(),
            name,
            admin_url: admin_url.to_string(),
            url: url.to_string(),
        }
    }
}

/// A database of this run; dropped (connections closed) when it goes.
struct Database {
    admin: postgres::Config,
    name: String,
    /// The URL amcctl is given to migrate and add the user: the admin's
    /// login, no password.
    admin_url: String,
    /// The URL amcctl is given otherwise: the member [`USER`]'s login.
    url: String,
}

impl Drop for Database {
    fn drop(&mut self) {
        // FORCE: a killed amcctl may leave a connection behind for a moment.
        let dropped = self.admin.connect(postgres::NoTls).and_then(|mut c| {
            c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
        });
        if let Err(e) = dropped {
            eprintln!("warning: could not drop database {}: {e}", self.name);
        }
    }
}

/// One fresh store of either kind with its own home (key, config).
struct Store {
    home: tempfile::TempDir,
    db: Option<Database>,
    password: String,
}

impl Store {
    /// A fresh home with the user [`USER`]; for PostgreSQL a new database,
    /// migrated by amcctl, where [`USER`] is a member added by the admin.
    fn fresh(backend: Backend, bin: &Path, server: &mut Option<Server>) -> Store {
        let home = tempfile::tempdir().expect("a temporary folder");
        let (db, password) = match backend {
            Backend::Sqlite => (None, String::new()),
            Backend::Postgres => {
                let server = server.as_mut().expect("a server for PostgreSQL");
                (Some(server.create()), server.password.clone())
            }
        };
        let store = Store { home, db, password };
        if store.db.is_some() {
            must(
                store.as_admin(bin).args(["db", "migrate", "-q"]),
                "db migrate",
            );
        }
        must(
            store
                .as_admin(bin)
                .envs(fixed(1))
                .args(["user", "add", USER, "-q"]),
            "user add",
        );
        store
    }

    /// A command for amcctl on this store as the administrator: the admin
    /// login in PostgreSQL, the first user in SQLite.
    fn as_admin(&self, bin: &Path) -> Command {
        let mut cmd = self.amcctl(bin);
        if let Some(db) = &self.db {
            cmd.env("AMCCTL_DB", &db.admin_url)
                .env_remove("AMCCTL_USER");
        }
        cmd
    }

    /// A command for amcctl on this store as [`USER`], in a hermetic environment.
    fn amcctl(&self, bin: &Path) -> Command {
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home.path())
            .env("AMCCTL_HOME", self.home.path())
            .env("AMCCTL_USER", USER)
            .env("AMCCTL_NO_INPUT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(db) = &self.db {
            cmd.env("AMCCTL_DB", &db.url)
                .env("PGPASSWORD", &self.password);
        }
        cmd
    }

    fn file(&self, name: &str) -> PathBuf {
        self.home.path().join(name)
    }
}

/// Runs `cmd`; panics with its stderr unless it exits with one of `ok`.
fn must_exit(cmd: &mut Command, what: &str, ok: &[i32]) -> Duration {
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let took = started.elapsed();
    assert!(
        out.status.code().is_some_and(|c| ok.contains(&c)),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn must(cmd: &mut Command, what: &str) -> Duration {
    must_exit(cmd, what, &[0])
}

/// The list and import file: `n` instances of one account with a brand
/// each, as `bench_import` writes it.
fn import_csv(n: usize) -> String {
    let mut text = String::from("instance_id,name,region,account_id,brands\n");
    for i in 0..n {
        let _ = writeln!(text, "amc{i:08x},Instance {i},na,{ENTITY},Brand {}", i % 7);
    }
    text
}

/// Creates the account of [`import_csv`] (untimed).
fn create_account(store: &Store, bin: &Path) {
    must(
        store.amcctl(bin).envs(fixed(2)).args([
            "account",
            "create",
            "--account-id",
            ENTITY,
            "--name",
            "Bench",
            "-q",
        ]),
        "account create",
    );
}

/// A fixed clock and row-id seed for an untimed setup command (a seed of
/// its own per command, or two commands would make the same ids): stores
/// set up alike then hold the same rows, so both backends must print the
/// same bytes.
fn fixed(seed: u32) -> [(&'static str, String); 2] {
    [
        ("AMCCTL_TEST_NOW", "2026-01-05T10:00:00Z".to_owned()),
        ("AMCCTL_TEST_SEED", seed.to_string()),
    ]
}

fn import(store: &Store, bin: &Path, file: &Path) -> Duration {
    must(
        store
            .amcctl(bin)
            .args(["instance", "import", "-q"])
            .arg(file),
        "instance import",
    )
}

/// Timings of one measurement on one backend.
#[derive(Default, Clone)]
struct Times(Vec<Duration>);

impl Times {
    fn best(&self) -> Duration {
        self.0.iter().copied().min().unwrap_or_default()
    }

    fn median(&self) -> Duration {
        let mut v = self.0.clone();
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or_default()
    }
}

/// One line of the table: a measurement on both backends.
struct Line {
    what: &'static str,
    sqlite: Times,
    postgres: Times,
    /// The target, as text, and whether it is met.
    target: String,
    met: bool,
    note: String,
}

/// `instance list -o json` on a store of [`LIST_N`] instances per backend.
///
/// Both stores are filled with the same row ids and times (a fixed seed
/// and clock for the untimed import), so the two outputs must be the same
/// bytes: the note says whether they are.
fn measure_list(bin: &Path, server: &mut Option<Server>, dir: &Path) -> Line {
    let file = dir.join("list.csv");
    std::fs::write(&file, import_csv(LIST_N)).expect("the list file is written");
    let stores: Vec<Store> = Backend::BOTH
        .iter()
        .map(|&b| {
            let store = Store::fresh(b, bin, server);
            create_account(&store, bin);
            must(
                store
                    .amcctl(bin)
                    .envs(fixed(3))
                    .args(["instance", "import", "-q"])
                    .arg(&file),
                "instance import",
            );
            store
        })
        .collect();

    // The outputs, once, untimed: right, and the same on both.
    let outputs: Vec<Vec<u8>> = stores
        .iter()
        .map(|s| {
            let out = s
                .amcctl(bin)
                .args(["instance", "list", "-o", "json"])
                .stdout(Stdio::piped())
                .output()
                .expect("run instance list");
            assert!(out.status.success(), "instance list failed");
            let json: serde_json::Value =
                serde_json::from_slice(&out.stdout).expect("instance list prints JSON");
            assert_eq!(
                json.as_array().map(Vec::len),
                Some(LIST_N),
                "instance list lists every instance"
            );
            out.stdout
        })
        .collect();
    let same = outputs[0] == outputs[1];

    let mut times = [Times::default(), Times::default()];
    for _ in 0..LIST_RUNS {
        for (store, t) in stores.iter().zip(&mut times) {
            t.0.push(must(
                store.amcctl(bin).args(["instance", "list", "-o", "json"]),
                "instance list",
            ));
        }
    }
    let [sqlite, postgres] = times;
    let ratio = postgres.best().as_secs_f64() / sqlite.best().as_secs_f64();
    Line {
        what: "instance list -o json, 10,000 instances (best / median of 5)",
        target: format!("≤ 2× SQLite: {ratio:.2}× (best), {:.2}× (median)", {
            postgres.median().as_secs_f64() / sqlite.median().as_secs_f64()
        }),
        met: ratio <= 2.0,
        note: format!(
            "{} KB of JSON, {} on both",
            outputs[0].len() / 1000,
            if same {
                "the same bytes"
            } else {
                "NOT the same bytes"
            }
        ),
        sqlite,
        postgres,
    }
}

/// `instance import` of [`IMPORT_N`] rows into a fresh store, as
/// `bench_import` does it: the account exists, the instances do not.
fn measure_import(bin: &Path, server: &mut Option<Server>, dir: &Path) -> Line {
    let file = dir.join("import.csv");
    std::fs::write(&file, import_csv(IMPORT_N)).expect("the import file is written");
    let mut times = [Times::default(), Times::default()];
    for _ in 0..IMPORT_RUNS {
        for (&b, t) in Backend::BOTH.iter().zip(&mut times) {
            // A store per run: its database is dropped before the next.
            let store = Store::fresh(b, bin, server);
            create_account(&store, bin);
            t.0.push(import(&store, bin, &file));
        }
    }
    let [sqlite, postgres] = times;
    let best = postgres.best().as_secs_f64();
    Line {
        what: "instance import, 10,000 rows, fresh store (best / median of 3)",
        target: format!(
            "≤ 1 s: {best:.2} s ({:.2}× SQLite)",
            best / sqlite.best().as_secs_f64()
        ),
        met: best <= 1.0,
        note: String::new(),
        sqlite,
        postgres,
    }
}

fn entity(account: usize) -> String {
    format!("ENTITYBENCH{account:04}")
}

/// The check's fleet, as `bench_health` seeds it: 2% answer 403, 1% are
/// unknown to AMC, the rest are healthy.
fn start_fake() -> FakeAmc {
    let fake = FakeAmc::start();
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN);
    for a in 0..CHECK_ACCOUNTS {
        fake.add_account(
            &entity(a),
            &format!("Bench {a}"),
            Country::US.marketplace_id(),
        );
    }
    for i in 0..CHECK_N {
        let id = format!("amc{i:08}");
        if i % 100 == 13 {
            continue;
        }
        if i % 50 == 7 {
            fake.on_instance(&id, Fault::Status(403));
        }
        fake.add_instance(&entity(i % CHECK_ACCOUNTS), &id, &id);
    }
    fake.set_latency(CHECK_LATENCY);
    fake.set_rate_limit(None);
    fake
}

fn check_csv() -> String {
    let mut text = String::from("instance_id,name,region,account_id,account_name,country_code\n");
    for i in 0..CHECK_N {
        let a = i % CHECK_ACCOUNTS;
        let _ = writeln!(
            text,
            "amc{i:08},Bench amc{i:08},na,{},Bench account {a},US",
            entity(a)
        );
    }
    text
}

/// `health check --all` of [`CHECK_N`] instances, each run on a fresh store
/// logged in to the fake (the login caches a token, so the check itself
/// refreshes none, on either backend).
fn measure_check(bin: &Path, server: &mut Option<Server>, dir: &Path) -> Line {
    let fake = start_fake();
    let file = dir.join("check.csv");
    std::fs::write(&file, check_csv()).expect("the check file is written");
    let fake_env = [
        ("AMCCTL_API_URL", fake.base_url()),
        ("AMCCTL_AUTH_URL", fake.token_url()),
    ];
    let mut times = [Times::default(), Times::default()];
    let mut reported = [Vec::new(), Vec::new()];
    for _ in 0..CHECK_RUNS {
        for ((&b, t), said) in Backend::BOTH.iter().zip(&mut times).zip(&mut reported) {
            let store = Store::fresh(b, bin, server);
            let run = |args: &[&str]| {
                let mut cmd = store.amcctl(bin);
                cmd.envs(fake_env.iter().map(|(k, v)| (k, v))).args(args);
                cmd
            };
            must(
                run(&["auth", "login", "--client-id", CLIENT_ID, "-q"])
                    .env("AMCCTL_CLIENT_SECRET", CLIENT_SECRET)
                    .env("AMCCTL_REFRESH_TOKEN", REFRESH_TOKEN),
                "auth login",
            );
            must(
                run(&["instance", "import", "-q"]).arg(&file),
                "instance import",
            );
            let out = store.file("check.json");
            let concurrency = CHECK_CONCURRENCY.to_string();
            let rate = CHECK_RATE.to_string();
            // Exit 10: some instances are (rightly) not healthy.
            t.0.push(must_exit(
                run(&[
                    "health",
                    "check",
                    "--all",
                    "--concurrency",
                    &concurrency,
                    "--rate",
                    &rate,
                    "-q",
                    "-o",
                    "json",
                ])
                .stdout(std::fs::File::create(&out).expect("an output file")),
                "health check",
                &[0, 10],
            ));
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&out).expect("the check's output"))
                    .expect("health check prints JSON");
            let results = json["results"].as_array().map_or(0, Vec::len);
            assert_eq!(results, CHECK_N, "every instance checked");
            said.push(json["summary"]["elapsed_ms"].as_u64().unwrap_or(0));
        }
    }
    let [sqlite, postgres] = times;
    let ratio = postgres.best().as_secs_f64() / sqlite.best().as_secs_f64();
    let ideal = CHECK_N as f64 * CHECK_LATENCY.as_secs_f64() / CHECK_CONCURRENCY as f64;
    let ms = |v: &[u64]| {
        v.iter()
            .map(|m| format!("{:.2}", *m as f64 / 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Line {
        what: "health check --all, 2,000 instances, L=50 ms, C=64 (best / median of 3)",
        target: format!(
            "≤ 1.1× SQLite: {ratio:.2}× (best), {:.2}× (median)",
            postgres.median().as_secs_f64() / sqlite.median().as_secs_f64()
        ),
        met: ratio <= 1.1,
        note: format!(
            "ideal N·L/C = {ideal:.2} s; amcctl's own elapsed_ms: SQLite {} s, PostgreSQL {} s",
            ms(&reported[0]),
            ms(&reported[1])
        ),
        sqlite,
        postgres,
    }
}

fn secs(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

/// The amcctl binary: `--bin`, else `target/<profile>/amcctl` next to this
/// example's `target/<profile>/examples/`.
fn amcctl_bin(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_owned();
    }
    let exe = std::env::current_exe().expect("the path of this example");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("amcctl"))
        .expect("a target folder")
}

fn main() {
    let args = Args::parse();
    // Before anything else: without a server there is nothing to compare.
    let mut server = Some(Server::from_env());
    let bin = amcctl_bin(args.bin.as_deref());
    assert!(
        bin.is_file(),
        "no amcctl binary at {} (run `cargo build --release` first, or pass --bin)",
        bin.display()
    );
    let dir = tempfile::tempdir().expect("a temporary folder");
    let started = Instant::now();
    let mut lines = Vec::new();
    for m in &args.only {
        let (load, busy) = (loadavg(), compilers_running());
        eprintln!("{m:?} …");
        let mut line = match m {
            Measure::List => measure_list(&bin, &mut server, dir.path()),
            Measure::Import => measure_import(&bin, &mut server, dir.path()),
            Measure::Check => measure_check(&bin, &mut server, dir.path()),
        };
        let load = format!(
            "load {load:.2}→{:.2}, {} compilers running",
            loadavg(),
            busy.max(compilers_running())
        );
        line.note = if line.note.is_empty() {
            load
        } else {
            format!("{}; {load}", line.note)
        };
        lines.push(line);
    }

    println!("| measured | SQLite | PostgreSQL | target | |");
    println!("|---|---:|---:|---|---|");
    for l in &lines {
        println!(
            "| {} | {} / {} | {} / {} | {} | {} |",
            l.what,
            secs(l.sqlite.best()),
            secs(l.sqlite.median()),
            secs(l.postgres.best()),
            secs(l.postgres.median()),
            l.target,
            if l.met { "PASS" } else { "FAIL" }
        );
    }
    println!();
    for l in &lines {
        let all = |t: &Times| {
            t.0.iter()
                .map(|d| format!("{:.3}", d.as_secs_f64()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "- {}: SQLite {} s; PostgreSQL {} s; {}",
            l.what,
            all(&l.sqlite),
            all(&l.postgres),
            l.note
        );
    }
    println!(
        "\n({} cores; load average {:.2} at the end; {:.0} s in all)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg(),
        started.elapsed().as_secs_f64()
    );
}
