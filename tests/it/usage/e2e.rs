//! Usage end to end: `usage sync` against the fake AMC, then `usage report`,
//! `usage executions` and `schedule list` from the store; linked advertisers
//! (`instance advertisers`, `health check --deep`); discovery details.
//!
//! Expected figures are computed here from the fixture itself, never from
//! amcctl's output.

use std::collections::{BTreeMap, BTreeSet};

use crate::support::amc::{ACCOUNT_NAME, Amc, CLIENT_SECRET, ENTITY, REFRESH_TOKEN, US};
use crate::support::{TestEnv, assert_keys};
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use fake_amc::{Fault, Usage, UsageList, advertiser, execution, schedule, workflow};
use serde_json::{Value, json};

const REPORT_KEYS: [&str; 12] = [
    "id",
    "instance_id",
    "name",
    "workflows",
    "schedules_enabled",
    "executions",
    "success_rate",
    "duration_s",
    "in_flight",
    "ad_hoc_24h",
    "last_failure",
    "synced_at",
];
const STATUSES: [&str; 6] = [
    "SUCCEEDED",
    "FAILED",
    "RUNNING",
    "PENDING",
    "CANCELLED",
    "REJECTED",
];

/// An execution of the fixture, as the test knows it.
#[derive(Clone, Debug)]
struct Ex {
    id: String,
    workflow: String,
    status: &'static str,
    created: DateTime<Utc>,
    updated: DateTime<Utc>,
    category: &'static str,
}

impl Ex {
    fn json(&self) -> Value {
        let mut v = execution(
            &self.id,
            &self.workflow,
            self.status,
            &ts(self.created),
            &ts(self.updated),
            self.category,
        );
        if self.status == "FAILED" {
            v["statusReason"] = json!(format!("query {} failed", self.id));
        }
        v
    }
    fn finished(&self) -> bool {
        matches!(self.status, "SUCCEEDED" | "FAILED" | "CANCELLED")
    }
}

/// One instance's history in the fixture.
#[derive(Clone, Debug, Default)]
struct History {
    workflows: Vec<String>,
    /// (schedule ID, workflow, enabled).
    schedules: Vec<(String, String, bool)>,
    executions: Vec<Ex>,
}

impl History {
    fn usage(&self) -> Usage {
        Usage {
            workflows: self.workflows.iter().map(|w| workflow(w)).collect(),
            executions: self.executions.iter().map(Ex::json).collect(),
            schedules: self
                .schedules
                .iter()
                .map(|(id, wf, on)| schedule(id, wf, "DAILY", 4, *on))
                .collect(),
            advertisers: vec![advertiser(ENTITY, ACCOUNT_NAME, US)],
        }
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn now_s() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp(t.timestamp(), 0).unwrap()
}

/// A small deterministic generator, so a failing run can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % below.max(1)
    }
}

/// A varied history: how many executions, which statuses, how long they
/// ran, when they were created (never within an hour of the 24-hour line,
/// so the ad hoc count cannot depend on when the report runs).
fn history(i: usize, now: DateTime<Utc>, rng: &mut Lcg) -> History {
    let mut h = History::default();
    let prefix = format!("i{i:03}");
    for w in 0..rng.next(6) {
        h.workflows.push(format!("{prefix}-wf{w}"));
    }
    for s in 0..rng.next(4) {
        h.schedules.push((
            format!("{prefix}-s{s}"),
            format!("{prefix}-wf{s}"),
            rng.next(3) > 0,
        ));
    }
    let n = match i % 11 {
        0 => 0,
        1 => 4,
        _ => 5 + rng.next(40) as usize,
    };
    for k in 0..n {
        let status = if i % 11 == 1 {
            if k == 0 { "PENDING" } else { "RUNNING" }
        } else {
            match rng.next(20) {
                0..=11 => "SUCCEEDED",
                12..=14 => "FAILED",
                15 => "RUNNING",
                16 => "PENDING",
                17..=18 => "CANCELLED",
                _ => "REJECTED",
            }
        };
        let mut minutes_ago = rng.next(29 * 24 * 60) as i64;
        if (23 * 60..=25 * 60).contains(&minutes_ago) {
            minutes_ago += 3 * 60;
        }
        let created =
            now - TimeDelta::minutes(minutes_ago) - TimeDelta::seconds(rng.next(60) as i64);
        let ran = TimeDelta::seconds(30 + rng.next(3000) as i64);
        h.executions.push(Ex {
            id: format!("{prefix}-e{k:03}"),
            workflow: format!("{prefix}-wf{}", rng.next(3)),
            status,
            created,
            updated: (created + ran).min(now),
            category: if rng.next(5) < 3 {
                "AD_HOC"
            } else {
                "SCHEDULED"
            },
        });
    }
    h
}

