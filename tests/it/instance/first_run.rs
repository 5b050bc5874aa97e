//! What a new user meets first: the hint of a failed `instance test` is
//! about testing (not create's `--skip-validation`), and a call that gets no
//! answer names the proxy and CA settings. The interactive create flow is
//! driven in a pseudo-terminal in tests/it/cli/prompts_pty.rs.

use crate::support::TestEnv;
use crate::support::amc::Amc;

/// A port on 127.0.0.1 with nothing listening: connections are refused.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    drop(listener);
    port
}

fn a_failed_test_hints_at_testing_not_at_skip_validation() {
    let amc = Amc::logged_in();
    // In the store, unknown to AMC: a 404.
    amc.import(&["amcmissing1"], "PENDING");
    let out = amc.env.run(&["instance", "test", "amcmissing1"]).fails(
        6,
        &[
            "test of amcmissing1 failed",
            "amcctl instance test amcmissing1 -v",
        ],
    );
    assert!(!out.stderr.contains("--skip-validation"), "{}", out.stderr);
    // create still offers it.
    amc.env
        .run(&[
            "instance",
            "create",
            "--instance-id",
            "amcmissing2",
            "--account",
            crate::support::amc::ENTITY,
        ])
        .fails(
            6,
            &["validation of amcmissing2 failed", "--skip-validation"],
        );
}

fn no_answer_names_the_proxy_and_ca_options() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}");
    let env = TestEnv::new()
        .with_env("AMCCTL_API_URL", &url)
        .with_env("AMCCTL_AUTH_URL", format!("{url}/auth/o2/token"))
        .with_env("AMCCTL_CLIENT_ID", "amzn1.application-oa2-client.x")
        .with_env("AMCCTL_CLIENT_SECRET", "cs-x")
        .with_env("AMCCTL_REFRESH_TOKEN", "Atzr|x");
    env.create_account("ENTITY1AA1AA11AAA1", "Acme");
    env.create_instance("amcaaaaaaaa", "Main", "Acme", &[]);
    let needles = ["HTTPS_PROXY", "NO_PROXY", "--ca-bundle", "AMCCTL_CA_BUNDLE"];
    let out = env
        .run(&["instance", "test", "amcaaaaaaaa", "--retries", "0"])
        .fails(6, &needles);
    assert!(!out.stderr.contains("--skip-validation"), "{}", out.stderr);
    // Everywhere a call fails so: an account discovery, in JSON too.
    env.run(&["account", "discover", "--dry-run", "--retries", "0"])
        .fails(6, &needles);
}

crate::on_both_backends!(
    a_failed_test_hints_at_testing_not_at_skip_validation,
    no_answer_names_the_proxy_and_ca_options,
);
