//! How fast and how lean is `usage sync`, and how quick is `usage report`?
//!
//! A benchmark, not a test: it starts the fake AMC server on loopback with a
//! fixed per-request latency `L`, gives `N` instances `E` executions each
//! (plus a few workflows and schedules), seeds a store with the real binary
//! (`user add`, `auth login`, `instance import`), then times
//!
//! * `amcctl usage sync --all --rate R` — wall time beside the ideal
//!   `pages / R` (every page is one request through the rate limiter), the
//!   pages the server actually served, 429s, and the process's peak RSS;
//! * `amcctl usage report -o json` over everything synced — best of 5.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example bench_usage                # 500 × 200, L = 20 ms, R = 1000
//! cargo run --release --example bench_usage -- --n 50 --executions 50
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use fake_amc::{FakeAmc, Usage, advertiser, execution, schedule, workflow};

const CLIENT_ID: &str = "amzn1.application-oa2-client.bench";
const CLIENT_SECRET: &str = "bench-client-secret";
const REFRESH_TOKEN: &str = "Atzr|bench-refresh-token";
const ENTITY: &str = "ENTITY1BENCHUSAGE";
const US: &str = "ATVPDKIKX0DER";

/// Benchmark `usage sync` and `usage report` against the fake AMC server.
#[derive(Debug, Parser)]
struct Args {
    /// Instances (N)
    #[arg(long, default_value_t = 500)]
    n: usize,
    /// Executions per instance (E)
    #[arg(long, default_value_t = 200)]
    executions: usize,
    /// Latency of every AMC call, in milliseconds (L)
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// amcctl's --rate, requests/s (R)
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// amcctl's --concurrency (instances synced at once)
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The amcctl binary [default: next to this example, ../amcctl]
    #[arg(long)]
    bin: Option<PathBuf>,
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

