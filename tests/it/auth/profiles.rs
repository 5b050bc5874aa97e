//! Login profiles: several grants per user, accounts bound to profiles, a
//! bulk check that uses each account's own grant (one refresh per
//! profile), the commands and their bad input, `auth token`, and a store of
//! the version before profiles upgrading with its login as `default`.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::TestEnv;
use crate::support::amc::{Amc, US};
use fake_amc::FakeAmc;
use serde_json::{Value, json};

/// Three grants: (profile, client ID, client secret, refresh token, account).
const GRANTS: [(&str, &str, &str, &str, &str); 3] = [
    (
        "acme",
        "amzn1.application-oa2-client.acme",
        "cs-ACME-1111",
        "Atzr|IwEBacmeREFRESH1111",
        "ENTITY1ACMECLIENT",
    ),
    (
        "globex",
        "amzn1.application-oa2-client.globex",
        "cs-GLOBEX-2222",
        "Atzr|IwEBglobexREFRESH2222",
        "ENTITY2GLOBEXCLIENT",
    ),
    (
        "initech",
        "amzn1.application-oa2-client.initech",
        "cs-INITECH-3333",
        "Atzr|IwEBinitechREFRESH3333",
        "ENTITY3INITECHCLIENT",
    ),
];

fn login_profile(env: &TestEnv, profile: &str, client: &str, secret: &str, refresh: &str) {
    env.run_stdin(
        &[
            "auth",
            "login",
            "--profile",
            profile,
            "--client-id",
            client,
            "--client-secret-stdin",
            "--refresh-token-stdin",
        ],
        format!("{secret}\n{refresh}\n"),
    )
    .ok();
}

/// A fake with the three grants, an account per grant with three
/// instances each, and alice logged in to all three profiles with each
/// account bound to its profile.
fn agency() -> (FakeAmc, TestEnv) {
    let fake = FakeAmc::start();
    let env = TestEnv::new().with_fake_amc(&fake);
    let mut rows = Vec::new();
    for (profile, client, secret, refresh, entity) in GRANTS {
        fake.add_client(client, secret, refresh);
        fake.add_account(entity, profile, US);
        env.create_account(entity, profile);
        login_profile(&env, profile, client, secret, refresh);
        env.run(&["account", "edit", entity, "--profile", profile])
            .ok();
        for n in 0..3 {
            let id = format!("amc{}{n}", &profile[..4]);
            fake.add_instance(entity, &id, &id);
            rows.push(
                json!({"instance_id": id, "name": id, "region": "na", "status": "ACTIVE",
                             "is_active": true, "account": {"account_id": entity}}),
            );
        }
    }
    let file = env.write_file("fleet.json", serde_json::to_vec(&rows).unwrap());
    env.run(&[
        "instance",
        "import",
        file.to_str().unwrap(),
        "--format",
        "json",
    ])
    .ok();
    (fake, env)
}

fn a_bulk_check_uses_each_accounts_own_grant_and_refreshes_once_per_profile() {
    let (fake, env) = agency();
    // No cached access token: the run must refresh, once per profile.
    env.probe().forget_access_tokens();
    let before: Vec<usize> = GRANTS.iter().map(|g| fake.token_grants_for(g.3)).collect();
    fake.clear_requests();
    let out = env
        .run(&[
            "health",
            "check",
            "--all",
            "--concurrency",
            "8",
            "-o",
            "json",
        ])
        .ok();
    let results = crate::support::amc::results_by_id(&out);
    assert_eq!(results.len(), 9);
    assert!(
        results.values().all(|r| r["status"] == "HEALTHY"),
        "{}",
        out.stdout
    );

    let grant_of_account: BTreeMap<&str, &str> = GRANTS.iter().map(|g| (g.4, g.3)).collect();
    let calls = fake.grants_by_advertiser();
    assert_eq!(calls.len(), 9, "one call per instance: {calls:?}");
    let mut seen = BTreeSet::new();
    for (advertiser, grant) in &calls {
        let expected = grant_of_account[advertiser.as_str()];
        assert_eq!(
            grant.as_deref(),
            Some(expected),
            "a call for {advertiser} came with another profile's token"
        );
        seen.insert(advertiser.clone());
    }
    assert_eq!(seen.len(), 3, "all three accounts were called");
    for (g, b) in GRANTS.iter().zip(before) {
        assert_eq!(
            fake.token_grants_for(g.3) - b,
            1,
            "profile {} refreshed exactly once",
            g.0
        );
    }

    // A second run takes every profile's token from the cache: no refresh.
    let grants = fake.token_grants();
    env.run(&["health", "check", "--all"]).ok();
    assert_eq!(fake.token_grants(), grants);
}

