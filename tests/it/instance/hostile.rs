//! Hostile input: property tests over the validators, the import parsers
//! and the config parser (no panic on any input, and what they accept has
//! the promised shape); the same through the binary (the reference
//! resolver answers 2, 3 or 4, and every rejection leaves the store
//! byte-identical); a corpus of hand-picked bad inputs (shell and SQL
//! fragments, confusables, bidirectional marks, NUL bytes in files, huge
//! lines, deep nesting, CSV injection); and CSV formula injection
//! neutralised on export and undone on import.

use crate::support::*;
use amcctl::domain::{self, Country, EntityId, InstanceId};
use amcctl::transfer::{self, FileFormat, csv_columns};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, FileFailurePersistence, TestCaseError};
use serde_json::Value;

const ACME: &str = "ENTITY1AA1AA11AAA1";

/// Characters that hide or reorder text (Trojan Source), or break a line:
/// a one-line field must never hold one.
const INVISIBLE: &[char] = &[
    '\u{00AD}', '\u{034F}', '\u{115F}', '\u{1160}', '\u{17B4}', '\u{17B5}', '\u{3164}', '\u{FFA0}',
    '\u{061C}', '\u{180E}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{200E}', '\u{200F}', '\u{2028}',
    '\u{2029}', '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2060}', '\u{2061}',
    '\u{2062}', '\u{2063}', '\u{2064}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{FEFF}',
];

/// Whether a one-line text field must refuse `v`.
fn must_refuse(v: &str) -> bool {
    v.trim().is_empty() || v.chars().any(|c| c.is_control() || INVISIBLE.contains(&c))
}

/// Text built from characters that tend to break things, and any others.
fn nasty_text(max: usize) -> impl Strategy<Value = String> {
    let palette: Vec<char> = "aZ09 -_.,;:'\"`$|&<>(){}[]\\/%=+@#*?!~^\t\n\r\u{0}\u{7f}\u{85}\u{a0}\
        \u{200b}\u{202e}\u{2066}\u{061c}\u{2028}\u{feff}\u{0301}\u{0430}\u{0456}\u{ff21}\u{1f600}é漢"
        .chars()
        .collect();
    prop::collection::vec(
        prop_oneof![3 => prop::sample::select(palette), 1 => any::<char>()],
        0..max,
    )
    .prop_map(String::from_iter)
}

/// Text for argv: anything but NUL, which argv cannot carry.
fn argv_text(max: usize) -> impl Strategy<Value = String> {
    nasty_text(max).prop_map(|s| s.replace('\0', ""))
}

