//! The AMC client against the fake AMC server over real HTTP on loopback:
//! what it sends, how it pages, refreshes, retries, backs off and paces.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amcctl::amc::{
    Advertiser, AmcClient, AmcError, AuthError, CachedToken, ClientConfig, Credentials,
    NoTokenCache, Session, TokenCache,
};
use amcctl::domain::{Country, EntityId, HealthStatus, InstanceId, Region};
use fake_amc::{ACCOUNTS_REQUEST_ID, FakeAmc, Fault, REQUEST_ID_PREFIX, Recorded, Route};
use secrecy::{ExposeSecret, SecretString};

const CLIENT_ID: &str = "amzn1.application-oa2-client.test";
const CLIENT_SECRET: &str = "amzn1.oa2-cs.v1.supersecretclientvalue";
const REFRESH: &str = "Atzr|IwEBrefreshtokenvalue";
const ENTITY: &str = "ENTITY1AA1AA11AAA1";
const INSTANCE: &str = "amcibersblt";

/// Quick settings: short timeouts and backoff, a rate that does not slow tests.
fn config(fake: &FakeAmc) -> ClientConfig {
    ClientConfig {
        api_url: Some(fake.base_url()),
        auth_url: Some(fake.token_url()),
        timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        retries: 4,
        rate: 1000.0,
        backoff_base: Duration::from_millis(10),
        backoff_floor: Duration::ZERO,
        backoff_cap: Duration::from_millis(100),
        max_elapsed: Duration::from_secs(20),
        ..ClientConfig::default()
    }
}

fn credentials(refresh: &str) -> Credentials {
    Credentials {
        client_id: CLIENT_ID.into(),
        client_secret: SecretString::from(CLIENT_SECRET),
        refresh_token: SecretString::from(refresh),
        region: Region::Na,
    }
}

fn fake() -> FakeAmc {
    let fake = FakeAmc::start();
    fake.add_client(CLIENT_ID, CLIENT_SECRET, REFRESH);
    fake.add_account(ENTITY, "Acme", "ATVPDKIKX0DER");
    fake.add_instance(ENTITY, INSTANCE, "Acme main");
    fake
}

fn session_with(config: ClientConfig) -> Session {
    AmcClient::new(config)
        .unwrap()
        .session(credentials(REFRESH), Arc::new(NoTokenCache))
}

fn advertiser() -> Advertiser {
    Advertiser::new(EntityId::parse(ENTITY).unwrap(), Country::US, Region::Na)
}

fn instance() -> InstanceId {
    InstanceId::parse(INSTANCE).unwrap()
}

fn amc_requests(fake: &FakeAmc) -> Vec<Recorded> {
    fake.requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/amc/"))
        .collect()
}

/// A token cache in memory, as the store would keep it in SQLite.
#[derive(Default)]
struct MemCache {
    token: Mutex<Option<CachedToken>>,
    saves: AtomicUsize,
}

impl TokenCache for MemCache {
    fn load(&self) -> Option<CachedToken> {
        self.token.lock().unwrap().clone()
    }
    fn save(&self, token: &CachedToken) {
        self.saves.fetch_add(1, Ordering::SeqCst);
        *self.token.lock().unwrap() = Some(token.clone());
    }
}

