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
pub const CANCELLED: &str = "cancelled";

/// A running job whose worker has not beaten for this long is presumed dead (its process
/// was killed or stopped) and is failed by the reaper ([`reap`]). Workers beat every
/// [`HEARTBEAT_EVERY_SECS`].
pub const ORPHAN_AFTER_SECS: i64 = 60;
pub const HEARTBEAT_EVERY_SECS: u64 = 10;

static ORPHAN_AFTER: std::sync::atomic::AtomicI64 =
    std::sync::atomic::AtomicI64::new(ORPHAN_AFTER_SECS);

/// Sets the orphan timeout of this process (`--job-orphan-after`; default
/// [`ORPHAN_AFTER_SECS`]); heartbeats follow at a sixth of it. At least 3 s.
pub fn set_orphan_after_secs(secs: i64) {
    ORPHAN_AFTER.store(secs.max(3), std::sync::atomic::Ordering::SeqCst);
}

/// Seconds without a heartbeat after which a running job is presumed orphaned.
pub fn orphan_after_secs() -> i64 {
    ORPHAN_AFTER.load(std::sync::atomic::Ordering::SeqCst)
}

/// How often a running job's worker beats: a sixth of the orphan timeout, 1 to
/// [`HEARTBEAT_EVERY_SECS`] seconds.
pub fn heartbeat_every() -> std::time::Duration {
    let secs = (orphan_after_secs() / 6).clamp(1, HEARTBEAT_EVERY_SECS as i64);
    std::time::Duration::from_secs(secs as u64)
}

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
    /// Last heartbeat of the worker running it (ms).
    pub heartbeat_at: Option<i64>,
    /// The worker (replica) that claimed it.
    pub worker_id: Option<String>,
    /// Safe mode as it was when the job was enqueued: such a job never touches the cloud.
    pub safe_mode: i64,
    /// When a user asked to cancel it (ms); the executor stops at its next action boundary.
    pub cancel_requested_at: Option<i64>,
}

const JOB_COLS: &str = "id, organization_id, kind, target_id, status, progress, message, dry_run, plan, result, requested_by, created_at, started_at, finished_at, heartbeat_at, worker_id, safe_mode, cancel_requested_at";

pub struct NewJob<'a> {
    pub organization_id: Option<&'a str>,
    pub kind: &'a str,
    pub target_id: Option<&'a str>,
    pub dry_run: bool,
    pub requested_by: Option<&'a str>,
    /// Safe mode of the enqueuing replica, recorded on the job.
    pub safe_mode: bool,
}

/// Inserts a queued job. At most one optimization per cluster may be queued or running (a
/// partial unique index): a second one is [`crate::DbError::Conflict`].
pub async fn insert(db: &Db, job: NewJob<'_>) -> Result<JobRow> {
    let id = new_id();
    sqlx::query(
        "INSERT INTO jobs (id, organization_id, kind, target_id, status, progress, dry_run, requested_by, created_at, safe_mode) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(job.organization_id)
    .bind(job.kind)
    .bind(job.target_id)
    .bind(QUEUED)
    .bind(i64::from(job.dry_run))
    .bind(job.requested_by)
    .bind(now_ms())
    .bind(i64::from(job.safe_mode))
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

/// One page of the organization's jobs, newest first (`created_at`, then id, descending),
/// after the job `after` = (created_at, id) of the previous page. Returns at most `limit`
/// rows and whether more follow.
pub async fn page_for_org(
    db: &Db,
    org_id: &str,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<(Vec<JobRow>, bool)> {
    let mut rows = match after {
        None => {
            sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {JOB_COLS} FROM jobs WHERE organization_id = $1 \
                 ORDER BY created_at DESC, id DESC LIMIT $2"
            )))
            .bind(org_id)
            .bind(limit + 1)
            .fetch_all(&db.pool)
            .await?
        }
        Some((at, id)) => {
            sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
                "SELECT {JOB_COLS} FROM jobs WHERE organization_id = $1 \
                 AND (created_at < $2 OR (created_at = $2 AND id < $3)) \
                 ORDER BY created_at DESC, id DESC LIMIT $4"
            )))
            .bind(org_id)
            .bind(at)
            .bind(id)
            .bind(limit + 1)
            .fetch_all(&db.pool)
            .await?
        }
    };
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    Ok((rows, more))
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

