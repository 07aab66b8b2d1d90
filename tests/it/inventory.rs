//! Discovery through the actor system, the inventory API, live events and fault isolation.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use spot_cloud::sim::Fault;

use crate::both;
use crate::support::{Backend, Session, TestApp};

pub async fn link_sim(app: &TestApp, s: &Session, account: &str, name: &str) -> String {
    let body = json!({"aws_account_id": account, "role_arn": format!("arn:aws:iam::{account}:role/SpotOptimizer"), "region": "us-east-1", "name": name});
    let (st, acc) = app
        .json(
            Method::POST,
            "/api/accounts/verify",
            Some(&s.access),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{acc}");
    let id = acc["id"].as_str().expect("id").to_string();
    wait_status(app, s, &id, "active").await;
    id
}

pub async fn wait_status(app: &TestApp, s: &Session, id: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = app
            .json(
                Method::GET,
                &format!("/api/accounts/{id}/scan"),
                Some(&s.access),
                None,
            )
            .await
            .1;
        if last["status"] == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("account {id} never reached {want}: {last}");
}

/// Installs the (simulated) agent on every cluster of the organization and waits for each
/// view: pods, usage and history come only from the agents.
pub async fn install_all_agents(app: &TestApp, s: &Session) {
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    for c in clusters["items"].as_array().expect("clusters") {
        let id = c["id"].as_str().expect("id");
        crate::optimize::install_agent(app, s, id).await;
    }
    // The figures and the history are written right after each view is stored.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, list) = app
            .json(Method::GET, "/api/clusters", Some(&s.access), None)
            .await;
        let done = list["items"].as_array().is_some_and(|items| {
            items.iter().all(|c| {
                c["pod_count"].as_i64().unwrap_or(0) > 0
                    && c["trend_24h"]["hours"].as_array().map_or(0, Vec::len) >= 23
            })
        });
        if done {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "agent figures and history never arrived: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn discovery_fills_the_inventory_api(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Inventory").await;
    link_sim(&app, &s, "123456789012", "Prod").await;
    // Before any agent reports, a cluster shows its instances and no invented pod figures.
    let (_, before) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    for c in before["items"].as_array().expect("items") {
        assert!(c["node_count"].as_i64().expect("nodes") > 0, "{c}");
        assert_eq!(c["pod_count"], 0, "{c}");
        assert!(c["efficiency_grade"].is_null(), "not measured yet: {c}");
    }
    install_all_agents(&app, &s).await;

    let (st, list) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    let clusters = list["items"].as_array().expect("items");
    assert!(clusters.len() >= 3, "{list}");
    for c in clusters {
        assert!(c["node_count"].as_i64().expect("nodes") > 0, "{c}");
        assert!(c["monthly_run_rate"].as_f64().expect("rate") > 0.0, "{c}");
        assert!(
            ["A", "B", "C", "D", "F"].contains(&c["efficiency_grade"].as_str().expect("grade")),
            "{c}"
        );
        let h = c["health_score"].as_i64().expect("health");
        assert!((0..=100).contains(&h));
        assert!(c["kubernetes_version"].is_string() && c["end_of_life"].is_boolean());
    }
    let total: f64 = clusters
        .iter()
        .map(|c| c["monthly_run_rate"].as_f64().unwrap_or(0.0))
        .sum();
    assert!((list["total_monthly_run_rate"].as_f64().expect("total") - total).abs() < 1e-6);
    // Sorting and search.
    let sorted = app
        .json(
            Method::GET,
            "/api/clusters?sort=-cost",
            Some(&s.access),
            None,
        )
        .await
        .1;
    let costs: Vec<f64> = sorted["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["monthly_run_rate"].as_f64().unwrap_or(0.0))
        .collect();
    assert!(costs.windows(2).all(|w| w[0] >= w[1]), "{costs:?}");
    let (st, e) = app
        .json(
            Method::GET,
            "/api/clusters?sort=banana",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    let name = clusters[0]["name"].as_str().expect("name");
    let found = app
        .json(
            Method::GET,
            &format!("/api/clusters?q={}", &name[..3]),
            Some(&s.access),
            None,
        )
        .await
        .1;
    assert!(found["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|c| c["name"] == name));

    let cid = clusters[0]["id"].as_str().expect("id");
    let (st, detail) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cid}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let nodes = detail["nodes"].as_array().expect("nodes");
    assert!(!nodes.is_empty() && !detail["node_groups"].as_array().expect("groups").is_empty());
    let inst = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cid}/instances"),
            Some(&s.access),
            None,
        )
        .await
        .1;
    assert_eq!(inst["items"].as_array().expect("items").len(), nodes.len());

    let iid = nodes[0]["id"].as_str().expect("id");
    let (st, one) = app
        .json(
            Method::GET,
            &format!("/api/instances/{iid}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{one}");
    assert!(one["history"]
        .as_array()
        .expect("history")
        .iter()
        .any(|h| h["kind"] == "discovered"));
    let alts = one["alternatives"].as_array().expect("alternatives");
    assert_eq!(alts.len(), 5, "{one}");
    let prices: Vec<f64> = alts
        .iter()
        .map(|a| a["spot_price"].as_f64().unwrap_or(0.0))
        .collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]));

    let unreg = app
        .json(
            Method::GET,
            "/api/instances/unregistered",
            Some(&s.access),
            None,
        )
        .await
        .1;
    assert!(
        !unreg["items"].as_array().expect("items").is_empty(),
        "{unreg}"
    );
    assert!(unreg["items"]
        .as_array()
        .expect("items")
        .iter()
        .all(|i| i["cluster_id"].is_null()));
    let vols = app
        .json(Method::GET, "/api/volumes/orphaned", Some(&s.access), None)
        .await
        .1;
    assert!(
        !vols["items"].as_array().expect("items").is_empty()
            && vols["total_monthly_cost"].as_f64().expect("cost") > 0.0,
        "{vols}"
    );
    let snaps = app
        .json(Method::GET, "/api/snapshots/unused", Some(&s.access), None)
        .await
        .1;
    assert!(
        !snaps["items"].as_array().expect("items").is_empty(),
        "{snaps}"
    );

    // Another organization sees none of it, and its ids answer 404.
    let other = app.signup("Other").await;
    assert_eq!(
        app.json(Method::GET, "/api/clusters", Some(&other.access), None)
            .await
            .1["items"]
            .as_array()
            .expect("items")
            .len(),
        0
    );
    for path in [
        format!("/api/clusters/{cid}"),
        format!("/api/clusters/{cid}/instances"),
        format!("/api/instances/{iid}"),
    ] {
        assert_eq!(
            app.json(Method::GET, &path, Some(&other.access), None)
                .await
                .0,
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    // Disconnecting hides the account's inventory.
    let acc = app
        .json(Method::GET, "/api/accounts", Some(&s.access), None)
        .await
        .1["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.json(
        Method::DELETE,
        &format!("/api/accounts/{acc}"),
        Some(&s.access),
        None,
    )
    .await;
    assert_eq!(
        app.json(Method::GET, "/api/clusters", Some(&s.access), None)
            .await
            .1["items"]
            .as_array()
            .expect("items")
            .len(),
        0
    );
}
both!(discovery_fills_the_inventory_api);

async fn live_events_are_tenant_scoped(b: Backend) {
    let app = TestApp::start(b).await;
    let a = app.signup("Events A").await;
    let other = app.signup("Events B").await;
    let acc_a = link_sim(&app, &a, "123456789012", "A").await;
    let acc_b = link_sim(&app, &other, "210987654321", "B").await;
    let resp = app
        .http
        .get(app.url(&format!("/api/events?access_token={}", a.access)))
        .send()
        .await
        .expect("sse");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/event-stream"));
    // Unauthenticated streams are refused.
    assert_eq!(
        app.http
            .get(app.url("/api/events"))
            .send()
            .await
            .expect("sse")
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let mut resp = resp;
    app.json(
        Method::POST,
        &format!("/api/accounts/{acc_b}/resync"),
        Some(&other.access),
        None,
    )
    .await;
    app.json(
        Method::POST,
        &format!("/api/accounts/{acc_a}/resync"),
        Some(&a.access),
        None,
    )
    .await;
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !text.contains("\"phase\":\"done\"") {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("events arrive in time")
            .expect("stream open")
            .expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains(&acc_a), "own events: {text}");
    assert!(
        !text.contains(&acc_b),
        "another organization's events leaked: {text}"
    );
}
both!(live_events_are_tenant_scoped);

async fn a_failing_account_does_not_disturb_others(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let s = app.signup("Faults").await;
    let good = link_sim(&app, &s, "123456789012", "Good").await;
    let other = app.signup("Faults 2").await;
    let bad = link_sim(&app, &other, "210987654321", "Bad").await;

    // Cloud errors: the account goes to `error` with a message; the other stays active.
    sim.world("210987654321", "us-east-1")
        .expect("world")
        .inject_fault(Fault::FailAll("injected outage".into()));
    app.json(
        Method::POST,
        &format!("/api/accounts/{bad}/resync"),
        Some(&other.access),
        None,
    )
    .await;
    let st = wait_status(&app, &other, &bad, "error").await;
    assert!(
        st["message"]
            .as_str()
            .expect("message")
            .contains("injected outage"),
        "{st}"
    );
    assert_eq!(
        app.json(
            Method::GET,
            &format!("/api/accounts/{good}/scan"),
            Some(&s.access),
            None
        )
        .await
        .1["status"],
        "active"
    );

    // A panic restarts only that actor, with backoff, and shows in health.
    app.state.actors.inject_panic(&good);
    let mut restarted = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let h = app.state.actors.health().await.expect("health");
        if h.iter()
            .any(|a| a.account_id == good && a.restarts >= 1 && a.state == "running")
        {
            restarted = true;
            break;
        }
    }
    assert!(
        restarted,
        "actor was not restarted: {:?}",
        app.state.actors.health().await
    );
    // The API and the other account kept working; the restarted actor discovers again.
    assert_eq!(
        app.json(Method::GET, "/api/clusters", Some(&s.access), None)
            .await
            .0,
        StatusCode::OK
    );
    sim.world("210987654321", "us-east-1")
        .expect("world")
        .clear_faults();
    app.json(
        Method::POST,
        &format!("/api/accounts/{bad}/resync"),
        Some(&other.access),
        None,
    )
    .await;
    wait_status(&app, &other, &bad, "active").await;
    wait_status(&app, &s, &good, "active").await;
}
both!(a_failing_account_does_not_disturb_others);

async fn rescans_apply_only_the_diff(b: Backend) {
    use spot_models::inventory::{apply, InstanceRec, InventorySnapshot};
    let app = TestApp::start(b).await;
    let s = app.signup("Diff").await;
    let acc = app
        .json(Method::GET, "/api/accounts", Some(&s.access), None)
        .await
        .1["items"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    let inst = |id: &str| InstanceRec {
        instance_id: id.into(),
        cluster_name: None,
        instance_type: "m5.large".into(),
        lifecycle: "on-demand".into(),
        state: "running".into(),
        az: "us-east-1a".into(),
        node_group: None,
        asg_name: None,
        tags: "{}".into(),
        launch_time: None,
        hourly_price: 0.096,
        on_demand_hourly: 0.096,
    };
    let mut snap = InventorySnapshot {
        observed_at: 1,
        instances: vec![inst("i-1"), inst("i-2"), inst("i-3")],
        ..Default::default()
    };
    let r1 = apply(&app.db, &s.org_id, &acc, &snap).await.expect("apply");
    assert_eq!(
        (r1.instances.new, r1.instances.changed, r1.instances.gone),
        (3, 0, 0)
    );
    snap.observed_at = 2;
    let r2 = apply(&app.db, &s.org_id, &acc, &snap).await.expect("apply");
    assert_eq!(
        (r2.instances.new, r2.instances.changed, r2.instances.gone),
        (0, 0, 0)
    );
    snap.observed_at = 3;
    snap.instances[0].lifecycle = "spot".into();
    snap.instances.pop();
    let r3 = apply(&app.db, &s.org_id, &acc, &snap).await.expect("apply");
    assert_eq!(
        (r3.instances.new, r3.instances.changed, r3.instances.gone),
        (0, 1, 1)
    );
    let (state,): (String,) =
        sqlx::query_as("SELECT state FROM instances WHERE instance_id = 'i-3'")
            .fetch_one(&app.db.pool)
            .await
            .expect("row");
    assert_eq!(state, "terminated");
    // The batched update wrote the change, and each instance has its events.
    let (lifecycle,): (String,) =
        sqlx::query_as("SELECT lifecycle FROM instances WHERE instance_id = 'i-1'")
            .fetch_one(&app.db.pool)
            .await
            .expect("row");
    assert_eq!(lifecycle, "spot");
    let kinds: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, COUNT(*) FROM instance_events WHERE organization_id = $1 GROUP BY kind ORDER BY kind",
    )
    .bind(&s.org_id)
    .fetch_all(&app.db.pool)
    .await
    .expect("events");
    assert_eq!(
        kinds,
        vec![
            ("changed".to_string(), 1),
            ("discovered".to_string(), 3),
            ("gone".to_string(), 1)
        ]
    );

    // A large account: more rows than one multi-row statement holds, new then re-priced.
    let mut big = InventorySnapshot {
        observed_at: 4,
        instances: (0..450).map(|k| inst(&format!("i-big-{k}"))).collect(),
        ..Default::default()
    };
    let r4 = apply(&app.db, &s.org_id, &acc, &big).await.expect("apply");
    assert_eq!((r4.instances.new, r4.instances.gone), (450, 2));
    big.observed_at = 5;
    for (k, i) in big.instances.iter_mut().enumerate() {
        i.hourly_price = 0.03 + k as f64 * 1e-4;
        i.az = "us-east-1b".into();
    }
    let r5 = apply(&app.db, &s.org_id, &acc, &big).await.expect("apply");
    assert_eq!(
        (r5.instances.new, r5.instances.changed, r5.instances.gone),
        (0, 450, 0)
    );
    let (n, lo, hi): (i64, f64, f64) = sqlx::query_as(
        "SELECT COUNT(*), MIN(hourly_price), MAX(hourly_price) FROM instances WHERE account_id = $1 AND gone_at IS NULL AND az = 'us-east-1b'",
    )
    .bind(&acc)
    .fetch_one(&app.db.pool)
    .await
    .expect("prices");
    assert_eq!(n, 450);
    assert!(
        (lo - 0.03).abs() < 1e-9 && (hi - (0.03 + 449.0 * 1e-4)).abs() < 1e-9,
        "{lo} {hi}"
    );
}
both!(rescans_apply_only_the_diff);

async fn dashboard_numbers_come_from_inventory_and_history(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Dash").await;
    // Nothing linked: zeros, not invented numbers.
    let k0 = app
        .json(Method::GET, "/api/dashboard/kpis", Some(&s.access), None)
        .await
        .1;
    assert_eq!(k0["monthly_spend"].as_f64(), Some(0.0), "{k0}");
    link_sim(&app, &s, "123456789012", "Prod").await;
    // Each cluster's agent reports on connect what its metrics store holds; the history
    // comes from there (the cloud port has no pods and no usage).
    install_all_agents(&app, &s).await;
    let mut savings = Value::Null;
    for _ in 0..400 {
        savings = app
            .json(
                Method::GET,
                "/api/dashboard/savings?days=7",
                Some(&s.access),
                None,
            )
            .await
            .1;
        if savings["points"].as_array().is_some_and(|p| p.len() >= 24) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pts = savings["points"].as_array().expect("points");
    assert!(pts.len() >= 24, "{savings}");
    assert!(pts
        .iter()
        .all(|p| p["actual_hourly"].as_f64().unwrap_or(0.0)
            <= p["on_demand_baseline_hourly"].as_f64().unwrap_or(0.0) + 1e-9));

    let k = app
        .json(Method::GET, "/api/dashboard/kpis", Some(&s.access), None)
        .await
        .1;
    assert!(k["monthly_spend"].as_f64().expect("spend") > 0.0, "{k}");
    assert!(
        k["potential_savings"].as_f64().expect("savings") > 0.0,
        "{k}"
    );
    let share = k["spot_share"].as_f64().expect("share");
    assert!(share > 0.0 && share < 1.0, "{k}");
    assert!(k["efficiency_grade"].is_string());
    let clusters = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await
        .1;
    let run_rate = clusters["total_monthly_run_rate"].as_f64().expect("rate");
    assert!(
        k["monthly_compute"].as_f64().expect("compute") >= run_rate - 1e-6,
        "compute spend covers the clusters"
    );

    let gap = app
        .json(
            Method::GET,
            "/api/dashboard/resource-gap?days=7",
            Some(&s.access),
            None,
        )
        .await
        .1;
    let g = gap["points"].as_array().expect("points");
    assert!(!g.is_empty());
    assert!(g.iter().all(|p| p["cpu_requested_millicores"].as_i64()
        <= p["cpu_capacity_millicores"].as_i64().map(|c| c * 2)));
    let heat = app
        .json(
            Method::GET,
            "/api/dashboard/heatmap?days=14",
            Some(&s.access),
            None,
        )
        .await
        .1;
    assert!(
        heat["cells"].as_array().expect("cells").len() >= 100,
        "{heat}"
    );
    let fleet = app
        .json(Method::GET, "/api/dashboard/fleet", Some(&s.access), None)
        .await
        .1;
    let lifecycles: Vec<&str> = fleet["slices"]
        .as_array()
        .expect("slices")
        .iter()
        .filter_map(|s| s["lifecycle"].as_str())
        .collect();
    assert!(
        lifecycles.contains(&"spot") && lifecycles.contains(&"on-demand"),
        "{fleet}"
    );
    let st = app
        .json(
            Method::GET,
            "/api/dashboard/stability",
            Some(&s.access),
            None,
        )
        .await
        .1;
    let idx = st["index"].as_f64().expect("index");
    assert!(
        (0.0..=100.0).contains(&idx) && st["components"].as_array().expect("c").len() == 3,
        "{st}"
    );
    let (code, e) = app
        .json(
            Method::GET,
            "/api/dashboard/savings?days=1000",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert_eq!(e["error"]["field"], "days");
}
both!(dashboard_numbers_come_from_inventory_and_history);

async fn a_live_stream_ends_when_its_session_is_revoked(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Stream Logout").await;
    let mut resp = app
        .http
        .get(app.url(&format!("/api/events?access_token={}", s.access)))
        .send()
        .await
        .expect("sse");
    assert_eq!(resp.status(), StatusCode::OK);
    let (st, _) = app
        .json(
            Method::POST,
            "/api/auth/logout",
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // Keep-alives may arrive first; the body must end within the re-check period.
    let ended = tokio::time::timeout(Duration::from_secs(25), async {
        loop {
            match resp.chunk().await {
                Ok(Some(_)) => continue,
                _ => return,
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the stream outlived the revoked session");
}
both!(a_live_stream_ends_when_its_session_is_revoked);

async fn the_cluster_list_carries_a_24h_trend(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Trends").await;
    link_sim(&app, &s, "123456789012", "Prod").await;
    install_all_agents(&app, &s).await;
    let (st, list) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    for c in list["items"].as_array().expect("items") {
        let t = &c["trend_24h"];
        let n = t["hours"].as_array().map(Vec::len).unwrap_or(0);
        // The agents' first snapshots carry 14 days of hourly history: a full day of points.
        assert!(n >= 23, "{t}");
        assert_eq!(t["nodes"].as_array().map(Vec::len), Some(n));
        assert_eq!(t["pods"].as_array().map(Vec::len), Some(n));
        assert_eq!(t["monthly_cost"].as_array().map(Vec::len), Some(n));
        assert!(t["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .all(|v| v.as_i64().unwrap_or(-1) >= 0));
        assert!(t["monthly_cost_change"].is_number(), "{t}");
        // The latest point is the live inventory.
        assert_eq!(
            t["nodes"]
                .as_array()
                .and_then(|v| v.last())
                .and_then(Value::as_i64),
            c["node_count"].as_i64(),
            "{c}"
        );
    }
    let id = list["items"][0]["id"].as_str().expect("id");
    let (_, detail) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{id}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(
        detail["cluster"]["trend_24h"]["nodes"],
        list["items"][0]["trend_24h"]["nodes"]
    );
}
both!(the_cluster_list_carries_a_24h_trend);

/// Two replicas on one PostgreSQL database: each account's actor runs on exactly one of
/// them, and when that replica dies its accounts move to the other within a lease period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_runs_on_one_replica_and_moves_when_it_dies() {
    let mut cfg = crate::support::test_config();
    cfg.lease_secs = 2;
    let app = TestApp::start_with(Backend::Postgres, cfg.clone()).await;
    let s = app.signup("Replicas").await;
    let account = link_sim(&app, &s, "123456789012", "Prod").await;
    let replica = spot_api::AppState::build(
        app.db.clone(),
        cfg,
        spot_api::state::StateOptions {
            connector: None,
            redis_url: None,
        },
    )
    .await
    .expect("second replica");
    let runs = |h: Vec<spot_actors::system::ActorHealth>| h.iter().any(|a| a.account_id == account);
    // A few lease periods: the second replica never takes a live lease.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            runs(app.state.actors.health().await.expect("health")),
            "the first replica keeps its account"
        );
        assert!(
            !runs(replica.actors.health().await.expect("health")),
            "the account runs on one replica only"
        );
    }
    // A re-sync asked of the replica that does not hold the account reaches the holder.
    replica.actors.resync(&account);
    // The first replica dies (its lease is not renewed): the second takes over.
    app.state.actors.shutdown();
    let mut moved = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if runs(replica.actors.health().await.expect("health")) {
            moved = true;
            break;
        }
    }
    assert!(moved, "the account did not move to the surviving replica");
    assert_eq!(
        spot_models::leases::holder(&app.db, &account)
            .await
            .expect("holder")
            .as_deref(),
        Some(replica.replica_id.as_str())
    );
    replica.actors.shutdown();
}
