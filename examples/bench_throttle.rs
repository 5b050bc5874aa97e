//! What does throttling without `Retry-After` cost a bulk health check?
//!
//! A benchmark, not a test. The fake AMC answers every instance call after a
//! fixed latency; in the throttled run, every fourth instance first answers
//! 429 without `Retry-After` twice (AMC does not promise the header). Both
//! runs use the client's default retry policy (at least 1 s between
//! attempts, doubling ceilings) and the layout `amcctl health check` uses:
//! `--concurrency C` requests in flight in the client, 4·C checks in the
//! engine, so a check sleeping before its retry leaves its place to others.
//! `--layout engine` instead bounds only the engine at C checks (a sleeping
//! check then holds its place), for comparison.
//!
//! ```text
//! cargo run --release --example bench_throttle -- --n 400 --latency-ms 300 --concurrency 16
//! ```
//!
//! Prints the wall time of each run, their ratio, the ERROR verdicts and the
//! 429s the server sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amcctl::amc::{Advertiser, AmcClient, ClientConfig, Credentials, NoTokenCache};
use amcctl::domain::{Country, EntityId, HealthStatus, InstanceId, Region, RowId};
use amcctl::health::{self, EngineConfig, Target};
use fake_amc::{FakeAmc, Fault, Route};
use secrecy::SecretString;

const CLIENT_ID: &str = "amzn1.application-oa2-client.bench";
const CLIENT_SECRET: &str = "bench-client-secret";
const REFRESH_TOKEN: &str = "Atzr|bench-refresh-token";
const ENTITY: &str = "ENTITY1BENCHTHROTTLE";

struct Args {
    n: usize,
    latency: Duration,
    concurrency: usize,
    rate: f64,
    engine_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        n: 400,
        latency: Duration::from_millis(300),
        concurrency: 16,
        rate: 100.0,
        engine_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_default();
        match flag.as_str() {
            "--n" => a.n = value().parse().unwrap_or(a.n),
            "--latency-ms" => {
                a.latency = Duration::from_millis(value().parse().unwrap_or(300));
            }
            "--concurrency" => a.concurrency = value().parse().unwrap_or(a.concurrency),
            "--rate" => a.rate = value().parse().unwrap_or(a.rate),
            "--layout" => a.engine_only = value() == "engine",
            other => {
                eprintln!("unknown flag {other}");
                std::process::exit(2);
            }
        }
    }
    a
}

struct Outcome {
    wall: Duration,
    errors: usize,
    throttled: usize,
}

fn run(a: &Args, throttle: bool) -> Outcome {
    let fake = FakeAmc::start();
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN);
    fake.add_account(ENTITY, "Bench", Country::US.marketplace_id());
    fake.set_latency(a.latency);
    let user = RowId::new();
    let advertiser = Advertiser::new(EntityId::parse(ENTITY).unwrap(), Country::US, Region::Na);
    let mut targets = Vec::with_capacity(a.n);
    for i in 0..a.n {
        let id = format!("amcthr{i:05}");
        fake.add_instance(ENTITY, &id, &id);
        if throttle && i % 4 == 0 {
            fake.push_faults(
                Route::Instance(id.clone()),
                [
                    Fault::Throttle { retry_after: None },
                    Fault::Throttle { retry_after: None },
                ],
            );
        }
        targets.push(Target {
            id: RowId::new(),
            instance_id: InstanceId::parse(&id).unwrap(),
            name: id,
            owner: "bench".into(),
            user_id: user,
            profile: "default".into(),
            advertiser: advertiser.clone(),
            api_endpoint: None,
        });
    }
    let client = AmcClient::new(ClientConfig {
        api_url: Some(fake.base_url()),
        auth_url: Some(fake.token_url()),
        rate: a.rate,
        max_in_flight: (!a.engine_only).then_some(a.concurrency),
        ..ClientConfig::default()
    })
    .expect("a client");
    let credentials = Credentials {
        client_id: CLIENT_ID.into(),
        client_secret: SecretString::from(CLIENT_SECRET),
        refresh_token: SecretString::from(REFRESH_TOKEN),
        region: Region::Na,
    };
    let session = Ok(client.session(credentials, Arc::new(NoTokenCache)));
    let engine = if a.engine_only {
        a.concurrency
    } else {
        a.concurrency * 4
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let started = Instant::now();
    let errors = runtime.block_on(async move {
        let sessions = HashMap::from([((user, "default".to_owned()), session)]);
        let config = EngineConfig {
            concurrency: engine,
            deep: false,
        };
        let (mut rx, _cancel) = health::start(targets, sessions, config);
        let mut errors = 0;
        while let Some(r) = rx.recv().await {
            if r.status == HealthStatus::Error {
                errors += 1;
            }
        }
        errors
    });
    Outcome {
        wall: started.elapsed(),
        errors,
        throttled: fake.throttled(),
    }
}

fn main() {
    let a = args();
    println!(
        "N={} latency={:?} concurrency={} rate={}/s layout={}",
        a.n,
        a.latency,
        a.concurrency,
        a.rate,
        if a.engine_only {
            "engine only"
        } else {
            "client in-flight bound, 4x checks"
        }
    );
    let plain = run(&a, false);
    println!(
        "no throttling:           {:>8.2?}  ERROR verdicts {}  429s {}",
        plain.wall, plain.errors, plain.throttled
    );
    let throttled = run(&a, true);
    println!(
        "a quarter throttled x2:  {:>8.2?}  ERROR verdicts {}  429s {}",
        throttled.wall, throttled.errors, throttled.throttled
    );
    println!(
        "ratio {:.2}",
        throttled.wall.as_secs_f64() / plain.wall.as_secs_f64()
    );
}
