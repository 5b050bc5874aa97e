//! The AMC calls of a session: accounts, instances and the reporting
//! probe, and what every AMC call shares: the headers it presents, paging
//! through a listing, decoding the answer and reading AMC's errors.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::client::{Authorize, Call, Failure, MAX_BODY_BYTES, Raw, Reply, Sent, Service};
use super::error::{AmcError, AuthError, RequestName, shorten};
use super::session::{CachedToken, Session};
use super::types::{
    AccountsPage, AmcAccount, AmcInstance, ErrorBody, InstanceEnvelope, InstancesPage, Page,
    Workflow, WorkflowsPage,
};
use crate::domain::{Country, EntityId, InstanceId, Region};
use crate::secrets::scrub;

/// Page size asked of `GET /amc/instances`.
pub const PAGE_LIMIT: u32 = 100;

const CLIENT_ID_HEADER: HeaderName = HeaderName::from_static("amazon-advertising-api-clientid");
const ADVERTISER_HEADER: HeaderName =
    HeaderName::from_static("amazon-advertising-api-advertiserid");
const MARKETPLACE_HEADER: HeaderName =
    HeaderName::from_static("amazon-advertising-api-marketplaceid");

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

/// What an AMC call presents: the session's access token (a 401 makes the
/// session drop it) and the account the call acts for.
struct Bearer<'a> {
    session: &'a Session,
    advertiser: Option<&'a Advertiser>,
}

impl Authorize for Bearer<'_> {
    async fn present(&self) -> Result<(HeaderMap, Option<SecretString>), AmcError> {
        let token = self.session.access_token().await?;
        let headers = self.session.headers(&token, self.advertiser)?;
        Ok((headers, Some(token.access_token)))
    }

    async fn refused(&self, token: &SecretString) {
        self.session.reject(token).await;
    }
}

impl Session {
    /// `GET /amc/accounts`, every page: the AMC accounts the credentials can see.
    pub async fn list_accounts(&self) -> Result<Reply<Vec<AmcAccount>>, AmcError> {
        let base = self.api_base(self.credentials().region, None);
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
        let config = self.client().config();
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

    /// The base URL of a call (see [`AmcClient`](super::AmcClient)'s policy).
    pub(super) fn api_base(&self, region: Region, api_endpoint: Option<&str>) -> String {
        self.client().api_base(region, api_endpoint)
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
            HeaderValue::from_str(&self.credentials().client_id).map_err(|_| bad("client ID"))?,
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
        Ok(headers)
    }

    /// A GET through the client's retrying send, presenting the session's
    /// token and `advertiser`; the answer decoded.
    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        query: &[(&str, &str)],
        advertiser: Option<&Advertiser>,
    ) -> Result<Reply<T>, AmcError> {
        let request = RequestName("GET", path).to_string();
        let call = Call {
            service: Service::Amc,
            method: reqwest::Method::GET,
            url: reqwest::Url::parse(&format!("{base}{path}"))
                .map_err(|e| AmcError::Config(format!("bad API URL {base}: {e}")))?,
            path,
            query,
            form: None,
        };
        let auth = Bearer {
            session: self,
            advertiser,
        };
        let Sent {
            outcome,
            attempts,
            latency,
            bearer,
        } = self.client().send(&call, &auth).await?;
        match outcome {
            Ok(raw) if raw.is_success() => {
                let status = raw.status;
                self.decode(&request, raw, attempts).map(|value| Reply {
                    value,
                    status,
                    attempts,
                    latency,
                })
            }
            Ok(raw) => Err(self.api_error(&request, &raw, attempts, latency, bearer.as_ref())),
            Err(Failure::Timeout) => Err(AmcError::Timeout {
                request,
                after: self.client().config().timeout,
                attempts,
            }),
            Err(Failure::Network(message, tls)) => Err(AmcError::Network {
                request,
                message: self.clean(&message, None),
                attempts,
                tls,
            }),
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
                MAX_BODY_BYTES >> 20
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
        token: Option<&SecretString>,
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
        let clean = |t: String| self.clean(&t, token);
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
