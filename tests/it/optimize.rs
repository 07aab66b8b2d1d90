//! Optimize Now: an apalis job plans a sim cluster with the engine from the (simulated)
//! agent's cluster view and executes the plan through the Cloud port and the agent
//! (launch, cordon, Ready, drain with PDBs, delete node, terminate), with dry run, safe
//! mode, idempotent redelivery, failure reporting, spot → on-demand fallback, policy
//! validation, the refusal of a real run without an agent, and a drain that times out.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use spot_cloud::sim::{Fault, Method as SimMethod};
use spot_cloud::{Cloud, CloudError, InstanceState};

use crate::both;
use crate::inventory::link_sim;
use crate::risk::wait_job;
use crate::support::{assert_error, test_config, Backend, Session, TestApp};

const ACCOUNT: &str = "123456789012";

/// Links a sim account and returns (session, cluster id, cluster name) of its
/// largest cluster, with an aggressive policy so the demo world yields actions.
pub async fn setup(app: &TestApp) -> (Session, String, String) {
    let s = app.signup("Optimizer").await;
    link_sim(app, &s, ACCOUNT, "Prod").await;
    let (_, clusters) = app
        .json(
            Method::GET,
            "/api/clusters?sort=-cost",
            Some(&s.access),
            None,
        )
        .await;
    let c = clusters["items"][0].clone();
    let id = c["id"].as_str().expect("cluster id").to_string();
    let (st, p) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{id}/policy"),
            Some(&s.access),
            Some(json!({"aggressiveness": "aggressive", "stabilization_window_secs": 0})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["aggressiveness"], "aggressive");
    install_agent(app, &s, &id).await;
    (s, id, c["name"].as_str().expect("name").to_string())
}

/// Creates the cluster's agent token (on the simulator this installs the simulated agent,
/// as running the install command would) and waits for its heartbeat and cluster view.
pub async fn install_agent(app: &TestApp, s: &Session, cluster: &str) {
    let (st, t) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/agent"),
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{t}");
    wait_agent_view(app, s, cluster).await;
}

/// Waits until the cluster's agent is connected and its view has nodes.
pub async fn wait_agent_view(app: &TestApp, s: &Session, cluster: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, a) = app
            .json(
                Method::GET,
                &format!("/api/clusters/{cluster}/agent"),
                Some(&s.access),
                None,
            )
            .await;
        if a["status"] == "connected" && a["nodes"].as_i64().unwrap_or(0) > 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the simulated agent did not connect: {a}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

async fn optimize(app: &TestApp, s: &Session, cluster: &str, body: Value) -> Value {
    let (st, job) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/optimize"),
            Some(&s.access),
            Some(body),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    assert!(
        job["status"] == "queued" || job["status"] == "running",
        "{job}"
    );
    wait_job(
        app,
        &s.access,
        &format!("/api/jobs/{}", job["id"].as_str().expect("job id")),
    )
    .await
}

async fn running_ids(sim: &SimConnector) -> Vec<String> {
    let cloud = sim.world(ACCOUNT, "us-east-1").expect("world");
    let mut ids: Vec<String> = cloud
        .describe_instances()
        .await
        .expect("describe")
        .into_iter()
        .filter(|i| i.state == InstanceState::Running)
        .map(|i| i.id)
        .collect();
    ids.sort();
    ids
}

/// What the cluster's running nodes cost per hour right now, priced by the cloud.
async fn cluster_hourly_cost(sim: &SimConnector, cluster: &str) -> f64 {
    let cloud = sim.world(ACCOUNT, "us-east-1").expect("world");
    let nodes: Vec<spot_cloud::Instance> = cloud
        .describe_instances()
        .await
        .expect("describe")
        .into_iter()
        .filter(|i| i.state == InstanceState::Running && i.cluster.as_deref() == Some(cluster))
        .collect();
    let types: Vec<String> = nodes.iter().map(|i| i.instance_type.clone()).collect();
    let od: std::collections::HashMap<String, f64> = cloud
        .on_demand_prices(&types)
        .await
        .expect("od")
        .into_iter()
        .map(|p| (p.instance_type, p.usd_per_hour))
        .collect();
    let spot = spot_actors::discovery::latest_spot_prices(cloud.as_ref(), &types)
        .await
        .expect("spot");
    nodes
        .iter()
        .map(|i| match i.lifecycle {
            spot_cloud::Lifecycle::Spot => spot
                .get(&(i.instance_type.clone(), i.az.clone()))
                .copied()
                .unwrap_or(0.0),
            spot_cloud::Lifecycle::OnDemand => od.get(&i.instance_type).copied().unwrap_or(0.0),
        })
        .sum()
}

