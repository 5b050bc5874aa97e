//! No secret in clear, anywhere a user or an attacker with the files could
//! look (SECURITY.md says what is stored how): the store's bytes (database and WAL), every output
//! format of every command that shows credentials or instances, error
//! messages, and `-v`/`-vv` logs of logins, checks and refreshes.
//!
//! The client secret and refresh token are unique markers; the access
//! tokens are the fake's, read back from the `Authorization` headers it
//! received.

use crate::support::amc::{
    ACCOUNT_NAME, Amc, CLIENT_SECRET, ENTITY, REFRESH_TOKEN, access_tokens_seen, login_with,
};
use fake_amc::{Fault, Route};

/// What was shown: a label (the command) and the text.
type Shown = Vec<(String, String)>;

/// Runs `args` in every output format and keeps stdout and stderr.
fn every_format(amc: &Amc, shown: &mut Shown, args: &[&str]) {
    for format in ["table", "json", "ndjson", "csv"] {
        let mut full = args.to_vec();
        full.extend(["-o", format]);
        keep(amc, shown, &full);
    }
}

/// Runs `args` once and keeps stdout and stderr, whatever the exit code.
fn keep(amc: &Amc, shown: &mut Shown, args: &[&str]) -> crate::support::Output {
    let out = amc.env.run(args);
    assert!(
        out.code != 1 && out.code != -1,
        "{args:?} crashed: {}\n{}",
        out.code,
        out.stderr
    );
    shown.push((format!("stdout of {args:?}"), out.stdout.clone()));
    shown.push((format!("stderr of {args:?}"), out.stderr.clone()));
    out
}

/// The secrets to look for, in full and by a distinctive middle part (a
/// secret cut at either end is still a leak).
fn needles(amc: &Amc) -> Vec<String> {
    let mut n = vec![
        CLIENT_SECRET.to_owned(),
        "MARKER-7f3a9c1e".to_owned(),
        REFRESH_TOKEN.to_owned(),
        "refreshMARKER".to_owned(),
    ];
    let tokens = access_tokens_seen(&amc.fake);
    assert!(
        tokens.len() >= 2,
        "several access tokens were issued and used: {tokens:?}"
    );
    for t in tokens {
        let body = t.strip_prefix("Atza|").expect("an Atza| token").to_owned();
        n.push(body[8..40].to_owned());
        n.push(t);
    }
    // The key is a secret too.
    let key = std::fs::read_to_string(amc.env.home().join("key")).unwrap();
    n.push(key.trim().to_owned());
    n
}

#[track_caller]
fn assert_clean(what: &str, text: &[u8], needles: &[String]) {
    for n in needles {
        assert!(
            !text.windows(n.len()).any(|w| w == n.as_bytes()),
            "{what} contains the secret {n:?}:\n{}",
            String::from_utf8_lossy(text)
        );
    }
}

