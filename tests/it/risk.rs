//! MOD-AI-01 in the product: the model registry (upload validated in a sandboxed child
//! process, graduation hot-swapping every actor, rollback, Redis broadcast across replicas),
//! risk in the inventory API with the hive-mind override, and the recompute job.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;
use spot_actors::hive::{PoolId, RiskSignal};

use crate::both;
use crate::inventory::link_sim;
use crate::support::{assert_error, test_config, Backend, TestApp};

const ADMIN: &str = "root@platform.example.com";
const ADMIN_PW: &str = "platform admin 99";

fn onnx(rel: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("onnx")
            .join(rel),
    )
    .expect("onnx file")
}

pub async fn super_admin(app: &TestApp) -> String {
    spot_api::server::seed_super_admin(&app.db, ADMIN, ADMIN_PW)
        .await
        .expect("seed");
    let (st, t) = app
        .json(
            Method::POST,
            "/api/auth/token",
            None,
            Some(serde_json::json!({"email": ADMIN, "password": ADMIN_PW})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{t}");
    t["access_token"].as_str().expect("token").to_string()
}

async fn upload(app: &TestApp, token: &str, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
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
    (st, r.json().await.unwrap_or(Value::Null))
}

/// Polls a job until it finishes.
pub async fn wait_job(app: &TestApp, token: &str, path: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (st, j) = app.json(Method::GET, path, Some(token), None).await;
        assert_eq!(st, StatusCode::OK, "{j}");
        if j["status"] == "succeeded" || j["status"] == "failed" || j["status"] == "cancelled" {
            return j;
        }
        last = j;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("job never finished: {last}");
}

/// Risk model of every account and cluster actor, from the admin health endpoint.
async fn actor_models(app: &TestApp, token: &str) -> Vec<String> {
    let (st, h) = app
        .json(Method::GET, "/api/admin/health", Some(token), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{h}");
    let mut out = Vec::new();
    for a in h["actors"].as_array().expect("actors") {
        out.push(a["model"].as_str().unwrap_or("?").to_string());
        for c in a["cluster_models"].as_array().expect("cluster models") {
            out.push(c.as_str().unwrap_or("?").to_string());
        }
    }
    out
}

async fn bad_models_are_rejected_with_a_reason(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let customer = app.signup("Not Admin").await;
    let (st, e) = upload(&app, &customer.access, "mine", onnx("risk-v1.onnx")).await;
    assert_error(st, &e, StatusCode::FORBIDDEN);

    for (file, bytes, reason) in [
        (
            "garbage",
            b"definitely not a protobuf".to_vec(),
            "does not load",
        ),
        (
            "wrong-inputs",
            onnx("testdata/wrong_inputs.onnx"),
            "contract",
        ),
        (
            "out-of-range",
            onnx("testdata/out_of_range.onnx"),
            "outside [0, 1]",
        ),
    ] {
        let (st, e) = upload(&app, &admin, file, bytes).await;
        let e = assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e["error"]["field"], "file", "{e}");
        let msg = e["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(reason), "{file}: {msg}");
    }
    let (st, e) = upload(&app, &admin, "empty", Vec::new()).await;
    assert_error(st, &e, StatusCode::UNPROCESSABLE_ENTITY);
    // Nothing was stored, and no uploaded file is left behind.
    let (_, list) = app
        .json(Method::GET, "/api/admin/risk/models", Some(&admin), None)
        .await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0), "{list}");
    assert_eq!(list["active"]["id"], "shipped:risk-v1");
    assert_eq!(list["active"]["degraded"], false);
}
both!(bad_models_are_rejected_with_a_reason);

async fn graduation_hot_swaps_every_actor_and_rollback_restores(b: Backend) {
    let app = TestApp::start(b).await;
    let admin = super_admin(&app).await;
    let s = app.signup("Risky Org").await;
    link_sim(&app, &s, "123456789012", "Prod").await;

    // Baseline: shipped model everywhere, pools scored by it after discovery.
    let models = actor_models(&app, &admin).await;
    assert!(
        models.len() >= 2,
        "an account actor and cluster actors: {models:?}"
    );
    assert!(models.iter().all(|m| m == "shipped:risk-v1"), "{models:?}");
    let (_, job) = app
        .json(
            Method::POST,
            "/api/admin/risk/recompute",
            Some(&admin),
            None,
        )
        .await;
    let job_id = job["id"].as_str().expect("job id").to_string();
    let done = wait_job(&app, &admin, &format!("/api/admin/risk/jobs/{job_id}")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["result"]["pools"].as_u64().unwrap_or(0) > 0, "{done}");
    assert!(
        done["result"]["instances"].as_u64().unwrap_or(0) > 0,
        "{done}"
    );
    let before = spot_risk(&app, &s.access).await;
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|(_, m, _)| m == "shipped:risk-v1"),
        "{before:?}"
    );

    // A second valid model with different outputs.
    let (st, m) = upload(
        &app,
        &admin,
        "always-risky",
        onnx("testdata/always_risky.onnx"),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(m["status"], "validated");
    let id = m["id"].as_str().expect("id").to_string();
    // Graduation needs a passing Lab checklist (tests/it/lab.rs covers the Lab itself).
    crate::lab::seed_passing_lab_results(&app.db, &id).await;
    let (st, list) = app
        .json(
            Method::POST,
            &format!("/api/admin/risk/models/{id}/graduate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list["active"]["id"], id.as_str());
    // Every actor swapped without a restart.
    let models = actor_models(&app, &admin).await;
    assert!(models.iter().all(|m| m == &id), "{models:?}");
    let (_, h) = app
        .json(Method::GET, "/api/admin/health", Some(&admin), None)
        .await;
    assert!(
        h["actors"]
            .as_array()
            .expect("actors")
            .iter()
            .all(|a| a["restarts"] == 0),
        "{h}"
    );

    let (_, job) = app
        .json(
            Method::POST,
            "/api/admin/risk/recompute",
            Some(&admin),
            None,
        )
        .await;
    let done = wait_job(
        &app,
        &admin,
        &format!("/api/admin/risk/jobs/{}", job["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(done["result"]["model"], id.as_str(), "{done}");
    let after = spot_risk(&app, &s.access).await;
    assert!(
        after
            .iter()
            .all(|(p, m, band)| m == &id && (*p - 0.8808).abs() < 1e-3 && band == "AVOID"),
        "{after:?}"
    );
    assert_ne!(
        before.iter().map(|x| x.0).collect::<Vec<_>>(),
        after.iter().map(|x| x.0).collect::<Vec<_>>()
    );

    // Rollback: the shipped model again, everywhere.
    let (st, list) = app
        .json(Method::POST, "/api/admin/risk/rollback", Some(&admin), None)
        .await;
    assert_eq!(st, StatusCode::OK, "{list}");
    assert_eq!(list["active"]["id"], "shipped:risk-v1");
    let retired = list["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|x| x["id"] == id.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(retired["status"], "retired", "{list}");
    assert!(actor_models(&app, &admin)
        .await
        .iter()
        .all(|m| m == "shipped:risk-v1"));
    let (st, e) = app
        .json(Method::POST, "/api/admin/risk/rollback", Some(&admin), None)
        .await;
    assert_error(st, &e, StatusCode::CONFLICT);

    // Each step is audited with the admin's identity.
    let (_, audit) = app
        .json(Method::GET, "/api/audit-logs?limit=200", Some(&admin), None)
        .await;
    let actions: Vec<(String, String)> = audit["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["action"].as_str().unwrap_or("").to_string(),
                        e["actor"]["email"]
                            .as_str()
                            .or(e["actor_email"].as_str())
                            .unwrap_or("")
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    for want in [
        "risk_model.upload",
        "risk_model.graduate",
        "risk_model.rollback",
        "risk.recompute",
    ] {
        assert!(
            actions.iter().any(|(a, who)| a == want && who == ADMIN),
            "{want} not audited as {ADMIN}: {actions:?}"
        );
    }
}
both!(graduation_hot_swaps_every_actor_and_rollback_restores);

/// (probability, model, band) of every running spot instance.
async fn spot_risk(app: &TestApp, token: &str) -> Vec<(f64, String, String)> {
    let (_, list) = app
        .json(
            Method::GET,
            "/api/instances/unregistered",
            Some(token),
            None,
        )
        .await;
    let mut out = Vec::new();
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(token), None)
        .await;
    let mut items: Vec<Value> = list["items"].as_array().cloned().unwrap_or_default();
    for c in clusters["items"].as_array().cloned().unwrap_or_default() {
        let (_, inst) = app
            .json(
                Method::GET,
                &format!("/api/clusters/{}/instances", c["id"].as_str().unwrap_or("")),
                Some(token),
                None,
            )
            .await;
        items.extend(inst["items"].as_array().cloned().unwrap_or_default());
    }
    for i in items
        .iter()
        .filter(|i| i["lifecycle"] == "spot" && i["state"] == "running")
    {
        if let Some(p) = i["interruption_probability"].as_f64() {
            out.push((
                p,
                i["risk_model"].as_str().unwrap_or("").to_string(),
                i["risk_band"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out
}

async fn hive_flag_overrides_the_model_to_avoid(b: Backend) {
    let app = TestApp::start(b).await;
    let s = app.signup("Flagged").await;
    link_sim(&app, &s, "123456789012", "Prod").await;
    let (_, clusters) = app
        .json(Method::GET, "/api/clusters", Some(&s.access), None)
        .await;
    let cid = clusters["items"][0]["id"]
        .as_str()
        .expect("cluster")
        .to_string();
    let (_, inst) = app
        .json(
            Method::GET,
            &format!("/api/clusters/{cid}/instances"),
            Some(&s.access),
            None,
        )
        .await;
    let spot = inst["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|i| {
            i["lifecycle"] == "spot"
                && i["state"] == "running"
                && i["risk_band"] != "AVOID"
                && i["interruption_probability"].is_number()
        })
        .cloned()
        .expect("a scored, non-AVOID spot instance");
    let pool = PoolId {
        region: "us-east-1".into(),
        az: spot["az"].as_str().expect("az").into(),
        instance_type: spot["instance_type"].as_str().expect("type").into(),
    };
    app.state
        .hive
        .flag(&pool, RiskSignal::Interruption, chrono::Utc::now())
        .await
        .expect("flag");
    let (_, detail) = app
        .json(
            Method::GET,
            &format!("/api/instances/{}", spot["id"].as_str().expect("id")),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(detail["instance"]["risk_band"], "AVOID", "{detail}");
    assert_eq!(detail["instance"]["pool_flagged"], true);
    // The model's own probability is still reported next to the override.
    assert_eq!(
        detail["instance"]["interruption_probability"],
        spot["interruption_probability"]
    );
    for alt in detail["alternatives"].as_array().expect("alternatives") {
        assert!(alt["interruption_band"].is_string(), "{alt}");
    }
}
both!(hive_flag_overrides_the_model_to_avoid);

/// Two replicas on one PostgreSQL database and one Redis: a graduation on the first swaps the
/// model on the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graduation_reaches_other_replicas_through_redis() {
    let redis = "redis://127.0.0.1:6379";
    let app = TestApp::start_with_redis(Backend::Postgres, test_config(), redis).await;
    let admin = super_admin(&app).await;
    let mut cfg = test_config();
    cfg.job_queue = app.state.cfg.job_queue.clone();
    let replica = spot_api::AppState::build(
        app.db.clone(),
        cfg,
        spot_api::state::StateOptions {
            connector: None,
            redis_url: Some(redis.into()),
        },
    )
    .await
    .expect("second replica");
    assert_eq!(replica.risk.current().id, "shipped:risk-v1");
    let (st, m) = upload(
        &app,
        &admin,
        "always-risky",
        onnx("testdata/always_risky.onnx"),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    let id = m["id"].as_str().expect("id").to_string();
    crate::lab::seed_passing_lab_results(&app.db, &id).await;
    let (st, _) = app
        .json(
            Method::POST,
            &format!("/api/admin/risk/models/{id}/graduate"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let mut seen = String::new();
    for _ in 0..100 {
        seen = replica.risk.current().id.clone();
        if seen == id {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen, id, "the second replica never swapped");
    replica.actors.shutdown();
}