async fn optimize_now_plans_and_executes_through_the_cloud(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, name) = setup(&app).await;
    let before = running_ids(&sim).await;
    let cost_before = cluster_hourly_cost(&sim, &name).await;
    let (_, agent) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/agent"),
            Some(&s.access),
            None,
        )
        .await;

    let job = optimize(&app, &s, &cluster, json!({})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let plan = &job["plan"];
    assert_eq!(plan["version"], 1, "{plan}");
    let actions = plan["actions"].as_array().expect("actions");
    assert!(!actions.is_empty(), "the demo cluster has savings: {plan}");
    // The planner explains every node of the agent's view, and every node action is one
    // of its decisions.
    let decisions = plan["nodes"].as_array().expect("node decisions");
    assert_eq!(
        decisions.len() as i64,
        agent["nodes"].as_i64().unwrap_or(-1),
        "one decision per node: {plan}"
    );
    assert!(
        decisions
            .iter()
            .all(|d| d["decision"].is_string() && !d["reason"].as_str().unwrap_or("").is_empty()),
        "{plan}"
    );
    for a in actions
        .iter()
        .filter(|a| !a["kind"].as_str().unwrap_or("").starts_with("rightsize"))
    {
        let d = decisions
            .iter()
            .find(|d| d["node"] == a["target"])
            .expect("a decision for the action's node");
        assert_ne!(d["decision"], "kept", "{a} {d}");
    }
    assert!(
        plan["disruption_budget"].as_u64().unwrap_or(0) >= 1,
        "{plan}"
    );
    assert!(
        plan["costs"]["planned_hourly"].as_f64().unwrap_or(f64::MAX)
            < plan["costs"]["current_hourly"].as_f64().unwrap_or(0.0),
        "{plan}"
    );
    let executed = job["result"]["executed"].as_array().expect("executed");
    assert_eq!(executed.len(), actions.len(), "{job}");
    let applied: Vec<&Value> = executed
        .iter()
        .filter(|a| a["status"] == "applied")
        .collect();
    assert!(!applied.is_empty(), "{job}");
    assert!(
        job["result"]["realised_monthly_savings"]
            .as_f64()
            .unwrap_or(0.0)
            > 0.0,
        "{job}"
    );
    assert_eq!(
        job["result"]["source"], "agent",
        "planned from the agent's view: {job}"
    );
    // Every node is retired safely, in order: (launch →) cordon → Ready → drain (evictions
    // through the Eviction API) → delete the Node → terminate.
    for a in &applied {
        let steps: Vec<&str> = a["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .filter_map(|s| s["step"].as_str())
            .collect();
        let expected: &[&str] = if a["launched"].is_array() {
            &[
                "launch",
                "cordon",
                "ready",
                "drain",
                "delete_node",
                "terminate",
            ]
        } else {
            &["drain", "delete_node", "terminate"]
        };
        assert_eq!(steps, expected, "{a}");
        let drain = a["steps"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["step"] == "drain"))
            .expect("drain");
        assert_eq!(drain["ok"], true, "{drain}");
        let ev = drain["evictions"].as_array().expect("evictions");
        assert!(
            ev.iter()
                .all(|e| e["outcome"] == "evicted" || e["outcome"] == "skipped_daemonset"),
            "{drain}"
        );
    }
    // The agent's commands are listed on the cluster.
    let (_, cmds) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/agent/commands"),
            Some(&s.access),
            None,
        )
        .await;
    let cmds = cmds["items"].as_array().cloned().unwrap_or_default();
    assert!(
        cmds.iter()
            .any(|c| c["kind"] == "drain" && c["status"] == "succeeded"),
        "{cmds:?}"
    );
    // Rightsizing recommendations from usage history are in the plan; they are reported
    // (recommend-only) and skipped.
    let rightsized: Vec<&Value> = executed
        .iter()
        .filter(|a| a["kind"].as_str().unwrap_or("").starts_with("rightsize"))
        .collect();
    assert!(!rightsized.is_empty(), "{plan}");
    assert!(
        rightsized.iter().all(|a| a["status"] == "skipped"
            && a["reason"].as_str().unwrap_or("").contains("recommend")),
        "{job}"
    );

    // The cloud changed: every terminated node is gone (no Auto Scaling group refilled it),
    // every launched node runs, and the cluster costs less.
    let after = running_ids(&sim).await;
    let cost_after = cluster_hourly_cost(&sim, &name).await;
    assert!(
        cost_after < cost_before - 0.01,
        "cluster cost {cost_before:.3} → {cost_after:.3} $/h: {job}"
    );
    for a in &applied {
        if let Some(t) = a["terminated"].as_str() {
            assert!(
                before.contains(&t.to_string()) && !after.contains(&t.to_string()),
                "{t} still running"
            );
        }
        for l in a["launched"].as_array().cloned().unwrap_or_default() {
            assert!(
                after.contains(&l.as_str().unwrap_or("").to_string()),
                "{l} not running"
            );
        }
    }

    // Each action is audited with actor `system` and the job id.
    let (_, audit) = app
        .json(
            Method::GET,
            "/api/audit-logs?action=optimize.action&limit=200",
            Some(&s.access),
            None,
        )
        .await;
    let items = audit["items"].as_array().expect("items");
    assert_eq!(items.len(), actions.len(), "{audit}");
    assert!(
        items
            .iter()
            .all(|e| e["actor"]["kind"] == "system" && e["request_id"] == job["id"]),
        "{audit}"
    );
    // The realised savings are recorded for the dashboard.
    let (_, jobs) = app
        .json(Method::GET, "/api/jobs", Some(&s.access), None)
        .await;
    assert_eq!(jobs["items"][0]["id"], job["id"]);

    // A second delivery of the same job does nothing (claimed rows are skipped).
    let job_id = job["id"].as_str().expect("id");
    app.state.jobs.enqueue_id(job_id).await.expect("re-enqueue");
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let (_, again) = app
        .json(
            Method::GET,
            &format!("/api/jobs/{job_id}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(again["finished_at"], job["finished_at"]);
    assert_eq!(
        running_ids(&sim).await,
        after,
        "redelivery changed the cloud"
    );
}
both!(optimize_now_plans_and_executes_through_the_cloud);

async fn dry_run_and_safe_mode_touch_nothing(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, _) = setup(&app).await;
    let before = running_ids(&sim).await;
    // One optimization of a cluster at a time.
    let (st, first) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/optimize"),
            Some(&s.access),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{first}");
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/optimize"),
            Some(&s.access),
            Some(json!({"dry_run": true})),
        )
        .await;
    // (The first is still queued: workers poll every 250 ms and planning takes longer.)
    let e = assert_error(st, &e, StatusCode::CONFLICT);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("already"),
        "{e}"
    );
    let job = wait_job(
        &app,
        &s.access,
        &format!("/api/jobs/{}", first["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["mode"], "dry_run");
    let executed = job["result"]["executed"].as_array().expect("executed");
    assert!(!executed.is_empty(), "{job}");
    assert!(
        executed
            .iter()
            .all(|a| a["status"] == "would_execute" || a["status"] == "skipped"),
        "{job}"
    );
    assert!(
        job["message"]
            .as_str()
            .unwrap_or("")
            .contains("would execute"),
        "{job}"
    );
    assert_eq!(running_ids(&sim).await, before);

    // The cluster policy's dry run does the same.
    let (st, _) = app.json(Method::PUT, &format!("/api/clusters/{cluster}/policy"), Some(&s.access), Some(json!({"aggressiveness": "aggressive", "stabilization_window_secs": 0, "dry_run": true}))).await;
    assert_eq!(st, StatusCode::OK);
    let job = optimize(&app, &s, &cluster, json!({})).await;
    assert_eq!(job["result"]["mode"], "dry_run", "{job}");
    assert_eq!(running_ids(&sim).await, before);
}
both!(dry_run_and_safe_mode_touch_nothing);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_safe_mode_only_plans() {
    let sim = Arc::new(SimConnector::new(42));
    let mut cfg = test_config();
    cfg.safe_mode = true;
    let app = TestApp::start_with_connector_config(Backend::Sqlite, sim.clone(), cfg).await;
    let (s, cluster, _) = setup(&app).await;
    let before = running_ids(&sim).await;
    let job = optimize(&app, &s, &cluster, json!({})).await;
    assert_eq!(job["result"]["mode"], "dry_run", "{job}");
    assert_eq!(running_ids(&sim).await, before);
}

async fn a_failure_mid_plan_says_what_ran(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, _) = setup(&app).await;
    let world = sim.world(ACCOUNT, "us-east-1").expect("world");
    world.inject_fault_on(
        SimMethod::TerminateInstances,
        Fault::Fail {
            calls: 1,
            error: CloudError::Other("injected terminate failure".into()),
        },
    );
    let before = running_ids(&sim).await;
    let job = optimize(&app, &s, &cluster, json!({})).await;
    assert_eq!(job["status"], "failed", "{job}");
    // Rightsizing actions come first (stability first) and are skipped without the agent;
    // the first action that touches the cloud is the one that fails.
    let actions = job["plan"]["actions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let first_cloud = actions
        .iter()
        .position(|a| !a["kind"].as_str().unwrap_or("").starts_with("rightsize"))
        .expect("a node action");
    let msg = job["message"].as_str().unwrap_or("");
    assert!(
        msg.contains(&format!("action {} of", first_cloud + 1))
            && msg.contains("injected terminate failure"),
        "{msg}"
    );
    let r = &job["result"];
    let executed = r["executed"].as_array().cloned().unwrap_or_default();
    assert_eq!(executed.len(), first_cloud, "{r}");
    assert!(executed.iter().all(|a| a["status"] == "skipped"), "{r}");
    assert!(
        r["failed"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("injected"),
        "{r}"
    );
    assert_eq!(
        r["not_run"].as_array().map(Vec::len),
        Some(actions.len() - first_cloud - 1),
        "{r}"
    );
    // Known state: the node that failed to terminate still runs; a replacement launched
    // before the failure is reported in the failure.
    let after = running_ids(&sim).await;
    let target_terminated = r["failed"]["instance_id"]
        .as_str()
        .or(r["failed"]["terminated"].as_str());
    if let Some(t) = target_terminated {
        assert!(after.contains(&t.to_string()));
    }
    for l in r["failed"]["launched"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        assert!(after.contains(&l.as_str().unwrap_or("").to_string()));
    }
    assert!(
        before.iter().all(|id| after.contains(id)),
        "nothing was terminated"
    );
    let (_, audit) = app
        .json(
            Method::GET,
            "/api/audit-logs?action=optimize.action&outcome=failed",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
}
both!(a_failure_mid_plan_says_what_ran);

async fn optimize_input_is_validated_and_tenant_scoped(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, _) = setup(&app).await;
    let (st, e) = app
        .json(
            Method::POST,
            "/api/clusters/nope/optimize",
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/optimize"),
            Some(&s.access),
            Some(json!({"dry_run": "yes"})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "dry_run", "{e}");
    let (st, e) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            Some(json!({"aggressiveness": "wild"})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "aggressiveness", "{e}");
    let (st, e) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            Some(json!({"rightsize_headroom": 0.9})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "rightsize_headroom", "{e}");
    let (st, e) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            Some(json!({"template": {"capacity_type": "cheap"}})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        e["error"]["field"]
            .as_str()
            .unwrap_or("")
            .starts_with("template"),
        "{e}"
    );

    // Fields left out (also inside the template) take their defaults.
    let (st, p) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            Some(json!({"template": {"capacity_type": "on_demand"}})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["template"]["capacity_type"], "on_demand");
    assert_eq!(p["template"]["strategy"], "capacity_optimized");
    assert_eq!(p["aggressiveness"], "balanced");
    let (_, got) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(got, p);
    let viewer = app.add_member(&s, "viewer").await;
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/optimize"),
            Some(&viewer.access),
            Some(json!({})),
        )
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let other = app.signup("Someone Else").await;
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/optimize"),
            Some(&other.access),
            Some(json!({})),
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let (st, e) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&other.access),
            None,
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let (_, jobs) = app
        .json(Method::GET, "/api/jobs", Some(&other.access), None)
        .await;
    assert_eq!(jobs["items"].as_array().map(Vec::len), Some(0));
}
both!(optimize_input_is_validated_and_tenant_scoped);

async fn pending_pods_get_a_launch_decision_without_a_discovery(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let s = app.signup("Reactive").await;
    let account = link_sim(&app, &s, ACCOUNT, "Prod").await;
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    let name = clusters["items"][0]["name"]
        .as_str()
        .expect("name")
        .to_string();
    let mut events = app.state.actors.bus.subscribe();
    let pods: Vec<spot_engine::pack::Pod> = (0..12)
        .map(|i| spot_engine::pack::Pod {
            id: format!("web-{i}"),
            cpu_millis: 500,
            memory_mib: 1024,
            gpus: 0,
            capacity: spot_engine::pack::CapacityReq::Any,
            arch: None,
            anti_affinity_group: None,
            az_spread_group: None,
        })
        .collect();
    // The market reaches cluster actors right after discovery; retry briefly until it has.
    let mut decision = Err(String::new());
    for _ in 0..50 {
        decision = app
            .state
            .actors
            .pending_pods(&account, &name, pods.clone())
            .await
            .expect("actor answers");
        if decision.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let d = decision.expect("a decision");
    assert_eq!(d.trigger, "pending_pods");
    let placed: usize = d.nodes.iter().map(|n| n.pods.len()).sum();
    assert_eq!(placed, 12, "{d:?}");
    // The planner's risk-weighted objective is never below its LP lower bound.
    assert!(
        d.objective_hourly.unwrap_or(f64::MAX) >= d.lower_bound_hourly.unwrap_or(0.0) - 1e-9,
        "{d:?}"
    );
    assert!(d.unschedulable.is_empty(), "{d:?}");
    assert_eq!(d.model, "shipped:risk-v1");
    // No AVOID or flagged pool is chosen.
    assert!(d.nodes.iter().all(|n| n.hourly_price > 0.0));
    let ev = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            if let Ok(e) = events.recv().await {
                if e.kind == "decision.launch" {
                    return e;
                }
            }
        }
    })
    .await
    .expect("decision event published");
    assert_eq!(ev.org_id.as_deref(), Some(s.org_id.as_str()));
    assert!(
        d.nodes
            .iter()
            .any(|n| n.lifecycle == spot_engine::catalog::Lifecycle::Spot),
        "{d:?}"
    );
    // The cluster's stored policy reaches its actor: an on-demand-only template.
    let cid = clusters["items"][0]["id"].as_str().expect("id").to_string();
    let (st, _) = app
        .json(Method::PUT, &format!("/api/clusters/{cid}/policy"), Some(&s.access), Some(json!({"template": {"allowed_families": [], "architectures": [], "excluded_sizes": [], "capacity_type": "on_demand", "strategy": "capacity_optimized", "allow_burstable": false, "on_demand_fallback": true}})))
        .await;
    assert_eq!(st, StatusCode::OK);
    let d = app
        .state
        .actors
        .pending_pods(&account, &name, pods.clone())
        .await
        .expect("actor answers")
        .expect("a decision");
    assert!(
        d.nodes
            .iter()
            .all(|n| n.lifecycle == spot_engine::catalog::Lifecycle::OnDemand),
        "{d:?}"
    );
    // Unknown cluster: the actor system says so instead of hanging.
    assert!(app
        .state
        .actors
        .pending_pods(&account, "no-such-cluster", pods)
        .await
        .is_err());
}
both!(pending_pods_get_a_launch_decision_without_a_discovery);

