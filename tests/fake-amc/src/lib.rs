//! A fake Amazon Marketing Cloud API and Login-with-Amazon token endpoint,
//! served over real HTTP/1.1 on 127.0.0.1, for amcctl's tests, examples and
//! benchmarks.
//!
//! The point is to exercise the real client (TLS aside) end to end: its
//! headers, token refreshes, pagination, retries and rate limiting. So the
//! fake checks what the real service checks, answers in the real service's
//! shapes, and can be told to misbehave in the ways real networks and real
//! services do (see [`Fault`]).
//!
//! ```no_run
//! let amc = fake_amc::FakeAmc::start();
//! amc.add_client("amzn1.application-oa2-client.x", "secret", "Atzr|refresh");
//! amc.add_account("ENTITY1ABC", "Acme US", "ATVPDKIKX0DER");
//! amc.add_instance("ENTITY1ABC", "amcibersblt", "acme-main");
//! // point AMCCTL_API_URL at amc.base_url(), AMCCTL_AUTH_URL at amc.token_url()
//! ```
//!
//! To see where each request went, start it under path prefixes instead,
//! one per place a client may be pointed at; [`Recorded::mount`] then tells
//! which one each request came in under:
//!
//! ```no_run
//! let amc = fake_amc::FakeAmc::start_under(&["/amc-api", "/lwa"]);
//! let api = amc.url_under("/amc-api"); // answers /amc-api/amc/instances…
//! let token = format!("{}/auth/o2/token", amc.url_under("/lwa"));
//! ```

// Early answers travel as `Err(Response)`; boxing them would only add noise
// to a test server where the size of a Result is irrelevant.
#![allow(clippy::result_large_err)]
#![warn(missing_docs)]

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

mod oauth;
mod usage;
pub use oauth::{Authorization, AuthorizeOutcome, Exchange};
pub use usage::{Usage, UsageList, advertiser, execution, schedule, workflow};

/// Largest request body the fake reads; the client never sends more than a
/// token form, so anything bigger is a bug worth a 413 rather than memory.
const MAX_REQUEST_BODY: usize = 1 << 20;
/// `creationDatetime` of every instance: fixed so outputs are reproducible.
const CREATED_AT: &str = "2026-01-01T00:00:00Z";
const HDR_CLIENT_ID: &str = "amazon-advertising-api-clientid";
const HDR_ADVERTISER: &str = "amazon-advertising-api-advertiserid";
const HDR_MARKETPLACE: &str = "amazon-advertising-api-marketplaceid";
/// The `requestId` in the body of an error of `GET /amc/accounts`.
pub const ACCOUNTS_REQUEST_ID: &str = "b2f7c9a0-acc0-4e11-9d1e-fakeaccounts";
/// Prefix of the `x-amz-rid` header on every AMC answer (then the request's
/// sequence number).
pub const REQUEST_ID_PREFIX: &str = "FAKERID";

/// A running fake server. Dropping it stops the server and closes every
/// connection.
pub struct FakeAmc {
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Which calls a one-shot fault ([`FakeAmc::push_faults`]) applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// `POST /auth/o2/token`.
    Token,
    /// `GET /ap/oa`, the authorize page.
    Authorize,
    /// `GET /amc/accounts`.
    Accounts,
    /// `GET /amc/instances` (any page).
    Instances,
    /// `GET /amc/instances/{instanceId}` for this instance ID.
    Instance(String),
    /// `GET /amc/reporting/{instanceId}/workflows` for this instance ID.
    Workflows(String),
    /// `GET /amc/reporting/{instanceId}/workflowExecutions` for this instance ID.
    Executions(String),
    /// `GET /amc/reporting/{instanceId}/schedules` for this instance ID.
    Schedules(String),
    /// `GET /amc/instances/{instanceId}/advertisers` for this instance ID.
    Advertisers(String),
    /// Any of the AMC calls above (not the token call).
    AnyAmc,
}

impl Route {
    /// Whether a fault scripted for `self` applies to a call on `actual`.
    fn matches(&self, actual: &Route) -> bool {
        match self {
            Route::AnyAmc => !matches!(actual, Route::Token | Route::Authorize),
            scripted => scripted == actual,
        }
    }

    fn instance_id(&self) -> Option<&str> {
        match self {
            Route::Instance(id)
            | Route::Workflows(id)
            | Route::Executions(id)
            | Route::Schedules(id)
            | Route::Advertisers(id) => Some(id),
            _ => None,
        }
    }
}

/// A misbehaviour the fake can be told to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Wait this long, then carry on and answer normally.
    Delay(Duration),
    /// 429 with AMC's error body, and `Retry-After` when `Some`.
    Throttle {
        /// Seconds to send in `Retry-After`; `None` sends no header.
        retry_after: Option<u64>,
    },
    /// This status with AMC's error body `{"code":"<status>","details":"…"}`
    /// (an invalid status code becomes 500).
    Status(u16),
    /// Close the TCP connection without sending a single response byte.
    Reset,
    /// 200 `application/json` whose body is not JSON.
    MalformedJson,
    /// 200 `application/json` with a plausible body for the route cut in half.
    TruncatedJson,
    /// 200 `text/html` with an HTML page, as a captive portal or proxy would.
    WrongContentType,
    /// 200 `application/json` whose body is one JSON string of this many bytes.
    HugeBody(usize),
    /// Answer normally, but with this `creationStatus`. Only
    /// `GET /amc/instances/{id}` shows it; other calls ignore it.
    NotCompleted(String),
    /// Exactly this answer, whatever the route: any status, content type
    /// and body a tampered service or a proxy might send. `{request}` in
    /// the body becomes the request's own body as received (for a token
    /// call, the form with the secrets), the way a gateway that echoes what
    /// it refused would answer.
    Answer {
        /// The HTTP status (an invalid one becomes 500).
        status: u16,
        /// The `Content-Type` header.
        content_type: String,
        /// The body, with `{request}` replaced.
        body: String,
    },
    /// 200 `application/json` with `{}`: a listing page without its array.
    EmptyObject,
}

