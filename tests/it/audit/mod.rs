//! The audit trail: every command that changes the store leaves exactly one
//! entry naming who did what to which object; a command that fails or a dry
//! run leaves none and changes nothing; `audit list` filters by instance,
//! user and age in every output format; and members cannot rewrite or
//! erase the trail.
//!
//! The filter by user is `--actor USER`: SPEC §12 writes `--user U`, which
//! is the global flag naming who runs the command (and, in the team store,
//! exit 4 for anyone but the login), so the two cannot share a name.

use std::collections::BTreeSet;

use fake_amc::FakeAmc;
use serde_json::Value;

use crate::support::pg::{self, Backend};
use crate::support::*;

const ACME: &str = "ENTITY1AA1AA11AAA1";
const OTHER: &str = "ENTITY2BB2BB22BBB2";
/// An account only AMC knows, until `account discover`.
const FOUND: &str = "ENTITY3CC3CC33CCC3";
const CLIENT: &str = "audit-client";
const SECRET: &str = "audit-secret";
const REFRESH: &str = "Atzr|audit-refresh";

/// The keys of an entry in JSON, in order.
const ENTRY_KEYS: [&str; 8] = [
    "id",
    "at",
    "actor",
    "command",
    "object_kind",
    "object_id",
    "object_name",
    "summary",
];

