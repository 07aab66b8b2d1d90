//! Cluster hibernation on the simulator: schedule validation and storage, "sleep now"
//! scaling the cluster's Auto Scaling groups to zero after remembering their sizes, "wake
//! now" restoring exactly those sizes, selective hibernation, a transition missed while no
//! replica ran caught up once after a restart, audit rows as `system`, viewer 403 and
//! cross-tenant 404.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use spot_cloud::{AutoScalingGroup, Cloud, TAG_EKS_CLUSTER};

use crate::both;
use crate::inventory::link_sim;
use crate::support::{assert_error, test_config, Backend, Session, TestApp};

const ACCOUNT: &str = "123456789012";

/// Links a sim account; returns the session, the id and name of its first cluster.
async fn setup(app: &TestApp) -> (Session, String, String) {
    let s = app.signup("Sleepy").await;
    link_sim(app, &s, ACCOUNT, "Dev").await;
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    let c = clusters["items"][0].clone();
    (
        s,
        c["id"].as_str().expect("cluster id").to_string(),
        c["name"].as_str().expect("name").to_string(),
    )
}

async fn groups(sim: &SimConnector, cluster: &str) -> Vec<AutoScalingGroup> {
    let cloud = sim.world(ACCOUNT, "us-east-1").expect("world");
    let mut g: Vec<AutoScalingGroup> = cloud
        .describe_auto_scaling_groups()
        .await
        .expect("groups")
        .into_iter()
        .filter(|g| g.tags.get(TAG_EKS_CLUSTER).map(String::as_str) == Some(cluster))
        .collect();
    g.sort_by(|a, b| a.name.cmp(&b.name));
    g
}

fn sizes(g: &[AutoScalingGroup]) -> Vec<(String, u32, u32, u32)> {
    g.iter()
        .map(|g| (g.name.clone(), g.min_size, g.max_size, g.desired_capacity))
        .collect()
}

fn schedule(slots: Vec<bool>) -> Value {
    json!({
        "enabled": true,
        "slots": slots,
        "timezone": "America/New_York",
        "prewarm_minutes": 30,
        "holidays": ["2026-12-25"],
        "overrides": [{"date": "2026-11-27", "mode": "awake"}],
        "node_groups": [],
        "protected_namespaces": ["monitoring"],
    })
}

