//! The bulk engine: targets in, a stream of results out. Health checks run
//! on it, and so does `usage sync` (see [`run`]).
//!
//! It knows nothing of the terminal or the store. Concurrency is bounded by a
//! semaphore taken *before* a check is spawned, so a fleet of 10,000 costs
//! `concurrency` tasks at a time, not 10,000; the request rate is bounded by
//! the client's shared limiter. Cancelling stops scheduling new checks; the
//! ones in flight finish and are reported.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio::sync::{Semaphore, mpsc, watch};

use crate::amc::{Advertiser, AmcError, Session};
use crate::domain::{HealthStatus, InstanceId, RowId};

/// One instance to check, with everything the check needs.
#[derive(Debug, Clone)]
pub struct Target {
    /// Row id of the instance.
    pub id: RowId,
    /// AMC's instance ID.
    pub instance_id: InstanceId,
    /// Display name.
    pub name: String,
    /// Owner's name.
    pub owner: String,
    /// The row id of the user whose login serves the target: with
    /// `profile`, picks the session (credentials) to check with.
    pub user_id: RowId,
    /// That user's login profile that serves the instance's account.
    pub profile: String,
    /// Account headers and region.
    pub advertiser: Advertiser,
    /// The instance's own API endpoint, when discovery found one.
    pub api_endpoint: Option<String>,
}

/// What picks a target's session: the owner and their login profile. A
/// bulk run holds one session per key, so each profile's token is
/// refreshed at most once per run.
pub type SessionKey = (RowId, String);

/// The sessions of a bulk run, by key; an error text for a key whose
/// credentials are unusable, so that its targets fail one by one.
pub type Sessions = HashMap<SessionKey, Result<Session, String>>;

impl Target {
    /// The session this target is worked on with.
    pub fn session_key(&self) -> SessionKey {
        (self.user_id, self.profile.clone())
    }
}

/// The outcome of checking one instance, as `health check -o json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Row id.
    pub id: RowId,
    /// AMC's instance ID.
    pub instance_id: InstanceId,
    /// Display name.
    pub name: String,
    /// Owner's name.
    pub owner: String,
    /// The verdict.
    pub status: HealthStatus,
    /// HTTP status of AMC's final answer, if any came.
    pub http_status: Option<u16>,
    /// Latency of the final attempt, when AMC answered (an error answer too).
    pub latency_ms: Option<u64>,
    /// Requests sent, retries included.
    pub attempts: u32,
    /// Why it is not healthy.
    pub error: Option<String>,
    /// When the check finished.
    #[serde(serialize_with = "rfc3339")]
    pub checked_at: DateTime<Utc>,
    /// The row id of the user whose login checked it (not part of the JSON shape).
    #[serde(skip)]
    pub user_id: RowId,
    /// Whether the credentials were at fault (not part of the JSON shape).
    #[serde(skip)]
    pub auth_failure: bool,
    /// What to try about the failure, when the error says (not part of the JSON shape).
    #[serde(skip)]
    pub hint: Option<&'static str>,
}

fn rfc3339<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&crate::domain::fmt_time(t))
}

/// How a bulk check runs.
#[derive(Debug, Clone, Copy)]
pub struct EngineConfig {
    /// Checks in flight at once.
    pub concurrency: usize,
    /// Also list one workflow (the reporting API must answer too) and the
    /// linked advertisers (there must be one).
    pub deep: bool,
}

/// Stops a running check from scheduling more work.
#[derive(Debug, Clone)]
pub struct Cancel(Arc<watch::Sender<bool>>);

impl Cancel {
    /// Stops scheduling; checks in flight still complete.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }
}

/// Starts checking `targets` and returns the results as they complete, plus
/// a handle to stop early. `sessions` maps an owner's row id to the session
/// holding their credentials; a target whose owner has none gets an ERROR
/// result. Must be called inside a tokio runtime.
pub fn start(
    targets: Vec<Target>,
    sessions: Sessions,
    config: EngineConfig,
) -> (mpsc::Receiver<CheckResult>, Cancel) {
    let deep = config.deep;
    run(
        targets,
        sessions,
        config.concurrency,
        move |target, session| async move { check(&target, session.as_ref(), deep).await },
    )
}

