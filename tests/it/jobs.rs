//! The job system's control: one active optimization per cluster under concurrent
//! requests (the partial unique index), cancel (queued: at once; running: at the next
//! action boundary, before anything touches the cloud), the reaper that fails a job whose
//! worker stopped beating (so the cluster is not blocked for good), and a clean shutdown
//! that leaves no job `running` and gives the account leases up — in process on SQLite and
//! PostgreSQL, and with SIGTERM on the real binary.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use spot_models::jobs;

use crate::both;
use crate::inventory::link_sim;
use crate::optimize::install_agent;
use crate::risk::wait_job;
use crate::support::{assert_error, Backend, Session, TestApp};

const ACCOUNT: &str = "123456789012";

/// A linked sim account; returns the session and its costliest cluster's id.
async fn cluster(app: &TestApp) -> (Session, String) {
    let s = app.signup("Jobs").await;
    link_sim(app, &s, ACCOUNT, "Prod").await;
    let (_, clusters) = app
        .json(
            Method::GET,
            "/api/clusters?sort=-cost",
            Some(&s.access),
            None,
        )
        .await;
    let id = clusters["items"][0]["id"]
        .as_str()
        .expect("cluster id")
        .to_string();
    (s, id)
}

async fn audit_actions(app: &TestApp, org: &str) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT action, actor_kind FROM audit_logs WHERE organization_id = $1 ORDER BY seq",
    )
    .bind(org)
    .fetch_all(&app.db.pool)
    .await
    .expect("audit")
}

async fn running_instances(sim: &SimConnector) -> Vec<String> {
    use spot_cloud::Cloud;
    let cloud = sim.world(ACCOUNT, "us-east-1").expect("world");
    let mut ids: Vec<String> = cloud
        .describe_instances()
        .await
        .expect("describe")
        .into_iter()
        .filter(|i| i.state == spot_cloud::InstanceState::Running)
        .map(|i| i.id)
        .collect();
    ids.sort();
    ids
}

/// An optimization job row of `s`'s organization on `cluster`, inserted (not queued).
async fn insert_job(app: &TestApp, s: &Session, cluster: &str, dry_run: bool) -> jobs::JobRow {
    jobs::insert(
        &app.db,
        jobs::NewJob {
            organization_id: Some(&s.org_id),
            kind: "optimize",
            target_id: Some(cluster),
            dry_run,
            requested_by: Some(&s.user_id),
            safe_mode: false,
        },
    )
    .await
    .expect("insert")
}

async fn post(app: &TestApp, s: &Session, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    app.json(Method::POST, path, Some(&s.access), body).await
}

async fn ten_concurrent_requests_queue_exactly_one_optimization(b: Backend) {
    let app = TestApp::start(b).await;
    let (s, id) = cluster(&app).await;
    // The worker is stopped first, so the accepted job stays queued and the race is only
    // between the ten requests (the check-then-insert and the unique index behind it).
    app.state.jobs.shutdown(Duration::from_secs(1)).await;
    let path = format!("/api/clusters/{id}/optimize");
    let calls = (0..10).map(|_| post(&app, &s, &path, Some(json!({"dry_run": true}))));
    let answers = futures_util::future::join_all(calls).await;
    let accepted: Vec<&Value> = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::ACCEPTED)
        .map(|(_, j)| j)
        .collect();
    assert_eq!(accepted.len(), 1, "{answers:?}");
    for (st, body) in answers.iter().filter(|(st, _)| *st != StatusCode::ACCEPTED) {
        let e = assert_error(*st, body, StatusCode::CONFLICT);
        assert!(
            e["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("already"),
            "{e}"
        );
    }
    let job_id = accepted[0]["id"].as_str().expect("id").to_string();
    let rows: Vec<(String,)> =
        sqlx::query_as("SELECT status FROM jobs WHERE target_id = $1 AND kind = 'optimize'")
            .bind(&id)
            .fetch_all(&app.db.pool)
            .await
            .expect("jobs");
    assert_eq!(rows.len(), 1, "exactly one job row: {rows:?}");

    // Cancelling the queued job ends it at once; it frees the cluster.
    let (st, j) = post(&app, &s, &format!("/api/jobs/{job_id}/cancel"), None).await;
    assert_eq!(st, StatusCode::OK, "{j}");
    assert_eq!(j["status"], "cancelled", "{j}");
    assert!(j["cancel_requested_at"].is_string(), "{j}");
    let (st, e) = post(&app, &s, &format!("/api/jobs/{job_id}/cancel"), None).await;
    let e = assert_error(st, &e, StatusCode::CONFLICT);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("cancelled"),
        "{e}"
    );
    let (st, j) = post(&app, &s, &path, Some(json!({"dry_run": true}))).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{j}");

    // Tenancy and roles: another organization's job is 404, a viewer may not cancel.
    let other = app.signup("Other").await;
    let (st, e) = post(&app, &other, &format!("/api/jobs/{job_id}/cancel"), None).await;
    assert_error(st, &e, StatusCode::NOT_FOUND);
    let viewer = app.add_member(&s, "viewer").await;
    let (st, e) = post(&app, &viewer, &format!("/api/jobs/{job_id}/cancel"), None).await;
    assert_error(st, &e, StatusCode::FORBIDDEN);
    let actions = audit_actions(&app, &s.org_id).await;
    assert!(
        actions
            .iter()
            .any(|(a, k)| a == "job.cancel" && k == "user"),
        "{actions:?}"
    );
}
both!(ten_concurrent_requests_queue_exactly_one_optimization);