fn profiles_are_listed_switched_and_named_per_command() {
    let (fake, env) = agency();
    let list = env.json(&["auth", "list"]);
    let rows = list.as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["profile"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "globex", "initech"]);
    for r in rows {
        let keys: BTreeSet<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            BTreeSet::from([
                "profile",
                "client_id",
                "region",
                "default",
                "access_token_expires_at"
            ])
        );
        assert_eq!(r["default"], false, "none is `default` yet: {r}");
    }
    let table = env.run(&["auth", "list"]).ok().stdout;
    for (_, _, secret, refresh, _) in GRANTS {
        assert!(
            !table.contains(secret) && !table.contains(refresh),
            "{table}"
        );
        assert!(!list.to_string().contains(secret) && !list.to_string().contains(refresh));
    }

    // `auth switch` stores the default; `--profile` and AMCCTL_PROFILE name one for a command.
    env.run(&["auth", "switch", "globex"]).ok();
    let list = env.json(&["auth", "list"]);
    let defaults: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["default"] == true)
        .map(|r| r["profile"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["globex"]);
    assert_eq!(env.json(&["auth", "status"])["profile"], "globex");
    assert_eq!(
        env.json(&["auth", "status", "--profile", "acme"])["profile"],
        "acme"
    );
    let status = env
        .run_env(
            "alice",
            &["auth", "status", "-o", "json"],
            &[("AMCCTL_PROFILE", "initech")],
        )
        .ok();
    assert!(status.stdout.contains("\"initech\""), "{}", status.stdout);

    // `auth token` prints only the profile's access token.
    let token = env.run(&["auth", "token", "--profile", "acme"]).ok();
    let printed = token.stdout.trim();
    assert_eq!(token.stdout.lines().count(), 1, "{}", token.stdout);
    assert_eq!(fake.grant_of(printed).as_deref(), Some(GRANTS[0].3));
    let token = env.run(&["auth", "token"]).ok();
    assert_eq!(
        fake.grant_of(token.stdout.trim()).as_deref(),
        Some(GRANTS[1].3)
    );

    // Unknown profiles: exit 3 listing the profiles, nothing changed.
    let before = env.dump();
    for args in [
        &["auth", "switch", "nope"][..],
        &["auth", "status", "--profile", "nope"],
        &["auth", "token", "--profile", "nope"],
        &["auth", "logout", "--profile", "nope"],
        &["account", "edit", GRANTS[0].4, "--profile", "nope"],
    ] {
        let out = env.run(args).code(3);
        assert!(
            out.stderr.contains("acme, globex, initech"),
            "{args:?} lists the profiles: {}",
            out.stderr
        );
    }
    let bad = env
        .run(&["auth", "status", "--profile", "bad name"])
        .code(2);
    assert!(bad.stderr.contains("--profile"), "{}", bad.stderr);
    assert_eq!(env.dump(), before, "bad input changes nothing");

    // `account edit --profile` rebinds; an exported AMCCTL_PROFILE does not.
    let a = env.json(&["account", "edit", GRANTS[0].4, "--profile", "globex"]);
    assert_eq!(a["profile"], "globex");
    let a = env.run_env(
        "alice",
        &[
            "account",
            "edit",
            GRANTS[0].4,
            "--name",
            "Acme Inc",
            "-o",
            "json",
        ],
        &[("AMCCTL_PROFILE", "initech")],
    );
    assert!(a.ok().stdout.contains("\"globex\""));

    // Logout forgets one profile.
    env.run(&["auth", "logout", "--profile", "initech"]).ok();
    assert_eq!(env.json(&["auth", "list"]).as_array().unwrap().len(), 2);
}

fn discovery_records_the_profile_it_used() {
    let amc = Amc::new();
    amc.login().ok();
    amc.fake.add_client(GRANTS[0].1, GRANTS[0].2, GRANTS[0].3);
    login_profile(&amc.env, "work", GRANTS[0].1, GRANTS[0].2, GRANTS[0].3);
    amc.env
        .run(&["account", "discover", "--profile", "work"])
        .ok();
    let accounts = amc.env.json(&["account", "list"]);
    let profiles: BTreeMap<String, Value> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["account_id"].as_str().unwrap().to_owned(),
                a["profile"].clone(),
            )
        })
        .collect();
    // The account made by hand before is bound now too; the new one was found with `work`.
    assert_eq!(
        profiles[crate::support::amc::OTHER_ENTITY],
        "work",
        "{accounts}"
    );
    assert_eq!(profiles[crate::support::amc::ENTITY], "work", "{accounts}");
}

