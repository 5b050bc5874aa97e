//! The AMC API as Amazon documents it, end to end: every page of the
//! accounts listing, a bound on endless listings, 429s without
//! `Retry-After`, request IDs and the 403 hint in errors, the marketplaces,
//! TLS with a CA made here and a CONNECT proxy started here, and `--jq`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::TestEnv;
use crate::support::amc::{Amc, CLIENT_SECRET, ENTITY, REFRESH_TOKEN, US, login_with};
use fake_amc::{ACCOUNTS_REQUEST_ID, FakeAmc, Fault, REQUEST_ID_PREFIX, Route};
use serde_json::Value;

// ------------------------------------------------------------ listings

fn account_discover_reads_every_page_and_instance_discover_visits_them_all() {
    let amc = Amc::logged_in();
    // 250 accounts in all (the two of the fixture among them): 3 pages.
    for i in 2..250 {
        amc.fake
            .add_account(&format!("ENTITY{i:06}PAGED"), &format!("Paged {i}"), US);
    }
    // Instances of accounts on the second and the third page.
    amc.fake
        .add_instance("ENTITY000150PAGED", "amcpage0150", "page two");
    amc.fake
        .add_instance("ENTITY000249PAGED", "amcpage0249", "page three");
    let out = amc.env.run(&["account", "discover", "-o", "json"]).ok();
    let v = out.json();
    let accounts = amc.env.json(&["account", "list"]);
    assert_eq!(accounts.as_array().map(Vec::len), Some(250), "{v}");
    let account_calls: Vec<_> = amc
        .amc_requests()
        .into_iter()
        .filter(|r| r.path == "/amc/accounts")
        .collect();
    assert_eq!(account_calls.len(), 3, "three pages");

    amc.env
        .run(&["instance", "discover", "--rate", "1000"])
        .ok();
    let instances = amc.env.json(&["instance", "list"]);
    let ids = crate::support::pluck(&instances, "instance_id");
    for id in ["amcpage0150", "amcpage0249"] {
        assert!(ids.contains(&id.to_owned()), "{id} not discovered: {ids:?}");
    }
}

fn an_endless_listing_ends_with_exit_6_naming_the_account() {
    let amc = Amc::logged_in();
    amc.fake.set_endless_pages(true);
    let started = Instant::now();
    let out = amc
        .env
        .run(&["instance", "discover", "--rate", "1000"])
        .fails(6, &[ENTITY, "nextToken", "1000 pages"]);
    let took = started.elapsed();
    // The figure the issue asks for: how long the bound lets it run.
    eprintln!("endless instance listing cut off after {took:?} (1000 pages)");
    assert!(!out.stderr.contains("panicked"));
    let pages = amc
        .amc_requests()
        .into_iter()
        .filter(|r| r.path == "/amc/instances")
        .count();
    assert_eq!(pages, 1000);
    // Nothing was stored from the broken listing.
    let instances = amc.env.json(&["instance", "list"]);
    assert_eq!(instances.as_array().map(Vec::len), Some(0));
}

// ------------------------------------------------------------ throttling

