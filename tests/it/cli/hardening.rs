//! What a hostile server, file or terminal could still do, one test (or
//! more) per finding: secrets echoed back in encoded forms, terminal
//! escapes in AMC's answers, endless stdin, huge brand lists, deleted
//! secrets left on disk, broken rows `db check` missed, I/O errors taken for
//! bugs, a backup written through a symlink, and validation gaps.

use std::os::unix::process::CommandExt;
use std::process::Stdio;

use crate::support::amc::{Amc, CLIENT_ID, ENTITY};
use crate::support::*;
use fake_amc::{FakeAmc, Fault, Route};
use serde_json::{Value, json};

// ------------------------------------------------ 1. secrets, any encoding

/// A client secret with the characters form encoding changes, and a
/// refresh token (whose `|` it changes too). Each holds a marker that is
/// the same in every encoding, so one search finds any form of either.
const ECHO_SECRET: &str = "cs+SECRETLEAK/7f3a=9c1e==";
const ECHO_REFRESH: &str = "Atzr|IwEBIREFRESHLEAK+a/b=c9d8";
const MARKERS: [&str; 2] = ["SECRETLEAK", "REFRESHLEAK"];

/// Every byte a test can get at: the files of a folder, recursively.
fn folder_bytes(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(folder_bytes(&path));
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path.display().to_string(), bytes));
        }
    }
    out
}