/// One request as the fake received it, and what it answered.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// The path as received, prefix included, without the query.
    pub path: String,
    /// The prefix ([`FakeAmc::start_under`]) the path came in under: `""`
    /// for a fake serving at the root, `None` for a path under none of
    /// its prefixes (answered 404).
    pub mount: Option<String>,
    /// The raw query string, if the URL had one.
    pub query: Option<String>,
    /// Every header, names lowercased, in the order received.
    pub headers: Vec<(String, String)>,
    /// The request body as text (lossy UTF-8); the form for token calls.
    pub body: String,
    /// The status answered; 0 for [`Fault::Reset`] or while still in progress.
    pub status: u16,
    /// When the request arrived.
    pub at: Instant,
}

impl Recorded {
    /// The path below its prefix (`/amc/accounts` for `/amc-api/amc/accounts`
    /// under `/amc-api`), or `None` for a path under none of the prefixes.
    pub fn resource(&self) -> Option<&str> {
        self.path.strip_prefix(self.mount.as_deref()?)
    }

    /// The first value of header `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    base_url: String,
    /// The path prefixes served, longest first (`""`: the root).
    mounts: Vec<String>,
    /// The URL of the first prefix: instances' default `apiEndpoint`, and
    /// where the authorize page is.
    first_url: String,
    /// Keys the `nextToken` tags so forged or cross-advertiser tokens are
    /// detected without keeping server-side pagination state.
    page_key: RandomState,
    state: Mutex<State>,
}

impl Shared {
    /// Locks the state, ignoring poisoning: the state stays consistent even
    /// if a test thread panicked while holding the lock.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The prefix `path` lies under (the longest that matches), and the
    /// path below it.
    fn mount<'a>(&self, path: &'a str) -> Option<(&str, &'a str)> {
        self.mounts.iter().find_map(|m| {
            let rest = path.strip_prefix(m.as_str())?;
            rest.starts_with('/').then_some((m.as_str(), rest))
        })
    }

    fn page_token(&self, advertiser: &str, offset: usize) -> String {
        let tag = self.page_key.hash_one((advertiser, offset));
        format!("{offset}.{tag:016x}")
    }

    /// The offset a `nextToken` stands for, if this fake issued it for this advertiser.
    fn page_offset(&self, advertiser: &str, token: &str) -> Option<usize> {
        let (offset, tag) = token.split_once('.')?;
        let offset: usize = offset.parse().ok()?;
        (self.page_token(advertiser, offset).split_once('.')?.1 == tag).then_some(offset)
    }
}

struct State {
    clients: HashMap<String, ClientApp>,
    tokens: HashMap<String, AccessToken>,
    token_lifetime: u64,
    accounts: Vec<Account>,
    instances: Vec<Instance>,
    latency: Duration,
    bucket: Option<Bucket>,
    instance_faults: HashMap<String, Fault>,
    /// One-shot faults in the order pushed; the first matching entry is used.
    scripted: Vec<(Route, Fault)>,
    /// Requests with a sequence number, so answers find their record even
    /// after `clear_requests`.
    requests: Vec<(u64, Recorded)>,
    next_seq: u64,
    token_grants: usize,
    throttled: usize,
    usage: usage::UsageState,
    /// Every listing page carries a fresh `nextToken`, forever.
    endless_pages: bool,
    /// The vendor media type of AMC's answers, when set; requests whose
    /// `Accept` admits neither it nor `*/*` get 415.
    media_type: Option<String>,
    /// Successful token requests per refresh token (grant).
    grants_by_refresh: HashMap<String, usize>,
    oauth: oauth::OAuthState,
}

struct ClientApp {
    secret: String,
    refresh_tokens: Vec<String>,
}

struct AccessToken {
    client_id: String,
    /// The refresh token (the grant) it was issued for.
    refresh_token: String,
    expires_at: Instant,
}

struct Account {
    id: String,
    name: String,
    marketplace: String,
}

struct Instance {
    account: String,
    id: String,
    name: String,
    status: String,
    /// Its `apiEndpoint`; `None` leaves the field out.
    api_endpoint: Option<String>,
}

/// The server-side token bucket of [`FakeAmc::set_rate_limit`].
struct Bucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl FakeAmc {
    /// Starts on 127.0.0.1 (a free port) in its own thread with its own
    /// multi-thread tokio runtime, so it works from plain `#[test]` functions
    /// and from inside other tokio runtimes.
    ///
    /// # Panics
    /// If the runtime or the listening socket cannot be created.
    pub fn start() -> FakeAmc {
        Self::start_with(None, &[""])
    }

