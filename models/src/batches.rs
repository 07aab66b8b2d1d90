//! Items of batch jobs (waste clean-up): one row per resource a job acts on, with its own
//! status (`queued → running → done | failed | skipped`), result and error. The job row
//! says how the batch went; these rows say what happened to each resource, survive a
//! restart, and make a redelivered job idempotent: an item already `done` is never redone.

use serde::Serialize;

use crate::error::Result;
use crate::jobs::{self, JobRow, NewJob};
use crate::{new_id, now_ms, Db};

pub const QUEUED: &str = "queued";
pub const RUNNING: &str = "running";
pub const DONE: &str = "done";
pub const FAILED: &str = "failed";
pub const SKIPPED: &str = "skipped";

/// Kinds of resources a batch item acts on.
pub const VOLUME: &str = "volume";
pub const SNAPSHOT: &str = "snapshot";
pub const INSTANCE: &str = "instance";

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ItemRow {
    pub job_id: String,
    /// The cloud id the item acts on (vol-…, snap-…, i-…).
    pub item_key: String,
    pub organization_id: String,
    pub kind: String,
    pub position: i64,
    pub resource_row_id: String,
    pub account_id: String,
    pub status: String,
    pub idempotency_key: String,
    pub expected_monthly_saving: f64,
    pub monthly_saving: f64,
    /// JSON object.
    pub result: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl ItemRow {
    /// Done, failed or skipped: the item is never acted on again.
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), DONE | FAILED | SKIPPED)
    }

    /// The stored result as JSON (an empty object when none or unreadable).
    pub fn result_json(&self) -> serde_json::Value {
        self.result
            .as_deref()
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_else(|| serde_json::json!({}))
    }
}

const ITEM_COLS: &str = "job_id, item_key, organization_id, kind, position, resource_row_id, account_id, status, idempotency_key, expected_monthly_saving, monthly_saving, result, error, created_at, started_at, finished_at";

/// One resource to put in a batch.
#[derive(Debug, Clone)]
pub struct NewItem {
    pub item_key: String,
    pub kind: &'static str,
    pub resource_row_id: String,
    pub account_id: String,
    pub expected_monthly_saving: f64,
}

/// The idempotency key of an item: stable for a job and a resource, at most 64 characters
/// (the EC2 client-token limit).
pub fn idempotency_key(job_id: &str, item_key: &str) -> String {
    let k = format!("so-{}-{}", job_id.replace('-', ""), item_key);
    k.chars().take(64).collect()
}

/// Inserts a queued job and its items in one transaction (a batch is never half stored).
pub async fn create(db: &Db, job: NewJob<'_>, items: &[NewItem]) -> Result<JobRow> {
    let id = new_id();
    let now = now_ms();
    let org = job.organization_id.unwrap_or_default();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO jobs (id, organization_id, kind, target_id, status, progress, dry_run, requested_by, created_at, safe_mode) VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(job.organization_id)
    .bind(job.kind)
    .bind(job.target_id)
    .bind(jobs::QUEUED)
    .bind(i64::from(job.dry_run))
    .bind(job.requested_by)
    .bind(now)
    .bind(i64::from(job.safe_mode))
    .execute(&mut *tx)
    .await?;
    for (position, item) in items.iter().enumerate() {
        sqlx::query(
            "INSERT INTO job_items (job_id, item_key, organization_id, kind, position, resource_row_id, account_id, status, idempotency_key, expected_monthly_saving, monthly_saving, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11)",
        )
        .bind(&id)
        .bind(&item.item_key)
        .bind(org)
        .bind(item.kind)
        .bind(position as i64)
        .bind(&item.resource_row_id)
        .bind(&item.account_id)
        .bind(QUEUED)
        .bind(idempotency_key(&id, &item.item_key))
        .bind(item.expected_monthly_saving)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    jobs::get(db, &id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("job vanished".into()))
}

/// The items of a job, in execution order.
pub async fn items(db: &Db, job_id: &str) -> Result<Vec<ItemRow>> {
    Ok(sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLS} FROM job_items WHERE job_id = $1 ORDER BY position"
    )))
    .bind(job_id)
    .fetch_all(&db.pool)
    .await?)
}

/// The items of a job of `org_id`, in execution order.
pub async fn items_for_org(db: &Db, org_id: &str, job_id: &str) -> Result<Vec<ItemRow>> {
    Ok(sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLS} FROM job_items WHERE job_id = $1 AND organization_id = $2 ORDER BY position"
    )))
    .bind(job_id)
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?)
}

pub async fn item(db: &Db, job_id: &str, item_key: &str) -> Result<Option<ItemRow>> {
    Ok(sqlx::query_as::<_, ItemRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {ITEM_COLS} FROM job_items WHERE job_id = $1 AND item_key = $2"
    )))
    .bind(job_id)
    .bind(item_key)
    .fetch_optional(&db.pool)
    .await?)
}

/// Marks an item running (a resumed item keeps its first start time). False when it is
/// already final: the caller must not act on it.
pub async fn start(db: &Db, job_id: &str, item_key: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE job_items SET status = $1, started_at = COALESCE(started_at, $2) WHERE job_id = $3 AND item_key = $4 AND status IN ($5, $1)",
    )
    .bind(RUNNING)
    .bind(now_ms())
    .bind(job_id)
    .bind(item_key)
    .bind(QUEUED)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Stores the intermediate result of a running item (e.g. the snapshot just requested), so
