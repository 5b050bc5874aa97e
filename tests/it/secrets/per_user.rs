//! One key per user in a shared store: two people, each with a home and a
//! key of their own, use one store (the same SQLite file, or the same team
//! database). Each one's secrets are under their own key, recorded by its
//! fingerprint beside each ciphertext; a rotation re-encrypts only the
//! rotating user's secrets; a secret under a key that is not the one in use
//! is exit 8 naming both fingerprints; the store holds fingerprints, never
//! keys; and an interrupted rotation is settled by the acting user's own
//! secrets, whatever other keys the store holds.

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::support::TestEnv;
use crate::support::amc::{ACCOUNT_NAME, Amc, CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, login_with};

/// Bob's client (his own grant, so the fake tells the two apart).
const BOB_CLIENT: &str = "amzn1.application-oa2-client.bobperuser";
const BOB_SECRET: &str = "cs-BOBMARKER-2b4d6f8a0c1e3579";
const BOB_REFRESH: &str = "Atzr|IwEBIbobMARKER1a2b3c4d5e6f";
/// Alice's instance (imported by the harness) and bob's.
const ALICES: &str = "amcperuser01";
const BOBS: &str = "amcperuser02";

/// The fingerprint of a key as the store must record it, computed here
/// from the key text rather than by amcctl: `fp:` and the first 16 hex
/// digits of the SHA-256 of the key's 32 bytes.
fn fingerprint(key: &str) -> String {
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(key.trim())
        .expect("a Fernet key is url-safe base64");
    assert_eq!(raw.len(), 32, "a Fernet key is 32 bytes");
    let hex: String = Sha256::digest(&raw)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("fp:{hex}")
}

/// The key file of a home, as text.
fn key_of(env: &TestEnv) -> String {
    std::fs::read_to_string(env.home().join("key"))
        .expect("the home's key file")
        .trim()
        .to_owned()
}

/// Alice in the harness's home with her instance, and bob in a second home
/// of his own on the same store (the SQLite file of alice's home through
/// `AMCCTL_DB`, or the same team database), with his own instance and
/// client in the fake; every command of his home runs as bob. Nobody is
/// logged in yet.
fn two_homes() -> (Amc, TestEnv) {
    let amc = Amc::new();
    amc.instances(&[ALICES]);
    amc.fake.add_client(BOB_CLIENT, BOB_SECRET, BOB_REFRESH);
    amc.fake
        .add_instance(crate::support::amc::ENTITY, BOBS, "bob's in AMC");
    let bob = TestEnv::new()
        .with_fake_amc(&amc.fake)
        .with_env("AMCCTL_DB", amc.env.db_location())
        .with_env("USER", "bob");
    bob.create_instance_as("bob", BOBS, "Bob Main", ACCOUNT_NAME, &[]);
    assert_ne!(bob.home(), amc.env.home());
    (amc, bob)
}

/// Both logged in, each in their own home, so each has made a key.
fn both_logged_in() -> (Amc, TestEnv) {
    let (amc, bob) = two_homes();
    login_with(&amc.env, &[], CLIENT_SECRET, REFRESH_TOKEN).ok();
    let out = bob.login("bob", BOB_CLIENT, BOB_SECRET, BOB_REFRESH).ok();
    assert!(
        out.stderr.contains("created a new encryption key"),
        "bob's home makes a key of its own: {}",
        out.stderr
    );
    assert_ne!(key_of(&amc.env), key_of(&bob));
    (amc, bob)
}

/// `user`'s stored secrets, byte for byte, with their fingerprints: the
/// login's three ciphertexts and its fingerprint, then the settings of
/// each of the user's instances and their fingerprint.
fn rows_of(env: &TestEnv, user: &str) -> Vec<Vec<String>> {
    let probe = env.probe();
    let mut rows = probe.rows(&format!(
        "SELECT c.profile, c.client_secret_enc, c.refresh_token_enc,
             coalesce(c.access_token_enc, 'none'), coalesce(c.key_fingerprint, 'none')
         FROM credentials c JOIN users u ON u.id = c.user_id
         WHERE u.name = '{user}' ORDER BY c.profile"
    ));
    rows.extend(probe.rows(&format!(
        "SELECT i.instance_id, coalesce(i.encrypted_config, 'none'),
             coalesce(i.settings_key_fingerprint, 'none')
         FROM amc_instances i JOIN users u ON u.id = i.user_id
         WHERE u.name = '{user}' ORDER BY i.instance_id"
    )));
    rows
}

