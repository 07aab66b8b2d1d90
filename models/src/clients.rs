//! The platform's client registry: every organization with its lifecycle (active, blocked,
//! soft-deleted) and the per-organization figures the super-admin console shows.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::{now_ms, Db};

/// Days a soft-deleted organization is kept (and can be restored) before it may be purged.
pub const DELETED_RETENTION_DAYS: i64 = 30;

/// Lifecycle of an organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    Active,
    Blocked,
    Deleted,
}

impl ClientStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientStatus::Active => "active",
            ClientStatus::Blocked => "blocked",
            ClientStatus::Deleted => "deleted",
        }
    }

    /// Deletion wins over blocking: a deleted organization stays blocked after a restore.
    pub fn of(blocked_at: Option<i64>, deleted_at: Option<i64>) -> ClientStatus {
        match (blocked_at, deleted_at) {
            (_, Some(_)) => ClientStatus::Deleted,
            (Some(_), None) => ClientStatus::Blocked,
            (None, None) => ClientStatus::Active,
        }
    }

    /// Why members of an organization in this state may not sign in.
    pub fn login_refusal(self) -> Option<&'static str> {
        match self {
            ClientStatus::Active => None,
            ClientStatus::Blocked => Some("this organization is blocked"),
            ClientStatus::Deleted => Some("this organization has been deleted"),
        }
    }
}

/// One organization with its lifecycle columns.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct ClientRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub blocked_at: Option<i64>,
    pub blocked_reason: Option<String>,
    pub deleted_at: Option<i64>,
}

impl ClientRow {
    pub fn status(&self) -> ClientStatus {
        ClientStatus::of(self.blocked_at, self.deleted_at)
    }

    /// When a soft-deleted organization becomes eligible for the purge.
    pub fn purge_after(&self) -> Option<i64> {
        self.deleted_at
            .map(|d| d + DELETED_RETENTION_DAYS * 24 * 3600 * 1000)
    }
}

/// Figures of one organization, all from stored inventory (no cloud call).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClientStats {
    pub members: i64,
    pub owner_email: Option<String>,
    /// Linked accounts: neither the signup placeholder (`pending`) nor disconnected.
    pub accounts: i64,
    /// Live clusters of connected accounts.
    pub clusters: i64,
    /// Running (or pending) instances that belong to a cluster.
    pub nodes: i64,
    /// Σ current hourly price of running instances.
    pub compute_hourly: f64,
    /// Σ max(0, on-demand − current) hourly price of running instances.
    pub savings_hourly: f64,
    /// Monthly EBS cost of live volumes and snapshots.
    pub storage_monthly: f64,
    /// Time of the newest audit record of the organization.
    pub last_activity_at: Option<i64>,
}

const CLIENT_COLS: &str = "id, name, created_at, blocked_at, blocked_reason, deleted_at";

pub async fn get(db: &Db, id: &str) -> Result<Option<ClientRow>> {
    Ok(sqlx::query_as::<_, ClientRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {CLIENT_COLS} FROM organizations WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Every organization, oldest first; soft-deleted ones only when asked for.
pub async fn list(db: &Db, include_deleted: bool) -> Result<Vec<ClientRow>> {
    let filter = if include_deleted {
        ""
    } else {
        " WHERE deleted_at IS NULL"
    };
    Ok(sqlx::query_as::<_, ClientRow>(sqlx::AssertSqlSafe(format!(
        "SELECT {CLIENT_COLS} FROM organizations{filter} ORDER BY created_at, id"
    )))
    .fetch_all(&db.pool)
    .await?)
}

/// The lifecycle state of an organization (`None` when it does not exist).
pub async fn status(db: &Db, id: &str) -> Result<Option<ClientStatus>> {
    Ok(get(db, id).await?.map(|r| r.status()))
}

/// Whether any member of the organization is a platform operator (such organizations are
/// never blocked, deleted or impersonated).
pub async fn has_platform_member(db: &Db, org_id: &str) -> Result<bool> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.organization_id = $1 AND u.platform_role IS NOT NULL",
    )
    .bind(org_id)
    .fetch_one(&db.pool)
    .await?;
    Ok(n > 0)
}