/// The engine itself, for any per-instance job (a health check, a usage
/// sync): runs `job` on every target, at most `concurrency` at once, each
/// with its owner's session (`None` when the owner has none), and returns
/// the outcomes as they complete plus a handle to stop scheduling. Every
/// request of every job goes through the sessions' shared client, so one
/// rate limiter and one retry policy cover the run. Must be called inside a
/// tokio runtime.
pub fn run<R, F, Fut>(
    targets: Vec<Target>,
    sessions: Sessions,
    concurrency: usize,
    job: F,
) -> (mpsc::Receiver<R>, Cancel)
where
    R: Send + 'static,
    F: Fn(Target, Option<Result<Session, String>>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = R> + Send + 'static,
{
    let (tx, rx) = mpsc::channel(concurrency.max(1) * 2);
    let (cancel_tx, mut cancel_rx) = watch::channel(false);
    let job = Arc::new(job);
    tokio::spawn(async move {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        for target in targets {
            let permit = tokio::select! {
                biased;
                _ = cancel_rx.wait_for(|c| *c) => break,
                p = permits.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            if *cancel_rx.borrow() {
                break;
            }
            let tx = tx.clone();
            let session = sessions.get(&target.session_key()).cloned();
            let work = job(target, session);
            tokio::spawn(async move {
                let result = work.await;
                // The receiver may be gone (the command stopped listening): nothing to do then.
                let _ = tx.send(result).await;
                drop(permit);
            });
        }
    });
    (rx, Cancel(Arc::new(cancel_tx)))
}

/// Checks one instance.
pub async fn check(
    target: &Target,
    session: Option<&Result<Session, String>>,
    deep: bool,
) -> CheckResult {
    let mut result = CheckResult {
        id: target.id,
        instance_id: target.instance_id.clone(),
        name: target.name.clone(),
        owner: target.owner.clone(),
        status: HealthStatus::Error,
        http_status: None,
        latency_ms: None,
        attempts: 0,
        error: None,
        checked_at: crate::clock::now(),
        user_id: target.user_id,
        auth_failure: false,
        hint: None,
    };
    let session = match session {
        Some(Ok(s)) => s,
        Some(Err(why)) => {
            result.error = Some(why.clone());
            result.auth_failure = true;
            return result;
        }
        None => {
            result.error = Some(format!("no credentials for user {}", target.owner));
            result.auth_failure = true;
            return result;
        }
    };
    let endpoint = target.api_endpoint.as_deref();
    match session
        .get_instance(&target.advertiser, &target.instance_id, endpoint)
        .await
    {
        Ok(reply) => {
            result.http_status = Some(reply.status);
            result.latency_ms = Some(millis(reply.latency));
            result.attempts = reply.attempts;
            if reply.value.is_completed() {
                result.status = HealthStatus::Healthy;
            } else {
                result.status = HealthStatus::Unhealthy;
                result.error = Some(format!(
                    "instance is not ready: creationStatus {}",
                    reply.value.creation_status.as_deref().unwrap_or("missing")
                ));
            }
        }
        Err(e) => fail(&mut result, &e),
    }
    if deep && result.status == HealthStatus::Healthy {
        match session
            .list_workflows(&target.advertiser, &target.instance_id, endpoint)
            .await
        {
            Ok(reply) => {
                result.attempts += reply.attempts;
                result.http_status = Some(reply.status);
            }
            Err(e) => {
                let attempts = result.attempts;
                fail(&mut result, &e);
                result.attempts += attempts;
                result.error = result.error.map(|m| format!("reporting API: {m}"));
            }
        }
    }
    if deep && result.status == HealthStatus::Healthy {
        // An instance no advertiser is linked to answers, but measures nothing.
        match session
            .list_advertisers(&target.advertiser, &target.instance_id)
            .await
        {
            Ok(reply) => {
                result.attempts += reply.attempts;
                result.http_status = Some(reply.status);
                if reply.value.is_empty() {
                    result.status = HealthStatus::Unhealthy;
                    result.error = Some("no advertisers linked".into());
                }
            }
            Err(e) => {
                let attempts = result.attempts;
                fail(&mut result, &e);
                result.attempts += attempts;
                result.error = result.error.map(|m| format!("linked advertisers: {m}"));
            }
        }
    }
    result.checked_at = crate::clock::now();
    result
}

fn fail(result: &mut CheckResult, e: &AmcError) {
    result.status = e.health_status();
    result.http_status = e.status();
    result.latency_ms = e.latency().map(millis);
    result.attempts = e.attempts();
    result.error = Some(e.to_string());
    result.auth_failure = e.is_auth();
    result.hint = e.hint();
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Counts by verdict, for progress lines and summaries.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Tally {
    /// Results so far.
    pub checked: usize,
    /// HEALTHY results.
    pub healthy: usize,
    /// UNHEALTHY results.
    pub unhealthy: usize,
    /// ERROR results.
    pub error: usize,
}

impl Tally {
    /// Counts one result.
    pub fn add(&mut self, status: HealthStatus) {
        self.checked += 1;
        match status {
            HealthStatus::Healthy => self.healthy += 1,
            HealthStatus::Unhealthy => self.unhealthy += 1,
            HealthStatus::Error | HealthStatus::Unknown => self.error += 1,
        }
    }
}
