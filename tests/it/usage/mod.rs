//! `usage` and `schedule`: syncing executions and reporting on them.

mod e2e;
mod human;
