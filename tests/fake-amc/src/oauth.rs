//! Login with Amazon's authorization-code grant: the authorize page
//! (`GET /ap/oa`, which signs the user in at once and redirects back) and
//! `grant_type=authorization_code` at the token endpoint, checked as Login
//! with Amazon does: client, return URL, scope, PKCE (S256); codes are
//! single use and expire.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use hyper::{Response, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{AccessToken, Answer, FakeAmc, Shared, json_answer};

/// The scope the fake grants, as the Amazon Ads API needs it.
pub const SCOPE: &str = "advertising::campaign_management";

/// What the authorize page does with the next logins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthorizeOutcome {
    /// The user allows access: redirect with a code.
    #[default]
    Allow,
    /// The user declines: redirect with `error=access_denied`.
    Deny,
}

/// One visit of the authorize page, as the fake saw it.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// `client_id`.
    pub client_id: String,
    /// `redirect_uri`.
    pub redirect_uri: String,
    /// `state`, echoed in the redirect.
    pub state: String,
    /// `code_challenge`.
    pub code_challenge: String,
    /// `code_challenge_method`.
    pub code_challenge_method: String,
    /// `scope`.
    pub scope: String,
    /// The code issued, if the visit was valid and allowed.
    pub code: Option<String>,
}

/// One `authorization_code` token request, as the fake judged it.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The code sent.
    pub code: String,
    /// Whether S256(`code_verifier`) matched the code's challenge.
    pub verifier_matches: bool,
    /// Whether the token endpoint granted.
    pub granted: bool,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    expires_at: Instant,
    used: bool,
}

#[derive(Default)]
pub(super) struct OAuthState {
    outcome: AuthorizeOutcome,
    code_lifetime: Option<Duration>,
    codes: HashMap<String, Code>,
    authorizations: Vec<Authorization>,
    exchanges: Vec<Exchange>,
    /// Allowed return URLs per client; a client with none allows any
    /// `http://127.0.0.1:…` or `http://localhost:…` URL.
    return_urls: HashMap<String, Vec<String>>,
}

fn random(n: usize) -> String {
    (0..n).map(|_| fastrand::alphanumeric()).collect()
}

impl FakeAmc {
    /// `GET /ap/oa`, the authorize page: `http://127.0.0.1:PORT/ap/oa`
    /// (the client's `AMCCTL_AUTHORIZE_URL`), under the first prefix of a
    /// fake started with [`start_under`](Self::start_under).
    pub fn authorize_url(&self) -> String {
        format!("{}/ap/oa", self.shared.first_url)
    }

    /// Whether the next logins are allowed or declined.
    pub fn set_authorize_outcome(&self, outcome: AuthorizeOutcome) {
        self.shared.lock().oauth.outcome = outcome;
    }

    /// How long a code stays good (default 5 minutes); zero makes every
    /// code expired on arrival.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        self.shared.lock().oauth.code_lifetime = Some(lifetime);
    }

    /// Allows `url` as a return URL of `client_id` (once one is given, only
    /// those given are allowed).
    pub fn allow_return_url(&self, client_id: &str, url: &str) {
        self.shared
            .lock()
            .oauth
            .return_urls
            .entry(client_id.to_owned())
            .or_default()
            .push(url.to_owned());
    }

    /// Every visit of the authorize page so far.
    pub fn authorizations(&self) -> Vec<Authorization> {
        self.shared.lock().oauth.authorizations.clone()
    }

    /// Every `authorization_code` token request so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.shared.lock().oauth.exchanges.clone()
    }
}

fn page(status: StatusCode, text: &str) -> Answer {
    let mut answer = Response::new(Full::new(Bytes::from(format!(
        "<!DOCTYPE html><html><body><p>{text}</p></body></html>"
    ))));
    *answer.status_mut() = status;
    answer.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    answer
}

fn redirect(to: &str, params: &[(&str, &str)]) -> Answer {
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    let sep = if to.contains('?') { '&' } else { '?' };
    let mut answer = Response::new(Full::new(Bytes::new()));
    *answer.status_mut() = StatusCode::FOUND;
    if let Ok(v) = HeaderValue::from_str(&format!("{to}{sep}{query}")) {
        answer.headers_mut().insert(LOCATION, v);
    }
    answer
}

fn loopback(url: &str) -> bool {
    ["http://127.0.0.1:", "http://localhost:"]
        .iter()
        .any(|p| url.starts_with(p))
}

