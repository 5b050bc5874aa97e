//! Network faults: a table of misbehaviours of the fake AMC and its token
//! endpoint — timeouts, resets, 5xx bursts, 429 storms with and without
//! `Retry-After`, malformed and truncated JSON, a wrong content type, a
//! huge body, a token endpoint that is down — each through `instance test`
//! and `health check`, asserting the documented verdict and exit code
//! (the README's exit codes), the number of attempts, a time bound (so no
//! retry loop runs without end), and no panic.

use std::io::Read;
use std::ops::RangeInclusive;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;
use fake_amc::{FakeAmc, Fault, Route};
use serde_json::Value;

const ACME: &str = "ENTITY1AA1AA11AAA1";
const CLIENT: &str = "fault-client";
const SECRET: &str = "fault-secret";
const REFRESH: &str = "Atzr|fault-refresh";

/// How a case makes the fake misbehave.
#[derive(Clone)]
enum Setup {
    /// Behaves.
    None,
    /// Every call for the instance gets this.
    Always(Fault),
    /// The next calls for the instance get these, one each (pushed again
    /// before each command).
    Once(Vec<Fault>),
}

/// One row of the matrix for AMC's instance call.
struct Case {
    name: &'static str,
    setup: Setup,
    retries: u32,
    /// The health verdict.
    verdict: &'static str,
    /// The exit code of `instance test`.
    test_exit: i32,
    attempts: RangeInclusive<u64>,
    /// Lower bound of one command's time: backoff and `Retry-After` honoured.
    at_least: Duration,
    /// Upper bound of one command's time.
    at_most: Duration,
    /// Part of the result's error text.
    error_has: &'static str,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn cases() -> Vec<Case> {
    use Fault::*;
    let case = |name, setup, verdict, test_exit, attempts, at_most, error_has| Case {
        name,
        setup,
        retries: 2,
        verdict,
        test_exit,
        attempts,
        at_least: Duration::ZERO,
        at_most,
        error_has,
    };
    vec![
        case("healthy", Setup::None, "HEALTHY", 0, 1..=1, secs(5.0), ""),
        case(
            "slow but in time",
            Setup::Always(Delay(secs(0.3))),
            "HEALTHY",
            0,
            1..=1,
            secs(5.0),
            "",
        ),
        Case {
            at_least: secs(1.0),
            ..case(
                "one timeout, then an answer",
                Setup::Once(vec![Delay(secs(4.0))]),
                "HEALTHY",
                0,
                2..=2,
                secs(8.0),
                "",
            )
        },
        Case {
            at_least: secs(3.0),
            ..case(
                "always times out",
                Setup::Always(Delay(secs(4.0))),
                "ERROR",
                6,
                3..=3,
                secs(10.0),
                "timed out",
            )
        },
        case(
            "one reset, then an answer",
            Setup::Once(vec![Reset]),
            "HEALTHY",
            0,
            2..=2,
            secs(5.0),
            "",
        ),
        case(
            "always reset",
            Setup::Always(Reset),
            "ERROR",
            6,
            3..=3,
            secs(8.0),
            "network error",
        ),
        // Four retries at least 1 s apart, under ceilings of 1, 2, 4 and 8 s.
        Case {
            retries: 4,
            at_least: secs(4.0),
            ..case(
                "a 5xx burst, then an answer",
                Setup::Once(vec![Status(500), Status(502), Status(503), Status(504)]),
                "HEALTHY",
                0,
                5..=5,
                secs(20.0),
                "",
            )
        },
        case(
            "always 503",
            Setup::Always(Status(503)),
            "ERROR",
            6,
            3..=3,
            secs(8.0),
            "503",
        ),
        case(
            "always 500",
            Setup::Always(Status(500)),
            "ERROR",
            6,
            3..=3,
            secs(8.0),
            "500",
        ),
        Case {
            at_least: secs(2.0),
            ..case(
                "429 storm with Retry-After, then an answer",
                Setup::Once(vec![
                    Throttle {
                        retry_after: Some(1),
                    },
                    Throttle {
                        retry_after: Some(1),
                    },
                ]),
                "HEALTHY",
                0,
                3..=3,
                secs(8.0),
                "",
            )
        },
        Case {
            at_least: secs(2.0),
            ..case(
                "endless 429 with Retry-After",
                Setup::Always(Throttle {
                    retry_after: Some(1),
                }),
                "ERROR",
                6,
                3..=3,
                secs(8.0),
                "429",
            )
        },
        // Without Retry-After the client still waits at least 1 s a retry.
        Case {
            at_least: secs(2.0),
            ..case(
                "429 storm without Retry-After, then an answer",
                Setup::Once(vec![Throttle { retry_after: None }; 2]),
                "HEALTHY",
                0,
                3..=3,
                secs(8.0),
                "",
            )
        },
        Case {
            at_least: secs(2.0),
            ..case(
                "endless 429 without Retry-After",
                Setup::Always(Throttle { retry_after: None }),
                "ERROR",
                6,
                3..=3,
                secs(8.0),
                "429",
            )
        },
        case(
            "a Retry-After beyond the call's budget is not waited for",
            Setup::Always(Throttle {
                retry_after: Some(3600),
            }),
            "ERROR",
            6,
            1..=1,
            secs(5.0),
            "429",
        ),
        case(
            "403: no access",
            Setup::Always(Status(403)),
            "UNHEALTHY",
            6,
            1..=1,
            secs(3.0),
            "403",
        ),
        case(
            "404: no such instance",
            Setup::Always(Status(404)),
            "UNHEALTHY",
            6,
            1..=1,
            secs(3.0),
            "404",
        ),
        case(
            "400 is never retried",
            Setup::Always(Status(400)),
            "ERROR",
            6,
            1..=1,
            secs(3.0),
            "400",
        ),
        case(
            "401 once: the token is refreshed",
            Setup::Once(vec![Status(401)]),
            "HEALTHY",
            0,
            2..=2,
            secs(3.0),
            "",
        ),
        case(
            "401 always: credentials refused",
            Setup::Always(Status(401)),
            "ERROR",
            7,
            2..=2,
            secs(3.0),
            "401",
        ),
        case(
            "malformed JSON",
            Setup::Always(MalformedJson),
            "ERROR",
            6,
            1..=1,
            secs(3.0),
            "malformed JSON",
        ),
        case(
            "truncated JSON",
            Setup::Always(TruncatedJson),
            "ERROR",
            6,
            1..=1,
            secs(3.0),
            "malformed JSON",
        ),
        case(
            "an HTML page instead of JSON",
            Setup::Always(WrongContentType),
            "ERROR",
            6,
            1..=1,
            secs(3.0),
            "content type",
        ),
        case(
            "a body over the size cap",
            Setup::Always(HugeBody(9 << 20)),
            "ERROR",
            6,
            1..=1,
            secs(10.0),
            "larger than",
        ),
        case(
            "JSON of the wrong shape",
            Setup::Always(HugeBody(4096)),
            "ERROR",
            6,
            1..=1,
            secs(3.0),
            "malformed JSON",
        ),
        case(
            "instance still being created",
            Setup::Always(NotCompleted("PENDING".into())),
            "UNHEALTHY",
            6,
            1..=1,
            secs(3.0),
            "PENDING",
        ),
        case(
            "instance creation failed",
            Setup::Always(NotCompleted("FAILED".into())),
            "UNHEALTHY",
            6,
            1..=1,
            secs(3.0),
            "FAILED",
        ),
    ]
}

