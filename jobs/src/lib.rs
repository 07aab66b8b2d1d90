//! User-triggered batches on an apalis queue: "Optimize Now" for a cluster (plan with the
//! engine, then execute through the Cloud port) and the platform-wide risk recompute.
//!
//! apalis carries delivery (SQLite storage on the embedded default, PostgreSQL in
//! production) of typed messages, one struct per kind ([`message::QueuedJob`]); the `jobs`
//! table carries status, progress and results for users. apalis
//! delivers at least once, so a worker first *claims* the job row (`queued → running`):
//! a second delivery of the same job finds it taken and does nothing, and every cloud
//! launch carries a client token derived from the job id and action index.

pub mod agent_ops;
pub mod force;
pub mod lab;
pub mod message;
pub mod optimize;
pub use spot_actors::policy;
pub mod recompute;
pub mod retry;
pub mod waste;

use std::sync::Arc;

use apalis::prelude::*;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use serde::{Deserialize, Serialize};
use spot_actors::system::{Actors, Deps};
use spot_models::audit::{self, NewAuditRecord};
use spot_models::{jobs, Backend};
use tokio::sync::Mutex;

pub const COMPONENT: &str = "CORE-EXEC";

/// Job kinds whose executor reconciles from its persisted items and the cloud: when their
/// worker dies they are put back in the queue and resumed from the first item not final,
/// instead of being failed (see [`resume_orphans`]). The clean-up batches qualify (every
/// item is idempotent); an optimization does not (a drain half done is for a human to
/// look at), so it is failed by [`reap_orphans`].
pub const RESUMABLE: &[&str] = &[
    waste::CLEANUP_VOLUMES,
    waste::CLEANUP_SNAPSHOTS,
    waste::TERMINATE_UNREGISTERED,
];

pub use message::{Envelope, QueuedJob};

