//! `instance share`, `unshare` and `access`: what they print in every
//! format, what they change, and that bad input changes nothing — neither
//! the shares nor the audit trail.

use crate::support::*;
use serde_json::Value;

const ACME: &str = "ENTITY1AA1AA11AAA1";
const INSTANCE: &str = "amcaaaaaaaa";

/// Alice owns `amcaaaaaaaa`; bob, carol and sam are users of the store
/// with no access to it.
fn world() -> TestEnv {
    let env = TestEnv::new();
    env.create_account(ACME, "Acme");
    env.create_instance(INSTANCE, "Alice Main", "Acme", &["Acme"]);
    for user in ["bob", "carol", "sam"] {
        // Each becomes a user of the store as on their first command.
        env.run_as(user, &["instance", "list"]).ok();
    }
    env
}

/// The number of entries in the audit trail.
fn audit_rows(env: &TestEnv) -> i64 {
    env.probe().scalar("SELECT count(*) FROM audit_log")
}

/// The role `user` sees on alice's instance in their `instance list`.
fn role_seen_by(env: &TestEnv, user: &str) -> Option<Value> {
    let listed = env
        .run_as(user, &["instance", "list", "-o", "json"])
        .ok()
        .json();
    listed
        .as_array()
        .expect("a list")
        .iter()
        .find(|i| i["instance_id"] == INSTANCE)
        .map(|i| i["role"].clone())
}

fn share_change_and_unshare() {
    let env = world();
    assert_eq!(role_seen_by(&env, "bob"), None, "not shared yet");

    // Shared without a role: a viewer.
    let before = audit_rows(&env);
    let shared = env.json(&["instance", "share", INSTANCE, "--with", "bob"]);
    assert_keys(&shared, &["user", "role", "since", "granted_by"]);
    assert_eq!(shared["user"], "bob");
    assert_eq!(shared["role"], "viewer");
    assert_eq!(shared["granted_by"], "alice");
    assert_timestamp(&shared["since"]);
    assert_eq!(audit_rows(&env), before + 1, "one entry for the share");
    assert_eq!(role_seen_by(&env, "bob"), Some("viewer".into()));
    // A list with someone else's instance in it says the role in its table.
    let table = env.run_as("bob", &["instance", "list"]).ok();
    assert!(
        table.stdout.trim_end().ends_with("\talice\tviewer"),
        "{}",
        table.stdout
    );

    // The same role again: success, nothing written, no entry.
    let dump = env.dump();
    let again = env
        .run(&[
            "instance", "share", INSTANCE, "--with", "bob", "--role", "viewer",
        ])
        .ok();
    assert!(again.stderr.contains("already"), "{}", again.stderr);
    env.assert_unchanged(&dump, "sharing again with the same role");

    // Another role changes it.
    let changed = env.json(&[
        "instance", "share", INSTANCE, "--with", "bob", "--role", "operator",
    ]);
    assert_eq!(changed["role"], "operator");
    assert_eq!(role_seen_by(&env, "bob"), Some("operator".into()));
    let shown = env
        .run_as("bob", &["instance", "show", INSTANCE, "-o", "json"])
        .ok()
        .json();
    assert_instance_shape(&shown);
    assert_eq!(shown["role"], "operator");
    assert_eq!(shown["owner"], "alice");
    let entries = env.json(&["audit", "list", "--instance", INSTANCE]);
    let summaries = pluck(&entries, "summary");
    assert!(
        summaries.contains(&"shared with bob as viewer".to_owned())
            && summaries.contains(&"bob: viewer -> operator".to_owned()),
        "{summaries:?}"
    );

    // Unshared: gone from bob's list, and from the access list.
    let before = audit_rows(&env);
    let removed = env.json(&["instance", "unshare", INSTANCE, "--with", "bob"]);
    assert_eq!(removed["user"], "bob");
    assert_eq!(removed["role"], "operator");
    assert_eq!(audit_rows(&env), before + 1, "one entry for the unshare");
    assert_eq!(role_seen_by(&env, "bob"), None);
    env.run_as("bob", &["instance", "show", INSTANCE]).code(4);
    let access = env.json(&["instance", "access", INSTANCE]);
    assert_eq!(pluck(&access, "user"), ["alice"]);
}

