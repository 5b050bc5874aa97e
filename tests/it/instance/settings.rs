//! Encrypted instance settings (`instance config`): set, get, unset and list
//! in every format; bad names and values refused with the store unchanged;
//! owners only; one Fernet token over the JSON object, read and written by
//! Python's `cryptography.fernet` (or, without it, by a reference built from
//! the Fernet spec's primitives); `key rotate` re-encrypts it.

use std::process::{Command, Stdio};

use crate::support::TestEnv;
use aes::Aes128;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

const ACME: &str = "ENTITY1AA1AA11AAA1";
const INST: &str = "amcaaaaaaaa";

fn world() -> TestEnv {
    let env = TestEnv::new();
    env.create_account(ACME, "Acme");
    env.create_instance(INST, "Alice Main", "Acme", &[]);
    env
}

/// The settings token as stored (`None`: NULL).
fn token(env: &TestEnv) -> Option<String> {
    env.probe().settings_token(INST)
}

fn key_text(env: &TestEnv) -> String {
    let path = env.run(&["key", "path"]).ok().stdout;
    std::fs::read_to_string(path.trim())
        .expect("read the key file")
        .trim()
        .to_owned()
}

fn set_get_unset_and_list_in_every_format() {
    let env = world();
    // No settings yet: the list says so, a get is exit 3.
    let out = env.run(&["instance", "config", "list", INST]).ok();
    assert!(out.stderr.contains("has no settings"), "{}", out.stderr);
    assert_eq!(env.json(&["instance", "config", "list", INST]), json!([]));
    env.run(&["instance", "config", "get", INST, "region_hint"])
        .fails(3, &["has no setting \"region_hint\""]);
    assert_eq!(token(&env), None);

    // A plain value from argv, a secret from stdin (one final newline dropped).
    env.run(&["instance", "config", "set", INST, "region_hint", "eu-west"])
        .ok();
    let out = env
        .run_stdin(
            &[
                "instance",
                "config",
                "set",
                INST,
                "api_secret",
                "--secret",
                "--value-stdin",
                "-o",
                "json",
            ],
            "s3cr3t-value\n",
        )
        .ok();
    assert_eq!(
        out.json(),
        json!({"instance_id": INST, "key": "api_secret", "action": "set", "settings": 2})
    );
    assert!(!out.stdout.contains("s3cr3t"), "{}", out.stdout);
    // A multi-line value keeps its inner line breaks.
    env.run_stdin(
        &["instance", "config", "set", INST, "pem", "--value-stdin"],
        "line one\nline two\n",
    )
    .ok();

    let stored = token(&env).expect("a token");
    assert!(stored.starts_with("gAAAAA"), "a Fernet token: {stored}");
    assert!(!stored.contains("s3cr3t"));

    // Cut in every format unless --reveal.
    let cut = env.json(&["instance", "config", "list", INST]);
    assert_eq!(
        cut,
        json!([
            {"key": "region_hint", "value": "…"},
            {"key": "api_secret", "value": "…"},
            {"key": "pem", "value": "…"},
        ])
    );
    for format in ["table", "csv", "ndjson"] {
        let out = env
            .run(&["instance", "config", "list", INST, "-o", format])
            .ok();
        assert!(
            out.stdout.contains("api_secret"),
            "{format}: {}",
            out.stdout
        );
        assert!(!out.stdout.contains("s3cr3t"), "{format}: {}", out.stdout);
        assert!(!out.stdout.contains("eu-west"), "{format}: {}", out.stdout);
    }
    let (header, rows) = env
        .run(&["instance", "config", "list", INST, "--reveal", "-o", "csv"])
        .ok()
        .csv();
    assert_eq!(header, ["key", "value"]);
    assert_eq!(rows[1], ["api_secret", "s3cr3t-value"]);
    // CSV cells escape line breaks (as every list does); JSON keeps them.
    assert_eq!(rows[2], ["pem", "line one\\nline two"]);
    let full = env.json(&["instance", "config", "list", INST, "--reveal"]);
    assert_eq!(full[2]["value"], "line one\nline two");
    let lines = env
        .run(&["instance", "config", "ls", INST, "--reveal", "-o", "ndjson"])
        .ok()
        .ndjson();
    assert_eq!(lines[0], json!({"key": "region_hint", "value": "eu-west"}));

    // get: the bare value for scripts, an object in the machine formats.
    let out = env
        .run(&["instance", "config", "get", INST, "api_secret"])
        .ok();
    assert_eq!(out.stdout, "s3cr3t-value\n");
    assert_eq!(
        env.json(&["instance", "config", "get", INST, "region_hint"]),
        json!({"key": "region_hint", "value": "eu-west"})
    );

    // Setting again replaces; unset removes; the last unset leaves NULL.
    env.run(&[
        "instance",
        "config",
        "set",
        INST,
        "region_hint",
        "eu-central",
    ])
    .ok();
    let out = env
        .run(&["instance", "config", "get", INST, "region_hint"])
        .ok();
    assert_eq!(out.stdout, "eu-central\n");
    env.run(&["instance", "config", "unset", INST, "nope"])
        .fails(3, &["has no setting \"nope\""]);
    for key in ["region_hint", "api_secret", "pem"] {
        env.run(&["instance", "config", "unset", INST, key]).ok();
    }
    assert_eq!(token(&env), None, "no settings left: NULL");
    env.run(&["instance", "config", "unset", INST, "pem"])
        .fails(3, &["has no setting"]);
    // The instance's other commands see nothing of it.
    let shown = env.run(&["instance", "show", INST, "-o", "json"]).ok();
    assert!(!shown.stdout.contains("config"), "{}", shown.stdout);
}

