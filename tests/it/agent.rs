//! The in-cluster agent's control-plane side: tokens (shown once, stored hashed, rotated,
//! revoked), heartbeats and status, the cluster view (snapshot + deltas), the command queue
//! (long poll, exactly-once start, results, idempotent enqueue, expiry), and pending pods
//! reaching the cluster actor — all over real HTTP, on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use spot_agent_protocol::CommandKind;
use spot_models::agents;

use crate::both;
use crate::inventory::link_sim;
use crate::support::{assert_error, Backend, Session, TestApp};

fn heartbeat_body(version: &str) -> Value {
    json!({
        "protocol_version": 1,
        "agent_version": version,
        "kubernetes_version": "v1.30.2-eks-1552ad0",
        "watches": [
            {"resource": "nodes", "healthy": true, "objects": 2, "relists": 1},
            {"resource": "pods", "healthy": false, "objects": 3, "last_error": "410 Gone"}
        ],
        "metrics_available": true,
        "sent_at": Utc::now(),
    })
}

fn node(name: &str, conditions: Value) -> Value {
    json!({
        "name": name,
        "provider_id": format!("aws:///us-east-1a/i-{name}"),
        "instance_id": format!("i-{name}"),
        "instance_type": "m5.large",
        "zone": "us-east-1a",
        "capacity_type": "spot",
        "labels": {"kubernetes.io/hostname": name},
        "taints": [],
        "allocatable": {"cpu_millis": 1930, "memory_mib": 7000, "pods": 29},
        "capacity": {"cpu_millis": 2000, "memory_mib": 7680, "pods": 29},
        "conditions": conditions,
        "ready": true,
        "unschedulable": false
    })
}

fn pod(ns: &str, name: &str, node: Option<&str>, phase: &str) -> Value {
    let mut p = json!({
        "namespace": ns,
        "name": name,
        "node_name": node,
        "phase": phase,
        "owner": {"kind": "Deployment", "name": "web"},
        "requests": {"cpu_millis": 500, "memory_mib": 1024},
        "labels": {"app": "web"},
        "pdbs": ["default/web"]
    });
    if phase == "Pending" {
        p["unschedulable_reason"] = json!("Unschedulable: 0/3 nodes are available");
    }
    p
}