fn fast() -> ProptestConfig {
    ProptestConfig {
        cases: 512,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

/// For properties that run the binary: few cases, each several processes.
fn slow() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------ the library

proptest! {
    #![proptest_config(fast())]

    #[test]
    fn validators_never_panic_and_accept_only_their_shape(s in prop_oneof![any::<String>(), nasty_text(200)]) {
        if let Ok(id) = InstanceId::parse(&s) {
            let t = s.trim();
            prop_assert_eq!(id.as_str(), t);
            prop_assert!((3..=64).contains(&t.len()));
            prop_assert!(t.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'));
            prop_assert!(!t.starts_with('-'));
            let _ = id.has_usual_shape();
        }
        if let Ok(e) = EntityId::parse(&s) {
            let rest = e.as_str().strip_prefix("ENTITY").expect("ENTITY prefix");
            prop_assert!((6..=40).contains(&rest.len()));
            prop_assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()));
        }
        if let Ok(c) = Country::parse(&s) {
            prop_assert_eq!(Country::from_marketplace(c.marketplace_id()), Some(c));
        }
        for (max, parsed) in [
            (domain::MAX_NAME, domain::parse_name("name", &s)),
            (domain::MAX_DESCRIPTION, domain::parse_description(&s)),
        ] {
            match parsed {
                Ok(v) => {
                    prop_assert_eq!(v.as_str(), s.trim());
                    prop_assert!(v.chars().count() <= max);
                    prop_assert!(!must_refuse(&v), "accepted {:?}", v);
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
        }
        let brands: Vec<&str> = s.split(',').collect();
        if let Ok(b) = domain::parse_brands(&brands) {
            prop_assert!(b.len() <= domain::MAX_BRANDS);
            prop_assert!(b.iter().all(|b| !must_refuse(b)));
        }
        if let Ok(Some(a)) = domain::parse_advertiser_id(&s) {
            prop_assert!(a.len() <= 64);
        }
        let _ = s.parse::<domain::RowId>();
        let _ = s.parse::<domain::Region>();
        let _ = s.parse::<domain::InstanceStatus>();
        let _ = s.parse::<domain::HealthStatus>();
        if let Ok(ep) = transfer::parse_endpoint(&s) {
            prop_assert!(ep.starts_with("http://") || ep.starts_with("https://"));
        }
        let _ = amcctl::config::parse_duration(&s);
        if let Ok(r) = s.trim().parse::<f64>() {
            let _ = amcctl::config::check_rate(r);
        }
    }

    #[test]
    fn the_import_parsers_never_panic_on_any_text(s in prop_oneof![any::<String>(), nasty_text(400)]) {
        for format in [FileFormat::Csv, FileFormat::Json] {
            if let Ok(rows) = transfer::parse(&s, format) {
                for r in rows {
                    prop_assert!(InstanceId::parse(r.instance.instance_id.as_str()).is_ok());
                    prop_assert!(!must_refuse(&r.instance.name));
                }
            }
        }
        let _ = transfer::parse(&format!("instance_id,name\n{s}"), FileFormat::Csv);
        let _ = transfer::parse(&format!("[{s}]"), FileFormat::Json);
    }

    #[test]
    fn the_json_import_never_panics_on_any_json(v in json_value()) {
        let text = v.to_string();
        let _ = transfer::parse(&text, FileFormat::Json);
        let _ = transfer::parse(&format!("[{text}]"), FileFormat::Json);
        // As an instance's fields, and as its nested objects.
        for key in ["instance_id", "name", "brands", "account", "health", "is_active", "id"] {
            let mut row = serde_json::json!({
                "instance_id": "amcaaaaaaaa", "name": "A", "region": "na",
                "account": {"account_id": ACME, "account_name": "Acme"}
            });
            row[key] = v.clone();
            let _ = transfer::parse(&Value::Array(vec![row]).to_string(), FileFormat::Json);
        }
    }

    #[test]
    fn the_csv_import_never_panics_on_any_table(
        columns in prop::collection::vec(
            prop_oneof![4 => prop::sample::select(csv_columns()), 1 => nasty_text(12)],
            0..12),
        rows in prop::collection::vec(prop::collection::vec(nasty_text(40), 0..14), 0..6),
    ) {
        let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
        w.write_record(&columns).expect("header");
        for r in &rows {
            w.write_record(r).expect("row");
        }
        let text = String::from_utf8(w.into_inner().expect("csv")).expect("utf-8");
        if let Ok(parsed) = transfer::parse(&text, FileFormat::Csv) {
            prop_assert!(parsed.len() <= rows.len());
            for r in parsed {
                prop_assert!(!must_refuse(&r.instance.name), "accepted {:?}", r.instance.name);
                prop_assert!(r.instance.brands.iter().all(|b| !must_refuse(b)));
            }
        }
    }

    #[test]
    fn the_config_parser_never_panics(
        s in prop_oneof![any::<String>(), nasty_text(200), config_text()]
    ) {
        if let Ok(c) = amcctl::config::Config::parse(&s) {
            if let Some(n) = c.concurrency {
                prop_assert!(amcctl::config::check_concurrency(n).is_ok());
            }
            if let Some(t) = c.timeout {
                prop_assert!(amcctl::config::parse_duration(&t).is_ok());
            }
        }
    }
}

/// Any JSON value, nested up to a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        nasty_text(30).prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![prop::sample::select(csv_columns()), nasty_text(10)],
                inner,
                0..8
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Lines that look like the config file, with values of every kind.
fn config_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "user",
        "output",
        "region",
        "concurrency",
        "rate",
        "timeout",
        "colour",
    ]);
    let value = prop_oneof![
        nasty_text(20).prop_map(|s| format!("{s:?}")),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        Just("[1, 2]".to_owned()),
        Just("{ a = 1 }".to_owned()),
        nasty_text(10),
    ];
    prop::collection::vec((key, value), 0..6)
        .prop_map(|lines| lines.iter().map(|(k, v)| format!("{k} = {v}\n")).collect())
}

// ------------------------------------------------------------- the binary

/// Alice owns `amcaaaaaaaa` ("Alice Main"); bob owns `amcbbbbbbbb`.
fn seeded() -> TestEnv {
    let env = TestEnv::new();
    env.create_account(ACME, "Acme");
    env.create_instance("amcaaaaaaaa", "Alice Main", "Acme", &["Acme"]);
    env.create_instance_as("bob", "amcbbbbbbbb", "Bob Main", "Acme", &[]);
    env
}

#[track_caller]
fn assert_no_crash(out: &Output) {
    assert!(
        !out.stderr.contains("panicked") && ![1, 101, -1].contains(&out.code),
        "amcctl {:?} crashed (exit {}):\n{}",
        out.args,
        out.code,
        out.stderr
    );
}

