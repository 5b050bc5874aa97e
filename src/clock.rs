//! The wall clock and the source of row ids, read here and nowhere else, so
//! that a test can fix both and see the same tables, ages and ids on every
//! run (as jj's `JJ_TIMESTAMP` and `JJ_RANDOMNESS_SEED` do).
//!
//! `AMCCTL_TEST_NOW` (an RFC 3339 time) stops the clock at that instant;
//! `AMCCTL_TEST_SEED` (a `u64`) makes the row ids a seeded sequence. Both
//! are for tests only: unset (or not parseable), the clock is the system's
//! and the ids are random. Monotonic `Instant`s (timeouts, pacing) are not
//! the wall clock and stay real.

use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::env::{Env, TEST_NOW, TEST_SEED};

/// The current time: `AMCCTL_TEST_NOW` when a test set it, else the system's.
pub fn now() -> DateTime<Utc> {
    static FIXED: OnceLock<Option<DateTime<Utc>>> = OnceLock::new();
    FIXED
        .get_or_init(|| {
            let value = Env::from_process().get(TEST_NOW)?.to_owned();
            DateTime::parse_from_rfc3339(&value)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })
        .unwrap_or_else(Utc::now)
}

/// A fresh UUID v4: the next of the sequence `AMCCTL_TEST_SEED` seeds when a
/// test set it, else a random one.
pub fn uuid_v4() -> Uuid {
    static SEEDED: OnceLock<Option<Mutex<fastrand::Rng>>> = OnceLock::new();
    let seeded = SEEDED.get_or_init(|| {
        let seed = Env::from_process().get(TEST_SEED)?.parse::<u64>().ok()?;
        Some(Mutex::new(fastrand::Rng::with_seed(seed)))
    });
    match seeded {
        Some(rng) => {
            let mut bytes = [0u8; 16];
            rng.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .fill(&mut bytes);
            uuid::Builder::from_random_bytes(bytes).into_uuid()
        }
        None => Uuid::new_v4(),
    }
}
