//! The README's first command: amcctl's main job end to end, with no Amazon
//! account needed.
//!
//! It starts the fake AMC server on loopback with a realistic fleet (mostly
//! healthy; a few instances the credentials may not see, a few gone, a few
//! that failed to provision, some slow ones, some throttling), points a
//! temporary amcctl home at it, and drives the real commands: login,
//! account and instance discovery, brands, a bulk health check with a
//! progress bar, the health report, and a usage sync of a few instances'
//! workflows, executions and schedules with its report; it ends by writing
//! the dashboard page and saying where it is.
//!
//! ```text
//! cargo run --release --example demo
//! ```

use std::time::Duration;

use fake_amc::{FakeAmc, Fault, Route, Usage, advertiser, execution, schedule, workflow};

const CLIENT_ID: &str = "amzn1.application-oa2-client.demo";
const ACCOUNTS: [(&str, &str, &str); 4] = [
    ("ENTITY2DEMOUS01", "Acme US", "ATVPDKIKX0DER"),
    ("ENTITY2DEMOUK02", "Acme UK", "A1F83G8C2ARO7P"),
    ("ENTITY2DEMODE03", "Acme DE", "A1PA6795UKMFR9"),
    ("ENTITY2DEMOJP04", "Acme JP", "A1VC38T7YXB528"),
];
const PER_ACCOUNT: usize = 75;
/// The instances whose usage the demo syncs (the first of Acme US; one of
/// them refuses the credentials, as the health check showed).
const USAGE_SAMPLE: usize = 8;

