//! End-to-end tests of the registry commands: users, accounts, instances,
//! brands, import and export — exit codes, JSON shapes and the store's rows.

use crate::support::pg::{self, Backend};
use crate::support::*;
use serde_json::{Value, json};

const ACME: &str = "ENTITY1AA1AA11AAA1";
const GLOBEX: &str = "ENTITY2BB2BB22BBB2";

/// Two accounts and three instances: alice owns `amcaaaaaaaa` (Acme, two
/// brands) and `amcbbbbbbbb` (Globex, in Germany); bob owns `amccccccccc`.
struct Fleet {
    env: TestEnv,
    acme: Value,
    globex: Value,
    a: Value,
    b: Value,
    c: Value,
}

fn fleet() -> Fleet {
    let env = TestEnv::new();
    let acme = env.create_account(ACME, "Acme");
    let globex = env.json(&[
        "account",
        "create",
        "--account-id",
        GLOBEX,
        "--name",
        "Globex",
        "--country",
        "DE",
    ]);
    let a = env.create_instance("amcaaaaaaaa", "Acme US", "Acme", &["Acme Kids", "Acme"]);
    let b = env.create_instance("amcbbbbbbbb", "Globex EU", GLOBEX, &["Globex"]);
    let c = env.create_instance_as("bob", "amccccccccc", "Bob's", ACME, &["Acme"]);
    Fleet {
        env,
        acme,
        globex,
        a,
        b,
        c,
    }
}

fn id(v: &Value) -> &str {
    v["id"].as_str().expect("an id")
}

/// The user who manages users and looks past alice's own instances. In a
/// SQLite store that is alice herself: the file is hers, `--all-users`
/// reaches everyone's instances, and anyone manages users while the store
/// has no administrator. In the team store (SPEC section 12) row security
/// shows a member only what she owns or was shared, and `user add|remove`
/// are for members of `amcctl_admin`: there it is `root`, an administrator
/// made here (a registered user of the store too).
fn overseer(env: &TestEnv) -> &'static str {
    match pg::current() {
        Backend::Sqlite => DEFAULT_USER,
        Backend::Postgres => {
            env.make_admin("root");
            "root"
        }
    }
}

/// `amcctl ARGS -o json` run by `user`, which must succeed, parsed.
fn json_as(env: &TestEnv, user: &str, args: &[&str]) -> Value {
    let mut full = args.to_vec();
    full.extend(["-o", "json"]);
    env.run_as(user, &full).ok().json()
}

/// `names` and, in the team store, the administrator `root` (who is a user
/// of the store there), as `user list` sorts them.
fn with_overseer(names: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    if pg::current() == Backend::Postgres {
        all.push("root".to_owned());
        all.sort();
    }
    all
}

// ---------------------------------------------------------------- users

fn users_add_list_remove() {
    let env = TestEnv::new();
    // The OS login (alice) is created on first use (in the team store she
    // is registered from the start, as an administrator would have).
    let users = env.json(&["user", "list"]);
    assert_eq!(pluck(&users, "name"), ["alice"]);
    assert_keys(&users[0], &USER_KEYS);
    assert_eq!(users[0]["instance_count"], 0);

    // Alice in SQLite (no administrator yet), root in the team store.
    let admin = overseer(&env);
    // In the team store a user is a database login that an administrator
    // made with SQL (`CREATE ROLE bob LOGIN …`) before `user add bob`
    // registers it; nothing in SQLite.
    env.create_role("bob");
    let bob = json_as(&env, admin, &["user", "add", "bob"]);
    assert_keys(&bob, &USER_KEYS);
    assert_eq!(bob["name"], "bob");
    assert_eq!(bob["admin"], false);
    assert_uuid(&bob["id"]);
    assert_timestamp(&bob["created_at"]);
    assert_eq!(
        pluck(&env.json(&["user", "list"]), "name"),
        with_overseer(&["alice", "bob"])
    );

    let before = env.dump();
    env.run_as(admin, &["user", "add", "bob"])
        .fails(5, &["bob"]);
    env.run_as(admin, &["user", "add", "bad name"])
        .fails(2, &["bad name"]);
    env.run_as(admin, &["user", "remove", "bob"])
        .fails(2, &["--yes"]);
    env.run_as(admin, &["user", "remove", "nobody", "--yes"])
        .code(3);
    if pg::current() == Backend::Postgres {
        // In the team store users are managed by administrators only: a
        // member (alice) is refused, whoever she names.
        for args in [
            &["user", "add", "carol"][..],
            &["user", "remove", "bob", "--yes"],
            &["user", "remove", "alice", "--yes"],
        ] {
            env.run(args).fails(4, &["administrators", "alice"]);
        }
    }
    env.assert_unchanged(&before, "");

    env.run_as(admin, &["user", "remove", "bob", "--yes"]).ok();
    assert_eq!(
        pluck(&env.json(&["user", "list"]), "name"),
        with_overseer(&["alice"])
    );
    env.run_as(admin, &["user", "remove", "bob", "--yes"])
        .code(3);
}

fn removing_a_user_who_owns_instances_is_a_conflict() {
    let f = fleet();
    // Alice in SQLite, root (an administrator) in the team store.
    let admin = overseer(&f.env);
    let before = f.env.dump();
    let err = f
        .env
        .run_as(admin, &["user", "remove", "bob", "--yes", "-o", "json"])
        .code(5)
        .error_json();
    assert_eq!(err["code"], "conflict");
    assert!(err["message"].as_str().unwrap().contains("bob"), "{err}");
    f.env.assert_unchanged(&before, "");
    // Listed by the one who sees every instance (in the team store a
    // member's counts are of the instances row security shows her).
    let users = json_as(&f.env, admin, &["user", "list"]);
    assert_eq!(pluck(&users, "name"), with_overseer(&["alice", "bob"]));
    let counts: &[&str] = match pg::current() {
        Backend::Sqlite => &["2", "1"],
        Backend::Postgres => &["2", "1", "0"],
    };
    assert_eq!(pluck(&users, "instance_count"), counts);
}

