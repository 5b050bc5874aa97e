//! The run-wide client: configuration, the HTTP connection pool, the shared
//! limiter, and the one retrying send every call goes through.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use secrecy::SecretString;

use super::error::AmcError;
use super::limiter::Limiter;
use crate::domain::Region;

/// Largest response body read; anything longer is a decode error on
/// success and cut short on failure. AMC's pages are far smaller.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Most pages a listing follows by default: 100,000 rows at AMC's page size.
pub const MAX_PAGES: usize = 1_000;
/// Longest a listing runs by default, over all its pages.
pub const MAX_LISTING_TIME: Duration = Duration::from_secs(300);
/// What every call accepts: JSON first, and anything else rather than a
/// 415, since AMC's documents declare vendor types such as
/// `application/vnd.amcinstances.v1+json`.
const ACCEPT_VALUE: &str = "application/json, */*;q=0.8";

/// How the client talks to AMC; one per run.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base URL replacing the region's API host (`AMCCTL_API_URL`: sandbox,
    /// proxy, tests). An instance's `apiEndpoint` still wins when known.
    pub api_url: Option<String>,
    /// Token endpoint replacing the region's (`AMCCTL_AUTH_URL`).
    pub auth_url: Option<String>,
    /// Limit on one attempt, from sending to the last byte of the body.
    pub timeout: Duration,
    /// Limit on establishing a connection.
    pub connect_timeout: Duration,
    /// Retries after a throttle, 5xx, timeout or connection error (so at
    /// most `retries + 1` attempts, plus one after a 401).
    pub retries: u32,
    /// Requests per second for the whole run, across all sessions.
    pub rate: f64,
    /// First backoff step; the n-th retry sleeps a random time below
    /// `min(backoff_cap, backoff_base · 2ⁿ)` ("full jitter"), but never
    /// less than `backoff_floor` nor less than `Retry-After`.
    pub backoff_base: Duration,
    /// Shortest sleep before a retry. AMC does not promise `Retry-After`,
    /// and Amazon advises seconds (2 s, 4 s, 8 s …) between attempts, so a
    /// throttled call does not give up within a few hundred milliseconds.
    pub backoff_floor: Duration,
    /// Longest backoff step.
    pub backoff_cap: Duration,
    /// Bound on one call's total time: no retry starts whose sleep would
    /// end later than this after the first attempt.
    pub max_elapsed: Duration,
    /// Most pages one listing follows before it is declared endless.
    pub max_pages: usize,
    /// Bound on one listing's total time, over all its pages.
    pub max_listing_time: Duration,
    /// Certificates trusted besides the bundled roots and the operating
    /// system's store (`--ca-bundle`: proxies that inspect TLS).
    pub extra_roots: Vec<reqwest::Certificate>,
    /// Most requests in flight at once across the run (`None`: no bound).
    /// A call sleeping before a retry holds no place, so a throttled check
    /// waiting out its backoff does not keep the rest of a fleet waiting.
    pub max_in_flight: Option<usize>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            api_url: None,
            auth_url: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retries: 4,
            rate: 10.0,
            backoff_base: Duration::from_secs(1),
            backoff_floor: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(20),
            max_elapsed: Duration::from_secs(120),
            max_pages: MAX_PAGES,
            max_listing_time: MAX_LISTING_TIME,
            extra_roots: Vec::new(),
            max_in_flight: None,
        }
    }
}

/// A successful call's value and how it went.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<T> {
    /// The decoded answer.
    pub value: T,
    /// HTTP status of the final answer.
    pub status: u16,
    /// Requests sent (summed over pages for a paginated listing).
    pub attempts: u32,
    /// Duration of the final attempt (summed over pages for a listing).
    pub latency: Duration,
}

/// The AMC client of one run: a connection pool and one limiter shared by
/// every [`Session`](super::Session). Cheap to clone.
#[derive(Clone)]
pub struct AmcClient {
    inner: Arc<ClientInner>,
}

