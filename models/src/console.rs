//! Persistence for the super-admin console beyond the client registry: the purge of
//! soft-deleted organizations, organizations created by invite, password resets, profile
//! changes, and the raw figures of live operations (KPIs and the decision pipeline funnel).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{DbError, Result};
use crate::{new_id, now_ms, Backend, Db};

// ---------------------------------------------------------------------------------------
// Purge of soft-deleted organizations
// ---------------------------------------------------------------------------------------

/// What the purge removed for one organization.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PurgedOrg {
    pub id: String,
    pub name: String,
    pub deleted_at: i64,
    /// Rows deleted per table (tables without a cascading reference to the organization;
    /// the rest go with the organization row).
    pub rows: BTreeMap<String, u64>,
    /// Users whose only organization it was.
    pub users_removed: u64,
}

/// Soft-deleted organizations whose deletion is at or before `cutoff_ms`, oldest first.
pub async fn purge_due(db: &Db, cutoff_ms: i64) -> Result<Vec<(String, String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT id, name, deleted_at FROM organizations \
         WHERE deleted_at IS NOT NULL AND deleted_at <= $1 ORDER BY deleted_at, id",
    )
    .bind(cutoff_ms)
    .fetch_all(&db.pool)
    .await?)
}

/// Tables that carry an `organization_id` column (read from the catalog, so tables added
/// later are covered), except the audit log, which outlives the organization.
async fn tenant_tables(db: &Db) -> Result<Vec<String>> {
    let sql = match db.backend {
        Backend::Sqlite => {
            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name = 'organization_id' ORDER BY m.name"
        }
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.columns \
             WHERE column_name = 'organization_id' AND table_schema = current_schema() \
             ORDER BY table_name"
        }
    };
    let rows: Vec<(String,)> = sqlx::query_as(sql).fetch_all(&db.pool).await?;
    Ok(rows
        .into_iter()
        .map(|(t,)| t)
        .filter(|t| {
            !t.starts_with("audit_")
                && t != "organizations"
                && !t.is_empty()
                && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
        .collect())
}

/// Purges one soft-deleted organization (only when it is still deleted at or before
/// `cutoff_ms`) in one write transaction: the organization row (its cascading children go
/// with it), every other row naming it, and the users who belonged to it alone. Its audit
/// chain is kept. `None` when it is no longer due (restored meanwhile, or already gone).
pub async fn purge_org(db: &Db, org_id: &str, cutoff_ms: i64) -> Result<Option<PurgedOrg>> {
    let tables = tenant_tables(db).await?;
    let mut tx = db.begin_write().await?;
    let row: Option<(String, i64)> = sqlx::query_as(
        "SELECT name, deleted_at FROM organizations \
         WHERE id = $1 AND deleted_at IS NOT NULL AND deleted_at <= $2",
    )
    .bind(org_id)
    .bind(cutoff_ms)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((name, deleted_at)) = row else {
        return Ok(None);
    };
    let members: Vec<(String,)> =
        sqlx::query_as("SELECT user_id FROM memberships WHERE organization_id = $1")
            .bind(org_id)
            .fetch_all(&mut *tx)
            .await?;
    let mut out = PurgedOrg {
        id: org_id.to_string(),
        name,
        deleted_at,
        ..Default::default()
    };
    sqlx::query("DELETE FROM organizations WHERE id = $1")
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
    for t in &tables {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {t} WHERE organization_id = $1"
        )))
        .bind(org_id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() > 0 {
            out.rows.insert(t.clone(), r.rows_affected());
        }
    }
    for (user_id,) in members {
        let r = sqlx::query(
            "DELETE FROM users WHERE id = $1 AND platform_role IS NULL \
             AND NOT EXISTS (SELECT 1 FROM memberships WHERE user_id = $1)",
        )
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
        out.users_removed += r.rows_affected();
    }
    tx.commit().await?;
    Ok(Some(out))
}