/// What an entry must be about.
#[derive(Debug, Clone)]
enum Object {
    /// An instance, by its AMC ID: the row id and that ID.
    Instance(&'static str),
    /// An account, by its entity ID: the row id and that ID.
    Account(&'static str),
    /// A user, by name.
    User(&'static str),
    /// A login profile, by name.
    Login(&'static str),
    /// Many things at once: no row id.
    Store,
}

impl Object {
    fn kind(&self) -> &'static str {
        match self {
            Object::Instance(_) => "instance",
            Object::Account(_) => "account",
            Object::User(_) => "user",
            Object::Login(_) => "login",
            Object::Store => "store",
        }
    }

    /// The row id the entry must name, looked up before the command runs
    /// (a delete removes the row).
    fn row_id(&self, env: &TestEnv) -> Option<String> {
        let sql = match self {
            Object::Instance(id) => {
                format!("SELECT id FROM amc_instances WHERE instance_id = '{id}'")
            }
            Object::Account(id) => format!("SELECT id FROM amc_accounts WHERE account_id = '{id}'"),
            _ => return None,
        };
        env.probe()
            .rows(&sql)
            .into_iter()
            .next()
            .map(|r| r[0].clone())
    }
}

/// A fake AMC that knows the client, the accounts (one the store does not
/// have yet) and instances to discover; a store where alice, bob and the
/// administrator root exist (nothing else: every entry comes from a step).
fn world() -> (FakeAmc, TestEnv) {
    let amc = FakeAmc::start();
    amc.add_client(CLIENT, SECRET, REFRESH);
    amc.add_account(ACME, "Acme", "ATVPDKIKX0DER");
    amc.add_account(OTHER, "Other", "ATVPDKIKX0DER");
    amc.add_account(FOUND, "Found", "ATVPDKIKX0DER");
    for id in ["amcaaaaaaaa", "amcfound001", "amcfound002"] {
        amc.add_instance(ACME, id, id);
    }
    let env = TestEnv::new()
        .with_fake_amc(&amc)
        .with_env("AMCCTL_CLIENT_ID", CLIENT)
        .with_env("AMCCTL_CLIENT_SECRET", SECRET)
        .with_env("AMCCTL_REFRESH_TOKEN", REFRESH);
    env.make_admin("root");
    for user in ["alice", "bob"] {
        env.run_as(user, &["instance", "list"]).ok();
    }
    (amc, env)
}

/// A connection to the test database as the login role `name`, as a
/// member would make with `psql`.
fn pg_connect_as(env: &TestEnv, name: &str) -> postgres::Client {
    let url = url::Url::parse(&env.db_location()).expect("the database URL");
    let db = url.path().trim_start_matches('/').to_owned();
    pg::server().expect("a test server").connect_as(name, &db)
}

fn count(env: &TestEnv) -> i64 {
    env.probe().count("audit_log")
}

/// The newest entry: actor, command, object_kind, object_id, object_name, summary.
fn newest(env: &TestEnv) -> Vec<String> {
    let mut rows = env.probe().rows(
        "SELECT actor, command, object_kind, object_id, object_name, summary FROM audit_log
         ORDER BY id DESC LIMIT 1",
    );
    rows.pop().expect("an entry")
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

/// One step of [`every_write_leaves_one_entry`]: who runs what, and the
/// entry it must leave.
struct Step {
    actor: &'static str,
    args: Vec<String>,
    command: &'static str,
    object: Object,
}

fn step(actor: &'static str, args: &[&str], command: &'static str, object: Object) -> Step {
    Step {
        actor,
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        command,
        object,
    }
}

fn every_write_leaves_one_entry() {
    let (_amc, env) = world();
    let import = env.write_file(
        "import.csv",
        format!(
            "instance_id,name,region,account_id,account_name,country_code\n\
             amcimport01,Imported,na,{ACME},Acme Inc,US\n"
        ),
    );
    let import = import.to_str().expect("utf-8 path");
    let start = count(&env);
    use Object::*;
    let steps = [
        step(
            "alice",
            &["account", "create", "--account-id", ACME, "--name", "Acme"],
            "account create",
            Account(ACME),
        ),
        step(
            "alice",
            &[
                "account",
                "create",
                "--account-id",
                OTHER,
                "--name",
                "Other",
            ],
            "account create",
            Account(OTHER),
        ),
        step(
            "alice",
            &["account", "edit", ACME, "--name", "Acme Inc"],
            "account edit",
            Account(ACME),
        ),
        step(
            "alice",
            &[
                "instance",
                "create",
                "--instance-id",
                "amcaaaaaaaa",
                "--name",
                "Alice Main",
                "--account",
                ACME,
                "--skip-validation",
            ],
            "instance create",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["instance", "edit", "amcaaaaaaaa", "--description", "edited"],
            "instance edit",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["instance", "link", "amcaaaaaaaa", "--account", OTHER],
            "instance link",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["instance", "deactivate", "amcaaaaaaaa"],
            "instance deactivate",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["instance", "activate", "amcaaaaaaaa", "--skip-validation"],
            "instance activate",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["brand", "set", "amcaaaaaaaa", "A", "B"],
            "brand set",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["brand", "add", "amcaaaaaaaa", "C"],
            "brand add",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["brand", "remove", "amcaaaaaaaa", "A"],
            "brand remove",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &[
                "instance",
                "share",
                "amcaaaaaaaa",
                "--with",
                "bob",
                "--role",
                "operator",
            ],
            "instance share",
            Instance("amcaaaaaaaa"),
        ),
        // An operator's changes are entries of their own.
        step(
            "bob",
            &["brand", "add", "amcaaaaaaaa", "Bobs"],
            "brand add",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "bob",
            &["instance", "edit", "amcaaaaaaaa", "--description", "by bob"],
            "instance edit",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "bob",
            &["instance", "deactivate", "amcaaaaaaaa"],
            "instance deactivate",
            Instance("amcaaaaaaaa"),
        ),
        // A role change, then the end of the share.
        step(
            "alice",
            &["instance", "share", "amcaaaaaaaa", "--with", "bob"],
            "instance share",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["instance", "unshare", "amcaaaaaaaa", "--with", "bob"],
            "instance unshare",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["brand", "clear", "amcaaaaaaaa", "--yes"],
            "brand clear",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["instance", "config", "set", "amcaaaaaaaa", "k", "v"],
            "instance config set",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["instance", "config", "unset", "amcaaaaaaaa", "k"],
            "instance config unset",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["instance", "import", import],
            "instance import",
            Store,
        ),
        step("alice", &["account", "discover"], "account discover", Store),
        step(
            "alice",
            &["instance", "discover", "--account", ACME],
            "instance discover",
            Store,
        ),
        step(
            "alice",
            &["auth", "login", "--client-id", CLIENT],
            "auth login",
            Login("default"),
        ),
        step("alice", &["key", "rotate", "--yes"], "key rotate", Store),
        step(
            "alice",
            &["auth", "logout"],
            "auth logout",
            Login("default"),
        ),
        step("root", &["user", "add", "dana"], "user add", User("dana")),
        step(
            "root",
            &["user", "remove", "dana", "--yes"],
            "user remove",
            User("dana"),
        ),
        step(
            "alice",
            &["health", "prune", "--older-than", "30d"],
            "health prune",
            Store,
        ),
        step(
            "alice",
            &["instance", "delete", "amcaaaaaaaa", "--yes"],
            "instance delete",
            Instance("amcaaaaaaaa"),
        ),
        step(
            "alice",
            &["account", "delete", OTHER, "--yes"],
            "account delete",
            Account(OTHER),
        ),
    ];
    let mut kinds = BTreeSet::new();
    for s in &steps {
        let args: Vec<&str> = s.args.iter().map(String::as_str).collect();
        let ctx = format!("{}: amcctl {args:?}", s.actor);
        if s.command == "user add" {
            // In the team store, the login role an administrator made.
            env.create_role("dana");
        }
        if s.command == "health prune" {
            // Something old to prune.
            let id = Object::Instance("amcaaaaaaaa")
                .row_id(&env)
                .expect("the instance");
            env.probe().exec(&format!(
                "INSERT INTO health_checks (instance_id, checked_at, status, http_status, latency_ms, attempts)
                 VALUES ('{}', '2020-01-01T00:00:00Z', 'HEALTHY', 200, 12, 1)",
                id.trim_matches('"')
            ));
        }
        let row_id = s.object.row_id(&env);
        let before = count(&env);
        let out = if s.command == "auth login" {
            env.login(s.actor, CLIENT, SECRET, REFRESH)
        } else {
            env.run_as(s.actor, &args)
        };
        assert_eq!(
            out.code, 0,
            "{ctx}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        assert_eq!(count(&env), before + 1, "{ctx}: exactly one new entry");
        // A create's row is known once it exists.
        let row_id = row_id.or_else(|| s.object.row_id(&env));
        let entry = newest(&env);
        assert_eq!(entry[0], quoted(s.actor), "{ctx}: actor");
        assert_eq!(entry[1], quoted(s.command), "{ctx}: command");
        assert_eq!(entry[2], quoted(s.object.kind()), "{ctx}: object_kind");
        match &s.object {
            Instance(id) | Account(id) => {
                assert_eq!(Some(&entry[3]), row_id.as_ref(), "{ctx}: object_id");
                assert_eq!(entry[4], quoted(id), "{ctx}: object_name");
            }
            User(name) | Login(name) => {
                assert_eq!(entry[4], quoted(name), "{ctx}: object_name");
            }
            Store => assert_eq!(entry[3], "NULL", "{ctx}: object_id"),
        }
        assert!(entry[5].len() > 2, "{ctx}: a summary: {}", entry[5]);
        kinds.insert(s.object.kind());
    }
    assert_eq!(kinds.len(), 5, "every kind of object: {kinds:?}");
    assert_eq!(
        count(&env),
        start + steps.len() as i64,
        "no entry besides the steps'"
    );
    eprintln!("audit: {} write commands, one entry each", steps.len());
}

fn failures_and_dry_runs_leave_no_entry() {
    let (_amc, env) = world();
    env.create_account(ACME, "Acme");
    env.create_instance("amcaaaaaaaa", "Alice Main", ACME, &[]);
    env.create_instance_as("bob", "amcbbbbbbbb", "Bob Main", ACME, &[]);
    env.run(&[
        "instance",
        "share",
        "amcaaaaaaaa",
        "--with",
        "bob",
        "--role",
        "operator",
    ])
    .ok();
    let import = env.write_file(
        "import.csv",
        format!(
            "instance_id,name,region,account_id,account_name,country_code\n\
             amcimport01,Imported,na,{ACME},Acme,US\n"
        ),
    );
    let import = import.to_str().expect("utf-8 path");
    let cases: &[(&str, &[&str], i32)] = &[
        (
            "alice",
            &["instance", "share", "amcaaaaaaaa", "--with", "nobody"],
            3,
        ),
        (
            "alice",
            &["instance", "share", "amcaaaaaaaa", "--with", "alice"],
            2,
        ),
        (
            "alice",
            &[
                "instance",
                "share",
                "amcaaaaaaaa",
                "--with",
                "bob",
                "--role",
                "owner",
            ],
            2,
        ),
        (
            "alice",
            &[
                "instance",
                "share",
                "amcaaaaaaaa",
                "--with",
                "bob",
                "--role",
                "admin",
            ],
            2,
        ),
        (
            "alice",
            &["instance", "share", "no-such-instance", "--with", "bob"],
            3,
        ),
        (
            "alice",
            &["instance", "unshare", "amcaaaaaaaa", "--with", "nobody"],
            3,
        ),
        // Sharing what one does not own: an operator, and a stranger.
        (
            "bob",
            &["instance", "share", "amcaaaaaaaa", "--with", "root"],
            4,
        ),
        (
            "bob",
            &["instance", "unshare", "amcaaaaaaaa", "--with", "bob"],
            4,
        ),
        (
            "alice",
            &["instance", "share", "amcbbbbbbbb", "--with", "root"],
            4,
        ),
        (
            "alice",
            &["instance", "edit", "amcaaaaaaaa", "--region", "mars"],
            2,
        ),
        (
            "bob",
            &["instance", "edit", "amcaaaaaaaa", "--name", "Bobs now"],
            4,
        ),
        ("bob", &["instance", "delete", "amcaaaaaaaa", "--yes"], 4),
        ("alice", &["user", "add", "carol"], 4),
        ("alice", &["instance", "import", import, "--dry-run"], 0),
        ("alice", &["instance", "discover", "--dry-run"], 0),
        ("alice", &["account", "discover", "--dry-run"], 0),
    ];
    // Every case runs; the failures are listed together at the end.
    let mut problems = Vec::new();
    for (user, args, code) in cases {
        let before = env.dump();
        let entries = count(&env);
        let out = env.run_as(user, args);
        let ctx = format!("{user}: amcctl {args:?}");
        if out.code != *code {
            problems.push(format!(
                "{ctx}: exit {} (expected {code}): {}",
                out.code,
                out.stderr.trim()
            ));
        } else if count(&env) != entries {
            problems.push(format!("{ctx}: left an audit entry"));
        } else if env.dump() != before {
            problems.push(format!("{ctx}: changed the store"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases went wrong:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
    eprintln!(
        "audit: {} failing commands and dry runs, no entry",
        cases.len()
    );
}

/// The entries of `audit list ARGS` as alice sees them, parsed from JSON.
fn listed(env: &TestEnv, args: &[&str]) -> Vec<Value> {
    let mut full = vec!["audit", "list"];
    full.extend(args);
    full.extend(["-o", "json"]);
    let v = env.run(&full).ok().json();
    let rows = v
        .as_array()
        .unwrap_or_else(|| panic!("{full:?}: a list: {v}"))
        .clone();
    for row in &rows {
        assert_keys(row, &ENTRY_KEYS);
        assert!(row["id"].is_i64(), "{row}");
        assert_timestamp(&row["at"]);
        for k in ["actor", "command", "object_kind", "summary"] {
            assert!(row[k].is_string(), "{k} of {row}");
        }
        for k in ["object_id", "object_name"] {
            assert!(row[k].is_string() || row[k].is_null(), "{k} of {row}");
        }
    }
    rows
}

fn commands(rows: &[Value]) -> Vec<String> {
    pluck(&Value::Array(rows.to_vec()), "command")
}

fn audit_list_filters_and_formats() {
    let (_amc, env) = world();
    // Last January: the account and both instances.
    let old = [("AMCCTL_TEST_NOW", "2026-01-01T00:00:00Z")];
    env.run_env(
        "alice",
        &["account", "create", "--account-id", ACME, "--name", "Acme"],
        &old,
    )
    .ok();
    for (id, name) in [
        ("amcaaaaaaaa", "Alice Main"),
        ("amcbbbbbbbb", "Alice Other"),
    ] {
        env.run_env(
            "alice",
            &[
                "instance",
                "create",
                "--instance-id",
                id,
                "--name",
                name,
                "--account",
                ACME,
                "--skip-validation",
            ],
            &old,
        )
        .ok();
    }
    // Today: changes to both, a share, and bob's change as an operator.
    env.run(&["instance", "edit", "amcaaaaaaaa", "--description", "today"])
        .ok();
    env.run(&[
        "instance",
        "share",
        "amcaaaaaaaa",
        "--with",
        "bob",
        "--role",
        "operator",
    ])
    .ok();
    env.run_as("bob", &["brand", "add", "amcaaaaaaaa", "Bobs"])
        .ok();
    env.run(&["brand", "add", "amcbbbbbbbb", "Other"]).ok();
    let uuid_a = Object::Instance("amcaaaaaaaa").row_id(&env).expect("a");

    let all = listed(&env, &[]);
    let ids: Vec<i64> = all.iter().map(|r| r["id"].as_i64().expect("id")).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "oldest first");
    // Alice sees at least her own entries and every entry about her
    // instances (in a SQLite store, every entry).
    let must_see: BTreeSet<i64> = env
        .probe()
        .rows(
            "SELECT id FROM audit_log WHERE actor = 'alice' OR instance_id IN
               (SELECT i.id FROM amc_instances i JOIN users u ON u.id = i.user_id WHERE u.name = 'alice')",
        )
        .into_iter()
        .map(|r| r[0].parse().expect("an id"))
        .collect();
    let seen: BTreeSet<i64> = ids.iter().copied().collect();
    assert!(
        must_see.is_subset(&seen),
        "alice sees {seen:?}, must see {must_see:?}"
    );
    if pg::current() == Backend::Sqlite {
        assert_eq!(
            all.len() as i64,
            count(&env),
            "the whole trail of her own file"
        );
    }

    let about_a = listed(&env, &["--instance", "amcaaaaaaaa"]);
    assert_eq!(
        commands(&about_a),
        [
            "instance create",
            "instance edit",
            "instance share",
            "brand add"
        ],
        "{about_a:?}"
    );
    for row in &about_a {
        assert_eq!(
            format!("{:?}", row["object_id"].as_str().expect("object_id")),
            uuid_a
        );
        assert_eq!(row["object_name"], "amcaaaaaaaa");
    }
    // By name, by row id: the same entries.
    assert_eq!(listed(&env, &["--instance", "Alice Main"]), about_a);

    let by_bob = listed(&env, &["--actor", "bob"]);
    assert_eq!(commands(&by_bob), ["brand add"], "{by_bob:?}");
    assert_eq!(by_bob[0]["actor"], "bob");
    assert_eq!(by_bob[0]["object_name"], "amcaaaaaaaa");

    let recent = listed(&env, &["--since", "1d"]);
    assert!(
        recent.iter().all(|r| r["at"]
            .as_str()
            .is_some_and(|t| !t.starts_with("2026-01-01"))),
        "--since 1d leaves out January: {recent:?}"
    );
    let recent_commands = commands(&recent);
    for c in ["instance edit", "instance share", "brand add"] {
        assert!(
            recent_commands.contains(&c.to_owned()),
            "{c} in {recent_commands:?}"
        );
    }
    assert_eq!(
        all.len() - recent.len(),
        all.iter()
            .filter(|r| r["at"]
                .as_str()
                .is_some_and(|t| t.starts_with("2026-01-01")))
            .count(),
        "--since 1d leaves out exactly the January entries"
    );
    assert!(all.len() - recent.len() >= 3, "three entries from January");
    let both = listed(
        &env,
        &[
            "--instance",
            "amcaaaaaaaa",
            "--actor",
            "alice",
            "--since",
            "1d",
        ],
    );
    assert_eq!(
        commands(&both),
        ["instance edit", "instance share"],
        "{both:?}"
    );
    let none = listed(&env, &["--actor", "bob", "--instance", "amcbbbbbbbb"]);
    assert!(none.is_empty(), "{none:?}");

    // The same entries in every format.
    let args = ["audit", "list", "--instance", "amcaaaaaaaa"];
    let mut nd = args.to_vec();
    nd.extend(["-o", "ndjson"]);
    assert_eq!(env.run(&nd).ok().ndjson(), about_a, "ndjson");
    let mut csv = args.to_vec();
    csv.extend(["-o", "csv"]);
    let (header, rows) = env.run(&csv).ok().csv();
    assert_eq!(header, ENTRY_KEYS, "the CSV header");
    assert_eq!(rows.len(), about_a.len(), "CSV rows");
    for (row, json) in rows.iter().zip(&about_a) {
        for (i, key) in ENTRY_KEYS.iter().enumerate() {
            let want = match &json[*key] {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            };
            assert_eq!(row[i], want, "CSV {key}");
        }
    }
    let table = env.run(&args).ok();
    let lines: Vec<&str> = table
        .stdout
        .lines()
        .filter(|l| l.contains("amcaaaaaaaa"))
        .collect();
    assert_eq!(
        lines.len(),
        about_a.len(),
        "one table line an entry:\n{}",
        table.stdout
    );
    for (line, json) in lines.iter().zip(&about_a) {
        let command = json["command"].as_str().expect("command");
        assert!(
            line.contains(command) && line.contains(json["actor"].as_str().expect("actor")),
            "{line}"
        );
    }
}

fn members_cannot_rewrite_or_erase_the_trail() {
    let (_amc, env) = world();
    env.create_account(ACME, "Acme");
    env.create_instance("amcaaaaaaaa", "Alice Main", ACME, &[]);
    assert!(count(&env) >= 2, "entries to tamper with");
    let before = env.dump();
    let tampering = [
        "UPDATE audit_log SET actor = 'mallory'",
        "UPDATE audit_log SET summary = 'nothing happened' WHERE command = 'instance create'",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE command = 'instance create'",
    ];
    for sql in tampering {
        let refused = match pg::current() {
            Backend::Sqlite => {
                // The file is the user's own: the triggers refuse.
                let conn = rusqlite::Connection::open(env.db_path()).expect("open the store");
                let err = conn.execute(sql, []).expect_err(sql);
                err.to_string()
            }
            Backend::Postgres => {
                // A member connected as themselves, as with psql.
                let mut member = pg_connect_as(&env, "alice");
                let err = member.batch_execute(sql).expect_err(sql);
                err.as_db_error().map_or(err.to_string(), |d| d.to_string())
            }
        };
        assert!(
            refused.contains("append-only") || refused.contains("permission denied"),
            "{sql}: {refused}"
        );
        env.assert_unchanged(&before, sql);
    }
}

crate::on_both_backends!(
    every_write_leaves_one_entry,
    failures_and_dry_runs_leave_no_entry,
    audit_list_filters_and_formats,
    members_cannot_rewrite_or_erase_the_trail,
);