fn ids(n: usize, tag: &str) -> Vec<String> {
    (0..n).map(|i| format!("amc{tag}{i:04}")).collect()
}

/// A logged-in home and a fake with these instances and histories.
fn fleet(instances: &[String], histories: &[History]) -> Amc {
    let amc = Amc::logged_in();
    let refs: Vec<&str> = instances.iter().map(String::as_str).collect();
    amc.instances(&refs);
    for (id, h) in instances.iter().zip(histories) {
        amc.fake.set_usage(id, h.usage());
    }
    amc
}

fn sync(env: &TestEnv, extra: &[&str]) -> crate::support::Output {
    let mut args = vec![
        "usage",
        "sync",
        "--rate",
        "1000",
        "--concurrency",
        "16",
        "-o",
        "json",
    ];
    if extra.is_empty() {
        args.push("--all");
    }
    args.extend_from_slice(extra);
    env.run(&args)
}

/// Nearest-rank percentile, written out again here so the test does not
/// take amcctl's word for it.
fn nearest_rank(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Equal JSON, floats compared to their last few bits: the JSON parser of
/// the test may round a printed float one unit in the last place off.
#[track_caller]
fn assert_same(got: &Value, want: &Value, context: &str) {
    match (got, want) {
        (Value::Number(g), Value::Number(w)) if g.is_f64() || w.is_f64() => {
            let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{g} != {w}: {context}"
            );
        }
        (Value::Object(g), Value::Object(w)) => {
            assert_eq!(
                g.keys().collect::<BTreeSet<_>>(),
                w.keys().collect::<BTreeSet<_>>(),
                "{context}"
            );
            for (k, wv) in w {
                assert_same(&g[k], wv, context);
            }
        }
        _ => assert_eq!(got, want, "{context}"),
    }
}

/// The figures `usage report -o json` must show for one history.
fn expected(h: &[&Ex], workflows: usize, schedules_on: usize, now: DateTime<Utc>) -> Value {
    let mut counts = BTreeMap::new();
    for s in STATUSES {
        counts.insert(s, 0u64);
    }
    for e in h {
        *counts.get_mut(e.status).unwrap() += 1;
    }
    let (s, f) = (counts["SUCCEEDED"], counts["FAILED"]);
    let rate = (s + f > 0).then(|| s as f64 / (s + f) as f64);
    let mut d: Vec<u64> = h
        .iter()
        .filter(|e| e.finished())
        .map(|e| (e.updated - e.created).num_seconds() as u64)
        .collect();
    d.sort_unstable();
    let avg = (!d.is_empty()).then(|| d.iter().sum::<u64>() as f64 / d.len() as f64);
    let in_flight = h
        .iter()
        .filter(|e| matches!(e.status, "RUNNING" | "PENDING"))
        .count();
    let day_ago = now - TimeDelta::hours(24);
    let ad_hoc = h
        .iter()
        .filter(|e| e.category == "AD_HOC" && e.created >= day_ago)
        .count();
    let last_failure = h
        .iter()
        .filter(|e| e.status == "FAILED")
        .max_by(|a, b| a.updated.cmp(&b.updated).then_with(|| a.id.cmp(&b.id)))
        .map(|e| {
            json!({"execution_id": e.id, "workflow_id": e.workflow, "failed_at": ts(e.updated),
                   "error": format!("query {} failed", e.id)})
        });
    json!({
        "workflows": workflows,
        "schedules_enabled": schedules_on,
        "executions": counts,
        "success_rate": rate,
        "duration_s": {"avg": avg, "p50": nearest_rank(&d, 50.0), "p95": nearest_rank(&d, 95.0)},
        "in_flight": in_flight,
        "ad_hoc_24h": ad_hoc,
        "last_failure": last_failure,
    })
}

