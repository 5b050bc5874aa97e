//! Bad input never changes the store: every invalid value and file below is
//! refused with its exit code, a JSON error on stderr, nothing on stdout, and
//! a store dump byte-identical to the one taken before.
//!
//! And the other half: text that merely looks dangerous (SQL, formulas,
//! quotes) is valid where the format allows it and is stored verbatim.

use crate::support::pg::{self, Backend};
use crate::support::*;
use serde_json::{Value, json};

const ACME: &str = "ENTITY1AA1AA11AAA1";
const GLOBEX: &str = "ENTITY2BB2BB22BBB2";

/// Where a case's file goes.
enum Input {
    /// Arguments only.
    None,
    /// Written to a scratch file whose path replaces `{file}` in the arguments.
    File(&'static str, Vec<u8>),
    /// Piped to stdin.
    Stdin(Vec<u8>),
}

struct Case {
    what: String,
    user: &'static str,
    args: Vec<String>,
    input: Input,
    code: i32,
}

impl Case {
    fn args(what: impl Into<String>, code: i32, args: &[&str]) -> Case {
        Case {
            what: what.into(),
            user: DEFAULT_USER,
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            input: Input::None,
            code,
        }
    }

    fn by(mut self, user: &'static str) -> Case {
        self.user = user;
        self
    }

    fn import(
        what: impl Into<String>,
        code: i32,
        name: &'static str,
        bytes: impl Into<Vec<u8>>,
    ) -> Case {
        Case {
            what: what.into(),
            user: DEFAULT_USER,
            args: vec!["instance".into(), "import".into(), "{file}".into()],
            input: Input::File(name, bytes.into()),
            code,
        }
    }

    fn json(what: impl Into<String>, code: i32, rows: Value) -> Case {
        Case::import(what, code, "bad.json", rows.to_string())
    }

    fn csv(what: impl Into<String>, code: i32, text: &str) -> Case {
        Case::import(what, code, "bad.csv", text)
    }

    fn with_args(mut self, extra: &[&str]) -> Case {
        self.args.extend(extra.iter().map(|s| (*s).to_owned()));
        self
    }
}

/// The machine error code of each exit code.
fn error_code(exit: i32) -> &'static str {
    match exit {
        2 => "usage",
        3 => "not_found",
        4 => "permission_denied",
        5 => "conflict",
        8 => "store",
        _ => "internal",
    }
}

