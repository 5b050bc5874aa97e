//! Who the acting user is. In the team store it is the database login: bob,
//! connected as the role `bob`, cannot become alice by naming her with
//! `--user`, `AMCCTL_USER` or config `user` — each is exit 4 with nothing
//! changed, reads included (`audit list --user alice` is no naming: there
//! the flag says whose entries to list). In a SQLite store there are no logins: the
//! file is the user's own, and `--user` picks whose instances to act on,
//! as it always did (a store of one person, or a shared cron home).

use crate::support::pg::{self, Backend};
use crate::support::*;

const ACME: &str = "ENTITY1AA1AA11AAA1";

/// Commands bob tries while naming alice: reads and writes of her
/// instance, a create in her name, and her own lists.
const COMMANDS: &[&[&str]] = &[
    &["instance", "list"],
    &["instance", "show", "amcaaaaaaaa"],
    &["instance", "edit", "amcaaaaaaaa", "--description", "by bob"],
    &["brand", "add", "amcaaaaaaaa", "Bobs"],
    &[
        "instance",
        "create",
        "--instance-id",
        "amcbobasali",
        "--account",
        "Acme",
        "--skip-validation",
    ],
    &["instance", "share", "amcaaaaaaaa", "--with", "bob"],
    &["instance", "delete", "amcaaaaaaaa", "--yes"],
    &["audit", "list"],
];

/// The three ways of naming a user other than oneself.
#[derive(Debug, Clone, Copy)]
enum Naming {
    Flag,
    Env,
    Config,
}

fn run_naming(env: &TestEnv, naming: Naming, as_user: &str, named: &str, args: &[&str]) -> Output {
    match naming {
        Naming::Flag => {
            let mut full = vec!["--user", named];
            full.extend(args);
            env.run_as(as_user, &full)
        }
        Naming::Env => env.run_env(as_user, args, &[("AMCCTL_USER", named)]),
        Naming::Config => {
            let file = env.write_file(&format!("{named}.toml"), format!("user = \"{named}\"\n"));
            let path = file.to_str().expect("utf-8 path").to_owned();
            let mut full = vec!["--config", path.as_str()];
            full.extend(args);
            env.run_as(as_user, &full)
        }
    }
}

fn world() -> TestEnv {
    let env = TestEnv::new();
    env.create_account(ACME, "Acme");
    env.create_instance("amcaaaaaaaa", "Alice Main", "Acme", &["Acme"]);
    env.run_as("bob", &["instance", "list"]).ok();
    env
}

fn naming_another_user_is_exit_4_in_the_team_store_only() {
    let env = world();
    let mut cases = 0;
    match pg::current() {
        Backend::Postgres => {
            for naming in [Naming::Flag, Naming::Env, Naming::Config] {
                for args in COMMANDS {
                    let before = env.dump();
                    let ctx = format!("bob naming alice by {naming:?}: amcctl {args:?}");
                    let out = run_naming(&env, naming, "bob", "alice", args);
                    if matches!(naming, Naming::Flag) && args[0] == "audit" {
                        // `audit list --user alice` asks for alice's entries:
                        // bob reads none (her instance is not shared with him).
                        assert_eq!(out.code, 0, "{ctx}\nstderr: {}", out.stderr);
                        assert_eq!(out.stdout, "", "{ctx}");
                        env.assert_unchanged(&before, &ctx);
                        cases += 1;
                        continue;
                    }
                    assert_eq!(
                        out.code, 4,
                        "{ctx}\nstdout: {}\nstderr: {}",
                        out.stdout, out.stderr
                    );
                    assert!(out.stdout.is_empty(), "{ctx}: printed {:?}", out.stdout);
                    assert!(
                        out.stderr.contains("alice") && out.stderr.contains("bob"),
                        "{ctx}: the message names the login and the user named: {}",
                        out.stderr
                    );
                    env.assert_unchanged(&before, &ctx);
                    cases += 1;
                }
                // Naming oneself is no impersonation.
                let listed = run_naming(
                    &env,
                    naming,
                    "bob",
                    "bob",
                    &["instance", "list", "-o", "json"],
                );
                assert_eq!(
                    listed.code, 0,
                    "bob naming bob by {naming:?}: {}",
                    listed.stderr
                );
                assert_eq!(listed.json(), serde_json::json!([]), "{naming:?}");
                cases += 1;
            }
            // A JSON error for scripts.
            let out = env.run_as(
                "bob",
                &["--user", "alice", "instance", "list", "-o", "json"],
            );
            assert_eq!(out.code, 4, "{}", out.stderr);
            assert_eq!(out.error_json()["code"], "permission_denied");
        }
        Backend::Sqlite => {
            // A SQLite store has no logins: `--user`, `AMCCTL_USER` and
            // config `user` choose the acting user, as before sharing came.
            for naming in [Naming::Flag, Naming::Env, Naming::Config] {
                let description = format!("by bob as alice through {naming:?}");
                let edited = run_naming(
                    &env,
                    naming,
                    "bob",
                    "alice",
                    &[
                        "instance",
                        "edit",
                        "amcaaaaaaaa",
                        "--description",
                        &description,
                        "-o",
                        "json",
                    ],
                );
                assert_eq!(edited.code, 0, "{naming:?}: {}", edited.stderr);
                let edited = edited.json();
                assert_eq!(edited["owner"], "alice", "{naming:?}");
                assert_eq!(edited["description"], description.as_str(), "{naming:?}");
                // ... and the trail names the user acted as.
                let actor = env.probe().rows(
                    "SELECT actor, command FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)",
                );
                assert_eq!(
                    actor,
                    [["\"alice\"".to_owned(), "\"instance edit\"".to_owned()]],
                    "{naming:?}"
                );
                let listed = run_naming(
                    &env,
                    naming,
                    "bob",
                    "alice",
                    &["instance", "list", "-o", "json"],
                );
                assert_eq!(listed.code, 0, "{naming:?}: {}", listed.stderr);
                assert_eq!(
                    pluck(&listed.json(), "instance_id"),
                    ["amcaaaaaaaa"],
                    "{naming:?}"
                );
                cases += 2;
            }
        }
    }
    eprintln!("impersonation: {cases} cases on {:?}", pg::current());
    let expected = match pg::current() {
        Backend::Postgres => 3 * (COMMANDS.len() + 1),
        Backend::Sqlite => 6,
    };
    assert_eq!(cases, expected);
}

crate::on_both_backends!(naming_another_user_is_exit_4_in_the_team_store_only);
