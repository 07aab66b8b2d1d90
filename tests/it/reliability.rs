//! Reliability figures of the job system, each a test:
//!
//! - `kill -9` of the real server in the middle of a 1,000-item clean-up batch on the
//!   simulator, then a restart on the same data directory: the batch is resumed and ends
//!   with every item done, 0 items lost and 0 acted on twice — counted on the simulator's
//!   journal, which records every change the cloud made, once per line;
//! - the server stopped (`SIGSTOP`) past the orphan timeout in the middle of that batch,
//!   then continued: the batch ends with every item acted on once;
//! - a batch handed to a new delivery while its worker was unresponsive: the old worker
//!   writes nothing more, the new delivery finishes every item;
//! - the queue's PostgreSQL connections terminated (`pg_terminate_backend`), together with
//!   the application pool's, several times during a batch: the batch completes, and the
//!   retries it needed are on the job;
//! - transient cloud errors are retried and counted, a permission error aborts the batch.
//!
//! (SIGTERM during an optimization and 10 concurrent Optimize Now requests are in
//! `jobs.rs`.)

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use spot_actors::connect::SimConnector;
use spot_cloud::sim::journal::{self, Entry};
use spot_cloud::sim::{Fault, Method as Call};
use spot_cloud::CloudError;

use crate::inventory::link_sim;
use crate::risk::wait_job;
use crate::support::{Backend, TestApp};

