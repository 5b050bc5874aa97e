//! The Fernet specification's test vectors (`tests/data/fernet/`, copied
//! unchanged from the spec), run against amcctl's keyring, so that keys and
//! ciphertexts stay interchangeable with Python's `cryptography.fernet`.
//!
//! The `fernet` crate cannot encrypt with a chosen IV, so the "generate"
//! vectors are checked in two halves: a small reference implementation built
//! from the same primitives reproduces each token byte for byte, and that
//! reference in turn opens tokens made by `Keyring::encrypt`.

use std::path::Path;

use aes::Aes128;
use amcctl::secrets::{KeySource, Keyring};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde::Deserialize;
use sha2::Sha256;

#[derive(Deserialize)]
struct Generate {
    token: String,
    now: String,
    iv: Vec<u8>,
    src: String,
    secret: String,
}

#[derive(Deserialize)]
struct Verify {
    token: String,
    now: String,
    ttl_sec: u64,
    src: String,
    secret: String,
}

#[derive(Deserialize)]
struct Invalid {
    desc: String,
    token: String,
    now: String,
    ttl_sec: u64,
    secret: String,
}

fn load<T: serde::de::DeserializeOwned>(name: &str) -> Vec<T> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fernet")
        .join(name);
    let text = std::fs::read_to_string(&path).expect("vector file");
    let cases: Vec<T> = serde_json::from_str(&text).expect("vector JSON");
    assert!(!cases.is_empty(), "{name} has no cases");
    cases
}

fn unix(now: &str) -> u64 {
    let t = chrono::DateTime::parse_from_rfc3339(now).expect("RFC 3339 time");
    u64::try_from(t.timestamp()).expect("time after 1970")
}

fn keyring(secret: &str) -> Keyring {
    Keyring::from_key(secret, KeySource::Env).expect("vector secret is a valid key")
}

/// (signing key, encryption key) of a Fernet key.
fn split_key(secret: &str) -> ([u8; 16], [u8; 16]) {
    let raw = URL_SAFE.decode(secret).unwrap();
    assert_eq!(raw.len(), 32);
    (raw[..16].try_into().unwrap(), raw[16..].try_into().unwrap())
}

/// The spec's token layout: 0x80 ‖ time ‖ IV ‖ AES-128-CBC(PKCS7) ‖ HMAC-SHA256.
fn reference_encrypt(secret: &str, time: u64, iv: &[u8], plaintext: &[u8]) -> String {
    let (signing, encryption) = split_key(secret);
    let ciphertext = cbc::Encryptor::<Aes128>::new_from_slices(&encryption, iv)
        .unwrap()
        .encrypt_padded_vec_mut::<Pkcs7>(plaintext);
    let mut token = vec![0x80];
    token.extend_from_slice(&time.to_be_bytes());
    token.extend_from_slice(iv);
    token.extend_from_slice(&ciphertext);
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing).unwrap();
    mac.update(&token);
    token.extend_from_slice(&mac.finalize().into_bytes());
    URL_SAFE.encode(token)
}

/// Opens a token by the spec, ignoring time; `None` if it does not verify.
fn reference_decrypt(secret: &str, token: &str) -> Option<Vec<u8>> {
    let (signing, encryption) = split_key(secret);
    let data = URL_SAFE.decode(token).ok()?;
    if data.len() < 1 + 8 + 16 + 16 + 32 || data[0] != 0x80 {
        return None;
    }
    let (message, tag) = data.split_at(data.len() - 32);
    let mut mac = Hmac::<Sha256>::new_from_slice(&signing).unwrap();
    mac.update(message);
    mac.verify_slice(tag).ok()?;
    cbc::Decryptor::<Aes128>::new_from_slices(&encryption, &message[9..25])
        .unwrap()
        .decrypt_padded_vec_mut::<Pkcs7>(&message[25..])
        .ok()
}

#[test]
fn generate_vectors() {
    for case in load::<Generate>("generate.json") {
        let time = unix(&case.now);
        // The reference reproduces the spec's token exactly ...
        assert_eq!(
            reference_encrypt(&case.secret, time, &case.iv, case.src.as_bytes()),
            case.token
        );
        // ... the keyring opens it ...
        let k = keyring(&case.secret);
        assert_eq!(k.decrypt(&case.token).unwrap().expose_secret(), case.src);
        // ... and the keyring's own tokens are the same format: the
        // reference opens them, and they have the token's exact length.
        let ours = k.encrypt(&case.src);
        assert_eq!(ours.len(), case.token.len());
        assert_eq!(
            reference_decrypt(&case.secret, &ours).as_deref(),
            Some(case.src.as_bytes())
        );
        // With the time fixed, only the IV differs from the spec's token.
        let fixed = fernet::Fernet::new(&case.secret)
            .unwrap()
            .encrypt_at_time(case.src.as_bytes(), time);
        let (a, b) = (
            URL_SAFE.decode(&fixed).unwrap(),
            URL_SAFE.decode(&case.token).unwrap(),
        );
        assert_eq!(a[..9], b[..9], "version and timestamp");
    }
}

#[test]
fn verify_vectors() {
    for case in load::<Verify>("verify.json") {
        let f = fernet::Fernet::new(&case.secret).unwrap();
        let plain = f
            .decrypt_at_time(&case.token, Some(case.ttl_sec), unix(&case.now))
            .expect("verify vector decrypts");
        assert_eq!(plain, case.src.as_bytes());
        // The keyring stores long-lived secrets and applies no TTL.
        assert_eq!(
            keyring(&case.secret)
                .decrypt(&case.token)
                .unwrap()
                .expose_secret(),
            case.src
        );
        assert_eq!(
            reference_decrypt(&case.secret, &case.token).as_deref(),
            Some(case.src.as_bytes())
        );
    }
}

#[test]
fn invalid_vectors() {
    for case in load::<Invalid>("invalid.json") {
        let f = fernet::Fernet::new(&case.secret).unwrap();
        assert!(
            f.decrypt_at_time(&case.token, Some(case.ttl_sec), unix(&case.now))
                .is_err(),
            "accepted: {}",
            case.desc
        );
        // Cases that are invalid only because of the clock at `now` are
        // valid tokens to a keyring without TTL at today's date.
        let about_time = case.desc.contains("TTL") || case.desc.contains("TS");
        if !about_time {
            assert!(
                keyring(&case.secret).decrypt(&case.token).is_err(),
                "keyring accepted: {}",
                case.desc
            );
        }
    }
}

#[test]
fn python_compatible_key_text() {
    // A generated key is the url-safe base64 (with padding) of 32 bytes,
    // as Python's Fernet.generate_key() makes.
    let key = Keyring::generate_key();
    assert_eq!(key.len(), 44);
    assert!(key.ends_with('='));
    assert_eq!(URL_SAFE.decode(&key).unwrap().len(), 32);
}
