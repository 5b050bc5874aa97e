//! Concurrent processes: a dozen amcctl processes at once on one store for
//! a bounded time — bulk health checks against the fake AMC, creates,
//! deletes, edits, brand changes, account changes, imports, lists, logins
//! and key rotations, each in its own loop — the way cron and people share
//! a store. No command may fail on a lock ("database is locked" must never
//! reach a user), every acknowledged write (exit 0) must be in the store
//! afterwards, and the store must pass SQLite's integrity and foreign-key
//! checks.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::*;
use amcctl::secrets::{KeySource, Keyring};
use fake_amc::FakeAmc;

const ACME: &str = "ENTITY1AA1AA11AAA1";
const CLIENT: &str = "conc-client";
const SECRET: &str = "conc-client-secret";
const REFRESH: &str = "Atzr|conc-refresh";

/// Alice's fleet: known to the fake, never deleted, checked in bulk.
const FLEET: usize = 40;

/// Runs processes, counts them, and keeps the peak of those running at once.
struct Runner<'a> {
    env: &'a TestEnv,
    deadline: Instant,
    running: AtomicUsize,
    peak: AtomicUsize,
    runs: Mutex<Vec<Output>>,
}

impl Runner<'_> {
    fn new(env: &TestEnv, budget: Duration) -> Runner<'_> {
        Runner {
            env,
            deadline: Instant::now() + budget,
            running: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            runs: Mutex::new(Vec::new()),
        }
    }

    fn more(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// Runs one command; it must not report a lock, nor panic.
    fn run(&self, user: &str, args: &[&str]) -> Output {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let out = self.env.run_as(user, args);
        self.running.fetch_sub(1, Ordering::SeqCst);
        let err = out.stderr.to_lowercase();
        assert!(
            !err.contains("locked") && !err.contains("busy"),
            "a lock reached the user: amcctl {args:?} (exit {})\n{}",
            out.code,
            out.stderr
        );
        assert!(
            !err.contains("panicked") && out.code != 101,
            "amcctl {args:?} panicked:\n{}",
            out.stderr
        );
        self.runs.lock().expect("runs").push(out.clone());
        out
    }

    /// Runs one command that must succeed.
    #[track_caller]
    fn ok(&self, user: &str, args: &[&str]) -> Output {
        let out = self.run(user, args);
        assert_eq!(
            out.code, 0,
            "amcctl {args:?} as {user} failed:\n{}",
            out.stderr
        );
        out
    }

    fn count(&self) -> usize {
        self.runs.lock().expect("runs").len()
    }
}

/// A fake AMC and a store where alice is logged in and owns the fleet.
fn world() -> (FakeAmc, TestEnv) {
    let amc = FakeAmc::start();
    amc.add_client(CLIENT, SECRET, REFRESH);
    amc.add_account(ACME, "Acme", "ATVPDKIKX0DER");
    let env = TestEnv::new().with_fake_amc(&amc);
    let mut csv = String::from("instance_id,name,region,account_id,account_name,country_code\n");
    for i in 0..FLEET {
        let id = format!("amcfleet{i:03}");
        amc.add_instance(ACME, &id, &id);
        csv.push_str(&format!("{id},Fleet {i},na,{ACME},Acme,US\n"));
    }
    let file = env.write_file("fleet.csv", csv);
    env.run(&["instance", "import", file.to_str().expect("utf-8 path")])
        .ok();
    env.login("alice", CLIENT, SECRET, REFRESH).ok();
    for user in ["bob", "carol", "dave", "erin"] {
        env.run(&["user", "add", user]).ok();
    }
    (amc, env)
}