fn bad_names_and_values_are_exit_2_and_change_nothing() {
    let env = world();
    env.run(&["instance", "config", "set", INST, "kept", "v1"])
        .ok();
    let before = env.dump();
    let long_key = "k".repeat(129);
    let big = "v".repeat(64 * 1024 + 1);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["set", INST, "", "v"], "cannot be empty"),
        (vec!["set", INST, "a\nb", "v"], "control characters"),
        (vec!["set", INST, "a\u{1b}[31m", "v"], "control characters"),
        (vec!["set", INST, "tab\tkey", "v"], "control characters"),
        (vec!["set", INST, &long_key, "v"], "at most 128 bytes"),
        (vec!["set", INST, "k", ""], "cannot be empty"),
        (vec!["set", INST, "k", &big], "at most 64 KiB"),
        (
            vec!["set", INST, "k", "on-argv", "--secret"],
            "not taken from the command line",
        ),
        // No VALUE and no terminal: the flag that answers it is named.
        (vec!["set", INST, "k"], "--value-stdin is required"),
        (vec!["get", INST, "a\nb"], "control characters"),
        (vec!["unset", INST, &long_key], "at most 128 bytes"),
    ];
    for (args, needle) in &cases {
        let mut full = vec!["instance", "config"];
        full.extend(args.iter().copied());
        env.run(&full).fails(2, &[needle]);
        env.assert_unchanged(&before, format!("{args:?}"));
    }
    // Through stdin: too long, not UTF-8, empty.
    for (input, needle) in [
        (big.clone().into_bytes(), "longer than 64 KiB"),
        (vec![0xff, 0xfe, b'x'], "not UTF-8"),
        (b"\n".to_vec(), "cannot be empty"),
    ] {
        env.run_stdin(
            &["instance", "config", "set", INST, "k", "--value-stdin"],
            input,
        )
        .fails(2, &[needle]);
        env.assert_unchanged(&before, needle);
    }
    // Exactly at the bounds is fine.
    let at_bound = "v".repeat(64 * 1024);
    env.run_stdin(
        &[
            "instance",
            "config",
            "set",
            INST,
            &"k".repeat(128),
            "--value-stdin",
        ],
        &at_bound,
    )
    .ok();
    let out = env
        .run(&["instance", "config", "get", INST, &"k".repeat(128)])
        .ok();
    assert_eq!(out.stdout.trim_end().len(), 64 * 1024);
    // An instance that does not exist.
    env.run(&["instance", "config", "list", "amcnosuchone"])
        .fails(3, &["no instance"]);
}