/// The id-only message queues carried before messages were typed ([`QueuedJob`]); still
/// decoded, its kind is then read from the row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRequest {
    pub job_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("job queue storage: {0}")]
    Storage(String),
    #[error("database: {0}")]
    Db(#[from] spot_models::DbError),
    #[error("{0}")]
    Message(#[from] message::MessageError),
    #[error("job {0} not found")]
    NotFound(String),
}

/// Everything a job needs, shared by the worker: the actors' dependencies (database, cloud
/// connector, keyring, bus, hive mind, risk model) plus the actor handle and safe mode.
#[derive(Clone)]
pub struct JobContext {
    pub deps: Deps,
    pub actors: Actors,
    /// SAFE_MODE: every job plans and logs "would execute"; nothing touches the cloud.
    pub safe_mode: bool,
}

impl std::ops::Deref for JobContext {
    type Target = Deps;
    fn deref(&self) -> &Deps {
        &self.deps
    }
}

enum Sink {
    Sqlite(SqliteStorage<Envelope>),
    Postgres(PostgresStorage<Envelope>),
}

/// Handle to enqueue jobs and to stop the worker.
#[derive(Clone)]
pub struct JobQueue {
    sink: Arc<Mutex<Sink>>,
    rt: Arc<Runtime>,
    db: spot_models::Db,
}

/// The apalis database next to the product's: a sibling SQLite file (apalis keeps its own
/// migration history, which must not mix with ours), or the same PostgreSQL database with
/// apalis' migration history in its own `apalis` schema. PostgreSQL connections of the
/// queue are named `spot-queue-<queue>` (`application_name`, seen in `pg_stat_activity`).
fn apalis_url(db_url: &str, backend: Backend, queue: &str) -> String {
    let (base, query) = db_url.split_once('?').unwrap_or((db_url, ""));
    match backend {
        Backend::Sqlite => {
            if base.contains(":memory:") {
                return "sqlite::memory:".into();
            }
            let file = base
                .strip_suffix(".db")
                .map_or_else(|| format!("{base}.jobs"), |b| format!("{b}.jobs.db"));
            format!("{file}?mode=rwc")
        }
        Backend::Postgres => {
            let kept: Vec<&str> = query
                .split('&')
                .filter(|p| {
                    !p.is_empty()
                        && !p.starts_with("options=")
                        && !p.starts_with("application_name=")
                })
                .collect();
            let mut q = kept.join("&");
            if !q.is_empty() {
                q.push('&');
            }
            let name: String = format!("spot-queue-{queue}")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .take(63)
                .collect();
            q.push_str(&format!("application_name={name}&"));
            format!("{base}?{q}options=-csearch_path%3Dapalis")
        }
    }
}

/// One supervised apalis worker on `storage` (both backends; their types differ): when
/// the worker stops on a backend error it is rebuilt and restarted with backoff, and the
/// runtime says the queue is down meanwhile (`/readyz` reports it).
macro_rules! spawn_worker {
    ($storage:expr, $ctx:expr, $rt:expr) => {{
        let storage = $storage.clone();
        let data = Arc::new(WorkerData {
            ctx: $ctx.clone(),
            rt: $rt.clone(),
        });
        let rt = $rt.clone();
        tokio::spawn(async move {
            let mut backoff = std::time::Duration::from_secs(1);
            loop {
                let worker = WorkerBuilder::new(format!("spot-worker-{}", uuid::Uuid::new_v4()))
                    // A short poll keeps "Optimize Now" responsive (the default waits many seconds).
                    .backend(storage.clone().poll_with_interval(std::time::Duration::from_millis(250)))
                    .data(data.clone())
                    .build(handle);
                rt.set_alive(None);
                let started = std::time::Instant::now();
                let outcome = tokio::select! {
                    r = worker.run() => r.map_err(|e| e.to_string()),
                    _ = rt.stopped() => break,
                };
                if rt.is_shutting_down() {
                    break;
                }
                let error = match outcome {
                    Ok(()) => "the worker stopped".to_string(),
                    Err(e) => e,
                };
                rt.set_alive(Some(error.clone()));
                tracing::error!(component = COMPONENT, error = %error, retry_in_s = backoff.as_secs(), "job worker stopped; restarting");
                if started.elapsed() > std::time::Duration::from_secs(60) {
                    backoff = std::time::Duration::from_secs(1);
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = rt.stopped() => break,
                }
                backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
            }
        });
    }};
}

/// What the worker shares with the queue handle: its identity on job rows, whether the
/// process is shutting down, how many jobs it is running, and whether its queue is up.
pub struct Runtime {
    /// Recorded on every job this replica claims (`jobs.worker_id`).
    pub worker_id: String,
    shutting_down: std::sync::atomic::AtomicBool,
    stop: tokio::sync::watch::Sender<bool>,
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
    health: std::sync::Mutex<QueueHealth>,
}

/// The job queue as `/readyz` and the admin health page see it.
#[derive(Debug, Clone, Default)]
pub struct QueueHealth {
    /// The worker is polling the queue.
    pub alive: bool,
    /// Times the worker was restarted after stopping on an error.
    pub restarts: u64,
    /// Why it last stopped.
    pub last_error: Option<String>,
}

impl Runtime {
    fn new() -> Arc<Runtime> {
        Arc::new(Runtime {
            worker_id: format!("worker-{}", uuid::Uuid::new_v4()),
            shutting_down: Default::default(),
            stop: tokio::sync::watch::channel(false).0,
            running: Default::default(),
            idle: tokio::sync::Notify::new(),
            health: Default::default(),
        })
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn stopped(&self) {
        let mut rx = self.stop.subscribe();
        let _ = rx.wait_for(|s| *s).await;
    }

    fn set_alive(&self, error: Option<String>) {
        if let Ok(mut h) = self.health.lock() {
            match error {
                None => h.alive = true,
                Some(e) => {
                    h.alive = false;
                    h.restarts += 1;
                    h.last_error = Some(e);
                }
            }
        }
    }

    pub fn health(&self) -> QueueHealth {
        self.health.lock().map(|h| h.clone()).unwrap_or_default()
    }

    fn running(&self) -> usize {
        self.running.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The worker's data: the jobs' context and the runtime.
struct WorkerData {
    ctx: Arc<JobContext>,
    rt: Arc<Runtime>,
}

/// Why a running job must stop before its next action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// A user cancelled it.
    Cancelled,
    /// The process is shutting down (SIGTERM).
    Shutdown,
    /// It is no longer this worker's (the reaper failed it while this worker was stopped).
    Lost,
}

/// A running job's stop signal, fed by its heartbeat and by shutdown; the executor asks at
/// every action boundary ([`Control::checkpoint`]).
#[derive(Clone)]
pub struct Control {
    db: spot_models::Db,
    job_id: String,
    rt: Arc<Runtime>,
    stop: Arc<std::sync::Mutex<Option<Stop>>>,
}

impl Control {
    fn set(&self, s: Stop) {
        if let Ok(mut g) = self.stop.lock() {
            // Lost wins over everything; otherwise the first reason stays.
            if g.is_none() || s == Stop::Lost {
                *g = Some(s);
            }
        }
    }

    fn current(&self) -> Option<Stop> {
        self.stop.lock().ok().and_then(|g| *g)
    }

    /// Beats once and says whether the job may go on.
    async fn beat(&self) -> Option<Stop> {
        if self.rt.is_shutting_down() {
            self.set(Stop::Shutdown);
        }
        match jobs::heartbeat(&self.db, &self.job_id, &self.rt.worker_id).await {
            Ok(jobs::Beat::Continue) => {}
            Ok(jobs::Beat::CancelRequested) => self.set(Stop::Cancelled),
            Ok(jobs::Beat::Lost) => self.set(Stop::Lost),
            // A database blip is not a reason to stop; the next beat decides.
            Err(e) => {
                tracing::warn!(component = COMPONENT, job_id = %self.job_id, error = %e, "heartbeat not saved")
            }
        }
        self.current()
    }

    /// Called before every action that touches the cloud or the cluster: `Some` means stop
    /// now (the action must not start).
    pub async fn checkpoint(&self) -> Option<Stop> {
        self.beat().await
    }
}

impl JobQueue {
    /// Connects the queue storage, runs its migrations, and starts one worker (jobs run one
    /// at a time per replica). `queue` names the apalis queue (replicas share it).
    pub async fn start(
        db_url: &str,
        backend: Backend,
        queue: &str,
        ctx: JobContext,
    ) -> Result<JobQueue, JobError> {
        let url = apalis_url(db_url, backend, queue);
        let config_sqlite = apalis_sqlite::Config::default().queue(queue);
        let err = |e: &dyn std::fmt::Display| JobError::Storage(e.to_string());
        let db = ctx.db.clone();
        let ctx = Arc::new(ctx);
        let rt = Runtime::new();
        let sink = match backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&url).await.map_err(|e| err(&e))?;
                SqliteStorage::setup(&pool).await.map_err(|e| err(&e))?;
                let storage = SqliteStorage::<Envelope>::new(&pool).with_config(config_sqlite);
                spawn_worker!(storage, ctx, rt);
                Sink::Sqlite(storage)
            }
            Backend::Postgres => {
                // The product's own URL, query string included: `sslmode`, `sslrootcert` and
                // client certificates apply to this connection as to every other.
                let admin = sqlx::PgPool::connect(db_url).await.map_err(|e| err(&e))?;
                // Concurrent first starts race on CREATE SCHEMA; an advisory lock orders them.
                let mut conn = admin.acquire().await.map_err(|e| err(&e))?;
                sqlx::query("SELECT pg_advisory_lock(727271)")
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| err(&e))?;
                let created = sqlx::query("CREATE SCHEMA IF NOT EXISTS apalis")
                    .execute(&mut *conn)
                    .await;
                let pool = sqlx::PgPool::connect(&url).await.map_err(|e| err(&e));
                let setup = match &pool {
                    Ok(p) => PostgresStorage::setup(p).await.map_err(|e| err(&e)),
                    Err(_) => Ok(()),
                };
                let _ = sqlx::query("SELECT pg_advisory_unlock(727271)")
                    .execute(&mut *conn)
                    .await;
                drop(conn);
                admin.close().await;
                created.map_err(|e| err(&e))?;
                let pool = pool?;
                setup?;
                let config = apalis_postgres::Config::default().queue(queue);
                let storage = PostgresStorage::<Envelope>::new(&pool).with_config(config);
                spawn_worker!(storage, ctx, rt);
                Sink::Postgres(storage)
            }
        };
        let queue = JobQueue {
            sink: Arc::new(Mutex::new(sink)),
            rt,
            db,
        };
        // Every replica resumes the orphaned resumable jobs (a conditional update decides
        // which one), at the heartbeat's pace.
        let q = queue.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(jobs::heartbeat_every());
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = q.rt.stopped() => break,
                }
                if q.rt.is_shutting_down() {
                    break;
                }
                if let Err(e) = resume_orphans(&q).await {
                    tracing::warn!(component = COMPONENT, error = %e, "orphaned jobs not resumed");
                }
            }
        });
        Ok(queue)
    }

    /// The worker's identity and health.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.rt
    }

    /// Graceful stop (SIGTERM/SIGINT): no new job is claimed, the running job stops at its
    /// next action boundary and ends `failed` with what it did; after `grace` whatever is
    /// still running on this worker is failed so that no job is left `running`. Each is
    /// audited. Returns how many jobs had to be failed after the grace period.
    pub async fn shutdown(&self, grace: std::time::Duration) -> usize {
        self.rt
            .shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + grace;
        while self.rt.running() > 0 {
            let notified = self.rt.idle.notified();
            if self.rt.running() == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break;
            }
        }
        let _ = self.rt.stop.send(true);
        let left = match jobs::fail_running_of_worker(
            &self.db,
            &self.rt.worker_id,
            "interrupted: the server shut down before this job finished; actions already taken are listed in the audit log",
        )
        .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!(component = COMPONENT, error = %e, "running jobs not closed at shutdown");
                Vec::new()
            }
        };
        for j in &left {
            audit_row(
                &self.db,
                j,
                "job.interrupted",
                "failed",
                serde_json::json!({"reason": "shutdown"}),
            )
            .await;
        }
        tracing::info!(
            component = COMPONENT,
            failed = left.len(),
            "job worker stopped"
        );
        left.len()
    }

    /// Puts a job (already inserted in `jobs`) on the queue as its typed message; a row
    /// whose kind is unknown or lacks what its kind needs is refused here.
    pub async fn enqueue(&self, job: &jobs::JobRow) -> Result<(), JobError> {
        let msg = Envelope::Typed(QueuedJob::for_row(job)?);
        let mut sink = self.sink.lock().await;
        match &mut *sink {
            Sink::Sqlite(s) => s
                .push(msg)
                .await
                .map_err(|e| JobError::Storage(e.to_string())),
            Sink::Postgres(s) => s
                .push(msg)
                .await
                .map_err(|e| JobError::Storage(e.to_string())),
        }
    }

    /// [`JobQueue::enqueue`] for a job known by its id (a redelivery).
    pub async fn enqueue_id(&self, job_id: &str) -> Result<(), JobError> {
        let row = jobs::get(&self.db, job_id)
            .await?
            .ok_or_else(|| JobError::NotFound(job_id.to_string()))?;
        self.enqueue(&row).await
    }
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The apalis task function: claim, dispatch with a heartbeat, record.
async fn handle(req: Envelope, data: Data<Arc<WorkerData>>) -> Result<(), BoxDynError> {
    let ctx: &JobContext = &data.ctx;
    let rt = &data.rt;
    if rt.is_shutting_down() {
        // Left queued (unclaimed) for the next replica.
        return Err("the worker is shutting down; the job stays queued".into());
    }
    // A database blip (a terminated connection) is retried rather than losing the message.
    let mut retries = 0;
    let Some(job) = retry::db(&mut retries, || jobs::get(&ctx.db, req.job_id())).await? else {
        tracing::warn!(component = COMPONENT, job_id = %req.job_id(), "queued job has no row; dropped");
        return Ok(());
    };
    // The typed message: as queued, checked against its row (a legacy id-only message is
    // typed from the row). One that disagrees is not run.
    let typed = match &req {
        Envelope::Typed(m) => m.matches(&job).map(|()| m.clone()),
        Envelope::Legacy(_) => QueuedJob::for_row(&job),
    };
    if !retry::db(&mut retries, || {
        jobs::claim(&ctx.db, &job.id, &rt.worker_id)
    })
    .await?
    {
        tracing::info!(component = COMPONENT, job_id = %job.id, status = %job.status, "job already taken or cancelled; skipped");
        return Ok(());
    }
    rt.running.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    // The claimed job runs in a task of its own: when the worker is torn down and rebuilt
    // (its queue connection died), the job goes on to its end instead of being dropped
    // half way with its row `running`.
    let data: Arc<WorkerData> = Arc::clone(&*data);
    tokio::spawn(async move { run_claimed(&data, job, typed, retries).await })
        .await
        .map_err(|e| -> BoxDynError { format!("the job task failed: {e}").into() })?
}

