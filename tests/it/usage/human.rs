//! The usage report as snapshots under the fixed clock: its window is
//! measured back from it.

use crate::support::{TestEnv, assert_snapshot};

fn usage_report_byte_for_byte() {
    let env = TestEnv::new().with_fixed_clock();
    env.create_account("ENTITY1AA1AA11AAA1", "Acme");
    env.create_instance("amcibersblt", "Berlin", "Acme", &[]);
    for (name, args) in [
        ("usage_report", &["usage", "report"][..]),
        (
            "usage_report_last_week",
            &["usage", "report", "--since", "7d"],
        ),
    ] {
        assert_snapshot!(name, env.run(args).ok().human());
    }
}

crate::on_both_backends!(usage_report_byte_for_byte);