/// Runs every case (each with `-o json`) and checks exit code, the JSON
/// error, an empty stdout and an unchanged store; reports all failures at once.
fn check(env: &TestEnv, what: &str, cases: Vec<Case>) {
    assert!(!cases.is_empty());
    let total = cases.len();
    let mut failures = Vec::new();
    for (n, case) in cases.into_iter().enumerate() {
        let before = env.dump();
        let file = match &case.input {
            Input::File(name, bytes) => Some(env.write_file(name, bytes)),
            _ => None,
        };
        let mut args: Vec<String> = case
            .args
            .iter()
            .map(|a| match &file {
                Some(path) if a == "{file}" => path.to_str().unwrap().to_owned(),
                _ => a.clone(),
            })
            .collect();
        args.extend(["-o".into(), "json".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = match &case.input {
            Input::Stdin(bytes) => {
                assert_eq!(case.user, DEFAULT_USER);
                env.run_stdin(&args, bytes)
            }
            _ => env.run_as(case.user, &args),
        };
        let after = env.dump();
        let mut problems = Vec::new();
        if out.code != case.code {
            problems.push(format!("exit {} instead of {}", out.code, case.code));
        }
        if !out.stdout.is_empty() {
            problems.push(format!("stdout: {:?}", out.stdout));
        }
        match serde_json::from_str::<Value>(out.stderr.trim()) {
            Ok(v)
                if v["error"]["code"] == error_code(case.code)
                    && v["error"]["message"].is_string() => {}
            _ => problems.push(format!(
                "stderr is not the expected JSON error: {:?}",
                out.stderr
            )),
        }
        if after != before {
            problems.push("the store changed".into());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "#{n} {}: {}\n    stderr: {}",
                case.what,
                problems.join("; "),
                out.stderr.trim()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{what}: {total} cases refused with the store byte-identical");
}

/// Alice owns `amcaaaaaaaa` (two brands) and `amcbbbbbbbb` (99 brands, one
/// short of the limit); bob owns `amccccccccc`; two accounts.
fn seeded() -> (TestEnv, Value, Value) {
    let env = TestEnv::new();
    env.create_account(ACME, "Acme");
    env.json(&[
        "account",
        "create",
        "--account-id",
        GLOBEX,
        "--name",
        "Globex",
        "--country",
        "DE",
    ]);
    let a = env.create_instance("amcaaaaaaaa", "Acme US", ACME, &["Acme", "Acme Kids"]);
    env.create_instance("amcbbbbbbbb", "Globex EU", GLOBEX, &[]);
    let many: Vec<String> = (1..=99).map(|i| format!("Brand {i:02}")).collect();
    let mut args = vec!["brand", "set", "amcbbbbbbbb"];
    args.extend(many.iter().map(String::as_str));
    env.run(&args).ok();
    let c = env.create_instance_as("bob", "amccccccccc", "Bob's", ACME, &["Acme"]);
    (env, a, c)
}

/// `instance create` of `instance_id` on Acme; cases append the bad part.
fn create(instance_id: &str) -> Vec<String> {
    vec![
        "instance".into(),
        "create".into(),
        format!("--instance-id={instance_id}"),
        "--account".into(),
        ACME.into(),
        "--skip-validation".into(),
    ]
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn bad_arguments_change_nothing() {
    let (env, a, _) = seeded();
    // In the team store the acting user is the database login, and users
    // are managed by administrators (SPEC section 12): naming another user
    // is exit 4 whether or not the name is a user's, and `user add|remove`
    // are run by root, an administrator, to reach their own refusals. In a
    // SQLite store `--user` picks the acting user, who must exist (exit
    // 3), and alice manages users while the store has no administrator.
    let team = pg::current() == Backend::Postgres;
    let (unknown_user, user_admin) = if team {
        env.make_admin("root");
        (4, "root")
    } else {
        (3, DEFAULT_USER)
    };
    let long = |n: usize| "x".repeat(n);
    let mut cases = Vec::new();

    // Instance IDs.
    for bad in [
        "",
        "ab",
        "AMCIBERSBLT",
        "-amcibersbl",
        "amc ibersblt",
        "amc_ibersblt",
        "amc;DROP TABLE amc_instances",
        "amc'--",
        "amcíbersblt",
        "amc\u{202E}ibersblt",
        &"a".repeat(65),
    ] {
        cases.push(Case::args(
            format!("instance ID {bad:?}"),
            2,
            &strs(&create(bad)),
        ));
    }
    // Entity IDs.
    for bad in [
        "ENTITY12345",
        "entity1AA1AA11AAA1",
        "ENTITY1AA1-AA11",
        "1AA1AA11AAA1",
        &format!("ENTITY{}", "A".repeat(41)),
        "ENTITY1AA1AA11AAA1' OR '1'='1",
    ] {
        cases.push(Case::args(
            format!("entity ID {bad:?}"),
            2,
            &[
                "account",
                "create",
                &format!("--account-id={bad}"),
                "--name",
                "New",
            ],
        ));
    }
    cases.push(Case::args(
        "edit to a bad entity ID",
        2,
        &["account", "edit", "Acme", "--account-id", "ENTITY 1AA"],
    ));
    cases.push(Case::args(
        "an unknown account",
        3,
        &[
            "instance",
            "create",
            "--instance-id",
            "amcibersblt",
            "--account",
            "ENTITY9ZZ9ZZ99ZZZ9",
            "--skip-validation",
        ],
    ));

    // Regions and countries.
    for bad in ["mars", "", "us-east-1", "NA "] {
        cases.push(Case::args(
            format!("region {bad:?}"),
            2,
            &strs(&[create("amcibersblt"), vec![format!("--region={bad}")]].concat()),
        ));
    }
    cases.push(Case::args(
        "edit to region xx",
        2,
        &["instance", "edit", "amcaaaaaaaa", "--region", "xx"],
    ));
    for bad in ["XX", "USA", "", "ÜS", "U S"] {
        cases.push(Case::args(
            format!("country {bad:?}"),
            2,
            &[
                "account",
                "create",
                "--account-id",
                "ENTITY3CC3CC33CCC3",
                "--name",
                "New",
                &format!("--country={bad}"),
            ],
        ));
    }
    cases.push(Case::args(
        "edit to country ZZ",
        2,
        &["account", "edit", "Acme", "--country", "ZZ"],
    ));

    // Control characters, bidirectional and invisible marks, blank and over-long text.
    let bad_text = [
        ("a bell", "bell\u{7}".to_owned()),
        ("a newline", "line\nbreak".to_owned()),
        ("a carriage return", "carriage\rreturn".to_owned()),
        ("a tab", "tab\there".to_owned()),
        ("an escape sequence", "\u{1b}[31mred\u{1b}[0m".to_owned()),
        ("DEL", "del\u{7f}".to_owned()),
        ("a C1 control (NEL)", "next\u{85}line".to_owned()),
        ("an RTL override", "evil\u{202E}gnp.exe".to_owned()),
        ("an LTR override", "\u{202D}lro".to_owned()),
        ("an RTL isolate", "\u{2067}isolate".to_owned()),
        ("a right-to-left mark", "\u{200F}rlm".to_owned()),
        ("an Arabic letter mark", "alm\u{061C}x".to_owned()),
        ("a zero-width space", "zero\u{200B}width".to_owned()),
        ("a byte-order mark", "\u{FEFF}bom".to_owned()),
        ("only spaces", "   ".to_owned()),
        ("nothing", String::new()),
    ];
    for (what, text) in &bad_text {
        let flag = format!("--name={text}");
        cases.push(Case::args(
            format!("instance name with {what}"),
            2,
            &["instance", "edit", "amcaaaaaaaa", &flag],
        ));
    }
    // (A blank description is valid: it clears the description.)
    for (what, text) in bad_text
        .iter()
        .step_by(2)
        .filter(|(_, t)| !t.trim().is_empty())
    {
        cases.push(Case::args(
            format!("description with {what}"),
            2,
            &[
                "instance",
                "edit",
                "amcaaaaaaaa",
                &format!("--description={text}{text}"),
            ],
        ));
        cases.push(Case::args(
            format!("brand with {what}"),
            2,
            &["brand", "add", "amcaaaaaaaa", "Fine", text],
        ));
    }
    for (what, text) in bad_text.iter().skip(1).step_by(3) {
        cases.push(Case::args(
            format!("account name with {what}"),
            2,
            &[
                "account",
                "create",
                "--account-id",
                "ENTITY3CC3CC33CCC3",
                &format!("--name={text}"),
            ],
        ));
        cases.push(Case::args(
            format!("new instance name with {what}"),
            2,
            &strs(&[create("amcibersblt"), vec![format!("--name={text}")]].concat()),
        ));
    }
    let n129 = long(129);
    let e129 = "é".repeat(129);
    let d1001 = long(1001);
    let b101 = long(101);
    cases.push(Case::args(
        "a 129-character name",
        2,
        &["instance", "edit", "amcaaaaaaaa", "--name", &n129],
    ));
    cases.push(Case::args(
        "a 129-character name in two-byte letters",
        2,
        &["instance", "edit", "amcaaaaaaaa", "--name", &e129],
    ));
    cases.push(Case::args(
        "a 1001-character description",
        2,
        &["instance", "edit", "amcaaaaaaaa", "--description", &d1001],
    ));
    cases.push(Case::args(
        "a 101-character brand",
        2,
        &["brand", "add", "amcaaaaaaaa", &b101],
    ));
    cases.push(Case::args(
        "a 129-character account name",
        2,
        &["account", "edit", "Acme", "--name", &n129],
    ));
    let many: Vec<String> = (0..101).map(|i| format!("B{i}")).collect();
    let mut set = vec!["brand", "set", "amcaaaaaaaa"];
    set.extend(strs(&many));
    cases.push(Case::args("101 brands at once", 2, &set));
    cases.push(Case::args(
        "the 100th and 101st brand",
        2,
        &["brand", "add", "amcbbbbbbbb", "One more", "Two more"],
    ));
    let mut create_many = create("amcibersblt");
    create_many.extend(many.iter().map(|b| format!("--brand={b}")));
    cases.push(Case::args(
        "an instance with 101 brands",
        2,
        &strs(&create_many),
    ));
    for bad in ["12 34", &long(65), "a/b", "ä"] {
        cases.push(Case::args(
            format!("advertiser ID {bad:?}"),
            2,
            &["account", "edit", "Acme", &format!("--advertiser-id={bad}")],
        ));
    }

    // User names.
    for bad in [
        "bad name",
        "",
        &long(65),
        "robert'); drop table users;--",
        "ünï",
    ] {
        cases.push(Case::args(
            format!("user name {bad:?}"),
            2,
            &["user", "add", bad],
        ));
    }
    cases.push(Case::args(
        "acting as an unknown, SQL-looking user",
        unknown_user,
        &["--user", "x'; DROP TABLE users;--", "instance", "list"],
    ));
    cases.push(Case::args(
        "creating for an unknown user",
        unknown_user,
        &strs(
            &[
                vec!["--user".into(), "nobody".into()],
                create("amcibersblt"),
            ]
            .concat(),
        ),
    ));

    // Valid values that collide with what is there.
    cases.push(Case::args(
        "a second account with an entity ID",
        5,
        &["account", "create", "--account-id", ACME, "--name", "Dup"],
    ));
    cases.push(Case::args(
        "a rename together with a taken entity ID",
        5,
        &[
            "account",
            "edit",
            "Globex",
            "--name",
            "Renamed",
            "--account-id",
            ACME,
        ],
    ));
    cases.push(Case::args(
        "a second instance with an instance ID",
        5,
        &strs(&create("amcaaaaaaaa")),
    ));
    cases.push(Case::args(
        "deleting a linked account",
        5,
        &["account", "delete", "Acme", "--yes"],
    ));
    cases.push(
        Case::args(
            "removing a user who owns instances",
            5,
            &["user", "remove", "alice", "--yes"],
        )
        .by(user_admin),
    );
    cases.push(Case::args("adding an existing user", 5, &["user", "add", "bob"]).by(user_admin));
    if team {
        // A member naming another, registered user; a member managing users.
        cases.push(Case::args(
            "acting as another user of the team store",
            4,
            &["--user", "bob", "instance", "list"],
        ));
        cases.push(Case::args(
            "a member removing a user",
            4,
            &["user", "remove", "bob", "--yes"],
        ));
        cases.push(Case::args(
            "a member adding a user",
            4,
            &["user", "add", "bob"],
        ));
    }
    cases.push(Case::args(
        "removing a brand present and one absent",
        3,
        &["brand", "remove", "amcaaaaaaaa", "Acme", "Nope"],
    ));
    cases.push(Case::args(
        "a valid rename with an unknown account",
        3,
        &[
            "instance",
            "edit",
            "amcaaaaaaaa",
            "--name",
            "Renamed",
            "--account",
            "Nope",
        ],
    ));
    cases.push(Case::args(
        "a reference to nothing",
        3,
        &["instance", "delete", "amczzzzzzzz", "--yes"],
    ));
    cases.push(Case::args(
        "an ID a character short",
        3,
        &["instance", "delete", "amcaaaaaaa", "--yes"],
    ));
    cases.push(Case::args(
        "a SQL wildcard as a reference",
        3,
        &["instance", "delete", "%", "--yes"],
    ));
    cases.push(Case::args(
        "a SQL injection as a reference",
        3,
        &["instance", "delete", "' OR '1'='1", "--yes"],
    ));
    cases.push(
        Case::args(
            "bob renames alice's instance",
            4,
            &[
                "instance",
                "edit",
                a["id"].as_str().unwrap(),
                "--name",
                "Mine",
            ],
        )
        .by("bob"),
    );
    cases.push(
        Case::args(
            "bob clears alice's brands",
            4,
            &["brand", "clear", "amcaaaaaaaa", "--yes"],
        )
        .by("bob"),
    );

    // Flags that do not exist or need a value.
    cases.push(Case::args(
        "an unknown flag",
        2,
        &["instance", "delete", "amcaaaaaaaa", "--force"],
    ));
    cases.push(Case::args(
        "a flag without its value",
        2,
        &["instance", "edit", "amcaaaaaaaa", "--name"],
    ));
    cases.push(Case::args(
        "a delete without --yes",
        2,
        &["instance", "delete", "amcaaaaaaaa"],
    ));

    assert!(cases.len() >= 100, "{} cases", cases.len());
    check(&env, "bad arguments", cases);
}

/// One valid import row; tests break one field at a time.
fn row(instance_id: &str) -> Value {
    json!({
        "instance_id": instance_id,
        "name": "Imported",
        "region": "na",
        "account": {"account_id": ACME},
    })
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn bad_json_imports_change_nothing() {
    let (env, a, c) = seeded();
    let good = row("amcnewnew01");
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    let mut cases = vec![
        Case::import("not JSON at all", 2, "a.json", "hello"),
        Case::import("an empty file", 2, "a.json", ""),
        Case::import("truncated JSON", 2, "a.json", r#"[{"instance_id": "amcnewnew01", "na"#),
        Case::import("trailing garbage", 2, "a.json", format!("[{good}] x")),
        Case::import("one object, not an array", 2, "a.json", good.to_string()),
        Case::import("null", 2, "a.json", "null"),
        Case::json("an array of numbers", 2, json!([1, 2])),
        Case::json("an array of arrays", 2, json!([[good.clone()]])),
        Case::import("nesting 10,000 deep", 2, "a.json", nested(10_000)),
        Case::import(
            "nesting 5,000 deep inside a field",
            2,
            "a.json",
            format!(r#"[{{"instance_id":"amcnewnew01","name":{}}}]"#, nested(5_000)),
        ),
        Case::import("bytes that are not UTF-8", 2, "a.json", b"[{\"name\": \"\xff\xfe\xfd\"}]".to_vec()),
        Case::import("UTF-16 with a byte-order mark", 2, "a.json", {
            let mut bytes = vec![0xff, 0xfe];
            bytes.extend(format!("[{good}]").encode_utf16().flat_map(u16::to_le_bytes));
            bytes
        }),
        Case::import("Latin-1 text", 2, "a.json", b"[{\"instance_id\":\"amcnewnew01\",\"name\":\"Caf\xe9\",\"region\":\"na\",\"account\":{\"account_id\":\"ENTITY1AA1AA11AAA1\"}}]".to_vec()),
        Case::json("instance_id a number", 2, json!([with(good.clone(), "instance_id", json!(5))])),
        Case::json("brands a string", 2, json!([with(good.clone(), "brands", json!("Acme"))])),
        Case::json("is_active a string", 2, json!([with(good.clone(), "is_active", json!("yes"))])),
        Case::json("no name", 2, json!([{"instance_id": "amcnewnew01", "region": "na", "account": {"account_id": ACME}}])),
        Case::json("no instance_id", 2, json!([{"name": "X", "region": "na", "account": {"account_id": ACME}}])),
        Case::json("no account", 2, json!([{"instance_id": "amcnewnew01", "name": "X", "region": "na"}])),
        Case::json("no region", 2, json!([{"instance_id": "amcnewnew01", "name": "X", "account": {"account_id": ACME}}])),
        Case::json("a bad instance_id", 2, json!([row("AMC!")])),
        Case::json("a bad entity ID", 2, json!([with(good.clone(), "account", json!({"account_id": "ENTITY1"}))])),
        Case::json("an unknown region", 2, json!([with(good.clone(), "region", json!("mars"))])),
        Case::json("an unknown status", 2, json!([with(good.clone(), "status", json!("RUNNING"))])),
        Case::json(
            "is_active contradicting the status",
            2,
            json!([with(with(good.clone(), "status", json!("ACTIVE")), "is_active", json!(false))]),
        ),
        Case::json("a time that is not RFC 3339", 2, json!([with(good.clone(), "created_at", json!("yesterday"))])),
        Case::json("an unknown health status", 2, json!([with(good.clone(), "health", json!({"status": "FINE"}))])),
        Case::json("a negative latency", 2, json!([with(good.clone(), "health", json!({"latency_ms": -1}))])),
        Case::json("an ftp endpoint", 2, json!([with(good.clone(), "api_endpoint", json!("ftp://amc.example.test"))])),
        Case::json("a javascript: endpoint", 2, json!([with(good.clone(), "api_endpoint", json!("javascript:alert(1)"))])),
        Case::json("an RTL override in a description", 2, json!([with(good.clone(), "description", json!("a\u{202E}b"))])),
        Case::json("a NUL in a name", 2, json!([with(good.clone(), "name", json!("nul\u{0}name"))])),
        Case::json("a 100,000-character name", 2, json!([with(good.clone(), "name", json!("n".repeat(100_000)))])),
        Case::json("an empty brand", 2, json!([with(good.clone(), "brands", json!(["A", ""]))])),
        Case::json(
            "101 brands",
            2,
            json!([with(good.clone(), "brands", json!((0..101).map(|i| format!("B{i}")).collect::<Vec<_>>()))]),
        ),
        Case::json("an id that is not a UUID", 2, json!([with(good.clone(), "id", json!("1234"))])),
        Case::json(
            "an account id that is not a UUID",
            2,
            json!([with(good.clone(), "account", json!({"id": "x", "account_id": "ENTITY4DD4DD44DDD4", "account_name": "N"}))]),
        ),
        Case::json(
            "an unknown country for a new account",
            2,
            json!([with(good.clone(), "account", json!({"account_id": "ENTITY4DD4DD44DDD4", "account_name": "N", "country_code": "XX"}))]),
        ),
        Case::json("the same instance twice", 2, json!([good.clone(), with(good.clone(), "name", json!("Twice"))])),
        Case::json("a good row and a bad one", 2, json!([good.clone(), row("BAD")])),
        Case::json(
            "an unknown account, without a name to create it",
            3,
            json!([good.clone(), with(row("amcnewnew02"), "account", json!({"account_id": "ENTITY9ZZ9ZZ99ZZZ9"}))]),
        ),
        Case::json(
            "two new instances sharing one row id",
            5,
            json!([
                with(good.clone(), "id", json!("0b7c6c1e-0000-4000-8000-000000000001")),
                with(row("amcnewnew02"), "id", json!("0b7c6c1e-0000-4000-8000-000000000001")),
            ]),
        ),
        Case::json("a new instance with bob's row id", 5, json!([good.clone(), with(row("amcnewnew02"), "id", c["id"].clone())])),
        Case::json(
            "a new account with an existing account's row id",
            5,
            json!([with(good.clone(), "account", json!({"id": a["account"]["id"], "account_id": "ENTITY4DD4DD44DDD4", "account_name": "N"}))]),
        ),
        Case::import("a file that does not exist", 2, "a.json", "[]").with_args(&["--format", "json"]),
    ];
    // The path of that last case points nowhere.
    if let Some(last) = cases.last_mut() {
        last.args[2] = env
            .scratch()
            .join("missing.json")
            .to_str()
            .unwrap()
            .to_owned();
    }
    cases.push(
        Case::import(
            "JSON read as CSV",
            2,
            "a.json",
            json!([good.clone()]).to_string(),
        )
        .with_args(&["--format", "csv"]),
    );
    cases.push(Case {
        what: "bad JSON on stdin".into(),
        user: DEFAULT_USER,
        args: vec!["instance".into(), "import".into(), "-".into()],
        input: Input::Stdin(b"[{\"instance_id\": }]".to_vec()),
        code: 2,
    });
    let mut dry = Case::json("a dry run of a bad file", 2, json!([row("BAD")]));
    dry.args.push("--dry-run".into());
    cases.push(dry);
    check(&env, "bad JSON imports", cases);
}

fn bad_csv_imports_change_nothing() {
    let (env, _, _) = seeded();
    const HEAD: &str = "instance_id,name,region,account_id\n";
    let csv = |rows: &str| format!("{HEAD}{rows}");
    let cases = vec![
        Case::csv(
            "an unknown column",
            2,
            "instance_id,name,region,account_id,colour\namcnewnew01,N,na,ENTITY1AA1AA11AAA1,red\n",
        ),
        Case::csv(
            "a row with too many fields",
            2,
            &csv("amcnewnew01,N,na,ENTITY1AA1AA11AAA1,extra\n"),
        ),
        Case::csv("a row with too few fields", 2, &csv("amcnewnew01,N,na\n")),
        Case::csv(
            "no instance_id column",
            2,
            "name,region,account_id\nN,na,ENTITY1AA1AA11AAA1\n",
        ),
        Case::csv(
            "an empty instance_id",
            2,
            &csv(",N,na,ENTITY1AA1AA11AAA1\n"),
        ),
        Case::csv(
            "a bad instance_id on line 3",
            2,
            &csv("amcnewnew01,N,na,ENTITY1AA1AA11AAA1\nAMC NEW,N,na,ENTITY1AA1AA11AAA1\n"),
        ),
        Case::csv(
            "an unknown region",
            2,
            &csv("amcnewnew01,N,mars,ENTITY1AA1AA11AAA1\n"),
        ),
        Case::csv("a bad entity ID", 2, &csv("amcnewnew01,N,na,ENTITYx\n")),
        Case::csv(
            "is_active yes",
            2,
            "instance_id,name,region,account_id,is_active\namcnewnew01,N,na,ENTITY1AA1AA11AAA1,yes\n",
        ),
        Case::csv(
            "a latency that is not a number",
            2,
            "instance_id,name,region,account_id,health_latency_ms\namcnewnew01,N,na,ENTITY1AA1AA11AAA1,fast\n",
        ),
        Case::csv(
            "the same instance twice",
            2,
            &csv("amcnewnew01,N,na,ENTITY1AA1AA11AAA1\namcnewnew01,M,na,ENTITY1AA1AA11AAA1\n"),
        ),
        Case::csv(
            "a bell in a quoted name",
            2,
            &csv("amcnewnew01,\"a\u{7}b\",na,ENTITY1AA1AA11AAA1\n"),
        ),
        Case::csv(
            "a newline in a quoted name",
            2,
            &csv("amcnewnew01,\"two\nlines\",na,ENTITY1AA1AA11AAA1\n"),
        ),
        Case::csv(
            "an RTL override in a name",
            2,
            &csv("amcnewnew01,a\u{202E}b,na,ENTITY1AA1AA11AAA1\n"),
        ),
        Case::csv(
            "an empty brand between separators",
            2,
            "instance_id,name,region,account_id,brands\namcnewnew01,N,na,ENTITY1AA1AA11AAA1,A;;B\n",
        ),
        Case::csv(
            "an unterminated quote",
            2,
            &csv("amcnewnew01,\"Unclosed,na,ENTITY1AA1AA11AAA1\n"),
        ),
        Case::csv(
            "an unknown account",
            3,
            &csv("amcnewnew01,N,na,ENTITY9ZZ9ZZ99ZZZ9\n"),
        ),
        Case::import(
            "CSV bytes that are not UTF-8",
            2,
            "bad.csv",
            b"instance_id,name,region,account_id\namcnewnew01,\xff\xfe,na,ENTITY1AA1AA11AAA1\n"
                .to_vec(),
        ),
        Case::import(
            "CSV read as JSON",
            2,
            "bad.txt",
            csv("amcnewnew01,N,na,ENTITY1AA1AA11AAA1\n"),
        ),
        Case {
            what: "bad CSV on stdin".into(),
            user: DEFAULT_USER,
            args: ["instance", "import", "-", "--format", "csv"]
                .map(String::from)
                .to_vec(),
            input: Input::Stdin(csv("amcnewnew01,N,nowhere,ENTITY1AA1AA11AAA1\n").into_bytes()),
            code: 2,
        },
    ];
    check(&env, "bad CSV imports", cases);
}

/// Ten thousand bad rows are not ten thousand lines on a terminal: the first
/// 20 and a count of the rest by reason; `-o json` keeps every one.
fn many_bad_rows_are_summarised_and_listed_in_full_as_json() {
    let (env, _, _) = seeded();
    let mut text = String::from("instance_id,name,region,account_id\n");
    for i in 0..10_000 {
        text.push_str(&format!("amc{i:08x},N,na,ENTITY1NOSUCHACCT\n"));
    }
    let file = env.write_file("unknown.csv", text);
    let before = env.dump();
    let path = file.to_str().unwrap();
    let out = env.run(&["instance", "import", path]).code(3);
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 22, "{}", out.stderr);
    assert!(lines[0].contains("10000 problem(s)"), "{}", lines[0]);
    assert!(lines[1].contains("line 2: unknown account ENTITY1NOSUCHACCT"));
    assert_eq!(
        lines[21].trim(),
        "and 9,980 more: unknown account ENTITY1NOSUCHACCT (9,980)"
    );
    let err = env
        .run(&["instance", "import", path, "-o", "json"])
        .code(3)
        .error_json();
    let problems = err["problems"].as_array().expect("a problems array");
    assert_eq!(problems.len(), 10_000);
    assert!(
        problems[9_999]
            .as_str()
            .unwrap()
            .starts_with("line 10001: ")
    );
    env.assert_unchanged(&before, "a file of unknown accounts");
}

fn bad_input_reports_every_problem_with_its_position() {
    let (env, _, _) = seeded();
    let file = env.write_file(
        "rows.csv",
        "instance_id,name,region,account_id,is_active\n\
         amcnewnew01,Fine,na,ENTITY1AA1AA11AAA1,true\n\
         BAD,N,na,ENTITY1AA1AA11AAA1,true\n\
         amcnewnew02,N,mars,ENTITY1AA1AA11AAA1,\n\
         amcnewnew01,Again,na,ENTITY1AA1AA11AAA1,\n\
         amcnewnew03,N,na,ENTITY1AA1AA11AAA1,maybe\n",
    );
    let before = env.dump();
    let err = env
        .run(&["instance", "import", file.to_str().unwrap(), "-o", "json"])
        .code(2)
        .error_json();
    let message = err["message"].as_str().unwrap();
    for needle in [
        "4 problem(s)",
        "line 3",
        "instance_id",
        "line 4",
        "region",
        "line 5",
        "duplicate",
        "line 6",
        "is_active",
    ] {
        assert!(message.contains(needle), "{needle:?} in {message}");
    }
    env.assert_unchanged(&before, "a file with problems");

    let file = env.write_file(
        "rows.json",
        json!([
            row("amcnewnew01"),
            with(row("amcnewnew02"), "status", json!("NOPE")),
            row("x"),
            with(row("amcnewnew03"), "brands", json!("not a list")),
            with(row("amcnewnew04"), "region", json!("mars")),
        ])
        .to_string(),
    );
    let err = env
        .run(&["instance", "import", file.to_str().unwrap(), "-o", "json"])
        .code(2)
        .error_json();
    let message = err["message"].as_str().unwrap();
    // A row of the wrong type does not hide the problems of the others.
    assert!(message.contains("4 problem(s)"), "{message}");
    let lines: Vec<&str> = message.lines().skip(1).map(str::trim).collect();
    assert_eq!(lines.len(), 4, "{message}");
    for (line, (pos, what)) in lines.iter().zip([
        ("[1]", "status"),
        ("[2]", "instance_id"),
        ("[3]", "invalid type"),
        ("[4]", "region"),
    ]) {
        assert!(line.starts_with(pos) && line.contains(what), "{line}");
    }
    env.assert_unchanged(&before, "a file with problems");
}

fn text_that_only_looks_dangerous_is_valid_and_stored_verbatim() {
    let (env, _, _) = seeded();
    let cases = [
        "Robert'); DROP TABLE users;--",
        "' OR '1'='1",
        "\"; DELETE FROM amc_instances; --",
        "50% off_sale\\",
        "=HYPERLINK(\"http://x.test\")",
        "+1 (555) 010",
        "-minus",
        "@mention",
        "'=quoted formula",
        "<script>alert(1)</script>",
        "ÄÖÜ 漢字 עברית العربية 🙂",
        &"é".repeat(100),
    ];
    for (n, text) in cases.iter().enumerate() {
        let iid = format!("amcvalid{n:03}");
        let i = env.json(&[
            "instance",
            "create",
            &format!("--instance-id={iid}"),
            &format!("--name={text}"),
            &format!("--description={text}"),
            &format!("--brand={text}"),
            "--account",
            ACME,
            "--skip-validation",
        ]);
        assert_eq!(i["name"], *text);
        assert_eq!(i["description"], *text);
        assert_eq!(i["brands"], json!([text]));
        assert_eq!(
            env.probe().rows(&format!(
                "SELECT name, description FROM amc_instances WHERE instance_id = '{iid}'"
            )),
            [[format!("{text:?}"), format!("{text:?}")]]
        );
        assert_eq!(env.json(&["instance", "show", &iid]), i);
    }
    // The longest name is 128 characters, counted as characters, not bytes.
    let longest = "é".repeat(128);
    let e = env.json(&["instance", "edit", "amcvalid000", "--name", &longest]);
    assert_eq!(e["name"], longest);
    env.run(&["instance", "edit", "amcvalid000", "--name", cases[0]])
        .ok();
    // Every table is still there, with the rows it had.
    assert_eq!(env.probe().count("users"), 2);
    assert_eq!(env.probe().count("amc_instances"), 3 + cases.len() as i64);
    // An instance can be found by such a name, too.
    let found = env.json(&["instance", "show", cases[0]]);
    assert_eq!(found["instance_id"], "amcvalid000");

    // And both export formats carry them through a round trip unchanged:
    // the same file again, and the same instances (compared as JSON, which
    // holds every value exactly).
    let as_json = env.run(&["instance", "export"]).ok().stdout;
    for format in ["json", "csv"] {
        let exported = env
            .run(&["instance", "export", "--format", format])
            .ok()
            .stdout;
        let fresh = TestEnv::new();
        fresh
            .run_stdin(&["instance", "import", "-", "--format", format], &exported)
            .ok();
        let again = fresh
            .run(&["instance", "export", "--format", format])
            .ok()
            .stdout;
        assert_lines_eq(
            &exported,
            &again,
            format!("{format} export, import, export"),
        );
        let again = fresh.run(&["instance", "export"]).ok().stdout;
        assert_lines_eq(
            &as_json,
            &again,
            format!("the instances after a {format} round trip"),
        );
    }
}

crate::on_both_backends!(
    bad_arguments_change_nothing,
    bad_json_imports_change_nothing,
    bad_csv_imports_change_nothing,
    many_bad_rows_are_summarised_and_listed_in_full_as_json,
    bad_input_reports_every_problem_with_its_position,
    text_that_only_looks_dangerous_is_valid_and_stored_verbatim,
);