/// Registers a cluster by hand (the org's only account is the signup placeholder).
async fn register(app: &TestApp, s: &Session, name: &str) -> String {
    let (st, c) = app
        .json(
            Method::POST,
            "/api/clusters/register",
            Some(&s.access),
            Some(json!({"name": name, "region": "eu-west-1"})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{c}");
    assert_eq!(c["provider"], "kubernetes");
    assert_eq!(c["agent_status"], "not_installed");
    c["id"].as_str().expect("id").to_string()
}

async fn issue(app: &TestApp, s: &Session, cluster: &str) -> Value {
    let (st, t) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/agent"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    t
}

async fn agent_status(app: &TestApp, s: &Session, cluster: &str) -> Value {
    let (st, v) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/agent"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

async fn agent_call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.json(method, &format!("/api/agent/v1{path}"), Some(token), body)
        .await
}

async fn tokens_are_shown_once_stored_hashed_rotated_and_revoked(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Agents").await;
    let viewer = app.add_member(&owner, "viewer").await;
    let other = app.signup("Others").await;
    let cluster = register(&app, &owner, "edge-1").await;

    // Registration is validated and unique per organization.
    let (st, v) = app
        .json(
            Method::POST,
            "/api/clusters/register",
            Some(&owner.access),
            Some(json!({"name": "edge-1"})),
        )
        .await;
    assert_eq!(
        assert_error(st, &v, StatusCode::CONFLICT)["error"]["field"],
        "name"
    );
    let (st, v) = app
        .json(
            Method::POST,
            "/api/clusters/register",
            Some(&owner.access),
            Some(json!({"name": "bad name"})),
        )
        .await;
    assert_eq!(
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "name"
    );
    let (st, v) = app
        .json(
            Method::POST,
            "/api/clusters/register",
            Some(&owner.access),
            Some(json!({"name": "x", "account_id": "nope"})),
        )
        .await;
    assert_eq!(
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "account_id"
    );
    let (st, _) = app
        .json(
            Method::POST,
            "/api/clusters/register",
            Some(&viewer.access),
            Some(json!({"name": "edge-2"})),
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    assert_eq!(
        agent_status(&app, &owner, &cluster).await["status"],
        "not_installed"
    );
    // Viewers read, never write; other organizations see nothing.
    assert_eq!(
        agent_status(&app, &viewer, &cluster).await["status"],
        "not_installed"
    );
    let (st, v) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/agent"),
            Some(&viewer.access),
            None,
        )
        .await;
    assert_error(st, &v, StatusCode::FORBIDDEN);
    for (m, p) in [
        (Method::POST, format!("/api/clusters/{cluster}/agent")),
        (Method::GET, format!("/api/clusters/{cluster}/agent")),
        (
            Method::POST,
            format!("/api/clusters/{cluster}/agent/rotate"),
        ),
        (Method::DELETE, format!("/api/clusters/{cluster}/agent")),
        (
            Method::GET,
            format!("/api/clusters/{cluster}/agent/commands"),
        ),
    ] {
        let (st, v) = app.json(m, &p, Some(&other.access), None).await;
        assert_error(st, &v, StatusCode::NOT_FOUND);
    }

    let t = issue(&app, &owner, &cluster).await;
    let token = t["token"].as_str().expect("token").to_string();
    let prefix = t["token_prefix"].as_str().expect("prefix").to_string();
    assert!(
        token.starts_with("spa_") && token.starts_with(&prefix),
        "{t}"
    );
    assert_eq!(prefix.len(), 12);
    assert_eq!(t["cluster_id"], cluster.as_str());
    assert_eq!(
        t["control_plane_url"],
        app.state.cfg.public_url.trim_end_matches('/')
    );
    for k in ["helm", "kubectl", "terraform"] {
        let cmd = t["install"][k].as_str().expect("install command");
        assert!(cmd.contains(&token) && cmd.contains(&cluster), "{k}: {cmd}");
    }
    assert!(t["install"]["helm"]
        .as_str()
        .unwrap_or_default()
        .contains("--set controlPlaneUrl="));
    // A second token while one is active: rotate instead.
    let (st, v) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/agent"),
            Some(&owner.access),
            None,
        )
        .await;
    assert_error(st, &v, StatusCode::CONFLICT);

    // Stored hashed: no column of any token row holds the plaintext.
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, token_prefix, token_hash, COALESCE(created_by, '') FROM agent_tokens",
    )
    .fetch_all(&app.db.pool)
    .await
    .expect("tokens");
    assert_eq!(rows.len(), 1);
    for (id, p, h, by) in &rows {
        for col in [id, p, h, by] {
            assert!(!col.contains(&token), "plaintext token stored");
        }
        assert_eq!(h, &agents::token_hash(&token));
        assert_eq!(p, &prefix);
    }
    // The status shows the token's prefix, never the token.
    let s = agent_status(&app, &owner, &cluster).await;
    assert_eq!(s["status"], "waiting");
    assert_eq!(s["token_prefix"], prefix.as_str());
    assert!(!s.to_string().contains(&token));

    // Only the agent token opens the agent API (user access tokens of any role: 401).
    for user in [&owner.access, &viewer.access] {
        let (st, v) = agent_call(
            &app,
            Method::POST,
            "/heartbeat",
            user,
            Some(heartbeat_body("0.1.0")),
        )
        .await;
        assert_error(st, &v, StatusCode::UNAUTHORIZED);
    }
    let (st, v) = app
        .json(
            Method::POST,
            "/api/agent/v1/heartbeat",
            None,
            Some(heartbeat_body("0.1.0")),
        )
        .await;
    assert_error(st, &v, StatusCode::UNAUTHORIZED);
    let forged = format!("{}{}", &token[..12], "x".repeat(40));
    let (st, v) = agent_call(
        &app,
        Method::POST,
        "/heartbeat",
        &forged,
        Some(heartbeat_body("0.1.0")),
    )
    .await;
    assert_error(st, &v, StatusCode::UNAUTHORIZED);

    let mut events = app.state.actors.bus.subscribe();
    let (st, ack) = agent_call(
        &app,
        Method::POST,
        "/heartbeat",
        &token,
        Some(heartbeat_body("0.1.0")),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{ack}");
    assert_eq!(ack["cluster_id"], cluster.as_str());
    assert_eq!(ack["resync"], true, "no snapshot yet: {ack}");
    let ev = tokio::time::timeout(Duration::from_secs(2), async {
        loop {
            if let Ok(e) = events.recv().await {
                if e.kind == "agent.heartbeat" {
                    return e;
                }
            }
        }
    })
    .await
    .expect("heartbeat event");
    assert_eq!(ev.org_id.as_deref(), Some(owner.org_id.as_str()));
    assert_eq!(ev.data["cluster_id"], cluster.as_str());

    let s = agent_status(&app, &owner, &cluster).await;
    assert_eq!(s["status"], "connected", "{s}");
    assert_eq!(s["connected"], true);
    assert_eq!(s["agent_version"], "0.1.0");
    assert_eq!(s["kubernetes_version"], "v1.30.2-eks-1552ad0");
    assert_eq!(s["protocol_version"], 1);
    assert_eq!(s["metrics_available"], true);
    assert_eq!(s["watches"][1]["last_error"], "410 Gone");
    assert!(s["last_heartbeat_at"].is_string());
    let (_, list) = app
        .json(Method::GET, "/api/clusters", Some(&owner.access), None)
        .await;
    let item = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|c| c["id"] == cluster.as_str())
        .expect("registered cluster listed")
        .clone();
    assert_eq!(item["agent_status"], "connected");
    let (_, detail) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}"),
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!(detail["cluster"]["agent_status"], "connected");
    assert!(
        agents::is_connected(&app.db, &owner.org_id, &cluster, Utc::now())
            .await
            .expect("db")
    );
    assert!(
        !agents::is_connected(&app.db, &other.org_id, &cluster, Utc::now())
            .await
            .expect("db")
    );
    assert!(!agents::is_connected(
        &app.db,
        &owner.org_id,
        &cluster,
        Utc::now() + chrono::Duration::seconds(61)
    )
    .await
    .expect("db"));

    // A safe-mode report is kept and shown.
    let mut hb = heartbeat_body("0.1.0");
    hb["safe_mode"] =
        json!({"entered_at": Utc::now(), "reason": "control plane unreachable for 600 s"});
    let (st, _) = agent_call(&app, Method::POST, "/heartbeat", &token, Some(hb)).await;
    assert_eq!(st, StatusCode::OK);
    let s = agent_status(&app, &owner, &cluster).await;
    assert_eq!(s["safe_mode"]["active"], true, "{s}");
    // Heartbeats are strict: unknown fields and bad versions name the field.
    let mut hb = heartbeat_body("0.1.0");
    hb["extra"] = json!(1);
    let (st, v) = agent_call(&app, Method::POST, "/heartbeat", &token, Some(hb)).await;
    assert_eq!(
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "extra"
    );
    let mut hb = heartbeat_body("0.1.0");
    hb["protocol_version"] = json!(99);
    let (st, v) = agent_call(&app, Method::POST, "/heartbeat", &token, Some(hb)).await;
    assert_eq!(
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "protocol_version"
    );

    // Rotate: the old token is dead at once, the new one works.
    let (st, r) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/agent/rotate"),
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{r}");
    let token2 = r["token"].as_str().expect("token").to_string();
    assert_ne!(token2, token);
    let (st, v) = agent_call(
        &app,
        Method::POST,
        "/heartbeat",
        &token,
        Some(heartbeat_body("0.1.0")),
    )
    .await;
    assert_error(st, &v, StatusCode::UNAUTHORIZED);
    let (st, _) = agent_call(
        &app,
        Method::POST,
        "/heartbeat",
        &token2,
        Some(heartbeat_body("0.2.0")),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        agent_status(&app, &owner, &cluster).await["agent_version"],
        "0.2.0"
    );

    // Revoke: the agent gets 401, the status says revoked.
    let (st, _) = app
        .json(
            Method::DELETE,
            &format!("/api/clusters/{cluster}/agent"),
            Some(&viewer.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = app
        .json(
            Method::DELETE,
            &format!("/api/clusters/{cluster}/agent"),
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = agent_call(&app, Method::GET, "/commands", &token2, None).await;
    assert_error(st, &v, StatusCode::UNAUTHORIZED);
    let s = agent_status(&app, &owner, &cluster).await;
    assert_eq!(s["status"], "revoked");
    assert_eq!(s["connected"], false);
    assert!(
        !agents::is_connected(&app.db, &owner.org_id, &cluster, Utc::now())
            .await
            .expect("db")
    );
    let (st, _) = app
        .json(
            Method::DELETE,
            &format!("/api/clusters/{cluster}/agent"),
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::NOT_FOUND);

    // Audited: token lifecycle by the user, connection and safe mode by the agent, and no
    // row per heartbeat.
    let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT action, actor_kind, actor_component FROM audit_logs WHERE organization_id = $1 ORDER BY seq",
    )
    .bind(&owner.org_id)
    .fetch_all(&app.db.pool)
    .await
    .expect("audit");
    let actions: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    for a in [
        "cluster.register",
        "agent.token.create",
        "agent.token.rotate",
        "agent.token.revoke",
        "agent.connect",
        "agent.safe_mode",
    ] {
        assert!(actions.contains(&a), "{a} not audited: {actions:?}");
    }
    let connects: Vec<_> = rows.iter().filter(|r| r.0 == "agent.connect").collect();
    assert_eq!(connects.len(), 2, "one per token: {rows:?}");
    assert_eq!(connects[0].1, "agent");
    assert_eq!(
        connects[0].2.as_deref(),
        Some(format!("agent:{prefix}").as_str())
    );
    assert!(
        !actions.iter().any(|a| a.contains("heartbeat")),
        "{actions:?}"
    );
}
both!(tokens_are_shown_once_stored_hashed_rotated_and_revoked);

async fn snapshots_and_deltas_build_the_cluster_view(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Views").await;
    let cluster = register(&app, &owner, "view-1").await;
    let token = issue(&app, &owner, &cluster).await["token"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(agents::cluster_view(&app.db, &owner.org_id, &cluster)
        .await
        .expect("db")
        .is_none());

    let now = Utc::now();
    let snap = json!({
        "collected_at": now,
        "nodes": [node("n1", json!([{"type": "Ready", "status": "True"}])), node("n2", json!([]))],
        "pods": [pod("default", "web-1", Some("n1"), "Running"), pod("default", "web-2", Some("n2"), "Running"), pod("kube-system", "dns", Some("n1"), "Running")],
        "pdbs": [{"namespace": "default", "name": "web", "match_labels": {"app": "web"}, "min_available": "1", "disruptions_allowed": 1, "current_healthy": 2, "desired_healthy": 1, "expected_pods": 2}],
        "usage": [
            {"target": "pod", "namespace": "default", "name": "web-1", "at": now - chrono::Duration::minutes(2), "cpu_millis": 120, "memory_mib": 300},
            {"target": "pod", "namespace": "default", "name": "web-1", "at": now - chrono::Duration::minutes(1), "cpu_millis": 140, "memory_mib": 310},
            {"target": "node", "name": "n1", "at": now, "cpu_millis": 900, "memory_mib": 4000}
        ]
    });
    let (st, v) = agent_call(&app, Method::POST, "/snapshot", &token, Some(snap.clone())).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], true);
    let view = agents::cluster_view(&app.db, &owner.org_id, &cluster)
        .await
        .expect("db")
        .expect("view");
    assert_eq!(
        view.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["n1", "n2"]
    );
    assert_eq!(view.pods.len(), 3);
    assert_eq!(view.pdbs.len(), 1);
    assert_eq!(view.pods[0].pdbs, ["default/web"]);
    assert_eq!(view.nodes[0].instance_id.as_deref(), Some("i-n1"));
    assert!(view.collected_at.is_some());
    // Other organizations get nothing.
    let other = app.signup("Other").await;
    assert!(agents::cluster_view(&app.db, &other.org_id, &cluster)
        .await
        .expect("db")
        .is_none());

    // A delta: n2 gone, web-2 deleted, web-3 pending, web-1 moved.
    let delta = json!({
        "collected_at": Utc::now(),
        "nodes_deleted": ["n2"],
        "pods_upserted": [pod("default", "web-3", None, "Pending"), pod("default", "web-1", Some("n1"), "Running")],
        "pods_deleted": ["default/web-2"],
        "usage": [{"target": "pod", "namespace": "default", "name": "web-1", "at": Utc::now(), "cpu_millis": 160, "memory_mib": 320}]
    });
    let (st, v) = agent_call(&app, Method::POST, "/delta", &token, Some(delta)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let view = agents::cluster_view(&app.db, &owner.org_id, &cluster)
        .await
        .expect("db")
        .expect("view");
    assert_eq!(
        view.nodes
            .iter()
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["n1"]
    );
    let keys: Vec<String> = view.pods.iter().map(|p| p.key()).collect();
    assert_eq!(keys, ["default/web-1", "default/web-3", "kube-system/dns"]);
    let usage = agents::pod_usage(
        &app.db,
        &owner.org_id,
        &cluster,
        "default",
        "web-1",
        now - chrono::Duration::hours(1),
        Utc::now(),
    )
    .await
    .expect("usage");
    assert_eq!(
        usage.iter().map(|u| u.cpu_millis).collect::<Vec<_>>(),
        [120, 140, 160]
    );
    assert!(agents::pod_usage(
        &app.db,
        &other.org_id,
        &cluster,
        "default",
        "web-1",
        now - chrono::Duration::hours(1),
        Utc::now()
    )
    .await
    .expect("usage")
    .is_empty());
    let nu = agents::node_usage(
        &app.db,
        &owner.org_id,
        &cluster,
        "n1",
        now - chrono::Duration::hours(1),
        Utc::now(),
    )
    .await
    .expect("usage");
    assert_eq!(nu.len(), 1);

    let s = agent_status(&app, &owner, &cluster).await;
    assert_eq!(
        (
            s["nodes"].as_i64(),
            s["pods"].as_i64(),
            s["pdbs"].as_i64(),
            s["pending_pods"].as_i64()
        ),
        (Some(1), Some(3), Some(1), Some(1)),
        "{s}"
    );

    // A new snapshot replaces the view wholesale.
    let (st, _) = agent_call(&app, Method::POST, "/snapshot", &token, Some(json!({"collected_at": Utc::now(), "nodes": [node("n9", json!([]))], "pods": [], "pdbs": []}))).await;
    assert_eq!(st, StatusCode::OK);
    let view = agents::cluster_view(&app.db, &owner.org_id, &cluster)
        .await
        .expect("db")
        .expect("view");
    assert_eq!(
        (view.nodes.len(), view.pods.len(), view.pdbs.len()),
        (1, 0, 0)
    );

    // Malformed views: 422 naming the field, the stored view untouched.
    let mut bad = snap.clone();
    bad["nodes"][1]
        .as_object_mut()
        .expect("node")
        .remove("allocatable");
    let (st, v) = agent_call(&app, Method::POST, "/snapshot", &token, Some(bad)).await;
    let field = assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"].clone();
    assert_eq!(field, "nodes[1].allocatable", "{v}");
    let mut bad = snap.clone();
    bad["pods"][2]["phase"] = json!("Sleeping");
    let (st, v) = agent_call(&app, Method::POST, "/snapshot", &token, Some(bad)).await;
    assert_eq!(
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "pods[2].phase",
        "{v}"
    );
    let (st, v) = agent_call(
        &app,
        Method::POST,
        "/delta",
        &token,
        Some(json!({"collected_at": null, "pods_upserted": [pod("", "x", None, "Running")]})),
    )
    .await;
    assert_eq!(
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "pods_upserted[0].namespace",
        "{v}"
    );
    let view = agents::cluster_view(&app.db, &owner.org_id, &cluster)
        .await
        .expect("db")
        .expect("view");
    assert_eq!(view.nodes[0].name, "n9");

    // Snapshots may exceed the default 1 MiB body cap (large clusters).
    let mut big = node("big", json!([]));
    big["labels"]["padding"] = json!("x".repeat(2 * 1024 * 1024));
    let (st, v) = agent_call(
        &app,
        Method::POST,
        "/snapshot",
        &token,
        Some(json!({"collected_at": Utc::now(), "nodes": [big], "pods": [], "pdbs": []})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // …but other agent routes keep the default cap.
    let mut hb = heartbeat_body("0.1.0");
    hb["agent_version"] = json!("x".repeat(2 * 1024 * 1024));
    let (st, _) = agent_call(&app, Method::POST, "/heartbeat", &token, Some(hb)).await;
    assert_eq!(st, StatusCode::PAYLOAD_TOO_LARGE);
}
both!(snapshots_and_deltas_build_the_cluster_view);

/// The cluster's figures follow a snapshot at once (no discovery in between), and the
/// history an agent reads on connect fills the dashboards' hours not yet recorded.
async fn a_snapshot_refreshes_the_cluster_and_fills_its_history(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("History").await;
    let cluster = register(&app, &owner, "hist-1").await;
    let token = issue(&app, &owner, &cluster).await["token"]
        .as_str()
        .expect("token")
        .to_string();
    let now = Utc::now();
    let hour = |h: i64| {
        let ms = (now - chrono::Duration::hours(h)).timestamp_millis() / 3_600_000 * 3_600_000;
        chrono::DateTime::<Utc>::from_timestamp_millis(ms).expect("hour")
    };
    let mut snap = json!({
        "collected_at": now,
        "nodes": [node("n1", json!([{"type": "Ready", "status": "True"}])), node("n2", json!([]))],
        "pods": [pod("default", "web-1", Some("n1"), "Running"), pod("default", "web-2", Some("n2"), "Running"), pod("default", "queued", None, "Pending")],
        "pdbs": [],
        "usage": [{"target": "node", "name": "n1", "at": now, "cpu_millis": 700, "memory_mib": 2048}],
        "history": [
            {"hour": hour(3), "cpu_millis": 500, "memory_mib": 1000},
            {"hour": hour(2), "cpu_millis": 600, "memory_mib": 1100}
        ]
    });
    // Bad history: 422 naming the point, nothing stored.
    let mut bad = snap.clone();
    bad["history"][1]["hour"] = json!(now + chrono::Duration::hours(2));
    let (st, v) = agent_call(&app, Method::POST, "/snapshot", &token, Some(bad)).await;
    assert_eq!(
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "history[1].hour",
        "{v}"
    );
    let (st, v) = agent_call(&app, Method::POST, "/snapshot", &token, Some(snap.clone())).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (_, c) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}"),
            Some(&owner.access),
            None,
        )
        .await;
    let c = if c["cluster"].is_object() {
        c["cluster"].clone()
    } else {
        c
    };
    assert_eq!(c["node_count"], 2, "{c}");
    assert_eq!(c["pod_count"], 2, "scheduled pods only: {c}");
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT ts, cpu_used_m FROM cluster_metrics WHERE cluster_id = $1 ORDER BY ts",
    )
    .bind(&cluster)
    .fetch_all(&app.db.pool)
    .await
    .expect("metrics");
    assert_eq!(
        rows,
        vec![
            (hour(3).timestamp_millis(), 500),
            (hour(2).timestamp_millis(), 600)
        ]
    );
    // A reconnect sends its history again: hours already recorded are kept as they are,
    // only hours before the first recorded one are added.
    snap["history"] = json!([
        {"hour": hour(4), "cpu_millis": 400, "memory_mib": 900},
        {"hour": hour(3), "cpu_millis": 9999, "memory_mib": 9999},
        {"hour": hour(1), "cpu_millis": 9999, "memory_mib": 9999}
    ]);
    let (st, _) = agent_call(&app, Method::POST, "/snapshot", &token, Some(snap)).await;
    assert_eq!(st, StatusCode::OK);
    let rows: Vec<(i64, i64)> = sqlx::query_as(
        "SELECT ts, cpu_used_m FROM cluster_metrics WHERE cluster_id = $1 ORDER BY ts",
    )
    .bind(&cluster)
    .fetch_all(&app.db.pool)
    .await
    .expect("metrics");
    assert_eq!(
        rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        vec![400, 500, 600],
        "{rows:?}"
    );
}
both!(a_snapshot_refreshes_the_cluster_and_fills_its_history);

