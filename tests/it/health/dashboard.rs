//! `amcctl dashboard`: the page loads in a real headless Chromium with no
//! console message, no network request and no dialog; its numbers are those
//! of `health report` and `usage report`; hostile names stay text.
//!
//! Chromium is driven over the DevTools protocol (tests/it/support/cdp.rs). Without a
//! `chromium` on PATH these tests print a note and pass, unless `CI=true`.

use std::path::{Path, PathBuf};

use crate::support::TestEnv;
use amcctl::amc::{Execution, ExecutionStatus, Schedule, UsageSnapshot, WorkflowInfo};
use amcctl::domain::HealthRecord;
use amcctl::domain::{HealthStatus, RowId};
use amcctl::store::Store;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

const ENTITY: &str = "ENTITY1DASHBOARD1";

/// A figure as the page writes it in `data-value`: the JSON text of the
/// reports' value, so `32.0` and `32` differ as they do in the reports.
fn js<T: serde::Serialize>(v: T) -> Value {
    Value::String(serde_json::to_string(&v).expect("JSON"))
}

fn row_id(v: &Value) -> RowId {
    v["id"].as_str().expect("an id").parse().expect("a row id")
}

fn at(hours_ago: i64) -> DateTime<Utc> {
    let now = amcctl::domain::now();
    now - TimeDelta::hours(hours_ago)
}

/// Records checks of `id`: one every `step` hours over `days` days, the
/// status and latency drawn from `pattern` in turn.
fn checks(
    store: &mut Store,
    id: RowId,
    days: i64,
    step: i64,
    pattern: &[(HealthStatus, Option<u64>, Option<&str>)],
) {
    let mut batch = Vec::new();
    let mut k = 0usize;
    let mut h = 1;
    while h < days * 24 {
        let (status, latency, error) = pattern[k % pattern.len()];
        batch.push(HealthRecord {
            instance: id,
            checked_at: at(h),
            status,
            http_status: latency.map(|_| {
                if status == HealthStatus::Healthy {
                    200
                } else {
                    403
                }
            }),
            latency_ms: latency.map(|l| l + (k as u64 * 7) % 50),
            attempts: 1,
            error: error.map(str::to_owned),
        });
        k += 1;
        h += step;
    }
    store.record_health(&batch).expect("record checks");
}

/// Stores `n` executions of `id` over the last days (every `fail_every`-th
/// failed, a few still running) and one daily schedule, failing or not.
fn usage(
    store: &mut Store,
    id: RowId,
    n: usize,
    fail_every: usize,
    schedule_fails: bool,
    error: &str,
) {
    let mut executions = Vec::new();
    for k in 0..n {
        let created = at(2 + 5 * k as i64);
        let status = if k == 0 && schedule_fails {
            ExecutionStatus::Failed
        } else if k == 1 {
            ExecutionStatus::Running
        } else if fail_every > 0 && k % fail_every == 0 {
            ExecutionStatus::Failed
        } else {
            ExecutionStatus::Succeeded
        };
        executions.push(Execution {
            execution_id: format!("exec-{k:04}"),
            workflow_id: Some(if k % 2 == 0 { "daily_report" } else { "adhoc" }.to_owned()),
            status,
            category: Some(if k % 2 == 0 { "SCHEDULED" } else { "AD_HOC" }.to_owned()),
            created_at: created,
            updated_at: status
                .finished()
                .then(|| created + TimeDelta::seconds(60 + 13 * k as i64)),
            error: (status == ExecutionStatus::Failed).then(|| error.to_owned()),
        });
    }
    let snap = UsageSnapshot {
        workflows: vec![
            WorkflowInfo {
                workflow_id: "daily_report".into(),
                sql_query: Some("SELECT 1".into()),
            },
            WorkflowInfo {
                workflow_id: "adhoc".into(),
                sql_query: None,
            },
        ],
        executions,
        schedules: vec![Schedule {
            schedule_id: "sched-daily".into(),
            workflow_id: Some("daily_report".into()),
            aggregation_period: Some("DAILY".into()),
            aggregation_hour_utc: Some(6),
            enabled: true,
        }],
        pages: 1,
        attempts: 1,
    };
    store
        .save_usage(id, amcctl::domain::now(), at(24 * 40), &snap)
        .expect("save usage");
}

