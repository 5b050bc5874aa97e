//! The team store's edges: where it is and whether it can be used. A URL
//! that cannot be right is exit 2 naming what is wrong; a server that
//! cannot be reached, refuses the login or lacks the database is exit 8
//! naming host and user within the connect timeout; a schema older than the
//! binary's asks for `amcctl db migrate`, a newer one is refused; and
//! `db migrate` is what brings a database up to date, once, however many
//! clients run it at the same time.

use std::time::{Duration, Instant};

use crate::support::pg::{self, Backend};
use crate::support::*;

/// A URL amcctl refuses before connecting, and what the error must say.
const BAD_URLS: [(&str, &str); 5] = [
    ("postgres://127.0.0.1/amc", "no user"),
    ("postgres://alice@127.0.0.1", "no database"),
    (
        "postgres://alice@127.0.0.1/amc?sslmode=sometimes",
        "sslmode",
    ),
    (
        "postgres://alice@127.0.0.1/amc?connect_timeout=1",
        "unknown URL parameter",
    ),
    ("postgres://alice@127.0.0.1:70000/amc", "not a valid URL"),
];

#[test]
fn a_malformed_url_is_exit_2_naming_what_is_wrong() {
    // No server is needed: nothing is connected to.
    let env = TestEnv::new();
    for (url, says) in BAD_URLS {
        env.run(&["--db", url, "instance", "list"])
            .fails(2, &[says]);
        env.run_env(DEFAULT_USER, &["account", "list"], &[("AMCCTL_DB", url)])
            .fails(2, &[says]);
    }
    assert!(!env.home().join("amcctl.db").exists());
}

#[test]
fn an_unreachable_server_is_exit_8_naming_host_and_user_in_bounded_time() {
    let env = TestEnv::new();
    // A loopback port nothing listens on: the connection is refused.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address").port()
    };
    let url = format!("postgres://carol@127.0.0.1:{port}/amc?sslmode=disable");
    let started = Instant::now();
    let out = env
        .run_env(DEFAULT_USER, &["instance", "list"], &[("AMCCTL_DB", &url)])
        .fails(
            8,
            &[
                "cannot connect to the store",
                &format!("carol@127.0.0.1:{port}/amc"),
            ],
        );
    assert!(started.elapsed() < Duration::from_secs(10), "{out:?}");
    let err = env
        .run_env(
            DEFAULT_USER,
            &["instance", "list", "-o", "json"],
            &[("AMCCTL_DB", &url)],
        )
        .code(8)
        .error_json();
    assert_eq!(err["code"], "store");
}

fn a_missing_database_or_a_refused_login_is_exit_8() {
    let env = TestEnv::new();
    let server = pg::server().expect("a test server");
    let missing = server.url("amcctl_no_such_database");
    env.run_env(
        DEFAULT_USER,
        &["instance", "list"],
        &[("AMCCTL_DB", &missing)],
    )
    .fails(8, &["amcctl_no_such_database", "does not exist"]);
    env.run_env(
        DEFAULT_USER,
        &["instance", "list"],
        &[("PGPASSWORD", "not-the-password")],
    )
    .fails(
        8,
        &[
            "cannot connect to the store",
            "password authentication failed",
        ],
    );
}

fn an_older_schema_asks_for_db_migrate_and_a_newer_one_is_refused() {
    let env = TestEnv::new();
    let server = pg::server().expect("a test server");
    let name = format!("amcctl_t_{}_bare", std::process::id());
    let mut admin = server.connect("postgres");
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
        .expect("drop");
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create an empty database");
    let bare = server.url(&name);
    let with = [("AMCCTL_DB", bare.as_str())];
    for args in [
        &["instance", "list"][..],
        &[
            "account",
            "create",
            "--account-id",
            "ENTITY1AA1AA11AAA1",
            "--name",
            "A",
        ],
    ] {
        env.run_env(DEFAULT_USER, args, &with)
            .fails(8, &["schema version 0", "amcctl db migrate"]);
    }
    // Several clients migrating at once: one does the work, all succeed.
    let runs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| env.run_env(DEFAULT_USER, &["db", "migrate", "-o", "json"], &with)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a migrating client"))
            .collect()
    });
    let migrated = runs
        .into_iter()
        .map(|o| o.ok().json())
        .filter(|j| j["from_version"] == 0)
        .count();
    assert_eq!(migrated, 1, "exactly one client migrated");
    env.run_env(DEFAULT_USER, &["instance", "list"], &with).ok();
    env.run_env(DEFAULT_USER, &["db", "check"], &with).ok();
    drop(admin);
    let _ = server
        .connect("postgres")
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));

    // A colleague's newer amcctl migrated further: refused, nothing written.
    env.probe()
        .exec("INSERT INTO amcctl_schema_migrations (version, applied_at) VALUES (99, now())");
    let before = env.dump();
    env.run(&["instance", "list"])
        .fails(8, &["schema version 99", "newer"]);
    env.run(&["user", "add", "carol"]).fails(8, &["newer"]);
    env.run(&["db", "migrate"]).fails(8, &["newer"]);
    env.assert_unchanged(&before, "a newer schema");
}

fn db_path_shows_the_url_and_db_check_passes() {
    let env = TestEnv::new();
    let out = env.run(&["db", "path"]).ok();
    assert_eq!(out.stdout.trim(), env.db_location());
    env.create_account("ENTITY1AA1AA11AAA1", "Acme");
    let out = env.run(&["db", "check"]).ok();
    assert!(out.stdout.contains("ok"), "{}", out.stdout);
}

/// The server's own answers, so PostgreSQL alone.
#[test]
fn the_team_store_reports_what_is_wrong_with_it() {
    for case in [
        a_missing_database_or_a_refused_login_is_exit_8 as fn(),
        an_older_schema_asks_for_db_migrate_and_a_newer_one_is_refused,
        db_path_shows_the_url_and_db_check_passes,
    ] {
        pg::run_on(Backend::Postgres, case);
    }
}