/// A reference to nothing of alice's: arbitrary text, or a real one bent.
fn foreign_reference() -> impl Strategy<Value = String> {
    let real = prop::sample::select(vec![
        "amcaaaaaaaa",
        "Alice Main",
        "amcbbbbbbbb",
        "Bob Main",
        "ENTITY1AA1AA11AAA1",
    ]);
    prop_oneof![
        argv_text(80),
        (real, argv_text(3), 0usize..12).prop_map(|(r, bend, at)| {
            let at = r.char_indices().nth(at).map_or(r.len(), |(i, _)| i);
            format!("{}{bend}{}", &r[..at], &r[at..])
        }),
        Just("amcbbbbbbbb".to_owned()),
        Just("%".to_owned()),
        Just("' OR 1=1 --".to_owned()),
    ]
}

/// Runs a property that needs the binary and a seeded store, with few cases.
fn check_binary<S: Strategy>(
    strategy: S,
    test: impl Fn(&TestEnv, &str, S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: std::fmt::Debug,
{
    let env = seeded();
    let seed_dump = env.dump();
    let mut runner = proptest::test_runner::TestRunner::new(slow());
    if let Err(e) = runner.run(&strategy, |v| test(&env, &seed_dump, v)) {
        panic!("{e}");
    }
}

fn instance_show_of_anything_is_2_3_or_4_and_changes_nothing() {
    let references = foreign_reference().prop_filter("alice's own", |r| {
        !["amcaaaaaaaa", "Alice Main"].contains(&r.trim())
    });
    check_binary(references, |env, _, reference| {
        let before = env.dump();
        for args in [
            vec!["instance", "show", "--", reference.as_str()],
            vec!["instance", "show", reference.as_str()],
            vec!["health", "history", "--", reference.as_str()],
        ] {
            let out = env.run(&args);
            assert_no_crash(&out);
            prop_assert!(
                [2, 3, 4].contains(&out.code),
                "{:?}: exit {}\n{}",
                args,
                out.code,
                out.stderr
            );
            if ["amcbbbbbbbb", "Bob Main"].contains(&reference.trim()) {
                prop_assert_eq!(out.code, 4);
            }
            env.assert_unchanged(&before, format!("{args:?}"));
        }
        Ok(())
    });
}

fn a_rejected_change_leaves_the_store_byte_identical() {
    check_binary(
        (argv_text(140), 0usize..6),
        |env, seed_dump, (value, field)| {
            let before = env.dump();
            let brands = "SELECT b.brand_name FROM instance_brands b JOIN amc_instances i
                      ON i.id = b.instance_id WHERE i.instance_id = 'amcaaaaaaaa'";
            let (args, stored): (Vec<String>, Option<String>) = match field {
                0 => (
                    vec![
                        "instance".into(),
                        "create".into(),
                        format!("--instance-id={value}"),
                        "--account=Acme".into(),
                        "--skip-validation".into(),
                    ],
                    None,
                ),
                1 => (
                    vec![
                        "instance".into(),
                        "edit".into(),
                        "amcaaaaaaaa".into(),
                        format!("--name={value}"),
                    ],
                    Some("SELECT name FROM amc_instances WHERE instance_id = 'amcaaaaaaaa'".into()),
                ),
                2 => (
                    vec![
                        "instance".into(),
                        "edit".into(),
                        "amcaaaaaaaa".into(),
                        format!("--description={value}"),
                    ],
                    Some(
                        "SELECT description FROM amc_instances WHERE instance_id = 'amcaaaaaaaa'"
                            .into(),
                    ),
                ),
                3 => (
                    vec![
                        "brand".into(),
                        "set".into(),
                        "amcaaaaaaaa".into(),
                        "--".into(),
                        value.clone(),
                    ],
                    Some(brands.into()),
                ),
                4 => (
                    vec![
                        "account".into(),
                        "edit".into(),
                        ACME.into(),
                        format!("--name={value}"),
                    ],
                    Some(format!(
                        "SELECT account_name FROM amc_accounts WHERE account_id = '{ACME}'"
                    )),
                ),
                _ => (
                    vec![
                        "account".into(),
                        "create".into(),
                        format!("--account-id={value}"),
                        "--name=X".into(),
                    ],
                    None,
                ),
            };
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = env.run(&argv);
            assert_no_crash(&out);
            if out.code == 0 {
                // Accepted: stored exactly as given, give or take the trim.
                if let Some(sql) = stored {
                    if field == 2 && value.trim().is_empty() {
                        // `--description ""` clears the description.
                        prop_assert_eq!(env.probe().rows(&sql), vec![vec!["NULL".to_owned()]]);
                    } else {
                        prop_assert!(!must_refuse(value.trim()), "accepted {:?}", value);
                        prop_assert_eq!(
                            env.probe().rows(&sql),
                            vec![vec![format!("{:?}", value.trim())]]
                        );
                    }
                }
                reset_seeded(env, seed_dump);
            } else {
                prop_assert!(
                    [2, 3, 5].contains(&out.code),
                    "{:?}: exit {}\n{}",
                    argv,
                    out.code,
                    out.stderr
                );
                env.assert_unchanged(&before, format!("{argv:?}"));
            }
            Ok(())
        },
    );
}

fn an_import_of_arbitrary_bytes_is_all_or_nothing() {
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..400),
        nasty_text(300).prop_map(String::into_bytes),
        nasty_text(200).prop_map(|s| {
            format!("instance_id,name,region,account_id\namcxxxxxxxx,{s},na,{ACME}\n").into_bytes()
        }),
    ];
    check_binary(
        (bytes, any::<bool>()),
        |env, seed_dump, (bytes, csv_format)| {
            let before = env.dump();
            let file = env.write_file(if csv_format { "in.csv" } else { "in.json" }, &bytes);
            let out = env.run(&["instance", "import", file.to_str().expect("path")]);
            assert_no_crash(&out);
            if out.code == 0 {
                assert_import_stored(env, &file);
                reset_seeded(env, seed_dump);
            } else {
                prop_assert!(
                    [2, 3, 5].contains(&out.code),
                    "exit {}\n{}",
                    out.code,
                    out.stderr
                );
                env.assert_unchanged(&before, "a rejected import");
            }
            Ok(())
        },
    );
}