/// that a resumed job carries on from it instead of starting the item again.
pub async fn set_result(db: &Db, job_id: &str, item_key: &str, result: &str) -> Result<()> {
    sqlx::query(
        "UPDATE job_items SET result = $1 WHERE job_id = $2 AND item_key = $3 AND status = $4",
    )
    .bind(result)
    .bind(job_id)
    .bind(item_key)
    .bind(RUNNING)
    .execute(&db.pool)
    .await?;
    Ok(())
}

/// Ends an item that is not final yet with `status` ([`DONE`], [`FAILED`] or [`SKIPPED`]).
/// False when it already was final (nothing is written then).
pub async fn finish(
    db: &Db,
    job_id: &str,
    item_key: &str,
    status: &str,
    monthly_saving: f64,
    result: &str,
    error: Option<&str>,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE job_items SET status = $1, monthly_saving = $2, result = $3, error = $4, finished_at = $5 WHERE job_id = $6 AND item_key = $7 AND status IN ($8, $9)",
    )
    .bind(status)
    .bind(monthly_saving)
    .bind(result)
    .bind(error)
    .bind(now_ms())
    .bind(job_id)
    .bind(item_key)
    .bind(QUEUED)
    .bind(RUNNING)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Marks every item of the job still queued `skipped` with `reason` (the job stopped
/// before reaching them) and returns their keys.
pub async fn skip_queued(db: &Db, job_id: &str, reason: &str) -> Result<Vec<String>> {
    let keys: Vec<(String,)> = sqlx::query_as(
        "SELECT item_key FROM job_items WHERE job_id = $1 AND status = $2 ORDER BY position",
    )
    .bind(job_id)
    .bind(QUEUED)
    .fetch_all(&db.pool)
    .await?;
    sqlx::query(
        "UPDATE job_items SET status = $1, error = $2, finished_at = $3 WHERE job_id = $4 AND status = $5",
    )
    .bind(SKIPPED)
    .bind(reason)
    .bind(now_ms())
    .bind(job_id)
    .bind(QUEUED)
    .execute(&db.pool)
    .await?;
    Ok(keys.into_iter().map(|k| k.0).collect())
}

/// Items of a job counted by status: (done, failed, skipped, total monthly saving).
pub fn summary(items: &[ItemRow]) -> (usize, usize, usize, f64) {
    let count = |s: &str| items.iter().filter(|i| i.status == s).count();
    let saving = items
        .iter()
        .filter(|i| i.status == DONE)
        .map(|i| i.monthly_saving)
        .sum();
    (count(DONE), count(FAILED), count(SKIPPED), saving)
}

/// Retires an inventory row the batch removed from the cloud, so the waste lists drop it
/// before the next discovery confirms it (`instances` also become `terminated`).
pub async fn mark_gone(db: &Db, kind: &str, org_id: &str, row_id: &str) -> Result<()> {
    let sql = match kind {
        VOLUME => "UPDATE volumes SET gone_at = $1 WHERE id = $2 AND organization_id = $3 AND gone_at IS NULL",
        SNAPSHOT => "UPDATE snapshots SET gone_at = $1 WHERE id = $2 AND organization_id = $3 AND gone_at IS NULL",
        INSTANCE => "UPDATE instances SET gone_at = $1, state = 'terminated' WHERE id = $2 AND organization_id = $3 AND gone_at IS NULL",
        other => return Err(crate::DbError::Corrupt(format!("unknown batch item kind {other}"))),
    };
    sqlx::query(sql)
        .bind(now_ms())
        .bind(row_id)
        .bind(org_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// Whether `row_id` is a (live or gone) inventory row of `kind` in `org_id`: tells "not in
/// the waste list any more" (422) from "no such resource here" (404).
pub async fn row_exists(db: &Db, kind: &str, org_id: &str, row_id: &str) -> Result<bool> {
    let sql = match kind {
        VOLUME => "SELECT COUNT(*) FROM volumes WHERE id = $1 AND organization_id = $2",
        SNAPSHOT => "SELECT COUNT(*) FROM snapshots WHERE id = $1 AND organization_id = $2",
        INSTANCE => "SELECT COUNT(*) FROM instances WHERE id = $1 AND organization_id = $2",
        other => {
            return Err(crate::DbError::Corrupt(format!(
                "unknown batch item kind {other}"
            )))
        }
    };
    let (n,): (i64,) = sqlx::query_as(sql)
        .bind(row_id)
        .bind(org_id)
        .fetch_one(&db.pool)
        .await?;
    Ok(n > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_stable_and_fit_a_client_token() {
        let job = "0191f2c4-7a1b-7c3d-9e8f-0123456789ab";
        let a = idempotency_key(job, "vol-0123456789abcdef0");
        assert_eq!(a, idempotency_key(job, "vol-0123456789abcdef0"));
        assert_ne!(a, idempotency_key(job, "vol-0123456789abcdef1"));
        assert!(a.len() <= 64, "{a}");
        assert!(a.starts_with("so-0191f2c47a1b"), "{a}");
    }
}