fn a_named_user_must_exist() {
    let env = TestEnv::new();
    env.create_account(ACME, "Acme");
    let before = env.dump();
    let create = [
        "instance",
        "create",
        "--instance-id",
        "amcibersblt",
        "--account",
        ACME,
        "--skip-validation",
        "--json",
    ];
    let i = match pg::current() {
        Backend::Sqlite => {
            // `--user` and `AMCCTL_USER` pick the acting user, who must be
            // a user of the store.
            env.run(&["--user", "carol", "instance", "list"])
                .fails(3, &["carol", "user add"]);
            let out = env
                .command("alice", &["instance", "list"])
                .env("AMCCTL_USER", "carol")
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(3));
            env.assert_unchanged(&before, "an unknown named user is not created");

            env.run(&["user", "add", "carol"]).ok();
            let mut full = vec!["--user", "carol"];
            full.extend(create);
            env.run(&full).ok().json()
        }
        Backend::Postgres => {
            // The acting user is the database login: naming anyone else is
            // exit 4 naming both, and creates no one.
            env.run(&["--user", "carol", "instance", "list"])
                .fails(4, &["carol", "alice"]);
            let out = env
                .command("alice", &["instance", "list"])
                .env("AMCCTL_USER", "carol")
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(4));
            env.assert_unchanged(&before, "a named user is not created");

            // A login role that is not yet a user of the store is refused
            // until an administrator adds it, and is not created either.
            // (Connected around the harness, which registers the logins
            // it runs commands as.)
            env.create_role("carol");
            let mut url = url::Url::parse(&env.db_location()).expect("the store's URL");
            url.set_username("carol").expect("a URL with a user");
            let out = env
                .command("alice", &["instance", "list"])
                .env("USER", "carol")
                .env("AMCCTL_DB", url.as_str())
                .output()
                .unwrap();
            // A login nobody added is told who can let it in.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(4), "{stderr}");
            assert!(out.stdout.is_empty(), "{stderr}");
            assert!(
                stderr.contains("\"carol\" is not a user of this team store")
                    && stderr.contains("amcctl user add carol"),
                "{stderr}"
            );
            env.assert_unchanged(&before, "an unregistered login is not created");

            let admin = overseer(&env);
            env.run_as(admin, &["user", "add", "carol"]).ok();
            env.run_as("carol", &create).ok().json()
        }
    };
    assert_eq!(i["owner"], "carol");
    // The name defaults to the instance ID without a terminal to ask on.
    assert_eq!(i["name"], "amcibersblt");
}

// ---------------------------------------------------------------- accounts

fn account_create_show_list_edit_delete() {
    let env = TestEnv::new();
    let acme = env.create_account(ACME, "Acme");
    assert_account_shape(&acme);
    assert_eq!(acme["account_id"], ACME);
    assert_eq!(acme["account_name"], "Acme");
    assert_eq!(acme["country_code"], "US");
    assert_eq!(acme["marketplace_id"], "ATVPDKIKX0DER");
    assert_eq!(acme["advertiser_id"], Value::Null);
    assert_eq!(acme["instance_count"], 0);

    let globex = env.json(&[
        "account",
        "create",
        "--account-id",
        GLOBEX,
        "--name",
        "Globex",
        "--country",
        "de",
        "--advertiser-id",
        "ADV-123",
    ]);
    assert_account_shape(&globex);
    assert_eq!(globex["country_code"], "DE");
    assert_eq!(globex["marketplace_id"], "A1PA6795UKMFR9");
    assert_eq!(globex["advertiser_id"], "ADV-123");

    // Shown by UUID, entity ID and exact name: the same object.
    for r in [id(&acme), ACME, "Acme"] {
        assert_eq!(env.json(&["account", "show", r]), acme, "{r}");
    }
    env.run(&["account", "show", "acme"]).code(3);
    env.run(&["account", "show", "Nope"]).code(3);

    let list = env.json(&["account", "list"]);
    assert_eq!(pluck(&list, "account_id"), [ACME, GLOBEX]);
    list.as_array()
        .unwrap()
        .iter()
        .for_each(assert_account_shape);
    let nd = env.run(&["account", "list", "-o", "ndjson"]).ok().ndjson();
    assert_eq!(Value::Array(nd), list);
    let (header, rows) = env.run(&["account", "list", "-o", "csv"]).ok().csv();
    assert_eq!(header, ACCOUNT_KEYS);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][1], GLOBEX);

    let before = env.dump();
    env.run(&["account", "create", "--account-id", ACME, "--name", "Again"])
        .fails(5, &[ACME]);
    env.run(&["account", "edit", "Globex", "--account-id", ACME])
        .fails(5, &[ACME]);
    env.run(&["account", "edit", "Globex"])
        .fails(2, &["--name"]);
    env.run(&["account", "delete", "Globex"])
        .fails(2, &["--yes"]);
    env.run(&["account", "delete", "Nope", "--yes"]).code(3);
    env.assert_unchanged(&before, "");

    let edited = env.json(&[
        "account",
        "edit",
        "Globex",
        "--name",
        "Globex UK",
        "--country",
        "GB",
        "--advertiser-id",
        "",
    ]);
    assert_account_shape(&edited);
    assert_eq!(edited["id"], globex["id"]);
    assert_eq!(edited["account_name"], "Globex UK");
    assert_eq!(edited["country_code"], "UK");
    assert_eq!(edited["marketplace_id"], "A1F83G8C2ARO7P");
    assert_eq!(edited["advertiser_id"], Value::Null);
    assert_eq!(edited["created_at"], globex["created_at"]);

    env.run(&["account", "delete", "Globex UK", "--yes"]).ok();
    env.run(&["account", "show", GLOBEX]).code(3);
    assert_eq!(pluck(&env.json(&["account", "list"]), "account_id"), [ACME]);
}

fn deleting_a_linked_account_is_a_conflict_naming_the_instance() {
    let f = fleet();
    let admin = overseer(&f.env);
    let before = f.env.dump();
    let out = f.env.run(&["account", "delete", ACME, "--yes"]);
    match pg::current() {
        Backend::Sqlite => {
            out.fails(5, &["amcaaaaaaaa (alice)", "amccccccccc (bob)"]);
        }
        Backend::Postgres => {
            // Row security hides bob's instance from alice: the conflict
            // names hers and counts his without naming it or him.
            let out = out.fails(
                5,
                &[
                    "2 instance",
                    "amcaaaaaaaa (alice)",
                    "another user's instance",
                ],
            );
            assert!(
                !out.stderr.contains("amccccccccc") && !out.stderr.contains("bob"),
                "a hidden instance named: {}",
                out.stderr
            );
            // An administrator sees both, named.
            f.env
                .run_as(admin, &["account", "delete", ACME, "--yes"])
                .fails(5, &["amcaaaaaaaa (alice)", "amccccccccc (bob)"]);
        }
    }
    let err = f
        .env
        .run(&["account", "delete", "Acme", "--yes", "--json"])
        .code(5)
        .error_json();
    assert_eq!(err["code"], "conflict");
    f.env.assert_unchanged(&before, "");
    let acme = f.env.json(&["account", "show", ACME]);
    assert_eq!(acme["instance_count"], 2);
    assert_eq!(f.acme["instance_count"], 0);
}

fn an_ambiguous_account_name_lists_the_candidates() {
    let env = TestEnv::new();
    let one = env.create_account(ACME, "Twin");
    let two = env.create_account(GLOBEX, "Twin");
    env.run(&["instance", "list"]).ok();
    let before = env.dump();
    env.run(&["account", "show", "Twin"])
        .fails(2, &[ACME, GLOBEX, id(&one), id(&two)]);
    env.run(&["account", "delete", "Twin", "--yes"]).code(2);
    env.run(&[
        "instance",
        "create",
        "--instance-id",
        "amcibersblt",
        "--account",
        "Twin",
        "--skip-validation",
    ])
    .code(2);
    env.assert_unchanged(&before, "");
    assert_eq!(env.json(&["account", "show", GLOBEX]), two);
}

// ---------------------------------------------------------------- instances