/// Revokes every live session in or of the organization: its members' and any impersonation
/// session into it. Runs inside the caller's transaction.
async fn revoke_sessions(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    org_id: &str,
    now: i64,
) -> Result<i64> {
    let r = sqlx::query(
        "UPDATE sessions SET revoked_at = $1 WHERE revoked_at IS NULL AND (organization_id = $2 \
         OR user_id IN (SELECT user_id FROM memberships WHERE organization_id = $2))",
    )
    .bind(now)
    .bind(org_id)
    .execute(&mut **tx)
    .await?;
    Ok(r.rows_affected() as i64)
}

/// Blocks an active organization and revokes all its sessions in one transaction. Returns
/// the number of sessions revoked, or `None` when the organization is missing, deleted or
/// already blocked.
pub async fn block(db: &Db, org_id: &str, reason: Option<&str>) -> Result<Option<i64>> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let r = sqlx::query(
        "UPDATE organizations SET blocked_at = $1, blocked_reason = $2 \
         WHERE id = $3 AND blocked_at IS NULL AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let revoked = revoke_sessions(&mut tx, org_id, now).await?;
    tx.commit().await?;
    Ok(Some(revoked))
}

/// Lifts a block. Returns false when the organization is not blocked (or is deleted).
pub async fn unblock(db: &Db, org_id: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE organizations SET blocked_at = NULL, blocked_reason = NULL \
         WHERE id = $1 AND blocked_at IS NOT NULL AND deleted_at IS NULL",
    )
    .bind(org_id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Soft-deletes an organization (data kept) and revokes all its sessions. Returns the number
/// of sessions revoked, or `None` when it is missing or already deleted.
pub async fn soft_delete(db: &Db, org_id: &str) -> Result<Option<i64>> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let r = sqlx::query(
        "UPDATE organizations SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
    )
    .bind(now)
    .bind(org_id)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(None);
    }
    let revoked = revoke_sessions(&mut tx, org_id, now).await?;
    tx.commit().await?;
    Ok(Some(revoked))
}

/// Restores a soft-deleted organization. Returns false when it is not deleted.
pub async fn restore(db: &Db, org_id: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE organizations SET deleted_at = NULL WHERE id = $1 AND deleted_at IS NOT NULL",
    )
    .bind(org_id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() > 0)
}

/// Start and expiry of a session (for the impersonation banner).
pub async fn session_window(db: &Db, session_id: &str) -> Result<Option<(i64, i64)>> {
    Ok(
        sqlx::query_as("SELECT created_at, expires_at FROM sessions WHERE id = $1")
            .bind(session_id)
            .fetch_optional(&db.pool)
            .await?,
    )
}

fn into_map<V>(rows: Vec<(String, V)>) -> HashMap<String, V> {
    rows.into_iter().collect()
}

