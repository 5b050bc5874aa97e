//! amcctl as an AMC client, end to end: the real binary against the fake
//! AMC server over HTTP on 127.0.0.1. Credentials (login, status, logout),
//! validation on create, discovery, the retry and token policy as a user
//! meets it (its exit codes), which base URL each call goes to, the token
//! cache across processes, and the Fernet key.

use std::time::Duration;

use crate::support::amc::{
    ACCOUNT_NAME, Amc, CLIENT_ID, CLIENT_SECRET, ENTITY, OTHER_ENTITY, REFRESH_TOKEN, US,
    access_tokens_seen, login_with,
};
use crate::support::{TestEnv, assert_instance_shape, pluck};
use fake_amc::{FakeAmc, Fault, Route};
use serde_json::Value;

/// Writes the home's config file (`timeout = "300ms"` and the like).
fn config(env: &TestEnv, text: &str) {
    std::fs::write(env.home().join("config.toml"), text).expect("write config.toml");
}

// ---------------------------------------------------------------- auth

fn login_proves_the_credentials_and_stores_them_encrypted() {
    let amc = Amc::new();
    let out = amc.login().ok();
    assert!(
        out.stdout.is_empty(),
        "login prints nothing on stdout: {out:?}"
    );
    assert_eq!(amc.fake.token_grants(), 1, "one refresh proves them");
    let grant = &amc.token_requests()[0];
    assert_eq!(grant.method, "POST");
    for part in [
        "grant_type=refresh_token",
        "client_id=amzn1.application-oa2-client.e2etests",
        "client_secret=cs-MARKER-7f3a9c1e5b2d4468",
    ] {
        assert!(grant.body.contains(part), "{part} in {}", grant.body);
    }

    // Stored as Fernet tokens, never as the values themselves.
    let rows = amc.env.probe().rows(
        "SELECT client_id, client_secret_enc, refresh_token_enc, access_token_enc, region FROM credentials",
    );
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row[0], format!("{CLIENT_ID:?}"));
    for enc in &row[1..4] {
        assert!(enc.starts_with("\"gAAAAA"), "a Fernet token: {enc}");
    }
    assert_eq!(row[4], "\"na\"");
    let dump = amc.env.dump();
    assert!(!dump.contains(CLIENT_SECRET) && !dump.contains(REFRESH_TOKEN));
    let key = amc.env.home().join("key");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600, "the key file is private");

    // `auth status` shows who and which client, the refresh token cut short.
    let status = amc.env.json(&["auth", "status"]);
    assert_eq!(status["user"], "alice");
    assert_eq!(status["client_id"], CLIENT_ID);
    assert_eq!(status["region"], "na");
    assert_eq!(status["refresh_token"], "Atzr|…");
    assert!(status["access_token_expires_at"].is_string(), "{status}");
    let table = amc.env.run(&["auth", "status"]).ok();
    assert!(table.stdout.contains(CLIENT_ID) && table.stdout.contains("Atzr|…"));
    assert!(!table.stdout.contains(REFRESH_TOKEN) && !table.stdout.contains(CLIENT_SECRET));
    assert_eq!(
        amc.fake.token_grants(),
        1,
        "status does not call Login with Amazon"
    );
}

fn refused_credentials_exit_7_with_a_hint_and_store_nothing() {
    let amc = Amc::new();
    let before = amc.env.dump();

    // A refresh token Login with Amazon does not know: invalid_grant.
    let out = login_with(&amc.env, &[], CLIENT_SECRET, "Atzr|IwEBIrevokedtoken000")
        .fails(7, &["invalid_grant", "hint:", "auth login"]);
    assert!(!out.stderr.contains("revokedtoken"), "{}", out.stderr);
    amc.env.assert_unchanged(&before, "a refused login");
    assert!(
        !amc.env.home().join("key").exists(),
        "no key made for nothing"
    );

    // A wrong client secret: invalid_client.
    let out = login_with(&amc.env, &[], "cs-wrong-secret-0000", REFRESH_TOKEN)
        .fails(7, &["invalid_client"]);
    assert!(!out.stderr.contains("cs-wrong-secret"), "{}", out.stderr);
    amc.env.assert_unchanged(&before, "a refused login");

    // With -o json the refusal is the JSON error object.
    let out = login_with(
        &amc.env,
        &["-o", "json"],
        CLIENT_SECRET,
        "Atzr|IwEBIrevokedtoken000",
    )
    .code(7);
    let err = out.error_json();
    assert_eq!(err["code"], "auth");
    assert!(
        err["hint"].as_str().unwrap().contains("auth login"),
        "{err}"
    );

    assert_eq!(amc.fake.token_grants(), 0);
    amc.env.assert_unchanged(&before, "refused logins");
    amc.env
        .run(&["auth", "status"])
        .fails(7, &["not logged in", "auth login"]);
}