/// A store with four instances of differing health and usage.
fn fleet(env: &TestEnv) -> Vec<RowId> {
    env.create_account(ENTITY, "Acme US");
    let a = row_id(&env.create_instance("amcaaaaaaaa1", "Acme main", "Acme US", &["Acme"]));
    let b = row_id(&env.create_instance("amcbbbbbbbb2", "Acme kids", "Acme US", &["Acme Kids"]));
    let c = row_id(&env.create_instance("amccccccccc3", "Beta test", "Acme US", &[]));
    let d = row_id(&env.create_instance("amcdddddddd4", "Never checked", "Acme US", &[]));
    let mut store = env.open_store();
    let ok = (HealthStatus::Healthy, Some(120), None);
    let slow = (HealthStatus::Healthy, Some(900), None);
    let denied = (
        HealthStatus::Unhealthy,
        Some(300),
        Some("HTTP 403: not allowed"),
    );
    let down = (
        HealthStatus::Error,
        None,
        Some("timed out after 3 attempts"),
    );
    checks(&mut store, a, 20, 6, &[ok, ok, slow, ok]);
    checks(&mut store, b, 12, 4, &[ok, denied, ok, down, ok]);
    checks(&mut store, c, 5, 3, &[down, denied, ok]);
    // Outside a 30-day window: must not count.
    checks(&mut store, c, 45, 24 * 40, &[down]);
    usage(&mut store, a, 40, 7, false, "disk full");
    usage(&mut store, b, 12, 3, true, "query timed out");
    usage(&mut store, c, 5, 0, false, "");
    let _ = d;
    vec![a, b, c, d]
}

/// The figures the page shows, read from its DOM.
const READ_DOM: &str = r#"JSON.stringify({
  fleet: Object.fromEntries([...document.querySelectorAll('#fleet [data-metric]')]
    .map(e => [e.dataset.metric, {value: e.dataset.value, text: e.textContent}])),
  rows: [...document.querySelectorAll('#instances tr[data-id]')].map(tr => ({
    id: tr.dataset.id,
    name: tr.querySelector('[data-field=name]').textContent,
    name_children: tr.querySelector('[data-field=name]').childElementCount,
    last_error: tr.querySelector('[data-field=last-error]').textContent,
    health: tr.querySelector('.badge').textContent,
    m: Object.fromEntries([...tr.querySelectorAll('[data-metric]')]
      .map(e => [e.dataset.metric, {value: e.dataset.value, text: e.textContent}])),
  })),
  schedules: [...document.querySelectorAll('#schedules tr[data-schedule]')]
    .map(tr => tr.querySelector('[data-field=name]').textContent),
  svgs: document.querySelectorAll('svg').length,
  scripts: document.querySelectorAll('script').length,
  images: document.querySelectorAll('img, iframe, object, embed, link, a, form, input, b, base').length,
  handlers: [...document.querySelectorAll('*')].filter(e => [...e.attributes].some(a => a.name.startsWith('on'))).length,
  styles: document.querySelectorAll('style').length,
  empty: [...document.querySelectorAll('[data-empty]')].map(e => e.dataset.empty),
  meta: Object.fromEntries([...document.querySelectorAll('[data-meta]')].map(e => [e.dataset.meta, e.getAttribute('datetime') || e.textContent])),
})"#;

fn write_dashboard(env: &TestEnv, args: &[&str]) -> PathBuf {
    static PAGES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = PAGES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = env.scratch().join(format!("dashboard-{n}.html"));
    let mut full = vec!["dashboard", "--out", file.to_str().expect("a UTF-8 path")];
    full.extend_from_slice(args);
    env.run(&full).ok();
    file
}