fn access_in_every_format() {
    let env = world();
    env.run(&["instance", "share", INSTANCE, "--with", "carol"])
        .ok();
    env.run(&[
        "instance", "share", INSTANCE, "--with", "bob", "--role", "operator",
    ])
    .ok();

    // The owner first, then the shares by name.
    let json = env.json(&["instance", "access", INSTANCE]);
    assert_eq!(pluck(&json, "user"), ["alice", "bob", "carol"]);
    assert_eq!(pluck(&json, "role"), ["owner", "operator", "viewer"]);
    for entry in json.as_array().expect("a list") {
        assert_keys(entry, &["user", "role", "since", "granted_by"]);
        assert_timestamp(&entry["since"]);
    }
    assert!(json[0]["granted_by"].is_null(), "{json}");
    assert_eq!(json[1]["granted_by"], "alice");

    let ndjson = env
        .run(&["instance", "access", INSTANCE, "-o", "ndjson"])
        .ok()
        .ndjson();
    assert_eq!(ndjson, json.as_array().expect("a list").clone());

    let (header, rows) = env
        .run(&["instance", "access", INSTANCE, "-o", "csv"])
        .ok()
        .csv();
    assert_eq!(header, ["user", "role", "since", "granted_by"]);
    let users: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(users, ["alice", "bob", "carol"]);
    assert_eq!(rows[0][3], "", "the owner was granted by no one");

    let table = env.run(&["instance", "access", INSTANCE]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    assert!(lines[1].starts_with("bob\toperator\t"), "{}", table.stdout);

    // `instance list` gains the role, for the owner too; a table of one's
    // own instances only has no ROLE column.
    let table = env.run(&["instance", "list"]).ok();
    assert!(
        table.stdout.trim_end().ends_with("\talice"),
        "{}",
        table.stdout
    );
    let (header, rows) = env.run(&["instance", "list", "-o", "csv"]).ok().csv();
    let role = header
        .iter()
        .position(|h| h == "role")
        .expect("a role column");
    assert_eq!(rows[0][role], "owner");
}

fn bad_input_changes_nothing() {
    let env = world();
    env.run(&["instance", "share", INSTANCE, "--with", "bob"])
        .ok();
    env.run(&[
        "instance", "share", INSTANCE, "--with", "carol", "--role", "operator",
    ])
    .ok();
    let cases: &[(&str, &[&str], i32)] = &[
        (
            "alice",
            &["instance", "share", INSTANCE, "--with", "nobody"],
            3,
        ),
        (
            "alice",
            &["instance", "share", INSTANCE, "--with", "alice"],
            2,
        ),
        (
            "alice",
            &[
                "instance", "share", INSTANCE, "--with", "sam", "--role", "admin",
            ],
            2,
        ),
        (
            "alice",
            &[
                "instance", "share", INSTANCE, "--with", "sam", "--role", "owner",
            ],
            2,
        ),
        ("alice", &["instance", "share", INSTANCE], 2),
        (
            "alice",
            &["instance", "share", "amcnosuch00", "--with", "sam"],
            3,
        ),
        // Only the owner shares: not an operator, a viewer or a stranger.
        (
            "carol",
            &["instance", "share", INSTANCE, "--with", "sam"],
            4,
        ),
        ("bob", &["instance", "share", INSTANCE, "--with", "sam"], 4),
        ("sam", &["instance", "share", INSTANCE, "--with", "sam"], 4),
        (
            "carol",
            &["instance", "unshare", INSTANCE, "--with", "bob"],
            4,
        ),
        ("carol", &["instance", "access", INSTANCE], 4),
        ("bob", &["instance", "access", INSTANCE], 4),
        ("sam", &["instance", "access", INSTANCE], 4),
        // Nothing to take away.
        (
            "alice",
            &["instance", "unshare", INSTANCE, "--with", "sam"],
            3,
        ),
        (
            "alice",
            &["instance", "unshare", INSTANCE, "--with", "nobody"],
            3,
        ),
        (
            "alice",
            &["instance", "unshare", INSTANCE, "--with", "alice"],
            2,
        ),
        // A viewer is no operator.
        (
            "bob",
            &["instance", "edit", INSTANCE, "--description", "mine"],
            4,
        ),
    ];
    for (user, args, code) in cases {
        let before = env.dump();
        let ctx = format!("{user}: amcctl {args:?}");
        let out = env.run_as(user, args);
        assert_eq!(
            out.code, *code,
            "{ctx}\nstdout: {}\nstderr: {}",
            out.stdout, out.stderr
        );
        assert!(out.stdout.is_empty(), "{ctx}: printed {:?}", out.stdout);
        env.assert_unchanged(&before, &ctx);
        // In a machine format the error is JSON on stderr.
        let mut json_args = args.to_vec();
        json_args.extend(["-o", "json"]);
        let err = env.run_as(user, &json_args).code(*code).error_json();
        assert!(err["message"].is_string(), "{ctx}: {err}");
    }
}

fn an_operator_edits_the_description_only() {
    let env = world();
    env.run(&[
        "instance", "share", INSTANCE, "--with", "bob", "--role", "operator",
    ])
    .ok();
    let edited = env
        .run_as(
            "bob",
            &[
                "instance",
                "edit",
                INSTANCE,
                "--description",
                "night shift",
                "-o",
                "json",
            ],
        )
        .ok()
        .json();
    assert_eq!(edited["description"], "night shift");
    assert_eq!(edited["role"], "operator");
    let before = env.dump();
    env.run_as(
        "bob",
        &[
            "instance",
            "edit",
            INSTANCE,
            "--description",
            "x",
            "--name",
            "Mine",
        ],
    )
    .code(4);
    env.assert_unchanged(&before, "an operator renaming");
    let entries = env.json(&["audit", "list", "--actor", "bob"]);
    assert_eq!(pluck(&entries, "command"), ["instance edit"]);
    assert_eq!(
        pluck(&entries, "summary"),
        ["description: (none) -> \"night shift\""]
    );
    for entry in entries.as_array().expect("a list") {
        assert_keys(
            entry,
            &[
                "id",
                "at",
                "actor",
                "command",
                "object_kind",
                "object_id",
                "object_name",
                "summary",
            ],
        );
        assert_eq!(entry["object_kind"], "instance");
        assert_eq!(entry["object_name"], INSTANCE);
    }
}

/// `health check --all` covers one's own instances and those one operates,
/// not those one only views; `health status` shows them all.
fn a_bulk_check_skips_what_the_user_only_views() {
    let amc = fake_amc::FakeAmc::start();
    amc.add_client("c", "s", "Atzr|r");
    amc.add_account(ACME, "Acme", "ATVPDKIKX0DER");
    for id in [INSTANCE, "amcoperated", "amcbobsown1"] {
        amc.add_instance(ACME, id, id);
    }
    let env = TestEnv::new()
        .with_fake_amc(&amc)
        .with_env("AMCCTL_CLIENT_ID", "c")
        .with_env("AMCCTL_CLIENT_SECRET", "s")
        .with_env("AMCCTL_REFRESH_TOKEN", "Atzr|r");
    env.create_account(ACME, "Acme");
    env.create_instance(INSTANCE, "Viewed", "Acme", &[]);
    env.create_instance("amcoperated", "Operated", "Acme", &[]);
    env.create_instance_as("bob", "amcbobsown1", "Bob's", "Acme", &[]);
    env.run(&["instance", "share", INSTANCE, "--with", "bob"])
        .ok();
    env.run(&[
        "instance",
        "share",
        "amcoperated",
        "--with",
        "bob",
        "--role",
        "operator",
    ])
    .ok();
    let checked = env
        .run_as("bob", &["health", "check", "--all", "-o", "json"])
        .ok()
        .json();
    let mut ids = pluck(&checked["results"], "instance_id");
    ids.sort();
    assert_eq!(ids, ["amcbobsown1", "amcoperated"]);
    let mentions = |r: &fake_amc::Recorded, id: &str| {
        r.path.contains(id)
            || r.query.as_deref().is_some_and(|q| q.contains(id))
            || r.headers.iter().any(|(_, v)| v.contains(id))
    };
    let requests = amc.requests();
    assert!(
        !requests.iter().any(|r| mentions(r, INSTANCE)),
        "a viewed instance was checked"
    );
    assert!(
        requests.iter().any(|r| mentions(r, "amcoperated")),
        "the operated instance was not checked"
    );
    let status = env
        .run_as("bob", &["health", "status", "-o", "json"])
        .ok()
        .json();
    let mut ids = pluck(&status, "instance_id");
    ids.sort();
    assert_eq!(ids, [INSTANCE, "amcbobsown1", "amcoperated"]);
}

crate::on_both_backends!(
    a_bulk_check_skips_what_the_user_only_views,
    share_change_and_unshare,
    access_in_every_format,
    bad_input_changes_nothing,
    an_operator_edits_the_description_only,
);