fn a_quarter_throttled_without_retry_after_gives_no_error_verdicts() {
    let amc = Amc::logged_in();
    let ids: Vec<String> = (0..12).map(|i| format!("amcthrot{i:04}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    amc.instances(&refs);
    for id in refs.iter().step_by(4) {
        amc.fake.push_faults(
            Route::Instance((*id).to_owned()),
            [
                Fault::Throttle { retry_after: None },
                Fault::Throttle { retry_after: None },
            ],
        );
    }
    let out = amc
        .env
        .run(&[
            "health", "check", "--all", "-q", "-o", "json", "--rate", "100",
        ])
        .ok();
    let v = out.json();
    assert_eq!(v["summary"]["healthy"], 12, "{v}");
    assert_eq!(v["summary"]["error"], 0, "{v}");
    assert_eq!(amc.fake.throttled(), 6);
}

fn a_check_sleeping_before_its_retry_leaves_its_place_to_others() {
    let amc = Amc::logged_in();
    let ids = [
        "amcsleep0001",
        "amcsleep0002",
        "amcsleep0003",
        "amcsleep0004",
    ];
    amc.instances(&ids);
    amc.fake.push_faults(
        Route::Instance(ids[0].to_owned()),
        [
            Fault::Throttle { retry_after: None },
            Fault::Throttle { retry_after: None },
        ],
    );
    // One request in flight at a time.
    let out = amc
        .env
        .run(&[
            "health",
            "check",
            "--all",
            "-q",
            "-o",
            "json",
            "--concurrency",
            "1",
        ])
        .ok();
    assert_eq!(out.json()["summary"]["healthy"], 4);
    let order: Vec<String> = amc
        .amc_requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/amc/instances/"))
        .map(|r| r.path.trim_start_matches("/amc/instances/").to_owned())
        .collect();
    // The throttled instance's retries come after the others were checked.
    let last_other = order.iter().rposition(|id| id != ids[0]).unwrap();
    let first_retry = order
        .iter()
        .enumerate()
        .filter(|(_, id)| *id == ids[0])
        .nth(1)
        .map(|(i, _)| i)
        .unwrap();
    assert!(
        first_retry > 1,
        "a sleeping check held the only place: {order:?}"
    );
    assert!(last_other < order.len() - 1, "{order:?}");
}

// ------------------------------------------------------------ errors

fn request_ids_show_in_machine_errors_and_with_v() {
    let amc = Amc::logged_in();
    amc.fake.push_faults(Route::Accounts, [Fault::Status(403)]);
    let out = amc.env.run(&["account", "discover", "-o", "json"]).code(6);
    let e = out.error_json();
    assert_eq!(e["request_id"], ACCOUNTS_REQUEST_ID, "{e}");

    amc.fake.push_faults(Route::Accounts, [Fault::Status(403)]);
    let out = amc.env.run(&["account", "discover", "-v"]).code(6);
    assert!(
        out.stderr
            .contains(&format!("request ID: {ACCOUNTS_REQUEST_ID}")),
        "{}",
        out.stderr
    );
    // Without -v, people see the message and the hint only.
    amc.fake.push_faults(Route::Accounts, [Fault::Status(403)]);
    let out = amc.env.run(&["account", "discover"]).code(6);
    assert!(!out.stderr.contains("request ID"), "{}", out.stderr);

    // The header form (`x-amz-rid`), from a call whose error body has none.
    amc.fake.push_faults(Route::Instances, [Fault::Status(403)]);
    let out = amc.env.run(&["instance", "discover", "-o", "json"]).code(6);
    let e = out.error_json();
    let id = e["request_id"].as_str().unwrap_or_default();
    assert!(id.starts_with(REQUEST_ID_PREFIX), "{e}");
}

fn a_403_names_the_three_usual_causes() {
    let amc = Amc::logged_in();
    amc.fake.push_faults(Route::Accounts, [Fault::Status(403)]);
    amc.env
        .run(&["account", "discover"])
        .fails(6, &["no access to this account", "terms", "instant access"]);
}

fn the_new_marketplaces_are_known() {
    let env = TestEnv::new();
    for (country, market) in [
        ("BE", "AMEN7PMS3EDWL"),
        ("ZA", "AE08WJ6YKNBMC"),
        ("EG", "ARBP9OOSHTCHU"),
    ] {
        let entity = format!("ENTITY1MARKET{country}");
        let out = env
            .run(&[
                "account",
                "create",
                "--account-id",
                &entity,
                "--name",
                country,
                "--country",
                country,
                "-o",
                "json",
            ])
            .ok();
        assert_eq!(out.json()["marketplace_id"], market, "{country}");
    }
}

fn succeeded_is_healthy() {
    let amc = Amc::logged_in();
    amc.instances(&["amcsucceed01"]);
    amc.fake.set_creation_status("amcsucceed01", "SUCCEEDED");
    let out = amc
        .env
        .run(&["health", "check", "amcsucceed01", "-q", "-o", "json"])
        .ok();
    assert_eq!(out.json()["results"][0]["status"], "HEALTHY");
}

// ------------------------------------------------------------ TLS and proxies

/// A CA made for this test, and a server certificate it issued for 127.0.0.1.
struct TestCa {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn test_ca() -> TestCa {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "amcctl test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    TestCa {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// An HTTP CONNECT proxy on 127.0.0.1 that records the targets it was asked
/// for and tunnels to loopback targets only.
struct ConnectProxy {
    port: u16,
    seen: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let record = Arc::clone(&record);
                std::thread::spawn(move || tunnel(client, &record));
            }
        });
        ConnectProxy { port, seen }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn tunnel(client: TcpStream, record: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(client.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    // The rest of the request head.
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => return,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let mut words = line.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        return;
    };
    record.lock().unwrap().push(target.to_owned());
    let mut client = client;
    if !target.starts_with("127.0.0.1:") {
        let _ = client.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n");
        return;
    }
    let Ok(upstream) = TcpStream::connect(target) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    if client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .is_err()
    {
        return;
    }
    let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
    let mut client_write = client;
    let pump = std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut up_write);
        let _ = up_write.shutdown(std::net::Shutdown::Write);
    });
    let mut buf = [0u8; 16 * 1024];
    loop {
        match up_read.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if client_write.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client_write.shutdown(std::net::Shutdown::Both);
    let _ = pump.join();
}