/// Every job of `kind` (any organization) created from `from_ms` on and, when `until_ms`
/// is given, no later than it; oldest first (super-admin views of platform batches).
pub async fn of_kind_between(
    db: &Db,
    kind: &str,
    from_ms: i64,
    until_ms: Option<i64>,
) -> Result<Vec<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLS} FROM jobs WHERE kind = $1 AND created_at >= $2 AND created_at <= $3 ORDER BY created_at, id"
    )))
    .bind(kind)
    .bind(from_ms)
    .bind(until_ms.unwrap_or(i64::MAX))
    .fetch_all(&db.pool)
    .await?)
}

/// Claims a queued job for `worker`. False when another delivery already took it (apalis
/// delivers at least once) or it was cancelled while queued: the caller must then do
/// nothing.
pub async fn claim(db: &Db, id: &str, worker: &str) -> Result<bool> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE jobs SET status = $1, started_at = $2, heartbeat_at = $2, worker_id = $3, progress = 1 WHERE id = $4 AND status = $5",
    )
    .bind(RUNNING)
    .bind(now)
    .bind(worker)
    .bind(id)
    .bind(QUEUED)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// What a running job's worker learns from its heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Still ours; carry on.
    Continue,
    /// A user asked to cancel: stop at the next action boundary.
    CancelRequested,
    /// No longer ours (the reaper failed it, or it finished elsewhere): stop at once and
    /// write nothing more.
    Lost,
}

/// Records that `worker` is alive and still running job `id`.
pub async fn heartbeat(db: &Db, id: &str, worker: &str) -> Result<Beat> {
    let r = sqlx::query(
        "UPDATE jobs SET heartbeat_at = $1 WHERE id = $2 AND status = $3 AND worker_id = $4",
    )
    .bind(now_ms())
    .bind(id)
    .bind(RUNNING)
    .bind(worker)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(Beat::Lost);
    }
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT cancel_requested_at FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(&db.pool)
            .await?;
    Ok(match row {
        Some((Some(_),)) => Beat::CancelRequested,
        Some((None,)) => Beat::Continue,
        None => Beat::Lost,
    })
}

/// What a cancel request did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// It had not started: it is `cancelled` and will never run.
    Cancelled,
    /// It is running: the executor stops at its next action boundary.
    Requested,
    /// It already ended (its status).
    AlreadyFinished(String),
    NotFound,
}

/// Cancels a job of `org_id`: a queued job at once, a running one at its next action
/// boundary (actions already taken stay taken; the job reports them).
pub async fn request_cancel(db: &Db, org_id: &str, id: &str) -> Result<CancelOutcome> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE jobs SET status = $1, message = $2, finished_at = $3, cancel_requested_at = $3, progress = 100 WHERE id = $4 AND organization_id = $5 AND status = $6",
    )
    .bind(CANCELLED)
    .bind("cancelled before it started")
    .bind(now)
    .bind(id)
    .bind(org_id)
    .bind(QUEUED)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() == 1 {
        return Ok(CancelOutcome::Cancelled);
    }
    let r = sqlx::query(
        "UPDATE jobs SET cancel_requested_at = COALESCE(cancel_requested_at, $1) WHERE id = $2 AND organization_id = $3 AND status = $4",
    )
    .bind(now)
    .bind(id)
    .bind(org_id)
    .bind(RUNNING)
    .execute(&db.pool)
    .await?;
    if r.rows_affected() == 1 {
        return Ok(CancelOutcome::Requested);
    }
    Ok(match get_for_org(db, org_id, id).await? {
        Some(j) => CancelOutcome::AlreadyFinished(j.status),
        None => CancelOutcome::NotFound,
    })
}

/// Running jobs whose worker has not beaten since `stale_before` (ms).
async fn stale_running(db: &Db, stale_before: i64) -> Result<Vec<JobRow>> {
    Ok(sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLS} FROM jobs WHERE status = $1 AND COALESCE(heartbeat_at, started_at, created_at) < $2"
    )))
    .bind(RUNNING)
    .bind(stale_before)
    .fetch_all(&db.pool)
    .await?)
}