// ---------------------------------------------------------------------------------------
// Organizations created by invite
// ---------------------------------------------------------------------------------------

/// An invite to own a new organization.
#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct ClientInvite {
    pub id: String,
    pub organization_id: String,
    pub email: String,
    pub invited_by: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
}

const CLIENT_INVITE_COLS: &str =
    "id, organization_id, email, invited_by, created_at, expires_at, accepted_at";

/// Creates an organization without members (with the onboarding placeholder account, as a
/// signup does) and the invite of its future owner, in one transaction.
pub async fn create_org_with_invite(
    db: &Db,
    name: &str,
    email: &str,
    token_hash: &str,
    invited_by: &str,
    ttl_ms: i64,
) -> Result<(String, ClientInvite)> {
    let mut tx = db.begin_write().await?;
    let org = crate::orgs::insert_org(&mut tx, name).await?;
    crate::accounts::insert_placeholder(&mut tx, &org.id).await?;
    let now = now_ms();
    let inv = ClientInvite {
        id: new_id(),
        organization_id: org.id.clone(),
        email: email.to_string(),
        invited_by: invited_by.to_string(),
        created_at: now,
        expires_at: now + ttl_ms,
        accepted_at: None,
    };
    sqlx::query(
        "INSERT INTO client_invites (id, organization_id, email, token_hash, invited_by, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&inv.id)
    .bind(&inv.organization_id)
    .bind(&inv.email)
    .bind(token_hash)
    .bind(&inv.invited_by)
    .bind(inv.created_at)
    .bind(inv.expires_at)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok((org.id, inv))
}

pub async fn client_invite_by_token_hash(
    db: &Db,
    token_hash: &str,
) -> Result<Option<ClientInvite>> {
    Ok(
        sqlx::query_as::<_, ClientInvite>(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_INVITE_COLS} FROM client_invites WHERE token_hash = $1"
        )))
        .bind(token_hash)
        .fetch_optional(&db.pool)
        .await?,
    )
}

/// The open (not accepted) owner invite of an organization, newest first.
pub async fn pending_client_invite(db: &Db, org_id: &str) -> Result<Option<ClientInvite>> {
    Ok(
        sqlx::query_as::<_, ClientInvite>(sqlx::AssertSqlSafe(format!(
            "SELECT {CLIENT_INVITE_COLS} FROM client_invites \
         WHERE organization_id = $1 AND accepted_at IS NULL ORDER BY created_at DESC"
        )))
        .bind(org_id)
        .fetch_optional(&db.pool)
        .await?,
    )
}

/// Why a single-use token (owner invite, password reset) cannot be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Unknown,
    Expired,
    Used,
}

/// Redeems an owner invite at `now`: marks it accepted and creates the owner with the
/// password hash, in one transaction (single use even under races). Returns the new user id.
pub async fn accept_client_invite(
    db: &Db,
    token_hash: &str,
    password_hash: &str,
    now: i64,
) -> Result<std::result::Result<(String, ClientInvite), TokenRejection>> {
    let mut tx = db.begin_write().await?;
    let inv: Option<ClientInvite> = sqlx::query_as::<_, ClientInvite>(sqlx::AssertSqlSafe(
        format!("SELECT {CLIENT_INVITE_COLS} FROM client_invites WHERE token_hash = $1"),
    ))
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(inv) = inv else {
        return Ok(Err(TokenRejection::Unknown));
    };
    if inv.accepted_at.is_some() {
        return Ok(Err(TokenRejection::Used));
    }
    if inv.expires_at < now {
        return Ok(Err(TokenRejection::Expired));
    }
    let r = sqlx::query(
        "UPDATE client_invites SET accepted_at = $1 WHERE id = $2 AND accepted_at IS NULL",
    )
    .bind(now)
    .bind(&inv.id)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(Err(TokenRejection::Used));
    }
    let user = crate::orgs::insert_user(&mut tx, &inv.email, password_hash, None).await?;
    crate::orgs::insert_membership(&mut tx, &user.id, &inv.organization_id, "owner").await?;
    tx.commit().await?;
    Ok(Ok((user.id, inv)))
}