/// Runs a job this worker claimed, with its heartbeat, and records how it ended.
async fn run_claimed(
    data: &WorkerData,
    job: jobs::JobRow,
    typed: Result<QueuedJob, message::MessageError>,
    mut retries: u32,
) -> Result<(), BoxDynError> {
    let ctx: &JobContext = &data.ctx;
    let rt = &data.rt;
    let control = Control {
        db: ctx.db.clone(),
        job_id: job.id.clone(),
        rt: rt.clone(),
        stop: Default::default(),
    };
    // The heartbeat: the reaper fails a running job whose worker stops beating. It stops
    // with this task, even if the task is dropped half way (its worker torn down).
    let beating = AbortOnDrop({
        let control = control.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(jobs::heartbeat_every());
            tick.tick().await;
            loop {
                tick.tick().await;
                if control.beat().await == Some(Stop::Lost) {
                    break;
                }
            }
        })
    });
    publish(
        ctx,
        &job,
        "job.progress",
        serde_json::json!({"job_id": job.id, "kind": job.kind, "status": "running", "progress": 1}),
    );
    let outcome = match typed {
        Ok(QueuedJob::Optimize(_)) => optimize::run(ctx, &job, &control).await,
        Ok(QueuedJob::ForceOnDemand(_)) => force::run(ctx, &job, &control).await,
        Ok(QueuedJob::LabSwitch(_)) => lab::run_switch(ctx, &job, &control).await,
        Ok(QueuedJob::RiskRecompute(_)) => recompute::run(ctx, &job).await,
        Ok(QueuedJob::Cleanup(_)) => waste::run(ctx, &job, &control).await,
        Err(e) => Err(Failure::new(e.to_string(), serde_json::json!({}))),
    };
    drop(beating);
    let (status, message, result) = match outcome {
        Ok(done) => (jobs::SUCCEEDED, done.message, done.result),
        Err(f) => (f.status, f.message, f.result),
    };
    let result_text = result.to_string();
    let written = retry::db(&mut retries, || {
        jobs::finish(
            &ctx.db,
            &job.id,
            &rt.worker_id,
            status,
            &message,
            &result_text,
        )
    })
    .await;
    if rt.running.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
        rt.idle.notify_waiters();
    }
    if !written? {
        // The reaper (or a shutdown) already closed it; its audit entry says so.
        tracing::warn!(component = COMPONENT, job_id = %job.id, %message, "job was closed while its worker was away; outcome kept in the log only");
        audit_job(
            ctx,
            &job,
            &format!("job.{}", job.kind),
            "failed",
            serde_json::json!({"message": message, "result": result, "closed_elsewhere": true}),
        )
        .await;
        return Ok(());
    }
    publish(
        ctx,
        &job,
        "job.progress",
        serde_json::json!({"job_id": job.id, "kind": job.kind, "status": status, "progress": 100, "message": message}),
    );
    audit_job(
        ctx,
        &job,
        &format!("job.{}", job.kind),
        if status == jobs::SUCCEEDED {
            "success"
        } else {
            "failed"
        },
        serde_json::json!({"message": message, "result": result, "status": status}),
    )
    .await;
    tracing::info!(component = COMPONENT, job_id = %job.id, kind = %job.kind, status, %message, "job finished");
    Ok(())
}

