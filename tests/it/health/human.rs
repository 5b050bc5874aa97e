//! Health history, status and report tables as snapshots: the history is
//! arranged in the store at known times before the fixed clock, so every
//! time, window and percentage is the same on every run.

use crate::support::{TestEnv, assert_snapshot};

/// Two instances with a week of checks each (three days, one failure
/// for Paris), and their last verdicts on the instances.
fn checked_fleet() -> TestEnv {
    let env = TestEnv::new().with_fixed_clock();
    env.create_account("ENTITY1AA1AA11AAA1", "Acme");
    let berlin = env.create_instance("amcibersblt", "Berlin", "Acme", &[]);
    let paris = env.create_instance("amcparis001", "Paris", "Acme", &[]);
    let (berlin, paris) = (berlin["id"].as_str(), paris["id"].as_str());
    let (berlin, paris) = (berlin.expect("an id"), paris.expect("an id"));
    // Row ids the store made (UUIDs) and fixed texts: safe to quote.
    env.probe().exec_batch(&format!(
        "INSERT INTO health_checks (instance_id, checked_at, status, http_status, latency_ms, attempts, error) VALUES
           ('{berlin}', '2026-11-20T06:00:00Z', 'HEALTHY', 200, 120, 1, NULL),
           ('{berlin}', '2026-11-22T06:00:00Z', 'HEALTHY', 200, 95, 1, NULL),
           ('{berlin}', '2026-11-24T06:00:00Z', 'HEALTHY', 200, 101, 1, NULL),
           ('{paris}', '2026-11-20T06:00:00Z', 'HEALTHY', 200, 240, 1, NULL),
           ('{paris}', '2026-11-22T06:00:00Z', 'ERROR', 503, 1800, 3, 'AMC answered 503 Service Unavailable'),
           ('{paris}', '2026-11-24T06:00:00Z', 'UNHEALTHY', 404, 88, 1, 'instance not found in AMC');
         UPDATE amc_instances SET health_status = 'HEALTHY', last_health_check = '2026-11-24T06:00:00Z',
           health_latency_ms = 101, status = 'ACTIVE' WHERE id = '{berlin}';
         UPDATE amc_instances SET health_status = 'UNHEALTHY', last_health_check = '2026-11-24T06:00:00Z',
           health_latency_ms = 88, health_error = 'instance not found in AMC', status = 'INACTIVE',
           is_active = false
           WHERE id = '{paris}';"
    ));
    env
}

fn health_tables_byte_for_byte() {
    let env = checked_fleet();
    for (name, args) in [
        ("health_history", &["health", "history", "amcparis001"][..]),
        ("health_status", &["health", "status"]),
        ("health_report", &["health", "report"]),
        (
            "health_report_last_day",
            &["health", "report", "--since", "1d"],
        ),
        ("instance_list_checked", &["instance", "list"]),
    ] {
        assert_snapshot!(name, env.run(args).ok().human());
    }
}

crate::on_both_backends!(health_tables_byte_for_byte);