fn instance_create_has_the_spec_shape_and_defaults() {
    let f = fleet();
    let a = &f.a;
    assert_instance_shape(a);
    assert_eq!(a["instance_id"], "amcaaaaaaaa");
    assert_eq!(a["name"], "Acme US");
    assert_eq!(a["description"], Value::Null);
    assert_eq!(a["api_endpoint"], Value::Null);
    assert_eq!(a["status"], "PENDING");
    assert_eq!(a["is_active"], true);
    assert_eq!(a["owner"], "alice");
    assert_eq!(a["region"], "na");
    assert_eq!(a["brands"], json!(["Acme", "Acme Kids"]), "sorted");
    assert_eq!(
        a["health"],
        json!({"status": "UNKNOWN", "checked_at": null, "latency_ms": null, "error": null})
    );
    let brief: serde_json::Map<String, Value> = INSTANCE_ACCOUNT_KEYS
        .iter()
        .map(|k| ((*k).to_owned(), f.acme[*k].clone()))
        .collect();
    assert_eq!(a["account"], Value::Object(brief));

    // The region follows the account's marketplace unless given.
    assert_eq!(f.b["region"], "eu");
    assert_eq!(f.b["account"]["id"], f.globex["id"]);
    let fe = f.env.json(&[
        "instance",
        "create",
        "--instance-id",
        "my-test-1",
        "--account",
        ACME,
        "--region",
        "fe",
        "--description",
        "  Staging copy  ",
        "--skip-validation",
    ]);
    assert_instance_shape(&fe);
    assert_eq!(fe["region"], "fe");
    assert_eq!(fe["description"], "Staging copy");
    assert_eq!(fe["brands"], json!([]));
    assert_eq!(f.c["owner"], "bob");
}

fn an_unusual_instance_id_is_accepted_with_a_warning() {
    let env = TestEnv::new();
    env.create_account(ACME, "Acme");
    let out = env
        .run(&[
            "instance",
            "create",
            "--instance-id",
            "my-test-1",
            "--account",
            ACME,
            "--skip-validation",
        ])
        .ok();
    assert!(out.stderr.contains("warning"), "{}", out.stderr);
    let quiet = env
        .run(&[
            "instance",
            "create",
            "--instance-id",
            "amcibersblt",
            "--account",
            ACME,
            "--skip-validation",
        ])
        .ok();
    assert!(!quiet.stderr.contains("warning"), "{}", quiet.stderr);
}

fn instance_create_conflicts_and_missing_accounts() {
    let f = fleet();
    let env = &f.env;
    let before = env.dump();
    let create = |user: &str, iid: &str, account: &str| {
        env.run_as(
            user,
            &[
                "instance",
                "create",
                "--instance-id",
                iid,
                "--account",
                account,
                "--skip-validation",
                "-o",
                "json",
            ],
        )
    };
    let err = create("alice", "amcaaaaaaaa", ACME).code(5).error_json();
    assert_eq!(err["code"], "conflict");
    assert!(err["message"].as_str().unwrap().contains("amcaaaaaaaa"));
    let err = create("alice", "amczzzzzzzz", "ENTITY9ZZ9ZZ99ZZZ9")
        .code(3)
        .error_json();
    assert_eq!(err["code"], "not_found");
    env.assert_unchanged(&before, "");

    // Another user may register the same AMC instance.
    let mine = create("bob", "amcaaaaaaaa", ACME).ok().json();
    assert_eq!(mine["owner"], "bob");
    assert_ne!(mine["id"], f.a["id"]);
}

fn no_input_names_the_missing_flag() {
    let f = fleet();
    let env = &f.env;
    // `user remove` is run by one who may manage users: alice in SQLite,
    // an administrator in the team store (a member is refused first).
    let admin = overseer(env);
    let before = env.dump();
    let cases: &[(&[&str], &str)] = &[
        (&["instance", "delete", "amcaaaaaaaa"], "--yes"),
        (
            &["instance", "create", "--skip-validation"],
            "--instance-id",
        ),
        (
            &[
                "instance",
                "create",
                "--instance-id",
                "amcibersblt",
                "--skip-validation",
            ],
            "--account",
        ),
        (&["instance", "show"], "INSTANCE"),
        (&["instance", "edit"], "INSTANCE"),
        (&["instance", "delete"], "INSTANCE"),
        (&["instance", "link", "amcaaaaaaaa"], "--account"),
        (&["brand", "clear", "amcaaaaaaaa"], "--yes"),
        (&["account", "create"], "--account-id"),
        (
            &["account", "create", "--account-id", "ENTITY3CC3CC33CCC3"],
            "--name",
        ),
        (&["account", "show"], "ACCOUNT"),
        (&["account", "delete"], "ACCOUNT"),
        (&["account", "edit"], "ACCOUNT"),
        (&["user", "remove", "bob"], "--yes"),
    ];
    for (args, flag) in cases {
        let user = if args[0] == "user" {
            admin
        } else {
            DEFAULT_USER
        };
        let out = env.run_as(user, args).code(2);
        assert!(
            out.stderr.contains(&format!(
                "{flag} is required when not running interactively"
            )),
            "{args:?}: {}",
            out.stderr
        );
        env.assert_unchanged(&before, format!("{args:?} changed the store"));
    }
}

fn instances_are_found_by_uuid_instance_id_and_exact_name() {
    let f = fleet();
    for r in [id(&f.a), "amcaaaaaaaa", "Acme US", " amcaaaaaaaa "] {
        assert_eq!(f.env.json(&["instance", "show", r]), f.a, "{r:?}");
    }
    for r in [
        "acme us",
        "Acme",
        "amcaaaaaaa",
        "00000000-0000-4000-8000-000000000000",
    ] {
        let err = f
            .env
            .run(&["instance", "show", r, "-o", "json"])
            .code(3)
            .error_json();
        assert_eq!(err["code"], "not_found", "{r:?}");
    }
}

fn an_ambiguous_instance_name_lists_both() {
    let env = TestEnv::new();
    env.create_account(ACME, "Acme");
    let one = env.create_instance("amcaaaaaaaa", "Twin", ACME, &[]);
    let two = env.create_instance("amcbbbbbbbb", "Twin", ACME, &[]);
    let before = env.dump();
    for args in [
        &["instance", "show", "Twin"][..],
        &["instance", "delete", "Twin", "--yes"],
        &["instance", "edit", "Twin", "--name", "Other"],
        &["brand", "add", "Twin", "X"],
    ] {
        env.run(args)
            .fails(2, &["amcaaaaaaaa", "amcbbbbbbbb", id(&one), id(&two)]);
    }
    let err = env
        .run(&["instance", "show", "Twin", "-o", "json"])
        .code(2)
        .error_json();
    assert_eq!(err["code"], "usage");
    env.assert_unchanged(&before, "");
    // Either is reachable by its own identifiers.
    assert_eq!(env.json(&["instance", "show", "amcbbbbbbbb"]), two);
    assert_eq!(env.json(&["instance", "show", id(&one)]), one);
}

