//! The client's one error type: what a user needs to act, nothing secret.

use std::fmt;
use std::time::Duration;

use crate::domain::HealthStatus;

/// A failed AMC or Login-with-Amazon call. Texts come from the server's
/// error body after [`crate::secrets::scrub`] and are cut short; they never
/// carry a token or a secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AmcError {
    /// AMC answered with an HTTP error (after retries, where retried).
    #[error("{}", api_message(*status, code.as_deref(), details.as_deref(), request, *attempts))]
    Api {
        /// The HTTP status.
        status: u16,
        /// AMC's error code from the body, when given.
        code: Option<String>,
        /// AMC's explanation (`details`, `message` or `statusReason`).
        details: Option<String>,
        /// Method and path of the request (`GET /amc/instances/amcx`), no host or query.
        request: String,
        /// How many times the request was sent.
        attempts: u32,
        /// How long the final attempt took to be answered.
        latency: Duration,
        /// Amazon's ID of the final request (`requestId` in the body, or the
        /// `x-amz-request-id` / `x-amz-rid` header): support cases need it.
        request_id: Option<String>,
    },
    /// No HTTP answer: connection refused or reset, DNS, TLS.
    #[error("network error calling {request}: {message} ({})", plural(*attempts))]
    Network {
        /// Method and path of the request.
        request: String,
        /// What went wrong, without URLs or secrets.
        message: String,
        /// How many times the request was sent.
        attempts: u32,
        /// The TLS handshake failed (typically an untrusted certificate).
        tls: bool,
    },
    /// An attempt took longer than the configured timeout.
    #[error("{request} timed out after {} ({})", humantime::format_duration(*after), plural(*attempts))]
    Timeout {
        /// Method and path of the request.
        request: String,
        /// The per-request timeout that was exceeded.
        after: Duration,
        /// How many times the request was sent.
        attempts: u32,
    },
    /// A 2xx answer that is not what the API promises: malformed JSON, a
    /// wrong content type, a body over the size cap, endless pagination.
    #[error("unexpected answer to {request} (HTTP {status}): {message}")]
    Decode {
        /// Method and path of the request.
        request: String,
        /// The HTTP status of the answer.
        status: u16,
        /// What was wrong with it.
        message: String,
        /// How many times the request was sent.
        attempts: u32,
    },
    /// Login with Amazon did not give us an access token.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The client cannot be built from its configuration.
    #[error("invalid AMC client configuration: {0}")]
    Config(String),
}

/// Why no access token could be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AuthError {
    /// The refresh token was refused (revoked, expired, or another client's).
    #[error(
        "Login with Amazon refused the refresh token (invalid_grant){}",
        desc(description)
    )]
    InvalidGrant {
        /// The server's `error_description`.
        description: Option<String>,
    },
    /// The client ID or secret was refused.
    #[error(
        "Login with Amazon refused the client ID or secret (invalid_client){}",
        desc(description)
    )]
    InvalidClient {
        /// The server's `error_description`.
        description: Option<String>,
    },
    /// Any other refusal by the token endpoint (a 4xx that is not retried).
    #[error("Login with Amazon refused the token request: HTTP {status}{}{}",
        error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default(), desc(description))]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// The OAuth `error` code.
        error: Option<String>,
        /// The server's `error_description`.
        description: Option<String>,
    },
    /// The token endpoint could not be reached or kept failing (5xx, 429,
    /// network, timeout) after retries, or answered with something that is
    /// not a token.
    #[error("Login with Amazon is unavailable: {message} ({})", plural(*attempts))]
    Unavailable {
        /// The last HTTP status, if any answer came.
        status: Option<u16>,
        /// What went wrong.
        message: String,
        /// How many times the token request was sent.
        attempts: u32,
    },
}

impl AmcError {
    /// The HTTP status of the final answer, if one came.
    pub fn status(&self) -> Option<u16> {
        match self {
            AmcError::Api { status, .. } | AmcError::Decode { status, .. } => Some(*status),
            AmcError::Auth(AuthError::Rejected { status, .. }) => Some(*status),
            AmcError::Auth(AuthError::Unavailable { status, .. }) => *status,
            _ => None,
        }
    }

    /// Amazon's request ID of the final answer, when it gave one.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            AmcError::Api { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// How long AMC took to give the final (error) answer, when it gave one.
    pub fn latency(&self) -> Option<Duration> {
        match self {
            AmcError::Api { latency, .. } => Some(*latency),
            _ => None,
        }
    }

    /// How many requests were sent for the failed call (0 when none was).
    pub fn attempts(&self) -> u32 {
        match self {
            AmcError::Api { attempts, .. }
            | AmcError::Network { attempts, .. }
            | AmcError::Timeout { attempts, .. }
            | AmcError::Decode { attempts, .. }
            | AmcError::Auth(AuthError::Unavailable { attempts, .. }) => *attempts,
            AmcError::Auth(_) => 1,
            AmcError::Config(_) => 0,
        }
    }

