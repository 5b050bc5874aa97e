//! The slow tests (minutes each): skipped by `cargo test -- --skip ::slow::`
//! and the nextest `quick` profile, run by `cargo test --workspace`.

mod concurrency;
mod crashes;