/// Fails every running job whose worker has not beaten for [`jobs::orphan_after_secs`]
/// (its process was killed, or is stopped) and audits each as `job.reaped` by the
/// `system`; jobs of the [`RESUMABLE`] kinds are left to [`resume_orphans`]. A worker that
/// comes back finds its job gone and stops before its next action.
pub async fn reap_orphans(db: &spot_models::Db) -> Result<usize, spot_models::DbError> {
    let cutoff = spot_models::now_ms() - jobs::orphan_after_secs() * 1000;
    let reaped = jobs::reap(db, cutoff, RESUMABLE).await?;
    for j in &reaped {
        tracing::warn!(component = COMPONENT, job_id = %j.id, kind = %j.kind, worker = ?j.worker_id, "job reaped: its worker stopped beating");
        if j.kind == lab::SWITCH_KIND {
            // The Lab's switch record ends with its job (it would otherwise show running).
            if let Ok(Some(sw)) = spot_models::lab::switch_of_job(db, &j.id).await {
                if let Err(e) = spot_models::lab::finish_switch(
                    db,
                    &sw.id,
                    spot_models::lab::FAILED,
                    Some("interrupted: the worker running this switch stopped responding"),
                )
                .await
                {
                    tracing::warn!(component = COMPONENT, job_id = %j.id, error = %e, "lab switch not closed");
                }
            }
        }
        audit_row(
            db,
            j,
            "job.reaped",
            "failed",
            serde_json::json!({"worker_id": j.worker_id, "last_heartbeat_at": j.heartbeat_at, "orphan_after_secs": jobs::orphan_after_secs()}),
        )
        .await;
    }
    Ok(reaped.len())
}