    /// Whether the credentials are at fault (exit 7 territory): Login with
    /// Amazon refused them, or AMC rejected a fresh token with 401. A token
    /// endpoint that cannot be reached says nothing about the credentials:
    /// that is a network failure (exit 6).
    pub fn is_auth(&self) -> bool {
        match self {
            AmcError::Auth(AuthError::Unavailable { .. }) => false,
            AmcError::Auth(_) | AmcError::Api { status: 401, .. } => true,
            _ => false,
        }
    }

    /// A next step for the user, where there is an obvious one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            AmcError::Auth(AuthError::InvalidGrant { .. } | AuthError::InvalidClient { .. }) => {
                Some("run `amcctl auth login` to store fresh credentials")
            }
            AmcError::Api { status: 401, .. } => Some(
                "the access token was refused; check the credentials with `amcctl auth status`",
            ),
            AmcError::Api { status: 403, .. } => Some(
                "AMC refused access; the usual causes: the credentials have no access to this \
                 account; AMC's terms are not yet accepted for the account in this region; or, \
                 for an instance made through instant access, the account's entity ID must be \
                 the sponsored-ads entity ID (the advertiser ID AMC expects)",
            ),
            AmcError::Network { tls: true, .. } => Some(
                "the server's TLS certificate is not trusted; behind a proxy that inspects TLS, \
                 pass its CA certificate with --ca-bundle FILE (or AMCCTL_CA_BUNDLE, or config \
                 `ca_bundle`)",
            ),
            AmcError::Network { tls: false, .. }
            | AmcError::Timeout { .. }
            | AmcError::Auth(AuthError::Unavailable { status: None, .. }) => Some(NETWORK_HINT),
            _ => None,
        }
    }

    /// How a health check should judge this failure: AMC answered and the
    /// answer is bad (403, 404) → [`HealthStatus::Unhealthy`]; no usable
    /// answer (network, timeout, 5xx or 429 after retries, credentials,
    /// garbage) → [`HealthStatus::Error`].
    pub fn health_status(&self) -> HealthStatus {
        match self {
            AmcError::Api {
                status: 403 | 404, ..
            } => HealthStatus::Unhealthy,
            _ => HealthStatus::Error,
        }
    }
}

/// The hint of a call that got no answer: what to set when the way out is
/// through a proxy, or past one that inspects TLS.
pub const NETWORK_HINT: &str = "no answer from Amazon: check the network; behind a proxy set \
     HTTPS_PROXY (and NO_PROXY for hosts to reach directly); a proxy that inspects TLS also needs \
     its CA certificate: --ca-bundle FILE, AMCCTL_CA_BUNDLE or config `ca_bundle`";

fn plural(attempts: u32) -> String {
    if attempts == 1 {
        "1 attempt".to_owned()
    } else {
        format!("{attempts} attempts")
    }
}

fn desc(description: &Option<String>) -> String {
    description
        .as_deref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

fn api_message(
    status: u16,
    code: Option<&str>,
    details: Option<&str>,
    request: &str,
    attempts: u32,
) -> String {
    let mut s = format!("AMC answered HTTP {status}");
    if let Some(reason) = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
    {
        s.push(' ');
        s.push_str(reason);
    }
    s.push_str(" to ");
    s.push_str(request);
    match (code, details) {
        (Some(c), Some(d)) if c != status.to_string() => s.push_str(&format!(": {c}: {d}")),
        (_, Some(d)) => s.push_str(&format!(": {d}")),
        (Some(c), None) if c != status.to_string() => s.push_str(&format!(" ({c})")),
        _ => {}
    }
    s.push_str(&format!(" ({})", plural(attempts)));
    s
}

/// Cuts server-provided text to a readable length on a char boundary.
pub(crate) fn shorten(text: &str, max_chars: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Method and path, as errors and logs name a request.
pub(crate) struct RequestName<'a>(pub &'a str, pub &'a str);

impl fmt::Display for RequestName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16) -> AmcError {
        AmcError::Api {
            status,
            code: Some(status.to_string()),
            details: Some("Instance not found".into()),
            request: "GET /amc/instances/amcx".into(),
            attempts: 1,
            latency: Duration::from_millis(40),
            request_id: None,
        }
    }

    #[test]
    fn classification() {
        assert_eq!(api(404).health_status(), HealthStatus::Unhealthy);
        assert_eq!(api(403).health_status(), HealthStatus::Unhealthy);
        assert_eq!(api(500).health_status(), HealthStatus::Error);
        assert_eq!(api(429).health_status(), HealthStatus::Error);
        assert!(api(401).is_auth());
        let e = AmcError::Auth(AuthError::InvalidGrant { description: None });
        assert_eq!(e.health_status(), HealthStatus::Error);
        assert!(e.hint().is_some_and(|h| h.contains("auth login")));
    }

    #[test]
    fn messages() {
        assert_eq!(
            api(404).to_string(),
            "AMC answered HTTP 404 Not Found to GET /amc/instances/amcx: Instance not found (1 attempt)"
        );
        assert_eq!(shorten("abcdef", 3), "abc…");
        assert_eq!(shorten("äöü", 3), "äöü");
    }
}