fn tls_fake(ca: &TestCa) -> FakeAmc {
    let fake = FakeAmc::start_tls(&format!("{}{}", ca.cert_pem, ca.ca_pem), &ca.key_pem);
    fake.add_client(crate::support::amc::CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN);
    fake.add_account(ENTITY, "Acme", US);
    fake
}

fn tls_with_a_private_ca_needs_the_bundle() {
    let ca = test_ca();
    let fake = tls_fake(&ca);
    assert!(fake.base_url().starts_with("https://127.0.0.1:"));
    let env = TestEnv::new().with_fake_amc(&fake);
    let bundle = env.write_file("ca.pem", &ca.ca_pem);
    let bundle = bundle.to_str().unwrap();

    // Unknown issuer: exit 6, the hint names --ca-bundle, nothing stored.
    login_with(&env, &[], CLIENT_SECRET, REFRESH_TOKEN).fails(6, &["--ca-bundle"]);
    assert_eq!(fake.token_grants(), 0);
    // With the bundle, by flag: the login works, and so do AMC calls.
    login_with(&env, &["--ca-bundle", bundle], CLIENT_SECRET, REFRESH_TOKEN).ok();
    env.run(&["account", "discover", "--ca-bundle", bundle])
        .ok();
    // By environment variable, and by config key.
    env.run_env(
        crate::support::DEFAULT_USER,
        &["account", "discover"],
        &[("AMCCTL_CA_BUNDLE", bundle)],
    )
    .ok();
    env.run(&["config", "set", "ca_bundle", bundle]).ok();
    env.run(&["account", "discover"]).ok();
    // A bundle that is not PEM is a usage error naming the file.
    let junk = env.write_file("junk.pem", "not a certificate");
    env.run(&["account", "discover", "--ca-bundle", junk.to_str().unwrap()])
        .fails(2, &["junk.pem"]);
}

fn https_proxy_carries_the_calls_and_no_proxy_bypasses_it() {
    let ca = test_ca();
    let fake = tls_fake(&ca);
    let proxy = ConnectProxy::start();
    let env = TestEnv::new()
        .with_fake_amc(&fake)
        .with_env("HTTPS_PROXY", proxy.url());
    let bundle = env.write_file("ca.pem", &ca.ca_pem);
    let bundle = bundle.to_str().unwrap();
    login_with(&env, &["--ca-bundle", bundle], CLIENT_SECRET, REFRESH_TOKEN).ok();
    env.run(&["account", "discover", "--ca-bundle", bundle])
        .ok();
    let target = fake.base_url().trim_start_matches("https://").to_owned();
    let seen = proxy.seen();
    assert!(!seen.is_empty(), "the proxy saw no call");
    assert!(seen.iter().all(|t| *t == target), "{seen:?}");
    assert!(fake.requests().iter().any(|r| r.path == "/amc/accounts"));

    // NO_PROXY naming the host: straight to the server.
    let before = proxy.seen().len();
    env.run_env(
        crate::support::DEFAULT_USER,
        &["account", "discover", "--ca-bundle", bundle],
        &[("NO_PROXY", "127.0.0.1")],
    )
    .ok();
    assert_eq!(proxy.seen().len(), before, "NO_PROXY was not honoured");
}

