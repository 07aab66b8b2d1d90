//! Resilience to the server's own dependencies and to its clients: an instance's cheaper
//! alternatives come from the market the actors hold (no cloud call per request), bodies are
//! read only after authentication, live streams are capped and end with their token, the
//! model broadcast survives a killed Redis connection, a restarted account actor does not
//! re-run discovery at once, and the inventory lists page with cursors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use spot_cloud::sim::Method as SimMethod;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both;
use crate::inventory::link_sim;
use crate::support::{assert_error, test_config, Backend, TestApp, PASSWORD};

const ACCOUNT: &str = "123456789012";

fn market_calls(sim: &SimConnector) -> Vec<u64> {
    let w = sim.world(ACCOUNT, "us-east-1").expect("world");
    [
        SimMethod::InstanceTypeCatalog,
        SimMethod::OnDemandPrices,
        SimMethod::SpotPriceHistory,
        SimMethod::CallerIdentity,
    ]
    .into_iter()
    .map(|m| w.call_count(m))
    .collect()
}

async fn instance_alternatives_come_from_the_actors_market(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let s = app.signup("Alternatives").await;
    link_sim(&app, &s, ACCOUNT, "Prod").await;
    let viewer = app.add_member(&s, "viewer").await;
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    let cid = clusters["items"][0]["id"]
        .as_str()
        .expect("cluster")
        .to_string();
    let (_, nodes) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cid}/instances"),
            Some(&s.access),
            None,
        )
        .await;
    let iid = nodes["items"][0]["id"]
        .as_str()
        .expect("instance")
        .to_string();

    let before = market_calls(&sim);
    for _ in 0..25 {
        let (st, one) = app
            .json(
                Method::GET,
                &format!("/api/instances/{iid}"),
                Some(&viewer.access),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{one}");
        let alts = one["alternatives"].as_array().expect("alternatives");
        assert_eq!(alts.len(), 5, "{one}");
        let prices: Vec<f64> = alts
            .iter()
            .map(|a| a["spot_price"].as_f64().expect("price"))
            .collect();
        assert!(prices.windows(2).all(|w| w[0] <= w[1]), "{prices:?}");
        assert!(
            alts.iter()
                .all(|a| a["vcpu"].as_i64() >= one["instance"]["vcpu"].as_i64()),
            "{one}"
        );
        assert!(one["alternatives_as_of"].is_string(), "{one}");
    }
    // A viewer reading the page 25 times cost the customer's account no API call at all.
    assert_eq!(
        market_calls(&sim),
        before,
        "GET /api/instances/{{id}} called the cloud"
    );
}
both!(instance_alternatives_come_from_the_actors_market);