/// Puts the running jobs of the [`RESUMABLE`] kinds whose worker stopped beating back in
/// the queue (audited as `job.resumed` by the `system`), and sends again those requeued
/// earlier that no worker took since (their message may have died with the replica that
/// requeued them). The next claim carries on from the first item not final. Returns how
/// many jobs were (re)sent.
pub async fn resume_orphans(queue: &JobQueue) -> Result<usize, spot_models::DbError> {
    let db = &queue.db;
    let cutoff = spot_models::now_ms() - jobs::orphan_after_secs() * 1000;
    let requeued = jobs::requeue_stale(db, cutoff, RESUMABLE).await?;
    let resend = jobs::resend_requeued(db, cutoff, RESUMABLE).await?;
    for j in &requeued {
        tracing::warn!(component = COMPONENT, job_id = %j.id, kind = %j.kind, worker = ?j.worker_id, "job resumed: its worker stopped beating");
        audit_row(
            db,
            j,
            "job.resumed",
            "success",
            serde_json::json!({"worker_id": j.worker_id, "last_heartbeat_at": j.heartbeat_at, "orphan_after_secs": jobs::orphan_after_secs()}),
        )
        .await;
    }
    let mut sent = 0;
    for j in requeued.iter().chain(&resend) {
        match queue.enqueue(j).await {
            Ok(()) => sent += 1,
            // Left queued: the next pass sends it again.
            Err(e) => {
                tracing::warn!(component = COMPONENT, job_id = %j.id, error = %e, "resumed job not queued yet")
            }
        }
    }
    Ok(sent)
}