fn only_the_owner_reads_or_changes_settings() {
    let env = world();
    env.run(&["instance", "config", "set", INST, "token", "alice-only"])
        .ok();
    env.run_as("bob", &["instance", "list"]).ok();
    let before = env.dump();
    for args in [
        &["instance", "config", "list", INST, "--reveal"][..],
        &["instance", "config", "get", INST, "token"],
        &["instance", "config", "set", INST, "token", "bob-was-here"],
        &["instance", "config", "unset", INST, "token"],
    ] {
        let out = env
            .run_as("bob", args)
            .fails(4, &["belongs to another user"]);
        assert!(!out.stdout.contains("alice-only"), "{}", out.stdout);
        assert!(!out.stderr.contains("alice-only"), "{}", out.stderr);
    }
    env.assert_unchanged(&before, "bob's attempts");
    // Never exported, in either format.
    for format in ["json", "csv"] {
        let out = env.run(&["instance", "export", "--format", format]).ok();
        assert!(out.stdout.contains(INST));
        assert!(!out.stdout.contains("alice-only"), "{}", out.stdout);
        assert!(!out.stdout.contains("gAAAAA"), "{}", out.stdout);
    }
}

/// Whether Python with `cryptography` can run here. Under CI it must.
fn python_fernet() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography.fernet"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: python3 with the `cryptography` module is required (.ci/run installs it)"
        );
        eprintln!(
            "note: python3 with `cryptography` is not available; checking with the Fernet spec primitives instead"
        );
    }
    ok
}

/// Runs a Python snippet with the key file as argv[1] and `input` on stdin.
fn python(script: &str, key_path: &str, input: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", script, key_path])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write to python");
    let out = child.wait_with_output().expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_owned()
}

/// Opens a token and tells whether its plaintext is exactly `json.dumps` of
/// what it holds: `{"object": ..., "dumps_exact": true}`.
const PY_DECRYPT: &str = r#"
import json, sys
from cryptography.fernet import Fernet
key = open(sys.argv[1], 'rb').read().strip()
plain = Fernet(key).decrypt(sys.stdin.read().strip().encode()).decode()
obj = json.loads(plain)
print(json.dumps({"object": obj, "dumps_exact": plain == json.dumps(obj)}))
"#;

/// What the web service's `encrypt_config(dict)` does, for the dict on stdin.
const PY_ENCRYPT: &str = r#"
import json, sys
from cryptography.fernet import Fernet
key = open(sys.argv[1], 'rb').read().strip()
config = json.loads(sys.stdin.read())
print(Fernet(key).encrypt(json.dumps(config).encode()).decode())
"#;

fn split_key(secret: &str) -> ([u8; 16], [u8; 16]) {
    let raw = URL_SAFE.decode(secret).expect("key is base64");
    assert_eq!(raw.len(), 32);
    (
        raw[..16].try_into().expect("16 bytes"),
        raw[16..].try_into().expect("16 bytes"),
    )
}

/// The spec's token: 0x80 ‖ time ‖ IV ‖ AES-128-CBC(PKCS7) ‖ HMAC-SHA256.
fn reference_encrypt(secret: &str, plaintext: &[u8]) -> String {
    let (signing, encryption) = split_key(secret);
    let iv: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
    let ciphertext = cbc::Encryptor::<Aes128>::new_from_slices(&encryption, &iv)
        .expect("key and iv sizes")
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut token = vec![0x80];
    token.extend_from_slice(&1_700_000_000u64.to_be_bytes());
    token.extend_from_slice(&iv);
    token.extend_from_slice(&ciphertext);
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing).expect("hmac key");
    mac.update(&token);
    token.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE.encode(token)
}

