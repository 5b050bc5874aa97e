//! One user's session: Login-with-Amazon tokens and the AMC calls made with them.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::client::{ACCEPT_VALUE, AmcClient, Failure, Raw, Reply, execute, is_retryable};
use super::error::{AmcError, AuthError, RequestName, shorten};
use super::types::{
    AccountsPage, AmcAccount, AmcInstance, ErrorBody, InstanceEnvelope, InstancesPage, Page,
    TokenBody, Workflow, WorkflowsPage,
};
use crate::model::printable;
use crate::model::{Country, EntityId, InstanceId, Region};
use crate::secrets::{redact, redact_secrets, scrub};

/// An access token is renewed this long before it expires.
pub const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Page size asked of `GET /amc/instances`.
pub const PAGE_LIMIT: u32 = 100;

/// A listing read to its end ([`Session::list_all`]), with what reading it
/// cost: `attempts` and `latency` summed over its pages.
pub(crate) struct Listing<T> {
    pub(crate) items: Vec<T>,
    pub(crate) pages: u32,
    pub(crate) status: u16,
    pub(crate) attempts: u32,
    pub(crate) latency: Duration,
}

impl<T> Listing<T> {
    fn into_reply(self) -> Reply<Vec<T>> {
        Reply {
            value: self.items,
            status: self.status,
            attempts: self.attempts,
            latency: self.latency,
        }
    }
}
/// Longest server-provided text kept in an error.
const MAX_ERROR_TEXT: usize = 300;
/// Longest server-provided text looked at for an error.
const MAX_ERROR_SCAN: usize = 16 * 1024;

const CLIENT_ID_HEADER: HeaderName = HeaderName::from_static("amazon-advertising-api-clientid");
const ADVERTISER_HEADER: HeaderName =
    HeaderName::from_static("amazon-advertising-api-advertiserid");
const MARKETPLACE_HEADER: HeaderName =
    HeaderName::from_static("amazon-advertising-api-marketplaceid");

/// Login-with-Amazon credentials of one user.
#[derive(Clone)]
pub struct Credentials {
    /// The LWA application's client ID (not secret; sent as a header).
    pub client_id: String,
    /// The LWA application's client secret.
    pub client_secret: SecretString,
    /// The user's refresh token (`Atzr|…`).
    pub refresh_token: SecretString,
    /// Picks the token endpoint and the default API host.
    pub region: Region,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &"…")
            .field("refresh_token", &redact(self.refresh_token.expose_secret()))
            .field("region", &self.region)
            .finish()
    }
}

/// An access token and when it stops working.
#[derive(Clone)]
pub struct CachedToken {
    /// The bearer token (`Atza|…`).
    pub access_token: SecretString,
    /// When Login with Amazon said it expires.
    pub expires_at: DateTime<Utc>,
}

impl fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedToken")
            .field("access_token", &redact(self.access_token.expose_secret()))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Keeps one user's access token between processes, so a cron job that
/// runs every minute does not ask Login with Amazon every minute. The store
/// implements it (encrypted, in SQLite); calls are quick and synchronous.
/// Failures are the implementation's to log: a cache that cannot load or
/// save just costs a refresh.
pub trait TokenCache: Send + Sync {
    /// The last saved token, if any (expired ones included; the session checks).
    fn load(&self) -> Option<CachedToken>;
    /// Replaces the saved token.
    fn save(&self, token: &CachedToken);
}

/// A cache that keeps nothing: every process refreshes once.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTokenCache;

impl TokenCache for NoTokenCache {
    fn load(&self) -> Option<CachedToken> {
        None
    }
    fn save(&self, _token: &CachedToken) {}
}

/// The account an AMC call acts for: sent as the advertiser and
/// marketplace headers, and its region picks the API host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertiser {
    /// The account's entity ID.
    pub entity_id: EntityId,
    /// The account's marketplace ID.
    pub marketplace_id: String,
    /// The region whose API host serves the calls (for instance calls, the
    /// instance's region), unless an `apiEndpoint` or override says otherwise.
    pub region: Region,
}