/// A finished job's summary.
pub struct Done {
    pub message: String,
    pub result: serde_json::Value,
}

/// A job that did not finish: what went wrong (or that it was cancelled) and what had
/// already run.
pub struct Failure {
    /// [`jobs::FAILED`] or [`jobs::CANCELLED`].
    pub status: &'static str,
    pub message: String,
    pub result: serde_json::Value,
}

impl Failure {
    pub fn new(message: impl Into<String>, result: serde_json::Value) -> Failure {
        Failure {
            status: jobs::FAILED,
            message: message.into(),
            result,
        }
    }

    pub fn cancelled(message: impl Into<String>, result: serde_json::Value) -> Failure {
        Failure {
            status: jobs::CANCELLED,
            message: message.into(),
            result,
        }
    }
}

pub(crate) fn publish(ctx: &JobContext, job: &jobs::JobRow, kind: &str, data: serde_json::Value) {
    ctx.bus.publish(job.organization_id.as_deref(), kind, data);
}

pub(crate) async fn progress(ctx: &JobContext, job: &jobs::JobRow, pct: i64, message: &str) {
    if let Err(e) = jobs::progress(&ctx.db, &job.id, pct, message).await {
        tracing::warn!(component = COMPONENT, job_id = %job.id, error = %e, "progress not saved");
    }
    publish(
        ctx,
        job,
        "job.progress",
        serde_json::json!({"job_id": job.id, "kind": job.kind, "status": "running", "progress": pct, "message": message}),
    );
}

