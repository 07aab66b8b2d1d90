//! User-triggered batches on an apalis queue: "Optimize Now" for a cluster (plan with the
//! engine, then execute through the Cloud port) and the platform-wide risk recompute.
//!
//! apalis carries delivery (SQLite storage on the embedded default, PostgreSQL in
//! production); the `jobs` table carries status, progress and results for users. apalis
//! delivers at least once, so a worker first *claims* the job row (`queued → running`):
//! a second delivery of the same job finds it taken and does nothing, and every cloud
//! launch carries a client token derived from the job id and action index.

pub mod agent_ops;
pub mod optimize;
pub use spot_actors::policy;
pub mod recompute;

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

/// The queued message: only the job id (everything else is read from the job row).
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
    Sqlite(SqliteStorage<JobRequest>),
    Postgres(PostgresStorage<JobRequest>),
}

/// Handle to enqueue jobs.
#[derive(Clone)]
pub struct JobQueue {
    sink: Arc<Mutex<Sink>>,
}

/// The apalis database next to the product's: a sibling SQLite file (apalis keeps its own
/// migration history, which must not mix with ours), or the same PostgreSQL database with
/// apalis' migration history in its own `apalis` schema.
fn apalis_url(db_url: &str, backend: Backend) -> String {
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
                .filter(|p| !p.is_empty() && !p.starts_with("options="))
                .collect();
            let mut q = kept.join("&");
            if !q.is_empty() {
                q.push('&');
            }
            format!("{base}?{q}options=-csearch_path%3Dapalis")
        }
    }
}

/// One apalis worker on `storage` (both backends; their types differ).
macro_rules! spawn_worker {
    ($storage:expr, $ctx:expr) => {{
        let worker = WorkerBuilder::new(format!("spot-worker-{}", uuid::Uuid::new_v4()))
            // A short poll keeps "Optimize Now" responsive (the default waits many seconds).
            .backend($storage.clone().poll_with_interval(std::time::Duration::from_millis(250)))
            .data($ctx.clone())
            .build(handle);
        tokio::spawn(async move {
            if let Err(e) = worker.run().await {
                tracing::error!(component = COMPONENT, error = %e, "job worker stopped");
            }
        });
    }};
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
        let url = apalis_url(db_url, backend);
        let config_sqlite = apalis_sqlite::Config::default().queue(queue);
        let err = |e: &dyn std::fmt::Display| JobError::Storage(e.to_string());
        let ctx = Arc::new(ctx);
        let sink = match backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&url).await.map_err(|e| err(&e))?;
                SqliteStorage::setup(&pool).await.map_err(|e| err(&e))?;
                let storage = SqliteStorage::<JobRequest>::new(&pool).with_config(config_sqlite);
                spawn_worker!(storage, ctx);
                Sink::Sqlite(storage)
            }
            Backend::Postgres => {
                let admin =
                    sqlx::PgPool::connect(db_url.split_once('?').map_or(db_url, |(b, _)| b))
                        .await
                        .map_err(|e| err(&e))?;
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
                let storage = PostgresStorage::<JobRequest>::new(&pool).with_config(config);
                spawn_worker!(storage, ctx);
                Sink::Postgres(storage)
            }
        };
        Ok(JobQueue {
            sink: Arc::new(Mutex::new(sink)),
        })
    }

    /// Puts a job (already inserted in `jobs`) on the queue.
    pub async fn enqueue(&self, job_id: &str) -> Result<(), JobError> {
        let req = JobRequest {
            job_id: job_id.to_string(),
        };
        let mut sink = self.sink.lock().await;
        match &mut *sink {
            Sink::Sqlite(s) => s
                .push(req)
                .await
                .map_err(|e| JobError::Storage(e.to_string())),
            Sink::Postgres(s) => s
                .push(req)
                .await
                .map_err(|e| JobError::Storage(e.to_string())),
        }
    }
}

/// The apalis task function: claim, dispatch, record.
async fn handle(req: JobRequest, ctx: Data<Arc<JobContext>>) -> Result<(), BoxDynError> {
    let ctx: &JobContext = &ctx;
    let Some(job) = jobs::get(&ctx.db, &req.job_id).await? else {
        tracing::warn!(component = COMPONENT, job_id = %req.job_id, "queued job has no row; dropped");
        return Ok(());
    };
    if !jobs::claim(&ctx.db, &job.id).await? {
        tracing::info!(component = COMPONENT, job_id = %job.id, status = %job.status, "job already taken (redelivery); skipped");
        return Ok(());
    }
    publish(
        ctx,
        &job,
        "job.progress",
        serde_json::json!({"job_id": job.id, "kind": job.kind, "status": "running", "progress": 1}),
    );
    let outcome = match job.kind.as_str() {
        optimize::KIND => optimize::run(ctx, &job).await,
        recompute::KIND => recompute::run(ctx, &job).await,
        other => Err(Failure::new(
            format!("unknown job kind `{other}`"),
            serde_json::json!({}),
        )),
    };
    let (ok, message, result) = match outcome {
        Ok(done) => (true, done.message, done.result),
        Err(f) => (false, f.message, f.result),
    };
    jobs::finish(&ctx.db, &job.id, ok, &message, &result.to_string()).await?;
    let status = if ok { "succeeded" } else { "failed" };
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
        if ok { "success" } else { "failed" },
        serde_json::json!({"message": message, "result": result}),
    )
    .await;
    tracing::info!(component = COMPONENT, job_id = %job.id, kind = %job.kind, ok, %message, "job finished");
    Ok(())
}

/// A finished job's summary.
pub struct Done {
    pub message: String,
    pub result: serde_json::Value,
}

/// A failed job: what went wrong and what had already run.
pub struct Failure {
    pub message: String,
    pub result: serde_json::Value,
}

impl Failure {
    pub fn new(message: impl Into<String>, result: serde_json::Value) -> Failure {
        Failure {
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
    if let Err(e) = audit::append(&ctx.db, rec).await {
        tracing::error!(component = "CORE-AUDIT", error = %e, "audit append failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apalis_url_is_a_sibling_file_or_the_apalis_schema() {
        assert_eq!(
            apalis_url("sqlite:///tmp/x/spot.db?mode=rwc", Backend::Sqlite),
            "sqlite:///tmp/x/spot.jobs.db?mode=rwc"
        );
        assert_eq!(
            apalis_url("sqlite://data/spot", Backend::Sqlite),
            "sqlite://data/spot.jobs?mode=rwc"
        );
        assert_eq!(
            apalis_url(
                "postgres://u@h:5432/test?options=-csearch_path%3Dit_1&sslmode=disable",
                Backend::Postgres
            ),
            "postgres://u@h:5432/test?sslmode=disable&options=-csearch_path%3Dapalis"
        );
        assert_eq!(
            apalis_url("postgres://u@h/db", Backend::Postgres),
            "postgres://u@h/db?options=-csearch_path%3Dapalis"
        );
    }
}
