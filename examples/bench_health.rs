//! How fast, how polite and how right is a bulk health check?
//!
//! A benchmark, not a test: it starts the fake AMC server on loopback with a
//! fixed per-request latency `L`, `N` instances whose true state is known
//! (2% answer 403, 1% are unknown to AMC, the rest healthy) and optionally a
//! server-side rate limit `R`, then times the same bulk check done four ways:
//!
//! * `a`   — amcctl's engine in-process: `health::start` over a real
//!   `AmcClient` (limiter at `R`, or `--client-rate` when `R` does not bind);
//! * `b`   — the same client, one instance at a time (`health::check` in a
//!   loop); `--b-sample K` checks the first K and extrapolates to N;
//! * `c`   — what the old Python service did (`asyncio.gather`): all N GETs
//!   launched at once on a plain HTTP client, no limiter, no retries; a 429
//!   there is an ERROR verdict;
//! * `cli` — the real `amcctl health check --all` as a child process, on a
//!   store seeded by `instance import` and logged in with `auth login`.
//!
//! Each is printed beside the ideal `max(N·L/C, N/R)` as a ratio, with the
//! token refreshes and 429s the server counted, verdicts that differ from
//! the truth, ERROR verdicts caused by a 429, and peak memory.
//!
//! ```text
//! cargo build --release                       # for the `cli` strategy
//! cargo run --release --example bench_health -- --acceptance
//! cargo run --release --example bench_health -- --n 2000 --latency-ms 50 \
//!     --concurrency 64 --rate 100 --strategies a,b,c,cli
//! ```

#[path = "support/machine.rs"]
mod machine;
use machine::{compilers_running, loadavg};

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amcctl::amc::{Advertiser, AmcClient, ClientConfig, Credentials, NoTokenCache};
use amcctl::domain::{Country, EntityId, HealthStatus, InstanceId, Region, RowId};
use amcctl::health::{self, EngineConfig, Target};
use clap::{Parser, ValueEnum};
use fake_amc::{FakeAmc, Fault};
use secrecy::SecretString;

const CLIENT_ID: &str = "amzn1.application-oa2-client.bench";
const CLIENT_SECRET: &str = "bench-client-secret";
const REFRESH_TOKEN: &str = "Atzr|bench-refresh-token";
/// Instances are spread over this many accounts (advertiser headers).
const ACCOUNTS: usize = 10;
/// amcctl's limiter when the server sets no limit: high enough never to bind.
const UNBOUND_RATE: f64 = 10_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Strategy {
    /// amcctl's engine, in-process
    A,
    /// One at a time, same client
    B,
    /// All at once, no limiter, no retries
    C,
    /// The real `amcctl health check --all` binary
    Cli,
}

impl Strategy {
    fn label(self) -> &'static str {
        match self {
            Strategy::A => "(a) amcctl engine",
            Strategy::B => "(b) one at a time",
            Strategy::C => "(c) all at once, no limiter",
            Strategy::Cli => "amcctl health check --all (process)",
        }
    }
}

/// Benchmark bulk health checks against the fake AMC server.
#[derive(Debug, Parser)]
struct Args {
    /// Instances (N)
    #[arg(long, default_value_t = 2000)]
    n: usize,
    /// Latency of every AMC call, in milliseconds (L)
    #[arg(long, default_value_t = 50)]
    latency_ms: u64,
    /// Checks in flight at once for a and cli (C)
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Server-side rate limit, requests/s (R); 429 + Retry-After: 1 beyond it. Unset: no limit
    #[arg(long)]
    rate: Option<f64>,
    /// amcctl's own limiter (--rate of the CLI) [default: R, else 10000]
    #[arg(long)]
    client_rate: Option<f64>,
    /// Strategies to run, comma-separated
    #[arg(long, value_enum, value_delimiter = ',', default_value = "a,b,c")]
    strategies: Vec<Strategy>,
    /// (b) checks only the first K instances and extrapolates to N (0: all N)
    #[arg(long, default_value_t = 200)]
    b_sample: usize,
    /// The amcctl binary for the cli strategy [default: next to this example, ../amcctl]
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Run the issue's acceptance scenarios (ignores the other flags but --bin)
    #[arg(long)]
    acceptance: bool,
}

