//! What a person reads, as snapshots under a fixed clock and id seed: the
//! registry's tables byte for byte (ids, times and all), and the messages of
//! each kind of failure with its exit code.

use crate::support::{TestEnv, assert_snapshot};

const ACME: &str = "ENTITY1AA1AA11AAA1";
const GLOBEX: &str = "ENTITY2BB2BB22BBB2";

/// Two accounts; alice owns three instances with brands, bob one.
fn registry() -> TestEnv {
    let env = TestEnv::new().with_fixed_clock();
    env.create_account(ACME, "Acme");
    env.run(&[
        "account",
        "create",
        "--account-id",
        GLOBEX,
        "--name",
        "Globex",
        "--country",
        "DE",
    ])
    .ok();
    env.create_instance("amcibersblt", "Berlin", "Acme", &["Acme Kids", "Zeta"]);
    env.create_instance("amcparis001", "Paris", "Acme", &[]);
    env.create_instance("amcmunich01", "Munich", "Globex", &["Globex"]);
    env.create_instance_as("bob", "amcbobsown1", "Bob's", "Acme", &["Acme Kids"]);
    env
}

fn the_registry_tables_byte_for_byte() {
    let env = registry();
    for (name, args) in [
        ("instance_list", &["instance", "list"][..]),
        (
            "instance_list_all_users",
            &["instance", "list", "--all-users"],
        ),
        ("instance_show", &["instance", "show", "amcibersblt"]),
        ("account_list", &["account", "list"]),
        ("account_show", &["account", "show", "Globex"]),
        ("brand_list", &["brand", "list"]),
        ("user_list", &["user", "list"]),
    ] {
        assert_snapshot!(name, env.run(args).ok().human());
    }
}

#[test]
fn the_message_of_each_kind_of_failure() {
    let env = registry();
    for (name, user, args) in [
        (
            "error_usage_bad_value",
            "alice",
            &["instance", "create", "--instance-id", "Not An Id"][..],
        ),
        (
            "error_usage_unknown_flag",
            "alice",
            &["instance", "list", "--colour"],
        ),
        (
            "error_not_found",
            "alice",
            &["instance", "show", "amcnosuch01"],
        ),
        (
            "error_permission",
            "bob",
            &["instance", "delete", "amcibersblt", "--yes"],
        ),
        (
            "error_conflict",
            "alice",
            &["account", "create", "--account-id", ACME, "--name", "Again"],
        ),
        ("error_auth", "alice", &["instance", "test", "amcibersblt"]),
    ] {
        let out = env.run_as(user, args);
        assert_ne!(out.code, 0, "{name}");
        assert_snapshot!(name, out.human());
    }
    env.probe().set_user_version(999);
    let out = env.run(&["instance", "list"]).code(8).human();
    // The message names the store, in a temporary folder.
    let home = env.home().display().to_string();
    assert_snapshot!("error_store_newer_schema", out.replace(&home, "[HOME]"));
}

crate::on_both_backends!(the_registry_tables_byte_for_byte,);
