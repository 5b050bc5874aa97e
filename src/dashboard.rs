//! The dashboard page (`amcctl dashboard`): one self-contained HTML file.
//!
//! The page needs nothing from the network and runs no script: the styles
//! are inline, the charts are SVG drawn here, and a Content-Security-Policy
//! forbids loading anything else. Every text that comes from the store
//! (names, errors, IDs) goes through [`esc`], which makes it safe in HTML
//! text, in quoted attributes and in SVG text alike; names sit in `<bdi>`
//! so that a right-to-left mark in one cannot reorder the text around it.
//!
//! Key numbers carry `data-metric` (and `data-value`, the exact figure the
//! JSON reports give) so that a program can read them from the DOM.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::domain::{
    DayExecutions, DayLatency, HealthFleet, HealthSummary, ScheduleRow, UsageFleet, UsageRow,
};
use crate::domain::{HealthStatus, InstanceStatus, RowId, fmt_time};

/// The per-instance table lists this many instances, worst first; the rest
/// are summarised in one line (a 10,000-instance fleet stays a small page).
pub const MAX_ROWS: usize = 200;
/// At most this many failing schedules are listed.
pub const MAX_SCHEDULES: usize = 200;

/// The Content-Security-Policy of the page: nothing may load, nothing may run.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/// Everything the page shows.
#[derive(Debug)]
pub struct Dashboard<'a> {
    /// When the page was made (store time format).
    pub generated_at: String,
    /// The window, as the user gave it (`30d`).
    pub window: String,
    /// The filters in force, for the header (`account Acme`, …).
    pub filters: Vec<String>,
    /// Instances by current health.
    pub by_health: Vec<(HealthStatus, usize)>,
    /// Instances by status.
    pub by_status: Vec<(InstanceStatus, usize)>,
    /// Each instance's health now (its last check).
    pub health_now: &'a std::collections::HashMap<RowId, HealthStatus>,
    /// `health report` over the window, worst first.
    pub health: &'a [HealthSummary],
    /// Its fleet line.
    pub health_fleet: &'a HealthFleet,
    /// `usage report` rows over the window (any order).
    pub usage: &'a [UsageRow],
    /// Its fleet line.
    pub usage_fleet: &'a UsageFleet,
    /// Latency per day.
    pub latency: &'a [DayLatency],
    /// Executions per day.
    pub executions: &'a [DayExecutions],
    /// Schedules whose latest run failed.
    pub failing: &'a [ScheduleRow],
    /// The amcctl version.
    pub version: &'a str,
}

/// Escapes `s` for HTML text, double- or single-quoted attribute values and
/// SVG text: `&`, `<`, `>`, `"` and `'` become character references.
pub fn esc(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// A percentage with two decimals, `–` when unknown.
fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.2}%"))
}

/// A fraction shown as a percentage with one decimal.
fn rate(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{:.1}%", v * 100.0))
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v} ms"))
}

/// The exact JSON figure, for `data-value` (`null` when unknown).
fn json_num<T: serde::Serialize>(v: &Option<T>) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn health_class(h: HealthStatus) -> &'static str {
    match h {
        HealthStatus::Healthy => "ok",
        HealthStatus::Unhealthy => "bad",
        HealthStatus::Error => "err",
        HealthStatus::Unknown => "unk",
    }
}

/// A status dot with its word beside it: colour is never the only signal.
fn health_badge(h: HealthStatus) -> String {
    format!(
        "<span class=\"badge {}\"><span class=\"dot\" aria-hidden=\"true\"></span>{}</span>",
        health_class(h),
        h.as_str()
    )
}

