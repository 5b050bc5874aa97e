//! The run-wide request limiter: polite by construction, humbler when told.
//!
//! Amazon documents no per-endpoint rate limit for AMC, so the client never
//! bursts: one limiter per run lets requests out evenly spaced at `rate`
//! per second. A server-side token bucket of the same rate therefore never
//! runs dry, however many sessions and tasks share the client.
//!
//! Spacing is by **reservation**: a caller takes the next free send slot
//! (`period` after the previous one, or now if the limiter is idle) the
//! moment it asks, then sleeps until that slot. A caller that wakes late
//! (tokio's timer has 1 ms ticks; a busy machine adds more) sends late, but
//! the slots after it stay where they were, so lateness never adds up and a
//! long run keeps the configured rate. (A check-then-sleep limiter such as
//! `governor`'s `until_ready` with burst 1 restarts the spacing from each
//! late wake-up and loses a tenth of its rate at 1,000/s.)
//!
//! When a 429 arrives anyway (another client shares the account's budget),
//! the limiter adapts in two ways:
//!
//! * **Shared pause.** The delay the throttled caller is about to sleep
//!   (at least the server's `Retry-After`) becomes a run-wide "not before"
//!   instant: no slot is handed out before it, and a caller whose slot falls
//!   inside it queues again for a slot after it, so the pause ends with the
//!   usual spacing rather than a burst.
//! * **Higher price.** Each request takes `multiplier` periods of the
//!   schedule instead of one. The multiplier doubles with each 429 up to
//!   [`MAX_MULTIPLIER`] and halves again after every [`DECAY_AFTER`]
//!   consecutive successes, so the rate backs off quickly and recovers
//!   gradually.
//!
//! Both apply to a 429 that carries `Retry-After`. AMC does not promise the
//! header, and a 429 without it often means one busy instance: its caller
//! backs off on its own (at least a second, doubling), and the run as a
//! whole slows down only once such 429s are the majority of recent answers.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The most periods one request costs after repeated 429s (rate ÷ 8).
pub const MAX_MULTIPLIER: u32 = 8;
/// Consecutive successes after which the cost of a request halves.
pub const DECAY_AFTER: u32 = 20;
/// Answers over which the share of 429s without `Retry-After` is judged.
const WINDOW: u32 = 20;

/// One per run, shared by every session (see the module doc).
pub(crate) struct Limiter {
    /// Time between two requests at cost 1.
    period: Duration,
    state: Mutex<State>,
}

