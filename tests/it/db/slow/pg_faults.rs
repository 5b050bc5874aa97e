//! The team store's server stopped hard: a PostgreSQL server of the test's
//! own is stopped with `pg_ctl stop -m immediate` (every backend gone at
//! once, as in a crash or a failover) ten times while amcctl checks a fleet
//! of 300 instances, and ten times while it imports 5,000 instances in one
//! transaction. Every time amcctl exits 8 within 10 seconds of the stop,
//! naming the server and saying the connection was lost (or cannot be
//! made), never panicking; after the server restarts (crash recovery),
//! every health result committed before the stop is still there and agrees
//! with its instance's last health, an import is there whole or not at
//! all, `db check` passes, and the next command works.
//!
//! These tests stop their server, so they never use the shared test server
//! of `AMCCTL_TEST_PG`: each starts its own ([`pg::PrivateServer`]).

use std::collections::BTreeSet;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::pg::PrivateServer;
use crate::support::*;
use fake_amc::FakeAmc;

const ACME: &str = "ENTITY1AA1AA11AAA1";
const CLIENT: &str = "faults-client";
const SECRET: &str = "faults-client-secret";
const REFRESH: &str = "Atzr|faults-refresh";
/// The database of each test on its private server.
const DB: &str = "amcctl_faults";

/// Hard stops per scenario.
const STOPS: usize = 10;
/// Runs per scenario at most: a run that ends before the moment it was to
/// be stopped at is run again.
const MAX_RUNS: usize = 30;
/// How soon after the stop amcctl must have exited.
const EXIT_BOUND: Duration = Duration::from_secs(10);
/// How long a run may take to reach the moment it is stopped at.
const REACH_BOUND: Duration = Duration::from_secs(60);

/// The private server, its migrated database, and a home pointed at it.
struct World {
    server: PrivateServer,
    env: TestEnv,
}

impl World {
    /// `None` when the machine has no PostgreSQL server binaries (and the
    /// test is skipped; a failure under CI).
    fn start(extra_env: &[(&str, String)]) -> Option<World> {
        let server = PrivateServer::start_or_skip()?;
        server.create_database(DB);
        let mut env = TestEnv::new()
            .with_env("AMCCTL_DB", server.url(DB))
            .with_env("PGPASSWORD", server.password());
        for (k, v) in extra_env {
            env = env.with_env(*k, v);
        }
        Some(World { server, env })
    }

    /// A fresh connection to the database as the administrator (the
    /// previous one went with the server).
    fn admin(&self) -> postgres::Client {
        self.server.connect(DB)
    }