/// The figures of every organization, computed with one grouped query per figure.
pub async fn stats(db: &Db) -> Result<HashMap<String, ClientStats>> {
    let members: Vec<(String, i64)> = sqlx::query_as(
        "SELECT organization_id, COUNT(*) FROM memberships GROUP BY organization_id",
    )
    .fetch_all(&db.pool)
    .await?;
    let owners: Vec<(String, String)> = sqlx::query_as(
        "SELECT m.organization_id, u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.role = 'owner' ORDER BY m.created_at DESC",
    )
    .fetch_all(&db.pool)
    .await?;
    let accounts: Vec<(String, i64)> = sqlx::query_as(
        "SELECT organization_id, COUNT(*) FROM accounts \
         WHERE status NOT IN ('pending', 'disconnected') GROUP BY organization_id",
    )
    .fetch_all(&db.pool)
    .await?;
    let clusters: Vec<(String, i64)> = sqlx::query_as(
        "SELECT c.organization_id, COUNT(*) FROM clusters c JOIN accounts a ON a.id = c.account_id \
         WHERE c.gone_at IS NULL AND a.status <> 'disconnected' GROUP BY c.organization_id",
    )
    .fetch_all(&db.pool)
    .await?;
    // The same population as the dashboard: live, running or pending, in connected accounts.
    let compute: Vec<(String, i64, f64, f64)> = sqlx::query_as(
        "SELECT i.organization_id, \
                SUM(CASE WHEN i.cluster_id IS NOT NULL THEN 1 ELSE 0 END), \
                CAST(COALESCE(SUM(i.hourly_price), 0) AS DOUBLE PRECISION), \
                CAST(COALESCE(SUM(CASE WHEN i.on_demand_hourly > i.hourly_price THEN i.on_demand_hourly - i.hourly_price ELSE 0 END), 0) AS DOUBLE PRECISION) \
         FROM instances i JOIN accounts a ON a.id = i.account_id \
         WHERE i.gone_at IS NULL AND a.status <> 'disconnected' AND i.state IN ('running', 'pending') \
         GROUP BY i.organization_id",
    )
    .fetch_all(&db.pool)
    .await?;
    let mut storage: HashMap<String, f64> = HashMap::new();
    for table in ["volumes", "snapshots"] {
        let rows: Vec<(String, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT x.organization_id, CAST(COALESCE(SUM(x.monthly_cost), 0) AS DOUBLE PRECISION) \
             FROM {table} x JOIN accounts a ON a.id = x.account_id \
             WHERE x.gone_at IS NULL AND a.status <> 'disconnected' GROUP BY x.organization_id"
        )))
        .fetch_all(&db.pool)
        .await?;
        for (org, v) in rows {
            *storage.entry(org).or_default() += v;
        }
    }
    let activity: Vec<(String, i64)> = sqlx::query_as(
        "SELECT organization_id, MAX(ts) FROM audit_logs WHERE organization_id IS NOT NULL \
         GROUP BY organization_id",
    )
    .fetch_all(&db.pool)
    .await?;

    let mut out: HashMap<String, ClientStats> = HashMap::new();
    for (org, n) in members {
        out.entry(org).or_default().members = n;
    }
    // Ordered newest first, so the oldest owner is written last.
    for (org, email) in owners {
        out.entry(org).or_default().owner_email = Some(email);
    }
    for (org, n) in into_map(accounts) {
        out.entry(org).or_default().accounts = n;
    }
    for (org, n) in into_map(clusters) {
        out.entry(org).or_default().clusters = n;
    }
    for (org, nodes, hourly, saved) in compute {
        let s = out.entry(org).or_default();
        s.nodes = nodes;
        s.compute_hourly = hourly;
        s.savings_hourly = saved;
    }
    for (org, v) in storage {
        out.entry(org).or_default().storage_monthly = v;
    }
    for (org, at) in into_map(activity) {
        out.entry(org).or_default().last_activity_at = Some(at);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_wins_over_blocking() {
        assert_eq!(ClientStatus::of(None, None), ClientStatus::Active);
        assert_eq!(ClientStatus::of(Some(1), None), ClientStatus::Blocked);
        assert_eq!(ClientStatus::of(Some(1), Some(2)), ClientStatus::Deleted);
        assert_eq!(ClientStatus::of(None, Some(2)), ClientStatus::Deleted);
        assert_eq!(
            ClientStatus::Blocked.login_refusal(),
            Some("this organization is blocked")
        );
        assert_eq!(ClientStatus::Active.login_refusal(), None);
    }

    #[test]
    fn purge_is_due_after_the_retention_period() {
        let r = ClientRow {
            id: "o".into(),
            name: "n".into(),
            created_at: 0,
            blocked_at: None,
            blocked_reason: None,
            deleted_at: Some(1_000),
        };
        assert_eq!(
            r.purge_after(),
            Some(1_000 + DELETED_RETENTION_DAYS * 86_400_000)
        );
    }
}
