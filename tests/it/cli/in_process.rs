//! Commands run in this process, through the library's entry point, with
//! their stdout and stderr captured: no child process, no terminal. What
//! they print must be what the binary prints.

use std::sync::Arc;

use amcctl::env::Env;
use amcctl::output::Streams;

/// What one in-process run left.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs `amcctl --home HOME ARGS…` as `alice`, with nothing else of the
/// environment.
fn run(home: &std::path::Path, args: &[&str]) -> Ran {
    let (streams, stdout, stderr) = Streams::captured();
    let mut argv = vec!["amcctl".to_owned(), format!("--home={}", home.display())];
    argv.extend(args.iter().map(|a| (*a).to_owned()));
    let env = Env::from_pairs([("USER", "alice")]);
    let code = amcctl::run(argv, env, Arc::new(streams));
    Ran {
        code,
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

#[test]
fn commands_print_into_the_streams_they_are_given() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    let made = run(
        home,
        &[
            "account",
            "create",
            "--account-id=ENTITY1AA1AA11AAA1",
            "--name=Acme",
        ],
    );
    assert_eq!(
        (made.code, made.stdout.as_str()),
        (0, ""),
        "{}",
        made.stderr
    );
    assert!(made.stderr.contains("Acme"), "{}", made.stderr);
    let made = run(
        home,
        &[
            "instance",
            "create",
            "--skip-validation",
            "--instance-id=amcibersblt",
            "--name=Acme US",
            "--account=Acme",
            "--brand=acme",
            "--brand=zeta",
        ],
    );
    assert_eq!(made.code, 0, "{}", made.stderr);

    // Not a terminal: plain tab-separated lines, nothing on stderr.
    let brands = run(home, &["brand", "list", "amcibersblt"]);
    assert_eq!(
        (brands.code, brands.stdout.as_str(), brands.stderr.as_str()),
        (0, "acme\nzeta\n", "")
    );
    let listed = run(home, &["instance", "list", "-o", "json"]);
    assert_eq!((listed.code, listed.stderr.as_str()), (0, ""));
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(rows[0]["instance_id"], "amcibersblt");
    assert_eq!(rows[0]["brands"], serde_json::json!(["acme", "zeta"]));

    // A value alone, or the object in a machine format.
    let path = run(home, &["db", "path"]);
    assert_eq!(
        path.stdout,
        format!("{}\n", home.join("amcctl.db").display())
    );
    let path = run(home, &["db", "path", "--json"]);
    let path: serde_json::Value = serde_json::from_str(&path.stdout).unwrap();
    assert_eq!(path["path"], home.join("amcctl.db").display().to_string());
}

#[test]
fn errors_go_to_stderr_with_their_exit_code() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();

    let missing = run(home, &["brand", "list", "amcnothere1"]);
    assert_eq!((missing.code, missing.stdout.as_str()), (3, ""));
    assert!(missing.stderr.starts_with("error: "), "{}", missing.stderr);

    // A command line clap rejects: its text, or the JSON error when the
    // command line asked for JSON (found by the early parse).
    let bad = run(home, &["instance", "frobnicate"]);
    assert_eq!((bad.code, bad.stdout.as_str()), (2, ""));
    assert!(bad.stderr.starts_with("error: "), "{}", bad.stderr);
    let bad = run(home, &["instance", "list", "--bogus", "-ondjson"]);
    assert_eq!((bad.code, bad.stdout.as_str()), (2, ""));
    let err: serde_json::Value = serde_json::from_str(&bad.stderr).unwrap();
    assert_eq!(err["error"]["code"], "usage");

    // Help is not an error, and goes to stdout.
    let help = run(home, &["brand", "--help"]);
    assert_eq!((help.code, help.stderr.as_str()), (0, ""));
    assert!(
        help.stdout.contains("Usage: amcctl brand"),
        "{}",
        help.stdout
    );
}
