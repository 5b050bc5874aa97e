//! What a person reads, as snapshots under a fixed clock and id seed: the
//! registry's tables byte for byte (ids, times and all), and the messages of
//! each kind of failure with its exit code.

use crate::support::pg::{self, Backend};
use crate::support::{FIXED_NOW, TestEnv, assert_lines_eq, assert_snapshot};

const ACME: &str = "ENTITY1AA1AA11AAA1";
const GLOBEX: &str = "ENTITY2BB2BB22BBB2";

/// Two accounts; alice owns three instances with brands, bob one.
fn registry() -> TestEnv {
    let env = TestEnv::new().with_fixed_clock();
    // Alice's first command. In SQLite it makes her user (as any OS
    // login's first command does), which takes an id from its seed; in the
    // team store she is registered beforehand, as an administrator would
    // have. Made apart, so that the commands below draw the same ids from
    // the same seeds on both backends.
    env.run(&["instance", "list"]).ok();
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
    if pg::current() == Backend::Postgres {
        // The harness registered alice and bob (as an administrator's
        // `user add` would) outside the fixed clock: at its time, as in
        // SQLite, where their first commands made them.
        env.probe()
            .exec(&format!("UPDATE users SET created_at = '{FIXED_NOW}'"));
    }
    env
}

fn the_registry_tables_byte_for_byte() {
    let env = registry();
    for (name, args) in [
        ("instance_list", &["instance", "list"][..]),
        ("instance_show", &["instance", "show", "amcibersblt"]),
        ("account_list", &["account", "list"]),
        ("account_show", &["account", "show", "Globex"]),
        ("brand_list", &["brand", "list"]),
    ] {
        assert_snapshot!(name, env.run(args).ok().human());
    }
    let users = env.run(&["user", "list"]).ok().human();
    match pg::current() {
        Backend::Sqlite => assert_snapshot!("user_list", users),
        // A user's instance count is of the instances the login can see
        // (row security): bob's one is not shared with alice. All else as
        // in the snapshot.
        Backend::Postgres => assert_lines_eq(
            &format!(
                "exit 0\n--- stdout\n\
                 alice\t\t3\t{FIXED_NOW}\n\
                 bob\t\t0\t{FIXED_NOW}\n\
                 --- stderr\n--- end"
            ),
            &users,
            "alice's user list in the team store",
        ),
    }
    let all_users = env.run(&["instance", "list", "--all-users"]).ok().human();
    match pg::current() {
        // Alice's file: `--all-users` lists everyone's instances, with
        // what she is to each (nothing to bob's: an empty role).
        Backend::Sqlite => assert_snapshot!("instance_list_all_users", all_users),
        // Row security (SPEC section 12): a member's `--all-users` is her
        // own list, byte for byte; bob's instance is not shared with her.
        Backend::Postgres => assert_lines_eq(
            &env.run(&["instance", "list"]).ok().human(),
            &all_users,
            "alice's --all-users in the team store",
        ),
    }
    // An administrator's `--all-users`: everyone's instances on both
    // backends, the same bytes, each with the role `admin` (what root is
    // to instances of others). Made last, as the administrator's user
    // row (not made by a command: its time and id are not the fixed
    // ones) would show in `user list`.
    env.make_admin("root");
    assert_snapshot!(
        "instance_list_all_users_admin",
        env.run_as("root", &["instance", "list", "--all-users"])
            .ok()
            .human()
    );
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