/// Sends only the head of a request with a large declared body and returns what the server
/// answers within `wait` (None when it answers nothing, i.e. it is reading the body).
async fn head_only(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    wait: Duration,
) -> Option<String> {
    let addr = app.base.trim_start_matches("http://");
    let mut sock = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {}\r\n\r\n--x\r\n",
        15 * 1024 * 1024
    );
    sock.write_all(head.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 4096];
    match tokio::time::timeout(wait, sock.read(&mut buf)).await {
        Ok(Ok(n)) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).to_string()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_are_read_only_after_authentication() {
    let app = TestApp::start(Backend::Sqlite).await;
    let s = app.signup("Bodies").await;
    let wait = Duration::from_secs(3);
    // The model upload (16 MiB cap): anonymous and non-admin callers are answered at once,
    // before a byte of the 15 MiB they announced arrives.
    let anon = head_only(&app, "/api/admin/risk/models", None, wait)
        .await
        .expect("an anonymous upload must be refused without reading its body");
    assert!(anon.starts_with("HTTP/1.1 401"), "{anon}");
    let owner = head_only(&app, "/api/admin/risk/models", Some(&s.access), wait)
        .await
        .expect("a non-admin upload must be refused without reading its body");
    assert!(owner.starts_with("HTTP/1.1 403"), "{owner}");
    // Any other authenticated route: an anonymous body is not read either.
    let other = head_only(&app, "/api/org/invites", None, wait)
        .await
        .expect("an anonymous write must be refused without reading its body");
    assert!(other.starts_with("HTTP/1.1 401"), "{other}");
    // The platform admin's upload is read (the server waits for the announced body).
    let admin = crate::risk::super_admin(&app).await;
    assert!(
        head_only(
            &app,
            "/api/admin/risk/models",
            Some(&admin),
            Duration::from_secs(2)
        )
        .await
        .is_none(),
        "an authorized upload is read"
    );
    // Public routes still read their (small) bodies: sign-in works.
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/token",
            None,
            Some(json!({"email": s.email, "password": PASSWORD})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
}

/// Opens a live stream and returns the response once its headers arrived.
async fn open_stream(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(&format!("/api/events?access_token={token}")))
        .send()
        .await
        .expect("stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_are_capped_and_end_with_their_token() {
    let mut cfg = test_config();
    cfg.live_streams_per_user = 2;
    cfg.live_streams_max = 3;
    cfg.access_ttl_secs = 4;
    let app = TestApp::start_with(Backend::Sqlite, cfg).await;
    let a = app.signup("Streams A").await;
    let b = app.signup("Streams B").await;
    let a1 = open_stream(&app, &a.access).await;
    let a2 = open_stream(&app, &a.access).await;
    assert_eq!((a1.status(), a2.status()), (StatusCode::OK, StatusCode::OK));
    // Per user.
    let a3 = open_stream(&app, &a.access).await;
    assert_eq!(a3.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = a3.json().await.expect("json");
    assert_error(
        StatusCode::TOO_MANY_REQUESTS,
        &body,
        StatusCode::TOO_MANY_REQUESTS,
    );
    // Server-wide.
    let b1 = open_stream(&app, &b.access).await;
    assert_eq!(b1.status(), StatusCode::OK);
    let b2 = open_stream(&app, &b.access).await;
    assert_eq!(b2.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.state.live_streams.open(), 3);

    // The access tokens expire after 4 s: every stream ends by itself (the client then
    // reconnects with a refreshed token) and its slot is given back.
    let t0 = Instant::now();
    for r in [a1, a2, b1] {
        let done = tokio::time::timeout(Duration::from_secs(15), r.bytes()).await;
        assert!(done.is_ok(), "the stream outlived its access token");
    }
    assert!(t0.elapsed() < Duration::from_secs(15));
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.state.live_streams.open() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.state.live_streams.open(), 0);
}

fn onnx(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("onnx")
            .join(rel),
    )
    .expect("onnx file")
}