const STYLE: &str = r#"
:root{--ok:#1a7f37;--bad:#b35900;--err:#c62828;--unk:#6b7280;--ink:#1f2328;--mute:#57606a;--line:#d0d7de;--bg:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#fff}
header,main,footer{max-width:1200px;margin:0 auto;padding:0 16px}
header{padding-top:20px}
h1{font-size:1.6rem;margin:0 0 4px}
h2{font-size:1.2rem;margin:28px 0 8px}
.meta{color:var(--mute);margin:0}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:10px;margin:16px 0}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:var(--bg)}
.card .label{color:var(--mute);font-size:.85rem}
.card .big{font-size:1.5rem;font-weight:600;display:block}
.counts{list-style:none;padding:0;margin:4px 0 0;display:flex;flex-wrap:wrap;gap:6px 14px}
.badge{white-space:nowrap;font-weight:600;font-size:.85rem}
.dot{display:inline-block;width:.7em;height:.7em;border-radius:50%;margin-right:.35em;background:currentColor}
.ok{color:var(--ok)}.bad{color:var(--bad)}.err{color:var(--err)}.unk{color:var(--unk)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;width:100%;font-size:.9rem}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name{min-width:10em;overflow-wrap:anywhere}
td.why{min-width:16em;max-width:36em;overflow-wrap:anywhere;color:var(--mute)}
code{font-size:.85em;overflow-wrap:anywhere}
figure{margin:0}
svg.chart{width:100%;height:auto;max-width:900px;display:block}
svg.chart text{font:13px system-ui,sans-serif;fill:var(--ink)}
svg.chart .axis{stroke:var(--line)}
.legend{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;gap:4px 16px;font-size:.9rem}
.key{display:inline-block;width:1.6em;height:.5em;margin-right:.4em;vertical-align:middle}
details{margin:8px 0}
summary{cursor:pointer;color:#0550ae}
.note{color:var(--mute);font-size:.9rem}
footer{color:var(--mute);font-size:.85rem;padding:24px 16px}
@media (max-width:600px){body{font-size:14px}td.why{min-width:22em}h1{font-size:1.3rem}.card .big{font-size:1.25rem}svg.chart text{font-size:22px}}
"#;

/// Renders the whole page.
pub fn render(d: &Dashboard<'_>) -> String {
    let mut h = String::with_capacity(64 * 1024 + d.health.len().min(MAX_ROWS) * 600);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    let _ = writeln!(
        h,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        esc(CSP)
    );
    h.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str("<title>AMC fleet dashboard</title>\n<style>");
    h.push_str(STYLE);
    h.push_str("</style>\n</head>\n<body>\n");
    header(&mut h, d);
    h.push_str("<main>\n");
    fleet(&mut h, d);
    latency_chart(&mut h, d.latency);
    executions_chart(&mut h, d.executions);
    instances(&mut h, d);
    schedules(&mut h, d.failing);
    h.push_str("</main>\n");
    let _ = writeln!(
        h,
        "<footer>Made by amcctl {} from its store; no data leaves this file. \
         The figures are those of <code>amcctl health report</code> and <code>amcctl usage report</code> \
         for the same window.</footer>\n</body>\n</html>",
        esc(d.version)
    );
    h
}

fn header(h: &mut String, d: &Dashboard<'_>) {
    h.push_str("<header>\n<h1>AMC fleet dashboard</h1>\n");
    let since = fmt_time(&d.health_fleet.since);
    let _ = write!(
        h,
        "<p class=\"meta\">Made <time data-meta=\"generated\" datetime=\"{g}\">{}</time> \
         over the last <span data-meta=\"window\">{w}</span> \
         (since <time data-meta=\"since\" datetime=\"{s}\">{}</time>)",
        readable_time(&d.generated_at),
        readable_time(&since),
        g = esc(&d.generated_at),
        w = esc(&d.window),
        s = esc(&since),
    );
    if !d.filters.is_empty() {
        let list: Vec<String> = d
            .filters
            .iter()
            .map(|f| format!("<bdi>{}</bdi>", esc(f)))
            .collect();
        let _ = write!(
            h,
            "; <span data-meta=\"filters\">{}</span>",
            list.join(", ")
        );
    }
    h.push_str(".</p>\n</header>\n");
}

/// `2026-12-02T07:09:03Z` as `2026-12-02 07:09 UTC`.
fn readable_time(t: &str) -> String {
    match (t.get(..10), t.get(11..16)) {
        (Some(day), Some(hm)) if t.ends_with('Z') => format!("{day} {hm} UTC"),
        _ => esc(t).into_owned(),
    }
}

fn card(h: &mut String, label: &str, metric: &str, value: &str, shown: &str, extra: &str) {
    let _ = writeln!(
        h,
        "<div class=\"card\"><span class=\"label\">{label}</span>\
         <span class=\"big\" data-metric=\"{metric}\" data-value=\"{}\">{}</span>{extra}</div>",
        esc(value),
        esc(shown)
    );
}

fn fleet(h: &mut String, d: &Dashboard<'_>) {
    h.push_str("<section id=\"fleet\" aria-labelledby=\"fleet-h\">\n<h2 id=\"fleet-h\">Fleet status now</h2>\n<div class=\"cards\">\n");
    let total: usize = d.by_health.iter().map(|(_, n)| n).sum();
    let mut counts = String::from("<ul class=\"counts\">");
    for (status, n) in &d.by_health {
        let _ = write!(
            counts,
            "<li>{} <span data-metric=\"health-{}\" data-value=\"{n}\">{n}</span></li>",
            health_badge(*status),
            status.as_str().to_lowercase()
        );
    }
    counts.push_str("</ul>");
    card(
        h,
        "Instances",
        "instances",
        &total.to_string(),
        &total.to_string(),
        &counts,
    );
    let mut statuses = String::from("<ul class=\"counts\">");
    for (status, n) in &d.by_status {
        let _ = write!(
            statuses,
            "<li>{} <span data-metric=\"status-{}\" data-value=\"{n}\">{n}</span></li>",
            status.as_str(),
            status.as_str().to_lowercase()
        );
    }
    statuses.push_str("</ul>");
    let active = d
        .by_status
        .iter()
        .find(|(s, _)| *s == InstanceStatus::Active)
        .map_or(0, |(_, n)| *n);
    card(
        h,
        "Active",
        "active",
        &active.to_string(),
        &active.to_string(),
        &statuses,
    );
    let f = d.health_fleet;
    card(
        h,
        "Uptime (share of healthy checks)",
        "uptime",
        &json_num(&f.uptime_pct),
        &pct(f.uptime_pct),
        &format!(
            "<span class=\"label\"><span data-metric=\"checks\" data-value=\"{c}\">{c}</span> checks</span>",
            c = f.checks
        ),
    );
    let u = d.usage_fleet;
    card(
        h,
        "Executions",
        "executions",
        &u.executions.total().to_string(),
        &u.executions.total().to_string(),
        &format!(
            "<span class=\"label\"><span data-metric=\"failed\" data-value=\"{f}\">{f}</span> failed, \
             <span data-metric=\"in-flight\" data-value=\"{i}\">{i}</span> in flight now</span>",
            f = u.executions.FAILED,
            i = u.in_flight
        ),
    );
    card(
        h,
        "Success rate",
        "success-rate",
        &json_num(&u.success_rate),
        &rate(u.success_rate),
        "<span class=\"label\">succeeded ÷ (succeeded + failed)</span>",
    );
    card(
        h,
        "Failing schedules",
        "failing-schedules",
        &d.failing.len().to_string(),
        &d.failing.len().to_string(),
        &format!(
            "<span class=\"label\"><span data-metric=\"instances-with-failures\" data-value=\"{n}\">{n}</span> instance(s) with failures</span>",
            n = u.instances_with_failures
        ),
    );
    h.push_str("</div>\n</section>\n");
}

/// Chart geometry, in SVG user units.
const W: f64 = 720.0;
const H: f64 = 260.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 34.0;

/// A round upper bound for an axis reaching `max`: four whole, round steps.
fn nice_max(max: f64) -> f64 {
    let quarter = (max / 4.0).max(1.0);
    let mag = 10f64.powf(quarter.log10().floor());
    for step in [1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if step * mag >= quarter && (step * mag).fract() == 0.0 {
            return 4.0 * step * mag;
        }
    }
    40.0 * mag
}

fn x_of(i: usize, n: usize) -> f64 {
    let span = W - LEFT - RIGHT;
    if n <= 1 {
        LEFT + span / 2.0
    } else {
        LEFT + span * i as f64 / (n - 1) as f64
    }
}

fn y_of(v: f64, max: f64) -> f64 {
    let span = H - TOP - BOTTOM;
    TOP + span * (1.0 - v / max)
}

/// Grid lines, y labels and a few day labels along x.
fn axes(h: &mut String, days: &[&str], max: f64, x_at: impl Fn(usize) -> f64) {
    for k in 0..=4 {
        let v = max * k as f64 / 4.0;
        let y = y_of(v, max);
        let _ = write!(
            h,
            "<line class=\"axis\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            trim_num(v)
        );
    }
    let n = days.len();
    let labels = 4usize.min(n);
    let mut shown: Vec<usize> = (0..labels)
        .map(|k| {
            if labels <= 1 {
                0
            } else {
                k * (n - 1) / (labels - 1)
            }
        })
        .collect();
    shown.dedup();
    for i in shown {
        let anchor = if i == 0 && n > 1 {
            "start"
        } else if i + 1 == n && n > 1 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            h,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>",
            x_at(i),
            H - 10.0,
            esc(days[i].get(5..).unwrap_or(days[i]))
        );
    }
}