fn every_report_figure_is_exact_on_a_varied_fleet_of_55() {
    let now = now_s();
    let mut rng = Lcg(12);
    let instances = ids(55, "rep");
    let histories: Vec<History> = (0..55).map(|i| history(i, now, &mut rng)).collect();
    // The fixture covers what it claims to.
    assert!(histories.iter().any(|h| h.executions.is_empty()));
    assert!(histories.iter().any(|h| {
        !h.executions.is_empty()
            && h.executions
                .iter()
                .all(|e| matches!(e.status, "RUNNING" | "PENDING"))
    }));
    let amc = fleet(&instances, &histories);

    let out = sync(&amc.env, &[]).ok();
    let v = out.json();
    let total: usize = histories.iter().map(|h| h.executions.len()).sum();
    assert_eq!(v["summary"]["synced"], 55, "{v}");
    assert_eq!(v["summary"]["failed"], 0);
    assert_eq!(v["summary"]["executions"], total);

    let report = amc.env.json(&["usage", "report"]);
    assert_keys(&report, &["instances", "fleet"]);
    let rows = report["instances"].as_array().unwrap();
    assert_eq!(rows.len(), 55);
    let by_id: BTreeMap<&str, &Value> = rows
        .iter()
        .map(|r| (r["instance_id"].as_str().unwrap(), r))
        .collect();
    for (id, h) in instances.iter().zip(&histories) {
        let row = by_id[id.as_str()];
        assert_keys(row, &REPORT_KEYS);
        let execs: Vec<&Ex> = h.executions.iter().collect();
        let on = h.schedules.iter().filter(|s| s.2).count();
        let want = expected(&execs, h.workflows.len(), on, now);
        for (k, w) in want.as_object().unwrap() {
            assert_same(&row[k], w, &format!("{k} of {id}: {row}"));
        }
        assert!(row["synced_at"].is_string());
    }

    let all: Vec<&Ex> = histories.iter().flat_map(|h| &h.executions).collect();
    let workflows: usize = histories.iter().map(|h| h.workflows.len()).sum();
    let on: usize = histories
        .iter()
        .map(|h| h.schedules.iter().filter(|s| s.2).count())
        .sum();
    let want = expected(&all, workflows, on, now);
    let fleet = &report["fleet"];
    for k in [
        "workflows",
        "schedules_enabled",
        "executions",
        "success_rate",
        "duration_s",
        "in_flight",
        "ad_hoc_24h",
    ] {
        assert_same(&fleet[k], &want[k], &format!("fleet {k}: {fleet}"));
    }
    assert_eq!(fleet["instances"], 55);
    let failing = histories
        .iter()
        .filter(|h| h.executions.iter().any(|e| e.status == "FAILED"))
        .count();
    assert_eq!(fleet["instances_with_failures"], failing);

    // The store holds exactly the fixture's rows, and the report used no network.
    assert_eq!(amc.env.probe().count("workflow_executions") as usize, total);
    amc.fake.clear_requests();
    amc.env.run(&["usage", "report", "-o", "csv"]).ok();
    amc.env.run(&["usage", "report"]).ok();
    assert!(amc.fake.requests().is_empty());
}

/// Rows of the usage tables keyed by AMC's IDs, without the sync times, so
/// two stores can be compared.
fn usage_rows(env: &TestEnv) -> Vec<Vec<String>> {
    let mut rows = env.probe().rows(
        "SELECT 'e', i.instance_id, e.execution_id, e.workflow_id, e.status,
                e.execution_category, e.created_at, e.updated_at, e.duration_s, e.error
         FROM workflow_executions e JOIN amc_instances i ON i.id = e.instance_id",
    );
    rows.extend(env.probe().rows(
        "SELECT 'w', i.instance_id, w.workflow_id, w.sql_query
         FROM workflows w JOIN amc_instances i ON i.id = w.instance_id",
    ));
    rows.extend(env.probe().rows(
        "SELECT 's', i.instance_id, s.schedule_id, s.workflow_id, s.enabled
         FROM workflow_schedules s JOIN amc_instances i ON i.id = s.instance_id",
    ));
    rows.sort();
    rows
}

fn min_creation_times(amc: &Amc) -> BTreeMap<String, Vec<String>> {
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in amc.fake.requests() {
        if let Some(rest) = r.path.strip_prefix("/amc/reporting/")
            && let Some(id) = rest.strip_suffix("/workflowExecutions")
        {
            let q = r.query.clone().unwrap_or_default();
            let min = q
                .split('&')
                .find_map(|p| p.strip_prefix("minCreationTime="))
                .map(|m| m.replace("%3A", ":"))
                .unwrap_or_default();
            seen.entry(id.to_owned()).or_default().push(min);
        }
    }
    seen
}

