//! Encrypted instance settings: a JSON object of named values kept as one
//! Fernet token in the instance's `encrypted_config`.
//!
//! The token is what a Python service makes with
//! `Fernet(key).encrypt(json.dumps(settings).encode())`, byte for byte in its
//! plaintext: [`python_json`] writes JSON the way `json.dumps` does by
//! default (`", "` and `": "` separators, everything outside printable ASCII
//! escaped as `\uXXXX`). So such a service reads amcctl's settings with
//! `json.loads(Fernet(key).decrypt(token))`, and amcctl reads the service's.
//!
//! Nothing here logs, and no error message carries a value: decrypted text
//! never reaches an error (serde's messages may quote what they could not
//! parse, so they are not passed on).

use std::fmt::Write as _;

use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use crate::secrets::{Keyring, SecretsError};

/// The longest setting name, in bytes.
pub const MAX_KEY_BYTES: usize = 128;

/// The longest setting value, in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// The settings of one instance, in the order they were first set.
pub type Settings = Map<String, Value>;

/// Checks a setting name: not empty, at most [`MAX_KEY_BYTES`], no control
/// characters. The message names the rule, never repeats a value.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("a setting name cannot be empty".into());
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(format!(
            "a setting name is at most {MAX_KEY_BYTES} bytes (this one is {})",
            key.len()
        ));
    }
    if key.chars().any(char::is_control) {
        return Err("a setting name cannot hold control characters".into());
    }
    Ok(())
}

/// Checks a setting value: not empty, at most [`MAX_VALUE_BYTES`].
pub fn check_value(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("a setting value cannot be empty (`instance config unset` removes one)".into());
    }
    if value.len() > MAX_VALUE_BYTES {
        return Err(format!(
            "a setting value is at most {} KiB",
            MAX_VALUE_BYTES / 1024
        ));
    }
    Ok(())
}

/// A value as shown to people: a string as it is, anything else (a Python
/// service may store numbers, lists…) as compact JSON.
pub fn display(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why stored settings could not be read; no variant carries plaintext.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The token did not open with the key.
    #[error(transparent)]
    Key(#[from] SecretsError),
    /// The token opened, but not to a JSON object.
    #[error("the stored settings decrypt, but not to a JSON object")]
    NotAnObject,
}

/// Opens a settings token.
pub fn decrypt(keyring: &Keyring, token: &str) -> Result<Settings, SettingsError> {
    let text = keyring.decrypt(token)?;
    match serde_json::from_str::<Value>(text.expose_secret()) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(SettingsError::NotAnObject),
    }
}

/// Seals settings into one token over their [`python_json`] text.
pub fn encrypt(keyring: &Keyring, settings: &Settings) -> String {
    keyring.encrypt(&python_json(&Value::Object(settings.clone())))
}

/// `json.dumps(value)` with Python's defaults.
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_value(out, v);
            }
            out.push('}');
        }
    }
}

/// A string as `json.dumps` writes it with `ensure_ascii=True`: `"`, `\`
/// and the five short escapes by name, every other character outside
/// space..tilde as `\u` and four lowercase hex digits (a surrogate pair
/// beyond the first plane).
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_json_as_python_dumps_does() {
        let v: Value = serde_json::from_str(
            r#"{"b": "x\"y\\z\n\t\u0001\u007f", "a": "é€😀", "n": [1, true, null], "o": {"k": "v"}}"#,
        )
        .unwrap();
        // json.dumps of the same dict, as Python 3 prints it.
        assert_eq!(
            python_json(&v),
            r#"{"b": "x\"y\\z\n\t\u0001\u007f", "a": "\u00e9\u20ac\ud83d\ude00", "n": [1, true, null], "o": {"k": "v"}}"#
        );
        assert_eq!(python_json(&Value::Object(Map::new())), "{}");
    }

    #[test]
    fn keys_and_values_are_bounded() {
        assert!(check_key("api_secret").is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(check_key(&"k".repeat(MAX_KEY_BYTES + 1)).is_err());
        assert!(check_key("").is_err());
        for bad in ["a\nb", "a\u{1b}[31m", "a\u{7f}", "a\u{85}b"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_value("v").is_ok());
        assert!(check_value(&"v".repeat(MAX_VALUE_BYTES)).is_ok());
        assert!(check_value(&"v".repeat(MAX_VALUE_BYTES + 1)).is_err());
        assert!(check_value("").is_err());
    }
}
