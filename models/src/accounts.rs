//! Linked cloud accounts. Signup creates a `pending` placeholder that account linking later
//! upserts, so an organization never exists without an account row.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use crate::error::Result;
use crate::{new_id, now_ms, Db};

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Account {
    pub id: String,
    pub organization_id: String,
    pub name: String,
    pub provider: String,
    pub aws_account_id: Option<String>,
    pub method: Option<String>,
    pub role_arn: Option<String>,
    pub external_id: Option<String>,
    pub region: Option<String>,
    pub status: String,
    pub status_message: Option<String>,
    pub last_sync_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub(crate) const ACCOUNT_COLS: &str = "id, organization_id, name, provider, aws_account_id, method, role_arn, external_id, region, status, status_message, last_sync_at, created_at, updated_at";

pub(crate) async fn insert_placeholder(tx: &mut Transaction<'_, Any>, org_id: &str) -> Result<String> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO accounts (id, organization_id, name, provider, status, created_at, updated_at) VALUES ($1, $2, 'Pending account', 'aws', 'pending', $3, $3)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(id)
}

/// Accounts of an organization, disconnected ones excluded.
pub async fn list(db: &Db, org_id: &str) -> Result<Vec<Account>> {
    Ok(sqlx::query_as::<_, Account>(sqlx::AssertSqlSafe(format!(
        "SELECT {ACCOUNT_COLS} FROM accounts WHERE organization_id = $1 AND status <> 'disconnected' ORDER BY created_at"
    )))
    .bind(org_id)
    .fetch_all(&db.pool)
    .await?)
}

/// Whether the organization has at least one account in `active` status (drives the
/// onboarding/dashboard route hint).
pub async fn has_active(db: &Db, org_id: &str) -> Result<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM accounts WHERE organization_id = $1 AND status = 'active'",
    )
    .bind(org_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(n > 0)
}