fn instance_list_formats_and_filters() {
    let f = fleet();
    let env = &f.env;
    let list = env.json(&["instance", "list"]);
    assert_eq!(list, json!([f.a.clone(), f.b.clone()]), "alice's, by name");
    list.as_array()
        .unwrap()
        .iter()
        .for_each(assert_instance_shape);

    let nd = env.run(&["instance", "list", "-o", "ndjson"]).ok();
    assert_eq!(nd.stdout.lines().count(), 2);
    assert_eq!(Value::Array(nd.ndjson()), list);

    let (header, rows) = env.run(&["instance", "list", "-o", "csv"]).ok().csv();
    assert_eq!(header[..3], ["id", "instance_id", "name"]);
    assert!(header.contains(&"brands".to_owned()));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][1], "amcaaaaaaaa");

    // Piped tables: one tab-separated line per instance, no header.
    let table = env.run(&["instance", "list"]).ok();
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", table.stdout);
    assert!(
        lines[0].starts_with("Acme US\tamcaaaaaaaa\t"),
        "{}",
        lines[0]
    );

    // --json is -o json; AMCCTL_OUTPUT sets the default.
    assert_eq!(env.run(&["instance", "list", "--json"]).ok().json(), list);
    let out = env
        .command("alice", &["instance", "list"])
        .env("AMCCTL_OUTPUT", "ndjson")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 2);

    let ids = |args: &[&str]| {
        let mut full = vec!["instance", "list"];
        full.extend_from_slice(args);
        pluck(&env.json(&full), "instance_id")
    };
    assert_eq!(ids(&["--region", "eu"]), ["amcbbbbbbbb"]);
    assert_eq!(ids(&["--account", "Globex"]), ["amcbbbbbbbb"]);
    assert_eq!(ids(&["--account", ACME]), ["amcaaaaaaaa"]);
    assert_eq!(ids(&["--brand", "Acme Kids"]), ["amcaaaaaaaa"]);
    assert_eq!(ids(&["--brand", "acme kids"]), Vec::<String>::new());
    assert_eq!(ids(&["--status", "PENDING"]).len(), 2);
    assert_eq!(ids(&["--status", "active"]), Vec::<String>::new());
    assert_eq!(ids(&["--health", "UNKNOWN"]).len(), 2);
    match pg::current() {
        Backend::Sqlite => assert_eq!(
            ids(&["--all-users", "--brand", "Acme"]),
            ["amcaaaaaaaa", "amccccccccc"]
        ),
        Backend::Postgres => {
            // Row security: a member's `--all-users` reaches no further
            // than her own and shared instances; an administrator's
            // reaches everyone's.
            assert_eq!(ids(&["--all-users", "--brand", "Acme"]), ["amcaaaaaaaa"]);
            let admin = overseer(env);
            assert_eq!(
                pluck(
                    &json_as(
                        env,
                        admin,
                        &["instance", "list", "--all-users", "--brand", "Acme"]
                    ),
                    "instance_id"
                ),
                ["amcaaaaaaaa", "amccccccccc"]
            );
        }
    }
    env.run(&["instance", "list", "--account", "Nope"]).code(3);
    env.run(&["instance", "list", "--status", "BROKEN"]).code(2);
    assert_eq!(env.json(&["instance", "list", "--region", "fe"]), json!([]));
}

fn instance_list_all_users_shows_both_owners() {
    let f = fleet();
    let roles = |v: &Value| -> Vec<Value> {
        v.as_array()
            .expect("a list")
            .iter()
            .map(|i| i["role"].clone())
            .collect()
    };
    let without_role = |v: &Value| -> Value {
        let mut v = v.clone();
        for i in v.as_array_mut().expect("a list") {
            i["role"] = Value::Null;
        }
        v
    };
    let bobs = f
        .env
        .run_as("bob", &["instance", "list", "-o", "json"])
        .ok()
        .json();
    assert_eq!(bobs, json!([f.c.clone()]));
    let all = f.env.json(&["instance", "list", "--all-users"]);
    let from_bob = json_as(&f.env, "bob", &["instance", "list", "--all-users"]);
    match pg::current() {
        Backend::Sqlite => {
            // The file is alice's: `--all-users` lists everyone's
            // instances, each with what she is to it (nothing to bob's).
            assert_eq!(
                pluck(&all, "instance_id"),
                ["amcaaaaaaaa", "amccccccccc", "amcbbbbbbbb"]
            );
            assert_eq!(pluck(&all, "owner"), ["alice", "bob", "alice"]);
            assert_eq!(roles(&all), [json!("owner"), Value::Null, json!("owner")]);
            // The same rows, each with what bob is to it.
            assert_eq!(roles(&from_bob), [Value::Null, json!("owner"), Value::Null]);
            assert_eq!(without_role(&from_bob), without_role(&all));
        }
        Backend::Postgres => {
            // Row security: a member's `--all-users` is her own list, as
            // she sees it with psql; bob's instance is not shared with
            // alice, nor hers with him.
            assert_eq!(all, json!([f.a.clone(), f.b.clone()]));
            assert_eq!(from_bob, bobs);
            // An administrator's lists both owners' instances: the same
            // rows, each with what the administrator is to it.
            let admin = overseer(&f.env);
            let everyone = json_as(&f.env, admin, &["instance", "list", "--all-users"]);
            assert_eq!(
                pluck(&everyone, "instance_id"),
                ["amcaaaaaaaa", "amccccccccc", "amcbbbbbbbb"]
            );
            assert_eq!(pluck(&everyone, "owner"), ["alice", "bob", "alice"]);
            assert_eq!(roles(&everyone), vec![json!("admin"); 3]);
            assert_eq!(
                without_role(&everyone),
                without_role(&json!([f.a.clone(), f.c.clone(), f.b.clone()]))
            );
        }
    }
}

fn instance_edit_changes_only_what_is_given() {
    let f = fleet();
    let env = &f.env;
    let e = env.json(&[
        "instance",
        "edit",
        "amcaaaaaaaa",
        "--name",
        "Acme North America",
        "--description",
        "Main",
    ]);
    assert_instance_shape(&e);
    assert_eq!(e["id"], f.a["id"]);
    assert_eq!(e["name"], "Acme North America");
    assert_eq!(e["description"], "Main");
    assert_eq!(e["brands"], f.a["brands"]);
    assert_eq!(e["region"], "na");
    assert_eq!(e["created_at"], f.a["created_at"]);
    assert!(e["updated_at"].as_str() >= f.a["updated_at"].as_str());

    let e = env.json(&[
        "instance",
        "edit",
        "Acme North America",
        "--description",
        "",
        "--region",
        "eu",
        "--account",
        "Globex",
    ]);
    assert_eq!(e["description"], Value::Null);
    assert_eq!(e["region"], "eu");
    assert_eq!(e["account"]["account_id"], GLOBEX);
    assert_eq!(env.json(&["instance", "show", "amcaaaaaaaa"]), e);
    assert_eq!(env.json(&["account", "show", GLOBEX])["instance_count"], 2);

    let before = env.dump();
    env.run(&["instance", "edit", "amcaaaaaaaa"])
        .fails(2, &["--name"]);
    env.run(&["instance", "edit", "amcaaaaaaaa", "--account", "Nope"])
        .code(3);
    env.run(&["instance", "edit", "nope", "--name", "X"])
        .code(3);
    env.run(&["instance", "edit", "amcaaaaaaaa", "--name", " "])
        .code(2);
    env.assert_unchanged(&before, "");
}

