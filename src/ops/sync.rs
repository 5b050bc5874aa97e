//! `usage sync`: the workflows, executions and schedules of every target
//! fetched on the bulk engine, each instance's saved in one transaction as
//! it comes and reported as an event; Ctrl-C stops scheduling and keeps
//! what completed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::bulk::{Received, drive, runtime};
use crate::amc::{Session, UsageSnapshot};
use crate::domain::RowId;
use crate::domain::{SyncMark, fmt_time};
use crate::error::{Error, Kind, Result};
use crate::health::{self, Sessions, Target};
use crate::store::Store;

/// How far back a first sync looks by default.
const DEFAULT_WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// A later sync starts this long before the previous one did, so executions
/// AMC listed late are not missed.
pub const SYNC_OVERLAP: Duration = Duration::from_secs(3600);

/// How a sync runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Instances synced at once.
    pub concurrency: usize,
    /// Executions created in this period; `None` picks up where each
    /// instance's last sync left off (else the last 30 days). Must be
    /// representable as a [`TimeDelta`].
    pub since: Option<Duration>,
}

/// The outcome of syncing one instance.
#[derive(Debug, Clone, Serialize)]
pub struct SyncResult {
    /// Row id.
    pub id: RowId,
    /// AMC's instance ID.
    pub instance_id: String,
    /// Display name.
    pub name: String,
    /// Owner's name.
    pub owner: String,
    /// `OK` or `ERROR`.
    pub status: &'static str,
    /// Workflows stored.
    pub workflows: Option<usize>,
    /// Executions fetched (new or updated).
    pub executions: Option<usize>,
    /// Schedules stored.
    pub schedules: Option<usize>,
    /// Pages read.
    pub pages: u32,
    /// Requests sent, retries included.
    pub attempts: u32,
    /// The `minCreationTime` asked for.
    pub since: String,
    /// Why it failed.
    pub error: Option<String>,
    #[serde(skip)]
    snapshot: Option<UsageSnapshot>,
    #[serde(skip)]
    window: DateTime<Utc>,
}

impl SyncResult {
    /// Whether the instance was synced and saved.
    pub fn ok(&self) -> bool {
        self.status == "OK"
    }
}

/// What happens during a sync, as it happens.
#[derive(Debug)]
pub enum Event<'a> {
    /// One more instance was synced (and saved) or failed.
    Synced {
        /// Its result, in the order results complete.
        result: &'a SyncResult,
        /// Instances synced so far.
        ok: usize,
        /// Instances failed so far.
        failed: usize,
    },
    /// Ctrl-C: nothing more is scheduled, syncs in flight may still finish.
    Interrupted,
}

/// What a sync did.
#[derive(Debug)]
pub struct Synced {
    /// Every result, in the order they completed.
    pub results: Vec<SyncResult>,
    /// Instances synced and saved.
    pub ok: usize,
    /// Instances that failed.
    pub failed: usize,
    /// Whether Ctrl-C stopped it before every target was synced.
    pub interrupted: bool,
    /// How long it took.
    pub elapsed: Duration,
}