#[test]
fn a_dozen_processes_at_once_lose_nothing_and_never_see_a_lock() {
    let (amc, env) = world();
    amc.set_latency(Duration::from_millis(3));
    let r = Runner::new(&env, Duration::from_secs(12));
    let results_recorded = AtomicUsize::new(0);
    let created: Mutex<BTreeSet<String>> = Mutex::default();
    let deleted: Mutex<BTreeSet<String>> = Mutex::default();
    let names: Mutex<BTreeMap<String, String>> = Mutex::default();
    let brands: Mutex<BTreeMap<String, BTreeSet<String>>> = Mutex::default();
    let imported: Mutex<BTreeMap<String, String>> = Mutex::default();
    let accounts: Mutex<BTreeMap<String, String>> = Mutex::default();
    let backups: Mutex<Vec<std::path::PathBuf>> = Mutex::default();

    std::thread::scope(|s| {
        // Two bulk checks of alice's whole fleet, over and over.
        for worker in 0..2 {
            let (r, recorded) = (&r, &results_recorded);
            s.spawn(move || {
                let formats = ["json", "ndjson"];
                while r.more() {
                    let format = formats[worker];
                    let out = r.ok(
                        "alice",
                        &["health", "check", "--all", "--rate", "100", "-o", format],
                    );
                    let checked = if format == "json" {
                        out.json()["summary"]["checked"].as_u64().expect("checked") as usize
                    } else {
                        out.ndjson().len()
                    };
                    // Two of the fleet may be INACTIVE at the time: --all skips them.
                    assert!(
                        (FLEET - 2..=FLEET).contains(&checked),
                        "the fleet was checked: {checked}"
                    );
                    recorded.fetch_add(checked, Ordering::SeqCst);
                }
            });
        }
        // Single deep checks, by name.
        {
            let (r, recorded) = (&r, &results_recorded);
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    let name = format!("Fleet {}", 30 + n % 10);
                    r.ok(
                        "alice",
                        &["health", "check", &name, "--deep", "--rate", "100"],
                    );
                    recorded.fetch_add(1, Ordering::SeqCst);
                    n += 1;
                }
            });
        }
        // Bob creates instances and deletes every third one.
        {
            let (r, created, deleted) = (&r, &created, &deleted);
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    let id = format!("amcbob{n:05}");
                    r.ok(
                        "bob",
                        &[
                            "instance",
                            "create",
                            "--instance-id",
                            &id,
                            "--account",
                            ACME,
                            "--brand",
                            "Bobs",
                            "--skip-validation",
                            "-o",
                            "json",
                        ],
                    );
                    created.lock().expect("created").insert(id.clone());
                    if n % 3 == 2 {
                        r.ok("bob", &["instance", "delete", &id, "--yes"]);
                        deleted.lock().expect("deleted").insert(id);
                    }
                    n += 1;
                }
            });
        }
        // Alice renames the first ten instances of her fleet, round robin.
        {
            let (r, names) = (&r, &names);
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    let id = format!("amcfleet{:03}", n % 10);
                    let name = format!("Renamed {n}");
                    r.ok("alice", &["instance", "edit", &id, "--name", &name]);
                    names.lock().expect("names").insert(id, name);
                    n += 1;
                }
            });
        }
        // Alice changes the brands of five more: set, add, remove, clear.
        {
            let (r, brands) = (&r, &brands);
            s.spawn(move || {
                let mut n = 0usize;
                while r.more() {
                    let id = format!("amcfleet{:03}", 10 + n % 5);
                    let b1 = format!("Brand {n}");
                    let b2 = format!("Brand {}", n + 1);
                    let mut model = brands.lock().expect("brands");
                    let set = model.entry(id.clone()).or_default();
                    match (n / 5) % 4 {
                        0 => {
                            r.ok("alice", &["brand", "set", &id, &b1, &b2]);
                            *set = [b1, b2].into();
                        }
                        1 => {
                            r.ok("alice", &["brand", "add", &id, &b1, "Shared"]);
                            set.extend([b1, "Shared".to_owned()]);
                        }
                        2 => {
                            if let Some(first) = set.iter().next().cloned() {
                                r.ok("alice", &["brand", "remove", &id, &first]);
                                set.remove(&first);
                            }
                        }
                        _ => {
                            r.ok("alice", &["brand", "clear", &id, "--yes"]);
                            set.clear();
                        }
                    }
                    drop(model);
                    n += 1;
                }
            });
        }
        // Alice deactivates and re-activates two instances of her fleet
        // while the bulk checks run over them.
        {
            let r = &r;
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    let id = format!("amcfleet{:03}", 20 + n % 2);
                    r.ok("alice", &["instance", "deactivate", &id]);
                    r.ok("alice", &["instance", "activate", &id, "--skip-validation"]);
                    n += 1;
                }
            });
        }
        // Carol imports batches: 20 new instances each, and the previous
        // batch again under new names (updates).
        {
            let (r, imported) = (&r, &imported);
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    let mut csv = String::from(
                        "instance_id,name,region,account_id,account_name,country_code,brands\n",
                    );
                    let mut rows = Vec::new();
                    let batches = if n == 0 { vec![0] } else { vec![n, n - 1] };
                    for batch in batches {
                        for j in 0..20 {
                            let id = format!("amcimp{batch:04}{j:02}");
                            let name = format!("Import {n} row {batch}-{j}");
                            csv.push_str(&format!(
                                "{id},{name},eu,ENTITY7IMPORT{:02},Importer {},DE,Imported;B{j}\n",
                                batch % 3,
                                batch % 3
                            ));
                            rows.push((id, name));
                        }
                    }
                    let file = r.env.write_file(&format!("carol-{n}.csv"), &csv);
                    r.ok(
                        "carol",
                        &[
                            "instance",
                            "import",
                            file.to_str().expect("path"),
                            "-o",
                            "json",
                        ],
                    );
                    imported.lock().expect("imported").extend(rows);
                    n += 1;
                }
            });
        }
        // Erin creates accounts and renames them.
        {
            let (r, accounts) = (&r, &accounts);
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    let entity = format!("ENTITY5ERIN{n:05}");
                    let name = format!("Erin {n}");
                    r.ok(
                        "erin",
                        &[
                            "account",
                            "create",
                            "--account-id",
                            &entity,
                            "--name",
                            &name,
                        ],
                    );
                    let renamed = format!("Erin {n} renamed");
                    r.ok("erin", &["account", "edit", &entity, "--name", &renamed]);
                    accounts.lock().expect("accounts").insert(entity, renamed);
                    n += 1;
                }
            });
        }
        // Backups and checks of the store while everyone writes: each
        // backup is a consistent, self-contained store of its own.
        {
            let (r, backups) = (&r, &backups);
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    r.ok("dave", &["db", "check"]);
                    let file = r.env.scratch().join(format!("backup-{n}.db"));
                    r.ok("dave", &["db", "backup", file.to_str().expect("path")]);
                    backups.lock().expect("backups").push(file);
                    n += 1;
                }
            });
        }
        // Dave and a second reader list everything, in every format.
        for reader in ["dave", "alice"] {
            let r = &r;
            s.spawn(move || {
                let lists: &[&[&str]] = &[
                    &["instance", "list", "--all-users", "-o", "json"],
                    &["health", "status", "--all-users", "-o", "json"],
                    &["brand", "list", "--all-users", "-o", "json"],
                    &["health", "report", "--all-users", "-o", "json"],
                    &["account", "list", "-o", "json"],
                    &["user", "list", "-o", "json"],
                    &["instance", "list", "--all-users", "-o", "csv"],
                    &["instance", "export", "-o", "csv"],
                ];
                let mut n = 0;
                while r.more() {
                    let args = lists[n % lists.len()];
                    let out = r.ok(reader, args);
                    if args.contains(&"json") {
                        let v = out.json();
                        assert!(v.is_array() || v.is_object(), "{args:?}: {}", out.stdout);
                    } else {
                        out.csv();
                    }
                    n += 1;
                }
            });
        }
    });

    let commands = r.count();
    let peak = r.peak.load(Ordering::SeqCst);
    eprintln!(
        "concurrency: {commands} commands, up to {peak} processes at once, none failed; {} backups",
        backups.lock().expect("backups").len()
    );
    assert!(peak >= 8, "at least 8 processes ran at once (peak {peak})");

    env.assert_store_sound("after the concurrent run");
    env.run(&["db", "check"]).ok();
    let backups = backups.into_inner().expect("backups");
    assert!(!backups.is_empty(), "backups were taken");
    for file in &backups {
        let backup = Probe::new(file);
        let problems = backup.problems();
        assert!(problems.is_empty(), "{}: {problems:?}", file.display());
        assert_eq!(backup.journal_mode(), "delete", "a backup is one file");
    }
    // Bob's acknowledged creates are there, his acknowledged deletes are not.
    let bobs: BTreeSet<String> = strings_of(
        &env,
        "SELECT i.instance_id FROM amc_instances i
        JOIN users u ON u.id = i.user_id WHERE u.name = 'bob'",
    );
    let created = created.into_inner().expect("created");
    let deleted = deleted.into_inner().expect("deleted");
    let expected: BTreeSet<String> = created.difference(&deleted).cloned().collect();
    assert_eq!(bobs, expected, "bob's instances");
    // Every instance keeps its last acknowledged name and brand set.
    for (id, name) in names.into_inner().expect("names") {
        let got = env.probe().rows(&format!(
            "SELECT name FROM amc_instances WHERE instance_id = '{id}'"
        ));
        assert_eq!(got, [[format!("{name:?}")]], "the name of {id}");
    }
    for (id, want) in brands.into_inner().expect("brands") {
        let got = strings_of(
            &env,
            &format!(
                "SELECT b.brand_name FROM instance_brands b JOIN amc_instances i ON i.id = b.instance_id
                 WHERE i.instance_id = '{id}'"
            ),
        );
        assert_eq!(got, want, "the brands of {id}");
    }
    let imported = imported.into_inner().expect("imported");
    let carols: HashMap<String, String> = env
        .probe()
        .rows(
            "SELECT i.instance_id, i.name FROM amc_instances i JOIN users u ON u.id = i.user_id
             WHERE u.name = 'carol'",
        )
        .into_iter()
        .map(|r| (unquote(&r[0]), unquote(&r[1])))
        .collect();
    assert_eq!(carols.len(), imported.len(), "carol's imported instances");
    for (id, name) in &imported {
        assert_eq!(carols.get(id), Some(name), "imported {id}");
    }
    for (entity, name) in accounts.into_inner().expect("accounts") {
        let got = env.probe().rows(&format!(
            "SELECT account_name FROM amc_accounts WHERE account_id = '{entity}'"
        ));
        assert_eq!(got, [[format!("{name:?}")]], "account {entity}");
    }
    // Every acknowledged check is in the history, exactly once.
    let history = env.probe().count("health_checks") as usize;
    assert_eq!(
        history,
        results_recorded.load(Ordering::SeqCst),
        "recorded health checks"
    );
    // A check never changes an INACTIVE status, and the last deactivate or
    // activate of each instance holds.
    for id in ["amcfleet020", "amcfleet021"] {
        let status = env.probe().rows(&format!(
            "SELECT status, is_active FROM amc_instances WHERE instance_id = '{id}'"
        ));
        assert!(
            status == [["\"PENDING\"", "1"]] || status == [["\"ACTIVE\"", "1"]],
            "{id}: {status:?}"
        );
    }
}