/// A finished command, or one killed at its deadline (then a test failure).
fn run_bounded(env: &TestEnv, args: &[&str], limit: Duration) -> (Output, Duration) {
    let started = Instant::now();
    let mut child = env
        .command(DEFAULT_USER, args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start amcctl");
    let readers = [
        drain(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
        drain(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        ),
    ];
    let status = wait_until(&mut child, started + limit);
    let elapsed = started.elapsed();
    let [stdout, stderr] = readers.map(|r| r.join().expect("read a pipe"));
    let Some(status) = status else {
        panic!(
            "amcctl {args:?} still ran after {limit:?}: a retry loop without end?\n{}",
            String::from_utf8_lossy(&stderr)
        );
    };
    let out = Output {
        args: args.iter().map(|s| (*s).to_owned()).collect(),
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        stdout_bytes: stdout,
    };
    assert!(
        !out.stderr.contains("panicked") && out.code != 101,
        "amcctl {args:?} panicked:\n{}",
        out.stderr
    );
    (out, elapsed)
}

fn drain(pipe: Option<Box<dyn Read + Send>>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

/// Polls the child until it exits or the deadline passes (then kills it).
fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("poll amcctl") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A store with one instance per case, checked with credentials from the
/// environment (so every process asks the token endpoint once).
fn env_for(amc: &FakeAmc, ids: &[String]) -> TestEnv {
    amc.add_client(CLIENT, SECRET, REFRESH);
    amc.add_account(ACME, "Acme", "ATVPDKIKX0DER");
    let env = TestEnv::new()
        .with_fake_amc(amc)
        .with_env("AMCCTL_CLIENT_ID", CLIENT)
        .with_env("AMCCTL_CLIENT_SECRET", SECRET)
        .with_env("AMCCTL_REFRESH_TOKEN", REFRESH);
    let mut csv = String::from("instance_id,name,region,account_id,account_name,country_code\n");
    for id in ids {
        amc.add_instance(ACME, id, id);
        csv.push_str(&format!("{id},{id},na,{ACME},Acme,US\n"));
    }
    let file = env.write_file("instances.csv", csv);
    env.run(&["instance", "import", file.to_str().expect("utf-8 path")])
        .ok();
    env
}

fn history(env: &TestEnv, id: &str) -> Vec<Vec<String>> {
    env.probe().rows(&format!(
        "SELECT h.status, h.attempts FROM health_checks h JOIN amc_instances i ON i.id = h.instance_id
         WHERE i.instance_id = '{id}' ORDER BY h.id"
    ))
}

fn arm(amc: &FakeAmc, id: &str, setup: &Setup) {
    match setup {
        Setup::None => {}
        Setup::Always(f) => amc.on_instance(id, f.clone()),
        Setup::Once(faults) => amc.push_faults(Route::Instance(id.to_owned()), faults.clone()),
    }
}

/// Asserts one check result against its case.
#[track_caller]
fn assert_result(case: &Case, what: &str, r: &Value, elapsed: Duration) {
    let ctx = format!("{}: {what} ({elapsed:?}): {r}", case.name);
    assert_eq!(r["status"], case.verdict, "{ctx}");
    let attempts = r["attempts"].as_u64().expect("attempts");
    assert!(case.attempts.contains(&attempts), "{ctx}: attempts");
    assert!(
        elapsed >= case.at_least,
        "{ctx}: faster than the backoff allows"
    );
    assert!(
        elapsed <= case.at_most,
        "{ctx}: slower than {:?}",
        case.at_most
    );
    let error = r["error"].as_str().unwrap_or_default();
    if case.verdict == "HEALTHY" {
        assert!(r["error"].is_null(), "{ctx}");
    } else {
        assert!(
            error.contains(case.error_has),
            "{ctx}: error lacks {:?}",
            case.error_has
        );
    }
}

fn every_fault_gets_its_documented_verdict_in_bounded_time() {
    let started = Instant::now();
    let amc = FakeAmc::start();
    let cases = cases();
    let ids: Vec<String> = (0..cases.len())
        .map(|i| format!("amcfault{i:03}"))
        .collect();
    let env = env_for(&amc, &ids);
    // Cases wait on timers, not on the CPU: run them side by side.
    let pairs: Vec<(&Case, &String)> = cases.iter().zip(&ids).collect();
    std::thread::scope(|s| {
        for chunk in pairs.chunks(5) {
            let (amc, env) = (&amc, &env);
            s.spawn(move || {
                for (case, id) in chunk {
                    let id = id.as_str();
                    let retries = case.retries.to_string();
                    let net = ["--timeout", "1s", "--retries", &retries, "-o", "json"];
                    arm(amc, id, &case.setup);
                    let mut args = vec!["instance", "test", id];
                    args.extend(net);
                    let (out, elapsed) = run_bounded(env, &args, case.at_most + secs(5.0));
                    assert_eq!(
                        out.code, case.test_exit,
                        "{}: instance test exit code\n{}",
                        case.name, out.stderr
                    );
                    assert_result(case, "instance test", &out.json(), elapsed);
                    assert!(
                        history(env, id).is_empty(),
                        "{}: instance test stored a check",
                        case.name
                    );

                    arm(amc, id, &case.setup);
                    let mut args = vec!["health", "check", id];
                    args.extend(net);
                    let (out, elapsed) = run_bounded(env, &args, case.at_most + secs(5.0));
                    let want = if case.verdict == "HEALTHY" { 0 } else { 10 };
                    assert_eq!(
                        out.code, want,
                        "{}: health check exit code\n{}",
                        case.name, out.stderr
                    );
                    let v = out.json();
                    assert_result(case, "health check", &v["results"][0], elapsed);
                    assert_eq!(v["summary"]["checked"], 1, "{}", case.name);
                    let rows = history(env, id);
                    assert_eq!(rows.len(), 1, "{}: one recorded check", case.name);
                    assert_eq!(rows[0][0], format!("{:?}", case.verdict), "{}", case.name);
                }
            });
        }
    });
    // A check's verdict moves the instance's status.
    for (case, id) in cases.iter().zip(&ids) {
        let status = env.probe().rows(&format!(
            "SELECT status, health_status FROM amc_instances WHERE instance_id = '{id}'"
        ));
        let want = if case.verdict == "HEALTHY" {
            "ACTIVE"
        } else {
            "ERROR"
        };
        assert_eq!(
            status,
            [[format!("{want:?}"), format!("{:?}", case.verdict)]],
            "{}",
            case.name
        );
    }
    env.assert_store_sound("after the fault matrix");
    let elapsed = started.elapsed();
    eprintln!(
        "faults: {} cases x 2 commands in {elapsed:?}, verdicts and exit codes as documented",
        cases.len()
    );
    assert!(elapsed < secs(90.0), "the matrix took {elapsed:?}");
}

fn one_bulk_check_over_every_fault_finishes_in_bounded_time() {
    let amc = FakeAmc::start();
    let cases = cases();
    let ids: Vec<String> = (0..cases.len()).map(|i| format!("amcbulk{i:04}")).collect();
    let env = env_for(&amc, &ids);
    for (case, id) in cases.iter().zip(&ids) {
        arm(&amc, id, &case.setup);
    }
    // --retries 4 for the cases that need it; the others may take up to
    // two more attempts than in the matrix, and nothing may wait for the
    // hour a Retry-After asked for, nor hold up the other checks for it.
    let (out, elapsed) = run_bounded(
        &env,
        &[
            "health",
            "check",
            "--all",
            "--timeout",
            "1s",
            "--retries",
            "4",
            "--concurrency",
            "32",
            "--rate",
            "100",
            "-o",
            "json",
            "-vv",
        ],
        secs(60.0),
    );
    assert_eq!(out.code, 10, "{}", out.stderr);
    let v = out.json();
    assert_eq!(v["summary"]["checked"], cases.len(), "{v}");
    for (case, id) in cases.iter().zip(&ids) {
        let r = v["results"]
            .as_array()
            .expect("results")
            .iter()
            .find(|r| r["instance_id"] == id.as_str())
            .unwrap_or_else(|| panic!("no result for {}", case.name));
        assert_eq!(r["status"], case.verdict, "{}: {r}", case.name);
    }
    eprintln!(
        "faults: one bulk check of {} faulty instances in {elapsed:?}",
        cases.len()
    );
    assert!(elapsed < secs(30.0), "the bulk check took {elapsed:?}");
}

/// One row of the matrix for the token endpoint.
struct TokenCase {
    name: &'static str,
    /// Faults of the token endpoint, one per call.
    faults: Vec<Fault>,
    /// Point the token URL at a closed port instead.
    down: bool,
    /// Use a refresh token Login with Amazon does not know.
    revoked: bool,
    healthy: bool,
    at_most: Duration,
    error_has: &'static str,
}

impl TokenCase {
    /// `instance test`: 7 when Login with Amazon refused the credentials,
    /// 6 when it could not be used (down, failing, garbled: a network
    /// failure that says nothing about the credentials).
    fn test_exit(&self) -> i32 {
        match (self.healthy, self.revoked) {
            (true, _) => 0,
            (false, true) => 7,
            (false, false) => 6,
        }
    }
}

fn a_failing_token_endpoint_is_exit_6_and_a_refusal_exit_7_in_bounded_time() {
    use Fault::*;
    let token = |name, faults, healthy, at_most, error_has| TokenCase {
        name,
        faults,
        down: false,
        revoked: false,
        healthy,
        at_most,
        error_has,
    };
    let cases = vec![
        TokenCase {
            down: true,
            ..token(
                "down: connection refused",
                vec![],
                false,
                secs(8.0),
                "unavailable",
            )
        },
        token(
            "always 503",
            vec![Status(503); 12],
            false,
            secs(8.0),
            "HTTP 503",
        ),
        token("503 once", vec![Status(503)], true, secs(5.0), ""),
        token(
            "always reset",
            vec![Reset; 12],
            false,
            secs(8.0),
            "unavailable",
        ),
        token(
            "always slow",
            vec![Delay(secs(4.0)); 6],
            false,
            secs(10.0),
            "timed out",
        ),
        token(
            "429 with Retry-After once",
            vec![Throttle {
                retry_after: Some(1),
            }],
            true,
            secs(6.0),
            "",
        ),
        token(
            "429 asking for an hour",
            vec![
                Throttle {
                    retry_after: Some(3600),
                };
                6
            ],
            false,
            secs(5.0),
            "HTTP 429",
        ),
        token(
            "malformed JSON",
            vec![MalformedJson; 6],
            false,
            secs(5.0),
            "not the expected JSON",
        ),
        token(
            "an HTML page",
            vec![WrongContentType; 6],
            false,
            secs(5.0),
            "not the expected JSON",
        ),
        TokenCase {
            revoked: true,
            ..token(
                "refresh token refused",
                vec![],
                false,
                secs(5.0),
                "invalid_grant",
            )
        },
    ];
    let runs: usize = std::thread::scope(|s| {
        let workers: Vec<_> = cases
            .chunks(4)
            .map(|chunk| {
                s.spawn(move || {
                    let mut runs = 0;
                    for case in chunk {
                        let amc = FakeAmc::start();
                        let env = env_for(&amc, &["amctoken001".to_owned()]);
                        let mut extra: Vec<(&str, &str)> = Vec::new();
                        if case.down {
                            extra.push(("AMCCTL_AUTH_URL", "http://127.0.0.1:1/auth/o2/token"));
                        }
                        if case.revoked {
                            extra.push(("AMCCTL_REFRESH_TOKEN", "Atzr|revoked"));
                        }
                        let env = extra.iter().fold(env, |env, (k, v)| env.with_env(*k, *v));
                        for (args, want) in [
                            (&["instance", "test", "amctoken001"][..], case.test_exit()),
                            (
                                &["health", "check", "amctoken001"],
                                if case.healthy { 0 } else { 10 },
                            ),
                            (
                                &["health", "check", "--all", "--nagios"],
                                if case.healthy { 0 } else { 2 },
                            ),
                        ] {
                            amc.push_faults(Route::Token, case.faults.clone());
                            let mut full = args.to_vec();
                            full.extend(["--timeout", "1s", "--retries", "2", "-o", "json"]);
                            let (out, elapsed) = run_bounded(&env, &full, case.at_most + secs(5.0));
                            let ctx = format!("{}: amcctl {full:?} ({elapsed:?})", case.name);
                            assert_eq!(out.code, want, "{ctx}\n{}\n{}", out.stdout, out.stderr);
                            assert!(elapsed <= case.at_most, "{ctx}: too slow");
                            if args.contains(&"--nagios") {
                                let state = if case.healthy {
                                    "AMC OK"
                                } else {
                                    "AMC CRITICAL"
                                };
                                assert!(out.stdout.starts_with(state), "{ctx}: {}", out.stdout);
                            } else {
                                let r = out.json();
                                let r = if r["results"].is_array() {
                                    r["results"][0].clone()
                                } else {
                                    r
                                };
                                let verdict = if case.healthy { "HEALTHY" } else { "ERROR" };
                                assert_eq!(r["status"], verdict, "{ctx}: {r}");
                                let error = r["error"].as_str().unwrap_or_default();
                                assert!(error.contains(case.error_has), "{ctx}: {r}");
                            }
                            runs += 1;
                            // A failed token call never reaches AMC itself.
                            if !case.healthy {
                                assert!(
                                    amc.requests().iter().all(|r| !r.path.starts_with("/amc/")),
                                    "{ctx}: AMC was called without a token"
                                );
                            }
                        }
                        env.assert_store_sound(case.name);
                    }
                    runs
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a token worker panicked"))
            .sum()
    });
    eprintln!(
        "faults: {} token-endpoint cases, {runs} commands (exit 6 when unusable, 7 when refused)",
        cases.len()
    );
}

fn an_api_host_that_is_down_is_an_error_not_a_hang() {
    let amc = FakeAmc::start();
    let env =
        env_for(&amc, &["amcapidown1".to_owned()]).with_env("AMCCTL_API_URL", "http://127.0.0.1:1");
    for (args, want) in [
        (&["instance", "test", "amcapidown1"][..], 6),
        (&["health", "check", "amcapidown1"], 10),
        (&["health", "check", "--all", "--nagios"], 2),
        (&["instance", "discover", "--dry-run"], 6),
        (&["account", "discover", "--dry-run"], 6),
    ] {
        let mut full = args.to_vec();
        full.extend(["--timeout", "1s", "--retries", "2"]);
        let (out, elapsed) = run_bounded(&env, &full, secs(20.0));
        assert_eq!(
            out.code, want,
            "amcctl {full:?}\n{}\n{}",
            out.stdout, out.stderr
        );
        assert!(elapsed < secs(10.0), "amcctl {full:?} took {elapsed:?}");
    }
    env.assert_store_sound("after an unreachable API");
}

crate::on_both_backends!(
    every_fault_gets_its_documented_verdict_in_bounded_time,
    one_bulk_check_over_every_fault_finishes_in_bounded_time,
    a_failing_token_endpoint_is_exit_6_and_a_refusal_exit_7_in_bounded_time,
    an_api_host_that_is_down_is_an_error_not_a_hang,
);