    fn scalar(&self, sql: &str) -> i64 {
        self.admin()
            .query_one(sql, &[])
            .and_then(|r| r.try_get(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Starts `amcctl ARGS` as alice, both outputs piped.
    fn spawn(&self, args: &[&str]) -> Running {
        let child = self
            .env
            .command(DEFAULT_USER, args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start amcctl");
        Running::watch(args, child)
    }

    /// Stops the server hard while `run` is under way and returns how long
    /// amcctl took to exit after the stop began, and its stderr; fails the
    /// test unless that was exit 8 within [`EXIT_BOUND`], naming the server
    /// and the lost connection.
    #[track_caller]
    fn stop_under(&self, run: Running, ctx: &str) -> (Duration, String) {
        let stopped_at = Instant::now();
        self.server.stop_immediate();
        let (exited_at, out) = run.finish_within(EXIT_BOUND + Duration::from_secs(5), ctx);
        let latency = exited_at.saturating_duration_since(stopped_at);
        assert_eq!(
            out.code, 8,
            "{ctx}: the server stopped, expected exit 8\n{}",
            out.stderr
        );
        assert!(
            latency <= EXIT_BOUND,
            "{ctx}: amcctl exited {latency:?} after the stop"
        );
        let host = format!("127.0.0.1:{}", self.server.port());
        assert!(
            out.stderr.contains(&host)
                && (out.stderr.contains("lost the connection to the store")
                    || out.stderr.contains("cannot connect to the store")),
            "{ctx}: stderr does not say the connection to {host} was lost:\n{}",
            out.stderr
        );
        (latency, out.stderr)
    }

    /// While the server is down, a new command is refused with exit 8,
    /// naming the server, within the 5 seconds the README promises.
    #[track_caller]
    fn assert_refused_while_down(&self, ctx: &str) {
        let started = Instant::now();
        let out = self.env.run(&["instance", "list"]);
        let took = started.elapsed();
        out.fails(
            8,
            &[
                "cannot connect to the store",
                &format!("127.0.0.1:{}", self.server.port()),
            ],
        );
        assert!(
            took < Duration::from_secs(5),
            "{ctx}: refused only after {took:?}"
        );
    }

    /// What must hold after every restart: `db check` passes and a command
    /// that reads the store works.
    #[track_caller]
    fn assert_recovered(&self, ctx: &str) {
        let out = self.env.run(&["db", "check"]);
        assert_eq!(out.code, 0, "{ctx}: db check:\n{}", out.stderr);
        let out = self.env.run(&["instance", "list", "-o", "json"]);
        assert_eq!(out.code, 0, "{ctx}: instance list:\n{}", out.stderr);
    }
}

/// A running amcctl, waited for on a thread of its own so that its exit is
/// an event with a time.
struct Running {
    args: Vec<String>,
    pid: libc::pid_t,
    exited: mpsc::Receiver<(Instant, std::process::Output)>,
}

impl Running {
    fn watch(args: &[&str], child: Child) -> Running {
        let pid = child.id() as libc::pid_t;
        let (tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            let out = child.wait_with_output().expect("wait for amcctl");
            let _ = tx.send((Instant::now(), out));
        });
        Running {
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            pid,
            exited,
        }
    }

    /// Whether it has exited; its exit, if so, stays to be collected.
    fn exited(&self) -> Option<(Instant, Output)> {
        self.exited
            .try_recv()
            .ok()
            .map(|(at, out)| (at, self.output(out)))
    }

    /// Waits for its exit; kills it and fails the test after `bound`.
    fn finish_within(self, bound: Duration, ctx: &str) -> (Instant, Output) {
        match self.exited.recv_timeout(bound) {
            Ok((at, out)) => (at, self.output(out)),
            Err(_) => {
                // SAFETY: a plain signal to a pid whose waiter has not
                // reported it finished, so the pid is still the child's.
                unsafe { libc::kill(self.pid, libc::SIGKILL) };
                panic!(
                    "{ctx}: amcctl {:?} still ran {bound:?} after the stop",
                    self.args
                );
            }
        }
    }

    /// What it showed; a panic fails the test whatever it was expected to do.
    fn output(&self, out: std::process::Output) -> Output {
        let out = Output {
            args: self.args.clone(),
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            stdout_bytes: out.stdout,
        };
        assert!(
            out.code != 101 && !out.stderr.contains("panicked at"),
            "amcctl {:?} panicked (exit {}):\n{}",
            out.args,
            out.code,
            out.stderr
        );
        out
    }
}

/// Polls `reached` (a few milliseconds apart: it reads another process's
/// progress, of which there is no event to await) until it holds or `run`
/// exits; true when it held first.
fn until_reached(run: &Running, mut reached: impl FnMut() -> bool) -> Result<(), Output> {
    let deadline = Instant::now() + REACH_BOUND;
    loop {
        if let Some((_, out)) = run.exited() {
            return Err(out);
        }
        if reached() {
            return Ok(());
        }
        assert!(
            Instant::now() < deadline,
            "amcctl {:?} did not reach its stopping point in {REACH_BOUND:?}",
            run.args
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The largest of `latencies`, for the report.
fn max(latencies: &[Duration]) -> Duration {
    latencies.iter().copied().max().unwrap_or_default()
}

#[test]
fn stopping_the_server_during_a_bulk_check_keeps_every_committed_result() {
    const FLEET: usize = 300;
    let started = Instant::now();
    let amc = FakeAmc::start();
    amc.add_client(CLIENT, SECRET, REFRESH);
    amc.add_account(ACME, "Acme", "ATVPDKIKX0DER");
    // 300 checks of 60 ms, 8 at a time: a run takes a few seconds, and
    // results are saved as they come, a batch every quarter second.
    amc.set_latency(Duration::from_millis(60));
    let credentials = [
        ("AMCCTL_API_URL", amc.base_url()),
        ("AMCCTL_AUTH_URL", amc.token_url()),
        ("AMCCTL_CLIENT_ID", CLIENT.to_owned()),
        ("AMCCTL_CLIENT_SECRET", SECRET.to_owned()),
        ("AMCCTL_REFRESH_TOKEN", REFRESH.to_owned()),
    ];
    let Some(world) = World::start(&credentials) else {
        return;
    };
    let env = &world.env;
    let mut csv = String::from("instance_id,name,region,account_id,account_name,country_code\n");
    for i in 0..FLEET {
        let id = format!("amcf{i:07}");
        amc.add_instance(ACME, &id, &id);
        csv.push_str(&format!("{id},Fleet {i},na,{ACME},Acme,US\n"));
    }
    let file = env.write_file("fleet.csv", csv);
    env.run(&["instance", "import", file.to_str().expect("utf-8 path")])
        .ok();
    let args = [
        "health",
        "check",
        "--all",
        "--concurrency",
        "8",
        "--rate",
        "1000",
        "-o",
        "ndjson",
    ];

    let mut latencies = Vec::new();
    // What amcctl told the user the first time, for the report.
    let mut said: Option<String> = None;
    let mut finished_first = 0;
    // Runs stopped after some of their results were saved, and before all.
    let mut partial = 0;
    while latencies.len() < STOPS {
        assert!(
            latencies.len() + finished_first < MAX_RUNS,
            "only {} of {MAX_RUNS} checks could be stopped mid-run",
            latencies.len()
        );
        let round = latencies.len();
        let before = world.scalar("SELECT count(*) FROM health_checks");
        amc.clear_requests();
        let run = world.spawn(&args);
        // Where in the run the server stops: the first round as soon as the
        // fake AMC is asked (nothing saved yet, or a batch on its way), the
        // others once a growing share of the fleet was saved.
        let mut admin = world.admin();
        let saved = |admin: &mut postgres::Client| -> i64 {
            admin
                .query_one("SELECT count(*) FROM health_checks", &[])
                .and_then(|r| r.try_get::<_, i64>(0))
                .expect("count the saved results")
                - before
        };
        let target = (round * 25) as i64;
        let reached = until_reached(&run, || {
            if round == 0 {
                !amc.requests().is_empty()
            } else {
                saved(&mut admin) >= target
            }
        });
        if let Err(out) = reached {
            // Too quick for this stopping point: not a stop, run it again.
            assert!(
                out.code == 0,
                "an unstopped check failed (exit {}):\n{}",
                out.code,
                out.stderr
            );
            finished_first += 1;
            continue;
        }
        // Every result committed so far: none may be missing after the restart.
        let committed: BTreeSet<i64> = ids(&mut admin);
        drop(admin);
        let ctx = format!(
            "check stopped after {} results were saved (round {round})",
            committed.len() as i64 - before
        );
        let (latency, stderr) = world.stop_under(run, &ctx);
        latencies.push(latency);
        said.get_or_insert(stderr);
        if round == 0 {
            world.assert_refused_while_down(&ctx);
        }
        world.server.start();

        let mut admin = world.admin();
        let after = ids(&mut admin);
        let lost: Vec<&i64> = committed.difference(&after).collect();
        assert!(lost.is_empty(), "{ctx}: committed results lost: {lost:?}");
        let saved_now = after.len() as i64 - before;
        if saved_now > 0 && saved_now < FLEET as i64 {
            partial += 1;
        }
        assert_history_agrees(&mut admin, &ctx);
        drop(admin);
        world.assert_recovered(&ctx);
        // The next check works and is saved.
        let history = world.scalar("SELECT count(*) FROM health_checks");
        env.run(&["health", "check", "amcf0000000", "--rate", "100"])
            .ok();
        assert_eq!(
            world.scalar("SELECT count(*) FROM health_checks"),
            history + 1,
            "{ctx}: the next check was saved"
        );
    }
    assert!(
        partial > 0,
        "no stop fell after some results of a run were saved and before all"
    );
    eprintln!(
        "pg faults, health check: {STOPS} hard stops ({finished_first} runs finished before \
         their stopping point, {partial} stopped with part of the fleet saved); exit 8 after \
         the stop in at most {:?} (all: {latencies:?}); {:?} in all; it said:\n{}",
        max(&latencies),
        started.elapsed(),
        said.unwrap_or_default()
    );
}

/// The ids of the saved results.
fn ids(admin: &mut postgres::Client) -> BTreeSet<i64> {
    admin
        .query("SELECT id FROM health_checks", &[])
        .expect("read the saved results")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Every instance's last health is its newest saved result, and an
/// instance without results has none.
#[track_caller]
fn assert_history_agrees(admin: &mut postgres::Client, ctx: &str) {
    let disagreeing: Vec<String> = admin
        .query(
            "SELECT i.instance_id FROM amc_instances i
             LEFT JOIN LATERAL (SELECT checked_at, status FROM health_checks h
                                WHERE h.instance_id = i.id
                                ORDER BY checked_at DESC, id DESC LIMIT 1) last ON true
             WHERE i.last_health_check IS DISTINCT FROM last.checked_at
                OR i.health_status IS DISTINCT FROM last.status
             ORDER BY 1",
            &[],
        )
        .expect("compare the history with the instances")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        disagreeing.is_empty(),
        "{ctx}: last health disagrees with the history for {} instance(s): {:?}",
        disagreeing.len(),
        &disagreeing[..disagreeing.len().min(10)]
    );
}

#[test]
fn stopping_the_server_during_an_import_of_5000_rows_keeps_all_or_none() {
    const ROWS: i64 = 5000;
    let started = Instant::now();
    let Some(world) = World::start(&[]) else {
        return;
    };
    let env = &world.env;
    // alice and the first account exist: the import's is the one write
    // transaction of a run.
    env.create_account(ACME, "Acme");
    let mut csv =
        String::from("instance_id,name,region,account_id,account_name,country_code,brands\n");
    for i in 0..ROWS {
        // Half on an existing account, half on one the import creates.
        let (entity, name) = if i % 2 == 0 {
            (ACME, "Acme")
        } else {
            ("ENTITY9IMPORT01", "Imported Co")
        };
        csv.push_str(&format!(
            "amci{i:07},Imported {i},na,{entity},{name},US,B{};Common\n",
            i % 7
        ));
    }
    let file = env.write_file("big.csv", csv);
    let args = ["instance", "import", file.to_str().expect("utf-8 path")];
    let counts = "SELECT (SELECT count(*) FROM amc_instances WHERE instance_id LIKE 'amci%'),
                         (SELECT count(*) FROM amc_accounts WHERE account_id = 'ENTITY9IMPORT01'),
                         (SELECT count(*) FROM instance_brands b
                          JOIN amc_instances i ON i.id = b.instance_id
                          WHERE i.instance_id LIKE 'amci%')";
    let forget = |world: &World| {
        world
            .admin()
            .batch_execute(
                "DELETE FROM amc_instances WHERE instance_id LIKE 'amci%';
                 DELETE FROM amc_accounts WHERE account_id = 'ENTITY9IMPORT01';",
            )
            .expect("forget the import");
    };
    // The backend of an amcctl whose transaction has written (a
    // transaction id is assigned at the first write) and not ended.
    let writing = format!(
        "SELECT count(*) FROM pg_stat_activity
         WHERE datname = '{DB}' AND application_name = 'amcctl' AND backend_xid IS NOT NULL"
    );

    let mut latencies = Vec::new();
    // What amcctl told the user the first time, for the report.
    let mut said: Option<String> = None;
    let mut finished_first = 0;
    let (mut none, mut all) = (0, 0);
    while latencies.len() < STOPS {
        assert!(
            latencies.len() + finished_first < MAX_RUNS,
            "only {} of {MAX_RUNS} imports could be stopped mid-transaction",
            latencies.len()
        );
        let round = latencies.len();
        let run = world.spawn(&args);
        let mut admin = world.admin();
        let reached = until_reached(&run, || {
            admin
                .query_one(&writing, &[])
                .and_then(|r| r.try_get::<_, i64>(0))
                .expect("look at the server's backends")
                > 0
        });
        drop(admin);
        if let Err(out) = reached {
            // The import committed before it could be caught writing.
            assert!(
                out.code == 0,
                "an unstopped import failed (exit {}):\n{}",
                out.code,
                out.stderr
            );
            finished_first += 1;
            forget(&world);
            continue;
        }
        let ctx = format!("import stopped in its transaction (round {round})");
        let (latency, stderr) = world.stop_under(run, &ctx);
        latencies.push(latency);
        said.get_or_insert(stderr);
        world.server.start();

        let row = world
            .admin()
            .query_one(counts, &[])
            .unwrap_or_else(|e| panic!("{counts}: {e}"));
        match (
            row.get::<_, i64>(0),
            row.get::<_, i64>(1),
            row.get::<_, i64>(2),
        ) {
            (0, 0, 0) => none += 1,
            (ROWS, 1, 10_000) => {
                // The commit got through in the instant before the stop.
                all += 1;
                forget(&world);
            }
            other => panic!("{ctx}: a partial import (instances, account, brands) = {other:?}"),
        }
        world.assert_recovered(&ctx);
    }
    // The next import is whole.
    env.run(&args).ok();
    assert_eq!(
        world.scalar("SELECT count(*) FROM amc_instances WHERE instance_id LIKE 'amci%'"),
        ROWS,
        "the import after the stops"
    );
    eprintln!(
        "pg faults, import: {STOPS} hard stops inside the import's transaction ({finished_first} \
         runs committed before they were caught writing); afterwards {none} left nothing, {all} \
         were whole; exit 8 after the stop in at most {:?} (all: {latencies:?}); {:?} in all; \
         it said:\n{}",
        max(&latencies),
        started.elapsed(),
        said.unwrap_or_default()
    );
}