    /// Like [`start`](Self::start), but serving only under these path
    /// prefixes (`"/amc-api"`: a leading slash, none at the end), each the
    /// whole service: `/amc-api/amc/instances`, `/amc-api/auth/o2/token`, ….
    /// A path under none of them is answered 404. Each request's
    /// [`Recorded::mount`] names the prefix it came in under, so a test can
    /// give each of a client's base URLs a prefix of its own and see which
    /// one every call used. Instances' `apiEndpoint` is the first prefix's
    /// URL until [`set_api_endpoint`](Self::set_api_endpoint) says otherwise.
    ///
    /// # Panics
    /// If there is no prefix, or one is not of that form.
    pub fn start_under(prefixes: &[&str]) -> FakeAmc {
        assert!(!prefixes.is_empty(), "fake-amc: no prefix to serve under");
        for p in prefixes {
            assert!(
                p.starts_with('/') && !p.ends_with('/') && !p.contains(['?', '#']),
                "fake-amc: a prefix is like \"/amc-api\", not {p:?}"
            );
        }
        Self::start_with(None, prefixes)
    }

    /// Like [`start`](Self::start), but serving HTTPS with this certificate
    /// chain and private key (PEM), as a test's own CA would issue them for
    /// `127.0.0.1`. [`base_url`](Self::base_url) is then `https://127.0.0.1:PORT`.
    ///
    /// # Panics
    /// If the PEM does not hold a usable certificate and key.
    pub fn start_tls(cert_chain_pem: &str, key_pem: &str) -> FakeAmc {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_chain_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("fake-amc: bad certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .expect("fake-amc: bad private key PEM");
        let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("fake-amc: no TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("fake-amc: unusable certificate or key");
        Self::start_with(
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
            &[""],
        )
    }

    fn start_with(tls: Option<tokio_rustls::TlsAcceptor>, prefixes: &[&str]) -> FakeAmc {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fake-amc")
            .enable_all()
            .build()
            .expect("fake-amc: cannot build a tokio runtime");
        // Bind here rather than in the thread so the port is known on return;
        // a deep backlog because benchmarks open thousands of connections at once.
        let listener = {
            let _guard = runtime.enter();
            let socket = tokio::net::TcpSocket::new_v4().expect("fake-amc: cannot create a socket");
            socket
                .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .expect("fake-amc: cannot bind 127.0.0.1");
            socket.listen(4096).expect("fake-amc: cannot listen")
        };
        let addr = listener.local_addr().expect("fake-amc: no local address");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut mounts: Vec<String> = prefixes.iter().map(|p| (*p).to_owned()).collect();
        // The API's URL, before the longest-first order hides which came first.
        let first_url = format!("{scheme}://{addr}{}", mounts[0]);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        let shared = Arc::new(Shared {
            base_url: format!("{scheme}://{addr}"),
            mounts,
            first_url,
            page_key: RandomState::new(),
            state: Mutex::new(State {
                clients: HashMap::new(),
                tokens: HashMap::new(),
                token_lifetime: 3600,
                accounts: Vec::new(),
                instances: Vec::new(),
                latency: Duration::ZERO,
                bucket: None,
                instance_faults: HashMap::new(),
                scripted: Vec::new(),
                requests: Vec::new(),
                next_seq: 0,
                token_grants: 0,
                throttled: 0,
                usage: usage::UsageState::default(),
                endless_pages: false,
                media_type: None,
                grants_by_refresh: HashMap::new(),
                oauth: oauth::OAuthState::default(),
            }),
        });
        let (shutdown, stop) = tokio::sync::oneshot::channel();
        let server = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fake-amc".into())
            .spawn(move || runtime.block_on(serve(listener, server, stop, tls)))
            .expect("fake-amc: cannot spawn the server thread");
        FakeAmc {
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`, the client's `AMCCTL_API_URL`.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// `http://127.0.0.1:PORT/PREFIX`: where the fake serves under `prefix`
    /// ([`start_under`](Self::start_under); `""` is the root).
    pub fn url_under(&self, prefix: &str) -> String {
        format!("{}{prefix}", self.shared.base_url)
    }

    /// `http://127.0.0.1:PORT/auth/o2/token`, the client's `AMCCTL_AUTH_URL`.
    pub fn token_url(&self) -> String {
        format!("{}/auth/o2/token", self.base_url())
    }

    /// Registers a Login-with-Amazon client and one refresh token of it.
    /// Call again with the same client for more refresh tokens (users); the
    /// latest secret wins.
    pub fn add_client(&self, client_id: &str, client_secret: &str, refresh_token: &str) {
        let mut st = self.shared.lock();
        let client = st
            .clients
            .entry(client_id.to_owned())
            .or_insert_with(|| ClientApp {
                secret: String::new(),
                refresh_tokens: Vec::new(),
            });
        client.secret = client_secret.to_owned();
        if !client.refresh_tokens.iter().any(|t| t == refresh_token) {
            client.refresh_tokens.push(refresh_token.to_owned());
        }
    }

    /// `expires_in` (seconds) of tokens issued from now on; default 3600.
    pub fn set_token_lifetime(&self, secs: u64) {
        self.shared.lock().token_lifetime = secs;
    }

    /// Makes every access token issued so far expired.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for token in self.shared.lock().tokens.values_mut() {
            token.expires_at = now;
        }
    }

    /// Adds an AMC account (or replaces the one with this ID).
    pub fn add_account(&self, account_id: &str, account_name: &str, marketplace_id: &str) {
        let account = Account {
            id: account_id.to_owned(),
            name: account_name.to_owned(),
            marketplace: marketplace_id.to_owned(),
        };
        let mut st = self.shared.lock();
        match st.accounts.iter_mut().find(|a| a.id == account_id) {
            Some(existing) => *existing = account,
            None => st.accounts.push(account),
        }
    }

    /// Adds a COMPLETED instance to that account (or replaces the one with
    /// this ID); its `apiEndpoint` is [`base_url`](Self::base_url) (under
    /// [`start_under`](Self::start_under), the first prefix's URL). Listing
    /// order is insertion order.
    pub fn add_instance(&self, account_id: &str, instance_id: &str, instance_name: &str) {
        let instance = Instance {
            account: account_id.to_owned(),
            id: instance_id.to_owned(),
            name: instance_name.to_owned(),
            status: "COMPLETED".to_owned(),
            api_endpoint: Some(self.shared.first_url.clone()),
        };
        let mut st = self.shared.lock();
        match st.instances.iter_mut().find(|i| i.id == instance_id) {
            Some(existing) => *existing = instance,
            None => st.instances.push(instance),
        }
    }

    /// Sets an instance's `creationStatus`, e.g. `"FAILED"` or `"PENDING"`.
    ///
    /// # Panics
    /// If no such instance was added: a typo in a test should fail loudly.
    pub fn set_creation_status(&self, instance_id: &str, status: &str) {
        let mut st = self.shared.lock();
        let instance = st.instances.iter_mut().find(|i| i.id == instance_id);
        match instance {
            Some(instance) => instance.status = status.to_owned(),
            None => panic!("fake-amc: set_creation_status on unknown instance {instance_id:?}"),
        }
    }

    /// Sets an instance's `apiEndpoint`; `None` leaves the field out of its
    /// JSON, as for an instance AMC gives none.
    ///
    /// # Panics
    /// If no such instance was added.
    pub fn set_api_endpoint(&self, instance_id: &str, endpoint: Option<&str>) {
        let mut st = self.shared.lock();
        match st.instances.iter_mut().find(|i| i.id == instance_id) {
            Some(instance) => instance.api_endpoint = endpoint.map(str::to_owned),
            None => panic!("fake-amc: set_api_endpoint on unknown instance {instance_id:?}"),
        }
    }

    /// Delay added to every AMC call that passes the header checks (not the token call).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.lock().latency = latency;
    }

    /// Server-side token bucket over all AMC calls: capacity
    /// `max(1, per_second)` tokens, refilled at `per_second`, starting full.
    /// A call finding no token gets 429 with `Retry-After: 1`. `None` (the
    /// default) is unlimited; a rate that is not a positive number never refills.
    pub fn set_rate_limit(&self, per_second: Option<f64>) {
        self.shared.lock().bucket = per_second.map(|rate| {
            let rate = if rate.is_finite() && rate > 0.0 {
                rate
            } else {
                0.0
            };
            let capacity = rate.max(1.0);
            Bucket {
                rate,
                capacity,
                tokens: capacity,
                last: Instant::now(),
            }
        });
    }

    /// A persistent fault for every call naming this instance
    /// (`GET /amc/instances/{id}`, its workflows, executions, schedules and
    /// linked advertisers), replacing any earlier one.
    /// It applies after the rate limit, the header checks and the latency, as
    /// the real service reports an instance's state only to a valid call.
    pub fn on_instance(&self, instance_id: &str, fault: Fault) {
        self.shared
            .lock()
            .instance_faults
            .insert(instance_id.to_owned(), fault);
    }

    /// One-shot faults: the next calls matching `route` get these, one each,
    /// in order; later calls behave normally. They apply before the
    /// per-instance fault, the rate limit and the header checks.
    pub fn push_faults(&self, route: Route, faults: impl IntoIterator<Item = Fault>) {
        let mut st = self.shared.lock();
        st.scripted
            .extend(faults.into_iter().map(|f| (route.clone(), f)));
    }

    /// When on, every page of `GET /amc/instances` and `GET /amc/accounts`
    /// carries a new `nextToken`, however far the client follows them: a
    /// broken server, for the client's bound on endless listings.
    pub fn set_endless_pages(&self, on: bool) {
        self.shared.lock().endless_pages = on;
    }

    /// Serves AMC's answers as this media type (say
    /// `application/vnd.amcinstances.v1+json`, as AMC's documents declare,
    /// or `application/octet-stream`), and answers 415 to a request whose
    /// `Accept` admits neither it nor `*/*`. `None` (the default) is
    /// `application/json` for any `Accept`.
    pub fn set_media_type(&self, media_type: Option<&str>) {
        self.shared.lock().media_type = media_type.map(str::to_owned);
    }

    /// Every request received since the start (or the last
    /// [`clear_requests`](Self::clear_requests)), in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .lock()
            .requests
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Successful token refreshes so far.
    pub fn token_grants(&self) -> usize {
        self.shared.lock().token_grants
    }

    /// 429 responses sent so far, from the rate limit and from faults.
    pub fn throttled(&self) -> usize {
        self.shared.lock().throttled
    }

    /// Successful token requests (refreshes and code exchanges) that
    /// granted for this refresh token.
    pub fn token_grants_for(&self, refresh_token: &str) -> usize {
        self.shared
            .lock()
            .grants_by_refresh
            .get(refresh_token)
            .copied()
            .unwrap_or(0)
    }

    /// The refresh token (grant) an access token was issued for, if the
    /// fake issued it.
    pub fn grant_of(&self, access_token: &str) -> Option<String> {
        self.shared
            .lock()
            .tokens
            .get(access_token)
            .map(|t| t.refresh_token.clone())
    }

    /// For every AMC call received (token calls aside) that carried an
    /// advertiser header: the advertiser and the grant (refresh token) of
    /// the bearer token it came with (`None`: a token the fake never issued).
    pub fn grants_by_advertiser(&self) -> Vec<(String, Option<String>)> {
        let st = self.shared.lock();
        st.requests
            .iter()
            .filter(|(_, r)| r.resource().is_some_and(|p| p.starts_with("/amc/")))
            .filter_map(|(_, r)| {
                let advertiser = r.header(HDR_ADVERTISER)?.to_owned();
                let token = r
                    .header(AUTHORIZATION.as_str())
                    .and_then(|h| h.strip_prefix("Bearer "))
                    .unwrap_or_default();
                let grant = st.tokens.get(token).map(|t| t.refresh_token.clone());
                Some((advertiser, grant))
            })
            .collect()
    }

    /// Forgets the recorded requests (counters are kept).
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }
}

