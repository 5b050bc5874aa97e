//! Secrets never leak: every secret is set to a unique marker, and no
//! marker may appear in the store's files (WAL included), in any output
//! format, in verbose logs, in error messages, in exports, or in the argv
//! of a running process. Files are private (0600 in a 0700 folder), and a
//! key file others can read is refused without changing anything.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;
use fake_amc::{FakeAmc, Fault, Route};

const ACME: &str = "ENTITY1AA1AA11AAA1";

/// Alice's secrets do not look like Amazon's (no redaction by shape can
/// hide a leak of them); bob's do.
const ALICE_CLIENT: &str = "alice-client-id";
const ALICE_SECRET: &str = "cs-LEAKMARK-A1-9f8e7d6c5b4a3210";
const ALICE_REFRESH: &str = "rt-LEAKMARK-A2-0123456789abcdef";
const BOB_CLIENT: &str = "amzn1.application-oa2-client.bob";
const BOB_SECRET: &str = "amzn1.oa2-cs.v1.LEAKMARKB1fedcba9876543210";
const BOB_REFRESH: &str = "Atzr|LEAKMARK-B2-IwEBIabcdef0123";
/// Secrets that Login with Amazon refuses: a rejected login must not echo them.
const WRONG_SECRET: &str = "cs-LEAKMARK-W1-wrongwrongwrong";
const WRONG_REFRESH: &str = "Atzr|LEAKMARK-W2-revokedrevoked";
/// An encrypted instance setting of alice's (and a second one with a line break).
const SETTING_VALUE: &str = "sv-LEAKMARK-S1-c0ffee0123456789";
const SETTING_PEM: &str = "-----BEGIN LEAKMARK-S2-----\nabcdef\n-----END-----";

const FORMATS: [&str; 4] = ["table", "json", "ndjson", "csv"];

/// The secrets a test knows about: the fixed markers plus the access
/// tokens the fake handed out (taken from the `authorization` headers it saw).
struct Markers(Vec<String>);

