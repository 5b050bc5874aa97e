//! Prompts in a real pseudo-terminal, driving the real binary: the create
//! form (an invalid value re-asked, selection lists, the confirmation), the
//! edit form's defaults, the fuzzy instance picker, a declined delete, Ctrl-C
//! in each kind of prompt, colour and table width on a terminal.
//!
//! Synchronisation is by what the program prints (expect), never by sleeping;
//! timeouts are generous for a busy two-core machine.

use std::cell::Cell;
use std::process::{Command, Stdio};
use std::time::Duration;

use expectrl::process::unix::WaitStatus;
use expectrl::{ControlCode, Eof, Expect, Session};
use serde_json::Value;

use crate::support::{FIXED_NOW, assert_snapshot};

const ENTITY: &str = "ENTITY1AA1AA11AAA1";
const SPARE: &str = "ENTITY2BB2BB22BBB2";
const TIMEOUT: Duration = Duration::from_secs(20);
const DOWN: &str = "\x1b[B";
const SHOW_CURSOR: &str = "\x1b[?25h";

/// The binary under test: cargo's, or `AMCCTL_TEST_BIN`.
fn bin() -> String {
    std::env::var("AMCCTL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_amcctl").to_owned())
}

type Pty = expectrl::session::OsSession;

/// A temp folder as home and store; commands run either plainly (to set up
/// and inspect) or in a pseudo-terminal (to be driven).
struct Env {
    dir: tempfile::TempDir,
    /// The seed of the next command, when the clock is fixed.
    seed: Option<Cell<u64>>,
}

impl Env {
    fn new() -> Env {
        Env::started(None)
    }

    /// The same with the clock stopped at [`FIXED_NOW`] and the row ids
    /// seeded, a seed for each command.
    fn with_fixed_clock() -> Env {
        Env::started(Some(Cell::new(0)))
    }

