//! amcctl as a shell sees it: config precedence, an invalid config file,
//! `config`, `db` and `man`, quiet/verbose/colour, a closed pipe, prompts that
//! never hang a script, and `db backup` while another process writes.
//!
//! Every test runs the real binary in a hermetic environment (`env_clear`, a
//! temp folder as home and store, a fixed OS user) with stdin not a terminal.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fake_amc::FakeAmc;
use serde_json::Value;

/// The binary under test: cargo's, or `AMCCTL_TEST_BIN` (an installed or
/// release build, or a copy safe from a concurrent rebuild).
fn bin() -> String {
    std::env::var("AMCCTL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_amcctl").to_owned())
}
const ENTITY: &str = "ENTITY1AA1AA11AAA1";
const CLIENT_ID: &str = "amzn1.application-oa2-client.terminal";
const CLIENT_SECRET: &str = "amzn1.oa2-cs.v1.terminalsecretvalue";
const REFRESH: &str = "Atzr|IwEBterminalrefreshtoken";

/// What a run left behind.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

/// A temp folder as home, store, config and key, and the environment of one test.
struct Env {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Env {
    fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
            vars: Vec::new(),
        }
    }

    /// An environment whose AMC is `fake`, with credentials from the environment.
    fn with_fake(fake: &FakeAmc) -> Env {
        let mut env = Env::new();
        env.set("AMCCTL_API_URL", &fake.base_url());
        env.set("AMCCTL_AUTH_URL", &fake.token_url());
        env.set("AMCCTL_CLIENT_ID", CLIENT_ID);
        env.set("AMCCTL_CLIENT_SECRET", CLIENT_SECRET);
        env.set("AMCCTL_REFRESH_TOKEN", REFRESH);
        env
    }

    fn set(&mut self, k: &str, v: &str) {
        self.vars.push((k.to_owned(), v.to_owned()));
    }

    fn home(&self) -> &Path {
        self.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.home().join(name)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.home())
            .env("AMCCTL_HOME", self.home())
            .env("USER", "tester")
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .args(args)
            .current_dir(self.home())
            .stdin(Stdio::null());
        c
    }

    fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let out = self
            .command(args)
            .envs(extra.iter().copied())
            .output()
            .expect("run amcctl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[])
    }

    fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "amcctl {args:?}: {}", r.stderr);
        r
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.path("config.toml"), text).expect("write config");
    }

    fn account(&self) {
        self.ok(&[
            "account",
            "create",
            "--account-id",
            ENTITY,
            "--name",
            "Acme",
        ]);
    }

    fn instance(&self, id: &str, name: &str) {
        self.ok(&[
            "instance",
            "create",
            "--instance-id",
            id,
            "--name",
            name,
            "--account",
            ENTITY,
            "--skip-validation",
        ]);
    }

    /// Imports `n` instances `amc00000001`… of one account in one go.
    fn import_many(&self, n: usize) -> Vec<String> {
        let ids: Vec<String> = (1..=n).map(|i| format!("amc{i:08}")).collect();
        let rows: Vec<Value> = ids
            .iter()
            .map(|id| {
                serde_json::json!({
                    "instance_id": id,
                    "name": format!("Instance {id}"),
                    "region": "na",
                    "account": {"account_id": ENTITY, "account_name": "Acme", "country_code": "US"},
                    "brands": ["Acme"],
                })
            })
            .collect();
        let file = self.path("import.json");
        std::fs::write(&file, serde_json::to_vec(&rows).expect("json")).expect("write import");
        self.ok(&["instance", "import", file.to_str().expect("utf-8 path")]);
        ids
    }

    fn fake_instances(fake: &FakeAmc, ids: &[&str]) {
        fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH);
        fake.add_account(ENTITY, "Acme", "ATVPDKIKX0DER");
        for id in ids {
            fake.add_instance(ENTITY, id, id);
        }
    }
}

// ---------------------------------------------------------------- config