fn no_secret_in_the_store_outputs_errors_or_logs() {
    let amc = Amc::new();
    let mut shown: Shown = Vec::new();

    // Logins, verbose, a refused one included.
    for v in ["-v", "-vv"] {
        let out = login_with(&amc.env, &[v], CLIENT_SECRET, REFRESH_TOKEN).ok();
        shown.push((format!("login {v}"), out.stderr + &out.stdout));
        let out = login_with(
            &amc.env,
            &[v, "-o", "json"],
            CLIENT_SECRET,
            "Atzr|IwEBIrefreshMARKERwrong",
        )
        .code(7);
        shown.push((format!("refused login {v}"), out.stderr + &out.stdout));
        let out = login_with(&amc.env, &[v], "cs-MARKER-7f3a9c1e-wrong", REFRESH_TOKEN).code(7);
        shown.push((format!("refused secret {v}"), out.stderr + &out.stdout));
    }
    login_with(&amc.env, &[], CLIENT_SECRET, REFRESH_TOKEN).ok();

    // A fleet with a healthy, an unhealthy and an erroring instance.
    amc.instances(&["amcsecret01", "amcsecret02", "amcsecret03"]);
    amc.fake.on_instance("amcsecret02", Fault::Status(404));
    amc.fake.on_instance("amcsecret03", Fault::Status(503));
    amc.fake.add_instance(ENTITY, "amcsecret04", "validated");
    keep(
        &amc,
        &mut shown,
        &[
            "instance",
            "create",
            "--instance-id",
            "amcsecret04",
            "--account",
            ACCOUNT_NAME,
            "-o",
            "json",
        ],
    );

    // Checks and tests, verbose, with a refresh in the middle of one.
    for v in ["-v", "-vv"] {
        amc.fake.expire_tokens();
        keep(
            &amc,
            &mut shown,
            &["health", "check", "--all", "--retries", "1", v],
        );
        amc.fake.expire_tokens();
        keep(&amc, &mut shown, &["instance", "test", "amcsecret01", v]);
        keep(
            &amc,
            &mut shown,
            &["instance", "test", "amcsecret03", "--retries", "1", v],
        );
        amc.fake.push_faults(Route::Token, [Fault::Status(500)]);
        amc.fake.expire_tokens();
        keep(&amc, &mut shown, &["instance", "test", "amcsecret02", v]);
        keep(&amc, &mut shown, &["account", "discover", v]);
        keep(&amc, &mut shown, &["instance", "discover", v]);
        keep(&amc, &mut shown, &["auth", "status", v]);
    }

    // Every command that shows credentials or instances, in every format.
    let commands: [&[&str]; 14] = [
        &["auth", "status"],
        &["instance", "list"],
        &["instance", "list", "--all-users"],
        &["instance", "show", "amcsecret01"],
        &["instance", "export"],
        &["instance", "test", "amcsecret01"],
        &["instance", "test", "amcsecret02"],
        &["health", "check", "--all", "--retries", "0"],
        &["health", "status"],
        &["health", "history", "amcsecret03"],
        &["health", "report"],
        &["account", "list"],
        &["account", "show", ENTITY],
        &["brand", "list"],
    ];
    for args in commands {
        every_format(&amc, &mut shown, args);
    }
    keep(&amc, &mut shown, &["instance", "export", "--format", "csv"]);
    keep(
        &amc,
        &mut shown,
        &["health", "check", "--all", "--nagios", "--retries", "0"],
    );
    keep(&amc, &mut shown, &["key", "path"]);
    keep(&amc, &mut shown, &["key", "rotate", "--yes", "-vv"]);
    every_format(&amc, &mut shown, &["auth", "status"]);
    keep(&amc, &mut shown, &["auth", "logout", "-vv"]);

    let needles = needles(&amc);
    for (what, text) in &shown {
        assert_clean(what, text.as_bytes(), &needles);
    }
    // Outputs did show what is safe to show.
    let all: String = shown.iter().map(|(_, t)| t.as_str()).collect();
    assert!(all.contains("Atzr|…"), "the refresh token, cut short");

    // The store's files, byte for byte, while credentials were stored and after.
    for file in ["amcctl.db", "amcctl.db-wal", "amcctl.db-shm"] {
        let path = amc.env.home().join(file);
        if let Ok(bytes) = std::fs::read(&path) {
            assert_clean(file, &bytes, &needles);
        }
    }
}

#[test]
fn the_store_files_hold_only_ciphertext_while_logged_in() {
    let amc = Amc::logged_in();
    amc.instances(&["amcstored01"]);
    // A reader held open keeps the WAL from being folded into the database
    // and removed when amcctl closes the store, so there is a WAL to read.
    let keeper = amc.env.probe().hold_open();
    for _ in 0..3 {
        amc.fake.expire_tokens();
        amc.env.run(&["instance", "test", "amcstored01"]).ok();
    }
    // Before any checkpoint and after one: the WAL first, then the database.
    let home = amc.env.home();
    let needles = needles(&amc);
    let wal = std::fs::read(home.join("amcctl.db-wal")).expect("the WAL of a store in use");
    assert!(!wal.is_empty(), "the refreshed tokens went through the WAL");
    assert_clean("the WAL", &wal, &needles);
    keeper.checkpoint();
    assert_clean(
        "the database",
        &std::fs::read(home.join("amcctl.db")).unwrap(),
        &needles,
    );
    // The credentials are there, as Fernet tokens.
    let rows = amc.env.probe().credential_ciphertexts();
    assert!(
        rows[0].iter().all(|v| v.starts_with("\"gAAAAA")),
        "{rows:?}"
    );
}

crate::on_both_backends!(no_secret_in_the_store_outputs_errors_or_logs,);