/// One benchmark setting.
#[derive(Debug, Clone)]
struct Scenario {
    title: String,
    n: usize,
    latency: Duration,
    concurrency: usize,
    server_rate: Option<f64>,
    client_rate: f64,
    strategies: Vec<Strategy>,
    b_sample: usize,
}

impl Scenario {
    /// The best any strategy with `concurrency` checks in flight and the
    /// effective rate could do: `max(N·L/C, N/R)`.
    fn ideal(&self) -> Duration {
        let n = self.n as f64;
        let by_latency = n * self.latency.as_secs_f64() / self.concurrency as f64;
        let by_rate = n / self.effective_rate();
        Duration::from_secs_f64(by_latency.max(by_rate))
    }

    /// The lower of the server's limit and amcctl's own.
    fn effective_rate(&self) -> f64 {
        self.server_rate
            .map_or(self.client_rate, |r| r.min(self.client_rate))
    }
}

/// What the fake was told about one instance, and the verdict that is right.
#[derive(Debug, Clone)]
struct Member {
    instance_id: String,
    account: usize,
    seeded: Seeded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seeded {
    Healthy,
    /// Every call answers 403.
    Forbidden,
    /// Not registered with AMC: 404.
    Missing,
}

impl Seeded {
    fn of(i: usize) -> Self {
        if i % 50 == 7 {
            Seeded::Forbidden
        } else if i % 100 == 13 {
            Seeded::Missing
        } else {
            Seeded::Healthy
        }
    }

    fn truth(self) -> HealthStatus {
        match self {
            Seeded::Healthy => HealthStatus::Healthy,
            Seeded::Forbidden | Seeded::Missing => HealthStatus::Unhealthy,
        }
    }
}

fn entity(account: usize) -> String {
    format!("ENTITYBENCH{account:04}")
}

fn fleet(n: usize) -> Vec<Member> {
    (0..n)
        .map(|i| Member {
            instance_id: format!("amc{i:08}"),
            account: i % ACCOUNTS,
            seeded: Seeded::of(i),
        })
        .collect()
}

fn start_fake(s: &Scenario, fleet: &[Member]) -> FakeAmc {
    let fake = FakeAmc::start();
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN);
    for a in 0..ACCOUNTS {
        fake.add_account(
            &entity(a),
            &format!("Bench {a}"),
            Country::US.marketplace_id(),
        );
    }
    for m in fleet {
        match m.seeded {
            Seeded::Missing => continue,
            Seeded::Forbidden => fake.on_instance(&m.instance_id, Fault::Status(403)),
            Seeded::Healthy => {}
        }
        fake.add_instance(&entity(m.account), &m.instance_id, &m.instance_id);
    }
    fake.set_latency(s.latency);
    fake.set_rate_limit(s.server_rate);
    fake
}

/// One verdict as a strategy reached it.
struct Verdict {
    instance_id: String,
    status: HealthStatus,
    http_status: Option<u16>,
}

/// One row of the table.
struct Row {
    strategy: Strategy,
    checked: usize,
    /// Wall time for all N (extrapolated when `sampled`).
    wall: Duration,
    sampled: Option<Duration>,
    token_grants: usize,
    throttled: usize,
    wrong: usize,
    throttle_errors: usize,
    counts: [usize; 3],
    peak_rss_kb: Option<u64>,
    rss_scope: &'static str,
    load: (f64, f64),
    busy: usize,
    exit_code: Option<i32>,
    /// The `elapsed_ms` amcctl itself reported (cli only).
    reported: Option<Duration>,
}