fn instance_delete_removes_brands_and_history() {
    let f = fleet();
    let env = &f.env;
    for (inst, at) in [
        (id(&f.a), "2026-11-20T10:00:00Z"),
        (id(&f.a), "2026-11-21T10:00:00Z"),
        (id(&f.b), "2026-11-21T10:00:00Z"),
    ] {
        env.probe().exec(&format!(
            "INSERT INTO health_checks (instance_id, checked_at, status, http_status, latency_ms)
             VALUES ('{inst}', '{at}', 'HEALTHY', 200, 80)"
        ));
    }
    let count = |table: &str, inst: &Value| {
        let column = if table == "amc_instances" {
            "id"
        } else {
            "instance_id"
        };
        env.probe().scalar(&format!(
            "SELECT count(*) FROM {table} WHERE {column} = '{}'",
            id(inst)
        ))
    };
    assert_eq!(
        (count("instance_brands", &f.a), count("health_checks", &f.a)),
        (2, 2)
    );

    let out = env.run(&["instance", "delete", "Acme US", "--yes"]).ok();
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_eq!(count("amc_instances", &f.a), 0);
    assert_eq!(count("instance_brands", &f.a), 0);
    assert_eq!(count("health_checks", &f.a), 0);
    // Nothing else went with it.
    assert_eq!(
        (count("instance_brands", &f.b), count("health_checks", &f.b)),
        (1, 1)
    );
    assert_eq!(count("instance_brands", &f.c), 1);
    env.run(&["instance", "show", "amcaaaaaaaa"]).code(3);
    env.run(&["instance", "delete", "amcaaaaaaaa", "--yes"])
        .code(3);
    // Listed by one who sees every instance: alice in SQLite, an
    // administrator in the team store (where row security shows alice
    // only her own).
    let admin = overseer(env);
    assert_eq!(
        pluck(
            &json_as(env, admin, &["instance", "list", "--all-users"]),
            "instance_id"
        ),
        ["amccccccccc", "amcbbbbbbbb"]
    );
    // `rm` is the same command.
    env.run(&["instance", "rm", "amcbbbbbbbb", "-y"]).ok();
    assert_eq!(env.json(&["instance", "list"]), json!([]));
}

fn deactivate_and_activate() {
    let f = fleet();
    let env = &f.env;
    let d = env.json(&["instance", "deactivate", "amcaaaaaaaa"]);
    assert_instance_shape(&d);
    assert_eq!(
        (d["status"].as_str(), d["is_active"].as_bool()),
        (Some("INACTIVE"), Some(false))
    );
    assert_eq!(
        env.probe().rows(&format!(
            "SELECT status, is_active FROM amc_instances WHERE id = '{}'",
            id(&f.a)
        )),
        [["\"INACTIVE\"", "0"]]
    );
    assert_eq!(
        pluck(
            &env.json(&["instance", "list", "--status", "INACTIVE"]),
            "instance_id"
        ),
        ["amcaaaaaaaa"]
    );
    // Deactivating again keeps it so.
    assert_eq!(
        env.json(&["instance", "deactivate", "amcaaaaaaaa"])["status"],
        "INACTIVE"
    );

    let a = env.json(&["instance", "activate", "amcaaaaaaaa", "--skip-validation"]);
    assert_eq!(
        (a["status"].as_str(), a["is_active"].as_bool()),
        (Some("PENDING"), Some(true))
    );
    // Activating an active instance changes nothing.
    let before = env.dump();
    assert_eq!(
        env.json(&["instance", "activate", "amcaaaaaaaa", "--skip-validation"]),
        a
    );
    env.assert_unchanged(&before, "");
    env.run(&["instance", "activate", "nope", "--skip-validation"])
        .code(3);
    env.run(&["instance", "deactivate", "nope"]).code(3);
}

fn link_moves_an_instance_to_another_account() {
    let f = fleet();
    let env = &f.env;
    let l = env.json(&[
        "instance",
        "link",
        "amcaaaaaaaa",
        "--account",
        id(&f.globex),
    ]);
    assert_instance_shape(&l);
    assert_eq!(l["account"]["id"], f.globex["id"]);
    assert_eq!(l["account"]["marketplace_id"], "A1PA6795UKMFR9");
    assert_eq!(l["brands"], f.a["brands"]);
    assert_eq!(env.json(&["account", "show", "Acme"])["instance_count"], 1);
    assert_eq!(
        env.json(&["account", "show", "Globex"])["instance_count"],
        2
    );

    let before = env.dump();
    env.run(&["instance", "link", "amcaaaaaaaa", "--account", "Nope"])
        .code(3);
    env.run(&["instance", "link", "nope", "--account", ACME])
        .code(3);
    env.assert_unchanged(&before, "");
}

// ---------------------------------------------------------------- brands

fn brand_set_add_remove_clear_and_list() {
    let f = fleet();
    let env = &f.env;
    let brands = |args: &[&str]| {
        let mut full = vec!["brand"];
        full.extend_from_slice(args);
        strings(&env.json(&full))
    };
    assert_eq!(brands(&["list", "amcaaaaaaaa"]), ["Acme", "Acme Kids"]);
    assert_eq!(brands(&["list", "Globex EU"]), ["Globex"]);
    assert_eq!(
        brands(&["set", "amcaaaaaaaa", "Zeta", "Alpha", "Zeta"]),
        ["Alpha", "Zeta"]
    );
    assert_eq!(
        brands(&["add", "amcaaaaaaaa", "Beta", "Alpha"]),
        ["Alpha", "Beta", "Zeta"]
    );
    assert_eq!(
        brands(&["remove", "amcaaaaaaaa", "Zeta"]),
        ["Alpha", "Beta"]
    );
    assert_eq!(
        env.json(&["instance", "show", "amcaaaaaaaa"])["brands"],
        json!(["Alpha", "Beta"])
    );

    // Removing one brand it has and one it lacks removes neither.
    let before = env.dump();
    env.run(&["brand", "remove", "amcaaaaaaaa", "Alpha", "Gamma"])
        .fails(3, &["Gamma"]);
    env.run(&["brand", "clear", "amcaaaaaaaa"])
        .fails(2, &["--yes"]);
    env.run(&["brand", "set", "amcaaaaaaaa"]).code(2);
    env.run(&["brand", "add", "nope", "X"]).code(3);
    env.assert_unchanged(&before, "");

    // Without an instance: every brand of mine with the instances carrying it.
    env.run(&["brand", "add", "amcbbbbbbbb", "Alpha"]).ok();
    let index = env.json(&["brand", "list"]);
    index
        .as_array()
        .unwrap()
        .iter()
        .for_each(|e| assert_keys(e, &["brand", "instances"]));
    assert_eq!(
        index,
        json!([
            {"brand": "Alpha", "instances": ["amcaaaaaaaa", "amcbbbbbbbb"]},
            {"brand": "Beta", "instances": ["amcaaaaaaaa"]},
            {"brand": "Globex", "instances": ["amcbbbbbbbb"]},
        ])
    );
    // Every user's brands, as one who sees every instance lists them:
    // alice in SQLite, an administrator in the team store, where row
    // security keeps alice's `--all-users` to her own.
    if pg::current() == Backend::Postgres {
        assert_eq!(env.json(&["brand", "list", "--all-users"]), index);
    }
    let admin = overseer(env);
    let all = json_as(env, admin, &["brand", "list", "--all-users"]);
    assert_eq!(
        all[0],
        json!({"brand": "Acme", "instances": ["amccccccccc"]})
    );
    assert_eq!(all.as_array().unwrap().len(), 4);
    let nd = env.run(&["brand", "list", "-o", "ndjson"]).ok().ndjson();
    assert_eq!(Value::Array(nd), index);
    let (header, rows) = env.run(&["brand", "list", "-o", "csv"]).ok().csv();
    assert_eq!(header.len(), 2);
    assert_eq!(rows.len(), 3);

    assert_eq!(
        brands(&["clear", "amcaaaaaaaa", "--yes"]),
        Vec::<String>::new()
    );
    assert_eq!(
        env.probe().scalar(&format!(
            "SELECT count(*) FROM instance_brands WHERE instance_id = '{}'",
            id(&f.a)
        )),
        0
    );
    // Clearing nothing needs no confirmation.
    assert_eq!(brands(&["clear", "amcaaaaaaaa"]), Vec::<String>::new());
    assert_eq!(brands(&["list", "amcaaaaaaaa"]), Vec::<String>::new());
}

