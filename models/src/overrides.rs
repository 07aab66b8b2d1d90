//! Manual capacity overrides ("force on-demand"): at the scope of one instance, a cluster,
//! an organization or the whole platform, for a duration or until revoked. While one is
//! active the planner keeps the covered capacity on demand; the sweep ends expired ones
//! (the timer is a row, so it survives restarts) and hands their clusters back to the
//! policy.

use serde::Serialize;

use crate::error::Result;
use crate::{new_id, now_ms, Db};

/// Where an override applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Instance,
    Cluster,
    Organization,
    Platform,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Instance => "instance",
            Scope::Cluster => "cluster",
            Scope::Organization => "organization",
            Scope::Platform => "platform",
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Override {
    pub id: String,
    pub organization_id: Option<String>,
    pub scope: String,
    pub cluster_id: Option<String>,
    pub instance_id: Option<String>,
    pub replacement_instance_id: Option<String>,
    pub reason: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub ended_by: Option<String>,
    pub end_reason: Option<String>,
}

impl Override {
    /// Active at `now` (ms): not ended and not past its expiry.
    pub fn active_at(&self, now: i64) -> bool {
        self.ended_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }

    /// Whether it covers the whole cluster (not just one of its instances).
    pub fn covers_cluster(&self) -> bool {
        self.scope != Scope::Instance.as_str()
    }

    /// The instance the planner keeps on demand (instance scope): the replacement once
    /// the force job made one, else the instance as forced.
    pub fn pinned_instance(&self) -> Option<&str> {
        if self.scope != Scope::Instance.as_str() {
            return None;
        }
        self.replacement_instance_id
            .as_deref()
            .or(self.instance_id.as_deref())
    }
}

const COLS: &str = "id, organization_id, scope, cluster_id, instance_id, replacement_instance_id, reason, created_by, created_at, expires_at, ended_at, ended_by, end_reason";

/// What a new override says.
#[derive(Debug, Clone)]
pub struct NewOverride<'a> {
    pub organization_id: Option<&'a str>,
    pub scope: Scope,
    pub cluster_id: Option<&'a str>,
    pub instance_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub created_by: &'a str,
    pub expires_at: Option<i64>,
}

pub async fn create(db: &Db, o: NewOverride<'_>) -> Result<Override> {
    let id = new_id();
    let now = now_ms();
    sqlx::query(
        "INSERT INTO capacity_overrides (id, organization_id, scope, cluster_id, instance_id, reason, created_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(o.organization_id)
    .bind(o.scope.as_str())
    .bind(o.cluster_id)
    .bind(o.instance_id)
    .bind(o.reason)
    .bind(o.created_by)
    .bind(now)
    .bind(o.expires_at)
    .execute(&db.pool)
    .await?;
    Ok(get(db, &id)
        .await?
        .ok_or_else(|| crate::DbError::Corrupt("override vanished".into()))?)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&db.pool)
    .await?)
}

/// One override visible to the organization (its own, or a platform one).
pub async fn get_for_org(db: &Db, org_id: &str, id: &str) -> Result<Option<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides WHERE id = $1 AND (organization_id = $2 OR organization_id IS NULL)"
    )))
    .bind(id)
    .bind(org_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// The organization's overrides (with the platform's), active first, newest first;
/// ended ones from the last `ended_within_ms`.
pub async fn list(db: &Db, org_id: &str, ended_within_ms: i64) -> Result<Vec<Override>> {
    let now = now_ms();
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides \
         WHERE (organization_id = $1 OR organization_id IS NULL) AND (ended_at IS NULL OR ended_at >= $2) \
         ORDER BY CASE WHEN ended_at IS NULL THEN 0 ELSE 1 END, created_at DESC, id"
    )))
    .bind(org_id)
    .bind(now - ended_within_ms)
    .fetch_all(&db.pool)
    .await?)
}

/// Every platform-scope override (super-admins), newest first.
pub async fn list_platform(db: &Db) -> Result<Vec<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides WHERE scope = 'platform' ORDER BY created_at DESC, id LIMIT 100"
    )))
    .fetch_all(&db.pool)
    .await?)
}

