//! The team store's row security, seen around amcctl: a member connecting
//! to the database with any PostgreSQL client (here the `postgres` crate,
//! as `psql` would) reads and changes no more than amcctl lets them. Alice
//! keeps an instance with brands, history, usage, a login and audit
//! entries; bob sees none of it until she shares the instance, then only
//! what his role allows; an administrator never reads her login.

use crate::support::amc::{ACCOUNT_NAME, Amc};
use crate::support::pg::{self, Backend};

/// Alice's instance.
const INSTANCE: &str = "amcibersblt";

/// The tables holding alice's rows, each with a condition picking them.
const ALICES: [(&str, &str); 9] = [
    ("amc_instances", "TRUE"),
    ("instance_brands", "TRUE"),
    ("health_checks", "TRUE"),
    ("credentials", "TRUE"),
    ("instance_shares", "TRUE"),
    ("workflows", "TRUE"),
    ("workflow_executions", "TRUE"),
    ("usage_syncs", "TRUE"),
    ("audit_log", "actor = 'alice'"),
];

/// The rows of `table` matching `filter` that `client` sees.
fn visible(client: &mut postgres::Client, table: &str, filter: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM {table} WHERE {filter}");
    client
        .query_one(&sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .get(0)
}

/// The rows `sql` changed as `client`; a refusal fails the test.
fn changed(client: &mut postgres::Client, sql: &str) -> u64 {
    client
        .execute(sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Asserts that `sql` is refused as `insufficient_privilege` (42501).
#[track_caller]
fn refused(client: &mut postgres::Client, sql: &str) {
    let err = client
        .execute(sql, &[])
        .map(|n| panic!("{sql} was allowed ({n} rows)"))
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&postgres::error::SqlState::INSUFFICIENT_PRIVILEGE),
        "{sql}: {err}"
    );
}

/// Alice's world: her instance with two brands and a login (through
/// amcctl), a check, usage rows and an audit entry of her own (arranged
/// as the administrator), each of the tables above holding rows.
fn alices_world() -> Amc {
    let amc = Amc::new();
    amc.login().ok();
    amc.env
        .create_instance(INSTANCE, "Alice Main", ACCOUNT_NAME, &["Acme", "Acme Kids"]);
    let probe = amc.env.probe();
    let id = format!("(SELECT id FROM amc_instances WHERE instance_id = '{INSTANCE}')");
    probe.exec_batch(&format!(
        "INSERT INTO health_checks (instance_id, checked_at, status, latency_ms)
             VALUES ({id}, now(), 'HEALTHY', 80);
         INSERT INTO workflows (instance_id, workflow_id, synced_at) VALUES ({id}, 'wf1', now());
         INSERT INTO workflow_executions (instance_id, execution_id, workflow_id, status,
                                          created_at, synced_at)
             VALUES ({id}, 'ex1', 'wf1', 'SUCCEEDED', now(), now());
         INSERT INTO usage_syncs (instance_id, synced_at, window_start)
             VALUES ({id}, now(), now());
         INSERT INTO audit_log (at, actor, command, object_kind, object_name, instance_id, summary)
             VALUES (now(), 'alice', 'instance edit', 'instance', '{INSTANCE}', {id}, 'renamed');
         INSERT INTO audit_log (at, actor, command, object_kind, summary)
             VALUES (now(), 'alice', 'auth login', 'login', 'logged in');"
    ));
    amc.env.run_as("bob", &["instance", "list"]).ok();
    amc
}

fn a_member_sees_only_what_is_shared_with_them() {
    let amc = alices_world();
    let env = &amc.env;
    // A share bob may not see: alice's instance shared with carol.
    env.run_as("carol", &["instance", "list"]).ok();
    env.run(&["instance", "share", INSTANCE, "--with", "carol"])
        .ok();
    let probe = env.probe();
    for (table, filter) in ALICES {
        let n = probe.scalar(&format!("SELECT count(*) FROM {table} WHERE {filter}"));
        assert!(n > 0, "the world has rows of alice in {table}");
    }

    let mut bob = env.connect_as("bob");
    for (table, filter) in ALICES {
        assert_eq!(visible(&mut bob, table, filter), 0, "bob reads {table}");
    }
    // Changes of rows he cannot see change nothing.
    for sql in [
        "UPDATE amc_instances SET name = 'mine now'",
        "DELETE FROM amc_instances",
        "UPDATE instance_brands SET brand_name = 'Bob'",
        "DELETE FROM instance_brands",
        "DELETE FROM health_checks",
        "UPDATE credentials SET client_id = 'bob'",
        "DELETE FROM credentials",
        "UPDATE instance_shares SET role = 'operator'",
        "DELETE FROM instance_shares",
        "DELETE FROM workflows",
        "UPDATE workflow_executions SET status = 'FAILED'",
        "DELETE FROM usage_syncs",
    ] {
        assert_eq!(changed(&mut bob, sql), 0, "{sql}");
    }
    // Nor can he share alice's instance with himself, or write rows of it.
    let alice_instance = probe.rows(&format!(
        "SELECT id::text FROM amc_instances WHERE instance_id = '{INSTANCE}'"
    ))[0][0]
        .trim_matches('"')
        .to_owned();
    refused(
        &mut bob,
        &format!(
            "INSERT INTO instance_shares (instance_id, user_id, role, granted_by, created_at)
             SELECT '{alice_instance}', id, 'operator', 'bob', now() FROM users WHERE name = 'bob'"
        ),
    );
    refused(
        &mut bob,
        &format!(
            "INSERT INTO instance_brands (instance_id, brand_name, created_at)
             VALUES ('{alice_instance}', 'Bob', now())"
        ),
    );
    // The trail is append-only, even for his own entries, and in his own
    // name only.
    refused(
        &mut bob,
        "UPDATE audit_log SET summary = 'nothing happened'",
    );
    refused(&mut bob, "DELETE FROM audit_log WHERE actor = 'bob'");
    refused(
        &mut bob,
        "INSERT INTO audit_log (at, actor, command, object_kind, summary)
         VALUES (now(), 'alice', 'instance delete', 'store', 'forged')",
    );
    assert_eq!(
        changed(
            &mut bob,
            "INSERT INTO audit_log (at, actor, command, object_kind, summary)
             VALUES (now(), 'bob', 'note', 'store', 'by bob')"
        ),
        1
    );
    refused(&mut bob, "DELETE FROM audit_log WHERE actor = 'bob'");

    // Shared as viewer: he sees the instance and its rows, changes nothing.
    env.run(&["instance", "share", INSTANCE, "--with", "bob"])
        .ok();
    let mut bob = env.connect_as("bob");
    assert_eq!(visible(&mut bob, "amc_instances", "TRUE"), 1);
    assert_eq!(visible(&mut bob, "instance_brands", "TRUE"), 2);
    assert_eq!(visible(&mut bob, "health_checks", "TRUE"), 1);
    assert_eq!(visible(&mut bob, "workflow_executions", "TRUE"), 1);
    assert!(visible(&mut bob, "audit_log", "actor = 'alice'") > 0);
    assert_eq!(
        visible(&mut bob, "audit_log", "object_kind = 'login'"),
        0,
        "alice's entries about no instance stay hers"
    );
    assert_eq!(visible(&mut bob, "credentials", "TRUE"), 0);
    assert_eq!(
        visible(&mut bob, "instance_shares", "TRUE"),
        1,
        "his own share, not carol's"
    );
    for sql in [
        "UPDATE amc_instances SET description = 'seen by bob'",
        "DELETE FROM amc_instances",
        "DELETE FROM instance_brands",
        "DELETE FROM health_checks",
        "UPDATE instance_shares SET role = 'operator'",
    ] {
        assert_eq!(changed(&mut bob, sql), 0, "as viewer: {sql}");
    }

    // As operator: the description, the state and the brands, nothing else.
    env.run(&[
        "instance", "share", INSTANCE, "--with", "bob", "--role", "operator",
    ])
    .ok();
    let mut bob = env.connect_as("bob");
    assert_eq!(
        changed(
            &mut bob,
            "UPDATE amc_instances SET description = 'run by bob'"
        ),
        1
    );
    refused(&mut bob, "UPDATE amc_instances SET name = 'Bob Main'");
    refused(&mut bob, "UPDATE amc_instances SET region = 'eu'");
    assert_eq!(changed(&mut bob, "DELETE FROM amc_instances"), 0);
    assert_eq!(
        changed(&mut bob, "DELETE FROM health_checks"),
        0,
        "pruning is the owner's"
    );
    assert_eq!(
        changed(
            &mut bob,
            "INSERT INTO instance_brands (instance_id, brand_name, created_at)
             SELECT id, 'Bob', now() FROM amc_instances"
        ),
        1
    );
    assert_eq!(
        changed(&mut bob, "UPDATE instance_shares SET role = 'viewer'"),
        0
    );
    assert_eq!(visible(&mut bob, "credentials", "TRUE"), 0);
    assert_eq!(
        probe.rows(&format!(
            "SELECT name, description FROM amc_instances WHERE instance_id = '{INSTANCE}'"
        )),
        [["\"Alice Main\"", "\"run by bob\""]]
    );

    // An administrator sees every instance, and still no one's login.
    env.make_admin("root");
    let mut root = env.connect_as("root");
    assert_eq!(visible(&mut root, "amc_instances", "TRUE"), 1);
    assert_eq!(visible(&mut root, "instance_shares", "TRUE"), 2);
    assert_eq!(visible(&mut root, "credentials", "TRUE"), 0);
    assert_eq!(
        changed(&mut root, "UPDATE credentials SET client_id = 'root'"),
        0
    );
    refused(&mut root, "DELETE FROM audit_log");
    assert!(probe.count("credentials") > 0);

    // `db check` says when a table's rows are no longer guarded.
    env.run(&["db", "check"]).ok();
    probe.exec_batch(
        "ALTER TABLE workflows DISABLE ROW LEVEL SECURITY;
         DROP POLICY audit_log_select ON audit_log;
         DROP POLICY audit_log_insert ON audit_log;",
    );
    env.run(&["db", "check"]).fails(
        8,
        &[
            "row security is not enabled on table workflows",
            "table audit_log has no row security policy",
        ],
    );
}

/// The server's own policies, so PostgreSQL alone.
#[test]
fn row_security_keeps_members_to_what_is_shared_with_them() {
    pg::run_on(
        Backend::Postgres,
        a_member_sees_only_what_is_shared_with_them,
    );
}