/// Loads `file` and asserts the page was quiet: no request, no console
/// message, no dialog. Returns its DOM figures.
fn load_quietly(browser: &mut crate::support::cdp::Browser, file: &Path) -> Value {
    let report = browser.open(file);
    assert_eq!(
        report.requests,
        Vec::<String>::new(),
        "the page made requests"
    );
    assert_eq!(
        report.console,
        Vec::<String>::new(),
        "the console was not quiet"
    );
    assert_eq!(report.dialogs, Vec::<String>::new(), "a dialog opened");
    let dom = browser.eval(READ_DOM);
    serde_json::from_str(dom.as_str().expect("a JSON string")).expect("the DOM figures")
}

fn the_harness_sees_requests_console_messages_and_dialogs() {
    let Some(bin) = crate::support::cdp::chromium_or_skip(
        "the_harness_sees_requests_console_messages_and_dialogs",
    ) else {
        return;
    };
    let env = TestEnv::new();
    // No policy: the image is requested, the script logs and opens a dialog.
    let open = env.write_file(
        "open.html",
        "<!DOCTYPE html><title>x</title><img src=\"http://127.0.0.1:1/x.png\">\
         <script>console.log('hello'); alert('boo')</script>",
    );
    let mut browser = crate::support::cdp::Browser::start(&bin, 800, 600);
    let report = browser.open(&open);
    assert!(
        report
            .requests
            .iter()
            .any(|u| u.starts_with("http://127.0.0.1:1/")),
        "{report:?}"
    );
    assert!(
        report.console.iter().any(|c| c.contains("hello")),
        "{report:?}"
    );
    assert_eq!(report.dialogs, vec!["boo".to_owned()], "{report:?}");

    // The dashboard's own policy: the same image is refused, and the
    // refusal is a console message the tests would see.
    let page = std::fs::read_to_string(write_dashboard(&env, &[])).expect("the page");
    let tampered = env.write_file(
        "tampered.html",
        page.replacen("<main>", "<main><img src=\"http://127.0.0.1:1/y.png\">", 1),
    );
    let report = browser.open(&tampered);
    assert!(
        !report.console.is_empty() || !report.requests.is_empty(),
        "a blocked image went unnoticed: {report:?}"
    );
}

