//! Many hosts, one team store: sixteen amcctl processes at once for 20
//! seconds, each with a home of its own (its own config and key, as on
//! separate machines) and all on one PostgreSQL database, credentials from
//! the environment — bulk health checks against the fake AMC, instance
//! creates and deletes, edits, brand changes, small imports (two importers
//! creating the same accounts), lists, and alice and bob sharing instances
//! with each other (share, change the role, unshare, share again; each as
//! the database role of the user), each in its own loop. Their
//! serializable transactions conflict and are run again; no command may
//! fail because of it (every exit code is the one expected), every
//! acknowledged write (exit 0) is in the store afterwards with exactly one
//! audit entry, every share names an instance and a user that exist, and
//! `db check` passes. The test prints how many times a transaction was
//! run again (amcctl's debug line), so a run with `--nocapture` shows the
//! contention was real.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::pg::{self, Backend};
use crate::support::*;
use fake_amc::FakeAmc;

const ACME: &str = "ENTITY1AA1AA11AAA1";
const CLIENT: &str = "pgconc-client";
const SECRET: &str = "pgconc-client-secret";
const REFRESH: &str = "Atzr|pgconc-refresh";

/// How long the processes run.
const BUDGET: Duration = Duration::from_secs(20);
/// Alice's fleet: known to the fake, never deleted, checked in bulk.
const FLEET: usize = 40;
/// Of which these are FAILED in AMC: every bulk check finds them
/// UNHEALTHY and exits 10.
const FAILED: [&str; 2] = ["amcfleet038", "amcfleet039"];
/// The hosts, each running one process after the other: three checking,
/// two creating, one editing, two changing brands, two importing, four
/// reading, two sharing.
const HOSTS: usize = 16;
/// Alice shares these of her fleet with bob (no other host changes them).
const ALICE_SHARES: [&str; 5] = [
    "amcfleet030",
    "amcfleet031",
    "amcfleet032",
    "amcfleet033",
    "amcfleet034",
];
/// Bob's instances he shares with alice: healthy in AMC, so that alice's
/// bulk checks take them in while she is their operator.
const BOB_SHARES: [&str; 5] = [
    "amcbobshr00",
    "amcbobshr01",
    "amcbobshr02",
    "amcbobshr03",
    "amcbobshr04",
];
/// What amcctl logs (at debug level) each time it runs a transaction again.
const RETRY_LINE: &str = "transaction conflicted with another; running it again";

/// Runs each host's processes, keeps every output, and the peak of those
/// running at once.
struct Runner {
    deadline: Instant,
    running: AtomicUsize,
    peak: AtomicUsize,
    runs: Mutex<Vec<Output>>,
}

impl Runner {
    fn more(&self) -> bool {
        Instant::now() < self.deadline
    }

    /// Runs one command on `host` as `user`; it must exit `expected`.
    #[track_caller]
    fn expect(&self, host: &TestEnv, user: &str, args: &[&str], expected: i32) -> Output {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let out = host.run_as(user, args);
        self.running.fetch_sub(1, Ordering::SeqCst);
        self.runs.lock().expect("runs").push(out.clone());
        assert_eq!(
            out.code, expected,
            "amcctl {args:?} as {user} exited {} (expected {expected}):\n{}",
            out.code, out.stderr
        );
        out
    }

    /// Runs one command that must succeed.
    #[track_caller]
    fn ok(&self, host: &TestEnv, user: &str, args: &[&str]) -> Output {
        self.expect(host, user, args, 0)
    }
}

#[test]
fn a_dozen_hosts_on_one_team_store_lose_nothing() {
    pg::run_on(Backend::Postgres, many_hosts);
}