/// The quoted text [`crate::support::Probe::rows`] renders `text` as.
fn q(text: &str) -> String {
    format!("{text:?}")
}

fn each_user_logs_in_and_rotates_under_their_own_key() {
    let (amc, bob) = both_logged_in();
    let alice = &amc.env;
    // Settings for each, each sealed with their owner's key.
    alice
        .run_stdin(
            &["instance", "config", "set", ALICES, "api", "--value-stdin"],
            "alice-setting",
        )
        .ok();
    bob.run_stdin(
        &["instance", "config", "set", BOBS, "api", "--value-stdin"],
        "bob-setting",
    )
    .ok();

    // Each secret records its key's fingerprint.
    let (key_a, key_b) = (key_of(alice), key_of(&bob));
    let (fp_a, fp_b) = (fingerprint(&key_a), fingerprint(&key_b));
    let alices = rows_of(alice, "alice");
    let bobs = rows_of(alice, "bob");
    assert_eq!(alices[0][4], q(&fp_a), "{alices:?}");
    assert_eq!(alices[1][2], q(&fp_a), "{alices:?}");
    assert_eq!(bobs[0][4], q(&fp_b), "{bobs:?}");
    assert_eq!(bobs[1][2], q(&fp_b), "{bobs:?}");
    for row in alices.iter().chain(&bobs) {
        assert!(row[1].starts_with("\"gAAAAA"), "a Fernet token: {row:?}");
    }

    // Both work, each with their own key, in their own home.
    alice.run(&["instance", "test", ALICES]).ok();
    alice.run(&["auth", "status"]).ok();
    bob.run_as("bob", &["instance", "test", BOBS]).ok();
    bob.run_as("bob", &["auth", "status"]).ok();
    let got = bob
        .run_as("bob", &["instance", "config", "get", BOBS, "api"])
        .ok();
    assert_eq!(got.stdout, "bob-setting\n");

    // alice rotates: her login and settings, nothing of bob's.
    let bobs = rows_of(alice, "bob");
    let alices = rows_of(alice, "alice");
    let out = alice.run(&["key", "rotate", "--yes"]).ok();
    assert!(
        out.stderr.contains("4 secret(s) re-encrypted"),
        "her login's three and her settings: {}",
        out.stderr
    );
    assert_eq!(rows_of(alice, "bob"), bobs, "bob's secrets byte for byte");
    let new_a = key_of(alice);
    assert_ne!(new_a, key_a);
    let rotated = rows_of(alice, "alice");
    assert_eq!(rotated[0][4], q(&fingerprint(&new_a)));
    assert_eq!(rotated[1][2], q(&fingerprint(&new_a)));
    for (before, after) in alices.iter().zip(&rotated) {
        assert_ne!(before[1], after[1], "re-encrypted");
    }
    // Both still work: bob with his unchanged key, alice with her new one.
    let got = bob
        .run_as("bob", &["instance", "config", "get", BOBS, "api"])
        .ok();
    assert_eq!(got.stdout, "bob-setting\n");
    amc.fake.expire_tokens();
    bob.run_as("bob", &["instance", "test", BOBS]).ok();
    alice.run(&["instance", "test", ALICES]).ok();
    let got = alice
        .run(&["instance", "config", "get", ALICES, "api"])
        .ok();
    assert_eq!(got.stdout, "alice-setting\n");

    // And the other way round.
    let alices = rows_of(alice, "alice");
    let out = bob.run_as("bob", &["key", "rotate", "--yes"]).ok();
    assert!(
        out.stderr.contains("4 secret(s) re-encrypted"),
        "{}",
        out.stderr
    );
    assert_eq!(
        rows_of(alice, "alice"),
        alices,
        "alice's secrets byte for byte"
    );
    assert_eq!(rows_of(alice, "bob")[0][4], q(&fingerprint(&key_of(&bob))));
    alice.run(&["auth", "status"]).ok();
    bob.run_as("bob", &["auth", "status"]).ok();

    let out = alice.run(&["health", "check", "--all", "--all-users", "--retries", "0"]);
    if crate::support::pg::current() == crate::support::pg::Backend::Postgres {
        // In the team store alice reaches only her own instances, and
        // checks with her own login: bob's key is never in question.
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stdout.contains(ALICES), "{}", out.stdout);
        assert!(!out.stdout.contains(BOBS), "{}", out.stdout);
    } else {
        // A SQLite run over every user's instances fails bob's one by one
        // (his login is under his key), without giving up on alice's.
        assert_ne!(out.code, 8, "not the whole run: {}", out.stderr);
        assert!(out.stdout.contains(BOBS), "{}", out.stdout);
        assert!(
            out.stdout.contains(&fingerprint(&key_of(&bob)))
                || out.stderr.contains(&fingerprint(&key_of(&bob))),
            "{}\n{}",
            out.stdout,
            out.stderr
        );
    }
    alice.assert_store_sound("after both rotations");
}