fn credentials_come_from_the_environment_too() {
    let amc = Amc::new();
    let out = amc
        .env
        .command("alice", &["auth", "login"])
        .env("AMCCTL_CLIENT_ID", CLIENT_ID)
        .env("AMCCTL_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMCCTL_REFRESH_TOKEN", REFRESH_TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(amc.env.json(&["auth", "status"])["client_id"], CLIENT_ID);
}

fn logout_forgets_the_credentials() {
    let amc = Amc::logged_in();
    amc.instances(&["amclogout01"]);
    amc.env.run(&["auth", "logout"]).ok();
    assert_eq!(amc.env.probe().count("credentials"), 0);
    amc.env
        .run(&["auth", "status"])
        .fails(7, &["not logged in"]);
    amc.env
        .run(&["auth", "logout"])
        .fails(3, &["not logged in"]);
    // Without credentials nothing can be checked: exit 7 naming what to do.
    amc.fake.clear_requests();
    amc.env
        .run(&["instance", "test", "amclogout01"])
        .fails(7, &["no AMC credentials", "auth login"]);
    assert!(amc.fake.requests().is_empty());
}

// ---------------------------------------------------------------- create

fn create_validates_against_amc_and_saves_active() {
    let amc = Amc::logged_in();
    amc.fake.add_instance(ENTITY, "amcgood0001", "Good");
    let inst = amc.env.json(&[
        "instance",
        "create",
        "--instance-id",
        "amcgood0001",
        "--name",
        "Good",
        "--account",
        ACCOUNT_NAME,
    ]);
    assert_instance_shape(&inst);
    assert_eq!(inst["status"], "ACTIVE");
    assert_eq!(inst["is_active"], true);

    let calls = amc.amc_requests();
    assert_eq!(calls.len(), 1, "one validation call: {calls:?}");
    let call = &calls[0];
    assert_eq!(
        (call.method.as_str(), call.path.as_str()),
        ("GET", "/amc/instances/amcgood0001")
    );
    assert_eq!(
        call.header("amazon-advertising-api-advertiserid"),
        Some(ENTITY)
    );
    assert_eq!(
        call.header("amazon-advertising-api-marketplaceid"),
        Some(US)
    );
    assert_eq!(
        call.header("amazon-advertising-api-clientid"),
        Some(CLIENT_ID)
    );
    assert!(
        call.header("authorization")
            .unwrap()
            .starts_with("Bearer Atza|")
    );
    assert_eq!(call.status, 200);
    assert_eq!(amc.fake.token_grants(), 1, "the login's token is reused");

    let listed = amc.env.json(&["instance", "show", "amcgood0001"]);
    assert_eq!(listed["status"], "ACTIVE");
}

/// `instance create` of `id` must fail with `code`, naming every needle,
/// and leave the store as it was.
#[track_caller]
fn create_fails(amc: &Amc, id: &str, code: i32, needles: &[&str]) -> crate::support::Output {
    let before = amc.env.dump();
    let out = amc
        .env
        .run(&[
            "instance",
            "create",
            "--instance-id",
            id,
            "--account",
            ENTITY,
        ])
        .fails(code, needles);
    amc.env
        .assert_unchanged(&before, format!("a failed create of {id}"));
    out
}

fn create_refuses_what_amc_denies_or_does_not_know() {
    let amc = Amc::logged_in();
    // 403: the instance exists, but under another advertiser.
    amc.fake.add_instance(OTHER_ENTITY, "amcforeign1", "Theirs");
    create_fails(
        &amc,
        "amcforeign1",
        6,
        &[
            "HTTP 403",
            "does not belong to advertiser",
            "--skip-validation",
        ],
    );
    // 404: AMC has never heard of it.
    create_fails(&amc, "amcunknown1", 6, &["HTTP 404", "Instance not found"]);
    // Not COMPLETED: AMC knows it, it is not usable yet.
    amc.fake.add_instance(ENTITY, "amcbuilding", "Building");
    amc.fake.set_creation_status("amcbuilding", "PENDING");
    create_fails(
        &amc,
        "amcbuilding",
        6,
        &["not ready", "creationStatus PENDING"],
    );
    amc.fake.set_creation_status("amcbuilding", "FAILED");
    create_fails(&amc, "amcbuilding", 6, &["creationStatus FAILED"]);
    // 4xx other than 401 are final: one request each.
    assert_eq!(amc.instance_requests("amcforeign1").len(), 1);
    assert_eq!(amc.instance_requests("amcunknown1").len(), 1);
    // A body that is not JSON.
    amc.fake.add_instance(ENTITY, "amcgarbage1", "Garbage");
    amc.fake.on_instance("amcgarbage1", Fault::MalformedJson);
    create_fails(&amc, "amcgarbage1", 6, &["malformed JSON"]);
    amc.fake.on_instance("amcgarbage1", Fault::WrongContentType);
    create_fails(&amc, "amcgarbage1", 6, &["expected JSON", "text/html"]);
}

fn create_gives_up_on_persistent_server_errors_resets_and_timeouts() {
    let amc = Amc::logged_in();
    // Keep the slow case short: the create command has no network flags,
    // the config file sets its timeout.
    config(&amc.env, "timeout = \"300ms\"\n");
    for (id, fault) in [
        ("amcbroken01", Fault::Status(503)),
        ("amcreset001", Fault::Reset),
        ("amcslow0001", Fault::Delay(Duration::from_secs(3))),
    ] {
        amc.fake.add_instance(ENTITY, id, id);
        amc.fake.on_instance(id, fault);
    }
    let out = create_fails(&amc, "amcbroken01", 6, &["HTTP 503"]);
    let tries = amc.instance_requests("amcbroken01").len();
    assert_eq!(
        tries, 5,
        "the first attempt and 4 retries (the default)\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("5 attempts"), "{}", out.stderr);

    create_fails(
        &amc,
        "amcreset001",
        6,
        &["network error", "GET /amc/instances/amcreset001"],
    );
    assert_eq!(amc.instance_requests("amcreset001").len(), 5);

    create_fails(&amc, "amcslow0001", 6, &["timed out after 300ms"]);
    assert_eq!(amc.instance_requests("amcslow0001").len(), 5);
}

fn create_retries_a_transient_failure_and_saves_active() {
    let amc = Amc::logged_in();
    amc.fake.add_instance(ENTITY, "amcflaky001", "Flaky");
    amc.fake.push_faults(
        Route::Instance("amcflaky001".into()),
        [Fault::Status(500), Fault::Reset],
    );
    let inst = amc.env.json(&[
        "instance",
        "create",
        "--instance-id",
        "amcflaky001",
        "--account",
        ENTITY,
    ]);
    assert_eq!(inst["status"], "ACTIVE");
    let statuses: Vec<u16> = amc
        .instance_requests("amcflaky001")
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [500, 0, 200], "0 is the reset");
}

fn create_with_a_refused_refresh_token_is_exit_7() {
    let amc = Amc::new();
    amc.fake.add_instance(ENTITY, "amcnotoken1", "x");
    let before = amc.env.dump();
    let out = amc
        .env
        .command(
            "alice",
            &[
                "instance",
                "create",
                "--instance-id",
                "amcnotoken1",
                "--account",
                ENTITY,
            ],
        )
        .env("AMCCTL_CLIENT_ID", CLIENT_ID)
        .env("AMCCTL_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMCCTL_REFRESH_TOKEN", "Atzr|IwEBIrevoked0000000")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("invalid_grant") && stderr.contains("auth login"),
        "{stderr}"
    );
    assert!(!stderr.contains("revoked0000"), "{stderr}");
    amc.env
        .assert_unchanged(&before, "a create whose token was refused");
    assert!(amc.amc_requests().is_empty(), "no AMC call without a token");
}

