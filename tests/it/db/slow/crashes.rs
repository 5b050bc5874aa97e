//! Crashes: amcctl is killed with SIGKILL at random points (a seeded RNG;
//! the seed is printed, and `AMCCTL_STRESS_SEED` replays a run) while it
//! checks a fleet, imports 5,000 instances, rotates the key, or creates a
//! store. After every kill the store opens, passes SQLite's integrity and
//! foreign-key checks, holds all or nothing of an import, and holds no
//! secret the current key cannot decrypt; the next command settles an
//! interrupted rotation, and the stored credentials still authenticate.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use amcctl::secrets::{KeySource, Keyring};
use fake_amc::FakeAmc;
use secrecy::ExposeSecret;

const ACME: &str = "ENTITY1AA1AA11AAA1";
const CLIENT: &str = "crash-client";
const SECRET: &str = "crash-client-secret";
const REFRESH: &str = "Atzr|crash-refresh";
const BOB_CLIENT: &str = "crash-client-bob";
const BOB_SECRET: &str = "crash-bob-secret";
const BOB_REFRESH: &str = "Atzr|crash-bob-refresh";

/// Runs killed mid-flight per scenario, at least.
const KILLS: usize = 20;
/// Runs per scenario, at most (some finish before their kill time).
const MAX_RUNS: usize = 60;
/// Runs per scenario, at most, added after those while a kill the scenario
/// requires (one inside its transaction, say) has not happened yet.
const EXTRA_RUNS: usize = 60;