struct ClientInner {
    http: reqwest::Client,
    config: ClientConfig,
    limiter: Limiter,
    /// Places for requests in flight ([`ClientConfig::max_in_flight`]).
    in_flight: Option<Arc<tokio::sync::Semaphore>>,
}

impl std::fmt::Debug for AmcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmcClient")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Domains whose `https` hosts may receive our tokens via an `apiEndpoint`.
const AMAZON_DOMAINS: [&str; 3] = ["amazon.com", "amazon.co.uk", "amazon.co.jp"];

impl AmcClient {
    /// Builds the client; fails on an unusable rate or URL override.
    pub fn new(config: ClientConfig) -> Result<Self, AmcError> {
        for url in [&config.api_url, &config.auth_url].into_iter().flatten() {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| AmcError::Config(format!("bad URL {url}: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(AmcError::Config(format!(
                    "bad URL {url}: not http or https"
                )));
            }
        }
        let limiter = Limiter::new(config.rate).map_err(AmcError::Config)?;
        // The bundled roots and the operating system's store (reqwest adds
        // both with our features), plus `--ca-bundle`. Proxies come from
        // HTTPS_PROXY / NO_PROXY, which reqwest reads by default.
        let mut builder = reqwest::Client::builder();
        for cert in &config.extra_roots {
            builder = builder.add_root_certificate(cert.clone());
        }
        let http = builder
            .user_agent(concat!("amcctl/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.connect_timeout)
            // AMC does not redirect; following one could carry the token elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AmcError::Config(format!("cannot build the HTTP client: {e}")))?;
        let in_flight = config
            .max_in_flight
            .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1))));
        Ok(AmcClient {
            inner: Arc::new(ClientInner {
                http,
                config,
                limiter,
                in_flight,
            }),
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The base URL of a call: a trusted `apiEndpoint`, else the override,
    /// else the region's host. No trailing slash.
    pub(crate) fn api_base(&self, region: Region, api_endpoint: Option<&str>) -> String {
        if let Some(ep) = api_endpoint.map(str::trim).filter(|e| !e.is_empty()) {
            if self.trusted_endpoint(ep) {
                return ep.trim_end_matches('/').to_owned();
            }
            tracing::warn!(
                endpoint = ep,
                "ignoring an apiEndpoint outside Amazon's https hosts and the configured API URL"
            );
        }
        self.config()
            .api_url
            .as_deref()
            .unwrap_or(region.api_url())
            .trim_end_matches('/')
            .to_owned()
    }

    /// An `apiEndpoint` comes from a server response or an import file, and
    /// the bearer token goes wherever it points: only Amazon's own https
    /// hosts, or the origin of the configured API URL, are accepted.
    fn trusted_endpoint(&self, endpoint: &str) -> bool {
        let Ok(url) = reqwest::Url::parse(endpoint) else {
            return false;
        };
        let same_origin = self
            .config()
            .api_url
            .as_deref()
            .and_then(|o| reqwest::Url::parse(o).ok())
            .is_some_and(|o| o.origin() == url.origin());
        let amazon = url.scheme() == "https"
            && url.host_str().is_some_and(|h| {
                AMAZON_DOMAINS
                    .iter()
                    .any(|d| h == *d || h.strip_suffix(d).is_some_and(|p| p.ends_with('.')))
            });
        same_origin || amazon
    }

    /// The token endpoint for credentials of `region`.
    pub(crate) fn token_url(&self, region: Region) -> &str {
        self.config()
            .auth_url
            .as_deref()
            .unwrap_or(region.token_url())
    }

    /// Sends `call` under the one retry policy of the run (see the module
    /// doc of [`crate::amc`]) and logs every attempt. Retried: 429, 5xx,
    /// timeouts and connection errors, within [`ClientConfig::retries`] and
    /// [`ClientConfig::max_elapsed`]; a 401 to a presented bearer token
    /// makes `auth` forget it and the call is repeated once. What comes
    /// back is the final answer or failure, for the caller to read; an
    /// error only when `auth` has nothing to present.
    pub(crate) async fn send(
        &self,
        call: &Call<'_>,
        auth: &impl Authorize,
    ) -> Result<Sent, AmcError> {
        let inner = &*self.inner;
        let config = &inner.config;
        let limited = call.service == Service::Amc;
        let (mut attempts, mut retries, mut refreshed) = (0u32, 0u32, false);
        let mut first_sent: Option<Instant> = None;
        loop {
            // A place among the requests in flight, held until the answer
            // is read and given back before any backoff sleep. Taken before
            // the token, so no one waits for a place holding a token that a
            // 401 meanwhile showed to be stale.
            let place = match &inner.in_flight {
                Some(places) if limited => places.acquire().await.ok(),
                _ => None,
            };
            let (headers, bearer) = auth.present().await?;
            if limited {
                inner.limiter.acquire().await;
            }
            attempts += 1;
            let sent = Instant::now();
            let first_sent = *first_sent.get_or_insert(sent);
            let mut request = inner
                .http
                .request(call.method.clone(), call.url.clone())
                .query(call.query)
                .headers(headers)
                .header(ACCEPT, ACCEPT_VALUE)
                .timeout(config.timeout);
            if let Some(form) = call.form {
                request = request.form(form);
            }
            let outcome = execute(request).await;
            drop(place);
            let latency = sent.elapsed();
            let status = outcome.as_ref().ok().map(|r| r.status);
            let (retryable, retry_after) = match &outcome {
                Ok(raw) if raw.is_success() => {
                    if limited {
                        inner.limiter.answered();
                    }
                    log_attempt(call, status, attempts, latency, None);
                    return Ok(Sent {
                        outcome,
                        attempts,
                        latency,
                        bearer,
                    });
                }
                Ok(raw) if raw.status == 401 && !refreshed && bearer.is_some() => {
                    if limited {
                        inner.limiter.answered();
                    }
                    log_attempt(call, status, attempts, latency, Some(Duration::ZERO));
                    refreshed = true;
                    if let Some(token) = &bearer {
                        auth.refused(token).await;
                    }
                    continue;
                }
                Ok(raw) => {
                    if limited && raw.status != 429 {
                        inner.limiter.answered();
                    }
                    (is_retryable(raw.status), raw.retry_after)
                }
                Err(Failure::Timeout) => (true, None),
                // An untrusted certificate stays untrusted: no retry.
                Err(Failure::Network(_, tls)) => (!tls, None),
            };
            let delay = inner.backoff(retries).max(retry_after.unwrap_or_default());
            let give_up = !retryable
                || retries >= config.retries
                || first_sent.elapsed() + delay > config.max_elapsed;
            if limited && status == Some(429) {
                if retry_after.is_none() {
                    inner.limiter.throttled_unannounced();
                } else {
                    // Everyone waits as long as this caller is about to; one
                    // that gives up (say, on `Retry-After: 3600`) holds no
                    // one up, or a bulk check would stall on a pause nobody
                    // takes part in.
                    inner
                        .limiter
                        .throttled(if give_up { Duration::ZERO } else { delay });
                }
            }
            log_attempt(call, status, attempts, latency, (!give_up).then_some(delay));
            if give_up {
                return Ok(Sent {
                    outcome,
                    attempts,
                    latency,
                    bearer,
                });
            }
            retries += 1;
            tokio::time::sleep(delay).await;
        }
    }
}

/// The service a call goes to: it decides whether the call passes the
/// run's limiter and how its attempts are logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// AMC's API: every request passes the limiter and takes a place
    /// among the requests in flight.
    Amc,
    /// Login with Amazon's token endpoint: another service with its own
    /// limits, outside ours. It must be, too: a refresh runs while other
    /// callers of the session hold places and wait for its token, so a
    /// refresh waiting for a place could wait forever.
    LoginWithAmazon,
}

