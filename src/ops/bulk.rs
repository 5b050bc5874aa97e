//! What the bulk runs (`health check`, `usage sync`) share: their runtime,
//! and receiving the engine's outcomes until it is done or Ctrl-C stops it.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::health;

/// After Ctrl-C, how long work in flight may take to finish.
const GRACE: Duration = Duration::from_secs(5);

/// A runtime for many requests in flight at once.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))
}

/// What [`drive`] hands on.
pub(super) enum Received<R> {
    /// One job's outcome.
    Outcome(R),
    /// Ctrl-C: nothing more is scheduled.
    Interrupt,
}

/// Receives a bulk run's outcomes until the engine is done, handing each to
/// `on`. Ctrl-C stops scheduling, and says so to `on`; outcomes in flight
/// are still received for a grace period. Returns whether the run was
/// interrupted.
pub(super) async fn drive<R>(
    mut rx: tokio::sync::mpsc::Receiver<R>,
    cancel: health::Cancel,
    mut on: impl FnMut(Received<R>) -> Result<()>,
) -> Result<bool> {
    let mut interrupted = false;
    let mut grace_until: Option<tokio::time::Instant> = None;
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Error::internal(format!("cannot watch for Ctrl-C: {e}")))?;
    loop {
        let deadline = grace_until
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400));
        let next = tokio::select! {
            r = rx.recv() => r,
            _ = sigint.recv(), if !interrupted => {
                interrupted = true;
                cancel.cancel();
                grace_until = Some(tokio::time::Instant::now() + GRACE);
                on(Received::Interrupt)?;
                continue;
            }
            _ = tokio::time::sleep_until(deadline) => None,
        };
        let Some(result) = next else { break };
        on(Received::Outcome(result))?;
    }
    Ok(interrupted)
}
