//! Force on-demand (manual overrides) at instance, cluster and organization scope: the
//! force job replaces spot nodes through the safe executor, the planner keeps forced
//! capacity on demand while the override lasts, revoke and expiry hand the cluster back
//! to the policy (audited, expiry as `system`), busy clusters wait for the sweep, and bad
//! input, viewers and other tenants are refused.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use spot_cloud::{Cloud, InstanceState, Lifecycle};

use crate::both;
use crate::optimize::setup;
use crate::risk::wait_job;
use crate::support::{assert_error, Backend, Session, TestApp};

const ACCOUNT: &str = "123456789012";

async fn cluster_nodes(app: &TestApp, s: &Session, cluster: &str) -> Vec<Value> {
    let (st, c) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cluster}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    c["nodes"].as_array().expect("nodes").clone()
}

async fn instances_of(sim: &SimConnector, cluster: &str) -> Vec<spot_cloud::Instance> {
    let cloud = sim.world(ACCOUNT, "us-east-1").expect("world");
    cloud
        .describe_instances()
        .await
        .expect("describe")
        .into_iter()
        .filter(|i| i.cluster.as_deref() == Some(cluster))
        .collect()
}

async fn audit_actions(app: &TestApp, s: &Session, action: &str) -> Vec<Value> {
    let (st, a) = app
        .json(
            Method::GET,
            &format!("/api/audit-logs?action={action}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    a["items"].as_array().cloned().unwrap_or_default()
}

async fn an_instance_forced_on_demand_is_replaced_kept_and_handed_back(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, name) = setup(&app).await;
    let spot = cluster_nodes(&app, &s, &cluster)
        .await
        .into_iter()
        .find(|n| n["lifecycle"] == "spot" && n["state"] == "running")
        .expect("a spot node");
    let (row, old) = (
        spot["id"].as_str().expect("row id").to_string(),
        spot["instance_id"].as_str().expect("instance").to_string(),
    );
    let (st, started) = app
        .json(
            Method::POST,
            &format!("/api/instances/{row}/force-on-demand"),
            Some(&s.access),
            Some(json!({"duration_hours": 6, "reason": "incident 42"})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{started}");
    let o = &started["override"];
    assert_eq!(
        (
            o["scope"].as_str(),
            o["instance_id"].as_str(),
            o["active"].as_bool()
        ),
        (Some("instance"), Some(old.as_str()), Some(true)),
        "{started}"
    );
    assert!(o["expires_at"].is_string(), "{o}");
    let jobs = started["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1, "{started}");
    assert_eq!(jobs[0]["kind"], "force_on_demand");
    let job = wait_job(
        &app,
        &s.access,
        &format!("/api/jobs/{}", jobs[0]["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let executed = job["result"]["executed"].as_array().expect("executed");
    assert_eq!(executed.len(), 1, "only the forced node: {job}");
    assert_eq!(executed[0]["status"], "applied", "{job}");
    let steps: Vec<&str> = executed[0]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["step"].as_str())
        .collect();
    for step in ["launch", "cordon", "ready", "drain", "terminate"] {
        assert!(steps.contains(&step), "{step} missing: {steps:?}");
    }
    let new = executed[0]["launched"][0]
        .as_str()
        .expect("replacement")
        .to_string();
    let now = instances_of(&sim, &name).await;
    let old_i = now.iter().find(|i| i.id == old).expect("old instance");
    assert!(
        matches!(
            old_i.state,
            InstanceState::Terminated | InstanceState::ShuttingDown
        ),
        "{old_i:?}"
    );
    let new_i = now.iter().find(|i| i.id == new).expect("new instance");
    assert_eq!(
        (new_i.lifecycle, &new_i.instance_type, &new_i.az),
        (Lifecycle::OnDemand, &old_i.instance_type, &old_i.az)
    );

    // The override follows its node to the replacement, which the planner then keeps.
    let (_, list) = app
        .json(Method::GET, "/api/overrides", Some(&s.access), None)
        .await;
    let listed = &list["items"][0];
    assert_eq!(listed["replacement_instance_id"], new.as_str(), "{list}");
    crate::optimize::wait_agent_view(&app, &s, &cluster).await;
    let mut kept = None;
    for _ in 0..50 {
        let (st, dry) = app
            .json(
                Method::POST,
                &format!("/api/clusters/{cluster}/optimize"),
                Some(&s.access),
                Some(json!({"dry_run": true})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{dry}");
        let dry = wait_job(
            &app,
            &s.access,
            &format!("/api/jobs/{}", dry["id"].as_str().expect("id")),
        )
        .await;
        kept = dry["plan"]["nodes"]
            .as_array()
            .and_then(|ns| ns.iter().find(|n| n["why"] == "manual_override").cloned());
        if kept.is_some() {
            break;
        }
        // The replacement may not be in the agent's view yet.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let kept = kept.expect("the replacement is kept by the override");
    assert!(
        kept["reason"].as_str().unwrap_or("").contains("until"),
        "{kept}"
    );

    // Revoke: back to the policy (an optimization is queued), audited; a second revoke is 409.
    let id = listed["id"].as_str().expect("override id");
    let (st, r) = app
        .json(
            Method::POST,
            &format!("/api/overrides/{id}/revoke"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(
        (
            r["override"]["active"].as_bool(),
            r["override"]["end_reason"].as_str()
        ),
        (Some(false), Some("revoked")),
        "{r}"
    );
    assert_eq!(r["jobs"][0]["kind"], "optimize", "{r}");
    wait_job(
        &app,
        &s.access,
        &format!("/api/jobs/{}", r["jobs"][0]["id"].as_str().expect("id")),
    )
    .await;
    let (st, again) = app
        .json(
            Method::POST,
            &format!("/api/overrides/{id}/revoke"),
            Some(&s.access),
            None,
        )
        .await;
    assert_error(st, &again, StatusCode::CONFLICT);
    assert!(!audit_actions(&app, &s, "override.create").await.is_empty());
    assert!(!audit_actions(&app, &s, "override.revoke").await.is_empty());
    assert!(!audit_actions(&app, &s, "force_on_demand.action")
        .await
        .is_empty());
}
both!(an_instance_forced_on_demand_is_replaced_kept_and_handed_back);

async fn a_forced_cluster_plans_only_on_demand_and_expires_back_to_the_policy(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, name) = setup(&app).await;
    // A dry-run policy: the force job plans and records "would execute" only.
    let (st, p) = app
        .json(
            Method::PATCH,
            &format!("/api/clusters/{cluster}/policy"),
            Some(&s.access),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    let spot_before: Vec<String> = instances_of(&sim, &name)
        .await
        .into_iter()
        .filter(|i| i.lifecycle == Lifecycle::Spot && i.state == InstanceState::Running)
        .map(|i| i.id)
        .collect();
    assert!(!spot_before.is_empty(), "the demo cluster runs spot nodes");
    let (st, started) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/force-on-demand"),
            Some(&s.access),
            Some(json!({"duration_hours": 1})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{started}");
    let oid = started["override"]["id"].as_str().expect("id").to_string();
    let job = wait_job(
        &app,
        &s.access,
        &format!(
            "/api/jobs/{}",
            started["jobs"][0]["id"].as_str().expect("job")
        ),
    )
    .await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert_eq!(job["result"]["mode"], "dry_run", "{job}");
    let actions = job["plan"]["actions"].as_array().expect("actions");
    assert_eq!(
        actions.len(),
        spot_before.len(),
        "one replacement per spot node: {job}"
    );
    assert!(
        actions
            .iter()
            .all(|a| a["kind"] == "replace_node" && a["destination"]["lifecycle"] == "on_demand"),
        "{job}"
    );
    // Dry run: the cloud is untouched.
    let spot_after: Vec<String> = instances_of(&sim, &name)
        .await
        .into_iter()
        .filter(|i| i.lifecycle == Lifecycle::Spot && i.state == InstanceState::Running)
        .map(|i| i.id)
        .collect();
    assert_eq!(spot_after, spot_before);
    // While it lasts the planner buys no spot capacity.
    let (_, dry) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/optimize"),
            Some(&s.access),
            Some(json!({"dry_run": true})),
        )
        .await;
    let dry = wait_job(
        &app,
        &s.access,
        &format!("/api/jobs/{}", dry["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(dry["status"], "succeeded", "{dry}");
    let spot_dest = dry["plan"]["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter(|a| a["destination"]["lifecycle"] == "spot" || a["kind"] == "move_to_spot")
        .count();
    assert_eq!(spot_dest, 0, "no spot while forced: {dry}");

    // Expiry (the timer is the row): the sweep ends it as `system` and queues the
    // hand-back optimization once; a second sweep does nothing.
    sqlx::query("UPDATE capacity_overrides SET expires_at = $1 WHERE id = $2")
        .bind(chrono::Utc::now().timestamp_millis() - 1000)
        .bind(&oid)
        .execute(&app.db.pool)
        .await
        .expect("expire");
    let st8 = &app.state;
    let (ended, _) = spot_jobs::force::sweep(&st8.db, &st8.jobs, &st8.actors, false)
        .await
        .expect("sweep");
    assert_eq!(ended, 1);
    assert_eq!(
        spot_jobs::force::sweep(&st8.db, &st8.jobs, &st8.actors, false)
            .await
            .expect("sweep"),
        (0, 0)
    );
    let (_, list) = app
        .json(Method::GET, "/api/overrides", Some(&s.access), None)
        .await;
    let o = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|o| o["id"] == oid.as_str())
        .cloned()
        .expect("listed");
    assert_eq!(
        (
            o["active"].as_bool(),
            o["ended_by"].as_str(),
            o["end_reason"].as_str()
        ),
        (Some(false), Some("system"), Some("expired")),
        "{o}"
    );
    let expired = audit_actions(&app, &s, "override.expired").await;
    assert_eq!(expired.len(), 1, "{expired:?}");
    assert_eq!(expired[0]["actor"]["kind"], "system", "{expired:?}");
    let (reverts,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM jobs WHERE kind = 'optimize' AND target_id = $1 AND requested_by IS NULL",
    )
    .bind(&cluster)
    .fetch_one(&app.db.pool)
    .await
    .expect("jobs");
    assert_eq!(reverts, 1, "one hand-back optimization");
}
both!(a_forced_cluster_plans_only_on_demand_and_expires_back_to_the_policy);

async fn force_input_roles_tenants_and_busy_clusters(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, cluster, _) = setup(&app).await;
    let path = format!("/api/clusters/{cluster}/force-on-demand");
    for (body, field) in [
        (json!({"duration_hours": 0}), "duration_hours"),
        (json!({"duration_hours": 721}), "duration_hours"),
        (json!({"reason": "x".repeat(501)}), "reason"),
    ] {
        let (st, e) = app
            .json(Method::POST, &path, Some(&s.access), Some(body))
            .await;
        assert_eq!(
            assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
            field,
            "{e}"
        );
    }
    let (st, e) = app
        .json(
            Method::POST,
            &path,
            Some(&s.access),
            Some(json!({"hours": 2})),
        )
        .await;
    assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    let viewer = app.add_member(&s, "viewer").await;
    let (st, e) = app
        .json(Method::POST, &path, Some(&viewer.access), Some(json!({})))
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let (st, e) = app
        .json(
            Method::POST,
            "/api/admin/force-on-demand",
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let other = app.signup("Elsewhere").await;
    let (st, e) = app
        .json(Method::POST, &path, Some(&other.access), Some(json!({})))
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    // An instance that is no cluster's node cannot be forced.
    let (_, loose) = app
        .json(
            Method::GET,
            "/api/instances/unregistered",
            Some(&s.access),
            None,
        )
        .await;
    if let Some(i) = loose["items"].as_array().and_then(|a| a.first()) {
        let (st, e) = app
            .json(
                Method::POST,
                &format!(
                    "/api/instances/{}/force-on-demand",
                    i["id"].as_str().expect("id")
                ),
                Some(&s.access),
                Some(json!({})),
            )
            .await;
        assert_eq!(
            assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
            "id",
            "{e}"
        );
    }
    // A cluster busy with an optimization waits; the sweep queues its force job later,
    // once, and never while the other job runs.
    let (st, opt) = app
        .json(
            Method::POST,
            &format!("/api/clusters/{cluster}/optimize"),
            Some(&s.access),
            Some(json!({"dry_run": true})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{opt}");
    let (st, started) = app
        .json(
            Method::POST,
            "/api/org/force-on-demand",
            Some(&s.access),
            Some(json!({})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["override"]["scope"], "organization");
    assert!(
        started["override"]["expires_at"].is_null(),
        "until revoked: {started}"
    );
    let waiting: Vec<&str> = started["waiting_clusters"]
        .as_array()
        .expect("waiting")
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    let queued: Vec<&str> = started["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .filter_map(|j| j["target_id"].as_str())
        .collect();
    let opt = wait_job(
        &app,
        &s.access,
        &format!("/api/jobs/{}", opt["id"].as_str().expect("id")),
    )
    .await;
    if waiting.contains(&cluster.as_str()) {
        assert!(!queued.contains(&cluster.as_str()));
        let st8 = &app.state;
        let (_, q) = spot_jobs::force::sweep(&st8.db, &st8.jobs, &st8.actors, false)
            .await
            .expect("sweep");
        assert!(q >= 1, "the waiting cluster gets its force job: {opt}");
        assert_eq!(
            spot_jobs::force::sweep(&st8.db, &st8.jobs, &st8.actors, false)
                .await
                .expect("sweep")
                .1,
            0
        );
    } else {
        // The optimization ended before the override started.
        assert!(queued.contains(&cluster.as_str()), "{started}");
    }
    let (_, list) = app
        .json(Method::GET, "/api/overrides", Some(&other.access), None)
        .await;
    assert_eq!(
        list["items"].as_array().map(Vec::len),
        Some(0),
        "another tenant sees none: {list}"
    );
    let id = started["override"]["id"].as_str().expect("id");
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/overrides/{id}/revoke"),
            Some(&other.access),
            None,
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
}
both!(force_input_roles_tenants_and_busy_clusters);

/// Waits for the one platform override listed in `GET /api/admin/overrides` to be complete.
async fn wait_platform_complete(app: &TestApp, admin: &str, id: &str) -> Value {
    let mut last = Value::Null;
    let mut switched_before = 0;
    for _ in 0..900 {
        let (st, list) = app
            .json(Method::GET, "/api/admin/overrides", Some(admin), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{list}");
        let item = list["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["override"]["id"] == id)
            .cloned()
            .expect("the platform override is listed");
        let p = &item["progress"];
        let switched = p["nodes_switched"].as_i64().expect("nodes_switched");
        assert!(switched >= switched_before, "progress never goes back: {p}");
        switched_before = switched;
        if p["complete"] == true {
            return item;
        }
        last = item;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("the platform override never completed: {last}");
}

async fn the_platform_emergency_override_needs_a_reason_switches_every_organization_and_reverts(
    b: Backend,
) {
    // One cluster per simulated account keeps the switch short; each organization links
    // its own account and runs the cluster's agent.
    let sim = Arc::new(SimConnector::with_profile(
        42,
        spot_cloud::sim::SimProfile::Demo {
            clusters: 1,
            unregistered_instances: 0,
        },
    ));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (acme, acme_cluster, acme_name) = setup(&app).await;
    let globex = app.signup("Globex").await;
    crate::inventory::link_sim(&app, &globex, "210987654321", "Globex prod").await;
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&globex.access), None)
        .await;
    let globex_cluster = clusters["items"][0]["id"]
        .as_str()
        .expect("globex cluster")
        .to_string();
    let globex_name = clusters["items"][0]["name"]
        .as_str()
        .expect("name")
        .to_string();
    crate::optimize::install_agent(&app, &globex, &globex_cluster).await;
    let admin = crate::risk::super_admin(&app).await;

    // A reason is required at platform scope (and only there), and only super-admins
    // reach the progress endpoint.
    for body in [
        json!({}),
        json!({"reason": null, "duration_hours": 2}),
        json!({"reason": "   "}),
    ] {
        let (st, e) = app
            .json(
                Method::POST,
                "/api/admin/force-on-demand",
                Some(&admin),
                Some(body),
            )
            .await;
        assert_eq!(
            assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY)["error"]["field"],
            "reason",
            "{e}"
        );
    }
    let (st, e) = app
        .json(
            Method::GET,
            "/api/admin/overrides",
            Some(&acme.access),
            None,
        )
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let (st, none) = app
        .json(Method::GET, "/api/admin/overrides", Some(&admin), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{none}");
    assert_eq!(none["items"].as_array().map(Vec::len), Some(0), "{none}");

    let (st, started) = app
        .json(
            Method::POST,
            "/api/admin/force-on-demand",
            Some(&admin),
            Some(json!({"reason": "maintenance window", "duration_hours": 2})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{started}");
    assert_eq!(started["override"]["scope"], "platform");
    assert_eq!(started["override"]["reason"], "maintenance window");
    let id = started["override"]["id"].as_str().expect("id").to_string();
    let mut covered: Vec<String> = started["jobs"]
        .as_array()
        .expect("jobs")
        .iter()
        .map(|j| {
            assert_eq!(j["kind"], "force_on_demand", "{j}");
            j["target_id"].as_str().expect("target").to_string()
        })
        .collect();
    covered.extend(
        started["waiting_clusters"]
            .as_array()
            .expect("waiting")
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string)),
    );
    assert!(
        covered.contains(&acme_cluster) && covered.contains(&globex_cluster),
        "both organizations' clusters are covered: {started}"
    );
    if !started["waiting_clusters"]
        .as_array()
        .expect("waiting")
        .is_empty()
    {
        // A busy cluster gets its force job from the sweep once its other job ended.
        for _ in 0..100 {
            let st8 = &app.state;
            spot_jobs::force::sweep(&st8.db, &st8.jobs, &st8.actors, false)
                .await
                .expect("sweep");
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(DISTINCT target_id) FROM jobs WHERE kind = 'force_on_demand'",
            )
            .fetch_one(&app.db.pool)
            .await
            .expect("count");
            if n == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    let spot_before = [
        (ACCOUNT, acme_name.as_str()),
        ("210987654321", globex_name.as_str()),
    ];
    let item = wait_platform_complete(&app, &admin, &id).await;
    let p = &item["progress"];
    assert_eq!(item["override"]["active"], true, "{item}");
    assert_eq!(
        (p["all_switched"].as_bool(), p["jobs_failed"].as_i64()),
        (Some(true), Some(0)),
        "{p}"
    );
    assert_eq!(p["nodes_switched"], p["nodes_to_switch"], "{p}");
    assert!(p["nodes_to_switch"].as_i64().unwrap_or(0) > 0, "{p}");
    assert_eq!(
        (p["jobs_total"].as_i64(), p["jobs_finished"].as_i64()),
        (Some(2), Some(2)),
        "{p}"
    );
    let rows = p["clusters"].as_array().expect("clusters");
    let orgs: Vec<&str> = rows
        .iter()
        .filter_map(|c| c["organization_name"].as_str())
        .collect();
    assert!(
        orgs.contains(&"Optimizer") && orgs.contains(&"Globex"),
        "{p}"
    );
    // Each row is its organization's force job as stored: the plan's actions and the
    // replacements applied.
    for (row, owner) in rows.iter().map(|r| {
        let owner = if r["cluster_id"] == acme_cluster.as_str() {
            &acme
        } else {
            &globex
        };
        (r, owner)
    }) {
        assert_eq!(row["job_status"], "succeeded", "{row}");
        let job = wait_job(
            &app,
            &owner.access,
            &format!("/api/jobs/{}", row["job_id"].as_str().expect("job id")),
        )
        .await;
        let applied = job["result"]["executed"]
            .as_array()
            .expect("executed")
            .iter()
            .filter(|d| d["status"] == "applied")
            .count() as i64;
        assert_eq!(row["nodes_switched"].as_i64(), Some(applied), "{row} {job}");
        assert_eq!(
            row["nodes_to_switch"].as_i64(),
            job["result"]["actions"].as_i64(),
            "{row} {job}"
        );
    }
    // And the clouds agree: no spot node runs in either cluster any more.
    for (account, name) in spot_before {
        let cloud = sim.world(account, "us-east-1").expect("world");
        let spot: Vec<String> = cloud
            .describe_instances()
            .await
            .expect("describe")
            .into_iter()
            .filter(|i| {
                i.cluster.as_deref() == Some(name)
                    && i.lifecycle == Lifecycle::Spot
                    && i.state == InstanceState::Running
            })
            .map(|i| i.id)
            .collect();
        assert!(spot.is_empty(), "{name} still runs spot nodes {spot:?}");
    }

    // A customer cannot revert the platform's override; the super-admin can, once.
    let (st, e) = app
        .json(
            Method::POST,
            &format!("/api/overrides/{id}/revoke"),
            Some(&acme.access),
            None,
        )
        .await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let (st, r) = app
        .json(
            Method::POST,
            &format!("/api/overrides/{id}/revoke"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["override"]["end_reason"], "revoked", "{r}");
    let reverts = r["jobs"].as_array().expect("jobs");
    assert_eq!(
        reverts.len(),
        2,
        "one hand-back optimization per cluster: {r}"
    );
    let (st, again) = app
        .json(
            Method::POST,
            &format!("/api/overrides/{id}/revoke"),
            Some(&admin),
            None,
        )
        .await;
    assert_error(st, &again, StatusCode::CONFLICT);
    let (_, list) = app
        .json(Method::GET, "/api/admin/overrides", Some(&admin), None)
        .await;
    let ended = &list["items"][0];
    assert_eq!(
        (
            ended["override"]["id"].as_str(),
            ended["override"]["active"].as_bool()
        ),
        (Some(id.as_str()), Some(false)),
        "{list}"
    );
    assert_eq!(ended["progress"]["complete"], true, "{list}");
    for j in reverts {
        let owner = if j["target_id"] == acme_cluster.as_str() {
            &acme
        } else {
            &globex
        };
        wait_job(
            &app,
            &owner.access,
            &format!("/api/jobs/{}", j["id"].as_str().expect("id")),
        )
        .await;
    }
}
both!(the_platform_emergency_override_needs_a_reason_switches_every_organization_and_reverts);
