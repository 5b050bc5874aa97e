//! Health monitoring end to end: the real binary checking fleets on the fake
//! AMC server. Verdicts per failure class, the status transitions a
//! check makes, history, status, report and prune, the monitoring-plugin
//! line, streaming NDJSON, and runs that are killed or interrupted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::support::amc::{Amc, ENTITY, OTHER_ENTITY, Streaming, results_by_id};
use crate::support::{assert_keys, assert_timestamp, pluck};
use fake_amc::{Fault, Route};
use serde_json::Value;

/// The keys of a `health check` result in JSON.
const RESULT_KEYS: [&str; 10] = [
    "id",
    "instance_id",
    "name",
    "owner",
    "status",
    "http_status",
    "latency_ms",
    "attempts",
    "error",
    "checked_at",
];

fn show(amc: &Amc, id: &str) -> Value {
    amc.env.json(&["instance", "show", id])
}

/// `(status, health.status)` of an instance, from the store.
fn states(amc: &Amc, id: &str) -> (String, String) {
    let v = show(amc, id);
    (
        v["status"].as_str().unwrap().to_owned(),
        v["health"]["status"].as_str().unwrap().to_owned(),
    )
}

fn st(status: &str, health: &str) -> (String, String) {
    (status.to_owned(), health.to_owned())
}

// ---------------------------------------------------------------- verdicts

/// What a check of one instance should show: verdict, HTTP status,
/// attempts, and a piece of the error.
type Expected = (&'static str, Option<u64>, u64, Option<&'static str>);