impl Drop for FakeAmc {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        // Joining means the port is closed once drop returns; the runtime is
        // dropped in its own thread, so this is safe inside another runtime.
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until told to stop. Each connection gets its own task
/// so thousands can be in flight at once.
async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = Arc::clone(&shared);
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        match tls {
                            None => serve_connection(stream, shared).await,
                            // A client that refuses our certificate ends here.
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    serve_connection(stream, shared).await;
                                }
                            }
                        }
                    });
                }
                // Typically out of file descriptors: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

async fn serve_connection<I>(io: I, shared: Arc<Shared>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| handle(Arc::clone(&shared), req));
    // Errors here are clients going away or a Reset fault.
    let _ = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .header_read_timeout(None)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service)
        .await;
}

type Answer = Response<Full<Bytes>>;

/// The error a service returns to make hyper drop the connection unanswered.
#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection reset by a scripted fault")
    }
}

impl std::error::Error for ResetConnection {}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Result<Answer, ResetConnection> {
    let at = Instant::now();
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, MAX_REQUEST_BODY)
        .collect()
        .await
        .map(|b| b.to_bytes());
    let text = body
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let mount = shared.mount(parts.uri.path());
    let resource = mount.map(|(_, rest)| rest);
    let seq = {
        let mut st = shared.lock();
        let seq = st.next_seq;
        st.next_seq += 1;
        let record = Recorded {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            mount: mount.map(|(m, _)| m.to_owned()),
            query: parts.uri.query().map(str::to_owned),
            headers: parts
                .headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: text.clone(),
            status: 0,
            at,
        };
        st.requests.push((seq, record));
        seq
    };
    let answer = if body.is_err() {
        Some(amc_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Request body too large or unreadable",
        ))
    } else if let Some(resource) = resource {
        process(&shared, &parts, resource, &text).await
    } else {
        Some(amc_error(StatusCode::NOT_FOUND, "Resource not found"))
    };
    let mut answer = answer;
    if let Some(a) = answer
        .as_mut()
        .filter(|_| resource.is_some_and(|p| p.starts_with("/amc/")))
        && let Ok(value) = HeaderValue::from_str(&format!("{REQUEST_ID_PREFIX}{seq:08}"))
    {
        a.headers_mut().insert("x-amz-rid", value);
    }
    let mut st = shared.lock();
    let status = answer.as_ref().map_or(0, |a| a.status().as_u16());
    if status == 429 {
        st.throttled += 1;
    }
    if let Ok(i) = st.requests.binary_search_by_key(&seq, |(s, _)| *s) {
        st.requests[i].1.status = status;
    }
    answer.ok_or(ResetConnection)
}

