//! The help of the command and of each group, as snapshots: a change to
//! the CLI reference shows up in review as a diff.

use crate::support::{TestEnv, assert_snapshot};

#[test]
fn help_of_the_command_and_its_groups() {
    let env = TestEnv::new();
    let home = env.home().display().to_string();
    for group in [
        "", "instance", "account", "brand", "user", "health", "usage", "schedule", "auth", "key",
        "db", "config", "audit",
    ] {
        let args: Vec<&str> = [group, "--help"]
            .into_iter()
            .filter(|a| !a.is_empty())
            .collect();
        let out = env.run(&args).ok();
        assert!(out.stderr.is_empty(), "{}", out.stderr);
        // The help names the value of AMCCTL_HOME, a temporary folder.
        let text = format!("{}--- end", out.stdout.replace(&home, "[HOME]"));
        let name = if group.is_empty() { "amcctl" } else { group };
        assert_snapshot!(format!("help_{name}"), text);
    }
}