fn a_second_sync_fetches_only_the_new_window_and_equals_a_fresh_full_sync() {
    let now = now_s();
    let instances = ids(4, "inc");
    let ex = |id: &str, status: &'static str, ago: TimeDelta, ran: i64, category| Ex {
        id: id.to_owned(),
        workflow: "wf-a".into(),
        status,
        created: now - ago,
        updated: now - ago + TimeDelta::seconds(ran),
        category,
    };
    let mut histories: Vec<History> = Vec::new();
    for (n, _) in instances.iter().enumerate() {
        let mut h = History {
            workflows: vec!["wf-a".into(), "wf-b".into()],
            schedules: vec![("s1".into(), "wf-a".into(), true)],
            executions: Vec::new(),
        };
        for k in 0..5 {
            h.executions.push(ex(
                &format!("old{k}"),
                "SUCCEEDED",
                TimeDelta::days(10 + k),
                600,
                "SCHEDULED",
            ));
        }
        h.executions
            .push(ex("day1", "FAILED", TimeDelta::days(1), 300, "AD_HOC"));
        if n != 3 {
            // In flight at the first sync, finished by the second.
            h.executions
                .push(ex("run1", "RUNNING", TimeDelta::days(2), 60, "AD_HOC"));
            h.executions
                .push(ex("pend1", "PENDING", TimeDelta::hours(3), 10, "AD_HOC"));
        }
        histories.push(h);
    }
    let amc = fleet(&instances, &histories);
    sync(&amc.env, &[]).ok();
    let first_sync: String = amc
        .env
        .probe()
        .rows("SELECT min(synced_at) FROM usage_syncs")
        .remove(0)
        .remove(0);
    let first_sync = DateTime::parse_from_rfc3339(first_sync.trim_matches('"'))
        .unwrap()
        .with_timezone(&Utc);

    // AMC moves on: in-flight runs finish, new ones appear, a workflow goes.
    let later = now_s();
    for (n, id) in instances.iter().enumerate() {
        let h = &mut histories[n];
        for e in &mut h.executions {
            match e.id.as_str() {
                "run1" => {
                    e.status = "SUCCEEDED";
                    e.updated = later;
                }
                "pend1" => {
                    e.status = "FAILED";
                    e.updated = later;
                }
                _ => {}
            }
        }
        h.executions.push(ex(
            "new1",
            "SUCCEEDED",
            TimeDelta::minutes(20),
            90,
            "AD_HOC",
        ));
        h.executions
            .push(ex("new2", "RUNNING", TimeDelta::minutes(5), 30, "AD_HOC"));
        h.workflows.pop();
        amc.fake.set_usage(id, h.usage());
    }
    amc.fake.clear_requests();
    let v = sync(&amc.env, &[]).ok().json();

    // Only the window since the last sync (less the overlap) or since the
    // oldest run then in flight was asked for.
    let asked = min_creation_times(&amc);
    let amc_time = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut fetched = 0;
    for (n, id) in instances.iter().enumerate() {
        let start = if n == 3 {
            first_sync - TimeDelta::hours(1)
        } else {
            now - TimeDelta::days(2)
        };
        assert_eq!(asked[id], vec![amc_time(start)], "{id}");
        fetched += histories[n]
            .executions
            .iter()
            .filter(|e| e.created >= start)
            .count();
    }
    assert_eq!(v["summary"]["executions"], fetched, "{v}");
    let total: usize = histories.iter().map(|h| h.executions.len()).sum();
    assert!(fetched < total, "the second sync fetched everything again");

    // A fresh store synced in full holds the same rows.
    let fresh = TestEnv::new().with_fake_amc(&amc.fake);
    fresh.create_account(ENTITY, ACCOUNT_NAME);
    fresh.run(&["instance", "list"]).ok();
    crate::support::amc::login_with(&fresh, &[], CLIENT_SECRET, REFRESH_TOKEN).ok();
    let rows: Vec<Value> = instances
        .iter()
        .map(|id| {
            json!({"instance_id": id, "name": id, "region": "na", "status": "PENDING",
                   "is_active": true, "account": {"account_id": ENTITY}})
        })
        .collect();
    let file = fresh.write_file("fresh.json", serde_json::to_vec(&rows).unwrap());
    fresh
        .run(&[
            "instance",
            "import",
            file.to_str().unwrap(),
            "--format",
            "json",
        ])
        .ok();
    sync(&fresh, &[]).ok();
    let (a, b) = (usage_rows(&amc.env), usage_rows(&fresh));
    assert_eq!(
        a.len(),
        total + 4 + 4,
        "executions + one workflow + one schedule each"
    );
    assert_eq!(a, b);
}