fn many_hosts() {
    let amc = FakeAmc::start();
    amc.add_client(CLIENT, SECRET, REFRESH);
    amc.add_account(ACME, "Acme", "ATVPDKIKX0DER");
    amc.set_latency(Duration::from_millis(3));
    // Every host logs its conflicts (debug) and authenticates from the
    // environment: no stored login, so no host needs another's key.
    let env = TestEnv::new()
        .with_fake_amc(&amc)
        .with_env("AMCCTL_CLIENT_ID", CLIENT)
        .with_env("AMCCTL_CLIENT_SECRET", SECRET)
        .with_env("AMCCTL_REFRESH_TOKEN", REFRESH)
        .with_env("AMCCTL_LOG", "debug");
    let mut csv = String::from("instance_id,name,region,account_id,account_name,country_code\n");
    for i in 0..FLEET {
        let id = format!("amcfleet{i:03}");
        amc.add_instance(ACME, &id, &id);
        csv.push_str(&format!("{id},Fleet {i},na,{ACME},Acme,US\n"));
    }
    for id in FAILED {
        amc.set_creation_status(id, "FAILED");
    }
    let file = env.write_file("fleet.csv", csv);
    env.run(&["instance", "import", file.to_str().expect("utf-8 path")])
        .ok();
    // Each user's login role, registered as a user of the store (as an
    // administrator's `user add` would).
    for user in ["bob", "carol", "dave", "erin"] {
        env.run_as(user, &["instance", "list"]).ok();
    }
    for id in BOB_SHARES {
        amc.add_instance(ACME, id, id);
        env.create_instance_as("bob", id, id, ACME, &[]);
    }

    let r = Runner {
        deadline: Instant::now() + BUDGET,
        running: AtomicUsize::new(0),
        peak: AtomicUsize::new(0),
        runs: Mutex::default(),
    };
    // Acknowledged check results, by AMC instance ID.
    let checked: Mutex<BTreeMap<String, usize>> = Mutex::default();
    let created: Mutex<BTreeMap<String, BTreeSet<String>>> = Mutex::new(BTreeMap::from([(
        "bob".to_owned(),
        BOB_SHARES.iter().map(|id| (*id).to_owned()).collect(),
    )]));
    // Who has which role on the shared instances, as acknowledged.
    let shares: Mutex<BTreeMap<String, Option<&str>>> = Mutex::default();
    let deleted: Mutex<BTreeSet<(String, String)>> = Mutex::default();
    let edits: Mutex<BTreeMap<String, (String, String)>> = Mutex::default();
    let brands: Mutex<BTreeMap<String, BTreeSet<String>>> = Mutex::default();
    let imported: Mutex<BTreeMap<String, BTreeMap<String, String>>> = Mutex::default();
    // Each worker below is a host of its own, as if on another machine.
    let hosts = std::cell::Cell::new(0);
    let new_host = || {
        hosts.set(hosts.get() + 1);
        env.another_host()
    };
    let started = Instant::now();

    std::thread::scope(|s| {
        // Three cron hosts check alice's whole fleet, over and over.
        for _ in 0..3 {
            let (r, checked, host) = (&r, &checked, new_host());
            s.spawn(move || {
                while r.more() {
                    let out = r.expect(
                        &host,
                        "alice",
                        &["health", "check", "--all", "--rate", "500", "-o", "json"],
                        10,
                    );
                    let report = out.json();
                    let summary = &report["summary"];
                    // The fleet, and those of bob's instances alice is
                    // the operator of at that moment.
                    let n = summary["checked"].as_u64().expect("checked") as usize;
                    assert!((FLEET..=FLEET + BOB_SHARES.len()).contains(&n), "{summary}");
                    assert_eq!(summary["unhealthy"], FAILED.len(), "{summary}");
                    let mut checked = checked.lock().expect("checked");
                    for id in pluck(&report["results"], "instance_id") {
                        *checked.entry(id).or_default() += 1;
                    }
                }
            });
        }
        // Bob and erin create instances (with a brand) and delete every third.
        for user in ["bob", "erin"] {
            let (r, created, deleted, host) = (&r, &created, &deleted, new_host());
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    let id = format!("amc{user}{n:05}");
                    r.ok(
                        &host,
                        user,
                        &[
                            "instance",
                            "create",
                            "--instance-id",
                            &id,
                            "--account",
                            ACME,
                            "--brand",
                            "Shared",
                            "--skip-validation",
                            "-o",
                            "json",
                        ],
                    );
                    created
                        .lock()
                        .expect("created")
                        .entry(user.to_owned())
                        .or_default()
                        .insert(id.clone());
                    if n % 3 == 2 {
                        r.ok(&host, user, &["instance", "delete", &id, "--yes"]);
                        deleted
                            .lock()
                            .expect("deleted")
                            .insert((user.to_owned(), id));
                    }
                    n += 1;
                }
            });
        }
        // Alice edits the first ten of her fleet, round robin, while the
        // checks update the same rows.
        {
            let (r, edits, host) = (&r, &edits, new_host());
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    let id = format!("amcfleet{:03}", n % 10);
                    let name = format!("Renamed {n}");
                    let description = format!("edit {n}");
                    r.ok(
                        &host,
                        "alice",
                        &[
                            "instance",
                            "edit",
                            &id,
                            "--name",
                            &name,
                            "--description",
                            &description,
                        ],
                    );
                    edits.lock().expect("edits").insert(id, (name, description));
                    n += 1;
                }
            });
        }
        // Two hosts change brands, each of five instances of its own:
        // set, add, remove, and set to one shared brand.
        for first in [10, 15] {
            let (r, brands, host) = (&r, &brands, new_host());
            s.spawn(move || {
                let mut n = 0usize;
                while r.more() {
                    let id = format!("amcfleet{:03}", first + n % 5);
                    let b1 = format!("Brand {n}");
                    let b2 = format!("Brand {}", n + 1);
                    // The lock is held over the command: this host's model
                    // of the instance changes only with an acknowledged write.
                    let mut model = brands.lock().expect("brands");
                    let set = model.entry(id.clone()).or_default();
                    match (n / 5) % 4 {
                        0 => {
                            r.ok(&host, "alice", &["brand", "set", &id, &b1, &b2]);
                            *set = [b1, b2].into();
                        }
                        1 => {
                            r.ok(&host, "alice", &["brand", "add", &id, &b1, "Shared"]);
                            set.extend([b1, "Shared".to_owned()]);
                        }
                        2 => {
                            if let Some(one) = set.iter().next().cloned() {
                                r.ok(&host, "alice", &["brand", "remove", &id, &one]);
                                set.remove(&one);
                            }
                        }
                        _ => {
                            r.ok(&host, "alice", &["brand", "set", &id, "Shared"]);
                            *set = ["Shared".to_owned()].into();
                        }
                    }
                    drop(model);
                    n += 1;
                }
            });
        }
        // Carol and dave import batches: 10 new instances each, and the
        // previous batch again under new names (updates), on three
        // accounts the first import of each creates — both importers
        // create the same accounts at the same time.
        for user in ["carol", "dave"] {
            let (r, imported, host) = (&r, &imported, new_host());
            s.spawn(move || {
                let mut n = 0;
                while r.more() {
                    let mut csv = String::from(
                        "instance_id,name,region,account_id,account_name,country_code,brands\n",
                    );
                    let mut rows = Vec::new();
                    let batches = if n == 0 { vec![0] } else { vec![n, n - 1] };
                    for batch in batches {
                        for j in 0..10 {
                            let id = format!("amc{user}{batch:04}{j:02}");
                            let name = format!("{user} {n} row {batch}-{j}");
                            csv.push_str(&format!(
                                "{id},{name},eu,ENTITY7IMPORT{a:02},Importer {a},DE,Imported;B{j}\n",
                                a = batch % 3
                            ));
                            rows.push((id, name));
                        }
                    }
                    let file = host.write_file(&format!("{user}-{n}.csv"), &csv);
                    r.ok(
                        &host,
                        user,
                        &[
                            "instance",
                            "import",
                            file.to_str().expect("path"),
                            "-o",
                            "json",
                        ],
                    );
                    imported
                        .lock()
                        .expect("imported")
                        .entry(user.to_owned())
                        .or_default()
                        .extend(rows);
                    n += 1;
                }
            });
        }
        // Alice shares five of her fleet with bob, bob five of his with
        // alice, each on a host of their own as their own database role:
        // viewer, then operator, then no access, round and round.
        for (owner, with, ids) in [("alice", "bob", ALICE_SHARES), ("bob", "alice", BOB_SHARES)] {
            let (r, shares, host) = (&r, &shares, new_host());
            s.spawn(move || {
                let mut n = 0usize;
                while r.more() {
                    let id = ids[n % ids.len()];
                    let role = match (n / ids.len()) % 3 {
                        0 => Some("viewer"),
                        1 => Some("operator"),
                        _ => None,
                    };
                    match role {
                        Some(role) => r.ok(
                            &host,
                            owner,
                            &["instance", "share", id, "--with", with, "--role", role],
                        ),
                        None => r.ok(&host, owner, &["instance", "unshare", id, "--with", with]),
                    };
                    shares.lock().expect("shares").insert(id.to_owned(), role);
                    n += 1;
                }
            });
        }
        // Readers: alice's fleet, everyone's instances, health and brands.
        let lists: [&[&str]; 4] = [
            &["instance", "list", "-o", "json"],
            &["instance", "list", "--all-users", "-o", "json"],
            &["health", "status", "--all-users", "-o", "json"],
            &["health", "report", "--all-users", "-o", "json"],
        ];
        for first in lists {
            let (r, host) = (&r, new_host());
            s.spawn(move || {
                let more: [&[&str]; 2] = [first, &["brand", "list", "--all-users", "-o", "json"]];
                let mut n = 0;
                while r.more() {
                    let args = more[n % 2];
                    let v = r.ok(&host, "alice", args).json();
                    assert!(v.is_array() || v.is_object(), "{args:?}: {v}");
                    if args == lists[0] {
                        let rows = v.as_array().unwrap_or_else(|| panic!("{args:?}: {v}"));
                        let own = rows.iter().filter(|i| i["owner"] == "alice").count();
                        assert_eq!(own, FLEET, "alice's instances");
                        for i in rows.iter().filter(|i| i["owner"] != "alice") {
                            assert_eq!(i["owner"], "bob", "shared with alice: {i}");
                            assert!(
                                i["role"] == "viewer" || i["role"] == "operator",
                                "shared with a role: {i}"
                            );
                        }
                        rows.iter().for_each(assert_instance_shape);
                    }
                    n += 1;
                }
            });
        }
    });

    let wall = started.elapsed();
    assert_eq!(hosts.get(), HOSTS, "hosts");
    let runs = r.runs.into_inner().expect("runs");
    let retries: usize = runs
        .iter()
        .map(|o| o.stderr.matches(RETRY_LINE).count())
        .sum();
    // By command (its first two words), for a reader of the figures.
    let mut by_command: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for o in &runs {
        let entry = by_command.entry(o.args[..2].join(" ")).or_default();
        entry.0 += 1;
        entry.1 += o.stderr.matches(RETRY_LINE).count();
    }
    let retried = runs
        .iter()
        .filter(|o| o.stderr.contains(RETRY_LINE))
        .count();
    let peak = r.peak.load(Ordering::SeqCst);
    eprintln!(
        "pg concurrency: {} commands on {HOSTS} hosts in {wall:?}, up to {peak} at once, none \
         failed; {retries} serialization retries (in {retried} commands); commands and retries \
         by command: {by_command:?}",
        runs.len()
    );
    assert!(
        peak >= 12,
        "at least 12 processes ran at once (peak {peak})"
    );

    env.run(&["db", "check"]).ok();
    env.assert_store_sound("after the concurrent run");
    let probe = env.probe();
    let strings = |sql: &str| -> BTreeSet<String> {
        probe
            .rows(sql)
            .into_iter()
            .map(|r| unquote(&r[0]))
            .collect()
    };

    // The acknowledged creates are there, the acknowledged deletes not.
    let deleted = deleted.into_inner().expect("deleted");
    for (user, ids) in created.into_inner().expect("created") {
        let got = strings(&format!(
            "SELECT i.instance_id FROM amc_instances i JOIN users u ON u.id = i.user_id
             WHERE u.name = '{user}'"
        ));
        let want: BTreeSet<String> = ids
            .into_iter()
            .filter(|id| !deleted.contains(&(user.clone(), id.clone())))
            .collect();
        assert_eq!(got, want, "{user}'s instances");
    }
    // Every edited instance keeps its last acknowledged name and description.
    for (id, (name, description)) in edits.into_inner().expect("edits") {
        let got = probe.rows(&format!(
            "SELECT name, description FROM amc_instances WHERE instance_id = '{id}'"
        ));
        assert_eq!(
            got,
            [[format!("{name:?}"), format!("{description:?}")]],
            "the name and description of {id}"
        );
    }
    for (id, want) in brands.into_inner().expect("brands") {
        let got = strings(&format!(
            "SELECT b.brand_name FROM instance_brands b JOIN amc_instances i ON i.id = b.instance_id
             WHERE i.instance_id = '{id}'"
        ));
        assert_eq!(got, want, "the brands of {id}");
    }
    // Every imported instance is there with the name of its last import,
    // and no importer got an account twice.
    for (user, rows) in imported.into_inner().expect("imported") {
        let got: BTreeMap<String, String> = probe
            .rows(&format!(
                "SELECT i.instance_id, i.name FROM amc_instances i JOIN users u ON u.id = i.user_id
                 WHERE u.name = '{user}'"
            ))
            .into_iter()
            .map(|r| (unquote(&r[0]), unquote(&r[1])))
            .collect();
        assert_eq!(got, rows, "{user}'s imported instances");
    }
    assert!(
        probe.scalar("SELECT count(*) FROM amc_accounts WHERE account_id LIKE 'ENTITY7IMPORT%'")
            <= 3,
        "the importers' accounts exist once each"
    );
    // Every share names an instance and a user that exist, and the last
    // acknowledged share of each instance is the one in the store.
    assert_eq!(
        probe.scalar(
            "SELECT count(*) FROM instance_shares s
             WHERE NOT EXISTS (SELECT 1 FROM amc_instances i WHERE i.id = s.instance_id)
                OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id)"
        ),
        0,
        "shares of instances or users that do not exist"
    );
    let shares = shares.into_inner().expect("shares");
    assert!(!shares.is_empty(), "the sharers ran");
    for (id, role) in &shares {
        let got = probe.rows(&format!(
            "SELECT u.name, s.role FROM instance_shares s JOIN amc_instances i ON i.id = s.instance_id
             JOIN users u ON u.id = s.user_id WHERE i.instance_id = '{id}'"
        ));
        let with = if id.starts_with("amcfleet") {
            "bob"
        } else {
            "alice"
        };
        let want: Vec<Vec<String>> = role
            .iter()
            .map(|r| vec![format!("{with:?}"), format!("{r:?}")])
            .collect();
        assert_eq!(got, want, "the shares of {id}");
    }
    // One audit entry for every acknowledged write of these kinds: the
    // runs', and the setup's (one import, bob's five creates).
    let acknowledged = |command: &str| {
        runs.iter()
            .filter(|o| o.code == 0 && o.args[..2].join(" ") == command)
            .count() as i64
    };
    for (command, setup) in [
        ("instance share", 0),
        ("instance unshare", 0),
        ("instance create", BOB_SHARES.len() as i64),
        ("instance delete", 0),
        ("instance edit", 0),
        ("instance import", 1),
    ] {
        assert_eq!(
            probe.scalar(&format!(
                "SELECT count(*) FROM audit_log WHERE command = '{command}'"
            )),
            acknowledged(command) + setup,
            "audit entries of {command}"
        );
    }
    assert!(
        acknowledged("instance share") + acknowledged("instance unshare") > 0,
        "shares were made"
    );
    // Every acknowledged check of alice's fleet is in the history, exactly
    // once, and every instance of the fleet carries a last health. A check
    // of one of bob's instances that alice ran as its operator is recorded
    // only if she still had access when the results were saved: unshared
    // meanwhile, it is skipped like one deleted meanwhile (the database
    // would refuse it), so there the history holds at most the checks.
    let checked = checked.into_inner().expect("checked");
    let recorded: BTreeMap<String, usize> = probe
        .rows(
            "SELECT i.instance_id, count(*) FROM health_checks h
             JOIN amc_instances i ON i.id = h.instance_id GROUP BY i.instance_id",
        )
        .into_iter()
        .map(|r| (unquote(&r[0]), r[1].parse().expect("a count")))
        .collect();
    let fleet = |m: &BTreeMap<String, usize>| -> BTreeMap<String, usize> {
        m.iter()
            .filter(|(id, _)| id.starts_with("amcfleet"))
            .map(|(id, n)| (id.clone(), *n))
            .collect()
    };
    assert_eq!(
        fleet(&recorded),
        fleet(&checked),
        "recorded checks of the fleet"
    );
    for (id, n) in &recorded {
        assert!(
            checked.get(id).is_some_and(|c| n <= c),
            "{id}: {n} recorded checks, {:?} acknowledged",
            checked.get(id)
        );
    }
    let unhealthy = strings(
        "SELECT instance_id FROM amc_instances WHERE instance_id LIKE 'amcfleet%'
         AND health_status = 'UNHEALTHY'",
    );
    assert_eq!(unhealthy, FAILED.map(String::from).into(), "unhealthy");
    if !checked.is_empty() {
        assert_eq!(
            probe.scalar(
                "SELECT count(*) FROM amc_instances WHERE instance_id LIKE 'amcfleet%'
                 AND last_health_check IS NOT NULL"
            ),
            FLEET as i64,
            "the fleet's last health"
        );
    }
}

fn unquote(s: &str) -> String {
    serde_json::from_str::<String>(s).unwrap_or_else(|_| s.to_owned())
}
