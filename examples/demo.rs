//! The README's first command: amcctl's main job end to end, with no Amazon
//! account needed.
//!
//! It starts the fake AMC server on loopback with a realistic fleet (mostly
//! healthy; a few instances the credentials may not see, a few gone, a few
//! that failed to provision, some slow ones, some throttling), points a
//! temporary amcctl home at it, and drives the real commands: login,
//! account and instance discovery, brands, a bulk health check with a
//! progress bar, and the health report.
//!
//! ```text
//! cargo run --release --example demo
//! ```

use std::time::Duration;

use clap::Parser;
use fake_amc::{FakeAmc, Fault, Route};

const CLIENT_ID: &str = "amzn1.application-oa2-client.demo";
const ACCOUNTS: [(&str, &str, &str); 4] = [
    ("ENTITY2DEMOUS01", "Acme US", "ATVPDKIKX0DER"),
    ("ENTITY2DEMOUK02", "Acme UK", "A1F83G8C2ARO7P"),
    ("ENTITY2DEMODE03", "Acme DE", "A1PA6795UKMFR9"),
    ("ENTITY2DEMOJP04", "Acme JP", "A1VC38T7YXB528"),
];
const PER_ACCOUNT: usize = 75;

fn amcctl(args: &[&str]) -> i32 {
    eprintln!("\n\x1b[1m$ amcctl {}\x1b[0m", args.join(" "));
    let cli = amcctl::cli::Cli::parse_from(std::iter::once("amcctl").chain(args.iter().copied()));
    amcctl::main_with(cli)
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
    eprintln!(
        "\nThe fake AMC saw {} requests, {} token refresh(es) and sent {} throttling answers.",
        fake.requests().len(),
        fake.token_grants(),
        fake.throttled()
    );
}