// ---------------------------------------------------------------------------------------
// Password resets and profile
// ---------------------------------------------------------------------------------------

/// Stores a reset token (its hash) for a user.
pub async fn create_password_reset(
    db: &Db,
    user_id: &str,
    token_hash: &str,
    ttl_ms: i64,
) -> Result<i64> {
    let now = now_ms();
    sqlx::query(
        "INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_hash)
    .bind(user_id)
    .bind(now)
    .bind(now + ttl_ms)
    .execute(&db.pool)
    .await?;
    Ok(now + ttl_ms)
}

/// Redeems a reset token at `now`: sets the password, marks every open reset token of the
/// user used and revokes all the user's sessions (reason `password_reset`), in one
/// transaction. Returns the user id.
pub async fn redeem_password_reset(
    db: &Db,
    token_hash: &str,
    password_hash: &str,
    now: i64,
) -> Result<std::result::Result<(String, u64), TokenRejection>> {
    let mut tx = db.begin_write().await?;
    let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
        "SELECT user_id, expires_at, used_at FROM password_resets WHERE token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let Some((user_id, expires_at, used_at)) = row else {
        return Ok(Err(TokenRejection::Unknown));
    };
    if used_at.is_some() {
        return Ok(Err(TokenRejection::Used));
    }
    if expires_at < now {
        return Ok(Err(TokenRejection::Expired));
    }
    let r = sqlx::query(
        "UPDATE password_resets SET used_at = $1 WHERE user_id = $2 AND used_at IS NULL",
    )
    .bind(now)
    .bind(&user_id)
    .execute(&mut *tx)
    .await?;
    if r.rows_affected() == 0 {
        return Ok(Err(TokenRejection::Used));
    }
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    let revoked = sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = 'password_reset' \
         WHERE user_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(&user_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(Ok((user_id, revoked)))
}

/// Sets the password and revokes every session of the user except `keep_session` (the one
/// that made the change, when given), in one transaction. Returns the sessions revoked.
pub async fn change_password(
    db: &Db,
    user_id: &str,
    password_hash: &str,
    keep_session: Option<&str>,
) -> Result<u64> {
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
        .bind(password_hash)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let revoked = sqlx::query(
        "UPDATE sessions SET revoked_at = $1, revoked_reason = 'password_changed' \
         WHERE user_id = $2 AND revoked_at IS NULL AND id <> $3",
    )
    .bind(now)
    .bind(user_id)
    .bind(keep_session.unwrap_or(""))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(revoked)
}

/// A user's profile fields.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Profile {
    pub id: String,
    pub email: String,
    pub display_name: Option<String>,
    pub platform_role: Option<String>,
    pub created_at: i64,
}

pub async fn profile(db: &Db, user_id: &str) -> Result<Option<Profile>> {
    Ok(sqlx::query_as::<_, Profile>(
        "SELECT id, email, display_name, platform_role, created_at FROM users WHERE id = $1",
    )
    .bind(user_id)
    .fetch_optional(&db.pool)
    .await?)
}

/// Updates name and e-mail. A taken e-mail is `DbError::Conflict`.
pub async fn update_profile(
    db: &Db,
    user_id: &str,
    display_name: Option<&str>,
    email: &str,
) -> Result<()> {
    let taken: Option<(String,)> =
        sqlx::query_as("SELECT id FROM users WHERE email = $1 AND id <> $2")
            .bind(email)
            .bind(user_id)
            .fetch_optional(&db.pool)
            .await?;
    if taken.is_some() {
        return Err(DbError::Conflict("email".into()));
    }
    sqlx::query("UPDATE users SET display_name = $1, email = $2 WHERE id = $3")
        .bind(display_name)
        .bind(email)
        .bind(user_id)
        .execute(&db.pool)
        .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Live operations
// ---------------------------------------------------------------------------------------

/// Raw platform figures: counts over organizations that are not soft-deleted.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PlatformCounts {
    pub organizations: i64,
    pub blocked_organizations: i64,
    pub deleted_organizations: i64,
}