    fn started(seed: Option<Cell<u64>>) -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("temp dir"),
            seed,
        };
        env.ok(&[
            "account",
            "create",
            "--account-id",
            ENTITY,
            "--name",
            "Acme",
        ]);
        env.ok(&[
            "account",
            "create",
            "--account-id",
            SPARE,
            "--name",
            "Spare",
            "--country",
            "DE",
        ]);
        env
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args);
        self.hermetic(c)
    }

    /// `c` with nothing of the caller's environment but a fixed user,
    /// terminal type and locale, in the temp home.
    fn hermetic(&self, mut c: Command) -> Command {
        c.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", self.dir.path())
            .env("AMCCTL_HOME", self.dir.path())
            .env("USER", "tester")
            .env("TERM", "xterm-256color")
            .env("LANG", "C.UTF-8")
            .current_dir(self.dir.path());
        if let Some(seed) = &self.seed {
            c.env("AMCCTL_TEST_NOW", FIXED_NOW)
                .env("AMCCTL_TEST_SEED", seed.replace(seed.get() + 1).to_string());
        }
        c
    }

    /// Runs without a terminal, expecting success; returns stdout.
    fn ok(&self, args: &[&str]) -> Vec<u8> {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run amcctl");
        assert!(
            out.status.success(),
            "amcctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Runs `-o json ARGS` without a terminal, expecting success and JSON.
    fn json(&self, args: &[&str]) -> Value {
        let full = [&["-o", "json"], args].concat();
        let stdout = self.ok(&full);
        serde_json::from_slice(&stdout).unwrap_or_else(|e| {
            panic!(
                "amcctl {full:?} printed no JSON ({e}): {}",
                String::from_utf8_lossy(&stdout)
            )
        })
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

    fn instances(&self) -> Vec<Value> {
        self.json(&["instance", "list"])
            .as_array()
            .cloned()
            .expect("instance list prints an array")
    }

    /// Starts `args` in a pseudo-terminal (stdin, stdout and stderr all the
    /// terminal), without colour so expectations read plainly.
    fn pty(&self, args: &[&str]) -> Pty {
        self.pty_with(args, &[("NO_COLOR", "1")])
    }

    /// Starts `args` in a pseudo-terminal of `cols` x `rows`. A shell waits
    /// for a key before it starts amcctl, so the size is in place before
    /// amcctl can measure the terminal.
    fn pty_sized(&self, args: &[&str], vars: &[(&str, &str)], cols: u16, rows: u16) -> Pty {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(r#"read _go && exec "$0" "$@""#)
            .arg(bin())
            .args(args);
        let mut p = spawn_pty(self.hermetic(sh), vars);
        p.get_process_mut()
            .set_window_size(cols, rows)
            .expect("size the terminal");
        send(&mut p, "\r");
        p
    }

    fn pty_with(&self, args: &[&str], vars: &[(&str, &str)]) -> Pty {
        spawn_pty(self.command(args), vars)
    }
}

/// Starts `cmd` with `vars` added in a pseudo-terminal, with the test timeout.
fn spawn_pty(mut cmd: Command, vars: &[(&str, &str)]) -> Pty {
    cmd.envs(vars.iter().copied());
    let mut p = Session::spawn(cmd).expect("spawn in a pty");
    p.set_expect_timeout(Some(TIMEOUT));
    p
}

/// Everything the program still prints, then its exit code.
fn finish(mut p: Pty) -> (String, i32) {
    let rest = p.expect(Eof).expect("the program ends");
    let text = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    let status = p.get_process().wait().expect("wait");
    let code = match status {
        WaitStatus::Exited(_, code) => code,
        other => panic!("amcctl did not exit normally: {other:?}\n{text}"),
    };
    (text, code)
}

fn expect(p: &mut Pty, needle: &str) -> String {
    let found = p
        .expect(needle)
        .unwrap_or_else(|e| panic!("waiting for {needle:?}: {e}"));
    String::from_utf8_lossy(found.before()).into_owned()
}

fn send(p: &mut Pty, keys: &str) {
    p.send(keys).expect("type into the pty");
}

#[test]
fn create_form_re_asks_offers_lists_and_confirms() {
    let env = Env::new();
    let mut p = env.pty(&["instance", "create", "--skip-validation"]);

    expect(&mut p, "AMC instance ID");
    send(&mut p, "Not An ID\r");
    expect(&mut p, "must be 3-64 lowercase letters");
    expect(&mut p, "AMC instance ID");
    send(&mut p, "amcibersblt\r");

    // The name defaults to the ID; the account is a list with a way out.
    expect(&mut p, "(amcibersblt)");
    send(&mut p, "Acme US\r");
    expect(&mut p, "Account");
    expect(&mut p, "+ create a new account");
    send(&mut p, "\r");
    // The region list starts on the account's region (US: na); one down is eu.
    expect(&mut p, "Region");
    expect(&mut p, "fe");
    send(&mut p, DOWN);
    send(&mut p, "\r");
    expect(&mut p, "Description");
    send(&mut p, "\r");
    expect(&mut p, "Brands");
    send(&mut p, "Acme, Acme Kids\r");
    expect(
        &mut p,
        "Create Acme US (amcibersblt) in eu for account Acme (ENTITY1AA1AA11AAA1) with brands Acme, Acme Kids?",
    );
    send(&mut p, "y");
    let (text, code) = finish(p);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Created instance Acme US"), "{text}");

    let saved = env.json(&["instance", "show", "amcibersblt"]);
    assert_eq!(saved["name"], "Acme US");
    assert_eq!(saved["region"], "eu");
    assert_eq!(saved["account"]["account_id"], ENTITY);
    assert_eq!(saved["brands"], serde_json::json!(["Acme", "Acme Kids"]));
    assert_eq!(saved["status"], "PENDING");
    assert_eq!(saved["description"], Value::Null);
}

#[test]
fn create_form_declined_saves_nothing() {
    let env = Env::new();
    let mut p = env.pty(&["instance", "create", "--skip-validation"]);
    expect(&mut p, "AMC instance ID");
    send(&mut p, "amcibersblt\r");
    expect(&mut p, "Name");
    send(&mut p, "\r");
    expect(&mut p, "+ create a new account");
    // The second account, in Germany: the region list starts on eu.
    send(&mut p, DOWN);
    send(&mut p, "\r");
    expect(&mut p, "Region");
    send(&mut p, "\r");
    expect(&mut p, "Description");
    send(&mut p, "\r");
    expect(&mut p, "Brands");
    send(&mut p, "\r");
    expect(&mut p, "in eu for account Spare");
    send(&mut p, "n");
    let (text, code) = finish(p);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Nothing saved."), "{text}");
    assert!(env.instances().is_empty());
}

#[test]
fn edit_form_shows_current_values_as_defaults() {
    let env = Env::new();
    env.instance("amcibersblt", "Acme US");
    env.ok(&[
        "instance",
        "edit",
        "amcibersblt",
        "--region",
        "fe",
        "--description",
        "old text",
    ]);

    let mut p = env.pty(&["instance", "edit", "amcibersblt"]);
    expect(&mut p, "Name");
    expect(&mut p, "(Acme US)");
    send(&mut p, "\r");
    expect(&mut p, "(old text)");
    send(&mut p, "new text\r");
    // The region and account lists start on the current values: Enter keeps them.
    expect(&mut p, "Region");
    send(&mut p, "\r");
    expect(&mut p, "Account");
    send(&mut p, "\r");
    let (text, code) = finish(p);
    assert_eq!(code, 0, "{text}");

    let saved = env.json(&["instance", "show", "amcibersblt"]);
    assert_eq!(saved["name"], "Acme US");
    assert_eq!(saved["description"], "new text");
    assert_eq!(saved["region"], "fe");
    assert_eq!(saved["account"]["account_id"], ENTITY);
}

#[test]
fn fuzzy_picker_when_the_instance_is_omitted() {
    let env = Env::new();
    env.instance("amcibersblt", "Acme US");
    env.instance("amckidskids", "Acme Kids");
    env.instance("amcgardenxx", "Garden");

    let mut p = env.pty(&["instance", "show"]);
    expect(&mut p, "Instance");
    send(&mut p, "kids");
    expect(&mut p, "Acme Kids");
    send(&mut p, "\r");
    let (text, code) = finish(p);
    assert_eq!(code, 0, "{text}");
    // The picked instance's field table, on the terminal.
    assert!(field_is(&text, "instance_id", "amckidskids"), "{text}");
}

/// Whether a FIELD/VALUE table has `value` in the row of `field`.
fn field_is(text: &str, field: &str, value: &str) -> bool {
    text.lines().any(|l| {
        l.trim_start()
            .strip_prefix(field)
            .is_some_and(|rest| rest.trim() == value)
    })
}

#[test]
fn declined_delete_changes_nothing() {
    let env = Env::new();
    env.instance("amcibersblt", "Acme US");
    env.ok(&["brand", "set", "amcibersblt", "Acme"]);
    let before = env.instances();

    let mut p = env.pty(&["instance", "delete", "amcibersblt"]);
    expect(&mut p, "Delete instance Acme US (amcibersblt)");
    send(&mut p, "n");
    let (text, code) = finish(p);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Nothing deleted."), "{text}");
    assert_eq!(env.instances(), before);

    // And a confirmed one does delete.
    let mut p = env.pty(&["instance", "delete", "amcibersblt"]);
    expect(&mut p, "Delete instance");
    send(&mut p, "y");
    let (text, code) = finish(p);
    assert_eq!(code, 0, "{text}");
    assert!(env.instances().is_empty());
}

/// Ctrl-C in a text prompt, a selection list, a confirmation and a secret
/// prompt: exit 130 (not death by signal), the cursor shown again, nothing saved.
#[test]
fn ctrl_c_in_any_prompt_is_exit_130_and_saves_nothing() {
    let env = Env::new();
    env.instance("amcibersblt", "Acme US");
    let before = env.instances();

    // A text prompt, half typed.
    let mut p = env.pty(&["instance", "create", "--skip-validation"]);
    expect(&mut p, "AMC instance ID");
    send(&mut p, "amcnew");
    p.send(ControlCode::EndOfText).expect("Ctrl-C");
    let (text, code) = finish(p);
    assert_eq!(code, 130, "text prompt: {text}");
    assert!(text.contains("interrupted"), "{text}");

    // A selection list (it hides the cursor), deep in the form.
    let mut p = env.pty(&["instance", "create", "--skip-validation"]);
    expect(&mut p, "AMC instance ID");
    send(&mut p, "amcnewnewnw\r");
    expect(&mut p, "Name");
    send(&mut p, "\r");
    expect(&mut p, "+ create a new account");
    send(&mut p, "\r");
    expect(&mut p, "Region");
    p.send(ControlCode::EndOfText).expect("Ctrl-C");
    let (text, code) = finish(p);
    assert_eq!(code, 130, "selection: {text}");
    assert!(text.contains(SHOW_CURSOR), "the cursor must be shown again");

    // The final confirmation of the form.
    let mut p = env.pty(&["instance", "delete", "amcibersblt"]);
    expect(&mut p, "Delete instance");
    p.send(ControlCode::EndOfText).expect("Ctrl-C");
    let (text, code) = finish(p);
    assert_eq!(code, 130, "confirmation: {text}");

    assert_eq!(env.instances(), before);

    // A secret prompt (raw mode, no echo): nothing typed shows, nothing is stored.
    let mut p = env.pty(&[
        "auth",
        "login",
        "--client-id",
        "amzn1.application-oa2-client.x",
    ]);
    expect(&mut p, "client secret");
    send(&mut p, "hunter2");
    p.send(ControlCode::EndOfText).expect("Ctrl-C");
    let (text, code) = finish(p);
    assert_eq!(code, 130, "secret: {text}");
    assert!(!text.contains("hunter2"), "a secret was echoed: {text}");
    let out = env
        .command(&["auth", "status"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(7), "no login was stored");
}

#[test]
fn secret_prompt_reads_without_echo() {
    let env = Env::new();
    // An unreachable token endpoint: the login fails after the prompts, which
    // is enough to see the secrets were read.
    let mut p = env.pty_with(
        &[
            "auth",
            "login",
            "--client-id",
            "amzn1.application-oa2-client.x",
            "--retries",
            "0",
            "--timeout",
            "2s",
        ],
        &[
            ("NO_COLOR", "1"),
            ("AMCCTL_AUTH_URL", "http://127.0.0.1:9/token"),
        ],
    );
    expect(&mut p, "client secret");
    // A backspace and an arrow key are edits, not characters of the secret.
    send(&mut p, "hunter2x\x7f\x1b[D\r");
    expect(&mut p, "Refresh token");
    send(&mut p, "Atzr|secretrefresh\r");
    let (text, code) = finish(p);
    assert!(!text.contains("hunter2"), "{text}");
    assert!(!text.contains("secretrefresh"), "{text}");
    assert_ne!(code, 130, "{text}");
    assert_ne!(code, 0, "{text}");
}

#[test]
fn no_input_on_a_terminal_never_prompts() {
    let env = Env::new();
    for (args, vars) in [
        (
            &["--no-input", "instance", "create"][..],
            &[("NO_COLOR", "1")][..],
        ),
        (
            &["instance", "create"][..],
            &[("NO_COLOR", "1"), ("AMCCTL_NO_INPUT", "1")][..],
        ),
    ] {
        let p = env.pty_with(args, vars);
        let (text, code) = finish(p);
        assert_eq!(code, 2, "{text}");
        assert!(
            text.contains("--instance-id is required when not running interactively"),
            "{text}"
        );
        assert!(!text.contains("AMC instance ID"), "it prompted: {text}");
    }
}

#[test]
fn colour_and_width_on_a_terminal() {
    let env = Env::new();
    for i in 0..3 {
        env.ok(&[
            "instance",
            "create",
            "--instance-id",
            &format!("amclongname{i}"),
            "--name",
            &format!("A rather long instance name number {i} that goes on and on"),
            "--account",
            ENTITY,
            "--skip-validation",
            "--brand",
            "Acme Kids International",
            "--brand",
            "Another Brand With A Long Name",
        ]);
    }
    // Tables are sized to the terminal (80 columns here), wrapping cells.
    let (text, code) = finish(env.pty(&["instance", "list"]));
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("INSTANCE ID"),
        "headers on a terminal: {text}"
    );
    for line in text.lines() {
        assert!(
            line.trim_end().chars().count() <= 80,
            "wider than the terminal: {line:?}"
        );
    }
    assert!(!text.contains('\x1b'), "NO_COLOR: {text:?}");

    // A terminal that reports no size gets cells at their natural width,
    // with colour too (then comfy-table would measure the terminal itself),
    // rather than a column one letter wide.
    for vars in [&[("NO_COLOR", "1")][..], &[]] {
        let (text, code) = finish(env.pty_sized(&["instance", "list"], vars, 0, 0));
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains("A rather long instance name number 0 that goes on and on"),
            "a 0-column terminal squeezed the table: {text:?}"
        );
    }

    // Colour on a terminal, unless NO_COLOR or --color never.
    let (text, _) = finish(env.pty_with(&["instance", "list"], &[]));
    assert!(text.contains("\x1b["), "colour on a terminal: {text:?}");
    let (text, code) = finish(env.pty_with(&["instance", "show", "amcnothere1"], &[]));
    assert_eq!(code, 3);
    assert!(text.contains("\x1b[") && text.contains("error"), "{text:?}");
    let (text, _) = finish(env.pty_with(
        &["--color", "never", "instance", "show", "amcnothere1"],
        &[],
    ));
    assert!(!text.contains('\x1b'), "{text:?}");
}

/// Answers the create form for `amcibersblt` in account Acme (US, region
/// na), checking on the way that the optional prompts show no empty `()`
/// default; stops at the final confirmation.
fn fill_create_form(p: &mut Pty) {
    expect(p, "AMC instance ID");
    send(p, "amcibersblt\r");
    expect(p, "(amcibersblt)");
    send(p, "\r");
    expect(p, "+ create a new account");
    send(p, "\r");
    expect(p, "Region");
    send(p, "\r");
    expect(p, "Description (optional)");
    send(p, "\r");
    let shown = expect(p, "Brands (comma-separated, optional)");
    send(p, "\r");
    let shown = shown + &expect(p, "Create amcibersblt (amcibersblt) in na");
    assert!(!shown.contains("()"), "an empty default is shown: {shown}");
    send(p, "y");
}

#[test]
fn create_form_without_a_login_asks_before_any_question() {
    let env = Env::new();
    // No login and no credentials in the environment: said before the
    // first question, declining saves nothing (exit 7).
    let mut p = env.pty(&["instance", "create"]);
    let before = expect(&mut p, "Validation cannot run");
    assert!(!before.contains("AMC instance ID"), "{before}");
    expect(&mut p, "has no AMC credentials");
    send(&mut p, "n");
    let (text, code) = finish(p);
    assert_eq!(code, 7, "{text}");
    assert!(!text.contains("AMC instance ID"), "it asked anyway: {text}");
    assert!(text.contains("amcctl auth login"), "{text}");
    assert!(env.instances().is_empty());

    // Going on: the answers are saved as PENDING, unvalidated.
    let mut p = env.pty(&["instance", "create"]);
    expect(&mut p, "Validation cannot run");
    send(&mut p, "y");
    fill_create_form(&mut p);
    let (text, code) = finish(p);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("Created instance amcibersblt"), "{text}");
    let saved = env.json(&["instance", "show", "amcibersblt"]);
    assert_eq!(saved["status"], "PENDING");
    assert_eq!(saved["description"], Value::Null);
}

#[test]
fn create_form_offers_pending_when_validation_fails() {
    let amc = fake_amc::FakeAmc::start();
    amc.add_client("amzn1.application-oa2-client.pty", "cs-pty", "Atzr|pty");
    amc.add_account(ENTITY, "Acme", "ATVPDKIKX0DER");
    // The instance is not in AMC: validation fails with a 404.
    let base = amc.base_url();
    let token = amc.token_url();
    let vars = [
        ("NO_COLOR", "1"),
        ("AMCCTL_API_URL", base.as_str()),
        ("AMCCTL_AUTH_URL", token.as_str()),
        ("AMCCTL_CLIENT_ID", "amzn1.application-oa2-client.pty"),
        ("AMCCTL_CLIENT_SECRET", "cs-pty"),
        ("AMCCTL_REFRESH_TOKEN", "Atzr|pty"),
    ];
    let env = Env::new();

    // Declined: exit 6 with AMC's reason, nothing saved.
    let mut p = env.pty_with(&["instance", "create"], &vars);
    let first = expect(&mut p, "AMC instance ID");
    assert!(!first.contains("Validation cannot run"), "{first}");
    // (the form's first question was already matched above)
    send(&mut p, "amcibersblt\r");
    expect(&mut p, "(amcibersblt)");
    send(&mut p, "\r");
    expect(&mut p, "+ create a new account");
    send(&mut p, "\r");
    expect(&mut p, "Region");
    send(&mut p, "\r");
    expect(&mut p, "Description (optional)");
    send(&mut p, "\r");
    expect(&mut p, "Brands");
    send(&mut p, "\r");
    expect(&mut p, "Create amcibersblt");
    send(&mut p, "y");
    expect(&mut p, "validation of amcibersblt failed");
    expect(&mut p, "Save amcibersblt as PENDING anyway");
    send(&mut p, "n");
    let (text, code) = finish(p);
    assert_eq!(code, 6, "{text}");
    assert!(env.instances().is_empty(), "declined: nothing saved");

    // Accepted: saved as PENDING, exit 0.
    let mut p = env.pty_with(&["instance", "create"], &vars);
    fill_create_form(&mut p);
    expect(&mut p, "Save amcibersblt as PENDING anyway");
    send(&mut p, "y");
    let (text, code) = finish(p);
    assert_eq!(code, 0, "{text}");
    let saved = env.json(&["instance", "show", "amcibersblt"]);
    assert_eq!(saved["status"], "PENDING");
    assert!(
        amc.requests()
            .iter()
            .any(|r| r.path.contains("amcibersblt")),
        "validation asked AMC"
    );
}

#[test]
fn a_secret_setting_is_read_without_echo() {
    let env = Env::new();
    env.instance("amcibersblt", "Acme US");
    let mut p = env.pty(&[
        "instance",
        "config",
        "set",
        "amcibersblt",
        "api_secret",
        "--secret",
    ]);
    expect(&mut p, "Value of api_secret");
    send(&mut p, "hunter2-setting\r");
    let (text, code) = finish(p);
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("hunter2"), "the value was echoed: {text}");
    let got = env
        .command(&["instance", "config", "get", "amcibersblt", "api_secret"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert_eq!(String::from_utf8_lossy(&got.stdout), "hunter2-setting\n");
}

#[test]
fn tables_on_a_terminal_byte_for_byte() {
    let env = Env::with_fixed_clock();
    env.instance("amcibersblt", "Berlin");
    env.instance("amcparis001", "Paris");
    // Headers, alignment and the 80 columns of the terminal, with the
    // times (and, in a show, the ids) the fixed clock and seed made.
    for (name, args) in [
        ("terminal_instance_list", &["instance", "list"][..]),
        ("terminal_account_list", &["account", "list"]),
        ("terminal_user_list", &["user", "list"]),
        (
            "terminal_instance_show",
            &["instance", "show", "amcparis001"],
        ),
    ] {
        let (text, code) = finish(env.pty(args));
        assert_eq!(code, 0, "{text}");
        // The closing line keeps the blanks that end the last row.
        assert_snapshot!(name, format!("{}--- end", text.replace("\r\n", "\n")));
    }
}
