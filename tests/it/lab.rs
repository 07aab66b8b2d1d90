//! The Lab (super-admins): a live single-instance switch runs through the safe executor
//! with its phases timed, stored in order and audited; a parallel A/B test splits an
//! instance set deterministically and each set's decisions are made by its own model (the
//! decisions' recorded model id says so); graduation is refused until the safety checklist
//! computed from those results passes, and is recorded with it; a customer gets 403.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use spot_cloud::{Cloud, InstanceState, VolumeState};

use crate::both;
use crate::inventory::link_sim;
use crate::optimize::install_agent;
use crate::risk::{super_admin, wait_job};
use crate::support::{assert_error, Backend, Session, TestApp};

const ACCOUNT: &str = "210987654321";

fn onnx(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("onnx")
            .join(rel),
    )
    .expect("model file")
}

async fn upload(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> String {
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
    let st = r.status();
    let v: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(st, StatusCode::CREATED, "{v}");
    v["id"].as_str().expect("id").to_string()
}

struct World {
    app: TestApp,
    sim: Arc<SimConnector>,
    admin: String,
    owner: Session,
    account_id: String,
    cluster_id: String,
    /// A copy of the shipped model (registry entry) and the always-risky test model.
    candidate: String,
    risky: String,
}

async fn world(b: Backend) -> World {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let admin = super_admin(&app).await;
    let owner = app.signup("Lab Customer").await;
    let account_id = link_sim(&app, &owner, ACCOUNT, "Lab").await;
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&owner.access), None)
        .await;
    let cluster_id = clusters["items"][0]["id"]
        .as_str()
        .expect("a cluster")
        .to_string();
    install_agent(&app, &owner, &cluster_id).await;
    let candidate = upload(&app, &admin, "lab-candidate", onnx("risk-v1.onnx")).await;
    let risky = upload(
        &app,
        &admin,
        "always-risky",
        onnx("testdata/always_risky.onnx"),
    )
    .await;
    World {
        app,
        sim,
        admin,
        owner,
        account_id,
        cluster_id,
        candidate,
        risky,
    }
}

impl World {
    async fn candidates(&self) -> Value {
        let (st, c) = self
            .app
            .json(Method::GET, "/api/lab/candidates", Some(&self.admin), None)
            .await;
        assert_eq!(st, StatusCode::OK, "{c}");
        c
    }

    /// A switchable node of the test cluster.
    async fn node(&self) -> Value {
        let c = self.candidates().await;
        c["instances"]
            .as_array()
            .expect("instances")
            .iter()
            .find(|i| i["cluster_id"] == self.cluster_id.as_str() && i["switchable"] == true)
            .cloned()
            .unwrap_or_else(|| panic!("no switchable node: {c}"))
    }