fn create_without_any_credentials_is_exit_7_and_skip_validation_needs_none() {
    let amc = Amc::new();
    let before = amc.env.dump();
    amc.env
        .run(&[
            "instance",
            "create",
            "--instance-id",
            "amcnocreds1",
            "--account",
            ENTITY,
        ])
        .fails(7, &["no AMC credentials", "auth login"]);
    amc.env
        .assert_unchanged(&before, "a create without credentials");

    let inst = amc.env.json(&[
        "instance",
        "create",
        "--instance-id",
        "amcnocreds1",
        "--account",
        ENTITY,
        "--skip-validation",
    ]);
    assert_eq!(inst["status"], "PENDING");
    assert!(
        amc.fake.requests().is_empty(),
        "--skip-validation sends nothing"
    );
}

// ---------------------------------------------------------------- discovery

fn discovery_follows_every_page_and_reruns_are_idempotent() {
    let amc = Amc::logged_in();
    // Three pages for the first account (100 + 100 + 5), one for the other.
    let ids: Vec<String> = (0..205).map(|n| format!("amcp{n:07}")).collect();
    for id in &ids {
        amc.fake.add_instance(ENTITY, id, &format!("Fleet {id}"));
    }
    amc.fake
        .add_instance(OTHER_ENTITY, "amcother001", "Other one");
    amc.fake
        .add_account("ENTITY3UKACCOUNT", "Acme UK", "A1F83G8C2ARO7P");

    // Accounts: the store knew Acme; two are new.
    let counts = amc.env.json(&["account", "discover"]);
    assert_eq!(counts["created"], 2, "{counts}");
    assert_eq!(counts["unchanged"], 1, "{counts}");
    assert_eq!(counts["dry_run"], false);
    let accounts = amc.env.json(&["account", "list"]);
    let mut entities = pluck(&accounts, "account_id");
    entities.sort();
    assert_eq!(
        entities,
        [
            "ENTITY1E2EACCOUNT",
            "ENTITY2OTHERACCOUNT",
            "ENTITY3UKACCOUNT"
        ]
    );
    let uk = accounts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["account_id"] == "ENTITY3UKACCOUNT")
        .unwrap();
    assert_eq!(uk["country_code"], "UK");
    let accounts_call = amc
        .amc_requests()
        .into_iter()
        .find(|r| r.path == "/amc/accounts")
        .unwrap();
    assert_eq!(
        accounts_call.header("amazon-advertising-api-advertiserid"),
        None
    );

    // Instances of one account: every page.
    amc.fake.clear_requests();
    let out = amc
        .env
        .run(&[
            "instance",
            "discover",
            "--account",
            ACCOUNT_NAME,
            "-o",
            "json",
        ])
        .ok();
    let counts = out.json();
    assert_eq!(
        (
            counts["created"].as_u64(),
            counts["updated"].as_u64(),
            counts["unchanged"].as_u64()
        ),
        (Some(205), Some(0), Some(0))
    );
    assert!(out.stderr.contains("205 instance(s)"), "{}", out.stderr);
    let pages = amc.amc_requests();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert_eq!(pages[0].query.as_deref(), Some("limit=100"));
    for page in &pages[1..] {
        let q = page.query.as_deref().unwrap();
        assert!(q.contains("limit=100") && q.contains("nextToken="), "{q}");
        assert_eq!(
            page.header("amazon-advertising-api-advertiserid"),
            Some(ENTITY)
        );
    }
    let listed = amc.env.json(&["instance", "list", "--account", ENTITY]);
    let mut got = pluck(&listed, "instance_id");
    got.sort();
    assert_eq!(got, ids);
    for inst in listed.as_array().unwrap() {
        assert_instance_shape(inst);
        assert_eq!(inst["status"], "ACTIVE", "COMPLETED in AMC");
        assert_eq!(
            inst["api_endpoint"],
            amc.fake.base_url(),
            "apiEndpoint kept"
        );
    }
    let first = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["instance_id"] == "amcp0000000")
        .unwrap();
    assert_eq!(first["name"], "Fleet amcp0000000");

    // Every account: the other two are asked too; nothing new for Acme.
    let counts = amc.env.json(&["instance", "discover"]);
    assert_eq!(
        (counts["created"].as_u64(), counts["unchanged"].as_u64()),
        (Some(1), Some(205)),
        "{counts}"
    );

    // A rerun changes nothing and says so.
    let before = amc.env.dump();
    let counts = amc.env.json(&["instance", "discover"]);
    assert_eq!(
        (
            counts["created"].as_u64(),
            counts["updated"].as_u64(),
            counts["unchanged"].as_u64()
        ),
        (Some(0), Some(0), Some(206))
    );
    amc.env.assert_unchanged(&before, "a discovery rerun");
    let counts = amc.env.json(&["account", "discover"]);
    assert_eq!(
        (counts["created"].as_u64(), counts["unchanged"].as_u64()),
        (Some(0), Some(3))
    );
    amc.env
        .assert_unchanged(&before, "an account discovery rerun");

    // New instances and a renamed account: a dry run reports them and changes nothing.
    amc.fake.add_instance(ENTITY, "amcnew00001", "New");
    amc.fake.add_instance(ENTITY, "amcnew00002", "New too");
    amc.fake.add_account(OTHER_ENTITY, "Other, renamed", US);
    let counts = amc.env.json(&["account", "discover", "--dry-run"]);
    assert_eq!(
        (counts["updated"].as_u64(), counts["dry_run"].as_bool()),
        (Some(1), Some(true))
    );
    let out = amc
        .env
        .run(&["instance", "discover", "--dry-run", "-o", "json"])
        .ok();
    let counts = out.json();
    assert_eq!(
        (counts["created"].as_u64(), counts["dry_run"].as_bool()),
        (Some(2), Some(true))
    );
    assert!(
        out.stderr.contains("Dry run, nothing changed"),
        "{}",
        out.stderr
    );
    amc.env.assert_unchanged(&before, "dry runs");

    amc.env.json(&["account", "discover"]);
    let counts = amc.env.json(&["instance", "discover"]);
    assert_eq!(counts["created"], 2);
    assert_eq!(
        amc.env
            .json(&["instance", "list"])
            .as_array()
            .unwrap()
            .len(),
        208
    );
    assert_eq!(
        amc.env.json(&["account", "show", OTHER_ENTITY])["account_name"],
        "Other, renamed"
    );
}