fn the_page_shows_the_figures_of_health_and_usage_reports() {
    let Some(bin) = crate::support::cdp::chromium_or_skip(
        "the_page_shows_the_figures_of_health_and_usage_reports",
    ) else {
        return;
    };
    let mut browser = crate::support::cdp::Browser::start(&bin, 1280, 800);
    // The page and the reports are compared figure for figure, period
    // included: every command sees the same instant, whichever second each
    // one runs in.
    let instant = amcctl::domain::fmt_time(&amcctl::domain::now());
    let env = TestEnv::new().with_env("AMCCTL_TEST_NOW", instant);
    let ids = fleet(&env);
    let file = write_dashboard(&env, &[]);
    let health = env.json(&["health", "report", "--since", "30d"]);
    let usage = env.json(&["usage", "report", "--since", "30d"]);
    let status = env.json(&["health", "status"]);
    let failing = env.json(&["schedule", "list", "--failing"]);
    let dom = load_quietly(&mut browser, &file);

    let fleet = &dom["fleet"];
    let hf = &health["fleet"];
    assert_eq!(fleet["instances"]["value"], js(&hf["instances"]));
    assert_eq!(fleet["instances"]["value"], js(ids.len()));
    assert_eq!(fleet["checks"]["value"], js(&hf["checks"]));
    assert!(hf["checks"].as_u64().unwrap() > 100, "{hf}");
    assert_eq!(fleet["uptime"]["value"], js(&hf["uptime_pct"]));
    assert_eq!(
        fleet["uptime"]["text"],
        format!("{:.2}%", hf["uptime_pct"].as_f64().unwrap())
    );
    for word in ["HEALTHY", "UNHEALTHY", "ERROR", "UNKNOWN"] {
        let n = status
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["health"]["status"] == word)
            .count();
        assert_eq!(
            fleet[format!("health-{}", word.to_lowercase())]["value"],
            js(n),
            "{word}"
        );
    }
    let uf = &usage["fleet"];
    let total: u64 = uf["executions"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(fleet["executions"]["value"], js(total));
    assert!(total > 50, "{uf}");
    assert_eq!(fleet["failed"]["value"], js(&uf["executions"]["FAILED"]));
    assert_eq!(fleet["in-flight"]["value"], js(&uf["in_flight"]));
    assert_eq!(fleet["success-rate"]["value"], js(&uf["success_rate"]));
    assert_eq!(
        fleet["instances-with-failures"]["value"],
        js(&uf["instances_with_failures"])
    );
    assert_eq!(
        fleet["failing-schedules"]["value"],
        js(failing.as_array().unwrap().len())
    );
    // Two instances' daily schedules last failed.
    assert_eq!(failing.as_array().unwrap().len(), 2);

    // The instances in the report's order (worst first), each with its figures.
    let rows = dom["rows"].as_array().unwrap();
    let report_rows = health["instances"].as_array().unwrap();
    assert_eq!(rows.len(), report_rows.len());
    for (row, r) in rows.iter().zip(report_rows) {
        assert_eq!(row["id"], r["id"]);
        assert_eq!(row["name"], r["name"]);
        let m = &row["m"];
        assert_eq!(m["checks"]["value"], js(&r["checks"]), "{}", r["name"]);
        assert_eq!(m["uptime"]["value"], js(&r["uptime_pct"]), "{}", r["name"]);
        assert_eq!(
            m["error-rate"]["value"],
            js(&r["error_rate_pct"]),
            "{}",
            r["name"]
        );
        assert_eq!(m["p50"]["value"], js(&r["p50_ms"]), "{}", r["name"]);
        assert_eq!(m["p95"]["value"], js(&r["p95_ms"]), "{}", r["name"]);
        let u = usage["instances"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["id"] == r["id"])
            .expect("a usage row");
        let runs: u64 = u["executions"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(m["executions"]["value"], js(runs), "{}", r["name"]);
        assert_eq!(
            m["success-rate"]["value"],
            js(&u["success_rate"]),
            "{}",
            r["name"]
        );
        let s = &status
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == r["id"])
            .unwrap()["health"]["status"];
        assert_eq!(row["health"], *s, "status word beside the dot");
    }
    assert_eq!(dom["svgs"], 2, "two charts");
    assert_eq!(dom["scripts"], 0);
    assert_eq!(dom["meta"]["window"], "30 days");
    assert_eq!(dom["meta"]["since"], hf["since"]);
}

