//! Job records (status, progress and result of user-triggered batches), per-cluster
//! optimization policies and realised savings. The queue itself is apalis; these rows are
//! what users and the API see, and what makes a re-delivered job idempotent.

use serde::Serialize;

use crate::error::Result;
use crate::{new_id, now_ms, Db};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const SUCCEEDED: &str = "succeeded";
pub const FAILED: &str = "failed";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct JobRow {
    pub id: String,
    pub organization_id: Option<String>,
    pub kind: String,
    pub target_id: Option<String>,
    pub status: String,
    pub progress: i64,
    pub message: Option<String>,
    pub dry_run: i64,
    /// JSON action plan (optimize jobs).
    pub plan: Option<String>,
    /// JSON result: counts, actions that ran, savings.
    pub result: Option<String>,
    pub requested_by: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

const JOB_COLS: &str = "id, organization_id, kind, target_id, status, progress, message, dry_run, plan, result, requested_by, created_at, started_at, finished_at";

pub struct NewJob<'a> {
    pub organization_id: Option<&'a str>,
    pub kind: &'a str,
    pub target_id: Option<&'a str>,
    pub dry_run: bool,
    pub requested_by: Option<&'a str>,
}

pub async fn insert(db: &Db, job: NewJob<'_>) -> Result<JobRow> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO jobs (id, organization_id, kind, target_id, status, progress, dry_run, requested_by, created_at) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)",
    )
    .bind(&id)
    .bind(job.organization_id)
    .bind(job.kind)
    .bind(job.target_id)
    .bind(QUEUED)
    .bind(i64::from(job.dry_run))
    .bind(job.requested_by)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    get(db, &id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("job vanished".into()))
}

/// Any job by id (workers and super-admins).
pub async fn get(db: &Db, id: &str) -> Result<Option<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLS} FROM jobs WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

/// A job of one organization.
pub async fn get_for_org(db: &Db, org_id: &str, id: &str) -> Result<Option<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLS} FROM jobs WHERE id = $1 AND organization_id = $2"
    )))
    .bind(id)
    .bind(org_id)
    .fetch_optional(&db.pool)
    .await?)
}

pub async fn list_for_org(db: &Db, org_id: &str, limit: i64) -> Result<Vec<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLS} FROM jobs WHERE organization_id = $1 ORDER BY created_at DESC LIMIT $2"
    )))
    .bind(org_id)
    .bind(limit)
    .fetch_all(&db.pool)
    .await?)
}

/// An unfinished (queued or running) job of `kind` on `target_id`, if any.
pub async fn active_for_target(
    db: &Db,
    org_id: &str,
    kind: &str,
    target_id: &str,
) -> Result<Option<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLS} FROM jobs WHERE organization_id = $1 AND kind = $2 AND target_id = $3 AND status IN ('queued', 'running') ORDER BY created_at DESC LIMIT 1"
    )))
    .bind(org_id)
    .bind(kind)
    .bind(target_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Claims a queued job for a worker. False when another delivery already took it (apalis
/// delivers at least once): the caller must then do nothing.
pub async fn claim(db: &Db, id: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE jobs SET status = $1, started_at = $2, progress = 1 WHERE id = $3 AND status = $4",
    )
    .bind(RUNNING)
    .bind(now_ms())
    .bind(id)
    .bind(QUEUED)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn set_plan(db: &Db, id: &str, plan: &str) -> Result<()> {
    sqlx::query("UPDATE jobs SET plan = $1 WHERE id = $2")
        .bind(plan)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn progress(db: &Db, id: &str, pct: i64, message: &str) -> Result<()> {
    sqlx::query("UPDATE jobs SET progress = $1, message = $2 WHERE id = $3")
        .bind(pct.clamp(0, 100))
        .bind(message)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

pub async fn finish(db: &Db, id: &str, ok: bool, message: &str, result: &str) -> Result<()> {
    sqlx::query("UPDATE jobs SET status = $1, progress = 100, message = $2, result = $3, finished_at = $4 WHERE id = $5")
        .bind(if ok { SUCCEEDED } else { FAILED })
        .bind(message)
        .bind(result)
        .bind(now_ms())
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The stored policy JSON of a cluster, if one was saved.
pub async fn cluster_policy(db: &Db, org_id: &str, cluster_id: &str) -> Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT policy FROM cluster_policies WHERE cluster_id = $1 AND organization_id = $2",
    )
    .bind(cluster_id)
    .bind(org_id)
    .fetch_optional(&db.pool)
    .await?;
    Ok(row.map(|r| r.0))
}

pub async fn put_cluster_policy(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    policy: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO cluster_policies (cluster_id, organization_id, policy, updated_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (cluster_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at",
    )
    .bind(cluster_id)
    .bind(org_id)
    .bind(policy)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}

pub async fn record_saving(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    job_id: &str,
    action: &str,
    monthly_savings: f64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO savings_records (id, organization_id, cluster_id, job_id, action, monthly_savings, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new_id())
    .bind(org_id)
    .bind(cluster_id)
    .bind(job_id)
    .bind(action)
    .bind(monthly_savings)
    .bind(now_ms())
    .execute(&db.pool)
    .await?;
    Ok(())
}