fn unquote(s: &str) -> String {
    serde_json::from_str::<String>(s).unwrap_or_else(|_| s.to_owned())
}

fn strings_of(env: &TestEnv, sql: &str) -> BTreeSet<String> {
    env.probe()
        .rows(sql)
        .into_iter()
        .map(|r| unquote(&r[0]))
        .collect()
}

/// Every secret in the store decrypts with the key file.
#[track_caller]
fn assert_secrets_open(env: &TestEnv, context: &str) {
    let path = env.home().join("key");
    let text = std::fs::read_to_string(&path).expect("the key file");
    let key = Keyring::from_key(&text, KeySource::File(path)).expect("a key");
    let rows = env.probe().credential_ciphertexts();
    assert!(!rows.is_empty());
    for row in rows {
        for cell in row.iter().filter(|c| *c != "NULL") {
            let token = unquote(cell);
            assert!(
                key.can_decrypt(&token),
                "{context}: a stored secret does not open with the key"
            );
        }
    }
}

#[test]
fn key_rotations_while_other_processes_use_the_key() {
    let (amc, env) = world();
    // Short-lived tokens: checks keep refreshing and caching them, so
    // secrets are written while the key rotates.
    amc.set_token_lifetime(2);
    env.login("bob", CLIENT, SECRET, REFRESH).ok();
    amc.add_instance(ACME, "amcbobsinst", "amcbobsinst");
    env.create_instance_as("bob", "amcbobsinst", "Bob's", ACME, &[]);
    let r = Runner::new(&env, Duration::from_secs(8));
    let rotations = AtomicUsize::new(0);
    std::thread::scope(|s| {
        {
            let (r, rotations) = (&r, &rotations);
            s.spawn(move || {
                while r.more() {
                    r.ok("alice", &["key", "rotate", "--yes"]);
                    rotations.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        for worker in 0..2 {
            let r = &r;
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    let id = format!("amcfleet{:03}", (worker * 10 + n) % FLEET);
                    r.ok("alice", &["health", "check", &id, "--rate", "100"]);
                    n += 1;
                }
            });
        }
        for user in ["alice", "bob"] {
            let r = &r;
            s.spawn(move || {
                while r.more() {
                    let status = r.ok(user, &["auth", "status", "-o", "json"]).json();
                    assert_eq!(status["user"], user);
                }
            });
        }
        {
            let r = &r;
            s.spawn(move || {
                while r.more() {
                    let out = r.run_login("bob");
                    assert_eq!(out.code, 0, "bob's login: {}", out.stderr);
                    r.ok("bob", &["health", "check", "--all", "--rate", "200"]);
                }
            });
        }
    });
    let rotations = rotations.load(Ordering::SeqCst);
    eprintln!(
        "key rotation under load: {} commands, {rotations} rotations, up to {} processes at once",
        r.count(),
        r.peak.load(Ordering::SeqCst)
    );
    assert!(rotations >= 3, "the key rotated ({rotations} times)");
    assert!(
        !env.home().join("key.new").exists(),
        "no rotation left pending"
    );
    assert_secrets_open(&env, "after rotations under load");
    env.run(&["auth", "status"]).ok();
    env.run_as("bob", &["auth", "status"]).ok();
    env.run(&["health", "check", "--all", "--rate", "200"]).ok();
    env.assert_store_sound("after rotations under load");
}

impl Runner<'_> {
    fn run_login(&self, user: &str) -> Output {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let out = self.env.login(user, CLIENT, SECRET, REFRESH);
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.runs.lock().expect("runs").push(out.clone());
        out
    }
}