/// A store as the release before profiles left it: schema version 2 with
/// one login (the secrets Fernet tokens under the key file), an account and
/// an instance.
fn version_2_store(env: &TestEnv, fake: &FakeAmc) {
    use std::os::unix::fs::PermissionsExt;
    let home = env.home();
    std::fs::create_dir_all(home).unwrap();
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = fernet::Fernet::generate_key();
    let key_file = home.join("key");
    std::fs::write(&key_file, format!("{key}\n")).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let f = fernet::Fernet::new(&key).unwrap();
    let probe = env.probe();
    probe.exec_batch(include_str!("../../../migrations/sqlite/0001_init.sql"));
    probe.exec_batch(include_str!("../../../migrations/sqlite/0002_usage.sql"));
    probe.set_user_version(2);
    let (_, client, secret, refresh, entity) = GRANTS[0];
    fake.add_client(client, secret, refresh);
    fake.add_account(entity, "Acme", US);
    fake.add_instance(entity, "amcoldstore", "old");
    let at = "2026-11-01T00:00:00Z";
    let user = "0b7d8a0e-3c1f-4a55-9d7e-2f6c1b0a9e11";
    let account = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
    // Every value is a fixed id, a grant of this file or a Fernet token
    // (url-safe base64): none holds a quote.
    probe.exec_batch(&format!(
        "INSERT INTO users (id, name, created_at) VALUES ('{user}', 'alice', '{at}');
         INSERT INTO amc_accounts (id, account_id, account_name, country_code, marketplace_id, created_at, updated_at)
         VALUES ('{account}', '{entity}', 'Acme', 'US', '{US}', '{at}', '{at}');
         INSERT INTO amc_instances (id, user_id, instance_id, name, region, account_id, status, created_at, updated_at)
         VALUES ('2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f60', '{user}', 'amcoldstore', 'old', 'na', '{account}', 'ACTIVE', '{at}', '{at}');
         INSERT INTO credentials (user_id, client_id, client_secret_enc, refresh_token_enc, region, created_at, updated_at)
         VALUES ('{user}', '{client}', '{secret_enc}', '{refresh_enc}', 'na', '{at}', '{at}');",
        secret_enc = f.encrypt(secret.as_bytes()),
        refresh_enc = f.encrypt(refresh.as_bytes()),
    ));
}

#[test]
fn a_store_of_version_2_upgrades_with_its_login_as_default() {
    let fake = FakeAmc::start();
    let env = TestEnv::new().with_fake_amc(&fake);
    version_2_store(&env, &fake);

    let list = env.json(&["auth", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["profile"], "default");
    assert_eq!(list[0]["default"], true);
    assert_eq!(list[0]["client_id"], GRANTS[0].1);
    assert_eq!(
        env.probe()
            .scalar("SELECT count(*) FROM pragma_table_info('credentials') WHERE name = 'profile'"),
        1
    );

    let status = env.json(&["auth", "status"]);
    assert_eq!(status["profile"], "default");
    assert_eq!(env.json(&["instance", "list"]).as_array().unwrap().len(), 1);
    env.run(&["health", "check", "--all"]).ok();
    assert_eq!(
        fake.token_grants_for(GRANTS[0].3),
        1,
        "the migrated grant refreshed"
    );
    let token = env.run(&["auth", "token"]).ok();
    assert_eq!(
        fake.grant_of(token.stdout.trim()).as_deref(),
        Some(GRANTS[0].3)
    );
    env.run(&["instance", "discover"]).ok();
    env.run(&["key", "rotate", "--yes"]).ok();
    assert_eq!(env.json(&["auth", "status"])["client_id"], GRANTS[0].1);
    env.run(&["health", "check", "--all"]).ok();
    env.assert_store_sound("after the upgrade");
}

fn key_rotate_covers_every_profile() {
    let (fake, env) = agency();
    env.run(&["key", "rotate", "--yes"]).ok();
    env.probe().forget_access_tokens();
    for (profile, _, _, refresh, _) in GRANTS {
        let token = env.run(&["auth", "token", "--profile", profile]).ok();
        assert_eq!(fake.grant_of(token.stdout.trim()).as_deref(), Some(refresh));
    }
}

crate::on_both_backends!(
    a_bulk_check_uses_each_accounts_own_grant_and_refreshes_once_per_profile,
    profiles_are_listed_switched_and_named_per_command,
    discovery_records_the_profile_it_used,
    key_rotate_covers_every_profile,
);
