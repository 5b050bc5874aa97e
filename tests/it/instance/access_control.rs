//! Access control: every command that takes an `INSTANCE` refuses another
//! user's instance with exit 4, whichever way the instance is named, and
//! leaves the store byte-identical — and never sends a request to AMC on
//! the intruder's behalf.

use crate::support::*;
use fake_amc::FakeAmc;
use serde_json::Value;

const ACME: &str = "ENTITY1AA1AA11AAA1";
const GLOBEX: &str = "ENTITY2BB2BB22BBB2";

/// Every command that takes an `INSTANCE`, with `{}` where it goes.
const COMMANDS: &[&[&str]] = &[
    &["instance", "show", "{}"],
    &["instance", "edit", "{}", "--name", "Stolen"],
    &["instance", "edit", "{}", "--description", "mine now"],
    &["instance", "delete", "{}", "--yes"],
    &["instance", "activate", "{}"],
    &["instance", "activate", "{}", "--skip-validation"],
    &["instance", "deactivate", "{}"],
    &["instance", "link", "{}", "--account", "Globex"],
    &["instance", "test", "{}"],
    &["instance", "export", "{}"],
    &["instance", "export", "{}", "--format", "csv"],
    &["brand", "list", "{}"],
    &["brand", "set", "{}", "Stolen"],
    &["brand", "add", "{}", "Stolen"],
    &["brand", "remove", "{}", "Acme"],
    &["brand", "clear", "{}", "--yes"],
    &["health", "check", "{}"],
    &["health", "check", "{}", "--deep", "--nagios"],
    &["health", "history", "{}"],
    &["health", "history", "{}", "--since", "7d", "--limit", "1"],
];

struct World {
    amc: FakeAmc,
    env: TestEnv,
    alice: Value,
    bob_own: Value,
}

/// Alice owns `amcaaaaaaaa` ("Alice Main", brand Acme, one recorded check)
/// and `amcsharedaa`; bob owns `amcbbbbbbbb` and his own `amcsharedaa`.
/// Bob has working AMC credentials in his environment, so a command that
/// wrongly let him through would reach the fake and show up there.
fn world() -> World {
    let amc = FakeAmc::start();
    amc.add_client("bob-client", "bob-secret", "Atzr|bob-refresh");
    amc.add_account(ACME, "Acme", "ATVPDKIKX0DER");
    for id in ["amcaaaaaaaa", "amcbbbbbbbb", "amcsharedaa"] {
        amc.add_instance(ACME, id, id);
    }
    let env = TestEnv::new()
        .with_fake_amc(&amc)
        .with_env("AMCCTL_CLIENT_ID", "bob-client")
        .with_env("AMCCTL_CLIENT_SECRET", "bob-secret")
        .with_env("AMCCTL_REFRESH_TOKEN", "Atzr|bob-refresh");
    env.create_account(ACME, "Acme");
    env.json(&[
        "account",
        "create",
        "--account-id",
        GLOBEX,
        "--name",
        "Globex",
    ]);
    let alice = env.create_instance("amcaaaaaaaa", "Alice Main", "Acme", &["Acme"]);
    env.create_instance("amcsharedaa", "Alice Shared", "Acme", &["Acme"]);
    let bob_own = env.create_instance_as("bob", "amcbbbbbbbb", "Bob Main", "Acme", &[]);
    env.create_instance_as("bob", "amcsharedaa", "Bob Shared", "Acme", &[]);
    // A history row and a last health for alice's instance, so that a
    // leaked check or prune would show in the dump.
    env.probe().exec(&format!(
        "INSERT INTO health_checks (instance_id, checked_at, status, http_status, latency_ms, attempts)
         VALUES ('{}', '2026-01-01T00:00:00Z', 'HEALTHY', 200, 12, 1)",
        alice["id"].as_str().expect("id")
    ));
    amc.clear_requests();
    World {
        amc,
        env,
        alice,
        bob_own,
    }
}

fn fill<'a>(template: &[&'a str], reference: &'a str) -> Vec<&'a str> {
    template
        .iter()
        .map(|a| if *a == "{}" { reference } else { *a })
        .collect()
}