fn trim_num(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

fn latency_chart(h: &mut String, days: &[DayLatency]) {
    h.push_str("<section id=\"latency\" aria-labelledby=\"latency-h\">\n<h2 id=\"latency-h\">API latency per day, in ms (p50 and p95)</h2>\n");
    let measured: Vec<&DayLatency> = days.iter().filter(|d| d.p95_ms.is_some()).collect();
    if measured.is_empty() {
        h.push_str("<p class=\"note\" data-empty=\"latency\">No checks with a latency in this window: run <code>amcctl health check --all</code>.</p>\n</section>\n");
        return;
    }
    let max = nice_max(days.iter().filter_map(|d| d.p95_ms).max().unwrap_or(0) as f64);
    let n = days.len();
    let worst = measured
        .iter()
        .max_by_key(|d| d.p95_ms)
        .map(|d| (d.day.as_str(), d.p95_ms.unwrap_or(0)));
    let desc = format!(
        "Daily median and 95th percentile latency of health checks over {n} day(s); highest p95 {} ms on {}. The same figures are in the table below.",
        worst.map_or(0, |w| w.1),
        worst.map_or("", |w| w.0)
    );
    let _ = write!(
        h,
        "<figure><svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"lat-t lat-d\">\
         <title id=\"lat-t\">API latency per day</title><desc id=\"lat-d\">{}</desc>",
        esc(&desc)
    );
    let day_names: Vec<&str> = days.iter().map(|d| d.day.as_str()).collect();
    axes(h, &day_names, max, |i| x_of(i, n));
    for (pick, colour, dash, label) in [
        (
            (|d: &DayLatency| d.p50_ms) as fn(&DayLatency) -> Option<u64>,
            "#0969da",
            "",
            "p50",
        ),
        (
            |d: &DayLatency| d.p95_ms,
            "#c62828",
            " stroke-dasharray=\"6 4\"",
            "p95",
        ),
    ] {
        // One polyline per run of days with a figure: a day without checks is a gap.
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, h: &mut String| {
            if run.len() > 1 {
                let _ = write!(
                    h,
                    "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2.5\"{dash} points=\"{}\"/>",
                    run.join(" ")
                );
            }
            run.clear();
        };
        for (i, d) in days.iter().enumerate() {
            match pick(d) {
                Some(v) => {
                    let (x, y) = (x_of(i, n), y_of(v as f64, max));
                    run.push(format!("{x:.1},{y:.1}"));
                    let _ = write!(
                        h,
                        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\" fill=\"{colour}\"><title>{} {label} {v} ms</title></circle>",
                        esc(&d.day)
                    );
                }
                None => flush(&mut run, h),
            }
        }
        flush(&mut run, h);
    }
    h.push_str("</svg></figure>\n<ul class=\"legend\"><li><span class=\"key\" style=\"background:#0969da\"></span>p50 (solid line)</li><li><span class=\"key\" style=\"background:repeating-linear-gradient(90deg,#c62828 0 6px,transparent 6px 10px)\"></span>p95 (dashed line)</li></ul>\n");
    h.push_str("<details><summary>Latency per day as a table</summary><div class=\"scroll\"><table><thead><tr><th>Day</th><th class=\"n\">Checks</th><th class=\"n\">Healthy</th><th class=\"n\">p50</th><th class=\"n\">p95</th></tr></thead><tbody>\n");
    for d in days {
        let _ = writeln!(
            h,
            "<tr data-day=\"{day}\"><td>{day}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            d.checks,
            d.healthy,
            ms(d.p50_ms),
            ms(d.p95_ms),
            day = esc(&d.day)
        );
    }
    h.push_str("</tbody></table></div></details>\n</section>\n");
}

fn executions_chart(h: &mut String, days: &[DayExecutions]) {
    h.push_str("<section id=\"usage\" aria-labelledby=\"usage-h\">\n<h2 id=\"usage-h\">Executions per day</h2>\n");
    let total: u64 = days.iter().map(|d| d.executions.total()).sum();
    if total == 0 {
        h.push_str("<p class=\"note\" data-empty=\"executions\">No executions in this window: fetch them with <code>amcctl usage sync --all</code>.</p>\n</section>\n");
        return;
    }
    let n = days.len().max(1);
    let max = nice_max(days.iter().map(|d| d.executions.total()).max().unwrap_or(0) as f64);
    let slot = (W - LEFT - RIGHT) / n as f64;
    let bar = (slot * 0.8).max(1.0);
    let x_at = |i: usize| LEFT + slot * (i as f64 + 0.5);
    let failed: u64 = days.iter().map(|d| d.executions.FAILED).sum();
    let desc = format!(
        "Executions created per day over {} day(s): {total} in all, {failed} failed. Bars stack succeeded, failed and other (running, pending, cancelled, rejected). The same figures are in the table below.",
        days.len()
    );
    let _ = write!(
        h,
        "<figure><svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-labelledby=\"ex-t ex-d\">\
         <title id=\"ex-t\">Executions per day</title><desc id=\"ex-d\">{}</desc>",
        esc(&desc)
    );
    let names: Vec<&str> = days.iter().map(|d| d.day.as_str()).collect();
    axes(h, &names, max, x_at);
    for (i, d) in days.iter().enumerate() {
        let e = &d.executions;
        let other = e.total() - e.SUCCEEDED - e.FAILED;
        let mut base = 0u64;
        let x = x_at(i) - bar / 2.0;
        for (v, colour, label) in [
            (e.SUCCEEDED, "#1a7f37", "succeeded"),
            (e.FAILED, "#c62828", "failed"),
            (other, "#8c959f", "other"),
        ] {
            if v == 0 {
                continue;
            }
            let y_top = y_of((base + v) as f64, max);
            let y_bottom = y_of(base as f64, max);
            let _ = write!(
                h,
                "<rect x=\"{x:.1}\" y=\"{y_top:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} {v} {label}</title></rect>",
                (y_bottom - y_top).max(0.5),
                esc(&d.day)
            );
            base += v;
        }
    }
    h.push_str("</svg></figure>\n<ul class=\"legend\"><li><span class=\"key\" style=\"background:#1a7f37\"></span>succeeded (bottom)</li><li><span class=\"key\" style=\"background:#c62828\"></span>failed (middle)</li><li><span class=\"key\" style=\"background:#8c959f\"></span>other (top)</li></ul>\n");
    h.push_str("<details><summary>Executions per day as a table</summary><div class=\"scroll\"><table><thead><tr><th>Day</th><th class=\"n\">All</th><th class=\"n\">Succeeded</th><th class=\"n\">Failed</th><th class=\"n\">Other</th></tr></thead><tbody>\n");
    for d in days {
        let e = &d.executions;
        let _ = writeln!(
            h,
            "<tr data-day=\"{day}\"><td>{day}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            e.total(),
            e.SUCCEEDED,
            e.FAILED,
            e.total() - e.SUCCEEDED - e.FAILED,
            day = esc(&d.day)
        );
    }
    h.push_str("</tbody></table></div></details>\n</section>\n");
}

fn instances(h: &mut String, d: &Dashboard<'_>) {
    h.push_str("<section id=\"instances\" aria-labelledby=\"inst-h\">\n<h2 id=\"inst-h\">Instances, worst first</h2>\n");
    if d.health.is_empty() {
        h.push_str("<p class=\"note\" data-empty=\"instances\">No instances: add some with <code>amcctl instance create</code> or <code>amcctl instance discover</code>.</p>\n</section>\n");
        return;
    }
    let usage: std::collections::HashMap<_, &UsageRow> =
        d.usage.iter().map(|u| (u.id, u)).collect();
    h.push_str("<p class=\"note\">Uptime and error rate are the shares of HEALTHY and ERROR checks in the window; latency is of the checks that got an answer; success rate is succeeded ÷ (succeeded + failed) executions.</p>\n");
    h.push_str("<div class=\"scroll\"><table><thead><tr><th>Health now</th><th>Name</th><th>Instance ID</th><th class=\"n\">Checks</th><th class=\"n\">Uptime</th><th class=\"n\">Errors</th><th class=\"n\">p50</th><th class=\"n\">p95</th><th class=\"n\">Executions</th><th class=\"n\">Success</th><th>Last error</th></tr></thead><tbody>\n");
    for r in d.health.iter().take(MAX_ROWS) {
        let u = usage.get(&r.id);
        let verdict = d
            .health_now
            .get(&r.id)
            .copied()
            .unwrap_or(HealthStatus::Unknown);
        let _ = writeln!(
            h,
            "<tr data-id=\"{id}\"><td>{}</td><td class=\"name\"><bdi data-field=\"name\">{}</bdi></td><td><code>{}</code></td>\
             <td class=\"n\" data-metric=\"checks\" data-value=\"{}\">{}</td>\
             <td class=\"n\" data-metric=\"uptime\" data-value=\"{}\">{}</td>\
             <td class=\"n\" data-metric=\"error-rate\" data-value=\"{}\">{}</td>\
             <td class=\"n\" data-metric=\"p50\" data-value=\"{}\">{}</td>\
             <td class=\"n\" data-metric=\"p95\" data-value=\"{}\">{}</td>\
             <td class=\"n\" data-metric=\"executions\" data-value=\"{ex}\">{ex}</td>\
             <td class=\"n\" data-metric=\"success-rate\" data-value=\"{}\">{}</td>\
             <td class=\"why\"><bdi data-field=\"last-error\">{}</bdi></td></tr>",
            health_badge(verdict),
            esc(&r.name),
            esc(r.instance_id.as_str()),
            r.checks,
            r.checks,
            json_num(&r.uptime_pct),
            pct(r.uptime_pct),
            json_num(&r.error_rate_pct),
            pct(r.error_rate_pct),
            json_num(&r.p50_ms),
            ms(r.p50_ms),
            json_num(&r.p95_ms),
            ms(r.p95_ms),
            json_num(&u.and_then(|u| u.success_rate)),
            rate(u.and_then(|u| u.success_rate)),
            esc(r.last_error.as_deref().unwrap_or("")),
            id = r.id,
            ex = u.map_or(0, |u| u.executions.total()),
        );
    }
    h.push_str("</tbody></table></div>\n");
    if d.health.len() > MAX_ROWS {
        let rest = &d.health[MAX_ROWS..];
        let checked: Vec<&HealthSummary> = rest.iter().filter(|r| r.checks > 0).collect();
        let lowest = checked
            .iter()
            .filter_map(|r| r.uptime_pct)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.min(v))));
        let _ = writeln!(
            h,
            "<p class=\"note\" data-metric=\"instances-not-listed\" data-value=\"{n}\">{n} more instance(s) not listed: \
             {c} checked in the window with uptime {} or better, {} not checked. \
             <code>amcctl health report</code> and <code>amcctl usage report</code> list them all.</p>",
            lowest.map_or_else(|| "–".into(), |v| format!("{v:.2}%")),
            rest.len() - checked.len(),
            n = rest.len(),
            c = checked.len(),
        );
    }
    h.push_str("</section>\n");
}