/// A varied history of executions for instance number `n`.
fn usage(n: usize) -> Usage {
    let now = chrono::Utc::now();
    let at = |minutes_ago: i64| {
        (now - chrono::TimeDelta::minutes(minutes_ago))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let statuses = [
        "SUCCEEDED",
        "SUCCEEDED",
        "SUCCEEDED",
        "FAILED",
        "SUCCEEDED",
        "CANCELLED",
    ];
    let runs = 10 + n * 7;
    let mut executions: Vec<_> = (0..runs)
        .map(|k| {
            let created = (k * 331 + n * 17) as i64 % (20 * 24 * 60) + 90;
            execution(
                &format!("exec-{n}-{k:03}"),
                &format!("wf-{}", k % 3),
                statuses[(k + n) % statuses.len()],
                &at(created),
                &at(created - 2 - (k as i64 * 7) % 40),
                if k % 4 == 0 { "SCHEDULED" } else { "AD_HOC" },
            )
        })
        .collect();
    // Two running now, one queued.
    for (k, status) in ["RUNNING", "RUNNING", "PENDING"]
        .iter()
        .enumerate()
        .take(n % 4)
    {
        executions.push(execution(
            &format!("exec-{n}-now{k}"),
            "wf-0",
            status,
            &at(5),
            &at(1),
            "AD_HOC",
        ));
    }
    Usage {
        workflows: (0..3).map(|w| workflow(&format!("wf-{w}"))).collect(),
        executions,
        schedules: vec![
            schedule("sched-daily", "wf-0", "DAILY", 6, true),
            schedule("sched-weekly", "wf-1", "WEEKLY", 2, n.is_multiple_of(2)),
        ],
        advertisers: vec![advertiser("ENTITY2DEMOUS01", "Acme US", "ATVPDKIKX0DER")],
    }
}

fn amcctl(args: &[&str]) -> i32 {
    eprintln!("\n\x1b[1m$ amcctl {}\x1b[0m", args.join(" "));
    let streams = std::sync::Arc::new(amcctl::output::Streams::process());
    let argv = std::iter::once("amcctl").chain(args.iter().copied());
    amcctl::run(argv, amcctl::env::Env::from_process(), streams)
}

fn main() {
    let home = tempfile::tempdir().expect("a temporary folder");
    let fake = FakeAmc::start();
    fake.add_client(CLIENT_ID, "demo-client-secret", "Atzr|demo-refresh-token");
    fake.set_latency(Duration::from_millis(40));
    // Amazon throttles: the fake allows 60 requests/s; amcctl is told to keep to 50.
    fake.set_rate_limit(Some(60.0));

    let mut n = 0;
    for (entity, name, market) in ACCOUNTS {
        fake.add_account(entity, name, market);
        for i in 0..PER_ACCOUNT {
            let id = format!("amc{:08}", 10_000 + n);
            fake.add_instance(entity, &id, &format!("{name} {i:02}"));
            if n < USAGE_SAMPLE {
                fake.set_usage(&id, usage(n));
            }
            match n % 60 {
                // Two throttled answers in the fleet: each pauses the whole run for
                // its Retry-After, as Amazon asks, and slows the rate for a while.
                _ if n % 150 == 29 => fake.push_faults(
                    Route::Instance(id.clone()),
                    [Fault::Throttle {
                        retry_after: Some(1),
                    }],
                ),
                7 | 31 => fake.on_instance(&id, Fault::Status(403)),
                13 => fake.set_creation_status(&id, "FAILED"),
                21 | 45 => fake.on_instance(&id, Fault::Delay(Duration::from_millis(900))),
                53 => fake.push_faults(
                    Route::Instance(id.clone()),
                    [Fault::Status(503), Fault::Status(503)],
                ),
                _ => {}
            }
            n += 1;
        }
    }

    let api = fake.base_url();
    let auth = fake.token_url();
    let home_dir = home.path().to_string_lossy().into_owned();
    // SAFETY: set before any thread of this process reads the environment
    // (the fake's server thread never does).
    unsafe {
        std::env::set_var("AMCCTL_HOME", &home_dir);
        std::env::set_var("AMCCTL_API_URL", &api);
        std::env::set_var("AMCCTL_AUTH_URL", &auth);
        std::env::set_var("AMCCTL_USER", "demo");
        std::env::set_var("AMCCTL_CLIENT_SECRET", "demo-client-secret");
        std::env::set_var("AMCCTL_REFRESH_TOKEN", "Atzr|demo-refresh-token");
    }
    eprintln!("A temporary amcctl home in {home_dir}, the fake AMC API at {api}");

    amcctl(&["user", "add", "demo", "-q"]);
    amcctl(&["auth", "login", "--client-id", CLIENT_ID]);
    // From here on the stored, encrypted credentials are used.
    unsafe {
        std::env::remove_var("AMCCTL_CLIENT_SECRET");
        std::env::remove_var("AMCCTL_REFRESH_TOKEN");
    }
    amcctl(&["auth", "status"]);
    amcctl(&["account", "discover"]);
    amcctl(&["instance", "discover"]);
    // Two instances registered by hand that AMC no longer has.
    for (id, name) in [
        ("amcgone00001", "Old pilot"),
        ("amcgone00002", "Retired test"),
    ] {
        amcctl(&[
            "instance",
            "create",
            "--instance-id",
            id,
            "--name",
            name,
            "--account",
            "Acme US",
            "--skip-validation",
            "-q",
        ]);
    }
    amcctl(&["brand", "set", "amc00010000", "Acme", "Acme Kids"]);
    amcctl(&["brand", "add", "amc00010075", "Acme"]);
    amcctl(&["account", "list"]);
    let code = amcctl(&[
        "health",
        "check",
        "--all",
        "--concurrency",
        "32",
        "--rate",
        "50",
    ]);
    eprintln!("(exit code {code}: 10 means some instances are not healthy)");
    amcctl(&["health", "status", "--unhealthy"]);
    amcctl(&["health", "report", "--since", "1h"]);
    // Is AMC working for us? Fetch workflows, executions and schedules of a
    // few instances, then report from the store.
    let sample: Vec<String> = (0..USAGE_SAMPLE)
        .map(|n| format!("amc{:08}", 10_000 + n))
        .collect();
    let mut args = vec!["usage", "sync"];
    args.extend(sample.iter().map(String::as_str));
    args.extend(["--rate", "50"]);
    let code = amcctl(&args);
    eprintln!("(exit code {code}: 6 means some instances could not be synced)");
    let mut args = vec!["usage", "report"];
    args.extend(sample.iter().map(String::as_str));
    amcctl(&args);
    amcctl(&["schedule", "list", "--failing"]);
    // The page for the team and its clients: everything above in one file.
    let page_dir = std::env::temp_dir().join("amcctl-demo");
    if let Err(e) = std::fs::create_dir_all(&page_dir) {
        eprintln!("cannot create {}: {e}", page_dir.display());
    }
    let page = page_dir.join("dashboard.html");
    let page_arg = page.to_string_lossy().into_owned();
    amcctl(&["dashboard", "--out", &page_arg]);
    eprintln!(
        "\nThe fake AMC saw {} requests, {} token refresh(es) and sent {} throttling answers.",
        fake.requests().len(),
        fake.token_grants(),
        fake.throttled()
    );
    eprintln!(
        "The dashboard is in {} (open it in a browser; it needs no network).",
        page.display()
    );
}
