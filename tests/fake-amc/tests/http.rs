//! The fake exercised over real HTTP, as the client will use it.

use std::time::{Duration, Instant};

use fake_amc::{FakeAmc, Fault, Route};
use serde_json::Value;

const CLIENT: &str = "amzn1.application-oa2-client.test";
const SECRET: &str = "s3cret";
const REFRESH: &str = "Atzr|refresh";
const US: &str = "ATVPDKIKX0DER";
const UK: &str = "A1F83G8C2ARO7P";

/// A fake with one client, two accounts and one instance in each.
fn fixture() -> FakeAmc {
    let amc = FakeAmc::start();
    amc.add_client(CLIENT, SECRET, REFRESH);
    amc.add_account("ENTITY1US", "Acme US", US);
    amc.add_account("ENTITY2UK", "Acme UK", UK);
    amc.add_instance("ENTITY1US", "amcaaaaaaaa", "us-main");
    amc.add_instance("ENTITY2UK", "amcbbbbbbbb", "uk-main");
    amc
}

async fn refresh(amc: &FakeAmc, form: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(amc.token_url())
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(
            form.iter()
                .map(|(k, v)| format!("{k}={}", v.replace('|', "%7C")))
                .collect::<Vec<_>>()
                .join("&"),
        )
        .send()
        .await
        .expect("token call");
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("token body is JSON"))
}

async fn token(amc: &FakeAmc) -> String {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", REFRESH),
        ("client_id", CLIENT),
        ("client_secret", SECRET),
    ];
    let (status, body) = refresh(amc, &form).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

/// A correctly authenticated AMC GET for `advertiser` (None: no account headers).
async fn get(
    amc: &FakeAmc,
    token: &str,
    advertiser: Option<(&str, &str)>,
    path: &str,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .get(format!("{}{path}", amc.base_url()))
        .bearer_auth(token)
        .header("Amazon-Advertising-API-ClientId", CLIENT);
    if let Some((id, marketplace)) = advertiser {
        req = req
            .header("Amazon-Advertising-API-AdvertiserId", id)
            .header("Amazon-Advertising-API-MarketplaceId", marketplace);
    }
    req.send().await.expect("AMC call")
}

async fn status_and_json(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().await.expect("JSON body"))
}