fn reference_decrypt(secret: &str, token: &str) -> Vec<u8> {
    let (signing, encryption) = split_key(secret);
    let data = URL_SAFE.decode(token).expect("token is base64");
    assert!(data.len() >= 1 + 8 + 16 + 16 + 32 && data[0] == 0x80);
    let (message, tag) = data.split_at(data.len() - 32);
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing).expect("hmac key");
    mac.update(message);
    mac.verify_slice(tag).expect("the token's HMAC verifies");
    cbc::Decryptor::<Aes128>::new_from_slices(&encryption, &message[9..25])
        .expect("key and iv sizes")
        .decrypt_padded_vec_mut::<Pkcs7>(&message[25..])
        .expect("padding")
}

fn python_reads_amcctl_settings_and_amcctl_reads_pythons() {
    let env = world();
    env.run(&["instance", "config", "set", INST, "region_hint", "eu-west"])
        .ok();
    env.run_stdin(
        &[
            "instance",
            "config",
            "set",
            INST,
            "api_secret",
            "--value-stdin",
        ],
        "sé\"cret\\ 😀\ttab\n",
    )
    .ok();
    let key_path = env.run(&["key", "path"]).ok().stdout.trim().to_owned();
    let key = key_text(&env);
    let expected = json!({"region_hint": "eu-west", "api_secret": "sé\"cret\\ 😀\ttab"});
    // json.dumps of that dict, as Python 3 writes it.
    let dumps = r#"{"region_hint": "eu-west", "api_secret": "s\u00e9\"cret\\ \ud83d\ude00\ttab"}"#;
    let stored = token(&env).expect("a token");

    // Python's dict, with what a service may store besides strings.
    let from_python =
        json!({"api_key": "py-v4lue", "unicode": "é€😀", "n": 3, "nested": {"a": [1, 2]}});
    let python_token = if python_fernet() {
        let opened: Value =
            serde_json::from_str(&python(PY_DECRYPT, &key_path, &stored)).expect("python's JSON");
        assert_eq!(opened["object"], expected, "Python reads amcctl's settings");
        assert_eq!(
            opened["dumps_exact"], true,
            "amcctl's plaintext is exactly json.dumps of the object"
        );
        python(PY_ENCRYPT, &key_path, &from_python.to_string())
    } else {
        let plain = reference_decrypt(&key, &stored);
        assert_eq!(String::from_utf8(plain).expect("utf-8"), dumps);
        let plain = r#"{"api_key": "py-v4lue", "unicode": "\u00e9\u20ac\ud83d\ude00", "n": 3, "nested": {"a": [1, 2]}}"#;
        reference_encrypt(&key, plain.as_bytes())
    };
    // Either way the spec reference opens amcctl's token to json.dumps text.
    assert_eq!(reference_decrypt(&key, &stored), dumps.as_bytes());

    env.probe().set_settings_token(INST, &python_token);
    let listed = env.json(&["instance", "config", "list", INST, "--reveal"]);
    assert_eq!(
        listed,
        json!([
            {"key": "api_key", "value": "py-v4lue"},
            {"key": "unicode", "value": "é€😀"},
            {"key": "n", "value": "3"},
            {"key": "nested", "value": "{\"a\":[1,2]}"},
        ])
    );
    let out = env
        .run(&["instance", "config", "get", INST, "unicode"])
        .ok();
    assert_eq!(out.stdout, "é€😀\n");
    // A change keeps what Python stored, values of every JSON type included.
    env.run(&["instance", "config", "set", INST, "added", "by-amcctl"])
        .ok();
    let stored = token(&env).expect("a token");
    let reopened: Value =
        serde_json::from_slice(&reference_decrypt(&key, &stored)).expect("JSON object");
    let mut want = from_python.clone();
    want["added"] = json!("by-amcctl");
    assert_eq!(reopened, want);
    if python_fernet() {
        let opened: Value =
            serde_json::from_str(&python(PY_DECRYPT, &key_path, &stored)).expect("python's JSON");
        assert_eq!(opened["object"], want);
        assert_eq!(opened["dumps_exact"], true);
    }
}