fn a_secret_under_an_unknown_key_is_exit_8_naming_both_fingerprints() {
    let (amc, _bob) = two_homes();
    let alice = &amc.env;
    login_with(alice, &[], CLIENT_SECRET, REFRESH_TOKEN).ok();
    alice
        .run(&["instance", "config", "set", ALICES, "region", "eu"])
        .ok();
    let fp_a = fingerprint(&key_of(alice));
    let stranger = fernet::Fernet::generate_key();
    let fp_s = fingerprint(&stranger);
    let before = alice.dump();
    amc.fake.clear_requests();
    let cases: [(&[&str], &str); 5] = [
        (&["auth", "status"], "the stored login of profile default"),
        (&["auth", "token"], "the stored login of profile default"),
        (
            &["instance", "test", ALICES],
            "the stored login of profile default",
        ),
        (
            &["instance", "config", "get", ALICES, "region"],
            "the settings of instance",
        ),
        // Sealing settings checks her stored secrets first, the login first.
        (
            &["instance", "config", "set", ALICES, "k", "v"],
            "the stored login of profile default",
        ),
    ];
    for (args, what) in cases {
        let out = alice.run_env("alice", args, &[("AMCCTL_KEY", &stranger)]);
        let out = out.fails(8, &[what, &fp_a, &fp_s, "AMCCTL_KEY", "hint:"]);
        assert!(
            out.stderr
                .contains(&format!("encrypted with key {fp_a}, not this key ({fp_s}")),
            "{args:?}: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains(&stranger),
            "never the key: {}",
            out.stderr
        );
        assert!(
            !out.stderr.contains("cannot decrypt"),
            "not tried: {}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        alice.assert_unchanged(&before, format!("{args:?} with a stranger's key"));
    }
    assert!(
        amc.fake.requests().is_empty(),
        "nothing sent with credentials that were not opened"
    );
    // A login's hint offers logging in again.
    let out = alice.run_env("alice", &["auth", "status"], &[("AMCCTL_KEY", &stranger)]);
    assert!(out.stderr.contains("log in again"), "{}", out.stderr);

    // Another profile of hers cannot be stored under the stranger key.
    let out = alice.run_env(
        "alice",
        &[
            "auth",
            "login",
            "--client-id",
            CLIENT_ID,
            "--profile",
            "second",
        ],
        &[
            ("AMCCTL_KEY", &stranger),
            ("AMCCTL_CLIENT_SECRET", CLIENT_SECRET),
            ("AMCCTL_REFRESH_TOKEN", REFRESH_TOKEN),
        ],
    );
    out.fails(8, &[&fp_a, &fp_s]);
    alice.assert_unchanged(&before, "a second login under a stranger's key");

    // Nor does a rotation touch anything when one of her secrets is under
    // another key than her key file's: the rotation names it.
    alice.probe().exec(&format!(
        "UPDATE amc_instances SET settings_key_fingerprint = '{fp_s}' WHERE instance_id = '{ALICES}'"
    ));
    let before = alice.dump();
    let key_before = key_of(alice);
    alice
        .run(&["key", "rotate", "--yes"])
        .fails(8, &["the settings of instance", &fp_s, &fp_a]);
    alice.assert_unchanged(&before, "a refused rotation");
    assert_eq!(key_of(alice), key_before, "the key file stays");
    assert!(!alice.home().join("key.new").exists(), "no staged key left");

    // The store holds fingerprints, never a key.
    let dump = alice.dump();
    for key in [key_of(alice), stranger] {
        assert!(!dump.contains(&key), "a key in the store");
        let hex: String = base64::engine::general_purpose::URL_SAFE
            .decode(key.trim())
            .unwrap()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!dump.contains(&hex), "a key's bytes in the store");
    }
    let fps = alice.probe().rows(
        "SELECT key_fingerprint FROM credentials UNION ALL
         SELECT settings_key_fingerprint FROM amc_instances WHERE encrypted_config IS NOT NULL",
    );
    for fp in fps {
        let fp = fp[0].trim_matches('"');
        assert_eq!(fp.len(), 19, "{fp}");
        assert!(fp.starts_with("fp:") && fp[3..].bytes().all(|b| b.is_ascii_hexdigit()));
    }
}