async fn exhausted_spot_capacity_falls_back_to_on_demand(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, _) = setup(&app).await;
    // Every spot launch of this job is refused for capacity; on-demand ones are not.
    let world = sim.world(ACCOUNT, "us-east-1").expect("world");
    world.inject_fault_on(
        SimMethod::LaunchCapacity,
        Fault::Fail {
            calls: 1,
            error: CloudError::InsufficientCapacity {
                instance_type: "any".into(),
                az: "any".into(),
            },
        },
    );
    let job = optimize(&app, &s, &cluster, json!({})).await;
    let plan_launches_spot = job["plan"]["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .any(|a| a["destination"]["lifecycle"] == "spot");
    assert!(
        plan_launches_spot,
        "the demo plan buys spot capacity: {}",
        job["plan"]
    );
    assert_eq!(job["status"], "succeeded", "{job}");
    let fell_back: Vec<&Value> = job["result"]["executed"]
        .as_array()
        .expect("executed")
        .iter()
        .filter(|a| a["fallback"].is_string())
        .collect();
    assert_eq!(fell_back.len(), 1, "{job}");
    assert_eq!(fell_back[0]["lifecycle"], "on_demand", "{job}");
    assert_eq!(fell_back[0]["status"], "applied");
}
both!(exhausted_spot_capacity_falls_back_to_on_demand);