async fn commands_are_long_polled_started_once_and_reported(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Commands").await;
    let cluster = register(&app, &owner, "cmd-1").await;
    let token = issue(&app, &owner, &cluster).await["token"]
        .as_str()
        .expect("token")
        .to_string();
    let org = owner.org_id.clone();

    for bad in ["31", "-1", "soon"] {
        let (st, v) = agent_call(
            &app,
            Method::GET,
            &format!("/commands?wait={bad}"),
            &token,
            None,
        )
        .await;
        assert_eq!(
            assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
            "wait"
        );
    }
    let (st, v) = agent_call(&app, Method::GET, "/commands", &token, None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["commands"], json!([]));

    // A waiting poll returns as soon as a command is queued.
    let poll = {
        let http = app.http.clone();
        let url = app.url("/api/agent/v1/commands?wait=20");
        let token = token.clone();
        tokio::spawn(async move {
            let r = http.get(url).bearer_auth(token).send().await.expect("poll");
            let at = Instant::now();
            (r.status(), r.json::<Value>().await.expect("json"), at)
        })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    let deadline = Utc::now() + chrono::Duration::minutes(10);
    let drain = CommandKind::Drain {
        node: "n1".into(),
        timeout_secs: 300,
        grace_period_secs: None,
    };
    let queued_at = Instant::now();
    let cmd = agents::enqueue_command(
        &app.db,
        &org,
        &cluster,
        "job-1:drain:n1",
        &drain,
        deadline,
        "system:job:job-1",
    )
    .await
    .expect("enqueue")
    .expect("cluster of the org");
    let (st, batch, answered_at) = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("poll answers")
        .expect("join");
    assert_eq!(st, StatusCode::OK);
    let latency = answered_at.duration_since(queued_at);
    assert!(
        latency < Duration::from_secs(2),
        "long poll answered {latency:?} after the enqueue"
    );
    assert_eq!(
        batch["commands"].as_array().map(Vec::len),
        Some(1),
        "{batch}"
    );
    assert_eq!(batch["commands"][0]["id"], cmd.id.as_str());
    assert_eq!(batch["commands"][0]["command"]["type"], "drain");
    assert_eq!(batch["commands"][0]["command"]["node"], "n1");

    // Same idempotency key → same command; other keys queue behind it, oldest first.
    let again = agents::enqueue_command(
        &app.db,
        &org,
        &cluster,
        "job-1:drain:n1",
        &drain,
        deadline,
        "system:job:job-1",
    )
    .await
    .expect("enqueue")
    .expect("cmd");
    assert_eq!(again.id, cmd.id);
    let cordon = agents::enqueue_command(
        &app.db,
        &org,
        &cluster,
        "job-1:cordon:n2",
        &CommandKind::Cordon { node: "n2".into() },
        deadline,
        &owner.user_id,
    )
    .await
    .expect("enqueue")
    .expect("cmd");
    let other = app.signup("Elsewhere").await;
    assert!(agents::enqueue_command(
        &app.db,
        &other.org_id,
        &cluster,
        "x",
        &drain,
        deadline,
        "system"
    )
    .await
    .expect("db")
    .is_none());
    let (_, v) = agent_call(&app, Method::GET, "/commands?wait=0", &token, None).await;
    let ids: Vec<&str> = v["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert_eq!(ids, [cmd.id.as_str(), cordon.id.as_str()]);

    // Exactly-once start.
    let (st, started) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/start", cmd.id),
        &token,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{started}");
    assert_eq!(started["id"], cmd.id.as_str());
    let (st, v) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/start", cmd.id),
        &token,
        None,
    )
    .await;
    assert_error(st, &v, StatusCode::CONFLICT);
    let (_, v) = agent_call(&app, Method::GET, "/commands", &token, None).await;
    assert_eq!(
        v["commands"].as_array().map(Vec::len),
        Some(1),
        "a started command is never delivered again: {v}"
    );
    let (st, v) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/start", uuid::Uuid::new_v4()),
        &token,
        None,
    )
    .await;
    assert_error(st, &v, StatusCode::NOT_FOUND);
    // A result for a command that is not running: 409.
    let result = json!({
        "outcome": "succeeded",
        "message": "drained n1",
        "evictions": [{"pod": "default/web-1", "outcome": "evicted", "retries": 2}, {"pod": "kube-system/ds", "outcome": "skipped_daemonset"}],
        "started_at": Utc::now(),
        "finished_at": Utc::now()
    });
    let (st, v) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/result", cordon.id),
        &token,
        Some(result.clone()),
    )
    .await;
    assert_error(st, &v, StatusCode::CONFLICT);
    let (st, v) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/result", cmd.id),
        &token,
        Some(json!({"outcome": "maybe"})),
    )
    .await;
    assert_eq!(
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "outcome"
    );
    let (st, v) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/result", cmd.id),
        &token,
        Some(result.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The same report again is fine; a different one is not.
    let (st, _) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/result", cmd.id),
        &token,
        Some(result.clone()),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    let mut different = result.clone();
    different["outcome"] = json!("failed");
    let (st, v) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/result", cmd.id),
        &token,
        Some(different),
    )
    .await;
    assert_error(st, &v, StatusCode::CONFLICT);

    let done = agents::command(&app.db, &org, &cmd.id)
        .await
        .expect("db")
        .expect("cmd");
    assert_eq!(done.status, agents::CommandStatus::Succeeded);
    let r = done.result.expect("result");
    assert_eq!(r.evictions.len(), 2);
    assert_eq!(r.evictions[0].retries, 2);
    assert!(done.started_at.is_some() && done.finished_at.is_some());
    assert!(agents::command(&app.db, &other.org_id, &cmd.id)
        .await
        .expect("db")
        .is_none());

    // The tenant list: newest first, typed, paged.
    let (st, list) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/agent/commands?limit=10"),
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list["items"][0]["id"], cordon.id.as_str());
    assert_eq!(list["items"][0]["status"], "pending");
    assert_eq!(list["items"][1]["status"], "succeeded");
    assert_eq!(list["items"][1]["kind"], "drain");
    assert_eq!(list["items"][1]["target"], "n1");
    assert_eq!(list["items"][1]["parameters"]["timeout_secs"], "300");
    assert_eq!(list["items"][1]["outcome"], "succeeded");
    assert_eq!(list["items"][1]["evictions"][0]["pod"], "default/web-1");
    assert_eq!(list["items"][1]["created_by"], "system:job:job-1");
    let (st, v) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/agent/commands?limit=500"),
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!(
        assert_error(st, &v, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
        "limit"
    );
    let (_, page) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/agent/commands?limit=1&offset=1"),
            Some(&owner.access),
            None,
        )
        .await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["items"][0]["id"], cmd.id.as_str());

    // Expiry: a pending command past its deadline expires and is never delivered or
    // started; a started one that never reports fails.
    let late = agents::enqueue_command(
        &app.db,
        &org,
        &cluster,
        "late",
        &CommandKind::Uncordon { node: "n3".into() },
        Utc::now() - chrono::Duration::seconds(1),
        "system",
    )
    .await
    .expect("enqueue")
    .expect("cmd");
    let (_, v) = agent_call(&app, Method::GET, "/commands", &token, None).await;
    assert!(!v.to_string().contains(&late.id), "{v}");
    let (st, v) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/start", late.id),
        &token,
        None,
    )
    .await;
    assert_error(st, &v, StatusCode::CONFLICT);
    let late = agents::command(&app.db, &org, &late.id)
        .await
        .expect("db")
        .expect("cmd");
    assert_eq!(late.status, agents::CommandStatus::Expired);
    assert!(late
        .reason
        .as_deref()
        .unwrap_or_default()
        .contains("deadline"));

    let short = agents::enqueue_command(
        &app.db,
        &org,
        &cluster,
        "short",
        &CommandKind::Cordon { node: "n4".into() },
        Utc::now() + chrono::Duration::milliseconds(1500),
        "system",
    )
    .await
    .expect("enqueue")
    .expect("cmd");
    let (st, _) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/start", short.id),
        &token,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let short_now = agents::command(&app.db, &org, &short.id)
        .await
        .expect("db")
        .expect("cmd");
    assert_eq!(short_now.status, agents::CommandStatus::Failed);
    assert!(
        short_now
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("no result"),
        "{short_now:?}"
    );
    let (st, v) = agent_call(
        &app,
        Method::POST,
        &format!("/commands/{}/result", short.id),
        &token,
        Some(result.clone()),
    )
    .await;
    assert_error(st, &v, StatusCode::CONFLICT);

    // Starts and results are audited as the agent.
    let rows: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT action, actor_kind, actor_component, resource_id FROM audit_logs WHERE organization_id = $1 AND actor_kind = 'agent' ORDER BY seq",
    )
    .bind(&org)
    .fetch_all(&app.db.pool)
    .await
    .expect("audit");
    let start_rows = rows.iter().filter(|r| r.0 == "agent.command.start").count();
    let result_rows: Vec<_> = rows
        .iter()
        .filter(|r| r.0 == "agent.command.result")
        .collect();
    assert_eq!(start_rows, 2, "{rows:?}");
    assert_eq!(result_rows.len(), 1, "one result stored: {rows:?}");
    assert_eq!(result_rows[0].3.as_deref(), Some(cmd.id.as_str()));
    assert!(result_rows[0]
        .2
        .as_deref()
        .unwrap_or_default()
        .starts_with("agent:spa_"));
}
both!(commands_are_long_polled_started_once_and_reported);

