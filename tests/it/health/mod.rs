//! `health` and `dashboard`: bulk checks, history, reports, progress, and
//! the network faults a check meets.

mod dashboard;
mod e2e;
mod faults;
mod human;
mod progress_pty;
