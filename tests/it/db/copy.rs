//! `db copy` and the team store's `db backup`: a small fleet with a login,
//! settings, health history and usage goes from a SQLite store into a
//! PostgreSQL database, and from there into a new SQLite file by `db copy`
//! and by `db backup`; every store shows the same exports and reports,
//! byte for byte, and holds the same rows.

use crate::support::amc::{ACCOUNT_NAME, CLIENT_ID, CLIENT_SECRET, ENTITY, REFRESH_TOKEN, US};
use crate::support::pg::{self, Backend, Database};
use crate::support::{DEFAULT_USER, Output, Probe, TestEnv, assert_lines_eq};
use fake_amc::{FakeAmc, Usage, advertiser, execution, schedule, workflow};

/// The instances of the fleet.
const FLEET: [&str; 4] = ["amccopy0001", "amccopy0002", "amccopy0003", "amccopy0004"];

/// `args` run against the store at `db` instead of the home's own.
fn on(env: &TestEnv, db: &str, args: &[&str]) -> Output {
    let mut full = vec!["--db", db];
    full.extend_from_slice(args);
    env.run(&full)
}

/// What the commands show of a store: both exports, the health and usage
/// reports, a history and the instance's decrypted settings.
fn views(env: &TestEnv, db: &str) -> Vec<String> {
    let queries: [&[&str]; 6] = [
        &["instance", "export"],
        &["instance", "export", "--format", "csv"],
        &["health", "report", "--since", "30d", "-o", "json"],
        &["health", "history", FLEET[0], "-o", "json"],
        &["usage", "report", "--since", "30d", "-o", "json"],
        &[
            "instance", "config", "list", FLEET[0], "--reveal", "-o", "json",
        ],
    ];
    queries
        .iter()
        .map(|args| on(env, db, args).ok().stdout)
        .collect()
}

/// The rows of a dump, without the schema lines before them (which
/// differ between the backends) and PostgreSQL's migration table.
fn rows_of(dump: &str) -> String {
    let start = dump.find("\n[").unwrap_or(dump.len());
    dump[start..]
        .split("\n[")
        .filter(|t| !t.is_empty() && !t.starts_with("amcctl_schema_migrations]"))
        .map(|t| format!("\n[{t}"))
        .collect()
}

/// `rows` (of [`rows_of`]) without the SQLite store's `users.is_admin`,
/// which the team store does not have (its administrators are the members
/// of a database role); alice is no administrator.
fn without_is_admin(rows: &str) -> String {
    let mut in_users = false;
    let lines: Vec<&str> = rows
        .lines()
        .map(|line| {
            if line.starts_with('[') {
                in_users = line.starts_with("[users]");
            }
            if !in_users {
                return line;
            }
            line.strip_suffix(" | is_admin")
                .or_else(|| line.strip_suffix(" | 0"))
                .unwrap_or(line)
        })
        .collect();
    lines.join("\n")
}

