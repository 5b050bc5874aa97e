//! Seeds a store with a large fleet through the real binary's `instance
//! import`, to measure how the registry commands scale:
//!
//! ```text
//! cargo build --release
//! cargo run --release --example seed_fleet -- --home /tmp/fleet --instances 10000
//! time target/release/amcctl --home /tmp/fleet instance list -o json > /dev/null
//! ```
//!
//! The fleet is deterministic: N instances spread over a handful of accounts
//! (in several countries, so all three regions occur), each with zero to
//! three brands from a small pool, a mix of statuses and recorded health.
//! The instances belong to the acting user of the import (`--user`, else
//! `$USER`), so list them as that user. Seeding twice is harmless: the
//! import is idempotent.
//!
//! `--history-days 60` also records 60 days of history per instance (a
//! check, an execution and a schedule a day), for `health report`,
//! `usage report` and `dashboard` (examples/bench_dashboard.rs).
//!
//! Under `cargo run` the example first builds the `amcctl` binary of the
//! same profile (a no-op when it is up to date); elsewhere pass `--amcctl`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Parser;
use serde_json::{Value, json};

/// Seed an amcctl store with a fleet of instances through `instance import`.
#[derive(Debug, Parser)]
struct Args {
    /// The AMCCTL_HOME to seed (created if missing)
    #[arg(long, value_name = "DIR")]
    home: PathBuf,
    /// How many instances
    #[arg(long, default_value_t = 10_000)]
    instances: usize,
    /// How many accounts they are spread over
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    accounts: u32,
    /// How many brand names to draw from
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1000))]
    brands: u32,
    /// Import as this user (added if missing) [default: the OS login]
    #[arg(long)]
    user: Option<String>,
    /// The import file format
    #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
    format: String,
    /// The amcctl binary [default: built next to this example]
    #[arg(long, value_name = "PATH")]
    amcctl: Option<PathBuf>,
    /// Also record this many days of history for every instance: a health
    /// check a day, an execution a day and a daily schedule (for the
    /// dashboard and the reports)
    #[arg(long, value_name = "DAYS", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=400))]
    history_days: u32,
}

/// Countries of the seeded accounts, cycling: every region appears.
const COUNTRIES: [&str; 8] = ["US", "DE", "JP", "UK", "CA", "FR", "AU", "IT"];

const STATUSES: [&str; 4] = ["ACTIVE", "ACTIVE", "PENDING", "INACTIVE"];

fn region_of(country: &str) -> &'static str {
    match country {
        "US" | "CA" | "MX" | "BR" => "na",
        "JP" | "AU" | "SG" => "fe",
        _ => "eu",
    }
}

/// `amc` and 8 base-36 digits of `n`: the usual shape of an AMC instance ID.
fn instance_id(n: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rest = n;
    let mut tail = [b'0'; 8];
    for slot in tail.iter_mut().rev() {
        *slot = DIGITS[rest % 36];
        rest /= 36;
    }
    format!("amc{}", std::str::from_utf8(&tail).expect("ASCII"))
}

