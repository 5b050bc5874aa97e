//! Roles on a shared instance: every command that takes an `INSTANCE`, run
//! by its owner, an operator, a viewer, a stranger and an administrator.
//! What each may do is `Role::allows` — the one table of who may do what —
//! and a stranger may do nothing. An allowed command succeeds (a check's
//! result is recorded); a refused one is exit 4 (`--nagios`: UNKNOWN, 3),
//! sends nothing to AMC and leaves the store byte-identical. 34 commands x
//! 5 actors = 170 cases on each backend; every case runs, and the ones that
//! went wrong are listed together.

use amcctl::domain::{Action, Role};
use fake_amc::FakeAmc;
use serde_json::Value;

use crate::support::*;

const ACME: &str = "ENTITY1AA1AA11AAA1";
const GLOBEX: &str = "ENTITY2BB2BB22BBB2";
const CLIENT: &str = "roles-client";
const SECRET: &str = "roles-secret";
const REFRESH: &str = "Atzr|roles-refresh";

/// Alice's instance, the one every command names.
const INSTANCE: &str = "amcaaaaaaaa";

/// Who runs the commands, and what they are to alice's instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actor {
    Owner,
    Operator,
    Viewer,
    Stranger,
    Admin,
}

const ACTORS: [Actor; 5] = [
    Actor::Owner,
    Actor::Operator,
    Actor::Viewer,
    Actor::Stranger,
    Actor::Admin,
];

impl Actor {
    fn user(self) -> &'static str {
        match self {
            Actor::Owner => "alice",
            Actor::Operator => "bob",
            Actor::Viewer => "vera",
            Actor::Stranger => "sam",
            Actor::Admin => "root",
        }
    }

    /// Their role on alice's instance; a stranger has none.
    fn role(self) -> Option<Role> {
        match self {
            Actor::Owner => Some(Role::Owner),
            Actor::Operator => Some(Role::Operator),
            Actor::Viewer => Some(Role::Viewer),
            Actor::Stranger => None,
            Actor::Admin => Some(Role::Admin),
        }
    }

    fn may(self, action: Action) -> bool {
        self.role().is_some_and(|r| r.allows(action))
    }
}

/// Every command that takes an `INSTANCE` (`{}`), with the action it takes
/// on it. Ordered so that each allowed command still succeeds after the
/// allowed ones before it ran: reads first, then changes, then what
/// removes things, `instance delete` last.
const COMMANDS: &[(&[&str], Action)] = &[
    (&["instance", "show", "{}"], Action::Show),
    (&["brand", "list", "{}"], Action::Show),
    (&["audit", "list", "--instance", "{}"], Action::Show),
    (&["health", "history", "{}"], Action::History),
    (
        &["health", "history", "{}", "--since", "7d", "--limit", "1"],
        Action::History,
    ),
    (&["usage", "report", "{}"], Action::Usage),
    (&["usage", "executions", "{}"], Action::Usage),
    (&["schedule", "list", "{}"], Action::Usage),
    (&["instance", "test", "{}"], Action::Test),
    (&["instance", "advertisers", "{}"], Action::Test),
    (&["usage", "sync", "{}"], Action::Test),
    (&["health", "check", "{}"], Action::Check),
    (
        &["health", "check", "{}", "--deep", "--nagios"],
        Action::Check,
    ),
    (&["instance", "access", "{}"], Action::Share),
    (&["instance", "export", "{}"], Action::Export),
    (
        &["instance", "export", "{}", "--format", "csv"],
        Action::Export,
    ),
    (&["instance", "config", "list", "{}"], Action::Edit),
    (
        &["instance", "config", "get", "{}", "region_hint"],
        Action::Edit,
    ),
    (
        &["instance", "config", "set", "{}", "note", "from a test"],
        Action::Edit,
    ),
    (&["instance", "config", "unset", "{}", "note"], Action::Edit),
    (&["brand", "add", "{}", "Extra"], Action::Brands),
    (&["brand", "remove", "{}", "Acme"], Action::Brands),
    (&["brand", "set", "{}", "Replaced"], Action::Brands),
    (&["brand", "clear", "{}", "--yes"], Action::Brands),
    (
        &["instance", "edit", "{}", "--description", "edited"],
        Action::EditDescription,
    ),
    (&["instance", "deactivate", "{}"], Action::SetState),
    (
        &["instance", "activate", "{}", "--skip-validation"],
        Action::SetState,
    ),
    (&["instance", "deactivate", "{}"], Action::SetState),
    (&["instance", "activate", "{}"], Action::SetState),
    (
        &["instance", "edit", "{}", "--name", "Renamed"],
        Action::Edit,
    ),
    (
        &["instance", "link", "{}", "--account", "Globex"],
        Action::Edit,
    ),
    (
        &[
            "instance", "share", "{}", "--with", "carol", "--role", "operator",
        ],
        Action::Share,
    ),
    (
        &["instance", "unshare", "{}", "--with", "carol"],
        Action::Share,
    ),
    (&["instance", "delete", "{}", "--yes"], Action::Delete),
];