/// What a fault means for the rest of the processing.
enum Flow {
    Continue,
    Stop(Option<Answer>),
}

fn apply_fault(
    fault: Fault,
    route: &Route,
    request_body: &str,
    not_completed: &mut Option<String>,
) -> Flow {
    match fault {
        Fault::Delay(_) => Flow::Continue, // slept by the caller, which can await
        Fault::NotCompleted(status) => {
            not_completed.get_or_insert(status);
            Flow::Continue
        }
        Fault::Reset => Flow::Stop(None),
        Fault::Throttle { retry_after } => {
            let mut answer = amc_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            if let Some(secs) = retry_after {
                answer.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            Flow::Stop(Some(answer))
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let details = status.canonical_reason().unwrap_or("Injected failure");
            Flow::Stop(Some(match route {
                // Login with Amazon explains its failures in OAuth's shape.
                Route::Token => json_answer(
                    status,
                    &json!({"error": "server_error", "error_description": format!("{details}: try again later")}),
                ),
                // `GET /amc/accounts` answers errors as `{"message","requestId"}`.
                Route::Accounts => json_answer(
                    status,
                    &json!({"message": details, "requestId": ACCOUNTS_REQUEST_ID}),
                ),
                _ => amc_error(status, details),
            }))
        }
        Fault::Answer {
            status,
            content_type,
            body,
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut answer = Response::new(Full::new(Bytes::from(
                body.replace("{request}", request_body),
            )));
            *answer.status_mut() = status;
            if let Ok(ct) = HeaderValue::from_str(&content_type) {
                answer.headers_mut().insert(CONTENT_TYPE, ct);
            }
            Flow::Stop(Some(answer))
        }
        Fault::EmptyObject => Flow::Stop(Some(raw(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(b"{}"),
        ))),
        Fault::MalformedJson => Flow::Stop(Some(raw(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(b"{\"instances\": [{instanceId: amc???, <not json>"),
        ))),
        Fault::TruncatedJson => {
            let full = Bytes::from(sample_body(route).to_string());
            let half = full.slice(..full.len() / 2);
            Flow::Stop(Some(raw(StatusCode::OK, "application/json", half)))
        }
        Fault::WrongContentType => Flow::Stop(Some(raw(
            StatusCode::OK,
            "text/html; charset=utf-8",
            Bytes::from_static(b"<!DOCTYPE html><html><head><title>Sign in</title></head><body><h1>Please sign in to continue</h1></body></html>"),
        ))),
        Fault::HugeBody(len) => {
            let mut body = vec![b'x'; len];
            if let Some(first) = body.first_mut() {
                *first = b'"';
            }
            if len >= 2 {
                body[len - 1] = b'"';
            }
            Flow::Stop(Some(raw(StatusCode::OK, "application/json", Bytes::from(body))))
        }
    }
}

/// A plausible success body for the route, for [`Fault::TruncatedJson`].
fn sample_body(route: &Route) -> Value {
    let instance = |id: &str| {
        json!({"instanceId": id, "instanceName": "truncated", "apiEndpoint": "http://127.0.0.1",
               "creationStatus": "COMPLETED", "instanceType": "STANDARD", "creationDatetime": CREATED_AT})
    };
    match route {
        Route::Token | Route::Authorize => {
            json!({"access_token": "Atza|truncated", "token_type": "bearer",
                               "expires_in": 3600, "refresh_token": "Atzr|truncated"})
        }
        Route::Accounts | Route::AnyAmc => json!({"amcAccounts": [{"accountId": "ENTITY1TRUNCATED",
                               "accountName": "Truncated", "marketplaceId": "ATVPDKIKX0DER"}]}),
        Route::Instances => json!({"instances": [instance("amctruncate")]}),
        Route::Instance(id) => json!({"instance": instance(id)}),
        Route::Workflows(_)
        | Route::Executions(_)
        | Route::Schedules(_)
        | Route::Advertisers(_) => usage::sample_body(route),
    }
}

/// Runs one request for `path` (below its prefix) through the pipeline:
/// scripted fault, rate limit, header checks, latency, per-instance fault,
/// answer. `None` means reset.
async fn process(
    shared: &Shared,
    parts: &hyper::http::request::Parts,
    path: &str,
    body: &str,
) -> Option<Answer> {
    let route = match resolve(&parts.method, path) {
        Ok(route) => route,
        Err(answer) => return Some(answer),
    };
    let mut not_completed = None;
    let scripted = {
        let mut st = shared.lock();
        let pos = st.scripted.iter().position(|(r, _)| r.matches(&route));
        pos.map(|i| st.scripted.remove(i).1)
    };
    if let Some(fault) = scripted {
        if let Fault::Delay(d) = fault {
            tokio::time::sleep(d).await;
        }
        if let Flow::Stop(answer) = apply_fault(fault, &route, body, &mut not_completed) {
            return answer;
        }
    }
    if route == Route::Authorize {
        return Some(oauth::authorize(
            shared,
            parts.uri.query().unwrap_or_default(),
        ));
    }
    if route == Route::Token {
        return Some(grant_token(shared, &parts.headers, body));
    }
    let (advertiser, latency) = {
        let mut st = shared.lock();
        let now = Instant::now();
        if let Some(bucket) = st.bucket.as_mut()
            && !bucket.take(now)
        {
            let mut answer = amc_error(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            answer
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
            return Some(answer);
        }
        match authorize(&st, &parts.headers, &route, now) {
            Ok(advertiser) => (advertiser, st.latency),
            Err(answer) => return Some(answer),
        }
    };
    let media_type = shared.lock().media_type.clone();
    if let Some(media) = &media_type
        && !accepts(header(&parts.headers, "accept"), media)
    {
        return Some(amc_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Unsupported Accept header; this resource serves {media}"),
        ));
    }
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    // An instance's standing trouble is its own state, which AMC tells only
    // an authenticated, well-formed call that the rate limit let through,
    // and only after the usual time to answer.
    let persistent = route
        .instance_id()
        .and_then(|id| shared.lock().instance_faults.get(id).cloned());
    if let Some(fault) = persistent {
        if let Fault::Delay(d) = fault {
            tokio::time::sleep(d).await;
        }
        if let Flow::Stop(answer) = apply_fault(fault, &route, body, &mut not_completed) {
            return answer;
        }
    }
    let st = shared.lock();
    let mut answer = respond(
        shared,
        &st,
        &route,
        &advertiser,
        parts.uri.query(),
        not_completed,
    );
    if let Some(media) = media_type.filter(|_| answer.status().is_success())
        && let Ok(value) = HeaderValue::from_str(&media)
    {
        answer.headers_mut().insert(CONTENT_TYPE, value);
    }
    Some(answer)
}

/// Whether an `Accept` header admits `media` (a missing one admits all).
fn accepts(accept: Option<&str>, media: &str) -> bool {
    let Some(accept) = accept else { return true };
    let main = media.split('/').next().unwrap_or("");
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let range = parts.next().unwrap_or("").trim();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f64>().ok())
                == Some(0.0)
        });
        !refused
            && (range == "*/*"
                || range.eq_ignore_ascii_case(media)
                || range
                    .strip_suffix("/*")
                    .is_some_and(|m| m.eq_ignore_ascii_case(main)))
    })
}

