//! One user's session: their Login-with-Amazon credentials, the access
//! token in use, and how to get a fresh one. The AMC calls made with it are
//! in [`super::api`] and [`super::usage`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use secrecy::{ExposeSecret, SecretString};

use super::client::{AmcClient, Call, Failure, NoBearer, Raw, Service, is_retryable};
use super::error::{AmcError, AuthError, RequestName, shorten};
use super::types::TokenBody;
use crate::domain::{Region, printable};
use crate::secrets::{redact, redact_secrets, scrub};

/// An access token is renewed this long before it expires.
pub const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// How errors name the token request, whatever the endpoint's URL.
const TOKEN_PATH: &str = "/auth/o2/token";
/// Longest server-provided text kept in an error.
const MAX_ERROR_TEXT: usize = 300;
/// Longest server-provided text looked at for an error.
const MAX_ERROR_SCAN: usize = 16 * 1024;

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

impl AmcClient {
    /// A session for one user's credentials, sharing this client's pool and
    /// limiter. `cache` keeps the access token across processes.
    pub fn session(&self, credentials: Credentials, cache: Arc<dyn TokenCache>) -> Session {
        Session {
            inner: Arc::new(SessionInner {
                client: self.clone(),
                credentials,
                cache,
                token: tokio::sync::Mutex::new(TokenState::default()),
            }),
        }
    }
}

impl Session {
    /// The client this session's calls go through.
    pub(super) fn client(&self) -> &AmcClient {
        &self.inner.client
    }

    /// The credentials this session uses.
    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
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
    pub(super) async fn reject(&self, used: &SecretString) {
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

    /// Server text made safe for messages, the one edge every server text
    /// passes: known secrets cut out in whatever encoding they were echoed,
    /// then anything token-shaped, then control and bidi characters
    /// escaped, then shortened.
    pub(super) fn clean(&self, text: &str, extra: Option<&SecretString>) -> String {
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

    /// One token request (`form`), sent with the client's retries; the
    /// token, when to stop using it, and the refresh token if the answer
    /// carried one. Refusals (`invalid_grant`, `invalid_client`, other 4xx)
    /// are final; failures that outlast the retries make the endpoint
    /// unavailable.
    async fn grant(
        &self,
        form: &[(&str, &str)],
    ) -> Result<(CachedToken, DateTime<Utc>, Option<SecretString>), AmcError> {
        let client = &self.inner.client;
        let url = client.token_url(self.inner.credentials.region);
        let call = Call {
            service: Service::LoginWithAmazon,
            method: reqwest::Method::POST,
            url: reqwest::Url::parse(url)
                .map_err(|e| AmcError::Config(format!("bad URL {url}: {e}")))?,
            path: TOKEN_PATH,
            query: &[],
            form: Some(form),
        };
        let sent = client.send(&call, &NoBearer).await?;
        let attempts = sent.attempts;
        let unavailable = |status, message| {
            AmcError::Auth(AuthError::Unavailable {
                status,
                message,
                attempts,
            })
        };
        match sent.outcome {
            Ok(raw) if raw.is_success() => {
                // When the token was asked for: its lifetime counts from then.
                let requested_at = crate::clock::now() - margin(sent.latency);
                self.token_from(&raw, requested_at, attempts)
            }
            Ok(raw) if !is_retryable(raw.status) => Err(self.token_refusal(&raw)),
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
                Err(unavailable(Some(raw.status), message))
            }
            Err(Failure::Timeout) => Err(unavailable(
                None,
                format!(
                    "timed out after {}",
                    humantime::format_duration(client.config().timeout)
                ),
            )),
            Err(Failure::Network(m, true)) => Err(AmcError::Network {
                request: RequestName("POST", TOKEN_PATH).to_string(),
                message: self.clean(&m, None),
                attempts,
                tls: true,
            }),
            Err(Failure::Network(m, false)) => Err(unavailable(None, self.clean(&m, None))),
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