async fn a_job_whose_worker_died_is_reaped_and_frees_the_cluster(b: Backend) {
    let app = TestApp::start(b).await;
    let (s, id) = cluster(&app).await;
    // A job claimed by a worker that then died (kill -9): running, with a heartbeat that
    // stopped long ago.
    let job = insert_job(&app, &s, &id, true).await;
    assert!(jobs::claim(&app.db, &job.id, "worker-dead")
        .await
        .expect("claim"));
    let path = format!("/api/clusters/{id}/optimize");
    let (st, e) = post(&app, &s, &path, Some(json!({"dry_run": true}))).await;
    assert_error(st, &e, StatusCode::CONFLICT);
    // A live heartbeat keeps it: the reaper leaves fresh jobs alone.
    assert_eq!(spot_jobs::reap_orphans(&app.db).await.expect("reap"), 0);
    sqlx::query("UPDATE jobs SET heartbeat_at = $1 WHERE id = $2")
        .bind(spot_models::now_ms() - (jobs::ORPHAN_AFTER_SECS + 5) * 1000)
        .bind(&job.id)
        .execute(&app.db.pool)
        .await
        .expect("age the heartbeat");
    assert_eq!(spot_jobs::reap_orphans(&app.db).await.expect("reap"), 1);
    let (_, j) = app
        .json(
            Method::GET,
            &format!("/api/jobs/{}", job.id),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(j["status"], "failed", "{j}");
    assert!(
        j["message"].as_str().unwrap_or("").contains("heartbeat"),
        "{j}"
    );
    // The worker comes back (SIGCONT): its job is gone, it may not write or act.
    assert_eq!(
        jobs::heartbeat(&app.db, &job.id, "worker-dead")
            .await
            .expect("beat"),
        jobs::Beat::Lost
    );
    assert!(!jobs::finish(
        &app.db,
        &job.id,
        "worker-dead",
        jobs::SUCCEEDED,
        "late",
        "{}"
    )
    .await
    .expect("finish"));
    let (_, j) = app
        .json(
            Method::GET,
            &format!("/api/jobs/{}", job.id),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(
        j["status"], "failed",
        "a late worker does not overwrite: {j}"
    );
    let actions = audit_actions(&app, &s.org_id).await;
    assert!(
        actions
            .iter()
            .any(|(a, k)| a == "job.reaped" && k == "system"),
        "{actions:?}"
    );
    // The cluster is free again: a new optimization runs to the end (from the agent's
    // view, the only source of nodes and pods).
    crate::optimize::install_agent(&app, &s, &id).await;
    let (st, j) = post(&app, &s, &path, Some(json!({"dry_run": true}))).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{j}");
    let done = wait_job(
        &app,
        &s.access,
        &format!("/api/jobs/{}", j["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert!(done["heartbeat_at"].is_string(), "{done}");
}
both!(a_job_whose_worker_died_is_reaped_and_frees_the_cluster);

async fn a_cancelled_running_job_stops_before_its_next_action(b: Backend) {
    let sim = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(b, sim.clone()).await;
    let (s, id) = cluster(&app).await;
    let (st, p) = app
        .json(
            Method::PUT,
            &format!("/api/clusters/{id}/policy"),
            Some(&s.access),
            Some(json!({"aggressiveness": "aggressive", "stabilization_window_secs": 0})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    install_agent(&app, &s, &id).await;
    let before = running_instances(&sim).await;
    // A cancel that lands while the worker is claiming and planning: the request is on the
    // row before the first action boundary.
    let job = insert_job(&app, &s, &id, false).await;
    sqlx::query("UPDATE jobs SET cancel_requested_at = $1 WHERE id = $2")
        .bind(spot_models::now_ms())
        .bind(&job.id)
        .execute(&app.db.pool)
        .await
        .expect("cancel request");
    app.state.jobs.enqueue(&job).await.expect("enqueue");
    let done = wait_job(&app, &s.access, &format!("/api/jobs/{}", job.id)).await;
    assert_eq!(done["status"], "cancelled", "{done}");
    let planned = done["plan"]["actions"].as_array().expect("plan").len();
    assert!(planned > 0, "the aggressive policy plans actions: {done}");
    assert_eq!(done["result"]["executed"], json!([]), "{done}");
    assert_eq!(
        done["result"]["not_run"].as_array().map(Vec::len),
        Some(planned),
        "{done}"
    );
    assert!(
        done["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("cancelled: 0 of"),
        "{done}"
    );
    // Nothing was launched or terminated.
    assert_eq!(running_instances(&sim).await, before);
}
both!(a_cancelled_running_job_stops_before_its_next_action);

async fn shutdown_leaves_no_job_running_and_releases_the_leases(b: Backend) {
    let app = TestApp::start(b).await;
    let (s, id) = cluster(&app).await;
    let held: Vec<(String,)> = sqlx::query_as("SELECT account_id FROM actor_leases")
        .fetch_all(&app.db.pool)
        .await
        .expect("leases");
    assert!(!held.is_empty(), "the account actor holds a lease");
    // A job this replica's worker is in the middle of (it never reaches a boundary).
    let worker = app.state.jobs.runtime().worker_id.clone();
    let job = insert_job(&app, &s, &id, true).await;
    assert!(jobs::claim(&app.db, &job.id, &worker).await.expect("claim"));
    assert_eq!(app.state.jobs.shutdown(Duration::from_millis(300)).await, 1);
    let row = jobs::get(&app.db, &job.id)
        .await
        .expect("get")
        .expect("row");
    assert_eq!(row.status, jobs::FAILED);
    assert!(row.message.unwrap_or_default().contains("shut down"));
    let (st, r) = app.json(Method::GET, "/readyz", None, None).await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{r}");
    assert_eq!(r["status"], "shutting down");
    let released = app
        .state
        .actors
        .shutdown_and_release(Duration::from_secs(10))
        .await;
    assert!(released >= 1);
    let left: Vec<(String,)> = sqlx::query_as("SELECT account_id FROM actor_leases")
        .fetch_all(&app.db.pool)
        .await
        .expect("leases");
    assert!(left.is_empty(), "{left:?}");
    let actions = audit_actions(&app, &s.org_id).await;
    assert!(
        actions
            .iter()
            .any(|(a, k)| a == "job.interrupted" && k == "system"),
        "{actions:?}"
    );
}
both!(shutdown_leaves_no_job_running_and_releases_the_leases);

/// The real binary: `serve --demo`, Optimize Now on a demo cluster, SIGTERM at once. The
/// process exits cleanly, no job is left `running` and no account lease is held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_an_optimization_leaves_nothing_running() {
    use std::io::BufRead;
    let dir = std::env::temp_dir().join(format!("spot-term-{}", uuid::Uuid::new_v4().simple()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spot-optimizer"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env_remove("DATABASE_URL")
        .env_remove("SPOT_SECRET_KEY")
        .env_remove("SPOT_JWT_SECRET")
        .env_remove("REDIS_URL")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let (mut email, mut password, mut base) = (None, None, None);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while base.is_none() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = rx
            .recv_timeout(left)
            .expect("the demo server did not start");
        let t = line.trim();
        if let Some(v) = t.strip_prefix("email:") {
            email = Some(v.trim().to_string());
        } else if let Some(v) = t.strip_prefix("password:") {
            password = Some(v.trim().to_string());
        } else if let Some(rest) = t.strip_prefix("Spot Optimizer is running at ") {
            base = rest.split_whitespace().next().map(str::to_string);
        }
    }
    let base = base.expect("address");
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/auth/token"))
        .json(&json!({"email": email.expect("email"), "password": password.expect("password")}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("token");
    let token = login["access_token"]
        .as_str()
        .expect("access token")
        .to_string();
    let clusters: Value = http
        .get(format!("{base}/api/clusters"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("clusters")
        .json()
        .await
        .expect("json");
    let cluster = clusters["items"][0]["id"]
        .as_str()
        .expect("a demo cluster")
        .to_string();
    let r = http
        .post(format!("{base}/api/clusters/{cluster}/optimize"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .expect("optimize");
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not stop within 60 s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    let db = spot_models::Db::connect(&format!("sqlite://{}/spot.db", dir.display()))
        .await
        .expect("open the server's database");
    let running: Vec<(String, String)> =
        sqlx::query_as("SELECT id, status FROM jobs WHERE status IN ('queued', 'running')")
            .fetch_all(&db.pool)
            .await
            .expect("jobs");
    let all: Vec<(String, String)> = sqlx::query_as("SELECT id, status FROM jobs")
        .fetch_all(&db.pool)
        .await
        .expect("jobs");
    assert!(running.iter().all(|(_, st)| st != "running"), "{all:?}");
    let leases: Vec<(String,)> = sqlx::query_as("SELECT account_id FROM actor_leases")
        .fetch_all(&db.pool)
        .await
        .expect("leases");
    assert!(leases.is_empty(), "leases left: {leases:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