#[tokio::test]
async fn sends_the_documented_headers() {
    let fake = fake();
    let s = session_with(config(&fake));
    let accounts = s.list_accounts().await.unwrap();
    assert_eq!(accounts.status, 200);
    assert_eq!(accounts.attempts, 1);
    assert_eq!(accounts.value.len(), 1);
    assert_eq!(accounts.value[0].entity_id().unwrap().as_str(), ENTITY);
    let inst = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert!(inst.value.is_completed());
    assert_eq!(inst.value.instance_id, INSTANCE);

    let all = fake.requests();
    let token = &all[0];
    assert_eq!(
        (token.method.as_str(), token.path.as_str()),
        ("POST", "/auth/o2/token")
    );
    for part in [
        "grant_type=refresh_token",
        "client_id=",
        "client_secret=",
        "refresh_token=",
    ] {
        assert!(
            token.body.contains(part),
            "{part} missing from the token form"
        );
    }
    let amc = amc_requests(&fake);
    assert_eq!(amc.len(), 2);
    for r in &amc {
        assert!(
            r.header("authorization")
                .unwrap()
                .starts_with("Bearer Atza|")
        );
        assert_eq!(r.header("amazon-advertising-api-clientid"), Some(CLIENT_ID));
        assert_eq!(r.header("accept"), Some("application/json, */*;q=0.8"));
        assert!(r.header("user-agent").unwrap().starts_with("amcctl/"));
    }
    assert_eq!(amc[0].path, "/amc/accounts");
    assert_eq!(amc[0].header("amazon-advertising-api-advertiserid"), None);
    assert_eq!(amc[0].header("amazon-advertising-api-marketplaceid"), None);
    assert_eq!(amc[1].path, "/amc/instances/amcibersblt");
    assert_eq!(
        amc[1].header("amazon-advertising-api-advertiserid"),
        Some(ENTITY)
    );
    assert_eq!(
        amc[1].header("amazon-advertising-api-marketplaceid"),
        Some("ATVPDKIKX0DER")
    );
}

#[tokio::test]
async fn follows_next_token_over_three_pages() {
    let fake = fake();
    for i in 1..250 {
        fake.add_instance(ENTITY, &format!("amcpage{i:04}"), &format!("Page {i}"));
    }
    let s = session_with(config(&fake));
    let reply = s.list_instances(&advertiser()).await.unwrap();
    assert_eq!(reply.value.len(), 250);
    assert_eq!(reply.value[0].instance_id, INSTANCE);
    assert_eq!(reply.value[249].instance_id, "amcpage0249");
    assert_eq!(reply.attempts, 3);
    let pages = amc_requests(&fake);
    assert_eq!(pages.len(), 3);
    let queries: Vec<String> = pages
        .iter()
        .map(|r| r.query.clone().unwrap_or_default())
        .collect();
    assert!(
        queries.iter().all(|q| q.contains("limit=100")),
        "{queries:?}"
    );
    assert!(!queries[0].contains("nextToken"));
    assert!(queries[1].contains("nextToken=") && queries[2].contains("nextToken="));
    assert_ne!(queries[1], queries[2]);
}