/// Maps method and path to a route, or answers 404/405 for anything else.
fn resolve(method: &Method, path: &str) -> Result<Route, Answer> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or(path).split('/').collect();
    let (route, allowed) = match segments.as_slice() {
        ["auth", "o2", "token"] => (Route::Token, Method::POST),
        ["ap", "oa"] => (Route::Authorize, Method::GET),
        ["amc", "accounts"] => (Route::Accounts, Method::GET),
        ["amc", "instances"] => (Route::Instances, Method::GET),
        ["amc", "instances", id] if !id.is_empty() => {
            (Route::Instance((*id).to_owned()), Method::GET)
        }
        ["amc", "reporting", id, "workflows"] if !id.is_empty() => {
            (Route::Workflows((*id).to_owned()), Method::GET)
        }
        ["amc", "reporting", id, "workflowExecutions"] if !id.is_empty() => {
            (Route::Executions((*id).to_owned()), Method::GET)
        }
        ["amc", "reporting", id, "schedules"] if !id.is_empty() => {
            (Route::Schedules((*id).to_owned()), Method::GET)
        }
        ["amc", "instances", id, "advertisers"] if !id.is_empty() => {
            (Route::Advertisers((*id).to_owned()), Method::GET)
        }
        _ => return Err(amc_error(StatusCode::NOT_FOUND, "Resource not found")),
    };
    if *method != allowed {
        let mut answer = amc_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
        answer.headers_mut().insert(
            ALLOW,
            HeaderValue::from_static(if allowed == Method::POST {
                "POST"
            } else {
                "GET"
            }),
        );
        return Err(answer);
    }
    Ok(route)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