/// A `serve --demo` child process on a data directory.
struct Server {
    child: std::process::Child,
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Server {
    async fn start(dir: &Path) -> Server {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spot-optimizer"))
            .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args([
                "--sim-profile",
                "cleanup:1000",
                "--sim-journal",
                "--job-orphan-after",
                "3",
            ])
            .env_remove("DATABASE_URL")
            .env_remove("SPOT_SECRET_KEY")
            .env_remove("SPOT_JWT_SECRET")
            .env_remove("REDIS_URL")
            .env_remove("SAFE_MODE")
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn the server");
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
        let deadline = Instant::now() + Duration::from_secs(60);
        while base.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                panic!("the demo server did not start within 60 s");
            };
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
        Server {
            child,
            base,
            token,
            http,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> Value {
        let (st, v) = self.call(Method::GET, path, None).await;
        assert_eq!(st, StatusCode::OK, "GET {path}: {v}");
        v
    }

    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every change the simulated accounts made, per resource and kind of change.
fn journaled(dir: &Path) -> BTreeMap<(String, &'static str), usize> {
    let mut out = BTreeMap::new();
    let Ok(files) = std::fs::read_dir(dir.join("sim")) else {
        return out;
    };
    for f in files.flatten() {
        for e in journal::read(&f.path()).expect("journal") {
            let op = match &e {
                Entry::CreateSnapshot { .. } => "create_snapshot",
                Entry::DeleteVolume { .. } => "delete_volume",
                Entry::DeleteSnapshot { .. } => "delete_snapshot",
                Entry::Terminate { .. } => "terminate",
            };
            for r in e.resources() {
                *out.entry((r.to_string(), op)).or_insert(0) += 1;
            }
        }
    }
    out
}

/// Waits for the demo's 1,000 orphaned volumes and starts their clean-up batch: the
/// account, the (row id, volume id) pairs and the job id.
async fn start_cleanup_batch(server: &Server) -> (String, Vec<(String, String)>, String) {
    // The demo accounts are discovered: 1,000 orphaned volumes in one of them.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (account, rows) = loop {
        // Every page of the list.
        let mut listed = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = server
                .get(&format!("/api/volumes/orphaned?limit=500{cursor}"))
                .await;
            listed.extend(page["items"].as_array().expect("items").iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        let mut by_account: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
        for v in &listed {
            by_account
                .entry(v["account_id"].as_str().expect("account").to_string())
                .or_default()
                .push((
                    v["id"].as_str().expect("id").to_string(),
                    v["volume_id"].as_str().expect("volume").to_string(),
                ));
        }
        if let Some((a, rows)) = by_account.into_iter().find(|(_, r)| r.len() >= 1000) {
            break (a, rows);
        }
        assert!(
            Instant::now() < deadline,
            "the demo accounts were not discovered"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let rows = rows[..1000].to_vec();
    let ids: Vec<&str> = rows.iter().map(|(r, _)| r.as_str()).collect();
    let (st, job) = server
        .call(
            Method::POST,
            "/api/volumes/orphaned/cleanup",
            Some(json!({"ids": ids})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let job_id = job["id"].as_str().expect("job id").to_string();

    (account, rows, job_id)
}

/// Waits until the batch has run `percent` % of its items (and has not ended).
async fn wait_progress(server: &Server, job_id: &str, percent: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = server.get(&format!("/api/jobs/{job_id}")).await;
        assert_ne!(j["status"], "succeeded", "the batch ended too early: {j}");
        if j["progress"].as_i64().unwrap_or(0) >= percent {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the batch does not progress: {j}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the job has ended.
async fn wait_end(server: &Server, job_id: &str, what: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let j = server.get(&format!("/api/jobs/{job_id}")).await;
        if !matches!(j["status"].as_str(), Some("queued" | "running")) {
            break j;
        }
        assert!(Instant::now() < deadline, "{what}: {j}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Each of `rows`' volumes was snapshotted once and deleted once, and the cloud made no
/// other change.
fn assert_each_volume_once(dir: &Path, rows: &[(String, String)]) {
    let after = journaled(dir);
    for (_, vol) in rows {
        for op in ["create_snapshot", "delete_volume"] {
            assert_eq!(
                after.get(&(vol.clone(), op)).copied(),
                Some(1),
                "{vol}: {op} exactly once"
            );
        }
    }
    assert_eq!(
        after.values().sum::<usize>(),
        2 * rows.len(),
        "no other change: {:?}",
        after
            .iter()
            .filter(|((v, _), _)| !rows.iter().any(|(_, r)| r == v))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_1000_item_batch_loses_no_item_and_acts_on_none_twice() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("spot-kill9-{}", uuid::Uuid::new_v4().simple()));
    let started = Instant::now();
    let server = Server::start(&dir).await;

    let (account, rows, job_id) = start_cleanup_batch(&server).await;
    let rows = &rows;

    // kill -9 once a good part of the batch has run.
    wait_progress(&server, &job_id, 25).await;
    server.kill_9();
    let before = journaled(&dir);
    let deleted_before = before
        .keys()
        .filter(|(_, op)| *op == "delete_volume")
        .count();
    assert!(
        (100..1000).contains(&deleted_before),
        "killed mid-batch: {deleted_before} volumes deleted"
    );

    // Restart on the same data directory: the job is resumed and finishes.
    let server = Server::start(&dir).await;
    let job = wait_end(&server, &job_id, "the batch was not resumed").await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let items = server.get(&format!("/api/jobs/{job_id}/items")).await;
    assert_eq!(items["done"], 1000, "0 items lost: {}", items["job"]);
    assert_eq!(items["pending"], 0);
    for it in items["items"].as_array().expect("items") {
        assert_eq!(it["status"], "done", "{it}");
        assert_eq!(it["account_id"], account.as_str());
        assert!(it["result"]["snapshot_id"].is_string(), "{it}");
    }

    // The cloud's own record: each volume snapshotted once and deleted once, nothing else.
    assert_each_volume_once(&dir, rows);
    // Each safety snapshot is the one tagged with its item's key.
    let listed: Vec<(String, String)> = items["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| {
            (
                i["key"].as_str().unwrap_or_default().to_string(),
                i["idempotency_key"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let tokens: BTreeMap<String, String> = std::fs::read_dir(dir.join("sim"))
        .expect("journal dir")
        .flatten()
        .flat_map(|f| journal::read(&f.path()).expect("journal"))
        .filter_map(|e| match e {
            Entry::CreateSnapshot {
                volume_id,
                client_token,
                ..
            } => Some((volume_id, client_token)),
            _ => None,
        })
        .collect();
    for (vol, key) in &listed {
        assert_eq!(tokens.get(vol), Some(key), "{vol}");
    }
    let audit: Value = server
        .get("/api/audit-logs?action=job.resumed&limit=10")
        .await;
    let resumed = audit["items"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|e| e["resource_id"] == job_id.as_str())
                .count()
        })
        .unwrap_or(0);
    assert_eq!(resumed, 1, "the resume is audited: {audit}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "kill -9 at {deleted_before}/1000 items; resumed and finished in {:?}",
        started.elapsed()
    );
}

/// Sends `signal` (`STOP`, `CONT`) to the server process.
fn signal(server: &Server, signal: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(server.child.id().to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill -{signal}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_past_the_orphan_timeout_acts_on_no_item_twice() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("spot-sigstop-{}", uuid::Uuid::new_v4().simple()));
    let server = Server::start(&dir).await;
    let (account, rows, job_id) = start_cleanup_batch(&server).await;
    wait_progress(&server, &job_id, 20).await;

    // SIGSTOP well past the orphan timeout (3 s here), then SIGCONT: the frozen worker
    // comes back while its heartbeat is stale. Whichever wins — its own heartbeat, or the
    // sweep that hands the job to a new delivery — no item may be acted on twice.
    signal(&server, "STOP");
    tokio::time::sleep(Duration::from_secs(8)).await;
    signal(&server, "CONT");

    let job = wait_end(&server, &job_id, "the batch did not finish after SIGCONT").await;
    assert_eq!(job["status"], "succeeded", "{job}");
    let items = server.get(&format!("/api/jobs/{job_id}/items")).await;
    assert_eq!(items["done"], 1000, "0 items lost: {}", items["job"]);
    for it in items["items"].as_array().expect("items") {
        assert_eq!(it["status"], "done", "{it}");
        assert_eq!(it["account_id"], account.as_str());
    }
    assert_each_volume_once(&dir, &rows);
    let audit: Value = server
        .get("/api/audit-logs?action=job.resumed&limit=10")
        .await;
    let taken_over = audit["items"]
        .as_array()
        .is_some_and(|a| a.iter().any(|e| e["resource_id"] == job_id.as_str()));
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!(
        "SIGSTOP 8 s at >=20 %: finished, each item once (handed to a new delivery: {taken_over})"
    );
}

/// Backends of this database whose application name is `name`.
async fn backends_named(admin: &sqlx::PgPool, name: &str) -> Vec<i32> {
    sqlx::query_as::<_, (i32,)>(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()",
    )
    .bind(name)
    .fetch_all(admin)
    .await
    .expect("pg_stat_activity")
    .into_iter()
    .map(|r| r.0)
    .collect()
}

/// An organization with a linked simulated account whose snapshots take about a second
/// to complete (the batch runs for a while), and the clean-up batch of its orphaned
/// volumes started: (app, session, number of items, job id).
async fn slow_volume_cleanup(
    backend: Backend,
    org: &str,
) -> (TestApp, crate::support::Session, usize, String) {
    let connector = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(backend, connector.clone()).await;
    let s = app.signup(org).await;
    let account = "123456789012";
    link_sim(&app, &s, account, "Prod").await;
    let sim = connector.world(account, "us-east-1").expect("sim world");
    // Each volume waits about a second for its snapshot: the batch runs for a while.
    sim.set_snapshot_completion(Duration::from_millis(800))
        .expect("completion");
    let (_, listed) = app
        .json(Method::GET, "/api/volumes/orphaned", Some(&s.access), None)
        .await;
    let rows: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|v| v["id"].as_str())
        .collect();
    assert!(rows.len() >= 3, "{listed}");
    let (st, job) = app
        .json(
            Method::POST,
            "/api/volumes/orphaned/cleanup",
            Some(&s.access),
            Some(json!({"ids": rows})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let job_id = job["id"].as_str().expect("id").to_string();
    (app, s, rows.len(), job_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_database_connections_do_not_stop_a_batch() {
    let (app, s, n_items, job_id) = slow_volume_cleanup(Backend::Postgres, "Blip").await;

    let admin = sqlx::PgPool::connect(&crate::support::pg_base_url())
        .await
        .expect("admin connection");
    let queue_name: String = format!("spot-queue-{}", app.state.cfg.job_queue)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(63)
        .collect();
    // The application pool's connections, by their backend pids.
    let mut app_pids = Vec::new();
    {
        let mut held = Vec::new();
        for _ in 0..app.db.pool.size().max(1) {
            let Ok(mut c) = app.db.pool.acquire().await else {
                break;
            };
            let pid: (i32,) = sqlx::query_as("SELECT pg_backend_pid()")
                .fetch_one(&mut *c)
                .await
                .expect("pid");
            app_pids.push(pid.0);
            held.push(c);
        }
    }
    let mut killed = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    for round in 0..4 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let mut pids = backends_named(&admin, &queue_name).await;
        if round % 2 == 1 {
            pids.extend(&app_pids);
        }
        for pid in pids {
            let r: (bool,) = sqlx::query_as("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .fetch_one(&admin)
                .await
                .expect("terminate");
            if r.0 {
                killed += 1;
            }
        }
        assert!(Instant::now() < deadline);
    }
    assert!(killed >= 2, "no connection of the queue was terminated");
    let done = wait_job(&app, &s.access, &format!("/api/jobs/{job_id}")).await;
    assert_eq!(done["status"], "succeeded", "the batch completes: {done}");
    assert_eq!(done["result"]["done"], n_items, "{done}");
    // A new job still goes through the restarted queue.
    let (_, snaps) = app
        .json(Method::GET, "/api/snapshots/unused", Some(&s.access), None)
        .await;
    let snap = snaps["items"][0]["id"]
        .as_str()
        .expect("an unused snapshot");
    let (st, job) = app
        .json(
            Method::POST,
            "/api/snapshots/unused/cleanup",
            Some(&s.access),
            Some(json!({"ids": [snap], "dry_run": true})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let again = wait_job(
        &app,
        &s.access,
        &format!("/api/jobs/{}", job["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(again["status"], "succeeded", "{again}");
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_and_a_permission_error_aborts_the_batch() {
    let connector = Arc::new(SimConnector::new(42));
    let app = TestApp::start_with_connector(Backend::Sqlite, connector.clone()).await;
    let s = app.signup("Faults").await;
    let account = "123456789012";
    link_sim(&app, &s, account, "Prod").await;
    let sim = connector.world(account, "us-east-1").expect("sim world");
    let (_, listed) = app
        .json(Method::GET, "/api/snapshots/unused", Some(&s.access), None)
        .await;
    let rows: Vec<&str> = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|v| v["id"].as_str())
        .collect();
    assert!(rows.len() >= 3, "{listed}");

    // Throttling twice, then a provider error: retried with backoff, the batch succeeds.
    sim.inject_fault_on(Call::DeleteSnapshot, Fault::Throttle { calls: 2 });
    sim.inject_fault_on(
        Call::DeleteSnapshot,
        Fault::Fail {
            calls: 1,
            error: CloudError::Other("HTTP 503 from EC2".into()),
        },
    );
    let (st, job) = app
        .json(
            Method::POST,
            "/api/snapshots/unused/cleanup",
            Some(&s.access),
            Some(json!({"ids": [rows[0]]})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let done = wait_job(
        &app,
        &s.access,
        &format!("/api/jobs/{}", job["id"].as_str().expect("id")),
    )
    .await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["done"], 1, "{done}");
    assert_eq!(
        done["result"]["retries"], 3,
        "retries are on the job: {done}"
    );
    assert_eq!(done["result"]["items"][0]["retries"], 3, "{done}");
    sim.clear_faults();

    // Permission denied: never retried; the batch is aborted and the rest not started.
    sim.inject_fault_on(
        Call::DeleteSnapshot,
        Fault::Fail {
            calls: 100,
            error: CloudError::Unauthorized("ec2:DeleteSnapshot is not allowed".into()),
        },
    );
    let deletes = sim.call_count(Call::DeleteSnapshot);
    let rest = &rows[1..];
    let (st, job) = app
        .json(
            Method::POST,
            "/api/snapshots/unused/cleanup",
            Some(&s.access),
            Some(json!({"ids": rest})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_str().expect("id").to_string();
    let done = wait_job(&app, &s.access, &format!("/api/jobs/{id}")).await;
    assert_eq!(done["status"], "failed", "{done}");
    let message = done["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("aborted:"), "{message}");
    assert!(message.contains("DeleteSnapshot"), "{message}");
    assert_eq!(
        sim.call_count(Call::DeleteSnapshot),
        deletes + 1,
        "not retried"
    );
    assert_eq!(done["result"]["failed"], 1, "{done}");
    assert_eq!(done["result"]["skipped"], rest.len() - 1, "{done}");
    assert_eq!(done["result"]["items"][0]["error_class"], "job", "{done}");
    let (_, items) = app
        .json(
            Method::GET,
            &format!("/api/jobs/{id}/items"),
            Some(&s.access),
            None,
        )
        .await;
    let second = &items["items"][1];
    assert_eq!(second["status"], "skipped", "{second}");
    assert!(
        second["error"]
            .as_str()
            .unwrap_or_default()
            .contains("aborted"),
        "{second}"
    );
    sim.clear_faults();
}

/// The sweep hands a clean-up batch to a new delivery while its worker is unresponsive
/// (as after a `SIGSTOP` past the orphan timeout; here the hand-over is made directly, so
/// the old worker is certain to lose the race). The old worker must stop without writing
/// anything: the item it had in hand and the items it had not reached are the new
/// delivery's, which finishes every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_handed_to_a_new_delivery_is_finished_by_it_not_skipped_by_the_old_worker() {
    let (app, s, n_items, job_id) = slow_volume_cleanup(Backend::Sqlite, "Handover").await;
    let items_path = format!("/api/jobs/{job_id}/items");
    let statuses = |items: &Value| -> Vec<String> {
        items["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["status"].as_str().unwrap_or("?").to_string())
            .collect()
    };
    // The first item is done: the worker is inside the batch.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, items) = app
            .json(Method::GET, &items_path, Some(&s.access), None)
            .await;
        if statuses(&items).iter().any(|st| st == "done") {
            break;
        }
        assert!(Instant::now() < deadline, "no item done: {items}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The sweep's hand-over: the job is queued again for a new delivery (not sent yet).
    let taken = spot_models::jobs::requeue_stale(
        &app.db,
        spot_models::now_ms() + 60_000,
        spot_jobs::RESUMABLE,
    )
    .await
    .expect("requeue");
    assert_eq!(taken.len(), 1);
    // The old worker finds the job lost at its next checkpoint (within one poll of the
    // snapshot it waits for) and stops: it writes no item and no outcome.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (_, items) = app
        .json(Method::GET, &items_path, Some(&s.access), None)
        .await;
    let st = statuses(&items);
    assert!(
        st.iter().all(|x| x != "skipped" && x != "failed"),
        "the old worker wrote items it no longer owns: {st:?}"
    );
    assert!(
        st.iter().any(|x| x != "done"),
        "items left to resume: {st:?}"
    );
    let (_, j) = app
        .json(
            Method::GET,
            &format!("/api/jobs/{job_id}"),
            Some(&s.access),
            None,
        )
        .await;
    assert_eq!(j["status"], "queued", "{j}");

    // The new delivery finishes every item.
    app.state
        .jobs
        .enqueue_id(&job_id)
        .await
        .expect("send again");
    let done = wait_job(&app, &s.access, &format!("/api/jobs/{job_id}")).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["done"], n_items, "{done}");
    assert_eq!(done["result"]["skipped"], 0, "{done}");
}