/// The seed of this run: `AMCCTL_STRESS_SEED`, else the clock. Printed so
/// a failing run can be replayed.
fn rng(scenario: &str) -> fastrand::Rng {
    let seed = std::env::var("AMCCTL_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("{scenario}: seed {seed} (replay with AMCCTL_STRESS_SEED={seed})");
    fastrand::Rng::with_seed(seed)
}

/// The kills of one scenario: when to strike next, and how the runs ended.
///
/// Kill times are drawn from `[0, span)`. The span starts from one timed
/// run, but a run's length varies with the machine's load (the crash tests
/// run beside each other), so it adapts: every run that finishes before its
/// kill time shrinks it, every kill lets it grow back towards the start.
/// Kills then land on most runs however fast or slow the machine is.
struct Kills {
    rng: fastrand::Rng,
    span: Duration,
    longest: Duration,
    /// Kills mid-flight wanted.
    target: usize,
    killed: usize,
    finished_first: usize,
}

impl Kills {
    /// Kills for `scenario` over runs that take about `run` uninterrupted.
    fn new(scenario: &str, run: Duration, target: usize) -> Self {
        let span = run.mul_f64(1.3).max(Duration::from_millis(1));
        Kills {
            rng: rng(scenario),
            span,
            longest: span,
            target,
            killed: 0,
            finished_first: 0,
        }
    }

    /// Runs so far, killed or not.
    fn runs(&self) -> usize {
        self.killed + self.finished_first
    }

    /// Whether a scenario needs another run: until `target` runs were
    /// killed (within [`MAX_RUNS`] runs per [`KILLS`] kills), then on while
    /// `seen`, all the scenario requires to have happened, is false
    /// (within [`EXTRA_RUNS`] more per [`KILLS`]).
    fn more(&self, seen: bool) -> bool {
        let normal = MAX_RUNS * self.target / KILLS;
        if self.killed < self.target {
            self.runs() < normal
        } else {
            !seen && self.runs() < normal + EXTRA_RUNS * self.target / KILLS
        }
    }

    /// Lets `child` run for a random time within the span, then SIGKILLs it
    /// unless it already ended; returns that time.
    fn strike(&mut self, child: Child) -> Duration {
        self.strike_looking(child, || ()).0
    }

    /// Like [`Kills::strike`], but calls `look` right before the kill, the
    /// process still running, and returns what it saw; `None` when the run
    /// ended before its kill time.
    fn strike_looking<T>(
        &mut self,
        mut child: Child,
        look: impl FnOnce() -> T,
    ) -> (Duration, Option<T>) {
        let max = u64::try_from(self.span.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let after = Duration::from_micros(self.rng.u64(0..=max));
        // The delay is the experiment (where in its run the process dies),
        // not a wait for something to happen.
        std::thread::sleep(after);
        let seen = match child.try_wait().expect("poll amcctl") {
            Some(_) => {
                self.finished_first += 1;
                self.span = self.span.mul_f64(0.7).max(Duration::from_millis(1));
                None
            }
            None => {
                let seen = look();
                child.kill().expect("SIGKILL amcctl");
                self.killed += 1;
                self.span = self.span.mul_f64(1.1).min(self.longest);
                Some(seen)
            }
        };
        child.wait().expect("reap amcctl");
        (after, seen)
    }

    /// Prints how the runs ended, then fails unless `target` runs were
    /// killed and every one of `required` (what a kill must have hit, and
    /// whether one did) happened.
    fn report(&self, scenario: &str, extra: &str, required: &[(&str, bool)]) {
        eprintln!(
            "{scenario}: {} runs SIGKILLed mid-flight, {} finished before their kill time{extra}",
            self.killed, self.finished_first
        );
        assert!(
            self.killed >= self.target,
            "{scenario}: only {} of {} runs were killed mid-flight",
            self.killed,
            self.runs()
        );
        let never: Vec<&str> = required
            .iter()
            .filter(|(_, seen)| !seen)
            .map(|(what, _)| *what)
            .collect();
        assert!(
            never.is_empty(),
            "{scenario}: in {} runs ({} killed), never {}{extra}",
            self.runs(),
            self.killed,
            never.join("; never ")
        );
    }
}

fn spawn(env: &TestEnv, args: &[&str]) -> Child {
    env.command(DEFAULT_USER, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start amcctl")
}

/// How long an uninterrupted run takes: where kill times start from.
fn timed(env: &TestEnv, args: &[&str]) -> Duration {
    let started = Instant::now();
    env.run(args).ok();
    started.elapsed()
}

/// Whether another process holds the store's write lock right now, that
/// is, has a write transaction open. In WAL mode SQLite holds that lock
/// from `BEGIN IMMEDIATE` to the end of the commit as a POSIX lock on byte
/// 120 of the `-shm` file (WAL_WRITE_LOCK, the first lock after the
/// wal-index header; the offset is part of the file format, which every
/// process sharing the store relies on). F_GETLK only asks: the process
/// under test never waits for the test.
fn write_locked(db: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let mut shm = db.as_os_str().to_owned();
    shm.push("-shm");
    let Ok(file) = std::fs::File::open(shm) else {
        return false;
    };
    // SAFETY: an all-zero `flock` is a valid value of the plain C struct.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 120;
    lock.l_len = 1;
    // SAFETY: F_GETLK on an open descriptor with a valid `flock` to fill.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    assert_eq!(
        rc,
        0,
        "F_GETLK on the -shm file: {}",
        std::io::Error::last_os_error()
    );
    lock.l_type != libc::F_UNLCK as libc::c_short
}

/// What must hold after every kill: the store opens and is sound.
#[track_caller]
fn assert_recovered(env: &TestEnv, context: &str) {
    let out = env.run(&["instance", "list", "-o", "json"]);
    assert_eq!(
        out.code, 0,
        "{context}: the store does not open:\n{}",
        out.stderr
    );
    env.assert_store_sound(context);
    let out = env.run(&["db", "check"]);
    assert_eq!(out.code, 0, "{context}: db check:\n{}", out.stderr);
}

/// Alice (and bob) logged in against a fake AMC that knows `instances`.
fn logged_in(amc: &FakeAmc, instances: usize) -> TestEnv {
    amc.add_client(CLIENT, SECRET, REFRESH);
    amc.add_client(BOB_CLIENT, BOB_SECRET, BOB_REFRESH);
    amc.add_account(ACME, "Acme", "ATVPDKIKX0DER");
    let env = TestEnv::new().with_fake_amc(amc);
    let mut csv = String::from("instance_id,name,region,account_id,account_name,country_code\n");
    for i in 0..instances {
        let id = format!("amcf{i:07}");
        amc.add_instance(ACME, &id, &id);
        csv.push_str(&format!("{id},Fleet {i},na,{ACME},Acme,US\n"));
    }
    let file = env.write_file("fleet.csv", csv);
    env.run(&["instance", "import", file.to_str().expect("utf-8 path")])
        .ok();
    env.login("alice", CLIENT, SECRET, REFRESH).ok();
    env.login("bob", BOB_CLIENT, BOB_SECRET, BOB_REFRESH).ok();
    env
}

#[test]
fn killing_a_bulk_health_check_loses_nothing_committed() {
    let amc = FakeAmc::start();
    amc.set_latency(Duration::from_millis(2));
    let env = logged_in(&amc, 120);
    let args = [
        "health",
        "check",
        "--all",
        "--rate",
        "400",
        "--concurrency",
        "8",
        "-o",
        "ndjson",
    ];
    let mut kills = Kills::new("health check", timed(&env, &args), KILLS);
    // Killed runs that had recorded some of the fleet's 120 results, but not all.
    let mut partial = 0;
    let mut history = env.probe().count("health_checks");
    while kills.more(partial > 0) {
        let before = env.probe().count("health_checks");
        let (delay, killed) = kills.strike_looking(spawn(&env, &args), || ());
        let ctx = format!("health check killed after {delay:?} (run {})", kills.runs());
        assert_recovered(&env, &ctx);
        // Recorded results are only ever added; each names a live instance
        // (the foreign-key check) and updated its instance's last health.
        let now = env.probe().count("health_checks");
        assert!(
            now >= history,
            "{ctx}: history shrank from {history} to {now}"
        );
        history = now;
        if killed.is_some() && (1..120).contains(&(now - before)) {
            partial += 1;
        }
        assert_eq!(
            env.probe().scalar(
                "SELECT count(*) FROM amc_instances i WHERE EXISTS
                   (SELECT 1 FROM health_checks h WHERE h.instance_id = i.id)
                 AND i.last_health_check IS NULL"
            ),
            0,
            "{ctx}: a recorded check without the instance's last health"
        );
        env.run(&["auth", "status"]).ok();
        // The stored credentials (and any cached token) still work.
        env.run(&["health", "check", "amcf0000000", "--rate", "100"])
            .ok();
    }
    kills.report(
        "health check",
        &format!(", {history} results recorded, {partial} killed runs recorded part of the fleet"),
        &[(
            "a kill after some results were recorded and before all were",
            partial > 0,
        )],
    );
}

#[test]
fn killing_an_import_of_5000_rows_keeps_all_or_none() {
    let env = TestEnv::new();
    env.create_account(ACME, "Acme");
    let mut csv =
        String::from("instance_id,name,region,account_id,account_name,country_code,brands\n");
    for i in 0..5000 {
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
    let file = file.to_str().expect("utf-8 path");
    let args = ["instance", "import", file];
    let imported = "SELECT count(*) FROM amc_instances WHERE instance_id LIKE 'amci%'";
    let account = "SELECT count(*) FROM amc_accounts WHERE account_id = 'ENTITY9IMPORT01'";
    let brands =
        "SELECT count(*) FROM instance_brands b JOIN amc_instances i ON i.id = b.instance_id
                  WHERE i.instance_id LIKE 'amci%'";
    let forget = |env: &TestEnv| {
        env.probe()
            .exec("DELETE FROM amc_instances WHERE instance_id LIKE 'amci%'");
        env.probe()
            .exec("DELETE FROM amc_accounts WHERE account_id = 'ENTITY9IMPORT01'");
    };
    let mut kills = Kills::new("import", timed(&env, &args), KILLS);
    assert_eq!(env.probe().scalar(imported), 5000);
    forget(&env);
    let mut baseline = env.dump();
    let db = env.db_path();
    // How killed runs ended: nothing left, the write transaction open at
    // the kill (so nothing left is its rollback), and the import whole.
    let (mut none, mut rolled_back, mut complete) = (0, 0, 0);
    let mut all = 0;
    // alice exists, so the import's is the one write transaction of a run.
    while kills.more(rolled_back > 0) {
        let (delay, locked) = kills.strike_looking(spawn(&env, &args), || write_locked(&db));
        let ctx = format!("import killed after {delay:?} (run {})", kills.runs());
        assert_recovered(&env, &ctx);
        match (
            env.probe().scalar(imported),
            env.probe().scalar(account),
            env.probe().scalar(brands),
        ) {
            (0, 0, 0) => {
                none += 1;
                if locked == Some(true) {
                    rolled_back += 1;
                }
                env.assert_unchanged(&baseline, &ctx);
            }
            (5000, 1, 10_000) => {
                all += 1;
                if locked.is_some() {
                    complete += 1;
                }
                forget(&env);
                // The import's audit entry stays: the trail is append-only.
                baseline = env.dump();
            }
            other => panic!("{ctx}: a partial import (instances, account, brands) = {other:?}"),
        }
    }
    kills.report(
        "import",
        &format!(
            ": {all} imports complete ({complete} of them killed after the commit), \
             {none} left no trace ({rolled_back} of them killed in the open transaction)"
        ),
        &[("a kill inside the open import transaction", rolled_back > 0)],
    );
}

/// Every secret in the store, with the plaintext expected where the test knows it.
fn stored_secrets(env: &TestEnv) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for row in env.probe().rows(
        "SELECT c.client_secret_enc, c.refresh_token_enc, c.access_token_enc, u.name
         FROM credentials c JOIN users u ON u.id = c.user_id",
    ) {
        let unquote = |s: &str| s.trim_matches('"').to_owned();
        let (secret, refresh) = if row[3] == "\"bob\"" {
            (BOB_SECRET, BOB_REFRESH)
        } else {
            (SECRET, REFRESH)
        };
        out.push((unquote(&row[0]), Some(secret.to_owned())));
        out.push((unquote(&row[1]), Some(refresh.to_owned())));
        if row[2] != "NULL" {
            out.push((unquote(&row[2]), None));
        }
    }
    for row in env.probe().rows(
        "SELECT encrypted_config, instance_id FROM amc_instances WHERE encrypted_config IS NOT NULL",
    ) {
        let id = row[1].trim_matches('"');
        out.push((
            row[0].trim_matches('"').to_owned(),
            Some(format!("{{\"config\":\"{id}\"}}")),
        ));
    }
    out
}

/// Every stored secret opens with the key file, to its original plaintext.
#[track_caller]
fn assert_secrets_open_with_key(env: &TestEnv, context: &str) {
    let key = key_file(&env.home().join("key")).expect("a key file");
    let secrets = stored_secrets(env);
    assert!(secrets.len() > 400, "{context}: the secrets are there");
    for (token, plain) in secrets {
        let got = key
            .decrypt(&token)
            .unwrap_or_else(|e| panic!("{context}: a stored secret is stranded: {e}"));
        if let Some(plain) = plain {
            assert_eq!(got.expose_secret(), plain, "{context}: a secret changed");
        }
    }
}

fn key_file(path: &Path) -> Option<Keyring> {
    let text = std::fs::read_to_string(path).ok()?;
    Keyring::from_key(&text, KeySource::File(path.to_owned())).ok()
}

/// Where a killed rotation stopped, seen from the files and the store.
fn rotation_state(home: &Path, sample: &str, before: &str) -> &'static str {
    let key = key_file(&home.join("key"));
    let new = key_file(&home.join("key.new"));
    let current_text = std::fs::read_to_string(home.join("key")).unwrap_or_default();
    match (key, new) {
        (None, Some(_)) => "between the two renames",
        (Some(k), Some(n)) if k.can_decrypt(sample) => {
            let _ = n;
            "staged, not committed"
        }
        (Some(_), Some(n)) if n.can_decrypt(sample) => "committed, not promoted",
        (Some(_), None) if current_text == before => "not started",
        (Some(_), None) => "finished",
        _ => "unrecognised",
    }
}

#[test]
fn killing_a_key_rotation_never_strands_a_secret() {
    let amc = FakeAmc::start();
    let env = logged_in(&amc, 400);
    let home = env.home().to_owned();
    // Every instance gets an encrypted config, so the rotation has 800+
    // secrets to re-encrypt and its transaction lasts long enough to be hit.
    {
        let keyring = key_file(&home.join("key")).expect("the key file");
        let probe = env.probe();
        for row in probe.rows("SELECT instance_id FROM amc_instances") {
            let id: String = serde_json::from_str(&row[0]).expect("a text instance_id");
            let enc = keyring.encrypt(&format!("{{\"config\":\"{id}\"}}"));
            probe.set_settings_token(&id, &enc);
        }
    }
    // A cached access token for each user, so that is re-encrypted too.
    env.run(&["health", "check", "amcf0000000"]).ok();
    env.run_as("bob", &["auth", "status"]).ok();
    let args = ["key", "rotate", "--yes"];
    // Rotations are short and have the most steps to be caught between.
    let mut kills = Kills::new("key rotate", timed(&env, &args), 2 * KILLS);
    let db = env.db_path();
    // Where the killed rotations stopped, and how often; and how many were
    // killed with the re-encryption's transaction open. The key is written
    // as key.new before the store is opened, so a staged key alone does
    // not show that: the store's write lock held at the kill does.
    let mut states: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut reencrypting = 0;
    let mut rotations = 0;
    while kills.more(states.len() > 1 && reencrypting > 0) {
        let before = std::fs::read_to_string(home.join("key")).expect("the key");
        let sample = stored_secrets(&env)[0].0.clone();
        let (delay, locked) = kills.strike_looking(spawn(&env, &args), || write_locked(&db));
        let ctx = format!("key rotate killed after {delay:?} (run {})", kills.runs());
        if let Some(locked) = locked {
            let state = rotation_state(&home, &sample, &before);
            *states.entry(state).or_default() += 1;
            if locked && state == "staged, not committed" {
                reencrypting += 1;
            }
        }
        assert_recovered(&env, &ctx);
        // The next command that needs the key settles the rotation...
        let out = env.run(&["auth", "status", "-o", "json"]);
        assert_eq!(out.code, 0, "{ctx}: auth status\n{}", out.stderr);
        assert!(
            !home.join("key.new").exists(),
            "{ctx}: key.new was left behind"
        );
        // ... after which the key file opens every stored secret.
        assert_secrets_open_with_key(&env, &ctx);
        if std::fs::read_to_string(home.join("key")).expect("key") != before {
            rotations += 1;
        }
        env.run_as("bob", &["auth", "status"]).ok();
        env.assert_store_sound(&ctx);
        // The credentials still authenticate: force a refresh now and then.
        if kills.runs().is_multiple_of(4) {
            amc.expire_tokens();
            env.probe().expire_access_tokens();
        }
        env.run(&["health", "check", "amcf0000001"]).ok();
    }
    // A rotation that runs to the end clears what killed ones left behind.
    env.run(&args).ok();
    assert_secrets_open_with_key(&env, "after a final rotation");
    let leftovers: Vec<String> = std::fs::read_dir(&home)
        .expect("list the home")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("key") && !["key", "key.old", "key.lock"].contains(&n.as_str()))
        .collect();
    kills.report(
        "key rotate",
        &format!(
            ": {rotations} rotations took effect; states right after the kill: {states:?}, \
             {reencrypting} killed while re-encrypting; leftover key files: {leftovers:?}"
        ),
        &[
            (
                "kills in more than one state of the rotation",
                states.len() > 1,
            ),
            (
                "a kill while re-encrypting (key.new staged, the store's write transaction open)",
                reencrypting > 0,
            ),
        ],
    );
    assert!(
        leftovers.is_empty(),
        "temporary key files left: {leftovers:?}"
    );
}

#[test]
fn killing_the_first_command_never_leaves_a_store_that_will_not_open() {
    let probe = TestEnv::new();
    let args = ["account", "create", "--account-id", ACME, "--name", "Acme"];
    let mut kills = Kills::new("first run", timed(&probe, &args), KILLS);
    let mut created = 0;
    while kills.more(true) {
        let env = TestEnv::new();
        let delay = kills.strike(spawn(&env, &args));
        let ctx = format!(
            "first command killed after {delay:?} (run {})",
            kills.runs()
        );
        assert_recovered(&env, &ctx);
        // The account is there exactly when the command got that far;
        // either way the command can be repeated or is a clean conflict.
        let accounts = env.probe().count("amc_accounts");
        let again = env.run(&args);
        match accounts {
            0 => assert_eq!(again.code, 0, "{ctx}: {}", again.stderr),
            1 => {
                created += 1;
                assert_eq!(again.code, 5, "{ctx}: {}", again.stderr);
            }
            n => panic!("{ctx}: {n} accounts"),
        }
        env.assert_store_sound(&ctx);
    }
    kills.report(
        "first run",
        &format!(": {created} got as far as the account"),
        &[],
    );
}
