//! The bulk check's progress bar: on a terminal it renders and moves; piped,
//! stderr carries none of it (no escape codes, no bar).

use std::process::Stdio;
use std::time::Duration;

use crate::support::amc::Amc;
use expectrl::process::unix::WaitStatus;
use expectrl::{Eof, Expect, Regex, Session};

/// A logged-in home with `n` instances that answer after `latency`, so a
/// check at concurrency 2 takes a couple of seconds: long enough for the bar
/// to redraw several times.
fn fleet(n: usize, latency: Duration) -> Amc {
    let amc = Amc::logged_in();
    let ids: Vec<String> = (0..n).map(|i| format!("amcprog{i:04}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    amc.instances(&ids);
    amc.fake.set_latency(latency);
    amc
}

const CHECK: [&str; 5] = ["health", "check", "--all", "--concurrency", "2"];

fn progress_bar_renders_and_updates_on_a_terminal() {
    let amc = fleet(40, Duration::from_millis(100));
    let mut cmd = amc.env.command("alice", &CHECK);
    // The harness pipes the output; here all three streams are the terminal.
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8");
    let mut p = Session::spawn(cmd).expect("spawn in a pseudo-terminal");
    p.set_expect_timeout(Some(Duration::from_secs(30)));

    // Two different positions of the bar, each with its counts and rate.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let found = p
            .expect(Regex(r"(\d+)/40 \d+/s ETA"))
            .expect("the progress bar on the terminal");
        let pos: u32 = String::from_utf8_lossy(found.get(1).expect("a position"))
            .parse()
            .expect("a number");
        if seen.last() != Some(&pos) {
            seen.push(pos);
        }
    }
    assert!(seen[0] < seen[1], "the bar moves forward: {seen:?}");
    let rest = p.expect(Eof).expect("the check ends");
    let tail = String::from_utf8_lossy(rest.as_bytes()).into_owned();
    assert!(
        tail.contains("40 checked"),
        "a summary after the bar:\n{tail}"
    );
    match p.get_process().wait().expect("wait") {
        WaitStatus::Exited(_, code) => assert_eq!(code, 0, "{tail}"),
        other => panic!("amcctl did not exit normally: {other:?}"),
    }
}

fn piped_stderr_carries_no_progress() {
    let amc = fleet(20, Duration::from_millis(20));
    for format in ["table", "json", "ndjson"] {
        let out = amc
            .env
            .command("alice", &[&CHECK[..], &["-o", format]].concat())
            .stdin(Stdio::null())
            .output()
            .expect("run amcctl");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{format}: {stderr}");
        assert!(
            !stderr.contains('\x1b'),
            "{format}: escape codes on piped stderr: {stderr:?}"
        );
        assert!(
            !stderr.contains("ETA") && !stderr.contains('━'),
            "{format}: a bar on piped stderr: {stderr}"
        );
        assert!(
            stderr.contains("20 checked"),
            "{format}: the summary line stays: {stderr}"
        );
    }
}

crate::on_both_backends!(
    progress_bar_renders_and_updates_on_a_terminal,
    piped_stderr_carries_no_progress,
);