async fn a_real_run_needs_a_connected_agent(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let s = app.signup("No agent").await;
    link_sim(&app, &s, ACCOUNT, "Prod").await;
    let (_, clusters) = app
        .json(
            Method::GET,
            "/api/clusters?sort=-cost",
            Some(&s.access),
            None,
        )
        .await;
    let cluster = clusters["items"][0]["id"].as_str().expect("id").to_string();
    let before = running_ids(&sim).await;
    let job = optimize(&app, &s, &cluster, json!({})).await;
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["message"]
            .as_str()
            .unwrap_or("")
            .contains("no connected agent"),
        "{job}"
    );
    // Nothing reads pods through the cloud: without the agent's view even a dry run has
    // nothing to plan from, and says how to get one.
    let dry = optimize(&app, &s, &cluster, json!({"dry_run": true})).await;
    assert_eq!(dry["status"], "failed", "{dry}");
    let msg = dry["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("no cluster view") && msg.contains("install the agent"),
        "{dry}"
    );
    assert_eq!(running_ids(&sim).await, before);
    // Once the agent has reported, the dry run plans from its view.
    install_agent(&app, &s, &cluster).await;
    let dry = optimize(&app, &s, &cluster, json!({"dry_run": true})).await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    assert_eq!(dry["result"]["source"], "agent", "{dry}");
    assert_eq!(running_ids(&sim).await, before);
}
both!(a_real_run_needs_a_connected_agent);