/// The header checks of an AMC call; on success, the advertiser the call is
/// made for (empty for `GET /amc/accounts`, which needs none).
fn authorize(
    st: &State,
    headers: &HeaderMap,
    route: &Route,
    now: Instant,
) -> Result<String, Answer> {
    let unauthorized =
        |details: &str| amc_error_code(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", details);
    let bearer = header(headers, AUTHORIZATION.as_str())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let Some(bearer) = bearer else {
        return Err(unauthorized("Missing or malformed Authorization header"));
    };
    let Some(token) = st.tokens.get(bearer) else {
        return Err(unauthorized("Invalid access token"));
    };
    if now >= token.expires_at {
        return Err(unauthorized("Access token has expired"));
    }
    if header(headers, HDR_CLIENT_ID) != Some(token.client_id.as_str()) {
        return Err(unauthorized(
            "Amazon-Advertising-API-ClientId is missing or does not match the access token",
        ));
    }
    if *route == Route::Accounts {
        return Ok(String::new());
    }
    let Some(advertiser) = header(headers, HDR_ADVERTISER) else {
        return Err(amc_error(
            StatusCode::BAD_REQUEST,
            "Missing required header Amazon-Advertising-API-AdvertiserId",
        ));
    };
    let Some(account) = st.accounts.iter().find(|a| a.id == advertiser) else {
        return Err(amc_error(
            StatusCode::FORBIDDEN,
            &format!("Not authorized to access advertiser {advertiser}"),
        ));
    };
    match header(headers, HDR_MARKETPLACE) {
        None => Err(amc_error(
            StatusCode::BAD_REQUEST,
            "Missing required header Amazon-Advertising-API-MarketplaceId",
        )),
        Some(m) if m != account.marketplace => Err(amc_error(
            StatusCode::BAD_REQUEST,
            &format!("Marketplace {m} does not match advertiser {advertiser}"),
        )),
        Some(_) => Ok(advertiser.to_owned()),
    }
}

/// The success (or not-found) answer of an authorized AMC call.
fn respond(
    shared: &Shared,
    st: &State,
    route: &Route,
    advertiser: &str,
    query: Option<&str>,
    not_completed: Option<String>,
) -> Answer {
    let params: HashMap<String, String> = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .fold(HashMap::new(), |mut m, (k, v)| {
            m.entry(k).or_insert(v); // the first occurrence wins
            m
        });
    let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
        None => 100,
        Some(Ok(l)) if (1..=100).contains(&l) => l,
        Some(_) => {
            return amc_error(
                StatusCode::BAD_REQUEST,
                "limit must be an integer between 1 and 100",
            );
        }
    };
    let instance_json = |i: &Instance, status: &str| {
        let mut v = json!({"instanceId": i.id, "instanceName": i.name,
               "creationStatus": status, "instanceType": "STANDARD", "creationDatetime": CREATED_AT});
        if let Some(endpoint) = &i.api_endpoint {
            v["apiEndpoint"] = Value::String(endpoint.clone());
        }
        usage::add_details(st, &i.id, &mut v);
        v
    };
    let owned_instance = |id: &str| match st.instances.iter().find(|i| i.id == id) {
        None => Err(amc_error(StatusCode::NOT_FOUND, "Instance not found")),
        Some(i) if i.account != advertiser => Err(amc_error(
            StatusCode::FORBIDDEN,
            &format!("Instance {id} does not belong to advertiser {advertiser}"),
        )),
        Some(i) => Ok(i),
    };
    match route {
        Route::Accounts | Route::Instances => {
            let offset = match params.get("nextToken").filter(|t| !t.is_empty()) {
                None => 0,
                Some(token) => match shared.page_offset(advertiser, token) {
                    Some(offset) => offset,
                    None => return amc_error(StatusCode::BAD_REQUEST, "Invalid nextToken"),
                },
            };
            let end = offset.saturating_add(limit);
            if *route == Route::Accounts {
                // At most 100 accounts a page, as the documents say.
                let page: Vec<Value> = st
                    .accounts
                    .iter()
                    .skip(offset)
                    .take(limit)
                    .map(|a| json!({"accountId": a.id, "accountName": a.name, "marketplaceId": a.marketplace}))
                    .collect();
                let mut body = json!({"amcAccounts": page});
                if end < st.accounts.len() || st.endless_pages {
                    body["nextToken"] = Value::String(shared.page_token(advertiser, end));
                }
                return json_answer(StatusCode::OK, &body);
            }
            let mine: Vec<&Instance> = st
                .instances
                .iter()
                .filter(|i| i.account == advertiser)
                .collect();
            let page: Vec<Value> = mine
                .iter()
                .skip(offset)
                .take(limit)
                .map(|i| instance_json(i, &i.status))
                .collect();
            let mut body = json!({"instances": page});
            if end < mine.len() || st.endless_pages {
                body["nextToken"] = Value::String(shared.page_token(advertiser, end));
            }
            json_answer(StatusCode::OK, &body)
        }
        Route::Instance(id) => match owned_instance(id) {
            Ok(i) => {
                let status = not_completed.as_deref().unwrap_or(&i.status);
                json_answer(
                    StatusCode::OK,
                    &json!({"instance": instance_json(i, status)}),
                )
            }
            Err(answer) => answer,
        },
        Route::Workflows(id)
        | Route::Executions(id)
        | Route::Schedules(id)
        | Route::Advertisers(id) => match owned_instance(id) {
            Ok(i) => usage::respond(shared, st, route, i, advertiser, &params, limit),
            Err(answer) => answer,
        },
        // Never resolved from a request; answer as an unknown path would.
        Route::Token | Route::Authorize | Route::AnyAmc => {
            amc_error(StatusCode::NOT_FOUND, "Resource not found")
        }
    }
}