impl Markers {
    fn new(amc: &FakeAmc) -> Markers {
        let mut all: Vec<String> = [
            ALICE_SECRET,
            ALICE_REFRESH,
            BOB_SECRET,
            BOB_REFRESH,
            WRONG_SECRET,
            WRONG_REFRESH,
            SETTING_VALUE,
            SETTING_PEM,
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        // The distinctive middle of each marker, so that a partly redacted
        // or re-encoded secret is caught too.
        all.push("LEAKMARK".to_owned());
        for r in amc.requests() {
            if let Some(token) = r
                .header("authorization")
                .and_then(|v| v.strip_prefix("Bearer "))
                && !all.iter().any(|t| t == token)
            {
                all.push(token.to_owned());
                // The random tail alone, without the `Atza|` prefix.
                all.push(token.trim_start_matches("Atza|").to_owned());
            }
        }
        Markers(all)
    }

    fn access_tokens(&self) -> usize {
        self.0.iter().filter(|m| m.starts_with("Atza|")).count()
    }

    #[track_caller]
    fn assert_absent(&self, what: &str, bytes: &[u8]) {
        for m in &self.0 {
            assert!(
                !contains(bytes, m.as_bytes()),
                "secret {m:?} leaked into {what}:\n{}",
                String::from_utf8_lossy(bytes)
                    .chars()
                    .take(4000)
                    .collect::<String>()
            );
        }
    }

    #[track_caller]
    fn assert_output_clean(&self, out: &Output) {
        let what = format!("the output of amcctl {:?}", out.args);
        self.assert_absent(&format!("stdout of {what}"), out.stdout.as_bytes());
        self.assert_absent(&format!("stderr of {what}"), out.stderr.as_bytes());
        assert!(
            !out.stderr.contains("panicked") && out.code != 101,
            "{what} panicked:\n{}",
            out.stderr
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// Alice and bob logged in with stored credentials; alice has a healthy
/// instance and one whose checks fail with 401 (an error message that
/// concerns the token); bob has one instance.
fn world() -> (FakeAmc, TestEnv) {
    let amc = FakeAmc::start();
    amc.add_client(ALICE_CLIENT, ALICE_SECRET, ALICE_REFRESH);
    amc.add_client(BOB_CLIENT, BOB_SECRET, BOB_REFRESH);
    amc.add_account(ACME, "Acme", "ATVPDKIKX0DER");
    for id in ["amcaaaaaaaa", "amcdenied01", "amcbbbbbbbb"] {
        amc.add_instance(ACME, id, id);
    }
    amc.on_instance("amcdenied01", Fault::Status(401));
    let env = TestEnv::new().with_fake_amc(&amc);
    env.create_account(ACME, "Acme");
    env.create_instance("amcaaaaaaaa", "Alice Main", "Acme", &["Acme"]);
    env.create_instance("amcdenied01", "Alice Denied", "Acme", &[]);
    env.create_instance_as("bob", "amcbbbbbbbb", "Bob Main", "Acme", &[]);
    env.login("alice", ALICE_CLIENT, ALICE_SECRET, ALICE_REFRESH)
        .ok();
    env.login("bob", BOB_CLIENT, BOB_SECRET, BOB_REFRESH).ok();
    for (key, value) in [("api_secret", SETTING_VALUE), ("pem", SETTING_PEM)] {
        env.run_stdin(
            &[
                "instance",
                "config",
                "set",
                "amcaaaaaaaa",
                key,
                "--value-stdin",
            ],
            value,
        )
        .ok();
    }
    (amc, env)
}

#[test]
fn no_secret_reaches_outputs_logs_errors_exports_or_the_store() {
    let (amc, env) = world();
    // A reader held open for the whole test keeps the WAL file from being
    // checkpointed away, so every frame ever written can be searched.
    let wal_keeper = env.probe().hold_open();

    let mut outputs: Vec<Output> = Vec::new();
    let run = |user: &str, args: &[&str], extra: &[(&str, &str)]| env.run_env(user, args, extra);
    // Access tokens get issued and used: checks, tests, deep checks.
    outputs.push(run("alice", &["health", "check", "--all", "--deep"], &[]));
    outputs.push(run("bob", &["health", "check", "--all"], &[]));
    let commands: &[&[&str]] = &[
        &["auth", "status"],
        &["auth", "list"],
        &["auth", "status", "--profile", "default"],
        &["auth", "status", "--profile", "no-such-profile"],
        &["auth", "switch", "default"],
        &["instance", "list", "--all-users"],
        &["instance", "show", "amcaaaaaaaa"],
        &["instance", "test", "amcaaaaaaaa"],
        &["instance", "test", "amcdenied01"],
        &["health", "check", "--all", "--all-users", "--rate", "100"],
        &["health", "check", "amcdenied01", "--retries", "0"],
        &["health", "status", "--all-users"],
        &["health", "history", "amcdenied01"],
        &["health", "report", "--all-users"],
        &["account", "list"],
        &["account", "discover", "--dry-run"],
        &["instance", "discover", "--dry-run"],
        &["user", "list"],
        &["brand", "list"],
        &["key", "path"],
        &["db", "check"],
        &["db", "path"],
        &["config", "list"],
        &["instance", "export"],
        &["instance", "export", "--format", "csv"],
        &["instance", "show", "no-such-instance"],
        // Settings: cut in lists; bob's attempts are refused (exit 4).
        &["instance", "config", "list", "amcaaaaaaaa"],
        &["instance", "config", "get", "amcaaaaaaaa", "no-such-key"],
        &["instance", "config", "unset", "amcaaaaaaaa", "no-such-key"],
    ];
    for user in ["alice", "bob"] {
        for args in commands {
            for format in FORMATS {
                let levels: &[Option<&str>] = if format == "table" {
                    &[None, Some("-v"), Some("-vv")]
                } else {
                    &[None, Some("-vv")]
                };
                for &verbosity in levels {
                    let mut full: Vec<&str> = args.to_vec();
                    full.extend(["-o", format]);
                    full.extend(verbosity);
                    outputs.push(run(user, &full, &[]));
                }
            }
        }
    }
    // Another user asking for alice's settings in full: refused, nothing shown.
    for args in [
        &[
            "instance",
            "config",
            "get",
            "amcaaaaaaaa",
            "api_secret",
            "-vv",
        ][..],
        &[
            "instance",
            "config",
            "list",
            "amcaaaaaaaa",
            "--reveal",
            "-vv",
        ],
        &[
            "instance",
            "config",
            "list",
            "amcaaaaaaaa",
            "--reveal",
            "-o",
            "json",
        ],
    ] {
        let out = run("bob", args, &[]);
        assert_eq!(out.code, 4, "{}", out.stderr);
        outputs.push(out);
    }
    // Changing a setting re-seals all of them: verbose, with nothing shown.
    outputs.push(env.run_stdin(
        &[
            "instance",
            "config",
            "set",
            "amcaaaaaaaa",
            "other",
            "--value-stdin",
            "-vv",
        ],
        "plain",
    ));
    // The most talkative logging the environment can ask for, HTTP
    // client internals included.
    for log in [
        "trace",
        "reqwest=trace,hyper=trace,hyper_util=trace,amcctl=trace",
    ] {
        outputs.push(run(
            "alice",
            &["health", "check", "--all", "-vv"],
            &[("AMCCTL_LOG", log)],
        ));
        outputs.push(run(
            "alice",
            &["instance", "test", "amcdenied01", "-vv"],
            &[("AMCCTL_LOG", log)],
        ));
    }
    // Rejected logins: a wrong secret, a revoked refresh token, a token
    // endpoint that fails; each as text and as JSON, verbose.
    for (secret, refresh) in [(WRONG_SECRET, ALICE_REFRESH), (ALICE_SECRET, WRONG_REFRESH)] {
        for format in ["table", "json"] {
            let out = env.run_env(
                "alice",
                &[
                    "auth",
                    "login",
                    "--client-id",
                    ALICE_CLIENT,
                    "-o",
                    format,
                    "-vv",
                ],
                &[
                    ("AMCCTL_CLIENT_SECRET", secret),
                    ("AMCCTL_REFRESH_TOKEN", refresh),
                ],
            );
            assert_eq!(out.code, 7, "a refused login is exit 7: {}", out.stderr);
            outputs.push(out);
        }
    }
    amc.push_faults(Route::Token, vec![Fault::Status(500); 3]);
    let out = env.run_env(
        "carol",
        &[
            "auth",
            "login",
            "--client-id",
            ALICE_CLIENT,
            "--retries",
            "2",
            "-vv",
        ],
        &[
            ("AMCCTL_CLIENT_SECRET", ALICE_SECRET),
            ("AMCCTL_REFRESH_TOKEN", ALICE_REFRESH),
        ],
    );
    // Login with Amazon unusable (not a refusal): a network failure.
    assert_eq!(out.code, 6, "{}", out.stderr);
    outputs.push(out);
    // The same secrets from the environment instead of the store.
    for args in [
        &["health", "check", "--all", "-vv", "-o", "json"][..],
        &["instance", "test", "amcdenied01", "-vv"],
    ] {
        let out = env.run_env(
            "alice",
            args,
            &[
                ("AMCCTL_CLIENT_ID", ALICE_CLIENT),
                ("AMCCTL_CLIENT_SECRET", ALICE_SECRET),
                ("AMCCTL_REFRESH_TOKEN", ALICE_REFRESH),
            ],
        );
        outputs.push(out);
    }
    // Backups of the store hold ciphertext only, and are private files.
    let mut backups = Vec::new();
    for (i, format) in FORMATS.iter().enumerate() {
        let file = env.scratch().join(format!("backup-{i}.db"));
        let path = file.to_str().expect("utf-8 path");
        let out = env.run(&["db", "backup", path, "-o", format, "-vv"]);
        assert_eq!(out.code, 0, "db backup: {}", out.stderr);
        assert_eq!(mode(&file), 0o600, "the backup file");
        backups.push(file);
        outputs.push(out);
    }
    // Rotation re-encrypts the settings with the rest, saying nothing of them.
    outputs.push(run("alice", &["key", "rotate", "--yes", "-vv"], &[]));
    // The access token is cached: expire it so a refresh happens mid-run.
    amc.expire_tokens();
    outputs.push(run(
        "alice",
        &["health", "check", "--all", "-vv", "-o", "ndjson"],
        &[],
    ));

    // The trail of all of the above, in every format, as each user sees it.
    for user in ["alice", "bob"] {
        for format in FORMATS {
            outputs.push(run(user, &["audit", "list", "-o", format, "-vv"], &[]));
        }
    }
    outputs.push(run(
        "alice",
        &["audit", "list", "--instance", "amcaaaaaaaa", "-o", "json"],
        &[],
    ));

    let markers = Markers::new(&amc);
    assert!(
        markers.access_tokens() >= 2,
        "the fake issued and saw access tokens"
    );
    // Sanity: the markers really are the secrets in use.
    let token_calls: Vec<_> = amc
        .requests()
        .into_iter()
        .filter(|r| r.path == "/auth/o2/token")
        .collect();
    assert!(
        token_calls
            .iter()
            .any(|r| r.body.contains("LEAKMARK-A1") && r.body.contains("LEAKMARK-A2")),
        "alice's markers were sent to Login with Amazon"
    );
    let healthy = outputs
        .iter()
        .filter(|o| {
            o.args
                .starts_with(&["health".to_owned(), "check".to_owned()])
        })
        .any(|o| {
            o.stdout
                .split(|c: char| !c.is_ascii_alphabetic())
                .any(|word| word == "HEALTHY")
        });
    assert!(healthy, "some checks ran with the stored credentials");

    for out in &outputs {
        markers.assert_output_clean(out);
    }
    // Every file under the home: store, WAL, shared memory, key, config.
    let mut files = 0;
    for entry in std::fs::read_dir(env.home()).expect("read the home") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read a file");
            markers.assert_absent(&path.display().to_string(), &bytes);
            files += 1;
        }
    }
    for file in &backups {
        let bytes = std::fs::read(file).expect("read a backup");
        assert!(bytes.len() > 4096, "a real backup");
        markers.assert_absent(&file.display().to_string(), &bytes);
        files += 1;
    }
    // The verbose runs did log (so the search above covered real logs).
    assert!(
        outputs
            .iter()
            .any(|o| o.args.contains(&"-vv".to_owned()) && o.stderr.contains("AMC request")),
        "-vv shows the requests"
    );
    assert_audit_clean(&env, &markers);
    let wal = env.home().join("amcctl.db-wal");
    assert!(wal.exists(), "the WAL is kept while a reader is open");
    assert!(files >= 3, "store, WAL and key were searched");
    // Stored secrets are Fernet tokens (version byte 0x80 → "gAAAAA").
    for row in env.probe().rows(
        "SELECT client_secret_enc, refresh_token_enc, coalesce(access_token_enc, 'gAAAAA') FROM credentials",
    ) {
        for cell in row {
            assert!(cell.starts_with("\"gAAAAA"), "not a Fernet token: {cell}");
        }
    }
    for row in env
        .probe()
        .rows("SELECT encrypted_config FROM amc_instances WHERE encrypted_config IS NOT NULL")
    {
        assert!(
            row[0].starts_with("\"gAAAAA"),
            "settings are a Fernet token: {}",
            row[0]
        );
    }
    assert_eq!(
        env.probe()
            .scalar("SELECT count(*) FROM amc_instances WHERE encrypted_config IS NOT NULL"),
        1,
        "alice's settings are stored"
    );
    drop(wal_keeper);
    eprintln!(
        "leaks: {} command runs and {files} files searched for {} markers",
        outputs.len(),
        markers.0.len()
    );
}

/// The audit table holds the entries of the writes that handled secrets
/// (logins, settings, a key rotation), and no marker in any column.
#[track_caller]
fn assert_audit_clean(env: &TestEnv, markers: &Markers) {
    let rows = env.probe().rows(
        "SELECT id, at, actor, command, object_kind, object_id, object_name, instance_id, summary
         FROM audit_log ORDER BY id",
    );
    let text: String = rows.iter().map(|r| r.join(" | ") + "\n").collect();
    for command in ["auth login", "instance config set", "key rotate"] {
        assert!(
            text.contains(&format!("\"{command}\"")),
            "the trail has an entry of {command}:\n{text}"
        );
    }
    markers.assert_absent("the audit table", text.as_bytes());
}

/// The trail on either backend: logins (refused ones too), secret
/// settings and a key rotation leave entries, and neither the table nor
/// `audit list` in any format holds a secret.
fn the_audit_trail_holds_no_secret() {
    let (amc, env) = world();
    let mut outputs = vec![env.run(&["key", "rotate", "--yes"]).ok()];
    let refused = env.run_env(
        "alice",
        &["auth", "login", "--client-id", ALICE_CLIENT, "-o", "json"],
        &[
            ("AMCCTL_CLIENT_SECRET", WRONG_SECRET),
            ("AMCCTL_REFRESH_TOKEN", ALICE_REFRESH),
        ],
    );
    assert_eq!(refused.code, 7, "{}", refused.stderr);
    outputs.push(refused);
    outputs.push(env.run(&["health", "check", "--all"]));
    for user in ["alice", "bob"] {
        for format in FORMATS {
            for verbosity in [None, Some("-vv")] {
                let mut args = vec!["audit", "list", "-o", format];
                args.extend(verbosity);
                outputs.push(env.run_as(user, &args).ok());
            }
        }
    }
    outputs.push(
        env.run(&["audit", "list", "--instance", "amcaaaaaaaa", "-o", "csv"])
            .ok(),
    );
    let markers = Markers::new(&amc);
    assert!(
        markers.access_tokens() >= 1,
        "the fake issued access tokens"
    );
    for out in &outputs {
        markers.assert_output_clean(out);
    }
    // The entries are there to be searched: alice's trail lists them.
    let listed = env.json(&["audit", "list"]);
    let listed_commands = pluck(&listed, "command");
    for command in ["auth login", "instance config set", "key rotate"] {
        assert!(
            listed_commands.iter().any(|c| c == command),
            "{command} in {listed_commands:?}"
        );
    }
    assert_audit_clean(&env, &markers);
}

#[test]
fn a_running_check_keeps_every_secret_out_of_the_wal() {
    let (amc, env) = world();
    amc.on_instance("amcaaaaaaaa", Fault::Delay(Duration::from_secs(20)));
    let mut child = env
        .command(
            "alice",
            &["health", "check", "amcaaaaaaaa", "--timeout", "30s"],
        )
        .spawn()
        .expect("start amcctl");
    // Wait until the check is in flight: the fake has the request.
    let started = Instant::now();
    while !amc
        .requests()
        .iter()
        .any(|r| r.path == "/amc/instances/amcaaaaaaaa")
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the check never reached the fake"
        );
        if let Some(status) = child.try_wait().expect("poll the child") {
            panic!("the check ended early: {status}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // The WAL of a store in use, while the check holds it open.
    let wal = std::fs::read(env.home().join("amcctl.db-wal")).expect("the WAL of a store in use");
    child.kill().expect("stop the check");
    child.wait().expect("reap the check");
    let markers = Markers::new(&amc);
    assert!(markers.access_tokens() >= 1);
    // (Its argv and environment are the test's own choice, so searching
    // them would prove nothing; the store is what amcctl writes.)
    markers.assert_absent("the WAL of a running check", &wal);
}

#[test]
fn files_are_private_and_a_readable_key_is_refused_untouched() {
    let (_amc, env) = world();
    let home = env.home();
    let key = home.join("key");
    // Hold the store open so the WAL and shared-memory files exist.
    let keeper = env.probe().hold_open();
    env.run(&["instance", "edit", "amcaaaaaaaa", "--name", "Renamed"])
        .ok();
    assert_eq!(mode(home), 0o700, "the home folder");
    assert_eq!(mode(&key), 0o600, "the key file");
    assert_eq!(mode(&home.join("key.lock")), 0o600, "the key's lock file");
    for name in ["amcctl.db", "amcctl.db-wal", "amcctl.db-shm"] {
        assert_eq!(mode(&home.join(name)), 0o600, "{name}");
    }
    drop(keeper);
    env.run(&["key", "rotate", "--yes"]).ok();
    env.run(&["instance", "deactivate", "amcdenied01"]).ok();
    assert_eq!(mode(&key), 0o600, "the rotated key");
    assert_eq!(mode(&home.join("key.old")), 0o600, "the previous key");

    let refused: &[&[&str]] = &[
        &["auth", "status"],
        &["health", "check", "amcaaaaaaaa"],
        &["health", "check", "--all", "--nagios"],
        &["instance", "test", "amcaaaaaaaa"],
        &[
            "instance",
            "create",
            "--instance-id",
            "amcnewinst1",
            "--account",
            "Acme",
        ],
        &["instance", "activate", "amcdenied01"],
        &["key", "rotate", "--yes"],
    ];
    let mut cases = 0;
    for loose in [0o644, 0o640, 0o604, 0o660, 0o666] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(loose)).expect("chmod");
        let key_bytes = std::fs::read(&key).expect("read the key");
        let before = env.dump();
        let listing = |dir: &Path| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(dir)
                .expect("list")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let files = listing(home);
        for args in refused {
            let out = env.run(args);
            let ctx = format!("key mode {loose:o}: amcctl {args:?}");
            if args.contains(&"--nagios") {
                assert_eq!(out.code, 3, "{ctx}: {}", out.stdout);
            } else {
                assert_eq!(out.code, 8, "{ctx}\n{}", out.stderr);
                assert!(
                    out.stderr.contains("chmod 600")
                        && out.stderr.contains(&key.display().to_string()),
                    "{ctx}: the message names the file and the fix: {}",
                    out.stderr
                );
            }
            env.assert_unchanged(&before, &ctx);
            assert_eq!(
                std::fs::read(&key).expect("key"),
                key_bytes,
                "{ctx}: key changed"
            );
            assert_eq!(
                mode(&key),
                loose,
                "{ctx}: the mode was changed behind the user's back"
            );
            assert_eq!(listing(home), files, "{ctx}: files appeared or vanished");
            cases += 1;
        }
        let out = env.login("alice", ALICE_CLIENT, ALICE_SECRET, ALICE_REFRESH);
        assert_eq!(out.code, 8, "login with a readable key: {}", out.stderr);
        env.assert_unchanged(&before, "auth login with a readable key");
        cases += 1;
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    env.run(&["auth", "status"]).ok();
    env.run(&["health", "check", "amcaaaaaaaa"]).ok();
    eprintln!("permissions: {cases} refusals of a readable key, nothing changed");
}

fn a_wrong_key_is_exit_8_naming_where_it_looked_and_loses_nothing() {
    let (_amc, env) = world();
    let before = env.dump();
    let stranger = amcctl::secrets::Keyring::generate_key();
    for (value, needle) in [
        (stranger.as_str(), "AMCCTL_KEY"),
        ("not-a-key", "AMCCTL_KEY"),
    ] {
        for args in [&["auth", "status"][..], &["health", "check", "amcaaaaaaaa"]] {
            let out = env.run_env("alice", args, &[("AMCCTL_KEY", value)]);
            assert_eq!(out.code, 8, "{args:?}: {}", out.stderr);
            assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
            assert!(
                !out.stderr.contains(value),
                "the key was echoed: {}",
                out.stderr
            );
            env.assert_unchanged(&before, format!("AMCCTL_KEY={value}: {args:?}"));
        }
    }
    // The key file gone: the message names it; nothing is re-created silently.
    let key = env.home().join("key");
    let saved = std::fs::read(&key).expect("key");
    std::fs::remove_file(&key).expect("remove the key");
    let out = env.run(&["auth", "status"]);
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(
        out.stderr.contains(&key.display().to_string()),
        "{}",
        out.stderr
    );
    let out = env.run(&["health", "check", "amcaaaaaaaa"]);
    assert_eq!(out.code, 8, "{}", out.stderr);
    assert!(
        !key.exists(),
        "a new key was made while the store holds secrets"
    );
    env.assert_unchanged(&before, "missing key");
    std::fs::write(&key, saved).expect("restore");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    env.run(&["auth", "status"]).ok();
}

/// `auth token` prints the access token on stdout, and only there: not on
/// its own stderr at -vv, and not in any neighbouring command's output,
/// log or error.
fn only_auth_token_prints_an_access_token() {
    let (amc, env) = world();
    let printed = env.run(&["auth", "token", "-vv"]).ok();
    let token = printed.stdout.trim().to_owned();
    assert!(token.starts_with("Atza|"), "a token: {token:?}");
    assert_eq!(printed.stdout, format!("{token}\n"), "the token alone");
    let machine = env.run(&["auth", "token", "-o", "json"]).ok();
    assert_eq!(machine.json()["access_token"], token.as_str());
    let markers = Markers(vec![
        token.clone(),
        token.trim_start_matches("Atza|").to_owned(),
    ]);
    markers.assert_absent("the stderr of auth token -vv", printed.stderr.as_bytes());
    // An expired token is refreshed: the new one is printed, the old never again.
    amc.expire_tokens();
    env.probe().expire_access_tokens();
    let fresh = env.run(&["auth", "token"]).ok().stdout.trim().to_owned();
    assert_ne!(fresh, token, "refreshed when expired");
    let markers = Markers(vec![
        token.clone(),
        token.trim_start_matches("Atza|").to_owned(),
        fresh.clone(),
        fresh.trim_start_matches("Atza|").to_owned(),
    ]);
    let neighbours: &[&[&str]] = &[
        &["auth", "status", "-vv"],
        &["auth", "status", "-o", "json", "-vv"],
        &["auth", "list", "-vv"],
        &["auth", "list", "-o", "csv"],
        &["auth", "switch", "nope", "-vv"],
        &["auth", "token", "--profile", "nope", "-vv"],
        &["auth", "token", "--profile", "bad name", "-o", "json"],
        &[
            "auth",
            "login",
            "--web",
            "--redirect-uri",
            "https://127.0.0.1/x",
            "--client-id",
            "x",
            "-vv",
        ],
        &["health", "check", "--all", "-vv", "-o", "json"],
        &["instance", "test", "amcdenied01", "-vv"],
        &["instance", "test", "amcaaaaaaaa", "-vv", "-o", "json"],
        &["db", "check", "-vv"],
    ];
    let mut runs = 0;
    for args in neighbours {
        let out = env.run_env("alice", args, &[("AMCCTL_CLIENT_SECRET", "unused")]);
        markers.assert_output_clean(&out);
        runs += 1;
    }
    let trace = env.run_env(
        "alice",
        &["auth", "token", "-vv"],
        &[("AMCCTL_LOG", "reqwest=trace,hyper=trace,amcctl=trace")],
    );
    markers.assert_absent("the trace log of auth token", trace.stderr.as_bytes());
    eprintln!("auth token: {runs} neighbouring runs searched for its tokens");
}

crate::on_both_backends!(
    a_wrong_key_is_exit_8_naming_where_it_looked_and_loses_nothing,
    only_auth_token_prints_an_access_token,
    the_audit_trail_holds_no_secret,
);
