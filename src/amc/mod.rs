//! The Amazon Marketing Cloud API client: Login-with-Amazon tokens, the
//! AMC calls amcctl makes, retries and rate limiting, and the API's JSON.
//!
//! It knows nothing of the store or the terminal. A run builds one
//! [`AmcClient`] (one connection pool, one rate limiter) and asks it for a
//! [`Session`] per user; the store plugs in through [`TokenCache`].
//!
//! Every request, to AMC or to Login with Amazon, goes through the
//! client's one retrying send, which decides retries and logs each
//! attempt; a session keeps only the tokens, and the calls (`api`, `usage`)
//! say what to send and how to read the answer.
//!
//! Policy, in one place:
//! * **Base URL** of a call: the instance's `apiEndpoint` when known and
//!   trusted (Amazon's https hosts, or the origin of the API URL override),
//!   else the override (`AMCCTL_API_URL`), else the region's host.
//! * **Retries**: 429, 500, 502, 503, 504, timeouts and connection errors,
//!   up to [`ClientConfig::retries`] times, sleeping a random time below
//!   `min(cap, base·2ⁿ)` but never less than `Retry-After`, and never past
//!   [`ClientConfig::max_elapsed`]. Other 4xx and undecodable answers are final.
//! * **401**: the token is dropped, refreshed once, and the call repeated
//!   once; a second 401 is final.
//! * **Rate**: every AMC request of the run, whatever its session, passes
//!   one limiter (token requests go to Login with Amazon, outside it): evenly spaced at [`ClientConfig::rate`] per second (burst 1),
//!   so a server bucket of the same rate never throttles us. After a 429,
//!   all callers pause until the throttled caller's retry delay (at least
//!   `Retry-After`) has passed, and each request costs more of the rate
//!   (×2 per 429, up to [`MAX_MULTIPLIER`]), halving again after every
//!   [`DECAY_AFTER`] consecutive answers that are not 429.
//! * **Secrets**: tokens and client secrets never appear in errors, logs or
//!   `Debug` output; server texts pass through [`crate::secrets::scrub`].

mod api;
mod client;
mod error;
mod limiter;
mod session;
mod types;
mod usage;

pub use api::{Advertiser, PAGE_LIMIT};
pub use client::{AmcClient, ClientConfig, MAX_BODY_BYTES, MAX_LISTING_TIME, MAX_PAGES, Reply};
pub use error::{AmcError, AuthError};
pub use limiter::{DECAY_AFTER, MAX_MULTIPLIER};
pub use session::{CachedToken, Credentials, NoTokenCache, Session, TOKEN_MARGIN, TokenCache};
pub use types::{AmcAccount, AmcInstance, Workflow};
pub use usage::{
    Execution, ExecutionStatus, LinkedAdvertiser, Schedule, UsageSnapshot, WorkflowInfo,
};
