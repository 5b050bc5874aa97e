//! The bulk health check: every target checked on the engine, each result
//! saved as it comes (on a writer thread, in batches) and reported as an
//! event; Ctrl-C stops scheduling and keeps what completed.

use std::time::{Duration, Instant};

use super::bulk::{Received, drive, runtime};
use crate::domain::HealthRecord;
use crate::error::{Error, Result};
use crate::health::{self, CheckResult, EngineConfig, Sessions, Tally, Target};
use crate::store::{Store, Writer};

/// Results are saved in batches of this size, or after this long, whichever comes first.
const BATCH: usize = 64;
const BATCH_AGE: Duration = Duration::from_millis(250);

/// Checks the engine runs at once for each place among the requests in
/// flight: enough that a quarter of the fleet backing off does not starve
/// the rest, few enough that memory stays proportional to the concurrency.
const CHECKS_PER_PLACE: usize = 4;

/// How a bulk check runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Requests in flight at once; the sessions' client is to be bounded to
    /// it. More checks than that run, so that checks sleeping before a
    /// retry (a throttled instance backs off for seconds) leave their place
    /// to others instead of holding up the fleet.
    pub concurrency: usize,
    /// Also list one workflow: the reporting API must answer too.
    pub deep: bool,
}

/// What happens during a bulk check, as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// One more instance was checked; `tally` counts it already.
    Checked {
        /// Its result, in the order results complete.
        result: &'a CheckResult,
        /// The results so far.
        tally: &'a Tally,
    },
    /// Ctrl-C: nothing more is scheduled, checks in flight may still finish.
    Interrupted,
}

/// What a bulk check did.
#[derive(Debug)]
pub struct Checked {
    /// Every result, in the order they completed; all of them are saved.
    pub results: Vec<CheckResult>,
    /// Counts of `results` by verdict.
    pub tally: Tally,
    /// Whether Ctrl-C stopped it before every target was checked.
    pub interrupted: bool,
    /// How long it took.
    pub elapsed: Duration,
}

/// Checks `targets`, each with its session from `sessions`, and saves the
/// results in `store` (through a connection of the writer's own, so a
/// locked store never holds up the checks), telling `on_event` of each.
pub fn run(
    store: &Store,
    targets: Vec<Target>,
    sessions: Sessions,
    settings: Settings,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Checked> {
    let started = Instant::now();
    let total = targets.len();
    let config = EngineConfig {
        concurrency: settings.concurrency.saturating_mul(CHECKS_PER_PLACE),
        deep: settings.deep,
    };
    let runtime = runtime()?;
    let mut writer = Writer::start(store.location())?;
    let (results, tally, interrupted) = runtime.block_on(async {
        let (rx, cancel) = health::start(targets, sessions, config);
        let mut results: Vec<CheckResult> = Vec::with_capacity(total);
        let mut pending: Vec<HealthRecord> = Vec::with_capacity(BATCH);
        let mut last_flush = Instant::now();
        let mut tally = Tally::default();
        let interrupted = drive(rx, cancel, |received| {
            let result = match received {
                Received::Outcome(result) => result,
                Received::Interrupt => {
                    on_event(Event::Interrupted);
                    return Ok(());
                }
            };
            tally.add(result.status);
            on_event(Event::Checked {
                result: &result,
                tally: &tally,
            });
            pending.push(record(&result));
            if pending.len() >= BATCH || last_flush.elapsed() >= BATCH_AGE {
                writer.offer(&mut pending)?;
                last_flush = Instant::now();
            }
            results.push(result);
            Ok(())
        })
        .await?;
        writer.finish_with(pending)?;
        Ok::<_, Error>((results, tally, interrupted))
    })?;
    Ok(Checked {
        results,
        tally,
        interrupted,
        elapsed: started.elapsed(),
    })
}

/// The store's record of a check result.
pub(crate) fn record(r: &CheckResult) -> HealthRecord {
    HealthRecord {
        instance: r.id,
        checked_at: r.checked_at,
        status: r.status,
        http_status: r.http_status,
        latency_ms: r.latency_ms,
        attempts: r.attempts,
        error: r.error.clone(),
    }
}
