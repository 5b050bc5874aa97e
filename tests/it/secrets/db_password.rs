//! The team store's password never leaks: given in `PGPASSWORD` or in the
//! config file's URL, it appears in no output format, no verbose log, no
//! error message (a refused login included), and never in `db path`,
//! `config get db` or `config list`. A password on the command line or in
//! `AMCCTL_DB` is refused without being echoed, and a config file holding
//! one must be private.

use std::os::unix::fs::PermissionsExt;

use crate::support::pg::{self, Backend};
use crate::support::*;

const ACME: &str = "ENTITY1AA1AA11AAA1";
/// The password of the login the test creates; nothing else has it.
const PASSWORD: &str = "pw-DBLEAK-7c1e5a90b3d2";
/// A password the server refuses, which must not be echoed either.
const WRONG: &str = "pw-DBLEAK-wrong-44f0e1";
/// What no output may contain: the distinctive middle of both.
const MARKER: &str = "DBLEAK";

#[track_caller]
fn assert_clean(out: &Output) {
    for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !text.contains(MARKER),
            "the database password leaked into the {stream} of amcctl {:?}:\n{text}",
            out.args
        );
    }
}

/// A login role of this test's own with [`PASSWORD`], a user of the test
/// database (registered as `amcctl user add` does, which grants it what a
/// member needs); returns the database URL for that role (no password).
fn leak_role(env: &TestEnv) -> String {
    let server = pg::server().expect("a test server");
    let mut url = url::Url::parse(&env.db_location()).expect("a database URL");
    let db = url.path().trim_start_matches('/').to_owned();
    let role = format!("leak_{}", db.trim_start_matches("amcctl_t_"));
    let mut admin = server.connect(&db);
    admin
        .batch_execute(&format!("CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"))
        .expect("create the test's login role");
    env.open_store()
        .add_user(&role, false)
        .expect("register the test's login role");
    url.set_username(&role).expect("a URL with a user");
    url.to_string()
}

/// The commands whose output is checked: reads and writes in every
/// format, verbose logs, and the store commands that print its location.
fn exercise(env: &TestEnv, extra: &[(&str, &str)]) {
    let run = |args: &[&str]| {
        let out = env.run_env(DEFAULT_USER, args, extra);
        assert_clean(&out);
        out
    };
    run(&[
        "account",
        "create",
        "--account-id",
        ACME,
        "--name",
        "Acme",
        "-vv",
    ]);
    run(&[
        "instance",
        "create",
        "--instance-id",
        "amcaaaaaaaa",
        "--name",
        "A",
        "--account",
        "Acme",
        "--skip-validation",
        "-vv",
    ]);
    for format in ["table", "json", "ndjson", "csv"] {
        run(&["instance", "list", "-o", format, "-vv"]).ok();
        run(&["account", "list", "-o", format]).ok();
    }
    run(&["db", "path"]).ok();
    run(&["db", "path", "-o", "json"]).ok();
    run(&["db", "check", "-vv"]).ok();
    run(&["db", "migrate", "-o", "json"]).ok();
    run(&["config", "list"]).ok();
    run(&["config", "list", "-o", "json"]).ok();
    run(&["instance", "show", "nosuch"]).code(3);
}

fn through_pgpassword() {
    let env = TestEnv::new();
    let url = leak_role(&env);
    let extra = [("AMCCTL_DB", url.as_str()), ("PGPASSWORD", PASSWORD)];
    exercise(&env, &extra);
    // A refused login names host and user, never the password tried.
    let out = env.run_env(
        DEFAULT_USER,
        &["instance", "list", "-vv"],
        &[("AMCCTL_DB", url.as_str()), ("PGPASSWORD", WRONG)],
    );
    assert_clean(&out);
    let out = out.fails(
        8,
        &[
            "cannot connect to the store",
            "password authentication failed",
        ],
    );
    assert!(out.stderr.contains("@127.0.0.1:"), "{}", out.stderr);
}

fn through_the_config_file() {
    let env = TestEnv::new();
    let url = url::Url::parse(&leak_role(&env)).expect("a URL");
    let mut with_password = url.clone();
    with_password
        .set_password(Some(PASSWORD))
        .expect("a URL with a password");
    let config = env.write_file("config.toml", format!("db = \"{with_password}\"\n"));
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config_arg = config.display().to_string();
    // No AMCCTL_DB and no PGPASSWORD: the URL in the file is all there is.
    let extra = [("AMCCTL_CONFIG", config_arg.as_str())];
    let unset = ["AMCCTL_DB", "PGPASSWORD"];
    let out = env.run_unsetting(&["db", "path"], &extra, &unset).ok();
    assert_eq!(out.stdout.trim(), url.as_str());
    let out = env
        .run_unsetting(&["config", "get", "db"], &extra, &unset)
        .ok();
    assert_clean(&out);
    assert_eq!(out.stdout.trim(), url.as_str());
    let out = env
        .run_unsetting(&["instance", "list", "-o", "json", "-vv"], &extra, &unset)
        .ok();
    assert_clean(&out);
    // The file must keep the password from other users.
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = env.run_unsetting(&["instance", "list"], &extra, &unset);
    assert_clean(&out);
    out.fails(2, &["other users may read it", "chmod 600"]);
}

fn refused_on_the_command_line() {
    let env = TestEnv::new();
    let url = url::Url::parse(&leak_role(&env)).expect("a URL");
    let mut with_password = url.clone();
    with_password
        .set_password(Some(PASSWORD))
        .expect("a URL with a password");
    let before = env.dump();
    let out = env.run(&["--db", with_password.as_str(), "instance", "list"]);
    assert_clean(&out);
    out.fails(2, &["PGPASSWORD"]);
    let out = env.run_env(
        DEFAULT_USER,
        &["account", "list"],
        &[("AMCCTL_DB", with_password.as_str())],
    );
    assert_clean(&out);
    out.fails(2, &["PGPASSWORD"]);
    let out = env.run(&["config", "set", "db", with_password.as_str()]);
    assert_clean(&out);
    out.code(2);
    env.assert_unchanged(&before, "a refused password");
}

/// Each scenario on the team store alone: the password is PostgreSQL's.
#[test]
fn the_database_password_never_leaks() {
    for scenario in [
        through_pgpassword as fn(),
        through_the_config_file,
        refused_on_the_command_line,
    ] {
        pg::run_on(Backend::Postgres, scenario);
    }
}
