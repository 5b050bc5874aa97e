//! How big is the dashboard of a large fleet, how long does amcctl take to
//! write it, and how long does Chromium take to load it?
//!
//! A benchmark, not a test. Seed a store first (10,000 instances with 60
//! days of history), then point this at it:
//!
//! ```text
//! cargo build --release --examples
//! target/release/examples/seed_fleet --home /tmp/fleet --instances 10000 --history-days 60
//! target/release/examples/bench_dashboard --home /tmp/fleet
//! ```
//!
//! It runs `amcctl dashboard --since 60d --out FILE` (best of `--runs`),
//! reports the file's size, then opens the file in headless Chromium over
//! the DevTools protocol `--runs` times and reports the load time (start of
//! navigation to the load event, from the page's Navigation Timing), with
//! the requests, console messages and dialogs the page caused (none).

#[path = "../tests/it/support/cdp.rs"]
mod cdp;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;

/// Benchmark `amcctl dashboard` and Chromium's load of its page.
#[derive(Debug, Parser)]
struct Args {
    /// The seeded AMCCTL_HOME
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// The window
    #[arg(long, default_value = "60d")]
    since: String,
    /// Runs of each measurement (the best is reported)
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Act as this user [default: the OS login]
    #[arg(long)]
    user: Option<String>,
    /// The amcctl binary [default: next to this example, ../amcctl]
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Keep the page here [default: a temporary file]
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() {
    let args = Args::parse();
    let bin = args.bin.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().expect("the path of this example");
        exe.parent()
            .and_then(Path::parent)
            .map(|d| d.join("amcctl"))
            .expect("a target folder")
    });
    assert!(
        bin.is_file(),
        "no amcctl binary at {} (run `cargo build --release` first, or pass --bin)",
        bin.display()
    );
    let Some(chromium) = cdp::chromium() else {
        eprintln!("bench_dashboard: no chromium on PATH (apt-get install chromium)");
        std::process::exit(1);
    };
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let file = args
        .out
        .clone()
        .unwrap_or_else(|| tmp.path().join("dashboard.html"));

    let mut best = Duration::MAX;
    for _ in 0..args.runs.max(1) {
        let mut cmd = Command::new(&bin);
        cmd.arg("--home").arg(&args.home);
        if let Some(u) = &args.user {
            cmd.args(["--user", u]);
        }
        cmd.args(["dashboard", "-q", "--since", &args.since, "--out"])
            .arg(&file);
        let started = Instant::now();
        let status = cmd.status().expect("run amcctl");
        let took = started.elapsed();
        assert!(status.success(), "amcctl dashboard failed: {status}");
        best = best.min(took);
    }
    let page = std::fs::read_to_string(&file).expect("the page");
    let rows = page.matches("<tr data-id=").count();
    println!(
        "amcctl dashboard --since {}: {:.2} MB ({} bytes), {} instance row(s) listed, written in {:.2?} (best of {})",
        args.since,
        page.len() as f64 / 1_048_576.0,
        page.len(),
        rows,
        best,
        args.runs.max(1)
    );

    let mut browser = cdp::Browser::start(&chromium, 1280, 800);
    let mut loads = Vec::new();
    for _ in 0..args.runs.max(1) {
        let started = Instant::now();
        let report = browser.open(&file);
        let wall = started.elapsed();
        println!(
            "chromium: load event after {:.0} ms (navigation timing), {:.0} ms round trip; {} request(s), {} console message(s), {} dialog(s)",
            report.load_ms,
            wall.as_secs_f64() * 1000.0,
            report.requests.len(),
            report.console.len(),
            report.dialogs.len()
        );
        loads.push(report.load_ms);
    }
    loads.sort_by(f64::total_cmp);
    println!(
        "best load {:.0} ms, median {:.0} ms",
        loads[0],
        loads[loads.len() / 2]
    );
}