/// `POST /auth/o2/token`, checked in Login with Amazon's order.
fn grant_token(shared: &Shared, headers: &HeaderMap, body: &str) -> Answer {
    let lwa_error = |status: StatusCode, error: &str, description: &str| {
        json_answer(
            status,
            &json!({"error": error, "error_description": description}),
        )
    };
    let is_form = header(headers, CONTENT_TYPE.as_str())
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|ct| {
            ct.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Content-Type must be application/x-www-form-urlencoded",
        );
    }
    let mut form: HashMap<String, String> = HashMap::new();
    for (k, v) in form_urlencoded::parse(body.as_bytes()).into_owned() {
        form.entry(k).or_insert(v);
    }
    let param = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let missing = |name: &str| {
        lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!("The request is missing a required parameter : {name}"),
        )
    };
    match param("grant_type") {
        None => return missing("grant_type"),
        Some("refresh_token") => {}
        Some("authorization_code") => return oauth::grant_code(shared, &form),
        Some(_) => {
            return lwa_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server",
            );
        }
    }
    let Some(refresh_token) = param("refresh_token") else {
        return missing("refresh_token");
    };
    let mut st = shared.lock();
    let client_id = param("client_id").unwrap_or("");
    let client = st
        .clients
        .get(client_id)
        .filter(|c| Some(c.secret.as_str()) == param("client_secret"));
    let Some(client) = client else {
        return lwa_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    };
    if !client.refresh_tokens.iter().any(|t| t == refresh_token) {
        return lwa_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "The request has an invalid grant parameter : refresh_token",
        );
    }
    let access_token = format!(
        "Atza|{}",
        (0..64)
            .map(|_| fastrand::alphanumeric())
            .collect::<String>()
    );
    let lifetime = st.token_lifetime;
    let now = Instant::now();
    // Capped so an absurd lifetime cannot overflow Instant.
    let expires_at = now + Duration::from_secs(lifetime.min(100 * 365 * 86_400));
    st.tokens.insert(
        access_token.clone(),
        AccessToken {
            client_id: client_id.to_owned(),
            refresh_token: refresh_token.to_owned(),
            expires_at,
        },
    );
    st.token_grants += 1;
    *st.grants_by_refresh
        .entry(refresh_token.to_owned())
        .or_default() += 1;
    json_answer(
        StatusCode::OK,
        &json!({"access_token": access_token, "token_type": "bearer",
                "expires_in": lifetime, "refresh_token": refresh_token}),
    )
}

fn raw(status: StatusCode, content_type: &'static str, body: Bytes) -> Answer {
    let mut answer = Response::new(Full::new(body));
    *answer.status_mut() = status;
    answer
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    answer
}

fn json_answer(status: StatusCode, body: &Value) -> Answer {
    raw(status, "application/json", Bytes::from(body.to_string()))
}

/// AMC's error shape, `{"code":"<status>","details":"…"}`.
fn amc_error(status: StatusCode, details: &str) -> Answer {
    amc_error_code(status, status.as_str(), details)
}

fn amc_error_code(status: StatusCode, code: &str, details: &str) -> Answer {
    json_answer(status, &json!({"code": code, "details": details}))
}