struct State {
    /// The earliest send slot not yet handed out.
    next_slot: Option<Instant>,
    not_before: Option<Instant>,
    multiplier: u32,
    successes: u32,
    /// Answers in the current window, and the 429s without `Retry-After`
    /// among them.
    window: (u32, u32),
    /// Doublings of the price that windows made, and windows may undo.
    window_raised: u32,
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
        let period = Duration::try_from_secs_f64(1.0 / rate)
            .ok()
            .filter(|p| !p.is_zero())
            .ok_or_else(|| format!("rate {rate} requests per second is too high"))?;
        Ok(Limiter {
            period,
            state: Mutex::new(State {
                next_slot: None,
                not_before: None,
                multiplier: 1,
                successes: 0,
                window: (0, 0),
                window_raised: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent whatever panicked while holding it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn paused(&self, now: Instant) -> bool {
        self.lock().not_before.is_some_and(|t| t > now)
    }

    /// Waits for this caller's turn: reserves the next send slot (never
    /// inside a shared pause) and sleeps until it. A caller dropped while
    /// waiting leaves its slot unused.
    pub(crate) async fn acquire(&self) {
        loop {
            let slot = {
                let mut s = self.lock();
                let now = Instant::now();
                let slot = [s.next_slot, s.not_before]
                    .into_iter()
                    .flatten()
                    .fold(now, Instant::max);
                let cost = self.period.saturating_mul(s.multiplier);
                s.next_slot = slot.checked_add(cost).or(Some(slot));
                slot
            };
            tokio::time::sleep_until(slot).await;
            // A 429 seen by someone else while we waited pauses us too.
            if !self.paused(Instant::now()) {
                return;
            }
        }
    }

    /// Records a 429 that named its `Retry-After`, after which its receiver
    /// sleeps `pause`: the server said how long, so everyone waits that long.
    pub(crate) fn throttled(&self, pause: Duration) {
        let mut s = self.lock();
        let until = Instant::now() + pause;
        s.not_before = Some(s.not_before.map_or(until, |t| t.max(until)));
        s.multiplier = (s.multiplier * 2).min(MAX_MULTIPLIER);
        s.successes = 0;
        tracing::debug!(
            pause_ms = pause.as_millis() as u64,
            cost = s.multiplier,
            "throttled: pausing all requests and slowing down"
        );
    }

    /// Records a 429 without `Retry-After`. AMC sends those for one busy
    /// instance as well as for a busy account, so one such answer is its
    /// receiver's to back off from (at least a second, doubling), not a
    /// reason to stall the whole run. The run slows down (as after
    /// [`throttled`](Self::throttled), without the pause) once per window of
    /// [`WINDOW`] answers of which most were such 429s, and speeds up again
    /// after a window in which they were not most.
    pub(crate) fn throttled_unannounced(&self) {
        let mut s = self.lock();
        s.window.1 += 1;
        s.successes = 0;
        Self::count(&mut s);
    }

    /// Records an answer that was not a 429.
    pub(crate) fn answered(&self) {
        let mut s = self.lock();
        if s.multiplier > 1 {
            s.successes += 1;
            if s.successes >= DECAY_AFTER {
                s.multiplier /= 2;
                s.successes = 0;
            }
        }
        Self::count(&mut s);
    }

    /// Counts one answer in the window and judges a full window.
    fn count(s: &mut State) {
        s.window.0 += 1;
        let (answers, throttled) = s.window;
        if answers < WINDOW {
            return;
        }
        if throttled * 2 > answers {
            if s.multiplier < MAX_MULTIPLIER {
                s.window_raised += 1;
            }
            s.multiplier = (s.multiplier * 2).min(MAX_MULTIPLIER);
            tracing::debug!(
                cost = s.multiplier,
                "most recent answers were 429s: slowing down"
            );
        } else if s.window_raised > 0 && s.multiplier > 1 {
            s.window_raised -= 1;
            s.multiplier /= 2;
        }
        s.window = (0, 0);
    }

    /// The current cost of one request, in periods.
    #[cfg(test)]
    pub(crate) fn cost(&self) -> u32 {
        self.lock().multiplier
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn unannounced_429s_slow_the_run_only_when_they_are_most_answers() {
        let l = Limiter::new(10.0).unwrap();
        // A quarter of the answers: no reaction, however long it goes on.
        for _ in 0..50 {
            l.throttled_unannounced();
            for _ in 0..3 {
                l.answered();
            }
        }
        assert_eq!(l.cost(), 1);
        // Most of them: dearer once per window, and no pause.
        for _ in 0..WINDOW {
            l.throttled_unannounced();
        }
        assert_eq!(l.cost(), 2);
        assert!(!l.paused(Instant::now()));
        // A window without a majority of them brings the price back down.
        for _ in 0..WINDOW {
            l.answered();
        }
        assert_eq!(l.cost(), 1);
    }

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

    /// Waking up late (tokio's timer has 1 ms ticks, and a busy machine adds
    /// more) must not cost throughput: 1,000 requests at 2,000/s take 0.5 s.
    #[tokio::test(start_paused = true)]
    async fn keeps_the_rate_when_callers_wake_late() {
        let l = Arc::new(Limiter::new(2000.0).unwrap());
        let start = Instant::now();
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move {
                    for _ in 0..125 {
                        l.acquire().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(495) && elapsed <= Duration::from_millis(505),
            "{elapsed:?}"
        );
    }

    /// Callers already queued when a 429 arrives go after the pause, one
    /// period apart, not all at once when it ends.
    #[tokio::test(start_paused = true)]
    async fn a_pause_ends_without_a_burst() {
        let l = Arc::new(Limiter::new(100.0).unwrap());
        let start = Instant::now();
        l.acquire().await;
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                tokio::spawn(async move {
                    l.acquire().await;
                    Instant::now()
                })
            })
            .collect();
        // Let every task reserve its slot (10, 20, 30 and 40 ms) first.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        l.throttled(Duration::from_millis(100));
        let mut sent = Vec::new();
        for t in tasks {
            sent.push(t.await.unwrap() - start);
        }
        sent.sort();
        assert!(sent[0] >= Duration::from_millis(100), "{sent:?}");
        for pair in sent.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(10), "{sent:?}");
        }
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