/// A fake AMC where alice's instance is healthy, and a store where alice
/// owns `amcaaaaaaaa` ("Alice Main", brand Acme, one setting, one recorded
/// check) and has shared it with bob (operator), vera and carol (viewers);
/// sam is a user with no access, root an administrator. Alice has a stored
/// login and everyone has working AMC credentials in the environment, so
/// that an allowed call to AMC succeeds and a wrongly allowed one would show.
fn world() -> (FakeAmc, TestEnv) {
    let amc = FakeAmc::start();
    amc.add_client(CLIENT, SECRET, REFRESH);
    amc.add_account(ACME, "Acme", "ATVPDKIKX0DER");
    amc.add_account(GLOBEX, "Globex", "ATVPDKIKX0DER");
    amc.add_instance(ACME, INSTANCE, INSTANCE);
    let env = TestEnv::new()
        .with_fake_amc(&amc)
        .with_env("AMCCTL_CLIENT_ID", CLIENT)
        .with_env("AMCCTL_CLIENT_SECRET", SECRET)
        .with_env("AMCCTL_REFRESH_TOKEN", REFRESH);
    env.make_admin("root");
    // Alice's own stored login: what an administrator's call to AMC about
    // her instance goes through in a SQLite store.
    env.login("alice", CLIENT, SECRET, REFRESH).ok();
    env.create_account(ACME, "Acme");
    env.create_account(GLOBEX, "Globex");
    let alice = env.create_instance(INSTANCE, "Alice Main", "Acme", &["Acme"]);
    env.run(&["instance", "config", "set", INSTANCE, "region_hint", "east"])
        .ok();
    for user in ["bob", "vera", "carol", "sam"] {
        // Each becomes a user of the store as on their first command.
        env.run_as(user, &["instance", "list"]).ok();
    }
    env.run(&[
        "instance", "share", INSTANCE, "--with", "bob", "--role", "operator",
    ])
    .ok();
    for viewer in ["vera", "carol"] {
        env.run(&["instance", "share", INSTANCE, "--with", viewer])
            .ok();
    }
    env.probe().exec(&format!(
        "INSERT INTO health_checks (instance_id, checked_at, status, http_status, latency_ms, attempts)
         VALUES ('{}', '2026-01-01T00:00:00Z', 'HEALTHY', 200, 12, 1)",
        alice["id"].as_str().expect("id")
    ));
    (amc, env)
}

fn fill<'a>(template: &[&'a str]) -> Vec<&'a str> {
    template
        .iter()
        .map(|a| if *a == "{}" { INSTANCE } else { *a })
        .collect()
}

/// What is wrong with `out`, the outcome of a command `actor` ran that the
/// role table allows (`may`) or not; `changed` says whether the store
/// changed and `reached_amc` whether AMC was asked anything.
fn judge(
    may: bool,
    nagios: bool,
    out: &Output,
    changed: bool,
    reached_amc: bool,
) -> Option<String> {
    let shown = || {
        format!(
            "exit {}
stdout: {}
stderr: {}",
            out.code, out.stdout, out.stderr
        )
    };
    match (may, nagios) {
        // (A health check that found the instance unhealthy would be 10;
        // the fake keeps it healthy.)
        (true, false) => (out.code != 0).then(|| format!("allowed, so it succeeds; {}", shown())),
        (true, true) => (out.code != 0 || !out.stdout.starts_with("AMC OK"))
            .then(|| format!("allowed: AMC OK; {}", shown())),
        (false, nagios) => {
            // The monitoring plugin says UNKNOWN (3) in its own line.
            let refused = if nagios {
                out.code == 3 && out.stdout.starts_with("AMC UNKNOWN")
            } else {
                out.code == 4 && out.stdout.is_empty() && !out.stderr.trim().is_empty()
            };
            if !refused {
                Some(format!(
                    "refused: exit {}; {}",
                    if nagios { 3 } else { 4 },
                    shown()
                ))
            } else if changed {
                Some("refused, yet the store changed".to_owned())
            } else if reached_amc {
                Some("refused, yet it reached AMC".to_owned())
            } else {
                None
            }
        }
    }
}

