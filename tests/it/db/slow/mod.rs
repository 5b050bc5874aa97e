//! The slow tests (minutes each): skipped by `cargo test -- --skip ::slow::`
//! and the nextest `quick` profile, run by `cargo test --workspace`.

mod concurrency;
mod copy_at_scale;
mod crashes;
mod pg_concurrency;
mod pg_faults;