impl Advertiser {
    /// The advertiser for an account in `country`, served in `region`.
    pub fn new(entity_id: EntityId, country: Country, region: Region) -> Self {
        Advertiser {
            entity_id,
            marketplace_id: country.marketplace_id().to_owned(),
            region,
        }
    }
}

/// One user's view of AMC: their credentials and access token over the
/// run's shared client. Cheap to clone; clones share the token, so
/// concurrent callers refresh it once.
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    client: AmcClient,
    credentials: Credentials,
    cache: Arc<dyn TokenCache>,
    /// Held across a refresh: this is what makes concurrent refreshes one.
    token: tokio::sync::Mutex<TokenState>,
}

#[derive(Default)]
struct TokenState {
    /// The token in use and when to stop using it.
    current: Option<(CachedToken, DateTime<Utc>)>,
    /// A token AMC refused with 401: never taken from the cache again.
    rejected: Option<SecretString>,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("credentials", &self.inner.credentials)
            .finish_non_exhaustive()
    }
}

/// What a failed attempt leaves for the retry decision.
struct Pending {
    error: AmcError,
    retry_after: Option<Duration>,
    throttled: bool,
}

impl Session {
    pub(crate) fn new(
        client: AmcClient,
        credentials: Credentials,
        cache: Arc<dyn TokenCache>,
    ) -> Self {
        Session {
            inner: Arc::new(SessionInner {
                client,
                credentials,
                cache,
                token: tokio::sync::Mutex::new(TokenState::default()),
            }),
        }
    }

    /// The credentials this session uses.
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    /// `GET /amc/accounts`, every page: the AMC accounts the credentials can see.
    pub async fn list_accounts(&self) -> Result<Reply<Vec<AmcAccount>>, AmcError> {
        let base = self.api_base(self.inner.credentials.region, None);
        self.list_all::<AccountsPage>(&base, "/amc/accounts", &[], None, "accounts")
            .await
            .map(Listing::into_reply)
    }

    /// `GET /amc/instances`, every page (`limit=100`, following `nextToken`).
    /// `attempts` and `latency` of the reply are summed over the pages.
    pub async fn list_instances(
        &self,
        advertiser: &Advertiser,
    ) -> Result<Reply<Vec<AmcInstance>>, AmcError> {
        let base = self.api_base(advertiser.region, None);
        let limit = PAGE_LIMIT.to_string();
        let what = format!("instances of account {}", advertiser.entity_id);
        self.list_all::<InstancesPage>(
            &base,
            "/amc/instances",
            &[("limit", limit.as_str())],
            Some(advertiser),
            &what,
        )
        .await
        .map(Listing::into_reply)
    }

    /// Every page of a listing, following `nextToken`: a repeated token is
    /// an error at once, and a server that keeps sending fresh ones is cut
    /// off after [`ClientConfig::max_pages`](super::ClientConfig::max_pages)
    /// pages or [`ClientConfig::max_listing_time`](super::ClientConfig::max_listing_time),
    /// whichever comes first. `what` names the listing in errors ("instances
    /// of account ENTITY…"). `attempts` and `latency` are summed over pages.
    pub(crate) async fn list_all<P: Page>(
        &self,
        base: &str,
        path: &str,
        query: &[(&str, &str)],
        advertiser: Option<&Advertiser>,
        what: &str,
    ) -> Result<Listing<P::Item>, AmcError> {
        let config = &self.inner.client.inner.config;
        let started = Instant::now();
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut next: Option<String> = None;
        let (mut attempts, mut latency, mut pages) = (0, Duration::ZERO, 0u32);
        loop {
            let mut q = query.to_vec();
            if let Some(t) = &next {
                q.push(("nextToken", t.as_str()));
            }
            let page: Reply<P> = self.get(base, path, &q, advertiser).await?;
            pages += 1;
            attempts += page.attempts;
            latency += page.latency;
            let (rows, token) = page.value.into_parts();
            items.extend(rows);
            let token = match token.filter(|t| !t.is_empty()) {
                None => {
                    return Ok(Listing {
                        items,
                        pages,
                        status: page.status,
                        attempts,
                        latency,
                    });
                }
                Some(t) if !seen.insert(t.clone()) => {
                    return Err(decode_error(
                        path,
                        page.status,
                        &format!("AMC repeated a nextToken while listing the {what}"),
                        attempts,
                    ));
                }
                Some(t) => t,
            };
            let elapsed = started.elapsed();
            if pages as usize >= config.max_pages || elapsed >= config.max_listing_time {
                return Err(decode_error(
                    path,
                    page.status,
                    &format!(
                        "AMC kept sending new nextTokens while listing the {what}: stopped after {pages} page{} and {}",
                        if pages == 1 { "" } else { "s" },
                        humantime::format_duration(Duration::from_secs(elapsed.as_secs()))
                    ),
                    attempts,
                ));
            }
            next = Some(token);
        }
    }