/// One request to send: what [`AmcClient::send`] needs besides the
/// headers that [`Authorize`] presents per attempt.
pub(crate) struct Call<'a> {
    /// Where it goes, which decides limits and log line.
    pub service: Service,
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    /// The path as errors and logs name the request (never the host or
    /// the query, which may carry a pagination token).
    pub path: &'a str,
    pub query: &'a [(&'a str, &'a str)],
    /// A form body (the token requests).
    pub form: Option<&'a [(&'a str, &'a str)]>,
}

/// What a call presents on each attempt: asked again before every attempt,
/// so a retry after a 401 carries a fresh token.
pub(crate) trait Authorize {
    /// The headers of the next attempt, and the bearer token among them
    /// (`None`: the call has no token a 401 could be about).
    async fn present(&self) -> Result<(HeaderMap, Option<SecretString>), AmcError>;
    /// The server refused `token` with 401: it must not be presented again.
    async fn refused(&self, token: &SecretString);
}

/// A call that presents nothing: the token requests, whose credentials
/// are in the form.
pub(crate) struct NoBearer;

impl Authorize for NoBearer {
    async fn present(&self) -> Result<(HeaderMap, Option<SecretString>), AmcError> {
        Ok((HeaderMap::new(), None))
    }
    async fn refused(&self, _token: &SecretString) {}
}