/// Fails every running job whose worker has not beaten since `stale_before` (ms), except
/// those of the `resumable` kinds (see [`requeue_stale`]), and returns them (for the audit
/// log). A worker that comes back finds its job [`Beat::Lost`] and stops.
pub async fn reap(db: &Db, stale_before: i64, resumable: &[&str]) -> Result<Vec<JobRow>> {
    let stale = stale_running(db, stale_before).await?;
    let mut out = Vec::new();
    for j in stale
        .into_iter()
        .filter(|j| !resumable.contains(&j.kind.as_str()))
    {
        let r = sqlx::query(
            "UPDATE jobs SET status = $1, message = $2, finished_at = $3, progress = 100 WHERE id = $4 AND status = $5 AND COALESCE(heartbeat_at, started_at, created_at) < $6",
        )
        .bind(FAILED)
        .bind("interrupted: the worker running this job stopped responding (no heartbeat); actions already taken are listed in the audit log")
        .bind(now_ms())
        .bind(&j.id)
        .bind(RUNNING)
        .bind(stale_before)
        .execute(&db.pool)
        .await?;
        if r.rows_affected() == 1 {
            out.push(j);
        }
    }
    Ok(out)
}

/// Puts every running job of the `resumable` kinds whose worker has not beaten since
/// `stale_before` back in the queue (`queued`, no worker; its items keep their state, so
/// the next claim carries on where it stopped) and returns them: the caller enqueues
/// them again. A worker that comes back finds its job [`Beat::Lost`] and stops.
pub async fn requeue_stale(db: &Db, stale_before: i64, resumable: &[&str]) -> Result<Vec<JobRow>> {
    let stale = stale_running(db, stale_before).await?;
    let mut out = Vec::new();
    for j in stale
        .into_iter()
        .filter(|j| resumable.contains(&j.kind.as_str()))
    {
        let r = sqlx::query(
            "UPDATE jobs SET status = $1, worker_id = NULL, heartbeat_at = $2, message = $3 WHERE id = $4 AND status = $5 AND COALESCE(heartbeat_at, started_at, created_at) < $6",
        )
        .bind(QUEUED)
        .bind(now_ms())
        .bind("resuming: the worker running this job stopped responding; items already done are not redone")
        .bind(&j.id)
        .bind(RUNNING)
        .bind(stale_before)
        .execute(&db.pool)
        .await?;
        if r.rows_affected() == 1 {
            out.push(j);
        }
    }
    Ok(out)
}

/// Requeued jobs (queued again after having run, see [`requeue_stale`]) still waiting for
/// a worker since before `stale_before`: their queue message may have been lost with the
/// replica that requeued them. Marks them as re-sent now and returns them to enqueue
/// again (a duplicate delivery is harmless: only one claim wins).
pub async fn resend_requeued(
    db: &Db,
    stale_before: i64,
    resumable: &[&str],
) -> Result<Vec<JobRow>> {
    let waiting = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLS} FROM jobs WHERE status = $1 AND started_at IS NOT NULL AND heartbeat_at < $2"
    )))
    .bind(QUEUED)
    .bind(stale_before)
    .fetch_all(&db.pool)
    .await?;
    let mut out = Vec::new();
    for j in waiting
        .into_iter()
        .filter(|j| resumable.contains(&j.kind.as_str()))
    {
        let r = sqlx::query(
            "UPDATE jobs SET heartbeat_at = $1 WHERE id = $2 AND status = $3 AND heartbeat_at < $4",
        )
        .bind(now_ms())
        .bind(&j.id)
        .bind(QUEUED)
        .bind(stale_before)
        .execute(&db.pool)
        .await?;
        if r.rows_affected() == 1 {
            out.push(j);
        }
    }
    Ok(out)
}

/// Fails the jobs `worker` is still running (the process is shutting down).
pub async fn fail_running_of_worker(db: &Db, worker: &str, message: &str) -> Result<Vec<JobRow>> {
    let rows = sqlx::query_as::<_, JobRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {JOB_COLS} FROM jobs WHERE status = $1 AND worker_id = $2"
    )))
    .bind(RUNNING)
    .bind(worker)
    .fetch_all(&db.pool)
    .await?;
    sqlx::query(
        "UPDATE jobs SET status = $1, message = $2, finished_at = $3, progress = 100 WHERE status = $4 AND worker_id = $5",
    )
    .bind(FAILED)
    .bind(message)
    .bind(now_ms())
    .bind(RUNNING)
    .bind(worker)
    .execute(&db.pool)
    .await?;
    Ok(rows)
}