// ---------------------------------------------------------------- the call policy

fn an_expired_token_mid_run_is_refreshed_exactly_once() {
    let amc = Amc::logged_in();
    amc.instances(&["amcexpire01"]);
    amc.env.run(&["instance", "test", "amcexpire01"]).ok();
    assert_eq!(amc.fake.token_grants(), 1, "the login's token is reused");

    // AMC stops accepting the token (it expired early, or was revoked).
    amc.fake.expire_tokens();
    amc.fake.clear_requests();
    let r = amc.env.json(&["instance", "test", "amcexpire01"]);
    assert_eq!(r["status"], "HEALTHY");
    let log: Vec<(String, u16)> = amc
        .fake
        .requests()
        .iter()
        .map(|r| (r.path.clone(), r.status))
        .collect();
    assert_eq!(
        log,
        [
            ("/amc/instances/amcexpire01".to_owned(), 401),
            ("/auth/o2/token".to_owned(), 200),
            ("/amc/instances/amcexpire01".to_owned(), 200),
        ]
    );
    assert_eq!(amc.fake.token_grants(), 2);
    // The new token was cached: the next process uses it without a refresh.
    amc.env.run(&["instance", "test", "amcexpire01"]).ok();
    assert_eq!(amc.fake.token_grants(), 2);
    assert_eq!(
        access_tokens_seen(&amc.fake).len(),
        2,
        "the refused one and the new one"
    );
}