fn filters_narrow_the_page_and_the_window_follows_since() {
    let Some(bin) = crate::support::cdp::chromium_or_skip(
        "filters_narrow_the_page_and_the_window_follows_since",
    ) else {
        return;
    };
    let mut browser = crate::support::cdp::Browser::start(&bin, 1280, 800);
    let env = TestEnv::new();
    let ids = fleet(&env);
    let dom = load_quietly(
        &mut browser,
        &write_dashboard(&env, &["--brand", "Acme Kids"]),
    );
    let rows = dom["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], ids[1].to_string());
    let usage = env.json(&["usage", "report", "amcbbbbbbbb2"]);
    assert_eq!(
        dom["fleet"]["success-rate"]["value"],
        js(&usage["fleet"]["success_rate"])
    );

    let dom = load_quietly(
        &mut browser,
        &write_dashboard(&env, &["Acme main", "amccccccccc3", "--since", "3d"]),
    );
    let health = env.json(&["health", "report", "--since", "3d"]);
    let mut expected: Vec<&Value> = health["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] == ids[0].to_string() || r["id"] == ids[2].to_string())
        .collect();
    expected.truncate(2);
    let rows = dom["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, r) in rows.iter().zip(expected) {
        assert_eq!(row["id"], r["id"]);
        assert_eq!(row["m"]["uptime"]["value"], js(&r["uptime_pct"]));
        assert_eq!(row["m"]["p95"]["value"], js(&r["p95_ms"]));
    }
    assert_eq!(dom["meta"]["window"], "3 days");

    let dom = load_quietly(&mut browser, &write_dashboard(&env, &["--account", ENTITY]));
    assert_eq!(dom["rows"].as_array().unwrap().len(), 4);
}

fn hostile_names_are_shown_as_text() {
    let Some(bin) = crate::support::cdp::chromium_or_skip("hostile_names_are_shown_as_text") else {
        return;
    };
    let mut browser = crate::support::cdp::Browser::start(&bin, 1280, 800);
    let env = TestEnv::new();
    env.create_account(ENTITY, "Acme US");
    let names = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(2)>",
        "'><svg onload=alert(3)>",
        "</svg><script>alert(4)</script>",
        "</style><b>bold</b><style>",
        "</title></desc><a href=\"javascript:alert(5)\">x</a>",
        "&amp; &lt;tag&gt; &#60;",
        "<!-- --> ]]> <![CDATA[",
    ];
    let mut ids = Vec::new();
    for (k, name) in names.iter().enumerate() {
        let id = format!("amchostile{k:02}");
        ids.push(row_id(&env.create_instance(&id, name, "Acme US", &[])));
    }
    // A name with a right-to-left override, as an older store or another
    // tool could have left it, and errors from AMC with markup in them.
    let rtl = "evil\u{202e}lmth.exe";
    env.probe().exec(&format!(
        "UPDATE amc_instances SET name = '{rtl}' WHERE instance_id = 'amchostile00'"
    ));
    let mut store = env.open_store();
    let error = "<img src=x onerror=alert(6)>\u{202e} </td></tr></table><script>alert(7)</script>";
    for id in &ids {
        checks(
            &mut store,
            *id,
            2,
            5,
            &[
                (HealthStatus::Unhealthy, Some(200), Some(error)),
                (HealthStatus::Healthy, Some(100), None),
            ],
        );
        usage(&mut store, *id, 4, 0, true, error);
    }
    drop(store);

    let dom = load_quietly(&mut browser, &write_dashboard(&env, &[]));
    let mut expected: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    expected[0] = rtl.to_owned();
    let mut shown: Vec<String> = dom["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["name_children"], 0, "markup inside a name: {r}");
            assert_eq!(r["last_error"], error);
            r["name"].as_str().unwrap().to_owned()
        })
        .collect();
    shown.sort();
    expected.sort();
    assert_eq!(shown, expected);
    let mut scheduled: Vec<String> = dom["schedules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    scheduled.sort();
    assert_eq!(scheduled, expected);
    assert_eq!(dom["scripts"], 0);
    assert_eq!(dom["images"], 0, "an element came out of a name");
    assert_eq!(dom["handlers"], 0, "an event handler came out of a name");
    assert_eq!(dom["svgs"], 2);
    assert_eq!(dom["styles"], 1);
}

fn an_empty_store_and_a_single_instance_render() {
    let Some(bin) =
        crate::support::cdp::chromium_or_skip("an_empty_store_and_a_single_instance_render")
    else {
        return;
    };
    let mut browser = crate::support::cdp::Browser::start(&bin, 1280, 800);
    let env = TestEnv::new();
    let dom = load_quietly(&mut browser, &write_dashboard(&env, &[]));
    assert_eq!(dom["fleet"]["instances"]["value"], js(0));
    assert_eq!(dom["fleet"]["uptime"]["value"], js(Value::Null));
    assert_eq!(dom["fleet"]["success-rate"]["value"], js(Value::Null));
    assert_eq!(
        dom["empty"],
        serde_json::json!(["latency", "executions", "instances", "schedules"])
    );

    env.create_account(ENTITY, "Acme US");
    let id = row_id(&env.create_instance("amcsingle001", "Only one", "Acme US", &[]));
    let mut store = env.open_store();
    checks(
        &mut store,
        id,
        1,
        30,
        &[(HealthStatus::Healthy, Some(80), None)],
    );
    drop(store);
    let dom = load_quietly(&mut browser, &write_dashboard(&env, &[]));
    let rows = dom["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["m"]["uptime"]["value"], js(100.0));
    assert_eq!(rows[0]["m"]["p95"]["value"], js(80));
    assert_eq!(dom["svgs"], 1, "the latency chart; no executions to chart");
}

fn the_narrow_page_scrolls_only_inside_its_tables() {
    let Some(bin) =
        crate::support::cdp::chromium_or_skip("the_narrow_page_scrolls_only_inside_its_tables")
    else {
        return;
    };
    let env = TestEnv::new();
    fleet(&env);
    // The longest name there can be, with no space to break it at.
    env.create_instance("amclongname1", &"W".repeat(128), "Acme US", &[]);
    let file = write_dashboard(&env, &[]);
    let mut browser = crate::support::cdp::Browser::start(&bin, 390, 844);
    browser.emulate_phone(390, 844);
    load_quietly(&mut browser, &file);
    let widths = browser.eval("[document.documentElement.scrollWidth, window.innerWidth]");
    let (page, view) = (widths[0].as_u64().unwrap(), widths[1].as_u64().unwrap());
    assert!(view <= 400, "a phone-sized window: {widths}");
    assert!(page <= view, "the page is wider than the window: {widths}");
}

fn the_page_goes_to_stdout_when_piped_and_to_a_file_with_out() {
    let env = TestEnv::new();
    fleet(&env);
    // Piped with no --out, or `--out -`: the page on stdout, nothing else.
    for args in [&["dashboard"][..], &["dashboard", "--out", "-"]] {
        let out = env.run(args).ok();
        assert!(out.stdout.starts_with("<!DOCTYPE html>"), "{args:?}");
        assert!(out.stdout.trim_end().ends_with("</html>"));
        assert!(out.stdout.contains("Content-Security-Policy"));
        assert!(!out.stdout.contains("<script"));
    }
    // A file: written whole, and said where on stderr; `-o json` tells it on stdout.
    let file = env.scratch().join("client.html");
    let out = env
        .run(&["dashboard", "--out", file.to_str().unwrap(), "-o", "json"])
        .ok();
    let told = out.json();
    assert_eq!(told["path"], file.display().to_string());
    assert_eq!(told["instances"], 4);
    let page = std::fs::read(&file).expect("the page");
    assert_eq!(told["bytes"], page.len());
    assert!(out.stderr.contains("client.html"), "{}", out.stderr);
    let leftovers: Vec<_> = std::fs::read_dir(env.scratch())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

fn bad_arguments_fail_cleanly() {
    let env = TestEnv::new();
    fleet(&env);
    env.run(&["dashboard", "--since", "soon"]).code(2);
    env.run(&["dashboard", "--account", "Nobody"])
        .fails(3, &["Nobody"]);
    env.run(&["dashboard", "amcnosuchone"])
        .fails(3, &["amcnosuchone"]);
    let missing = env.scratch().join("no/such/dir/page.html");
    env.run(&["dashboard", "--out", missing.to_str().unwrap()])
        .fails(2, &["cannot write"]);
    assert!(!env.scratch().join("no").exists());
}

crate::on_both_backends!(
    the_harness_sees_requests_console_messages_and_dialogs,
    the_page_shows_the_figures_of_health_and_usage_reports,
    filters_narrow_the_page_and_the_window_follows_since,
    hostile_names_are_shown_as_text,
    an_empty_store_and_a_single_instance_render,
    the_narrow_page_scrolls_only_inside_its_tables,
    the_page_goes_to_stdout_when_piped_and_to_a_file_with_out,
    bad_arguments_fail_cleanly,
);