/// Fails a job that never reached the queue (its enqueue failed).
pub async fn fail_queued(db: &Db, id: &str, message: &str) -> Result<()> {
    sqlx::query(
        "UPDATE jobs SET status = $1, message = $2, finished_at = $3, progress = 100 WHERE id = $4 AND status = $5",
    )
    .bind(FAILED)
    .bind(message)
    .bind(now_ms())
    .bind(id)
    .bind(QUEUED)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Queue depth per job kind: (kind, queued, running).
pub async fn depth_by_kind(db: &Db) -> Result<Vec<(String, i64, i64)>> {
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT kind, \
            CAST(SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END) AS BIGINT), \
            CAST(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS BIGINT) \
         FROM jobs WHERE status IN ('queued', 'running') GROUP BY kind ORDER BY kind",
    )
    .fetch_all(&db.pool)
    .await?;
    Ok(rows)
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

/// Ends a running job of `worker` with `status` ([`SUCCEEDED`], [`FAILED`] or
/// [`CANCELLED`]). False when the job was no longer this worker's (reaped meanwhile):
/// nothing is written then.
pub async fn finish(
    db: &Db,
    id: &str,
    worker: &str,
    status: &str,
    message: &str,
    result: &str,
) -> Result<bool> {
    let r = sqlx::query("UPDATE jobs SET status = $1, progress = 100, message = $2, result = $3, finished_at = $4 WHERE id = $5 AND status = $6 AND worker_id = $7")
        .bind(status)
        .bind(message)
        .bind(result)
        .bind(now_ms())
        .bind(id)
        .bind(RUNNING)
        .bind(worker)
        .execute(&db.pool)
        .await?;
    Ok(r.rows_affected() == 1)
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

/// One stored version of a cluster's policy.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PolicyVersion {
    pub version: i64,
    pub policy: String,
    pub template_id: Option<String>,
    pub created_by: Option<String>,
    /// E-mail of `created_by`, when it is a user.
    pub created_by_email: Option<String>,
    /// Why it was made (e.g. "revert to version 3").
    pub note: Option<String>,
    pub created_at: i64,
}

/// Stores the cluster's policy (and its template link) and records it as the next
/// version, in one transaction. Returns the version number.
pub async fn save_cluster_policy(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    policy: &str,
    template_id: Option<&str>,
    created_by: Option<&str>,
    note: Option<&str>,
) -> Result<i64> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO cluster_policies (cluster_id, organization_id, policy, updated_at, template_id) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (cluster_id) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at, template_id = excluded.template_id",
    )
    .bind(cluster_id)
    .bind(org_id)
    .bind(policy)
    .bind(now)
    .bind(template_id)
    .execute(&mut *tx)
    .await?;
    let (last,): (Option<i64>,) =
        sqlx::query_as("SELECT MAX(version) FROM cluster_policy_versions WHERE cluster_id = $1")
            .bind(cluster_id)
            .fetch_one(&mut *tx)
            .await?;
    let version = last.unwrap_or(0) + 1;
    sqlx::query(
        "INSERT INTO cluster_policy_versions (id, organization_id, cluster_id, version, policy, template_id, created_by, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(new_id())
    .bind(org_id)
    .bind(cluster_id)
    .bind(version)
    .bind(policy)
    .bind(template_id)
    .bind(created_by)
    .bind(note)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(version)
}

const VERSION_SELECT: &str = "SELECT v.version, v.policy, v.template_id, v.created_by, u.email AS created_by_email, v.note, v.created_at \
     FROM cluster_policy_versions v LEFT JOIN users u ON u.id = v.created_by \
     WHERE v.organization_id = $1 AND v.cluster_id = $2";

/// The cluster's policy versions, newest first.
pub async fn policy_versions(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    limit: i64,
) -> Result<Vec<PolicyVersion>> {
    Ok(
        sqlx::query_as::<_, PolicyVersion>(sqlx::AssertSqlSafe(format!(
            "{VERSION_SELECT} ORDER BY v.version DESC LIMIT $3"
        )))
        .bind(org_id)
        .bind(cluster_id)
        .bind(limit)
        .fetch_all(&db.pool)
        .await?,
    )
}

/// One version of the cluster's policy.
pub async fn policy_version(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    version: i64,
) -> Result<Option<PolicyVersion>> {
    Ok(
        sqlx::query_as::<_, PolicyVersion>(sqlx::AssertSqlSafe(format!(
            "{VERSION_SELECT} AND v.version = $3"
        )))
        .bind(org_id)
        .bind(cluster_id)
        .bind(version)
        .fetch_optional(&db.pool)
        .await?,
    )
}