async fn a_drain_that_times_out_keeps_the_node_and_reports_it(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, name) = setup(&app).await;
    let (st, p) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            Some(json!({"aggressiveness": "aggressive", "stabilization_window_secs": 0, "drain_timeout_secs": 5})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let world = sim.world(ACCOUNT, "us-east-1").expect("world");
    let view = world.kube_view(&name).expect("view");
    let namespaces: std::collections::BTreeSet<String> = view
        .pods
        .iter()
        .map(|p| p.pod.namespace.clone())
        .filter(|n| n != "kube-system")
        .collect();
    let (st, job) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/optimize"),
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let path = format!("/api/jobs/{}", job["id"].as_str().expect("job id"));
    // Once the plan is made, a budget that allows no disruption at all appears in every
    // application namespace (the classic misconfigured PDB, tightened after planning):
    // every eviction answers 429. (A PDB present at planning time keeps its nodes out of
    // the plan.)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    loop {
        let (_, j) = app.json(Method::GET, &path, Some(&s.access), None).await;
        if j["plan"].is_object() {
            break;
        }
        assert!(
            j["status"] != "failed" && j["status"] != "succeeded",
            "finished before its plan was seen: {j}"
        );
        assert!(std::time::Instant::now() < deadline, "no plan: {j}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for ns in &namespaces {
        world
            .create_pdb(
                &name,
                spot_cloud::sim::kube::CustomPdb {
                    namespace: ns.clone(),
                    name: "freeze".into(),
                    match_labels: Default::default(),
                    min_available: None,
                },
            )
            .expect("pdb");
    }
    let job = wait_job(&app, &s.access, &path).await;
    assert_eq!(job["status"], "failed", "{job}");
    let failed = &job["result"]["failed"];
    assert_eq!(failed["step"], "drain", "{job}");
    let err = failed["error"].as_str().unwrap_or("");
    assert!(
        err.contains("uncordoned") && err.contains("timed out"),
        "{err}"
    );
    let steps: Vec<&str> = failed["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    assert_eq!(steps.last(), Some(&"uncordon"), "{failed}");
    let drain = failed["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step"] == "drain"))
        .expect("drain step");
    assert!(
        drain["evictions"]
            .as_array()
            .expect("evictions")
            .iter()
            .any(|e| e["outcome"] == "blocked_by_pdb" && e["retries"].as_u64().unwrap_or(0) >= 1),
        "{drain}"
    );
    // The node is kept: running, and schedulable again.
    let node = failed["target"].as_str().expect("target");
    let after = world.kube_view(&name).expect("view");
    let n = after
        .nodes
        .iter()
        .find(|n| n.name == node)
        .expect("node kept");
    assert!(!n.unschedulable, "uncordoned");
    let instance = view
        .nodes
        .iter()
        .find(|n| n.name == node)
        .map(|n| n.instance_id.clone())
        .expect("instance of the kept node");
    assert!(
        running_ids(&sim).await.contains(&instance),
        "the node whose drain timed out was not terminated"
    );
}
both!(a_drain_that_times_out_keeps_the_node_and_reports_it);

async fn an_interruption_warning_drains_the_node_through_the_agent(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, name) = setup(&app).await;
    let account_id = spot_models::inventory::cluster(&app.db, &s.org_id, &cluster)
        .await
        .expect("db")
        .expect("cluster")
        .account_id;
    let world = sim.world(ACCOUNT, "us-east-1").expect("world");
    let view = world.kube_view(&name).expect("view");
    let node = view.nodes[0].clone();
    let st = &app.state;
    let deps = spot_actors::system::Deps {
        db: st.db.clone(),
        connector: st.connector.clone(),
        keyring: st.keyring.clone(),
        bus: st.actors.bus.clone(),
        hive: st.hive.clone(),
        risk: st.risk.clone(),
        interval: std::time::Duration::from_secs(300),
        replica_id: "test".into(),
        lease: std::time::Duration::from_secs(30),
    };
    let org = s.org_id.clone();
    let first =
        spot_actors::signals::drain_interrupted(&deps, &org, &account_id, &name, &node.instance_id)
            .await
            .expect("a drain is queued for a managed node");
    // A repeated warning for the same instance queues nothing new.
    let again =
        spot_actors::signals::drain_interrupted(&deps, &org, &account_id, &name, &node.instance_id)
            .await;
    assert_eq!(again.as_deref(), Some(first.as_str()));
    // The simulated agent cordons and drains it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, cmds) = app
            .json(
                Method::GET,
                &format!("/api/clusters/{cluster}/agent/commands"),
                Some(&s.access),
                None,
            )
            .await;
        let done = cmds["items"].as_array().into_iter().flatten().any(|c| {
            c["id"] == first.as_str() && (c["status"] == "succeeded" || c["status"] == "failed")
        });
        if done {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "drain not finished: {cmds}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let after = world.kube_view(&name).expect("view");
    let n = after
        .nodes
        .iter()
        .find(|n| n.name == node.name)
        .expect("node");
    assert!(n.unschedulable, "the interrupted node is cordoned");
    let (_, audit) = app
        .json(
            Method::GET,
            "/api/audit-logs?action=agent.drain_on_interruption",
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(audit["items"].as_array().map(Vec::len), Some(1), "{audit}");
}
both!(an_interruption_warning_drains_the_node_through_the_agent);

/// EC2 gives two minutes: the account actor reads spot signals every 15 s between
/// discoveries (every 5 minutes here), so a notice drains the node through the agent
/// without waiting for the next discovery.
async fn a_spot_interruption_notice_drains_the_node_between_discoveries(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, _cluster, name) = setup(&app).await;
    let world = sim.world(ACCOUNT, "us-east-1").expect("world");
    let view = world.kube_view(&name).expect("view");
    let node = view
        .nodes
        .iter()
        .find(|n| n.lifecycle == spot_cloud::Lifecycle::Spot && n.ready && !n.unschedulable)
        .expect("the demo cluster runs spot nodes")
        .clone();
    // Let the first discovery finish (it reads the instances the signal tick maps).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    world
        .send_interruption_notice(&node.instance_id)
        .expect("a running spot instance");
    assert!(world.send_interruption_notice("i-nope").is_err());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, audit) = app
            .json(
                Method::GET,
                "/api/audit-logs?action=agent.drain_on_interruption",
                Some(&s.access),
                None,
            )
            .await;
        let cordoned = world
            .kube_view(&name)
            .expect("view")
            .nodes
            .iter()
            .any(|n| n.name == node.name && n.unschedulable);
        if cordoned && audit["items"].as_array().map(Vec::len) == Some(1) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the interrupted node was not drained within a minute: {audit}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}