async fn pending_pods_and_node_pressure_reach_the_cluster(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let s = app.signup("Reactive Agents").await;
    let account = link_sim(&app, &s, "123456789012", "Prod").await;
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    let c = &clusters["items"][0];
    assert!(c["agent_status"].is_string(), "{c}");
    let cluster = c["id"].as_str().expect("id").to_string();
    let name = c["name"].as_str().expect("name").to_string();
    // The cluster actor has its market once discovery handed it over.
    let probe = vec![spot_engine::pack::Pod::simple("probe", 100, 128)];
    let mut ready = false;
    for _ in 0..50 {
        if let Ok(Ok(_)) = app
            .state
            .actors
            .pending_pods(&account, &name, probe.clone())
            .await
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "the cluster actor never got its market");
    // Rotate works whether or not the cluster already has a token (it issues one).
    let (st, t) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/agent/rotate"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    let token = t["token"].as_str().expect("token").to_string();
    // On the simulator the rotation also (re)starts the cluster's simulated agent with the
    // new token: its first snapshot (the whole cluster, which does not have the test's
    // node) lands before the test reports anything, so it cannot clear the test's node.
    crate::optimize::wait_agent_view(&app, &s, &cluster).await;
    // From here the test speaks for the cluster alone: a full snapshot from the simulated
    // agent (a retried push, say) would rightly clear the test's node mid-way.
    app.state
        .sim_agents
        .as_ref()
        .expect("simulated agents")
        .detach(&cluster)
        .await;

    let mut events = app.state.actors.bus.subscribe();
    let sent = Instant::now();
    let delta = json!({
        "collected_at": Utc::now(),
        "nodes_upserted": [node("n1", json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True", "reason": "KubeletHasInsufficientMemory"}]))],
        "pods_upserted": [pod("default", "web-0", None, "Pending"), pod("default", "web-1", None, "Pending"), pod("default", "ok", Some("n1"), "Running")]
    });
    let (st, v) = agent_call(&app, Method::POST, "/delta", &token, Some(delta)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (mut decision, mut pressure) = (None, None);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while decision.is_none() || pressure.is_none() {
            if let Ok(e) = events.recv().await {
                match e.kind.as_str() {
                    "decision.launch"
                        if e.data["decision"]["trigger"] == "pending_pods"
                            && e.data.to_string().contains("default/web-0") =>
                    {
                        decision = Some((e, sent.elapsed()))
                    }
                    "cluster.node_pressure" if e.data["cluster_id"] == cluster.as_str() => {
                        pressure = Some(e)
                    }
                    _ => {}
                }
            }
        }
    })
    .await;
    let (d, after) = decision.expect("the cluster actor decided on the agent's pending pods");
    assert!(
        after < Duration::from_secs(1),
        "decision {after:?} after the delta"
    );
    assert_eq!(d.org_id.as_deref(), Some(s.org_id.as_str()));
    assert_eq!(d.data["decision"]["cluster"], name.as_str());
    let placed: Vec<String> = d.data["decision"]["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .flat_map(|n| n["pods"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect();
    let mut placed_sorted = placed.clone();
    placed_sorted.sort();
    assert_eq!(
        placed_sorted,
        ["default/web-0", "default/web-1"],
        "only the unschedulable pods: {placed:?}"
    );
    let p = pressure.expect("node pressure published");
    assert_eq!(p.data["cluster_id"], cluster.as_str());
    assert_eq!(p.data["nodes"][0]["node"], "n1");
    assert_eq!(p.data["nodes"][0]["conditions"], json!(["MemoryPressure"]));
    assert_eq!(p.data["started"], json!(["n1"]));
    let held = app
        .state
        .actors
        .pressured_nodes(&account, &name)
        .await
        .expect("cluster actor");
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].node, "n1");

    // The same conditions again are not news; recovery is.
    let again = json!({
        "collected_at": Utc::now(),
        "nodes_upserted": [node("n1", json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "True", "reason": "KubeletHasInsufficientMemory"}]))],
    });
    let (st, v) = agent_call(&app, Method::POST, "/delta", &token, Some(again)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let healthy = json!({
        "collected_at": Utc::now(),
        "nodes_upserted": [node("n1", json!([{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}]))],
    });
    let (st, v) = agent_call(&app, Method::POST, "/delta", &token, Some(healthy)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let next = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            if let Ok(e) = events.recv().await {
                if e.kind == "cluster.node_pressure" && e.data["cluster_id"] == cluster.as_str() {
                    return e;
                }
            }
        }
    })
    .await
    .expect("recovery published");
    assert_eq!(next.data["cleared"], json!(["n1"]), "{}", next.data);
    assert_eq!(
        next.data["started"],
        json!([]),
        "the repeat was not published: {}",
        next.data
    );
    assert_eq!(next.data["nodes"], json!([]));
    assert!(app
        .state
        .actors
        .pressured_nodes(&account, &name)
        .await
        .expect("cluster actor")
        .is_empty());
}
both!(pending_pods_and_node_pressure_reach_the_cluster);