fn every_instance_command_follows_the_role_table() {
    let mut cases = 0;
    let mut allowed = 0;
    // Every case runs; the failures are listed together at the end.
    let mut problems: Vec<String> = Vec::new();
    for actor in ACTORS {
        let (amc, env) = world();
        let user = actor.user();
        for (template, action) in COMMANDS {
            let args = fill(template);
            let may = actor.may(*action);
            let nagios = template.contains(&"--nagios");
            let before = env.dump();
            let requests = amc.requests().len();
            let out = env.run_as(user, &args);
            let changed = env.dump() != before;
            let reached_amc = amc.requests().len() != requests;
            let problem = judge(may, nagios, &out, changed, reached_amc).or_else(|| {
                // A check's result is recorded, whoever ran it.
                (may && *action == Action::Check && !changed)
                    .then(|| "the check's result was not recorded".to_owned())
            });
            if let Some(problem) = problem {
                problems.push(format!(
                    "{user} ({actor:?}, {action:?}): amcctl {args:?}: {problem}"
                ));
            }
            allowed += usize::from(may);
            cases += 1;
        }
        // What the owner and the administrator may do includes deleting it.
        let left = env.probe().scalar(&format!(
            "SELECT count(*) FROM amc_instances WHERE instance_id = '{INSTANCE}'"
        ));
        if left != i64::from(!actor.may(Action::Delete)) {
            problems.push(format!(
                "{actor:?}: the instance is still there exactly when its delete was refused ({left} left)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {cases} cases went wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );
    eprintln!(
        "roles: {} commands x {} actors = {cases} cases, {allowed} allowed, {} refused",
        COMMANDS.len(),
        ACTORS.len(),
        cases - allowed
    );
    assert_eq!(cases, 34 * 5, "every command for every actor");
    // The table of `Role::allows`, as these commands meet it.
    // Owner and admin: all 34; operator: 13 reads, tests and checks, 5
    // brand and description changes, 4 state changes; viewer: 8 reads.
    assert_eq!(allowed, 34 + 34 + 22 + 8, "owner, admin, operator, viewer");
}

/// `instance list` shows what each user owns or was shared, with their
/// role; `instance access` names everyone with access.
fn lists_show_each_users_role() {
    let (_amc, env) = world();
    for actor in [Actor::Owner, Actor::Operator, Actor::Viewer] {
        let listed = env
            .run_as(actor.user(), &["instance", "list", "-o", "json"])
            .ok()
            .json();
        let rows = listed.as_array().expect("a list");
        assert_eq!(rows.len(), 1, "{actor:?}: {listed}");
        assert_eq!(rows[0]["instance_id"], INSTANCE, "{actor:?}");
        assert_eq!(rows[0]["owner"], "alice", "{actor:?}");
        let role = actor.role().expect("a role").as_str();
        assert_eq!(rows[0]["role"], role, "{actor:?}: {listed}");
        let shown = env
            .run_as(actor.user(), &["instance", "show", INSTANCE, "-o", "json"])
            .ok()
            .json();
        assert_eq!(shown["id"], rows[0]["id"], "{actor:?}");
    }
    let listed = env
        .run_as("sam", &["instance", "list", "-o", "json"])
        .ok()
        .json();
    assert_eq!(listed, Value::Array(vec![]), "a stranger sees nothing");
    let listed = env
        .run_as("root", &["instance", "list", "--all-users", "-o", "json"])
        .ok()
        .json();
    assert_eq!(pluck(&listed, "instance_id"), [INSTANCE], "{listed}");
    assert_eq!(listed[0]["role"], "admin", "{listed}");

    let access = env
        .run(&["instance", "access", INSTANCE, "-o", "json"])
        .ok()
        .json();
    let mut got: Vec<(String, String)> = access
        .as_array()
        .expect("a list")
        .iter()
        .map(|a| {
            (
                a["user"].as_str().expect("user").to_owned(),
                a["role"].as_str().expect("role").to_owned(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("alice", "owner"),
            ("bob", "operator"),
            ("carol", "viewer"),
            ("vera", "viewer")
        ]
        .map(|(u, r)| (u.to_owned(), r.to_owned())),
        "{access}"
    );
    // An operator is refused the list of who has access; so is a viewer.
    for user in ["bob", "vera", "sam"] {
        env.run_as(user, &["instance", "access", INSTANCE]).code(4);
    }
}

crate::on_both_backends!(
    every_instance_command_follows_the_role_table,
    lists_show_each_users_role,
);
