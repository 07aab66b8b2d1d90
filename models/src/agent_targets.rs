//! Clusters an agent could run for, across organizations: what the simulated agents'
//! manager reconciles (in the simulator every live cluster of a linked account is a
//! simulated cluster that can run a simulated agent). Platform-level, read-only.

use crate::{Db, Result};

/// One live cluster of a linked account, with its agent token state.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AgentTarget {
    pub cluster_id: String,
    pub organization_id: String,
    pub cluster_name: String,
    /// The cloud account number (e.g. the 12-digit AWS account id).
    pub cloud_account_id: String,
    pub region: String,
    /// Creation time (epoch ms) of the active agent token, if any.
    pub token_created_at: Option<i64>,
}

/// Every live cluster of every active (or scanning) account that has a cloud account id.
pub async fn all(db: &Db) -> Result<Vec<AgentTarget>> {
    Ok(sqlx::query_as(
        "SELECT c.id AS cluster_id, c.organization_id AS organization_id, c.name AS cluster_name, \
         a.aws_account_id AS cloud_account_id, c.region AS region, \
         (SELECT MAX(t.created_at) FROM agent_tokens t WHERE t.cluster_id = c.id AND t.revoked_at IS NULL) AS token_created_at \
         FROM clusters c JOIN accounts a ON a.id = c.account_id \
         WHERE c.gone_at IS NULL AND a.aws_account_id IS NOT NULL \
         AND a.status IN ('active', 'scanning') ORDER BY c.id",
    )
    .fetch_all(&db.pool)
    .await?)
}