/// A command past its deadline is closed by the server's sweep even when nobody reads the
/// cluster's commands, and the sweep is audited as `system`.
async fn commands_past_their_deadline_are_swept_and_audited(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Sweep").await;
    let cluster = register(&app, &owner, "sweep-1").await;
    let past = Utc::now() - chrono::Duration::seconds(1);
    let future = Utc::now() + chrono::Duration::minutes(10);
    let stale = agents::enqueue_command(
        &app.db,
        &owner.org_id,
        &cluster,
        "sweep:cordon:n1",
        &CommandKind::Cordon { node: "n1".into() },
        past,
        &owner.user_id,
    )
    .await
    .expect("enqueue")
    .expect("cmd");
    let fresh = agents::enqueue_command(
        &app.db,
        &owner.org_id,
        &cluster,
        "sweep:cordon:n2",
        &CommandKind::Cordon { node: "n2".into() },
        future,
        &owner.user_id,
    )
    .await
    .expect("enqueue")
    .expect("cmd");
    // (The server's own sweep may get there first; either way it is closed once.)
    spot_api::sweep::sweep_once(&app.db).await.expect("sweep");
    // A second pass finds nothing new.
    let again = spot_api::sweep::sweep_once(&app.db).await.expect("sweep");
    assert_eq!(again, 0);
    let (_, cmds) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/agent/commands"),
            Some(&owner.access),
            None,
        )
        .await;
    let items = cmds["items"].as_array().cloned().unwrap_or_default();
    let status = |id: &str| {
        items
            .iter()
            .find(|c| c["id"] == id)
            .map(|c| c["status"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(status(&stale.id), "expired", "{cmds}");
    assert_eq!(status(&fresh.id), "pending", "{cmds}");
    let (_, audit) = app
        .json(
            Method::GET,
            "/api/audit-logs?action=agent.command_expired",
            Some(&owner.access),
            None,
        )
        .await;
    let entries = audit["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["actor"]["kind"], "system", "{audit}");
    assert_eq!(entries[0]["resource_id"], stale.id.as_str(), "{audit}");
}
both!(commands_past_their_deadline_are_swept_and_audited);