fn a_mixed_fleet_gets_the_right_verdict_for_each_instance() {
    let amc = Amc::logged_in();
    let fake = &amc.fake;
    let all = [
        "amchealthy1",
        "amcforbid01",
        "amcmissing1",
        "amcnotready",
        "amcflaky500",
        "amcdown0503",
        "amcthrottle",
        "amcslowpoke",
    ];
    amc.import(&all, "ACTIVE");
    for id in all {
        match id {
            // Under another advertiser: AMC answers 403.
            "amcforbid01" => fake.add_instance(OTHER_ENTITY, id, id),
            // Unknown to AMC: 404.
            "amcmissing1" => {}
            _ => fake.add_instance(ENTITY, id, id),
        }
    }
    fake.set_creation_status("amcnotready", "PENDING");
    fake.push_faults(Route::Instance("amcflaky500".into()), [Fault::Status(500)]);
    fake.on_instance("amcdown0503", Fault::Status(503));
    fake.push_faults(
        Route::Instance("amcthrottle".into()),
        [Fault::Throttle {
            retry_after: Some(1),
        }],
    );
    fake.on_instance("amcslowpoke", Fault::Delay(Duration::from_secs(3)));

    let out = amc
        .env
        .run(&[
            "health",
            "check",
            "--all",
            "--retries",
            "1",
            "--timeout",
            "500ms",
            "--rate",
            "1000",
            "-o",
            "json",
        ])
        .code(10);
    let doc = out.json();
    assert_keys(&doc, &["summary", "results"]);
    let summary = &doc["summary"];
    assert_keys(
        summary,
        &["checked", "healthy", "unhealthy", "error", "elapsed_ms"],
    );
    assert_eq!(
        [
            &summary["checked"],
            &summary["healthy"],
            &summary["unhealthy"],
            &summary["error"]
        ],
        [8, 3, 3, 2],
        "{summary}"
    );
    let results = results_by_id(&out);
    assert_eq!(results.len(), 8);
    for r in results.values() {
        assert_keys(r, &RESULT_KEYS);
        assert_timestamp(&r["checked_at"]);
        assert_eq!(r["owner"], "alice");
    }
    let expected: BTreeMap<&str, Expected> = [
        ("amchealthy1", ("HEALTHY", Some(200), 1, None)),
        (
            "amcforbid01",
            (
                "UNHEALTHY",
                Some(403),
                1,
                Some("does not belong to advertiser"),
            ),
        ),
        (
            "amcmissing1",
            ("UNHEALTHY", Some(404), 1, Some("Instance not found")),
        ),
        (
            "amcnotready",
            ("UNHEALTHY", Some(200), 1, Some("creationStatus PENDING")),
        ),
        ("amcflaky500", ("HEALTHY", Some(200), 2, None)),
        ("amcdown0503", ("ERROR", Some(503), 2, Some("HTTP 503"))),
        ("amcthrottle", ("HEALTHY", Some(200), 2, None)),
        (
            "amcslowpoke",
            ("ERROR", None, 2, Some("timed out after 500ms")),
        ),
    ]
    .into_iter()
    .collect();
    for (id, (verdict, http, attempts, error)) in &expected {
        let r = &results[*id];
        assert_eq!(r["status"], *verdict, "{id}: {r}");
        assert_eq!(r["http_status"].as_u64(), *http, "{id}: {r}");
        assert_eq!(r["attempts"].as_u64(), Some(*attempts), "{id}: {r}");
        match error {
            None => assert!(r["error"].is_null(), "{id}: {r}"),
            Some(e) => assert!(r["error"].as_str().unwrap().contains(e), "{id}: {r}"),
        }
        if r["http_status"].is_null() {
            assert!(r["latency_ms"].is_null(), "no answer, no latency: {r}");
        } else if r["http_status"] == 200 {
            assert!(r["latency_ms"].is_u64(), "{r}");
        }
    }
    // Worst first: errors, then unhealthy, then healthy.
    let order: Vec<String> = pluck(&doc["results"], "status");
    let rank = |s: &str| {
        ["ERROR", "UNHEALTHY", "HEALTHY"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    assert!(
        order.windows(2).all(|w| rank(&w[0]) <= rank(&w[1])),
        "{order:?}"
    );
    // The 429 was waited out as Retry-After said.
    let calls = amc.instance_requests("amcthrottle");
    assert_eq!(
        calls.iter().map(|c| c.status).collect::<Vec<_>>(),
        [429, 200]
    );
    assert!(calls[1].at.duration_since(calls[0].at) >= Duration::from_secs(1));

    // The store agrees with what was printed.
    let status = amc.env.json(&["health", "status"]);
    for s in status.as_array().unwrap() {
        let id = s["instance_id"].as_str().unwrap();
        let verdict = expected[id].0;
        assert_eq!(s["health"]["status"], verdict, "{s}");
        let want = if verdict == "HEALTHY" {
            "ACTIVE"
        } else {
            "ERROR"
        };
        assert_eq!(s["status"], want, "{s}");
    }
    assert_eq!(amc.env.probe().count("health_checks"), 8);
}

fn an_all_healthy_fleet_exits_0() {
    let amc = Amc::logged_in();
    let ids = ["amcfine0001", "amcfine0002", "amcfine0003", "amcfine0004"];
    amc.instances(&ids);
    let out = amc.env.run(&["health", "check", "--all"]).ok();
    assert!(
        out.stderr.contains("4 checked") && out.stderr.contains("4 healthy, 0 unhealthy, 0 error"),
        "{}",
        out.stderr
    );
    for id in ids {
        assert!(out.stdout.contains(id), "the table lists {id}");
    }
    let doc = amc
        .env
        .json(&["health", "check", "amcfine0001", "amcfine0003"]);
    assert_eq!(doc["summary"]["checked"], 2);
    assert_eq!(amc.fake.token_grants(), 1);
    // CSV: a header and one row per result.
    let out = amc.env.run(&["health", "check", "--all", "-o", "csv"]).ok();
    let (header, rows) = out.csv();
    assert_eq!(header, RESULT_KEYS);
    assert_eq!(rows.len(), 4);
}

fn a_401_during_a_check_is_exit_7_when_the_fresh_token_is_refused_too() {
    let amc = Amc::logged_in();
    amc.instances(&["amcrefused1"]);
    amc.fake.on_instance("amcrefused1", Fault::Status(401));
    let out = amc
        .env
        .run(&["instance", "test", "amcrefused1"])
        .fails(7, &["HTTP 401"]);
    assert!(out.stderr.contains("auth status"), "{}", out.stderr);
    assert_eq!(
        amc.instance_requests("amcrefused1").len(),
        2,
        "one retry with a fresh token"
    );
    assert_eq!(amc.fake.token_grants(), 2, "exactly one refresh");
    let doc = amc
        .env
        .run(&["health", "check", "amcrefused1", "-o", "json"])
        .code(10)
        .json();
    assert_eq!(doc["results"][0]["status"], "ERROR");
    assert_eq!(doc["results"][0]["http_status"], 401);
}

// ---------------------------------------------------------------- states

fn checks_move_instances_through_the_states_of_section_5() {
    let amc = Amc::logged_in();
    let fake = &amc.fake;
    for id in ["amcpending1", "amcactive01", "amcactive02", "amcinactive"] {
        fake.add_instance(ENTITY, id, id);
    }
    // amcpending2 is unknown to AMC for now.
    for id in ["amcpending1", "amcpending2"] {
        let v = amc.env.json(&[
            "instance",
            "create",
            "--instance-id",
            id,
            "--account",
            ENTITY,
            "--skip-validation",
        ]);
        assert_eq!(v["status"], "PENDING");
    }
    for id in ["amcactive01", "amcactive02", "amcinactive"] {
        let v = amc.env.json(&[
            "instance",
            "create",
            "--instance-id",
            id,
            "--account",
            ENTITY,
        ]);
        assert_eq!(v["status"], "ACTIVE");
    }
    let v = amc.env.json(&["instance", "deactivate", "amcinactive"]);
    assert_eq!(
        (v["status"].as_str(), v["is_active"].as_bool()),
        (Some("INACTIVE"), Some(false))
    );
    fake.on_instance("amcinactive", Fault::Status(404));
    fake.on_instance("amcactive02", Fault::Status(503));
    fake.clear_requests();

    // Run 1: PENDING→ACTIVE on HEALTHY, PENDING→ERROR on UNHEALTHY,
    // ACTIVE→ERROR on ERROR; INACTIVE is not even asked about.
    let doc = amc
        .env
        .run(&["health", "check", "--all", "--retries", "0", "-o", "json"])
        .code(10)
        .json();
    let checked: BTreeSet<String> = pluck(&doc["results"], "instance_id").into_iter().collect();
    assert_eq!(
        checked,
        ["amcactive01", "amcactive02", "amcpending1", "amcpending2"]
            .map(String::from)
            .into()
    );
    assert!(amc.instance_requests("amcinactive").is_empty());
    assert_eq!(states(&amc, "amcpending1"), st("ACTIVE", "HEALTHY"));
    assert_eq!(states(&amc, "amcpending2"), st("ERROR", "UNHEALTHY"));
    assert_eq!(states(&amc, "amcactive01"), st("ACTIVE", "HEALTHY"));
    assert_eq!(states(&amc, "amcactive02"), st("ERROR", "ERROR"));
    assert_eq!(states(&amc, "amcinactive"), st("INACTIVE", "UNKNOWN"));
    let shown = show(&amc, "amcactive02");
    assert!(
        shown["health"]["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 503"),
        "{shown}"
    );
    assert_timestamp(&shown["health"]["checked_at"]);

    // `health status --unhealthy`: what needs attention, INACTIVE's unknown included.
    let unhealthy = amc.env.json(&["health", "status", "--unhealthy"]);
    let names: BTreeSet<String> = pluck(&unhealthy, "instance_id").into_iter().collect();
    assert_eq!(
        names,
        ["amcactive02", "amcinactive", "amcpending2"]
            .map(String::from)
            .into()
    );

    // Run 2: both recover; ERROR→ACTIVE.
    fake.add_instance(ENTITY, "amcpending2", "back");
    fake.on_instance("amcactive02", Fault::Delay(Duration::ZERO));
    amc.env.run(&["health", "check", "--all"]).ok();
    assert_eq!(states(&amc, "amcpending2"), st("ACTIVE", "HEALTHY"));
    assert_eq!(states(&amc, "amcactive02"), st("ACTIVE", "HEALTHY"));
    let unhealthy = amc.env.json(&["health", "status", "--unhealthy"]);
    assert_eq!(pluck(&unhealthy, "instance_id"), ["amcinactive"]);

    // Run 3: ACTIVE→ERROR on UNHEALTHY; --include-inactive checks the
    // INACTIVE one and records its health, but its status stays.
    fake.set_creation_status("amcactive01", "FAILED");
    let doc = amc
        .env
        .run(&[
            "health",
            "check",
            "--all",
            "--include-inactive",
            "-o",
            "json",
        ])
        .code(10)
        .json();
    assert_eq!(doc["summary"]["checked"], 5);
    assert_eq!(states(&amc, "amcactive01"), st("ERROR", "UNHEALTHY"));
    assert_eq!(states(&amc, "amcinactive"), st("INACTIVE", "UNHEALTHY"));
    assert_eq!(show(&amc, "amcinactive")["is_active"], false);
    // Named explicitly, an INACTIVE instance is checked too, and still stays INACTIVE.
    amc.env.run(&["health", "check", "amcinactive"]).code(10);
    assert_eq!(states(&amc, "amcinactive"), st("INACTIVE", "UNHEALTHY"));

    // History: one row per check, newest first.
    let history = amc.env.json(&["health", "history", "amcactive02"]);
    assert_eq!(pluck(&history, "status"), ["HEALTHY", "HEALTHY", "ERROR"]);
    for row in history.as_array().unwrap() {
        assert_keys(
            row,
            &[
                "checked_at",
                "status",
                "http_status",
                "latency_ms",
                "attempts",
                "error",
            ],
        );
    }
    assert_eq!(history[2]["http_status"], 503);
    let times = pluck(&history, "checked_at");
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    assert_eq!(
        amc.env
            .json(&["health", "history", "amcinactive"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(
        amc.env
            .json(&["health", "history", "amcpending1", "--limit", "2"])
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // Report: checks, uptime and error rate per instance, and for the fleet.
    let report = amc.env.json(&["health", "report"]);
    let rows: BTreeMap<String, Value> = report["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["instance_id"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    let figures = |id: &str| {
        let r = &rows[id];
        (
            r["checks"].as_u64().unwrap(),
            r["healthy"].as_u64().unwrap(),
            r["uptime_pct"].as_f64(),
            r["error_rate_pct"].as_f64(),
        )
    };
    assert_eq!(figures("amcpending1"), (3, 3, Some(100.0), Some(0.0)));
    assert_eq!(figures("amcpending2"), (3, 2, Some(66.67), Some(0.0)));
    assert_eq!(figures("amcactive01"), (3, 2, Some(66.67), Some(0.0)));
    assert_eq!(figures("amcactive02"), (3, 2, Some(66.67), Some(33.33)));
    assert_eq!(figures("amcinactive"), (2, 0, Some(0.0), Some(0.0)));
    assert!(
        rows["amcactive01"]["last_error"]
            .as_str()
            .unwrap()
            .contains("creationStatus FAILED")
    );
    assert_eq!(report["fleet"]["instances"], 5);
    assert_eq!(report["fleet"]["checks"], 14);
    assert_eq!(report["fleet"]["uptime_pct"], 64.29, "9 healthy of 14");

    // Prune: make the first run's rows old, then cut them.
    let old = amc.env.probe().exec(
        "UPDATE health_checks SET checked_at = '2026-01-01T00:00:00Z'
         WHERE id IN (SELECT id FROM health_checks ORDER BY id LIMIT 4)",
    );
    assert_eq!(old, 4);
    let recent = amc.env.json(&["health", "report", "--since", "1d"]);
    assert_eq!(recent["fleet"]["checks"], 10);
    assert_eq!(
        amc.env
            .json(&["health", "history", "amcactive02", "--since", "1d"])
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let pruned = amc.env.json(&["health", "prune", "--older-than", "30d"]);
    assert_eq!(pruned["deleted"], 4);
    assert_eq!(amc.env.probe().count("health_checks"), 10);
    assert_eq!(
        amc.env.json(&["health", "prune", "--older-than", "30d"])["deleted"],
        0
    );
    // The last state on the instances is not history: it stays.
    assert_eq!(states(&amc, "amcactive01"), st("ERROR", "UNHEALTHY"));
}

fn activate_checks_now_unless_told_not_to() {
    let amc = Amc::logged_in();
    amc.fake.add_instance(ENTITY, "amcrevive01", "x");
    amc.env.json(&[
        "instance",
        "create",
        "--instance-id",
        "amcrevive01",
        "--account",
        ENTITY,
    ]);
    amc.env.run(&["instance", "deactivate", "amcrevive01"]).ok();

    // AMC says it is broken: activated, but ERROR, exit 6, and recorded.
    amc.fake.set_creation_status("amcrevive01", "FAILED");
    amc.env
        .run(&["instance", "activate", "amcrevive01"])
        .fails(6, &["creationStatus FAILED"]);
    assert_eq!(states(&amc, "amcrevive01"), st("ERROR", "UNHEALTHY"));
    assert_eq!(show(&amc, "amcrevive01")["is_active"], true);
    assert_eq!(
        amc.env
            .json(&["health", "history", "amcrevive01"])
            .as_array()
            .unwrap()
            .len(),
        1
    );

    amc.env.run(&["instance", "deactivate", "amcrevive01"]).ok();
    amc.fake.set_creation_status("amcrevive01", "COMPLETED");
    let v = amc.env.json(&["instance", "activate", "amcrevive01"]);
    assert_eq!(
        (v["status"].as_str(), v["health"]["status"].as_str()),
        (Some("ACTIVE"), Some("HEALTHY"))
    );

    amc.env.run(&["instance", "deactivate", "amcrevive01"]).ok();
    amc.fake.clear_requests();
    let v = amc
        .env
        .json(&["instance", "activate", "amcrevive01", "--skip-validation"]);
    assert_eq!(v["status"], "PENDING");
    assert!(amc.fake.requests().is_empty());
}

// ---------------------------------------------------------------- --nagios

/// A parsed monitoring-plugin line.
#[derive(Debug)]
struct Plugin {
    state: String,
    healthy: u64,
    total: u64,
    detail: Option<String>,
    perf: BTreeMap<String, String>,
}

#[track_caller]
fn plugin(out: &crate::support::Output) -> Plugin {
    assert_eq!(
        out.stdout.lines().count(),
        1,
        "exactly one line: {:?}",
        out.stdout
    );
    let line = out.stdout.trim_end();
    let (text, perf) = line
        .split_once(" | ")
        .unwrap_or_else(|| panic!("no perfdata: {line}"));
    let rest = text
        .strip_prefix("AMC ")
        .unwrap_or_else(|| panic!("{line}"));
    let (state, rest) = rest.split_once(" - ").unwrap_or_else(|| panic!("{line}"));
    let (ratio, detail) = match rest.split_once(" healthy") {
        Some((ratio, detail)) => (ratio, detail.trim()),
        None => panic!("{line}"),
    };
    let (healthy, total) = ratio.split_once('/').unwrap_or_else(|| panic!("{line}"));
    let detail = (!detail.is_empty()).then(|| {
        detail
            .strip_prefix('(')
            .and_then(|d| d.strip_suffix(')'))
            .unwrap_or_else(|| panic!("detail in parentheses: {line}"))
            .to_owned()
    });
    let perf = perf
        .split_whitespace()
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or_else(|| panic!("{p} in {line}"));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    Plugin {
        state: state.to_owned(),
        healthy: healthy.parse().unwrap(),
        total: total.parse().unwrap(),
        detail,
        perf,
    }
}

fn nagios_line_and_exit_code_for_every_state() {
    let amc = Amc::logged_in();
    let ids = [
        "amcnagios01",
        "amcnagios02",
        "amcnagios03",
        "amcnagios04",
        "amcnagios05",
    ];
    amc.instances(&ids);
    let run = |args: &[&str]| {
        let mut full = vec!["health", "check", "--nagios", "--retries", "0"];
        full.extend_from_slice(args);
        amc.env.run(&full)
    };

    // OK. Answers take at least 20 ms, so the latency is never a vacuous 0.
    amc.fake.set_latency(std::time::Duration::from_millis(20));
    let out = run(&["amcnagios01", "amcnagios02", "amcnagios03"]).code(0);
    amc.fake.set_latency(std::time::Duration::ZERO);
    let p = plugin(&out);
    assert_eq!(
        (p.state.as_str(), p.healthy, p.total, p.detail.as_deref()),
        ("OK", 3, 3, None)
    );
    assert_eq!(p.perf["healthy"], "3;;;0;3");
    assert_eq!(p.perf["unhealthy"], "0;;;0;3");
    assert_eq!(p.perf["error"], "0;;;0;3");
    // Of three latencies, the 95th percentile (nearest rank) is the largest.
    let slowest = ["amcnagios01", "amcnagios02", "amcnagios03"]
        .iter()
        .map(|id| {
            amc.env.json(&["instance", "show", id])["health"]["latency_ms"]
                .as_u64()
                .expect("a latency")
        })
        .max()
        .unwrap();
    let p95 = p.perf["latency_p95"].strip_suffix('s').expect("seconds");
    assert_eq!(p95, format!("{:.3}", slowest as f64 / 1000.0));
    assert!(
        out.stderr.is_empty(),
        "a plugin prints one line and nothing else: {}",
        out.stderr
    );

    // WARNING: some unhealthy.
    amc.fake.on_instance("amcnagios04", Fault::Status(404));
    let out = run(&["amcnagios01", "amcnagios02", "amcnagios04"]).code(1);
    let p = plugin(&out);
    assert_eq!((p.state.as_str(), p.healthy, p.total), ("WARNING", 2, 3));
    assert_eq!(p.detail.as_deref(), Some("amcnagios04 UNHEALTHY"));
    assert_eq!(p.perf["unhealthy"], "1;;;0;3");

    // CRITICAL: all unhealthy.
    amc.fake.on_instance("amcnagios05", Fault::Status(403));
    let p = plugin(&run(&["amcnagios04", "amcnagios05"]).code(2));
    assert_eq!((p.state.as_str(), p.healthy, p.total), ("CRITICAL", 0, 2));

    // CRITICAL: any ERROR, even among healthy ones.
    amc.fake.on_instance("amcnagios03", Fault::Status(503));
    let p = plugin(&run(&["--all"]).code(2));
    assert_eq!((p.state.as_str(), p.healthy, p.total), ("CRITICAL", 2, 5));
    assert_eq!(p.perf["error"], "1;;;0;5");
    assert!(
        p.detail.as_deref().unwrap().contains("amcnagios03 ERROR"),
        "{p:?}"
    );

    // UNKNOWN: could not check at all.
    amc.env.run(&["auth", "logout"]).ok();
    let out = run(&["--all"]).code(3);
    assert!(out.stdout.starts_with("AMC UNKNOWN - "), "{}", out.stdout);
    assert!(out.stdout.contains("no AMC credentials"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 1);
    let empty = Amc::logged_in();
    let out = empty
        .env
        .run(&["health", "check", "--all", "--nagios"])
        .code(3);
    assert!(
        out.stdout
            .starts_with("AMC UNKNOWN - no instances to check"),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------- ndjson and interruptions

fn ndjson_results_arrive_as_they_complete() {
    let amc = Amc::logged_in();
    let fast = [
        "amcquick001",
        "amcquick002",
        "amcquick003",
        "amcquick004",
        "amcquick005",
    ];
    amc.instances(&fast);
    amc.instances(&["amcsnail001"]);
    amc.fake
        .on_instance("amcsnail001", Fault::Delay(Duration::from_secs(2)));

    let run = Streaming::start(
        &amc.env,
        &["health", "check", "--all", "--rate", "1000", "-o", "ndjson"],
    );
    let mut lines = Vec::new();
    for _ in 0..fast.len() {
        lines.push(run.next_line().expect("a line for each fast instance"));
    }
    let (code, rest, stderr) = run.finish();
    let exited = std::time::Instant::now();
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(rest.len(), 1, "then the slow one: {rest:?}");

    let mut seen = BTreeSet::new();
    for (_, line) in &lines {
        let r: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_keys(&r, &RESULT_KEYS);
        assert_eq!(r["status"], "HEALTHY");
        seen.insert(r["instance_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, fast.map(String::from).into());
    let last: Value = serde_json::from_str(&rest[0]).unwrap();
    assert_eq!(last["instance_id"], "amcsnail001");
    assert!(last["latency_ms"].as_u64().unwrap() >= 2000, "{last}");
    let early = exited.duration_since(lines.last().unwrap().0);
    assert!(
        early >= Duration::from_secs(1),
        "fast results came only {early:?} before the end"
    );
    assert!(
        stderr.contains("6 checked"),
        "the summary goes to stderr: {stderr}"
    );
}

/// A fleet of `n` healthy instances, each call taking `latency`.
fn big_fleet(n: usize, latency: Duration) -> (Amc, Vec<String>) {
    let amc = Amc::logged_in();
    let ids: Vec<String> = (0..n).map(|i| format!("amcfleet{i:04}")).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    amc.instances(&refs);
    amc.fake.set_latency(latency);
    (amc, ids)
}

/// The store's own consistency after an abrupt end.
#[track_caller]
fn assert_consistent(amc: &Amc) {
    let problems = amc.env.probe().problems();
    assert!(
        problems.is_empty(),
        "integrity and foreign keys hold: {problems:?}"
    );
    let orphans = amc.env.probe().scalar(
        "SELECT count(*) FROM health_checks h LEFT JOIN amc_instances i ON i.id = h.instance_id
         WHERE i.id IS NULL",
    );
    assert_eq!(orphans, 0, "every history row's instance exists");
    let unchecked_with_history = amc.env.probe().scalar(
        "SELECT count(*) FROM amc_instances i WHERE i.last_health_check IS NULL
         AND EXISTS (SELECT 1 FROM health_checks h WHERE h.instance_id = i.id)",
    );
    assert_eq!(unchecked_with_history, 0, "no history without a last state");
    let mismatched = amc.env.probe().scalar(
        "SELECT count(*) FROM amc_instances i WHERE i.last_health_check IS NOT NULL AND NOT EXISTS
         (SELECT 1 FROM health_checks h WHERE h.instance_id = i.id
          AND h.checked_at = i.last_health_check AND h.status = i.health_status)",
    );
    assert_eq!(
        mismatched, 0,
        "each instance's last state is one of its history rows"
    );
}

/// Stored `(instance_id, status, checked_at)` of every history row.
fn stored_results(amc: &Amc) -> BTreeSet<(String, String, String)> {
    amc.env
        .probe()
        .rows(
            "SELECT i.instance_id, h.status, h.checked_at FROM health_checks h
             JOIN amc_instances i ON i.id = h.instance_id",
        )
        .into_iter()
        .map(|r| {
            (
                r[0].trim_matches('"').to_owned(),
                r[1].trim_matches('"').to_owned(),
                r[2].trim_matches('"').to_owned(),
            )
        })
        .collect()
}

fn printed_results(lines: &[String]) -> BTreeSet<(String, String, String)> {
    lines
        .iter()
        .map(|l| {
            let r: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"));
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            (s("instance_id"), s("status"), s("checked_at"))
        })
        .collect()
}

fn a_run_killed_midway_leaves_a_consistent_store() {
    let (amc, ids) = big_fleet(200, Duration::from_millis(50));
    let run = Streaming::start(
        &amc.env,
        &[
            "health",
            "check",
            "--all",
            "--concurrency",
            "4",
            "--rate",
            "1000",
            "-o",
            "ndjson",
        ],
    );
    let mut lines = Vec::new();
    while lines.len() < 100 {
        lines.push(run.next_line().expect("results before the kill").1);
    }
    let mut run = run;
    run.child.kill().expect("SIGKILL");
    let (code, rest, _) = run.finish();
    assert_eq!(code, None, "killed by the signal");
    lines.extend(rest);
    assert!(
        lines.len() < ids.len(),
        "killed before the end ({} results)",
        lines.len()
    );

    assert_consistent(&amc);
    let rows = amc.env.probe().count("health_checks");
    let checked = amc
        .env
        .probe()
        .scalar("SELECT count(*) FROM amc_instances WHERE last_health_check IS NOT NULL");
    assert_eq!(
        rows, checked,
        "one history row for each instance whose last check is set"
    );
    let stored = stored_results(&amc);
    let printed = printed_results(&lines);
    assert!(
        !stored.is_empty(),
        "results are saved as the run goes, not only at the end"
    );
    assert!(
        stored.is_subset(&printed),
        "only finished results are stored"
    );
    assert!(stored.iter().all(|(_, s, _)| s == "HEALTHY"));

    // The store works on: the next run checks everything.
    let doc = amc.env.json(&[
        "health",
        "check",
        "--all",
        "--concurrency",
        "16",
        "--rate",
        "1000",
    ]);
    assert_eq!(doc["summary"]["healthy"], 200);
    assert_consistent(&amc);
    assert_eq!(
        amc.env.probe().count("health_checks"),
        200 + stored.len() as i64
    );
}

fn ctrl_c_keeps_the_completed_results_and_exits_130() {
    let (amc, ids) = big_fleet(200, Duration::from_millis(50));
    let run = Streaming::start(
        &amc.env,
        &[
            "health",
            "check",
            "--all",
            "--concurrency",
            "4",
            "--rate",
            "1000",
            "-o",
            "ndjson",
        ],
    );
    let mut lines = Vec::new();
    while lines.len() < 40 {
        lines.push(run.next_line().expect("results before Ctrl-C").1);
    }
    run.signal("INT");
    let (code, rest, stderr) = run.finish();
    assert_eq!(code, Some(130), "{stderr}");
    lines.extend(rest);
    assert!(
        lines.len() < ids.len(),
        "stopped early ({} results)",
        lines.len()
    );

    // Every result printed (those in flight finished) is stored, and nothing else.
    assert_consistent(&amc);
    assert_eq!(stored_results(&amc), printed_results(&lines));
    let n = lines.len();
    assert!(
        stderr.contains(&format!("Interrupted: {n} checked"))
            && stderr.contains(&format!("({} not checked)", ids.len() - n)),
        "a partial summary: {stderr}"
    );
    assert!(stderr.contains("completed results were saved"), "{stderr}");
}

// ---------------------------------------------------------------- owners

/// A SQLite store's `--all-users` run checks each owner's instances with
/// that owner's login. (In the team store no one reads another user's
/// login: see the next test.)
#[test]
fn all_users_checks_each_owner_with_their_own_credentials() {
    crate::support::pg::run_on(crate::support::pg::Backend::Sqlite, || {
        every_owners_own_credentials()
    });
}

fn every_owners_own_credentials() {
    let amc = Amc::logged_in();
    amc.instances(&["amcalice001"]);
    // bob has his own refresh token of the same client; carol has none.
    amc.fake.add_client(
        crate::support::amc::CLIENT_ID,
        crate::support::amc::CLIENT_SECRET,
        "Atzr|IwEBIbobsownrefresh",
    );
    for user in ["bob", "carol"] {
        amc.env.run(&["user", "add", user]).ok();
        amc.fake
            .add_instance(ENTITY, &format!("amc{user}0001"), user);
        amc.env.json(&[
            "--user",
            user,
            "instance",
            "create",
            "--skip-validation",
            "--account",
            ENTITY,
            "--instance-id",
            &format!("amc{user}0001"),
        ]);
    }
    crate::support::amc::login_with(
        &amc.env,
        &["--user", "bob"],
        crate::support::amc::CLIENT_SECRET,
        "Atzr|IwEBIbobsownrefresh",
    )
    .ok();
    assert_eq!(amc.fake.token_grants(), 2);

    // Only her own with --all.
    let doc = amc.env.json(&["health", "check", "--all"]);
    assert_eq!(pluck(&doc["results"], "instance_id"), ["amcalice001"]);

    let out = amc
        .env
        .run(&["health", "check", "--all", "--all-users", "-o", "json"])
        .code(10);
    let results = results_by_id(&out);
    assert_eq!(results.len(), 3);
    assert_eq!(results["amcalice001"]["status"], "HEALTHY");
    assert_eq!(results["amcbob0001"]["status"], "HEALTHY");
    assert_eq!(results["amcbob0001"]["owner"], "bob");
    let carol = &results["amccarol0001"];
    assert_eq!(carol["status"], "ERROR");
    assert!(
        carol["error"]
            .as_str()
            .unwrap()
            .contains("no AMC credentials"),
        "{carol}"
    );
    assert!(amc.instance_requests("amccarol0001").is_empty());
    // Each owner's calls carry their own token; nobody refreshed.
    let token_of = |id: &str| {
        amc.instance_requests(id)
            .last()
            .unwrap()
            .header("authorization")
            .unwrap()
            .to_owned()
    };
    assert_ne!(token_of("amcalice001"), token_of("amcbob0001"));
    assert_eq!(amc.fake.token_grants(), 2);
}

/// A shared instance is checked with the checker's own login, never its
/// owner's, in both stores.
fn a_shared_instance_is_checked_with_the_checkers_login() {
    use crate::support::amc::{CLIENT_ID, CLIENT_SECRET};
    let amc = Amc::logged_in();
    amc.instances(&["amcalice001"]);
    amc.fake
        .add_client(CLIENT_ID, CLIENT_SECRET, "Atzr|IwEBIbobsownrefresh");
    amc.fake.add_instance(ENTITY, "amcbob0001", "bob");
    let env = &amc.env;
    env.run_as(
        "bob",
        &[
            "instance",
            "create",
            "--skip-validation",
            "--account",
            ENTITY,
            "--instance-id",
            "amcbob0001",
        ],
    )
    .ok();
    env.login("bob", CLIENT_ID, CLIENT_SECRET, "Atzr|IwEBIbobsownrefresh")
        .ok();
    assert_eq!(amc.fake.token_grants(), 2);
    let last_token = |id: &str| {
        amc.instance_requests(id)
            .last()
            .and_then(|r| r.header("authorization").map(str::to_owned))
            .unwrap_or_else(|| panic!("a request for {id}"))
    };
    env.run_as("bob", &["health", "check", "amcbob0001"]).ok();
    let bobs = last_token("amcbob0001");
    env.run(&["health", "check", "amcalice001"]).ok();
    let alices = last_token("amcalice001");
    assert_ne!(alices, bobs);

    // Shared with her as operator, alice checks bob's instance with her own.
    env.run_as(
        "bob",
        &[
            "instance",
            "share",
            "amcbob0001",
            "--with",
            "alice",
            "--role",
            "operator",
        ],
    )
    .ok();
    env.run(&["health", "check", "amcbob0001"]).ok();
    assert_eq!(last_token("amcbob0001"), alices);
    // So does a bulk run over what she may check.
    let doc = env.json(&["health", "check", "--all"]);
    assert_eq!(
        pluck(&doc["results"], "instance_id"),
        ["amcalice001", "amcbob0001"]
    );
    assert_eq!(last_token("amcbob0001"), alices);
    // Nobody's token was refreshed for it.
    assert_eq!(amc.fake.token_grants(), 2);
}

fn a_reader_that_goes_away_does_not_stop_the_checks() {
    use std::io::BufRead;
    let (amc, ids) = big_fleet(20, Duration::from_millis(20));
    let mut child = amc
        .env
        .command(
            "alice",
            &[
                "health",
                "check",
                "--all",
                "--concurrency",
                "2",
                "--rate",
                "1000",
                "-o",
                "ndjson",
            ],
        )
        .spawn()
        .expect("start amcctl");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(serde_json::from_str::<Value>(&first).is_ok(), "{first}");
    drop(stdout); // `| head -1`
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(amc.env.probe().count("health_checks"), ids.len() as i64);
    assert_consistent(&amc);
}

// ---------------------------------------------------------------- outcomes

/// A check that finds an instance not healthy is a result, not a failure of
/// the command, yet it still reports on stderr as it always has: one
/// `error:` line on a terminal-less table run, one `{"error":…}` object in
/// a machine format, and exit 10 either way.
fn a_fleet_not_all_healthy_reports_the_same_way_in_every_format() {
    let amc = Amc::logged_in();
    amc.instances(&["amcoutcome1", "amcoutcome2"]);
    amc.fake.on_instance("amcoutcome2", Fault::Status(404));
    let check = |format: &str| {
        amc.env
            .run(&["health", "check", "--all", "--rate", "1000", "-o", format])
            .code(10)
    };

    for format in ["json", "ndjson", "csv"] {
        let out = check(format);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 2, "-o {format}: {}", out.stderr);
        assert!(
            lines[0].starts_with("2 checked in ")
                && lines[0].ends_with(": 1 healthy, 1 unhealthy, 0 error"),
            "-o {format}: {}",
            out.stderr
        );
        assert_eq!(
            lines[1],
            r#"{"error":{"code":"unhealthy","message":"1 of 2 instance(s) not healthy","hint":null}}"#,
            "-o {format}"
        );
    }
    let out = check("table");
    let last = out.stderr.lines().last().unwrap_or_default();
    assert_eq!(
        last, "error: 1 of 2 instance(s) not healthy",
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("2 checked in ")
            && out.stderr.contains(": 1 healthy, 1 unhealthy, 0 error"),
        "{}",
        out.stderr
    );
    let out = amc
        .env
        .run(&["health", "check", "--all", "--rate", "1000", "-q"])
        .code(10);
    assert_eq!(out.stderr, "error: 1 of 2 instance(s) not healthy\n");

    // The plugin line says everything: nothing on stderr, in any state.
    let out = amc
        .env
        .run(&["health", "check", "--all", "--rate", "1000", "--nagios"])
        .code(1);
    assert!(
        out.stdout
            .starts_with("AMC WARNING - 1/2 healthy (amcoutcome2 UNHEALTHY) | "),
        "{}",
        out.stdout
    );
    assert_eq!(out.stderr, "");
    let out = amc
        .env
        .run(&[
            "health",
            "check",
            "nosuchinstance",
            "--nagios",
            "-o",
            "json",
        ])
        .code(3);
    assert!(out.stdout.starts_with("AMC UNKNOWN - "), "{}", out.stdout);
    assert_eq!(out.stderr, "");
}

crate::on_both_backends!(
    a_mixed_fleet_gets_the_right_verdict_for_each_instance,
    an_all_healthy_fleet_exits_0,
    a_401_during_a_check_is_exit_7_when_the_fresh_token_is_refused_too,
    checks_move_instances_through_the_states_of_section_5,
    activate_checks_now_unless_told_not_to,
    nagios_line_and_exit_code_for_every_state,
    ndjson_results_arrive_as_they_complete,
    a_run_killed_midway_leaves_a_consistent_store,
    ctrl_c_keeps_the_completed_results_and_exits_130,
    a_shared_instance_is_checked_with_the_checkers_login,
    a_reader_that_goes_away_does_not_stop_the_checks,
    a_fleet_not_all_healthy_reports_the_same_way_in_every_format,
);