fn eleven_pages_are_all_stored_and_a_repeated_token_stops_the_instance() {
    let now = now_s();
    let big = Ex {
        id: String::new(),
        workflow: "wf".into(),
        status: "SUCCEEDED",
        created: now,
        updated: now,
        category: "AD_HOC",
    };
    let many = |n: usize| -> Vec<Ex> {
        (0..n)
            .map(|k| Ex {
                id: format!("e{k:05}"),
                created: now - TimeDelta::minutes(k as i64 + 10),
                updated: now - TimeDelta::minutes(k as i64),
                ..big.clone()
            })
            .collect()
    };
    let instances = vec!["amcpages001".to_owned(), "amcloops001".to_owned()];
    let histories = vec![
        History {
            workflows: vec!["wf".into()],
            executions: many(1050),
            ..Default::default()
        },
        History {
            workflows: vec!["wf".into()],
            schedules: vec![("s".into(), "wf".into(), true)],
            executions: many(500),
        },
    ];
    let amc = fleet(&instances, &histories);
    amc.fake
        .repeat_token("amcloops001", UsageList::Executions, 2);
    let out = sync(&amc.env, &[]).fails(6, &["could not be synced"]);
    let v = out.json();
    let results: BTreeMap<&str, &Value> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["instance_id"].as_str().unwrap(), r))
        .collect();
    assert_eq!(results["amcpages001"]["status"], "OK");
    assert_eq!(results["amcpages001"]["executions"], 1050);
    assert_eq!(results["amcloops001"]["status"], "ERROR");
    let err = results["amcloops001"]["error"].as_str().unwrap();
    assert!(err.contains("repeated a nextToken"), "{err}");

    let pages: Vec<_> = amc
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/amc/reporting/amcpages001/workflowExecutions")
        .collect();
    assert_eq!(pages.len(), 11);
    assert!(pages.iter().all(|r| r.status == 200));
    let looped = amc
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/amc/reporting/amcloops001/workflowExecutions")
        .count();
    assert_eq!(looped, 3, "pages 0, 1 and the one repeating its token");

    let count = |sql: &str, id: &str| {
        amc.env.probe().scalar(&format!(
            "SELECT count(*) FROM {sql} x JOIN amc_instances i ON i.id = x.instance_id
             WHERE i.instance_id = '{id}'"
        ))
    };
    assert_eq!(count("workflow_executions", "amcpages001"), 1050);
    for table in [
        "workflow_executions",
        "workflows",
        "workflow_schedules",
        "usage_syncs",
    ] {
        assert_eq!(
            count(table, "amcloops001"),
            0,
            "{table}: nothing half-written"
        );
    }
}

fn bad_answers_fail_their_instance_clearly_and_write_nothing_of_it() {
    let now = now_s();
    // The newest execution is half an hour old, well inside the overlap a
    // second sync fetches again, whatever second the first sync started in.
    let ok_ex = |k: usize| Ex {
        id: format!("e{k:04}"),
        workflow: "wf".into(),
        status: "SUCCEEDED",
        created: now - TimeDelta::hours(k as i64) - TimeDelta::minutes(30),
        updated: now - TimeDelta::hours(k as i64),
        category: "AD_HOC",
    };
    let good = History {
        workflows: vec!["wf".into()],
        schedules: vec![("s".into(), "wf".into(), true)],
        executions: (0..150).map(ok_ex).collect(),
    };
    let cases: [(&str, &str); 6] = [
        ("amcbadgood1", ""),
        ("amcbadmalfm", "malformed JSON"),
        ("amcbadtrunc", "malformed JSON"),
        ("amcbadstats", "unknown execution status \"EXPLODED\""),
        ("amcbadnotim", "has no createTime"),
        ("amcbadhtml1", "expected JSON"),
    ];
    let instances: Vec<String> = cases.iter().map(|(id, _)| (*id).to_owned()).collect();
    let histories = vec![good.clone(); cases.len()];
    let amc = fleet(&instances, &histories);
    // Page 2 of 2 is not JSON; the first page was fine.
    amc.fake.fail_page(
        "amcbadmalfm",
        UsageList::Executions,
        1,
        Fault::MalformedJson,
    );
    amc.fake.fail_page(
        "amcbadtrunc",
        UsageList::Executions,
        0,
        Fault::TruncatedJson,
    );
    amc.fake.update_usage("amcbadstats", |u| {
        u.executions[120]["status"] = json!("EXPLODED");
    });
    amc.fake.update_usage("amcbadnotim", |u| {
        u.executions[3]
            .as_object_mut()
            .unwrap()
            .remove("createTime");
    });
    amc.fake.fail_page(
        "amcbadhtml1",
        UsageList::Schedules,
        0,
        Fault::WrongContentType,
    );

    let before = amc.env.dump();
    let out = sync(&amc.env, &[]).fails(6, &["5 of 6 instance(s) could not be synced"]);
    let v = out.json();
    for r in v["results"].as_array().unwrap() {
        let id = r["instance_id"].as_str().unwrap();
        let want = cases.iter().find(|c| c.0 == id).unwrap().1;
        if want.is_empty() {
            assert_eq!(r["status"], "OK", "{r}");
        } else {
            assert_eq!(r["status"], "ERROR", "{r}");
            let err = r["error"].as_str().unwrap();
            assert!(err.contains(want), "{id}: {err}");
        }
    }
    let stored = |id: &str| {
        amc.env.probe().scalar(&format!(
            "SELECT (SELECT count(*) FROM workflow_executions x JOIN amc_instances i ON i.id = x.instance_id WHERE i.instance_id = '{id}')
                  + (SELECT count(*) FROM workflows x JOIN amc_instances i ON i.id = x.instance_id WHERE i.instance_id = '{id}')
                  + (SELECT count(*) FROM workflow_schedules x JOIN amc_instances i ON i.id = x.instance_id WHERE i.instance_id = '{id}')
                  + (SELECT count(*) FROM usage_syncs x JOIN amc_instances i ON i.id = x.instance_id WHERE i.instance_id = '{id}')"
        ))
    };
    assert_eq!(stored("amcbadgood1"), 150 + 1 + 1 + 1);
    for (id, _) in &cases[1..] {
        assert_eq!(stored(id), 0, "{id}");
    }
    assert_ne!(before, amc.env.dump());

    // An instance synced once, then answering badly, keeps its earlier rows.
    let kept = usage_rows(&amc.env);
    let mark = amc.env.probe().rows("SELECT * FROM usage_syncs");
    amc.fake.update_usage("amcbadgood1", |u| {
        u.executions[0]["status"] = json!("WHATEVER");
        u.workflows.clear();
    });
    sync(&amc.env, &["amcbadgood1"]).fails(6, &["1 of 1"]);
    assert_eq!(usage_rows(&amc.env), kept);
    assert_eq!(amc.env.probe().rows("SELECT * FROM usage_syncs"), mark);
}