fn every_instance_command_refuses_another_users_instance() {
    let w = world();
    let env = &w.env;
    let alice_uuid = w.alice["id"].as_str().expect("id").to_owned();
    let references = [
        "amcaaaaaaaa".to_owned(),
        "Alice Main".to_owned(),
        alice_uuid.clone(),
        alice_uuid.to_uppercase(),
        format!("  {alice_uuid}\t"),
        " amcaaaaaaaa ".to_owned(),
    ];
    let before = env.dump();
    let mut cases = 0;
    for template in COMMANDS {
        for reference in &references {
            let args = fill(template, reference);
            // As bob through $USER, and through --user; in a table and as JSON.
            let nagios = template.contains(&"--nagios");
            let out = env.run_as("bob", &args);
            let ctx = format!("bob: amcctl {args:?}");
            if nagios {
                // The monitoring plugin says UNKNOWN (3) in its own one line.
                assert_eq!(out.code, 3, "{ctx}\n{}", out.stderr);
                assert!(
                    out.stdout.starts_with("AMC UNKNOWN") && out.stdout.contains("another user"),
                    "{ctx}: {}",
                    out.stdout
                );
            } else {
                assert_eq!(
                    out.code, 4,
                    "{ctx}\nstdout: {}\nstderr: {}",
                    out.stdout, out.stderr
                );
                assert!(
                    out.stderr.contains("another user"),
                    "{ctx}: the message says why: {}",
                    out.stderr
                );
                assert!(out.stdout.is_empty(), "{ctx}: printed {:?}", out.stdout);
            }
            env.assert_unchanged(&before, &ctx);

            let mut json_args = vec!["--user", "bob", "-o", "json"];
            json_args.extend(&args);
            let out = env.run_as("alice", &json_args);
            let ctx = format!("--user bob: amcctl {json_args:?}");
            if nagios {
                assert_eq!(out.code, 3, "{ctx}\n{}", out.stderr);
                assert!(
                    out.stdout.starts_with("AMC UNKNOWN"),
                    "{ctx}: {}",
                    out.stdout
                );
            } else {
                assert_eq!(out.code, 4, "{ctx}\n{}", out.stderr);
                assert_eq!(out.error_json()["code"], "permission_denied", "{ctx}");
            }
            env.assert_unchanged(&before, &ctx);
            cases += 2;
        }
    }
    assert!(
        w.amc.requests().is_empty(),
        "a refused command reached AMC: {:?}",
        w.amc
            .requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );
    eprintln!(
        "access control: {} commands x {} references x 2 = {cases} refusals, store unchanged",
        COMMANDS.len(),
        references.len()
    );
}

fn a_list_of_instances_with_one_foreign_is_refused_whole() {
    let w = world();
    let env = &w.env;
    let before = env.dump();
    for args in [
        &["health", "check", "amcbbbbbbbb", "amcaaaaaaaa"][..],
        &["health", "check", "Bob Main", "Alice Main", "-o", "ndjson"],
        &["instance", "export", "amcbbbbbbbb", "amcaaaaaaaa"],
        &[
            "instance",
            "export",
            "amcbbbbbbbb",
            "Alice Main",
            "-o",
            "csv",
        ],
    ] {
        let out = env.run_as("bob", args).code(4);
        assert!(out.stdout.is_empty(), "{args:?}: printed {:?}", out.stdout);
        env.assert_unchanged(&before, format!("{args:?}"));
    }
    assert!(w.amc.requests().is_empty(), "a refused check reached AMC");
}

fn a_shared_instance_id_resolves_to_the_actors_own() {
    let w = world();
    let env = &w.env;
    // Both own an `amcsharedaa`: bob's commands act on his, alice's stays.
    let alice_before = env.json(&["instance", "show", "amcsharedaa"]);
    let edited = env
        .run_as(
            "bob",
            &[
                "instance",
                "edit",
                "amcsharedaa",
                "--name",
                "Bob Renamed",
                "-o",
                "json",
            ],
        )
        .ok()
        .json();
    assert_eq!(edited["owner"], "bob");
    assert_eq!(edited["name"], "Bob Renamed");
    env.run_as("bob", &["brand", "set", "amcsharedaa", "Bobs"])
        .ok();
    env.run_as("bob", &["instance", "delete", "amcsharedaa", "--yes"])
        .ok();
    assert_eq!(env.json(&["instance", "show", "amcsharedaa"]), alice_before);
    // Lists and bulk checks never show or touch another user's instances.
    let listed = env
        .run_as("bob", &["instance", "list", "-o", "json"])
        .ok()
        .json();
    assert_eq!(pluck(&listed, "owner"), ["bob"]);
    assert_eq!(
        pluck(&listed, "id"),
        [w.bob_own["id"].as_str().expect("id")]
    );
    let checked = env
        .run_as("bob", &["health", "check", "--all", "-o", "json"])
        .ok()
        .json();
    assert_eq!(pluck(&checked["results"], "owner"), ["bob"]);
    let paths: Vec<String> = w.amc.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        paths.iter().all(|p| !p.contains("amcaaaaaaaa")),
        "bob's bulk check asked about alice's instance: {paths:?}"
    );
    let status = env
        .run_as("bob", &["health", "status", "-o", "json"])
        .ok()
        .json();
    assert_eq!(pluck(&status, "owner"), ["bob"], "{status}");
}

fn a_uuid_in_any_pasted_form_names_the_same_instance() {
    let w = world();
    let env = &w.env;
    let uuid = w.alice["id"].as_str().expect("id");
    for form in [
        uuid.to_owned(),
        uuid.to_uppercase(),
        format!("{{{uuid}}}"),
        format!("urn:uuid:{uuid}"),
        uuid.replace('-', ""),
    ] {
        let shown = env.json(&["instance", "show", &form]);
        assert_eq!(shown["id"], uuid, "{form}");
        // ... and another user is refused, not told it does not exist.
        env.run_as("bob", &["instance", "show", &form]).code(4);
    }
}

crate::on_both_backends!(
    every_instance_command_refuses_another_users_instance,
    a_list_of_instances_with_one_foreign_is_refused_whole,
    a_shared_instance_id_resolves_to_the_actors_own,
    a_uuid_in_any_pasted_form_names_the_same_instance,
);