fn secrets_stored_before_fingerprints_are_tried_with_the_key() {
    let (amc, _bob) = two_homes();
    let alice = &amc.env;
    login_with(alice, &[], CLIENT_SECRET, REFRESH_TOKEN).ok();
    alice
        .run(&["instance", "config", "set", ALICES, "region", "eu"])
        .ok();
    // As a store of the previous schema version left them.
    alice
        .probe()
        .exec("UPDATE credentials SET key_fingerprint = NULL");
    alice
        .probe()
        .exec("UPDATE amc_instances SET settings_key_fingerprint = NULL");
    alice.run(&["auth", "status"]).ok();
    let got = alice
        .run(&["instance", "config", "get", ALICES, "region"])
        .ok();
    assert_eq!(got.stdout, "eu\n");
    // The wrong key is the decryption error of old.
    let stranger = fernet::Fernet::generate_key();
    alice
        .run_env("alice", &["auth", "status"], &[("AMCCTL_KEY", &stranger)])
        .fails(8, &["cannot decrypt", "AMCCTL_KEY"]);
    // A rotation records the fingerprint of the new key.
    alice.run(&["key", "rotate", "--yes"]).ok();
    let fp = q(&fingerprint(&key_of(alice)));
    let rows = rows_of(alice, "alice");
    assert_eq!(rows[0][4], fp, "{rows:?}");
    assert_eq!(rows[1][2], fp, "{rows:?}");
    alice.run(&["auth", "status"]).ok();
}

fn an_interrupted_rotation_is_settled_by_the_acting_users_secrets() {
    use amcctl::secrets::{KeySource, Keyring};
    use secrecy::ExposeSecret;
    let (amc, bob) = both_logged_in();
    let alice = &amc.env;
    let home = alice.home();
    let old = Keyring::from_key(&key_of(alice), KeySource::Env).unwrap();

    // A rotation of alice's that committed and died before promoting its
    // key: key.new holds the key her secrets are now under.
    let staged = Keyring::generate_key();
    let new = Keyring::from_key(&staged, KeySource::Env).unwrap();
    let path = home.join("key.new");
    std::fs::write(&path, format!("{staged}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let row = &rows_of(alice, "alice")[0];
    let renew = |cell: &str| {
        let token = cell.trim_matches('"');
        new.encrypt(old.decrypt(token).unwrap().expose_secret())
    };
    alice.probe().exec(&format!(
        "UPDATE credentials SET client_secret_enc = '{}', refresh_token_enc = '{}',
             access_token_enc = '{}', key_fingerprint = '{}'
         WHERE user_id = (SELECT id FROM users WHERE name = 'alice')",
        renew(&row[1]),
        renew(&row[2]),
        renew(&row[3]),
        fingerprint(&staged)
    ));
    let bobs = rows_of(alice, "bob");

    // The next command settles it by one of alice's secrets (bob's, under
    // his key, open under neither of hers): the staged key is promoted.
    alice.run(&["auth", "status"]).ok();
    assert!(!path.exists(), "key.new promoted");
    assert_eq!(key_of(alice), staged);
    let kept = std::fs::read_to_string(home.join("key.old")).unwrap();
    assert_eq!(
        fingerprint(&kept),
        old.fingerprint(),
        "key.old is the old key"
    );
    assert_eq!(rows_of(alice, "bob"), bobs);
    bob.run_as("bob", &["auth", "status"]).ok();

    // A rotation that died before committing: key.new is stale, removed.
    let stale = Keyring::generate_key();
    std::fs::write(&path, format!("{stale}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    alice.run(&["auth", "status"]).ok();
    assert!(!path.exists(), "the stale key.new removed");
    assert_eq!(key_of(alice), staged, "the key stays");
}

crate::on_both_backends!(
    each_user_logs_in_and_rotates_under_their_own_key,
    a_secret_under_an_unknown_key_is_exit_8_naming_both_fingerprints,
    secrets_stored_before_fingerprints_are_tried_with_the_key,
    an_interrupted_rotation_is_settled_by_the_acting_users_secrets,
);