fn deep_check_finds_exactly_the_instances_with_no_linked_advertisers() {
    let instances = ids(9, "dep");
    let histories = vec![History::default(); 9];
    let amc = fleet(&instances, &histories);
    let lonely: BTreeSet<&str> = [1, 4, 7].iter().map(|&i| instances[i].as_str()).collect();
    for id in &lonely {
        amc.fake.update_usage(id, |u| u.advertisers.clear());
    }
    let out = amc
        .env
        .run(&["health", "check", "--all", "--deep", "-o", "json"])
        .code(10);
    let v = out.json();
    let mut unhealthy = BTreeSet::new();
    for r in v["results"].as_array().unwrap() {
        let id = r["instance_id"].as_str().unwrap().to_owned();
        if r["status"] == "UNHEALTHY" {
            assert_eq!(r["error"], "no advertisers linked", "{r}");
            unhealthy.insert(id);
        } else {
            assert_eq!(r["status"], "HEALTHY", "{r}");
        }
    }
    let unhealthy: BTreeSet<&str> = unhealthy.iter().map(String::as_str).collect();
    assert_eq!(unhealthy, lonely);
    assert_eq!(v["summary"]["unhealthy"], 3);
    // Without --deep nobody asks about advertisers.
    amc.fake.clear_requests();
    amc.env.run(&["health", "check", "--all"]).ok();
    assert!(
        amc.fake
            .requests()
            .iter()
            .all(|r| !r.path.ends_with("/advertisers"))
    );
}

fn instance_advertisers_lists_every_page_live() {
    let amc = Amc::logged_in();
    amc.instances(&["amcads00001"]);
    let list: Vec<Value> = (0..150)
        .map(|n| advertiser(&format!("ENTITY{n:08}"), &format!("Brand {n}"), US))
        .collect();
    amc.fake
        .update_usage("amcads00001", |u| u.advertisers = list);
    let v = amc.env.json(&["instance", "advertisers", "amcads00001"]);
    let arr = v.as_array().unwrap();
    assert_eq!(arr.len(), 150);
    assert_keys(&arr[0], &["id", "name", "type", "marketplace_id"]);
    assert_eq!(arr[149]["id"], "ENTITY00000149");
    let calls = amc
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.path == "/amc/instances/amcads00001/advertisers")
        .count();
    assert_eq!(calls, 2);
    let table = amc
        .env
        .run(&["instance", "advertisers", "amcads00001"])
        .ok();
    assert!(table.stdout.contains("Brand 7"), "{}", table.stdout);
    amc.env
        .run(&["instance", "advertisers", "amcnosuch01"])
        .code(3);
}

fn discovery_keeps_type_canonical_name_and_upload_account() {
    let amc = Amc::logged_in();
    amc.fake.add_instance(ENTITY, "amcsandbox1", "Acme sandbox");
    amc.fake.add_instance(ENTITY, "amcstandard", "Acme main");
    amc.fake.set_instance_details(
        "amcsandbox1",
        json!({"instanceType": "SANDBOX", "customerCanonicalName": "Acme Corp",
               "dataUploadAccountId": "123456789012"}),
    );
    amc.env.run(&["instance", "discover"]).ok();
    let sandboxes = amc.env.json(&["instance", "list", "--type", "sandbox"]);
    let found: Vec<&str> = sandboxes
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["instance_id"].as_str().unwrap())
        .collect();
    assert_eq!(found, ["amcsandbox1"]);
    let show = amc.env.json(&["instance", "show", "amcsandbox1"]);
    crate::support::assert_instance_shape(&show);
    assert_eq!(show["instance_type"], "SANDBOX");
    assert_eq!(show["customer_canonical_name"], "Acme Corp");
    assert_eq!(show["data_upload_account_id"], "123456789012");
    let other = amc.env.json(&["instance", "show", "amcstandard"]);
    assert_eq!(other["instance_type"], "STANDARD");
    assert_eq!(other["customer_canonical_name"], Value::Null);
    let table = amc.env.run(&["instance", "show", "amcsandbox1"]).ok();
    assert!(table.stdout.contains("SANDBOX") && table.stdout.contains("Acme Corp"));
    let list = amc.env.run(&["instance", "list"]).ok();
    assert!(list.stdout.contains("[sandbox]"), "{}", list.stdout);
    // A later listing without the details keeps them.
    amc.fake.set_instance_details("amcsandbox1", json!({}));
    amc.env.run(&["instance", "discover"]).ok();
    let show = amc.env.json(&["instance", "show", "amcsandbox1"]);
    assert_eq!(show["customer_canonical_name"], "Acme Corp");
}