    /// `GET /amc/instances/{id}`: one instance (validation and health check).
    /// An administration call: it goes to the region's host (or the API URL
    /// override), never to the instance's `apiEndpoint`, which serves only
    /// the reporting calls; the parameter is kept for callers' convenience.
    pub async fn get_instance(
        &self,
        advertiser: &Advertiser,
        instance: &InstanceId,
        _api_endpoint: Option<&str>,
    ) -> Result<Reply<AmcInstance>, AmcError> {
        let base = self.api_base(advertiser.region, None);
        let path = format!("/amc/instances/{instance}");
        let reply: Reply<InstanceEnvelope> = self.get(&base, &path, &[], Some(advertiser)).await?;
        Ok(map(reply, |e| e.instance))
    }

    /// `GET /amc/reporting/{id}/workflows?limit=1`: whether the instance's
    /// reporting API answers (deep health check).
    pub async fn list_workflows(
        &self,
        advertiser: &Advertiser,
        instance: &InstanceId,
        api_endpoint: Option<&str>,
    ) -> Result<Reply<Vec<Workflow>>, AmcError> {
        let base = self.api_base(advertiser.region, api_endpoint);
        let path = format!("/amc/reporting/{instance}/workflows");
        let reply: Reply<WorkflowsPage> = self
            .get(&base, &path, &[("limit", "1")], Some(advertiser))
            .await?;
        Ok(map(reply, |w| w.workflows))
    }

    /// A usable access token: the one in memory, else the cached one, else
    /// a fresh one from Login with Amazon (saved to the cache). Concurrent
    /// callers wait for a single refresh.
    pub async fn access_token(&self) -> Result<CachedToken, AmcError> {
        let mut state = self.inner.token.lock().await;
        let now = crate::clock::now();
        if let Some((token, use_until)) = &state.current
            && now < *use_until
        {
            return Ok(token.clone());
        }
        // Another process may have refreshed since we last looked.
        if let Some(token) = self.inner.cache.load() {
            let use_until = token.expires_at - margin(TOKEN_MARGIN);
            let refused = state
                .rejected
                .as_ref()
                .is_some_and(|r| r.expose_secret() == token.access_token.expose_secret());
            if now < use_until && !refused {
                state.current = Some((token.clone(), use_until));
                return Ok(token);
            }
        }
        let (token, use_until) = self.refresh().await?;
        self.inner.cache.save(&token);
        state.current = Some((token.clone(), use_until));
        Ok(token)
    }

    /// Forgets `used` after AMC refused it, unless a newer token already
    /// replaced it (then the next caller simply uses the newer one).
    async fn reject(&self, used: &SecretString) {
        let mut state = self.inner.token.lock().await;
        let is_current = state
            .current
            .as_ref()
            .is_some_and(|(t, _)| t.access_token.expose_secret() == used.expose_secret());
        if is_current {
            state.current = None;
        }
        state.rejected = Some(used.clone());
    }

    pub(super) fn api_base(&self, region: Region, api_endpoint: Option<&str>) -> String {
        self.inner.client.inner.api_base(region, api_endpoint)
    }