fn score(row: &mut Row, fleet: &[Member], verdicts: &[Verdict]) {
    let truth: HashMap<&str, HealthStatus> = fleet
        .iter()
        .map(|m| (m.instance_id.as_str(), m.seeded.truth()))
        .collect();
    row.checked = verdicts.len();
    for v in verdicts {
        if truth.get(v.instance_id.as_str()) != Some(&v.status) {
            row.wrong += 1;
        }
        if v.status == HealthStatus::Error && v.http_status == Some(429) {
            row.throttle_errors += 1;
        }
        match v.status {
            HealthStatus::Healthy => row.counts[0] += 1,
            HealthStatus::Unhealthy => row.counts[1] += 1,
            HealthStatus::Error | HealthStatus::Unknown => row.counts[2] += 1,
        }
    }
}

fn credentials() -> Credentials {
    Credentials {
        client_id: CLIENT_ID.to_owned(),
        client_secret: SecretString::from(CLIENT_SECRET),
        refresh_token: SecretString::from(REFRESH_TOKEN),
        region: Region::Na,
    }
}

fn targets(fleet: &[Member], user: RowId) -> Vec<Target> {
    fleet
        .iter()
        .map(|m| Target {
            id: RowId::new(),
            instance_id: InstanceId::parse(&m.instance_id).expect("a valid instance ID"),
            name: m.instance_id.clone(),
            owner: "bench".to_owned(),
            user_id: user,
            profile: "default".into(),
            advertiser: Advertiser::new(
                EntityId::parse(&entity(m.account)).expect("a valid entity ID"),
                Country::US,
                Region::Na,
            ),
            api_endpoint: None,
        })
        .collect()
}