async fn upload_model(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> String {
    let form = reqwest::multipart::Form::new()
        .text("name", name.to_string())
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(format!("{name}.onnx")),
        );
    let r = app
        .http
        .post(app.url("/api/admin/risk/models"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status(), StatusCode::CREATED);
    let v: Value = r.json().await.expect("json");
    v["id"].as_str().expect("id").to_string()
}

async fn pubsub_subscribers(conn: &mut redis::aio::MultiplexedConnection) -> i64 {
    let v: (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(spot_api::state::MODEL_CHANNEL)
        .query_async(conn)
        .await
        .expect("numsub");
    v.1
}

/// Two replicas on one database and one Redis. Every pub/sub connection is killed
/// (`CLIENT KILL TYPE pubsub`, as a Redis restart would drop them); the replicas subscribe
/// again, and the next graduation still reaches the second one through the broadcast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graduation_reaches_a_replica_after_its_redis_subscription_was_killed() {
    let redis_url = "redis://127.0.0.1:6379";
    let app = TestApp::start_with_redis(Backend::Postgres, test_config(), redis_url).await;
    let admin = crate::risk::super_admin(&app).await;
    let mut cfg = test_config();
    cfg.job_queue = app.state.cfg.job_queue.clone();
    let replica = spot_api::AppState::build(
        app.db.clone(),
        cfg,
        spot_api::state::StateOptions {
            connector: None,
            redis_url: Some(redis_url.into()),
        },
    )
    .await
    .expect("second replica");
    let client = redis::Client::open(redis_url).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let before = pubsub_subscribers(&mut conn).await;
    assert!(before >= 2, "both replicas subscribe: {before}");

    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .expect("client kill");
    assert!(killed >= 2, "killed {killed}");
    // Both subscribe again (with backoff) within a few seconds.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = pubsub_subscribers(&mut conn).await;
        if n >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the replicas did not subscribe again ({n} subscribers)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give the resubscription's own re-read of the active model time to finish, so the
    // swap below can only come from the broadcast.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(replica.risk.current().id, "shipped:risk-v1");

    let id = upload_model(
        &app,
        &admin,
        "always-risky",
        onnx("testdata/always_risky.onnx"),
    )
    .await;
    // What a graduation does once its checks pass (the Lab's safety checklist is another
    // test's subject): the registry's active model changes, and the first replica reloads it
    // and broadcasts.
    spot_models::risk::graduate(&app.db, &id)
        .await
        .expect("graduate in the registry");
    app.state
        .reload_risk_model(true)
        .await
        .expect("reload and broadcast");
    assert_eq!(app.state.risk.current().id, id);
    let mut seen = String::new();
    for _ in 0..100 {
        seen = replica.risk.current().id.clone();
        if seen == id {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        seen, id,
        "the graduation did not reach the resubscribed replica"
    );
    replica.actors.shutdown();
}

/// A restarted account actor waits before its first discovery (a crash loop must not turn
/// into a discovery storm against the customer's cloud); the user's re-sync still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_account_actor_does_not_rediscover_at_once() {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(Backend::Sqlite, sim.clone()).await;
    let s = app.signup("Restart").await;
    let acc = link_sim(&app, &s, ACCOUNT, "Prod").await;
    let world = sim.world(ACCOUNT, "us-east-1").expect("world");
    let discoveries = || world.call_count(SimMethod::DescribeVolumes);
    let before = discoveries();
    app.state.actors.inject_panic(&acc);
    // Restarted (backoff 500 ms) ...
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = app.state.actors.health().await.expect("health");
        if h.iter()
            .any(|a| a.account_id == acc && a.restarts == 1 && a.state == "running")
        {
            break;
        }
        assert!(Instant::now() < deadline, "not restarted: {h:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // ... but no discovery for the first seconds after it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        discoveries(),
        before,
        "the restarted actor rediscovered at once"
    );
    // It discovers after its wait (5 s after a first restart).
    let deadline = Instant::now() + Duration::from_secs(10);
    while discoveries() == before {
        assert!(
            Instant::now() < deadline,
            "the restarted actor never discovered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The root supervisor is supervised too: when it fails, its watchdog stops the old account
/// actors, starts a new root and hands it this replica's accounts again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_root_supervisor_is_restarted_with_its_accounts() {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(Backend::Sqlite, sim.clone()).await;
    let s = app.signup("Root").await;
    let acc = link_sim(&app, &s, ACCOUNT, "Prod").await;
    let running = |h: &[spot_actors::system::ActorHealth]| {
        h.iter()
            .filter(|a| a.account_id == acc && a.state == "running")
            .count()
    };
    let h = app.state.actors.health().await.expect("health");
    assert_eq!(running(&h), 1, "{h:?}");
    assert_eq!(app.state.actors.root_restarts(), 0);
    app.state.actors.inject_root_panic();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if app.state.actors.root_restarts() == 1 {
            if let Ok(h) = app.state.actors.health().await {
                if running(&h) == 1 {
                    break;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "root not restarted with its account: {} restarts",
            app.state.actors.root_restarts()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The new root's account actor answers a re-sync with a discovery.
    let world = sim.world(ACCOUNT, "us-east-1").expect("world");
    let before = world.call_count(SimMethod::DescribeVolumes);
    app.state.actors.resync(&acc);
    let deadline = Instant::now() + Duration::from_secs(15);
    while world.call_count(SimMethod::DescribeVolumes) == before {
        assert!(
            Instant::now() < deadline,
            "no discovery after the root restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.state.actors.shutdown();
}

async fn inventory_lists_page_with_cursors(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Paging").await;
    link_sim(&app, &s, ACCOUNT, "Prod").await;
    link_sim(&app, &s, "210987654321", "Staging").await;
    let get = |path: String| {
        let app = &app;
        let token = s.access.clone();
        async move { app.json(Method::GET, &path, Some(&token), None).await }
    };
    for (base, sort) in [
        ("/api/clusters", "sort=-cost"),
        ("/api/clusters", "sort=name"),
        ("/api/instances/unregistered", ""),
        ("/api/volumes/orphaned", ""),
        ("/api/snapshots/unused", ""),
    ] {
        let (st, whole) = get(format!("{base}?{sort}&limit=500")).await;
        assert_eq!(st, StatusCode::OK, "{whole}");
        assert!(whole["next_cursor"].is_null());
        let all: Vec<Value> = whole["items"].as_array().expect("items").clone();
        assert!(all.len() >= 2, "{base}: need two rows to page: {whole}");
        // Pages of one: the same rows, in the same order, each once.
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("{base}?{sort}&limit=1&cursor={c}"),
                None => format!("{base}?{sort}&limit=1"),
            };
            let (st, page) = get(q).await;
            assert_eq!(st, StatusCode::OK, "{page}");
            let items = page["items"].as_array().expect("items");
            assert!(items.len() <= 1);
            // Totals are over the whole list, not the page.
            for t in ["total_monthly_run_rate", "total_monthly_cost"] {
                if !whole[t].is_null() {
                    assert_eq!(page[t], whole[t], "{base}");
                }
            }
            paged.extend(items.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
            assert!(paged.len() <= all.len(), "{base}: pages repeat rows");
        }
        let ids = |v: &[Value]| v.iter().map(|x| x["id"].clone()).collect::<Vec<_>>();
        assert_eq!(ids(&paged), ids(&all), "{base}");
    }
    // The documented maximum, and bad input naming the field.
    for q in [
        "/api/clusters?limit=501",
        "/api/clusters?limit=0",
        "/api/volumes/orphaned?limit=100000",
        "/api/jobs?limit=201",
    ] {
        let (st, e) = get(q.into()).await;
        let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["error"]["field"], "limit", "{q}: {e}");
    }
    let (st, e) = get("/api/clusters?cursor=not-a-cursor".into()).await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "cursor");
    // A cursor only continues the order it was made for.
    let (_, first) = get("/api/clusters?sort=name&limit=1".into()).await;
    let c = first["next_cursor"].as_str().expect("cursor").to_string();
    let (st, e) = get(format!("/api/clusters?sort=-cost&limit=1&cursor={c}")).await;
    assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
}
both!(inventory_lists_page_with_cursors);

async fn jobs_page_with_cursors(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Jobs paging").await;
    link_sim(&app, &s, ACCOUNT, "Prod").await;
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    let ids: Vec<String> = clusters["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().expect("id").to_string())
        .collect();
    // One dry-run optimization per cluster (at least two jobs).
    assert!(ids.len() >= 2);
    for id in &ids {
        let (st, job) = app
            .json(
                Method::POST,
                &format!("/api/clusters/{id}/optimize"),
                Some(&s.access),
                Some(json!({"dry_run": true})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    }
    let (_, whole) = app
        .json(Method::GET, "/api/jobs?limit=200", Some(&s.access), None)
        .await;
    let all: Vec<Value> = whole["items"].as_array().expect("items").clone();
    assert_eq!(all.len(), ids.len());
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("/api/jobs?limit=1&cursor={c}"),
            None => "/api/jobs?limit=1".to_string(),
        };
        let (st, page) = app.json(Method::GET, &q, Some(&s.access), None).await;
        assert_eq!(st, StatusCode::OK, "{page}");
        paged.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(paged.len() <= all.len());
    }
    let idv = |v: &[Value]| v.iter().map(|x| x["id"].clone()).collect::<Vec<_>>();
    assert_eq!(idv(&paged), idv(&all));
    // Newest first.
    let created: Vec<&str> = all
        .iter()
        .map(|j| j["created_at"].as_str().expect("created_at"))
        .collect();
    assert!(created.windows(2).all(|w| w[0] >= w[1]), "{created:?}");
}
both!(jobs_page_with_cursors);