// ---------------------------------------------------------------- other users

fn another_users_instances_are_out_of_reach() {
    let f = fleet();
    let env = &f.env;
    env.run_as("bob", &["instance", "list"]).ok();
    let before = env.dump();
    let a_uuid = id(&f.a).to_owned();
    for r in [a_uuid.as_str(), "amcaaaaaaaa", "Acme US"] {
        let cases: Vec<Vec<&str>> = vec![
            vec!["instance", "show", r],
            vec!["instance", "edit", r, "--name", "Mine now"],
            vec!["instance", "edit", r, "--description", "x"],
            vec!["instance", "delete", r, "--yes"],
            vec!["instance", "delete", r],
            vec!["instance", "link", r, "--account", GLOBEX],
            vec!["instance", "activate", r, "--skip-validation"],
            vec!["instance", "deactivate", r],
            vec!["instance", "export", r],
            vec!["instance", "export", "amccccccccc", r],
            vec!["brand", "list", r],
            vec!["brand", "set", r, "Stolen"],
            vec!["brand", "add", r, "Stolen"],
            vec!["brand", "remove", r, "Acme"],
            vec!["brand", "clear", r, "--yes"],
            vec!["brand", "clear", r],
        ];
        for mut args in cases {
            args.extend(["-o", "json"]);
            let out = env.run_as("bob", &args).code(4);
            let err = out.error_json();
            assert_eq!(err["code"], "permission_denied", "{args:?}");
            env.assert_unchanged(&before, format!("{args:?} changed the store"));
        }
    }
    // Bob's own lists and exports do not show alice's.
    let brands = env
        .run_as("bob", &["brand", "list", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        brands,
        json!([{"brand": "Acme", "instances": ["amccccccccc"]}])
    );
    let export = env.run_as("bob", &["instance", "export"]).ok().json();
    assert_eq!(pluck(&export, "instance_id"), ["amccccccccc"]);
    // And alice cannot reach bob's either.
    env.run(&["instance", "delete", "amccccccccc", "--yes"])
        .code(4);
    env.assert_unchanged(&before, "");
}

// ---------------------------------------------------------------- errors and the store

fn machine_formats_report_errors_as_json_on_stderr() {
    let f = fleet();
    for fmt in ["json", "ndjson", "csv"] {
        let out = f.env.run(&["instance", "show", "nope", "-o", fmt]).code(3);
        let err = out.error_json();
        assert_eq!(err["code"], "not_found");
        assert!(err["message"].as_str().unwrap().contains("nope"));
    }
    let out = f.env.run(&["instance", "show", "nope"]).code(3);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
}

fn usage_errors_from_the_command_line_exit_2() {
    let f = fleet();
    let before = f.env.dump();
    for args in [
        &["instance", "frobnicate"][..],
        &["instance", "list", "--region", "mars"],
        &["instance", "list", "--bogus"],
        &["-o", "yaml", "instance", "list"],
        &["brand", "add", "amcaaaaaaaa"],
    ] {
        let out = f.env.run(args).code(2);
        assert!(out.stdout.is_empty(), "{args:?}");
        assert!(
            out.stderr.starts_with("error: "),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Asked for a machine format, even a rejected command line answers in it.
    for args in [
        &["-o", "json", "instance", "frobnicate"][..],
        &["instance", "list", "--region", "mars", "--json"],
        &["instance", "list", "--bogus", "-ondjson"],
        &["instance", "list", "--json", "-o", "csv"],
        &["brand", "add", "amcaaaaaaaa", "--output=csv"],
    ] {
        let err = f.env.run(args).code(2).error_json();
        assert_eq!(err["code"], "usage", "{args:?}");
    }
    let err = f
        .env
        .command("alice", &["instance", "list", "--region", "mars"])
        .env("AMCCTL_OUTPUT", "json")
        .output()
        .unwrap();
    assert_eq!(err.status.code(), Some(2));
    let err: Value = serde_json::from_slice(&err.stderr).expect("a JSON error");
    assert_eq!(err["error"]["code"], "usage");
    assert!(err["error"]["message"].as_str().unwrap().contains("mars"));
    f.env.assert_unchanged(&before, "");
    // Help and version are not errors.
    let help = f.env.run(&["instance", "--help", "-o", "json"]).ok();
    assert!(help.stdout.contains("Usage:"), "{}", help.stdout);
    f.env.run(&["--version"]).ok();
}

#[test]
fn a_store_newer_than_the_binary_is_refused_with_exit_8() {
    let f = fleet();
    let newer = amcctl::store::schema_version(&amcctl::store::Location::Sqlite(Default::default()))
        as i64
        + 1;
    f.env.probe().set_user_version(newer);
    let before = f.env.dump();
    assert!(before.starts_with(&format!("user_version = {newer}\n")));
    for args in [
        &["instance", "list"][..],
        &["instance", "show", "amcaaaaaaaa"],
        &["instance", "delete", "amcaaaaaaaa", "--yes"],
        &["account", "list"],
        &[
            "account",
            "create",
            "--account-id",
            "ENTITY3CC3CC33CCC3",
            "--name",
            "C",
        ],
        &["brand", "list"],
        &["user", "add", "carol"],
        &["user", "list"],
    ] {
        f.env.run(args).fails(8, &["newer"]);
        let mut json_args = args.to_vec();
        json_args.extend(["-o", "json"]);
        let err = f.env.run(&json_args).code(8).error_json();
        assert_eq!(err["code"], "store", "{args:?}");
    }
    f.env.assert_unchanged(&before, "");
}

#[test]
fn a_file_that_is_not_a_store_is_exit_8() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.home()).unwrap();
    std::fs::write(
        env.db_path(),
        b"this is not a SQLite database, just text\n".repeat(100),
    )
    .unwrap();
    env.run(&["instance", "list"]).code(8);
    env.run(&["account", "list", "-o", "json"])
        .code(8)
        .error_json();
}

// ---------------------------------------------------------------- import and export

/// A fleet with some of everything an export carries: descriptions, brands,
/// an inactive instance, an advertiser ID, a recorded health result, and
/// another user's instance (which must not travel with alice's export).
fn varied_fleet() -> Fleet {
    let f = fleet();
    let env = &f.env;
    env.run(&["account", "edit", "Acme", "--advertiser-id", "ADV_1"])
        .ok();
    env.run(&[
        "instance",
        "edit",
        "amcaaaaaaaa",
        "--description",
        "Main, \"quoted\" and =SUM(1)",
    ])
    .ok();
    env.create_instance(
        "amcdddddddd",
        "-dash, comma",
        "Globex",
        &[
            "@home",
            "+plus",
            "Ünïcödé ✓",
            "Acme; Kids",
            "C:\\brands\\",
            "'=x",
        ],
    );
    env.run(&["instance", "deactivate", "amcbbbbbbbb"]).ok();
    env.probe().exec(&format!(
        "UPDATE amc_instances SET health_status = 'UNHEALTHY', last_health_check = '2026-11-20T08:00:00Z',
             health_latency_ms = 412, health_error = 'HTTP 403: forbidden',
             api_endpoint = 'https://amc-api.example.test/v1'
         WHERE id = '{}'",
        id(&f.a)
    ));
    f
}

fn import_counts(out: &Output) -> Value {
    let v = out.json();
    assert_keys(&v, &IMPORT_KEYS);
    v
}

fn round_trip(format: &str) {
    let f = varied_fleet();
    let exported = f.env.run(&["instance", "export", "--format", format]).ok();
    assert!(
        exported.stderr.contains("Exported 3"),
        "{}",
        exported.stderr
    );
    let file = f.env.write_file(&format!("a.{format}"), &exported.stdout);
    if format == "json" {
        let v = exported.json();
        v.as_array().unwrap().iter().for_each(assert_instance_shape);
        assert_eq!(
            v,
            f.env.json(&["instance", "list"]),
            "export is the list shape"
        );
    } else {
        let (header, rows) = exported.csv();
        assert_eq!(header[0], "id");
        assert_eq!(rows.len(), 3);
    }

    let fresh = TestEnv::new();
    let path = file.to_str().unwrap();
    let dry = fresh
        .run(&["instance", "import", path, "--dry-run", "-o", "json"])
        .ok();
    assert_eq!(
        import_counts(&dry),
        json!({"created": 3, "updated": 0, "unchanged": 0, "accounts_created": 2, "dry_run": true})
    );
    fresh.run(&["instance", "list"]).ok();
    let empty = fresh.dump();
    assert_eq!(
        fresh.probe().count("amc_instances") + fresh.probe().count("amc_accounts"),
        0
    );
    let first = fresh.run(&["instance", "import", path, "-o", "json"]).ok();
    assert_eq!(
        import_counts(&first),
        json!({"created": 3, "updated": 0, "unchanged": 0, "accounts_created": 2, "dry_run": false})
    );
    assert_ne!(fresh.dump(), empty);
    // Every value survived, whatever the file format.
    assert_eq!(
        fresh.run(&["instance", "export"]).ok().json(),
        f.env.run(&["instance", "export"]).ok().json()
    );
    let again = fresh.run(&["instance", "export", "--format", format]).ok();
    assert_eq!(
        again.stdout, exported.stdout,
        "export → import → export is identical"
    );

    let after_first = fresh.dump();
    let second = fresh.run(&["instance", "import", path, "-o", "json"]).ok();
    assert_eq!(
        import_counts(&second),
        json!({"created": 0, "updated": 0, "unchanged": 3, "accounts_created": 0, "dry_run": false})
    );
    fresh.assert_unchanged(&after_first, "a second import");

    // Into the original store it is unchanged too.
    let before = f.env.dump();
    let same = f.env.run(&["instance", "import", path, "-o", "json"]).ok();
    assert_eq!(import_counts(&same)["unchanged"], 3);
    f.env.assert_unchanged(&before, "");
}

fn json_export_import_round_trip() {
    round_trip("json");
}

fn csv_export_import_round_trip() {
    round_trip("csv");
}

fn export_follows_the_output_format_and_references() {
    let f = varied_fleet();
    let csv = f.env.run(&["instance", "export", "-o", "csv"]).ok();
    let (header, rows) = csv.csv();
    assert_eq!(header.len(), 23);
    assert_eq!(rows.len(), 3);
    let one = f
        .env
        .run(&["instance", "export", "Globex EU", id(&f.a)])
        .ok()
        .json();
    assert_eq!(pluck(&one, "instance_id"), ["amcbbbbbbbb", "amcaaaaaaaa"]);
    f.env.run(&["instance", "export", "nope"]).code(3);
    let none = TestEnv::new().run(&["instance", "export"]).ok().json();
    assert_eq!(none, json!([]));
}

fn import_updates_what_changed_and_keeps_the_rest() {
    let f = varied_fleet();
    let mut v = f.env.run(&["instance", "export"]).ok().json();
    let at = |v: &Value, iid: &str| {
        pluck(v, "instance_id")
            .iter()
            .position(|i| i == iid)
            .expect("exported")
    };
    let (a, b) = (at(&v, "amcaaaaaaaa"), at(&v, "amcbbbbbbbb"));
    v[a]["name"] = json!("Renamed");
    v[a]["brands"] = json!(["Acme", "New brand"]);
    v[b]["status"] = json!("ACTIVE");
    v[b]["is_active"] = json!(true);
    v.as_array_mut().unwrap().push(json!({
        "instance_id": "amceeeeeeee",
        "name": "Minimal",
        "region": "fe",
        "account": {"account_id": "ENTITY4DD4DD44DDD4", "account_name": "Initech", "country_code": "jp"},
    }));
    let file = f.env.write_file("changed.json", v.to_string());
    let out = f
        .env
        .run(&["instance", "import", file.to_str().unwrap(), "-o", "json"])
        .ok();
    assert_eq!(
        import_counts(&out),
        json!({"created": 1, "updated": 2, "unchanged": 1, "accounts_created": 1, "dry_run": false})
    );
    let show = |r: &str| f.env.json(&["instance", "show", r]);
    assert_eq!(show(id(&f.a))["name"], "Renamed");
    assert_eq!(show(id(&f.a))["brands"], json!(["Acme", "New brand"]));
    assert_eq!(show("amcbbbbbbbb")["status"], "ACTIVE");
    let e = show("amceeeeeeee");
    assert_instance_shape(&e);
    assert_eq!(
        (
            e["status"].as_str(),
            e["owner"].as_str(),
            e["account"]["marketplace_id"].as_str()
        ),
        (Some("PENDING"), Some("alice"), Some("A1VC38T7YXB528"))
    );
    // Bob's instance is not touched by alice's import.
    let bobs = f
        .env
        .run_as("bob", &["instance", "list", "-o", "json"])
        .ok()
        .json();
    assert_eq!(pluck(&bobs, "id"), [id(&f.c)]);
    assert_eq!(bobs[0]["name"], f.c["name"]);
}

fn import_reads_stdin_and_other_users_get_their_own_copies() {
    let f = fleet();
    let csv = f
        .env
        .run(&["instance", "export", "--format", "csv"])
        .ok()
        .stdout;
    // The same rows for bob, without alice's row ids: new instances owned by bob.
    let mut w = csv::Writer::from_writer(vec![]);
    let mut r = csv::Reader::from_reader(csv.as_bytes());
    let header = r.headers().unwrap().clone();
    let keep: Vec<usize> = (0..header.len()).filter(|&i| &header[i] != "id").collect();
    w.write_record(keep.iter().map(|&i| &header[i])).unwrap();
    for rec in r.records() {
        let rec = rec.unwrap();
        w.write_record(keep.iter().map(|&i| &rec[i])).unwrap();
    }
    let without_ids = w.into_inner().unwrap();

    // With alice's row ids, bob's import collides with her rows: nothing is imported.
    let before = f.env.dump();
    let with_ids = f.env.write_file("alice.csv", &csv);
    f.env
        .run_as("bob", &["instance", "import", with_ids.to_str().unwrap()])
        .fails(5, &["amcaaaaaaaa"]);
    f.env.assert_unchanged(&before, "a colliding import");

    // Without them, bob gets his own copies (through stdin).
    let out = f
        .env
        .command(
            "bob",
            &["instance", "import", "-", "--format", "csv", "-o", "json"],
        )
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(&without_ids)?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let counts: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            counts["created"].as_u64(),
            counts["accounts_created"].as_u64()
        ),
        (Some(2), Some(0))
    );
    let bobs = f
        .env
        .run_as("bob", &["instance", "list", "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        pluck(&bobs, "instance_id"),
        ["amcaaaaaaaa", "amccccccccc", "amcbbbbbbbb"]
    );
    assert_eq!(pluck(&bobs, "owner"), ["bob", "bob", "bob"]);
    assert_ne!(bobs[0]["id"], f.a["id"]);
    assert_eq!(
        f.env.json(&["instance", "list"]),
        json!([f.a.clone(), f.b.clone()])
    );

    // And stdin works for the default user with JSON too.
    let json = f.env.run(&["instance", "export"]).ok().stdout;
    let out = f
        .env
        .run_stdin(&["instance", "import", "-", "-o", "json"], json)
        .ok();
    assert_eq!(import_counts(&out)["unchanged"], 2);
}