fn executions_and_schedules_read_the_store_in_every_format() {
    let now = now_s();
    let ex = |id: &str, wf: &str, status: &'static str, hours: i64, category| Ex {
        id: id.into(),
        workflow: wf.into(),
        status,
        created: now - TimeDelta::hours(hours),
        updated: now - TimeDelta::hours(hours) + TimeDelta::seconds(120),
        category,
    };
    let h = History {
        workflows: vec!["wf-a".into(), "wf-b".into()],
        schedules: vec![
            ("s-a".into(), "wf-a".into(), true),
            ("s-b".into(), "wf-b".into(), true),
            ("s-c".into(), "wf-c".into(), false),
        ],
        executions: vec![
            ex("a1", "wf-a", "SUCCEEDED", 50, "SCHEDULED"),
            ex("a2", "wf-a", "FAILED", 26, "SCHEDULED"),
            ex("a3", "wf-a", "SUCCEEDED", 2, "AD_HOC"),
            ex("b1", "wf-b", "FAILED", 49, "SCHEDULED"),
            ex("b2", "wf-b", "SUCCEEDED", 25, "SCHEDULED"),
            ex("old", "wf-b", "FAILED", 24 * 20, "AD_HOC"),
        ],
    };
    let amc = fleet(&["amcformat01".to_owned()], &[h]);
    sync(&amc.env, &[]).ok();
    amc.fake.clear_requests();

    let failing = amc.env.json(&["schedule", "list", "--failing"]);
    let ids: Vec<&str> = failing
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["schedule_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["s-a"],
        "the latest scheduled run of wf-a failed: {failing}"
    );
    assert_eq!(failing[0]["last_status"], "FAILED");
    let all = amc.env.json(&["schedule", "list", "amcformat01"]);
    assert_eq!(all.as_array().unwrap().len(), 3);

    let failed = amc
        .env
        .json(&["usage", "executions", "amcformat01", "--status", "failed"]);
    let ids: Vec<&str> = failed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["execution_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a2", "b1", "old"], "newest first");
    assert_eq!(failed[0]["duration_s"], 120);
    let recent = amc
        .env
        .json(&["usage", "executions", "amcformat01", "--since", "7d"]);
    assert_eq!(recent.as_array().unwrap().len(), 5);

    let week = amc.env.json(&["usage", "report", "--since", "7d"]);
    assert_eq!(week["instances"][0]["executions"]["FAILED"], 2);
    assert_eq!(week["instances"][0]["schedules_enabled"], 2);
    assert_eq!(week["instances"][0]["success_rate"], 0.6);
    assert_eq!(week["instances"][0]["last_failure"]["execution_id"], "a2");

    for fmt in ["table", "json", "ndjson", "csv"] {
        for args in [
            vec!["usage", "report"],
            vec!["usage", "executions", "amcformat01"],
            vec!["schedule", "list"],
        ] {
            let mut a = args.clone();
            a.extend(["-o", fmt]);
            let out = amc.env.run(&a).ok();
            match fmt {
                "json" => drop(out.json()),
                "ndjson" => assert!(!out.ndjson().is_empty()),
                "csv" => assert!(!out.csv().1.is_empty()),
                _ => assert!(!out.stdout.is_empty()),
            }
        }
    }
    // The CSV columns, and the cells of one record, exactly.
    let (header, rows) = amc
        .env
        .run(&["schedule", "list", "--failing", "-o", "csv"])
        .ok()
        .csv();
    assert_eq!(
        header,
        [
            "instance_id",
            "instance_name",
            "schedule_id",
            "workflow_id",
            "aggregation_period",
            "aggregation_hour_utc",
            "enabled",
            "last_status",
            "last_run_at",
        ]
    );
    assert!(
        !rows.is_empty() && rows.iter().all(|r| r[7] == "FAILED"),
        "{rows:?}"
    );
    let (header, rows) = amc
        .env
        .run(&[
            "usage",
            "executions",
            "amcformat01",
            "--status",
            "failed",
            "-o",
            "csv",
        ])
        .ok()
        .csv();
    assert_eq!(
        header,
        [
            "execution_id",
            "workflow_id",
            "status",
            "category",
            "created_at",
            "updated_at",
            "duration_s",
            "error",
        ]
    );
    assert!(rows.iter().all(|r| r[2] == "FAILED"), "{rows:?}");
    assert!(
        rows.iter().any(|r| r[0] == "a2" && r[1] == "wf-a"),
        "{rows:?}"
    );
    let report = amc
        .env
        .run(&["usage", "report", "-o", "ndjson"])
        .ok()
        .ndjson();
    assert_eq!(report.len(), 2);
    assert!(report[1]["fleet"].is_object());
    assert!(
        amc.fake.requests().is_empty(),
        "report commands use no network"
    );
    // A sync that names no instance is a usage error.
    amc.env.run(&["usage", "sync"]).code(2);
}