fn schedules(h: &mut String, failing: &[ScheduleRow]) {
    h.push_str("<section id=\"schedules\" aria-labelledby=\"sched-h\">\n<h2 id=\"sched-h\">Failing schedules</h2>\n");
    if failing.is_empty() {
        h.push_str("<p class=\"note\" data-empty=\"schedules\">No schedule's latest run failed.</p>\n</section>\n");
        return;
    }
    h.push_str("<p class=\"note\">Schedules whose latest scheduled execution failed.</p>\n<div class=\"scroll\"><table><thead><tr><th>Instance</th><th>Instance ID</th><th>Schedule</th><th>Workflow</th><th>Period</th><th>Last run</th></tr></thead><tbody>\n");
    for s in failing.iter().take(MAX_SCHEDULES) {
        let _ = writeln!(
            h,
            "<tr data-schedule=\"{sid}\"><td class=\"name\"><bdi data-field=\"name\">{}</bdi></td><td><code>{}</code></td><td><code>{sid}</code></td><td><code>{}</code></td><td>{}</td><td>{} {}</td></tr>",
            esc(&s.instance_name),
            esc(&s.instance_id),
            esc(s.workflow_id.as_deref().unwrap_or("")),
            esc(s.aggregation_period.as_deref().unwrap_or("")),
            esc(&s.last_run_at.as_ref().map(fmt_time).unwrap_or_default()),
            health_badge_failed(),
            sid = esc(&s.schedule_id),
        );
    }
    h.push_str("</tbody></table></div>\n");
    if failing.len() > MAX_SCHEDULES {
        let _ = writeln!(
            h,
            "<p class=\"note\">{} more: <code>amcctl schedule list --failing</code> lists them all.</p>",
            failing.len() - MAX_SCHEDULES
        );
    }
    h.push_str("</section>\n");
}