fn timestamp(seconds_after_2026: usize) -> String {
    let start = chrono::DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z").expect("a valid time");
    let t = start + chrono::Duration::seconds(seconds_after_2026 as i64);
    t.with_timezone(&chrono::Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The import rows, in the shape `instance export` writes.
fn fleet(args: &Args) -> Vec<Value> {
    let accounts: Vec<Value> = (0..args.accounts as usize)
        .map(|k| {
            json!({
                "account_id": format!("ENTITYSEED{k:08}"),
                "account_name": format!("Seed Account {k}"),
                "advertiser_id": null,
                "country_code": COUNTRIES[k % COUNTRIES.len()],
            })
        })
        .collect();
    let brands: Vec<String> = (0..args.brands).map(|b| format!("Brand {b:03}")).collect();
    (0..args.instances)
        .map(|i| {
            let account = &accounts[i % accounts.len()];
            let country = account["country_code"].as_str().expect("a country");
            let status = STATUSES[i % STATUSES.len()];
            let own: Vec<&String> = (0..i % 4)
                .map(|k| &brands[(i + k * 3) % brands.len()])
                .collect();
            let health = match (status, i % 10) {
                ("PENDING", _) => json!({"status": null}),
                (_, 9) => json!({
                    "status": "UNHEALTHY",
                    "checked_at": timestamp(86_400 * 300 + i),
                    "latency_ms": 400 + i % 300,
                    "error": "HTTP 403: the client is not allowed to access this instance",
                }),
                _ => json!({
                    "status": "HEALTHY",
                    "checked_at": timestamp(86_400 * 300 + i),
                    "latency_ms": 40 + i % 200,
                    "error": null,
                }),
            };
            json!({
                "instance_id": instance_id(i),
                "name": format!("Fleet {i:05} {}", account["account_name"].as_str().unwrap_or("")),
                "description": (i % 3 == 0).then(|| format!("Seeded instance number {i}")),
                "region": region_of(country),
                "status": status,
                "is_active": status != "INACTIVE",
                "account": account,
                "brands": own,
                "health": health,
                "api_endpoint": null,
                "created_at": timestamp(i),
                "updated_at": timestamp(i + 3600),
            })
        })
        .collect()
}

/// The same rows as CSV, in the columns `instance export --format csv` writes.
fn to_csv(rows: &[Value]) -> Vec<u8> {
    let columns = [
        "instance_id",
        "name",
        "description",
        "region",
        "status",
        "is_active",
        "account_id",
        "account_name",
        "country_code",
        "brands",
        "health_status",
        "health_checked_at",
        "health_latency_ms",
        "health_error",
        "created_at",
        "updated_at",
    ];
    let text = |v: &Value| match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(columns).expect("write CSV");
    for r in rows {
        let brands: Vec<String> = r["brands"]
            .as_array()
            .map(|b| b.iter().map(text).collect())
            .unwrap_or_default();
        w.write_record([
            text(&r["instance_id"]),
            text(&r["name"]),
            text(&r["description"]),
            text(&r["region"]),
            text(&r["status"]),
            text(&r["is_active"]),
            text(&r["account"]["account_id"]),
            text(&r["account"]["account_name"]),
            text(&r["account"]["country_code"]),
            brands.join(";"),
            text(&r["health"]["status"]),
            text(&r["health"]["checked_at"]),
            text(&r["health"]["latency_ms"]),
            text(&r["health"]["error"]),
            text(&r["created_at"]),
            text(&r["updated_at"]),
        ])
        .expect("write CSV");
    }
    w.into_inner().expect("flush CSV")
}

/// The amcctl binary: `--amcctl`, else the one of this example's profile,
/// brought up to date first when running under cargo.
fn amcctl_binary(args: &Args) -> Result<PathBuf, String> {
    if let Some(path) = &args.amcctl {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this example: {e}"))?;
    // target/<profile>/examples/seed_fleet → target/<profile>/amcctl
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot find the target folder")?;
    let bin = profile_dir.join(format!("amcctl{}", std::env::consts::EXE_SUFFIX));
    if let Some(cargo) = std::env::var_os("CARGO") {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--bin", "amcctl", "--manifest-path"])
            .arg(manifest);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        let status = build
            .status()
            .map_err(|e| format!("cannot run cargo: {e}"))?;
        if !status.success() {
            return Err("building amcctl failed".into());
        }
    }
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "no amcctl at {}: build it (cargo build --release) or pass --amcctl",
            bin.display()
        ))
    }
}

