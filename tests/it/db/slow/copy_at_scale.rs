//! `db copy` at the size of a real agency's registry: 10,000 instances with
//! brands, 50,000 health checks and a login go from a SQLite store into
//! PostgreSQL and back into a new SQLite file; `instance export` is
//! byte-identical at each step, `health report -o json` equal, and the
//! login still works (`auth status`). The copies' times are printed.

use std::time::Instant;

use chrono::TimeDelta;

use crate::support::amc::{ACCOUNT_NAME, CLIENT_ID, CLIENT_SECRET, ENTITY, REFRESH_TOKEN, US};
use crate::support::pg::{self, Backend, Database};
use crate::support::{DEFAULT_USER, Output, TestEnv, assert_lines_eq};
use amcctl::domain::{HealthRecord, HealthStatus, RowId};
use amcctl::store::{Location, Store};
use fake_amc::FakeAmc;

const INSTANCES: usize = 10_000;
const CHECKS_PER_INSTANCE: usize = 5;

/// `args` run against the store at `db`.
fn on(env: &TestEnv, db: &str, args: &[&str]) -> Output {
    let mut full = vec!["--db", db];
    full.extend_from_slice(args);
    env.run(&full)
}

/// What must survive a copy unchanged, as the commands show it.
fn views(env: &TestEnv, db: &str) -> [String; 3] {
    [
        on(env, db, &["instance", "export"]).ok().stdout,
        on(env, db, &["instance", "export", "--format", "csv"])
            .ok()
            .stdout,
        on(
            env,
            db,
            &["health", "report", "--since", "30d", "-o", "json"],
        )
        .ok()
        .stdout,
    ]
}

fn ten_thousand_instances_round_trip() {
    let fake = FakeAmc::start();
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN);
    fake.add_account(ENTITY, ACCOUNT_NAME, US);
    let env = &TestEnv::new().with_fake_amc(&fake).with_fixed_clock();
    let source_path = env.scratch().join("source.db");
    let source = source_path.to_str().expect("a UTF-8 path");

    let secrets = [
        ("AMCCTL_CLIENT_SECRET", CLIENT_SECRET),
        ("AMCCTL_REFRESH_TOKEN", REFRESH_TOKEN),
    ];
    env.run_env(
        DEFAULT_USER,
        &["--db", source, "auth", "login", "--client-id", CLIENT_ID],
        &secrets,
    )
    .ok();
    let brands = ["Acme", "Acme Kids", "Globex", "Initech"];
    let rows: Vec<serde_json::Value> = (0..INSTANCES)
        .map(|i| {
            serde_json::json!({
                "instance_id": format!("amcscale{i:05}"),
                "name": format!("Scale {i:05}"),
                "region": "na",
                "status": if i % 7 == 0 { "INACTIVE" } else { "ACTIVE" },
                "brands": brands[..i % 4].to_vec(),
                "account": {"account_id": ENTITY, "account_name": ACCOUNT_NAME, "country_code": "US"},
            })
        })
        .collect();
    let file = env.write_file("fleet.json", serde_json::to_vec(&rows).expect("JSON"));
    on(
        env,
        source,
        &[
            "instance",
            "import",
            file.to_str().expect("a UTF-8 path"),
            "--format",
            "json",
        ],
    )
    .ok();

    // The history, written through the library as a bulk check would.
    let mut store = Store::open(&Location::Sqlite(source_path.clone())).expect("open the store");
    let ids: Vec<RowId> = store
        .instances(&Default::default())
        .expect("list the instances")
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids.len(), INSTANCES);
    let now = amcctl::domain::now();
    for day in (1..=CHECKS_PER_INSTANCE as i64).rev() {
        let batch: Vec<HealthRecord> = ids
            .iter()
            .enumerate()
            .map(|(k, &instance)| {
                let healthy = !(k + day as usize).is_multiple_of(5);
                HealthRecord {
                    instance,
                    checked_at: now - TimeDelta::days(day),
                    status: if healthy {
                        HealthStatus::Healthy
                    } else {
                        HealthStatus::Unhealthy
                    },
                    http_status: Some(if healthy { 200 } else { 403 }),
                    latency_ms: Some(40 + (k as u64 * 13) % 400),
                    attempts: 1,
                    error: (!healthy).then(|| "HTTP 403: not allowed".to_owned()),
                }
            })
            .collect();
        for chunk in batch.chunks(1_000) {
            store.record_health(chunk).expect("record the history");
        }
    }
    drop(store);

    let before = views(env, source);
    let server = pg::server().expect("a test server");
    let team = Database::new();
    let team_url = server.url(&team.name);
    let back_path = env.scratch().join("back.db");
    let back = back_path.to_str().expect("a UTF-8 path");

    let started = Instant::now();
    let report = on(
        env,
        source,
        &["db", "copy", "--to", &team_url, "-o", "json"],
    )
    .ok()
    .json();
    eprintln!("SQLite -> PostgreSQL: {:?}", started.elapsed());
    assert_eq!(report["tables"]["amc_instances"], INSTANCES);
    assert_eq!(
        report["tables"]["health_checks"],
        INSTANCES * CHECKS_PER_INSTANCE
    );
    assert_eq!(report["tables"]["credentials"], 1);
    let started = Instant::now();
    on(env, &team_url, &["db", "copy", "--to", back]).ok();
    eprintln!("PostgreSQL -> SQLite: {:?}", started.elapsed());

    // In the team store alice acts as her own login role, once registered
    // (her row came with the copy; registering gives the role its privileges).
    let alice_url = server.member(DEFAULT_USER, &team.name);
    for (name, db) in [("PostgreSQL", alice_url.as_str()), ("SQLite", back)] {
        on(env, db, &["db", "check"]).ok();
        for (want, got) in before.iter().zip(views(env, db)) {
            assert_lines_eq(
                want,
                &got,
                format!("the {name} copy shows the fleet differently"),
            );
        }
        // The login came along: its secrets open with the same key.
        let status = on(env, db, &["auth", "status", "-o", "json"]).ok().json();
        assert_eq!(status["client_id"], CLIENT_ID, "{status}");
    }
}

#[test]
fn ten_thousand_instances_and_their_history_copy_both_ways() {
    pg::run_on(Backend::Postgres, ten_thousand_instances_round_trip);
}