    /// Server text made safe for messages, the one edge every server text
    /// passes: known secrets cut out in whatever encoding they were echoed,
    /// then anything token-shaped, then control and bidi characters
    /// escaped, then shortened.
    fn clean(&self, text: &str, extra: Option<&SecretString>) -> String {
        let c = &self.inner.credentials;
        let secrets: Vec<&str> = [Some(&c.client_secret), Some(&c.refresh_token), extra]
            .into_iter()
            .flatten()
            .map(|s| s.expose_secret())
            .collect();
        // Bounded first, so a huge body costs little; the bound is far
        // above what is kept, so a secret cut at it is cut off again below.
        let text = shorten(text, MAX_ERROR_SCAN);
        let text = scrub(&redact_secrets(&text, &secrets));
        shorten(&printable(&text), MAX_ERROR_TEXT)
    }

    fn headers(
        &self,
        token: &CachedToken,
        advertiser: Option<&Advertiser>,
    ) -> Result<HeaderMap, AmcError> {
        let bad = |what: &str| {
            AmcError::Config(format!(
                "the {what} contains characters not allowed in an HTTP header"
            ))
        };
        let mut headers = HeaderMap::new();
        let mut auth =
            HeaderValue::try_from(format!("Bearer {}", token.access_token.expose_secret()))
                .map_err(|_| {
                    AmcError::Auth(AuthError::Unavailable {
                        status: None,
                        message:
                            "the access token contains characters not allowed in an HTTP header"
                                .into(),
                        attempts: 1,
                    })
                })?;
        // Keeps it out of any Debug output of the request.
        auth.set_sensitive(true);
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            CLIENT_ID_HEADER,
            HeaderValue::from_str(&self.inner.credentials.client_id)
                .map_err(|_| bad("client ID"))?,
        );
        if let Some(a) = advertiser {
            headers.insert(
                ADVERTISER_HEADER,
                HeaderValue::from_str(a.entity_id.as_str()).map_err(|_| bad("account ID"))?,
            );
            headers.insert(
                MARKETPLACE_HEADER,
                HeaderValue::from_str(&a.marketplace_id).map_err(|_| bad("marketplace ID"))?,
            );
        }
        headers.insert(ACCEPT, HeaderValue::from_static(ACCEPT_VALUE));
        Ok(headers)
    }

    /// A GET with the full policy: token, limiter, retries with backoff and
    /// `Retry-After`, one token refresh on 401, decoding.
    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        query: &[(&str, &str)],
        advertiser: Option<&Advertiser>,
    ) -> Result<Reply<T>, AmcError> {
        let client = &self.inner.client.inner;
        let config = &client.config;
        let request = RequestName("GET", path).to_string();
        let url = reqwest::Url::parse(&format!("{base}{path}"))
            .map_err(|e| AmcError::Config(format!("bad API URL {base}: {e}")))?;
        let mut attempts = 0u32;
        let mut retries = 0u32;
        let mut refreshed = false;
        let mut first_sent: Option<Instant> = None;
        loop {
            // A place among the requests in flight, held until the answer
            // is read and given back before any backoff sleep. Taken before
            // the token, so no one waits for a place holding a token that a
            // 401 meanwhile showed to be stale.
            let place = match &client.in_flight {
                Some(places) => places.acquire().await.ok(),
                None => None,
            };
            let token = self.access_token().await?;
            let headers = self.headers(&token, advertiser)?;
            client.limiter.acquire().await;
            attempts += 1;
            let sent = Instant::now();
            let first_sent = *first_sent.get_or_insert(sent);
            let builder = client
                .http
                .get(url.clone())
                .query(query)
                .headers(headers)
                .timeout(config.timeout);
            let outcome = execute(builder).await;
            drop(place);
            let latency = sent.elapsed();
            let status = outcome.as_ref().ok().map(|r| r.status);
            let pending = match outcome {
                Ok(raw) if raw.is_success() => {
                    client.limiter.answered();
                    log_attempt(path, status, attempts, latency, None);
                    return self.decode(&request, raw, attempts).map(|value| Reply {
                        value,
                        status: status.unwrap_or(200),
                        attempts,
                        latency,
                    });
                }
                Ok(raw) if raw.status == 401 && !refreshed => {
                    client.limiter.answered();
                    log_attempt(path, status, attempts, latency, Some(Duration::ZERO));
                    refreshed = true;
                    self.reject(&token.access_token).await;
                    continue;
                }
                Ok(raw) => {
                    let throttled = raw.status == 429;
                    if !throttled {
                        client.limiter.answered();
                    }
                    Pending {
                        retry_after: raw.retry_after,
                        throttled,
                        error: self.api_error(&request, &raw, attempts, latency, &token),
                    }
                }
                Err(Failure::Timeout) => Pending {
                    error: AmcError::Timeout {
                        request: request.clone(),
                        after: config.timeout,
                        attempts,
                    },
                    retry_after: None,
                    throttled: false,
                },
                Err(Failure::Network(message, tls)) => Pending {
                    error: AmcError::Network {
                        request: request.clone(),
                        message: self.clean(&message, None),
                        attempts,
                        tls,
                    },
                    retry_after: None,
                    throttled: false,
                },
            };
            // An untrusted certificate stays untrusted: no retry.
            let tls = matches!(pending.error, AmcError::Network { tls: true, .. });
            let retryable = status.is_none_or(is_retryable) && !tls;
            let delay = client
                .backoff(retries)
                .max(pending.retry_after.unwrap_or_default());
            let give_up = !retryable
                || retries >= config.retries
                || first_sent.elapsed() + delay > config.max_elapsed;
            if pending.throttled && pending.retry_after.is_none() {
                client.limiter.throttled_unannounced();
            } else if pending.throttled {
                // Everyone waits as long as this caller is about to; one that
                // gives up (say, on `Retry-After: 3600`) holds no one up, or a
                // bulk check would stall on a pause nobody takes part in.
                client
                    .limiter
                    .throttled(if give_up { Duration::ZERO } else { delay });
            }
            log_attempt(path, status, attempts, latency, (!give_up).then_some(delay));
            if give_up {
                return Err(pending.error);
            }
            retries += 1;
            tokio::time::sleep(delay).await;
        }
    }

    fn decode<T: DeserializeOwned>(
        &self,
        request: &str,
        raw: Raw,
        attempts: u32,
    ) -> Result<T, AmcError> {
        let fail = |message: String| AmcError::Decode {
            request: request.to_owned(),
            status: raw.status,
            message,
            attempts,
        };
        if raw.truncated {
            return Err(fail(format!(
                "the body is larger than {} MiB",
                super::MAX_BODY_BYTES >> 20
            )));
        }
        if !raw.is_json() {
            let ct = raw.content_type.as_deref().unwrap_or_default();
            return Err(fail(format!(
                "expected JSON, got content type {}",
                self.clean(ct, None)
            )));
        }
        serde_json::from_slice(&raw.body).map_err(|e| {
            fail(format!(
                "malformed JSON: {}",
                self.clean(&e.to_string(), None)
            ))
        })
    }

    fn api_error(
        &self,
        request: &str,
        raw: &Raw,
        attempts: u32,
        latency: Duration,
        token: &CachedToken,
    ) -> AmcError {
        let body: Option<ErrorBody> = serde_json::from_slice(&raw.body).ok();
        let mut request_id = raw.request_id.clone();
        let (code, details) = match body {
            Some(b) => {
                request_id = b.request_id.filter(|r| !r.trim().is_empty()).or(request_id);
                let text = b.details.or(b.message).or(b.status_reason);
                let details = match (b.message_subject, text) {
                    (Some(subject), Some(t)) if !t.contains(&subject) => {
                        Some(format!("{subject}: {t}"))
                    }
                    (subject, t) => t.or(subject),
                };
                (b.code, details)
            }
            None => {
                // Not JSON: keep short plain text, skip HTML error pages.
                let text = String::from_utf8_lossy(&raw.body);
                let text = text.trim();
                let useful = !text.is_empty() && !text.starts_with('<');
                (None, useful.then(|| text.to_owned()))
            }
        };
        let clean = |t: String| self.clean(&t, Some(&token.access_token));
        AmcError::Api {
            status: raw.status,
            code: code.map(clean).filter(|c| !c.is_empty()),
            details: details.map(clean).filter(|d| !d.is_empty()),
            request: request.to_owned(),
            attempts,
            latency,
            request_id: request_id.map(|r| shorten(&scrub(&r), 100)),
        }
    }

    /// Asks Login with Amazon for a new access token, retrying transient
    /// failures like any call; refusals (`invalid_grant`, `invalid_client`,
    /// other 4xx) are final. Returns the token and when to stop using it.
    async fn refresh(&self) -> Result<(CachedToken, DateTime<Utc>), AmcError> {
        let creds = &self.inner.credentials;
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", creds.refresh_token.expose_secret()),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", creds.client_secret.expose_secret()),
        ];
        self.grant(&form)
            .await
            .map(|(token, use_until, _)| (token, use_until))
    }

    /// The authorization-code grant of a browser login: trades `code` (with
    /// the PKCE `verifier` and the `redirect_uri` the code was issued for)
    /// for a refresh token and a first access token. The session's own
    /// refresh token is not used (it may be empty).
    pub async fn exchange_code(
        &self,
        code: &SecretString,
        verifier: &SecretString,
        redirect_uri: &str,
    ) -> Result<(SecretString, CachedToken), AmcError> {
        let creds = &self.inner.credentials;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", redirect_uri),
            ("client_id", creds.client_id.as_str()),
            ("client_secret", creds.client_secret.expose_secret()),
            ("code_verifier", verifier.expose_secret()),
        ];
        let (token, _, refresh) = self.grant(&form).await?;
        let refresh = refresh.ok_or_else(|| {
            AmcError::Auth(AuthError::Unavailable {
                status: Some(200),
                message: "the token answer has no refresh_token".into(),
                attempts: 1,
            })
        })?;
        Ok((refresh, token))
    }

    /// One token request (`form`) with retries; the token, when to stop
    /// using it, and the refresh token if the answer carried one.
    async fn grant(
        &self,
        form: &[(&str, &str)],
    ) -> Result<(CachedToken, DateTime<Utc>, Option<SecretString>), AmcError> {
        let client = &self.inner.client.inner;
        let config = &client.config;
        let url = client.token_url(self.inner.credentials.region).to_owned();
        let mut attempts = 0u32;
        let first_sent = Instant::now();
        loop {
            attempts += 1;
            let requested_at = crate::clock::now();
            let sent = Instant::now();
            let builder = client
                .http
                .post(&url)
                .form(form)
                .header(ACCEPT, ACCEPT_VALUE)
                .timeout(config.timeout);
            let outcome = execute(builder).await;
            let latency = sent.elapsed();
            let status = outcome.as_ref().ok().map(|r| r.status);
            let (message, retry_after) = match outcome {
                Ok(raw) if raw.is_success() => {
                    log_token_attempt(status, attempts, latency, None);
                    return self.token_from(&raw, requested_at, attempts);
                }
                Ok(raw) if !is_retryable(raw.status) => {
                    log_token_attempt(status, attempts, latency, None);
                    return Err(self.token_refusal(&raw));
                }
                Ok(raw) => {
                    // Login with Amazon explains a 5xx too; keep what it said.
                    let body: TokenBody = serde_json::from_slice(&raw.body).unwrap_or_default();
                    let said = [body.error, body.error_description]
                        .into_iter()
                        .flatten()
                        .map(|t| self.clean(&t, None))
                        .filter(|t| !t.is_empty())
                        .collect::<Vec<_>>()
                        .join(": ");
                    let message = if said.is_empty() {
                        format!("HTTP {}", raw.status)
                    } else {
                        format!("HTTP {}: {said}", raw.status)
                    };
                    (message, raw.retry_after)
                }
                Err(Failure::Timeout) => (
                    format!(
                        "timed out after {}",
                        humantime::format_duration(config.timeout)
                    ),
                    None,
                ),
                Err(Failure::Network(m, true)) => {
                    // An untrusted certificate stays untrusted: no retry.
                    log_token_attempt(status, attempts, latency, None);
                    return Err(AmcError::Network {
                        request: "POST /auth/o2/token".to_owned(),
                        message: self.clean(&m, None),
                        attempts,
                        tls: true,
                    });
                }
                Err(Failure::Network(m, false)) => (self.clean(&m, None), None),
            };
            let delay = client
                .backoff(attempts - 1)
                .max(retry_after.unwrap_or_default());
            let give_up =
                attempts > config.retries || first_sent.elapsed() + delay > config.max_elapsed;
            log_token_attempt(status, attempts, latency, (!give_up).then_some(delay));
            if give_up {
                return Err(AuthError::Unavailable {
                    status,
                    message,
                    attempts,
                }
                .into());
            }
            tokio::time::sleep(delay).await;
        }
    }

    fn token_from(
        &self,
        raw: &Raw,
        requested_at: DateTime<Utc>,
        attempts: u32,
    ) -> Result<(CachedToken, DateTime<Utc>, Option<SecretString>), AmcError> {
        let unusable = |message: &str| {
            AmcError::Auth(AuthError::Unavailable {
                status: Some(raw.status),
                message: message.to_owned(),
                attempts,
            })
        };
        let body: TokenBody = serde_json::from_slice(&raw.body)
            .map_err(|_| unusable("the token answer is not the expected JSON"))?;
        let access = body
            .access_token
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| unusable("the token answer has no access_token"))?;
        // LWA's tokens live an hour; a missing lifetime is taken as that.
        let lifetime = Duration::from_secs(body.expires_in.unwrap_or(3600));
        let expires_at = requested_at + margin(lifetime);
        // Renew 60 s before expiry, or halfway for tokens shorter than 2 min,
        // so a short-lived token is still reused rather than renewed per call.
        let use_until = expires_at - margin(TOKEN_MARGIN.min(lifetime / 2));
        let refresh = body
            .refresh_token
            .filter(|t| !t.trim().is_empty())
            .map(SecretString::from);
        Ok((
            CachedToken {
                access_token: SecretString::from(access),
                expires_at,
            },
            use_until,
            refresh,
        ))
    }

    fn token_refusal(&self, raw: &Raw) -> AmcError {
        let body: TokenBody = serde_json::from_slice(&raw.body).unwrap_or_default();
        let description = body
            .error_description
            .map(|d| self.clean(&d, None))
            .filter(|d| !d.is_empty());
        let error = match body.error.as_deref() {
            Some("invalid_grant") => AuthError::InvalidGrant { description },
            Some("invalid_client") => AuthError::InvalidClient { description },
            other => AuthError::Rejected {
                status: raw.status,
                error: other.map(|e| self.clean(e, None)),
                description,
            },
        };
        error.into()
    }
}