fn run(args: &Args) -> Result<(), String> {
    let bin = amcctl_binary(args)?;
    let mut import = Command::new(&bin);
    import.arg("--home").arg(&args.home);
    if let Some(user) = &args.user {
        import.args(["--user", user]);
        // Exit 5 (the user exists already) is fine.
        let out = Command::new(&bin)
            .arg("--home")
            .arg(&args.home)
            .args(["user", "add", user, "-q"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        if !matches!(out.status.code(), Some(0 | 5)) {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
    }

    let started = Instant::now();
    let rows = fleet(args);
    let body = if args.format == "csv" {
        to_csv(&rows)
    } else {
        serde_json::to_vec(&rows).map_err(|e| e.to_string())?
    };
    let built = started.elapsed();
    let size = body.len();

    let started = Instant::now();
    import.args([
        "instance",
        "import",
        "-",
        "--format",
        &args.format,
        "-o",
        "json",
        "-q",
    ]);
    let mut child = import
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let writer = std::thread::spawn(move || stdin.write_all(&body));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    writer
        .join()
        .map_err(|_| "the writer thread panicked")?
        .map_err(|e| format!("cannot write the import: {e}"))?;
    if !out.status.success() {
        return Err(format!("amcctl instance import failed ({})", out.status));
    }
    let counts: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    eprintln!(
        "seeded {} instance(s) over {} account(s) and {} brand(s) into {}: \
         {} created, {} updated, {} unchanged ({} bytes of {} built in {:.2?}, imported in {:.2?})",
        args.instances,
        args.accounts,
        args.brands,
        args.home.display(),
        counts["created"],
        counts["updated"],
        counts["unchanged"],
        size,
        args.format,
        built,
        started.elapsed(),
    );
    Ok(())
}

/// Writes `days` days of checks, executions and a schedule for every
/// instance straight into the store (the commands that record them talk to
/// AMC). Deterministic, like the fleet: instance `n` fails now and then by
/// a pattern of `n` and the day. Recording twice doubles the checks.
fn history(args: &Args) -> Result<(), String> {
    use amcctl::amc::{Execution, ExecutionStatus, Schedule, UsageSnapshot, WorkflowInfo};
    use amcctl::domain::HealthStatus;
    use amcctl::domain::{HealthRecord, InstanceFilter};
    use amcctl::store::{Store, StoreError};
    use chrono::TimeDelta;
    // What amcctl itself would say about a store failure.
    let say = |e: StoreError| amcctl::error::Error::from(e).message;

    let started = Instant::now();
    let db = amcctl::config::Paths::resolve(Some(&args.home), None, None)
        .map_err(|e| e.message)?
        .db;
    let mut store = Store::open(&db).map_err(say)?;
    let mut instances = store.instances(&InstanceFilter::default()).map_err(say)?;
    instances.sort_by(|a, b| a.instance_id.cmp(&b.instance_id));
    let now = amcctl::domain::now();
    let days = i64::from(args.history_days);
    let mut batch: Vec<HealthRecord> = Vec::with_capacity(8192);
    let (mut checks, mut executions) = (0usize, 0usize);
    for (n, inst) in instances.iter().enumerate() {
        let mut runs = Vec::with_capacity(days as usize);
        for day in 0..days {
            let when = now - TimeDelta::days(day) - TimeDelta::minutes(30 + (n % 600) as i64);
            let k = n + day as usize * 7;
            let status = match (n % 10, k % 13) {
                (9, 0..=5) => HealthStatus::Unhealthy,
                (_, 0) if n % 4 == 1 => HealthStatus::Error,
                _ => HealthStatus::Healthy,
            };
            batch.push(HealthRecord {
                instance: inst.id,
                checked_at: when,
                status,
                http_status: (status != HealthStatus::Error).then_some(
                    if status == HealthStatus::Healthy {
                        200
                    } else {
                        403
                    },
                ),
                latency_ms: (status != HealthStatus::Error).then(|| {
                    40 + ((n * 31 + day as usize * 17) % 260) as u64 + (day % 7 == 3) as u64 * 150
                }),
                attempts: 1,
                error: match status {
                    HealthStatus::Unhealthy => {
                        Some("HTTP 403: the client is not allowed to access this instance".into())
                    }
                    HealthStatus::Error => Some("timed out after 3 attempts".into()),
                    _ => None,
                },
            });
            let failed = (n + day as usize).is_multiple_of(17);
            let created = when - TimeDelta::hours(2);
            runs.push(Execution {
                execution_id: format!("seed-{day:04}"),
                workflow_id: Some("daily_report".into()),
                status: if failed {
                    ExecutionStatus::Failed
                } else {
                    ExecutionStatus::Succeeded
                },
                category: Some("SCHEDULED".into()),
                created_at: created,
                updated_at: Some(
                    created + TimeDelta::seconds(120 + ((n + day as usize) % 900) as i64),
                ),
                error: failed.then(|| "query exceeded the time limit".into()),
            });
        }
        if batch.len() >= 8000 {
            store.record_health(&batch).map_err(say)?;
            checks += batch.len();
            batch.clear();
        }
        executions += runs.len();
        let snap = UsageSnapshot {
            workflows: vec![WorkflowInfo {
                workflow_id: "daily_report".into(),
                sql_query: Some("SELECT 1".into()),
            }],
            executions: runs,
            schedules: vec![Schedule {
                schedule_id: "daily".into(),
                workflow_id: Some("daily_report".into()),
                aggregation_period: Some("DAILY".into()),
                aggregation_hour_utc: Some(4),
                enabled: true,
            }],
            pages: 1,
            attempts: 1,
        };
        store
            .save_usage(inst.id, now, now - TimeDelta::days(days), &snap)
            .map_err(say)?;
    }
    store.record_health(&batch).map_err(say)?;
    checks += batch.len();
    eprintln!(
        "recorded {checks} check(s) and {executions} execution(s) over {days} day(s) for {} instance(s) in {:.2?}",
        instances.len(),
        started.elapsed()
    );
    Ok(())
}

fn main() {
    let args = Args::parse();
    if let Err(e) = run(&args).and_then(|()| {
        if args.history_days > 0 {
            history(&args)
        } else {
            Ok(())
        }
    }) {
        eprintln!("seed_fleet: {e}");
        std::process::exit(1);
    }
}