/// How a sent call ended, and what it cost.
pub(crate) struct Sent {
    /// The final answer (a success, an error status not retried, or the
    /// last one retried), or why the last attempt got none.
    pub outcome: Result<Raw, Failure>,
    /// Requests sent.
    pub attempts: u32,
    /// Duration of the final attempt.
    pub latency: Duration,
    /// The bearer token the final attempt presented, to be cut out of
    /// anything the server echoed.
    pub bearer: Option<SecretString>,
}

/// The debug line of one attempt; `retry_in` is the sleep before the next
/// one, if there is one.
fn log_attempt(
    call: &Call<'_>,
    status: Option<u16>,
    attempt: u32,
    latency: Duration,
    retry_in: Option<Duration>,
) {
    let (path, message) = match call.service {
        Service::Amc => (Some(call.path), "AMC request"),
        Service::LoginWithAmazon => (None, "Login with Amazon token refresh"),
    };
    tracing::debug!(
        method = call.method.as_str(),
        path,
        status,
        attempt,
        latency_ms = latency.as_millis() as u64,
        retry_in_ms = retry_in.map(|d| d.as_millis() as u64),
        "{message}"
    );
}

impl ClientInner {
    /// The sleep before retry number `retry` (0-based): full jitter, but
    /// at least the floor.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let cap = self.config.backoff_cap;
        let ceiling = self
            .config
            .backoff_base
            .checked_mul(2u32.saturating_pow(retry))
            .map_or(cap, |d| d.min(cap));
        ceiling
            .mul_f64(fastrand::f64())
            .max(self.config.backoff_floor.min(cap))
    }
}

/// Statuses worth another try: throttling and transient server trouble.
pub(crate) fn is_retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// One HTTP exchange, body read (up to the cap).
pub(crate) struct Raw {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<Duration>,
    /// `x-amz-request-id` or `x-amz-rid`: what Amazon support asks for.
    pub request_id: Option<String>,
    pub body: Vec<u8>,
    /// The body was longer than the cap and was cut.
    pub truncated: bool,
}