fn a_dry_run_changes_nothing() {
    let f = varied_fleet();
    let mut v = f.env.run(&["instance", "export"]).ok().json();
    v[0]["name"] = json!("Would rename");
    v.as_array_mut().unwrap().push(json!({
        "instance_id": "amcffffffff", "name": "New", "region": "na",
        "account": {"account_id": "ENTITY5EE5EE55EEE5", "account_name": "New Co"},
    }));
    let file = f.env.write_file("plan.json", v.to_string());
    let before = f.env.dump();
    let out = f
        .env
        .run(&[
            "instance",
            "import",
            file.to_str().unwrap(),
            "--dry-run",
            "-o",
            "json",
        ])
        .ok();
    assert_eq!(
        import_counts(&out),
        json!({"created": 1, "updated": 1, "unchanged": 2, "accounts_created": 1, "dry_run": true})
    );
    f.env.assert_unchanged(&before, "");
    let table = f
        .env
        .run(&["instance", "import", file.to_str().unwrap(), "--dry-run"])
        .ok();
    assert!(table.stdout.is_empty());
    assert!(table.stderr.contains("Dry run"), "{}", table.stderr);
    f.env.assert_unchanged(&before, "");
}

fn sql_looking_text_is_stored_verbatim() {
    let env = TestEnv::new();
    let name = "Robert'); DROP TABLE users;--";
    let account = env.create_account(ACME, "x' OR '1'='1");
    assert_eq!(account["account_name"], "x' OR '1'='1");
    let i = env.json(&[
        "instance",
        "create",
        "--instance-id",
        "amcibersblt",
        "--name",
        name,
        "--account",
        "x' OR '1'='1",
        "--description",
        "'; DELETE FROM amc_instances; --",
        "--brand",
        "\"; UPDATE users SET name='mallory' --",
        "--skip-validation",
    ]);
    assert_eq!(i["name"], name);
    assert_eq!(i["description"], "'; DELETE FROM amc_instances; --");
    assert_eq!(
        i["brands"],
        json!(["\"; UPDATE users SET name='mallory' --"])
    );
    assert_eq!(env.json(&["instance", "show", name]), i);
    assert_eq!(
        env.probe()
            .rows("SELECT name, description FROM amc_instances"),
        [[
            format!("{name:?}"),
            "\"'; DELETE FROM amc_instances; --\"".to_owned()
        ]]
    );
    assert_eq!(env.probe().rows("SELECT name FROM users"), [["\"alice\""]]);
    assert_eq!(env.probe().count("instance_brands"), 1);
    // It survives the CSV round trip too.
    let csv = env
        .run(&["instance", "export", "--format", "csv"])
        .ok()
        .stdout;
    let fresh = TestEnv::new();
    fresh
        .run_stdin(&["instance", "import", "-", "--format", "csv"], csv)
        .ok();
    assert_eq!(fresh.json(&["instance", "show", name])["name"], name);
}