both!(a_spot_interruption_notice_drains_the_node_between_discoveries);

/// "Why not consolidated": a plan that changes nothing still says why for every node; the
/// disruption budget caps how many nodes one plan touches; bad budgets are refused.
async fn the_plan_says_why_each_node_is_kept_and_honours_the_budget(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, _name) = setup(&app).await;
    let put = |body: Value| {
        let (app, s, cluster) = (&app, &s, &cluster);
        async move {
            app.json(
                Method::PUT,
                &format!("/api/clusters/{cluster}/policy"),
                Some(&s.access),
                Some(body),
            )
            .await
        }
    };
    // Every node is inside a ten-year stabilization window: nothing moves, each says why.
    let (st, p) =
        put(json!({"aggressiveness": "aggressive", "stabilization_window_secs": 315_360_000}))
            .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let job = optimize(&app, &s, &cluster, json!({"dry_run": true})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let plan = &job["plan"];
    let decisions = plan["nodes"].as_array().expect("node decisions");
    assert!(!decisions.is_empty(), "{plan}");
    for d in decisions {
        assert_eq!(d["decision"], "kept", "{d}");
        assert!(d["why"].is_string(), "{d}");
        assert!(!d["reason"].as_str().unwrap_or("").is_empty(), "{d}");
    }
    assert!(
        decisions.iter().any(|d| d["why"] == "stabilization_window"
            && d["reason"]
                .as_str()
                .unwrap_or("")
                .contains("stabilization window")),
        "{plan}"
    );
    let node_actions = |plan: &Value| {
        plan["actions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|a| !a["kind"].as_str().unwrap_or("").starts_with("rightsize"))
                    .count()
            })
            .unwrap_or(0)
    };
    assert_eq!(node_actions(plan), 0, "{plan}");

    // One node per wave and one wave: at most one node changes; the others that would
    // have are kept for the budget.
    let (st, p) = put(json!({
        "aggressiveness": "aggressive",
        "stabilization_window_secs": 0,
        "disruption_budget": {"max_nodes": 1, "max_waves": 1}
    }))
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["disruption_budget"]["max_nodes"], 1, "{p}");
    assert_eq!(p["disruption_budget"]["max_percent"], 10.0, "{p}");
    let job = optimize(&app, &s, &cluster, json!({"dry_run": true})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let plan = &job["plan"];
    assert!(node_actions(plan) <= 1, "{plan}");
    assert_eq!(plan["disruption_budget"], 1, "{plan}");
    let changed = plan["nodes"]
        .as_array()
        .map(|n| n.iter().filter(|d| d["decision"] != "kept").count())
        .unwrap_or(0);
    assert!(changed <= 1, "{plan}");

    // Invalid budgets and minimums are refused, naming the field.
    for (body, field) in [
        (
            json!({"disruption_budget": {"max_percent": 0}}),
            "disruption_budget.max_percent",
        ),
        (
            json!({"disruption_budget": {"max_waves": 0}}),
            "disruption_budget.max_waves",
        ),
        (
            json!({"disruption_budget": {"surge": 2}}),
            "disruption_budget",
        ),
        (json!({"risk_premium": 11}), "risk_premium"),
        (
            json!({"on_demand_minimums": [{"namespace": "payments"}]}),
            "on_demand_minimums",
        ),
        (
            json!({"on_demand_minimums": [{"percent": 150}]}),
            "on_demand_minimums.percent",
        ),
    ] {
        let (st, e) = put(body.clone()).await;
        let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            e["error"]["field"]
                .as_str()
                .unwrap_or("")
                .starts_with(field),
            "{body} → {e}"
        );
    }
    // A valid on-demand minimum is stored and planned with.
    let (st, p) = put(json!({
        "aggressiveness": "aggressive",
        "stabilization_window_secs": 0,
        "on_demand_minimums": [{"namespace": "default", "percent": 50}]
    }))
    .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["on_demand_minimums"][0]["percent"], 50.0, "{p}");
    let job = optimize(&app, &s, &cluster, json!({"dry_run": true})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
}
both!(the_plan_says_why_each_node_is_kept_and_honours_the_budget);

/// `POST /api/plan/what-if` answers the documented example with the same report as the
/// CLI, and names the field of bad input.
async fn what_if_plans_a_documented_workload_over_http(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("What if").await;
    let example: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/engine/whatif/example.json"
        ))
        .expect("example"),
    )
    .expect("json");
    let (st, r) = app
        .json(
            Method::POST,
            "/api/plan/what-if",
            None,
            Some(example.clone()),
        )
        .await;
    assert_error(st, &r, StatusCode::UNAUTHORIZED);
    let (st, r) = app
        .json(
            Method::POST,
            "/api/plan/what-if",
            Some(&s.access),
            Some(example.clone()),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/engine/whatif/example.golden.json"
        ))
        .expect("golden"),
    )
    .expect("json");
    for k in [
        "strategy",
        "nodes",
        "cost_hourly",
        "lower_bound_hourly",
        "ffd_baseline_hourly",
        "node_reasons",
        "pod_reasons",
        "waves",
    ] {
        assert_eq!(r[k], golden[k], "{k}: {r}");
    }
    assert!(r["solve_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{r}");
    let mut bad = example.clone();
    bad["instance_types"][0]["vcpu"] = json!("two");
    let (st, e) = app
        .json(
            Method::POST,
            "/api/plan/what-if",
            Some(&s.access),
            Some(bad),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "instance_types[0].vcpu", "{e}");
    let mut huge = example;
    huge["pods"] =
        json!([{"name": "web", "cpu_millis": 100, "memory_mib": 128, "replicas": 50000}]);
    let (st, e) = app
        .json(
            Method::POST,
            "/api/plan/what-if",
            Some(&s.access),
            Some(huge),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "pods", "{e}");
}
both!(what_if_plans_a_documented_workload_over_http);