/// Which format `user list` printed.
fn format_of(stdout: &str) -> &'static str {
    let first = stdout.lines().next().unwrap_or("");
    if stdout.trim_start().starts_with('[') {
        "json"
    } else if first.starts_with('{') {
        "ndjson"
    } else if first == "id,name,admin,instance_count,created_at" {
        "csv"
    } else if first.contains('\t') {
        "table"
    } else {
        "unknown"
    }
}

/// One row of the precedence table.
struct Layer {
    /// The config key.
    key: &'static str,
    /// The layer that must win.
    layer: &'static str,
    /// Command-line flags (global ones before the command, others after).
    flags: &'static [&'static str],
    /// Environment variables.
    env: &'static [(&'static str, &'static str)],
    /// The config file.
    config: &'static str,
    /// What the run must show.
    want: &'static [&'static str],
}

/// Every layer below the winner is set too, so each row proves its layer
/// beats the ones under it.
const LAYERS: &[Layer] = &[
    Layer {
        key: "user",
        layer: "flag",
        flags: &["--user", "alice"],
        env: &[("AMCCTL_USER", "bob")],
        config: "user = \"carol\"",
        want: &["alice"],
    },
    Layer {
        key: "user",
        layer: "env",
        flags: &[],
        env: &[("AMCCTL_USER", "bob")],
        config: "user = \"carol\"",
        want: &["bob"],
    },
    Layer {
        key: "user",
        layer: "config",
        flags: &[],
        env: &[],
        config: "user = \"carol\"",
        want: &["carol"],
    },
    Layer {
        key: "user",
        layer: "default",
        flags: &[],
        env: &[],
        config: "",
        want: &["tester"],
    },
    Layer {
        key: "output",
        layer: "flag",
        flags: &["-o", "csv"],
        env: &[("AMCCTL_OUTPUT", "ndjson")],
        config: "output = \"json\"",
        want: &["csv"],
    },
    Layer {
        key: "output",
        layer: "env",
        flags: &[],
        env: &[("AMCCTL_OUTPUT", "ndjson")],
        config: "output = \"json\"",
        want: &["ndjson"],
    },
    Layer {
        key: "output",
        layer: "config",
        flags: &[],
        env: &[],
        config: "output = \"json\"",
        want: &["json"],
    },
    Layer {
        key: "output",
        layer: "default",
        flags: &[],
        env: &[],
        config: "",
        want: &["table"],
    },
    // region, rate, timeout, concurrency have no environment variable in the contract.
    Layer {
        key: "region",
        layer: "flag",
        flags: &["--region", "eu"],
        env: &[],
        config: "region = \"fe\"",
        want: &["eu"],
    },
    Layer {
        key: "region",
        layer: "config",
        flags: &[],
        env: &[],
        config: "region = \"fe\"",
        want: &["fe"],
    },
    Layer {
        key: "region",
        layer: "default",
        flags: &[],
        env: &[],
        config: "",
        want: &["na"],
    },
    Layer {
        key: "rate, timeout, concurrency",
        layer: "flag",
        flags: &["--rate", "7", "--timeout", "9s", "--concurrency", "3"],
        env: &[],
        config: "rate = 5\ntimeout = \"4s\"\nconcurrency = 2",
        want: &[
            "rate 7/s (flag)",
            "timeout 9s (flag)",
            "concurrency 3 (flag)",
        ],
    },
    Layer {
        key: "rate, timeout, concurrency",
        layer: "config",
        flags: &[],
        env: &[],
        config: "rate = 5\ntimeout = \"4s\"\nconcurrency = 2",
        want: &[
            "rate 5/s (config)",
            "timeout 4s (config)",
            "concurrency 2 (config)",
        ],
    },
    Layer {
        key: "rate, timeout, concurrency",
        layer: "default",
        flags: &[],
        env: &[],
        config: "",
        want: &[
            "rate 10/s (default)",
            "timeout 30s (default)",
            "concurrency 16 (default)",
        ],
    },
];