/// Polls the state until `want` (the actor may still be starting).
async fn wait_state(app: &TestApp, s: &Session, id: &str, want: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..150 {
        last = app
            .json(
                Method::GET,
                &format!("/api/clusters/{id}/hibernation/state"),
                Some(&s.access),
                None,
            )
            .await
            .1;
        if last["state"] == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cluster {id} never reached {want}: {last}");
}

async fn schedule_is_validated_and_stored(b: Backend) {
    let app = TestApp::start(b).await;
    let (s, id, _) = setup(&app).await;
    let path = format!("/api/clusters/{id}/hibernation");
    // Defaults until saved: disabled, awake around the clock, UTC.
    let (st, v) = app.json(Method::GET, &path, Some(&s.access), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["enabled"], false);
    assert_eq!(v["slots"].as_array().map(Vec::len), Some(168));
    assert!(v["updated_at"].is_null());
    // Field-named 422s.
    let cases = [
        (json!({"slots": vec![true; 167]}), "slots"),
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (json!({"prewarm_minutes": 241}), "prewarm_minutes"),
        (json!({"prewarm_minutes": -5}), "prewarm_minutes"),
        (
            json!({"holidays": ["2026-12-25", "2026-13-01"]}),
            "holidays[1]",
        ),
        (
            json!({"overrides": [{"date": "2026-11-27", "mode": "awake"}, {"date": "2026-11-27", "mode": "sleep"}]}),
            "overrides[1].date",
        ),
        (
            json!({"protected_namespaces": ["Not A Namespace"]}),
            "protected_namespaces[0]",
        ),
        (json!({"surprise": 1}), "surprise"),
    ];
    for (patch, field) in cases {
        let mut body = schedule(vec![true; 168]);
        for (k, v) in patch.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (st, e) = app
            .json(Method::PUT, &path, Some(&s.access), Some(body))
            .await;
        let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["error"]["field"], field, "{e}");
    }
    // A valid schedule round-trips (duplicate namespaces folded).
    let mut slots = vec![false; 168];
    for d in 0..5 {
        for h in 9..18 {
            slots[d * 24 + h] = true;
        }
    }
    let mut body = schedule(slots.clone());
    body["protected_namespaces"] = json!(["monitoring", "monitoring", "vault"]);
    let (st, saved) = app
        .json(Method::PUT, &path, Some(&s.access), Some(body))
        .await;
    assert_eq!(st, StatusCode::OK, "{saved}");
    let (_, got) = app.json(Method::GET, &path, Some(&s.access), None).await;
    assert_eq!(got["slots"], json!(slots));
    assert_eq!(got["timezone"], "America/New_York");
    assert_eq!(got["prewarm_minutes"], 30);
    assert_eq!(got["holidays"], json!(["2026-12-25"]));
    assert_eq!(
        got["overrides"],
        json!([{"date": "2026-11-27", "mode": "awake"}])
    );
    assert_eq!(got["protected_namespaces"], json!(["monitoring", "vault"]));
    assert!(got["updated_at"].is_string());
    // The state tells what the schedule wants and when that changes.
    let (_, state) = app
        .json(Method::GET, &format!("{path}/state"), Some(&s.access), None)
        .await;
    assert!(state["next_transition"]["at"].is_string(), "{state}");
    assert!(["awake", "asleep"].contains(&state["desired"].as_str().unwrap_or("")));
    // The change is audited with its diff.
    let (_, page) = app
        .json(
            Method::GET,
            "/api/audit-logs?action=cluster.hibernation.update&outcome=success",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(page["items"][0]["resource_id"], id.as_str());
    assert_eq!(
        page["items"][0]["diff"]["after"]["timezone"],
        "America/New_York"
    );
}
both!(schedule_is_validated_and_stored);

async fn sleep_now_scales_to_zero_and_wake_restores_exactly(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, id, name) = setup(&app).await;
    let original = groups(&sim, &name).await;
    assert!(
        original.len() >= 2,
        "the demo cluster needs two groups: {original:?}"
    );
    assert!(original.iter().any(|g| g.desired_capacity > 0));
    // Selective hibernation: only the first group sleeps.
    let first = original[0].name.clone();
    let mut body = schedule(vec![true; 168]);
    body["enabled"] = json!(false);
    body["node_groups"] = json!([first]);
    body["protected_namespaces"] = json!([]);
    let (st, v) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{id}/hibernation"),
            Some(&s.access),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{id}/hibernation/sleep"),
            Some(&s.access),
            Some(json!({"hours": 3})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let v = wait_state(&app, &s, &id, "asleep").await;
    assert_eq!(v["manual"]["state"], "asleep");
    let now = groups(&sim, &name).await;
    assert_eq!((now[0].min_size, now[0].desired_capacity), (0, 0));
    assert!(now[0].instance_ids.is_empty(), "{:?}", now[0]);
    assert_eq!(
        sizes(&now[1..]),
        sizes(&original[1..]),
        "other groups untouched"
    );
    assert_eq!(
        v["remembered"],
        json!([{"asg_name": first, "min_size": original[0].min_size, "max_size": original[0].max_size, "desired_capacity": original[0].desired_capacity}])
    );
    // A second "sleep now" is idempotent: no new transition, sizes still remembered.
    let (_, again) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{id}/hibernation/sleep"),
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        again["transitions"].as_array().map(Vec::len),
        Some(1),
        "{again}"
    );
    assert_eq!(again["remembered"], v["remembered"]);
    // Wake for two hours: exactly the remembered sizes come back.
    let (st, v) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{id}/hibernation/wake"),
            Some(&s.access),
            Some(json!({"hours": 2})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let v = wait_state(&app, &s, &id, "awake").await;
    assert_eq!(sizes(&groups(&sim, &name).await), sizes(&original));
    assert_eq!(v["remembered"], json!([]));
    assert_eq!(
        groups(&sim, &name).await[0].instance_ids.len() as u32,
        original[0].desired_capacity
    );
    let manual_until = v["manual"]["until"].as_str().expect("until");
    assert!(manual_until > v["since"].as_str().unwrap_or(""), "{v}");

    // Full hibernation: every group to zero, then back.
    let mut body = schedule(vec![true; 168]);
    body["enabled"] = json!(false);
    body["protected_namespaces"] = json!([]);
    app.json(
        Method::PUT,
        &format!("/api/clusters/{id}/hibernation"),
        Some(&s.access),
        Some(body),
    )
    .await;
    app.json(
        Method::POST,
        &format!("/api/clusters/{id}/hibernation/sleep"),
        Some(&s.access),
        Some(json!({})),
    )
    .await;
    let v = wait_state(&app, &s, &id, "asleep").await;
    for g in groups(&sim, &name).await {
        assert_eq!(
            (g.min_size, g.max_size, g.desired_capacity),
            (0, 0, 0),
            "{g:?}"
        );
    }
    assert_eq!(
        v["remembered"].as_array().map(Vec::len),
        Some(original.len())
    );
    assert!(v["saving_hourly"].as_f64().unwrap_or(0.0) > 0.0, "{v}");
    assert!(
        v["savings"]["baseline_hourly"].as_f64().unwrap_or(0.0) > 0.0,
        "{v}"
    );
    // Without end (schedule disabled): no manual `until`.
    assert!(v["manual"]["until"].is_null(), "{v}");
    app.json(
        Method::POST,
        &format!("/api/clusters/{id}/hibernation/resume"),
        Some(&s.access),
        None,
    )
    .await;
    let v = wait_state(&app, &s, &id, "awake").await;
    assert_eq!(sizes(&groups(&sim, &name).await), sizes(&original));
    // Four transitions, newest first, each recorded and audited as `system`.
    let t = v["transitions"].as_array().expect("transitions");
    let seq: Vec<(&str, &str)> = t
        .iter()
        .map(|t| {
            (
                t["to_state"].as_str().unwrap_or(""),
                t["outcome"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        seq,
        vec![
            ("awake", "success"),
            ("asleep", "success"),
            ("awake", "success"),
            ("asleep", "success")
        ]
    );
    assert_eq!(t[3]["cause"], "manual");
    assert!(
        v["savings"]["hours_asleep"].as_f64().unwrap_or(-1.0) > 0.0,
        "{v}"
    );
    assert!(
        v["savings"]["saved_usd"].as_f64().unwrap_or(-1.0) > 0.0,
        "{v}"
    );
    for action in ["cluster.hibernation.sleep", "cluster.hibernation.wake"] {
        let (_, page) = app
            .json(
                Method::GET,
                &format!("/api/audit-logs?action={action}"),
                Some(&s.access),
                None,
            )
            .await;
        let items: Vec<&Value> = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["action"] == action)
            .collect();
        assert_eq!(items.len(), 2, "{action}: {page}");
        for e in items {
            assert_eq!(e["actor"]["kind"], "system");
            assert_eq!(e["resource_id"], id.as_str());
            assert_eq!(e["outcome"], "success");
        }
    }
}
both!(sleep_now_scales_to_zero_and_wake_restores_exactly);

async fn a_missed_transition_is_caught_up_once_after_restart(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let cfg = test_config();
    let app = TestApp::start_with_connector_config(b, sim.clone(), cfg.clone()).await;
    let (s, id, name) = setup(&app).await;
    let original = groups(&sim, &name).await;
    // The replica stops; while none runs, the schedule says "asleep" around the clock.
    app.state
        .actors
        .shutdown_and_release(Duration::from_secs(5))
        .await;
    spot_models::hibernation::save_schedule(
        &app.db,
        &s.org_id,
        &id,
        &spot_models::hibernation::NewSchedule {
            enabled: true,
            slots: &"0".repeat(168),
            timezone: "Europe/Berlin",
            prewarm_minutes: 0,
            holidays: "[]",
            overrides: "[]",
            node_groups: "[]",
            protected_namespaces: "[]",
            updated_by: None,
        },
    )
    .await
    .expect("schedule");
    assert_eq!(sizes(&groups(&sim, &name).await), sizes(&original));
    // A new replica on the same database catches up: one transition, not one per tick.
    let replica = spot_api::AppState::build(
        app.db.clone(),
        cfg.clone(),
        spot_api::state::StateOptions {
            connector: Some(sim.clone() as Arc<dyn spot_actors::connect::CloudConnector>),
            redis_url: None,
        },
    )
    .await
    .expect("replica");
    let v = wait_state(&app, &s, &id, "asleep").await;
    for g in groups(&sim, &name).await {
        assert_eq!(g.desired_capacity, 0, "{g:?}");
    }
    // Several ticks later still one transition.
    tokio::time::sleep(spot_actors::hibernation::TICK + Duration::from_secs(2)).await;
    let (_, v2) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{id}/hibernation/state"),
            Some(&s.access),
            None,
        )
        .await;
    let t = v2["transitions"].as_array().expect("transitions");
    assert_eq!(t.len(), 1, "{v2}");
    assert_eq!(t[0]["cause"], "catch_up");
    assert_eq!(t[0]["reason"], "schedule");
    assert_eq!(v["state"], "asleep");
    // Restarting again while asleep changes nothing; waking restores the sizes.
    replica
        .actors
        .shutdown_and_release(Duration::from_secs(5))
        .await;
    let third = spot_api::AppState::build(
        app.db.clone(),
        cfg,
        spot_api::state::StateOptions {
            connector: Some(sim.clone() as Arc<dyn spot_actors::connect::CloudConnector>),
            redis_url: None,
        },
    )
    .await
    .expect("third replica");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, v3) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{id}/hibernation/state"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(v3["transitions"].as_array().map(Vec::len), Some(1), "{v3}");
    // The schedule turns awake: the running replica wakes the cluster on its tick.
    spot_models::hibernation::save_schedule(
        &app.db,
        &s.org_id,
        &id,
        &spot_models::hibernation::NewSchedule {
            enabled: false,
            slots: &"1".repeat(168),
            timezone: "Europe/Berlin",
            prewarm_minutes: 0,
            holidays: "[]",
            overrides: "[]",
            node_groups: "[]",
            protected_namespaces: "[]",
            updated_by: None,
        },
    )
    .await
    .expect("schedule");
    let v4 = wait_state(&app, &s, &id, "awake").await;
    assert_eq!(sizes(&groups(&sim, &name).await), sizes(&original));
    assert_eq!(v4["transitions"][0]["cause"], "schedule");
    third.actors.shutdown();
}
both!(a_missed_transition_is_caught_up_once_after_restart);

async fn viewers_cannot_change_hibernation_and_other_tenants_see_nothing(b: Backend) {
    let app = TestApp::start(b).await;
    let (s, id, _) = setup(&app).await;
    let viewer = app.add_member(&s, "viewer").await;
    let other = app.signup("Elsewhere").await;
    let base = format!("/api/clusters/{id}/hibernation");
    let writes = [
        (Method::PUT, base.clone(), Some(schedule(vec![true; 168]))),
        (Method::POST, format!("{base}/sleep"), Some(json!({}))),
        (
            Method::POST,
            format!("{base}/wake"),
            Some(json!({"hours": 1})),
        ),
        (Method::POST, format!("{base}/resume"), None),
    ];
    for (m, p, body) in &writes {
        let (st, e) = app
            .json(m.clone(), p, Some(&viewer.access), body.clone())
            .await;
        assert_error(st, &e, StatusCode::FORBIDDEN);
        let (st, e) = app
            .json(m.clone(), p, Some(&other.access), body.clone())
            .await;
        assert_error(st, &e, StatusCode::NOT_FOUND);
    }
    for p in [base.clone(), format!("{base}/state")] {
        let (st, _) = app.json(Method::GET, &p, Some(&viewer.access), None).await;
        assert_eq!(st, StatusCode::OK, "viewers read {p}");
        let (st, e) = app.json(Method::GET, &p, Some(&other.access), None).await;
        assert_error(st, &e, StatusCode::NOT_FOUND);
    }
    // Bad durations are 422 naming the field.
    let (st, e) = app
        .json(
            Method::POST,
            &format!("{base}/wake"),
            Some(&s.access),
            Some(json!({"hours": 0})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "hours");
    // Nothing happened to the cluster.
    let (_, v) = app
        .json(Method::GET, &format!("{base}/state"), Some(&s.access), None)
        .await;
    assert_eq!(v["state"], "awake");
    assert_eq!(v["transitions"], json!([]));
}
both!(viewers_cannot_change_hibernation_and_other_tenants_see_nothing);

/// Polls the state until `want`, for at most `secs` seconds.
async fn wait_state_for(app: &TestApp, s: &Session, id: &str, want: &str, secs: u64) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let (_, v) = app
            .json(
                Method::GET,
                &format!("/api/clusters/{id}/hibernation/state"),
                Some(&s.access),
                None,
            )
            .await;
        if v["state"] == want {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cluster {id} never reached {want}: {v}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn with_an_agent_sleep_drains_first_and_a_protected_namespace_keeps_one_node(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, id, name) = setup(&app).await;
    crate::optimize::install_agent(&app, &s, &id).await;
    let original = groups(&sim, &name).await;
    let world = sim.world(ACCOUNT, "us-east-1").expect("world");
    let kube = world.pod_inventory(&name).await.expect("pods");
    let members: Vec<String> = original
        .iter()
        .flat_map(|g| g.instance_ids.clone())
        .collect();
    // A namespace whose running pods sit on nodes of the cluster's groups.
    let on_group_node = |p: &spot_cloud::Pod| {
        p.node_name.as_ref().is_some_and(|n| {
            kube.nodes
                .iter()
                .any(|k| &k.name == n && members.contains(&k.instance_id))
        })
    };
    let protected = kube
        .pods
        .iter()
        .find(|p| p.namespace != "kube-system" && on_group_node(p))
        .map(|p| p.namespace.clone())
        .expect("a namespace with pods on group nodes");
    let mut body = schedule(vec![true; 168]);
    body["enabled"] = json!(false);
    body["protected_namespaces"] = json!([protected]);
    let (st, v) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{id}/hibernation"),
            Some(&s.access),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    app.json(
        Method::POST,
        &format!("/api/clusters/{id}/hibernation/sleep"),
        Some(&s.access),
        Some(json!({})),
    )
    .await;
    let v = wait_state_for(&app, &s, &id, "asleep", 180).await;
    let t = &v["transitions"][0];
    assert_eq!(t["detail"]["agent"], true, "{t}");
    let kept_group = t["detail"]["kept_group"]
        .as_str()
        .unwrap_or_else(|| panic!("one group keeps a node: {t}"))
        .to_string();
    let kept_node = t["detail"]["kept_node"]["node"].as_str().expect("node");
    let drained: Vec<&str> = t["detail"]["drained"]
        .as_array()
        .expect("drained")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // Every other group node was drained (cordoned, pods evicted) before the scale-down.
    let group_nodes: Vec<&str> = kube
        .nodes
        .iter()
        .filter(|k| members.contains(&k.instance_id))
        .map(|k| k.name.as_str())
        .collect();
    let attempted: Vec<&str> = t["detail"]["drain_attempted"]
        .as_array()
        .expect("attempted")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!attempted.contains(&kept_node));
    assert_eq!(attempted.len() + 1, group_nodes.len(), "{t}");
    assert!(!drained.is_empty(), "{t}");
    for g in groups(&sim, &name).await {
        if g.name == kept_group {
            assert_eq!((g.min_size, g.max_size, g.desired_capacity), (1, 1, 1));
            assert_eq!(g.instance_ids.len(), 1, "{g:?}");
        } else {
            assert_eq!((g.min_size, g.desired_capacity), (0, 0), "{g:?}");
        }
    }
    // The kept node is the one running the protected pods and it still runs.
    let kept_instance = t["detail"]["kept_node"]["instance_id"]
        .as_str()
        .expect("instance");
    assert!(groups(&sim, &name)
        .await
        .iter()
        .any(|g| g.instance_ids.iter().any(|i| i == kept_instance)));
    // Wake: exactly the remembered sizes, and the new nodes are awaited Ready.
    app.json(
        Method::POST,
        &format!("/api/clusters/{id}/hibernation/wake"),
        Some(&s.access),
        Some(json!({"hours": 1})),
    )
    .await;
    let v = wait_state_for(&app, &s, &id, "awake", 360).await;
    assert_eq!(sizes(&groups(&sim, &name).await), sizes(&original));
    let t = &v["transitions"][0];
    assert_eq!(t["to_state"], "awake");
    assert_eq!(t["outcome"], "success", "{t}");
    assert!(
        !t["detail"]["ready_nodes"]
            .as_array()
            .expect("ready nodes")
            .is_empty(),
        "{t}"
    );
}
both!(with_an_agent_sleep_drains_first_and_a_protected_namespace_keeps_one_node);