fn ctrl_c_keeps_the_instances_already_synced_whole() {
    let now = now_s();
    let instances = ids(40, "int");
    let histories: Vec<History> = (0..40)
        .map(|i| History {
            workflows: vec!["wf".into()],
            schedules: vec![],
            executions: (0..5)
                .map(|k| Ex {
                    id: format!("e{i}-{k}"),
                    workflow: "wf".into(),
                    status: "SUCCEEDED",
                    created: now - TimeDelta::hours(k + 1),
                    updated: now - TimeDelta::hours(k),
                    category: "AD_HOC",
                })
                .collect(),
        })
        .collect();
    let amc = fleet(&instances, &histories);
    amc.fake.set_latency(std::time::Duration::from_millis(100));
    let run = crate::support::amc::Streaming::start(
        &amc.env,
        &[
            "usage",
            "sync",
            "--all",
            "--concurrency",
            "2",
            "--rate",
            "1000",
            "-o",
            "ndjson",
        ],
    );
    let (_, first) = run.next_line().expect("one instance synced");
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["status"], "OK", "{first}");
    run.signal("INT");
    let (code, rest, stderr) = run.finish();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    let reported = 1 + rest.len();
    let synced = amc.env.probe().count("usage_syncs") as usize;
    assert_eq!(synced, reported, "every instance reported is saved");
    assert!(synced < 40, "the run stopped scheduling");
    // Each saved instance is whole: all five executions and its workflow.
    assert_eq!(
        amc.env.probe().count("workflow_executions") as usize,
        5 * synced
    );
    assert_eq!(
        amc.env.probe().scalar(
            "SELECT count(*) FROM workflow_executions e
             WHERE NOT EXISTS (SELECT 1 FROM usage_syncs u WHERE u.instance_id = e.instance_id)"
        ),
        0
    );
    amc.env.assert_store_sound("after Ctrl-C");
}

/// A sync where some instances fail keeps the others and reports the
/// failures on stderr as it always has: the summary, then one
/// `{"error":…}` object with code `api` in a machine format, one `error:`
/// line on a table run; exit 6 either way.
fn a_partly_failed_sync_reports_the_same_way_in_every_format() {
    let instances = vec!["amcpartok01".to_owned(), "amcpartbad1".to_owned()];
    let good = History {
        workflows: vec!["wf".into()],
        ..Default::default()
    };
    let amc = fleet(&instances, &[good.clone(), good]);
    amc.fake.fail_page(
        "amcpartbad1",
        UsageList::Executions,
        0,
        Fault::MalformedJson,
    );
    let out = sync(&amc.env, &[]).code(6);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stderr);
    assert!(
        lines[0].starts_with("1 of 2 instance(s) synced in ") && lines[0].ends_with(", 1 failed"),
        "{}",
        out.stderr
    );
    assert_eq!(
        lines[1],
        r#"{"error":{"code":"api","message":"1 of 2 instance(s) could not be synced","hint":null}}"#
    );
    let out = amc
        .env
        .run(&["usage", "sync", "--all", "--rate", "1000", "-q"])
        .code(6);
    assert_eq!(
        out.stderr,
        "error: 1 of 2 instance(s) could not be synced\n"
    );
}

crate::on_both_backends!(
    every_report_figure_is_exact_on_a_varied_fleet_of_55,
    a_second_sync_fetches_only_the_new_window_and_equals_a_fresh_full_sync,
    eleven_pages_are_all_stored_and_a_repeated_token_stops_the_instance,
    bad_answers_fail_their_instance_clearly_and_write_nothing_of_it,
    deep_check_finds_exactly_the_instances_with_no_linked_advertisers,
    instance_advertisers_lists_every_page_live,
    discovery_keeps_type_canonical_name_and_upload_account,
    executions_and_schedules_read_the_store_in_every_format,
    ctrl_c_keeps_the_instances_already_synced_whole,
    a_partly_failed_sync_reports_the_same_way_in_every_format,
);
