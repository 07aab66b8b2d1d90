//! MOD-AI-01 persistence: the model registry (`risk_models`) and the latest score of each
//! spot pool (`pool_risk`). Neither holds tenant data: pools are market facts shared by all
//! organizations, models are platform assets managed by super-admins.

use serde::Serialize;

use crate::error::Result;
use crate::{new_id, now_ms, Db};

/// Registry statuses, in lifecycle order.
pub const UPLOADED: &str = "uploaded";
pub const VALIDATED: &str = "validated";
pub const GRADUATED: &str = "graduated";
pub const RETIRED: &str = "retired";

/// A registry entry without its bytes.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ModelRow {
    pub id: String,
    pub name: String,
    pub status: String,
    pub sha256: String,
    pub size_bytes: i64,
    /// JSON: what validation checked and measured.
    pub validation: String,
    pub uploaded_by: String,
    pub uploaded_at: i64,
    pub validated_at: Option<i64>,
    pub graduated_at: Option<i64>,
    pub retired_at: Option<i64>,
}

const MODEL_COLS: &str = "id, name, status, sha256, size_bytes, validation, uploaded_by, uploaded_at, validated_at, graduated_at, retired_at";

/// Stores a model that passed validation (status `validated`).
pub async fn insert_validated(
    db: &Db,
    name: &str,
    sha256: &str,
    bytes: &[u8],
    validation: &str,
    uploaded_by: &str,
) -> Result<ModelRow> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO risk_models (id, name, status, sha256, size_bytes, bytes, validation, uploaded_by, uploaded_at, validated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&id)
    .bind(name)
    .bind(VALIDATED)
    .bind(sha256)
    .bind(bytes.len() as i64)
    .bind(bytes.to_vec())
    .bind(validation)
    .bind(uploaded_by)
    .bind(now)
    .execute(&db.pool)
    .await?;
    Ok(model(db, &id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("model vanished".into()))?)
}

pub async fn list_models(db: &Db) -> Result<Vec<ModelRow>> {
    Ok(sqlx::query_as::<_, ModelRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {MODEL_COLS} FROM risk_models ORDER BY uploaded_at DESC, id"
    )))
    .fetch_all(&db.pool)
    .await?)
}

pub async fn model(db: &Db, id: &str) -> Result<Option<ModelRow>> {
    Ok(sqlx::query_as::<_, ModelRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {MODEL_COLS} FROM risk_models WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

pub async fn model_bytes(db: &Db, id: &str) -> Result<Option<Vec<u8>>> {
    let row: Option<(Vec<u8>,)> = sqlx::query_as("SELECT bytes FROM risk_models WHERE id = $1")
        .bind(id)
        .fetch_optional(&db.pool)
        .await?;
    Ok(row.map(|r| r.0))
}

/// The graduated model, if any.
pub async fn graduated(db: &Db) -> Result<Option<ModelRow>> {
    Ok(sqlx::query_as::<_, ModelRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {MODEL_COLS} FROM risk_models WHERE status = $1 ORDER BY graduated_at DESC LIMIT 1"
    )))
    .bind(GRADUATED)
    .fetch_optional(&db.pool)
    .await?)
}

/// Makes `id` the graduated model; the previous graduated one is retired. Returns the
/// retired model's id.
pub async fn graduate(db: &Db, id: &str) -> Result<Option<String>> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    // Write first: SQLite takes the write lock here instead of failing at commit.
    let prev: Option<(String,)> =
        sqlx::query_as("UPDATE risk_models SET status = $1, retired_at = $2 WHERE status = $3 AND id <> $4 RETURNING id")
            .bind(RETIRED)
            .bind(now)
            .bind(GRADUATED)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    sqlx::query(
        "UPDATE risk_models SET status = $1, graduated_at = $2, retired_at = NULL WHERE id = $3",
    )
    .bind(GRADUATED)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(prev.map(|p| p.0))
}

/// The model to roll back to: the most recently graduated model that is now retired.
pub async fn previous_graduated(db: &Db) -> Result<Option<ModelRow>> {
    Ok(sqlx::query_as::<_, ModelRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {MODEL_COLS} FROM risk_models WHERE status = $1 AND graduated_at IS NOT NULL ORDER BY graduated_at DESC LIMIT 1"
    )))
    .bind(RETIRED)
    .fetch_optional(&db.pool)
    .await?)
}

/// Retires every graduated model (rollback to the shipped model).
pub async fn retire_graduated(db: &Db) -> Result<Option<String>> {
    let prev: Option<(String,)> = sqlx::query_as(
        "UPDATE risk_models SET status = $1, retired_at = $2 WHERE status = $3 RETURNING id",
    )
    .bind(RETIRED)
    .bind(now_ms())
    .bind(GRADUATED)
    .fetch_optional(&db.pool)
    .await?;
    Ok(prev.map(|p| p.0))
}

/// Latest score of one pool.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PoolRisk {
    pub region: String,
    pub az: String,
    pub instance_type: String,
    pub probability: f64,
    pub confidence: f64,
    /// SAFE, CAUTION or AVOID.
    pub action: String,
    /// Which model scored it (registry id or `shipped:risk-v1`, `heuristic`).
    pub model: String,
    pub degraded: i64,
    pub scored_at: i64,
}

/// Upserts pool scores (one statement per pool in one transaction).
pub async fn upsert_pool_risk(db: &Db, rows: &[PoolRisk]) -> Result<usize> {
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tx = db.begin_write().await?;
    for r in rows {
        sqlx::query(
            "INSERT INTO pool_risk (region, az, instance_type, probability, confidence, action, model, degraded, scored_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (region, az, instance_type) DO UPDATE SET probability = excluded.probability, confidence = excluded.confidence, action = excluded.action, model = excluded.model, degraded = excluded.degraded, scored_at = excluded.scored_at",
        )
        .bind(&r.region)
        .bind(&r.az)
        .bind(&r.instance_type)
        .bind(r.probability)
        .bind(r.confidence)
        .bind(&r.action)
        .bind(&r.model)
        .bind(r.degraded)
        .bind(r.scored_at)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(rows.len())
}

/// Every pool score (pools the product has seen: small).
pub async fn all_pool_risks(db: &Db) -> Result<Vec<PoolRisk>> {
    Ok(sqlx::query_as::<_, PoolRisk>(
        "SELECT region, az, instance_type, probability, confidence, action, model, degraded, scored_at FROM pool_risk",
    )
    .fetch_all(&db.pool)
    .await?)
}