#[tokio::test]
async fn token_grant_and_rejections() {
    let amc = fixture();
    let form = |secret, refresh_token| {
        [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT),
            ("client_secret", secret),
        ]
    };
    let (status, body) = refresh(&amc, &form(SECRET, REFRESH)).await;
    assert_eq!(status, 200);
    assert!(body["access_token"].as_str().unwrap().starts_with("Atza|"));
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["refresh_token"], REFRESH);

    let (status, body) = refresh(&amc, &form("wrong", REFRESH)).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = refresh(&amc, &form(SECRET, "Atzr|other")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    let resp = reqwest::Client::new()
        .post(amc.token_url())
        .json(&serde_json::json!({"grant_type": "refresh_token"}))
        .send()
        .await
        .unwrap();
    let (status, body) = status_and_json(resp).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );

    amc.set_token_lifetime(60);
    amc.push_faults(Route::Token, [Fault::Status(503)]);
    assert_eq!(refresh(&amc, &form(SECRET, REFRESH)).await.0, 503);
    let (status, body) = refresh(&amc, &form(SECRET, REFRESH)).await;
    assert_eq!((status, body["expires_in"].as_u64()), (200, Some(60)));
    assert_eq!(amc.token_grants(), 2);
    let first = &amc.requests()[0];
    assert_eq!(first.path, "/auth/o2/token");
    assert!(first.body.contains("grant_type=refresh_token"));
    assert_eq!(
        first.header("CONTENT-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn header_rules() {
    let amc = fixture();
    let token = token(&amc).await;
    let (status, body) = status_and_json(get(&amc, &token, None, "/amc/accounts").await).await;
    assert_eq!(status, 200);
    assert_eq!(body["amcAccounts"][1]["marketplaceId"], UK);

    let http = reqwest::Client::new();
    let url = format!("{}/amc/accounts", amc.base_url());
    let (status, body) = status_and_json(http.get(&url).send().await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")));
    let wrong_client = http
        .get(&url)
        .bearer_auth(&token)
        .header("Amazon-Advertising-API-ClientId", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_client.status(), 401);

    let (status, body) = status_and_json(get(&amc, &token, None, "/amc/instances").await).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "400");
    assert_eq!(
        body["details"],
        "Missing required header Amazon-Advertising-API-AdvertiserId"
    );
    assert_eq!(
        get(&amc, &token, Some(("ENTITY9NOPE", US)), "/amc/instances")
            .await
            .status(),
        403
    );
    assert_eq!(
        get(&amc, &token, Some(("ENTITY1US", UK)), "/amc/instances")
            .await
            .status(),
        400
    );

    let us = Some(("ENTITY1US", US));
    let (status, body) =
        status_and_json(get(&amc, &token, us, "/amc/instances/amcaaaaaaaa").await).await;
    assert_eq!(status, 200);
    assert_eq!(body["instance"]["creationStatus"], "COMPLETED");
    assert_eq!(body["instance"]["apiEndpoint"], amc.base_url().as_str());
    assert_eq!(
        get(&amc, &token, us, "/amc/instances/amcbbbbbbbb")
            .await
            .status(),
        403
    );
    let (status, body) =
        status_and_json(get(&amc, &token, us, "/amc/instances/amcnothere").await).await;
    assert_eq!(
        (status, body["details"].as_str()),
        (404, Some("Instance not found"))
    );
    let (status, body) = status_and_json(
        get(
            &amc,
            &token,
            us,
            "/amc/reporting/amcaaaaaaaa/workflows?limit=1",
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["workflows"][0]["workflowId"].as_str()),
        (200, Some("wf-1"))
    );
    assert_eq!(get(&amc, &token, us, "/amc/nothing").await.status(), 404);
    let post = http
        .post(format!("{}/amc/accounts", amc.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);

    amc.set_creation_status("amcaaaaaaaa", "FAILED");
    let (_, body) =
        status_and_json(get(&amc, &token, us, "/amc/instances/amcaaaaaaaa").await).await;
    assert_eq!(body["instance"]["creationStatus"], "FAILED");

    amc.expire_tokens();
    assert_eq!(get(&amc, &token, None, "/amc/accounts").await.status(), 401);
}

#[tokio::test]
async fn pagination_across_three_pages() {
    let amc = fixture();
    for i in 0..4 {
        amc.add_instance("ENTITY1US", &format!("amcpage{i:04}"), &format!("page-{i}"));
    }
    let token = token(&amc).await;
    let us = Some(("ENTITY1US", US));
    let mut ids = Vec::new();
    let mut path = "/amc/instances?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let (status, body) = status_and_json(get(&amc, &token, us, &path).await).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for instance in body["instances"].as_array().unwrap() {
            assert_eq!(instance["instanceType"], "STANDARD");
            ids.push(instance["instanceId"].as_str().unwrap().to_owned());
        }
        match body.get("nextToken").and_then(Value::as_str) {
            Some(next) => path = format!("/amc/instances?limit=2&nextToken={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        ids,
        [
            "amcaaaaaaaa",
            "amcpage0000",
            "amcpage0001",
            "amcpage0002",
            "amcpage0003"
        ]
    );

    let forged = get(
        &amc,
        &token,
        us,
        "/amc/instances?nextToken=2.0000000000000000",
    )
    .await;
    assert_eq!(forged.status(), 400);
    assert_eq!(
        get(&amc, &token, us, "/amc/instances?limit=0")
            .await
            .status(),
        400
    );
    assert_eq!(
        get(&amc, &token, us, "/amc/instances?limit=101")
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn reset_drops_the_connection() {
    let amc = fixture();
    let token = token(&amc).await;
    let us = Some(("ENTITY1US", US));
    amc.push_faults(Route::Instance("amcaaaaaaaa".into()), [Fault::Reset]);
    let err = reqwest::Client::new()
        .get(format!("{}/amc/instances/amcaaaaaaaa", amc.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .expect_err("a reset connection is no HTTP response");
    assert!(err.status().is_none(), "{err}");
    assert_eq!(amc.requests().last().unwrap().status, 0);
    assert_eq!(
        get(&amc, &token, us, "/amc/instances/amcaaaaaaaa")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn an_instances_own_trouble_is_told_only_to_a_valid_call() {
    let amc = fixture();
    let token = token(&amc).await;
    let us = Some(("ENTITY1US", US));
    let path = "/amc/instances/amcaaaaaaaa";
    amc.on_instance("amcaaaaaaaa", Fault::Status(403));
    amc.set_latency(Duration::from_millis(30));
    // A call missing its account headers, or with a token AMC never issued,
    // is refused for that, whatever the instance's state.
    assert_eq!(get(&amc, &token, None, path).await.status(), 400);
    assert_eq!(get(&amc, "Atza|never-issued", us, path).await.status(), 401);
    // A valid call learns of the 403, after the usual time to answer.
    let started = Instant::now();
    let (status, body) = status_and_json(get(&amc, &token, us, path).await).await;
    assert_eq!((status, body["code"].as_str()), (403, Some("403")));
    assert!(started.elapsed() >= Duration::from_millis(30));
}

#[tokio::test]
async fn throttle_fault_sends_retry_after() {
    let amc = fixture();
    let token = token(&amc).await;
    amc.push_faults(
        Route::AnyAmc,
        [Fault::Throttle {
            retry_after: Some(7),
        }],
    );
    let resp = get(&amc, &token, None, "/amc/accounts").await;
    assert_eq!(resp.headers()["retry-after"], "7");
    let (status, body) = status_and_json(resp).await;
    assert_eq!((status, body["code"].as_str()), (429, Some("429")));
    assert_eq!(get(&amc, &token, None, "/amc/accounts").await.status(), 200);
    assert_eq!(amc.throttled(), 1);
}

#[tokio::test]
async fn rate_limit_throttles_bursts() {
    let amc = fixture();
    let token = token(&amc).await;
    amc.set_rate_limit(Some(2.0));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let resp = get(&amc, &token, None, "/amc/accounts").await;
        if resp.status() == 429 {
            assert_eq!(resp.headers()["retry-after"], "1");
        }
        statuses.push(resp.status().as_u16());
    }
    assert_eq!(&statuses[..2], [200, 200]);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 3);
    assert_eq!(amc.throttled(), 3);
    amc.set_rate_limit(None);
    assert_eq!(get(&amc, &token, None, "/amc/accounts").await.status(), 200);
}

#[tokio::test]
async fn body_faults() {
    let amc = fixture();
    let token = token(&amc).await;
    let us = Some(("ENTITY1US", US));
    let path = "/amc/instances/amcaaaaaaaa";
    amc.push_faults(
        Route::AnyAmc,
        [
            Fault::MalformedJson,
            Fault::TruncatedJson,
            Fault::WrongContentType,
            Fault::HugeBody(100_000),
            Fault::Status(502),
        ],
    );
    let text = get(&amc, &token, us, path).await.text().await.unwrap();
    assert!(serde_json::from_str::<Value>(&text).is_err());
    let text = get(&amc, &token, us, path).await.text().await.unwrap();
    assert!(text.starts_with("{\"instance\"") && serde_json::from_str::<Value>(&text).is_err());
    let resp = get(&amc, &token, us, path).await;
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let huge: Value = get(&amc, &token, us, path).await.json().await.unwrap();
    assert_eq!(huge.as_str().map(str::len), Some(99_998));
    let (status, body) = status_and_json(get(&amc, &token, us, path).await).await;
    assert_eq!((status, body["code"].as_str()), (502, Some("502")));

    amc.on_instance("amcaaaaaaaa", Fault::NotCompleted("PENDING".into()));
    for _ in 0..2 {
        let (_, body) = status_and_json(get(&amc, &token, us, path).await).await;
        assert_eq!(body["instance"]["creationStatus"], "PENDING");
    }
}

#[tokio::test]
async fn latency_requests_run_concurrently() {
    let amc = fixture();
    let token = token(&amc).await;
    amc.set_latency(Duration::from_millis(50));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let calls = (0..200).map(|_| {
        client
            .get(format!("{}/amc/accounts", amc.base_url()))
            .bearer_auth(&token)
            .header("Amazon-Advertising-API-ClientId", CLIENT)
            .send()
    });
    let answers = futures_join_all(calls).await;
    let elapsed = started.elapsed();
    assert!(
        answers
            .iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status() == 200))
    );
    // Serialised, 200 calls at 50 ms would take 10 s.
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(elapsed >= Duration::from_millis(50));
}

/// Drives all futures at once on spawned tasks (no futures crate needed).
async fn futures_join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

#[test]
fn works_from_a_plain_test_and_stops_on_drop() {
    let amc = FakeAmc::start();
    let url = amc.base_url();
    assert!(url.starts_with("http://127.0.0.1:"));
    assert_eq!(amc.token_url(), format!("{url}/auth/o2/token"));
    let addr = url.trim_start_matches("http://").to_owned();
    assert!(std::net::TcpStream::connect(&addr).is_ok());
    drop(amc);
    assert!(std::net::TcpStream::connect(&addr).is_err());
}

#[tokio::test]
async fn usage_lists_page_filter_and_refuse_executions_without_a_window() {
    use fake_amc::{Usage, UsageList, execution, schedule, workflow};
    let amc = fixture();
    let t = token(&amc).await;
    let us = Some(("ENTITY1US", US));
    let executions: Vec<Value> = (0..150)
        .map(|n| {
            let day = 10 + n / 50;
            execution(
                &format!("e{n:03}"),
                "wf-a",
                "SUCCEEDED",
                &format!("2026-11-{day}T00:00:00Z"),
                &format!("2026-11-{day}T00:05:00Z"),
                "AD_HOC",
            )
        })
        .collect();
    amc.set_usage(
        "amcaaaaaaaa",
        Usage {
            workflows: vec![workflow("wf-a"), workflow("wf-b")],
            executions,
            schedules: vec![schedule("s1", "wf-a", "DAILY", 3, true)],
            advertisers: vec![],
        },
    );
    let base = "/amc/reporting/amcaaaaaaaa";
    // No minCreationTime and no workflowId: 400, as AMC answers.
    let (status, body) =
        status_and_json(get(&amc, &t, us, &format!("{base}/workflowExecutions")).await).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["details"]
            .as_str()
            .unwrap()
            .contains("minCreationTime")
    );
    // A malformed one: 400 too.
    let (status, _) = status_and_json(
        get(
            &amc,
            &t,
            us,
            &format!("{base}/workflowExecutions?minCreationTime=yesterday"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 400);
    // Filtered by creation time, paged by 100 with nextToken.
    let path = format!("{base}/workflowExecutions?minCreationTime=2026-11-11T00:00:00&limit=60");
    let (status, first) = status_and_json(get(&amc, &t, us, &path).await).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["executions"].as_array().unwrap().len(), 60);
    assert_eq!(first["executions"][0]["workflowExecutionId"], "e050");
    let next = first["nextToken"]
        .as_str()
        .expect("a second page")
        .to_owned();
    let (_, second) =
        status_and_json(get(&amc, &t, us, &format!("{path}&nextToken={next}")).await).await;
    assert_eq!(second["executions"].as_array().unwrap().len(), 40);
    assert!(second.get("nextToken").is_none());
    let (_, wf) = status_and_json(get(&amc, &t, us, &format!("{base}/workflows")).await).await;
    assert_eq!(wf["workflows"].as_array().unwrap().len(), 2);
    let (_, ads) =
        status_and_json(get(&amc, &t, us, "/amc/instances/amcaaaaaaaa/advertisers").await).await;
    assert_eq!(ads["advertisers"], serde_json::json!([]));
    assert_eq!(ads["totalCount"], 0);
    // A repeated token, scripted on page 1.
    amc.repeat_token("amcaaaaaaaa", UsageList::Executions, 1);
    let all = format!("{base}/workflowExecutions?minCreationTime=2026-01-01T00:00:00&limit=50");
    let (_, p0) = status_and_json(get(&amc, &t, us, &all).await).await;
    let tok = p0["nextToken"].as_str().unwrap().to_owned();
    let (_, p1) = status_and_json(get(&amc, &t, us, &format!("{all}&nextToken={tok}")).await).await;
    assert_eq!(p1["nextToken"].as_str(), Some(tok.as_str()));
    // Another advertiser cannot read the instance's lists.
    let (status, _) = status_and_json(
        get(
            &amc,
            &t,
            Some(("ENTITY2UK", UK)),
            &format!("{base}/schedules"),
        )
        .await,
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn prefixes_each_serve_the_whole_api_and_are_recorded() {
    let amc = FakeAmc::start_under(&["/amc-api", "/amc-api/reporting", "/lwa"]);
    amc.add_client(CLIENT, SECRET, REFRESH);
    amc.add_account("ENTITY1US", "Acme US", US);
    amc.add_instance("ENTITY1US", "amcaaaaaaaa", "us-main");
    amc.add_instance("ENTITY1US", "amcbbbbbbbb", "us-second");
    let form = format!(
        "grant_type=refresh_token&refresh_token={}&client_id={CLIENT}&client_secret={SECRET}",
        REFRESH.replace('|', "%7C")
    );
    let post = |url: String| {
        reqwest::Client::new()
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form.clone())
            .send()
    };
    // The root is not served, nor a path that only starts like a prefix.
    assert_eq!(post(amc.token_url()).await.unwrap().status(), 404);
    assert_eq!(
        post(format!("{}/lwax/auth/o2/token", amc.base_url()))
            .await
            .unwrap()
            .status(),
        404
    );
    let (status, body) = status_and_json(
        post(format!("{}/auth/o2/token", amc.url_under("/lwa")))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let bearer = body["access_token"].as_str().unwrap().to_owned();

    let us = Some(("ENTITY1US", US));
    let (status, body) =
        status_and_json(get(&amc, &bearer, us, "/amc-api/amc/instances/amcaaaaaaaa").await).await;
    assert_eq!(status, 200, "{body}");
    // apiEndpoint is the first prefix's URL, or what the test sets, or absent.
    assert_eq!(
        body["instance"]["apiEndpoint"],
        amc.url_under("/amc-api").as_str()
    );
    let reporting = amc.url_under("/amc-api/reporting");
    amc.set_api_endpoint("amcaaaaaaaa", Some(&reporting));
    amc.set_api_endpoint("amcbbbbbbbb", None);
    let (_, body) =
        status_and_json(get(&amc, &bearer, us, "/amc-api/amc/instances?limit=10").await).await;
    assert_eq!(body["instances"][0]["apiEndpoint"], reporting.as_str());
    assert!(body["instances"][1].get("apiEndpoint").is_none(), "{body}");
    // The longest prefix wins.
    let resp = get(
        &amc,
        &bearer,
        us,
        "/amc-api/reporting/amc/reporting/amcaaaaaaaa/workflows",
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().contains_key("x-amz-rid"));
    assert_eq!(get(&amc, &bearer, us, "/amc/accounts").await.status(), 404);

    let seen: Vec<(Option<String>, Option<String>)> = amc
        .requests()
        .iter()
        .map(|r| (r.mount.clone(), r.resource().map(str::to_owned)))
        .collect();
    let some = |s: &str| Some(s.to_owned());
    assert_eq!(
        seen,
        [
            (None, None),
            (None, None),
            (some("/lwa"), some("/auth/o2/token")),
            (some("/amc-api"), some("/amc/instances/amcaaaaaaaa")),
            (some("/amc-api"), some("/amc/instances")),
            (
                some("/amc-api/reporting"),
                some("/amc/reporting/amcaaaaaaaa/workflows")
            ),
            (None, None),
        ]
    );
    assert_eq!(amc.requests()[3].path, "/amc-api/amc/instances/amcaaaaaaaa");
    // A fake at the root records every path under the prefix "".
    let root = fixture();
    let _ = token(&root).await;
    assert_eq!(root.requests()[0].mount.as_deref(), Some(""));
    assert_eq!(root.requests()[0].resource(), Some("/auth/o2/token"));
}
