//! The run-wide request limiter: polite by construction, humbler when told.
//!
//! Amazon documents no per-endpoint rate limit for AMC, so the client never
//! bursts: one [`governor`] limiter per run lets requests out evenly spaced
//! at `rate` per second (burst 1). A server-side token bucket of the same
//! rate therefore never runs dry, however many sessions and tasks share the
//! client.
//!
//! When a 429 arrives anyway (another client shares the account's budget),
//! the limiter adapts in two ways:
//!
//! * **Shared pause.** The delay the throttled caller is about to sleep
//!   (at least the server's `Retry-After`) becomes a run-wide "not before"
//!   instant: every caller waits for it, instead of each discovering the
//!   throttle with a 429 of its own.
//! * **Higher price.** Each request costs `multiplier` cells of the limiter
//!   instead of one. The multiplier doubles with each 429 up to
//!   [`MAX_MULTIPLIER`] and halves again after every [`DECAY_AFTER`]
//!   consecutive successes, so the rate backs off quickly and recovers
//!   gradually.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// The most cells one request costs after repeated 429s (rate ÷ 8).
pub const MAX_MULTIPLIER: u32 = 8;
/// Consecutive successes after which the cost of a request halves.
pub const DECAY_AFTER: u32 = 20;

/// One per run, shared by every session (see the module doc).
pub(crate) struct Limiter {
    governor: DefaultDirectRateLimiter,
    adaptive: Mutex<Adaptive>,
}

struct Adaptive {
    not_before: Option<Instant>,
    multiplier: u32,
    successes: u32,
}

impl Limiter {
    /// A limiter for `rate` requests per second (any positive, finite rate;
    /// fractions allowed, e.g. 0.5 for one request every two seconds).
    pub(crate) fn new(rate: f64) -> Result<Self, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!(
                "rate must be a positive number of requests per second, not {rate}"
            ));
        }
        let quota = Duration::try_from_secs_f64(1.0 / rate)
            .ok()
            .and_then(Quota::with_period)
            .ok_or_else(|| format!("rate {rate} requests per second is too high"))?
            .allow_burst(NonZeroU32::MIN);
        Ok(Limiter {
            governor: RateLimiter::direct(quota),
            adaptive: Mutex::new(Adaptive {
                not_before: None,
                multiplier: 1,
                successes: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Adaptive> {
        // The state stays consistent whatever panicked while holding it.
        self.adaptive.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn pause_until(&self) -> Option<Instant> {
        self.lock().not_before.filter(|t| *t > Instant::now())
    }

    /// Waits for this caller's turn: past any shared pause, then for as many
    /// limiter cells as a request currently costs.
    pub(crate) async fn acquire(&self) {
        while let Some(t) = self.pause_until() {
            tokio::time::sleep_until(t).await;
        }
        let cost = self.lock().multiplier;
        for _ in 0..cost {
            self.governor.until_ready().await;
        }
        // A 429 seen by someone else while we queued pauses us too.
        while let Some(t) = self.pause_until() {
            tokio::time::sleep_until(t).await;
        }
    }

    /// Records a 429 after which its receiver sleeps `pause`.
    pub(crate) fn throttled(&self, pause: Duration) {
        let mut a = self.lock();
        let until = Instant::now() + pause;
        a.not_before = Some(a.not_before.map_or(until, |t| t.max(until)));
        a.multiplier = (a.multiplier * 2).min(MAX_MULTIPLIER);
        a.successes = 0;
        tracing::debug!(
            pause_ms = pause.as_millis() as u64,
            cost = a.multiplier,
            "throttled: pausing all requests and slowing down"
        );
    }

    /// Records an answer that was not a 429.
    pub(crate) fn answered(&self) {
        let mut a = self.lock();
        if a.multiplier > 1 {
            a.successes += 1;
            if a.successes >= DECAY_AFTER {
                a.multiplier /= 2;
                a.successes = 0;
            }
        }
    }

    /// The current cost of one request, in cells.
    #[cfg(test)]
    pub(crate) fn cost(&self) -> u32 {
        self.lock().multiplier
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_silly_rates() {
        assert!(Limiter::new(0.0).is_err());
        assert!(Limiter::new(-1.0).is_err());
        assert!(Limiter::new(f64::NAN).is_err());
        assert!(Limiter::new(f64::INFINITY).is_err());
        assert!(Limiter::new(0.5).is_ok());
    }

    #[test]
    fn multiplier_doubles_and_decays() {
        let l = Limiter::new(10.0).unwrap();
        for expected in [2, 4, 8, 8] {
            l.throttled(Duration::ZERO);
            assert_eq!(l.cost(), expected);
        }
        for _ in 0..DECAY_AFTER {
            l.answered();
        }
        assert_eq!(l.cost(), 4);
        for _ in 0..2 * DECAY_AFTER {
            l.answered();
        }
        assert_eq!(l.cost(), 1);
    }

    #[tokio::test]
    async fn spaces_requests_evenly() {
        let l = Limiter::new(50.0).unwrap();
        let start = std::time::Instant::now();
        for _ in 0..6 {
            l.acquire().await;
        }
        // The first is free, the next five wait 20 ms each.
        let elapsed = start.elapsed();
        assert!(elapsed >= Duration::from_millis(90), "{elapsed:?}");
    }

    #[tokio::test]
    async fn shared_pause_holds_everyone() {
        let l = Limiter::new(1000.0).unwrap();
        l.throttled(Duration::from_millis(150));
        let start = std::time::Instant::now();
        l.acquire().await;
        assert!(start.elapsed() >= Duration::from_millis(140));
    }
}