/// Puts the seeded store back after a case that was allowed to change it.
/// An accepted import stored what its file says: the same file again
/// finds every row as stored (nothing to create or update).
#[track_caller]
fn assert_import_stored(env: &TestEnv, file: &std::path::Path) {
    let path = file.to_str().expect("path");
    let again = env
        .run(&["instance", "import", path, "-o", "json"])
        .ok()
        .json();
    assert_eq!(
        (again["created"].as_u64(), again["updated"].as_u64()),
        (Some(0), Some(0)),
        "the rows stored differ from the file: {again}"
    );
}

fn reset_seeded(env: &TestEnv, seed_dump: &str) {
    env.probe().exec_batch(
        "DELETE FROM amc_instances WHERE instance_id NOT IN ('amcaaaaaaaa', 'amcbbbbbbbb');
             DELETE FROM amc_accounts WHERE account_id <> 'ENTITY1AA1AA11AAA1';
             DELETE FROM users WHERE name NOT IN ('alice', 'bob');
             UPDATE amc_accounts SET account_name = 'Acme';
             UPDATE amc_instances SET description = NULL;",
    );
    env.run(&["instance", "edit", "amcaaaaaaaa", "--name", "Alice Main"])
        .ok();
    env.run(&["brand", "set", "amcaaaaaaaa", "Acme"]).ok();
    // Timestamps moved, and the audit trail, append-only, keeps the entries
    // of the changes; everything else must be back.
    let strip = |d: &str| -> String {
        d.split("\n\n")
            .filter(|section| !section.starts_with("[audit_log]"))
            .flat_map(str::lines)
            .map(|l| {
                l.split(" | ")
                    .filter(|c| !c.starts_with("\"20"))
                    .collect::<Vec<_>>()
                    .join(" | ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_dump_eq(
        &strip(seed_dump),
        &strip(&env.dump()),
        "reset to the seeded store",
    );
}

// ------------------------------------------------------------- the corpus

/// Hand-picked bad inputs. Each goes into every text field, reference and
/// flag below; NUL bytes, which argv cannot carry, go through files.
const CORPUS: &[&str] = &[
    // Shell metacharacters and command substitution.
    "$(rm -rf ~)",
    "`id`",
    "; rm -rf / #",
    "| cat /etc/passwd",
    "&& shutdown -h now",
    "> /tmp/pwned",
    "< /etc/shadow",
    "$HOME",
    "${IFS}cat${IFS}/etc/passwd",
    "$((1+1))",
    "*",
    "?",
    "~",
    "!!",
    "a\\b\\\\c",
    "'",
    "\"",
    "\"'`",
    "$'\\x41'",
    "# not a comment",
    "--help",
    "-o",
    "--",
    "-",
    "--yes",
    "-rf",
    "--user=bob",
    "%s%s%s%n",
    "{{7*7}}",
    "${jndi:ldap://127.0.0.1/a}",
    "../../../../etc/passwd",
    "C:\\Windows\\System32",
    "\\\\?\\C:\\",
    "file:///etc/passwd",
    // SQL fragments.
    "' OR '1'='1",
    "'; DROP TABLE amc_instances; --",
    "Robert'); DROP TABLE users;--",
    "1; SELECT * FROM credentials",
    "\" OR \"\"=\"",
    "%",
    "_",
    "%' --",
    "' UNION SELECT client_secret_enc FROM credentials --",
    "NULL",
    "null",
    "0",
    "-1",
    "1e309",
    "9223372036854775808",
    "ATTACH DATABASE '/tmp/x.db' AS x; --",
    "PRAGMA writable_schema = 1",
    // Unicode confusables and oddities.
    "\u{0430}mcaaaaaaaa",
    "amc\u{0430}aaaaaaa",
    "amcaaaaaaa\u{0430}",
    "\u{FF41}\u{FF4D}\u{FF43}aaaaaaaa",
    "AMCAAAAAAAA",
    "amcaaaaaaaa\u{0301}",
    "Alice\u{00A0}Main",
    "Alice\u{2007}Main",
    "Alice  Main",
    "Al\u{0456}ce Main",
    "\u{1D41A}\u{1D426}\u{1D41C}",
    "\u{FB01}le",
    "Ⅻ",
    "\u{1F600}\u{1F4A9}",
    "\u{1F468}\u{200D}\u{1F469}\u{200D}\u{1F467}",
    "e\u{0301}\u{0301}\u{0301}\u{0301}\u{0301}\u{0301}\u{0301}\u{0301}",
    "\u{10FFFF}",
    "\u{FFFD}",
    "\u{E000}",
    "İstanbul",
    "ß",
    "ǅ",
    // Bidirectional and invisible marks.
    "\u{202E}gnp.exe",
    "abc\u{200F}",
    "\u{2066}x\u{2069}",
    "\u{200B}zero",
    "\u{FEFF}bom",
    "alm\u{061C}mark",
    "line\u{2028}break",
    "para\u{2029}break",
    "joiner\u{2060}",
    "\u{202A}embed\u{202C}",
    "\u{200E}lrm",
    "mongolian\u{180E}",
    // Control characters and whitespace.
    "tab\there",
    "new\nline",
    "carriage\rreturn",
    "\u{1B}[31mred\u{1B}[0m",
    "\u{1B}]0;title\u{7}",
    "bell\u{7}",
    "back\u{8}space",
    "del\u{7F}",
    "nel\u{85}",
    "\u{9B}31m",
    " ",
    "\t",
    "\n",
    "   padded   ",
    "",
    // Formulas (CSV injection): valid text, neutralised on export.
    "=cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=HYPERLINK(\"http://127.0.0.1/x\",\"click\")",
    "'=already quoted",
    "''+twice",
    // Markup and formats.
    "<script>alert(1)</script>",
    "<!--",
    "]]>",
    "{\"json\": true}",
    "[1,2,3]",
    "key = \"toml\"",
    "a,b,c",
    "\"quoted,comma\"",
    "semi;colon",
    "back\\;slash",
];

/// A store for one use of the corpus, and the command for one value.
struct Use {
    name: &'static str,
    /// The command line for a value (`None`: the value cannot be used here).
    args: fn(usize, &str) -> Vec<String>,
    /// The stored value after an accepted change, if the use changes one.
    stored: Option<fn(usize) -> String>,
    /// Exit codes a refusal may have.
    refusals: &'static [i32],
    /// Whether the use only reads (it must then exit 0 or refuse).
    read_only: bool,
}

fn uses() -> Vec<Use> {
    vec![
        Use {
            name: "instance name",
            args: |i, v| {
                vec![
                    "instance".into(),
                    "create".into(),
                    format!("--instance-id=amccorp{i:04}"),
                    format!("--name={v}"),
                    "--account=Acme".into(),
                    "--skip-validation".into(),
                ]
            },
            stored: Some(|i| {
                format!("SELECT name FROM amc_instances WHERE instance_id = 'amccorp{i:04}'")
            }),
            refusals: &[2],
            read_only: false,
        },
        Use {
            name: "instance ID",
            args: |_, v| {
                vec![
                    "instance".into(),
                    "create".into(),
                    format!("--instance-id={v}"),
                    "--account=Acme".into(),
                    "--skip-validation".into(),
                ]
            },
            stored: None,
            refusals: &[2, 5],
            read_only: false,
        },
        Use {
            name: "brand",
            args: |_, v| {
                vec![
                    "brand".into(),
                    "add".into(),
                    "amcaaaaaaaa".into(),
                    "--".into(),
                    v.into(),
                ]
            },
            stored: None,
            refusals: &[2],
            read_only: false,
        },
        Use {
            name: "description",
            args: |_, v| {
                vec![
                    "instance".into(),
                    "edit".into(),
                    "amcaaaaaaaa".into(),
                    format!("--description={v}"),
                ]
            },
            stored: Some(|_| {
                "SELECT description FROM amc_instances WHERE instance_id = 'amcaaaaaaaa'".into()
            }),
            refusals: &[2],
            read_only: false,
        },
        Use {
            name: "account name",
            args: |i, v| {
                vec![
                    "account".into(),
                    "create".into(),
                    format!("--account-id=ENTITYCORP{i:04}"),
                    format!("--name={v}"),
                ]
            },
            stored: Some(|i| {
                format!(
                    "SELECT account_name FROM amc_accounts WHERE account_id = 'ENTITYCORP{i:04}'"
                )
            }),
            refusals: &[2],
            read_only: false,
        },
        Use {
            name: "instance reference",
            args: |_, v| vec!["instance".into(), "show".into(), "--".into(), v.into()],
            stored: None,
            refusals: &[2, 3, 4],
            read_only: true,
        },
        Use {
            name: "account reference",
            args: |_, v| vec!["instance".into(), "list".into(), format!("--account={v}")],
            stored: None,
            refusals: &[2, 3],
            read_only: true,
        },
        Use {
            name: "brand filter",
            args: |_, v| {
                vec![
                    "instance".into(),
                    "list".into(),
                    format!("--brand={v}"),
                    "-o".into(),
                    "json".into(),
                ]
            },
            stored: None,
            refusals: &[2],
            read_only: true,
        },
        Use {
            name: "user",
            args: |_, v| vec![format!("--user={v}"), "instance".into(), "list".into()],
            stored: None,
            refusals: &[2, 3],
            read_only: true,
        },
        Use {
            name: "output format and durations",
            args: |_, v| {
                vec![
                    "health".into(),
                    "history".into(),
                    "amcaaaaaaaa".into(),
                    format!("--since={v}"),
                    format!("--output={v}"),
                ]
            },
            stored: None,
            refusals: &[2],
            read_only: true,
        },
    ]
}

fn a_corpus_of_bad_inputs_is_refused_untouched_or_stored_verbatim() {
    assert!(CORPUS.len() >= 100, "{} corpus entries", CORPUS.len());
    let uses = uses();
    let tallies = std::thread::scope(|s| {
        let workers: Vec<_> = uses
            .iter()
            .map(|u| {
                s.spawn(move || {
                    let env = seeded();
                    let (mut refused, mut accepted) = (0, 0);
                    for (i, v) in CORPUS.iter().enumerate() {
                        let args = (u.args)(i, v);
                        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
                        let before = env.dump();
                        let out = env.run(&argv);
                        assert_no_crash(&out);
                        let ctx = format!("{}: {v:?}: exit {}\n{}", u.name, out.code, out.stderr);
                        if out.code == 0 {
                            accepted += 1;
                            // A blank description clears it.
                            let clears = u.name == "description" && v.trim().is_empty();
                            assert!(
                                !must_refuse(v.trim()) || u.read_only || clears,
                                "{ctx}: accepted"
                            );
                            if u.read_only {
                                env.assert_unchanged(&before, &ctx);
                            }
                            if let Some(sql) = u.stored {
                                let want = if v.trim().is_empty() {
                                    "NULL".to_owned()
                                } else {
                                    format!("{:?}", v.trim())
                                };
                                assert_eq!(env.probe().rows(&sql(i)), [[want]], "{ctx}: stored");
                            }
                        } else {
                            refused += 1;
                            assert!(u.refusals.contains(&out.code), "{ctx}");
                            env.assert_unchanged(&before, &ctx);
                        }
                    }
                    (u.name, refused, accepted)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a corpus worker panicked"))
            .collect::<Vec<_>>()
    });
    for (name, refused, accepted) in &tallies {
        eprintln!("corpus as {name}: {refused} refused untouched, {accepted} accepted");
    }
    eprintln!(
        "corpus: {} values x {} uses = {} runs",
        CORPUS.len(),
        uses.len(),
        CORPUS.len() * uses.len()
    );
}

/// Import files no one should write, and what must come of them.
fn hostile_files() -> Vec<(&'static str, Vec<u8>, bool)> {
    let row =
        |name: &str| format!("instance_id,name,region,account_id\namchostile1,{name},na,{ACME}\n");
    let json_row = |name: &str| {
        format!(
            r#"[{{"instance_id":"amchostile1","name":{name},"region":"na","account":{{"account_id":"{ACME}"}}}}]"#
        )
    };
    let mut files: Vec<(&'static str, Vec<u8>, bool)> = vec![
        ("a NUL byte in a CSV name", row("A\0B").into_bytes(), false),
        ("a NUL byte alone", row("\0").into_bytes(), false),
        ("a NUL escape in JSON", json_row(r#""A\u0000B""#).into_bytes(), false),
        ("a bidi override escaped in JSON", json_row(r#""\u202Egnp.exe""#).into_bytes(), false),
        ("a lone surrogate escaped in JSON", json_row(r#""\uD800""#).into_bytes(), false),
        ("invalid UTF-8", b"instance_id,name\n\xff\xfe\xfd,\xc3\x28\n".to_vec(), false),
        ("UTF-16 with its BOM", {
            let mut b = vec![0xFF, 0xFE];
            for u in row("A").encode_utf16() {
                b.extend(u.to_le_bytes());
            }
            b
        }, false),
        ("CSV with a UTF-8 BOM and CRLF (a spreadsheet's)", format!("\u{FEFF}{}", row("Excel Co").replace('\n', "\r\n")).into_bytes(), true),
        ("JSON with a UTF-8 BOM (PowerShell's)", format!("\u{FEFF}{}", json_row("\"PowerShell Co\"")).into_bytes(), true),
        ("a name of 2 MB", row(&"A".repeat(2 << 20)).into_bytes(), false),
        ("a 1 MB line without a newline", vec![b'x'; 1 << 20], false),
        ("terminal escapes in a header", b"instance_id,\x1b]0;owned\x07\x1b[2J,\xe2\x80\xae\n".to_vec(), false),
        ("terminal escapes in a JSON value", json_row(r#""A","is_active":"\u001b[2J\u001b]0;owned\u0007""#).into_bytes(), false),
        ("10,000 columns", format!("{}\n", (0..10_000).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",")).into_bytes(), false),
        ("an unbalanced quote", format!("instance_id,name,region,account_id\namchostile1,\"open,na,{ACME}\n").into_bytes(), false),
        ("a header only", b"instance_id,name,region,account_id\n".to_vec(), true),
        ("an empty CSV file: nothing to import", Vec::new(), true),
        ("an empty JSON file", Vec::new(), false),
        ("whitespace only", b" \n\t\r\n".to_vec(), false),
        ("JSON null", b"null".to_vec(), false),
        ("a JSON object, not an array", br#"{"instance_id":"amchostile1"}"#.to_vec(), false),
        ("a JSON number", b"1e400".to_vec(), false),
        ("100,000 nested arrays", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes(), false),
        ("50,000 nested objects", format!("[{}1{}]", "{\"a\":".repeat(50_000), "}".repeat(50_000)).into_bytes(), false),
        ("an unterminated array of 100,000 opens", "[".repeat(100_000).into_bytes(), false),
        // The last of duplicate keys wins, as in JavaScript and Python.
        ("duplicate keys", br#"[{"instance_id":"amchostile1","instance_id":"amchostile2","name":"A","region":"na","account":{"account_id":"ENTITY1AA1AA11AAA1"}}]"#.to_vec(), true),
        ("a latency of 1e400", json_row(r#""A","health":{"latency_ms":1e400}"#).into_bytes(), false),
        ("a negative latency", json_row(r#""A","health":{"latency_ms":-1}"#).into_bytes(), false),
        ("an endpoint elsewhere", json_row(r#""A","api_endpoint":"javascript:alert(1)""#).into_bytes(), false),
        ("SQL in every cell", format!("instance_id,name,region,account_id,description,brands\namchostile1,\"'; DROP TABLE users; --\",na,{ACME},\"\"\" OR 1=1\",\"x'); DELETE FROM amc_instances; --\"\n").into_bytes(), true),
        ("formulas in every text cell", format!("instance_id,name,region,account_id,description,brands\namchostile1,=cmd|' /C calc'!A0,na,{ACME},@SUM(1),+1;-1\n").into_bytes(), true),
    ];
    // Bigger than the import limit: refused before it is parsed.
    let mut big = row("A").into_bytes();
    big.resize(transfer::MAX_IMPORT_BYTES + 10, b' ');
    files.push(("a file over the size limit", big, false));
    files
}

fn hostile_import_files_are_refused_untouched_or_imported_exactly() {
    let env = seeded();
    let seed_dump = env.dump();
    let files = hostile_files();
    for (name, bytes, ok) in &files {
        let ext = if bytes.first() == Some(&b'[') || name.contains("JSON") {
            "json"
        } else {
            "csv"
        };
        let file = env.write_file(&format!("hostile.{ext}"), bytes);
        let before = env.dump();
        let started = std::time::Instant::now();
        let out = env.run(&["instance", "import", file.to_str().expect("path")]);
        assert_no_crash(&out);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{name}: took {:?}",
            started.elapsed()
        );
        let ctx = format!(
            "{name}: exit {}\n{}",
            out.code,
            out.stderr.chars().take(2000).collect::<String>()
        );
        if *ok {
            assert_eq!(out.code, 0, "{ctx}");
            assert_import_stored(&env, &file);
            reset_seeded(&env, &seed_dump);
        } else {
            assert!([2, 3, 5].contains(&out.code), "{ctx}");
            assert!(
                out.stderr.len() < 64 * 1024,
                "{name}: a flood of {} bytes on stderr",
                out.stderr.len()
            );
            // What the file says reaches the terminal escaped: no escape
            // sequence, no bidirectional mark from the file is replayed.
            assert!(
                !out.stderr
                    .chars()
                    .any(|c| (c.is_control() && c != '\n') || INVISIBLE.contains(&c)),
                "{name}: raw control characters on stderr: {:?}",
                out.stderr.chars().take(500).collect::<String>()
            );
            env.assert_unchanged(&before, &ctx);
        }
    }
    // Not a file at all.
    for path in ["/nonexistent/x.csv", "/", "/dev/null"] {
        let before = env.dump();
        let out = env.run(&["instance", "import", path]);
        assert_no_crash(&out);
        assert_eq!(out.code, 2, "{path}: {}", out.stderr);
        env.assert_unchanged(&before, path);
    }
    // Rows naming another user's row id must not take it over.
    let bob_id = env
        .probe()
        .rows("SELECT id FROM amc_instances WHERE instance_id = 'amcbbbbbbbb'")[0][0]
        .trim_matches('"')
        .to_owned();
    let before = env.dump();
    let stolen = format!(
        r#"[{{"id":"{bob_id}","instance_id":"amcstolen01","name":"Mine now","region":"na","account":{{"account_id":"{ACME}"}}}}]"#
    );
    let out = env.run_stdin(&["instance", "import", "-", "--format", "json"], stolen);
    assert_no_crash(&out);
    assert_eq!(out.code, 5, "{}", out.stderr);
    env.assert_unchanged(&before, "a row with bob's id");
    eprintln!("corpus: {} hostile import files", files.len() + 3 + 1);
}

fn csv_export_neutralises_formulas_and_import_restores_them() {
    let env = TestEnv::new();
    env.create_account(ACME, "Acme");
    let formulas = [
        "=cmd|' /C calc'!A0",
        "+cmd|' /C calc'!A0",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "'=already quoted",
        "''@twice",
        "=HYPERLINK(\"http://127.0.0.1/x\",\"click\")",
    ];
    for (i, f) in formulas.iter().enumerate() {
        env.run(&[
            "instance",
            "create",
            &format!("--instance-id=amcformula{i}"),
            &format!("--name={f}"),
            &format!("--description={f}"),
            &format!("--brand={f}"),
            "--brand=-minus;semi",
            "--account=Acme",
            "--skip-validation",
        ])
        .ok();
    }
    let exported = env.run(&["instance", "export", "--format", "csv"]).ok();
    let listed = env.run(&["instance", "list", "-o", "csv"]).ok();
    for out in [&exported, &listed] {
        let (header, rows) = out.csv();
        assert_eq!(rows.len(), formulas.len());
        for row in &rows {
            for (col, cell) in header.iter().zip(row) {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{col} = {cell:?}: a spreadsheet would run it"
                );
                if ["name", "description"].contains(&col.as_str()) {
                    assert!(
                        cell.starts_with('\''),
                        "{col} = {cell:?} is not neutralised"
                    );
                }
            }
        }
    }
    // Import of that CSV (into a fresh store, and over the same rows again)
    // gives back the original text, not the quoted one.
    let file = env.write_file("formulas.csv", &exported.stdout);
    let again = env
        .run(&[
            "instance",
            "import",
            file.to_str().expect("path"),
            "-o",
            "json",
        ])
        .ok()
        .json();
    assert_eq!(again["unchanged"], formulas.len(), "{again}");
    let fresh = TestEnv::new();
    fresh
        .run_stdin(
            &["instance", "import", "-", "--format", "csv"],
            &exported.stdout,
        )
        .ok();
    for (i, f) in formulas.iter().enumerate() {
        let id = format!("amcformula{i}");
        for (store, user) in [(&env, "alice"), (&fresh, "alice")] {
            let v = store
                .run_as(user, &["instance", "show", &id, "-o", "json"])
                .ok()
                .json();
            assert_eq!(v["name"], *f, "{user}: name of {id}");
            assert_eq!(v["description"], *f, "{user}: description of {id}");
            let mut brands = strings(&v["brands"]);
            brands.sort();
            let mut want = vec![f.to_string(), "-minus;semi".to_owned()];
            want.sort();
            assert_eq!(brands, want, "{user}: brands of {id}");
        }
    }
}

crate::on_both_backends!(
    instance_show_of_anything_is_2_3_or_4_and_changes_nothing,
    a_rejected_change_leaves_the_store_byte_identical,
    an_import_of_arbitrary_bytes_is_all_or_nothing,
    a_corpus_of_bad_inputs_is_refused_untouched_or_stored_verbatim,
    hostile_import_files_are_refused_untouched_or_imported_exactly,
    csv_export_neutralises_formulas_and_import_restores_them,
);