fn assert_no_marker(what: &str, bytes: &[u8]) {
    for m in MARKERS {
        let found = bytes.windows(m.len()).any(|w| w == m.as_bytes());
        assert!(
            !found,
            "{what} holds a form of a secret ({m}):\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
}

fn secrets_echoed_by_the_token_endpoint_never_leak_in_any_form() {
    let fake = FakeAmc::start();
    fake.add_client(CLIENT_ID, ECHO_SECRET, ECHO_REFRESH);
    fake.add_account(ENTITY, "Acme", "ATVPDKIKX0DER");
    fake.add_instance(ENTITY, "amcecho0001", "echo");
    let env = TestEnv::new().with_fake_amc(&fake);
    env.create_account(ENTITY, "Acme");
    env.create_instance("amcecho0001", "echo", ENTITY, &[]);
    crate::support::amc::login_with(&env, &[], ECHO_SECRET, ECHO_REFRESH).ok();
    // Echoes of the token request's form: in the description, in the error
    // code, as JSON with escaped slashes, and lower-case percent escapes.
    let lower = |s: &str| {
        let mut out = String::new();
        for b in s.bytes() {
            if b.is_ascii_alphanumeric() {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02x}"));
            }
        }
        out
    };
    let echoes = [
        r#"{"error":"invalid_request","error_description":"cannot parse {request}"}"#.to_owned(),
        r#"{"error":"{request}","error_description":"refused"}"#.to_owned(),
        format!(
            r#"{{"error":"invalid_grant","error_description":"token {} secret {}"}}"#,
            ECHO_REFRESH.replace('/', "\\/").replace('|', "\\u007c"),
            ECHO_SECRET.replace('/', "\\/")
        ),
        format!(
            r#"{{"error":"invalid_client","error_description":"refresh_token={}&client_secret={}"}}"#,
            lower(ECHO_REFRESH),
            lower(ECHO_SECRET)
        ),
    ];
    let mut outputs: Vec<(String, Vec<u8>)> = Vec::new();
    for (i, body) in echoes.iter().enumerate() {
        // The stored access token no longer works, so the next call refreshes.
        fake.expire_tokens();
        fake.push_faults(
            Route::Token,
            [Fault::Answer {
                status: 400,
                content_type: "application/json".into(),
                body: body.clone(),
            }],
        );
        let args: Vec<&str> = match i % 4 {
            0 => vec!["health", "check", "--all", "-o", "json", "-vv"],
            1 => vec!["health", "check", "--all", "-o", "ndjson"],
            2 => vec!["instance", "test", "amcecho0001", "-vv"],
            _ => vec!["health", "check", "--all", "-o", "csv"],
        };
        let out = env.run(&args);
        assert!(
            [6, 7, 10].contains(&out.code),
            "a refused refresh fails the command: {args:?} → {}\n{}",
            out.code,
            out.stderr
        );
        outputs.push((format!("stdout of {args:?}"), out.stdout_bytes.clone()));
        outputs.push((format!("stderr of {args:?}"), out.stderr.into_bytes()));
    }
    // The echoes did reach amcctl: the results say the refresh was refused.
    let stored = env
        .probe()
        .rows("SELECT error FROM health_checks WHERE error IS NOT NULL");
    assert!(!stored.is_empty(), "the refused refreshes were recorded");
    eprintln!("stored errors: {stored:?}");
    assert!(
        stored.iter().any(|r| r[0].contains("refresh_token=Atzr")),
        "the echo reached the message, its secrets cut out: {stored:?}"
    );
    for args in [
        vec!["health", "status", "-o", "json"],
        vec!["health", "history", "amcecho0001", "-o", "csv"],
        vec!["health", "report", "-o", "json"],
        vec!["instance", "list"],
        vec!["instance", "export"],
        vec!["auth", "status", "-o", "json"],
    ] {
        let out = env.run(&args).ok();
        outputs.push((format!("stdout of {args:?}"), out.stdout_bytes.clone()));
        outputs.push((format!("stderr of {args:?}"), out.stderr.into_bytes()));
    }
    let backup = env.scratch().join("backup.db");
    env.run(&["db", "backup", backup.to_str().unwrap()]).ok();
    outputs.push(("the backup".into(), std::fs::read(&backup).unwrap()));
    outputs.extend(folder_bytes(env.home()));
    for (what, bytes) in &outputs {
        assert_no_marker(what, bytes);
    }
}

// ------------------------------------------- 2. hostile server texts

/// Texts a tampered answer may carry: escape sequences (CSI, OSC, DCS),
/// C0 and C1 controls, CR/LF that forge lines, bidi overrides, and
/// over-long strings. `FORGED` marks where a forged line would start.
fn hostile_corpus() -> Vec<String> {
    let mut v: Vec<String> = [
        "\u{1b}[2J\u{1b}[HFORGED screen cleared",
        "\u{1b}]0;FORGED title\u{7}",
        "\u{1b}]0;FORGED title\u{1b}\\",
        "\u{1b}]8;;http://127.0.0.1/x\u{1b}\\link\u{1b}]8;;\u{1b}\\",
        "\u{1b}]52;c;Rk9SR0VE\u{7}",
        "\u{1b}P+q544e\u{1b}\\",
        "\u{1b}[31mred\u{1b}[0m",
        "\u{1b}[1A\u{1b}[2KFORGED previous line",
        "\u{1b}[6n",
        "\u{1b}c",
        "\u{1b}7\u{1b}[999;1HFORGED\u{1b}8",
        "\u{9b}2J",
        "\u{9d}0;FORGED\u{9c}",
        "\u{90}q\u{9c}",
        "\u{85}FORGED after NEL",
        "bell\u{7}\u{7}\u{7}",
        "back\u{8}\u{8}\u{8}FORGED",
        "nul\u{0}byte",
        "del\u{7f}char",
        "vt\u{b}ff\u{c}",
        "tab\tFORGED field",
        "ok\nFORGED line",
        "ok\rFORGED line",
        "ok\r\nFORGED line",
        "\u{202e}DEGROF reversed",
        "\u{2066}isolate\u{2069}",
        "\u{200f}rlm \u{200e}lrm",
        "zero\u{200b}width\u{feff}",
        "line\u{2028}FORGED sep",
        "para\u{2029}FORGED sep",
        "alm\u{61c}mark",
        "soft\u{ad}hyphen",
        "\u{1b}",
        "\u{1b}[",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    v.push(format!("{}\u{1b}[2J", "A".repeat(100_000)));
    v.push("\u{1b}[31m".repeat(5_000));
    v
}

/// Whether `c` must not appear raw in output: controls (minus the line
/// breaks and tabs an output format uses itself) and bidi/invisible marks.
fn is_hostile(c: char, allowed: &[char]) -> bool {
    if allowed.contains(&c) {
        return false;
    }
    c.is_control()
        || matches!(c,
            '\u{ad}' | '\u{61c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// Asserts that `text` holds no hostile character (besides `allowed`) and
/// no line that a hostile text forged.
#[track_caller]
fn assert_clean(what: &str, text: &str, allowed: &[char]) {
    assert_clean_chars(what, text, allowed);
    for line in text.split('\n') {
        for field in line.split('\t') {
            let field = field.trim_start_matches(['"', ' ', '\'']);
            assert!(
                !field.starts_with("FORGED"),
                "{what}: a forged line or field: {line:?}"
            );
        }
    }
}

/// The character half of [`assert_clean`], for drawn tables, whose cells
/// wrap (so a wrapped line may well start with any word).
#[track_caller]
fn assert_clean_chars(what: &str, text: &str, allowed: &[char]) {
    if let Some(c) = text.chars().find(|c| is_hostile(*c, allowed)) {
        let at = text.find(c).unwrap_or(0);
        let from = text[..at]
            .char_indices()
            .rev()
            .nth(80)
            .map_or(0, |(i, _)| i);
        panic!(
            "{what}: raw {c:?} reaches the output near {:?}",
            text.get(from..)
                .unwrap_or(text)
                .chars()
                .take(120)
                .collect::<String>()
        );
    }
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        assert!(
            !line.contains('\r'),
            "{what}: a carriage return moves the cursor: {line:?}"
        );
    }
}

/// The AMC error answers that carry `text` in each field amcctl shows.
fn hostile_faults(text: &str) -> Vec<Fault> {
    let body = |v: Value| Fault::Answer {
        status: 403,
        content_type: "application/json".into(),
        body: v.to_string(),
    };
    vec![
        body(json!({"code": text, "details": "denied"})),
        body(json!({"code": "403", "details": text})),
        body(json!({"message": text})),
        body(json!({"statusReason": text})),
        Fault::Answer {
            status: 400,
            content_type: "text/plain".into(),
            body: text.to_owned(),
        },
        Fault::NotCompleted(text.to_owned()),
    ]
}

fn hostile_server_texts_never_reach_stdout_or_stderr_raw() {
    let amc = Amc::logged_in();
    // The fake has no rate limit: no need to wait between checks.
    amc.env.run(&["config", "set", "rate", "10000"]).ok();
    let corpus = hostile_corpus();
    assert!(corpus.len() >= 30);
    let mut ids = Vec::new();
    for (i, text) in corpus.iter().enumerate() {
        for (j, fault) in hostile_faults(text).into_iter().enumerate() {
            let id = format!("amch{i:03}f{j}");
            amc.fake.add_instance(ENTITY, &id, &id);
            amc.fake.on_instance(&id, fault);
            ids.push(id);
        }
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    amc.import(&refs, "ACTIVE");
    let env = &amc.env;
    // Piped: every format of every command that shows AMC's texts.
    let piped: Vec<Vec<&str>> = vec![
        vec!["health", "check", "--all"],
        vec!["health", "check", "--all", "-o", "json"],
        vec!["health", "check", "--all", "-o", "ndjson"],
        vec!["health", "check", "--all", "-o", "csv"],
        vec!["health", "check", "--all", "--nagios"],
        vec!["health", "status"],
        vec!["health", "status", "-o", "json"],
        vec!["health", "status", "-o", "csv"],
        vec!["health", "report"],
        vec!["health", "report", "-o", "csv"],
        vec!["health", "history", "amch000f0"],
        vec!["health", "history", "amch032f1", "-o", "csv"],
        vec!["instance", "list"],
        vec!["instance", "list", "-o", "ndjson"],
        vec!["instance", "list", "-o", "csv"],
        vec!["instance", "export"],
        vec!["instance", "export", "--format", "csv"],
    ];
    for args in &piped {
        let out = env.run(args);
        assert!(
            [0, 1, 2, 10].contains(&out.code),
            "{args:?} exits as a check or listing does: {}\n{}",
            out.code,
            out.stderr
        );
        assert_clean(&format!("stdout of {args:?}"), &out.stdout, &['\n', '\t']);
        assert_clean(&format!("stderr of {args:?}"), &out.stderr, &['\n']);
        if args.contains(&"json") || args.contains(&"export") && !args.contains(&"csv") {
            let _: Value = serde_json::from_str(&out.stdout).expect("still JSON");
        }
    }
    // One instance at a time, with its error on stderr, in both kinds of output.
    for id in ids.iter().step_by(5) {
        for format in ["table", "json"] {
            let args = ["instance", "test", id.as_str(), "-o", format];
            let out = env.run(&args);
            assert_clean(&format!("stdout of {args:?}"), &out.stdout, &['\n', '\t']);
            assert_clean(&format!("stderr of {args:?}"), &out.stderr, &['\n']);
        }
    }
    // Nothing hostile was stored either.
    for row in env.probe().rows(
        "SELECT coalesce(error, '') FROM health_checks
         UNION ALL SELECT coalesce(health_error, '') FROM amc_instances",
    ) {
        assert_clean("a stored error", &row[0], &[]);
    }
    // On a terminal: the tables comfy-table draws, and messages on stderr.
    for args in [
        vec!["health", "status"],
        vec!["health", "history", "amch001f1"],
        vec!["instance", "test", "amch002f3"],
        vec!["instance", "test", "amch007f5"],
    ] {
        let text = in_terminal(env, &args);
        assert!(
            text.contains("amch"),
            "{args:?} printed on the terminal: {text}"
        );
        assert_clean_chars(&format!("{args:?} on a terminal"), &text, &['\n', '\r']);
    }
}

fn hostile_token_endpoint_texts_never_reach_stderr_raw() {
    let amc = Amc::new();
    for text in hostile_corpus().iter().step_by(2) {
        for body in [
            json!({"error": "invalid_grant", "error_description": text}),
            json!({"error": text, "error_description": "no"}),
        ] {
            for format in ["table", "json"] {
                amc.fake.push_faults(
                    Route::Token,
                    [Fault::Answer {
                        status: 400,
                        content_type: "application/json".into(),
                        body: body.to_string(),
                    }],
                );
                let out = crate::support::amc::login_with(
                    &amc.env,
                    &["-o", format],
                    "s3cr3t-value",
                    "Atzr|x",
                );
                assert_eq!(out.code, 7, "{}", out.stderr);
                assert_clean("stderr of auth login", &out.stderr, &['\n']);
            }
        }
    }
}

/// Runs `args` in a pseudo-terminal (stdout and stderr both a terminal,
/// no colour) and returns all it printed.
fn in_terminal(env: &TestEnv, args: &[&str]) -> String {
    use expectrl::{Eof, Expect};
    let mut cmd = env.command("alice", args);
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    let mut p = expectrl::Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(std::time::Duration::from_secs(120)));
    let rest = p.expect(Eof).expect("the program ends");
    let _ = p.get_process().wait();
    String::from_utf8_lossy(rest.as_bytes()).into_owned()
}

// ----------------------------------------------- 3. bounded stdin reads

/// Runs `args` with `/dev/zero` on stdin under a 1.5 GB address-space
/// limit: an unbounded read would abort the process.
fn with_endless_stdin(env: &TestEnv, args: &[&str], extra: &[(&str, &str)]) -> Output {
    let mut cmd = env.command("alice", args);
    cmd.envs(extra.iter().copied());
    cmd.stdin(std::fs::File::open("/dev/zero").expect("/dev/zero"));
    // SAFETY: only setrlimit, which is async-signal-safe, runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 1536 << 20,
                rlim_max: 1536 << 20,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().expect("run amcctl");
    Output {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        stdout_bytes: out.stdout,
    }
}

fn endless_stdin_is_exit_2_for_every_reader() {
    let amc = Amc::new();
    let env = &amc.env;
    env.create_instance("amcstdin0001", "stdin", ENTITY, &[]);
    let before = env.dump();
    for (args, extra) in [
        (
            vec![
                "auth",
                "login",
                "--client-id",
                CLIENT_ID,
                "--client-secret-stdin",
            ],
            vec![("AMCCTL_REFRESH_TOKEN", "Atzr|x")],
        ),
        (
            vec![
                "auth",
                "login",
                "--client-id",
                CLIENT_ID,
                "--refresh-token-stdin",
            ],
            vec![("AMCCTL_CLIENT_SECRET", "s3cr3t-value")],
        ),
        (
            vec![
                "auth",
                "login",
                "--client-id",
                CLIENT_ID,
                "--client-secret-stdin",
                "--refresh-token-stdin",
            ],
            vec![],
        ),
        (
            vec![
                "auth",
                "login",
                "--client-id",
                CLIENT_ID,
                "--web",
                "--no-browser",
            ],
            vec![("AMCCTL_CLIENT_SECRET", "s3cr3t-value")],
        ),
        (
            vec![
                "instance",
                "config",
                "set",
                "amcstdin0001",
                "key",
                "--value-stdin",
            ],
            vec![],
        ),
        (vec!["instance", "import", "-", "--format", "json"], vec![]),
        (vec!["instance", "import", "-", "--format", "csv"], vec![]),
    ] {
        let out = with_endless_stdin(env, &args, &extra);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.contains("stdin") || out.stderr.contains("MiB"),
            "{}",
            out.stderr
        );
    }
    env.assert_unchanged(&before, "endless stdin changes nothing");
    assert!(amc.token_requests().is_empty(), "nothing was sent");
}

// ------------------------------------------------ 4. the count rule first

fn the_brand_count_rule_comes_before_anything_else() {
    let env = TestEnv::new();
    env.create_account(ENTITY, "Acme");
    env.create_instance("amcbrand001", "brands", ENTITY, &[]);
    // 101 distinct brands and then one that is invalid: the count decides.
    let mut brands: Vec<String> = (0..101).map(|i| format!("b{i}")).collect();
    brands.push("bad\u{1}brand".into());
    let mut args = vec!["brand", "set", "amcbrand001"];
    args.extend(brands.iter().map(String::as_str));
    env.run(&args).fails(2, &["at most 100 brands"]);
    // Duplicates do not count twice: 100 distinct among 60,000 arguments.
    let many: Vec<String> = (0..60_000).map(|i| format!("b{}", i % 100)).collect();
    let mut args = vec!["brand", "set", "amcbrand001", "-o", "json"];
    args.extend(many.iter().map(String::as_str));
    let set = env.run(&args).ok().json();
    assert_eq!(set.as_array().map(Vec::len), Some(100));
    // An import file with 100,000 brands for one instance, one of them bad.
    let mut huge: Vec<String> = (0..100_000).map(|i| format!("brand {i}")).collect();
    huge[99_999] = "bad\u{1}".into();
    let file = env.write_file(
        "huge.json",
        serde_json::to_vec(
            &json!([{"instance_id": "amcbrand002", "name": "huge", "region": "na",
            "account": {"account_id": ENTITY}, "brands": huge}]),
        )
        .unwrap(),
    );
    let before = env.dump();
    env.run(&["instance", "import", file.to_str().unwrap()])
        .fails(2, &["at most 100 brands"]);
    env.assert_unchanged(&before, "a refused import changes nothing");
}

// ------------------------------------------- 6. deleted secrets are gone

fn ciphertexts(env: &TestEnv) -> Vec<String> {
    env.probe().rows(
        "SELECT client_secret_enc FROM credentials UNION ALL SELECT refresh_token_enc FROM credentials
         UNION ALL SELECT access_token_enc FROM credentials WHERE access_token_enc IS NOT NULL",
    )
    .into_iter()
    .map(|r| r[0].clone())
    .collect()
}

#[track_caller]
fn assert_nowhere(env: &TestEnv, old: &[String], extra: &[(String, Vec<u8>)], context: &str) {
    let mut files = folder_bytes(env.home());
    files.extend(extra.iter().cloned());
    for (name, bytes) in &files {
        for token in old {
            // The middle of a token: its bytes and nothing else's.
            let probe = &token.as_bytes()[20..60];
            assert!(
                !bytes.windows(probe.len()).any(|w| w == probe),
                "{context}: {name} still holds an old ciphertext"
            );
        }
    }
}

#[test]
fn logout_and_key_rotation_leave_no_old_ciphertext_on_disk() {
    let amc = Amc::logged_in();
    let env = &amc.env;
    amc.instances(&["amcsecdel01"]);
    env.run(&["health", "check", "--all"]).ok();
    let first = ciphertexts(env);
    assert_eq!(first.len(), 3, "secret, refresh token and access token");
    env.run(&["key", "rotate", "--yes"]).ok();
    assert_nowhere(env, &first, &[], "after key rotate");
    let second = ciphertexts(env);
    env.run(&["auth", "logout"]).ok();
    assert!(ciphertexts(env).is_empty());
    let backup = env.scratch().join("after-logout.db");
    env.run(&["db", "backup", backup.to_str().unwrap()]).ok();
    let extra = vec![("the backup".to_owned(), std::fs::read(&backup).unwrap())];
    assert_nowhere(env, &second, &extra, "after auth logout");
}

// ------------------------------------------------ 7. db check finds rows

#[test]
fn db_check_names_rows_that_break_the_rules() {
    let env = TestEnv::new();
    env.create_account(ENTITY, "Acme");
    let ids: Vec<String> = ["amcrule0001", "amcrule0002", "amcrule0003", "amcrule0004"]
        .iter()
        .map(|i| {
            env.create_instance(i, i, ENTITY, &[])["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    env.run(&["db", "check"]).ok();
    // The ids are UUIDs the store made, safe to quote as they are.
    env.probe().exec_batch(&format!(
        "PRAGMA ignore_check_constraints = ON;
         UPDATE amc_instances SET status = 'BOGUS' WHERE id = '{}';
         UPDATE amc_instances SET region = 'xx' WHERE id = '{}';
         UPDATE amc_instances SET name = x'00ff1b' WHERE id = '{}';
         UPDATE amc_instances SET instance_id = 'NOT AN ID' WHERE id = '{}';",
        ids[0], ids[1], ids[2], ids[3]
    ));
    let out = env.run(&["db", "check", "-o", "json"]).code(8);
    let report = out.json();
    let problems = report["problems"].to_string();
    for id in &ids {
        assert!(problems.contains(id.as_str()), "{id} is named: {problems}");
    }
    assert!(problems.contains("status"), "{problems}");
    assert!(problems.contains("region"), "{problems}");
}

/// A stored value that is not what its column must hold (a timestamp that
/// is not RFC 3339, a country whose marketplace is another's) fails the
/// command reading it with exit 8 naming the column and the value, and
/// `db check` names the row.
#[test]
fn unreadable_values_name_their_column_and_db_check_finds_them() {
    let env = TestEnv::new();
    env.create_account(ENTITY, "Acme");
    let id = env.create_instance("amcbadtime1", "Bad time", ENTITY, &[])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = env.run(&["instance", "list", "-o", "json"]).ok().stdout;
    env.probe().exec_batch(&format!(
        "UPDATE amc_instances SET created_at = 'last tuesday' WHERE id = '{id}';"
    ));
    let out = env.run(&["instance", "show", "amcbadtime1"]).code(8);
    assert_eq!(
        out.stderr,
        "error: the store holds a value amcctl cannot read: column created_at holds \
         \"last tuesday\", which is not an RFC 3339 time\n\
         hint: `amcctl db check` names the rows to repair or delete\n"
    );
    let check = env.run(&["db", "check", "-o", "json"]).code(8);
    let problems = check.json()["problems"].to_string();
    assert!(
        problems.contains(&format!(
            "amc_instances row {id}: created_at is not an RFC 3339 time"
        )),
        "{problems}"
    );

    env.probe().exec_batch(&format!(
        "UPDATE amc_instances SET created_at = updated_at WHERE id = '{id}';
         UPDATE amc_accounts SET country_code = 'DE';"
    ));
    let out = env.run(&["account", "list"]).code(8);
    assert!(
        out.stderr.contains("column country_code holds \"DE\", which is not a country code matching its marketplace ID"),
        "{}",
        out.stderr
    );
    env.probe()
        .exec_batch("UPDATE amc_accounts SET country_code = 'US';");
    assert_eq!(
        env.run(&["instance", "list", "-o", "json"]).ok().stdout,
        before
    );
    env.run(&["db", "check"]).ok();
}

// --------------------------------------- 8. I/O errors are not bugs

fn io_errors_name_the_file_and_are_not_exit_1() {
    let env = TestEnv::new();
    // A config file that can be read (it does not exist) but not written:
    // its folder cannot be created, even by root, as on a read-only or
    // full file system.
    let config = "/proc/amcctl-no-such-folder/config.toml";
    let out = env
        .run(&["--config", config, "config", "set", "rate", "5"])
        .code(8);
    assert!(
        out.stderr.contains("amcctl-no-such-folder"),
        "{}",
        out.stderr
    );
    // Results into a full disk.
    for args in [
        vec!["instance", "list", "-o", "json"],
        vec!["config", "path"],
        vec!["db", "path"],
        vec!["instance", "list", "-o", "csv"],
    ] {
        let mut cmd = env.command("alice", &args);
        cmd.stdout(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        );
        let out = cmd.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(8), "{args:?}: {stderr}");
        assert!(stderr.contains("standard output"), "{stderr}");
    }
}

/// An error made from another one keeps it: `-v` ends the message with
/// what SQLite itself said, under `Caused by:`; without `-v`, and in a
/// machine format, the error reads as it always has.
#[test]
fn verbose_errors_show_what_caused_them() {
    let env = TestEnv::new();
    let db = env.db_path();
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(
        &db,
        "not a store, only text long enough for a header ".repeat(4),
    )
    .unwrap();
    let message = format!(
        "error: cannot open the store {}: file is not a database\n",
        db.display()
    );

    let out = env.run(&["instance", "list"]).code(8);
    assert_eq!(out.stderr, message);
    let out = env.run(&["-v", "instance", "list"]).code(8);
    assert_eq!(
        out.stderr,
        format!("{message}\nCaused by:\n  Error code 26: file is not a database\n")
    );
    let quiet = env.run(&["instance", "list", "-o", "json"]).code(8);
    let verbose = env.run(&["-v", "instance", "list", "-o", "json"]).code(8);
    assert_eq!(verbose.stderr, quiet.stderr);
    assert_eq!(verbose.error_json()["code"], "store");
}

// --------------------------------------------- 9. backups and symlinks

fn db_backup_never_writes_through_a_symlink() {
    let env = TestEnv::new();
    env.create_account(ENTITY, "Acme");
    let target = env.scratch().join("elsewhere.db");
    let link = env.scratch().join("backup.db");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    env.run(&["db", "backup", link.to_str().unwrap()])
        .fails(5, &["already exists"]);
    assert!(!target.exists(), "nothing was created through the link");
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
}

// ---------------------------------------------- 10. validation gaps

fn a_rate_too_small_to_use_is_refused_as_usage() {
    let amc = Amc::logged_in();
    amc.instances(&["amcrate0001"]);
    amc.env
        .run(&["health", "check", "--all", "--rate", "1e-300"])
        .fails(2, &["rate"]);
    amc.env
        .run(&["config", "set", "rate", "1e-300"])
        .fails(2, &["rate"]);
}

fn an_empty_client_id_is_refused_before_anything_is_sent() {
    let amc = Amc::new();
    let out = crate::support::amc::login_with(&amc.env, &[], "s3cr3t-value", "Atzr|x");
    assert_eq!(out.code, 7, "the fake knows no such secret: {}", out.stderr);
    let requests = amc.token_requests().len();
    amc.env
        .run_stdin(
            &[
                "auth",
                "login",
                "--client-id",
                "",
                "--client-secret-stdin",
                "--refresh-token-stdin",
            ],
            "s3cr3t-value\nAtzr|x\n",
        )
        .fails(2, &["client-id"]);
    amc.env
        .run_env(
            "alice",
            &["auth", "login"],
            &[
                ("AMCCTL_CLIENT_ID", "  "),
                ("AMCCTL_CLIENT_SECRET", "s3cr3t-value"),
                ("AMCCTL_REFRESH_TOKEN", "Atzr|x"),
            ],
        )
        .fails(2, &["client-id"]);
    assert_eq!(amc.token_requests().len(), requests, "nothing was sent");
}

fn soft_hyphens_are_refused_in_names() {
    let env = TestEnv::new();
    env.create_account(ENTITY, "Acme");
    env.run(&[
        "account",
        "create",
        "--account-id",
        "ENTITY2BB2BB22BBB2",
        "--name",
        "Soft\u{ad}hyphen",
    ])
    .fails(2, &["name"]);
    let out = env.run(&[
        "instance",
        "create",
        "--skip-validation",
        "--instance-id",
        "amcsoft0001",
        "--name",
        "in\u{ad}visible",
        "--account",
        ENTITY,
    ]);
    out.fails(2, &["name"]);
}

fn uuid_shaped_names_are_refused_and_uuids_resolve_first() {
    let env = TestEnv::new();
    let acct = env.create_account(ENTITY, "Acme");
    let a = env.create_instance("amcuuid0001", "first", ENTITY, &[]);
    let uuid = a["id"].as_str().unwrap().to_owned();
    env.run(&[
        "instance",
        "create",
        "--skip-validation",
        "--instance-id",
        "amcuuid0002",
        "--name",
        &uuid,
        "--account",
        ENTITY,
    ])
    .fails(2, &["UUID"]);
    env.run(&[
        "account",
        "create",
        "--account-id",
        "ENTITY3CC3CC33CCC3",
        "--name",
        acct["id"].as_str().unwrap(),
    ])
    .fails(2, &["UUID"]);
    // A row named like that from an older store: the UUID still picks its own row.
    let b = env.create_instance("amcuuid0003", "second", ENTITY, &[]);
    env.probe().exec(&format!(
        "UPDATE amc_instances SET name = '{uuid}' WHERE id = '{}'",
        b["id"].as_str().unwrap()
    ));
    let shown = env.json(&["instance", "show", &uuid]);
    assert_eq!(shown["instance_id"], "amcuuid0001");
    let shown = env.json(&["account", "show", acct["id"].as_str().unwrap()]);
    assert_eq!(shown["account_id"], ENTITY);
}

#[test]
fn a_world_writable_home_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    env.run(&["instance", "list"]).ok();
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = env.run(&["instance", "list"]).ok();
    assert!(out.stderr.contains("every user"), "{}", out.stderr);
    std::fs::set_permissions(env.home(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = env.run(&["instance", "list"]).ok();
    assert!(!out.stderr.contains("every user"), "{}", out.stderr);
}

fn leftovers_of_a_killed_rotation_are_removed() {
    let amc = Amc::logged_in();
    let leftover = amc.env.home().join("key.new.tmp-00000000deadbeef");
    std::fs::write(&leftover, "a key a killed rotation was writing\n").unwrap();
    amc.env.run(&["auth", "status"]).ok();
    assert!(!leftover.exists(), "the leftover is gone");
    assert!(amc.env.home().join("key").exists());
}

crate::on_both_backends!(
    secrets_echoed_by_the_token_endpoint_never_leak_in_any_form,
    hostile_server_texts_never_reach_stdout_or_stderr_raw,
    hostile_token_endpoint_texts_never_reach_stderr_raw,
    endless_stdin_is_exit_2_for_every_reader,
    the_brand_count_rule_comes_before_anything_else,
    io_errors_name_the_file_and_are_not_exit_1,
    db_backup_never_writes_through_a_symlink,
    a_rate_too_small_to_use_is_refused_as_usage,
    an_empty_client_id_is_refused_before_anything_is_sent,
    soft_hyphens_are_refused_in_names,
    uuid_shaped_names_are_refused_and_uuids_resolve_first,
    leftovers_of_a_killed_rotation_are_removed,
);