/// Overrides in force for a cluster of `org_id` at `now` (ms): its own instance and
/// cluster ones, the organization's and the platform's.
pub async fn active_for_cluster(
    db: &Db,
    org_id: &str,
    cluster_id: &str,
    now: i64,
) -> Result<Vec<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides \
         WHERE ended_at IS NULL AND (expires_at IS NULL OR expires_at > $3) \
           AND ((organization_id = $1 AND (cluster_id = $2 OR scope = 'organization')) OR scope = 'platform') \
         ORDER BY created_at, id"
    )))
    .bind(org_id)
    .bind(cluster_id)
    .bind(now)
    .fetch_all(&db.pool)
    .await?)
}

/// Ends an override (revoked by a user, or expired: `by` = `system`). `false` when it
/// had already ended.
pub async fn end(db: &Db, id: &str, by: &str, reason: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE capacity_overrides SET ended_at = $1, ended_by = $2, end_reason = $3 WHERE id = $4 AND ended_at IS NULL",
    )
    .bind(now_ms())
    .bind(by)
    .bind(reason)
    .bind(id)
    .execute(&db.pool)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Overrides past their expiry and not yet ended.
pub async fn due(db: &Db, now: i64) -> Result<Vec<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides WHERE ended_at IS NULL AND expires_at IS NOT NULL AND expires_at <= $1 ORDER BY expires_at, id"
    )))
    .bind(now)
    .fetch_all(&db.pool)
    .await?)
}

/// Records the on-demand instance that replaced an instance-scope override's instance.
pub async fn set_replacement(db: &Db, id: &str, instance_id: &str) -> Result<()> {
    sqlx::query("UPDATE capacity_overrides SET replacement_instance_id = $1 WHERE id = $2")
        .bind(instance_id)
        .bind(id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

/// The live clusters an override covers: (organization id, cluster id).
pub async fn clusters_of(db: &Db, o: &Override) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, String)> = match (o.scope.as_str(), &o.organization_id, &o.cluster_id) {
        ("instance" | "cluster", Some(org), Some(cluster)) => sqlx::query_as(
            "SELECT organization_id, id FROM clusters WHERE organization_id = $1 AND id = $2 AND gone_at IS NULL",
        )
        .bind(org)
        .bind(cluster)
        .fetch_all(&db.pool)
        .await?,
        ("organization", Some(org), _) => sqlx::query_as(
            "SELECT organization_id, id FROM clusters WHERE organization_id = $1 AND gone_at IS NULL ORDER BY name",
        )
        .bind(org)
        .fetch_all(&db.pool)
        .await?,
        ("platform", _, _) => sqlx::query_as(
            "SELECT organization_id, id FROM clusters WHERE gone_at IS NULL ORDER BY organization_id, name",
        )
        .fetch_all(&db.pool)
        .await?,
        _ => Vec::new(),
    };
    Ok(rows)
}

/// Every override active at `now` (ms), oldest first.
pub async fn active(db: &Db, now: i64) -> Result<Vec<Override>> {
    Ok(sqlx::query_as::<_, Override>(sqlx::AssertSqlSafe(format!(
        "SELECT {COLS} FROM capacity_overrides WHERE ended_at IS NULL AND (expires_at IS NULL OR expires_at > $1) ORDER BY created_at, id"
    )))
    .bind(now)
    .fetch_all(&db.pool)
    .await?)
}

/// Clusters an active override covers that have had no force job since the override
/// began (their cluster was busy when it started, or appeared since): (override,
/// organization id, cluster id).
pub async fn uncovered_clusters(db: &Db, now: i64) -> Result<Vec<(Override, String, String)>> {
    let mut out = Vec::new();
    for o in active(db, now).await? {
        for (org, cluster) in clusters_of(db, &o).await? {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM jobs WHERE kind = 'force_on_demand' AND target_id = $1 AND created_at >= $2",
            )
            .bind(&cluster)
            .bind(o.created_at)
            .fetch_one(&db.pool)
            .await?;
            if n == 0
                && !out
                    .iter()
                    .any(|(_, _, c): &(Override, String, String)| *c == cluster)
            {
                out.push((o.clone(), org, cluster));
            }
        }
    }
    Ok(out)
}