/// Syncs `targets`, each with its session from `sessions`, saving each
/// instance's usage in `store` as it comes and telling `on_event` of it.
pub fn run(
    store: &mut Store,
    targets: Vec<Target>,
    sessions: Sessions,
    settings: Settings,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Synced> {
    let started_at = crate::domain::now();
    let marks = store.sync_marks()?;
    let windows: Arc<HashMap<RowId, DateTime<Utc>>> = Arc::new(
        targets
            .iter()
            .map(|t| {
                let window = window_start(started_at, settings.since, marks.get(&t.id));
                (t.id, window)
            })
            .collect(),
    );
    let total = targets.len();
    let started = Instant::now();
    let runtime = runtime()?;
    let (results, ok, failed, interrupted) = runtime.block_on(async {
        let job_windows = windows.clone();
        let (rx, cancel) = health::run(targets, sessions, settings.concurrency, move |t, s| {
            let window = job_windows
                .get(&t.id)
                .copied()
                .unwrap_or(started_at - TimeDelta::days(30));
            async move { sync_one(t, s, window).await }
        });
        let mut results: Vec<SyncResult> = Vec::with_capacity(total);
        let (mut ok, mut failed) = (0usize, 0usize);
        let interrupted = drive(rx, cancel, |received| {
            let mut r = match received {
                Received::Outcome(r) => r,
                Received::Interrupt => {
                    on_event(Event::Interrupted);
                    return Ok(());
                }
            };
            if let Some(snap) = r.snapshot.take() {
                // One transaction per instance: all of it is kept, or none.
                let saved = store.save_usage(r.id, started_at, r.window, &snap);
                match saved.map_err(Error::from) {
                    Ok(_) => {}
                    Err(e) if e.kind == Kind::Store => return Err(e),
                    Err(e) => {
                        r.status = "ERROR";
                        r.error = Some(e.message);
                    }
                }
            }
            if r.ok() {
                ok += 1;
            } else {
                failed += 1;
            }
            on_event(Event::Synced {
                result: &r,
                ok,
                failed,
            });
            results.push(r);
            Ok(())
        })
        .await?;
        Ok::<_, Error>((results, ok, failed, interrupted))
    })?;
    Ok(Synced {
        results,
        ok,
        failed,
        interrupted,
        elapsed: started.elapsed(),
    })
}

/// Where a sync of an instance starts: `since` back when given; else the
/// last sync's start less [`SYNC_OVERLAP`], or the oldest execution then
/// still in flight if older (so executions that finished since are
/// updated); else the default window.
fn window_start(
    now: DateTime<Utc>,
    since: Option<Duration>,
    mark: Option<&SyncMark>,
) -> DateTime<Utc> {
    let back = |d: Duration| now - TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX);
    if let Some(d) = since {
        return back(d);
    }
    match mark {
        None => back(DEFAULT_WINDOW),
        Some(m) => {
            let from_last = m.synced_at - TimeDelta::from_std(SYNC_OVERLAP).unwrap_or_default();
            m.oldest_in_flight
                .map_or(from_last, |oldest| oldest.min(from_last))
        }
    }
}

async fn sync_one(
    t: Target,
    session: Option<std::result::Result<Session, String>>,
    window: DateTime<Utc>,
) -> SyncResult {
    let mut r = SyncResult {
        id: t.id,
        instance_id: t.instance_id.to_string(),
        name: t.name.clone(),
        owner: t.owner.clone(),
        status: "ERROR",
        workflows: None,
        executions: None,
        schedules: None,
        pages: 0,
        attempts: 0,
        since: fmt_time(&window),
        error: None,
        snapshot: None,
        window,
    };
    let session = match session {
        Some(Ok(s)) => s,
        Some(Err(why)) => {
            r.error = Some(why);
            return r;
        }
        None => {
            r.error = Some(format!("no credentials for user {}", t.owner));
            return r;
        }
    };
    match session
        .fetch_usage(
            &t.advertiser,
            &t.instance_id,
            t.api_endpoint.as_deref(),
            window,
        )
        .await
    {
        Ok(snap) => {
            r.status = "OK";
            r.workflows = Some(snap.workflows.len());
            r.executions = Some(snap.executions.len());
            r.schedules = Some(snap.schedules.len());
            r.pages = snap.pages;
            r.attempts = snap.attempts;
            r.snapshot = Some(snap);
        }
        Err(e) => {
            r.attempts = e.attempts();
            r.error = Some(e.to_string());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_starts_where_the_last_sync_did_or_at_the_oldest_run_in_flight() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T18:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let h = |n: i64| now - TimeDelta::hours(n);
        assert_eq!(window_start(now, None, None), now - TimeDelta::days(30));
        assert_eq!(
            window_start(now, Some(Duration::from_secs(7200)), None),
            h(2)
        );
        let mark = SyncMark {
            synced_at: h(5),
            oldest_in_flight: None,
        };
        assert_eq!(window_start(now, None, Some(&mark)), h(6));
        let mark = SyncMark {
            synced_at: h(5),
            oldest_in_flight: Some(h(9)),
        };
        assert_eq!(window_start(now, None, Some(&mark)), h(9));
        let mark = SyncMark {
            synced_at: h(5),
            oldest_in_flight: Some(h(5)),
        };
        assert_eq!(window_start(now, None, Some(&mark)), h(6));
    }
}