pub async fn platform_counts(db: &Db) -> Result<PlatformCounts> {
    let (organizations, blocked, deleted): (i64, i64, i64) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN deleted_at IS NULL THEN 1 ELSE 0 END), 0), \
                COALESCE(SUM(CASE WHEN deleted_at IS NULL AND blocked_at IS NOT NULL THEN 1 ELSE 0 END), 0), \
                COALESCE(SUM(CASE WHEN deleted_at IS NOT NULL THEN 1 ELSE 0 END), 0) \
         FROM organizations",
    )
    .fetch_one(&db.pool)
    .await?;
    Ok(PlatformCounts {
        organizations,
        blocked_organizations: blocked,
        deleted_organizations: deleted,
    })
}

/// Spot pools scored since `since_ms` (latest score per pool) and the newest score time.
pub async fn pools_scored(db: &Db, since_ms: i64) -> Result<(i64, i64, Option<i64>)> {
    let (n, degraded): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN degraded <> 0 THEN 1 ELSE 0 END), 0) \
         FROM pool_risk WHERE scored_at >= $1",
    )
    .bind(since_ms)
    .fetch_one(&db.pool)
    .await?;
    let (newest,): (Option<i64>,) = sqlx::query_as("SELECT MAX(scored_at) FROM pool_risk")
        .fetch_one(&db.pool)
        .await?;
    Ok((n, degraded, newest))
}

/// A decision job (optimize, force on-demand) created in the window, with its stored plan
/// and result (JSON text).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DecisionJob {
    pub id: String,
    pub kind: String,
    pub status: String,
    pub message: Option<String>,
    pub plan: Option<String>,
    pub result: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
}

pub async fn decision_jobs(db: &Db, kinds: &[&str], since_ms: i64) -> Result<Vec<DecisionJob>> {
    let mut out = Vec::new();
    for kind in kinds {
        let rows: Vec<DecisionJob> = sqlx::query_as(
            "SELECT id, kind, status, message, plan, result, created_at, finished_at FROM jobs \
             WHERE kind = $1 AND created_at >= $2 ORDER BY created_at",
        )
        .bind(*kind)
        .bind(since_ms)
        .fetch_all(&db.pool)
        .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// An executor action recorded in the audit log (`optimize.action`, …).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ActionRecord {
    pub action: String,
    pub outcome: String,
    pub ts: i64,
    /// The record's diff (JSON text: `{"before": …, "after": …}`).
    pub diff: String,
}

pub async fn action_records(db: &Db, actions: &[&str], since_ms: i64) -> Result<Vec<ActionRecord>> {
    let mut out = Vec::new();
    for a in actions {
        let rows: Vec<ActionRecord> = sqlx::query_as(
            "SELECT action, outcome, ts, diff FROM audit_logs WHERE action = $1 AND ts >= $2",
        )
        .bind(*a)
        .bind(since_ms)
        .fetch_all(&db.pool)
        .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// Queued and running jobs of each kind, with the newest finish time of the kind.
pub async fn job_stage_counts(db: &Db, kind: &str) -> Result<(i64, i64, Option<i64>)> {
    let (queued, running, last): (i64, i64, Option<i64>) = sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN status = 'queued' THEN 1 ELSE 0 END), 0), \
                COALESCE(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END), 0), \
                MAX(finished_at) \
         FROM jobs WHERE kind = $1",
    )
    .bind(kind)
    .fetch_one(&db.pool)
    .await?;
    Ok((queued, running, last))
}

/// The user a reset token was issued for, whatever its state (for the password policy check
/// before redeeming).
pub async fn password_reset_user(db: &Db, token_hash: &str) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT user_id FROM password_resets WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&db.pool)
            .await?;
    Ok(row.map(|(u,)| u))
}