/// Audit entry with actor `system` and the job id.
pub(crate) async fn audit_job(
    ctx: &JobContext,
    job: &jobs::JobRow,
    action: &str,
    outcome: &str,
    detail: serde_json::Value,
) {
    audit_row(&ctx.db, job, action, outcome, detail).await
}

async fn audit_row(
    db: &spot_models::Db,
    job: &jobs::JobRow,
    action: &str,
    outcome: &str,
    detail: serde_json::Value,
) {
    let Some(org) = job.organization_id.as_deref() else {
        tracing::info!(component = "CORE-AUDIT", job_id = %job.id, action, outcome, %detail, "platform job event");
        return;
    };
    let rec = NewAuditRecord {
        organization_id: Some(org.to_string()),
        actor_kind: "system".into(),
        actor_component: Some(COMPONENT.into()),
        action: action.into(),
        resource_type: "job".into(),
        resource_id: Some(job.id.clone()),
        outcome: outcome.into(),
        request_id: job.id.clone(),
        after: Some(
            serde_json::json!({"job_id": job.id, "target_id": job.target_id, "detail": detail}),
        ),
        ..Default::default()
    };
    if let Err(e) = audit::append(db, rec).await {
        tracing::error!(component = "CORE-AUDIT", error = %e, "audit append failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apalis_url_is_a_sibling_file_or_the_apalis_schema() {
        assert_eq!(
            apalis_url("sqlite:///tmp/x/spot.db?mode=rwc", Backend::Sqlite, "q"),
            "sqlite:///tmp/x/spot.jobs.db?mode=rwc"
        );
        assert_eq!(
            apalis_url("sqlite://data/spot", Backend::Sqlite, "q"),
            "sqlite://data/spot.jobs?mode=rwc"
        );
        assert_eq!(
            apalis_url(
                "postgres://u@h:5432/test?options=-csearch_path%3Dit_1&sslmode=disable",
                Backend::Postgres,
                "q"
            ),
            "postgres://u@h:5432/test?sslmode=disable&application_name=spot-queue-q&options=-csearch_path%3Dapalis"
        );
        // TLS parameters survive (only the search path is replaced).
        assert_eq!(
            apalis_url(
                "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fca.pem&sslcert=c&sslkey=k",
                Backend::Postgres,
                "q"
            ),
            "postgres://u@h/db?sslmode=verify-full&sslrootcert=%2Fca.pem&sslcert=c&sslkey=k&application_name=spot-queue-q&options=-csearch_path%3Dapalis"
        );
        assert_eq!(
            apalis_url("postgres://u@h/db", Backend::Postgres, "q"),
            "postgres://u@h/db?application_name=spot-queue-q&options=-csearch_path%3Dapalis"
        );
        // The queue's name replaces any other, reduced to safe characters.
        assert_eq!(
            apalis_url(
                "postgres://u@h/db?application_name=x",
                Backend::Postgres,
                "it 1/x"
            ),
            "postgres://u@h/db?application_name=spot-queue-it1x&options=-csearch_path%3Dapalis"
        );
    }
}