    let fake = FakeAmc::start();
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN);
    fake.add_account(ENTITY, "Bench", US);
    let now = chrono::Utc::now();
    let ts = |minutes_ago: i64| {
        (now - chrono::TimeDelta::minutes(minutes_ago))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let statuses = [
        "SUCCEEDED",
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
        "RUNNING",
        "CANCELLED",
    ];
    let ids: Vec<String> = (0..args.n).map(|i| format!("amcbench{i:04}")).collect();
    let mut csv = String::from("instance_id,name,region,account_id,account_name,country_code\n");
    for (i, id) in ids.iter().enumerate() {
        fake.add_instance(ENTITY, id, id);
        let executions = (0..args.executions)
            .map(|k| {
                let created = ((k * 97 + i * 13) % (29 * 24 * 60)) as i64 + 60;
                execution(
                    &format!("{id}-e{k:05}"),
                    &format!("wf{}", k % 5),
                    statuses[(k + i) % statuses.len()],
                    &ts(created),
                    &ts(created - 1 - (k % 50) as i64),
                    if k % 3 == 0 { "SCHEDULED" } else { "AD_HOC" },
                )
            })
            .collect();
        fake.set_usage(
            id,
            Usage {
                workflows: (0..5).map(|w| workflow(&format!("wf{w}"))).collect(),
                executions,
                schedules: vec![schedule("s1", "wf0", "DAILY", 3, true)],
                advertisers: vec![advertiser(ENTITY, "Bench", US)],
            },
        );
        let _ = writeln!(csv, "{id},{id},na,{ENTITY},Bench,US");
    }
    fake.set_latency(Duration::from_millis(args.latency_ms));

    let home = tempfile::tempdir().expect("a temporary folder");
    let file = home.path().join("fleet.csv");
    std::fs::write(&file, csv).expect("the import file is written");
    let run = |a: &[&str]| {
        let mut cmd = Command::new(&bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .env("AMCCTL_HOME", home.path())
            .env("AMCCTL_USER", "bench")
            .env("AMCCTL_NO_INPUT", "1")
            .env("AMCCTL_API_URL", fake.base_url())
            .env("AMCCTL_AUTH_URL", fake.token_url())
            .stdin(Stdio::null())
            .args(a);
        cmd
    };
    must(&mut run(&["user", "add", "bench", "-q"]), "user add");
    must(
        run(&["auth", "login", "--client-id", CLIENT_ID, "-q"])
            .env("AMCCTL_CLIENT_SECRET", CLIENT_SECRET)
            .env("AMCCTL_REFRESH_TOKEN", REFRESH_TOKEN),
        "auth login",
    );
    must(
        &mut run(&["instance", "import", &file.to_string_lossy(), "-q"]),
        "instance import",
    );
    fake.clear_requests();

    let rate = args.rate.to_string();
    let concurrency = args.concurrency.to_string();
    let out_path = home.path().join("sync.json");
    let mut cmd = run(&[
        "usage",
        "sync",
        "--all",
        "--rate",
        &rate,
        "--concurrency",
        &concurrency,
        "-q",
        "-o",
        "json",
    ]);
    cmd.stdout(std::fs::File::create(&out_path).expect("an output file"))
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let (code, peak_kb) = run_measured(&mut cmd);
    let wall = started.elapsed();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_path).unwrap_or_default())
            .map(|v: serde_json::Value| v["summary"].clone())
            .unwrap_or_default();
    let served = fake
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/amc/"))
        .count();
    let ideal = Duration::from_secs_f64(served as f64 / args.rate);

    let mut report_times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let out = run(&["usage", "report", "-o", "json"])
            .stdout(Stdio::null())
            .status()
            .expect("usage report runs");
        assert!(out.success(), "usage report failed");
        report_times.push(t.elapsed());
    }
    report_times.sort();

    println!(
        "usage sync: N = {} instances × E = {} executions, L = {} ms, --rate {}, --concurrency {}",
        args.n, args.executions, args.latency_ms, args.rate, args.concurrency
    );
    println!("  exit code          {code}");
    println!("  executions stored  {}", summary["executions"]);
    println!(
        "  pages (requests)   {served} served, {} counted by amcctl",
        summary["pages"]
    );
    println!("  429s               {}", fake.throttled());
    println!("  wall               {:.2} s", wall.as_secs_f64());
    println!("  ideal pages / R    {:.2} s", ideal.as_secs_f64());
    println!(
        "  ratio              {:.2}× (target ≤ 1.2×)",
        wall.as_secs_f64() / ideal.as_secs_f64()
    );
    println!(
        "  peak RSS           {} (target < 150 MB)",
        peak_kb.map_or("unknown".into(), |kb| format!(
            "{:.1} MB",
            kb as f64 / 1024.0
        ))
    );
    println!(
        "usage report -o json over {} executions: best {:.0} ms, median {:.0} ms (target < 300 ms)",
        summary["executions"],
        report_times[0].as_secs_f64() * 1000.0,
        report_times[report_times.len() / 2].as_secs_f64() * 1000.0,
    );
    println!(
        "  load average at the end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}

fn must(cmd: &mut Command, what: &str) {
    let out = cmd.output().expect("the amcctl binary starts");
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a child to completion; its exit code and the peak RSS (`VmHWM`) of
/// the program it runs, in KiB, polled every 2 ms (the high-water mark keeps
/// the peak, so a late read still sees it).
fn run_measured(cmd: &mut Command) -> (i32, Option<u64>) {
    let mut child = cmd.spawn().expect("the amcctl binary starts");
    let path = format!("/proc/{}/status", child.id());
    let done = Arc::new(AtomicBool::new(false));
    let polled = Arc::new(AtomicU64::new(0));
    let poller = {
        let (done, polled) = (done.clone(), polled.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = std::fs::read_to_string(&path).ok().and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmHWM:"))
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                }) {
                    polled.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let status = child.wait().expect("amcctl runs");
    done.store(true, Ordering::Relaxed);
    let _ = poller.join();
    let peak = polled.load(Ordering::Relaxed);
    (status.code().unwrap_or(-1), (peak > 0).then_some(peak))
}