fn health_badge_failed() -> &'static str {
    "<span class=\"badge err\"><span class=\"dot\" aria-hidden=\"true\"></span>FAILED</span>"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_leaves_no_markup_in_hostile_text() {
        let hostile = [
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "'><svg onload=alert(1)>",
            "</svg><script>alert(1)</script>",
            "</style><script>alert(1)</script>",
            "</title></desc><a href=javascript:alert(1)>x</a>",
            "a & b &amp; &#60; &lt;",
            "\u{202e}gnp.exe",
            "<!-- --><![CDATA[ ]]>",
        ];
        for s in hostile {
            let e = esc(s);
            assert!(!e.contains(['<', '>', '"', '\'']), "{s:?} → {e:?}");
            // Every & in the output starts one of the five references.
            let mut rest: &str = &e;
            while let Some(i) = rest.find('&') {
                rest = &rest[i..];
                assert!(
                    ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;"]
                        .iter()
                        .any(|r| rest.starts_with(r)),
                    "{s:?} → {e:?}"
                );
                rest = &rest[1..];
            }
            // And it decodes back to the input.
            let back = e
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#39;", "'")
                .replace("&amp;", "&");
            assert_eq!(back, s);
        }
        assert!(matches!(esc("plain name 42"), Cow::Borrowed(_)));
    }

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_max(0.0), 4.0);
        assert_eq!(nice_max(1.0), 4.0);
        assert_eq!(nice_max(7.0), 8.0);
        assert_eq!(nice_max(47.0), 60.0);
        assert_eq!(nice_max(120.0), 120.0);
        assert_eq!(nice_max(250.0), 320.0);
        assert_eq!(nice_max(1000.0), 1000.0);
        for m in [3.0, 13.0, 99.0, 512.0, 7777.0] {
            let top = nice_max(m);
            assert!(top >= m && (top / 4.0).fract() == 0.0, "{m} → {top}");
        }
    }
}