fn an_expired_token_during_a_bulk_check_is_refreshed_once_for_all() {
    let amc = Amc::logged_in();
    let ids: Vec<String> = (0..24).map(|n| format!("amcbulk{n:04}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    amc.instances(&ids);
    amc.fake.set_latency(Duration::from_millis(20));
    amc.fake.expire_tokens();
    let out = amc
        .env
        .run(&[
            "health",
            "check",
            "--all",
            "--concurrency",
            "8",
            "--rate",
            "1000",
            "-o",
            "json",
        ])
        .ok();
    assert_eq!(out.json()["summary"]["healthy"], 24);
    assert_eq!(amc.fake.token_grants(), 2, "the login's and one refresh");
    let refused = amc
        .amc_requests()
        .iter()
        .filter(|r| r.status == 401)
        .count();
    assert!(
        (1..=8).contains(&refused),
        "only calls in flight were refused: {refused}"
    );
}

fn a_bulk_check_with_credentials_from_the_environment_refreshes_once() {
    let amc = Amc::new();
    let ids: Vec<String> = (0..16).map(|n| format!("amcenvcred{n:02}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    amc.instances(&ids);
    amc.fake.set_latency(Duration::from_millis(20));
    let out = amc
        .env
        .command(
            "alice",
            &[
                "health",
                "check",
                "--all",
                "--concurrency",
                "8",
                "--rate",
                "1000",
            ],
        )
        .env("AMCCTL_CLIENT_ID", CLIENT_ID)
        .env("AMCCTL_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMCCTL_REFRESH_TOKEN", REFRESH_TOKEN)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        amc.fake.token_grants(),
        1,
        "8 checks at once wait for one refresh"
    );
    assert_eq!(access_tokens_seen(&amc.fake).len(), 1);
    // Nothing was stored: environment credentials are not a login.
    assert_eq!(amc.env.probe().count("credentials"), 0);
}

fn throttling_waits_as_long_as_retry_after_says() {
    let amc = Amc::logged_in();
    amc.instances(&["amcthrottle"]);
    amc.fake.push_faults(
        Route::Instance("amcthrottle".into()),
        [Fault::Throttle {
            retry_after: Some(1),
        }],
    );
    let r = amc.env.json(&["instance", "test", "amcthrottle"]);
    assert_eq!(r["status"], "HEALTHY");
    assert_eq!(r["attempts"], 2);
    let calls = amc.instance_requests("amcthrottle");
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 200]
    );
    let waited = calls[1].at.duration_since(calls[0].at);
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");
    assert!(
        waited < Duration::from_secs(5),
        "but not much later: {waited:?}"
    );
    assert_eq!(amc.fake.throttled(), 1);

    // Throttled for good: exit 6 after the retries, and the last answer named.
    amc.fake.on_instance(
        "amcthrottle",
        Fault::Throttle {
            retry_after: Some(1),
        },
    );
    let out = amc
        .env
        .run(&["instance", "test", "amcthrottle", "--retries", "1"])
        .fails(6, &["HTTP 429", "2 attempts"]);
    assert!(out.stdout.contains("ERROR"), "{}", out.stdout);
}

fn transient_failures_are_retried_and_the_attempts_reported() {
    let amc = Amc::logged_in();
    amc.instances(&["amcretry001"]);
    for (fault, first) in [
        (Fault::Status(502), 502),
        (Fault::Status(504), 504),
        (Fault::Reset, 0),
    ] {
        amc.fake.clear_requests();
        amc.fake
            .push_faults(Route::Instance("amcretry001".into()), [fault]);
        let r = amc.env.json(&["instance", "test", "amcretry001"]);
        assert_eq!(
            (
                r["status"].as_str(),
                r["attempts"].as_u64(),
                r["http_status"].as_u64()
            ),
            (Some("HEALTHY"), Some(2), Some(200))
        );
        let statuses: Vec<u16> = amc
            .instance_requests("amcretry001")
            .iter()
            .map(|c| c.status)
            .collect();
        assert_eq!(statuses, [first, 200]);
    }
    // A 4xx other than 401 and 429 is never retried.
    amc.fake.clear_requests();
    amc.fake
        .push_faults(Route::Instance("amcretry001".into()), [Fault::Status(400)]);
    amc.env
        .run(&["instance", "test", "amcretry001"])
        .fails(6, &["HTTP 400", "1 attempt"]);
    assert_eq!(amc.instance_requests("amcretry001").len(), 1);
}

/// One persistent fault, through `instance test` (exit 6, a single ERROR
/// result on stdout) and `health check` (exit 10, the same verdict stored).
#[track_caller]
fn persistent(amc: &Amc, id: &str, fault: Fault, extra: &[&str], needle: &str, requests: usize) {
    amc.fake.on_instance(id, fault);
    amc.fake.clear_requests();
    let mut args = vec!["instance", "test", id, "-o", "json"];
    args.extend_from_slice(extra);
    let out = amc.env.run(&args).fails(6, &[needle]);
    let r: Value = out.json();
    assert_eq!(r["status"], "ERROR", "{r}");
    assert!(r["error"].as_str().unwrap().contains(needle), "{r}");
    assert_eq!(r["attempts"].as_u64(), Some(requests as u64), "{r}");
    assert_eq!(amc.instance_requests(id).len(), requests);
    assert_eq!(
        amc.env.json(&["instance", "show", id])["health"]["status"],
        "UNKNOWN",
        "test stores nothing"
    );

    let mut args = vec!["health", "check", id, "-o", "json"];
    args.extend_from_slice(extra);
    let out = amc.env.run(&args).code(10);
    let doc = out.json();
    assert_eq!(doc["summary"]["error"], 1, "{doc}");
    assert!(
        doc["results"][0]["error"]
            .as_str()
            .unwrap()
            .contains(needle),
        "{doc}"
    );
    let show = amc.env.json(&["instance", "show", id]);
    assert_eq!(
        (show["status"].as_str(), show["health"]["status"].as_str()),
        (Some("ERROR"), Some("ERROR")),
        "{show}"
    );
}

fn persistent_failures_exit_6_on_test_and_10_on_check() {
    let amc = Amc::logged_in();
    let ids = [
        "amcfail0001",
        "amcfail0002",
        "amcfail0003",
        "amcfail0004",
        "amcfail0005",
    ];
    amc.instances(&ids);
    persistent(
        &amc,
        ids[0],
        Fault::Status(500),
        &["--retries", "2"],
        "HTTP 500",
        3,
    );
    persistent(
        &amc,
        ids[1],
        Fault::Reset,
        &["--retries", "1"],
        "network error",
        2,
    );
    persistent(
        &amc,
        ids[2],
        Fault::Delay(Duration::from_secs(3)),
        &["--retries", "1", "--timeout", "300ms"],
        "timed out after 300ms",
        2,
    );
    persistent(&amc, ids[3], Fault::MalformedJson, &[], "malformed JSON", 1);
    persistent(&amc, ids[4], Fault::TruncatedJson, &[], "malformed JSON", 1);
}

fn the_access_token_is_cached_across_fifty_processes() {
    let amc = Amc::logged_in();
    amc.instances(&["amccache001"]);
    for _ in 0..50 {
        amc.env.run(&["instance", "test", "amccache001", "-q"]).ok();
    }
    assert_eq!(
        amc.fake.token_grants(),
        1,
        "the login's refresh is the only one"
    );
    let calls = amc.instance_requests("amccache001");
    assert_eq!(calls.len(), 50);
    assert!(calls.iter().all(|c| c.status == 200));
    assert_eq!(
        access_tokens_seen(&amc.fake).len(),
        1,
        "one token for all 50"
    );

    // A cached token within 60 s of its end is not used: the next process
    // renews it once, and caches the new one for the processes after it.
    let amc = Amc::new();
    amc.fake.set_token_lifetime(50);
    amc.login().ok();
    amc.fake.set_token_lifetime(3600);
    amc.instances(&["amccache002"]);
    for _ in 0..5 {
        amc.env.run(&["instance", "test", "amccache002", "-q"]).ok();
    }
    assert_eq!(
        amc.fake.token_grants(),
        2,
        "the short-lived token was renewed once"
    );
}

// ---------------------------------------------------------------- where calls go

/// The prefixes of [`routed`]: the API override, an instance's
/// `apiEndpoint`, the token endpoint.
const API: &str = "/amc-api";
const ENDPOINT: &str = "/instance-api";
const LWA: &str = "/lwa";
/// The instance AMC gives an `apiEndpoint`, and the one it gives none.
const WITH_ENDPOINT: &str = "amcendpoint1";
const WITHOUT_ENDPOINT: &str = "amcnoendpt01";

/// A fake AMC serving under three prefixes, one per base URL the client
/// has, and alice logged in with `AMCCTL_API_URL` and `AMCCTL_AUTH_URL`
/// pointing at the first and the last: which prefix a request came in
/// under tells which base URL it was sent to.
fn routed() -> (FakeAmc, TestEnv) {
    let fake = FakeAmc::start_under(&[API, ENDPOINT, LWA]);
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN);
    fake.add_account(ENTITY, ACCOUNT_NAME, US);
    fake.add_instance(ENTITY, WITH_ENDPOINT, "with an endpoint");
    fake.add_instance(ENTITY, WITHOUT_ENDPOINT, "without one");
    fake.set_api_endpoint(WITH_ENDPOINT, Some(&fake.url_under(ENDPOINT)));
    fake.set_api_endpoint(WITHOUT_ENDPOINT, None);
    let env = TestEnv::new()
        .with_env("AMCCTL_API_URL", fake.url_under(API))
        .with_env(
            "AMCCTL_AUTH_URL",
            format!("{}/auth/o2/token", fake.url_under(LWA)),
        );
    env.create_account(ENTITY, ACCOUNT_NAME);
    login_with(&env, &[], CLIENT_SECRET, REFRESH_TOKEN).ok();
    (fake, env)
}