/// The authorize page: errors about the client or the return URL are shown
/// on the page (never redirected, as OAuth requires); the rest go back to
/// the return URL with the state.
pub(super) fn authorize(shared: &Shared, query: &str) -> Answer {
    let mut q: HashMap<String, String> = HashMap::new();
    for (k, v) in form_urlencoded::parse(query.as_bytes()).into_owned() {
        q.entry(k).or_insert(v);
    }
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let mut st = shared.lock();
    let mut seen = Authorization {
        client_id: get("client_id"),
        redirect_uri: get("redirect_uri"),
        state: get("state"),
        code_challenge: get("code_challenge"),
        code_challenge_method: get("code_challenge_method"),
        scope: get("scope"),
        code: None,
    };
    if !st.clients.contains_key(&seen.client_id) {
        st.oauth.authorizations.push(seen);
        return page(StatusCode::BAD_REQUEST, "unknown client_id");
    }
    let allowed = match st.oauth.return_urls.get(&seen.client_id) {
        Some(urls) => urls.contains(&seen.redirect_uri),
        None => loopback(&seen.redirect_uri),
    };
    if !allowed {
        st.oauth.authorizations.push(seen);
        return page(
            StatusCode::BAD_REQUEST,
            "redirect_uri is not an allowed return URL",
        );
    }
    let to = seen.redirect_uri.clone();
    let state = seen.state.clone();
    let with_state = |params: &mut Vec<(&str, String)>| {
        if !state.is_empty() {
            params.push(("state", state.clone()));
        }
    };
    let fail = |error: &str, description: &str| {
        let mut params = vec![
            ("error", error.to_owned()),
            ("error_description", description.to_owned()),
        ];
        with_state(&mut params);
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        redirect(&to, &params)
    };
    let answer = if get("response_type") != "code" {
        fail("unsupported_response_type", "response_type must be code")
    } else if seen.scope != SCOPE {
        fail("invalid_scope", "unknown scope")
    } else if seen.code_challenge_method != "S256" || seen.code_challenge.len() < 43 {
        fail(
            "invalid_request",
            "code_challenge with method S256 is required",
        )
    } else if st.oauth.outcome == AuthorizeOutcome::Deny {
        fail("access_denied", "The user denied the request")
    } else {
        let code = format!("AN{}", random(20));
        let lifetime = st.oauth.code_lifetime.unwrap_or(Duration::from_secs(300));
        st.oauth.codes.insert(
            code.clone(),
            Code {
                client_id: seen.client_id.clone(),
                redirect_uri: seen.redirect_uri.clone(),
                challenge: seen.code_challenge.clone(),
                expires_at: Instant::now() + lifetime,
                used: false,
            },
        );
        seen.code = Some(code.clone());
        let mut params = vec![("code", code), ("scope", SCOPE.to_owned())];
        with_state(&mut params);
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        redirect(&to, &params)
    };
    st.oauth.authorizations.push(seen);
    answer
}

/// `grant_type=authorization_code`.
pub(super) fn grant_code(shared: &Shared, form: &HashMap<String, String>) -> Answer {
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let lwa_error = |status: StatusCode, error: &str, description: &str| {
        json_answer(
            status,
            &json!({"error": error, "error_description": description}),
        )
    };
    for name in ["code", "redirect_uri", "code_verifier"] {
        if param(name).is_none() {
            return lwa_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                &format!("The request is missing a required parameter : {name}"),
            );
        }
    }
    let code = param("code").unwrap_or_default().to_owned();
    let verifier = param("code_verifier").unwrap_or_default();
    let client_id = param("client_id").unwrap_or_default().to_owned();
    let mut st = shared.lock();
    let client_ok = st
        .clients
        .get(&client_id)
        .is_some_and(|c| Some(c.secret.as_str()) == param("client_secret"));
    if !client_ok {
        return lwa_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let now = Instant::now();
    let verdict = match st.oauth.codes.get_mut(&code) {
        None => Err("The authorization code is invalid"),
        Some(c) if c.used => Err("The authorization code has already been used"),
        Some(c) if now >= c.expires_at => Err("The authorization code has expired"),
        Some(c) if c.client_id != client_id => {
            Err("The authorization code was issued to another client")
        }
        Some(c) if Some(c.redirect_uri.as_str()) != param("redirect_uri") => {
            Err("redirect_uri does not match the authorization request")
        }
        Some(c) => {
            // Used, matched or not: a code is good for one try.
            c.used = true;
            if c.challenge == challenge {
                Ok(())
            } else {
                Err("code_verifier does not match the code_challenge")
            }
        }
    };
    let verifier_matches = st
        .oauth
        .codes
        .get(&code)
        .is_some_and(|c| c.challenge == challenge);
    st.oauth.exchanges.push(Exchange {
        code: code.clone(),
        verifier_matches,
        granted: verdict.is_ok(),
    });
    if let Err(why) = verdict {
        return lwa_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    }
    let refresh_token = format!("Atzr|IwEB{}", random(48));
    let access_token = format!("Atza|IwEB{}", random(64));
    if let Some(client) = st.clients.get_mut(&client_id) {
        client.refresh_tokens.push(refresh_token.clone());
    }
    let lifetime = st.token_lifetime;
    st.tokens.insert(
        access_token.clone(),
        AccessToken {
            client_id,
            refresh_token: refresh_token.clone(),
            expires_at: now + Duration::from_secs(lifetime.min(100 * 365 * 86_400)),
        },
    );
    st.token_grants += 1;
    *st.grants_by_refresh
        .entry(refresh_token.clone())
        .or_default() += 1;
    json_answer(
        StatusCode::OK,
        &json!({"access_token": access_token, "token_type": "bearer",
                "expires_in": lifetime, "refresh_token": refresh_token}),
    )
}