// Every test above runs on both backends; the two that are about the
// SQLite file itself are marked #[test] and run on SQLite alone.
crate::on_both_backends!(
    users_add_list_remove,
    removing_a_user_who_owns_instances_is_a_conflict,
    a_named_user_must_exist,
    account_create_show_list_edit_delete,
    deleting_a_linked_account_is_a_conflict_naming_the_instance,
    an_ambiguous_account_name_lists_the_candidates,
    instance_create_has_the_spec_shape_and_defaults,
    an_unusual_instance_id_is_accepted_with_a_warning,
    instance_create_conflicts_and_missing_accounts,
    no_input_names_the_missing_flag,
    instances_are_found_by_uuid_instance_id_and_exact_name,
    an_ambiguous_instance_name_lists_both,
    instance_list_formats_and_filters,
    instance_list_all_users_shows_both_owners,
    instance_edit_changes_only_what_is_given,
    instance_delete_removes_brands_and_history,
    deactivate_and_activate,
    link_moves_an_instance_to_another_account,
    brand_set_add_remove_clear_and_list,
    another_users_instances_are_out_of_reach,
    machine_formats_report_errors_as_json_on_stderr,
    usage_errors_from_the_command_line_exit_2,
    json_export_import_round_trip,
    csv_export_import_round_trip,
    export_follows_the_output_format_and_references,
    import_updates_what_changed_and_keeps_the_rest,
    import_reads_stdin_and_other_users_get_their_own_copies,
    a_dry_run_changes_nothing,
    sql_looking_text_is_stored_verbatim,
);