    /// Runs a live switch to the end; returns the stored switch.
    async fn switch(&self, instance_id: &str, model: &str) -> Value {
        let (st, started) = self
            .app
            .json(
                Method::POST,
                "/api/lab/live-switch",
                Some(&self.admin),
                Some(json!({"instance_id": instance_id, "model_id": model})),
            )
            .await;
        assert_eq!(st, StatusCode::ACCEPTED, "{started}");
        let job_id = started["job"]["id"].as_str().expect("job id");
        let job = wait_job(
            &self.app,
            &self.admin,
            &format!("/api/admin/risk/jobs/{job_id}"),
        )
        .await;
        let (st, sw) = self
            .app
            .json(
                Method::GET,
                &format!(
                    "/api/lab/switches/{}",
                    started["switch"]["id"].as_str().expect("switch id")
                ),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{sw}");
        assert_eq!(job["status"], "succeeded", "{job}\n{sw}");
        sw
    }

    async fn standalone(&self) -> Vec<String> {
        let c = self.candidates().await;
        c["instances"]
            .as_array()
            .expect("instances")
            .iter()
            .filter(|i| i["account_id"] == self.account_id.as_str() && i["cluster_id"].is_null())
            .map(|i| i["instance_id"].as_str().expect("id").to_string())
            .take(6)
            .collect()
    }

    /// Starts an A/B test and waits for `ticks` ticks.
    async fn ab_test(&self, a: &str, b: &str, ids: &[String], ticks: i64) -> Value {
        let mut reversed = ids.to_vec();
        reversed.reverse();
        let (st, t) = self
            .app
            .json(
                Method::POST,
                "/api/lab/ab-tests",
                Some(&self.admin),
                Some(json!({"account_id": self.account_id, "model_a": a, "model_b": b, "instance_ids": reversed, "duration_minutes": 30, "tick_seconds": 5})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{t}");
        let id = t["test"]["id"].as_str().expect("test id").to_string();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (_, d) = self
                .app
                .json(
                    Method::GET,
                    &format!("/api/lab/ab-tests/{id}"),
                    Some(&self.admin),
                    None,
                )
                .await;
            let arms_done = d["samples"].as_array().map_or(0, |s| s.len() as i64);
            if arms_done >= 2 * ticks {
                return d;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the A/B test did not tick: {d}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn stop(&self, id: &str) -> (StatusCode, Value) {
        self.app
            .json(
                Method::POST,
                &format!("/api/lab/ab-tests/{id}/stop"),
                Some(&self.admin),
                None,
            )
            .await
    }
}

async fn switch_phases_are_timed_and_stored_in_order(b: Backend) {
    let w = world(b).await;
    let node = w.node().await;
    let instance = node["instance_id"].as_str().expect("id").to_string();
    // Give the node a data volume, so the volume phases have something to move.
    let cloud = w.sim.world(ACCOUNT, "us-east-1").expect("world");
    let az = node["az"].as_str().expect("az").to_string();
    let vol = cloud
        .describe_volumes()
        .await
        .expect("volumes")
        .into_iter()
        .find(|v| v.attached_instance_id.is_none() && v.az == az)
        .expect("an available volume in the node's AZ")
        .id;
    cloud.attach_volume(&vol, &instance).expect("attach");

    let sw = w.switch(&instance, &w.candidate).await;
    assert_eq!(sw["status"], "succeeded", "{sw}");
    assert_eq!(sw["model_id"], w.candidate.as_str());
    let phases = sw["phases"].as_array().expect("phases");
    let names: Vec<&str> = phases
        .iter()
        .map(|p| p["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, spot_jobs::lab::PHASES, "{sw}");
    let mut last_end = 0i64;
    for (k, p) in phases.iter().enumerate() {
        assert_eq!(p["seq"], k as i64, "{p}");
        assert_eq!(p["status"], "done", "every phase ran: {p}");
        let ms = p["duration_ms"].as_i64().expect("duration");
        assert!(ms >= 0, "{p}");
        let start = chrono::DateTime::parse_from_rfc3339(p["started_at"].as_str().expect("start"))
            .expect("time")
            .timestamp_millis();
        let end = chrono::DateTime::parse_from_rfc3339(p["finished_at"].as_str().expect("end"))
            .expect("time")
            .timestamp_millis();
        assert!(start >= last_end, "phases overlap: {sw}");
        assert!(end >= start, "{p}");
        last_end = end;
    }
    // The node was really replaced and its volume followed it.
    let new_id = sw["new_instance_id"]
        .as_str()
        .expect("new instance")
        .to_string();
    let all = cloud.describe_instances().await.expect("instances");
    let state = |id: &str| all.iter().find(|i| i.id == id).map(|i| i.state);
    assert_eq!(state(&instance), Some(InstanceState::Terminated));
    assert_eq!(state(&new_id), Some(InstanceState::Running));
    let v = cloud
        .describe_volumes()
        .await
        .expect("volumes")
        .into_iter()
        .find(|v| v.id == vol)
        .expect("volume kept");
    assert_eq!(v.attached_instance_id.as_deref(), Some(new_id.as_str()));
    assert_eq!(v.state, VolumeState::InUse);
    // Under the device name it had (the first free one when it was attached), and the
    // replacement's own root volume stayed its root.
    assert_eq!(v.device.as_deref(), Some("/dev/sdf"), "{v:?}");
    let new_vols: Vec<_> = cloud
        .describe_volumes()
        .await
        .expect("volumes")
        .into_iter()
        .filter(|v| v.attached_instance_id.as_deref() == Some(new_id.as_str()))
        .map(|v| v.device)
        .collect();
    assert_eq!(new_vols.len(), 2, "{new_vols:?}");
    assert!(new_vols.contains(&Some(spot_cloud::sim::world::SIM_ROOT_DEVICE.to_string())));
    // Every phase is in the customer's audit chain, as the system acting for the job.
    let (_, audit) = w
        .app
        .json(
            Method::GET,
            "/api/audit-logs?limit=200",
            Some(&w.owner.access),
            None,
        )
        .await;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for p in spot_jobs::lab::PHASES {
        assert!(
            actions.contains(&format!("lab.phase.{p}").as_str()),
            "lab.phase.{p} not audited: {actions:?}"
        );
    }
    // An unknown instance is 404, an unknown model 422 naming the field.
    let (st, e) = w
        .app
        .json(
            Method::POST,
            "/api/lab/live-switch",
            Some(&w.admin),
            Some(json!({"instance_id": "i-doesnotexist", "model_id": w.candidate})),
        )
        .await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let (st, e) = w
        .app
        .json(
            Method::POST,
            "/api/lab/live-switch",
            Some(&w.admin),
            Some(json!({"instance_id": new_id, "model_id": "no-such-model"})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e.to_string().contains("model_id"), "{e}");
}
both!(switch_phases_are_timed_and_stored_in_order);

async fn ab_assignment_is_deterministic_and_each_set_uses_its_model(b: Backend) {
    let w = world(b).await;
    let ids = w.standalone().await;
    assert!(ids.len() >= 2, "{ids:?}");
    let d = w.ab_test(&w.candidate, &w.risky, &ids, 2).await;
    let test_id = d["test"]["id"].as_str().expect("id").to_string();
    // The split is the engine's deterministic assignment, whatever order the ids came in.
    let want: Vec<(String, String)> = {
        let mut v: Vec<(String, String)> = spot_engine::lab::assign(&ids)
            .into_iter()
            .map(|(i, a)| (i, a.to_string()))
            .collect();
        v.sort();
        v
    };
    let mut got: Vec<(String, String)> = d["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            (
                m["original_instance_id"].as_str().unwrap_or("").to_string(),
                m["arm"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(got, want);
    // Every decision was made by its set's model.
    let decisions = d["decisions"].as_array().expect("decisions");
    assert!(!decisions.is_empty());
    for x in decisions {
        let want = if x["arm"] == "a" {
            &w.candidate
        } else {
            &w.risky
        };
        assert_eq!(x["model_id"], want.as_str(), "{x}");
    }
    let members_a = got.iter().filter(|m| m.1 == "a").count();
    let first_tick_a = decisions
        .iter()
        .filter(|x| x["tick"] == 0 && x["arm"] == "a")
        .count();
    assert_eq!(first_tick_a, members_a, "one decision per member per tick");
    // The always-risky model sees every spot pool as AVOID: its set ends up on demand.
    let (_, d) = w
        .app
        .json(
            Method::GET,
            &format!("/api/lab/ab-tests/{test_id}"),
            Some(&w.admin),
            None,
        )
        .await;
    for m in d["members"].as_array().expect("members") {
        if m["arm"] == "b" {
            assert_eq!(m["lifecycle"], "on_demand", "{m}");
        }
    }
    // Both arms have a point per tick, side by side.
    let samples = d["samples"].as_array().expect("samples");
    for tick in 0..2 {
        for arm in ["a", "b"] {
            assert!(
                samples.iter().any(|s| s["tick"] == tick && s["arm"] == arm),
                "no sample for tick {tick} arm {arm}: {samples:?}"
            );
        }
    }
    let (st, stopped) = w.stop(&test_id).await;
    assert_eq!(st, StatusCode::OK, "{stopped}");
    assert_eq!(stopped["test"]["status"], "stopped");
    let rows = stopped["test"]["verdict"]["rows"].as_array().expect("rows");
    assert_eq!(rows[0]["metric"], "cost_vs_on_demand");
    // The candidate (spot where it pays) costs less against on-demand than all-on-demand.
    assert!(
        rows[0]["a"].as_f64().unwrap_or(1.0) <= rows[0]["b"].as_f64().unwrap_or(0.0),
        "{rows:?}"
    );
    let (st, e) = w.stop(&test_id).await;
    assert_error(st, &e, StatusCode::CONFLICT);
    // The same models twice, or a missing instance, are refused naming the field.
    let (st, e) = w
        .app
        .json(
            Method::POST,
            "/api/lab/ab-tests",
            Some(&w.admin),
            Some(json!({"account_id": w.account_id, "model_a": w.risky, "model_b": w.risky, "duration_minutes": 5})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e.to_string().contains("model_b"), "{e}");
    let (st, e) = w
        .app
        .json(
            Method::POST,
            "/api/lab/ab-tests",
            Some(&w.admin),
            Some(json!({"account_id": w.account_id, "model_a": w.candidate, "model_b": w.risky, "duration_minutes": 5, "instance_ids": ["i-nope", "i-nope2"]})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(e.to_string().contains("instance_ids"), "{e}");
}
both!(ab_assignment_is_deterministic_and_each_set_uses_its_model);

async fn failing_items(app: &TestApp, admin: &str, model: &str) -> Vec<String> {
    let (st, c) = app
        .json(
            Method::GET,
            &format!("/api/lab/models/{model}/checklist"),
            Some(admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{c}");
    c["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["passed"] == false)
        .map(|i| i["key"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn the_checklist_blocks_graduation_until_it_passes(b: Backend) {
    let w = world(b).await;
    // No Lab result yet: both graduation paths refuse, naming every failing item.
    let (st, e) = w
        .app
        .json(
            Method::POST,
            "/api/lab/graduate",
            Some(&w.admin),
            Some(json!({"model_id": w.candidate})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::CONFLICT);
    for item in [
        "switch_tested",
        "boot_time",
        "ab_tested",
        "ab_cost_not_worse",
    ] {
        assert!(e.to_string().contains(item), "{item} not named: {e}");
    }
    let (st, e) = w
        .app
        .json(
            Method::POST,
            &format!("/api/admin/risk/models/{}/graduate", w.risky),
            Some(&w.admin),
            None,
        )
        .await;
    let e = assert_error(st, &e, StatusCode::CONFLICT);
    assert!(e.to_string().contains("switch_tested"), "{e}");

    // A successful switch clears the switch items only.
    let node = w.node().await;
    w.switch(node["instance_id"].as_str().expect("id"), &w.candidate)
        .await;
    let failing = failing_items(&w.app, &w.admin, &w.candidate).await;
    assert_eq!(
        failing,
        vec![
            "ab_tested",
            "ab_cost_not_worse",
            "ab_interruptions_not_worse"
        ],
    );
    let (st, e) = w
        .app
        .json(
            Method::POST,
            "/api/lab/graduate",
            Some(&w.admin),
            Some(json!({"model_id": w.candidate})),
        )
        .await;
    let e = assert_error(st, &e, StatusCode::CONFLICT);
    assert!(e.to_string().contains("ab_tested"), "{e}");
    assert!(!e.to_string().contains("boot_time ("), "{e}");

    // An A/B test against the always-risky model, ended.
    let ids = w.standalone().await;
    let d = w.ab_test(&w.candidate, &w.risky, &ids, 1).await;
    let (st, _) = w.stop(d["test"]["id"].as_str().expect("id")).await;
    assert_eq!(st, StatusCode::OK);
    let failing = failing_items(&w.app, &w.admin, &w.candidate).await;
    assert!(failing.is_empty(), "{failing:?}");
    // The always-risky model still has no switch of its own.
    assert!(failing_items(&w.app, &w.admin, &w.risky)
        .await
        .contains(&"switch_tested".to_string()));

    let (st, g) = w
        .app
        .json(
            Method::POST,
            "/api/lab/graduate",
            Some(&w.admin),
            Some(json!({"model_id": w.candidate})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{g}");
    assert_eq!(g["active_model"], w.candidate.as_str());
    assert_eq!(g["checklist"]["passed"], true);
    let recorded = spot_models::lab::graduations(&w.app.db, &w.candidate)
        .await
        .expect("graduations");
    assert_eq!(recorded.len(), 1);
    let c: Value = serde_json::from_str(&recorded[0].checklist).expect("checklist json");
    assert_eq!(c["passed"], true, "{c}");
    assert_eq!(c["items"].as_array().map(Vec::len), Some(7));
    let (_, list) = w
        .app
        .json(Method::GET, "/api/admin/risk/models", Some(&w.admin), None)
        .await;
    assert_eq!(list["active"]["id"], w.candidate.as_str(), "{list}");
}
both!(the_checklist_blocks_graduation_until_it_passes);

async fn a_customer_never_reaches_the_lab(b: Backend) {
    let app = TestApp::start(b).await;
    let owner = app.signup("Curious Customer").await;
    let body = json!({"model_id": "shipped:risk-v1"});
    for (method, path, body) in [
        (Method::GET, "/api/lab/candidates", None),
        (Method::GET, "/api/lab/switches", None),
        (Method::GET, "/api/lab/switches/x", None),
        (Method::GET, "/api/lab/ab-tests", None),
        (Method::GET, "/api/lab/ab-tests/x", None),
        (Method::POST, "/api/lab/ab-tests/x/stop", None),
        (Method::GET, "/api/lab/models/x/checklist", None),
        (
            Method::POST,
            "/api/lab/live-switch",
            Some(json!({"instance_id": "i-1", "model_id": "shipped:risk-v1"})),
        ),
        (
            Method::POST,
            "/api/lab/ab-tests",
            Some(json!({"account_id": "a", "model_a": "x", "model_b": "y", "duration_minutes": 5})),
        ),
        (Method::POST, "/api/lab/graduate", Some(body.clone())),
    ] {
        let (st, e) = app
            .json(method.clone(), path, Some(&owner.access), body.clone())
            .await;
        assert_error(st, &e, StatusCode::FORBIDDEN);
        let (st, e) = app.json(method, path, None, body).await;
        assert_error(st, &e, StatusCode::UNAUTHORIZED);
    }
}
both!(a_customer_never_reaches_the_lab);

/// Lab evidence under which `model` passes the safety checklist (a succeeded switch with
/// fast phases; an ended A/B test in which its arm is cheaper and interrupted no more), for
/// tests about what graduation does rather than about the Lab.
pub async fn seed_passing_lab_results(db: &spot_models::Db, model: &str) {
    use spot_models::lab as store;
    let sw = store::insert_switch(
        db,
        store::NewSwitch {
            organization_id: "fixture",
            account_id: "fixture",
            cluster_id: "fixture",
            instance_id: "i-fixture",
            node_name: None,
            model_id: model,
            target_type: None,
            requested_by: "fixture",
        },
    )
    .await
    .expect("switch");
    let now = spot_models::now_ms();
    for (seq, name) in spot_jobs::lab::PHASES.iter().enumerate() {
        store::start_phase(db, &sw.id, seq as i64, name, now)
            .await
            .expect("phase");
        store::end_phase(db, &sw.id, seq as i64, "done", now + 1000, 1000, "{}")
            .await
            .expect("phase");
    }
    store::finish_switch(db, &sw.id, store::SUCCEEDED, None)
        .await
        .expect("finish");
    let t = store::insert_ab_test(
        db,
        store::NewAbTest {
            name: "fixture",
            organization_id: "fixture",
            account_id: "fixture",
            model_a: model,
            model_b: "shipped:risk-v1",
            tag_a: "lab-stable",
            tag_b: "lab-beta",
            tick_secs: 5,
            duration_secs: 60,
            created_by: "fixture",
        },
        &[
            (
                "a".into(),
                "i-a".into(),
                "m5.large".into(),
                "us-east-1a".into(),
                "spot".into(),
            ),
            (
                "b".into(),
                "i-b".into(),
                "m5.large".into(),
                "us-east-1a".into(),
                "spot".into(),
            ),
        ],
    )
    .await
    .expect("test");
    for (arm, cost) in [("a", 0.03), ("b", 0.04)] {
        store::insert_sample(
            db,
            &store::Sample {
                test_id: t.id.clone(),
                tick: 0,
                arm: arm.into(),
                at: now,
                hourly_cost: cost,
                on_demand_cost: 0.096,
                running: 1,
                interruptions: 0,
                decisions: 0,
            },
        )
        .await
        .expect("sample");
    }
    store::end_ab_test(db, &t.id, store::COMPLETED, "{}", None)
        .await
        .expect("end");
}