impl Raw {
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the declared content type may hold JSON (`application/json`,
    /// `application/vnd.…+json`, `application/octet-stream`); a missing one
    /// is given the benefit of the doubt. The body must still parse.
    pub(crate) fn is_json(&self) -> bool {
        self.content_type.as_deref().is_none_or(|ct| {
            let media = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            // Some AMC answers label their JSON as a byte stream.
            media == "application/json"
                || media.ends_with("+json")
                || media == "application/octet-stream"
        })
    }
}

/// Why an exchange produced no answer.
pub(crate) enum Failure {
    Timeout,
    /// What went wrong, and whether it was the TLS handshake (an untrusted
    /// certificate, typically from a proxy that inspects TLS).
    Network(String, bool),
}

/// Sends a request and reads its body, at most `MAX_BODY_BYTES` of it.
async fn execute(request: reqwest::RequestBuilder) -> Result<Raw, Failure> {
    let mut response = request.send().await.map_err(failure)?;
    let status = response.status().as_u16();
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(CONTENT_TYPE);
    let retry_after = header(RETRY_AFTER).and_then(|v| parse_retry_after(&v));
    let request_id = ["x-amz-request-id", "x-amz-rid", "x-amzn-requestid"]
        .into_iter()
        .find_map(|name| response.headers().get(name)?.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    let mut body = Vec::new();
    let mut truncated = response
        .content_length()
        .is_some_and(|n| n > MAX_BODY_BYTES as u64);
    while !truncated {
        match response.chunk().await.map_err(failure)? {
            None => break,
            Some(chunk) if body.len() + chunk.len() > MAX_BODY_BYTES => truncated = true,
            Some(chunk) => body.extend_from_slice(&chunk),
        }
    }
    Ok(Raw {
        status,
        content_type,
        retry_after,
        request_id,
        body,
        truncated,
    })
}

fn failure(e: reqwest::Error) -> Failure {
    if e.is_timeout() {
        return Failure::Timeout;
    }
    // The URL is left out (it may carry a pagination token); the cause
    // chain is what tells "refused" from "reset".
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    let lower = message.to_ascii_lowercase();
    let tls = lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake");
    Failure::Network(message, tls)
}

/// `Retry-After` as seconds or as an HTTP date; a date in the past is zero.
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    // The server dates this on its real clock, so it is measured against
    // the real one, not a test's fixed clock.
    let delta = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(delta.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner(api_url: Option<&str>) -> AmcClient {
        AmcClient::new(ClientConfig {
            api_url: api_url.map(str::to_owned),
            ..ClientConfig::default()
        })
        .unwrap()
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        let soon = (chrono::Utc::now() + chrono::TimeDelta::seconds(30)).to_rfc2822();
        let d = parse_retry_after(&soon).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_is_bounded_full_jitter() {
        let c = inner(None);
        for retry in 0..40 {
            let d = c.inner.backoff(retry);
            let ceiling = Duration::from_millis(1000 * 2u64.saturating_pow(retry.min(20)));
            assert!(d <= ceiling.min(Duration::from_secs(20)), "{retry}: {d:?}");
            assert!(d >= Duration::from_secs(1), "{retry}: {d:?}");
        }
    }

    #[test]
    fn base_url_choice() {
        let c = inner(None);
        assert_eq!(
            c.api_base(Region::Eu, None),
            "https://advertising-api-eu.amazon.com"
        );
        assert_eq!(
            c.api_base(Region::Na, Some("https://advertising-api-fe.amazon.com/")),
            "https://advertising-api-fe.amazon.com"
        );
        // Tokens never go to a host that is not Amazon's.
        for evil in [
            "https://evil.example",
            "http://advertising-api.amazon.com",
            "https://notamazon.com",
            "https://amazon.com.evil.example",
            "not a url",
        ] {
            assert_eq!(
                c.api_base(Region::Na, Some(evil)),
                "https://advertising-api.amazon.com"
            );
        }
        let c = inner(Some("http://127.0.0.1:9999/"));
        assert_eq!(c.api_base(Region::Na, None), "http://127.0.0.1:9999");
        assert_eq!(
            c.api_base(Region::Na, Some("http://127.0.0.1:9999")),
            "http://127.0.0.1:9999"
        );
        assert_eq!(
            c.api_base(Region::Na, Some("http://127.0.0.1:1")),
            "http://127.0.0.1:9999"
        );
    }

    #[test]
    fn bad_config_is_refused() {
        let bad_rate = ClientConfig {
            rate: 0.0,
            ..ClientConfig::default()
        };
        assert!(matches!(AmcClient::new(bad_rate), Err(AmcError::Config(_))));
        let bad_url = ClientConfig {
            auth_url: Some("ftp://x".into()),
            ..ClientConfig::default()
        };
        assert!(matches!(AmcClient::new(bad_url), Err(AmcError::Config(_))));
    }
}