#[tokio::test]
async fn workflows_and_creation_status() {
    let fake = fake();
    let s = session_with(config(&fake));
    let wf = s
        .list_workflows(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert_eq!(wf.value.len(), 1);
    let r = amc_requests(&fake).pop().unwrap();
    assert_eq!(r.path, "/amc/reporting/amcibersblt/workflows");
    assert_eq!(r.query.as_deref(), Some("limit=1"));

    fake.set_creation_status(INSTANCE, "FAILED");
    let inst = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert!(!inst.value.is_completed());
    assert_eq!(inst.value.creation_status.as_deref(), Some("FAILED"));
}

#[tokio::test]
async fn a_401_mid_run_refreshes_exactly_once() {
    let fake = fake();
    let cache = Arc::new(MemCache::default());
    let client = AmcClient::new(config(&fake)).unwrap();
    let s = client.session(credentials(REFRESH), cache.clone());
    s.get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert_eq!(fake.token_grants(), 1);
    let first = cache
        .load()
        .unwrap()
        .access_token
        .expose_secret()
        .to_owned();

    fake.expire_tokens();
    let reply = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert_eq!(reply.attempts, 2);
    assert_eq!(fake.token_grants(), 2);
    // The new token replaced the refused one in the cache.
    let second = cache
        .load()
        .unwrap()
        .access_token
        .expose_secret()
        .to_owned();
    assert_ne!(first, second);
    assert_eq!(cache.saves.load(Ordering::SeqCst), 2);

    // Another session (another process, say) reuses the cached token.
    let other = client.session(credentials(REFRESH), cache.clone());
    other.list_accounts().await.unwrap();
    assert_eq!(fake.token_grants(), 2);
}

#[tokio::test]
async fn a_refused_cached_token_is_not_reused() {
    let fake = fake();
    let cache = Arc::new(MemCache::default());
    *cache.token.lock().unwrap() = Some(CachedToken {
        access_token: SecretString::from("Atza|stale-but-not-expired"),
        expires_at: chrono::Utc::now() + chrono::TimeDelta::hours(1),
    });
    let s = AmcClient::new(config(&fake))
        .unwrap()
        .session(credentials(REFRESH), cache.clone());
    let reply = s.list_accounts().await.unwrap();
    assert_eq!(reply.attempts, 2);
    assert_eq!(fake.token_grants(), 1);
}

#[tokio::test]
async fn a_second_401_is_an_error() {
    let fake = fake();
    let s = session_with(config(&fake));
    fake.push_faults(
        Route::Instance(INSTANCE.into()),
        [Fault::Status(401), Fault::Status(401)],
    );
    let err = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AmcError::Api {
                status: 401,
                attempts: 2,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_auth());
    assert_eq!(err.health_status(), HealthStatus::Error);
    assert_eq!(fake.token_grants(), 2);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let fake = fake();
    let s = session_with(config(&fake));
    fake.push_faults(
        Route::Instance(INSTANCE.into()),
        [Fault::Throttle {
            retry_after: Some(1),
        }],
    );
    let reply = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert_eq!(reply.attempts, 2);
    let amc = amc_requests(&fake);
    assert_eq!(amc.len(), 2);
    assert_eq!(amc[0].status, 429);
    let gap = amc[1].at.duration_since(amc[0].at);
    assert!(gap >= Duration::from_millis(990), "retried after {gap:?}");
    assert!(gap < Duration::from_secs(2), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_every_caller() {
    let fake = fake();
    let ids: Vec<String> = (0..5).map(|i| format!("amcpause{i:03}")).collect();
    for id in &ids {
        fake.add_instance(ENTITY, id, id);
    }
    // Evenly spaced at 20/s, the first request's 429 comes back before the
    // second is due: every later request must wait out its Retry-After.
    let s = session_with(ClientConfig {
        rate: 20.0,
        ..config(&fake)
    });
    s.access_token().await.unwrap();
    fake.push_faults(
        Route::AnyAmc,
        [Fault::Throttle {
            retry_after: Some(1),
        }],
    );
    let tasks: Vec<_> = ids
        .iter()
        .map(|id| {
            let (s, id) = (s.clone(), InstanceId::parse(id).unwrap());
            tokio::spawn(async move { s.get_instance(&advertiser(), &id, None).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let amc = amc_requests(&fake);
    let throttled = amc.iter().find(|r| r.status == 429).unwrap().at;
    for r in amc.iter().filter(|r| r.at > throttled) {
        let gap = r.at.duration_since(throttled);
        assert!(
            gap >= Duration::from_millis(990),
            "a request went out {gap:?} after the 429"
        );
    }
    assert_eq!(fake.throttled(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_then_succeed() {
    let fake = fake();
    let s = session_with(config(&fake));
    fake.push_faults(
        Route::Instance(INSTANCE.into()),
        [
            Fault::Status(500),
            Fault::Status(502),
            Fault::Status(503),
            Fault::Status(504),
        ],
    );
    let reply = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert_eq!(reply.attempts, 5);
    assert_eq!(reply.status, 200);
}

#[tokio::test]
async fn retries_run_out() {
    let fake = fake();
    let s = session_with(ClientConfig {
        retries: 2,
        ..config(&fake)
    });
    fake.on_instance(INSTANCE, Fault::Status(503));
    let err = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AmcError::Api {
                status: 503,
                attempts: 3,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.health_status(), HealthStatus::Error);
    assert_eq!(amc_requests(&fake).len(), 3);
}

#[tokio::test]
async fn other_4xx_are_final_and_classified() {
    let fake = fake();
    let s = session_with(config(&fake));
    fake.push_faults(Route::Instance(INSTANCE.into()), [Fault::Status(400)]);
    let err = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AmcError::Api {
                status: 400,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );

    let missing = InstanceId::parse("amcnotthere").unwrap();
    let err = s
        .get_instance(&advertiser(), &missing, None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AmcError::Api {
                status: 404,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.health_status(), HealthStatus::Unhealthy);
    assert!(err.to_string().contains("Instance not found"), "{err}");

    // An account the credentials cannot see.
    let stranger = Advertiser::new(
        EntityId::parse("ENTITY9ZZ9ZZ99ZZZ9").unwrap(),
        Country::US,
        Region::Na,
    );
    let err = s
        .get_instance(&stranger, &instance(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, AmcError::Api { status: 403, .. }), "{err:?}");
    assert_eq!(err.health_status(), HealthStatus::Unhealthy);
}

#[tokio::test]
async fn a_reset_connection_is_retried() {
    let fake = fake();
    let s = session_with(config(&fake));
    fake.push_faults(Route::Instance(INSTANCE.into()), [Fault::Reset]);
    let reply = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert_eq!(reply.attempts, 2);

    fake.on_instance(INSTANCE, Fault::Reset);
    let quick = session_with(ClientConfig {
        retries: 1,
        ..config(&fake)
    });
    let err = quick
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AmcError::Network { attempts: 2, .. }),
        "{err:?}"
    );
    assert_eq!(err.health_status(), HealthStatus::Error);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried() {
    let fake = fake();
    let cfg = ClientConfig {
        timeout: Duration::from_millis(200),
        ..config(&fake)
    };
    let s = session_with(cfg.clone());
    s.access_token().await.unwrap();
    // The slow answer takes far longer than the timeout, so the bound below
    // tells a timed-out attempt from a waited-out one even on a busy machine.
    fake.push_faults(
        Route::Instance(INSTANCE.into()),
        [Fault::Delay(Duration::from_secs(3))],
    );
    let started = Instant::now();
    let reply = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert_eq!(reply.attempts, 2);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    fake.on_instance(INSTANCE, Fault::Delay(Duration::from_millis(700)));
    let once = session_with(ClientConfig { retries: 0, ..cfg });
    let err = once
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, AmcError::Timeout { attempts: 1, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
}

#[tokio::test]
async fn undecodable_answers_are_final() {
    let fake = fake();
    let s = session_with(config(&fake));
    let faults = [
        Fault::MalformedJson,
        Fault::TruncatedJson,
        Fault::WrongContentType,
        Fault::HugeBody(9 * 1024 * 1024),
    ];
    for fault in faults {
        fake.clear_requests();
        fake.push_faults(Route::Instance(INSTANCE.into()), [fault.clone()]);
        let err = s
            .get_instance(&advertiser(), &instance(), None)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                AmcError::Decode {
                    status: 200,
                    attempts: 1,
                    ..
                }
            ),
            "{fault:?}: {err:?}"
        );
        assert_eq!(amc_requests(&fake).len(), 1, "{fault:?} was retried");
    }
}

#[tokio::test]
async fn invalid_grant_is_a_typed_auth_error_without_secrets() {
    let fake = fake();
    let s = AmcClient::new(config(&fake)).unwrap().session(
        credentials("Atzr|IwEBrevokedtokenvalue"),
        Arc::new(NoTokenCache),
    );
    let err = s.list_accounts().await.unwrap_err();
    assert!(
        matches!(err, AmcError::Auth(AuthError::InvalidGrant { .. })),
        "{err:?}"
    );
    assert!(err.is_auth());
    assert!(err.hint().unwrap().contains("auth login"));
    // Refusals are not retried, and no AMC call was made without a token.
    assert_eq!(fake.requests().len(), 1);
    for text in [err.to_string(), format!("{err:?}"), format!("{s:?}")] {
        assert!(!text.contains("revokedtokenvalue"), "{text}");
        assert!(!text.contains("supersecretclientvalue"), "{text}");
    }

    let wrong_secret = Credentials {
        client_secret: SecretString::from("amzn1.oa2-cs.v1.wrong"),
        ..credentials(REFRESH)
    };
    let s = AmcClient::new(config(&fake))
        .unwrap()
        .session(wrong_secret, Arc::new(NoTokenCache));
    let err = s.list_accounts().await.unwrap_err();
    assert!(
        matches!(err, AmcError::Auth(AuthError::InvalidClient { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn token_endpoint_trouble_is_retried() {
    let fake = fake();
    let s = session_with(config(&fake));
    fake.push_faults(Route::Token, [Fault::Status(503), Fault::Reset]);
    s.list_accounts().await.unwrap();
    assert_eq!(fake.token_grants(), 1);

    let quick = session_with(ClientConfig {
        retries: 1,
        ..config(&fake)
    });
    fake.push_faults(Route::Token, [Fault::Status(500), Fault::Status(500)]);
    let err = quick.list_accounts().await.unwrap_err();
    assert!(
        matches!(
            err,
            AmcError::Auth(AuthError::Unavailable {
                status: Some(500),
                attempts: 2,
                ..
            })
        ),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_one_refresh() {
    let fake = fake();
    fake.set_latency(Duration::from_millis(20));
    let cache = Arc::new(MemCache::default());
    let s = AmcClient::new(config(&fake))
        .unwrap()
        .session(credentials(REFRESH), cache.clone());
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.get_instance(&advertiser(), &instance(), None).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().attempts, 1);
    }
    assert_eq!(fake.token_grants(), 1);
    assert_eq!(cache.saves.load(Ordering::SeqCst), 1);
}

async fn burst(fake: &FakeAmc, rate: f64, calls: usize) {
    let s = session_with(ClientConfig {
        rate,
        retries: 0,
        ..config(fake)
    });
    s.access_token().await.unwrap();
    let tasks: Vec<_> = (0..calls)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.get_instance(&advertiser(), &instance(), None).await })
        })
        .collect();
    for t in tasks {
        let _ = t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_keeps_a_server_bucket_of_the_same_rate_happy() {
    // Unpaced, 40 requests overrun a 20/s bucket (it starts with 20 tokens);
    // the shared pause after the first 429 then spares most of the rest.
    let unpaced = fake();
    unpaced.set_rate_limit(Some(20.0));
    burst(&unpaced, 1000.0, 40).await;
    assert!(unpaced.throttled() >= 1);

    // ... paced at the same 20/s, none is throttled.
    let paced = fake();
    paced.set_rate_limit(Some(20.0));
    let started = Instant::now();
    burst(&paced, 20.0, 40).await;
    assert_eq!(paced.throttled(), 0);
    assert_eq!(
        amc_requests(&paced)
            .iter()
            .filter(|r| r.status == 200)
            .count(),
        40
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_total_time_is_bounded() {
    let fake = fake();
    let s = session_with(ClientConfig {
        max_elapsed: Duration::from_millis(300),
        ..config(&fake)
    });
    fake.push_faults(
        Route::Instance(INSTANCE.into()),
        [Fault::Throttle {
            retry_after: Some(1),
        }],
    );
    let started = Instant::now();
    let err = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            AmcError::Api {
                status: 429,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    // Well short of the one-second Retry-After the client chose not to wait.
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn api_endpoint_is_used_only_when_trusted() {
    let fake = fake();
    let s = session_with(config(&fake));
    // The fake's own apiEndpoint (same origin as the override) is used ...
    let reply = s
        .get_instance(&advertiser(), &instance(), Some(&fake.base_url()))
        .await
        .unwrap();
    assert_eq!(
        reply.value.api_endpoint.as_deref(),
        Some(fake.base_url().as_str())
    );
    // ... a foreign one is ignored, so the token never goes there.
    let reply = s
        .get_instance(&advertiser(), &instance(), Some("http://127.0.0.1:9"))
        .await
        .unwrap();
    assert_eq!(reply.attempts, 1);
}

/// A log sink for the test below.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn debug_logs_carry_no_secrets() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .finish();
    // Other tests of this binary run in parallel without a subscriber. With
    // only one dispatcher alive, tracing takes it for the global one and a
    // callsite another thread reaches first is judged by that thread's
    // (absent) subscriber: "not interested", cached. A second dispatcher
    // makes tracing ask every live one, this test's included.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    let _guard = tracing::subscriber::set_default(subscriber);
    // A callsite reached before this test started has cached its interest.
    tracing::callsite::rebuild_interest_cache();

    let fake = fake();
    let s = session_with(config(&fake));
    fake.push_faults(
        Route::Instance(INSTANCE.into()),
        [Fault::Status(401), Fault::Status(503)],
    );
    s.get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    let token = s.access_token().await.unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("AMC request"), "no per-attempt log: {text}");
    assert!(text.contains("status=503"), "{text}");
    for secret in [CLIENT_SECRET, REFRESH, token.access_token.expose_secret()] {
        assert!(!text.contains(secret), "a secret reached the log: {text}");
    }
}

// ------------------------------------------- the API as Amazon documents it

#[tokio::test]
async fn accounts_are_read_over_every_page() {
    let fake = fake();
    for i in 1..250 {
        fake.add_account(
            &format!("ENTITY{i:06}PAGED"),
            &format!("Paged {i}"),
            "ATVPDKIKX0DER",
        );
    }
    let s = session_with(config(&fake));
    let reply = s.list_accounts().await.unwrap();
    assert_eq!(reply.value.len(), 250, "every page is read");
    assert_eq!(reply.attempts, 3);
    let calls: Vec<Recorded> = amc_requests(&fake);
    assert_eq!(calls.len(), 3);
    assert!(
        calls[0]
            .query
            .as_deref()
            .is_none_or(|q| !q.contains("nextToken"))
    );
    assert!(
        calls[1..]
            .iter()
            .all(|c| c.query.as_deref().is_some_and(|q| q.contains("nextToken=")))
    );
    let mut ids: Vec<&str> = reply.value.iter().map(|a| a.account_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 250, "no account twice");
}

#[tokio::test]
async fn an_endless_listing_is_cut_off_naming_the_account() {
    let fake = fake();
    fake.set_endless_pages(true);
    let s = session_with(ClientConfig {
        max_pages: 40,
        ..config(&fake)
    });
    let err = s.list_instances(&advertiser()).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, AmcError::Decode { .. }), "{err:?}");
    assert!(text.contains(ENTITY) && text.contains("40 pages"), "{text}");
    assert_eq!(amc_requests(&fake).len(), 40);
    // Accounts too: the same bound holds for every listing.
    fake.clear_requests();
    let err = s.list_accounts().await.unwrap_err();
    assert!(err.to_string().contains("40 pages"), "{err}");
    assert_eq!(amc_requests(&fake).len(), 40);
    // And the time bound, on its own.
    let s = session_with(ClientConfig {
        max_listing_time: Duration::ZERO,
        ..config(&fake)
    });
    let err = s.list_instances(&advertiser()).await.unwrap_err();
    assert!(err.to_string().contains("after 1 page "), "{err}");
}

#[tokio::test]
async fn vendor_media_types_and_octet_stream_are_read() {
    let fake = fake();
    let s = session_with(config(&fake));
    for media in [
        "application/vnd.amcinstances.v1+json",
        "application/octet-stream",
    ] {
        fake.set_media_type(Some(media));
        let inst = s.get_instance(&advertiser(), &instance(), None).await;
        let inst = inst.unwrap_or_else(|e| panic!("{media}: {e}"));
        assert!(inst.value.is_completed(), "{media}");
        let listed = s.list_instances(&advertiser()).await.unwrap();
        assert_eq!(listed.value.len(), 1, "{media}");
    }
}

#[tokio::test]
async fn a_429_without_retry_after_backs_off_at_least_a_second() {
    let fake = fake();
    fake.push_faults(
        Route::Instance(INSTANCE.into()),
        [
            Fault::Throttle { retry_after: None },
            Fault::Throttle { retry_after: None },
        ],
    );
    // The default policy, not the quick one of the other tests.
    let s = session_with(ClientConfig {
        api_url: Some(fake.base_url()),
        auth_url: Some(fake.token_url()),
        rate: 1000.0,
        ..ClientConfig::default()
    });
    let reply = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert_eq!(reply.attempts, 3);
    let calls: Vec<Instant> = amc_requests(&fake).iter().map(|r| r.at).collect();
    for pair in calls.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(990), "retried after {gap:?}");
    }
}

#[tokio::test]
async fn succeeded_means_ready() {
    let fake = fake();
    fake.set_creation_status(INSTANCE, "SUCCEEDED");
    let s = session_with(config(&fake));
    let inst = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap();
    assert!(inst.value.is_completed());
}

#[tokio::test]
async fn request_ids_are_kept_in_api_errors() {
    let fake = fake();
    fake.push_faults(Route::Accounts, [Fault::Status(403)]);
    let s = session_with(config(&fake));
    let err = s.list_accounts().await.unwrap_err();
    assert_eq!(err.request_id(), Some(ACCOUNTS_REQUEST_ID), "{err:?}");
    assert!(
        err.hint()
            .is_some_and(|h| h.contains("terms") && h.contains("instant access"))
    );
    fake.push_faults(Route::Instance(INSTANCE.into()), [Fault::Status(404)]);
    let err = s
        .get_instance(&advertiser(), &instance(), None)
        .await
        .unwrap_err();
    assert!(
        err.request_id()
            .is_some_and(|r| r.starts_with(REQUEST_ID_PREFIX)),
        "{err:?}"
    );
}

#[tokio::test]
async fn login_with_amazons_explanation_survives_5xx_retries() {
    let fake = fake();
    fake.push_faults(
        Route::Token,
        [Fault::Status(503), Fault::Status(503), Fault::Status(503)],
    );
    let s = session_with(ClientConfig {
        retries: 2,
        ..config(&fake)
    });
    let err = s.list_accounts().await.unwrap_err();
    assert!(
        matches!(err, AmcError::Auth(AuthError::Unavailable { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("try again later") && text.contains("503"),
        "{text}"
    );
}

#[tokio::test]
async fn a_page_without_its_array_is_empty() {
    let fake = fake();
    fake.push_faults(Route::Instances, [Fault::EmptyObject]);
    fake.push_faults(Route::Accounts, [Fault::EmptyObject]);
    let s = session_with(config(&fake));
    assert!(
        s.list_instances(&advertiser())
            .await
            .unwrap()
            .value
            .is_empty()
    );
    assert!(s.list_accounts().await.unwrap().value.is_empty());
}

#[tokio::test]
async fn api_endpoint_serves_reporting_calls_only() {
    let fake = fake();
    let s = session_with(config(&fake));
    // A trusted apiEndpoint (same origin as the API URL) with its own path.
    let endpoint = format!("{}/reporting-host", fake.base_url());
    s.get_instance(&advertiser(), &instance(), Some(&endpoint))
        .await
        .unwrap();
    let _ = s
        .list_workflows(&advertiser(), &instance(), Some(&endpoint))
        .await;
    let paths: Vec<String> = fake
        .requests()
        .into_iter()
        .map(|r| r.path)
        .filter(|p| p != "/auth/o2/token")
        .collect();
    assert_eq!(
        paths,
        [
            "/amc/instances/amcibersblt".to_owned(),
            "/reporting-host/amc/reporting/amcibersblt/workflows".to_owned()
        ]
    );
}