fn a_fleet_round_trips_between_the_backends_unchanged() {
    let fake = FakeAmc::start();
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN);
    fake.add_account(ENTITY, ACCOUNT_NAME, US);
    // A stopped clock: the reports name their period by the time they run.
    let env = &TestEnv::new().with_fake_amc(&fake).with_fixed_clock();
    let source = env.scratch().join("source.db");
    let source = source.to_str().unwrap();

    // The fleet, in a SQLite store: a login, settings, brands, two rounds
    // of health checks and a usage sync.
    on(
        env,
        source,
        &[
            "account",
            "create",
            "--account-id",
            ENTITY,
            "--name",
            ACCOUNT_NAME,
        ],
    )
    .ok();
    let login = ["--db", source, "auth", "login", "--client-id", CLIENT_ID];
    let secrets = [
        ("AMCCTL_CLIENT_SECRET", CLIENT_SECRET),
        ("AMCCTL_REFRESH_TOKEN", REFRESH_TOKEN),
    ];
    env.run_env(DEFAULT_USER, &login, &secrets).ok();
    let rows: Vec<serde_json::Value> = FLEET
        .iter()
        .map(|id| {
            serde_json::json!({"instance_id": id, "name": id, "region": "na",
                               "status": "PENDING", "account": {"account_id": ENTITY}})
        })
        .collect();
    let file = env.write_file("fleet.json", serde_json::to_vec(&rows).unwrap());
    on(
        env,
        source,
        &[
            "instance",
            "import",
            file.to_str().unwrap(),
            "--format",
            "json",
        ],
    )
    .ok();
    on(
        env,
        source,
        &["brand", "set", FLEET[0], "Acme", "Acme Kids"],
    )
    .ok();
    on(
        env,
        source,
        &[
            "instance",
            "config",
            "set",
            FLEET[0],
            "region_hint",
            "eu-west",
        ],
    )
    .ok();
    for id in FLEET {
        fake.add_instance(ENTITY, id, id);
        fake.set_usage(
            id,
            Usage {
                workflows: vec![workflow(&format!("{id}-wf"))],
                executions: vec![execution(
                    &format!("{id}-e1"),
                    &format!("{id}-wf"),
                    "SUCCEEDED",
                    "2026-11-20T10:00:00Z",
                    "2026-11-20T10:05:00Z",
                    "AD_HOC",
                )],
                schedules: vec![schedule(
                    &format!("{id}-s"),
                    &format!("{id}-wf"),
                    "DAILY",
                    4,
                    true,
                )],
                advertisers: vec![advertiser(ENTITY, ACCOUNT_NAME, US)],
            },
        );
    }
    on(env, source, &["health", "check", "--all"]).ok();
    on(env, source, &["health", "check", "--all"]).ok();
    on(env, source, &["usage", "sync", "--all", "--rate", "1000"]).ok();

    let before = views(env, source);
    let rows = rows_of(&Probe::new(source).dump());
    for table in [
        "health_checks] 8",
        "credentials] 1",
        "workflow_executions] 4",
        "usage_syncs] 4",
    ] {
        assert!(
            rows.contains(&format!("[{table} row(s)")),
            "{table}: {rows}"
        );
    }

    let server = pg::server().expect("a test server");
    let team = Database::new();
    let team_url = server.url(&team.name);
    let copy = env.scratch().join("copy.db");
    let copy = copy.to_str().unwrap();
    let backup = env.scratch().join("backup.db");
    let backup = backup.to_str().unwrap();

    // SQLite → a freshly migrated PostgreSQL database.
    let out = on(
        env,
        source,
        &["db", "copy", "--to", &team_url, "-o", "json"],
    )
    .ok();
    let report = out.json();
    assert_eq!(report["source"], source);
    assert_eq!(report["destination"], team_url.as_str());
    assert_eq!(report["tables"]["health_checks"], 8);
    assert_eq!(report["tables"]["amc_instances"], 4);
    on(env, &team_url, &["db", "check"]).ok();
    // PostgreSQL → a new SQLite file, by `db copy` and by `db backup`.
    let out = on(env, &team_url, &["db", "copy", "--to", copy]).ok();
    assert!(out.stdout.starts_with("Copied "), "{}", out.stdout);
    on(env, &team_url, &["db", "backup", backup]).ok();
    for db in [copy, backup] {
        on(env, db, &["db", "check"]).ok();
    }

    // In the team store alice acts as her own login role, once registered
    // (her row came with the copy; `user add` gives the role its privileges).
    let alice_url = server.member(DEFAULT_USER, &team.name);
    for (name, db) in [
        ("PostgreSQL", alice_url.as_str()),
        ("SQLite", copy),
        ("backup", backup),
    ] {
        for (want, got) in before.iter().zip(views(env, db)) {
            assert_lines_eq(
                want,
                &got,
                format!("the {name} copy shows the fleet differently"),
            );
        }
    }
    // Every column of every row, history ids and ciphertexts included.
    let team_probe = Probe::postgres(&team.name);
    assert_lines_eq(
        &without_is_admin(&rows),
        &without_is_admin(&rows_of(&team_probe.dump())),
        "rows of the PostgreSQL copy",
    );
    assert_lines_eq(
        &rows,
        &rows_of(&Probe::new(copy).dump()),
        "rows of the SQLite copy",
    );
    assert_lines_eq(
        &rows,
        &rows_of(&Probe::new(backup).dump()),
        "rows of the backup",
    );

    // A store that holds rows is never copied into: exit 5, unchanged.
    let full = Probe::new(copy).dump();
    on(env, source, &["db", "copy", "--to", copy]).fails(5, &["not empty"]);
    assert_lines_eq(
        &full,
        &Probe::new(copy).dump(),
        "a refused copy changed the file",
    );
    let full = team_probe.dump();
    on(env, copy, &["db", "copy", "--to", &team_url]).fails(5, &["not empty"]);
    assert_lines_eq(
        &full,
        &team_probe.dump(),
        "a refused copy changed the database",
    );
    // A password on the command line is refused before anything is opened.
    let with_password = team_url.replacen('@', ":secret@", 1);
    on(env, source, &["db", "copy", "--to", &with_password]).fails(2, &["password"]);

    // The copy's history numbering continues after the copied ids.
    on(env, &alice_url, &["health", "check", FLEET[1]]).ok();
    assert_eq!(team_probe.scalar("SELECT max(id) FROM health_checks"), 9);
}

#[test]
fn a_fleet_round_trips_between_the_backends() {
    pg::run_on(
        Backend::Postgres,
        a_fleet_round_trips_between_the_backends_unchanged,
    );
}