/// The estimated impact of a proposed policy is the planner's plan on the cluster's
/// current snapshot: a money difference and node-by-node changes, never stored.
async fn a_policys_estimated_impact_comes_from_the_planner(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, _name) = setup(&app).await;
    let impact = |body: Value| {
        let (app, s, cluster) = (&app, &s, &cluster);
        async move {
            app.json(
                Method::POST,
                &format!("/api/clusters/{cluster}/policy/impact"),
                Some(&s.access),
                Some(body),
            )
            .await
        }
    };
    let (st, i) =
        impact(json!({"aggressiveness": "aggressive", "stabilization_window_secs": 0})).await;
    assert_eq!(st, StatusCode::OK, "{i}");
    let current = i["current_monthly"].as_f64().expect("current");
    let planned = i["planned_monthly"].as_f64().expect("planned");
    assert!(current > 0.0 && planned < current, "{i}");
    assert!((i["monthly_difference"].as_f64().unwrap_or(0.0) - (planned - current)).abs() < 1e-6);
    assert!(i["nodes_changed"].as_u64().unwrap_or(0) >= 1, "{i}");
    let nodes = i["nodes"].as_array().expect("nodes");
    assert_eq!(
        nodes.len() as u64,
        i["nodes_changed"].as_u64().unwrap_or(0) + i["nodes_kept"].as_u64().unwrap_or(0),
        "{i}"
    );
    assert_eq!(i["source"], "agent", "{i}");
    // A policy that keeps every node changes nothing and costs the same.
    let (st, keep) = impact(json!({"stabilization_window_secs": 315_360_000})).await;
    assert_eq!(st, StatusCode::OK, "{keep}");
    assert_eq!(keep["nodes_changed"], 0, "{keep}");
    assert!(
        keep["monthly_difference"].as_f64().unwrap_or(1.0).abs() < 1e-9,
        "{keep}"
    );
    // Bad input names the field; nothing was stored.
    let (st, e) = impact(json!({"risk_premium": 11})).await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(e["error"]["field"], "risk_premium", "{e}");
    let (_, p) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(p["stabilization_window_secs"], 0, "{p}");
    // Another organization's cluster does not exist for this caller.
    let other = app.signup("Elsewhere").await;
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/policy/impact"),
            Some(&other.access),
            Some(json!({})),
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
}
both!(a_policys_estimated_impact_comes_from_the_planner);