fn runtime() -> tokio::runtime::Runtime {
    // The same runtime the CLI builds for `health check`.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// (a) and (b): amcctl's client, with or without the engine.
fn run_amcctl(s: &Scenario, fake: &FakeAmc, fleet: &[Member], engine: bool) -> Vec<Verdict> {
    let client = AmcClient::new(ClientConfig {
        api_url: Some(fake.base_url()),
        auth_url: Some(fake.token_url()),
        rate: s.client_rate,
        ..ClientConfig::default()
    })
    .expect("a client");
    let user = RowId::new();
    let session = Ok(client.session(credentials(), Arc::new(NoTokenCache)));
    let mut targets = targets(fleet, user);
    let to_verdict = |r: health::CheckResult| Verdict {
        instance_id: r.instance_id.to_string(),
        status: r.status,
        http_status: r.http_status,
    };
    runtime().block_on(async move {
        let mut verdicts = Vec::with_capacity(targets.len());
        if engine {
            let sessions = HashMap::from([((user, "default".to_owned()), session)]);
            let config = EngineConfig {
                concurrency: s.concurrency,
                deep: false,
            };
            let (mut rx, _cancel) = health::start(targets, sessions, config);
            while let Some(r) = rx.recv().await {
                verdicts.push(to_verdict(r));
            }
        } else {
            if s.b_sample > 0 {
                targets.truncate(s.b_sample);
            }
            for t in &targets {
                verdicts.push(to_verdict(health::check(t, Some(&session), false).await));
            }
        }
        verdicts
    })
}

/// (c): every GET at once on a plain client, one token, no limiter, no
/// retries — `asyncio.gather` over aiohttp, as the old service did it.
fn run_gather(fake: &FakeAmc, fleet: &[Member]) -> Vec<Verdict> {
    let base = fake.base_url();
    let token_url = fake.token_url();
    let fleet = fleet.to_vec();
    runtime().block_on(async move {
        let http = reqwest::Client::new();
        let token: serde_json::Value = http
            .post(&token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", REFRESH_TOKEN),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ])
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("a token from the fake")
            .json()
            .await
            .expect("a token answer");
        let bearer = format!("Bearer {}", token["access_token"].as_str().unwrap_or(""));
        let tasks: Vec<_> = fleet
            .into_iter()
            .map(|m| {
                let request = http
                    .get(format!("{base}/amc/instances/{}", m.instance_id))
                    .header("Authorization", &bearer)
                    .header("Amazon-Advertising-API-ClientId", CLIENT_ID)
                    .header("Amazon-Advertising-API-AdvertiserId", entity(m.account))
                    .header(
                        "Amazon-Advertising-API-MarketplaceId",
                        Country::US.marketplace_id(),
                    );
                tokio::spawn(async move {
                    let (status, http_status) = match request.send().await {
                        Err(_) => (HealthStatus::Error, None),
                        Ok(r) => {
                            let code = r.status().as_u16();
                            let status = match code {
                                200..=299 => {
                                    let body: serde_json::Value =
                                        r.json().await.unwrap_or_default();
                                    if body["instance"]["creationStatus"] == "COMPLETED" {
                                        HealthStatus::Healthy
                                    } else {
                                        HealthStatus::Unhealthy
                                    }
                                }
                                401 | 403 | 404 => HealthStatus::Unhealthy,
                                _ => HealthStatus::Error,
                            };
                            (status, Some(code))
                        }
                    };
                    Verdict {
                        instance_id: m.instance_id,
                        status,
                        http_status,
                    }
                })
            })
            .collect();
        let mut verdicts = Vec::with_capacity(tasks.len());
        for t in tasks {
            verdicts.push(t.await.expect("a check task"));
        }
        verdicts
    })
}

/// The amcctl binary: `--bin`, else `target/<profile>/amcctl` next to this
/// example's `target/<profile>/examples/`.
fn amcctl_bin(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_owned();
    }
    let exe = std::env::current_exe().expect("the path of this example");
    exe.parent()
        .and_then(Path::parent)
        .map(|d| d.join("amcctl"))
        .expect("a target folder")
}

/// A command for the amcctl binary in a hermetic environment on `home`.
fn amcctl(bin: &Path, home: &Path, fake: &FakeAmc) -> Command {
    let mut cmd = Command::new(bin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("AMCCTL_HOME", home)
        .env("AMCCTL_USER", "bench")
        .env("AMCCTL_NO_INPUT", "1")
        .env("AMCCTL_API_URL", fake.base_url())
        .env("AMCCTL_AUTH_URL", fake.token_url())
        .stdin(Stdio::null());
    cmd
}

fn must(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs a child to completion; its exit code and its peak RSS in KiB.
///
/// `wait4`'s `ru_maxrss` alone would not do: it also counts the address
/// space the child had before `exec`, which is this process's (std spawns
/// with vfork semantics), so after a memory-hungry strategy it reports the
/// bench, not amcctl. `VmHWM` of `/proc/PID/status` covers only the new
/// program; it is read every 2 ms while the child runs (the high-water mark
/// keeps the peak until the child exits, so a late read still sees it).
/// `ru_maxrss` is taken instead when it is above our own peak, i.e. when it
/// can only be the child's.
#[expect(
    clippy::zombie_processes,
    reason = "wait4 reaps the child; std's wait would hide its rusage"
)]
fn run_measured(cmd: &mut Command) -> (i32, Option<u64>) {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    let own_peak = vm_hwm("/proc/self/status").unwrap_or(u64::MAX);
    let child = cmd.spawn().expect("the amcctl binary starts");
    let pid = libc::pid_t::try_from(child.id()).expect("a pid");
    let done = Arc::new(AtomicBool::new(false));
    let polled = Arc::new(AtomicU64::new(0));
    let poller = {
        let (done, polled) = (done.clone(), polled.clone());
        let path = format!("/proc/{pid}/status");
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                if let Some(kb) = vm_hwm(&path) {
                    polled.fetch_max(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value, and both pointers outlive the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own child, not yet reaped (std's Child is never waited on).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "wait4: {e}");
    }
    done.store(true, Ordering::Relaxed);
    poller.join().expect("the memory poller");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let polled = polled.load(Ordering::Relaxed);
    let peak = match u64::try_from(usage.ru_maxrss) {
        Ok(kb) if kb > own_peak => kb.max(polled),
        _ => polled,
    };
    (code, (peak > 0).then_some(peak))
}

/// `cli`: seed a store (import CSV, login), then time the real binary.
fn run_cli(
    s: &Scenario,
    fake: &FakeAmc,
    fleet: &[Member],
    bin: &Path,
    row: &mut Row,
) -> Vec<Verdict> {
    assert!(
        bin.is_file(),
        "no amcctl binary at {} (run `cargo build --release` first, or pass --bin)",
        bin.display()
    );
    let home = tempfile::tempdir().expect("a temporary folder");
    let csv = home.path().join("fleet.csv");
    let mut text = String::from("instance_id,name,region,account_id,account_name,country_code\n");
    for m in fleet {
        let _ = writeln!(
            text,
            "{},Bench {},na,{},Bench account {},US",
            m.instance_id,
            m.instance_id,
            entity(m.account),
            m.account
        );
    }
    std::fs::write(&csv, text).expect("the import file is written");
    let run = |args: &[&str]| {
        let mut cmd = amcctl(bin, home.path(), fake);
        cmd.args(args);
        cmd
    };
    must(&mut run(&["user", "add", "bench", "-q"]), "user add");
    must(
        run(&["auth", "login", "--client-id", CLIENT_ID, "-q"])
            .env("AMCCTL_CLIENT_SECRET", CLIENT_SECRET)
            .env("AMCCTL_REFRESH_TOKEN", REFRESH_TOKEN),
        "auth login",
    );
    let csv_arg = csv.to_string_lossy().into_owned();
    must(
        &mut run(&["instance", "import", &csv_arg, "-q"]),
        "instance import",
    );

    let grants = fake.token_grants();
    let throttled = fake.throttled();
    let out_path = home.path().join("check.json");
    let err_path = home.path().join("check.err");
    let concurrency = s.concurrency.to_string();
    let rate = s.client_rate.to_string();
    let mut cmd = run(&[
        "health",
        "check",
        "--all",
        "--concurrency",
        &concurrency,
        "--rate",
        &rate,
        "-q",
        "-o",
        "json",
    ]);
    cmd.stdout(std::fs::File::create(&out_path).expect("an output file"))
        .stderr(std::fs::File::create(&err_path).expect("an error file"));
    let started = Instant::now();
    let (code, peak) = run_measured(&mut cmd);
    row.wall = started.elapsed();
    row.exit_code = Some(code);
    row.peak_rss_kb = peak;
    row.rss_scope = "amcctl process";
    row.token_grants = fake.token_grants() - grants;
    row.throttled = fake.throttled() - throttled;

    let out = std::fs::read(&out_path).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&out).unwrap_or_else(|e| {
        let err = std::fs::read_to_string(&err_path).unwrap_or_default();
        panic!("amcctl exited {code} without JSON ({e}): {err}")
    });
    row.reported = json["summary"]["elapsed_ms"]
        .as_u64()
        .map(Duration::from_millis);
    json["results"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|r| Verdict {
            instance_id: r["instance_id"].as_str().unwrap_or_default().to_owned(),
            status: match r["status"].as_str() {
                Some("HEALTHY") => HealthStatus::Healthy,
                Some("UNHEALTHY") => HealthStatus::Unhealthy,
                _ => HealthStatus::Error,
            },
            http_status: r["http_status"]
                .as_u64()
                .and_then(|c| u16::try_from(c).ok()),
        })
        .collect()
}

/// `VmHWM` (peak resident memory) of a `/proc/PID/status` file, in KiB.
fn vm_hwm(path: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Resets this process's peak RSS to its current RSS (Linux ≥ 4.0).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn run(s: &Scenario, strategy: Strategy, bin: &Path) -> Row {
    let fleet = fleet(s.n);
    let fake = start_fake(s, &fleet);
    let mut row = Row {
        strategy,
        checked: 0,
        wall: Duration::ZERO,
        sampled: None,
        token_grants: 0,
        throttled: 0,
        wrong: 0,
        throttle_errors: 0,
        counts: [0; 3],
        peak_rss_kb: None,
        rss_scope: "bench process, incl. fake",
        load: (loadavg(), 0.0),
        busy: compilers_running(),
        exit_code: None,
        reported: None,
    };
    eprintln!("  {} …", strategy.label());
    let peak_reset = reset_peak();
    let started = Instant::now();
    let verdicts = match strategy {
        Strategy::A => run_amcctl(s, &fake, &fleet, true),
        Strategy::B => run_amcctl(s, &fake, &fleet, false),
        Strategy::C => run_gather(&fake, &fleet),
        Strategy::Cli => run_cli(s, &fake, &fleet, bin, &mut row),
    };
    if strategy != Strategy::Cli {
        row.wall = started.elapsed();
        row.token_grants = fake.token_grants();
        row.throttled = fake.throttled();
        row.peak_rss_kb = vm_hwm("/proc/self/status");
        if !peak_reset {
            row.rss_scope = "bench process, since start";
        }
    }
    score(&mut row, &fleet, &verdicts);
    if row.checked < s.n && strategy == Strategy::B {
        row.sampled = Some(row.wall);
        row.wall = row.wall.mul_f64(s.n as f64 / row.checked.max(1) as f64);
    }
    row.load.1 = loadavg();
    row.busy = row.busy.max(compilers_running());
    row
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

fn mib(kb: Option<u64>) -> String {
    kb.map_or_else(|| "?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn table(s: &Scenario, rows: &[Row]) -> String {
    let ideal = s.ideal();
    let mut t = String::new();
    let _ = writeln!(t, "### {}\n", s.title);
    let _ = writeln!(
        t,
        "N={} L={} ms C={} server limit R={} amcctl --rate={}; ideal max(N·L/C, N/R) = {}\n",
        s.n,
        s.latency.as_millis(),
        s.concurrency,
        s.server_rate.map_or("none".into(), |r| format!("{r}/s")),
        s.client_rate,
        secs(ideal)
    );
    t.push_str(
        "| strategy | checked | wall | ÷ ideal | token refreshes | 429s received | wrong verdicts | ERROR from 429 | healthy/unhealthy/error | peak RSS | load 1m (compilers) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|\n",
    );
    for r in rows {
        let wall = match r.sampled {
            Some(sample) => format!(
                "{} (extrapolated from {} in {})",
                secs(r.wall),
                r.checked,
                secs(sample)
            ),
            None => secs(r.wall),
        };
        let wall = match r.reported {
            Some(d) => format!("{wall} (amcctl says {})", secs(d)),
            None => wall,
        };
        let checked = if r.checked < s.n {
            format!("{} of {}", r.checked, s.n)
        } else {
            r.checked.to_string()
        };
        let exit = r.exit_code.map_or(String::new(), |c| format!(", exit {c}"));
        let _ = writeln!(
            t,
            "| {}{exit} | {checked} | {wall} | {:.2}× | {} | {} | {} | {} | {}/{}/{} | {} ({}) | {:.2}→{:.2} ({}) |",
            r.strategy.label(),
            r.wall.as_secs_f64() / ideal.as_secs_f64(),
            r.token_grants,
            r.throttled,
            r.wrong,
            r.throttle_errors,
            r.counts[0],
            r.counts[1],
            r.counts[2],
            mib(r.peak_rss_kb),
            r.rss_scope,
            r.load.0,
            r.load.1,
            r.busy
        );
    }
    t
}

/// The issue's targets, checked against the rows of one scenario.
fn verdicts(s: &Scenario, rows: &[Row]) -> Vec<String> {
    let mut out = Vec::new();
    let ideal = s.ideal().as_secs_f64();
    let mut note = |ok: bool, what: String| {
        out.push(format!("- {} {what}", if ok { "PASS" } else { "FAIL" }));
    };
    for r in rows
        .iter()
        .filter(|r| matches!(r.strategy, Strategy::A | Strategy::Cli))
    {
        let ratio = r.wall.as_secs_f64() / ideal;
        let bound = if s.server_rate.is_some() { 1.15 } else { 1.25 };
        note(
            ratio <= bound,
            format!(
                "{}: {ratio:.2}× ideal (target ≤ {bound}×)",
                r.strategy.label()
            ),
        );
        if s.server_rate.is_some() {
            note(
                r.wrong == 0 && r.throttle_errors == 0,
                format!(
                    "{}: {} wrong verdicts, {} ERROR from 429 (target 0, 0)",
                    r.strategy.label(),
                    r.wrong,
                    r.throttle_errors
                ),
            );
        }
        if r.strategy == Strategy::Cli && s.n >= 10_000 {
            let mb = r.peak_rss_kb.map_or(f64::NAN, |k| k as f64 * 1024.0 / 1e6);
            note(
                mb < 100.0,
                format!(
                    "{}: peak RSS {mb:.1} MB (target < 100 MB)",
                    r.strategy.label()
                ),
            );
        }
    }
    if s.server_rate.is_some()
        && let Some(c) = rows.iter().find(|r| r.strategy == Strategy::C)
    {
        note(
            c.throttled > 0,
            format!(
                "{}: throttled {} times, {} wrong verdicts (expected to show throttling)",
                c.strategy.label(),
                c.throttled,
                c.wrong
            ),
        );
    }
    out
}

fn acceptance() -> Vec<Scenario> {
    let base = Scenario {
        title: String::new(),
        n: 2000,
        latency: Duration::from_millis(50),
        concurrency: 64,
        server_rate: None,
        client_rate: UNBOUND_RATE,
        strategies: vec![Strategy::A, Strategy::B, Strategy::C, Strategy::Cli],
        b_sample: 200,
    };
    vec![
        Scenario {
            title: "1. Latency-bound: no server limit".into(),
            ..base.clone()
        },
        Scenario {
            title: "2. Rate-bound: the server allows 100 requests/s".into(),
            server_rate: Some(100.0),
            client_rate: 100.0,
            ..base.clone()
        },
        Scenario {
            title: "3. Memory: 10,000 instances, the real binary".into(),
            n: 10_000,
            client_rate: 1000.0,
            strategies: vec![Strategy::Cli],
            ..base
        },
    ]
}

fn main() {
    let args = Args::parse();
    let bin = amcctl_bin(args.bin.as_deref());
    let scenarios = if args.acceptance {
        acceptance()
    } else {
        vec![Scenario {
            title: "Bulk health check".into(),
            n: args.n,
            latency: Duration::from_millis(args.latency_ms),
            concurrency: args.concurrency.max(1),
            server_rate: args.rate,
            client_rate: args.client_rate.or(args.rate).unwrap_or(UNBOUND_RATE),
            strategies: args.strategies.clone(),
            b_sample: args.b_sample,
        }]
    };
    let started = Instant::now();
    let mut report = String::new();
    let mut checks = Vec::new();
    for s in &scenarios {
        eprintln!("{} (N={})", s.title, s.n);
        let rows: Vec<Row> = s.strategies.iter().map(|&st| run(s, st, &bin)).collect();
        report.push_str(&table(s, &rows));
        report.push('\n');
        checks.extend(verdicts(s, &rows));
    }
    println!("{report}");
    if !checks.is_empty() {
        println!("Targets:\n\n{}\n", checks.join("\n"));
    }
    println!(
        "({} cores; load average {:.2} at the end; {:.0} s in all)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg(),
        started.elapsed().as_secs_f64()
    );
}