fn settings_that_do_not_open_are_exit_8_and_show_nothing() {
    let env = world();
    env.run(&["instance", "config", "set", INST, "k", "v-LEAKY"])
        .ok();
    let key = key_text(&env);
    // A JSON array, not an object: refused without quoting it.
    let not_object = reference_encrypt(&key, br#"["v-LEAKY"]"#);
    env.probe().set_settings_token(INST, &not_object);
    let before = env.dump();
    for args in [
        &["instance", "config", "list", INST][..],
        &["instance", "config", "set", INST, "k2", "v"],
        &["instance", "config", "unset", INST, "k"],
    ] {
        let out = env.run(args).fails(8, &["not to a JSON object"]);
        assert!(!out.stderr.contains("LEAKY"), "{}", out.stderr);
    }
    env.assert_unchanged(&before, "unreadable settings");
    // Another key's token: the wrong-key error, nothing more.
    let other = reference_encrypt(&URL_SAFE.encode([7u8; 32]), br#"{"k": "v-LEAKY"}"#);
    env.probe().set_settings_token(INST, &other);
    let out = env
        .run(&["instance", "config", "get", INST, "k"])
        .fails(8, &["cannot decrypt"]);
    assert!(!out.stderr.contains("LEAKY"), "{}", out.stderr);
}

fn key_rotate_re_encrypts_the_settings() {
    let env = world();
    env.run_stdin(
        &[
            "instance",
            "config",
            "set",
            INST,
            "api_secret",
            "--value-stdin",
        ],
        "rotate-me",
    )
    .ok();
    let old_key = key_text(&env);
    let old_token = token(&env).expect("a token");
    let out = env.run(&["key", "rotate", "--yes"]).ok();
    assert!(!out.stderr.contains("rotate-me"), "{}", out.stderr);
    let new_key = key_text(&env);
    assert_ne!(old_key, new_key);
    let new_token = token(&env).expect("still a token");
    assert_ne!(old_token, new_token, "re-encrypted");
    assert_eq!(
        reference_decrypt(&new_key, &new_token),
        br#"{"api_secret": "rotate-me"}"#
    );
    let out = env
        .run(&["instance", "config", "get", INST, "api_secret"])
        .ok();
    assert_eq!(out.stdout, "rotate-me\n");
}

fn the_man_pages_document_the_settings() {
    let env = TestEnv::new();
    let page = env.run(&["man", "instance", "config", "set"]).ok().stdout;
    for needle in [
        "\\-\\-value\\-stdin",
        "\\-\\-secret",
        "never on the command line",
    ] {
        assert!(page.contains(needle), "{needle}: {page}");
    }
    let main = env.run(&["man"]).ok().stdout;
    assert!(main.contains("instance config"), "the key's FILES entry");
    assert!(main.contains("HTTPS_PROXY"), "ENVIRONMENT names the proxy");
}

fn changes_at_once_from_several_processes_all_land() {
    let env = world();
    // The first setting creates the key; the others race on the token.
    env.run(&["instance", "config", "set", INST, "k0", "v0"])
        .ok();
    let children: Vec<_> = (1..=8)
        .map(|i| {
            let (key, value) = (format!("k{i}"), format!("v{i}"));
            env.command("alice", &["instance", "config", "set", INST, &key, &value])
                .spawn()
                .expect("start amcctl")
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let listed = env.json(&["instance", "config", "list", INST, "--reveal"]);
    let mut got: Vec<(String, String)> = listed
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap_or_default().to_owned(),
                s["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    got.sort();
    let want: Vec<(String, String)> = (0..=8)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    assert_eq!(got, want, "no change was lost");
}

crate::on_both_backends!(
    set_get_unset_and_list_in_every_format,
    bad_names_and_values_are_exit_2_and_change_nothing,
    only_the_owner_reads_or_changes_settings,
    python_reads_amcctl_settings_and_amcctl_reads_pythons,
    settings_that_do_not_open_are_exit_8_and_show_nothing,
    key_rotate_re_encrypts_the_settings,
    the_man_pages_document_the_settings,
    changes_at_once_from_several_processes_all_land,
);