/// Each key, each layer: flag > env > config > default, seen in what the
/// commands do: who owns a new instance, what `user list` prints, which
/// region `auth login` stores, and what a health check ran with (`-v` names
/// each setting's layer) and that it worked.
#[test]
fn config_precedence_table() {
    let fake = FakeAmc::start();
    Env::fake_instances(&fake, &["amcibersblt"]);
    let env = Env::with_fake(&fake);
    env.account();
    for u in ["alice", "bob", "carol"] {
        env.ok(&["user", "add", u]);
    }
    env.instance("amcibersblt", "acme-us");

    for (i, row) in LAYERS.iter().enumerate() {
        let what = format!("{} from {}", row.key, row.layer);
        env.write_config(&format!("{}\n", row.config));
        let id = format!("amcrow{i:05}");
        let (args, global): (Vec<&str>, bool) = match row.key {
            "user" => (
                vec![
                    "-o",
                    "json",
                    "instance",
                    "create",
                    "--instance-id",
                    &id,
                    "--account",
                    ENTITY,
                    "--skip-validation",
                ],
                true,
            ),
            "output" => (vec!["user", "list"], true),
            "region" => (vec!["auth", "login"], false),
            _ => (
                vec![
                    "-v",
                    "-o",
                    "json",
                    "health",
                    "check",
                    "amcibersblt",
                    "--retries",
                    "0",
                ],
                false,
            ),
        };
        let args: Vec<&str> = if global {
            row.flags.iter().copied().chain(args).collect()
        } else {
            args.into_iter().chain(row.flags.iter().copied()).collect()
        };
        let r = env.run_with(&args, row.env);
        assert_eq!(r.code, 0, "{what}: {}", r.stderr);
        let got = match row.key {
            "user" => r.json()["owner"].as_str().unwrap_or("").to_owned(),
            "output" => format_of(&r.stdout).to_owned(),
            "region" => env.ok(&["-o", "json", "auth", "status"]).json()["region"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
            _ => {
                assert_eq!(r.json()["summary"]["healthy"], 1, "{what}");
                for want in row.want {
                    assert!(
                        r.stderr.contains(want),
                        "{what}: no {want:?} in\n{}",
                        r.stderr
                    );
                }
                continue;
            }
        };
        assert_eq!(got, row.want[0], "{what}");
    }
}

#[test]
fn invalid_config_file_is_exit_2_naming_the_file_and_line() {
    let env = Env::new();
    let file = env.path("config.toml");
    for (text, line) in [
        ("user = \"alice\"\n\nrate = \"fast\"\n", "line 3"),
        ("output = \"json\"\ncolour = 1\n", "line 2"),
        ("concurrency = 0\n", ""),
        ("[broken\n", "line 1"),
    ] {
        env.write_config(text);
        let r = env.run(&["user", "list"]);
        assert_eq!(r.code, 2, "{text:?}: {r:?}");
        assert!(
            r.stderr.contains(&file.display().to_string()),
            "{text:?}: {}",
            r.stderr
        );
        assert!(r.stderr.contains(line), "{text:?}: {}", r.stderr);
        assert!(r.stdout.is_empty());

        let r = env.run(&["-o", "json", "user", "list"]);
        assert_eq!(r.code, 2);
        let err: Value = serde_json::from_str(r.stderr.trim()).expect("JSON error");
        assert_eq!(err["error"]["code"], "usage");
        assert!(r.stdout.is_empty());

        // Where to fix it still works.
        let r = env.ok(&["config", "path"]);
        assert_eq!(r.stdout.trim(), file.display().to_string());
    }
}

#[test]
fn config_get_set_unset_list_path() {
    let env = Env::new();
    let file = env.path("config.toml");
    assert_eq!(
        env.ok(&["config", "path"]).stdout.trim(),
        file.display().to_string()
    );
    assert_eq!(env.run(&["config", "get", "rate"]).code, 3);

    env.ok(&["config", "set", "rate", "2.5"]);
    env.ok(&["config", "set", "timeout", "45s"]);
    env.ok(&["config", "set", "region", "eu"]);
    assert_eq!(env.ok(&["config", "get", "rate"]).stdout, "2.5\n");
    assert_eq!(env.ok(&["config", "get", "region"]).stdout.trim(), "eu");
    env.ok(&["config", "set", "output", "json"]);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&file)
            .expect("config written")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // Invalid values and keys: exit 2, the file untouched.
    let before = std::fs::read_to_string(&file).expect("read config");
    for args in [
        ["config", "set", "rate", "fast"],
        ["config", "set", "concurrency", "0"],
        ["config", "set", "output", "xml"],
        ["config", "set", "timeout", "soon"],
        ["config", "set", "colour", "red"],
    ] {
        let r = env.run(&args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
    }
    assert_eq!(std::fs::read_to_string(&file).expect("read config"), before);

    // output = json in the file now shapes every command's output.
    let list = env.ok(&["config", "list"]).json();
    assert_eq!(list["rate"], 2.5);
    assert_eq!(list["timeout"], "45s");
    assert_eq!(list["user"], Value::Null);
    let csv = env.ok(&["-o", "csv", "config", "list"]).stdout;
    assert!(
        csv.starts_with("KEY,VALUE\n") && csv.contains("rate,2.5"),
        "{csv}"
    );

    env.ok(&["config", "unset", "rate"]);
    env.ok(&["config", "unset", "rate"]);
    assert_eq!(env.run(&["config", "get", "rate"]).code, 3);
    assert_eq!(env.ok(&["config", "get", "timeout"]).json()["value"], "45s");
}

// ---------------------------------------------------------------- manners

#[test]
fn quiet_verbose_and_log_levels() {
    let fake = FakeAmc::start();
    Env::fake_instances(&fake, &["amcibersblt"]);
    let env = Env::with_fake(&fake);
    env.account();

    let r = env.run(&[
        "-q",
        "instance",
        "create",
        "--instance-id",
        "amcibersblt",
        "--account",
        ENTITY,
        "--skip-validation",
    ]);
    assert_eq!((r.code, r.stderr.as_str(), r.stdout.as_str()), (0, "", ""));
    // Errors still show under -q.
    let r = env.run(&["-q", "instance", "show", "amcnothere1"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.starts_with("error:"), "{}", r.stderr);

    let check = ["-o", "json", "health", "check", "amcibersblt"];
    let quiet = env.run(&check);
    assert_eq!(quiet.code, 0, "{}", quiet.stderr);
    assert!(!quiet.stderr.contains("DEBUG"), "{}", quiet.stderr);

    let mut verbose_args = vec!["-v"];
    verbose_args.extend(check);
    for (how, r) in [
        ("-v", env.run(&verbose_args)),
        (
            "AMCCTL_LOG",
            env.run_with(&check, &[("AMCCTL_LOG", "debug")]),
        ),
    ] {
        assert_eq!(r.code, 0, "{how}: {}", r.stderr);
        assert!(r.stderr.contains("DEBUG"), "{how}: {}", r.stderr);
        // Logs never reach stdout, and never carry a secret.
        assert_eq!(r.json()["summary"]["healthy"], 1, "{how}");
        for secret in [CLIENT_SECRET, REFRESH] {
            assert!(!r.stderr.contains(secret), "{how} leaked a secret");
        }
    }
    let mut vv = vec!["-vv"];
    vv.extend(check);
    let r = env.run(&vv);
    assert!(
        r.stderr.contains("TRACE") || r.stderr.contains("DEBUG"),
        "{}",
        r.stderr
    );
    for secret in [CLIENT_SECRET, REFRESH] {
        assert!(!r.stderr.contains(secret), "-vv leaked a secret");
    }

    // -q beats AMCCTL_LOG; a bad AMCCTL_LOG warns and does not fail the run.
    let mut q = vec!["-q"];
    q.extend(check);
    let r = env.run_with(&q, &[("AMCCTL_LOG", "trace")]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let r = env.run_with(&check, &[("AMCCTL_LOG", "amcctl=loud")]);
    assert_eq!(r.code, 0);
    assert!(r.stderr.contains("AMCCTL_LOG"), "{}", r.stderr);
}

#[test]
fn colour_on_stderr_follows_the_flag() {
    let env = Env::new();
    let missing = ["instance", "show", "amcnothere1"];
    let r = env.run(&missing);
    assert_eq!(r.code, 3);
    assert!(!r.stderr.contains('\x1b'), "not a terminal: no colour");
    let mut always = vec!["--color", "always"];
    always.extend(missing);
    let r = env.run_with(&always, &[("NO_COLOR", "1")]);
    assert!(
        r.stderr.contains("\x1b["),
        "--color always beats NO_COLOR: {:?}",
        r.stderr
    );
    let mut never = vec!["--color", "never"];
    never.extend(missing);
    assert!(!env.run(&never).stderr.contains('\x1b'));
    let r = env.run(&["--color", "sometimes", "user", "list"]);
    assert_eq!(r.code, 2);
}

#[test]
fn closed_pipe_exits_zero_quietly() {
    let env = Env::new();
    env.import_many(2500);
    for format in ["json", "ndjson", "csv", "table"] {
        // Through a real shell pipeline, as a user types it.
        let line = format!(
            "set -o pipefail; {} instance list -o {format} | head -1",
            bin()
        );
        let out = Command::new("bash")
            .arg("-c")
            .arg(&line)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("AMCCTL_HOME", env.home())
            .env("USER", "tester")
            .stdin(Stdio::null())
            .output()
            .expect("run bash");
        assert_eq!(out.status.code(), Some(0), "{format}: {out:?}");
        assert!(
            out.stderr.is_empty(),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
    }
    // And a reader that goes away mid-stream.
    for args in [
        &["instance", "export"][..],
        &["-o", "json", "instance", "list"][..],
    ] {
        let mut child = env
            .command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        stdout.read_line(&mut first).expect("one line");
        drop(stdout);
        let out = child.wait_with_output().expect("wait");
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            out.stderr.is_empty() || String::from_utf8_lossy(&out.stderr).starts_with("Exported"),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

// ---------------------------------------------------------------- prompts

/// Runs `args` with stdin an open pipe that never delivers anything (a script
/// that forgot a flag) and stderr a pipe: it must fail at once, not wait.
fn without_terminal(env: &Env, args: &[&str], extra: &[(&str, &str)]) -> (Run, Duration) {
    let started = Instant::now();
    let mut child: Child = env
        .command(args)
        .envs(extra.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn amcctl");
    let stdin = child.stdin.take();
    // A hung prompt is killed after a while, so the test fails instead of hanging.
    let deadline = started + Duration::from_secs(20);
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(s) => break s,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                panic!("amcctl {args:?} hung waiting for input");
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let elapsed = started.elapsed();
    drop(stdin);
    let mut stdout = String::new();
    let mut stderr = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut stdout);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut stderr);
    }
    (
        Run {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr,
        },
        elapsed,
    )
}

fn write_key(env: &Env) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(env.path("key"))
        .expect("create key file");
    // The Fernet specification's example key.
    f.write_all(b"cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=\n")
        .expect("write key");
}

#[test]
fn prompting_commands_fail_at_once_naming_the_flag_without_a_terminal() {
    let env = Env::new();
    env.account();
    env.ok(&[
        "account",
        "create",
        "--account-id",
        "ENTITY2BB2BB22BBB2",
        "--name",
        "Spare",
    ]);
    env.instance("amcibersblt", "acme-us");
    env.ok(&["brand", "set", "amcibersblt", "Acme"]);
    env.ok(&["user", "add", "bob"]);
    write_key(&env);

    let cases: &[(&[&str], &str)] = &[
        (&["instance", "create"], "--instance-id"),
        (
            &["instance", "create", "--instance-id", "amcnewnewnw"],
            "--account",
        ),
        (&["instance", "edit", "amcibersblt"], "--name"),
        (&["instance", "delete", "amcibersblt"], "--yes"),
        (&["instance", "show"], "INSTANCE"),
        (&["instance", "deactivate"], "INSTANCE"),
        (&["instance", "link", "amcibersblt"], "--account"),
        (&["account", "create"], "--account-id"),
        (&["account", "edit", "Spare"], "--name"),
        (&["account", "delete", "Spare"], "--yes"),
        (&["account", "show"], "ACCOUNT"),
        (&["brand", "clear", "amcibersblt"], "--yes"),
        (&["health", "history"], "INSTANCE"),
        (&["key", "rotate"], "--yes"),
        (&["auth", "login"], "--client-id"),
        (&["user", "remove", "bob"], "--yes"),
    ];
    type Trigger = (
        &'static str,
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
    );
    let triggers: [Trigger; 3] = [
        ("stdin not a terminal", &[], &[]),
        ("--no-input", &["--no-input"], &[]),
        ("AMCCTL_NO_INPUT=1", &[], &[("AMCCTL_NO_INPUT", "1")]),
    ];
    let mut slowest = Duration::ZERO;
    for (args, flag) in cases {
        for (why, flags, vars) in triggers {
            let mut all = flags.to_vec();
            all.extend_from_slice(args);
            let (r, elapsed) = without_terminal(&env, &all, vars);
            slowest = slowest.max(elapsed);
            assert_eq!(r.code, 2, "{args:?} ({why}): {r:?}");
            assert!(
                r.stderr.contains(flag),
                "{args:?} ({why}) does not name {flag}: {}",
                r.stderr
            );
            assert!(r.stdout.is_empty(), "{args:?} ({why}): {}", r.stdout);
            assert!(
                elapsed < Duration::from_secs(1),
                "{args:?} ({why}) took {elapsed:?}"
            );
        }
    }
    eprintln!("slowest refusal: {slowest:?}");

    // Nothing changed.
    let list = env.ok(&["-o", "json", "instance", "list"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    assert_eq!(list[0]["brands"], serde_json::json!(["Acme"]));
    assert_eq!(list[0]["status"], "PENDING");
    assert_eq!(
        env.ok(&["-o", "json", "account", "list"])
            .json()
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    assert_eq!(
        env.ok(&["-o", "json", "user", "list"])
            .json()
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

// ---------------------------------------------------------------- db

#[test]
fn db_path_check_and_backup() {
    let env = Env::new();
    let db = env.path("amcctl.db");
    assert_eq!(
        env.ok(&["db", "path"]).stdout.trim(),
        db.display().to_string()
    );
    assert_eq!(
        env.ok(&["-o", "json", "db", "path"]).json()["path"],
        db.display().to_string()
    );

    // No store yet: check says so and creates none.
    let r = env.run(&["db", "check"]);
    assert_eq!(r.code, 8, "{r:?}");
    assert!(!db.exists());

    env.account();
    env.instance("amcibersblt", "acme-us");
    let r = env.ok(&["db", "check"]);
    assert!(r.stdout.contains("ok"), "{}", r.stdout);
    assert_eq!(env.ok(&["-o", "json", "db", "check"]).json()["ok"], true);

    // A backup: refuses an existing file (untouched), else a sound copy.
    let existing = env.path("existing.db");
    std::fs::write(&existing, b"keep me").expect("write");
    let r = env.run(&["db", "backup", existing.to_str().expect("utf-8")]);
    assert_eq!(r.code, 5, "{r:?}");
    assert_eq!(std::fs::read(&existing).expect("read"), b"keep me");
    let backup = env.path("backup.db");
    let b = backup.to_str().expect("utf-8");
    let r = env.ok(&["-o", "json", "db", "backup", b]);
    assert_eq!(r.json()["backup"], b);
    env.ok(&["--db", b, "db", "check"]);
    let copied = env
        .ok(&["--db", b, "-o", "json", "instance", "list"])
        .json();
    assert_eq!(copied[0]["instance_id"], "amcibersblt");

    // Problems: exit 8, each listed.
    crate::support::Probe::new(&backup).exec_batch(
        "PRAGMA foreign_keys = OFF;
         INSERT INTO instance_brands (instance_id, brand_name, created_at)
             VALUES ('no-such-instance', 'Ghost', '2026-01-01T00:00:00Z');
         PRAGMA user_version = 99;",
    );
    let r = env.run(&["--db", b, "db", "check"]);
    assert_eq!(r.code, 8, "{r:?}");
    assert!(
        r.stderr
            .contains("foreign key violation in instance_brands"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("schema version 99"), "{}", r.stderr);
    let r = env.run(&["--db", b, "-o", "json", "db", "check"]);
    assert_eq!(r.code, 8);
    assert_eq!(r.json()["ok"], false);
    assert_eq!(r.json()["problems"].as_array().map(Vec::len), Some(2));
}

/// `db backup` while another amcctl runs a bulk health check that keeps
/// writing results: the copy is consistent and passes `db check`.
#[test]
fn db_backup_while_a_bulk_health_check_writes() {
    const N: usize = 300;
    let fake = FakeAmc::start();
    let env = Env::with_fake(&fake);
    let ids = env.import_many(N);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    Env::fake_instances(&fake, &refs);
    // 300 checks, 8 at a time, 80 ms each: a few seconds of steady writes.
    fake.set_latency(Duration::from_millis(80));

    let mut check = env
        .command(&[
            "-o",
            "ndjson",
            "health",
            "check",
            "--all",
            "--concurrency",
            "8",
            "--rate",
            "1000",
            "--retries",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn health check");
    let mut results = BufReader::new(check.stdout.take().expect("stdout")).lines();
    // Wait (on its output, not a clock) until the check has saved a batch or two.
    for _ in 0..40 {
        results.next().expect("a result").expect("a line");
    }

    let backup = env.path("during.db");
    let b = backup.to_str().expect("utf-8");
    let r = env.ok(&["-o", "json", "db", "backup", b]);
    assert!(r.json()["bytes"].as_u64().is_some_and(|n| n > 0));

    let mut after = 0;
    for line in results {
        line.expect("a line");
        after += 1;
    }
    let out = check.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        after > 0,
        "the check must still have been running during the backup"
    );
    assert_eq!(40 + after, N);

    let r = env.ok(&["--db", b, "db", "check"]);
    assert!(r.stdout.contains("ok"));
    let copied = env
        .ok(&["--db", b, "-o", "json", "instance", "list"])
        .json();
    assert_eq!(copied.as_array().map(Vec::len), Some(N));
    // The live store has every result; the copy some prefix of them.
    let live = env.ok(&["-o", "json", "health", "status"]).json();
    let healthy = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter(|i| i["health"]["status"] == "HEALTHY")
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(healthy(&live), N);
    // Results printed after the backup finished were saved after it too.
    assert!(
        healthy(&copied) < N,
        "the copy must predate the end of the run"
    );
}

// ---------------------------------------------------------------- man

#[test]
fn man_pages() {
    let env = Env::new();
    let page = env.ok(&["man"]).stdout;
    assert!(
        page.starts_with(".ie") || page.starts_with(".TH"),
        "{}",
        &page[..80.min(page.len())]
    );
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH OPTIONS",
        ".SH SUBCOMMANDS",
        ".SH ENVIRONMENT",
        ".SH FILES",
        ".SH \"EXIT STATUS\"",
    ] {
        assert!(page.contains(section), "no {section}");
    }
    let create = env.ok(&["man", "instance", "create"]).stdout;
    assert!(create.contains("amcctl\\-instance\\-create"), "{create}");
    assert!(create.contains("skip\\-validation"));
    assert_eq!(
        env.ok(&["man", "instance", "rm"]).stdout,
        env.ok(&["man", "instance", "delete"]).stdout
    );
    assert_eq!(env.run(&["man", "instance", "nope"]).code, 2);

    let dir = env.path("man1");
    env.ok(&["man", "--out", dir.to_str().expect("utf-8")]);
    for page in [
        "amcctl.1",
        "amcctl-instance.1",
        "amcctl-instance-create.1",
        "amcctl-db-backup.1",
        "amcctl-completions.1",
    ] {
        assert!(dir.join(page).is_file(), "no {page}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("amcctl.1")).expect("read"),
        page
    );
}