/// The policy's autoscaling toggle and multi-AZ spread are planner semantics: with
/// autoscaling off the estimated plan replaces no node (nothing is bought) and the cluster
/// actor launches nothing for pending pods; multi-AZ spread changes the plan. Both are
/// partial-PATCHable, typed (422 naming the field) and reach the actor at once.
async fn autoscaling_and_multi_az_spread_drive_the_planner(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, name) = setup(&app).await;
    let impact = |body: Value| {
        let (app, s, cluster) = (&app, &s, &cluster);
        async move {
            let (st, i) = app
                .json(
                    Method::POST,
                    &format!("/api/clusters/{cluster}/policy/impact"),
                    Some(&s.access),
                    Some(body),
                )
                .await;
            assert_eq!(st, StatusCode::OK, "{i}");
            i
        }
    };
    let decisions = |i: &Value| -> Vec<String> {
        i["nodes"]
            .as_array()
            .map(|n| {
                n.iter()
                    .map(|d| format!("{}={}", d["node"], d["decision"]))
                    .collect()
            })
            .unwrap_or_default()
    };
    let base = json!({"aggressiveness": "aggressive", "stabilization_window_secs": 0,
        "disruption_budget": {"max_percent": 100}});
    let on = impact(base.clone()).await;
    assert!(
        on["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .any(|d| d["decision"] == "replaced"),
        "the demo cluster replaces nodes with autoscaling on: {on}"
    );
    let mut off_body = base.clone();
    off_body["autoscaling"] = json!(false);
    let off = impact(off_body).await;
    assert!(
        off["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .all(|d| d["decision"] != "replaced"),
        "autoscaling off buys no node: {off}"
    );
    assert_ne!(off["strategy"], "target", "{off}");
    assert!(
        off["planned_monthly"].as_f64().unwrap_or(0.0)
            <= off["current_monthly"].as_f64().unwrap_or(0.0) + 1e-6,
        "{off}"
    );
    assert_ne!(decisions(&on), decisions(&off));
    let mut spread_body = base.clone();
    spread_body["multi_az_spread"] = json!(true);
    let spread = impact(spread_body).await;
    assert!(
        decisions(&spread) != decisions(&on)
            || (spread["planned_monthly"].as_f64().unwrap_or(0.0)
                - on["planned_monthly"].as_f64().unwrap_or(0.0))
            .abs()
                > 1e-6,
        "multi-AZ spread changes the plan: {spread} vs {on}"
    );

    // Partial PATCH keeps what it does not name; bad types name the field.
    let path = format!("/api/clusters/{cluster}/policy");
    let (st, p) = app
        .json(
            Method::PATCH,
            &path,
            Some(&s.access),
            Some(json!({"multi_az_spread": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["multi_az_spread"], true);
    assert_eq!(p["autoscaling"], true);
    assert_eq!(p["aggressiveness"], "aggressive");
    for (body, field) in [
        (json!({"autoscaling": "no"}), "autoscaling"),
        (json!({"multi_az_spread": 1}), "multi_az_spread"),
        (json!({"rightsize_mode": "always"}), "rightsize_mode"),
    ] {
        let (st, e) = app
            .json(Method::PATCH, &path, Some(&s.access), Some(body.clone()))
            .await;
        let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["error"]["field"], field, "{body} -> {e}");
    }
    let (st, p) = app
        .json(
            Method::PATCH,
            &path,
            Some(&s.access),
            Some(json!({"autoscaling": false})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["autoscaling"], false);
    assert_eq!(p["multi_az_spread"], true);

    // The cluster actor follows at once: pending pods get no node, each says why.
    let (_, c) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}"),
            Some(&s.access),
            None,
        )
        .await;
    let account = c["cluster"]["account_id"]
        .as_str()
        .or(c["account_id"].as_str())
        .expect("account id")
        .to_string();
    let pods: Vec<spot_engine::pack::Pod> = (0..4)
        .map(|i| spot_engine::pack::Pod::simple(format!("web/p-{i}"), 500, 1024))
        .collect();
    let mut d = None;
    for _ in 0..50 {
        if let Ok(Ok(x)) = app
            .state
            .actors
            .pending_pods(&account, &name, pods.clone())
            .await
        {
            if x.nodes.is_empty() {
                d = Some(x);
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let d = d.expect("a decision launching nothing");
    assert_eq!(d.unschedulable.len(), 4, "{d:?}");
    assert!(
        d.unschedulable
            .iter()
            .all(|(_, why)| why.contains("autoscaling is off")),
        "{d:?}"
    );
    // On again: nodes are launched.
    let (st, _) = app
        .json(
            Method::PATCH,
            &path,
            Some(&s.access),
            Some(json!({"autoscaling": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let mut launched = false;
    for _ in 0..50 {
        if let Ok(Ok(x)) = app
            .state
            .actors
            .pending_pods(&account, &name, pods.clone())
            .await
        {
            if !x.nodes.is_empty() {
                launched = true;
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(launched, "autoscaling back on launches nodes");
}
both!(autoscaling_and_multi_az_spread_drive_the_planner);

/// The cluster's `patch_requests` agent commands.
async fn patch_commands(app: &TestApp, s: &Session, cluster: &str) -> Vec<Value> {
    let (_, c) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}/agent/commands"),
            Some(&s.access),
            None,
        )
        .await;
    c["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c["kind"] == "patch_requests")
        .collect()
}

/// Rightsizing mode `auto`: Optimize Now patches the recommended requests of Deployments
/// and StatefulSets through the agent (`patch_requests`), audited; a dry run only says what
/// it would patch; `recommend` keeps skipping.
async fn rightsizing_auto_patches_requests_through_the_agent(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, name) = setup(&app).await;
    // Keep every node: only rightsizing acts.
    let path = format!("/api/clusters/{cluster}/policy");
    let (st, p) = app
        .json(
            Method::PATCH,
            &path,
            Some(&s.access),
            Some(json!({"rightsize_mode": "auto", "stabilization_window_secs": 315_360_000})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["rightsize_mode"], "auto");

    // Dry run: what would be patched, nothing queued.
    let job = optimize(&app, &s, &cluster, json!({"dry_run": true})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let executed = job["result"]["executed"].as_array().expect("executed");
    let dry: Vec<&Value> = executed
        .iter()
        .filter(|a| a["kind"].as_str().unwrap_or("").starts_with("rightsize"))
        .collect();
    assert!(!dry.is_empty(), "{job}");
    assert!(
        dry.iter().all(|a| a["status"] == "would_execute"
            || a["reason"]
                .as_str()
                .unwrap_or("")
                .contains("Deployments and StatefulSets")),
        "{job}"
    );
    assert!(
        patch_commands(&app, &s, &cluster).await.is_empty(),
        "a dry run patches nothing"
    );

    // A real run: each Deployment / StatefulSet recommendation is patched by the agent.
    let job = optimize(&app, &s, &cluster, json!({})).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let executed = job["result"]["executed"].as_array().expect("executed");
    let applied: Vec<&Value> = executed
        .iter()
        .filter(|a| {
            a["kind"].as_str().unwrap_or("").starts_with("rightsize") && a["status"] == "applied"
        })
        .collect();
    assert!(!applied.is_empty(), "{job}");
    let world = sim.world(ACCOUNT, "us-east-1").expect("world");
    let view = world.kube_view(&name).expect("kube view");
    for a in &applied {
        let steps = a["steps"].as_array().expect("steps");
        assert_eq!(steps[0]["step"], "patch_requests", "{a}");
        assert_eq!(steps[0]["ok"], true, "{a}");
        // The workload's pods now request what was recommended.
        let target = a["target"].as_str().expect("target");
        let mut parts = target.splitn(3, '/');
        let (ns, _kind, wl) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        let cpu = a["requests"]["cpu_millis"].as_u64().expect("cpu");
        let mem = a["requests"]["memory_mib"].as_u64().expect("mem");
        let pods: Vec<_> = view
            .pods
            .iter()
            .filter(|p| p.pod.namespace == ns && p.pod.owner.as_ref().is_some_and(|o| o.name == wl))
            .collect();
        assert!(!pods.is_empty(), "{target}");
        assert!(
            pods.iter()
                .all(|p| u64::from(p.pod.cpu_request_millicores) == cpu
                    && u64::from(p.pod.memory_request_mib) == mem),
            "{target}: {a}"
        );
    }
    let patched = patch_commands(&app, &s, &cluster).await;
    assert_eq!(patched.len(), applied.len(), "{patched:?}");
    assert!(
        patched.iter().all(|c| c["status"] == "succeeded"),
        "{patched:?}"
    );
    // Audited as the job's actions.
    let n: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM audit_logs WHERE organization_id = $1 AND actor_kind = 'system' AND diff LIKE '%patch_requests%'",
    )
    .bind(&s.org_id)
    .fetch_one(&app.db.pool)
    .await
    .expect("audit");
    assert!(n.0 >= applied.len() as i64, "{n:?}");

    // Back to recommend: skipped again, nothing new patched.
    app.json(
        Method::PATCH,
        &path,
        Some(&s.access),
        Some(json!({"rightsize_mode": "recommend"})),
    )
    .await;
    let job = optimize(&app, &s, &cluster, json!({})).await;
    let executed = job["result"]["executed"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        executed
            .iter()
            .filter(|a| a["kind"].as_str().unwrap_or("").starts_with("rightsize"))
            .all(|a| a["status"] == "skipped"),
        "{job}"
    );
    assert_eq!(
        patch_commands(&app, &s, &cluster).await.len(),
        applied.len()
    );
}
both!(rightsizing_auto_patches_requests_through_the_agent);