// ------------------------------------------------------------ --jq

/// A fleet with a known state: healthy instances, one UNHEALTHY (404),
/// one ERROR (500), all checked once.
fn checked_fleet() -> Amc {
    let amc = Amc::logged_in();
    amc.instances(&[
        "amcjqok00001",
        "amcjqok00002",
        "amcjq404nope",
        "amcjq500fail",
    ]);
    amc.fake.on_instance("amcjq404nope", Fault::Status(404));
    amc.fake.on_instance("amcjq500fail", Fault::Status(500));
    amc.env
        .run(&["health", "check", "--all", "-q", "--retries", "0"])
        .code(10);
    amc
}

/// `jq -r EXPR` over `json`, when the `jq` binary is installed.
fn real_jq(expr: &str, json: &str) -> Option<String> {
    let mut child = std::process::Command::new("jq")
        .args(["-r", expr])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(json.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    assert!(out.status.success(), "jq failed on {expr}");
    Some(String::from_utf8(out.stdout).unwrap())
}

/// Lines of output as values: JSON where it parses, else the raw string.
fn as_values(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => v,
        Err(_) => Value::Array(text.lines().map(|l| Value::String(l.to_owned())).collect()),
    }
}

fn jq_answers_as_jq_does_for_the_readme_recipes() {
    let amc = checked_fleet();
    let recipes: [(&[&str], &str, &str); 7] = [
        (
            &["instance", "list"],
            r#".[] | select(.health.status=="ERROR") | .instance_id"#,
            "amcjq500fail\n",
        ),
        (
            &["health", "check", "--all", "-q", "--retries", "0"],
            r#".results[] | select(.status != "HEALTHY") | .instance_id"#,
            "amcjq500fail\namcjq404nope\n",
        ),
        (
            &["health", "status"],
            r#".[] | select(.health.status != "HEALTHY") | "\(.instance_id)\t\(.health.status)""#,
            "",
        ),
        (&["health", "status", "--unhealthy"], ".[].instance_id", ""),
        (
            &["health", "check", "--all", "-q", "--retries", "0"],
            r#".results | group_by(.status)[] | "\(.[0].status)\t\(length)""#,
            "ERROR\t1\nHEALTHY\t2\nUNHEALTHY\t1\n",
        ),
        (
            &["health", "check", "--all", "-q", "--retries", "0"],
            r#"[.results[] | select(.status == "ERROR")] | group_by(.http_status)[] | "\(.[0].http_status)\t\(length)""#,
            "500\t1\n",
        ),
        (
            &["instance", "list"],
            r#"def nearest_rank(p): sort | if length == 0 then null
                 else .[((p / 100 * length) | ceil | if . < 1 then 1 else . end) - 1] end;
               group_by(.account.account_id)
               | map({account: .[0].account.account_name,
                      p95_ms: (map(.health.latency_ms // empty) | nearest_rank(95))})
               | map(.account)"#,
            "[\n  \"Acme\"\n]\n",
        ),
    ];
    let mut compared = 0;
    for (args, expr, known) in recipes {
        let mut with_jq: Vec<&str> = args.to_vec();
        with_jq.extend(["--jq", expr]);
        let ours = amc.env.run(&with_jq);
        assert!(
            ours.code == 0 || ours.code == 10,
            "{args:?} {expr}: exit {}\n{}",
            ours.code,
            ours.stderr
        );
        let mut plain: Vec<&str> = args.to_vec();
        plain.extend(["-o", "json"]);
        let json = amc.env.run(&plain).stdout;
        match real_jq(expr, &json) {
            Some(theirs) => {
                compared += 1;
                assert_eq!(as_values(&ours.stdout), as_values(&theirs), "{expr}");
            }
            None if !known.is_empty() => assert_eq!(ours.stdout, known, "{expr}"),
            None => {}
        }
        if !known.is_empty() {
            assert_eq!(ours.stdout, known, "{expr}");
        }
    }
    eprintln!("compared {compared} recipes with the jq binary");
}

fn jq_implies_json_and_a_bad_expression_is_exit_2_naming_it() {
    let amc = checked_fleet();
    // Implies -o json even when a table was asked for.
    let out = amc
        .env
        .run(&["instance", "list", "-o", "table", "--jq", "length"])
        .ok();
    assert_eq!(out.stdout, "4\n");
    // Raw strings, as `jq -r`.
    let out = amc
        .env
        .run(&["account", "list", "--jq", ".[0].account_id"])
        .ok();
    assert_eq!(out.stdout, format!("{ENTITY}\n"));
    // A bad expression: exit 2, named, before anything is done.
    for bad in [".[", "nosuchfunction(1)"] {
        let out = amc
            .env
            .run(&["instance", "list", "--jq", bad])
            .fails(2, &[bad]);
        assert!(out.stdout.is_empty());
    }
    // A runtime error names the expression too.
    amc.env
        .run(&["account", "list", "--jq", ".[0].account_id | .[]"])
        .fails(2, &["--jq"]);
    // The flag is in the completions (the scripts ask the binary) and the man page.
    let words = ["amcctl", "instance", "list", "--j"];
    let out = amc
        .env
        .command(crate::support::DEFAULT_USER, &["--"])
        .env("COMPLETE", "bash")
        .env("_CLAP_COMPLETE_INDEX", (words.len() - 1).to_string())
        .env("_CLAP_IFS", "\n")
        .args(words)
        .output()
        .unwrap();
    let candidates = String::from_utf8_lossy(&out.stdout);
    assert!(candidates.lines().any(|l| l == "--jq"), "{candidates}");
    let out = amc.env.run(&["man"]).ok();
    assert!(out.stdout.contains("\\-\\-jq"), "{}", out.stdout);
}

fn a_json_body_labelled_as_bytes_or_vendor_json_is_read_end_to_end() {
    let amc = Amc::logged_in();
    amc.instances(&["amcvendor001"]);
    for media in [
        "application/vnd.amcinstances.v1+json",
        "application/octet-stream",
    ] {
        amc.fake.set_media_type(Some(media));
        let out = amc
            .env
            .run(&["health", "check", "amcvendor001", "-q", "-o", "json"])
            .ok();
        assert_eq!(out.json()["results"][0]["status"], "HEALTHY", "{media}");
        let accept = amc
            .amc_requests()
            .last()
            .and_then(|r| r.header("accept").map(str::to_owned));
        assert_eq!(accept.as_deref(), Some("application/json, */*;q=0.8"));
    }
    let _ = Duration::ZERO;
}

crate::on_both_backends!(
    account_discover_reads_every_page_and_instance_discover_visits_them_all,
    an_endless_listing_ends_with_exit_6_naming_the_account,
    a_quarter_throttled_without_retry_after_gives_no_error_verdicts,
    a_check_sleeping_before_its_retry_leaves_its_place_to_others,
    request_ids_show_in_machine_errors_and_with_v,
    a_403_names_the_three_usual_causes,
    the_new_marketplaces_are_known,
    succeeded_is_healthy,
    tls_with_a_private_ca_needs_the_bundle,
    https_proxy_carries_the_calls_and_no_proxy_bypasses_it,
    jq_answers_as_jq_does_for_the_readme_recipes,
    jq_implies_json_and_a_bad_expression_is_exit_2_naming_it,
    a_json_body_labelled_as_bytes_or_vendor_json_is_read_end_to_end,
);