/// A chrono span from a std duration, saturating.
fn margin(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

fn map<T, U>(reply: Reply<T>, f: impl FnOnce(T) -> U) -> Reply<U> {
    Reply {
        value: f(reply.value),
        status: reply.status,
        attempts: reply.attempts,
        latency: reply.latency,
    }
}

pub(super) fn decode_error(path: &str, status: u16, message: &str, attempts: u32) -> AmcError {
    AmcError::Decode {
        request: RequestName("GET", path).to_string(),
        status,
        message: message.to_owned(),
        attempts,
    }
}

fn log_attempt(
    path: &str,
    status: Option<u16>,
    attempt: u32,
    latency: Duration,
    retry_in: Option<Duration>,
) {
    tracing::debug!(
        method = "GET",
        path,
        status,
        attempt,
        latency_ms = latency.as_millis() as u64,
        retry_in_ms = retry_in.map(|d| d.as_millis() as u64),
        "AMC request"
    );
}

fn log_token_attempt(
    status: Option<u16>,
    attempt: u32,
    latency: Duration,
    retry_in: Option<Duration>,
) {
    tracing::debug!(
        method = "POST",
        status,
        attempt,
        latency_ms = latency.as_millis() as u64,
        retry_in_ms = retry_in.map(|d| d.as_millis() as u64),
        "Login with Amazon token refresh"
    );
}