/// Where each request the fake received went: (prefix, method, path below it).
fn routes(fake: &FakeAmc) -> Vec<(Option<String>, String, String)> {
    fake.requests()
        .iter()
        .map(|r| {
            (
                r.mount.clone(),
                r.method.clone(),
                r.resource().unwrap_or(&r.path).to_owned(),
            )
        })
        .collect()
}

/// The prefix a call should have gone to: the token call to the token
/// endpoint; the reporting calls of an instance with an `apiEndpoint` to
/// it; everything else, administration calls above all, to the API URL.
fn expected_prefix(resource: &str) -> &'static str {
    if resource == "/auth/o2/token" {
        LWA
    } else if resource.starts_with(&format!("/amc/reporting/{WITH_ENDPOINT}/")) {
        ENDPOINT
    } else {
        API
    }
}

fn each_call_goes_to_its_own_base_url_path_included() {
    let (fake, env) = routed();
    // The login's refresh went to the token URL, path and all.
    assert_eq!(
        routes(&fake),
        [(
            Some(LWA.to_owned()),
            "POST".to_owned(),
            "/auth/o2/token".to_owned()
        )]
    );
    env.run(&["account", "discover"]).ok();
    env.run(&["instance", "discover"]).ok();
    let listed = env.json(&["instance", "list"]);
    let endpoints: Vec<(String, Value)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["instance_id"].as_str().unwrap().to_owned(),
                i["api_endpoint"].clone(),
            )
        })
        .collect();
    assert_eq!(
        endpoints,
        [
            (
                WITH_ENDPOINT.to_owned(),
                Value::String(fake.url_under(ENDPOINT))
            ),
            (WITHOUT_ENDPOINT.to_owned(), Value::Null),
        ],
        "discovery keeps the apiEndpoint AMC gives"
    );
    env.run(&["instance", "test", WITH_ENDPOINT]).ok();
    env.run(&["health", "check", "--all", "--deep"]).ok();
    env.run(&["usage", "sync", "--all"]).ok();
    env.run(&["instance", "advertisers", WITH_ENDPOINT]).ok();

    let seen = routes(&fake);
    for (mount, method, resource) in &seen {
        assert_eq!(
            mount.as_deref(),
            Some(expected_prefix(resource)),
            "{method} {resource} went to the wrong base URL; every request: {seen:#?}"
        );
    }
    for r in fake.requests() {
        assert_eq!(r.status, 200, "{} {}", r.method, r.path);
    }
    // Every kind of call was made, so the check above covered each.
    let reporting = |id: &str, list: &str| format!("/amc/reporting/{id}/{list}");
    let wanted = [
        "/auth/o2/token".to_owned(),
        "/amc/accounts".to_owned(),
        "/amc/instances".to_owned(),
        format!("/amc/instances/{WITH_ENDPOINT}"),
        format!("/amc/instances/{WITHOUT_ENDPOINT}"),
        format!("/amc/instances/{WITH_ENDPOINT}/advertisers"),
        format!("/amc/instances/{WITHOUT_ENDPOINT}/advertisers"),
        reporting(WITH_ENDPOINT, "workflows"),
        reporting(WITH_ENDPOINT, "workflowExecutions"),
        reporting(WITH_ENDPOINT, "schedules"),
        reporting(WITHOUT_ENDPOINT, "workflows"),
        reporting(WITHOUT_ENDPOINT, "workflowExecutions"),
        reporting(WITHOUT_ENDPOINT, "schedules"),
    ];
    for w in &wanted {
        assert!(
            seen.iter().any(|(_, _, resource)| resource == w),
            "no call of {w}: {seen:#?}"
        );
    }
}

fn a_trailing_slash_on_the_api_url_keeps_its_path() {
    let (fake, env) = routed();
    fake.clear_requests();
    let slashed = format!("{}/", fake.url_under(API));
    env.run_env(
        "alice",
        &["instance", "discover"],
        &[("AMCCTL_API_URL", &slashed)],
    )
    .ok();
    assert_eq!(
        routes(&fake),
        [(
            Some(API.to_owned()),
            "GET".to_owned(),
            "/amc/instances".to_owned()
        )]
    );
}

// ---------------------------------------------------------------- the key

fn a_wrong_key_is_exit_8_naming_where_it_was_looked_for() {
    let amc = Amc::logged_in();
    amc.instances(&["amckey00001"]);
    let other = fernet::Fernet::generate_key();
    let before = amc.env.dump();
    amc.fake.clear_requests();
    for args in [
        &["instance", "test", "amckey00001"][..],
        &["health", "check", "--all"],
        &["auth", "status"],
        &["instance", "discover"],
    ] {
        let out = amc
            .env
            .command("alice", args)
            .env("AMCCTL_KEY", &other)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{args:?}: {stderr}");
        assert!(
            stderr.contains("AMCCTL_KEY"),
            "{args:?} names the variable: {stderr}"
        );
        assert!(!stderr.contains(&other), "never the key itself: {stderr}");
    }
    amc.env
        .assert_unchanged(&before, "commands with the wrong key");
    assert!(
        amc.fake.requests().is_empty(),
        "nothing sent with undecryptable credentials"
    );

    // A malformed key is exit 8 as well.
    let out = amc
        .env
        .command("alice", &["auth", "status"])
        .env("AMCCTL_KEY", "not-a-key")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    assert!(String::from_utf8_lossy(&out.stderr).contains("malformed"));

    // The right key in the variable works like the key file.
    let right = std::fs::read_to_string(amc.env.home().join("key")).unwrap();
    let out = amc
        .env
        .command("alice", &["instance", "test", "amckey00001"])
        .env("AMCCTL_KEY", right.trim())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn a_missing_key_file_with_stored_secrets_is_exit_8() {
    let amc = Amc::logged_in();
    amc.instances(&["amckey00002"]);
    let key = amc.env.home().join("key");
    std::fs::remove_file(&key).unwrap();
    let before = amc.env.dump();
    for args in [
        &["instance", "test", "amckey00002"][..],
        &["auth", "status"],
        &["health", "check", "--all"],
    ] {
        amc.env.run(args).fails(
            8,
            &[
                "no encryption key",
                "AMCCTL_KEY",
                &key.display().to_string(),
            ],
        );
    }
    amc.env
        .assert_unchanged(&before, "commands without the key");
    assert!(!key.exists(), "no new key made behind the user's back");
    // Rotation needs the key it rotates from.
    amc.env
        .run(&["key", "rotate", "--yes"])
        .fails(8, &["no encryption key"]);
    // The registry itself needs no key.
    amc.env.run(&["instance", "list"]).ok();
}

fn key_rotate_reencrypts_every_secret() {
    let amc = Amc::logged_in();
    amc.instances(&["amcrotate01"]);
    let key = amc.env.home().join("key");
    let old_key = std::fs::read_to_string(&key).unwrap();
    let before = amc.env.probe().credential_ciphertexts();

    amc.env.run(&["key", "rotate"]).fails(2, &["--yes"]);
    assert_eq!(
        std::fs::read_to_string(&key).unwrap(),
        old_key,
        "not without --yes"
    );

    let out = amc.env.run(&["key", "rotate", "--yes"]).ok();
    assert!(
        out.stderr.contains("3 secret(s) re-encrypted"),
        "{}",
        out.stderr
    );
    let new_key = std::fs::read_to_string(&key).unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(
        std::fs::read_to_string(amc.env.home().join("key.old")).unwrap(),
        old_key
    );
    let after = amc.env.probe().credential_ciphertexts();
    assert_eq!(after.len(), 1);
    for (b, a) in before[0].iter().zip(&after[0]) {
        assert_ne!(b, a, "every secret re-encrypted");
    }
    // Still works, with the cached access token (no refresh).
    amc.env.run(&["instance", "test", "amcrotate01"]).ok();
    assert_eq!(amc.env.json(&["auth", "status"])["refresh_token"], "Atzr|…");
    assert_eq!(amc.fake.token_grants(), 1);
    // The old key no longer opens them.
    let out = amc
        .env
        .command("alice", &["auth", "status"])
        .env("AMCCTL_KEY", old_key.trim())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    // And a refresh with the re-encrypted refresh token works.
    amc.fake.expire_tokens();
    amc.env.run(&["instance", "test", "amcrotate01"]).ok();
    assert_eq!(amc.fake.token_grants(), 2);
    // Rotation refuses to fight AMCCTL_KEY.
    let out = amc
        .env
        .command("alice", &["key", "rotate", "--yes"])
        .env("AMCCTL_KEY", new_key.trim())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `auth login` as `user` (who must exist).
fn login_as(amc: &Amc, user: &str, extra_env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = amc.env.command(
        user,
        &[
            "auth",
            "login",
            "--client-id",
            CLIENT_ID,
            "--client-secret-stdin",
            "--refresh-token-stdin",
        ],
    );
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{CLIENT_SECRET}\n{REFRESH_TOKEN}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn a_login_needs_only_the_users_own_key() {
    let amc = Amc::new();
    // bob logged in first; the key file is his secrets' key.
    assert_eq!(login_as(&amc, "bob", &[]).status.code(), Some(0));
    let key = amc.env.home().join("key");
    let bobs_key = std::fs::read_to_string(&key).unwrap();
    let bobs_row = || {
        amc.env.probe().rows(
            "SELECT c.client_secret_enc, c.refresh_token_enc, c.access_token_enc, c.key_fingerprint
             FROM credentials c JOIN users u ON u.id = c.user_id WHERE u.name = 'bob'",
        )
    };
    let bob_before = bobs_row();
    let bobs_fp = bob_before[0][3].trim_matches('"').to_owned();
    assert!(bobs_fp.starts_with("fp:"), "{bobs_fp}");

    // Each user's secrets are under their own key: with the key file gone,
    // alice (who has no secret yet) logs in under a new key of hers.
    std::fs::remove_file(&key).unwrap();
    let out = login_as(&amc, "alice", &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("created a new encryption key"), "{stderr}");
    assert_eq!(bobs_row(), bob_before, "bob's login untouched");

    // This home's key is now alice's: bob's login is named as under
    // another key, with both fingerprints, and nothing is decrypted.
    let before = amc.env.dump();
    let out = amc.env.run_as("bob", &["auth", "status"]);
    let out = out.fails(
        8,
        &[&bobs_fp, "the stored login of profile default", "hint:"],
    );
    assert!(out.stderr.contains("not this key (fp:"), "{}", out.stderr);
    amc.env.assert_unchanged(&before, "bob with alice's key");
    // His own key still opens it.
    let out = amc
        .env
        .command("bob", &["auth", "status"])
        .env("AMCCTL_KEY", bobs_key.trim())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A second profile of alice's must be under her key, not another.
    let other = fernet::Fernet::generate_key();
    let out = login_as(
        &amc,
        "alice",
        &[("AMCCTL_KEY", &other), ("AMCCTL_PROFILE", "second")],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("the stored login of profile default") && stderr.contains("AMCCTL_KEY"),
        "{stderr}"
    );
    assert!(!stderr.contains(&other), "never the key itself: {stderr}");
    amc.env
        .assert_unchanged(&before, "a login with another key than the user's");

    // Rotation re-encrypts alice's secrets only.
    let out = amc.env.run(&["key", "rotate", "--yes"]).ok();
    assert!(
        out.stderr.contains("3 secret(s) re-encrypted"),
        "{}",
        out.stderr
    );
    assert_eq!(
        bobs_row(),
        bob_before,
        "bob's login untouched by the rotation"
    );
}

fn a_lone_user_who_lost_the_key_can_log_in_again() {
    let amc = Amc::logged_in();
    std::fs::remove_file(amc.env.home().join("key")).unwrap();
    amc.env
        .run(&["auth", "status"])
        .fails(8, &["no encryption key"]);
    // Her own credentials are the only secret, and a login replaces them.
    let out = amc.login().ok();
    assert!(
        out.stderr.contains("created a new encryption key"),
        "{}",
        out.stderr
    );
    amc.env.json(&["auth", "status"]);
}

fn environment_credentials_under_another_key_leave_the_stored_login_alone() {
    let amc = Amc::logged_in();
    amc.instances(&["amcenvkey01"]);
    let before = amc.env.dump();
    let other = fernet::Fernet::generate_key();
    let out = amc
        .env
        .command("alice", &["instance", "test", "amcenvkey01"])
        .env("AMCCTL_CLIENT_ID", CLIENT_ID)
        .env("AMCCTL_CLIENT_SECRET", CLIENT_SECRET)
        .env("AMCCTL_REFRESH_TOKEN", REFRESH_TOKEN)
        .env("AMCCTL_KEY", &other)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    amc.env.assert_unchanged(
        &before,
        "no token cached under a key the store is not under",
    );
    amc.env.run(&["key", "rotate", "--yes"]).ok();
}

crate::on_both_backends!(
    login_proves_the_credentials_and_stores_them_encrypted,
    refused_credentials_exit_7_with_a_hint_and_store_nothing,
    credentials_come_from_the_environment_too,
    logout_forgets_the_credentials,
    create_validates_against_amc_and_saves_active,
    create_refuses_what_amc_denies_or_does_not_know,
    create_gives_up_on_persistent_server_errors_resets_and_timeouts,
    create_retries_a_transient_failure_and_saves_active,
    create_with_a_refused_refresh_token_is_exit_7,
    create_without_any_credentials_is_exit_7_and_skip_validation_needs_none,
    discovery_follows_every_page_and_reruns_are_idempotent,
    an_expired_token_mid_run_is_refreshed_exactly_once,
    an_expired_token_during_a_bulk_check_is_refreshed_once_for_all,
    a_bulk_check_with_credentials_from_the_environment_refreshes_once,
    throttling_waits_as_long_as_retry_after_says,
    transient_failures_are_retried_and_the_attempts_reported,
    persistent_failures_exit_6_on_test_and_10_on_check,
    the_access_token_is_cached_across_fifty_processes,
    each_call_goes_to_its_own_base_url_path_included,
    a_trailing_slash_on_the_api_url_keeps_its_path,
    a_wrong_key_is_exit_8_naming_where_it_was_looked_for,
    a_missing_key_file_with_stored_secrets_is_exit_8,
    key_rotate_reencrypts_every_secret,
    a_login_needs_only_the_users_own_key,
    a_lone_user_who_lost_the_key_can_log_in_again,
    environment_credentials_under_another_key_leave_the_stored_login_alone,
);
